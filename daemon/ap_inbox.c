/*
 * ap_inbox: the actor's inbox (see ap_inbox.h): HTTP signature checks with
 * fetched and cached keys, then Follow, Undo{Follow} and Delete. What needs
 * a fetch (a key not cached or no longer verifying, a follower's actor
 * document) goes to a few worker threads while the request is suspended;
 * the store is only ever touched on the loop's thread.
 */
#include "ap_inbox.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../ap/docs.h"
#include "../ap/fetch.h"
#include "../ap/httpsig.h"
#include "../lib/log.h"
#include "../lib/timefmt.h"
#include "ap_http.h"

#define DOC_MAX (1024 * 1024)

/* Headers a signature may cover that we hand the verifier up front; any
 * other covered one is looked up after parsing. */
static const char *const known_headers[] = {
    "signature", "signature-input", "authorization", "host",           "date",
    "digest",    "content-digest",  "content-type",  "content-length",
};
#define NKNOWN (sizeof known_headers / sizeof *known_headers)
#define MAXHDR (NKNOWN + HTTPSIG_MAX_COMPONENTS)

int ap_json_depth_ok(const char *s, size_t len, int max)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                return 0;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 1;
}

/* --- signed fetches ------------------------------------------------------- */

json_t *ap_signed_get(const struct ap_getter *g, const char *url, struct diag *why)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    struct httpsig_out out = {0};
    struct buf body, target, hostport;
    json_t *doc = NULL;
    long status = 0;
    buf_init(&body, DOC_MAX);
    buf_init(&target, AP_FETCH_MAX_URL);
    buf_init(&hostport, 1024);
    if (ap_fetch_url_ok(url, g->allow_loopback, why) < 0)
        goto out;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        diag_set(why, 0, 0, "%s: not a URL", url);
        goto out;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0); /* only when the URL has one */
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    if (buf_printf(&target, "%s%s%s", path, query ? "?" : "", query ? query : "") < 0 ||
        buf_printf(&hostport, "%s%s%s", host, port ? ":" : "", port ? port : "") < 0) {
        diag_set(why, 0, 0, "%s: URL too long", url);
        goto out;
    }
    struct httpsig_sign_req r = {.method = "GET",
                                 .target = buf_str(&target),
                                 .host = buf_str(&hostport),
                                 .now = timefmt_now()};
    if (httpsig_sign(g->key, g->key_id, &r, &out, why) != HTTPSIG_OK)
        goto out;
    struct ap_fetch_opts o = {.allow_insecure_loopback = g->allow_loopback,
                              .version = NASHRA_VERSION,
                              .site_url = g->site_url,
                              .ca_file = g->ca_file,
                              .cancel = g->cancel};
    /* Host is curl's to send (it follows the URL); the rest are ours. */
    const char *hdrs[HTTPSIG_OUT_MAX];
    size_t nh = 0;
    for (size_t i = 0; i < out.n; i++)
        if (strncmp(out.line[i], "Host:", 5))
            hdrs[nh++] = out.line[i];
    int rc = ap_fetch(&o, url, hdrs, nh, &body, &status, why);
    if (rc != AP_FETCH_OK)
        goto out;
    if (status < 200 || status > 299) {
        diag_set(why, 0, 0, "%s: HTTP %ld", url, status);
        goto out;
    }
    if (!ap_json_depth_ok(body.data ? body.data : "", body.len, AP_INBOX_MAX_DEPTH)) {
        diag_set(why, 0, 0, "%s: JSON nested too deep", url);
        goto out;
    }
    json_error_t je;
    if (!(doc = json_loadb(body.data ? body.data : "", body.len, 0, &je)) || !json_is_object(doc)) {
        json_decref(doc);
        doc = NULL;
        diag_set(why, 0, 0, "%s: not a JSON object", url);
    }
out:
    httpsig_out_free(&out);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    buf_free(&body);
    buf_free(&target);
    buf_free(&hostport);
    return doc;
}

/* --- keys --------------------------------------------------------------------- */

static const char *id_of(const json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : json_string_value(json_object_get(v, "id"));
}

/* scheme://host[:port] of a URL equal in a and b (case-insensitive). */
static int same_origin(const char *a, const char *b)
{
    const char *ea = strstr(a, "://"), *eb = strstr(b, "://");
    if (!ea || !eb)
        return 0;
    ea = strchr(ea + 3, '/');
    eb = strchr(eb + 3, '/');
    size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
    return la == lb && strncasecmp(a, b, la) == 0;
}

/* The key key_id in a fetched document (see ap_inbox.h): pure, fuzzed. */
int ap_doc_key(const json_t *d, const char *key_id, const char **owner, const char **pem,
               struct diag *why)
{
    const json_t *k = NULL, *pk = json_object_get(d, "publicKey");
    if (json_is_array(pk)) {
        size_t i;
        const json_t *v;
        json_array_foreach(pk, i, v)
        {
            if (json_is_object(v) && id_of(v) && !strcmp(id_of(v), key_id))
                k = v;
        }
    } else if (json_is_object(pk) && id_of(pk) && !strcmp(id_of(pk), key_id)) {
        k = pk;
    } else if (id_of(d) && !strcmp(id_of(d), key_id)) {
        k = d;
    }
    const char *o = k ? id_of(json_object_get(k, "owner")) : NULL;
    const char *p = k ? json_string_value(json_object_get(k, "publicKeyPem")) : NULL;
    if (!k || !o || !p) {
        diag_set(why, 0, 0, "no public key %s there", key_id);
        return -1;
    }
    if (!same_origin(o, key_id)) {
        diag_set(why, 0, 0, "key %s claims an owner elsewhere (%s)", key_id, o);
        return -2;
    }
    *owner = o;
    *pem = p;
    return 0;
}

/*
 * Fetches key_id (its URL without the fragment) and reads the key from it
 * (ap_doc_key). *doc gets the fetched document (the actor, usually: the
 * Follow needs its inboxes).
 */
static int fetch_key(const struct ap_getter *g, const char *key_id, char **owner, char **pem,
                     json_t **doc, struct diag *why)
{
    char url[HTTPSIG_MAX_KEYID];
    snprintf(url, sizeof url, "%s", key_id);
    char *hash = strchr(url, '#');
    if (hash)
        *hash = '\0';
    json_t *d = ap_signed_get(g, url, why);
    if (!d)
        return -1;
    const char *o, *p;
    int rc = ap_doc_key(d, key_id, &o, &p, why);
    if (rc < 0) {
        if (rc == -1)
            diag_set(why, 0, 0, "%s: no public key %s there", url, key_id);
        json_decref(d);
        return -1;
    }
    *owner = strdup(o);
    *pem = strdup(p);
    *doc = d;
    if (!*owner || !*pem) {
        free(*owner);
        free(*pem);
        json_decref(d);
        diag_set(why, 0, 0, "out of memory");
        return -1;
    }
    return 0;
}

static int verify_pem(const struct httpsig_parsed *sig, const struct httpsig_request *req,
                      const char *pem, struct diag *why)
{
    EVP_PKEY *pub = httpsig_pubkey_from_pem(pem, strlen(pem), why);
    if (!pub)
        return HTTPSIG_E_UNSUPPORTED;
    int rc = httpsig_verify(sig, req, pub, timefmt_now(), NULL, why);
    EVP_PKEY_free(pub);
    return rc;
}

/* --- activities -------------------------------------------------------------- */

/* The inboxes of actor from doc, its actor document fetched by a worker
 * (see ap_inbox.h): pure, fuzzed. */
int ap_doc_inboxes(const json_t *doc, const char *actor, int allow_loopback, char **inbox,
                   char **shared, struct diag *why)
{
    if (!doc || !id_of(doc) || strcmp(id_of(doc), actor)) {
        diag_set(why, 0, 0, "%s: its actor document could not be fetched", actor);
        return -1;
    }
    const char *in = json_string_value(json_object_get(doc, "inbox"));
    const char *sh =
        json_string_value(json_object_get(json_object_get(doc, "endpoints"), "sharedInbox"));
    struct diag ignored = {0};
    if (!in || ap_fetch_url_ok(in, allow_loopback, why) < 0) {
        if (!in)
            diag_set(why, 0, 0, "%s: no usable inbox", actor);
        return -1;
    }
    if (sh && ap_fetch_url_ok(sh, allow_loopback, &ignored) < 0)
        sh = NULL;
    *inbox = strdup(in);
    *shared = sh ? strdup(sh) : NULL;
    return *inbox ? 0 : -1;
}

static int on_follow(struct ap_inbox_env *e, const json_t *act, const char *actor,
                     const json_t *doc, struct diag *why)
{
    char me[1024];
    snprintf(me, sizeof me, "%s" AP_PATH_ACTOR, e->cfg->site.url);
    const char *obj = id_of(json_object_get(act, "object"));
    if (!obj || strcmp(obj, me)) {
        diag_set(why, 0, 0, "a Follow of someone else (%s)", obj ? obj : "nothing");
        return 1; /* not ours: ignored */
    }
    char *inbox = NULL, *shared = NULL;
    struct buf accept;
    buf_init(&accept, DOC_MAX);
    int rc = -1;
    if (ap_doc_inboxes(doc, actor, e->cfg->activitypub.allow_insecure_loopback, &inbox, &shared,
                       why) < 0)
        goto out;
    if (ap_accept(e->cfg, act, &accept) < 0) {
        diag_set(why, 0, 0, "the Follow cannot be answered (no id?)");
        rc = 2;
        goto out;
    }
    int64_t now = timefmt_now();
    int added = ap_follower_put(e->as, actor, inbox, shared, now);
    if (added < 0 || ap_enqueue_one(e->as, buf_str(&accept), inbox, now) < 0) {
        diag_set(why, 0, 0, "the follower could not be stored");
        goto out;
    }
    log_event(LOG_INFO, "follower", "action=%s actor=%s inbox=%s shared_inbox=%s",
              added ? "added" : "again", log_quote(actor), log_quote(inbox),
              log_quote(shared ? shared : ""));
    if (e->kick)
        e->kick(e->kick_arg);
    rc = 0;
out:
    free(inbox);
    free(shared);
    buf_free(&accept);
    return rc;
}

static int remove_follower(struct ap_inbox_env *e, const char *actor, const char *why)
{
    int r = ap_follower_remove(e->as, actor);
    if (r > 0)
        log_event(LOG_INFO, "follower", "action=removed actor=%s reason=%s", log_quote(actor), why);
    return r < 0 ? -1 : 0;
}

static int reply(struct http_response *rs, int status, const char *text)
{
    return http_response_text(rs, status, text);
}

/*
 * Refusals are logged up to REFUSALS_LOGGED a second; past that they are
 * counted and the count logged once the next second begins, so a flood of
 * forged POSTs cannot flood the log (or the disk under it). Refusals happen
 * on the loop's thread and on the fetch workers: under a lock.
 */
#define REFUSALS_LOGGED 10
static pthread_mutex_t refusal_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t refusal_sec;
static unsigned refusal_n;
static unsigned long refusal_dropped;

/* 1 if this refusal may be logged; *dropped: the count to report first. */
static int refusal_loggable(unsigned long *dropped)
{
    int64_t now = timefmt_now();
    int ok;
    pthread_mutex_lock(&refusal_lock);
    *dropped = 0;
    if (now != refusal_sec) {
        *dropped = refusal_dropped;
        refusal_dropped = 0;
        refusal_sec = now;
        refusal_n = 0;
    }
    ok = refusal_n < REFUSALS_LOGGED;
    if (ok)
        refusal_n++;
    else
        refusal_dropped++;
    pthread_mutex_unlock(&refusal_lock);
    return ok;
}

static int refuse(struct ap_inbox_env *e, struct http_response *rs, const char *client,
                  const char *key_id, const char *why)
{
    unsigned long dropped;
    e->rejected++;
    int ok = refusal_loggable(&dropped);
    if (dropped)
        log_event(LOG_WARN, "inbox", "result=refused not_logged=%lu note=more_than_%d_a_second",
                  dropped, REFUSALS_LOGGED);
    if (ok)
        log_event(LOG_WARN, "inbox", "result=refused client=%s key=%s reason=%s", client,
                  log_quote(key_id ? key_id : ""), log_quote(why));
    return reply(rs, 401, "signature refused");
}

/* The activity, its signature checked: Follow, Undo{Follow}, Delete of the
 * actor; anything else is ignored. doc: the actor's document (Follow). */
static int act_on(struct ap_inbox_env *e, const json_t *act, const json_t *doc,
                  struct http_response *rs)
{
    struct diag why = {0};
    const char *actor = id_of(json_object_get(act, "actor"));
    const char *type = json_string_value(json_object_get(act, "type"));
    const json_t *obj = json_object_get(act, "object");
    const char *otype = json_string_value(json_object_get(obj, "type"));
    int r = 1; /* ignored */
    if (!strcmp(type, "Follow")) {
        r = on_follow(e, act, actor, doc, &why);
    } else if (!strcmp(type, "Undo") && otype && !strcmp(otype, "Follow")) {
        /* Embedded, as Mastodon sends it: a bare id could name a Like. */
        const char *who = id_of(json_object_get(obj, "actor"));
        if (who && !strcmp(who, actor))
            r = remove_follower(e, actor, "undo");
    } else if (!strcmp(type, "Delete") && id_of(obj) && !strcmp(id_of(obj), actor)) {
        r = remove_follower(e, actor, "deleted");
    }
    if (r < 0) {
        log_event(LOG_ERROR, "inbox", "type=%s actor=%s error=%s", log_quote(type),
                  log_quote(actor), log_quote(why.msg[0] ? why.msg : "store"));
        return reply(rs, 500, "try again later");
    }
    if (r == 2)
        return reply(rs, 400, why.msg);
    e->accepted++;
    log_event(r == 0 ? LOG_INFO : LOG_DEBUG, "inbox", "type=%s actor=%s result=%s", log_quote(type),
              log_quote(actor), r == 0 ? "done" : "ignored");
    return reply(rs, 202, "accepted");
}

/* 1 when the activity is a Follow of our actor (its document is needed). */
static int follows_us(const struct ap_inbox_env *e, const json_t *act)
{
    char me[1024];
    const char *type = json_string_value(json_object_get(act, "type"));
    const char *obj = id_of(json_object_get(act, "object"));
    snprintf(me, sizeof me, "%s" AP_PATH_ACTOR, e->cfg->site.url);
    return type && !strcmp(type, "Follow") && obj && !strcmp(obj, me);
}

/* --- fetches off the loop: a few worker threads --------------------------------- */

/* One request waiting for a fetch. The worker reads the inputs and fills the
 * outputs; everything else is the loop thread's. */
struct ap_job {
    struct ap_job *next;
    struct http_ticket *ticket;
    const struct http_request *rq; /* valid while the request is suspended */
    struct httpsig_header hv[MAXHDR];
    size_t nh;
    struct httpsig_parsed sig;
    json_t *act;
    /* the worker's inputs */
    struct ap_getter g; /* its own copies (a reload or a rotation may free ours) */
    int need_key;       /* fetch sig.key_id */
    char *actor;        /* fetch this actor's document too (a Follow); NULL: no */
    /* the worker's outputs */
    int key_failed;
    char *owner, *pem;
    json_t *doc; /* the actor's document, if fetched */
    struct diag why;
};

static void job_free(struct ap_job *j)
{
    if (!j)
        return;
    json_decref(j->act);
    json_decref(j->doc);
    EVP_PKEY_free(j->g.key);
    free((char *)j->g.key_id);
    free((char *)j->g.site_url);
    free(j->actor);
    free(j->owner);
    free(j->pem);
    free(j);
}

static void *worker(void *arg)
{
    struct ap_inbox_env *e = arg;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!e->queue && !e->stopping)
            pthread_cond_wait(&e->cv, &e->mu);
        if (e->stopping)
            break;
        struct ap_job *j = e->queue;
        e->queue = j->next;
        pthread_mutex_unlock(&e->mu);

        json_t *kdoc = NULL;
        if (j->need_key && fetch_key(&j->g, j->sig.key_id, &j->owner, &j->pem, &kdoc, &j->why) < 0)
            j->key_failed = 1;
        if (!j->key_failed && j->actor) {
            if (kdoc && id_of(kdoc) && !strcmp(id_of(kdoc), j->actor)) {
                j->doc = kdoc; /* the key's document is the actor's, as usual */
                kdoc = NULL;
            } else {
                struct diag ignored = {0}; /* act_on says what is missing */
                j->doc = ap_signed_get(&j->g, j->actor, &ignored);
            }
        }
        json_decref(kdoc);

        pthread_mutex_lock(&e->mu);
        j->next = e->done;
        e->done = j;
        uint64_t one = 1;
        if (write(e->efd, &one, sizeof one) < 0) { /* the counter is full: it is readable */
        }
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

int ap_inbox_start(struct ap_inbox_env *e, struct diag *err)
{
    e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->efd < 0 || pthread_mutex_init(&e->mu, NULL) != 0) {
        diag_set(err, 0, 0, "inbox: %s", strerror(errno));
        return -1;
    }
    if (pthread_cond_init(&e->cv, NULL) != 0) {
        pthread_mutex_destroy(&e->mu);
        diag_set(err, 0, 0, "inbox: %s", strerror(errno));
        return -1;
    }
    e->started = 1;
    for (e->nworkers = 0; e->nworkers < AP_INBOX_WORKERS; e->nworkers++)
        if (pthread_create(&e->workers[e->nworkers], NULL, worker, e) != 0)
            break;
    if (!e->nworkers) {
        diag_set(err, 0, 0, "inbox: no worker thread");
        return -1;
    }
    return 0;
}

void ap_inbox_stop(struct ap_inbox_env *e)
{
    if (!e->started)
        return;
    pthread_mutex_lock(&e->mu);
    atomic_store(&e->stopping, 1);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    for (size_t i = 0; i < e->nworkers; i++)
        pthread_join(e->workers[i], NULL);
    /* Their requests stay suspended: http_stop answers them 503. */
    for (struct ap_job *lists[2] = {e->queue, e->done}, **l = lists; l < lists + 2; l++)
        while (*l) {
            struct ap_job *j = *l;
            *l = j->next;
            job_free(j);
        }
    e->queue = e->done = NULL;
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    if (e->efd >= 0)
        close(e->efd);
    e->efd = -1;
    e->started = 0;
}

/* The loop's part of a finished job: check, act, answer. */
static void finish_job(struct ap_inbox_env *e, struct ap_job *j)
{
    struct http_response rs;
    struct httpsig_request req = {.method = j->rq->method,
                                  .target = j->rq->path,
                                  .headers = j->hv,
                                  .nheaders = j->nh,
                                  .body = j->rq->body,
                                  .body_len = j->rq->body_len};
    const char *actor = id_of(json_object_get(j->act, "actor"));
    http_response_prepare(&rs);
    int rc = 0;
    if (j->need_key) {
        struct diag why = {0};
        int v = j->key_failed ? HTTPSIG_E_SIGNATURE : verify_pem(&j->sig, &req, j->pem, &why);
        if (j->key_failed)
            rc = refuse(e, &rs, j->rq->client, j->sig.key_id, j->why.msg);
        else if (v != HTTPSIG_OK)
            rc = refuse(e, &rs, j->rq->client, j->sig.key_id,
                        why.msg[0] ? why.msg : httpsig_result_name(v));
        else if (strcmp(j->owner, actor))
            rc = refuse(e, &rs, j->rq->client, j->sig.key_id,
                        "the key's owner is not the activity's actor");
        else {
            ap_key_put(e->as, j->sig.key_id, j->owner, j->pem, timefmt_now()); /* a cache */
            rc = act_on(e, j->act, j->doc, &rs);
        }
    } else {
        rc = act_on(e, j->act, j->doc, &rs);
    }
    if (rc < 0) {
        http_response_release(&rs);
        http_response_prepare(&rs);
        rs.status = 500;
    }
    http_resume(j->ticket, &rs);
    http_response_release(&rs);
}

void ap_inbox_done(struct ap_inbox_env *e)
{
    uint64_t n;
    if (!e->started || read(e->efd, &n, sizeof n) < 0)
        return;
    pthread_mutex_lock(&e->mu);
    struct ap_job *done = e->done;
    e->done = NULL;
    pthread_mutex_unlock(&e->mu);
    while (done) {
        struct ap_job *j = done;
        done = j->next;
        finish_job(e, j);
        job_free(j);
    }
}

int ap_inbox_fd(const struct ap_inbox_env *e)
{
    return e->started ? e->efd : -1;
}

/* Hands the request to a worker: HTTP_SUSPEND, or an answer now. */
static enum http_verdict submit(struct ap_inbox_env *e, const struct http_request *rq,
                                struct http_response *rs, const struct httpsig_header *hv,
                                size_t nh, const struct httpsig_parsed *sig, json_t *act,
                                int need_key, const char *actor_doc)
{
    struct ap_job *j = calloc(1, sizeof *j);
    if (!j || !e->started || (actor_doc && !(j->actor = strdup(actor_doc))) ||
        !(j->g.key_id = strdup(e->key_id)) || !(j->g.site_url = strdup(e->cfg->site.url))) {
        job_free(j);
        json_decref(act);
        return reply(rs, 503, "busy, try again") < 0 ? HTTP_ERROR : HTTP_DONE;
    }
    EVP_PKEY_up_ref(e->key);
    j->g.key = e->key;
    j->g.allow_loopback = e->cfg->activitypub.allow_insecure_loopback;
    j->g.ca_file = e->ca_file;
    j->g.cancel = &e->stopping;
    j->rq = rq;
    memcpy(j->hv, hv, nh * sizeof *hv);
    j->nh = nh;
    j->sig = *sig;
    j->act = act;
    j->need_key = need_key;
    if (!(j->ticket = http_suspend(rq))) {
        job_free(j);
        return reply(rs, 503, "busy, try again") < 0 ? HTTP_ERROR : HTTP_DONE;
    }
    pthread_mutex_lock(&e->mu);
    struct ap_job **tail = &e->queue;
    while (*tail)
        tail = &(*tail)->next;
    *tail = j;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return HTTP_SUSPEND;
}

int ap_inbox_parse(const char *body, size_t len, json_t **act, const char **actor,
                   const char **type)
{
    *act = NULL;
    *actor = *type = NULL;
    if (!ap_json_depth_ok(body ? body : "", len, AP_INBOX_MAX_DEPTH))
        return AP_PARSE_DEEP;
    json_error_t je;
    json_t *a = json_loadb(body ? body : "", len, 0, &je);
    const char *ac = a ? id_of(json_object_get(a, "actor")) : NULL;
    const char *ty = a ? json_string_value(json_object_get(a, "type")) : NULL;
    if (!ac || !ty) {
        json_decref(a);
        return AP_PARSE_NOT_ACTIVITY;
    }
    *act = a;
    *actor = ac;
    *type = ty;
    return AP_PARSE_OK;
}

enum http_verdict ap_inbox_post(const struct http_request *rq, struct http_response *rs, void *arg)
{
    struct ap_inbox_env *e = arg;
    struct httpsig_header hv[MAXHDR];
    struct httpsig_parsed sig;
    struct diag why = {0};
    size_t nh = 0;
    for (size_t i = 0; i < NKNOWN; i++) {
        const char *v = http_header(rq, known_headers[i]);
        if (v)
            hv[nh++] = (struct httpsig_header){known_headers[i], v};
    }
    struct httpsig_request req = {.method = rq->method,
                                  .target = rq->path,
                                  .headers = hv,
                                  .nheaders = nh,
                                  .body = rq->body,
                                  .body_len = rq->body_len};
    int rc = httpsig_parse(&req, &sig, &why);
    if (rc != HTTPSIG_OK)
        return refuse(e, rs, rq->client, NULL, why.msg[0] ? why.msg : "unsigned") < 0 ? HTTP_ERROR
                                                                                      : HTTP_DONE;
    for (size_t c = 0; c < sig.ncomp; c++) { /* covered headers not known above */
        const char *name = sig.comp[c];
        int have = name[0] == '@' || name[0] == '(';
        for (size_t i = 0; i < nh && !have; i++)
            have = !strcasecmp(hv[i].name, name);
        const char *v = have ? NULL : http_header(rq, name);
        if (v && nh < MAXHDR)
            hv[nh++] = (struct httpsig_header){name, v};
    }
    req.nheaders = nh;

    json_t *act;
    const char *actor, *type;
    int pr = ap_inbox_parse(rq->body, rq->body_len, &act, &actor, &type);
    if (pr == AP_PARSE_DEEP)
        return reply(rs, 400, "JSON nested too deep") < 0 ? HTTP_ERROR : HTTP_DONE;
    if (pr == AP_PARSE_NOT_ACTIVITY)
        return reply(rs, 400, "not an activity (actor and type are needed)") < 0 ? HTTP_ERROR
                                                                                 : HTTP_DONE;

    /* Everything but the signature first (coverage, Date, digests): the
     * verifier checks them before the key, so with any key (ours) a result
     * other than "does not verify" is final, and a stale or tampered request
     * costs no fetch. */
    rc = httpsig_verify(&sig, &req, e->key, timefmt_now(), NULL, &why);
    if (rc != HTTPSIG_OK && rc != HTTPSIG_E_SIGNATURE) {
        json_decref(act);
        return refuse(e, rs, rq->client, sig.key_id, why.msg[0] ? why.msg : "refused") < 0
                   ? HTTP_ERROR
                   : HTTP_DONE;
    }
    memset(&why, 0, sizeof why);

    /* A cached key that verifies needs no fetch; otherwise (none, or a key
     * that no longer verifies: rotated) a worker fetches it. */
    char *owner = NULL, *pem = NULL;
    int cached = ap_key_get(e->as, sig.key_id, &owner, &pem, NULL);
    if (cached < 0) {
        json_decref(act);
        return HTTP_ERROR;
    }
    rc = cached ? verify_pem(&sig, &req, pem, &why) : HTTPSIG_E_SIGNATURE;
    free(pem);
    if (rc == HTTPSIG_E_SIGNATURE) {
        free(owner);
        return submit(e, rq, rs, hv, nh, &sig, act, 1, follows_us(e, act) ? actor : NULL);
    }
    int r;
    if (rc != HTTPSIG_OK)
        r = refuse(e, rs, rq->client, sig.key_id, why.msg[0] ? why.msg : httpsig_result_name(rc));
    else if (strcmp(owner, actor))
        r = refuse(e, rs, rq->client, sig.key_id, "the key's owner is not the activity's actor");
    else if (follows_us(e, act)) { /* the follower's inboxes: its document */
        free(owner);
        return submit(e, rq, rs, hv, nh, &sig, act, 0, actor);
    } else
        r = act_on(e, act, NULL, rs);
    free(owner);
    json_decref(act);
    return r < 0 ? HTTP_ERROR : HTTP_DONE;
}
