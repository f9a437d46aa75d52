/*
 * fileio: reading files from folders we do not trust (posts: never block on a
 * FIFO, never read past a cap) and writing outputs atomically (temporary file
 * and rename), skipping writes whose bytes are already on disk.
 */
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK 65536

/* The "larger than N bytes" reason; per thread, like strerror's buffer. */
static const char *too_large(size_t max)
{
    static _Thread_local char msg[48];
    snprintf(msg, sizeof msg, "larger than %zu bytes", max);
    return msg;
}

/* Why a buf_append/buf_reserve of extra bytes failed. */
static const char *buf_why(const struct buf *b, size_t extra)
{
    if (extra > b->cap || b->len > b->cap - extra)
        return too_large(b->cap);
    return strerror(ENOMEM);
}

/*
 * Reads fd to its end, appending to out; hint is the size fstat gave. A file
 * can grow while we read: past max bytes is an error whatever fstat said.
 * Reads go straight into the buffer's free room; when it has none, one byte
 * is probed so that EOF is seen without growing the buffer past max.
 */
static int read_fd(int fd, size_t max, size_t hint, struct buf *out, const char **why)
{
    size_t got = 0;
    char probe;

    if (hint && buf_reserve(out, hint) < 0) {
        *why = buf_why(out, hint);
        return -1;
    }
    for (;;) {
        size_t room = out->data ? out->size - out->len - 1 : 0;
        char *dst = &probe;
        if (room == 0 || got == max)
            room = 1;
        else
            dst = out->data + out->len;
        if (dst != &probe && room > max - got)
            room = max - got;
        ssize_t n = read(fd, dst, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *why = strerror(errno);
            return -1;
        }
        if (n == 0)
            return 0;
        if ((size_t)n > max - got) {
            *why = too_large(max);
            return -1;
        }
        got += (size_t)n;
        if (dst != &probe) {
            out->len += (size_t)n;
            out->data[out->len] = '\0';
            continue;
        }
        if (buf_append(out, &probe, 1) < 0) {
            *why = buf_why(out, 1);
            return -1;
        }
        /* Grown past what fstat said: make room for more. If the cap forbids
         * it, the next probe's append says why. */
        size_t more = max - got < READ_CHUNK ? max - got : READ_CHUNK;
        if (more && buf_reserve(out, more) < 0)
            continue;
    }
}

int file_read(const char *path, size_t max, struct buf *out, const char **why)
{
    const char *dummy;
    size_t len0 = out->len;
    struct stat st;
    int rc = -1;

    if (!why)
        why = &dummy;
    /* O_NONBLOCK: opening a FIFO for reading must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        *why = strerror(errno);
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        *why = strerror(errno);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        goto out;
    }
    if (st.st_size < 0 || (unsigned long long)st.st_size > max) {
        *why = too_large(max);
        goto out;
    }
    rc = read_fd(fd, max, (size_t)st.st_size, out, why);
out:
    if (rc < 0 && out->data) {
        out->len = len0;
        out->data[len0] = '\0';
    }
    close(fd);
    return rc;
}

/* 1 if the regular file at path holds exactly data[0..len), else 0. */
static int same_content(const char *path, const void *data, size_t len)
{
    char chunk[16384];
    const char *want = data;
    size_t off = 0;
    struct stat st;
    int same = 0;

    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (unsigned long long)st.st_size != len)
        goto out;
    while (off < len) {
        size_t want_n = len - off < sizeof chunk ? len - off : sizeof chunk;
        ssize_t n = read(fd, chunk, want_n);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || memcmp(chunk, want + off, (size_t)n) != 0)
            goto out;
        off += (size_t)n;
    }
    /* the file must end here too (it may have grown since fstat) */
    same = read(fd, chunk, 1) == 0;
out:
    close(fd);
    return same;
}

/* Writes all of data to fd, through short writes and EINTR. */
static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Creates the temporary file tmp next to path (making the folder dir if it is
 * missing); its descriptor, or -1. */
static int open_tmp(const char *dir, const char *tmp)
{
    int flags = O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOCTTY;
    int fd = open(tmp, flags, 0644);

    if (fd < 0 && errno == ENOENT && mkdir_p(dir) == 0)
        fd = open(tmp, flags, 0644);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
        fd = open(tmp, flags, 0644); /* left by a crashed run with our pid */
    return fd;
}

int file_write_if_changed(const char *path, const void *data, size_t len)
{
    return file_write_if_changed_in(path, NULL, data, len);
}

int file_write_if_changed_in(const char *path, const char *tmpdir, const void *data, size_t len)
{
    static unsigned long seq;
    char *dir = NULL, *tmp = NULL;
    int rc = -1, saved;

    if (same_content(path, data, len))
        return 0;
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (*name == '\0') {
        errno = EINVAL;
        return -1;
    }
    dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    int n = tmpdir ? asprintf(&tmp, "%s/%ld.%lu", tmpdir, (long)getpid(), ++seq)
                   : asprintf(&tmp, "%s/.%s.tmp.%ld", dir ? dir : ".", name, (long)getpid());
    if (!dir || n < 0) {
        tmp = NULL;
        goto out;
    }
    int fd = open_tmp(tmpdir ? tmpdir : dir, tmp);
    if (fd < 0)
        goto out;
    int ok = write_all(fd, data, len) == 0;
    saved = errno;
    if (close(fd) < 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (ok) {
        int r = rename(tmp, path);
        if (r < 0 && errno == ENOENT && tmpdir && mkdir_p(dir) == 0)
            r = rename(tmp, path); /* the folder of path was missing */
        if (r == 0) {
            rc = 1;
            goto out;
        }
        saved = errno;
    }
    unlink(tmp); /* never leave a temporary file behind */
    errno = saved;
out:
    saved = errno;
    free(dir);
    free(tmp);
    errno = saved;
    return rc;
}

/* mkdir of one component; an existing folder is fine. */
static int mkdir_one(const char *path)
{
    struct stat st;

    if (mkdir(path, 0755) == 0)
        return 0;
    if (errno != EEXIST)
        return -1;
    if (stat(path, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int mkdir_p(const char *path)
{
    if (!path || !*path) {
        errno = EINVAL;
        return -1;
    }
    /* From the leaf up: the usual case (the parent exists) is one mkdir. */
    if (mkdir_one(path) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    char *copy = strdup(path);
    if (!copy)
        return -1;
    char *slash = strrchr(copy, '/');
    while (slash && slash > copy && slash[-1] == '/')
        slash--;
    int rc = -1;
    if (slash && slash > copy) {
        *slash = '\0';
        if (mkdir_p(copy) == 0)
            rc = mkdir_one(path);
    }
    free(copy);
    return rc;
}

int file_sweep_tmp(const char *tmpdir)
{
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    int removed = 0;
    if (!d)
        return 0;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (pid <= 0 || *end != '.' || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* its writer may still be at work */
        char *f = path_join(tmpdir, de->d_name);
        if (f && unlink(f) == 0)
            removed++;
        free(f);
    }
    closedir(d);
    return removed;
}

char *path_join(const char *a, const char *b)
{
    size_t alen = strlen(a);
    char *r;

    while (alen > 1 && a[alen - 1] == '/')
        alen--;
    while (*b == '/')
        b++;
    if (alen == 0)
        return strdup(b);
    if (*b == '\0')
        return strndup(a, alen);
    int slash = a[alen - 1] != '/'; /* a == "/" keeps its one slash */
    if (asprintf(&r, "%.*s%s%s", (int)alen, a, slash ? "/" : "", b) < 0)
        return NULL;
    return r;
}
