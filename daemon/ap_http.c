/*
 * ap_http: the read side of the ActivityPub actor over the daemon's HTTP
 * server (SPEC §6, §7): WebFinger, NodeInfo, the actor, the outbox (paged),
 * the followers collection, and post URLs asked for as ActivityStreams
 * (content negotiation; a browser gets the HTML page). The documents
 * themselves are ap/docs.c's; the actor's key is made on first start.
 * The inbox is daemon/ap_inbox.c's; deliveries daemon/ap_deliver.c's.
 */
#include "ap_http.h"

#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../ap/docs.h"
#include "../ap/httpsig.h"
#include "../lib/fileio.h"
#include "../lib/log.h"
#include "../lib/text.h"
#include "ap_inbox.h"

#define DOC_MAX (4u << 20) /* one document we answer with */

struct ap_http {
    const struct config *cfg;
    struct store *st;
    struct ap_store *as;
    EVP_PKEY *key; /* the actor's private key */
    char *key_id;  /* {actor}#main-key */
    char *pem;     /* the actor's public key */
    int64_t created;
    char *keyfile;             /* state.dir/actor.pem */
    int key_fd;                /* inotify on state.dir, for a rotated key; -1 if none */
    int curl;                  /* curl_global_init done */
    ino_t key_ino;             /* of the file the key was read from: `nashra keys */
    struct timespec key_mtime; /* --rotate` replaces it */
    struct ap_inbox_env inbox;
};

static enum http_verdict answer(struct http_response *rs, enum ap_media m, int rc)
{
    if (rc < 0)
        return HTTP_ERROR;
    rs->status = 200;
    rs->content_type = ap_media_type(m);
    if (http_response_header(rs, "Access-Control-Allow-Origin", "*") < 0)
        return HTTP_ERROR;
    return HTTP_DONE;
}

static enum http_verdict on_webfinger(const struct http_request *rq, struct http_response *rs,
                                      void *arg)
{
    struct ap_http *a = arg;
    const char *res = http_query(rq, "resource");
    if (!res)
        return http_response_text(rs, 400, "resource= is needed") < 0 ? HTTP_ERROR : HTTP_DONE;
    if (!ap_webfinger_match(a->cfg, res))
        return http_response_text(rs, 404, "no such account here") < 0 ? HTTP_ERROR : HTTP_DONE;
    return answer(rs, AP_MEDIA_JRD, ap_webfinger(a->cfg, &rs->body));
}

static enum http_verdict on_nodeinfo_links(const struct http_request *rq, struct http_response *rs,
                                           void *arg)
{
    struct ap_http *a = arg;
    (void)rq;
    return answer(rs, AP_MEDIA_JSON, ap_nodeinfo_links(a->cfg, &rs->body));
}

static enum http_verdict on_nodeinfo(const struct http_request *rq, struct http_response *rs,
                                     void *arg)
{
    struct ap_http *a = arg;
    (void)rq;
    int64_t n = store_count_published(a->st);
    return answer(rs, AP_MEDIA_NODEINFO,
                  n < 0 ? -1 : ap_nodeinfo(a->cfg, NASHRA_VERSION, (size_t)n, &rs->body));
}

static enum http_verdict on_actor(const struct http_request *rq, struct http_response *rs,
                                  void *arg)
{
    struct ap_http *a = arg;
    int m = ap_wants_json(http_header(rq, "Accept"));
    return answer(rs, m ? (enum ap_media)m : AP_MEDIA_ACTIVITY,
                  ap_actor(a->cfg, a->pem, a->created, &rs->body));
}

struct page {
    struct post *v[AP_OUTBOX_PAGE_SIZE];
    size_t n;
};

static int take(void *arg, struct post *p)
{
    struct page *pg = arg;
    if (pg->n == AP_OUTBOX_PAGE_SIZE) {
        post_free(p);
        return 1;
    }
    pg->v[pg->n++] = p;
    return 0;
}

static enum http_verdict on_outbox(const struct http_request *rq, struct http_response *rs,
                                   void *arg)
{
    struct ap_http *a = arg;
    const char *q = http_query(rq, "page");
    int64_t total = store_count_published(a->st);
    if (total < 0)
        return HTTP_ERROR;
    if (!q)
        return answer(rs, AP_MEDIA_ACTIVITY,
                      ap_outbox(a->cfg, (size_t)total, AP_OUTBOX_PAGE_SIZE, &rs->body));
    char *end;
    long page = strtol(q, &end, 10);
    size_t pages = ap_outbox_pages((size_t)total, AP_OUTBOX_PAGE_SIZE);
    if (*end || page < 1 || (size_t)page > pages)
        return http_response_text(rs, 404, "no such page") < 0 ? HTTP_ERROR : HTTP_DONE;
    struct page pg = {.n = 0};
    int rc = store_page(a->st, (size_t)(page - 1) * AP_OUTBOX_PAGE_SIZE, AP_OUTBOX_PAGE_SIZE, 1,
                        take, &pg);
    if (rc >= 0)
        rc = ap_outbox_page(a->cfg, (const struct post *const *)pg.v, pg.n, (size_t)page,
                            AP_OUTBOX_PAGE_SIZE, (size_t)total, &rs->body);
    for (size_t i = 0; i < pg.n; i++)
        post_free(pg.v[i]);
    return answer(rs, AP_MEDIA_ACTIVITY, rc < 0 ? -1 : 0);
}

static enum http_verdict on_followers(const struct http_request *rq, struct http_response *rs,
                                      void *arg)
{
    struct ap_http *a = arg;
    (void)rq;
    int64_t n = ap_followers_count(a->as);
    return answer(rs, AP_MEDIA_ACTIVITY, n < 0 ? -1 : ap_followers(a->cfg, (size_t)n, &rs->body));
}

/* /posts/{slug}/ asked for as ActivityStreams: the post's object; anything
 * else falls through to the HTML page. */
static enum http_verdict on_post(const struct http_request *rq, struct http_response *rs, void *arg)
{
    struct ap_http *a = arg;
    int m = ap_wants_json(http_header(rq, "Accept"));
    if (!m)
        return HTTP_NEXT;
    const char *slug = rq->path + strlen("/posts/");
    const char *end = strchr(slug, '/');
    if (!end || (end[1] != '\0' && strcmp(end + 1, "index.html")))
        return HTTP_NEXT;
    char *s = strndup(slug, (size_t)(end - slug));
    struct post *p = s ? store_published_slug(a->st, s) : NULL;
    free(s);
    if (!p)
        return http_response_text(rs, 404, "no such post") < 0 ? HTTP_ERROR : HTTP_DONE;
    if (!p->html && store_post_html(a->st, p) < 0) {
        post_free(p);
        return HTTP_ERROR;
    }
    int rc = ap_object(a->cfg, p, &rs->body);
    post_free(p);
    if (rc == 0 && http_response_header(rs, "Vary", "Accept") < 0)
        rc = -1;
    return answer(rs, (enum ap_media)m, rc);
}

struct ap_http *ap_http_start(const struct config *cfg, struct store *st, struct http_server *srv,
                              struct diag *err)
{
    struct ap_http *a = calloc(1, sizeof *a);
    char *keyfile = path_join(cfg->state.dir, "actor.pem");
    EVP_PKEY *key = NULL;
    struct buf pem;
    int created = 0;
    buf_init(&pem, 16384);
    if (a)
        a->key_fd = -1;
    if (!a || !keyfile) {
        diag_set(err, 0, 0, "out of memory");
        goto fail;
    }
    a->cfg = cfg;
    a->st = st;
    if (!(key = httpsig_key_load_or_create(keyfile, &created, err)))
        goto fail;
    if (!(a->as = ap_store_new(st)) ||
        !(a->key_id = malloc(strlen(cfg->site.url) + sizeof AP_PATH_ACTOR AP_KEY_FRAGMENT))) {
        diag_set(err, 0, 0, "activitypub tables: %s", store_errmsg(st));
        goto fail;
    }
    sprintf(a->key_id, "%s" AP_PATH_ACTOR AP_KEY_FRAGMENT, cfg->site.url);
    if (created)
        log_event(LOG_INFO, "activitypub", "key=created file=%s", log_quote(keyfile));
    struct stat sb;
    a->created = stat(keyfile, &sb) == 0 ? (int64_t)sb.st_mtime : 0;
    a->key_ino = sb.st_ino;
    a->key_mtime = sb.st_mtim;
    if (httpsig_pubkey_pem(key, &pem) < 0 || !(a->pem = strdup(buf_str(&pem)))) {
        diag_set(err, 0, 0, "the actor's public key could not be written out");
        goto fail;
    }
    if (http_route(srv, "GET", "/.well-known/webfinger", on_webfinger, a) < 0 ||
        http_route(srv, "GET", "/.well-known/nodeinfo", on_nodeinfo_links, a) < 0 ||
        http_route(srv, "GET", AP_PATH_NODEINFO, on_nodeinfo, a) < 0 ||
        http_route(srv, "GET", AP_PATH_ACTOR, on_actor, a) < 0 ||
        http_route(srv, "GET", AP_PATH_OUTBOX, on_outbox, a) < 0 ||
        http_route(srv, "GET", AP_PATH_FOLLOWERS, on_followers, a) < 0 ||
        http_route(srv, "GET", "/posts/", on_post, a) < 0 ||
        http_route_capped(srv, "POST", AP_PATH_INBOX, AP_INBOX_BODY_MAX, ap_inbox_post, &a->inbox) <
            0) {
        diag_set(err, 0, 0, "out of memory");
        goto fail;
    }
    a->key = key;
    a->inbox = (struct ap_inbox_env){.cfg = cfg, .as = a->as, .key = key, .key_id = a->key_id};
    a->keyfile = keyfile;
    buf_free(&pem);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        diag_set(err, 0, 0, "libcurl could not start");
        return ap_http_free(a), NULL;
    }
    a->curl = 1;
    if (ap_inbox_start(&a->inbox, err) < 0)
        return ap_http_free(a), NULL;
    /* A rotation renames a new file onto actor.pem: IN_MOVED_TO. Without
     * inotify the key is still reloaded on a restart. */
    if ((a->key_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) >= 0 &&
        inotify_add_watch(a->key_fd, cfg->state.dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
        close(a->key_fd);
        a->key_fd = -1;
    }
    return a;
fail:
    EVP_PKEY_free(key);
    buf_free(&pem);
    free(keyfile);
    ap_http_free(a);
    return NULL;
}

void ap_http_config(struct ap_http *a, const struct config *cfg)
{
    if (a)
        a->cfg = a->inbox.cfg = cfg; /* the workers copy what they need */
}

int ap_http_key_fd(const struct ap_http *a)
{
    return a ? a->key_fd : -1;
}

int ap_http_key_refresh(struct ap_http *a)
{
    struct stat sb;
    char ev[4096];
    while (a && a->key_fd >= 0 && read(a->key_fd, ev, sizeof ev) > 0)
        ; /* drained: what changed is told by stat below */
    if (!a || stat(a->keyfile, &sb) < 0 ||
        (sb.st_ino == a->key_ino && sb.st_mtim.tv_sec == a->key_mtime.tv_sec &&
         sb.st_mtim.tv_nsec == a->key_mtime.tv_nsec))
        return 0;
    struct diag d = {0};
    struct buf pem;
    buf_init(&pem, 16384);
    EVP_PKEY *key = httpsig_key_load(a->keyfile, &d);
    char *p = NULL;
    if (!key || httpsig_pubkey_pem(key, &pem) < 0 || !(p = strdup(buf_str(&pem)))) {
        log_event(LOG_ERROR, "activitypub", "key=not_reloaded file=%s error=%s",
                  log_quote(a->keyfile), log_quote(d.msg[0] ? d.msg : "out of memory"));
        EVP_PKEY_free(key);
        buf_free(&pem);
        a->key_ino = sb.st_ino; /* not tried again until it changes */
        a->key_mtime = sb.st_mtim;
        return 0;
    }
    buf_free(&pem);
    EVP_PKEY_free(a->key);
    free(a->pem);
    a->key = a->inbox.key = key;
    a->pem = p;
    a->key_ino = sb.st_ino;
    a->key_mtime = sb.st_mtim;
    log_event(LOG_INFO, "activitypub", "key=reloaded file=%s", log_quote(a->keyfile));
    return 1;
}

EVP_PKEY *ap_http_key(struct ap_http *a, const char **key_id)
{
    *key_id = a->key_id;
    return a->key;
}

void ap_http_on_queued(struct ap_http *a, void (*fn)(void *), void *arg)
{
    a->inbox.kick = fn;
    a->inbox.kick_arg = arg;
}

void ap_http_inbox_stats(const struct ap_http *a, unsigned long *accepted, unsigned long *refused)
{
    *accepted = a ? a->inbox.accepted : 0;
    *refused = a ? a->inbox.rejected : 0;
}

void ap_http_stop(struct ap_http *a)
{
    if (a)
        ap_inbox_stop(&a->inbox);
}

int ap_http_inbox_fd(const struct ap_http *a)
{
    return a ? ap_inbox_fd(&a->inbox) : -1;
}

void ap_http_inbox_done(struct ap_http *a)
{
    ap_inbox_done(&a->inbox);
}

void ap_http_free(struct ap_http *a)
{
    if (!a)
        return;
    ap_inbox_stop(&a->inbox);
    if (a->curl)
        curl_global_cleanup();
    free(a->pem);
    free(a->key_id);
    free(a->keyfile);
    if (a->key_fd >= 0)
        close(a->key_fd);
    EVP_PKEY_free(a->key);
    ap_store_free(a->as);
    free(a);
}
