/*
 * transport_smtp: the smtp transport (SPEC §8) on libcurl's SMTP client:
 * RFC 5321 (SMTP), RFC 3207 (STARTTLS), RFC 8314 (implicit TLS), RFC 4954
 * (AUTH: curl picks the strongest mechanism the server offers, PLAIN or
 * LOGIN on most relays, credentials sent with the command, RFC 4422's
 * initial response), RFC 1870 (SIZE, announced in MAIL FROM).
 *
 * Driving. libcurl's SMTP waits for the reply to the end of DATA blocking,
 * even on a multi handle (smtp_done runs smtp_block_statemach), and so does
 * its QUIT. So curl runs off the loop: one worker thread a connection, up to
 * smtp.connections, each with its own easy handle used with blocking
 * curl_easy_perform. The easy handle keeps its connection open between
 * messages (CURLOPT_MAXCONNECTS 1): the next message on it goes without a
 * new greeting, TLS handshake or AUTH. transport_send puts a copy of the
 * message in a queue (mutex and condition variable) and starts a worker
 * when none is free, so threads and connections come as messages need them.
 * A message is only taken when a connection is free (transport_ready), so
 * the queue never holds more than `connections` messages. A worker that has
 * sent one puts it, with its result, into the outcome queue and writes to an
 * eventfd. The loop watches the eventfd (loop_add); without a loop,
 * transport_wait polls it. The outcomes are classified, logged and reported
 * (the done callback) on the caller's thread only: from the eventfd's
 * callback, transport_tick or transport_wait. The rate limit, the count in
 * flight and the callbacks stay on that thread; the workers touch only the
 * queues, under the lock, and their own curl handle. Their signals are all
 * blocked.
 *
 * Rate: a token bucket (GCRA) of smtp.rate messages a second that holds up
 * to rate/10 tokens (at least one): at most rate/10 messages in a burst.
 * Timeouts: smtp.timeout seconds to connect, for each reply, and for the
 * whole message. transport_free drops the queued messages, cuts the
 * connections of those being sent at once (shutdown() on the sockets curl
 * opened, which wakes its poll), lets the idle ones say QUIT, and cuts them
 * too after SMTP_QUIT_GRACE ms (curl would wait smtp.timeout for a relay
 * that does not answer QUIT); then joins the threads.
 *
 * Measured (tests/unit/smtp_server.py, aiosmtpd on the same host answering
 * the end of DATA 20 or 200 ms late; 200 or 40 messages of 2 KB on the
 * daemon's loop; the stall is the longest gap between the callbacks of a
 * 5 ms timerfd on the same loop, so 5 ms is none; three runs each, 2 CPUs):
 *
 *   reply   conns  before (one multi handle)     now (a thread a connection)
 *   20 ms   1      44-46 msg/s, stall 25-34 ms   45-46 msg/s, stall 7 ms
 *   20 ms   4      45-46 msg/s, stall 64-72 ms   167-175 msg/s, stall 5-8 ms
 *   200 ms  1      4.9 msg/s, stall 204-207 ms   4.9 msg/s, stall 7-18 ms
 *   200 ms  4      4.9 msg/s, stall 605-809 ms   19.6 msg/s, stall 6-8 ms
 *
 * Before, the connections took turns (every reply was waited for on the
 * loop) and the loop stalled for up to three replies at once; now four
 * connections send four times as much and the timer is never late by more
 * than the machine's noise. transport_free with a relay that never answers
 * QUIT took smtp.timeout (10 s in the test), now 1 s.
 *
 * Why libcurl in threads, not libetpan's mailsmtp in threads (SPEC §8 offers
 * both): measured the same way, a mailsmtp client with one thread a
 * connection sent 46 and 176-178 msg/s (20 ms, 1 and 4 connections) and 4.9
 * and 19.7 (200 ms): the same figures, as both wait for the same replies.
 * With no delay both go as fast as the Python server answers. So the choice
 * is by what each would need: libetpan verifies neither the certificate's
 * chain nor its name (mailstream_ssl only hands over the certificate), does
 * AUTH only through Cyrus SASL (whose PLAIN and LOGIN come from plugins that
 * must be installed), and reports its errors as its own codes; curl here
 * already verifies certificates, does AUTH itself, and its results are
 * classified below. The threads only move curl's blocking waits off the
 * loop.
 *
 * Outcomes. TRANSPORT_SENT only when curl returns CURLE_OK, which for an
 * upload means the server answered 250 to the end of DATA. TRANSPORT_FAILED
 * when the server refused this recipient or this message with a 5xx (to
 * RCPT TO, DATA or the end of DATA): the code and the reply's text go to the
 * callback. TRANSPORT_RETRY for the rest: 4xx replies, connection, TLS and
 * certificate errors, timeouts, and 5xx replies to the greeting, EHLO, AUTH
 * or MAIL FROM, which say nothing about the recipient (a wrong password or a
 * refused sender must not bounce a whole list). One warn line (event=smtp)
 * per message that was not sent; none for one that was.
 *
 * Certificates are verified (name and chain) against the system's CAs, or
 * against mail.smtp.ca_file (CURLOPT_CAINFO) when it is set: for a relay
 * with a private CA, and for the tests' self-signed certificate.
 */
#include "transport_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../daemon/loop.h"
#include "../lib/log.h"

#define SMTP_REPLY_MAX  512  /* bytes of the server's last reply line kept (RFC 5321: 512) */
#define SMTP_CONN_MAX   64   /* smtp.connections above this are cut: a thread each */
#define SMTP_SOCKS_MAX  4    /* sockets of one connection's curl at once (happy eyeballs: 2) */
#define SMTP_QUIT_GRACE 1000 /* ms transport_free waits for QUIT's answers before cutting */

/*
 * One message: the envelope and the bytes, then what came of it. The loop
 * thread fills it and queues it; one worker takes it, sends it and fills in
 * the result; the loop thread reads the result and frees it. The queues'
 * lock orders each hand-over.
 */
struct smtp_msg {
    struct smtp_msg *next; /* in s->jobs or s->outcomes */
    uint64_t id;
    const char *env_from;       /* points into data[], after the message */
    struct curl_slist *rcpt;    /* one recipient; curl reads it during the transfer */
    size_t len, off;            /* bytes of the message, bytes curl has read */
    int data_started;           /* curl asked for the bytes: DATA got its 354 */
    CURLcode rc;                /* curl's result */
    long code;                  /* the last reply's code */
    char reply[SMTP_REPLY_MAX]; /* the last reply line, controls replaced */
    char err[CURL_ERROR_SIZE];  /* curl's own words for a failure */
    char data[];                /* our copy of the message, then env_from */
};

/* One connection: a thread with its own easy handle, which keeps the connection open. */
struct smtp_worker {
    struct tr_smtp *s;
    pthread_t thread;
    CURL *easy;
    struct smtp_msg *cur;           /* being sent: set by this thread under s->lock */
    int socks[SMTP_SOCKS_MAX];      /* sockets curl has open (under s->lock); -1: none */
    char curl_err[CURL_ERROR_SIZE]; /* CURLOPT_ERRORBUFFER */
};

struct tr_smtp {
    struct loop *loop; /* NULL: blocking, driven by transport_wait */
    transport_done_fn done;
    void *arg;

    char *url;       /* smtp://host:port or smtps://host:port */
    char *username;  /* NULL: no AUTH */
    char *password;  /* "" when only a username is set */
    char *cafile;    /* mail.smtp.ca_file, or NULL */
    int starttls;    /* tls: starttls */
    long timeout_s;  /* smtp.timeout */
    size_t maxconns; /* smtp.connections, 1..SMTP_CONN_MAX */

    int64_t interval_us;  /* 1 s / rate; 0: no rate limit */
    int64_t tolerance_us; /* burst allowance: (tokens - 1) * interval */
    int64_t tat_us;       /* GCRA's theoretical arrival time of the next message */

    size_t inflight; /* handed over, done not called yet (loop thread only) */
    int efd;         /* eventfd: readable while an outcome waits */

    /* Shared with the workers: all under lock. */
    pthread_mutex_t lock;
    pthread_cond_t work;                        /* a job queued, or stopping */
    pthread_cond_t gone;                        /* a worker ended (transport_free) */
    struct smtp_msg *jobs, **jobs_tail;         /* handed over, no worker on it yet */
    struct smtp_msg *outcomes, **outcomes_tail; /* sent or not, done not called yet */
    size_t busy;                                /* jobs queued or being sent */
    size_t nended;                              /* workers that have ended */
    atomic_int stopping;                        /* transport_free: end now (read unlocked too) */
    int sync_ok;                                /* lock, conds made: free may use them */

    struct smtp_worker *workers[SMTP_CONN_MAX]; /* started as needed (loop thread) */
    size_t nworkers;
};

static int64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* --- rate: GCRA, a token bucket kept as one timestamp ---------------------- */

/* Microseconds until the bucket holds a token (0: it holds one now). */
static int64_t rate_wait_us(const struct tr_smtp *s, int64_t now)
{
    if (!s->interval_us)
        return 0;
    int64_t allowed_at = s->tat_us - s->tolerance_us;
    return allowed_at > now ? allowed_at - now : 0;
}

static void rate_take(struct tr_smtp *s, int64_t now)
{
    if (s->interval_us)
        s->tat_us = (s->tat_us > now ? s->tat_us : now) + s->interval_us;
}

/* --- curl's callbacks (on a worker's thread) ------------------------------------ */

/* CURLOPT_READFUNCTION: the message's bytes; curl does the dot-stuffing. */
static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
    struct smtp_worker *w = arg;
    struct smtp_msg *m = w->cur;
    size_t n = size * nitems, left = m->len - m->off;
    m->data_started = 1;
    if (n > left)
        n = left;
    memcpy(buf, m->data + m->off, n);
    m->off += n;
    return n;
}

/*
 * CURLOPT_HEADERFUNCTION: curl passes every reply line from the server here.
 * The last one is kept, cut to SMTP_REPLY_MAX, its line end dropped and any
 * other control byte replaced, so it can go to a log line and to the caller.
 * Between messages (QUIT's 221 when the connection closes) there is none to
 * keep it for.
 */
static size_t reply_cb(char *line, size_t size, size_t nitems, void *arg)
{
    struct smtp_worker *w = arg;
    struct smtp_msg *m = w->cur;
    size_t n = size * nitems, o = 0;
    if (!m || (n >= 3 && memcmp(line, "221", 3) == 0))
        return size * nitems;
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    for (size_t i = 0; i < n && o + 1 < sizeof m->reply; i++) {
        unsigned char c = (unsigned char)line[i];
        m->reply[o++] = c < ' ' || c == 0x7f ? '?' : (char)c;
    }
    m->reply[o] = '\0';
    return size * nitems;
}

/*
 * CURLOPT_OPENSOCKETFUNCTION and CURLOPT_CLOSESOCKETFUNCTION: the worker's
 * sockets are noted under the lock, so transport_free can shut them down
 * (which wakes curl's poll at once) and never touches one already closed.
 * Once transport_free has begun no new socket is opened.
 */
static curl_socket_t open_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct smtp_worker *w = arg;
    struct tr_smtp *s = w->s;
    curl_socket_t fd = CURL_SOCKET_BAD;
    (void)purpose;
    pthread_mutex_lock(&s->lock);
    size_t i = 0;
    while (i < SMTP_SOCKS_MAX && w->socks[i] >= 0)
        i++;
    if (!atomic_load(&s->stopping) && i < SMTP_SOCKS_MAX) {
        fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
        if (fd >= 0)
            w->socks[i] = fd;
    }
    pthread_mutex_unlock(&s->lock);
    return fd;
}

static int close_cb(void *arg, curl_socket_t fd)
{
    struct smtp_worker *w = arg;
    pthread_mutex_lock(&w->s->lock);
    for (size_t i = 0; i < SMTP_SOCKS_MAX; i++)
        if (w->socks[i] == fd)
            w->socks[i] = -1;
    int rc = close(fd);
    pthread_mutex_unlock(&w->s->lock);
    return rc;
}

/* CURLOPT_XFERINFOFUNCTION: stops a transfer still resolving or connecting at free. */
static int progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct tr_smtp *s = arg;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return atomic_load(&s->stopping) ? 1 : 0;
}

/* Under s->lock: wakes whatever curl of w waits on, and ends its transfer or QUIT. */
static void cut_sockets(struct smtp_worker *w)
{
    for (size_t i = 0; i < SMTP_SOCKS_MAX; i++)
        if (w->socks[i] >= 0)
            shutdown(w->socks[i], SHUT_RDWR);
}

/* --- the workers --------------------------------------------------------------- */

#define SETOPT(e, opt, val)                                                                        \
    do {                                                                                           \
        if (curl_easy_setopt((e), (opt), (val)) != CURLE_OK)                                       \
            goto fail;                                                                             \
    } while (0)

/* A worker's easy handle: what every message on its connection shares. */
static CURL *easy_new(struct tr_smtp *s, struct smtp_worker *w)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    SETOPT(e, CURLOPT_URL, s->url);
    SETOPT(e, CURLOPT_NOSIGNAL, 1L);
    SETOPT(e, CURLOPT_ERRORBUFFER, w->curl_err);
    SETOPT(e, CURLOPT_MAXCONNECTS, 1L);
    SETOPT(e, CURLOPT_CONNECTTIMEOUT, s->timeout_s);
    SETOPT(e, CURLOPT_SERVER_RESPONSE_TIMEOUT, s->timeout_s);
    SETOPT(e, CURLOPT_TIMEOUT, s->timeout_s);
    if (s->starttls)
        SETOPT(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (s->cafile)
        SETOPT(e, CURLOPT_CAINFO, s->cafile);
    if (s->username) {
        SETOPT(e, CURLOPT_USERNAME, s->username);
        SETOPT(e, CURLOPT_PASSWORD, s->password);
        SETOPT(e, CURLOPT_SASL_IR, 1L); /* AUTH PLAIN <credentials>: one round trip */
    }
    SETOPT(e, CURLOPT_UPLOAD, 1L);
    SETOPT(e, CURLOPT_READFUNCTION, read_cb);
    SETOPT(e, CURLOPT_READDATA, (void *)w);
    SETOPT(e, CURLOPT_HEADERFUNCTION, reply_cb);
    SETOPT(e, CURLOPT_HEADERDATA, (void *)w);
    SETOPT(e, CURLOPT_OPENSOCKETFUNCTION, open_cb);
    SETOPT(e, CURLOPT_OPENSOCKETDATA, (void *)w);
    SETOPT(e, CURLOPT_CLOSESOCKETFUNCTION, close_cb);
    SETOPT(e, CURLOPT_CLOSESOCKETDATA, (void *)w);
    SETOPT(e, CURLOPT_NOPROGRESS, 0L);
    SETOPT(e, CURLOPT_XFERINFOFUNCTION, progress_cb);
    SETOPT(e, CURLOPT_XFERINFODATA, (void *)s);
    return e;
fail:
    curl_easy_cleanup(e);
    return NULL;
}

/* Sends m on w's connection (opened, or reused from the last message), blocking. */
static void deliver(struct smtp_worker *w, struct smtp_msg *m)
{
    CURL *e = w->easy;
    w->curl_err[0] = '\0';
    m->rc = curl_easy_setopt(e, CURLOPT_MAIL_FROM, m->env_from); /* curl adds the <> */
    if (m->rc == CURLE_OK)
        m->rc = curl_easy_setopt(e, CURLOPT_MAIL_RCPT, m->rcpt);
    if (m->rc == CURLE_OK)
        m->rc = curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->len);
    if (m->rc == CURLE_OK)
        m->rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &m->code);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, (struct curl_slist *)NULL); /* m's, freed later */
    memcpy(m->err, w->curl_err, sizeof m->err);
    m->err[sizeof m->err - 1] = '\0';
}

/*
 * A worker: takes the oldest job, sends it, queues the outcome and wakes the
 * loop (the eventfd), until transport_free. Then it closes its connection
 * (QUIT) and ends.
 */
static void *worker_main(void *arg)
{
    struct smtp_worker *w = arg;
    struct tr_smtp *s = w->s;
    const uint64_t one = 1;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->jobs && !atomic_load(&s->stopping))
            pthread_cond_wait(&s->work, &s->lock);
        if (atomic_load(&s->stopping))
            break;
        struct smtp_msg *m = s->jobs;
        if (!(s->jobs = m->next))
            s->jobs_tail = &s->jobs;
        w->cur = m;
        pthread_mutex_unlock(&s->lock);

        deliver(w, m);

        pthread_mutex_lock(&s->lock);
        w->cur = NULL;
        s->busy--;
        m->next = NULL;
        *s->outcomes_tail = m;
        s->outcomes_tail = &m->next;
        if (write(s->efd, &one, sizeof one) < 0) {
            /* EAGAIN only: the counter is full, so the loop is woken already */
        }
    }
    pthread_mutex_unlock(&s->lock);
    curl_easy_cleanup(w->easy); /* QUIT on the kept connection; close_cb takes the lock */
    w->easy = NULL;
    pthread_mutex_lock(&s->lock);
    s->nended++;
    pthread_cond_signal(&s->gone);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/*
 * One more worker, on the loop thread. Its signals are all blocked (the
 * daemon takes its own through a signalfd, and a signal must never land on
 * a thread that does not expect it). 0, or -1 with errno set.
 */
static int worker_start(struct tr_smtp *s)
{
    struct smtp_worker *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->s = s;
    for (size_t i = 0; i < SMTP_SOCKS_MAX; i++)
        w->socks[i] = -1;
    if (!(w->easy = easy_new(s, w))) {
        free(w);
        errno = ENOMEM;
        return -1;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        curl_easy_cleanup(w->easy);
        free(w);
        errno = rc;
        return -1;
    }
    s->workers[s->nworkers++] = w;
    return 0;
}

/* --- outcomes (on the loop thread) ------------------------------------------------- */

/* 1 if curl failed because of a reply (code), not because of the network. */
static int failed_on_reply(CURLcode rc)
{
    switch (rc) {
    case CURLE_SEND_ERROR:           /* MAIL, RCPT or DATA refused */
    case CURLE_RECV_ERROR:           /* the end of DATA refused (newer curl) */
    case CURLE_LOGIN_DENIED:         /* AUTH refused */
    case CURLE_REMOTE_ACCESS_DENIED: /* EHLO and HELO refused */
    case CURLE_WEIRD_SERVER_REPLY:   /* greeting or end of DATA refused */
    case CURLE_USE_SSL_FAILED:       /* STARTTLS refused */
        return 1;
    default:
        return 0;
    }
}

/*
 * The outcome of a finished transfer, and the code to report (0 when no
 * reply caused the failure). A 5xx means FAILED only when it refused this
 * recipient or this message, and curl's result code does not say which
 * command a reply answered (SEND_ERROR for MAIL, RCPT and DATA alike,
 * WEIRD_SERVER_REPLY for the greeting and the end of DATA alike). So:
 * curl started reading the message (the server had said 354: the reply is
 * to the end of DATA), or curl's error text names RCPT or DATA. Anything
 * else stays RETRY: a misjudged 5xx would count as a hard bounce.
 */
static enum transport_outcome classify(const struct smtp_msg *m, CURLcode rc, long code,
                                       int *code_out)
{
    *code_out = 0;
    if (rc == CURLE_OK) {
        *code_out = (int)code;
        return TRANSPORT_SENT;
    }
    if (!failed_on_reply(rc) || code < 400 || code > 599)
        return TRANSPORT_RETRY;
    *code_out = (int)code;
    if (code >= 500 && (m->data_started || strncmp(m->err, "RCPT failed", 11) == 0 ||
                        strncmp(m->err, "DATA failed", 11) == 0))
        return TRANSPORT_FAILED;
    return TRANSPORT_RETRY;
}

static const char *outcome_name(enum transport_outcome o)
{
    switch (o) {
    case TRANSPORT_SENT:
        return "sent";
    case TRANSPORT_RETRY:
        return "retry";
    case TRANSPORT_FAILED:
        return "failed";
    }
    return "unknown";
}

static void msg_free(struct smtp_msg *m)
{
    curl_slist_free_all(m->rcpt);
    free(m);
}

static void msgs_free(struct smtp_msg *m)
{
    while (m) {
        struct smtp_msg *next = m->next;
        msg_free(m);
        m = next;
    }
}

/* One finished message: the caller hears, then it goes. */
static void finish(struct tr_smtp *s, struct smtp_msg *m)
{
    int rcode;
    enum transport_outcome o = classify(m, m->rc, m->code, &rcode);
    const char *why = m->reply;
    if (o != TRANSPORT_SENT && !rcode)
        why = m->err[0] ? m->err : curl_easy_strerror(m->rc);
    if (o != TRANSPORT_SENT)
        log_event(LOG_WARN, "smtp", "id=%llu rcpt=%s outcome=%s code=%d curl=%d why=%s",
                  (unsigned long long)m->id, log_quote(m->rcpt->data), outcome_name(o), rcode,
                  (int)m->rc, log_quote(why));
    s->inflight--;
    s->done(s->arg, m->id, o, rcode, why);
    msg_free(m);
}

/* Every outcome the workers have queued, in their order. A done callback may send again. */
static void reap(struct tr_smtp *s)
{
    uint64_t n;
    if (read(s->efd, &n, sizeof n) < 0) {
        /* EAGAIN: nothing new since the last read */
    }
    pthread_mutex_lock(&s->lock);
    struct smtp_msg *list = s->outcomes;
    s->outcomes = NULL;
    s->outcomes_tail = &s->outcomes;
    pthread_mutex_unlock(&s->lock);
    while (list) {
        struct smtp_msg *m = list;
        list = m->next;
        finish(s, m);
    }
}

/* The loop's callback for the eventfd. */
static void on_outcome(struct loop *l, int fd, uint32_t events, void *arg)
{
    (void)l;
    (void)fd;
    (void)events;
    reap(arg);
}

/* --- the transport ------------------------------------------------------------- */

struct tr_smtp *tr_smtp_new(const struct config *cfg, struct loop *loop, transport_done_fn done,
                            void *arg)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    struct tr_smtp *s = calloc(1, sizeof *s);
    if (!s) {
        curl_global_cleanup();
        return NULL;
    }
    const char *host = cfg->mail.smtp.host ? cfg->mail.smtp.host : "localhost";
    const char *cafile = cfg->mail.smtp.ca_file;
    int c = cfg->mail.smtp.connections;
    s->loop = loop;
    s->done = done;
    s->arg = arg;
    s->efd = -1;
    s->jobs_tail = &s->jobs;
    s->outcomes_tail = &s->outcomes;
    atomic_init(&s->stopping, 0);
    s->starttls = cfg->mail.smtp.tls == SMTP_TLS_STARTTLS;
    s->timeout_s = cfg->mail.smtp.timeout > 0 ? cfg->mail.smtp.timeout : 30;
    s->maxconns = c < 1 ? 1 : c > SMTP_CONN_MAX ? SMTP_CONN_MAX : (size_t)c;
    if (cfg->mail.smtp.rate > 0) {
        int rate = cfg->mail.smtp.rate > 1000000 ? 1000000 : cfg->mail.smtp.rate;
        int tokens = rate / 10 > 1 ? rate / 10 : 1;
        s->interval_us = 1000000 / rate;
        s->tolerance_us = (int64_t)(tokens - 1) * s->interval_us;
    }
    /* An IPv6 literal needs its brackets in a URL. */
    int v6 = strchr(host, ':') && host[0] != '[';
    if (asprintf(&s->url, "%s://%s%s%s:%d", cfg->mail.smtp.tls == SMTP_TLS_TLS ? "smtps" : "smtp",
                 v6 ? "[" : "", host, v6 ? "]" : "", cfg->mail.smtp.port) < 0) {
        s->url = NULL;
        goto fail;
    }
    if (cfg->mail.smtp.username) {
        const char *pw = cfg->mail.smtp.password ? cfg->mail.smtp.password : "";
        if (!(s->username = strdup(cfg->mail.smtp.username)) || !(s->password = strdup(pw)))
            goto fail;
    }
    if (cafile && cafile[0] && !(s->cafile = strdup(cafile)))
        goto fail;

    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        goto fail;
    int ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0;
    if (ok && pthread_mutex_init(&s->lock, NULL) != 0)
        ok = 0;
    if (ok && pthread_cond_init(&s->work, NULL) != 0) {
        pthread_mutex_destroy(&s->lock);
        ok = 0;
    }
    if (ok && pthread_cond_init(&s->gone, &ca) != 0) {
        pthread_cond_destroy(&s->work);
        pthread_mutex_destroy(&s->lock);
        ok = 0;
    }
    pthread_condattr_destroy(&ca);
    if (!ok)
        goto fail;
    s->sync_ok = 1;
    if ((s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        goto fail;
    if (loop && loop_add(loop, s->efd, EPOLLIN, on_outcome, s) < 0) {
        close(s->efd);
        s->efd = -1;
        goto fail;
    }
    return s;
fail:
    tr_smtp_free(s);
    return NULL;
}

void tr_smtp_free(struct tr_smtp *s)
{
    if (!s)
        return;
    if (s->efd >= 0 && s->loop)
        loop_del(s->loop, s->efd);
    if (s->sync_ok) {
        /*
         * Messages still in flight are dropped unreported: not SENT, so the
         * caller's record still says pending and they go again later. Those
         * being sent are cut off at once (a message cut before its final
         * dot is not delivered); idle connections get QUIT, and up to
         * SMTP_QUIT_GRACE ms for its answer before they are cut too.
         */
        pthread_mutex_lock(&s->lock);
        atomic_store(&s->stopping, 1);
        msgs_free(s->jobs);
        s->jobs = NULL;
        s->jobs_tail = &s->jobs;
        for (size_t i = 0; i < s->nworkers; i++)
            if (s->workers[i]->cur)
                cut_sockets(s->workers[i]);
        pthread_cond_broadcast(&s->work);
        struct timespec end;
        clock_gettime(CLOCK_MONOTONIC, &end);
        end.tv_sec += SMTP_QUIT_GRACE / 1000;
        end.tv_nsec += (long)(SMTP_QUIT_GRACE % 1000) * 1000000;
        if (end.tv_nsec >= 1000000000) {
            end.tv_sec++;
            end.tv_nsec -= 1000000000;
        }
        while (s->nended < s->nworkers)
            if (pthread_cond_timedwait(&s->gone, &s->lock, &end) == ETIMEDOUT)
                break;
        if (s->nended < s->nworkers)
            for (size_t i = 0; i < s->nworkers; i++)
                cut_sockets(s->workers[i]);
        pthread_mutex_unlock(&s->lock);
        for (size_t i = 0; i < s->nworkers; i++) {
            pthread_join(s->workers[i]->thread, NULL);
            free(s->workers[i]);
        }
        msgs_free(s->outcomes);
        pthread_cond_destroy(&s->gone);
        pthread_cond_destroy(&s->work);
        pthread_mutex_destroy(&s->lock);
    }
    if (s->efd >= 0)
        close(s->efd);
    free(s->url);
    free(s->username);
    if (s->password) {
        explicit_bzero(s->password, strlen(s->password));
        free(s->password);
    }
    free(s->cafile);
    free(s);
    curl_global_cleanup();
}

int tr_smtp_ready(const struct tr_smtp *s)
{
    return s->inflight < s->maxconns && rate_wait_us(s, now_us()) == 0;
}

size_t tr_smtp_inflight(const struct tr_smtp *s)
{
    return s->inflight;
}

int tr_smtp_send(struct tr_smtp *s, uint64_t id, const char *env_from, const char *rcpt,
                 const char *data, size_t len)
{
    if (!tr_smtp_ready(s)) {
        errno = EAGAIN;
        return -1;
    }
    size_t flen = strlen(env_from);
    struct smtp_msg *m = calloc(1, sizeof *m + len + flen + 1);
    if (!m)
        return -1;
    m->id = id;
    m->len = len;
    memcpy(m->data, data, len);
    memcpy(m->data + len, env_from, flen + 1);
    m->env_from = m->data + len;
    if (!(m->rcpt = curl_slist_append(NULL, rcpt))) {
        msg_free(m);
        errno = ENOMEM;
        return -1;
    }
    /*
     * A worker for each message being sent, started when the first message
     * needs it: fewer than smtp.connections threads and connections when
     * fewer messages go at once. A worker whose outcome was just reaped may
     * still be on its way back to the queue; then it takes the next job.
     */
    pthread_mutex_lock(&s->lock);
    size_t want = s->busy + 1;
    pthread_mutex_unlock(&s->lock);
    if (want > s->nworkers && s->nworkers < s->maxconns && worker_start(s) < 0 &&
        s->nworkers == 0) {
        int e = errno;
        msg_free(m);
        errno = e == EAGAIN ? ENOMEM : e;
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    *s->jobs_tail = m;
    s->jobs_tail = &m->next;
    s->busy++;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
    s->inflight++;
    rate_take(s, now_us());
    return 0;
}

/* Milliseconds until a token is due, when that is all that keeps ready() at 0; else -1. */
static int64_t rate_tick(const struct tr_smtp *s)
{
    if (s->inflight >= s->maxconns)
        return -1;
    int64_t w = rate_wait_us(s, now_us());
    return w ? (w + 999) / 1000 : -1;
}

int64_t tr_smtp_tick(struct tr_smtp *s)
{
    reap(s);
    return rate_tick(s);
}

int tr_smtp_wait(struct tr_smtp *s, int64_t timeout_ms)
{
    if (s->loop) {
        errno = EINVAL; /* the loop drives this one */
        return -1;
    }
    int64_t end = loop_now_ms() + timeout_ms;
    for (;;) {
        reap(s);
        if (!s->inflight)
            return 0;
        int64_t left = timeout_ms < 0 ? 1000 : end - loop_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {.fd = s->efd, .events = POLLIN};
        poll(&p, 1, left > 1000 ? 1000 : (int)left);
    }
}
