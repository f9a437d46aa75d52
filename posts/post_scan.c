/*
 * post_scan: the list of post files under content.dir, recursively, in byte
 * order of their relative paths (so "first by path wins" is stable).
 *
 * Hidden folders are skipped and symbolic links to folders are not followed,
 * so a link loop cannot trap the walk; links to files are listed and read
 * like files (a dangling or looping one is then reported by post_read).
 */
#include "post.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/buf.h"

#define SCAN_MAX_DEPTH 32
#define SCAN_MAX_FILES 1000000

struct walk {
    struct post_scan *out;
    size_t alloc;
    struct diag *err;
};

static int add_path(struct walk *w, const char *rel, const char *name)
{
    if (w->out->n >= SCAN_MAX_FILES) {
        diag_set(w->err, 0, 0, "more than %d posts", SCAN_MAX_FILES);
        return -1;
    }
    if (w->out->n == w->alloc) {
        size_t na = w->alloc ? w->alloc * 2 : 256;
        char **np = realloc(w->out->paths, na * sizeof *np);
        if (!np)
            return -1;
        w->out->paths = np;
        w->alloc = na;
    }
    struct buf b;
    buf_init(&b, 0);
    if ((*rel && (buf_puts(&b, rel) < 0 || buf_putc(&b, '/') < 0)) || buf_puts(&b, name) < 0) {
        buf_free(&b);
        return -1;
    }
    w->out->paths[w->out->n++] = buf_steal(&b);
    return 0;
}

static int walk_dir(struct walk *w, int dfd, const char *rel, int depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) { /* no memory: a folder left out would be taken as deleted */
        diag_set(w->err, 0, 0, "cannot list %s: %s", *rel ? rel : "content folder",
                 strerror(errno));
        close(dfd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (errno = 0, de = readdir(d))) {
        const char *name = de->d_name;
        if (name[0] == '.')
            continue; /* ".", "..", hidden files and folders */
        unsigned char type = de->d_type;
        if (type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                continue;
            type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK : DT_REG;
        }
        if (type == DT_DIR) {
            if (depth >= SCAN_MAX_DEPTH)
                continue;
            int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0 && (errno == ENOMEM || errno == EMFILE || errno == ENFILE)) {
                diag_set(w->err, 0, 0, "cannot open folder %s: %s", name, strerror(errno));
                rc = -1;
                break;
            }
            if (sub < 0)
                continue;
            struct buf r;
            buf_init(&r, 0);
            if ((*rel && (buf_puts(&r, rel) < 0 || buf_putc(&r, '/') < 0)) ||
                buf_puts(&r, name) < 0) {
                close(sub);
                rc = -1;
            } else {
                rc = walk_dir(w, sub, r.data, depth + 1);
            }
            buf_free(&r);
        } else if (post_path_wanted(name)) {
            /* Regular files, links, and the odd FIFO or folder named x.md:
             * post_read reports what cannot be read. */
            rc = add_path(w, rel, name);
        }
    }
    if (rc == 0 && errno) { /* readdir failed: the listing is not whole */
        diag_set(w->err, 0, 0, "cannot list %s: %s", *rel ? rel : "content folder",
                 strerror(errno));
        rc = -1;
    }
    closedir(d);
    return rc;
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int post_scan(const char *content_dir, struct post_scan *out, struct diag *err)
{
    struct walk w = {.out = out, .err = err};
    out->paths = NULL;
    out->n = 0;
    int fd = open(content_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        diag_set(err, 0, 0, "cannot open content folder: %s", strerror(errno));
        return -1;
    }
    if (walk_dir(&w, fd, "", 0) < 0) {
        if (!err->msg[0])
            diag_set(err, 0, 0, "out of memory while listing posts");
        post_scan_free(out);
        return -1;
    }
    if (out->n > 1)
        qsort(out->paths, out->n, sizeof *out->paths, cmp_path);
    return 0;
}

void post_scan_free(struct post_scan *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->paths[i]);
    free(s->paths);
    s->paths = NULL;
    s->n = 0;
}
