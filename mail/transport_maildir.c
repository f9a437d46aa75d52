/*
 * transport_maildir: the maildir transport (SPEC §8), for trying nashra out
 * and for tests. Each message becomes one file in <path>/new, delivered the
 * Maildir way (D. J. Bernstein, "Using maildir format"; maildir(5)): written
 * and fsynced under a unique name in <path>/tmp, then renamed into
 * <path>/new, so a reader of new/ never sees half a message and a crash
 * leaves at most a stray file in tmp/. Names are
 *     SECONDS.MmicrosecondsPpidQsequence.HOST
 * (the spec's "time.pid_seq.host" in its modern spelling), with '/' and ':'
 * in HOST written \057 and \072 as the spec asks. The folder and its cur/,
 * new/ and tmp/ are made mode 0700 when missing (the messages hold
 * subscribers' addresses), again if someone removes them while we run.
 *
 * The outcome is known when transport_send returns, but the done callback is
 * called from the next transport_tick (or transport_wait), as for SMTP, so a
 * caller never sees it from inside transport_send. I/O errors (ENOSPC, EIO,
 * a folder we cannot create) are TRANSPORT_RETRY: never the recipient's fault.
 */
#include "transport_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/fileio.h"
#include "../lib/log.h"

#define MAILDIR_PENDING  64 /* outcomes waiting for the next tick */
#define MAILDIR_HOST_MAX 64 /* bytes of gethostname() kept before escaping */

struct maildir_done {
    uint64_t id;
    int err; /* 0: delivered; else the errno that stopped it */
};

struct tr_maildir {
    char *path;
    char host[MAILDIR_HOST_MAX * 4 + 1]; /* escaped: a byte becomes at most "\057" */
    unsigned long seq;
    transport_done_fn done;
    void *arg;
    struct maildir_done pending[MAILDIR_PENDING];
    size_t npending;
};

/* This host's name for file names, '/' and ':' escaped; "localhost" if unknown. */
static void host_name(char *out, size_t size)
{
    char raw[MAILDIR_HOST_MAX + 1];
    if (gethostname(raw, sizeof raw) < 0 || !raw[0])
        snprintf(raw, sizeof raw, "localhost");
    raw[MAILDIR_HOST_MAX] = '\0';
    size_t o = 0;
    for (const char *p = raw; *p && o + 5 <= size; p++) {
        if (*p == '/' || *p == ':')
            o += (size_t)snprintf(out + o, size - o, "\\%03o", (unsigned)(unsigned char)*p);
        else
            out[o++] = *p;
    }
    out[o] = '\0';
}

/* mkdir that is happy when the folder exists. */
static int mkdir_0700(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* <path>, <path>/cur, <path>/new, <path>/tmp; parents of <path> with mkdir_p. */
static int make_dirs(const struct tr_maildir *m)
{
    char sub[PATH_MAX];
    static const char *const subs[] = {"cur", "new", "tmp"};

    if (mkdir(m->path, 0700) < 0 && errno != EEXIST) {
        if (errno != ENOENT || mkdir_p(m->path) < 0 || chmod(m->path, 0700) < 0)
            return -1;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (snprintf(sub, sizeof sub, "%s/%s", m->path, subs[i]) >= (int)sizeof sub) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (mkdir_0700(sub) < 0)
            return -1;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Delivers one message; 0, or the errno that stopped it (nothing left behind). */
static int deliver(struct tr_maildir *m, const char *data, size_t len)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    struct timespec now;
    int err = 0, fd;

    clock_gettime(CLOCK_REALTIME, &now);
    /* One counter for the process: two transports (the sender's and the
     * confirmations') may write into one Maildir in the same microsecond. */
    static unsigned long seq_all;
    unsigned long seq = ++seq_all;
    m->seq = seq;
    int n1 = snprintf(tmp, sizeof tmp, "%s/tmp/%lld.M%06ldP%ldQ%lu.%s", m->path,
                      (long long)now.tv_sec, now.tv_nsec / 1000, (long)getpid(), seq, m->host);
    int n2 = snprintf(dst, sizeof dst, "%s/new/%s", m->path, tmp + strlen(m->path) + 5);
    if (n1 >= (int)sizeof tmp || n2 >= (int)sizeof dst)
        return ENAMETOOLONG;

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT && make_dirs(m) == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    /* fsync before the rename: once done says SENT, the caller forgets it. */
    if (write_all(fd, data, len) < 0 || fsync(fd) < 0)
        err = errno;
    if (close(fd) < 0 && !err)
        err = errno;
    if (!err && rename(tmp, dst) < 0)
        err = errno;
    if (err)
        unlink(tmp);
    return err;
}

struct tr_maildir *tr_maildir_new(const char *path, transport_done_fn done, void *arg)
{
    struct tr_maildir *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return NULL;
    }
    m->done = done;
    m->arg = arg;
    host_name(m->host, sizeof m->host);
    /* Not fatal: deliver() tries again, and each message then says why. */
    if (make_dirs(m) < 0)
        log_event(LOG_WARN, "maildir", "path=%s result=mkdir_failed why=%s", log_quote(path),
                  log_quote(strerror(errno)));
    return m;
}

void tr_maildir_free(struct tr_maildir *m)
{
    if (!m)
        return;
    free(m->path);
    free(m);
}

int tr_maildir_ready(const struct tr_maildir *m)
{
    return m->npending < MAILDIR_PENDING;
}

int tr_maildir_send(struct tr_maildir *m, uint64_t id, const char *data, size_t len)
{
    if (m->npending == MAILDIR_PENDING) {
        errno = EAGAIN;
        return -1;
    }
    int err = deliver(m, data, len);
    if (err)
        log_event(LOG_WARN, "maildir", "id=%llu path=%s outcome=retry why=%s",
                  (unsigned long long)id, log_quote(m->path), log_quote(strerror(err)));
    m->pending[m->npending++] = (struct maildir_done){id, err};
    return 0;
}

size_t tr_maildir_inflight(const struct tr_maildir *m)
{
    return m->npending;
}

/* Reports the outcomes known so far. A done callback may send again: those
 * outcomes wait for the next call. */
static void flush(struct tr_maildir *m)
{
    struct maildir_done batch[MAILDIR_PENDING];
    size_t n = m->npending;
    memcpy(batch, m->pending, n * sizeof batch[0]);
    m->npending = 0;
    for (size_t i = 0; i < n; i++) {
        if (batch[i].err)
            m->done(m->arg, batch[i].id, TRANSPORT_RETRY, 0, strerror(batch[i].err));
        else
            m->done(m->arg, batch[i].id, TRANSPORT_SENT, 0, NULL);
    }
}

int64_t tr_maildir_tick(struct tr_maildir *m)
{
    flush(m);
    return m->npending ? 0 : -1;
}

int tr_maildir_wait(struct tr_maildir *m, int64_t timeout_ms)
{
    (void)timeout_ms; /* nothing here waits */
    while (m->npending)
        flush(m);
    return 0;
}
