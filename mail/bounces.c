/*
 * bounces: mail.bounces.maildir read into subscriber states (see bounces.h).
 *
 * A file is moved to cur/ before its verdict is written: were the daemon
 * killed between the two, the bounce would be lost (a subscriber mailed
 * once more), never counted twice. Which address names the subscriber:
 * the first of Delivered-To, X-Original-To, To and the report's
 * X-Postfix-Sender (mail/dsn.h) that holds a VERP local part with a right
 * HMAC; all of them are the envelope recipient of the bounce or the
 * envelope sender of the message that bounced, which is that address.
 */
#include "bounces.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../daemon/loop.h"
#include "../lib/fileio.h"
#include "../lib/log.h"
#include "../lib/timefmt.h"
#include "../store/mail_store.h"
#include "dsn.h"
#include "newsletter.h"

#define BOUNCE_READ_MAX (4u << 20) /* bytes of a bounce read; the DSN part comes early */
#define SCAN_EVERY_MS   60000
#define SCAN_MAX        1000 /* files a scan reads; the next one goes on */

struct bounces {
    const struct config *cfg;
    struct mail_store *ms;
    struct loop *loop;
    unsigned char key[32];
    char *dir; /* the Maildir */
    int ifd;   /* inotify on new/, -1 if none */
    int due;   /* a scan is wanted now */
    int64_t next_ms;
};

static void on_inotify(struct loop *l, int fd, uint32_t events, void *arg)
{
    struct bounces *b = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    (void)l, (void)events;
    while (read(fd, buf, sizeof buf) > 0)
        ;
    b->due = 1;
}

struct bounces *bounces_new(const struct config *cfg, struct store *st, struct loop *loop,
                            struct diag *err)
{
    struct bounces *b = calloc(1, sizeof *b);
    char path[PATH_MAX];
    if (!b || !(b->dir = strdup(cfg->mail.bounces.maildir))) {
        free(b);
        diag_set(err, 0, 0, "out of memory");
        return NULL;
    }
    b->cfg = cfg;
    b->ifd = -1;
    b->due = 1;
    if (newsletter_secret(cfg, b->key, err) < 0)
        goto fail;
    if (!(b->ms = mail_store_new(st))) {
        diag_set(err, 0, 0, "newsletter tables: %s", store_errmsg(st));
        goto fail;
    }
    static const char *const subs[] = {"new", "cur", "tmp"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", b->dir, subs[i]);
        if (mkdir_p(path) < 0) {
            diag_set(err, 0, 0, "%s: %s", path, strerror(errno));
            goto fail;
        }
    }
    if (loop) {
        snprintf(path, sizeof path, "%s/new", b->dir);
        b->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (b->ifd < 0 || inotify_add_watch(b->ifd, path, IN_MOVED_TO | IN_CLOSE_WRITE) < 0 ||
            loop_add(loop, b->ifd, EPOLLIN, on_inotify, b) < 0) {
            diag_set(err, 0, 0, "%s: inotify: %s", path, strerror(errno));
            goto fail;
        }
        b->loop = loop;
    }
    return b;
fail:
    bounces_free(b);
    return NULL;
}

void bounces_free(struct bounces *b)
{
    if (!b)
        return;
    if (b->ifd >= 0) {
        if (b->loop)
            loop_del(b->loop, b->ifd);
        close(b->ifd);
    }
    mail_store_free(b->ms);
    free(b->dir);
    free(b);
}

/* Up to BOUNCE_READ_MAX bytes of a regular file (a longer one: its start). */
static char *read_prefix(int dirfd, const char *name, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    char *p = NULL;
    size_t n = 0;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        goto done;
    size_t want = (size_t)st.st_size < BOUNCE_READ_MAX ? (size_t)st.st_size : BOUNCE_READ_MAX;
    if (!(p = malloc(want + 1)))
        goto done;
    while (n < want) {
        ssize_t r = read(fd, p + n, want - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    p[n] = '\0';
    *len = n;
done:
    close(fd);
    return p;
}

static const char *verdict_name(enum dsn_verdict v)
{
    switch (v) {
    case DSN_HARD:
        return "hard";
    case DSN_SOFT:
        return "soft";
    case DSN_NONE:
        return "none";
    }
    return "none";
}

/* What one bounce says, into the store. */
static void apply(struct bounces *b, const char *name, const char *data, size_t len)
{
    struct dsn d;
    int64_t issue = 0, sub = -1, now = timefmt_now();
    if (dsn_parse(data, len, &d) < 0) {
        log_event(LOG_INFO, "bounce", "file=%s result=ignored why=not_a_message", log_quote(name));
        return;
    }
    enum dsn_verdict v = dsn_verdict(&d);
    for (size_t i = 0; i < d.naddrs && sub < 0; i++)
        if (!newsletter_verp_parse(b->key, d.addrs[i], &issue, &sub))
            sub = -1;
    const char *status = d.nrcpt ? d.rcpt[0].status : "";
    for (size_t i = 0; i < d.nrcpt; i++)
        if (d.rcpt[i].status[0] == '5' || (!status[0] && d.rcpt[i].status[0]))
            status = d.rcpt[i].status;
    if (v == DSN_NONE || sub < 0) {
        log_event(LOG_INFO, "bounce", "file=%s result=ignored why=%s", log_quote(name),
                  !d.is_dsn       ? "not_a_dsn"
                  : v == DSN_NONE ? "no_failure"
                                  : "no_subscriber");
        return;
    }
    struct mail_subscriber *s = NULL;
    int r = mail_sub_get(b->ms, sub, &s);
    if (r <= 0) {
        log_event(LOG_INFO, "bounce", "file=%s subscriber=%lld result=ignored why=%s",
                  log_quote(name), (long long)sub, r < 0 ? "store_error" : "no_such_subscriber");
        return;
    }
    int state = s->state, count = s->soft_bounces, bounce = 0;
    if (state == MAIL_SUB_UNSUBSCRIBED || state == MAIL_SUB_BOUNCED) {
        bounce = -1; /* gone already: nothing to change */
    } else if (v == DSN_HARD) {
        bounce = 1;
    } else {
        count = mail_sub_soft_bounce(b->ms, sub, now);
        bounce = count >= b->cfg->mail.bounces.soft_limit;
    }
    if (bounce == 1 && mail_sub_set_state_id(b->ms, sub, MAIL_SUB_BOUNCED, now) < 0)
        bounce = -2;
    log_event(bounce == -2 || count < 0 ? LOG_ERROR : LOG_INFO, "bounce",
              "file=%s list=%s subscriber=%lld issue=%lld kind=%s status=%s soft_bounces=%d "
              "result=%s",
              log_quote(name), log_quote(s->list), (long long)sub, (long long)issue,
              verdict_name(v), status[0] ? status : "none", count,
              bounce == 1    ? "bounced"
              : bounce == -1 ? "already_gone"
              : bounce == -2 ? "store_error"
                             : "counted");
    free(s);
}

/* new/NAME to cur/NAME:2,S (an info part already there is replaced). */
static int move_seen(int newfd, int curfd, const char *name)
{
    char dst[NAME_MAX + 8];
    const char *colon = strchr(name, ':');
    int n = (int)(colon ? (size_t)(colon - name) : strlen(name));
    if (snprintf(dst, sizeof dst, "%.*s:2,S", n, name) >= (int)sizeof dst)
        return -1;
    return renameat(newfd, name, curfd, dst);
}

int bounces_scan(struct bounces *b)
{
    char path[PATH_MAX];
    int done = 0;
    snprintf(path, sizeof path, "%s/new", b->dir);
    DIR *dir = opendir(path);
    snprintf(path, sizeof path, "%s/cur", b->dir);
    int curfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!dir || curfd < 0) {
        log_event(LOG_ERROR, "bounce", "maildir=%s error=%s", log_quote(b->dir),
                  log_quote(strerror(errno)));
        if (dir)
            closedir(dir);
        if (curfd >= 0)
            close(curfd);
        return -1;
    }
    int newfd = dirfd(dir);
    struct dirent *e;
    while (done < SCAN_MAX && (e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        size_t len = 0;
        char *data = read_prefix(newfd, e->d_name, &len);
        if (!data) {
            if (errno != ENOENT)
                log_event(LOG_WARN, "bounce", "file=%s result=unreadable error=%s",
                          log_quote(e->d_name), log_quote(strerror(errno)));
            continue;
        }
        /* Seen first: a file that cannot be moved is not read (read again
         * each scan, it would count its soft bounce again and again). */
        if (move_seen(newfd, curfd, e->d_name) < 0) {
            log_event(LOG_ERROR, "bounce", "file=%s result=not_moved error=%s",
                      log_quote(e->d_name), log_quote(strerror(errno)));
        } else {
            apply(b, e->d_name, data, len);
            done++;
        }
        free(data);
    }
    if (done == SCAN_MAX)
        b->due = 1; /* more may wait: the next tick goes on */
    closedir(dir);
    close(curfd);
    return done;
}

int64_t bounces_tick(void *arg, int64_t now_ms)
{
    struct bounces *b = arg;
    if (b->due || now_ms >= b->next_ms) {
        b->due = 0;
        b->next_ms = now_ms + SCAN_EVERY_MS;
        bounces_scan(b);
    }
    return b->due ? 0 : b->next_ms - now_ms;
}
