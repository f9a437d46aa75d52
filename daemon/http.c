/*
 * http: the server itself (see http.h): the listening socket, libmicrohttpd
 * in external-epoll mode, the per-request life cycle (path check, route
 * choice, capped body, handler, answer, log line), and the request deadline
 * that cuts off clients trickling a request in byte by byte, which
 * libmicrohttpd's idle timeout alone does not (RFC 9112 §9.8 leaves the
 * policy to the server).
 *
 * Life of a request: MHD calls http_access() once the headers are in
 * (http_begin: the path is normalised, the routes that may take it are
 * found), then once per piece of body (http_body: appended under the cap,
 * 413 past it), then a last time (http_answer: the handlers run, longest
 * prefix first, then the static files). MHD calls
 * http_completed() when the answer is sent or the connection dies: one log
 * line, the counters, the next request's deadline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "http_int.h"

#define HTTP_BACKLOG 128

int64_t http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- request deadlines ---------------------------------------------------
 * Connections waiting for a request are on a list in deadline order (every
 * deadline is now + the same timeout, so appending keeps it sorted). */

static void http_deadline_clear(struct http_conn *hc)
{
    if (!hc || !hc->deadline_ms)
        return;
    struct http_server *srv = hc->srv;
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        srv->dl_head = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    else
        srv->dl_tail = hc->prev;
    hc->prev = hc->next = NULL;
    hc->deadline_ms = 0;
}

static void http_deadline_set(struct http_conn *hc)
{
    if (!hc)
        return;
    struct http_server *srv = hc->srv;
    http_deadline_clear(hc);
    hc->deadline_ms = http_now_ms() + (int64_t)srv->o.request_timeout_s * 1000;
    hc->prev = srv->dl_tail;
    if (srv->dl_tail)
        srv->dl_tail->next = hc;
    else
        srv->dl_head = hc;
    srv->dl_tail = hc;
}

/* Shuts down the sockets whose request is late: MHD then reads EOF and
 * closes the connection the ordinary way (the fd stays MHD's to close). */
static void http_deadline_sweep(struct http_server *srv)
{
    int64_t now = http_now_ms();
    while (srv->dl_head && srv->dl_head->deadline_ms <= now) {
        struct http_conn *hc = srv->dl_head;
        shutdown(hc->fd, SHUT_RDWR);
        srv->deadline_cuts++;
        log_event(LOG_DEBUG, "http", "result=request_timeout fd=%d", hc->fd);
        http_deadline_clear(hc);
    }
}

static void http_notify_conn(void *cls, struct MHD_Connection *conn, void **socket_context,
                             enum MHD_ConnectionNotificationCode code)
{
    struct http_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        struct http_conn *hc = *socket_context;
        http_deadline_clear(hc);
        free(hc);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct http_conn *hc = calloc(1, sizeof *hc);
    if (!hc || !ci) {
        /* Without a deadline a slow client could stay: refuse it. */
        if (ci)
            shutdown(ci->connect_fd, SHUT_RDWR);
        free(hc);
        return;
    }
    hc->srv = srv;
    hc->fd = ci->connect_fd;
    http_deadline_set(hc);
    *socket_context = hc;
}

/* ---- answers ------------------------------------------------------------- */

enum MHD_Result http_queue(struct http_ctx *c, unsigned status, struct MHD_Response *r,
                           uint64_t bytes)
{
    enum MHD_Result ret = MHD_queue_response(c->conn, status, r);
    MHD_destroy_response(r);
    if (ret == MHD_YES) {
        c->answered = 1;
        c->status = (int)status;
        c->bytes = strcmp(c->rq.method, "HEAD") == 0 ? 0 : bytes;
    }
    return ret;
}

enum MHD_Result http_queue_text(struct http_ctx *c, unsigned status, const char *text,
                                const char *allow)
{
    char body[256];
    int n = snprintf(body, sizeof body, "%s\n", text);
    if (n < 0 || (size_t)n >= sizeof body)
        n = 0;
    struct MHD_Response *r =
        MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8") !=
            MHD_YES ||
        (allow && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    return http_queue(c, status, r, (uint64_t)n);
}

static int http_token_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

int http_response_header(struct http_response *rs, const char *name, const char *value)
{
    if (!*name)
        return -1;
    for (const char *p = name; *p; p++)
        if (!http_token_char((unsigned char)*p))
            return -1;
    if (strpbrk(value, "\r\n"))
        return -1; /* a CR or LF would start a header of the client's choosing */
    size_t before = rs->headers.len;
    if (buf_append(&rs->headers, name, strlen(name) + 1) < 0 ||
        buf_append(&rs->headers, value, strlen(value) + 1) < 0) {
        rs->headers.len = before;
        return -1;
    }
    return 0;
}

int http_response_text(struct http_response *rs, int status, const char *text)
{
    rs->status = status;
    rs->content_type = NULL;
    buf_reset(&rs->body);
    return buf_puts(&rs->body, text) < 0 || buf_putc(&rs->body, '\n') < 0 ? -1 : 0;
}

static void http_response_init(struct http_response *rs)
{
    rs->status = 200;
    rs->content_type = NULL;
    buf_init(&rs->body, HTTP_RESPONSE_MAX);
    buf_init(&rs->headers, 64 * 1024);
}

static void http_response_free(struct http_response *rs)
{
    buf_free(&rs->body);
    buf_free(&rs->headers);
}

/* Adds the handler's headers, then its Content-Type unless it gave one. */
static int http_response_headers(struct MHD_Response *r, const struct http_response *rs)
{
    const char *p = buf_str(&rs->headers), *end = p + rs->headers.len;
    while (p < end) {
        const char *name = p, *value = p + strlen(p) + 1;
        if (MHD_add_response_header(r, name, value) != MHD_YES)
            return -1;
        p = value + strlen(value) + 1;
    }
    if (MHD_get_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE))
        return 0;
    const char *ct = rs->content_type ? rs->content_type : "text/plain; charset=utf-8";
    return MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ct) == MHD_YES ? 0 : -1;
}

/* Queues what a handler filled in; rs is freed. */
static enum MHD_Result http_queue_rs(struct http_ctx *c, struct http_response *rs)
{
    enum MHD_Result ret = MHD_NO;
    if (rs->status < 100 || rs->status > 599) {
        log_event(LOG_ERROR, "http", "path=%s result=bad_status status=%d", log_quote(c->path),
                  rs->status);
        ret = http_queue_text(c, 500, "internal error", NULL);
        goto out;
    }
    size_t len = rs->body.len;
    char *data = buf_steal(&rs->body);
    struct MHD_Response *r =
        data ? MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(data);
        goto out;
    }
    if (http_response_headers(r, rs) < 0) {
        MHD_destroy_response(r);
        ret = http_queue_text(c, 500, "internal error", NULL);
        goto out;
    }
    ret = http_queue(c, (unsigned)rs->status, r, len);
out:
    http_response_free(rs);
    return ret;
}

/* ---- routes -------------------------------------------------------------- */

static int http_route_path(const struct http_route_ent *r, const char *path)
{
    if (r->subtree)
        return strncmp(path, r->prefix, r->prefix_len) == 0;
    return strcmp(path, r->prefix) == 0;
}

static int http_route_method(const struct http_route_ent *r, const char *method)
{
    if (!r->method || strcmp(r->method, method) == 0)
        return 1;
    return strcmp(r->method, "GET") == 0 && strcmp(method, "HEAD") == 0;
}

static int http_route_takes(const struct http_route_ent *r, const struct http_ctx *c)
{
    return http_route_path(r, c->path) && http_route_method(r, c->rq.method);
}

int http_route_capped(struct http_server *srv, const char *method, const char *path_prefix,
                      size_t body_max, http_handler_fn fn, void *arg)
{
    if (!path_prefix || path_prefix[0] != '/' || !fn)
        return -1;
    struct http_route_ent e = {
        .prefix_len = strlen(path_prefix), .body_max = body_max, .fn = fn, .arg = arg};
    e.subtree = path_prefix[e.prefix_len - 1] == '/';
    e.prefix = strdup(path_prefix);
    e.method = method ? strdup(method) : NULL;
    struct http_route_ent *nr = realloc(srv->routes, (srv->nroutes + 1) * sizeof *nr);
    if (!e.prefix || (method && !e.method) || !nr) {
        free(e.prefix);
        free(e.method);
        if (nr)
            srv->routes = nr;
        return -1;
    }
    srv->routes = nr;
    size_t i = 0; /* after every longer or equal prefix: longest first, then in order */
    while (i < srv->nroutes && srv->routes[i].prefix_len >= e.prefix_len)
        i++;
    memmove(&srv->routes[i + 1], &srv->routes[i], (srv->nroutes - i) * sizeof *nr);
    srv->routes[i] = e;
    srv->nroutes++;
    return 0;
}

int http_route(struct http_server *srv, const char *method, const char *path_prefix,
               http_handler_fn fn, void *arg)
{
    return http_route_capped(srv, method, path_prefix, srv->o.body_max, fn, arg);
}

/* "GET, HEAD" plus the methods of the routes of c's path, for a 405. */
static void http_allow(const struct http_ctx *c, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, "GET, HEAD");
    for (size_t i = 0; i < c->srv->nroutes; i++) {
        const struct http_route_ent *r = &c->srv->routes[i];
        if (!r->method || !http_route_path(r, c->path) || strcmp(r->method, "GET") == 0 ||
            strcmp(r->method, "HEAD") == 0)
            continue;
        int m = snprintf(out + n, outlen - n, ", %s", r->method);
        if (m < 0 || (size_t)m >= outlen - n) {
            out[n] = '\0';
            break;
        }
        n += (size_t)m;
    }
}

/* Static files, or 405 for a method they do not take. */
static enum MHD_Result http_fallback(struct http_ctx *c)
{
    if (strcmp(c->rq.method, "GET") == 0 || strcmp(c->rq.method, "HEAD") == 0)
        return http_static_serve(c);
    char allow[256];
    http_allow(c, allow, sizeof allow);
    return http_queue_text(c, 405, "method not allowed", allow);
}

/* ---- the request life cycle ---------------------------------------------- */

static void http_client_addr(struct MHD_Connection *conn, char *out, size_t outlen)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, outlen, "-");
    if (!ci || !ci->client_addr)
        return;
    if (ci->client_addr->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, ci->client_addr, sizeof sin);
        inet_ntop(AF_INET, &sin.sin_addr, out, (socklen_t)outlen);
    } else if (ci->client_addr->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, ci->client_addr, sizeof sin6);
        if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) /* a dual-stack socket's IPv4 peer */
            inet_ntop(AF_INET, &sin6.sin6_addr.s6_addr[12], out, (socklen_t)outlen);
        else
            inet_ntop(AF_INET6, &sin6.sin6_addr, out, (socklen_t)outlen);
    }
}

static struct http_ctx *http_ctx_new(struct http_server *srv, struct MHD_Connection *conn,
                                     const char *url, const char *method)
{
    struct http_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = srv;
    c->conn = conn;
    c->t0_ms = http_now_ms();
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    c->hc = ci ? ci->socket_context : NULL;
    snprintf(c->raw_path, sizeof c->raw_path, "%s", url);
    c->path_ok = http_path_normalise(url, c->path, sizeof c->path, &c->why) == 0;
    if (!c->path_ok)
        snprintf(c->path, sizeof c->path, "%s", c->raw_path);
    http_client_addr(conn, c->client, sizeof c->client);
    buf_init(&c->body, 0);
    c->rq = (struct http_request){
        .method = method, .path = c->path, .client = c->client, .body = "", .priv = c};
    return c;
}

static void http_ctx_free(struct http_ctx *c)
{
    if (c->resumed)
        http_response_free(&c->pending);
    while (c->qvals) {
        struct http_qval *q = c->qvals;
        c->qvals = q->next;
        free(q);
    }
    buf_free(&c->body);
    free(c);
}

static int http_has_body(const struct http_ctx *c)
{
    const char *cl = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Transfer-Encoding");
    return te || (cl && strtoull(cl, NULL, 10) > 0);
}

static enum MHD_Result http_too_large(struct http_ctx *c)
{
    c->too_large = 1;
    return http_queue_text(c, 413, "request body too large", NULL);
}

/* The whole request is in (or its body is refused): the handlers, longest
 * prefix first, then the static files. */
static enum MHD_Result http_answer(struct http_ctx *c)
{
    if (!c->path_ok) {
        char why[64];
        snprintf(why, sizeof why, "bad path: %s", c->why);
        return http_queue_text(c, 400, why, NULL);
    }
    if (c->too_large)
        return http_queue_text(c, 413, "request body too large", NULL);
    c->rq.body = c->body.data ? c->body.data : "";
    c->rq.body_len = c->body.len;
    for (size_t i = 0; i < c->srv->nroutes; i++) {
        const struct http_route_ent *r = &c->srv->routes[i];
        if (!http_route_takes(r, c))
            continue;
        struct http_response rs;
        http_response_init(&rs);
        enum http_verdict v = r->fn(&c->rq, &rs, r->arg);
        if (v == HTTP_DONE)
            return http_queue_rs(c, &rs);
        http_response_free(&rs);
        if (v == HTTP_SUSPEND && c->suspended)
            return MHD_YES;
        if (v != HTTP_NEXT) {
            log_event(LOG_ERROR, "http", "method=%s path=%s route=%s result=handler_error",
                      log_quote(c->rq.method), log_quote(c->path), log_quote(r->prefix));
            return http_queue_text(c, 500, "internal error", NULL);
        }
    }
    return http_fallback(c);
}

/*
 * Headers are in. An answer queued now, before the body, makes MHD close
 * the connection afterwards (it will not read a body it was not asked to):
 * right for a body nobody wants (413, or a request no route takes), wrong
 * for the common bodiless GET, which is answered on the next call so that
 * the connection stays open for the next request.
 */
static enum MHD_Result http_begin(struct http_ctx *c)
{
    int has_body = http_has_body(c);
    if (!has_body)
        http_deadline_clear(c->hc); /* the whole request is in */
    int routed = 0;
    size_t max = 0;
    for (size_t i = 0; c->path_ok && i < c->srv->nroutes; i++) {
        const struct http_route_ent *r = &c->srv->routes[i];
        if (http_route_takes(r, c)) {
            routed = 1;
            max = r->body_max > max ? r->body_max : max;
        }
    }
    if (!routed)
        return has_body ? http_answer(c) : MHD_YES;
    c->body_max = max;
    buf_init(&c->body, max ? max : 1);
    const char *cl = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > max)
        return http_too_large(c); /* before a byte of it (and before 100 Continue) */
    return MHD_YES;
}

static enum MHD_Result http_body(struct http_ctx *c, const char *data, size_t n)
{
    if (c->answered || c->too_large)
        return MHD_YES; /* MHD is reading past an early answer: drop it */
    if (n > c->body_max - c->body.len || buf_append(&c->body, data, n) < 0)
        (void)http_too_large(c); /* if MHD refuses it now, http_answer does at the end */
    return MHD_YES;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct http_ctx *c = *con_cls;
    if (!c) {
        c = http_ctx_new(cls, conn, url, method);
        if (!c)
            return MHD_NO; /* out of memory: drop the connection */
        *con_cls = c;
        return http_begin(c);
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return http_body(c, upload_data, n);
    }
    if (c->answered)
        return MHD_YES;
    if (c->resumed) { /* http_resume gave the answer */
        c->resumed = 0;
        return http_queue_rs(c, &c->pending);
    }
    if (c->suspended)
        return MHD_YES;
    http_deadline_clear(c->hc);
    return http_answer(c);
}

/* ---- answering later ---------------------------------------------------------- */

struct http_ticket *http_suspend(const struct http_request *rq)
{
    struct http_ctx *c = rq->priv;
    if (c->suspended)
        return NULL;
    c->suspended = 1;
    c->snext = c->srv->suspended;
    c->sprev = NULL;
    if (c->snext)
        c->snext->sprev = c;
    c->srv->suspended = c;
    MHD_suspend_connection(c->conn);
    return (struct http_ticket *)c;
}

void http_resume(struct http_ticket *t, struct http_response *rs)
{
    struct http_ctx *c = (struct http_ctx *)t;
    if (!c || !c->suspended)
        return;
    if (c->sprev)
        c->sprev->snext = c->snext;
    else
        c->srv->suspended = c->snext;
    if (c->snext)
        c->snext->sprev = c->sprev;
    c->suspended = 0;
    c->pending = *rs; /* taken over */
    http_response_init(rs);
    c->resumed = 1;
    MHD_resume_connection(c->conn);
}

void http_response_prepare(struct http_response *rs)
{
    http_response_init(rs);
}

void http_response_release(struct http_response *rs)
{
    http_response_free(rs);
}

static const char *http_term_name(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK:
        return "ok";
    case MHD_REQUEST_TERMINATED_WITH_ERROR:
        return "error";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
        return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
        return "shutdown";
    case MHD_REQUEST_TERMINATED_READ_ERROR:
        return "read_error";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
        return "client_abort";
    }
    return "unknown";
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    struct http_server *srv = cls;
    struct http_ctx *c = *con_cls;
    if (!c)
        return;
    if (c->status)
        http_metrics_count(srv, c->status, c->bytes);
    if (log_get_level() <= LOG_DEBUG)
        log_event(
            LOG_DEBUG, "http", "method=%s path=%s status=%d bytes=%llu ms=%lld client=%s term=%s",
            log_quote(c->rq.method), log_quote(c->path), c->status, (unsigned long long)c->bytes,
            (long long)(http_now_ms() - c->t0_ms), c->client, http_term_name(toe));
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        http_deadline_set(c->hc); /* for the next request on this connection */
    http_ctx_free(c);
    *con_cls = NULL;
}

/* ---- accessors for handlers ---------------------------------------------- */

const char *http_query(const struct http_request *rq, const char *key)
{
    struct http_ctx *c = rq->priv;
    const char *v = NULL;
    size_t vlen = 0;
    if (MHD_lookup_connection_value_n(c->conn, MHD_GET_ARGUMENT_KIND, key, strlen(key), &v,
                                      &vlen) != MHD_YES)
        return NULL;
    if (!v)
        return ""; /* "?key" without '=' */
    struct http_qval *q = malloc(sizeof *q + vlen + 1);
    if (!q)
        return NULL;
    memcpy(q->s, v, vlen);
    q->s[vlen] = '\0';
    if (strlen(q->s) != vlen || http_query_decode(q->s) < 0) {
        free(q);
        return NULL;
    }
    q->next = c->qvals;
    c->qvals = q;
    return q->s;
}

const char *http_header(const struct http_request *rq, const char *name)
{
    const struct http_ctx *c = rq->priv;
    return MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, name);
}

/* ---- start and stop ------------------------------------------------------ */

/* Splits "host:port", "[v6]:port", ":port" or "port"; -1 if malformed. */
static int http_listen_split(const char *listen, char *host, size_t hostlen, char *port,
                             size_t portlen)
{
    const char *colon = strrchr(listen, ':'), *h = listen, *hend;
    if (listen[0] == '[') {
        h = listen + 1;
        hend = strchr(h, ']');
        if (!hend || hend[1] != ':')
            return -1;
        colon = hend + 1;
    } else {
        hend = colon ? colon : listen;
        if (memchr(listen, ':', (size_t)(hend - listen)))
            return -1; /* an IPv6 address wants brackets */
    }
    const char *p = colon ? colon + 1 : listen;
    size_t hl = (size_t)(hend - h), pl = strlen(p);
    if (hl >= hostlen || pl == 0 || pl > 5 || pl >= portlen || strspn(p, "0123456789") != pl ||
        atoi(p) > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, p, pl + 1);
    return 0;
}

/* A listening socket on the first address of host that binds; -1, errno set. */
static int http_bind(const char *host, const char *port, int dual, int *v6)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int err = getaddrinfo(host, port, &hints, &res);
    if (err) {
        errno = err == EAI_SYSTEM ? errno : EADDRNOTAVAIL;
        return -1;
    }
    int fd = -1, one = 1, zero = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6 && dual)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, HTTP_BACKLOG) < 0) {
            int e = errno;
            close(fd);
            fd = -1;
            errno = e;
            continue;
        }
        *v6 = ai->ai_family == AF_INET6;
    }
    freeaddrinfo(res);
    return fd;
}

static int http_listen_socket(const char *listen, int *v6, struct diag *err)
{
    char host[256], port[8];
    if (http_listen_split(listen, host, sizeof host, port, sizeof port) < 0) {
        diag_set(err, 0, 0, "http.listen \"%s\": expected HOST:PORT, [IPv6]:PORT or :PORT", listen);
        return -1;
    }
    int fd;
    if (host[0]) {
        fd = http_bind(host, port, 0, v6);
    } else { /* every address: IPv6 and IPv4 on one socket, or IPv4 alone */
        fd = http_bind("::", port, 1, v6);
        if (fd < 0)
            fd = http_bind("0.0.0.0", port, 0, v6);
    }
    if (fd < 0)
        diag_set(err, 0, 0, "http.listen \"%s\": %s", listen, strerror(errno));
    return fd;
}

__attribute__((format(printf, 2, 0))) static void http_mhd_log(void *cls, const char *fmt,
                                                               va_list ap)
{
    struct http_server *srv = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    /* At startup a message explains a failure; later they are about clients. */
    log_event(srv->d ? LOG_DEBUG : LOG_WARN, "http_mhd", "msg=%s", log_quote(msg));
}

/* MHD decodes paths before the handler sees them, which would hide "%2F",
 * "%00" and "%2e%2e" from http_path_normalise: keep them as sent. */
static size_t http_unescape_none(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

static void http_opts_defaults(struct http_opts *o, const struct http_opts *in)
{
    *o = in ? *in : (struct http_opts){0};
    o->idle_timeout_s = o->idle_timeout_s ? o->idle_timeout_s : 10;
    o->request_timeout_s = o->request_timeout_s ? o->request_timeout_s : 30;
    o->max_connections = o->max_connections ? o->max_connections : 512;
    o->max_per_ip = o->max_per_ip ? o->max_per_ip : 128;
    o->conn_memory = o->conn_memory ? o->conn_memory : 64 * 1024;
    o->body_max = o->body_max ? o->body_max : 1024 * 1024;
}

static struct MHD_Daemon *http_mhd_start(struct http_server *srv, int fd, int v6)
{
    unsigned flags = MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME |
                     (v6 ? MHD_USE_IPv6 : 0);
    unsigned per_ip = srv->o.max_per_ip == HTTP_NO_LIMIT ? 0 : srv->o.max_per_ip;
    return MHD_start_daemon(
        flags, 0, NULL, NULL, http_access, srv, MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, srv,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT, srv->o.idle_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, srv->o.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        per_ip, MHD_OPTION_CONNECTION_MEMORY_LIMIT, srv->o.conn_memory, MHD_OPTION_NOTIFY_COMPLETED,
        http_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, http_notify_conn, srv,
        MHD_OPTION_UNESCAPE_CALLBACK, http_unescape_none, srv, MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1,
        /* RFC 9112: HTTP/1.1 without Host, bad header folding... get 400 */
        MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
}

/* Writes to a closed peer must not kill the daemon (sendfile raises SIGPIPE):
 * ignore it unless the program already decided what to do with it. */
static void http_ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

struct http_server *http_start_opts(const char *listen, const char *root,
                                    const struct http_opts *opts, struct diag *err)
{
    struct http_server *srv = calloc(1, sizeof *srv);
    int fd = -1, v6 = 0;
    if (!srv || !(srv->root = strdup(root))) {
        diag_set(err, 0, 0, "out of memory");
        goto fail;
    }
    http_opts_defaults(&srv->o, opts);
    fd = http_listen_socket(listen, &v6, err);
    if (fd < 0)
        goto fail;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    http_ignore_sigpipe();
    srv->d = http_mhd_start(srv, fd, v6);
    if (!srv->d) {
        diag_set(err, 0, 0, "http.listen \"%s\": cannot start the HTTP server", listen);
        goto fail;
    }
    fd = -1; /* MHD's now: closed by MHD_stop_daemon */
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_EPOLL_FD);
    srv->epfd = di ? di->epoll_fd : -1;
    if (srv->epfd < 0 || http_metrics_routes(srv) < 0) {
        diag_set(err, 0, 0, "cannot set up the HTTP server");
        goto fail;
    }
    log_event(LOG_INFO, "http", "listen=%s port=%d root=%s", log_quote(listen), srv->port,
              log_quote(root));
    return srv;
fail:
    if (fd >= 0)
        close(fd);
    http_stop(srv);
    return NULL;
}

struct http_server *http_start(const char *listen, const char *root, struct diag *err)
{
    return http_start_opts(listen, root, NULL, err);
}

void http_stop(struct http_server *srv)
{
    if (!srv)
        return;
    /* MHD may not stop with suspended connections: they are answered 503. */
    while (srv->suspended) {
        struct http_response rs;
        http_response_init(&rs);
        rs.status = 503;
        if (buf_puts(&rs.body, "shutting down\n") < 0)
            rs.body.len = 0;
        http_resume((struct http_ticket *)srv->suspended, &rs);
    }
    if (srv->d) {
        MHD_run(srv->d);
        MHD_stop_daemon(srv->d);
    }
    for (size_t i = 0; i < srv->nroutes; i++) {
        free(srv->routes[i].prefix);
        free(srv->routes[i].method);
    }
    free(srv->routes);
    free(srv->root);
    free(srv);
}

int http_fd(const struct http_server *srv)
{
    return srv->epfd;
}

int http_port(const struct http_server *srv)
{
    return srv->port;
}

int http_run(struct http_server *srv)
{
    http_deadline_sweep(srv);
    return MHD_run(srv->d) == MHD_YES ? 0 : -1;
}

int64_t http_timeout_ms(const struct http_server *srv)
{
    MHD_UNSIGNED_LONG_LONG t;
    int64_t ms = -1;
    if (MHD_get_timeout(srv->d, &t) == MHD_YES)
        ms = t > INT64_MAX ? INT64_MAX : (int64_t)t;
    if (srv->dl_head) {
        int64_t left = srv->dl_head->deadline_ms - http_now_ms();
        left = left < 0 ? 0 : left;
        if (ms < 0 || left < ms)
            ms = left;
    }
    return ms;
}

void http_set_root(struct http_server *srv, const char *root)
{
    char *r = strdup(root);
    if (!r) {
        log_event(LOG_ERROR, "http", "result=set_root_failed root=%s", log_quote(root));
        return;
    }
    free(srv->root);
    srv->root = r;
}

void http_set_metrics(struct http_server *srv, int (*fn)(void *arg, struct buf *out), void *arg)
{
    srv->metrics_fn = fn;
    srv->metrics_arg = arg;
}
