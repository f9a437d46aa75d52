/*
 * watch: recursive inotify over content.dir (see watch.h).
 *
 * Editors save in many ways: write in place (IN_CLOSE_WRITE), write a
 * temporary file and rename it over the post (IN_MOVED_TO on the post's
 * name; the temporary name is not a post name, so it is ignored), delete and
 * recreate. A new folder is watched as soon as it is seen, and a rescan is
 * asked for, since files may have landed in it before its watch existed.
 */
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/fileio.h"
#include "../lib/log.h"
#include "../posts/post.h"

#define WATCH_MASK                                                                                 \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_DELETE_SELF |       \
     IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
#define WATCH_MAX_DEPTH 32

struct wdir {
    int wd;
    char *rel; /* "" for the root */
};

struct watch {
    int fd;
    char *root;
    struct wdir *dirs;
    size_t n, alloc;
};

static const char *rel_of(struct watch *w, int wd)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->dirs[i].wd == wd)
            return w->dirs[i].rel;
    return NULL;
}

static void forget(struct watch *w, int wd)
{
    for (size_t i = 0; i < w->n; i++) {
        if (w->dirs[i].wd == wd) {
            free(w->dirs[i].rel);
            w->dirs[i] = w->dirs[--w->n];
            return;
        }
    }
}

/* Watches rel (relative to root) and, recursively, its folders. */
static int add_tree(struct watch *w, const char *rel, int depth)
{
    char *full = *rel ? path_join(w->root, rel) : strdup(w->root);
    if (!full)
        return -1;
    int wd = inotify_add_watch(w->fd, full, WATCH_MASK);
    if (wd < 0) {
        int e = errno;
        free(full);
        return e == ENOENT || e == ENOTDIR ? 0 : -1; /* gone already: fine */
    }
    if (!rel_of(w, wd)) {
        if (w->n == w->alloc) {
            size_t na = w->alloc ? w->alloc * 2 : 64;
            struct wdir *nd = realloc(w->dirs, na * sizeof *nd);
            if (!nd) {
                free(full);
                return -1;
            }
            w->dirs = nd;
            w->alloc = na;
        }
        w->dirs[w->n].wd = wd;
        if (!(w->dirs[w->n].rel = strdup(rel))) {
            free(full);
            return -1;
        }
        w->n++;
    }
    DIR *d = depth < WATCH_MAX_DEPTH ? opendir(full) : NULL;
    free(full);
    struct dirent *de;
    int rc = 0;
    while (d && rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.' || de->d_type != DT_DIR)
            continue;
        struct buf sub;
        buf_init(&sub, PATH_MAX);
        if ((*rel && (buf_puts(&sub, rel) < 0 || buf_putc(&sub, '/') < 0)) ||
            buf_puts(&sub, de->d_name) < 0)
            rc = -1;
        else
            rc = add_tree(w, sub.data, depth + 1);
        buf_free(&sub);
    }
    if (d)
        closedir(d);
    return rc;
}

struct watch *watch_new(const char *root, struct diag *err)
{
    struct watch *w = calloc(1, sizeof *w);
    if (!w || !(w->root = strdup(root))) {
        diag_set(err, 0, 0, "out of memory");
        free(w);
        return NULL;
    }
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0 || add_tree(w, "", 0) < 0) {
        diag_set(err, 0, 0, "cannot watch %s: %s", root, strerror(errno));
        watch_free(w);
        return NULL;
    }
    return w;
}

void watch_free(struct watch *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    for (size_t i = 0; i < w->n; i++)
        free(w->dirs[i].rel);
    free(w->dirs);
    free(w->root);
    free(w);
}

int watch_fd(const struct watch *w)
{
    return w->fd;
}

static void on_event(struct watch *w, const struct inotify_event *ev,
                     void (*fn)(void *, const char *), void *arg, int *rescan)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        log_event(LOG_WARN, "watch", "error=overflow action=rescan");
        *rescan = 1;
        return;
    }
    if (ev->mask & IN_IGNORED) {
        forget(w, ev->wd);
        return;
    }
    const char *dir = rel_of(w, ev->wd);
    if (!dir)
        return;
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        *rescan = 1;
        return;
    }
    if (!ev->len || ev->name[0] == '.')
        return;
    struct buf rel;
    buf_init(&rel, PATH_MAX);
    if ((*dir && (buf_puts(&rel, dir) < 0 || buf_putc(&rel, '/') < 0)) ||
        buf_puts(&rel, ev->name) < 0) {
        buf_free(&rel);
        *rescan = 1;
        return;
    }
    if (ev->mask & IN_ISDIR) {
        /* A folder came or went: watch it, and read the tree again, since
         * files may have landed in it before its watch existed. */
        if (ev->mask & (IN_CREATE | IN_MOVED_TO))
            (void)add_tree(w, rel.data, 1);
        *rescan = 1;
    } else if (post_path_wanted(ev->name)) {
        int want = ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE);
        if (ev->mask & IN_CREATE) { /* only links are complete when created */
            struct stat st;
            char *full = path_join(w->root, rel.data);
            want = full && lstat(full, &st) == 0 && S_ISLNK(st.st_mode);
            free(full);
        }
        if (want)
            fn(arg, rel.data);
    }
    buf_free(&rel);
}

int watch_read(struct watch *w, void (*fn)(void *arg, const char *relpath), void *arg, int *rescan)
{
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        if (n == 0)
            return 0;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            on_event(w, ev, fn, arg, rescan);
            p += sizeof *ev + ev->len;
        }
    }
}
