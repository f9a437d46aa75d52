/*
 * http_int: what the files of the HTTP server (http.c, http_path.c,
 * http_static.c, http_metrics.c) share, and the pure helpers the unit tests
 * call directly. Not for other modules: they use http.h.
 */
#ifndef NASHRA_HTTP_INT_H
#define NASHRA_HTTP_INT_H

#include <microhttpd.h>
#include <stdint.h>
#include <sys/stat.h>

#include "http.h"

#define HTTP_PATH_MAX 4096 /* decoded request path, bytes */

struct http_route_ent {
    char *method; /* NULL: any */
    char *prefix;
    size_t prefix_len;
    int subtree; /* prefix ends in '/': every path under it */
    size_t body_max;
    http_handler_fn fn;
    void *arg;
};

/* One per socket (MHD's socket_context). */
struct http_conn {
    struct http_server *srv;
    int fd;
    int64_t deadline_ms;           /* the current request must be in by then; 0: none */
    struct http_conn *prev, *next; /* in srv's deadline list, oldest first */
};

/* A query value decoded for a handler, freed with the request. */
struct http_qval {
    struct http_qval *next;
    char s[];
};

/* One per request (MHD's con_cls): created on the first call of the access
 * handler, freed when MHD says the request is complete. */
struct http_ctx {
    struct http_server *srv;
    struct MHD_Connection *conn;
    struct http_conn *hc;
    struct http_request rq;
    char path[HTTP_PATH_MAX];
    char raw_path[256]; /* for the log line */
    char client[64];
    int path_ok;
    const char *why; /* why the path is bad */
    int answered;    /* a response is queued */
    int too_large;   /* the body passed body_max */
    size_t body_max; /* of the routes that may take this request */
    struct buf body;
    struct http_qval *qvals;
    int status;
    uint64_t bytes; /* body bytes of the response */
    int64_t t0_ms;
    int suspended;                  /* http_suspend: waiting for http_resume */
    int resumed;                    /* pending holds the answer */
    struct http_response pending;   /* from http_resume */
    struct http_ctx *sprev, *snext; /* in srv's list of suspended requests */
};

struct http_server {
    struct MHD_Daemon *d;
    int epfd;
    int port;
    char *root;
    struct http_opts o;
    struct http_route_ent *routes; /* longest prefix first */
    size_t nroutes;
    struct http_conn *dl_head, *dl_tail; /* connections with a deadline */
    struct http_ctx *suspended;          /* requests waiting for http_resume */
    int (*metrics_fn)(void *arg, struct buf *out);
    void *metrics_arg;
    /* counters for /metrics */
    uint64_t by_code[600];
    uint64_t resp_bytes;
    uint64_t deadline_cuts;
};

/* ---- http.c -------------------------------------------------------------- */

int64_t http_now_ms(void);

/* Queues r (consumed) with status for c; MHD_NO if MHD refused it. */
enum MHD_Result http_queue(struct http_ctx *c, unsigned status, struct MHD_Response *r,
                           uint64_t bytes);

/* Queues a text/plain answer ("text\n"), with an Allow header if allow. */
enum MHD_Result http_queue_text(struct http_ctx *c, unsigned status, const char *text,
                                const char *allow);

/* ---- http_path.c --------------------------------------------------------- */

/*
 * Decodes and normalises a request path (RFC 3986 §2.1, §5.2.4) into out:
 * %XX decoded, "//" and "." segments dropped, a trailing '/' kept. -1 with
 * *why set to a short reason: not starting with '/', a bad %-escape, %00 or a
 * control character, an encoded '/', a ".." segment, bad UTF-8, too long.
 */
int http_path_normalise(const char *raw, char *out, size_t outlen, const char **why);

/* Appends path percent-encoded (what is not unreserved, '/' or a sub-delim). */
int http_path_encode(struct buf *out, const char *path);

/* Decodes a query value in place (%XX; '+' was made a space by MHD); -1 on a
 * bad escape or a NUL. */
int http_query_decode(char *s);

/* ---- http_static.c ------------------------------------------------------- */

/* Answers a GET or HEAD of c->path from the files under srv->root. */
enum MHD_Result http_static_serve(struct http_ctx *c);

/* Content-Type for a file name (its base name decides feed.xml and the like). */
const char *http_mime_type(const char *name);

/* IMF-fixdate (RFC 9110 §5.6.7) of t into out (at least 30 bytes). */
char *http_date_format(int64_t t, char *out, size_t outlen);

/* Parses an IMF-fixdate; -1 if s is not one. */
int http_date_parse(const char *s, int64_t *t);

/* A strong ETag for st: "inode-size-mtime_ns" in hex, quoted. */
void http_etag(const struct stat *st, char *out, size_t outlen);

/* 1 if the If-None-Match value inm matches etag (weak comparison, "*"). */
int http_etag_match(const char *inm, const char *etag);

/* ---- http_metrics.c ------------------------------------------------------ */

/* Adds /healthz and /metrics to srv's routes; 0 or -1. */
int http_metrics_routes(struct http_server *srv);

/* Counts a finished request. */
void http_metrics_count(struct http_server *srv, int status, uint64_t bytes);

#endif
