/*
 * ap_inbox: the actor's inbox (see ap_inbox.h): HTTP signature checks with
 * fetched and cached keys, then Follow, Undo{Follow} and Delete.
 */
#include "ap_inbox.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

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

json_t *ap_signed_get(const struct ap_inbox_env *e, const char *url, struct diag *why)
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
    if (ap_fetch_url_ok(url, e->cfg->activitypub.allow_insecure_loopback, why) < 0)
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
    if (httpsig_sign(e->key, e->key_id, &r, &out, why) != HTTPSIG_OK)
        goto out;
    struct ap_fetch_opts o = {.allow_insecure_loopback =
                                  e->cfg->activitypub.allow_insecure_loopback,
                              .version = NASHRA_VERSION,
                              .site_url = e->cfg->site.url,
                              .ca_file = e->ca_file};
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

/*
 * Fetches key_id (its URL without the fragment): an actor document whose
 * publicKey (an object, or an array of them) holds the key with that id, or
 * the key object itself. The owner must be a URL of the key's origin (a key
 * document elsewhere cannot speak for an actor). *doc gets the fetched
 * document (the actor, usually: the Follow needs its inboxes).
 */
static int fetch_key(const struct ap_inbox_env *e, const char *key_id, char **owner, char **pem,
                     json_t **doc, struct diag *why)
{
    char url[HTTPSIG_MAX_KEYID];
    snprintf(url, sizeof url, "%s", key_id);
    char *hash = strchr(url, '#');
    if (hash)
        *hash = '\0';
    json_t *d = ap_signed_get(e, url, why);
    if (!d)
        return -1;
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
        diag_set(why, 0, 0, "%s: no public key %s there", url, key_id);
        json_decref(d);
        return -1;
    }
    if (!same_origin(o, key_id)) {
        diag_set(why, 0, 0, "key %s claims an owner elsewhere (%s)", key_id, o);
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

/* The inboxes of actor: from doc when it is that actor, else fetched. */
static int actor_inboxes(const struct ap_inbox_env *e, const char *actor, json_t *doc, char **inbox,
                         char **shared, struct diag *why)
{
    json_t *mine = NULL;
    if (!doc || !id_of(doc) || strcmp(id_of(doc), actor)) {
        if (!(mine = ap_signed_get(e, actor, why)))
            return -1;
        doc = mine;
    }
    const char *in = json_string_value(json_object_get(doc, "inbox"));
    const char *sh =
        json_string_value(json_object_get(json_object_get(doc, "endpoints"), "sharedInbox"));
    int allow = e->cfg->activitypub.allow_insecure_loopback;
    struct diag ignored = {0};
    if (!in || ap_fetch_url_ok(in, allow, why) < 0) {
        if (!in)
            diag_set(why, 0, 0, "%s: no usable inbox", actor);
        json_decref(mine);
        return -1;
    }
    if (sh && ap_fetch_url_ok(sh, allow, &ignored) < 0)
        sh = NULL;
    *inbox = strdup(in);
    *shared = sh ? strdup(sh) : NULL;
    json_decref(mine);
    return *inbox ? 0 : -1;
}

static int on_follow(struct ap_inbox_env *e, const json_t *act, const char *actor, json_t *doc,
                     struct diag *why)
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
    if (actor_inboxes(e, actor, doc, &inbox, &shared, why) < 0)
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

static enum http_verdict reply(struct http_response *rs, int status, const char *text)
{
    return http_response_text(rs, status, text) < 0 ? HTTP_ERROR : HTTP_DONE;
}

static enum http_verdict refuse(struct ap_inbox_env *e, struct http_response *rs,
                                const char *rq_client, const char *key_id, const char *why)
{
    e->rejected++;
    log_event(LOG_WARN, "inbox", "result=refused client=%s key=%s reason=%s", rq_client,
              log_quote(key_id ? key_id : ""), log_quote(why));
    return reply(rs, 401, "signature refused");
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
        return refuse(e, rs, rq->client, NULL, why.msg[0] ? why.msg : "unsigned");
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

    if (!ap_json_depth_ok(rq->body, rq->body_len, AP_INBOX_MAX_DEPTH))
        return reply(rs, 400, "JSON nested too deep");
    json_error_t je;
    json_t *act = json_loadb(rq->body, rq->body_len, 0, &je);
    const char *actor = act ? id_of(json_object_get(act, "actor")) : NULL;
    const char *type = act ? json_string_value(json_object_get(act, "type")) : NULL;
    if (!actor || !type) {
        json_decref(act);
        return reply(rs, 400, "not an activity (actor and type are needed)");
    }

    /* Everything but the signature first (coverage, Date, digests): the
     * verifier checks them before the key, so with any key (ours) a result
     * other than "does not verify" is final, and a stale or tampered request
     * costs no fetch. */
    rc = httpsig_verify(&sig, &req, e->key, timefmt_now(), NULL, &why);
    if (rc != HTTPSIG_OK && rc != HTTPSIG_E_SIGNATURE) {
        json_decref(act);
        return refuse(e, rs, rq->client, sig.key_id, why.msg[0] ? why.msg : "refused");
    }
    memset(&why, 0, sizeof why);

    /* The key: cached, or fetched; a cached one that fails is fetched again. */
    char *owner = NULL, *pem = NULL;
    json_t *doc = NULL;
    int cached = ap_key_get(e->as, sig.key_id, &owner, &pem, NULL);
    int fetched = 0;
    enum http_verdict v;
    if (cached < 0) {
        v = HTTP_ERROR;
        goto out;
    }
    rc = cached ? verify_pem(&sig, &req, pem, &why) : HTTPSIG_E_SIGNATURE;
    if (rc == HTTPSIG_E_SIGNATURE) {
        free(owner);
        free(pem);
        owner = pem = NULL;
        if (fetch_key(e, sig.key_id, &owner, &pem, &doc, &why) < 0) {
            v = refuse(e, rs, rq->client, sig.key_id, why.msg);
            goto out;
        }
        fetched = 1;
        memset(&why, 0, sizeof why);
        rc = verify_pem(&sig, &req, pem, &why);
    }
    if (rc != HTTPSIG_OK) {
        v = refuse(e, rs, rq->client, sig.key_id, why.msg[0] ? why.msg : httpsig_result_name(rc));
        goto out;
    }
    if (strcmp(owner, actor)) {
        v = refuse(e, rs, rq->client, sig.key_id, "the key's owner is not the activity's actor");
        goto out;
    }
    if (fetched)
        ap_key_put(e->as, sig.key_id, owner, pem, timefmt_now()); /* a cache: best effort */

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
        v = reply(rs, 500, "try again later");
        goto out;
    }
    if (r == 2) {
        v = reply(rs, 400, why.msg);
        goto out;
    }
    e->accepted++;
    log_event(r == 0 ? LOG_INFO : LOG_DEBUG, "inbox", "type=%s actor=%s result=%s", log_quote(type),
              log_quote(actor), r == 0 ? "done" : "ignored");
    v = reply(rs, 202, "accepted");
out:
    json_decref(act);
    json_decref(doc);
    free(owner);
    free(pem);
    return v;
}
