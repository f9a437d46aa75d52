/*
 * md4c_parse: the "md4c alone" baseline of the build benchmark (tests/bench/run.py).
 *
 *     md4c_parse DIR
 *
 * Reads every *.md file under DIR (recursively, hidden folders skipped, links
 * to folders not followed, like posts/post_scan.c), drops the YAML front
 * matter, and hands the body to md_parse() with callbacks that do nothing:
 * the cost of reading and parsing the Markdown and nothing else, which
 * `nashra build` cannot go below. The parser flags are nashra's own (see
 * render_markdown() in posts/post_md.c). Prints "files=N bytes=B" (B: body
 * bytes parsed) so the harness can check every post was parsed; exits 1 on
 * any error. Timing and memory are measured from outside, with /usr/bin/time.
 *
 * Built by run.py: cc -O2 md4c_parse.c $(pkg-config --cflags --libs md4c)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <md4c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The flags of render_markdown() in posts/post_md.c: keep them in step. */
#define PARSE_FLAGS (MD_FLAG_TABLES | MD_FLAG_STRIKETHROUGH)

#define MAX_DEPTH 32

struct totals {
    size_t files;
    unsigned long long bytes;
    char *buf; /* file contents, reused from file to file; grows as needed */
    size_t cap;
};

static int on_block(MD_BLOCKTYPE type, void *detail, void *userdata)
{
    return 0;
}

static int on_span(MD_SPANTYPE type, void *detail, void *userdata)
{
    return 0;
}

static int on_text(MD_TEXTTYPE type, const MD_CHAR *text, MD_SIZE size, void *userdata)
{
    return 0;
}

static const MD_PARSER parser = {
    .abi_version = 0,
    .flags = PARSE_FLAGS,
    .enter_block = on_block,
    .leave_block = on_block,
    .enter_span = on_span,
    .leave_span = on_span,
    .text = on_text,
};

/*
 * Offset of the body: past a front matter opened by a "---" line and closed
 * by a "---" or "..." line (trailing blanks and CR allowed), else 0.
 */
static size_t body_offset(const char *s, size_t len)
{
    if (len < 3 || memcmp(s, "---", 3))
        return 0;
    size_t i = 3;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
        i++;
    if (i < len && s[i] != '\n')
        return 0;
    for (size_t ln = i + 1; ln < len;) {
        size_t e = ln;
        while (e < len && s[e] != '\n')
            e++;
        size_t n = e - ln;
        while (n && (s[ln + n - 1] == '\r' || s[ln + n - 1] == ' ' || s[ln + n - 1] == '\t'))
            n--;
        if (n == 3 && (!memcmp(s + ln, "---", 3) || !memcmp(s + ln, "...", 3)))
            return e < len ? e + 1 : len;
        ln = e + 1;
    }
    return 0;
}

/* Reads the file at dfd/name into t->buf; returns its length, or -1. */
static long read_file(struct totals *t, int dfd, const char *name)
{
    long rc = -1;
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        goto out;
    if ((size_t)st.st_size + 1 > t->cap) {
        size_t cap = (size_t)st.st_size + 1;
        char *nb = realloc(t->buf, cap);
        if (!nb)
            goto out;
        t->buf = nb;
        t->cap = cap;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, t->buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        got += (size_t)n;
    }
    rc = (long)got;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

static int parse_file(struct totals *t, int dfd, const char *name)
{
    long len = read_file(t, dfd, name);
    if (len < 0) {
        fprintf(stderr, "md4c_parse: %s: %s\n", name, strerror(errno));
        return -1;
    }
    size_t off = body_offset(t->buf, (size_t)len);
    if (md_parse(t->buf + off, (MD_SIZE)((size_t)len - off), &parser, NULL) != 0) {
        fprintf(stderr, "md4c_parse: %s: md_parse failed\n", name);
        return -1;
    }
    t->files++;
    t->bytes += (size_t)len - off;
    return 0;
}

static int is_md(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && !strcmp(name + n - 3, ".md");
}

/* Walks the folder open at dfd (taking ownership of dfd). */
static int walk(struct totals *t, int dfd, int depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            fprintf(stderr, "md4c_parse: %s: %s\n", e->d_name, strerror(errno));
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            int sub = depth < MAX_DEPTH
                          ? openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                          : -1;
            if (sub < 0) {
                fprintf(stderr, "md4c_parse: %s: cannot open folder\n", e->d_name);
                rc = -1;
            } else {
                rc = walk(t, sub, depth + 1);
            }
        } else if (is_md(e->d_name)) {
            rc = parse_file(t, dirfd(d), e->d_name);
        }
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: md4c_parse DIR\n");
        return 2;
    }
    struct totals t = {0};
    int dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        fprintf(stderr, "md4c_parse: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    int rc = walk(&t, dfd, 0);
    free(t.buf);
    if (rc < 0)
        return 1;
    printf("files=%zu bytes=%llu\n", t.files, t.bytes);
    return 0;
}
