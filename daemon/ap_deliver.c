/*
 * ap_deliver: announcements into activities, and the ActivityPub delivery
 * queue drained through libcurl multi on the daemon's loop (see
 * ap_deliver.h).
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: each goes
 * to loop_add with the events curl wants) and when to call it back
 * (CURLMOPT_TIMERFUNCTION: a deadline the tick honours); a ready socket
 * calls curl_multi_socket_action for that socket only. Finished transfers
 * are read with curl_multi_info_read and their outcome written at once.
 *
 * The queue is read in (activity, inbox) order in batches, as the mail
 * sender reads its own: what is in flight is skipped when a batch is
 * fetched, never later. Each request is signed as it starts (the signature
 * covers its Date and the body's digest); an activity's body is loaded once
 * and shared by its requests.
 */
#include "ap_deliver.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../ap/docs.h"
#include "../ap/fetch.h"
#include "../ap/httpsig.h"
#include "../lib/buf.h"
#include "../lib/log.h"
#include "../lib/timefmt.h"
#include "../store/ap_store.h"
#include "ap_http.h"
#include "loop.h"

#define BATCH           256
#define BACKOFF_FIRST   60
#define BACKOFF_MAX     (12 * 3600)
#define REQ_TIMEOUT_MS  30000L
#define CONN_TIMEOUT_MS 10000L
#define RESP_MAX        (64 * 1024) /* what we read of an answer (for the log) */
#define ACTIVITY_MAX    (4u << 20)
#define KEEP_DONE       (30 * 24 * 3600) /* finished deliveries are kept this long */

/* An activity's body, shared by the requests that carry it. */
struct body {
    int64_t id;
    char *data;
    size_t len;
    int refs;
    struct body *next;
};

struct flight {
    CURL *easy;
    struct curl_slist *hdrs;
    struct body *body;
    int64_t activity;
    char *inbox;
    int attempts;
    int64_t created;
    int refused_addr;
    int allow_loopback;
    size_t got;
    char resp[256]; /* the answer's first bytes, for the log */
    char err[CURL_ERROR_SIZE];
    /* signing (on a signer thread when there are some) */
    struct flight *qnext; /* in the signers' queue or done list */
    EVP_PKEY *key;        /* a reference: a rotation may free the deliverer's */
    char target[AP_FETCH_MAX_URL], hostport[1024];
    int64_t now;
    struct httpsig_out out;
    int sign_rc;
    struct diag sign_why;
};

struct ap_deliver {
    const struct config *cfg;
    struct store *st;
    struct ap_store *as;
    struct loop *loop;
    EVP_PKEY *key;
    char *key_id;
    CURLM *multi;
    int64_t timer_at; /* loop ms when curl wants its timeout call, 0: none */

    /* Signer threads: signing is the CPU cost of a delivery, and the loop's
     * thread has the rest to do (curl, the store). 0 threads: inline. */
    pthread_t signers[AP_DELIVER_SIGNERS];
    size_t nsigners;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sig_stop;
    int sig_efd;
    int sig_ready;                       /* mu and cv made */
    struct flight *sig_queue, *sig_done; /* under mu */

    struct flight *fl[AP_DELIVER_CONCURRENCY];
    size_t nfl;
    struct body *bodies;

    struct ap_delivery *batch;
    size_t nbatch, next;
    int64_t after_activity;
    char *after_inbox; /* NULL: from the start */
    int queue_empty;

    int64_t backoff;
    int64_t retry_at; /* unix seconds of the next retry (1: look now), 0 if none */
    uint64_t sent, failed, retried, activities;
};

/* --- curl on the loop ------------------------------------------------------ */

static void reap(struct ap_deliver *d);
static void pump(struct ap_deliver *d);
static void *signer(void *arg);
static void on_signed(struct loop *l, int fd, uint32_t events, void *arg);

static void on_socket(struct loop *l, int fd, uint32_t events, void *arg)
{
    struct ap_deliver *d = arg;
    int running = 0, flags = 0;
    (void)l;
    if (events & EPOLLIN)
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        flags |= CURL_CSELECT_ERR;
    curl_multi_socket_action(d->multi, fd, flags, &running);
    reap(d);
    pump(d);
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct ap_deliver *d = userp;
    (void)e;
    (void)socketp;
    loop_del(d->loop, s); /* ENOENT the first time: fine */
    if (what == CURL_POLL_REMOVE)
        return 0;
    uint32_t ev = 0;
    if (what & CURL_POLL_IN)
        ev |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev |= EPOLLOUT;
    if (loop_add(d->loop, s, ev, on_socket, d) < 0)
        log_event(LOG_ERROR, "ap_deliver", "error=loop_add fd=%d", (int)s);
    return 0;
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    struct ap_deliver *d = userp;
    (void)m;
    d->timer_at = timeout_ms < 0 ? 0 : loop_now_ms() + timeout_ms;
    return 0;
}

/* The address policy of ap/fetch for deliveries too: an inbox URL comes
 * from a remote document and must not reach into our network. */
static curl_socket_t on_opensocket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct flight *f = ud;
    if (purpose != CURLSOCKTYPE_IPCXN || !ap_fetch_addr_ok(&a->addr, f->allow_loopback)) {
        f->refused_addr = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static size_t on_write(char *ptr, size_t size, size_t n, void *ud)
{
    struct flight *f = ud;
    size_t len = size * n;
    if (f->got < sizeof f->resp - 1) {
        size_t k = len < sizeof f->resp - 1 - f->got ? len : sizeof f->resp - 1 - f->got;
        memcpy(f->resp + f->got, ptr, k);
        f->resp[f->got + k] = '\0';
    }
    f->got += len;
    return f->got > RESP_MAX ? 0 : len;
}

/* --- setup ----------------------------------------------------------------- */

struct ap_deliver *ap_deliver_new(const struct config *cfg, struct store *st, struct loop *loop,
                                  EVP_PKEY *key, const char *key_id, struct diag *err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        diag_set(err, 0, 0, "libcurl could not start");
        return NULL;
    }
    struct ap_deliver *d = calloc(1, sizeof *d);
    if (!d) {
        curl_global_cleanup();
        diag_set(err, 0, 0, "out of memory");
        return NULL;
    }
    d->cfg = cfg;
    d->st = st;
    d->loop = loop;
    d->key = key;
    if (!(d->key_id = strdup(key_id)) || !(d->as = ap_store_new(st)) ||
        !(d->multi = curl_multi_init())) {
        diag_set(err, 0, 0, "activitypub delivery: %s", store_errmsg(st));
        goto fail;
    }
    /* Like the mail sender: a first start on a site with a history sends
     * nothing of it; later the cursor is kept across restarts. */
    int64_t last = store_last_seq(st);
    int r = last < 0 ? -1 : ap_cursor_init(d->as, last);
    if (r < 0) {
        diag_set(err, 0, 0, "activitypub cursor: %s", store_errmsg(st));
        goto fail;
    }
    if (r > 0 && last > 0)
        log_event(LOG_INFO, "ap_deliver", "cursor=%lld note=earlier_announcements_not_sent",
                  (long long)last);
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
    curl_multi_setopt(d->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)AP_DELIVER_CONCURRENCY);
    curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)AP_DELIVER_CONCURRENCY);
    /* The signers; without them (no thread, no eventfd) requests are signed
     * on the loop's thread. */
    d->sig_efd = -1;
    if (pthread_mutex_init(&d->mu, NULL) == 0) {
        if (pthread_cond_init(&d->cv, NULL) != 0)
            pthread_mutex_destroy(&d->mu);
        else if ((d->sig_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) >= 0 &&
                 loop_add(loop, d->sig_efd, EPOLLIN, on_signed, d) == 0) {
            d->sig_ready = 1;
            while (d->nsigners < AP_DELIVER_SIGNERS &&
                   pthread_create(&d->signers[d->nsigners], NULL, signer, d) == 0)
                d->nsigners++;
        } else {
            d->sig_ready = 1; /* destroyed in ap_deliver_free */
        }
    }
    d->retry_at = 1; /* look at the queue once: what a restart left */
    const char *bo = getenv(AP_BACKOFF_ENV);
    char *end = NULL;
    long long b = bo && *bo ? strtoll(bo, &end, 10) : -1;
    d->backoff = end && *end == '\0' && b >= 1 && b <= 3600 ? b : BACKOFF_FIRST;
    return d;
fail:
    ap_deliver_free(d);
    return NULL;
}

static void body_put(struct ap_deliver *d, struct body *b)
{
    if (!b || --b->refs > 0)
        return;
    for (struct body **p = &d->bodies; *p; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            break;
        }
    free(b->data);
    free(b);
}

static void flight_free(struct ap_deliver *d, struct flight *f)
{
    if (!f)
        return;
    if (f->easy) {
        curl_multi_remove_handle(d->multi, f->easy);
        curl_easy_cleanup(f->easy);
    }
    curl_slist_free_all(f->hdrs);
    httpsig_out_free(&f->out);
    EVP_PKEY_free(f->key);
    body_put(d, f->body);
    free(f->inbox);
    free(f);
}

void ap_deliver_free(struct ap_deliver *d)
{
    if (!d)
        return;
    if (d->sig_ready) {
        pthread_mutex_lock(&d->mu);
        d->sig_stop = 1;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        for (size_t i = 0; i < d->nsigners; i++)
            pthread_join(d->signers[i], NULL);
    }
    if (d->sig_efd >= 0) {
        loop_del(d->loop, d->sig_efd);
        close(d->sig_efd);
    }
    /* Every flight, queued for signing or signed, is in fl. */
    for (size_t i = 0; i < d->nfl; i++)
        flight_free(d, d->fl[i]); /* stays pending in the store: sent again later */
    if (d->multi)
        curl_multi_cleanup(d->multi);
    ap_due_free(d->batch, d->nbatch);
    free(d->after_inbox);
    ap_store_free(d->as);
    free(d->key_id);
    if (d->sig_ready) {
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
    }
    free(d);
    curl_global_cleanup();
}

void ap_deliver_config(struct ap_deliver *d, const struct config *cfg)
{
    if (d)
        d->cfg = cfg;
}

void ap_deliver_stats(struct ap_deliver *d, struct ap_deliver_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!d)
        return;
    out->sent = d->sent;
    out->failed = d->failed;
    out->retried = d->retried;
    out->activities = d->activities;
    out->inflight = d->nfl;
    out->followers = ap_followers_count(d->as);
    out->pending = ap_pending_count(d->as);
}

void ap_deliver_set_key(struct ap_deliver *d, EVP_PKEY *key)
{
    d->key = key;
}

void ap_deliver_kick(void *arg)
{
    struct ap_deliver *d = arg;
    d->queue_empty = 0;
}

/* --- announcements into activities ---------------------------------------- */

struct ann_walk {
    struct ap_deliver *d;
    int64_t last;
    int failed;
    int any_followers;
    struct buf act;
};

static int on_announcement(void *arg, int64_t seq, int64_t ts, const char *kind, const char *slug)
{
    struct ann_walk *w = arg;
    struct ap_deliver *d = w->d;
    w->last = seq;
    if (!w->any_followers)
        return 0;
    buf_reset(&w->act);
    int rc = 0;
    const char *what;
    if (!strcmp(kind, "removed")) {
        char *url = ap_announcement_url(d->as, seq);
        rc = url ? ap_delete(d->cfg, url, ts, &w->act) : -1;
        free(url);
        what = "Delete";
    } else {
        struct post *p = store_published_slug(d->st, slug);
        if (!p)
            return 0; /* gone again since: its removal says so */
        if (!p->html && store_post_html(d->st, p) < 0)
            rc = -1;
        else if (!strcmp(kind, "published"))
            rc = ap_create(d->cfg, p, &w->act);
        else
            rc = ap_update(d->cfg, p, ts, &w->act);
        what = !strcmp(kind, "published") ? "Create" : "Update";
        post_free(p);
    }
    if (rc < 0) {
        log_event(LOG_ERROR, "ap_deliver", "seq=%lld slug=%s error=activity_not_built",
                  (long long)seq, log_quote(slug));
        return 0; /* skipped, not retried forever */
    }
    int64_t n = 0, id = ap_enqueue_followers(d->as, buf_str(&w->act), timefmt_now(), &n);
    if (id < 0) {
        w->failed = 1;
        return 1;
    }
    if (id > 0) {
        d->activities++;
        log_event(LOG_INFO, "activity", "type=%s slug=%s activity=%lld inboxes=%lld", what,
                  log_quote(slug), (long long)id, (long long)n);
        d->queue_empty = 0;
    }
    return 0;
}

static int take_announcements(struct ap_deliver *d)
{
    struct ann_walk w = {.d = d, .last = ap_cursor_get(d->as)};
    int64_t from = w.last, nf = ap_followers_count(d->as);
    w.any_followers = nf > 0;
    buf_init(&w.act, ACTIVITY_MAX);
    if (nf < 0 || store_begin(d->st) < 0) {
        buf_free(&w.act);
        return -1;
    }
    if (store_announcements(d->st, from, 0, 0, on_announcement, &w) < 0 || w.failed ||
        (w.last != from && ap_cursor_put(d->as, w.last) < 0) || store_commit(d->st) < 0) {
        log_event(LOG_ERROR, "ap_deliver", "error=%s", log_quote(store_errmsg(d->st)));
        store_rollback(d->st);
        buf_free(&w.act);
        return -1;
    }
    buf_free(&w.act);
    if (w.last != from && ap_prune(d->as, timefmt_now() - KEEP_DONE) < 0)
        log_event(LOG_ERROR, "ap_deliver", "prune=failed error=%s", log_quote(store_errmsg(d->st)));
    return 0;
}

void ap_deliver_announced(void *arg, int64_t last_seq)
{
    (void)last_seq;
    take_announcements(arg);
}

/* --- the queue ---------------------------------------------------------------- */

static int in_flight(const struct ap_deliver *d, int64_t activity, const char *inbox)
{
    for (size_t i = 0; i < d->nfl; i++)
        if (d->fl[i]->activity == activity && !strcmp(d->fl[i]->inbox, inbox))
            return 1;
    return 0;
}

/* The next due delivery not in flight (ownership of its inbox passes to the
 * caller), or 0 when there is none now. */
static int next_due(struct ap_deliver *d, struct ap_delivery *out)
{
    int from_start = !d->after_inbox;
    for (;;) {
        if (d->next < d->nbatch) {
            *out = d->batch[d->next];
            d->batch[d->next++].inbox = NULL;
            return 1;
        }
        ap_due_free(d->batch, d->nbatch);
        d->batch = NULL;
        d->nbatch = d->next = 0;
        if (ap_due(d->as, timefmt_now(), d->after_activity, d->after_inbox, BATCH, &d->batch,
                   &d->nbatch) < 0) {
            log_event(LOG_ERROR, "ap_deliver", "error=%s", log_quote(store_errmsg(d->st)));
            d->queue_empty = 1; /* looked at again in a second */
            d->retry_at = timefmt_now() + 1;
            return 0;
        }
        if (d->nbatch == 0) {
            free(d->after_inbox);
            d->after_inbox = NULL;
            if (from_start) {
                d->queue_empty = 1;
                return 0;
            }
            from_start = 1;
            continue;
        }
        char *last = strdup(d->batch[d->nbatch - 1].inbox);
        if (!last)
            return 0;
        free(d->after_inbox);
        d->after_inbox = last;
        d->after_activity = d->batch[d->nbatch - 1].activity;
        size_t k = 0;
        for (size_t i = 0; i < d->nbatch; i++) {
            if (in_flight(d, d->batch[i].activity, d->batch[i].inbox))
                free(d->batch[i].inbox);
            else
                d->batch[k++] = d->batch[i];
        }
        d->nbatch = k;
    }
}

static struct body *body_get(struct ap_deliver *d, int64_t id)
{
    for (struct body *b = d->bodies; b; b = b->next)
        if (b->id == id) {
            b->refs++;
            return b;
        }
    struct body *b = calloc(1, sizeof *b);
    if (!b || !(b->data = ap_activity_body(d->as, id))) {
        free(b);
        return NULL;
    }
    b->id = id;
    b->len = strlen(b->data);
    b->refs = 1;
    b->next = d->bodies;
    d->bodies = b;
    return b;
}

static void finish(struct ap_deliver *d, struct flight *f, long code, const char *why);

static void sign_flight(struct flight *f, const char *key_id)
{
    struct httpsig_sign_req r = {.method = "POST",
                                 .target = f->target,
                                 .host = f->hostport,
                                 .content_type = "application/activity+json",
                                 .body = f->body->data,
                                 .body_len = f->body->len,
                                 .now = f->now};
    f->sign_rc = httpsig_sign(f->key, key_id, &r, &f->out, &f->sign_why);
}

static void *signer(void *arg)
{
    struct ap_deliver *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->sig_queue && !d->sig_stop)
            pthread_cond_wait(&d->cv, &d->mu);
        if (d->sig_stop)
            break;
        struct flight *f = d->sig_queue;
        d->sig_queue = f->qnext;
        pthread_mutex_unlock(&d->mu);
        sign_flight(f, d->key_id); /* key_id never changes */
        pthread_mutex_lock(&d->mu);
        f->qnext = d->sig_done;
        d->sig_done = f;
        uint64_t one = 1;
        if (write(d->sig_efd, &one, sizeof one) < 0) { /* full: readable anyway */
        }
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* Drops f from the flights (it has not reached curl). */
static void unfly(struct ap_deliver *d, struct flight *f)
{
    for (size_t i = 0; i < d->nfl; i++)
        if (d->fl[i] == f) {
            d->fl[i] = d->fl[--d->nfl];
            return;
        }
}

/* A signed f to curl; its outcome is written when it cannot start. */
static void launch(struct ap_deliver *d, struct flight *f)
{
    char ua[512];
    if (f->sign_rc != HTTPSIG_OK) {
        unfly(d, f);
        finish(d, f, 0, f->sign_why.msg);
        return;
    }
    snprintf(ua, sizeof ua, "User-Agent: nashra/%s (+%s)", NASHRA_VERSION, d->cfg->site.url);
    for (size_t i = 0; i < f->out.n; i++)
        if (!(f->hdrs = curl_slist_append(f->hdrs, f->out.line[i])))
            goto oom;
    if (!(f->hdrs = curl_slist_append(f->hdrs, ua)) ||
        !(f->hdrs = curl_slist_append(f->hdrs, "Accept: application/activity+json")) ||
        !(f->hdrs = curl_slist_append(f->hdrs, "Expect:")) || !(f->easy = curl_easy_init()))
        goto oom;
    CURL *c = f->easy;
    curl_easy_setopt(c, CURLOPT_URL, f->inbox);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, f->allow_loopback ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, REQ_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONN_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, f->body->data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)f->body->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, f->hdrs);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, f);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, f->err);
    curl_easy_setopt(c, CURLOPT_PRIVATE, f);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    if (curl_multi_add_handle(d->multi, c) != CURLM_OK)
        goto oom;
    return;
oom:
    if (f->easy) {
        curl_easy_cleanup(f->easy);
        f->easy = NULL;
    }
    unfly(d, f);
    finish(d, f, -1, "out of memory"); /* a local failure: tried again later */
}

/* Signed flights back from the signers. */
static void on_signed(struct loop *l, int fd, uint32_t events, void *arg)
{
    struct ap_deliver *d = arg;
    uint64_t n;
    (void)l;
    (void)events;
    if (read(fd, &n, sizeof n) < 0)
        return;
    pthread_mutex_lock(&d->mu);
    struct flight *done = d->sig_done;
    d->sig_done = NULL;
    pthread_mutex_unlock(&d->mu);
    while (done) {
        struct flight *f = done;
        done = f->qnext;
        launch(d, f);
    }
    pump(d);
}

/* Prepares one request and has it signed (by a signer, or here); -1 when it
 * could not start (the delivery has its outcome then). */
static int start(struct ap_deliver *d, struct ap_delivery *dl)
{
    struct flight *f = calloc(1, sizeof *f);
    if (!f) {
        free(dl->inbox);
        return -1;
    }
    f->activity = dl->activity;
    f->inbox = dl->inbox;
    f->attempts = dl->attempts;
    f->created = dl->created;
    f->allow_loopback = d->cfg->activitypub.allow_insecure_loopback;
    struct diag why = {0};
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    int rc = -1;
    if (ap_fetch_url_ok(f->inbox, f->allow_loopback, &why) < 0)
        goto bad;
    if (!u || curl_url_set(u, CURLUPART_URL, f->inbox, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        diag_set(&why, 0, 0, "not a URL");
        goto bad;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    if ((size_t)snprintf(f->target, sizeof f->target, "%s%s%s", path, query ? "?" : "",
                         query ? query : "") >= sizeof f->target ||
        (size_t)snprintf(f->hostport, sizeof f->hostport, "%s%s%s", host, port ? ":" : "",
                         port ? port : "") >= sizeof f->hostport) {
        diag_set(&why, 0, 0, "URL too long");
        goto bad;
    }
    if (!(f->body = body_get(d, f->activity))) {
        diag_set(&why, 0, 0, "the activity is gone");
        goto bad;
    }
    EVP_PKEY_up_ref(d->key);
    f->key = d->key;
    f->now = timefmt_now();
    d->fl[d->nfl++] = f; /* counts as in flight from now on */
    rc = 0;
    if (d->nsigners) {
        pthread_mutex_lock(&d->mu);
        f->qnext = d->sig_queue;
        d->sig_queue = f; /* order does not matter */
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
    } else {
        sign_flight(f, d->key_id);
        launch(d, f);
    }
    goto out;
bad:
    finish(d, f, 0, why.msg);
out:
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return rc;
}

/*
 * Writes f's outcome and frees it. code: the HTTP status; 0 a delivery that
 * can never succeed (a refused URL or address); -1 a network or local
 * failure (retried).
 */
static void finish(struct ap_deliver *d, struct flight *f, long code, const char *why)
{
    int64_t now = timefmt_now();
    int rc;
    const char *outcome;
    if (code >= 200 && code <= 299) {
        rc = ap_delivery_sent(d->as, f->activity, f->inbox, now, (int)code);
        d->sent++;
        outcome = "sent";
    } else if (code == 0 || code == 400 || code == 401 || code == 403 || code == 404 ||
               code == 410 || code == 422) {
        rc = ap_delivery_failed(d->as, f->activity, f->inbox, now, (int)code, why);
        d->failed++;
        outcome = "failed";
        if (code == 410) {
            int64_t n = ap_followers_remove_inbox(d->as, f->inbox);
            log_event(LOG_INFO, "follower", "action=removed inbox=%s followers=%lld reason=gone",
                      log_quote(f->inbox), (long long)n);
        }
    } else {
        int64_t wait = d->backoff;
        for (int a = 0; a < f->attempts && wait < BACKOFF_MAX; a++)
            wait *= 2;
        if (wait > BACKOFF_MAX)
            wait = BACKOFF_MAX;
        if (now + wait > f->created + AP_DELIVER_GIVE_UP) {
            rc = ap_delivery_failed(d->as, f->activity, f->inbox, now, code > 0 ? (int)code : 0,
                                    why);
            d->failed++;
            outcome = "gave_up";
        } else {
            rc = ap_delivery_retry(d->as, f->activity, f->inbox, now + wait,
                                   code > 0 ? (int)code : 0, why);
            if (!d->retry_at || now + wait < d->retry_at)
                d->retry_at = now + wait;
            d->retried++;
            outcome = "retry";
        }
    }
    log_event(code >= 200 && code <= 299 ? LOG_DEBUG : LOG_INFO, "delivery",
              "activity=%lld inbox=%s code=%ld result=%s attempts=%d%s%s", (long long)f->activity,
              log_quote(f->inbox), code, outcome, f->attempts + 1, why && *why ? " error=" : "",
              why && *why ? log_quote(why) : "");
    if (rc < 0)
        log_event(LOG_ERROR, "delivery", "activity=%lld error=%s", (long long)f->activity,
                  log_quote(store_errmsg(d->st)));
    flight_free(d, f);
}

static void reap(struct ap_deliver *d)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(d->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct flight *f = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&f);
        CURLcode cc = m->data.result;
        size_t i = 0;
        while (i < d->nfl && d->fl[i] != f)
            i++;
        if (!f || i == d->nfl)
            continue;
        d->fl[i] = d->fl[--d->nfl];
        long code = 0;
        curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &code);
        if (f->refused_addr)
            finish(d, f, 0, "a forbidden address");
        else if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && code))
            finish(d, f, -1, f->err[0] ? f->err : curl_easy_strerror(cc));
        else
            finish(d, f, code, code >= 300 ? f->resp : NULL);
    }
}

static void pump(struct ap_deliver *d)
{
    struct ap_delivery dl;
    while (!d->queue_empty && d->nfl < AP_DELIVER_CONCURRENCY && next_due(d, &dl))
        start(d, &dl);
}

int64_t ap_deliver_tick(void *arg, int64_t now_ms)
{
    struct ap_deliver *d = arg;
    int64_t now = timefmt_now(), wait = -1;
    if (d->retry_at && now >= d->retry_at) {
        int64_t next = ap_next_retry(d->as, now);
        d->retry_at = next < 0 ? now + 1 : next;
        d->queue_empty = 0;
    }
    if (d->timer_at && loop_now_ms() >= d->timer_at) {
        int running = 0;
        d->timer_at = 0;
        curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        reap(d);
    }
    pump(d);
    (void)now_ms;
    if (d->timer_at) {
        int64_t t = d->timer_at - loop_now_ms();
        wait = t < 0 ? 0 : t;
    }
    if (!d->queue_empty && d->nfl < AP_DELIVER_CONCURRENCY)
        wait = 0;
    if (d->retry_at) {
        int64_t ms = (d->retry_at - now) * 1000;
        if (ms < 0)
            ms = 0;
        if (wait < 0 || ms < wait)
            wait = ms;
    }
    return wait;
}

/* --- one-shot (build --deliver) ------------------------------------------------ */

struct drain {
    struct ap_deliver *d;
    int64_t deadline;
    int timed_out;
};

static int64_t drain_tick(struct loop *l, void *arg)
{
    struct drain *dr = arg;
    int64_t w = ap_deliver_tick(dr->d, loop_now_ms()), left = dr->deadline - loop_now_ms();
    if (dr->d->queue_empty && dr->d->nfl == 0) {
        loop_stop(l);
        return -1;
    }
    if (left <= 0) {
        dr->timed_out = 1;
        loop_stop(l);
        return -1;
    }
    return w < 0 || w > left ? left : w;
}

int ap_deliver_drain(struct ap_deliver *d, int64_t timeout_ms)
{
    struct drain dr = {.d = d, .deadline = loop_now_ms() + timeout_ms};
    if (take_announcements(d) < 0)
        return -1;
    d->queue_empty = 0;
    d->retry_at = 0; /* what is due now, not later retries */
    if (loop_run(d->loop, drain_tick, &dr) < 0)
        return -1;
    return dr.timed_out ? -1 : 0;
}
