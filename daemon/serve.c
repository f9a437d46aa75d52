/*
 * serve: `nashra serve`, the daemon. Builds once, then lives in one event
 * loop (daemon/loop.c) that owns the content watcher, the signals and the
 * timers, until SIGTERM or SIGINT.
 *
 * The tick (serve_tick), run after every wake-up, is where timed work
 * happens, like Redis's serverCron:
 *   1. a stop asked for by a signal: leave the loop;
 *   2. a reload asked for by SIGHUP: load the new config and templates, swap
 *      them in whole, or log why not and keep the running ones;
 *   3. changed files, once the burst of events is over (a short debounce):
 *      one incremental pass over just those files (a full pass when the
 *      watcher could not tell which: a new folder, a queue overflow);
 *   4. a scheduled post whose date has come: an incremental pass over no
 *      file, which publishes what is due;
 *   5. a failed pass: a full one, retried every second;
 *   6. the consumers' timed work (the newsletter sender; the bounce Maildir
 *      reader, also woken by inotify) and the confirmation mails of
 *      /subscribe (daemon/subs_http.c);
 *   7. HTTP: libmicrohttpd's timeouts (its sockets wake the loop themselves);
 *   8. the systemd watchdog ping;
 * and it returns how long the loop may sleep before the next of these is due.
 * Nothing is polled: with no change, no due post, no client and no
 * watchdog, the loop sleeps in epoll_wait until something happens.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../feeds/feeds.h"
#include "../lib/log.h"
#include "../lib/sdnotify.h"
#include "../lib/timefmt.h"
#include "../mail/bounces.h"
#include "../mail/newsletter.h"
#include "../mail/sender.h"
#include "../store/store.h"
#include "ap_deliver.h"
#include "ap_http.h"
#include "cmd.h"
#include "http.h"
#include "loop.h"
#include "publish.h"
#include "subs_http.h"
#include "watch.h"

#define DEBOUNCE_MS 3
#define RETRY_MS    1000

static const char serve_usage[] =
    "usage: nashra serve [-c FILE] [-v|-q]\n"
    "\n"
    "The daemon: build, then watch content.dir and publish every change within\n"
    "a fraction of a second, publish scheduled posts at their date, until\n"
    "SIGTERM. SIGHUP reloads the configuration.\n"
    "\n"
    "  -c FILE   configuration (default ./nashra.yaml)\n"
    "  -v        more log lines (debug)\n"
    "  -q        only warnings and errors\n"
    "  --help    this text\n";

/*
 * Consumers of the announcement log plug in here (the newsletter and
 * ActivityPub deliveries): after a pass that appended events, announced() is
 * told the newest sequence number; each reads the log itself from its own
 * cursor in the store, so a restart resumes where it stopped and nothing is
 * sent twice. tick() does timed work (retries with backoff) and returns the
 * milliseconds until it wants to run again (-1: only after an event). Both
 * run on the loop's thread and must not block: sockets go to loop_add().
 */
struct consumer {
    const char *name;
    void (*announced)(void *arg, int64_t last_seq);
    int64_t (*tick)(void *arg, int64_t now_ms);
    void *arg;
};
#define MAX_CONSUMERS 4

struct serve {
    struct cmd_opts opts;
    struct config *cfg;
    struct html_templates *tpl;
    struct store *st;
    struct watch *watch;
    struct loop *loop;
    int sigfd;
    int stop, reload;
    struct http_server *http;
    char **changed; /* relative paths changed since the last pass */
    size_t nchanged, achanged;
    int rescan;          /* the watcher lost track: a full pass is due */
    int dirty;           /* files changed since the last pass */
    int64_t dirty_at;    /* when the last change was seen (ms) */
    int64_t next_due;    /* date (s) of the next scheduled post, 0 if none */
    int64_t retry_at;    /* a failed pass is retried then (ms), 0 if none */
    int64_t watchdog_ms; /* systemd watchdog interval / 2, 0 if none */
    int64_t watchdog_at;
    struct consumer consumers[MAX_CONSUMERS];
    size_t nconsumers;
    struct sender *sender;   /* the newsletters: NULL without lists */
    struct bounces *bounces; /* mail.bounces.maildir's reader: NULL without it or lists */
    struct subs_http *subs;  /* /subscribe, /confirm, /unsubscribe */
    struct ap_http *ap;      /* the actor's routes: NULL when activitypub.enabled is false */
    struct ap_deliver *apd;  /* ActivityPub deliveries: NULL when activitypub.enabled is false */
    /* for /metrics */
    struct publish_stats last;
    int64_t last_publish; /* unix seconds of the last good pass, 0 if none */
    unsigned long passes, pass_failures;
};

/* SIGTERM or SIGINT waiting in the signalfd (blocked signals stay pending):
 * a long publish pass asks this so that a stop never waits for it. */
static int stop_pending(void)
{
    sigset_t set;
    return sigpending(&set) == 0 &&
           (sigismember(&set, SIGTERM) == 1 || sigismember(&set, SIGINT) == 1);
}

static void changed_clear(struct serve *s)
{
    for (size_t i = 0; i < s->nchanged; i++)
        free(s->changed[i]);
    s->nchanged = 0;
}

/*
 * One publish pass: full (paths NULL: start, reload, rescan, retry) or over
 * the changed paths only. A failed pass is retried in full: nothing is lost.
 */
static int serve_publish(struct serve *s, const char *why, int full)
{
    struct publish_stats st;
    int64_t t0 = loop_now_ms();
    int rc = full || s->rescan
                 ? publish_run(s->cfg, s->st, s->tpl, &st)
                 : publish_changes(s->cfg, s->st, s->tpl, s->changed, s->nchanged, &st);
    changed_clear(s);
    s->rescan = 0;
    s->passes++;
    if (rc < 0 && stop_pending()) /* given up for a stop: not a failure */
        return -1;
    if (rc < 0) {
        s->pass_failures++;
        log_event(LOG_ERROR, "publish", "reason=%s result=failed retry_ms=%d", why, RETRY_MS);
        s->retry_at = loop_now_ms() + RETRY_MS;
        return -1;
    }
    s->retry_at = 0;
    s->next_due = st.next_due;
    if (st.announced) {
        int64_t seq = store_last_seq(s->st);
        for (size_t i = 0; seq > 0 && i < s->nconsumers; i++)
            if (s->consumers[i].announced)
                s->consumers[i].announced(s->consumers[i].arg, seq);
    }
    s->last = st;
    s->last_publish = timefmt_now();
    log_event(st.parsed || st.announced || st.written || full ? LOG_INFO : LOG_DEBUG, "publish",
              "reason=%s files=%zu parsed=%zu published=%zu rejected=%zu announced=%zu "
              "written=%zu ms=%lld",
              why, st.files, st.parsed, st.published, st.rejected, st.announced, st.written,
              (long long)(loop_now_ms() - t0));
    return 0;
}

static void on_changed(void *arg, const char *relpath)
{
    struct serve *s = arg;
    log_event(LOG_DEBUG, "change", "path=%s", log_quote(relpath));
    s->dirty = 1;
    if (s->rescan)
        return;
    if (s->nchanged == s->achanged) {
        size_t na = s->achanged ? s->achanged * 2 : 16;
        char **a = realloc(s->changed, na * sizeof *a);
        if (!a) {
            s->rescan = 1;
            return;
        }
        s->changed = a;
        s->achanged = na;
    }
    if (!(s->changed[s->nchanged] = strdup(relpath)))
        s->rescan = 1;
    else
        s->nchanged++;
}

static void on_watch(struct loop *l, int fd, uint32_t events, void *arg)
{
    struct serve *s = arg;
    int rescan = 0;
    (void)l;
    (void)fd;
    (void)events;
    if (watch_read(s->watch, on_changed, s, &rescan) < 0)
        log_event(LOG_ERROR, "watch", "error=%s", log_quote(strerror(errno)));
    if (rescan)
        s->dirty = s->rescan = 1;
    if (s->dirty)
        s->dirty_at = loop_now_ms();
}

static void on_signal(struct loop *l, int fd, uint32_t events, void *arg)
{
    struct serve *s = arg;
    struct signalfd_siginfo si;
    (void)l;
    (void)events;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            s->reload = 1;
        } else {
            log_event(LOG_INFO, "signal", "signal=%s action=stop",
                      si.ssi_signo == SIGTERM ? "TERM" : "INT");
            s->stop = 1;
        }
    }
}

/* The newsletter sender, when the config has lists; (re)made on reload. */
static int serve_mail(struct serve *s)
{
    struct diag d = {0};
    s->nconsumers = 0;
    if (s->apd)
        s->consumers[s->nconsumers++] =
            (struct consumer){"activitypub", ap_deliver_announced, ap_deliver_tick, s->apd};
    if (s->apd)
        ap_deliver_announced(s->apd, 0); /* what was announced while we were down */
    sender_free(s->sender);
    s->sender = NULL;
    bounces_free(s->bounces);
    s->bounces = NULL;
    if (!s->cfg->nlists)
        return 0;
    if (!(s->sender = sender_new(s->cfg, s->st, s->loop, &d))) {
        log_event(LOG_ERROR, "mail", "error=%s", log_quote(d.msg));
        return -1;
    }
    s->consumers[s->nconsumers++] =
        (struct consumer){"mail", sender_announced, sender_tick, s->sender};
    sender_announced(s->sender, 0); /* what was announced while we were down */
    if (s->cfg->mail.bounces.maildir) {
        if (!(s->bounces = bounces_new(s->cfg, s->st, s->loop, &d))) {
            log_event(LOG_ERROR, "bounce", "error=%s", log_quote(d.msg));
            return -1;
        }
        s->consumers[s->nconsumers++] =
            (struct consumer){"bounces", NULL, bounces_tick, s->bounces};
    }
    return 0;
}

/* SIGHUP: a new config and templates, swapped in whole, or none at all. */
static void serve_reload(struct serve *s)
{
    struct diag d = {0};
    char *file = NULL;
    struct config *cfg = config_load(s->opts.config, &d, &file);
    struct html_templates *tpl = NULL;
    if (!cfg) {
        log_event(LOG_ERROR, "reload", "result=kept_old file=%s line=%d col=%d error=%s",
                  log_quote(file ? file : s->opts.config), d.line, d.col, log_quote(d.msg));
        free(file);
        return;
    }
    /* The lists' templates too: a broken one keeps the running config
     * (swapped in, it would leave the daemon without a sender). */
    struct newsletter *nl = NULL;
    if (timefmt_set_zone(cfg->site.timezone) < 0 || !(tpl = html_templates_load(cfg, &d, &file)) ||
        (cfg->nlists && !(nl = newsletter_load(cfg, &d, &file)))) {
        log_event(LOG_ERROR, "reload", "result=kept_old file=%s line=%d col=%d error=%s",
                  log_quote(file ? file : "timezone"), d.line, d.col, log_quote(d.msg));
        free(file);
        html_templates_free(tpl);
        timefmt_set_zone(s->cfg->site.timezone);
        config_free(cfg);
        return;
    }
    newsletter_free(nl); /* checked only: the sender compiles its own */
    int same_dirs = !strcmp(cfg->content.dir, s->cfg->content.dir) &&
                    !strcmp(cfg->state.dir, s->cfg->state.dir);
    if (!same_dirs)
        log_event(LOG_WARN, "reload", "note=content.dir_and_state.dir_need_a_restart");
    if (strcmp(cfg->http.listen, s->cfg->http.listen))
        log_event(LOG_WARN, "reload", "note=http.listen_needs_a_restart");
    html_templates_free(s->tpl);
    config_free(s->cfg);
    s->cfg = cfg;
    s->tpl = tpl;
    http_set_root(s->http, cfg->output.dir);
    ap_http_config(s->ap, cfg);
    ap_deliver_config(s->apd, cfg);
    serve_mail(s); /* messages in flight stay pending: sent again */
    if (subs_http_config(s->subs, cfg, &d) < 0)
        log_event(LOG_ERROR, "reload", "subscriptions=%s", log_quote(d.msg));
    log_event(LOG_INFO, "reload", "result=applied file=%s", log_quote(s->opts.config));
    serve_publish(s, "reload", 1);
}

/* Milliseconds until the unix second t (the clock NASHRA_NOW pins is in
 * whole seconds; the real one is read to the millisecond, so a post dated
 * 08:00:00 goes out at 08:00:00.0, not up to a second late). */
static int64_t ms_until(int64_t t)
{
    struct timespec ts;
    if (getenv("NASHRA_NOW") || clock_gettime(CLOCK_REALTIME, &ts) < 0)
        return (t - timefmt_now()) * 1000;
    return t * 1000 - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static int64_t min_wait(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static int64_t serve_tick(struct loop *l, void *arg)
{
    struct serve *s = arg;
    int64_t now = loop_now_ms(), wait = -1;
    if (s->stop) {
        loop_stop(l);
        return -1;
    }
    if (s->reload) {
        s->reload = 0;
        serve_reload(s);
    }
    if (s->dirty) {
        if (now - s->dirty_at >= DEBOUNCE_MS) {
            s->dirty = 0;
            serve_publish(s, "change", 0);
        } else {
            wait = DEBOUNCE_MS - (now - s->dirty_at);
        }
    }
    if (s->retry_at && now >= s->retry_at)
        serve_publish(s, "retry", 1);
    if (s->retry_at) { /* set again by a retry that failed too: wait for it */
        int64_t t = loop_now_ms();
        wait = min_wait(wait, s->retry_at > t ? s->retry_at - t : 0);
    }
    if (s->next_due && !s->retry_at) { /* a failed pass retries on its own */
        if (ms_until(s->next_due) <= 0)
            serve_publish(s, "scheduled", 0);
        if (s->next_due && !s->retry_at)
            wait = min_wait(wait, ms_until(s->next_due) > 0 ? ms_until(s->next_due) : 0);
    }
    for (size_t i = 0; i < s->nconsumers; i++)
        if (s->consumers[i].tick)
            wait = min_wait(wait, s->consumers[i].tick(s->consumers[i].arg, now));
    if (s->subs)
        wait = min_wait(wait, subs_http_tick(s->subs, now));
    if (s->http) {
        http_run(s->http);
        wait = min_wait(wait, http_timeout_ms(s->http));
    }
    if (s->watchdog_ms) {
        if (now >= s->watchdog_at) {
            sd_notify_send("WATCHDOG=1");
            s->watchdog_at = now + s->watchdog_ms;
        }
        wait = min_wait(wait, s->watchdog_at - now);
    }
    return wait;
}

static void on_http(struct loop *l, int fd, uint32_t events, void *arg)
{
    struct serve *s = arg;
    (void)l;
    (void)fd;
    (void)events;
    if (http_run(s->http) < 0)
        log_event(LOG_ERROR, "http", "error=%s", log_quote(strerror(errno)));
}

/* state.dir changed: actor.pem may be a new key (`nashra keys --rotate`). */
static void on_keyfile(struct loop *l, int fd, uint32_t events, void *arg)
{
    struct serve *s = arg;
    (void)l;
    (void)fd;
    (void)events;
    if (ap_http_key_refresh(s->ap)) {
        const char *key_id;
        ap_deliver_set_key(s->apd, ap_http_key(s->ap, &key_id));
        ap_deliver_kick(s->apd); /* the actor's Update it queued */
    }
}

/* The inbox's fetches are done: its requests are answered. */
static void on_inbox(struct loop *l, int fd, uint32_t events, void *arg)
{
    struct serve *s = arg;
    (void)l;
    (void)fd;
    (void)events;
    ap_http_inbox_done(s->ap);
}

static int mail_metrics(const struct serve *s, struct buf *out)
{
    struct sender_stats st = {0};
    if (s->sender)
        sender_stats(s->sender, &st);
    return buf_printf(
        out,
        "# HELP nashra_mail_sent_total Messages the mail server accepted.\n"
        "# TYPE nashra_mail_sent_total counter\n"
        "nashra_mail_sent_total %llu\n"
        "# HELP nashra_mail_failed_total Messages given up on (5xx, too many tries).\n"
        "# TYPE nashra_mail_failed_total counter\n"
        "nashra_mail_failed_total %llu\n"
        "# HELP nashra_mail_retries_total Messages put back for a later try.\n"
        "# TYPE nashra_mail_retries_total counter\n"
        "nashra_mail_retries_total %llu\n"
        "# HELP nashra_mail_inflight Messages handed to the server, not answered.\n"
        "# TYPE nashra_mail_inflight gauge\n"
        "nashra_mail_inflight %zu\n",
        (unsigned long long)st.sent, (unsigned long long)st.failed, (unsigned long long)st.retried,
        st.inflight);
}

static int ap_metrics(const struct serve *s, struct buf *out)
{
    struct ap_deliver_stats st;
    unsigned long acc = 0, ref = 0;
    ap_deliver_stats(s->apd, &st);
    ap_http_inbox_stats(s->ap, &acc, &ref);
    return buf_printf(
        out,
        "# HELP nashra_ap_deliveries_sent_total ActivityPub deliveries an inbox accepted.\n"
        "# TYPE nashra_ap_deliveries_sent_total counter\n"
        "nashra_ap_deliveries_sent_total %llu\n"
        "# HELP nashra_ap_deliveries_failed_total ActivityPub deliveries given up on.\n"
        "# TYPE nashra_ap_deliveries_failed_total counter\n"
        "nashra_ap_deliveries_failed_total %llu\n"
        "# HELP nashra_ap_deliveries_retries_total ActivityPub deliveries put back for later.\n"
        "# TYPE nashra_ap_deliveries_retries_total counter\n"
        "nashra_ap_deliveries_retries_total %llu\n"
        "# HELP nashra_ap_deliveries_inflight ActivityPub requests in flight.\n"
        "# TYPE nashra_ap_deliveries_inflight gauge\n"
        "nashra_ap_deliveries_inflight %zu\n"
        "# HELP nashra_ap_activities_total Activities queued for the followers.\n"
        "# TYPE nashra_ap_activities_total counter\n"
        "nashra_ap_activities_total %llu\n"
        "# HELP nashra_ap_inbox_accepted_total Inbox POSTs accepted.\n"
        "# TYPE nashra_ap_inbox_accepted_total counter\n"
        "nashra_ap_inbox_accepted_total %lu\n"
        "# HELP nashra_ap_inbox_refused_total Inbox POSTs refused (signature).\n"
        "# TYPE nashra_ap_inbox_refused_total counter\n"
        "nashra_ap_inbox_refused_total %lu\n"
        "# HELP nashra_ap_followers Followers of the actor.\n"
        "# TYPE nashra_ap_followers gauge\n"
        "nashra_ap_followers %lld\n"
        "# HELP nashra_ap_deliveries_pending ActivityPub deliveries waiting (pending or retry).\n"
        "# TYPE nashra_ap_deliveries_pending gauge\n"
        "nashra_ap_deliveries_pending %lld\n",
        (unsigned long long)st.sent, (unsigned long long)st.failed, (unsigned long long)st.retried,
        st.inflight, (unsigned long long)st.activities, acc, ref, (long long)st.followers,
        (long long)st.pending);
}

/* The daemon's part of /metrics (the server adds its own). */
static int serve_metrics(void *arg, struct buf *out)
{
    const struct serve *s = arg;
    return buf_printf(out,
                      "# HELP nashra_posts_published Posts in the feeds and the archive.\n"
                      "# TYPE nashra_posts_published gauge\n"
                      "nashra_posts_published %zu\n"
                      "# HELP nashra_posts_rejected Post files rejected by the last pass.\n"
                      "# TYPE nashra_posts_rejected gauge\n"
                      "nashra_posts_rejected %zu\n"
                      "# HELP nashra_publish_passes_total Publish passes run.\n"
                      "# TYPE nashra_publish_passes_total counter\n"
                      "nashra_publish_passes_total %lu\n"
                      "# HELP nashra_publish_failures_total Publish passes that failed.\n"
                      "# TYPE nashra_publish_failures_total counter\n"
                      "nashra_publish_failures_total %lu\n"
                      "# HELP nashra_last_build_timestamp_seconds When the last pass succeeded.\n"
                      "# TYPE nashra_last_build_timestamp_seconds gauge\n"
                      "nashra_last_build_timestamp_seconds %lld\n"
                      "# HELP nashra_next_scheduled_timestamp_seconds The next scheduled post, 0 "
                      "if none.\n"
                      "# TYPE nashra_next_scheduled_timestamp_seconds gauge\n"
                      "nashra_next_scheduled_timestamp_seconds %lld\n",
                      s->last.published, s->last.rejected, s->passes, s->pass_failures,
                      (long long)s->last_publish, (long long)s->next_due) < 0
               ? -1
           : mail_metrics(s, out) < 0 || (s->apd && ap_metrics(s, out) < 0) ? -1
                                                                            : 0;
}

static int serve_signals(struct serve *s)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return s->sigfd < 0 ? -1 : 0;
}

static int serve_start(struct serve *s)
{
    struct diag d = {0};
    if (!(s->cfg = cmd_config(&s->opts)))
        return 2;
    if (!(s->tpl = html_templates_load(s->cfg, &d, NULL))) {
        diag_print(stderr, s->cfg->output.templates, &d);
        return 2;
    }
    if (cmd_check_lists(s->cfg) < 0)
        return 2;
    if (!(s->st = store_open(s->cfg->state.dir, 0, &d))) {
        diag_print(stderr, s->cfg->state.dir, &d);
        log_event(LOG_ERROR, "start", "result=failed state=%s error=%s",
                  log_quote(s->cfg->state.dir), log_quote(d.msg));
        return 1;
    }
    publish_should_stop = stop_pending;
    if (serve_signals(s) < 0 || !(s->loop = loop_new())) {
        log_event(LOG_ERROR, "start", "error=%s", log_quote(strerror(errno)));
        return 1;
    }
    /* Watch first, then build: a change during the first pass is not lost. */
    if (!(s->watch = watch_new(s->cfg->content.dir, &d))) {
        diag_print(stderr, s->cfg->content.dir, &d);
        return 1;
    }
    if (!(s->http = http_start(s->cfg->http.listen, s->cfg->output.dir, &d))) {
        log_event(LOG_ERROR, "start", "listen=%s error=%s", log_quote(s->cfg->http.listen),
                  log_quote(d.msg));
        return 1;
    }
    http_set_metrics(s->http, serve_metrics, s);
    if (s->cfg->activitypub.enabled && !(s->ap = ap_http_start(s->cfg, s->st, s->http, &d))) {
        log_event(LOG_ERROR, "start", "activitypub=%s", log_quote(d.msg));
        return 1;
    }
    if (!(s->subs = subs_http_start(s->cfg, s->st, s->loop, s->http, &d))) {
        log_event(LOG_ERROR, "start", "subscriptions=%s", log_quote(d.msg));
        return 1;
    }
    if (s->ap) {
        const char *key_id;
        EVP_PKEY *key = ap_http_key(s->ap, &key_id);
        if (!(s->apd = ap_deliver_new(s->cfg, s->st, s->loop, key, key_id, &d))) {
            log_event(LOG_ERROR, "start", "activitypub=%s", log_quote(d.msg));
            return 1;
        }
        ap_http_on_queued(s->ap, ap_deliver_kick, s->apd);
        if ((ap_http_key_fd(s->ap) >= 0 &&
             loop_add(s->loop, ap_http_key_fd(s->ap), EPOLLIN, on_keyfile, s) < 0) ||
            loop_add(s->loop, ap_http_inbox_fd(s->ap), EPOLLIN, on_inbox, s) < 0) {
            log_event(LOG_ERROR, "start", "error=%s", log_quote(strerror(errno)));
            return 1;
        }
    }
    if (loop_add(s->loop, watch_fd(s->watch), EPOLLIN, on_watch, s) < 0 ||
        loop_add(s->loop, s->sigfd, EPOLLIN, on_signal, s) < 0 ||
        loop_add(s->loop, http_fd(s->http), EPOLLIN, on_http, s) < 0) {
        log_event(LOG_ERROR, "start", "error=%s", log_quote(strerror(errno)));
        return 1;
    }
    serve_publish(s, "start", 1);
    if (serve_mail(s) < 0)
        return 1;
    s->watchdog_ms = sd_watchdog_ms() / 2;
    s->watchdog_at = loop_now_ms();
    log_event(LOG_INFO, "ready", "content=%s output=%s http=%s port=%d",
              log_quote(s->cfg->content.dir), log_quote(s->cfg->output.dir),
              log_quote(s->cfg->http.listen), http_port(s->http));
    sd_notify_send("READY=1");
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    struct serve s = {.sigfd = -1};
    int rc = cmd_parse(argc, argv, serve_usage, 0, &s.opts);
    if (rc || s.opts.help)
        return rc;
    rc = serve_start(&s);
    if (rc == 0 && loop_run(s.loop, serve_tick, &s) < 0) {
        log_event(LOG_ERROR, "loop", "error=%s", log_quote(strerror(errno)));
        rc = 1;
    }
    sd_notify_send("STOPPING=1");
    if (rc == 0)
        log_event(LOG_INFO, "stop", "result=clean");
    sender_free(s.sender);
    bounces_free(s.bounces);
    ap_http_stop(s.ap); /* before http_stop: it answers the requests they held */
    http_stop(s.http);
    subs_http_free(s.subs); /* after the server: its routes point at it */
    ap_deliver_free(s.apd);
    ap_http_free(s.ap);
    watch_free(s.watch);
    loop_free(s.loop);
    changed_clear(&s);
    free(s.changed);
    if (s.sigfd >= 0)
        close(s.sigfd);
    store_close(s.st);
    html_templates_free(s.tpl);
    config_free(s.cfg);
    return rc;
}
