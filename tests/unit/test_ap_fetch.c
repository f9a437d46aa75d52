/*
 * test_ap_fetch: the remote fetch policy (ap/fetch.c). A table of addresses
 * (private, loopback, link-local, CGNAT, multicast, reserved, documentation,
 * IPv4-mapped, and public ones) through ap_fetch_addr_ok; a table of URLs
 * through ap_fetch_url_ok; and real fetches with libcurl against a real HTTP
 * server (tests/unit/fetch_server.py, Python's http.server on a free port of
 * 127.0.0.1, started once for the group), which logs every request it gets:
 * a fetch with allow_insecure_loopback returns body and status and sends our
 * Accept, User-Agent and extra headers; without it the fetch is refused and
 * the server saw nothing (both for the URL check and, through "localhost",
 * for the connect-time address check); a 2 MiB body is cut off; a slow
 * server times out; a redirect to http://10.0.0.1/ is refused, one to the
 * same server followed, and a redirect loop stops.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../../ap/fetch.h"

/* --- addresses ------------------------------------------------------------------ */

struct addr_case {
    const char *ip;
    int ok;          /* allowed without loopback */
    int ok_loopback; /* allowed with allow_loopback */
};

static const struct addr_case addrs[] = {
    {"10.0.0.1", 0, 0},
    {"10.255.255.255", 0, 0},
    {"172.16.0.1", 0, 0},
    {"172.31.255.254", 0, 0},
    {"172.15.255.255", 1, 1},
    {"172.32.0.1", 1, 1},
    {"192.168.1.1", 0, 0},
    {"127.0.0.1", 0, 1},
    {"127.255.0.9", 0, 1},
    {"169.254.169.254", 0, 0},
    {"100.64.0.1", 0, 0},
    {"100.127.255.255", 0, 0},
    {"100.128.0.1", 1, 1},
    {"0.0.0.0", 0, 0},
    {"224.0.0.1", 0, 0},
    {"239.255.255.250", 0, 0},
    {"240.0.0.1", 0, 0},
    {"255.255.255.255", 0, 0},
    {"192.0.2.1", 0, 0},
    {"198.51.100.7", 0, 0},
    {"203.0.113.9", 0, 0},
    {"198.18.0.1", 0, 0},
    {"93.184.216.34", 1, 1},
    {"8.8.8.8", 1, 1},
    {"::", 0, 0},
    {"::1", 0, 1},
    {"fe80::1", 0, 0},
    {"fc00::1", 0, 0},
    {"fd12:3456::1", 0, 0},
    {"ff02::1", 0, 0},
    {"fec0::1", 0, 0},
    {"::ffff:127.0.0.1", 0, 1},
    {"::ffff:10.0.0.1", 0, 0},
    {"::ffff:93.184.216.34", 1, 1},
    {"::127.0.0.1", 0, 0},
    {"64:ff9b::a00:1", 0, 0},
    {"64:ff9b::5db8:d822", 1, 1},
    {"2002:a00:1::1", 0, 0},
    {"2001:db8::", 0, 0},
    {"2001:db8:1::5", 0, 0},
    {"2001:0:4136:e378::1", 0, 0},
    {"3fff::1", 0, 0},
    {"100::1", 0, 0},
    {"2606:2800:220:1:248:1893:25c8:1946", 1, 1},
    {"2a00:1450:4001:80b::200e", 1, 1},
};

static void test_addr_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, addrs[i].ip, &in->sin_addr) == 1) {
            in->sin_family = AF_INET;
        } else {
            assert_int_equal(inet_pton(AF_INET6, addrs[i].ip, &in6->sin6_addr), 1);
            in6->sin6_family = AF_INET6;
        }
        int got = ap_fetch_addr_ok((struct sockaddr *)&ss, 0);
        int got_lo = ap_fetch_addr_ok((struct sockaddr *)&ss, 1);
        if (got != addrs[i].ok || got_lo != addrs[i].ok_loopback)
            fail_msg("%s: got %d/%d, want %d/%d", addrs[i].ip, got, got_lo, addrs[i].ok,
                     addrs[i].ok_loopback);
    }
    struct sockaddr other = {.sa_family = AF_UNIX};
    assert_false(ap_fetch_addr_ok(&other, 1));
    assert_false(ap_fetch_addr_ok(NULL, 1));
}

/* --- URLs ------------------------------------------------------------------------- */

struct url_case {
    const char *url;
    int ok;          /* accepted without allow_insecure_loopback */
    int ok_loopback; /* accepted with it */
};

static const struct url_case urls[] = {
    {"https://example.org/users/a", 1, 1},
    {"https://example.org:8443/users/a", 1, 1},
    {"HTTPS://Example.ORG/x?y=1#k", 1, 1},
    {"https://93.184.216.34/actor", 1, 1},
    {"https://[2606:2800:220:1:248:1893:25c8:1946]/actor", 1, 1},
    {"http://example.org/users/a", 0, 0},
    {"http://127.0.0.1/actor", 0, 1},
    {"http://127.0.0.1:8080/actor", 0, 1},
    {"http://[::1]:8080/actor", 0, 1},
    {"http://localhost:8080/actor", 0, 1},
    {"http://127.0.0.2/actor", 0, 0},
    {"http://10.0.0.1/", 0, 0},
    {"https://10.0.0.1/", 0, 0},
    {"https://192.168.0.1/", 0, 0},
    {"https://127.0.0.1/actor", 0, 1},
    {"https://[::1]/actor", 0, 1},
    {"https://[fe80::1%25eth0]/", 0, 0},
    {"https://[::ffff:10.0.0.1]/", 0, 0},
    {"https://0x7f.1/actor", 0, 1},
    {"https://2130706433/actor", 0, 1},
    {"https://user:pw@example.org/", 0, 0},
    {"https://user@example.org/", 0, 0},
    {"http://user@127.0.0.1/", 0, 0},
    {"ftp://example.org/", 0, 0},
    {"file:///etc/passwd", 0, 0},
    {"gopher://127.0.0.1/", 0, 0},
    {"//example.org/actor", 0, 0},
    {"/actor", 0, 0},
    {"not a url", 0, 0},
    {"https://", 0, 0},
    {"https:///actor", 0, 0},
    {"https://exa mple.org/", 0, 0},
    {"https://example.org/\r\nX-Evil: 1", 0, 0},
    {"", 0, 0},
};

static void test_url_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        struct diag why = {0};
        int got = ap_fetch_url_ok(urls[i].url, 0, &why) == 0;
        int got_lo = ap_fetch_url_ok(urls[i].url, 1, &why) == 0;
        if (got != urls[i].ok || got_lo != urls[i].ok_loopback)
            fail_msg("%s: got %d/%d, want %d/%d (%s)", urls[i].url, got, got_lo, urls[i].ok,
                     urls[i].ok_loopback, why.msg);
        if (!got)
            assert_true(why.msg[0] != '\0');
    }
    struct diag why = {0};
    assert_int_equal(ap_fetch_url_ok(NULL, 1, &why), -1);
    char *longurl = malloc(AP_FETCH_MAX_URL + 64);
    assert_non_null(longurl);
    strcpy(longurl, "https://example.org/");
    memset(longurl + 20, 'a', AP_FETCH_MAX_URL);
    longurl[AP_FETCH_MAX_URL + 20] = '\0';
    assert_int_equal(ap_fetch_url_ok(longurl, 0, &why), -1);
    free(longurl);
}

/* --- the HTTP server -------------------------------------------------------------- */

static pid_t srv_pid;
static int srv_port;
static char srv_dir[64];
static char srv_log[128];

static const char *server_script(void)
{
    static char p[512];
    const char *slash = strrchr(__FILE__, '/');
    int n = slash ? (int)(slash - __FILE__) : 0;
    snprintf(p, sizeof p, "%.*s%sfetch_server.py", n, __FILE__, slash ? "/" : "");
    return p;
}

static int server_up(void **state)
{
    int pfd[2];
    char line[64] = "";
    size_t got = 0;

    (void)state;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    snprintf(srv_dir, sizeof srv_dir, "/tmp/test_ap_fetch.XXXXXX");
    if (!mkdtemp(srv_dir) || pipe(pfd) < 0)
        return -1;
    snprintf(srv_log, sizeof srv_log, "%s/log", srv_dir);
    srv_pid = fork();
    if (srv_pid < 0)
        return -1;
    if (srv_pid == 0) {
        const char *argv[] = {"/usr/bin/python3", server_script(), "--log", srv_log, NULL};
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    while (got < sizeof line - 1 && !strchr(line, '\n')) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        if (poll(&p, 1, 20000) <= 0)
            break;
        ssize_t n = read(pfd[0], line + got, sizeof line - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        line[got] = '\0';
    }
    close(pfd[0]);
    if (sscanf(line, "port %d", &srv_port) != 1) {
        fprintf(stderr, "fetch_server.py did not start: \"%s\"\n", line);
        return -1;
    }
    return 0;
}

static int server_down(void **state)
{
    (void)state;
    if (srv_pid > 0) {
        kill(srv_pid, SIGTERM);
        waitpid(srv_pid, NULL, 0);
    }
    srv_pid = 0;
    unlink(srv_log);
    rmdir(srv_dir);
    curl_global_cleanup();
    return 0;
}

/* How many requests for path the server has logged. */
static int seen(const char *path)
{
    char line[256];
    int n = 0;
    FILE *f = fopen(srv_log, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, path) == 0)
            n++;
    }
    fclose(f);
    return n;
}

static const char *url_of(const char *host, const char *path)
{
    static char u[256];
    snprintf(u, sizeof u, "http://%s:%d%s", host, srv_port, path);
    return u;
}

static struct ap_fetch_opts opts(int loopback, long timeout_ms)
{
    struct ap_fetch_opts o = {.allow_insecure_loopback = loopback,
                              .timeout_ms = timeout_ms,
                              .version = "0.1.0",
                              .site_url = "https://news.example.org"};
    return o;
}

/* --- fetches ------------------------------------------------------------------------ */

static void test_fetch_ok(void **state)
{
    struct ap_fetch_opts o = opts(1, 0);
    struct buf body;
    struct diag why = {0};
    long status = -1;

    (void)state;
    buf_init(&body, 0);
    int before = seen("/actor");
    assert_int_equal(ap_fetch(&o, url_of("127.0.0.1", "/actor"), NULL, 0, &body, &status, &why),
                     AP_FETCH_OK);
    assert_int_equal(status, 200);
    assert_string_equal(buf_str(&body), "{\"id\":\"http://127.0.0.1/actor\",\"type\":\"Person\"}");
    assert_int_equal(seen("/actor"), before + 1);

    /* A 404 is an answer: 0, with its status and body. */
    assert_int_equal(ap_fetch(&o, url_of("localhost", "/nope"), NULL, 0, &body, &status, &why),
                     AP_FETCH_OK);
    assert_int_equal(status, 404);
    assert_string_equal(buf_str(&body), "not found");
    buf_free(&body);
}

static void test_fetch_headers(void **state)
{
    struct ap_fetch_opts o = opts(1, 0);
    const char *hdrs[] = {"Date: Sun, 29 Nov 2026 04:00:00 GMT",
                          "Signature: keyId=\"https://news.example.org/ap/actor#main-key\""};
    struct buf body;
    struct diag why = {0};
    long status = 0;

    (void)state;
    buf_init(&body, 0);
    assert_int_equal(ap_fetch(&o, url_of("127.0.0.1", "/headers"), hdrs, 2, &body, &status, &why),
                     AP_FETCH_OK);
    assert_int_equal(status, 200);
    const char *b = buf_str(&body);
    assert_non_null(strstr(b, "Accept: application/activity+json, application/ld+json; "
                              "profile=\"https://www.w3.org/ns/activitystreams\"\n"));
    assert_non_null(strstr(b, "User-Agent: nashra/0.1.0 (+https://news.example.org)\n"));
    assert_non_null(strstr(b, "Date: Sun, 29 Nov 2026 04:00:00 GMT\n"));
    assert_non_null(strstr(b, "Signature: keyId=\"https://news.example.org/ap/actor#main-key\"\n"));

    /* A header with CR/LF would inject: refused before any request. */
    const char *bad[] = {"X-A: 1\r\nX-B: 2"};
    int before = seen("/headers");
    assert_int_equal(ap_fetch(&o, url_of("127.0.0.1", "/headers"), bad, 1, &body, &status, &why),
                     AP_FETCH_E_ARG);
    assert_int_equal(seen("/headers"), before);
    buf_free(&body);
}

static void test_fetch_refused_without_loopback(void **state)
{
    struct ap_fetch_opts o = opts(0, 0);
    struct buf body;
    struct diag why = {0};
    long status = 0;

    (void)state;
    buf_init(&body, 0);
    int before = seen("/actor");
    /* http to 127.0.0.1: refused by the URL check. */
    assert_int_equal(ap_fetch(&o, url_of("127.0.0.1", "/actor"), NULL, 0, &body, &status, &why),
                     AP_FETCH_E_URL);
    /* https to a name that resolves to loopback: refused at connect. */
    char u[128];
    snprintf(u, sizeof u, "https://localhost:%d/actor", srv_port);
    assert_int_equal(ap_fetch(&o, u, NULL, 0, &body, &status, &why), AP_FETCH_E_ADDR);
    assert_non_null(strstr(why.msg, "forbidden address"));
    assert_int_equal(status, 0);
    assert_int_equal(body.len, 0);
    assert_int_equal(seen("/actor"), before);
    buf_free(&body);
}

static void test_fetch_too_big(void **state)
{
    struct ap_fetch_opts o = opts(1, 0);
    struct buf body;
    struct diag why = {0};
    long status = 0;

    (void)state;
    buf_init(&body, 0);
    assert_int_equal(ap_fetch(&o, url_of("127.0.0.1", "/big"), NULL, 0, &body, &status, &why),
                     AP_FETCH_E_TOOBIG);
    assert_true(body.len <= AP_FETCH_MAX_BODY);
    assert_non_null(strstr(why.msg, "larger"));

    /* A smaller cap, and the buffer's own cap, hold as well. */
    o.max_body = 10;
    assert_int_equal(ap_fetch(&o, url_of("127.0.0.1", "/actor"), NULL, 0, &body, &status, &why),
                     AP_FETCH_E_TOOBIG);
    assert_true(body.len <= 10);
    o.max_body = 0;
    buf_free(&body);
    buf_init(&body, 16);
    assert_int_equal(ap_fetch(&o, url_of("127.0.0.1", "/actor"), NULL, 0, &body, &status, &why),
                     AP_FETCH_E_TOOBIG);
    buf_free(&body);
}

static void test_fetch_timeout(void **state)
{
    struct ap_fetch_opts o = opts(1, 1000);
    struct buf body;
    struct diag why = {0};
    long status = 0;
    struct timespec t0, t1;

    (void)state;
    buf_init(&body, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ap_fetch(&o, url_of("127.0.0.1", "/slow"), NULL, 0, &body, &status, &why),
                     AP_FETCH_E_TIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(took >= 0.9 && took < 2.5);
    buf_free(&body);
}

static void test_fetch_redirects(void **state)
{
    struct ap_fetch_opts o = opts(1, 0);
    struct buf body;
    struct diag why = {0};
    long status = 0;

    (void)state;
    buf_init(&body, 0);
    assert_int_equal(
        ap_fetch(&o, url_of("127.0.0.1", "/redir-private"), NULL, 0, &body, &status, &why),
        AP_FETCH_E_URL);
    assert_non_null(strstr(why.msg, "redirect refused"));
    assert_non_null(strstr(why.msg, "10.0.0.1"));

    int before = seen("/actor");
    assert_int_equal(ap_fetch(&o, url_of("127.0.0.1", "/redir-ok"), NULL, 0, &body, &status, &why),
                     AP_FETCH_OK);
    assert_int_equal(status, 200);
    assert_non_null(strstr(buf_str(&body), "Person"));
    assert_int_equal(seen("/actor"), before + 1);

    before = seen("/redir-loop");
    assert_int_equal(
        ap_fetch(&o, url_of("127.0.0.1", "/redir-loop"), NULL, 0, &body, &status, &why),
        AP_FETCH_E_REDIRECTS);
    assert_int_equal(seen("/redir-loop"), before + 1 + AP_FETCH_MAX_REDIRECTS);
    buf_free(&body);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_addr_table),
        cmocka_unit_test(test_url_table),
    };
    const struct CMUnitTest net[] = {
        cmocka_unit_test(test_fetch_ok),
        cmocka_unit_test(test_fetch_headers),
        cmocka_unit_test(test_fetch_refused_without_loopback),
        cmocka_unit_test(test_fetch_too_big),
        cmocka_unit_test(test_fetch_timeout),
        cmocka_unit_test(test_fetch_redirects),
    };
    int fails = cmocka_run_group_tests_name("ap_fetch_pure", pure, NULL, NULL);
    fails += cmocka_run_group_tests_name("ap_fetch_net", net, server_up, server_down);
    return fails ? 1 : 0;
}
