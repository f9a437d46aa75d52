/*
 * transport_smtp: the smtp transport (SPEC §8) on libcurl's SMTP client:
 * RFC 5321 (SMTP), RFC 3207 (STARTTLS), RFC 8314 (implicit TLS), RFC 4954
 * (AUTH: curl picks the strongest mechanism the server offers, PLAIN or
 * LOGIN on most relays, credentials sent with the command, RFC 4422's
 * initial response), RFC 1870 (SIZE, announced in MAIL FROM).
 *
 * Driving. With a loop, curl's multi interface runs on the daemon's loop:
 * CURLMOPT_SOCKETFUNCTION puts curl's sockets into it (loop_add/loop_del,
 * EPOLLIN/EPOLLOUT as curl asks), CURLMOPT_TIMERFUNCTION records a deadline
 * that transport_tick keeps (curl_multi_socket_action(CURL_SOCKET_TIMEOUT)),
 * and a ready socket calls curl_multi_socket_action(fd, events). Without a
 * loop, transport_wait runs the multi handle itself (curl_multi_perform and
 * curl_multi_poll). Finished transfers come from curl_multi_info_read.
 *
 * One easy handle a message, one recipient each. Connections are curl's
 * cache on the multi handle, limited to smtp.connections (per host, in total,
 * and kept), and reused across messages: a connection that delivered a
 * message takes the next one without a new greeting, TLS handshake or AUTH.
 * A message is only taken when a connection is free (transport_ready), so
 * curl never queues and memory stays at `connections` copies of a message.
 * Rate: a token bucket (GCRA) of smtp.rate messages a second that holds up
 * to rate/10 tokens (at least one): at most rate/10 messages in a burst.
 * Timeouts: smtp.timeout seconds to connect, for each reply, and for the
 * whole message.
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
 *
 * Known limit of libcurl (7.88, and later versions alike): after the last
 * byte of DATA, curl waits for the server's reply blocking (smtp_done runs
 * smtp_block_statemach), and so does its QUIT when it closes a connection.
 * The loop stalls for that wait, up to smtp.timeout for a server that stops
 * answering, and the connections take turns: measured against aiosmtpd
 * answering the end of DATA after 20 ms, 4 connections delivered 43 messages
 * a second and 1 connection 41 (not the 4x expected), and the loop stalled
 * up to 72 ms. A relay on the same host answering at once hides it.
 */
#include "transport_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "../daemon/loop.h"
#include "../lib/log.h"

#define SMTP_REPLY_MAX 512 /* bytes of the server's last reply line kept (RFC 5321: 512) */
#define SMTP_CONN_MAX  64  /* smtp.connections above this are cut (the loop holds 64 fds) */

/* One message in flight: curl's handle, the envelope, and the bytes. */
struct smtp_msg {
    struct smtp_msg *prev, *next;
    CURL *easy;
    uint64_t id;
    struct curl_slist *rcpt;    /* one recipient; curl reads it until done */
    char reply[SMTP_REPLY_MAX]; /* the last reply line, controls replaced */
    char err[CURL_ERROR_SIZE];  /* curl's own words for a failure */
    size_t len, off;            /* bytes of data, bytes curl has read */
    int data_started;           /* curl asked for the bytes: DATA got its 354 */
    char data[];                /* our copy of the message */
};

struct tr_smtp {
    CURLM *multi;
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

    int64_t deadline_ms; /* curl's timer (loop_now_ms clock); -1: none */
    int *fds;            /* sockets we put into the loop */
    size_t nfds, fds_size;

    struct smtp_msg *msgs; /* in flight */
    size_t inflight;
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

/* --- sockets and timer: curl's callbacks into the daemon's loop ------------- */

static void reap(struct tr_smtp *s);

static void on_socket(struct loop *l, int fd, uint32_t events, void *arg)
{
    struct tr_smtp *s = arg;
    int mask = 0, running;
    (void)l;
    if (events & EPOLLIN)
        mask |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        mask |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        mask |= CURL_CSELECT_ERR;
    curl_multi_socket_action(s->multi, fd, mask, &running);
    reap(s);
}

static int fds_add(struct tr_smtp *s, int fd)
{
    if (s->nfds == s->fds_size) {
        size_t n = s->fds_size ? s->fds_size * 2 : 8;
        int *p = realloc(s->fds, n * sizeof *p);
        if (!p)
            return -1;
        s->fds = p;
        s->fds_size = n;
    }
    s->fds[s->nfds++] = fd;
    return 0;
}

/* 1 if fd was ours (and is no longer). */
static int fds_del(struct tr_smtp *s, int fd)
{
    for (size_t i = 0; i < s->nfds; i++) {
        if (s->fds[i] == fd) {
            s->fds[i] = s->fds[--s->nfds];
            return 1;
        }
    }
    return 0;
}

/*
 * CURLMOPT_SOCKETFUNCTION: curl says which events it wants on a socket, or
 * that it is done with it. The loop has no "modify", so a change is a delete
 * and an add; curl only calls when something changes.
 */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct tr_smtp *s = userp;
    (void)easy;
    (void)socketp;
    if (fds_del(s, fd))
        loop_del(s->loop, fd); /* fails harmlessly if curl closed fd already */
    if (what == CURL_POLL_REMOVE)
        return 0;
    uint32_t ev = 0;
    if (what & CURL_POLL_IN)
        ev |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev |= EPOLLOUT;
    /*
     * If the loop cannot take the socket (it is full), the transfer on it
     * waits unpolled until its timeout and comes back RETRY. Returning -1
     * instead would make curl mark the whole multi handle dead.
     */
    if (loop_add(s->loop, fd, ev, on_socket, s) < 0) {
        log_event(LOG_WARN, "smtp", "result=loop_add_failed fd=%d why=%s", (int)fd,
                  log_quote(strerror(errno)));
        return 0;
    }
    if (fds_add(s, fd) < 0)
        loop_del(s->loop, fd);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl wants curl_multi_socket_action(TIMEOUT). */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct tr_smtp *s = userp;
    (void)multi;
    s->deadline_ms = timeout_ms < 0 ? -1 : loop_now_ms() + timeout_ms;
    return 0;
}

/* --- one message -------------------------------------------------------------- */

/* CURLOPT_READFUNCTION: the message's bytes; curl does the dot-stuffing. */
static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
    struct smtp_msg *m = arg;
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
 */
static size_t reply_cb(char *line, size_t size, size_t nitems, void *arg)
{
    struct smtp_msg *m = arg;
    size_t n = size * nitems, o = 0;
    if (n >= 3 && memcmp(line, "221", 3) == 0) /* QUIT's answer, after the one that matters */
        return n;
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    for (size_t i = 0; i < n && o + 1 < sizeof m->reply; i++) {
        unsigned char c = (unsigned char)line[i];
        m->reply[o++] = c < ' ' || c == 0x7f ? '?' : (char)c;
    }
    m->reply[o] = '\0';
    return size * nitems;
}

#define SETOPT(e, opt, val)                                                                        \
    do {                                                                                           \
        if (curl_easy_setopt((e), (opt), (val)) != CURLE_OK)                                       \
            goto fail;                                                                             \
    } while (0)

static CURL *easy_new(struct tr_smtp *s, struct smtp_msg *m, const char *env_from)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    SETOPT(e, CURLOPT_URL, s->url);
    SETOPT(e, CURLOPT_PRIVATE, (void *)m);
    SETOPT(e, CURLOPT_NOSIGNAL, 1L);
    SETOPT(e, CURLOPT_ERRORBUFFER, m->err);
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
    SETOPT(e, CURLOPT_MAIL_FROM, env_from); /* curl adds the <> when missing */
    SETOPT(e, CURLOPT_MAIL_RCPT, m->rcpt);
    SETOPT(e, CURLOPT_UPLOAD, 1L);
    SETOPT(e, CURLOPT_READFUNCTION, read_cb);
    SETOPT(e, CURLOPT_READDATA, (void *)m);
    SETOPT(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->len);
    SETOPT(e, CURLOPT_HEADERFUNCTION, reply_cb);
    SETOPT(e, CURLOPT_HEADERDATA, (void *)m);
    return e;
fail:
    curl_easy_cleanup(e);
    return NULL;
}

static void msg_free(struct smtp_msg *m)
{
    curl_slist_free_all(m->rcpt);
    free(m);
}

static void unlink_msg(struct tr_smtp *s, struct smtp_msg *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        s->msgs = m->next;
    if (m->next)
        m->next->prev = m->prev;
    s->inflight--;
}

/* --- outcomes ----------------------------------------------------------------- */

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

/* One finished transfer: its easy handle goes, then the caller hears. */
static void finish(struct tr_smtp *s, CURL *e, CURLcode rc)
{
    char *priv = NULL;
    long code = 0;
    int rcode;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    struct smtp_msg *m = (struct smtp_msg *)priv;
    curl_multi_remove_handle(s->multi, e);
    curl_easy_cleanup(e);
    unlink_msg(s, m);

    enum transport_outcome o = classify(m, rc, code, &rcode);
    const char *why = m->reply;
    if (o != TRANSPORT_SENT && !rcode)
        why = m->err[0] ? m->err : curl_easy_strerror(rc);
    if (o != TRANSPORT_SENT)
        log_event(LOG_WARN, "smtp", "id=%llu rcpt=%s outcome=%s code=%d curl=%d why=%s",
                  (unsigned long long)m->id, log_quote(m->rcpt->data), outcome_name(o), rcode,
                  (int)rc, log_quote(why));
    s->done(s->arg, m->id, o, rcode, why);
    msg_free(m);
}

/* Every transfer curl has finished. A done callback may send again. */
static void reap(struct tr_smtp *s)
{
    CURLMsg *cm;
    int left;
    while ((cm = curl_multi_info_read(s->multi, &left))) {
        if (cm->msg == CURLMSG_DONE)
            finish(s, cm->easy_handle, cm->data.result);
    }
}

/* --- the transport ------------------------------------------------------------- */

#define MSETOPT(m, opt, val)                                                                       \
    do {                                                                                           \
        if (curl_multi_setopt((m), (opt), (val)) != CURLM_OK)                                      \
            goto fail;                                                                             \
    } while (0)

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
    s->deadline_ms = -1;
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

    if (!(s->multi = curl_multi_init()))
        goto fail;
    MSETOPT(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->maxconns);
    MSETOPT(s->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)s->maxconns);
    MSETOPT(s->multi, CURLMOPT_MAXCONNECTS, (long)s->maxconns);
    if (loop) {
        MSETOPT(s->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
        MSETOPT(s->multi, CURLMOPT_SOCKETDATA, (void *)s);
        MSETOPT(s->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        MSETOPT(s->multi, CURLMOPT_TIMERDATA, (void *)s);
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
    /* Messages still in flight are dropped unreported: not SENT, so the
     * caller's record still says pending and they go again later. */
    while (s->msgs) {
        struct smtp_msg *m = s->msgs;
        curl_multi_remove_handle(s->multi, m->easy);
        curl_easy_cleanup(m->easy);
        unlink_msg(s, m);
        msg_free(m);
    }
    if (s->multi)
        curl_multi_cleanup(s->multi); /* closes the kept connections (QUIT) */
    for (size_t i = 0; i < s->nfds; i++)
        loop_del(s->loop, s->fds[i]);
    free(s->fds);
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
    struct smtp_msg *m = calloc(1, sizeof *m + len);
    if (!m)
        return -1;
    m->id = id;
    m->len = len;
    memcpy(m->data, data, len);
    if (!(m->rcpt = curl_slist_append(NULL, rcpt)) || !(m->easy = easy_new(s, m, env_from)))
        goto fail;
    if (curl_multi_add_handle(s->multi, m->easy) != CURLM_OK) {
        curl_easy_cleanup(m->easy);
        goto fail;
    }
    m->next = s->msgs;
    if (s->msgs)
        s->msgs->prev = m;
    s->msgs = m;
    s->inflight++;
    rate_take(s, now_us());
    return 0;
fail:
    msg_free(m);
    errno = ENOMEM;
    return -1;
}

/* Milliseconds until a token is due, when that is all that keeps ready() at 0; else -1. */
static int64_t rate_tick(const struct tr_smtp *s)
{
    if (s->inflight >= s->maxconns)
        return -1;
    int64_t w = rate_wait_us(s, now_us());
    return w ? (w + 999) / 1000 : -1;
}

static int64_t min_wait(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

int64_t tr_smtp_tick(struct tr_smtp *s)
{
    int running;
    int64_t wait;
    if (s->loop) {
        if (s->deadline_ms >= 0 && loop_now_ms() >= s->deadline_ms) {
            s->deadline_ms = -1;
            curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            reap(s);
        }
        wait = s->deadline_ms < 0 ? -1 : s->deadline_ms - loop_now_ms();
        if (s->deadline_ms >= 0 && wait < 0)
            wait = 0;
    } else {
        long ms = -1;
        curl_multi_perform(s->multi, &running);
        reap(s);
        curl_multi_timeout(s->multi, &ms);
        wait = ms;
    }
    return min_wait(wait, rate_tick(s));
}

int tr_smtp_wait(struct tr_smtp *s, int64_t timeout_ms)
{
    if (s->loop) {
        errno = EINVAL; /* the loop drives this one */
        return -1;
    }
    int64_t end = loop_now_ms() + timeout_ms;
    for (;;) {
        int running;
        curl_multi_perform(s->multi, &running);
        reap(s);
        if (!s->inflight)
            return 0;
        int64_t left = timeout_ms < 0 ? 1000 : end - loop_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        curl_multi_poll(s->multi, NULL, 0, left > 1000 ? 1000 : (int)left, NULL);
    }
}
