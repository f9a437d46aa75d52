/*
 * sender: issues from announcements, digests at their time, and the send
 * queue (see sender.h).
 *
 * The queue is the deliveries table. The sender keeps a batch of due
 * deliveries in memory and hands them to the transport while it is ready;
 * a delivery stays 'pending' in the store while it is in flight, and its
 * outcome is written when the transport reports it: sent (the server said
 * 250 to the message), retry (4xx, network: again after an exponential
 * backoff), failed (5xx: the subscriber is marked bounced too, SPEC §8).
 * Nothing else is written per message, so a kill -9 loses no delivery and
 * repeats only those in flight.
 *
 * Rendering is per subscriber (their name and unsubscribe link are in the
 * message); the post (or the digest's posts) is loaded once per issue.
 */
#include "sender.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/log.h"
#include "../lib/timefmt.h"
#include "../store/mail_store.h"
#include "compose.h"
#include "dkim.h"
#include "newsletter.h"
#include "transport.h"

#define BATCH         256 /* deliveries fetched at a time */
#define MAX_ATTEMPTS  12  /* then a retry becomes failed */
#define BACKOFF_FIRST 60  /* seconds before the first retry, doubled each time */
#define BACKOFF_ENV   "NASHRA_MAIL_BACKOFF_S" /* for tests: BACKOFF_FIRST, 1 to 3600 */
#define BACKOFF_MAX   (6 * 3600)
#define MESSAGE_MAX   (32u << 20) /* one rendered message */

struct flight {
    uint64_t id;
    struct mail_key key;
    int attempts;
};

struct sender {
    const struct config *cfg;
    struct store *st;
    struct mail_store *ms;
    struct newsletter *nl;
    struct transport *tr;
    unsigned char key[32];
    struct composer comp;    /* makes each message */
    struct compose_cache cc; /* the current issue's rendering (compose.h) */
    int comp_ready;
    struct dkim *dkim; /* mail.dkim's key, or NULL */

    struct mail_delivery *batch; /* fetched, handed over from next on */
    size_t nbatch, next;
    struct mail_key after; /* the queue is read on from here */
    int have_after;
    int queue_empty; /* nothing due that is not in flight (see next_due) */

    struct flight *fl; /* in flight */
    size_t nfl, afl;
    uint64_t next_id;

    char *cached_path; /* the post of the last 'each' issue rendered */
    struct post *cached;
    char *cached_list; /* the posts of the last digest rendered */
    int64_t cached_to;
    struct post **dposts;
    size_t ndposts;

    int64_t backoff;   /* seconds before a first retry: BACKOFF_FIRST or $BACKOFF_ENV */
    int64_t retry_at;  /* unix seconds of the next retry (1: look now), 0 if none */
    int64_t digest_at; /* unix seconds of the next digest, 0 if none */
    uint64_t sent, failed, retried;
};

/* --- setup ---------------------------------------------------------------- */

static void on_done(void *arg, uint64_t id, enum transport_outcome outcome, int code,
                    const char *why);

struct sender *sender_new(const struct config *cfg, struct store *st, struct loop *loop,
                          struct diag *err)
{
    struct sender *s = calloc(1, sizeof *s);
    char *file = NULL;
    if (!s) {
        diag_set(err, 0, 0, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->st = st;
    if (!(s->ms = mail_store_new(st))) {
        diag_set(err, 0, 0, "newsletter tables: %s", store_errmsg(st));
        goto fail;
    }
    /* The first sender on a site reads the log from its end: lists added to
     * a site with a history must not mail every post ever announced (the
     * cursor at 0 did). From then on the cursor is kept, so announcements
     * made while the daemon was down or killed are still mailed. */
    int64_t last = store_last_seq(st);
    int r = last < 0 ? -1 : mail_cursor_init(s->ms, last);
    if (r < 0) {
        diag_set(err, 0, 0, "newsletter cursor: %s", store_errmsg(st));
        goto fail;
    }
    if (r > 0 && last > 0)
        log_event(LOG_INFO, "mail", "cursor=%lld note=earlier_announcements_not_mailed",
                  (long long)last);
    if (!(s->nl = newsletter_load(cfg, err, &file))) {
        /* The template's file and place go into the message: the callers
         * (serve's log, build --deliver) have no file name of their own to
         * print it under. */
        if (file) {
            struct diag d = *err;
            if (d.line)
                diag_set(err, 0, 0, "%s:%d:%d: %s", file, d.line, d.col, d.msg);
            else
                diag_set(err, 0, 0, "%s: %s", file, d.msg);
        }
        free(file);
        goto fail;
    }
    if (newsletter_secret(cfg, s->key, err) < 0)
        goto fail;
    newsletter_use_key(s->nl, s->key);
    if (composer_init(&s->comp, cfg, s->nl, s->key) < 0) {
        diag_set(err, 0, 0, "out of memory");
        goto fail;
    }
    s->comp_ready = 1;
    if (cfg->mail.dkim.domain) {
        if (!(s->dkim = dkim_load(cfg->mail.dkim.domain, cfg->mail.dkim.selector,
                                  cfg->mail.dkim.key_file, err)))
            goto fail;
        s->comp.dkim = s->dkim;
    }
    if (!(s->tr = transport_new(cfg, loop, on_done, s))) {
        diag_set(err, 0, 0, "the mail transport could not start");
        goto fail;
    }
    s->retry_at = 1; /* unknown: look at the queue once */
    /* Tests shorten the backoff to see a 4xx recipient delivered in the
     * end; anything but a whole number of seconds up to an hour is ignored. */
    const char *bo = getenv(BACKOFF_ENV);
    char *end = NULL;
    long long b = bo && *bo ? strtoll(bo, &end, 10) : -1;
    s->backoff = end && *end == '\0' && b >= 1 && b <= 3600 ? b : BACKOFF_FIRST;
    return s;
fail:
    sender_free(s);
    return NULL;
}

static void drop_cache(struct sender *s)
{
    post_free(s->cached);
    free(s->cached_path);
    s->cached = NULL;
    s->cached_path = NULL;
    for (size_t i = 0; i < s->ndposts; i++)
        post_free(s->dposts[i]);
    free(s->dposts);
    free(s->cached_list);
    s->dposts = NULL;
    s->ndposts = 0;
    s->cached_list = NULL;
    compose_cache_free(&s->cc);
}

void sender_free(struct sender *s)
{
    if (!s)
        return;
    transport_free(s->tr); /* what is in flight stays pending: sent again later */
    mail_due_free(s->batch, s->nbatch);
    drop_cache(s);
    free(s->fl);
    newsletter_free(s->nl);
    mail_store_free(s->ms);
    if (s->comp_ready)
        composer_free(&s->comp);
    dkim_free(s->dkim);
    free(s);
}

void sender_stats(const struct sender *s, struct sender_stats *out)
{
    out->sent = s->sent;
    out->failed = s->failed;
    out->retried = s->retried;
    out->inflight = s->nfl;
}

/* --- announcements into issues -------------------------------------------- */

static int list_wants(const struct config_list *l, const struct post *p)
{
    if (!p->newsletter)
        return 0;
    if (l->ncategories == 0)
        return 1;
    for (size_t i = 0; i < l->ncategories; i++)
        for (size_t j = 0; j < p->ncategories; j++)
            if (!strcmp(l->categories[i], p->categories[j]))
                return 1;
    return 0;
}

struct ann_walk {
    struct sender *s;
    int64_t last;
    int failed;
};

static int on_announcement(void *arg, int64_t seq, int64_t ts, const char *kind, const char *slug)
{
    struct ann_walk *w = arg;
    struct sender *s = w->s;
    (void)ts;
    w->last = seq;
    if (strcmp(kind, "published"))
        return 0;
    struct post *p = store_published_slug(s->st, slug);
    if (!p)
        return 0; /* gone again since: nothing to mail */
    for (size_t i = 0; i < s->cfg->nlists; i++) {
        const struct config_list *l = &s->cfg->lists[i];
        int64_t id = 0;
        if (l->mode != LIST_EACH || !list_wants(l, p))
            continue;
        int r = mail_issue_each(s->ms, l->id, p->path, timefmt_now(), &id);
        if (r < 0) {
            w->failed = 1;
            break;
        }
        if (r > 0) {
            struct mail_issue is = {0};
            mail_issue_progress(s->ms, id, &is);
            log_event(LOG_INFO, "issue", "list=%s issue=%lld post=%s recipients=%lld",
                      log_quote(l->id), (long long)id, log_quote(p->path), (long long)is.total);
            s->queue_empty = 0;
            s->retry_at = 1;
        }
    }
    post_free(p);
    return w->failed ? 1 : 0;
}

/* New announcements into issues, and the cursor past them, in one
 * transaction: an announcement makes its issues exactly once. */
static int take_announcements(struct sender *s)
{
    struct ann_walk w = {.s = s, .last = mail_cursor_get(s->ms)};
    int64_t from = w.last;
    if (from < 0 || store_begin(s->st) < 0)
        return -1;
    if (store_announcements(s->st, from, 0, 0, on_announcement, &w) < 0 || w.failed ||
        (w.last != from && mail_cursor_put(s->ms, w.last) < 0) || store_commit(s->st) < 0) {
        log_event(LOG_ERROR, "issue", "error=%s", log_quote(store_errmsg(s->st)));
        store_rollback(s->st);
        return -1;
    }
    return 0;
}

void sender_announced(void *arg, int64_t last_seq)
{
    (void)last_seq;
    take_announcements(arg);
}

/* --- digests ---------------------------------------------------------------- */

/* The first time after t that the schedule "daily HH:MM" / "weekly DAY
 * HH:MM" names, in the site's zone; 0 if the schedule is not understood. */
static int64_t next_occurrence(const char *schedule, int64_t t)
{
    static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    int h, m, wday = -1;
    char day[8];
    if (sscanf(schedule, "daily %d:%d", &h, &m) != 2) {
        if (sscanf(schedule, "weekly %3s %d:%d", day, &h, &m) != 3)
            return 0;
        for (int i = 0; i < 7; i++)
            if (!strcmp(day, days[i]))
                wday = i;
        if (wday < 0)
            return 0;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    for (int add = 0; add <= 8; add++) {
        struct tm c = tm;
        c.tm_mday += add;
        c.tm_hour = h;
        c.tm_min = m;
        c.tm_sec = 0;
        c.tm_isdst = -1;
        time_t at = mktime(&c);
        if (at <= tt)
            continue;
        struct tm chk;
        localtime_r(&at, &chk);
        if (wday >= 0 && chk.tm_wday != wday)
            continue;
        return (int64_t)at;
    }
    return 0;
}

struct digest_walk {
    struct sender *s;
    const struct config_list *l;
    int any;
};

static int on_digest_post(void *arg, int64_t seq, int64_t ts, const char *kind, const char *slug)
{
    struct digest_walk *w = arg;
    (void)seq, (void)ts, (void)kind;
    struct post *p = store_published_slug(w->s->st, slug);
    if (p && list_wants(w->l, p))
        w->any = 1;
    post_free(p);
    return w->any; /* one is enough to make the issue */
}

/* The window of each digest list: from its last end (or when the sender
 * first saw the list: no back catalogue) to the schedule's next time. */
static int digests(struct sender *s, int64_t now)
{
    s->digest_at = 0;
    for (size_t i = 0; i < s->cfg->nlists; i++) {
        const struct config_list *l = &s->cfg->lists[i];
        if (l->mode != LIST_DIGEST)
            continue;
        char key[200], val[32];
        snprintf(key, sizeof key, "digest_from:%s", l->id);
        char *v = store_meta_get(s->st, key);
        int64_t from = v ? strtoll(v, NULL, 10) : 0;
        free(v);
        if (!from) { /* first sight of this list: its first window starts now */
            snprintf(val, sizeof val, "%lld", (long long)now);
            if (store_meta_put(s->st, key, val) < 0)
                return -1;
            from = now;
        }
        int64_t due = next_occurrence(l->schedule ? l->schedule : "daily 08:00", from);
        if (!due)
            continue;
        if (due > now) {
            if (!s->digest_at || due < s->digest_at)
                s->digest_at = due;
            continue;
        }
        struct digest_walk w = {.s = s, .l = l};
        if (store_announcements(s->st, -1, from, due, on_digest_post, &w) < 0)
            return -1;
        if (store_begin(s->st) < 0)
            return -1;
        int64_t id = 0;
        snprintf(val, sizeof val, "%lld", (long long)due);
        if ((w.any && mail_issue_digest(s->ms, l->id, from, due, now, &id) < 0) ||
            store_meta_put(s->st, key, val) < 0 || store_commit(s->st) < 0) {
            store_rollback(s->st);
            return -1;
        }
        if (w.any) {
            log_event(LOG_INFO, "issue", "list=%s issue=%lld digest_from=%lld digest_to=%lld",
                      log_quote(l->id), (long long)id, (long long)from, (long long)due);
            s->queue_empty = 0;
            s->retry_at = 1;
        }
        i--; /* the next window may be due too (after a long stop) */
    }
    return 0;
}

/* --- rendering -------------------------------------------------------------- */

struct collect {
    struct sender *s;
    const struct config_list *l;
    struct post **v;
    size_t n, alloc;
};

static int on_digest_collect(void *arg, int64_t seq, int64_t ts, const char *kind, const char *slug)
{
    struct collect *c = arg;
    (void)seq, (void)ts, (void)kind;
    struct post *p = store_published_slug(c->s->st, slug);
    if (!p || !list_wants(c->l, p)) {
        post_free(p);
        return 0;
    }
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->v[i]->path, p->path)) { /* published twice in the window */
            post_free(p);
            return 0;
        }
    if (c->n == c->alloc) {
        size_t na = c->alloc ? c->alloc * 2 : 16;
        struct post **a = realloc(c->v, na * sizeof *a);
        if (!a) {
            post_free(p);
            return -1;
        }
        c->v = a;
        c->alloc = na;
    }
    c->v[c->n++] = p;
    return 0;
}

static int by_date_desc(const void *a, const void *b)
{
    const struct post *x = *(struct post *const *)a, *y = *(struct post *const *)b;
    return x->date < y->date ? 1 : x->date > y->date ? -1 : strcmp(x->slug, y->slug);
}

static const struct config_list *list_of(const struct sender *s, const char *id, size_t *li)
{
    for (size_t i = 0; i < s->cfg->nlists; i++)
        if (!strcmp(s->cfg->lists[i].id, id)) {
            *li = i;
            return &s->cfg->lists[i];
        }
    return NULL;
}

/* The posts of d's issue (cached across its deliveries): 0 with *v, *n; -1
 * when they are gone (the issue cannot be sent). */
static int issue_posts(struct sender *s, const struct mail_delivery *d, const struct config_list *l,
                       struct post *const **v, size_t *n)
{
    if (d->kind == MAIL_ISSUE_EACH) {
        if (!s->cached_path || strcmp(s->cached_path, d->post)) {
            drop_cache(s);
            int published = 0;
            s->cached = store_post_by_path(s->st, d->post, &published);
            s->cached_path = strdup(d->post);
            if (s->cached && !published) { /* unpublished since: not mailed */
                post_free(s->cached);
                s->cached = NULL;
            }
        }
        *v = &s->cached;
        *n = 1;
        return s->cached ? 0 : -1;
    }
    if (!s->cached_list || strcmp(s->cached_list, d->list) || s->cached_to != d->window_to) {
        drop_cache(s);
        struct collect c = {.s = s, .l = l};
        if (store_announcements(s->st, -1, d->window_from, d->window_to, on_digest_collect, &c) <
            0) {
            for (size_t i = 0; i < c.n; i++)
                post_free(c.v[i]);
            free(c.v);
            return -1;
        }
        if (c.n > 1)
            qsort(c.v, c.n, sizeof *c.v, by_date_desc);
        s->dposts = c.v;
        s->ndposts = c.n;
        s->cached_list = strdup(d->list);
        s->cached_to = d->window_to;
    }
    *v = s->dposts;
    *n = s->ndposts;
    return s->ndposts ? 0 : -1;
}

/* The whole message for d, and its envelope sender. 0, 1 when it cannot be
 * made at all (its post is gone: failed for good), -1 on a cap. */
static int render(struct sender *s, const struct mail_delivery *d, struct buf *msg,
                  struct buf *verp)
{
    size_t li;
    const struct config_list *l = list_of(s, d->list, &li);
    struct post *const *posts;
    size_t nposts;
    if (!l || issue_posts(s, d, l, &posts, &nposts) < 0)
        return 1;
    struct newsletter_to to = {
        .id = d->subscriber_id, .email = d->email, .name = d->name, .extra = d->extra};
    return compose_cached(&s->comp, &s->cc, li, posts, nposts, d->kind == MAIL_ISSUE_DIGEST, &to,
                          d->key.issue, msg, verp);
}

/* --- the queue -------------------------------------------------------------- */

static int in_flight(const struct sender *s, struct mail_key k)
{
    for (size_t i = 0; i < s->nfl; i++)
        if (s->fl[i].key.issue == k.issue && s->fl[i].key.subscriber == k.subscriber)
            return 1;
    return 0;
}

static void on_done(void *arg, uint64_t id, enum transport_outcome outcome, int code,
                    const char *why)
{
    struct sender *s = arg;
    size_t i = 0;
    while (i < s->nfl && s->fl[i].id != id)
        i++;
    if (i == s->nfl)
        return;
    struct flight f = s->fl[i];
    s->fl[i] = s->fl[--s->nfl];
    int64_t now = timefmt_now();
    int rc;
    if (outcome == TRANSPORT_SENT) {
        rc = mail_delivery_sent(s->ms, f.key, now);
        s->sent++;
    } else if (outcome == TRANSPORT_RETRY && f.attempts + 1 < MAX_ATTEMPTS) {
        int64_t wait = s->backoff;
        for (int a = 0; a < f.attempts && wait < BACKOFF_MAX; a++)
            wait *= 2;
        if (wait > BACKOFF_MAX)
            wait = BACKOFF_MAX;
        rc = mail_delivery_retry(s->ms, f.key, now + wait, code, why);
        if (!s->retry_at || now + wait < s->retry_at)
            s->retry_at = now + wait;
        s->retried++;
    } else {
        rc = mail_delivery_failed(s->ms, f.key, now, code, why);
        s->failed++;
        if (outcome == TRANSPORT_FAILED && code >= 500) /* a 5xx is a hard bounce */
            mail_sub_set_state_id(s->ms, f.key.subscriber, MAIL_SUB_BOUNCED, now);
    }
    if (rc < 0)
        log_event(LOG_ERROR, "delivery", "issue=%lld subscriber=%lld error=%s",
                  (long long)f.key.issue, (long long)f.key.subscriber,
                  log_quote(store_errmsg(s->st)));
}

/*
 * The next due delivery not in flight, or NULL when there is none now.
 * A batch holds only deliveries that were neither in flight nor finished
 * when it was fetched, and only this sender hands them over, so one is
 * never sent twice from it: those in flight are dropped as the batch is
 * fetched, never skipped later (a delivery in flight then, done by the time
 * its turn came, would go again: sent, retried or failed twice). A fetch is
 * always read before the next one (a fetch from the start, made when the
 * end was reached, was once left unread and handed over stale). When
 * everything due is in flight the queue counts as empty until new work
 * comes (an issue, a retry's time): no polling while replies are awaited.
 */
static const struct mail_delivery *next_due(struct sender *s)
{
    int from_start = !s->have_after;
    for (;;) {
        if (s->next < s->nbatch)
            return &s->batch[s->next++];
        mail_due_free(s->batch, s->nbatch);
        s->batch = NULL;
        s->nbatch = s->next = 0;
        if (mail_due(s->ms, timefmt_now(), s->have_after ? &s->after : NULL, BATCH, &s->batch,
                     &s->nbatch) < 0)
            return NULL;
        if (s->nbatch == 0) {
            s->have_after = 0;
            if (from_start) {
                s->queue_empty = 1;
                return NULL;
            }
            from_start = 1; /* from the start again, once */
            continue;
        }
        s->after = s->batch[s->nbatch - 1].key; /* read up to here */
        s->have_after = 1;
        size_t k = 0;
        for (size_t i = 0; i < s->nbatch; i++) {
            if (in_flight(s, s->batch[i].key))
                free(s->batch[i].mem);
            else
                s->batch[k++] = s->batch[i];
        }
        s->nbatch = k;
    }
}

static void pump(struct sender *s)
{
    struct buf msg, verp;
    buf_init(&msg, MESSAGE_MAX);
    buf_init(&verp, 1024);
    while (!s->queue_empty && transport_ready(s->tr)) {
        const struct mail_delivery *d = next_due(s);
        if (!d)
            break;
        /* The batch was fetched a while ago: whoever left the list since
         * (their open deliveries closed by mail_store) is not mailed. */
        struct mail_subscriber *sub = NULL;
        int still =
            mail_sub_get(s->ms, d->subscriber_id, &sub) > 0 && sub->state == MAIL_SUB_ACTIVE;
        free(sub);
        if (!still)
            continue;
        buf_reset(&msg);
        buf_reset(&verp);
        int r = render(s, d, &msg, &verp);
        if (r != 0) {
            mail_delivery_failed(s->ms, d->key, timefmt_now(), 0,
                                 r > 0 ? "the post is no longer published" : "too large");
            s->failed++;
            continue;
        }
        if (s->nfl == s->afl) {
            size_t na = s->afl ? s->afl * 2 : 64;
            struct flight *a = realloc(s->fl, na * sizeof *a);
            if (!a)
                break;
            s->fl = a;
            s->afl = na;
        }
        uint64_t id = ++s->next_id;
        if (transport_send(s->tr, id, buf_str(&verp), d->email, buf_str(&msg), msg.len) < 0)
            break; /* not queued: stays pending, tried again later */
        s->fl[s->nfl++] = (struct flight){.id = id, .key = d->key, .attempts = d->attempts};
    }
    buf_free(&msg);
    buf_free(&verp);
}

int64_t sender_tick(void *arg, int64_t now_ms)
{
    struct sender *s = arg;
    int64_t now = timefmt_now(), wait = -1;
    (void)now_ms;
    if (s->digest_at == 0 || now >= s->digest_at)
        digests(s, now);
    if (s->retry_at && now >= s->retry_at) {
        /* Its time has come: the walk finds what is due now, and the next
         * retry comes from the store. retry_at holds only the earliest one
         * known, so waiting for on_done to set it again lost those set for
         * later (and those set before a restart): they were never retried. */
        int64_t next = mail_next_retry(s->ms, now);
        s->retry_at = next < 0 ? now + 1 : next;
        s->queue_empty = 0;
    }
    pump(s);
    int64_t t = transport_tick(s->tr);
    pump(s); /* outcomes free slots */
    if (t >= 0)
        wait = t;
    if (!s->queue_empty && transport_ready(s->tr))
        wait = 0;
    else if (!s->queue_empty && s->nfl == 0)
        wait = wait < 0 || wait > 1000 ? 1000 : wait; /* a rate limit without a timer */
    int64_t at =
        s->retry_at && (!s->digest_at || s->retry_at < s->digest_at) ? s->retry_at : s->digest_at;
    if (at) {
        int64_t ms = (at - now) * 1000;
        if (ms < 0)
            ms = 0;
        if (wait < 0 || ms < wait)
            wait = ms;
    }
    return wait;
}

int sender_drain(struct sender *s, int64_t timeout_ms)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (take_announcements(s) < 0 || digests(s, timefmt_now()) < 0)
        return -1;
    s->queue_empty = 0;
    for (;;) {
        pump(s);
        if (s->nfl == 0 && s->queue_empty)
            return 0;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        int64_t spent = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (spent >= timeout_ms)
            return -1;
        if (s->nfl)
            transport_wait(s->tr, timeout_ms - spent);
        else
            transport_tick(s->tr);
        if (!s->nfl && !transport_ready(s->tr))
            usleep(20000); /* the rate limit */
    }
}
