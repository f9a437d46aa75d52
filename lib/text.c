/*
 * text: strict UTF-8 validation (RFC 3629), removal of characters XML 1.0
 * forbids, HTML/XML escaping and URL path-segment percent-encoding (RFC 3986).
 *
 * Every function scans runs of bytes that need no change and appends each run
 * with one buf_append: outputs are mostly long runs of plain text.
 */
#include "text.h"

#include <stdint.h>
#include <string.h>

/* Classes of a byte, for the scanners below. */
enum {
    C_OK = 0, /* ASCII allowed as is */
    C_DROP,   /* C0 control other than tab, LF, CR: removed */
    C_HIGH,   /* 0x80-0xFF: start (or part) of a multi-byte sequence */
    C_ESC     /* & < > " ': allowed in XML-clean text, escaped in HTML */
};

static const unsigned char byte_class[256] = {
    /* 0x00 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1,
    /* 0x10 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x20 */ 0, 0, 3, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x30 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 3, 0,
    /* 0x40 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x50 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x60 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x70 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x80 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0x90 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xA0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xB0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xC0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xD0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xE0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xF0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

size_t utf8_seqlen(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 1;
}

/*
 * Decodes the multi-byte sequence at p (n bytes available, p[0] >= 0x80).
 * Returns its length with *cp set, or 0 if it is invalid: a stray
 * continuation byte, an overlong form, a surrogate, a code point past
 * U+10FFFF or a sequence cut short (RFC 3629 section 4).
 */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len = utf8_seqlen(c);

    if (len == 1 || len > n)
        return 0;
    if (c == 0xE0)
        lo = 0xA0; /* overlong below U+0800 */
    else if (c == 0xED)
        hi = 0x9F; /* surrogates U+D800-U+DFFF */
    else if (c == 0xF0)
        lo = 0x90; /* overlong below U+10000 */
    else if (c == 0xF4)
        hi = 0x8F; /* past U+10FFFF */
    if (p[1] < lo || p[1] > hi)
        return 0;
    uint32_t v = c & (0xFF >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if (i > 1 && (p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    *cp = v;
    return len;
}

/* A valid two-byte sequence at p whose second byte is at least min when the
 * first is 0xC2 (min 0xA0 leaves out the C1 controls U+0080-U+009F). */
static inline int two_byte_ok(const unsigned char *p, size_t n, unsigned char min)
{
    return p[0] >= 0xC2 && p[0] <= 0xDF && n >= 2 && (p[1] & 0xC0) == 0x80 &&
           (p[0] != 0xC2 || p[1] >= min);
}

/* 1 if the 8 bytes at p are all 0x01..0x7f. */
static int ascii8(const unsigned char *p)
{
    const uint64_t hi = 0x8080808080808080ULL, lo = 0x7f7f7f7f7f7f7f7fULL;
    uint64_t w;
    memcpy(&w, p, 8);
    /* a byte's top bit in (w & lo) + lo: its low seven bits are not all 0 */
    return (~w & ((w & lo) + lo) & hi) == hi;
}

int utf8_valid(const char *s, size_t len, size_t *bad_off)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp;

    while (i < len) {
        if (p[i] >= 0x01 && p[i] < 0x80) {
            /* a word at a time while it is ASCII without NUL (markup) */
            while (i + 8 <= len && ascii8(p + i))
                i += 8;
            if (i < len && p[i] >= 0x01 && p[i] < 0x80)
                i++;
            continue;
        }
        if (two_byte_ok(p + i, len - i, 0x80)) {
            i += 2;
            continue;
        }
        size_t n = p[i] ? utf8_decode(p + i, len - i, &cp) : 0;
        if (n == 0) {
            if (bad_off)
                *bad_off = i;
            return 0;
        }
        i += n;
    }
    return 1;
}

/* Length of the allowed sequence at p, or 0 if it must be removed (invalid,
 * C1 control, U+FFFE or U+FFFF). */
static size_t xml_high_len(const unsigned char *p, size_t n)
{
    uint32_t cp;
    size_t len = utf8_decode(p, n, &cp);

    if (len == 0 || cp <= 0x9F || cp == 0xFFFE || cp == 0xFFFF)
        return 0;
    return len;
}

/* The escape of an XML/HTML special character. */
static const char *html_entity(unsigned char c, size_t *n)
{
    switch (c) {
    case '&':
        *n = 5;
        return "&amp;";
    case '<':
        *n = 4;
        return "&lt;";
    case '>':
        *n = 4;
        return "&gt;";
    case '"':
        *n = 6;
        return "&quot;";
    default: /* '\'' */
        *n = 5;
        return "&#39;";
    }
}

/*
 * The scanner behind text_xml_clean and text_escape_html: copies runs of
 * allowed bytes, drops forbidden characters and (when escape is set)
 * replaces & < > " ' by their entities.
 */
static int xml_scan(struct buf *out, const char *s, size_t len, int escape)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;

    while (i < len) {
        unsigned char cls = byte_class[p[i]];
        size_t n = 1;
        if (cls == C_OK || (cls == C_ESC && !escape)) {
            i++;
            /* fast path: eight printable ASCII bytes at a time */
            while (!escape && i + 8 <= len) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if ((w | (w - 0x2020202020202020ULL)) & 0x8080808080808080ULL)
                    break; /* a byte below 0x20 or above 0x7F: look closer */
                i += 8;
            }
            continue;
        }
        if (cls == C_HIGH) {
            if (two_byte_ok(p + i, len - i, 0xA0)) {
                /* fast path: a run of two-byte letters (Arabic: D8-DB xx) */
                i += 2;
                while (i + 1 < len && p[i] >= 0xC3 && p[i] <= 0xDF && (p[i + 1] & 0xC0) == 0x80)
                    i += 2;
                continue;
            }
            n = xml_high_len(p + i, len - i);
            if (n > 0) {
                i += n;
                continue;
            }
            n = 1; /* drop one byte; continuation bytes that follow drop too */
        }
        if (i > run && buf_append(out, p + run, i - run) < 0)
            return -1;
        if (cls == C_ESC) {
            size_t elen;
            const char *ent = html_entity(p[i], &elen);
            if (buf_append(out, ent, elen) < 0)
                return -1;
        }
        i += n;
        run = i;
    }
    if (len > run && buf_append(out, p + run, len - run) < 0)
        return -1;
    return 0;
}

/* Like buf_append, a failure leaves out as it was: no half-escaped text. */
static int xml_scan_all(struct buf *out, const char *s, size_t len, int escape)
{
    size_t len0 = out->len;

    if (xml_scan(out, s, len, escape) == 0)
        return 0;
    if (out->data) {
        out->len = len0;
        out->data[len0] = '\0';
    }
    return -1;
}

int text_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int text_xml_is_clean(const char *s, size_t len)
{
    /* Bytes that may start what XML forbids, in valid UTF-8: C0 controls, C2
     * (C1 controls are C2 80-9F), EF (U+FFFE, U+FFFF are EF BF BE-BF). */
    static unsigned char suspect[256];
    static int ready;
    const unsigned char *p = (const unsigned char *)s;
    if (!ready) {
        for (int c = 0; c < 0x20; c++)
            suspect[c] = c != '\t' && c != '\n' && c != '\r';
        suspect[0xC2] = suspect[0xEF] = 1;
        ready = 1;
    }
    for (size_t i = 0; i < len; i++) {
        /* Eight bytes at a time while none is below 0x20, C2 or EF. */
        while (i + 8 <= len) {
            const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
            uint64_t w, c2, ef;
            memcpy(&w, p + i, 8);
            c2 = w ^ (ones * 0xC2);
            ef = w ^ (ones * 0xEF);
            if ((((w - ones * 0x20) & ~w) | ((c2 - ones) & ~c2) | ((ef - ones) & ~ef)) & highs)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        if (!suspect[p[i]])
            continue;
        if (p[i] < 0x20)
            return 0;
        if (p[i] == 0xC2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9F)
            return 0;
        if (p[i] == 0xEF && i + 2 < len && p[i + 1] == 0xBF && (p[i + 2] & 0xFE) == 0xBE)
            return 0;
    }
    return 1;
}

int text_xml_clean(struct buf *out, const char *s, size_t len)
{
    return xml_scan_all(out, s, len, 0);
}

int text_escape_html(struct buf *out, const char *s, size_t len)
{
    return xml_scan_all(out, s, len, 1);
}

/* RFC 3986 section 2.3: ALPHA / DIGIT / "-" / "." / "_" / "~", as bitmaps of
 * the bytes 0-63 and 64-127. */
#define URL_LO ((1ULL << '-') | (1ULL << '.') | (0x3FFULL << '0'))
#define URL_HI                                                                                     \
    ((0x3FFFFFFULL << ('A' - 64)) | (1ULL << ('_' - 64)) | (0x3FFFFFFULL << ('a' - 64)) |          \
     (1ULL << ('~' - 64)))

static inline int url_unreserved(unsigned char c)
{
    if (c < 64)
        return (URL_LO >> c) & 1;
    return c < 128 && ((URL_HI >> (c - 64)) & 1);
}

int text_url_segment(struct buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s;
    size_t escapes = 0;

    /* Two passes: count, reserve the exact size (so the cap is checked once
     * and nothing half-written is left), then write in place. */
    for (size_t i = 0; i < len; i++)
        escapes += !url_unreserved(p[i]);
    if (escapes > (SIZE_MAX - len) / 2 || buf_reserve(out, len + 2 * escapes) < 0)
        return -1;
    if (len == 0)
        return 0;
    char *d = out->data + out->len;
    for (size_t i = 0; i < len; i++) {
        if (url_unreserved(p[i])) {
            *d++ = (char)p[i];
            continue;
        }
        *d++ = '%';
        *d++ = hex[p[i] >> 4];
        *d++ = hex[p[i] & 0x0F];
    }
    out->len = (size_t)(d - out->data);
    *d = '\0';
    return 0;
}
