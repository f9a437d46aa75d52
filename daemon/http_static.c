/*
 * http_static: the files of output.dir over GET and HEAD, with validators
 * and conditional requests (RFC 9110 §8.8.2 Last-Modified, §8.8.3 ETag,
 * §13.1.2 If-None-Match, §13.1.3 If-Modified-Since, §5.6.7 IMF-fixdate).
 *
 * The path (already decoded and normalised, http_path.c) is walked one
 * component at a time with openat(O_NOFOLLOW) from the root, so neither a
 * symlink nor anything else can lead outside it; dot-files (the publisher's
 * temporary files, .git) are never served. A file is sent from its open fd
 * (sendfile): if the publisher renames a new version into place meanwhile,
 * this response keeps the old inode whole and the next one gets the new.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "http_int.h"

/* ---- Content-Type -------------------------------------------------------- */

static const struct {
    const char *ext;
    const char *type;
} http_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"txt", "text/plain; charset=utf-8"},
    {"xml", "application/xml; charset=utf-8"},
    {"json", "application/json; charset=utf-8"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"svg", "image/svg+xml; charset=utf-8"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/vnd.microsoft.icon"},
    {"pdf", "application/pdf"},
    {"woff2", "font/woff2"},
};

const char *http_mime_type(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    if (strcmp(base, "feed.xml") == 0)
        return "application/rss+xml; charset=utf-8";
    if (strcmp(base, "atom.xml") == 0)
        return "application/atom+xml; charset=utf-8";
    if (strcmp(base, "feed.json") == 0)
        return "application/feed+json; charset=utf-8";
    const char *dot = strrchr(base, '.');
    if (dot)
        for (size_t i = 0; i < sizeof http_types / sizeof http_types[0]; i++)
            if (strcasecmp(dot + 1, http_types[i].ext) == 0)
                return http_types[i].type;
    return "application/octet-stream";
}

/* ---- dates and entity tags ----------------------------------------------- */

static const char http_days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char http_months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

char *http_date_format(int64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(out, outlen, "Thu, 01 Jan 1970 00:00:00 GMT");
        return out;
    }
    snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d GMT", http_days[tm.tm_wday], tm.tm_mday,
             http_months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return out;
}

/* n digits at s; -1 if any is not a digit. */
static int http_digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int http_date_parse(const char *s, int64_t *t)
{
    /* "Sun, 06 Nov 1994 08:49:37 GMT": fixed columns */
    if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || strcmp(s + 25, " GMT") != 0)
        return -1;
    int wday = -1, mon = -1;
    for (int i = 0; i < 7; i++)
        if (memcmp(s, http_days[i], 3) == 0)
            wday = i;
    for (int i = 0; i < 12; i++)
        if (memcmp(s + 8, http_months[i], 3) == 0)
            mon = i;
    struct tm tm = {.tm_mday = http_digits(s + 5, 2),
                    .tm_mon = mon,
                    .tm_year = http_digits(s + 12, 4) - 1900,
                    .tm_hour = http_digits(s + 17, 2),
                    .tm_min = http_digits(s + 20, 2),
                    .tm_sec = http_digits(s + 23, 2)};
    if (wday < 0 || mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_year < 0 ||
        tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 ||
        tm.tm_sec > 60)
        return -1;
    *t = (int64_t)timegm(&tm);
    return 0;
}

void http_etag(const struct stat *st, char *out, size_t outlen)
{
    unsigned long long ns = (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
                            (unsigned long long)st->st_mtim.tv_nsec;
    snprintf(out, outlen, "\"%llx-%llx-%llx\"", (unsigned long long)st->st_ino,
             (unsigned long long)st->st_size, ns);
}

int http_etag_match(const char *inm, const char *etag)
{
    const char *p = inm;
    size_t elen = strlen(etag);
    for (;;) {
        p += strspn(p, " \t,");
        if (*p == '\0')
            return 0;
        if (*p == '*')
            return 1;
        if (strncmp(p, "W/", 2) == 0) /* weak comparison: W/ does not matter */
            p += 2;
        if (*p != '"')
            return 0; /* malformed: match nothing */
        const char *end = strchr(p + 1, '"');
        if (!end)
            return 0;
        size_t len = (size_t)(end - p) + 1;
        if (len == elen && memcmp(p, etag, len) == 0)
            return 1;
        p = end + 1;
    }
}

/* ---- finding the file ---------------------------------------------------- */

/* Opens the regular file at path under rootfd into *fd (stat in *st);
 * returns 200, 301 (a directory named without its '/'), 404 or 500. */
static int http_static_open(int rootfd, const char *path, int *fd, struct stat *st)
{
    int dir = rootfd, status = 404;
    char seg[NAME_MAX + 1];
    const char *p = path + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        int last = !slash;
        if (len == 0) { /* the path ends in '/': the folder's index */
            memcpy(seg, "index.html", sizeof "index.html");
        } else {
            if (len > NAME_MAX || p[0] == '.')
                goto out;
            memcpy(seg, p, len);
            seg[len] = '\0';
        }
        int flags = O_NOFOLLOW | O_CLOEXEC;
        flags |= last ? O_RDONLY | O_NONBLOCK /* a FIFO must not block us */
                      : O_PATH | O_DIRECTORY;
        int nfd = openat(dir, seg, flags);
        if (nfd < 0) {
            status = errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EACCES ||
                             errno == ENAMETOOLONG
                         ? 404
                         : 500;
            goto out;
        }
        if (dir != rootfd)
            close(dir);
        dir = nfd;
        if (last)
            break;
        p = slash + 1;
    }
    if (fstat(dir, st) < 0) {
        status = 500;
        goto out;
    }
    status = S_ISDIR(st->st_mode) ? 301 : S_ISREG(st->st_mode) ? 200 : 404;
    if (status == 200) {
        *fd = dir;
        dir = rootfd;
    }
out:
    if (dir != rootfd)
        close(dir);
    return status;
}

/* ---- answering ----------------------------------------------------------- */

static enum MHD_Result http_redirect_slash(struct http_ctx *c)
{
    struct buf loc;
    buf_init(&loc, HTTP_PATH_MAX * 3 + 2);
    enum MHD_Result ret = MHD_NO;
    if (http_path_encode(&loc, c->path) < 0 || buf_putc(&loc, '/') < 0) {
        ret = http_queue_text(c, 400, "path too long", NULL);
        goto out;
    }
    static const char moved[] = "moved permanently\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof moved - 1, (void *)moved, MHD_RESPMEM_PERSISTENT);
    if (!r)
        goto out;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, buf_str(&loc)) != MHD_YES ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8") !=
            MHD_YES) {
        MHD_destroy_response(r);
        goto out;
    }
    ret = http_queue(c, 301, r, sizeof moved - 1);
out:
    buf_free(&loc);
    return ret;
}

/* RFC 9110 §13.2.2: If-None-Match decides when present; If-Modified-Since
 * only without it (and is ignored when it is not a valid date). */
static int http_not_modified(const struct http_ctx *c, const char *etag, int64_t mtime)
{
    const char *inm = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "If-None-Match");
    if (inm)
        return http_etag_match(inm, etag);
    const char *ims = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "If-Modified-Since");
    int64_t since;
    return ims && http_date_parse(ims, &since) == 0 && mtime <= since;
}

/* Sends fd (owned: closed by MHD, or here on error) as the body. */
static enum MHD_Result http_send_file(struct http_ctx *c, int fd, const struct stat *st)
{
    char etag[80], lm[40];
    http_etag(st, etag, sizeof etag);
    http_date_format(st->st_mtim.tv_sec, lm, sizeof lm);
    unsigned status = 200;
    uint64_t size = (uint64_t)st->st_size;
    struct MHD_Response *r;
    int not_modified = http_not_modified(c, etag, st->st_mtim.tv_sec);
    if (not_modified || size == 0) { /* nothing to send from the file */
        status = not_modified ? 304 : 200;
        close(fd);
        size = 0;
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        r = MHD_create_response_from_fd64(size, fd);
        if (!r)
            close(fd);
    }
    if (!r)
        return http_queue_text(c, 500, "internal error", NULL);
    const char *name = c->path[strlen(c->path) - 1] == '/' ? "index.html" : c->path;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag) != MHD_YES ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_LAST_MODIFIED, lm) != MHD_YES ||
        (status == 200 && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                                  http_mime_type(name)) != MHD_YES)) {
        MHD_destroy_response(r);
        return http_queue_text(c, 500, "internal error", NULL);
    }
    return http_queue(c, status, r, size);
}

enum MHD_Result http_static_serve(struct http_ctx *c)
{
    int rootfd = open(c->srv->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return http_queue_text(c, 404, "not found", NULL);
    int fd = -1;
    struct stat st;
    int status = http_static_open(rootfd, c->path, &fd, &st);
    close(rootfd);
    switch (status) {
    case 200:
        return http_send_file(c, fd, &st);
    case 301: /* a folder named without its '/' (with it, index.html is a folder) */
        if (c->path[strlen(c->path) - 1] == '/')
            return http_queue_text(c, 404, "not found", NULL);
        return http_redirect_slash(c);
    case 404:
        return http_queue_text(c, 404, "not found", NULL);
    default:
        return http_queue_text(c, 500, "cannot open the file", NULL);
    }
}
