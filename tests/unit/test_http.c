/*
 * test_http: the HTTP server over real loopback sockets, driven the way the
 * daemon's loop drives it (poll on http_fd(), http_run(), http_timeout_ms()):
 * static files with types, validators and 304s, Arabic paths, traversal
 * attempts, methods, routes with body caps, /healthz, /metrics, slow and
 * idle clients, a file replaced while it is being sent; and the pure
 * helpers (path normalisation, dates, ETag matching, types).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../daemon/http.h"
#include "../../daemon/http_int.h"

#define ARABIC_DIR "\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85" /* سلام */
#define ARABIC_PCT "%D8%B3%D9%84%D8%A7%D9%85"

static char root[64];
static char root2[80];
static struct http_server *srv;

/* ---- fixtures -------------------------------------------------------------- */

static void put(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    snprintf(root, sizeof root, "/tmp/test_http.XXXXXX");
    if (!mkdtemp(root))
        return -1;
    char p[256];
    snprintf(p, sizeof p, "%s/posts", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/posts/" ARABIC_DIR, root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/posts/empty", root);
    mkdir(p, 0755);
    put(root, "index.html",
        "<!doctype html><html lang=ar dir=rtl>\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7</html>\n");
    put(root, "feed.xml", "<rss version=\"2.0\"></rss>\n");
    put(root, "atom.xml", "<feed/>\n");
    put(root, "feed.json", "{}\n");
    put(root, "data.json", "[]\n");
    put(root, "style.css", "body{}\n");
    put(root, "blob", "xyz");
    put(root, "empty.txt", "");
    put(root, ".secret", "hidden\n");
    put(root, "posts/" ARABIC_DIR "/index.html", "<p>salam</p>\n");
    snprintf(p, sizeof p, "%s/passwd", root);
    if (symlink("/etc/passwd", p) < 0)
        return -1;
    snprintf(p, sizeof p, "%s/up", root);
    if (symlink("/etc", p) < 0)
        return -1;
    snprintf(root2, sizeof root2, "%s/other", root);
    mkdir(root2, 0755);
    put(root2, "index.html", "other root\n");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* Short timeouts so the slow-client tests run in seconds. */
static int setup(void **state)
{
    (void)state;
    struct http_opts o = {.idle_timeout_s = 1, .request_timeout_s = 2, .body_max = 4096};
    struct diag err = {0};
    srv = http_start_opts("127.0.0.1:0", root, &o, &err);
    if (!srv)
        fprintf(stderr, "http_start: %s\n", err.msg);
    return srv ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    http_stop(srv);
    srv = NULL;
    return 0;
}

/* ---- a small client -------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_srv(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port(srv))};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = connect(fd, (struct sockaddr *)&sin, sizeof sin);
    assert_true(r == 0 || errno == EINPROGRESS);
    return fd;
}

/* One turn of the daemon's loop: wait for the server's fd (at most max_ms),
 * then run it. */
static void pump(int max_ms)
{
    int64_t t = http_timeout_ms(srv);
    int wait = t < 0 || t > max_ms ? max_ms : (int)t;
    struct pollfd p = {.fd = http_fd(srv), .events = POLLIN};
    poll(&p, 1, wait);
    assert_int_equal(http_run(srv), 0);
}

/* Reads what is there on fd into out; 1 on EOF or reset, else 0. */
static int drain(int fd, struct buf *out)
{
    char tmp[65536];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n > 0) {
            assert_int_equal(buf_append(out, tmp, (size_t)n), 0);
            continue;
        }
        return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    }
}

/* Sends req on a new connection and reads until the server closes it. */
static void exchange_fd(int fd, const char *req, size_t reqlen, struct buf *out)
{
    size_t sent = 0;
    int64_t end = now_ms() + 5000;
    buf_init(out, 64u << 20);
    while (now_ms() < end) {
        pump(10);
        if (sent < reqlen) {
            ssize_t n = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)
                sent = reqlen; /* the server stopped listening to us */
        }
        if (drain(fd, out))
            break;
    }
    close(fd);
}

static void exchange(const char *req, struct buf *out)
{
    exchange_fd(connect_srv(), req, strlen(req), out);
}

static int status_of(const struct buf *r)
{
    int code = 0;
    if (r->len < 12 || sscanf(r->data, "HTTP/1.%*d %d", &code) != 1)
        return -1;
    return code;
}

/* The value of header name in response r (in a static buffer), or NULL. */
static const char *header_of(const struct buf *r, const char *name)
{
    static char val[512];
    size_t nl = strlen(name);
    const char *end = strstr(buf_str(r), "\r\n\r\n");
    for (const char *p = strstr(buf_str(r), "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            h += nl + 1;
            h += strspn(h, " ");
            size_t len = strcspn(h, "\r");
            snprintf(val, sizeof val, "%.*s", (int)len, h);
            return val;
        }
    }
    return NULL;
}

static const char *body_of(const struct buf *r)
{
    const char *p = strstr(buf_str(r), "\r\n\r\n");
    return p ? p + 4 : "";
}

/* GET (or another method) path with extra header lines; status returned. */
static int request(const char *method, const char *path, const char *headers, struct buf *out)
{
    char req[2048];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n", method,
             path, headers ? headers : "");
    exchange(req, out);
    return status_of(out);
}

/* ---- static files -------------------------------------------------------- */

static void test_get_index(void **state)
{
    (void)state;
    struct buf r;
    assert_int_equal(request("GET", "/", NULL, &r), 200);
    assert_string_equal(header_of(&r, "Content-Type"), "text/html; charset=utf-8");
    assert_non_null(strstr(body_of(&r), "lang=ar dir=rtl"));
    const char *etag = header_of(&r, "ETag");
    assert_non_null(etag);
    assert_true(etag[0] == '"' && etag[strlen(etag) - 1] == '"');
    const char *lm = header_of(&r, "Last-Modified");
    assert_non_null(lm);
    int64_t t;
    assert_int_equal(http_date_parse(lm, &t), 0);
    struct stat st;
    char p[256];
    snprintf(p, sizeof p, "%s/index.html", root);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(t, st.st_mtime);
    buf_free(&r);
    /* the same file by its name */
    assert_int_equal(request("GET", "/index.html", NULL, &r), 200);
    assert_int_equal(atoi(header_of(&r, "Content-Length")), st.st_size);
    buf_free(&r);
}

static void test_head(void **state)
{
    (void)state;
    struct buf r;
    assert_int_equal(request("HEAD", "/feed.xml", NULL, &r), 200);
    assert_string_equal(header_of(&r, "Content-Type"), "application/rss+xml; charset=utf-8");
    assert_string_equal(header_of(&r, "Content-Length"), "26");
    assert_string_equal(body_of(&r), "");
    assert_non_null(header_of(&r, "ETag"));
    buf_free(&r);
}

static void expect_type(const char *path, const char *type)
{
    struct buf r;
    assert_int_equal(request("GET", path, NULL, &r), 200);
    assert_string_equal(header_of(&r, "Content-Type"), type);
    buf_free(&r);
}

static void test_content_types(void **state)
{
    (void)state;
    expect_type("/feed.xml", "application/rss+xml; charset=utf-8");
    expect_type("/atom.xml", "application/atom+xml; charset=utf-8");
    expect_type("/feed.json", "application/feed+json; charset=utf-8");
    expect_type("/data.json", "application/json; charset=utf-8");
    expect_type("/style.css", "text/css; charset=utf-8");
    expect_type("/blob", "application/octet-stream");
    expect_type("/empty.txt", "text/plain; charset=utf-8");
    assert_string_equal(http_mime_type("categories/x/feed.xml"),
                        "application/rss+xml; charset=utf-8");
    assert_string_equal(http_mime_type("a/b.PNG"), "image/png");
    assert_string_equal(http_mime_type("x.jpg"), "image/jpeg");
    assert_string_equal(http_mime_type("x.svg"), "image/svg+xml; charset=utf-8");
    assert_string_equal(http_mime_type("x.webp"), "image/webp");
    assert_string_equal(http_mime_type("x.pdf"), "application/pdf");
    assert_string_equal(http_mime_type("x.js"), "text/javascript; charset=utf-8");
    assert_string_equal(http_mime_type("x.txt"), "text/plain; charset=utf-8");
    assert_string_equal(http_mime_type("sitemap.xml"), "application/xml; charset=utf-8");
}

static void test_empty_file(void **state)
{
    (void)state;
    struct buf r;
    assert_int_equal(request("GET", "/empty.txt", NULL, &r), 200);
    assert_string_equal(header_of(&r, "Content-Length"), "0");
    assert_string_equal(body_of(&r), "");
    buf_free(&r);
}

static void test_if_none_match(void **state)
{
    (void)state;
    struct buf r;
    char etag[128], h[256];
    assert_int_equal(request("GET", "/feed.xml", NULL, &r), 200);
    snprintf(etag, sizeof etag, "%s", header_of(&r, "ETag"));
    buf_free(&r);

    snprintf(h, sizeof h, "If-None-Match: %s\r\n", etag);
    assert_int_equal(request("GET", "/feed.xml", h, &r), 304);
    assert_string_equal(body_of(&r), "");
    assert_string_equal(header_of(&r, "ETag"), etag);
    buf_free(&r);

    snprintf(h, sizeof h, "If-None-Match: \"nope\", W/%s\r\n", etag); /* weak compare */
    assert_int_equal(request("GET", "/feed.xml", h, &r), 304);
    buf_free(&r);
    assert_int_equal(request("HEAD", "/feed.xml", "If-None-Match: *\r\n", &r), 304);
    buf_free(&r);
    assert_int_equal(request("GET", "/feed.xml", "If-None-Match: \"other\"\r\n", &r), 200);
    assert_string_equal(body_of(&r), "<rss version=\"2.0\"></rss>\n");
    buf_free(&r);
    /* another file's tag does not match */
    assert_int_equal(request("GET", "/atom.xml", h, &r), 200);
    buf_free(&r);
}

static void test_if_modified_since(void **state)
{
    (void)state;
    struct buf r;
    char lm[64], h[256];
    assert_int_equal(request("GET", "/atom.xml", NULL, &r), 200);
    snprintf(lm, sizeof lm, "%s", header_of(&r, "Last-Modified"));
    buf_free(&r);

    snprintf(h, sizeof h, "If-Modified-Since: %s\r\n", lm);
    assert_int_equal(request("GET", "/atom.xml", h, &r), 304);
    buf_free(&r);
    assert_int_equal(
        request("GET", "/atom.xml", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n", &r),
        200);
    buf_free(&r);
    assert_int_equal(request("GET", "/atom.xml", "If-Modified-Since: yesterday\r\n", &r), 200);
    buf_free(&r);
    /* If-None-Match decides when both are there */
    snprintf(h, sizeof h, "If-Modified-Since: %s\r\nIf-None-Match: \"other\"\r\n", lm);
    assert_int_equal(request("GET", "/atom.xml", h, &r), 200);
    buf_free(&r);
}

static void test_arabic_path(void **state)
{
    (void)state;
    struct buf r;
    assert_int_equal(request("GET", "/posts/" ARABIC_PCT "/", NULL, &r), 200);
    assert_string_equal(body_of(&r), "<p>salam</p>\n");
    assert_string_equal(header_of(&r, "Content-Type"), "text/html; charset=utf-8");
    buf_free(&r);
    assert_int_equal(request("GET", "/posts/" ARABIC_PCT "/index.html", NULL, &r), 200);
    buf_free(&r);
    /* lower-case escapes are the same path */
    assert_int_equal(request("GET", "/posts/%d8%b3%d9%84%d8%a7%d9%85/", NULL, &r), 200);
    buf_free(&r);
}

static void test_redirect_slash(void **state)
{
    (void)state;
    struct buf r;
    assert_int_equal(request("GET", "/posts/" ARABIC_PCT, NULL, &r), 301);
    assert_string_equal(header_of(&r, "Location"), "/posts/" ARABIC_PCT "/");
    buf_free(&r);
    assert_int_equal(request("GET", "/posts", NULL, &r), 301);
    assert_string_equal(header_of(&r, "Location"), "/posts/");
    buf_free(&r);
    /* a folder without index.html */
    assert_int_equal(request("GET", "/posts/empty/", NULL, &r), 404);
    buf_free(&r);
    assert_int_equal(request("GET", "/missing.html", NULL, &r), 404);
    assert_string_equal(body_of(&r), "not found\n");
    buf_free(&r);
}

static void expect_refused(const char *path)
{
    struct buf r;
    int code = request("GET", path, NULL, &r);
    if (code != 400 && code != 404)
        fail_msg("%s: status %d", path, code);
    assert_null(strstr(buf_str(&r), "root:"));
    buf_free(&r);
}

static void test_traversal(void **state)
{
    (void)state;
    struct buf r;
    assert_int_equal(request("GET", "/../etc/passwd", NULL, &r), 400);
    assert_non_null(strstr(body_of(&r), "dot-dot"));
    buf_free(&r);
    assert_int_equal(request("GET", "/%2e%2e/%2e%2e/etc/passwd", NULL, &r), 400);
    buf_free(&r);
    expect_refused("/posts/..%2f..%2fetc/passwd");
    expect_refused("/posts/%2E%2E/%2E%2E/%2E%2E/etc/passwd");
    expect_refused("/index.html%00.txt");
    expect_refused("/passwd");         /* a symlink in the root */
    expect_refused("/up/passwd");      /* through a symlinked folder */
    expect_refused("/.secret");        /* dot-files */
    expect_refused("/%ZZ");            /* bad escape */
    expect_refused("/%C0%AE%C0%AE/x"); /* overlong UTF-8 dots */
    expect_refused("etc/passwd");      /* not starting with / */
}

static void test_method_not_allowed(void **state)
{
    (void)state;
    struct buf r;
    char req[] = "POST /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 "Content-Length: 3\r\n\r\nabc";
    exchange(req, &r);
    assert_int_equal(status_of(&r), 405);
    assert_string_equal(header_of(&r, "Allow"), "GET, HEAD");
    buf_free(&r);
    assert_int_equal(request("DELETE", "/", NULL, &r), 405);
    buf_free(&r);
}

/* ---- routes ---------------------------------------------------------------- */

static int hits;

static enum http_verdict echo(const struct http_request *rq, struct http_response *rs, void *arg)
{
    hits++;
    const char *name = http_query(rq, "name"), *flag = http_query(rq, "flag");
    const char *h = http_header(rq, "x-test");
    if (buf_printf(&rs->body, "%s %s name=%s flag=%s nul=%s h=%s client=%s arg=%s len=%zu body=%s",
                   rq->method, rq->path, name ? name : "-", flag ? flag : "-",
                   http_query(rq, "nul") ? "yes" : "no", h ? h : "-", rq->client, (const char *)arg,
                   rq->body_len, rq->body) < 0)
        return HTTP_ERROR;
    rs->status = 201;
    rs->content_type = "text/x-echo";
    return http_response_header(rs, "X-Echo", "yes") < 0 ? HTTP_ERROR : HTTP_DONE;
}

static enum http_verdict pass(const struct http_request *rq, struct http_response *rs, void *arg)
{
    (void)rq;
    (void)rs;
    (void)arg;
    hits++;
    return HTTP_NEXT;
}

static enum http_verdict broken(const struct http_request *rq, struct http_response *rs, void *arg)
{
    (void)rq;
    (void)rs;
    (void)arg;
    return HTTP_ERROR;
}

static void test_route(void **state)
{
    (void)state;
    assert_int_equal(http_route_capped(srv, "POST", "/echo", 16, echo, "a1"), 0);
    struct buf r;
    char req[] = "POST /echo?name=a+b%20c&flag&nul=x%00y HTTP/1.1\r\nHost: x\r\n"
                 "Connection: close\r\nX-Test: t1\r\nContent-Length: 5\r\n\r\nhello";
    hits = 0;
    exchange(req, &r);
    assert_int_equal(status_of(&r), 201);
    assert_string_equal(header_of(&r, "Content-Type"), "text/x-echo");
    assert_string_equal(header_of(&r, "X-Echo"), "yes");
    assert_string_equal(body_of(&r), "POST /echo name=a b c flag= nul=no h=t1 client=127.0.0.1 "
                                     "arg=a1 len=5 body=hello");
    assert_int_equal(hits, 1);
    buf_free(&r);
    /* a route path only: other methods get 405 naming it, GET falls to files */
    assert_int_equal(request("DELETE", "/echo", NULL, &r), 405);
    assert_string_equal(header_of(&r, "Allow"), "GET, HEAD, POST");
    buf_free(&r);
    assert_int_equal(request("GET", "/echo", NULL, &r), 404);
    buf_free(&r);
    /* an exact route does not take the paths under it */
    assert_int_equal(request("POST", "/echo/x", "Content-Length: 0\r\n", &r), 405);
    buf_free(&r);
    assert_int_equal(hits, 1);
}

/* Answering later: http_suspend in the handler, http_resume from outside. */
static struct http_ticket *ticket;
static const struct http_request *held;

static enum http_verdict later(const struct http_request *rq, struct http_response *rs, void *arg)
{
    (void)rs;
    (void)arg;
    held = rq;
    ticket = http_suspend(rq);
    return ticket ? HTTP_SUSPEND : HTTP_ERROR;
}

static void test_suspend_resume(void **state)
{
    (void)state;
    assert_int_equal(http_route(srv, "POST", "/later", later, NULL), 0);
    const char req[] = "POST /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Content-Length: 5\r\n\r\nhello";
    int fd = connect_srv();
    struct buf r;
    buf_init(&r, 1 << 20);
    ticket = NULL;
    int64_t end = now_ms() + 5000;
    size_t sent = 0;
    while (!ticket && now_ms() < end) {
        pump(10);
        ssize_t n = sent < sizeof req - 1 ? send(fd, req + sent, sizeof req - 1 - sent, 0) : 0;
        if (n > 0)
            sent += (size_t)n;
    }
    assert_non_null(ticket);
    for (int i = 0; i < 10; i++) /* nothing is answered while it waits */
        pump(10);
    assert_int_equal(drain(fd, &r), 0);
    assert_int_equal(r.len, 0);
    /* the request is still whole */
    assert_string_equal(held->path, "/later");
    assert_string_equal(held->body, "hello");
    struct http_response rs;
    http_response_prepare(&rs);
    rs.status = 202;
    assert_int_equal(buf_puts(&rs.body, "later"), 0);
    assert_int_equal(http_response_header(&rs, "X-Later", "1"), 0);
    http_resume(ticket, &rs);
    http_response_release(&rs); /* emptied by http_resume */
    end = now_ms() + 5000;
    while (now_ms() < end) {
        pump(10);
        if (drain(fd, &r))
            break;
    }
    close(fd);
    assert_int_equal(status_of(&r), 202);
    assert_string_equal(header_of(&r, "X-Later"), "1");
    assert_string_equal(body_of(&r), "later");
    buf_free(&r);

    /* one still waiting when the server stops is answered 503 */
    fd = connect_srv();
    buf_init(&r, 1 << 20);
    ticket = NULL;
    sent = 0;
    end = now_ms() + 5000;
    while (!ticket && now_ms() < end) {
        pump(10);
        ssize_t n = sent < sizeof req - 1 ? send(fd, req + sent, sizeof req - 1 - sent, 0) : 0;
        if (n > 0)
            sent += (size_t)n;
    }
    assert_non_null(ticket);
    http_stop(srv);
    srv = NULL;
    end = now_ms() + 2000;
    while (now_ms() < end && !drain(fd, &r))
        usleep(10000);
    close(fd);
    assert_int_equal(status_of(&r), 503);
    buf_free(&r);
}

static void test_route_body_cap(void **state)
{
    (void)state;
    assert_int_equal(http_route_capped(srv, "POST", "/echo", 16, echo, "a1"), 0);
    struct buf r;
    char big[256];
    memset(big, 'x', sizeof big);
    char req[1024];
    hits = 0;
    /* Content-Length over the cap: answered before the body */
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             "Content-Length: 17\r\n\r\n%.17s",
             big);
    exchange(req, &r);
    assert_int_equal(status_of(&r), 413);
    buf_free(&r);
    /* chunked, no length: cut when the cap is passed */
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             "Transfer-Encoding: chunked\r\n\r\n10\r\n%.16s\r\n10\r\n%.16s\r\n0\r\n\r\n",
             big, big);
    exchange(req, &r);
    assert_int_equal(status_of(&r), 413);
    buf_free(&r);
    /* exactly the cap is fine */
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             "Content-Length: 16\r\n\r\n%.16s",
             big);
    exchange(req, &r);
    assert_int_equal(status_of(&r), 201);
    assert_non_null(strstr(body_of(&r), "len=16"));
    buf_free(&r);
    assert_int_equal(hits, 1);
    /* the server's default cap (4096 here) for http_route() */
    assert_int_equal(http_route(srv, "PUT", "/put", echo, "a2"), 0);
    snprintf(req, sizeof req,
             "PUT /put HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4097\r\n\r\n");
    exchange(req, &r);
    assert_int_equal(status_of(&r), 413);
    buf_free(&r);
}

static void test_route_order(void **state)
{
    (void)state;
    assert_int_equal(http_route(srv, "GET", "/posts/", pass, NULL), 0);
    assert_int_equal(http_route(srv, NULL, "/api/", echo, "short"), 0);
    assert_int_equal(http_route(srv, NULL, "/api/deep/", echo, "long"), 0);
    assert_int_equal(http_route(srv, "GET", "/boom", broken, NULL), 0);
    assert_int_equal(http_route(srv, "GET", "nope", pass, NULL), -1);
    struct buf r;
    hits = 0;
    /* HTTP_NEXT: the static file still answers */
    assert_int_equal(request("GET", "/posts/" ARABIC_PCT "/", NULL, &r), 200);
    assert_string_equal(body_of(&r), "<p>salam</p>\n");
    assert_int_equal(hits, 1);
    buf_free(&r);
    /* longest prefix first; NULL method takes any */
    assert_int_equal(request("PATCH", "/api/deep/x", NULL, &r), 201);
    assert_non_null(strstr(body_of(&r), "arg=long"));
    buf_free(&r);
    assert_int_equal(request("GET", "/api/x", NULL, &r), 201);
    assert_non_null(strstr(body_of(&r), "arg=short"));
    buf_free(&r);
    /* paths are matched decoded and normalised */
    assert_int_equal(request("GET", "/%61pi//./deep/y", NULL, &r), 201);
    assert_non_null(strstr(body_of(&r), "/api/deep/y name"));
    buf_free(&r);
    assert_int_equal(request("GET", "/boom", NULL, &r), 500);
    buf_free(&r);
}

static void test_response_header_injection(void **state)
{
    (void)state;
    struct http_response rs = {.status = 200};
    buf_init(&rs.body, 1024);
    buf_init(&rs.headers, 1024);
    assert_int_equal(http_response_header(&rs, "X-Bad", "a\r\nSet-Cookie: x=1"), -1);
    assert_int_equal(http_response_header(&rs, "X-Bad", "a\nb"), -1);
    assert_int_equal(http_response_header(&rs, "X Bad", "a"), -1);
    assert_int_equal(http_response_header(&rs, "", "a"), -1);
    assert_int_equal(rs.headers.len, 0);
    assert_int_equal(http_response_header(&rs, "Cache-Control", "no-cache"), 0);
    assert_int_equal(http_response_text(&rs, 418, "teapot"), 0);
    assert_int_equal(rs.status, 418);
    assert_string_equal(buf_str(&rs.body), "teapot\n");
    buf_free(&rs.body);
    buf_free(&rs.headers);
}

/* ---- built-in routes ------------------------------------------------------- */

static int metrics_cb(void *arg, struct buf *out)
{
    (void)arg;
    return buf_puts(out, "# TYPE nashra_posts gauge\nnashra_posts 42");
}

static int metrics_fail(void *arg, struct buf *out)
{
    (void)arg;
    (void)out;
    return -1;
}

static void test_healthz_metrics(void **state)
{
    (void)state;
    struct buf r;
    assert_int_equal(request("GET", "/healthz", NULL, &r), 200);
    assert_string_equal(body_of(&r), "ok\n");
    buf_free(&r);
    assert_int_equal(request("GET", "/missing", NULL, &r), 404);
    buf_free(&r);
    http_set_metrics(srv, metrics_cb, NULL);
    assert_int_equal(request("GET", "/metrics", NULL, &r), 200);
    assert_string_equal(header_of(&r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    const char *b = body_of(&r);
    assert_non_null(strstr(b, "nashra_posts 42\n# HELP nashra_http_requests_total"));
    assert_non_null(strstr(b, "nashra_http_requests_total{code=\"200\"} 1\n"));
    assert_non_null(strstr(b, "nashra_http_requests_total{code=\"404\"} 1\n"));
    assert_non_null(strstr(b, "# TYPE nashra_http_connections gauge\n"));
    buf_free(&r);
    http_set_metrics(srv, metrics_fail, NULL);
    assert_int_equal(request("GET", "/metrics", NULL, &r), 500);
    buf_free(&r);
    assert_int_equal(request("POST", "/healthz", "Content-Length: 0\r\n", &r), 405);
    buf_free(&r);
}

static void test_set_root(void **state)
{
    (void)state;
    struct buf r;
    http_set_root(srv, root2);
    assert_int_equal(request("GET", "/", NULL, &r), 200);
    assert_string_equal(body_of(&r), "other root\n");
    buf_free(&r);
    http_set_root(srv, "/nonexistent/nashra");
    assert_int_equal(request("GET", "/", NULL, &r), 404);
    buf_free(&r);
    http_set_root(srv, root);
}

/* ---- limits ---------------------------------------------------------------- */

/* A client trickling its request in (never idle long enough for the idle
 * timeout) is cut at the request deadline (2 s), an idle one at the idle
 * timeout (1 s), and others are served meanwhile. */
static void test_slow_clients(void **state)
{
    (void)state;
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    int slow = connect_srv(), idle = connect_srv();
    int64_t t0 = now_ms(), slow_cut = 0, idle_cut = 0, next = t0;
    size_t sent = 0;
    int served = 0;
    struct buf junk;
    buf_init(&junk, 1 << 20);
    while (now_ms() - t0 < 6000 && (!slow_cut || !idle_cut)) {
        pump(20);
        if (!slow_cut && now_ms() >= next && sent < sizeof req - 1) {
            ssize_t n = send(slow, req + sent, 1, MSG_NOSIGNAL);
            sent += n > 0 ? (size_t)n : 0;
            next = now_ms() + 300;
        }
        if (!slow_cut && drain(slow, &junk))
            slow_cut = now_ms() - t0;
        if (!idle_cut && drain(idle, &junk))
            idle_cut = now_ms() - t0;
        if (!served && now_ms() - t0 > 500) { /* another client, meanwhile */
            struct buf r;
            assert_int_equal(request("GET", "/feed.xml", NULL, &r), 200);
            buf_free(&r);
            served = 1;
        }
    }
    close(slow);
    close(idle);
    assert_int_equal(junk.len, 0); /* neither got an answer */
    buf_free(&junk);
    assert_true(served);
    assert_true(sent < sizeof req - 1); /* cut before its request was whole */
    assert_true(slow_cut >= 1900 && slow_cut < 3500);
    assert_true(idle_cut >= 900 && idle_cut < 2900);
    struct buf r;
    assert_int_equal(request("GET", "/metrics", NULL, &r), 200);
    assert_non_null(strstr(body_of(&r), "nashra_http_request_timeouts_total 1\n"));
    buf_free(&r);
}

/* Two requests on one kept-alive connection. */
static void test_keep_alive(void **state)
{
    (void)state;
    static const char req[] = "GET /feed.xml HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /atom.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    struct buf r;
    exchange(req, &r);
    assert_int_equal(status_of(&r), 200);
    assert_non_null(strstr(buf_str(&r), "<rss"));
    assert_non_null(strstr(buf_str(&r), "<feed/>"));
    buf_free(&r);
}

/* A file renamed over while being sent: the response is the old file whole. */
static void test_replaced_while_sending(void **state)
{
    (void)state;
    size_t size = 16u << 20;
    char *data = malloc(size);
    assert_non_null(data);
    memset(data, 'A', size);
    char p[256], tmp[256];
    snprintf(p, sizeof p, "%s/big.bin", root);
    snprintf(tmp, sizeof tmp, "%s/big.tmp", root);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, size, fp), size);
    assert_int_equal(fclose(fp), 0);

    int fd = connect_srv();
    static const char req[] = "GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    struct buf r;
    buf_init(&r, 64u << 20);
    int replaced = 0;
    int64_t end = now_ms() + 10000;
    assert_int_equal(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
    while (now_ms() < end) {
        pump(10);
        if (drain(fd, &r))
            break;
        if (!replaced && r.len > 0) {
            memset(data, 'B', size);
            fp = fopen(tmp, "w");
            assert_non_null(fp);
            assert_int_equal(fwrite(data, 1, size / 2, fp), size / 2);
            assert_int_equal(fclose(fp), 0);
            assert_int_equal(rename(tmp, p), 0);
            replaced = 1;
        }
    }
    close(fd);
    assert_true(replaced);
    const char *b = body_of(&r);
    size_t blen = r.len - (size_t)(b - r.data);
    assert_int_equal(blen, size);
    assert_null(memchr(b, 'B', blen));
    buf_free(&r);
    /* the next request gets the new file */
    assert_int_equal(request("HEAD", "/big.bin", NULL, &r), 200);
    assert_int_equal(atoll(header_of(&r, "Content-Length")), size / 2);
    buf_free(&r);
    unlink(p);
    free(data);
}

/* Expect: 100-continue with a body over the cap: 413 at once, no 100. */
static void test_expect_continue(void **state)
{
    (void)state;
    assert_int_equal(http_route_capped(srv, "POST", "/echo", 16, echo, "a1"), 0);
    struct buf r;
    assert_int_equal(
        request("POST", "/echo", "Content-Length: 1000000\r\nExpect: 100-continue\r\n", &r), 413);
    assert_null(strstr(buf_str(&r), "100 Continue"));
    buf_free(&r);
    assert_int_equal(request("HEAD", "/healthz", NULL, &r), 200);
    assert_string_equal(header_of(&r, "Content-Length"), "3");
    assert_string_equal(body_of(&r), "");
    buf_free(&r);
}

/* Headers past the connection's memory: refused, and the server goes on. */
static void test_huge_headers(void **state)
{
    (void)state;
    size_t n = 200 * 1024;
    char *req = malloc(n + 256);
    assert_non_null(req);
    int len = snprintf(req, 256, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ");
    memset(req + len, 'a', n);
    memcpy(req + len + n, "\r\n\r\n", 5);
    struct buf r;
    exchange_fd(connect_srv(), req, strlen(req), &r);
    free(req);
    int code = status_of(&r);
    assert_true(code == -1 || code == 431 || code == 413 || code == 400);
    buf_free(&r);
    assert_int_equal(request("GET", "/healthz", NULL, &r), 200);
    buf_free(&r);
}

/* Garbage of every kind: never a crash, never a server error, and the server
 * goes on. */
static void test_garbage(void **state)
{
    (void)state;
    static const char *const reqs[] = {
        "\r\n\r\n",
        "GET\r\n\r\n",
        "GET / HTTP/9.9\r\n\r\n",
        "GET  HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET http://evil/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /%%%% HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /\x01\x02 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: W/\r\nConnection: close\r\n\r\n",
        ("GET / HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: Sun, 99 Nov 1994 08:49:37 GMT\r\n"
         "Connection: close\r\n\r\n"),
    };
    assert_int_equal(http_route(srv, "POST", "/x", echo, "g"), 0);
    unsigned seed = 7;
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0] + 50; i++) {
        char rnd[300];
        const char *req = i < sizeof reqs / sizeof reqs[0] ? reqs[i] : rnd;
        if (req == rnd) { /* a request line with random bytes in the target */
            int len = snprintf(rnd, sizeof rnd, "GET /");
            for (int k = 0; k < 40; k++) {
                seed = seed * 1103515245u + 12345u;
                char ch = (char)((seed >> 16) & 0xff);
                rnd[len++] = ch == '\r' || ch == '\n' || ch == ' ' || !ch ? '%' : ch;
            }
            snprintf(rnd + len, sizeof rnd - (size_t)len,
                     " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        }
        struct buf r;
        exchange_fd(connect_srv(), req, strlen(req), &r);
        int code = status_of(&r);
        if (code >= 500 && code != 505) /* 505: HTTP/9.9 */
            fail_msg("request %zu: status %d", i, code);
        buf_free(&r);
    }
    struct buf r;
    assert_int_equal(request("GET", "/healthz", NULL, &r), 200);
    buf_free(&r);
}

/* A third connection from one address past max_per_ip = 2 is refused. */
static void test_per_ip_limit(void **state)
{
    (void)state;
    struct http_opts o = {.max_per_ip = 2};
    struct diag err = {0};
    struct http_server *main_srv = srv;
    srv = http_start_opts("127.0.0.1:0", root, &o, &err);
    assert_non_null(srv);
    int a = connect_srv(), b = connect_srv();
    for (int i = 0; i < 5; i++)
        pump(10);
    struct buf r;
    assert_int_equal(request("GET", "/healthz", NULL, &r), -1); /* closed unanswered */
    buf_free(&r);
    close(a);
    for (int i = 0; i < 5; i++)
        pump(10);
    assert_int_equal(request("GET", "/healthz", NULL, &r), 200); /* room again */
    buf_free(&r);
    close(b);
    http_stop(srv);
    srv = main_srv;
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

/* Start and stop leave no descriptor behind (the listening socket included). */
static void test_no_fd_leak(void **state)
{
    (void)state;
    int before = count_fds();
    struct diag err = {0};
    for (int i = 0; i < 3; i++) {
        struct http_server *s = http_start("127.0.0.1:0", root, &err);
        assert_non_null(s);
        http_stop(s);
    }
    assert_null(http_start("127.0.0.1:x", root, &err));
    assert_int_equal(count_fds(), before);
}

/* ---- start errors and addresses ------------------------------------------- */

static void test_listen_forms(void **state)
{
    (void)state;
    struct diag err = {0};
    assert_null(http_start("nonsense", root, &err));
    assert_non_null(strstr(err.msg, "expected HOST:PORT"));
    assert_null(http_start("::1:80", root, &err)); /* IPv6 without brackets */
    assert_null(http_start("127.0.0.1:99999", root, &err));
    assert_null(http_start("127.0.0.1:", root, &err));
    char taken[64];
    snprintf(taken, sizeof taken, "127.0.0.1:%d", http_port(srv));
    assert_null(http_start(taken, root, &err));
    assert_non_null(strstr(err.msg, "in use"));

    struct http_server *any = http_start(":0", root, &err);
    assert_non_null(any);
    assert_true(http_port(any) > 0);
    assert_true(http_fd(any) >= 0);
    http_stop(any);
    struct http_server *v6 = http_start("[::1]:0", root, &err);
    if (v6) /* the machine may have no IPv6 loopback */
        assert_true(http_port(v6) > 0);
    http_stop(v6);
    http_stop(NULL);
}

/* ---- pure helpers ---------------------------------------------------------- */

static void expect_norm(const char *raw, const char *want)
{
    char out[HTTP_PATH_MAX];
    const char *why;
    int r = http_path_normalise(raw, out, sizeof out, &why);
    if (!want) {
        if (r != -1)
            fail_msg("%s: accepted as %s", raw, out);
        assert_non_null(why);
        return;
    }
    if (r != 0)
        fail_msg("%s: refused: %s", raw, why);
    assert_string_equal(out, want);
}

static void test_path_normalise(void **state)
{
    (void)state;
    expect_norm("/", "/");
    expect_norm("/a/b", "/a/b");
    expect_norm("/a/b/", "/a/b/");
    expect_norm("//a///b//", "/a/b/");
    expect_norm("/a/./b/.", "/a/b/");
    expect_norm("/posts/" ARABIC_PCT "/", "/posts/" ARABIC_DIR "/");
    expect_norm("/%7euser", "/~user");
    expect_norm("/a%20b", "/a b");
    expect_norm("/..", NULL);
    expect_norm("/a/../b", NULL);
    expect_norm("/a/%2e%2E/b", NULL);
    expect_norm("/a%2fb", NULL);
    expect_norm("/a%00", NULL);
    expect_norm("/a%0a", NULL);
    expect_norm("/a%", NULL);
    expect_norm("/a%4", NULL);
    expect_norm("/a%g0", NULL);
    expect_norm("/%ff", NULL);
    expect_norm("/%ed%a0%80", NULL); /* a UTF-16 surrogate */
    expect_norm("a", NULL);
    expect_norm("", NULL);
    expect_norm("*", NULL);
    char long_path[HTTP_PATH_MAX + 8], out[HTTP_PATH_MAX];
    memset(long_path, 'a', sizeof long_path - 1);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = '\0';
    const char *why;
    assert_int_equal(http_path_normalise(long_path, out, sizeof out, &why), -1);
    assert_string_equal(why, "path too long");

    struct buf b;
    buf_init(&b, 1024);
    assert_int_equal(http_path_encode(&b, "/posts/" ARABIC_DIR "/a b/"), 0);
    assert_string_equal(buf_str(&b), "/posts/" ARABIC_PCT "/a%20b/");
    buf_free(&b);
    char q[] = "a%20b%2Bc", bad[] = "x%00", bad2[] = "x%2";
    assert_int_equal(http_query_decode(q), 0);
    assert_string_equal(q, "a b+c");
    assert_int_equal(http_query_decode(bad), -1);
    assert_int_equal(http_query_decode(bad2), -1);
}

static void test_dates(void **state)
{
    (void)state;
    char out[40];
    assert_string_equal(http_date_format(784111777, out, sizeof out),
                        "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_string_equal(http_date_format(1709251200, out, sizeof out),
                        "Fri, 01 Mar 2024 00:00:00 GMT");
    int64_t t;
    assert_int_equal(http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t), -1);
    assert_int_equal(http_date_parse("Sun Nov  6 08:49:37 1994", &t), -1);
    assert_int_equal(http_date_parse("Sun, 06 Nov 1994 08:49:37 UTC", &t), -1);
    assert_int_equal(http_date_parse("Sun, 06 Foo 1994 08:49:37 GMT", &t), -1);
    assert_int_equal(http_date_parse("Sun, 06 Nov 1994 25:49:37 GMT", &t), -1);
    assert_int_equal(http_date_parse("Sun, 0x Nov 1994 08:49:37 GMT", &t), -1);
    assert_int_equal(http_date_parse("", &t), -1);
}

static void test_etags(void **state)
{
    (void)state;
    struct stat st = {.st_ino = 0x10, .st_size = 0x20};
    st.st_mtim.tv_sec = 1;
    st.st_mtim.tv_nsec = 5;
    char e[80];
    http_etag(&st, e, sizeof e);
    assert_string_equal(e, "\"10-20-3b9aca05\"");
    st.st_mtim.tv_nsec = 6; /* a change within the same second is a new tag */
    char e2[80];
    http_etag(&st, e2, sizeof e2);
    assert_string_not_equal(e, e2);
    assert_int_equal(http_etag_match("\"10-20-3b9aca05\"", e), 1);
    assert_int_equal(http_etag_match("W/\"10-20-3b9aca05\"", e), 1);
    assert_int_equal(http_etag_match("\"a\" , \"10-20-3b9aca05\"", e), 1);
    assert_int_equal(http_etag_match("*", e), 1);
    assert_int_equal(http_etag_match("\"10-20-3b9aca0\"", e), 0);
    assert_int_equal(http_etag_match("10-20-3b9aca05", e), 0);
    assert_int_equal(http_etag_match("\"10-20-3b9aca05", e), 0);
    assert_int_equal(http_etag_match("", e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_if_none_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_if_modified_since, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arabic_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_slash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traversal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suspend_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_body_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_order, setup, teardown),
        cmocka_unit_test(test_response_header_injection),
        cmocka_unit_test_setup_teardown(test_healthz_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replaced_while_sending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_ip_limit, setup, teardown),
        cmocka_unit_test(test_no_fd_leak),
        cmocka_unit_test_setup_teardown(test_listen_forms, setup, teardown),
        cmocka_unit_test(test_path_normalise),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_etags),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
