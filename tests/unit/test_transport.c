/*
 * test_transport: the mail transports against real peers. SMTP goes to a
 * real server (tests/unit/smtp_server.py on aiosmtpd), started for each case
 * on a free port of 127.0.0.1: plain, STARTTLS with AUTH, implicit TLS with
 * AUTH (a self-signed certificate made with openssl at start, trusted
 * through mail.smtp.ca_file). Checked: the outcome of each canned reply,
 * that every accepted message arrived exactly once with its envelope and
 * bytes, that connections are reused (the server counts them), the rate
 * limit, refused addresses, a dead server, a silent one, and a bad password
 * or an untrusted certificate; against a server slow to answer the end of
 * DATA, that the connections send in parallel, that the loop never waits for
 * them, and that transport_free does not either. The daemon's own loop
 * (daemon/loop.c) drives the loop cases. Maildir writes into a temporary
 * folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../daemon/loop.h"
#include "../../lib/log.h"
#include "../../mail/transport.h"

#define MAXMSG   64
#define ENV_FROM "bounces+tok1@example.org"

static char tmpdir[64];
static char cert[128], key[128];

/* --- the SMTP server ------------------------------------------------------------ */

struct server {
    pid_t pid;
    int port;
    char dir[128];
};

static struct server srv;
static const char *srv_delay; /* --data-delay for the next server_start, or NULL */

/* tests/unit/smtp_server.py, found next to this file. */
static const char *server_script(void)
{
    static char p[512];
    const char *slash = strrchr(__FILE__, '/');
    int n = slash ? (int)(slash - __FILE__) : 0;
    snprintf(p, sizeof p, "%.*s%ssmtp_server.py", n, __FILE__, slash ? "/" : "");
    return p;
}

/* Starts the server (tls: none, starttls, tls; auth "user:pass" or NULL). */
static int server_start(const char *tls, const char *auth)
{
    static int nth;
    int pfd[2];
    char line[64] = "";
    size_t got = 0;

    snprintf(srv.dir, sizeof srv.dir, "%s/srv%d", tmpdir, ++nth);
    if (mkdir(srv.dir, 0700) < 0 || pipe(pfd) < 0)
        return -1;
    srv.pid = fork();
    if (srv.pid < 0)
        return -1;
    if (srv.pid == 0) {
        const char *argv[16] = {
            "/usr/bin/python3", server_script(), "--dir", srv.dir, "--tls", tls};
        int a = 6;
        if (strcmp(tls, "none") != 0) {
            argv[a++] = "--cert";
            argv[a++] = cert;
            argv[a++] = "--key";
            argv[a++] = key;
        }
        if (auth) {
            argv[a++] = "--auth";
            argv[a++] = auth;
        }
        if (srv_delay) {
            argv[a++] = "--data-delay";
            argv[a++] = srv_delay;
        }
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    /* "port N\n" once it listens; 20 s for a slow machine. */
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
    if (sscanf(line, "port %d", &srv.port) != 1) {
        fprintf(stderr, "smtp_server.py did not start: \"%s\"\n", line);
        return -1;
    }
    return 0;
}

static int server_stop(void **state)
{
    (void)state;
    if (srv.pid > 0) {
        kill(srv.pid, SIGTERM);
        waitpid(srv.pid, NULL, 0);
    }
    srv.pid = 0;
    return 0;
}

static int start_plain(void **state)
{
    (void)state;
    return server_start("none", NULL);
}

static int start_starttls_auth(void **state)
{
    (void)state;
    return server_start("starttls", "nashra:s3cret");
}

static int start_tls_auth(void **state)
{
    (void)state;
    return server_start("tls", "nashra:s3cret");
}

/* A plain server that answers the end of DATA after `delay` seconds. */
static int start_delayed(const char *delay)
{
    srv_delay = delay;
    int rc = server_start("none", NULL);
    srv_delay = NULL;
    return rc;
}

static int start_slow(void **state)
{
    (void)state;
    return start_delayed("0.2");
}

static int start_stuck(void **state)
{
    (void)state;
    return start_delayed("30");
}

static int server_conns(void)
{
    char p[256];
    int n = -1;
    snprintf(p, sizeof p, "%s/conns", srv.dir);
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    if (fscanf(f, "%d", &n) != 1)
        n = -1;
    fclose(f);
    return n;
}

/* One line of the server's log: "msg CONN FROM RCPT FILE". */
struct logged {
    int conn;
    char from[128], rcpt[128], file[64];
};

static size_t server_log(struct logged *out, size_t max)
{
    char p[256], line[512];
    size_t n = 0;
    snprintf(p, sizeof p, "%s/log", srv.dir);
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    while (n < max && fgets(line, sizeof line, f)) {
        struct logged *l = &out[n];
        if (sscanf(line, "msg %d %127s %127s %63s", &l->conn, l->from, l->rcpt, l->file) == 4)
            n++;
    }
    fclose(f);
    return n;
}

/* 1 if the server's file holds exactly these bytes. */
static int server_file_is(const char *name, const char *data, size_t len)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", srv.dir, name);
    FILE *f = fopen(p, "rb");
    if (!f)
        return 0;
    char *buf = malloc(len + 1);
    size_t got = fread(buf, 1, len + 1, f);
    fclose(f);
    int same = got == len && memcmp(buf, data, len) == 0;
    free(buf);
    return same;
}

/* --- messages and outcomes ---------------------------------------------------------- */

struct result {
    int calls;
    enum transport_outcome outcome;
    int code;
    char why[256];
};

struct batch {
    size_t n, next, ndone;
    const char *rcpt[MAXMSG];
    char *data[MAXMSG];
    size_t len[MAXMSG];
    struct result r[MAXMSG];
    const char *from; /* envelope sender; NULL: ENV_FROM */
    struct transport *t;
    int in_send;         /* set while transport_send runs */
    size_t max_inflight; /* the most seen at once */
    int64_t deadline;    /* loop_now_ms() past which the loop case fails */
    int timed_out;
};

static void on_done(void *arg, uint64_t id, enum transport_outcome o, int code, const char *why)
{
    struct batch *b = arg;
    assert_false(b->in_send); /* never from inside transport_send */
    assert_true(id < b->n);
    b->r[id].calls++;
    b->r[id].outcome = o;
    b->r[id].code = code;
    snprintf(b->r[id].why, sizeof b->r[id].why, "%s", why ? why : "");
    b->ndone++;
}

/* A message for rcpt: headers, a dot line (curl must stuff it), padding bytes. */
static void add_msg(struct batch *b, const char *rcpt, size_t pad)
{
    size_t i = b->n++;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "From: News <news@example.org>\r\nTo: <%s>\r\nSubject: test %zu\r\n"
                     "Message-ID: <%zu@test>\r\n\r\nhello %s\r\n.a line that starts with a dot\r\n"
                     "..and two\r\n",
                     rcpt, i, i, rcpt);
    b->rcpt[i] = rcpt;
    b->data[i] = malloc((size_t)n + pad + 2);
    memcpy(b->data[i], head, (size_t)n);
    for (size_t k = 0; k < pad; k++) /* 75-byte lines */
        b->data[i][n + k] = (k % 77 == 75) ? '\r' : (k % 77 == 76) ? '\n' : (char)('a' + k % 26);
    size_t len = (size_t)n + pad;
    if (len < 2 || memcmp(b->data[i] + len - 2, "\r\n", 2) != 0) {
        memcpy(b->data[i] + len, "\r\n", 2);
        len += 2;
    }
    b->len[i] = len;
}

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->data[i]);
}

static int send_next(struct batch *b)
{
    size_t i = b->next;
    b->in_send = 1;
    int rc =
        transport_send(b->t, i, b->from ? b->from : ENV_FROM, b->rcpt[i], b->data[i], b->len[i]);
    b->in_send = 0;
    if (rc == 0)
        b->next++;
    size_t fl = transport_inflight(b->t);
    if (fl > b->max_inflight)
        b->max_inflight = fl;
    return rc;
}

/* The daemon's way: hand messages over while ready, then the transport's tick. */
static int64_t batch_tick(struct loop *l, void *arg)
{
    struct batch *b = arg;
    int64_t w;
    for (;;) {
        while (b->next < b->n && transport_ready(b->t))
            assert_int_equal(send_next(b), 0);
        w = transport_tick(b->t);
        /* done callbacks inside the tick may have freed a connection */
        if (!(b->next < b->n && transport_ready(b->t)))
            break;
    }
    if (b->ndone == b->n) {
        loop_stop(l);
        return -1;
    }
    int64_t left = b->deadline - loop_now_ms();
    if (left <= 0) {
        b->timed_out = 1;
        loop_stop(l);
        return -1;
    }
    return w < 0 || w > left ? left : w;
}

/* A timer on the loop every 10 ms: the longest time between two of its callbacks. */
struct gaps {
    int fd;
    int fired;
    int64_t last, longest; /* loop_now_ms() */
};

static void on_timer(struct loop *l, int fd, uint32_t events, void *arg)
{
    struct gaps *g = arg;
    uint64_t n;
    (void)l;
    (void)events;
    if (read(fd, &n, sizeof n) != (ssize_t)sizeof n)
        return;
    int64_t now = loop_now_ms();
    if (g->fired && now - g->last > g->longest)
        g->longest = now - g->last;
    g->last = now;
    g->fired++;
}

/* Sends the whole batch through a transport on the daemon's loop; g: with the timer. */
static void run_loop_timed(struct batch *b, const struct config *cfg, int64_t limit_ms,
                           struct gaps *g)
{
    struct loop *l = loop_new();
    assert_non_null(l);
    b->t = transport_new(cfg, l, on_done, b);
    assert_non_null(b->t);
    if (g) {
        struct itimerspec every = {.it_interval = {0, 10000000}, .it_value = {0, 10000000}};
        g->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        assert_true(g->fd >= 0);
        assert_int_equal(timerfd_settime(g->fd, 0, &every, NULL), 0);
        assert_int_equal(loop_add(l, g->fd, EPOLLIN, on_timer, g), 0);
    }
    b->deadline = loop_now_ms() + limit_ms;
    assert_int_equal(loop_run(l, batch_tick, b), 0);
    assert_false(b->timed_out);
    assert_int_equal(transport_inflight(b->t), 0);
    transport_free(b->t);
    b->t = NULL;
    if (g) {
        loop_del(l, g->fd);
        close(g->fd);
    }
    loop_free(l);
}

static void run_loop(struct batch *b, const struct config *cfg, int64_t limit_ms)
{
    run_loop_timed(b, cfg, limit_ms, NULL);
}

/* Sends the batch without a loop, `per` messages at a time, transport_wait after each. */
static void run_blocking(struct batch *b, const struct config *cfg, size_t per)
{
    b->t = transport_new(cfg, NULL, on_done, b);
    assert_non_null(b->t);
    while (b->next < b->n) {
        for (size_t k = 0; k < per && b->next < b->n; k++) {
            assert_true(transport_ready(b->t));
            assert_int_equal(send_next(b), 0);
        }
        assert_int_equal(transport_wait(b->t, 20000), 0);
    }
    assert_int_equal(b->ndone, b->n);
    transport_free(b->t);
    b->t = NULL;
}

static struct config smtp_cfg(const char *host, int port, enum smtp_tls tls, int conns, int rate)
{
    struct config c;
    memset(&c, 0, sizeof c);
    c.mail.transport = MAIL_SMTP;
    c.mail.smtp.host = (char *)host;
    c.mail.smtp.port = port;
    c.mail.smtp.tls = tls;
    c.mail.smtp.connections = conns;
    c.mail.smtp.rate = rate;
    c.mail.smtp.timeout = 10;
    return c;
}

/* The self-signed certificate of the test server, as mail.smtp.ca_file. */
static void use_test_ca(struct config *c)
{
    c->mail.smtp.ca_file = cert;
}

/* Checks every message of b was accepted once, on the server, with its bytes. */
static void assert_all_delivered(const struct batch *b)
{
    struct logged log[MAXMSG];
    size_t n = server_log(log, MAXMSG);
    assert_int_equal(n, b->n);
    for (size_t i = 0; i < b->n; i++) {
        int seen = 0;
        assert_int_equal(b->r[i].calls, 1);
        assert_int_equal(b->r[i].outcome, TRANSPORT_SENT);
        assert_int_equal(b->r[i].code, 250);
        for (size_t k = 0; k < n; k++) {
            if (strcmp(log[k].rcpt, b->rcpt[i]) != 0)
                continue;
            seen++;
            assert_string_equal(log[k].from, ENV_FROM);
            assert_true(server_file_is(log[k].file, b->data[i], b->len[i]));
        }
        assert_int_equal(seen, 1);
    }
}

/* --- SMTP cases -------------------------------------------------------------------------- */

/* Every canned reply: 250, 451 and 550 at RCPT, 452 and 554 after DATA. */
static void test_smtp_outcomes(void **state)
{
    (void)state;
    static const char *const ok[] = {"a@example.net", "b@example.net", "c@example.net",
                                     "d@example.net", "e@example.net", "big@example.net"};
    struct batch b = {0};
    for (size_t i = 0; i < 6; i++)
        add_msg(&b, ok[i], i == 5 ? 300000 : i * 100);
    add_msg(&b, "temp1@example.net", 0);
    add_msg(&b, "perm1@example.net", 0);
    add_msg(&b, "dtemp1@example.net", 0);
    add_msg(&b, "dperm1@example.net", 0);
    struct config cfg = smtp_cfg("127.0.0.1", srv.port, SMTP_TLS_NONE, 2, 0);

    /* stderr into a file for the run: one warn line a failure, none a success */
    char logpath[128];
    snprintf(logpath, sizeof logpath, "%s/stderr.log", tmpdir);
    fflush(stderr);
    int saved = dup(2), fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    log_set_level(LOG_INFO);
    run_loop(&b, &cfg, 20000);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    log_set_level(LOG_ERROR);

    for (size_t i = 0; i < b.n; i++)
        assert_int_equal(b.r[i].calls, 1);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(b.r[i].outcome, TRANSPORT_SENT);
        assert_int_equal(b.r[i].code, 250);
        assert_non_null(strstr(b.r[i].why, "queued as"));
    }
    assert_int_equal(b.r[6].outcome, TRANSPORT_RETRY);
    assert_int_equal(b.r[6].code, 451);
    assert_string_equal(b.r[6].why, "451 4.3.0 Mailbox temporarily unavailable");
    assert_int_equal(b.r[7].outcome, TRANSPORT_FAILED);
    assert_int_equal(b.r[7].code, 550);
    assert_string_equal(b.r[7].why, "550 5.1.1 No such user here");
    assert_int_equal(b.r[8].outcome, TRANSPORT_RETRY);
    assert_int_equal(b.r[8].code, 452);
    assert_int_equal(b.r[9].outcome, TRANSPORT_FAILED);
    assert_int_equal(b.r[9].code, 554);
    assert_string_equal(b.r[9].why, "554 5.6.0 Message content rejected");
    assert_true(b.max_inflight <= 2);

    /* only the six accepted ones reached the server, once each, intact */
    b.n = 6;
    assert_all_delivered(&b);
    b.n = 10;

    FILE *f = fopen(logpath, "r");
    assert_non_null(f);
    char line[1024];
    int warns = 0, others = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "level=warn event=smtp ") && strstr(line, " code=") &&
            strstr(line, " rcpt="))
            warns++;
        else
            others++;
    }
    fclose(f);
    assert_int_equal(warns, 4);
    assert_int_equal(others, 0);
    batch_free(&b);
}

/* One connection carries every message; three carry thirty. */
static void test_smtp_reuse(void **state)
{
    (void)state;
    char rcpts[40][32];
    struct batch b = {0};
    for (int i = 0; i < 10; i++) {
        snprintf(rcpts[i], sizeof rcpts[i], "one%d@example.net", i);
        add_msg(&b, rcpts[i], 1000);
    }
    struct config cfg = smtp_cfg("127.0.0.1", srv.port, SMTP_TLS_NONE, 1, 0);
    run_loop(&b, &cfg, 20000);
    assert_all_delivered(&b);
    assert_int_equal(server_conns(), 1);
    batch_free(&b);

    struct batch b3 = {0};
    for (int i = 0; i < 30; i++) {
        snprintf(rcpts[10 + i], sizeof rcpts[0], "three%d@example.net", i);
        add_msg(&b3, rcpts[10 + i], 2000);
    }
    cfg = smtp_cfg("127.0.0.1", srv.port, SMTP_TLS_NONE, 3, 0);
    run_loop(&b3, &cfg, 20000);
    for (size_t i = 0; i < b3.n; i++)
        assert_int_equal(b3.r[i].outcome, TRANSPORT_SENT);
    assert_true(b3.max_inflight <= 3);
    /* one of the first run, at most three of this one */
    assert_true(server_conns() >= 2 && server_conns() <= 4);
    batch_free(&b3);
}

/* STARTTLS, then AUTH, without a loop: two connections kept across batches. */
static void test_smtp_starttls_auth(void **state)
{
    (void)state;
    static const char *const r[] = {"s1@example.net", "s2@example.net", "s3@example.net",
                                    "s4@example.net", "s5@example.net", "s6@example.net"};
    struct batch b = {0};
    for (size_t i = 0; i < 6; i++)
        add_msg(&b, r[i], 500);
    struct config cfg = smtp_cfg("localhost", srv.port, SMTP_TLS_STARTTLS, 2, 0);
    cfg.mail.smtp.username = "nashra";
    cfg.mail.smtp.password = "s3cret";
    use_test_ca(&cfg);
    run_blocking(&b, &cfg, 2);
    assert_all_delivered(&b);
    assert_int_equal(server_conns(), 2);
    batch_free(&b);
}

/* A wrong password is RETRY (the server's 535 says nothing of the recipient). */
static void test_smtp_bad_password(void **state)
{
    (void)state;
    struct batch b = {0};
    add_msg(&b, "x@example.net", 0);
    struct config cfg = smtp_cfg("localhost", srv.port, SMTP_TLS_STARTTLS, 1, 0);
    cfg.mail.smtp.username = "nashra";
    cfg.mail.smtp.password = "wrong";
    use_test_ca(&cfg);
    run_blocking(&b, &cfg, 1);
    assert_int_equal(b.r[0].outcome, TRANSPORT_RETRY);
    assert_int_equal(b.r[0].code, 535);
    struct logged log[1];
    assert_int_equal(server_log(log, 1), 0);
    batch_free(&b);
}

/* A 5xx to MAIL FROM is about us, not the recipient: RETRY, with the code. */
static void test_smtp_sender_refused(void **state)
{
    (void)state;
    struct batch b = {0};
    b.from = "refused+tok@example.org";
    add_msg(&b, "x@example.net", 0);
    struct config cfg = smtp_cfg("127.0.0.1", srv.port, SMTP_TLS_NONE, 1, 0);
    run_loop(&b, &cfg, 20000);
    assert_int_equal(b.r[0].outcome, TRANSPORT_RETRY);
    assert_int_equal(b.r[0].code, 553);
    assert_string_equal(b.r[0].why, "553 5.7.1 Sender address rejected");
    batch_free(&b);
}

/* Without the test CA the self-signed certificate is refused: RETRY, no code. */
static void test_smtp_untrusted_cert(void **state)
{
    (void)state;
    struct batch b = {0};
    add_msg(&b, "x@example.net", 0);
    struct config cfg = smtp_cfg("localhost", srv.port, SMTP_TLS_STARTTLS, 1, 0);
    cfg.mail.smtp.username = "nashra";
    cfg.mail.smtp.password = "s3cret";
    run_blocking(&b, &cfg, 1);
    assert_int_equal(b.r[0].outcome, TRANSPORT_RETRY);
    assert_int_equal(b.r[0].code, 0);
    assert_non_null(strstr(b.r[0].why, "certificate"));
    batch_free(&b);
}

/* Implicit TLS (smtps) with AUTH, on the loop. */
static void test_smtp_tls_auth(void **state)
{
    (void)state;
    static const char *const r[] = {"t1@example.net", "t2@example.net", "t3@example.net"};
    struct batch b = {0};
    for (size_t i = 0; i < 3; i++)
        add_msg(&b, r[i], 100);
    struct config cfg = smtp_cfg("localhost", srv.port, SMTP_TLS_TLS, 4, 0);
    cfg.mail.smtp.username = "nashra";
    cfg.mail.smtp.password = "s3cret";
    use_test_ca(&cfg);
    run_loop(&b, &cfg, 20000);
    assert_all_delivered(&b);
    batch_free(&b);
}

/* rate 10 a second holds 1 token: 12 messages take at least 1.1 s. */
static void test_smtp_rate(void **state)
{
    (void)state;
    char rcpts[12][32];
    struct batch b = {0};
    for (int i = 0; i < 12; i++) {
        snprintf(rcpts[i], sizeof rcpts[i], "r%d@example.net", i);
        add_msg(&b, rcpts[i], 0);
    }
    struct config cfg = smtp_cfg("127.0.0.1", srv.port, SMTP_TLS_NONE, 4, 10);
    int64_t t0 = loop_now_ms();
    run_loop(&b, &cfg, 20000);
    int64_t ms = loop_now_ms() - t0;
    assert_all_delivered(&b);
    assert_true(ms >= 1050);
    assert_true(ms < 5000);
    batch_free(&b);
}

/* A port nobody listens on: RETRY, without a code, on the loop and without. */
static void test_smtp_dead(void **state)
{
    (void)state;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
    close(s); /* the port is now free, and closed */
    struct config cfg = smtp_cfg("127.0.0.1", ntohs(a.sin_port), SMTP_TLS_NONE, 2, 0);

    struct batch b = {0};
    add_msg(&b, "x@example.net", 0);
    add_msg(&b, "y@example.net", 0);
    run_loop(&b, &cfg, 20000);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(b.r[i].outcome, TRANSPORT_RETRY);
        assert_int_equal(b.r[i].code, 0);
    }
    batch_free(&b);

    struct batch b2 = {0};
    add_msg(&b2, "z@example.net", 0);
    run_blocking(&b2, &cfg, 1);
    assert_int_equal(b2.r[0].outcome, TRANSPORT_RETRY);
    batch_free(&b2);
}

/* A server that accepts the connection and never greets: RETRY after the timeout. */
static void test_smtp_silent(void **state)
{
    (void)state;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s, 8), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
    struct config cfg = smtp_cfg("127.0.0.1", ntohs(a.sin_port), SMTP_TLS_NONE, 1, 0);
    cfg.mail.smtp.timeout = 1;

    struct batch b = {0};
    add_msg(&b, "x@example.net", 0);
    int64_t t0 = loop_now_ms();
    run_loop(&b, &cfg, 10000);
    int64_t ms = loop_now_ms() - t0;
    assert_int_equal(b.r[0].outcome, TRANSPORT_RETRY);
    assert_int_equal(b.r[0].code, 0);
    assert_true(ms >= 900 && ms < 5000);
    close(s);
    batch_free(&b);
}

/* Addresses that would change the SMTP command, and sends past ready(). */
static void test_smtp_refused(void **state)
{
    (void)state;
    char longaddr[400];
    memset(longaddr, 'a', sizeof longaddr - 1);
    longaddr[sizeof longaddr - 1] = '\0';
    longaddr[300] = '@';
    struct batch b = {0};
    add_msg(&b, "ok@example.net", 0);
    struct config cfg = smtp_cfg("127.0.0.1", srv.port, SMTP_TLS_NONE, 1, 0);
    b.t = transport_new(&cfg, NULL, on_done, &b);
    assert_non_null(b.t);
    static const char *const bad_rcpt[] = {"a@b.net>\r\nRCPT TO:<evil@x.net",
                                           "a@b.net\nDATA",
                                           "a b@c.net",
                                           "<a@b.net> SIZE=1",
                                           "",
                                           "<>"};
    for (size_t i = 0; i < sizeof bad_rcpt / sizeof bad_rcpt[0]; i++) {
        errno = 0;
        assert_int_equal(transport_send(b.t, 0, ENV_FROM, bad_rcpt[i], "x\r\n", 3), -1);
        assert_int_equal(errno, EINVAL);
    }
    assert_int_equal(transport_send(b.t, 0, ENV_FROM, longaddr, "x\r\n", 3), -1);
    assert_int_equal(transport_send(b.t, 0, "a\r\n@b", "ok@example.net", "x\r\n", 3), -1);
    assert_int_equal(transport_inflight(b.t), 0);

    /* the null sender and an address in <> are fine; one connection: one at a time */
    assert_true(transport_ready(b.t));
    assert_int_equal(transport_send(b.t, 0, "<>", "<ok@example.net>", b.data[0], b.len[0]), 0);
    assert_false(transport_ready(b.t));
    errno = 0;
    assert_int_equal(transport_send(b.t, 0, ENV_FROM, "ok@example.net", "x\r\n", 3), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(transport_inflight(b.t), 1);
    assert_int_equal(transport_wait(b.t, 20000), 0);
    assert_int_equal(b.r[0].calls, 1);
    assert_int_equal(b.r[0].outcome, TRANSPORT_SENT);
    struct logged log[4];
    assert_int_equal(server_log(log, 4), 1);
    assert_string_equal(log[0].from, "<>");

    /* freed with a message in flight: no callback, nothing leaked */
    assert_int_equal(transport_send(b.t, 0, ENV_FROM, "ok@example.net", b.data[0], b.len[0]), 0);
    transport_free(b.t);
    assert_int_equal(b.r[0].calls, 1);
    batch_free(&b);
}

/*
 * The server answers the end of DATA after 200 ms. Four connections send
 * eight messages in two rounds, about 400 ms, on the loop and without it
 * (one connection at a time would take 1.6 s).
 */
static void test_smtp_parallel(void **state)
{
    (void)state;
    char rcpts[16][32];
    struct batch b = {0};
    for (int i = 0; i < 8; i++) {
        snprintf(rcpts[i], sizeof rcpts[i], "p%d@example.net", i);
        add_msg(&b, rcpts[i], 1000);
    }
    struct config cfg = smtp_cfg("127.0.0.1", srv.port, SMTP_TLS_NONE, 4, 0);
    int64_t t0 = loop_now_ms();
    run_loop(&b, &cfg, 20000);
    int64_t ms = loop_now_ms() - t0;
    assert_all_delivered(&b);
    assert_true(b.max_inflight <= 4);
    assert_true(server_conns() <= 4);
    assert_true(ms >= 400); /* the delay is real: two rounds */
    assert_true(ms < 1200);
    batch_free(&b);

    struct batch b2 = {0};
    for (int i = 0; i < 8; i++) {
        snprintf(rcpts[8 + i], sizeof rcpts[0], "q%d@example.net", i);
        add_msg(&b2, rcpts[8 + i], 1000);
    }
    t0 = loop_now_ms();
    run_blocking(&b2, &cfg, 4);
    ms = loop_now_ms() - t0;
    for (size_t i = 0; i < b2.n; i++)
        assert_int_equal(b2.r[i].outcome, TRANSPORT_SENT);
    assert_true(ms >= 400 && ms < 1200);
    batch_free(&b2);
}

/*
 * While two connections wait 200 ms for each of six replies, a 10 ms timer
 * on the same loop keeps firing on time: the loop never waits for a reply.
 */
static void test_smtp_loop_free(void **state)
{
    (void)state;
    char rcpts[6][32];
    struct batch b = {0};
    for (int i = 0; i < 6; i++) {
        snprintf(rcpts[i], sizeof rcpts[i], "l%d@example.net", i);
        add_msg(&b, rcpts[i], 20000);
    }
    struct config cfg = smtp_cfg("127.0.0.1", srv.port, SMTP_TLS_NONE, 2, 0);
    struct gaps g = {0};
    int64_t t0 = loop_now_ms();
    run_loop_timed(&b, &cfg, 20000, &g);
    int64_t ms = loop_now_ms() - t0;
    assert_all_delivered(&b);
    assert_true(ms >= 600); /* three rounds of 200 ms */
    assert_true(g.fired >= ms / 20);
    assert_true(g.longest < 100);
    batch_free(&b);
}

/*
 * A server that takes 30 s to answer the end of DATA: transport_free with
 * two messages waiting for it cuts their connections at once, without a
 * done call, and without waiting for smtp.timeout.
 */
static void test_smtp_free_inflight(void **state)
{
    (void)state;
    struct batch b = {0};
    add_msg(&b, "w1@example.net", 0);
    add_msg(&b, "w2@example.net", 0);
    struct config cfg = smtp_cfg("127.0.0.1", srv.port, SMTP_TLS_NONE, 2, 0);
    b.t = transport_new(&cfg, NULL, on_done, &b);
    assert_non_null(b.t);
    assert_int_equal(send_next(&b), 0);
    assert_int_equal(send_next(&b), 0);
    errno = 0;
    assert_int_equal(transport_wait(b.t, 300), -1); /* both now wait for the reply */
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(transport_inflight(b.t), 2);
    int64_t t0 = loop_now_ms();
    transport_free(b.t);
    int64_t ms = loop_now_ms() - t0;
    assert_int_equal(b.ndone, 0);
    assert_true(ms < 500);
    batch_free(&b);
}

/* A relay of our own: accepts each message, never answers QUIT. Its pid; *port set. */
static pid_t mute_quit_server(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 8), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid > 0) {
        close(ls);
        return pid;
    }
    int c = accept(ls, NULL, NULL), in_data = 0;
    char line[1024];
    size_t n = 0;
    dprintf(c, "220 mute ESMTP\r\n");
    while (read(c, line + n, 1) == 1) {
        if (line[n] != '\n' && n + 2 < sizeof line) {
            n++;
            continue;
        }
        line[n + 1] = '\0';
        n = 0;
        if (in_data) {
            if (strcmp(line, ".\r\n") == 0) {
                in_data = 0;
                dprintf(c, "250 2.0.0 Ok: queued as 1\r\n");
            }
        } else if (strncasecmp(line, "DATA", 4) == 0) {
            in_data = 1;
            dprintf(c, "354 go on\r\n");
        } else if (strncasecmp(line, "QUIT", 4) == 0) {
            sleep(30);
        } else {
            dprintf(c, "250 OK\r\n");
        }
    }
    _exit(0);
}

/* A relay that never answers QUIT: transport_free gives it a second, not smtp.timeout. */
static void test_smtp_quit_unanswered(void **state)
{
    (void)state;
    int port;
    pid_t pid = mute_quit_server(&port);
    struct batch b = {0};
    add_msg(&b, "m1@example.net", 0);
    struct config cfg = smtp_cfg("127.0.0.1", port, SMTP_TLS_NONE, 1, 0);
    b.t = transport_new(&cfg, NULL, on_done, &b);
    assert_non_null(b.t);
    assert_int_equal(send_next(&b), 0);
    assert_int_equal(transport_wait(b.t, 20000), 0);
    assert_int_equal(b.r[0].outcome, TRANSPORT_SENT);
    int64_t t0 = loop_now_ms();
    transport_free(b.t);
    int64_t ms = loop_now_ms() - t0;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    assert_true(ms >= 900 && ms < 3000);
    batch_free(&b);
}

/* --- maildir --------------------------------------------------------------------------------- */

static struct config maildir_cfg(const char *path)
{
    struct config c;
    memset(&c, 0, sizeof c);
    c.mail.transport = MAIL_MAILDIR;
    c.mail.maildir_path = (char *)path;
    return c;
}

static void assert_mode_0700(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
}

static void test_maildir(void **state)
{
    (void)state;
    char path[128], sub[192];
    snprintf(path, sizeof path, "%s/md/a/outbox", tmpdir); /* parents missing too */
    struct config cfg = maildir_cfg(path);
    struct batch b = {0};
    add_msg(&b, "m1@example.net", 0);
    add_msg(&b, "m2@example.net", 5000);
    add_msg(&b, "m3@example.net", 10);
    b.t = transport_new(&cfg, NULL, on_done, &b);
    assert_non_null(b.t);
    for (size_t i = 0; i < b.n; i++)
        assert_int_equal(send_next(&b), 0);
    assert_int_equal(b.ndone, 0); /* reported on the next tick, not from send */
    assert_int_equal(transport_inflight(b.t), 3);
    assert_int_equal(transport_tick(b.t), -1);
    assert_int_equal(b.ndone, 3);
    for (size_t i = 0; i < b.n; i++) {
        assert_int_equal(b.r[i].calls, 1);
        assert_int_equal(b.r[i].outcome, TRANSPORT_SENT);
    }
    transport_free(b.t);

    assert_mode_0700(path);
    static const char *const subs[] = {"cur", "new", "tmp"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(sub, sizeof sub, "%s/%s", path, subs[i]);
        assert_mode_0700(sub);
    }
    /* new/ holds the three messages, byte for byte; tmp/ nothing */
    snprintf(sub, sizeof sub, "%s/new", path);
    DIR *d = opendir(sub);
    assert_non_null(d);
    struct dirent *e;
    int files = 0, matched[3] = {0};
    char pidq[32];
    snprintf(pidq, sizeof pidq, "P%ldQ", (long)getpid());
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        files++;
        assert_non_null(strstr(e->d_name, ".M"));
        assert_non_null(strstr(e->d_name, pidq));
        assert_null(strchr(e->d_name, ':'));
        char p[512];
        snprintf(p, sizeof p, "%s/%s", sub, e->d_name);
        FILE *f = fopen(p, "rb");
        assert_non_null(f);
        char *buf = malloc(20000);
        size_t got = fread(buf, 1, 20000, f);
        fclose(f);
        for (size_t i = 0; i < 3; i++)
            if (got == b.len[i] && memcmp(buf, b.data[i], got) == 0)
                matched[i]++;
        free(buf);
    }
    closedir(d);
    assert_int_equal(files, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(matched[i], 1);
    snprintf(sub, sizeof sub, "%s/tmp", path);
    d = opendir(sub);
    assert_non_null(d);
    files = 0;
    while ((e = readdir(d)))
        files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 0);
    batch_free(&b);
}

/* A folder that cannot be made: RETRY with the reason, after transport_wait. */
static void test_maildir_error(void **state)
{
    (void)state;
    char file[128], path[192];
    snprintf(file, sizeof file, "%s/plainfile", tmpdir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/outbox", file);
    struct config cfg = maildir_cfg(path);
    struct batch b = {0};
    add_msg(&b, "m1@example.net", 0);
    b.t = transport_new(&cfg, NULL, on_done, &b);
    assert_non_null(b.t);
    assert_int_equal(send_next(&b), 0);
    assert_int_equal(transport_wait(b.t, 1000), 0);
    assert_int_equal(b.r[0].calls, 1);
    assert_int_equal(b.r[0].outcome, TRANSPORT_RETRY);
    assert_string_equal(b.r[0].why, strerror(ENOTDIR));
    transport_free(b.t);
    batch_free(&b);
}

/* --- setup --------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    char cmd[512];
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_ERROR); /* the failures tested are warnings: keep the output clean */
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_transport.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(cert, sizeof cert, "%s/cert.pem", tmpdir);
    snprintf(key, sizeof key, "%s/key.pem", tmpdir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 1 "
             "-keyout '%s' -out '%s' 2>/dev/null",
             key, cert);
    return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_smtp_outcomes, start_plain, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_reuse, start_plain, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_sender_refused, start_plain, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_starttls_auth, start_starttls_auth, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_bad_password, start_starttls_auth, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_untrusted_cert, start_starttls_auth, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_tls_auth, start_tls_auth, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_rate, start_plain, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_refused, start_plain, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_parallel, start_slow, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_loop_free, start_slow, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_free_inflight, start_stuck, server_stop),
        cmocka_unit_test(test_smtp_quit_unanswered),
        cmocka_unit_test(test_smtp_dead),
        cmocka_unit_test(test_smtp_silent),
        cmocka_unit_test(test_maildir),
        cmocka_unit_test(test_maildir_error),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
