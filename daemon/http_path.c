/*
 * http_path: request paths in and out. A path from the wire is decoded
 * (RFC 3986 §2.1: Arabic slugs arrive as %D8%B3...) and normalised
 * (§5.2.4, but ".." is refused, not resolved) before any route or file sees
 * it, so that "/posts/%2e%2e/x", "%00" tricks or a "%2F" can never name
 * something outside the intended tree.
 */
#include <string.h>

#include "../lib/text.h"
#include "http_int.h"

/* Decodes the %XX at p into *ch; -1 if it is not one. */
static int http_pct(const char *p, unsigned char *ch)
{
    int hi = text_hexval(p[1]);
    int lo = hi < 0 ? -1 : text_hexval(p[2]);
    if (lo < 0)
        return -1;
    *ch = (unsigned char)(hi << 4 | lo);
    return 0;
}

/* Decodes one segment of raw (up to '/' or the end) at out[*o]; returns the
 * raw bytes consumed, or -1 with *why. */
static long http_segment(const char *raw, char *out, size_t outlen, size_t *o, const char **why)
{
    const char *p = raw;
    while (*p && *p != '/') {
        unsigned char ch = (unsigned char)*p;
        if (ch == '%') {
            if (http_pct(p, &ch) < 0) {
                *why = "bad percent-escape";
                return -1;
            }
            if (ch == '/') {
                *why = "encoded slash";
                return -1;
            }
            p += 3;
        } else {
            p++;
        }
        if (ch < 0x20 || ch == 0x7f) {
            *why = "control character";
            return -1;
        }
        if (*o + 2 >= outlen) {
            *why = "path too long";
            return -1;
        }
        out[(*o)++] = (char)ch;
    }
    return p - raw;
}

int http_path_normalise(const char *raw, char *out, size_t outlen, const char **why)
{
    *why = NULL;
    if (outlen < 2 || raw[0] != '/') {
        *why = "path must start with /";
        return -1;
    }
    size_t o = 0;
    out[o++] = '/';
    const char *p = raw + 1;
    for (;;) {
        size_t start = o;
        long n = http_segment(p, out, outlen, &o, why);
        if (n < 0)
            return -1;
        p += n;
        size_t len = o - start;
        if (len == 2 && out[start] == '.' && out[start + 1] == '.') {
            *why = "dot-dot segment";
            return -1;
        }
        if (len == 0 || (len == 1 && out[start] == '.'))
            o = start; /* "//" and "/./" say nothing */
        else if (*p == '/')
            out[o++] = '/';
        if (*p == '\0')
            break;
        p++; /* the '/' */
    }
    out[o] = '\0';
    size_t bad;
    if (!utf8_valid(out, o, &bad)) {
        *why = "path is not UTF-8";
        return -1;
    }
    return 0;
}

int http_path_encode(struct buf *out, const char *path)
{
    const char *p = path;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (text_url_segment(out, p, len) < 0)
            return -1;
        if (!slash)
            break;
        if (buf_putc(out, '/') < 0)
            return -1;
        p = slash + 1;
    }
    return 0;
}

int http_query_decode(char *s)
{
    size_t o = 0;
    for (const char *p = s; *p;) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '%') {
            if (http_pct(p, &ch) < 0 || ch == 0)
                return -1;
            p += 3;
        } else {
            p++;
        }
        s[o++] = (char)ch;
    }
    s[o] = '\0';
    return 0;
}
