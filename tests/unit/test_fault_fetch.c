/*
 * test_fault_fetch: fault injection on remote fetches (ap/fetch.c), against
 * misbehaving servers on 127.0.0.1 run in a thread of this test (real
 * sockets, real libcurl): an inbox that accepts and never answers (the
 * default 10 s total timeout ends it, with "timed out"), one that trickles a
 * byte a second (the total timeout holds, not a per-read one), one that
 * claims a 2 GiB body and streams it, and one that streams a chunked body
 * without end. The last two must stop at the 1 MiB cap with "body larger
 * than", having read far less than was offered, and without memory growing
 * past a few MiB. Each server counts the bytes it got to send.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../../ap/fetch.h"

enum mode { SILENT, TRICKLE, CLAIMS_2G, ENDLESS_CHUNKED };

struct server {
    enum mode mode;
    int lfd;
    int port;
    pthread_t thread;
    _Atomic long long sent; /* body bytes the client took */
    _Atomic int got_request;
};

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *serve_one(void *arg)
{
    struct server *s = arg;
    char req[8192];
    size_t got = 0;
    static char chunk[65536];
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    /* Nothing here waits longer than the test could: 30 s at most. */
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    while (got < sizeof req - 1) {
        ssize_t n = recv(fd, req + got, sizeof req - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n")) {
            s->got_request = 1;
            break;
        }
    }
    memset(chunk, 'a', sizeof chunk);
    switch (s->mode) {
    case SILENT: /* read on until the client gives up */
        while (recv(fd, req, sizeof req, 0) > 0)
            ;
        break;
    case TRICKLE: { /* one header byte a second, for ever */
        const char *hdr = "HTTP/1.1 200 OK\r\nX-Slow: ";
        if (send_all(fd, hdr, strlen(hdr)) < 0)
            break;
        while (send_all(fd, "a", 1) == 0) {
            s->sent++;
            sleep(1);
        }
        break;
    }
    case CLAIMS_2G: {
        const char *hdr = "HTTP/1.1 200 OK\r\nContent-Type: application/activity+json\r\n"
                          "Content-Length: 2147483648\r\n\r\n";
        if (send_all(fd, hdr, strlen(hdr)) < 0)
            break;
        for (long long left = 2147483648LL; left > 0; left -= (long long)sizeof chunk) {
            if (send_all(fd, chunk, sizeof chunk) < 0)
                break;
            s->sent += (long long)sizeof chunk;
        }
        break;
    }
    case ENDLESS_CHUNKED: {
        const char *hdr = "HTTP/1.1 200 OK\r\nContent-Type: application/activity+json\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n";
        char head[32];
        int hl = snprintf(head, sizeof head, "%zx\r\n", sizeof chunk);
        if (send_all(fd, hdr, strlen(hdr)) < 0)
            break;
        for (;;) { /* stops only when the client hangs up */
            if (send_all(fd, head, (size_t)hl) < 0 || send_all(fd, chunk, sizeof chunk) < 0 ||
                send_all(fd, "\r\n", 2) < 0)
                break;
            s->sent += (long long)sizeof chunk;
        }
        break;
    }
    }
    close(fd);
    return NULL;
}

static void server_start(struct server *s, enum mode m)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    memset(s, 0, sizeof *s);
    s->mode = m;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve_one, s), 0);
}

static void server_join(struct server *s)
{
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static long max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* One fetch of http://127.0.0.1:PORT/inbox; its result, time and diag. */
static int fetch(const struct server *s, long timeout_ms, struct buf *body, double *took,
                 struct diag *why)
{
    struct ap_fetch_opts o = {.allow_insecure_loopback = 1,
                              .timeout_ms = timeout_ms,
                              .version = "0.1.0",
                              .site_url = "https://news.example.org"};
    char url[64];
    long status = 0;
    struct timespec t0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/inbox", s->port);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = ap_fetch(&o, url, NULL, 0, body, &status, why);
    *took = seconds_since(&t0);
    fprintf(stderr, "fault_fetch: rc=%d took=%.2fs body=%zu error=\"%s\"\n", rc, *took, body->len,
            rc ? why->msg : "");
    return rc;
}

/* An inbox that accepts, reads the request and never answers: the default
 * total timeout (10 s, SPEC §7) ends the fetch, not much later. */
static void test_never_answers(void **state)
{
    struct server s;
    struct buf body;
    struct diag why = {0};
    double took;
    (void)state;
    buf_init(&body, 0);
    server_start(&s, SILENT);
    assert_int_equal(fetch(&s, 0, &body, &took, &why), AP_FETCH_E_TIMEOUT);
    server_join(&s);
    assert_true(s.got_request);
    assert_string_equal(why.msg, "timed out");
    assert_true(took >= AP_FETCH_TIMEOUT_MS / 1000.0 - 0.5);
    assert_true(took < AP_FETCH_TIMEOUT_MS / 1000.0 + 5);
    assert_int_equal(body.len, 0);
    buf_free(&body);
}

/* A byte a second keeps every read alive: only a total timeout stops it. */
static void test_trickle(void **state)
{
    struct server s;
    struct buf body;
    struct diag why = {0};
    double took;
    (void)state;
    buf_init(&body, 0);
    server_start(&s, TRICKLE);
    assert_int_equal(fetch(&s, 2500, &body, &took, &why), AP_FETCH_E_TIMEOUT);
    server_join(&s);
    assert_string_equal(why.msg, "timed out");
    assert_true(took >= 2.0 && took < 7.5);
    buf_free(&body);
}

/* Claims 2 GiB (Content-Length) and sends them: refused at the cap. */
static void test_claims_2gib(void **state)
{
    struct server s;
    struct buf body;
    struct diag why = {0};
    double took;
    long rss0 = max_rss_kib();
    (void)state;
    buf_init(&body, 0);
    server_start(&s, CLAIMS_2G);
    assert_int_equal(fetch(&s, 0, &body, &took, &why), AP_FETCH_E_TOOBIG);
    server_join(&s);
    fprintf(stderr, "fault_fetch: 2 GiB claimed, %lld bytes sent, max rss +%ld KiB\n",
            (long long)s.sent, max_rss_kib() - rss0);
    assert_non_null(strstr(why.msg, "body larger than 1048576 bytes"));
    assert_true(body.len <= AP_FETCH_MAX_BODY);
    /* What the sockets' buffers held, no more: far from 2 GiB. */
    assert_true(s.sent < 64LL * 1024 * 1024);
    assert_true(max_rss_kib() - rss0 < 16 * 1024);
    assert_true(took < AP_FETCH_TIMEOUT_MS / 1000.0);
    buf_free(&body);
}

/* No length, chunks for ever: cut at 1 MiB of body. */
static void test_endless_chunked(void **state)
{
    struct server s;
    struct buf body;
    struct diag why = {0};
    double took;
    long rss0 = max_rss_kib();
    (void)state;
    buf_init(&body, 0);
    server_start(&s, ENDLESS_CHUNKED);
    assert_int_equal(fetch(&s, 0, &body, &took, &why), AP_FETCH_E_TOOBIG);
    server_join(&s);
    fprintf(stderr, "fault_fetch: endless chunked, %lld bytes sent, max rss +%ld KiB\n",
            (long long)s.sent, max_rss_kib() - rss0);
    assert_non_null(strstr(why.msg, "body larger than 1048576 bytes"));
    assert_true(body.len <= AP_FETCH_MAX_BODY);
    assert_true(s.sent >= AP_FETCH_MAX_BODY / 2); /* it did read a good part */
    assert_true(s.sent < 64LL * 1024 * 1024);
    assert_true(max_rss_kib() - rss0 < 16 * 1024);
    assert_true(took < AP_FETCH_TIMEOUT_MS / 1000.0);
    buf_free(&body);
}

static int setup(void **state)
{
    (void)state;
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claims_2gib),
        cmocka_unit_test(test_endless_chunked),
        cmocka_unit_test(test_trickle),
        cmocka_unit_test(test_never_answers),
    };
    return cmocka_run_group_tests_name("fault_fetch", tests, setup, teardown) ? 1 : 0;
}
