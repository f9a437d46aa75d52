/*
 * http: the daemon's HTTP/1.1 server (SPEC §6) on libmicrohttpd, driven by
 * the daemon's one event loop: no thread of its own. The loop watches
 * http_fd() (an epoll fd: readable when any connection or the listening
 * socket has work), calls http_run() when it is readable, and wakes up no
 * later than http_timeout_ms() to call http_run() again (idle timeouts and
 * request deadlines are enforced there).
 *
 * It serves the static files of output.dir (GET/HEAD, Content-Type with
 * charset, ETag and Last-Modified, 304 on If-None-Match/If-Modified-Since,
 * RFC 9110 §8.8 and §13), /healthz and /metrics (Prometheus text format
 * 0.0.4), and whatever routes the daemon adds with http_route()
 * (ActivityPub, subscriptions). Limits: request bodies capped per route,
 * idle connections and slow requests cut off, connections capped in total
 * and per client address, per-connection memory capped.
 */
#ifndef NASHRA_HTTP_H
#define NASHRA_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"
#include "../lib/diag.h"

struct http_server;

/* Limits; a 0 field takes the default written beside it. */
struct http_opts {
    unsigned idle_timeout_s;    /* 10: a connection silent this long is closed */
    unsigned request_timeout_s; /* 30: a request (headers and body) must arrive whole
                                   within this long, however steadily it trickles in */
    unsigned max_connections;   /* 512 */
    unsigned max_per_ip;        /* 128; behind a reverse proxy every connection comes from
                                   the proxy's address: raise it or set HTTP_NO_LIMIT */
    size_t conn_memory;         /* 64 KiB: request line and headers of one connection */
    size_t body_max;            /* 1 MiB: request body cap of routes added without one */
};
#define HTTP_NO_LIMIT ((unsigned)-1) /* for max_per_ip: no per-address limit */

/*
 * Listens on listen ("127.0.0.1:8080", "[::1]:8080", ":8080" for every
 * address, port 0 for any free port) and serves the files under root
 * (output.dir; it need not exist yet: requests get 404 until it does).
 * NULL on error, with err (if not NULL) saying why. opts may be NULL.
 */
struct http_server *http_start(const char *listen, const char *root, struct diag *err);
struct http_server *http_start_opts(const char *listen, const char *root,
                                    const struct http_opts *opts, struct diag *err);

/* Closes every connection and frees the server; NULL is fine. */
void http_stop(struct http_server *srv);

/* The epoll fd for the loop to watch for EPOLLIN. */
int http_fd(const struct http_server *srv);

/* The port actually bound (useful with port 0). */
int http_port(const struct http_server *srv);

/* Does the work that is ready, never blocks; 0, or -1 if the server is broken. */
int http_run(struct http_server *srv);

/* Milliseconds until http_run() must be called again; -1: only when http_fd()
 * is readable. */
int64_t http_timeout_ms(const struct http_server *srv);

/* A new output.dir (config reload); a copy is kept. Requests in flight finish
 * with the files they opened. */
void http_set_root(struct http_server *srv, const char *root);

/* ---- routes ------------------------------------------------------------- */

/*
 * What a handler sees of a request. Every string stays valid until the
 * handler returns.
 */
struct http_request {
    const char *method; /* "GET", "POST", ... as sent */
    const char *path;   /* percent-decoded and normalised: starts with '/', valid UTF-8, no
                           NUL, no control character, no "." or ".." segment, no "//" */
    const char *client; /* the peer's address: "127.0.0.1", "::1" */
    const char *body;   /* the request body, NUL-terminated ("" when none) */
    size_t body_len;    /* at most the route's body cap */
    void *priv;         /* the server's */
};

/* Query argument key, percent-decoded ('+' is a space); NULL when absent or
 * when its value holds a NUL. */
const char *http_query(const struct http_request *rq, const char *key);

/* Request header name (any case); NULL when absent. */
const char *http_header(const struct http_request *rq, const char *name);

/* What a handler fills. The server sets status 200, content_type NULL and an
 * empty body (capped at HTTP_RESPONSE_MAX) before the call. */
struct http_response {
    int status;
    const char *content_type; /* NULL: text/plain; charset=utf-8. Must outlive the
                                 call: a string literal, or owned by the handler's arg */
    struct buf body;
    struct buf headers; /* the server's: add headers with http_response_header() */
};
#define HTTP_RESPONSE_MAX (16u << 20)

/* Adds a header; -1 (nothing added) if the name is not an HTTP token or the
 * value holds CR, LF or NUL (header injection) or past the cap. */
__attribute__((warn_unused_result)) int http_response_header(struct http_response *rs,
                                                             const char *name, const char *value);

/* Sets status and a text/plain body ("text" and a newline); 0 or -1. */
__attribute__((warn_unused_result)) int http_response_text(struct http_response *rs, int status,
                                                           const char *text);

enum http_verdict {
    HTTP_ERROR = -1,  /* the server answers 500 */
    HTTP_DONE = 0,    /* rs is the answer */
    HTTP_NEXT = 1,    /* not mine: try the next route, then the static files */
    HTTP_SUSPEND = 2, /* answered later: the handler called http_suspend() (rs is dropped) */
};

typedef enum http_verdict (*http_handler_fn)(const struct http_request *rq,
                                             struct http_response *rs, void *arg);

/*
 * Routes method (NULL: any method; "GET" also takes HEAD, answered without
 * a body) on path_prefix to fn. A prefix ending in '/' takes every path
 * under it ("/ap/" takes "/ap/inbox"); any other prefix takes that path
 * only ("/subscribe"). Paths are matched decoded (see http_request.path).
 * The longest matching prefix is tried first, then the shorter ones, then
 * the static files. The body is read whole, up to body_max bytes
 * (http_route: the server's body_max), before fn is called; a longer body is
 * answered 413. 0, or -1 on ENOMEM or a prefix not starting with '/'.
 */
__attribute__((warn_unused_result)) int http_route(struct http_server *srv, const char *method,
                                                   const char *path_prefix, http_handler_fn fn,
                                                   void *arg);
__attribute__((warn_unused_result)) int http_route_capped(struct http_server *srv,
                                                          const char *method,
                                                          const char *path_prefix, size_t body_max,
                                                          http_handler_fn fn, void *arg);

/*
 * Answering later (work that must not block the loop, such as a remote
 * fetch): the handler calls http_suspend(rq), keeps the ticket and returns
 * HTTP_SUSPEND. The connection waits (no timeout runs meanwhile) and rq with
 * every string it points to stays valid until the handler calls
 * http_resume(ticket, rs) with the answer, exactly once, on the loop's
 * thread; rs's body and headers are taken over (rs is left empty). A
 * ticket still held when http_stop() runs is answered 503 there and must
 * not be used after. NULL when out of memory (answer at once then).
 */
struct http_ticket;
struct http_ticket *http_suspend(const struct http_request *rq);
void http_resume(struct http_ticket *t, struct http_response *rs);

/* A response ready for http_resume (status 200, empty body, like a
 * handler's). Free with http_response_release if never resumed. */
void http_response_prepare(struct http_response *rs);
void http_response_release(struct http_response *rs);

/*
 * /metrics: fn appends the daemon's metrics (Prometheus text format 0.0.4)
 * to out and returns 0 (-1: the answer is 500); the server adds its own
 * (nashra_http_requests_total{code="200"}, ...). fn NULL: only the server's.
 */
void http_set_metrics(struct http_server *srv, int (*fn)(void *arg, struct buf *out), void *arg);

#endif
