/*
 * mime: one newsletter e-mail as bytes (SPEC §8). Implements the parts of
 * RFC 5322 (header fields), RFC 2045/2046 (MIME, multipart/alternative,
 * quoted-printable, base64), RFC 2047 (encoded-words), RFC 2369 and RFC 8058
 * (List-Unsubscribe, one-click), RFC 2919 (List-Id) and RFC 3834
 * (Auto-Submitted) that a list message needs.
 *
 * libetpan builds and writes the message: the header field list
 * (mailimf_fields; Message-ID as its structured field), the MIME tree
 * (mailmime_multiple_new, mailmime_new_empty, mailmime_smart_add_part,
 * mailmime_new_message_data), the MIME-Version, Content-Type and
 * Content-Transfer-Encoding fields, the multipart delimiters, and the
 * folding of header lines at spaces near column 72 (mailmime_write_mem).
 *
 * Done here by hand, and why:
 *  - header text: libetpan's public API has no RFC 2047 encoder. Its mailbox
 *    writer also puts a display name that is not a single atom between
 *    quotes, where encoded-words are not decoded (RFC 2047 §5), so From, To
 *    and List-Id are handed to it as plain fields whose values are built here
 *    (encoded-words of at most EW_MAX characters, separated by spaces, where
 *    libetpan folds).
 *  - the bodies, handed to libetpan as already encoded. Its quoted-printable
 *    encoder writes a space or tab that ends a line twice ("a \n" becomes
 *    "a =20", which decodes to "a  ") and leaves a space that ends the part
 *    unprotected; its base64 writer makes one write call per 4 characters
 *    (about 110 instructions a byte, 60% of the time of an Arabic message:
 *    messages are built one per subscriber, SPEC §11). Here: the shorter of
 *    quoted-printable and base64 per part.
 *  - the trailing space libetpan leaves on "Name: " when it folds before the
 *    first word of a value (see copy_out).
 *  - the boundary: libetpan's is random (time, random(), pid); one made from
 *    the Message-ID keeps the output reproducible for golden files. It starts
 *    with "=_", which neither quoted-printable nor base64 can produce.
 *
 * Every line stays within 76 characters, provided the Message-ID, the list id
 * and each unsubscribe URL (which cannot be folded) fit: see mime.h.
 */
#include "mime.h"

#include <libetpan/libetpan.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/text.h"
#include "../lib/timefmt.h"

#define EW_MAX      62   /* longest encoded-word, or word left as is, in a header */
#define EW_OVERHEAD 12   /* "=?UTF-8?B?" and "?=" */
#define HDR_MAX     8192 /* longest header text accepted (bytes, once cleaned) */
#define TOKEN_MAX   900  /* longest Message-ID, list id or URL (a line stays < 998) */
#define ADDR_MAX    254  /* RFC 5321 path limit, less the brackets */
#define LOCAL_MAX   64
#define LABEL_MAX   63
#define QP_LINE     76 /* longest quoted-printable line, soft-break "=" included */
/* Most quoted-printable for n bytes: 3 a byte, and a soft break ("=" CRLF)
 * at most every 25 bytes (a line holds at least 73 columns before one). */
#define QP_MAX(n) (3 * (n) + 3 * ((n) / 25) + 8)

/* ---- characters ----------------------------------------------------------- */

/* Length of the valid UTF-8 character at p (NUL-terminated), 0 if invalid. */
static size_t char_len(const unsigned char *p)
{
    size_t n = utf8_seqlen(*p);

    if (*p >= 0x80 && n == 1)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (p[i] == '\0')
            return 0;
    return utf8_valid((const char *)p, n, NULL) ? n : 0;
}

/* 1 for what must not reach a header as is: white space, C0 and C1 controls,
 * DEL, and U+2028/U+2029 (which some clients take for line breaks). */
static int hdr_space(const unsigned char *p, size_t n)
{
    if (n == 1)
        return *p <= 0x20 || *p == 0x7f;
    if (n == 2)
        return p[0] == 0xc2 && p[1] < 0xa0;
    return n == 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9);
}

/* RFC 5322 atext. */
static int is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Characters an encoded-word in Q form may carry as themselves, in any header
 * (RFC 2047 §5 (3), the strictest of its three rules). */
static int q_plain(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!*+-/", c) != NULL;
}

static size_t q_cost(unsigned char c)
{
    return (q_plain(c) || c == ' ') ? 1 : 3;
}

static size_t b64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

static const char hex_digits[] = "0123456789ABCDEF";

static const char b64_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_append(struct buf *o, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        char g[4];

        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        g[0] = b64_digits[(v >> 18) & 63];
        g[1] = b64_digits[(v >> 12) & 63];
        g[2] = i + 1 < n ? b64_digits[(v >> 6) & 63] : '=';
        g[3] = i + 2 < n ? b64_digits[v & 63] : '=';
        if (buf_append(o, g, 4) < 0)
            return -1;
    }
    return 0;
}

/* ---- header text ------------------------------------------------------------ */

/*
 * Appends s made safe for a header: invalid UTF-8 becomes U+FFFD; controls
 * (CR and LF among them: no caller text can start a header line), DEL, C1
 * controls and line separators become spaces; runs of white space become one
 * space, and none is left at either end.
 */
static int hdr_clean(struct buf *o, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = o->len;
    int space = 0;

    while (*p) {
        size_t n = char_len(p);
        const char *put = (const char *)p;
        size_t putn = n;

        if (n == 0) {
            put = "\xef\xbf\xbd";
            putn = 3;
            n = 1;
        } else if (hdr_space(p, n)) {
            space = 1;
            p += n;
            continue;
        }
        if (space && o->len > start && buf_putc(o, ' ') < 0)
            return -1;
        space = 0;
        if (buf_append(o, put, putn) < 0)
            return -1;
        p += n;
    }
    return 0;
}

/* 1 if every space-separated word of s[0, n) fits in EW_MAX columns. */
static int words_fit(const char *s, size_t n)
{
    size_t word = 0;

    for (size_t i = 0; i < n; i++) {
        word = s[i] == ' ' ? 0 : word + 1;
        if (word > EW_MAX)
            return 0;
    }
    return 1;
}

/* 1 if cleaned text s can go in a header as is: printable ASCII, nothing that
 * reads as an encoded-word, words that fold within the line limit; atext and
 * spaces only when phrase (a display name). */
static int plain_ok(const char *s, size_t n, int phrase)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c > 0x7e)
            return 0;
        if (phrase && c != ' ' && !is_atext(c))
            return 0;
        if (c == '=' && i + 1 < n && s[i + 1] == '?')
            return 0;
    }
    return words_fit(s, n);
}

/* Appends one encoded-word for s[0, n) (whole characters). */
static int ew_word(struct buf *o, const unsigned char *s, size_t n, int b)
{
    if (buf_puts(o, b ? "=?UTF-8?B?" : "=?UTF-8?Q?") < 0)
        return -1;
    if (b) {
        if (b64_append(o, s, n) < 0)
            return -1;
    } else {
        for (size_t i = 0; i < n; i++) {
            int r;

            if (s[i] == ' ')
                r = buf_putc(o, '_');
            else if (q_plain(s[i]))
                r = buf_putc(o, (char)s[i]);
            else
                r = buf_append(o, (char[3]){'=', hex_digits[s[i] >> 4], hex_digits[s[i] & 15]}, 3);
            if (r < 0)
                return -1;
        }
    }
    return buf_puts(o, "?=");
}

/* Bytes of s[0, n) (valid UTF-8) that fill one encoded-word: whole
 * characters only, at least one. */
static size_t ew_take(const unsigned char *s, size_t n, int b)
{
    size_t room = EW_MAX - EW_OVERHEAD, used = 0, cost = 0;

    while (used < n) {
        size_t cl = utf8_seqlen(s[used]), c = cost;

        if (cl > n - used)
            cl = n - used;
        if (b)
            c = b64_len(used + cl);
        else
            for (size_t k = 0; k < cl; k++)
                c += q_cost(s[used + k]);
        if (c > room && used > 0)
            break;
        cost = c;
        used += cl;
    }
    return used;
}

/*
 * Appends cleaned text s[0, n) as RFC 2047 encoded-words separated by single
 * spaces: B or Q, whichever is shorter for the whole text, UTF-8, each word
 * at most EW_MAX characters and never splitting a character.
 */
static int ew_append(struct buf *o, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t qlen = 0;

    for (size_t i = 0; i < n; i++)
        qlen += q_cost(u[i]);
    int b = b64_len(n) < qlen;
    for (size_t i = 0; i < n;) {
        size_t take = ew_take(u + i, n - i, b);

        if (i > 0 && buf_putc(o, ' ') < 0)
            return -1;
        if (ew_word(o, u + i, take, b) < 0)
            return -1;
        i += take;
    }
    return 0;
}

/* Appends cleaned unstructured text (Subject). */
static int text_encode(struct buf *o, const char *s, size_t n)
{
    if (plain_ok(s, n, 0))
        return buf_append(o, s, n);
    return ew_append(o, s, n);
}

/* Appends printable ASCII s[0, n) as a quoted-string when its words fit. */
static int quoted_try(struct buf *o, const char *s, size_t n)
{
    size_t start = o->len;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e || (c == '=' && i + 1 < n && s[i + 1] == '?'))
            return 1;
    }
    if (buf_putc(o, '"') < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if ((s[i] == '"' || s[i] == '\\') && buf_putc(o, '\\') < 0)
            return -1;
        if (buf_putc(o, s[i]) < 0)
            return -1;
    }
    if (buf_putc(o, '"') < 0)
        return -1;
    if (words_fit(o->data + start, o->len - start))
        return 0;
    o->len = start;
    o->data[start] = '\0';
    return 1;
}

/* Appends cleaned text as an RFC 5322 phrase (display name, list name): atoms
 * as is, other ASCII as a quoted-string, the rest as encoded-words. */
static int phrase_encode(struct buf *o, const char *s, size_t n)
{
    if (plain_ok(s, n, 1))
        return buf_append(o, s, n);
    int r = quoted_try(o, s, n);
    if (r <= 0)
        return r;
    return ew_append(o, s, n);
}

int mime_header_text(struct buf *out, const char *s)
{
    struct buf clean, enc;
    int rc = -1;

    buf_init(&clean, HDR_MAX);
    buf_init(&enc, HDR_MAX * 4);
    if (hdr_clean(&clean, s ? s : "") < 0)
        goto done;
    if (text_encode(&enc, buf_str(&clean), clean.len) < 0)
        goto done;
    rc = buf_append(out, buf_str(&enc), enc.len);
done:
    buf_free(&clean);
    buf_free(&enc);
    return rc;
}

/* Appends a display name (may be NULL) as a phrase; nothing when empty. */
static int phrase_append(struct buf *o, const char *name)
{
    struct buf clean;
    int rc = -1;

    buf_init(&clean, HDR_MAX);
    if (hdr_clean(&clean, name ? name : "") == 0)
        rc = phrase_encode(o, buf_str(&clean), clean.len);
    buf_free(&clean);
    return rc;
}

/* ---- addresses -------------------------------------------------------------- */

static int is_trim(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Dot-atom local part: atext and single inner dots, 1..64 bytes. */
static int local_ok(const char *s, size_t n)
{
    if (n == 0 || n > LOCAL_MAX || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (s[i + 1] == '.')
                return 0;
        } else if (!is_atext((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int is_ldh(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* Host name: dot-separated labels of letters, digits and inner hyphens. */
static int domain_ok(const char *s, size_t n)
{
    size_t label = 0;

    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || s[i - 1] == '-' || s[i - label] == '-')
                return 0;
            label = 0;
        } else if (!is_ldh(s[i]) || ++label > LABEL_MAX) {
            return 0;
        }
    }
    return 1;
}

int mime_address_ok(const char *s, struct buf *out)
{
    if (!s)
        return 0;
    while (is_trim(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_trim(s[n - 1]))
        n--;
    if (n == 0 || n > ADDR_MAX)
        return 0;
    const char *at = memchr(s, '@', n);
    if (!at)
        return 0;
    size_t ln = (size_t)(at - s), dn = n - ln - 1;
    if (!local_ok(s, ln) || !domain_ok(at + 1, dn))
        return 0;
    if (!out)
        return 1;
    if (buf_reserve(out, n) < 0)
        return 0;
    if (buf_append(out, s, ln + 1) < 0)
        return 0;
    for (size_t i = 0; i < dn; i++) {
        char c = at[1 + i];
        if (buf_putc(out, (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c) < 0)
            return 0;
    }
    return 1;
}

/* ---- header fields ---------------------------------------------------------- */

/* 1 if s is a non-empty run of printable ASCII without space, "<" or ">"
 * (a Message-ID, a list id, a URL); *n gets its length without one pair of
 * surrounding angle brackets, *s moves past the "<". */
static int token_ok(const char **s, size_t *n)
{
    const char *p = *s;
    size_t len;

    if (!p)
        return 0;
    len = strlen(p);
    if (len >= 2 && p[0] == '<' && p[len - 1] == '>') {
        p++;
        len -= 2;
    }
    if (len == 0 || len > TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (p[i] <= ' ' || p[i] > '~' || p[i] == '<' || p[i] == '>')
            return 0;
    *s = p;
    *n = len;
    return 1;
}

/* 1 if url is a token that starts with scheme (case-insensitive). */
static int url_ok(const char *url, const char *scheme, const char **p, size_t *n)
{
    *p = url;
    return token_ok(p, n) && *n > strlen(scheme) && strncasecmp(*p, scheme, strlen(scheme)) == 0;
}

/* Adds the field to the list; the list owns it, or it is freed. */
static int field_put(struct mailimf_fields *f, struct mailimf_field *fld)
{
    if (mailimf_fields_add(f, fld) != MAILIMF_NO_ERROR) {
        mailimf_field_free(fld);
        return -1;
    }
    return 0;
}

/* Message-ID as libetpan's structured field, written "Message-ID: <id>" on one
 * line: as a plain field a long id would be folded onto the next line, and
 * tools expect it on the first. */
static int msgid_add(struct mailimf_fields *f, const char *id)
{
    char *v = strdup(id);
    struct mailimf_message_id *mid = v ? mailimf_message_id_new(v) : NULL;
    struct mailimf_field *fld;

    if (!mid) {
        free(v);
        return -1;
    }
    fld = mailimf_field_new(MAILIMF_FIELD_MESSAGE_ID, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, mid, NULL, NULL, NULL,
                            NULL, NULL, NULL);
    if (!fld) {
        mailimf_message_id_free(mid);
        return -1;
    }
    return field_put(f, fld);
}

/* Adds "name: value" to the field list (libetpan copies nothing: it owns the
 * two strings made here once the field exists). */
static int field_add(struct mailimf_fields *f, const char *name, const char *value)
{
    if (strcmp(name, "Message-ID") == 0)
        return msgid_add(f, value);

    char *n = strdup(name), *v = strdup(value);
    struct mailimf_optional_field *opt = NULL;
    struct mailimf_field *fld;

    if (n && v)
        opt = mailimf_optional_field_new(n, v);
    if (!opt) {
        free(n);
        free(v);
        return -1;
    }
    fld = mailimf_field_new(MAILIMF_FIELD_OPTIONAL_FIELD, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                            NULL, NULL, opt);
    if (!fld) {
        mailimf_optional_field_free(opt);
        return -1;
    }
    return field_put(f, fld);
}

/* "phrase <addr>", or "addr" alone when there is no name. */
static int mailbox_value(struct buf *v, const struct mime_addr *a)
{
    struct buf addr;
    int rc = -1;

    buf_init(&addr, ADDR_MAX + 1);
    if (!mime_address_ok(a->email, &addr))
        goto done;
    if (phrase_append(v, a->name) < 0)
        goto done;
    if (v->len == 0)
        rc = buf_append(v, addr.data, addr.len);
    else
        rc = buf_printf(v, " <%s>", addr.data);
done:
    buf_free(&addr);
    return rc;
}

static int list_id_value(struct buf *v, const struct mime_message *m)
{
    const char *id = m->list_id;
    size_t n;

    if (!token_ok(&id, &n) || phrase_append(v, m->list_name) < 0)
        return -1;
    return buf_printf(v, "%s<%.*s>", v->len ? " " : "", (int)n, id);
}

static int unsub_value(struct buf *v, const struct mime_message *m)
{
    const char *p;
    size_t n;

    if (!url_ok(m->unsub_https, "https://", &p, &n) || buf_printf(v, "<%.*s>", (int)n, p) < 0)
        return -1;
    if (!m->unsub_mailto)
        return 0;
    if (!url_ok(m->unsub_mailto, "mailto:", &p, &n))
        return -1;
    return buf_printf(v, ", <%.*s>", (int)n, p);
}

/* Makes the value of header number i of the message; its name in *name. */
static int header_value(const struct mime_message *m, int i, const char **name, struct buf *v)
{
    const char *id = m->message_id;
    char date[64];
    size_t n;

    switch (i) {
    case 0:
        *name = "From";
        return mailbox_value(v, &m->from);
    case 1:
        *name = "To";
        return mailbox_value(v, &m->to);
    case 2:
        *name = "Subject";
        return mime_header_text(v, m->subject);
    case 3:
        *name = "Date";
        return buf_puts(v, timefmt_rfc822(m->date, date, sizeof(date)));
    case 4:
        *name = "Message-ID"; /* the bare id: see field_add */
        if (!token_ok(&id, &n) || !memchr(id, '@', n))
            return -1;
        return buf_append(v, id, n);
    case 5:
        *name = "List-Id";
        return list_id_value(v, m);
    case 6:
        *name = "List-Unsubscribe";
        return unsub_value(v, m);
    case 7:
        *name = "List-Unsubscribe-Post";
        return buf_puts(v, "List-Unsubscribe=One-Click");
    case 8:
        *name = "Auto-Submitted";
        return buf_puts(v, "auto-generated");
    default:
        return -1;
    }
}

#define N_HEADERS 9

static struct mailimf_fields *build_fields(const struct mime_message *m)
{
    struct mailimf_fields *f = mailimf_fields_new_empty();
    struct buf v;
    int ok = f != NULL;

    buf_init(&v, HDR_MAX * 4);
    for (int i = 0; ok && i < N_HEADERS; i++) {
        const char *name = NULL;

        if (m->no_list && i >= 5 && i <= 7) /* List-Id, List-Unsubscribe(-Post) */
            continue;
        buf_reset(&v);
        ok = header_value(m, i, &name, &v) == 0 && field_add(f, name, buf_str(&v)) == 0;
    }
    buf_free(&v);
    if (!ok && f) {
        mailimf_fields_free(f);
        f = NULL;
    }
    return f;
}

/* ---- bodies ----------------------------------------------------------------- */

/* Appends s with every line break (CRLF, CR or LF) made CRLF: the canonical
 * form of text (RFC 2045 §6.8: base64 text must use CRLF). */
static int crlf_append(struct buf *o, const char *s, size_t n)
{
    const char *lf = memchr(s, '\n', n);

    for (size_t i = 0; i < n;) {
        if (lf && lf < s + i)
            lf = memchr(s + i, '\n', n - i);
        size_t next_lf = lf ? (size_t)(lf - s) : n;
        const char *cr = memchr(s + i, '\r', next_lf - i);
        size_t e = cr ? (size_t)(cr - s) : next_lf; /* the next line break, or n */
        if (buf_append(o, s + i, e - i) < 0)
            return -1;
        if (e == n)
            break;
        if (buf_append(o, "\r\n", 2) < 0)
            return -1;
        i = e + 1 + (s[e] == '\r' && e + 1 < n && s[e + 1] == '\n');
    }
    return 0;
}

/* Bytes in quoted-printable: 1 written as themselves but at a line's start
 * ("." and "From "), 2 white space (itself unless it ends the line), 0 "="
 * and the rest (always =XX). */
static const unsigned char qp_class[256] = {
    /* 0x00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0,
    /* 0x10 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x20 */ 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x30 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1,
    /* 0x40 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x50 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x60 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x70 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
    /* 0x80 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x90 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0xA0 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0xB0 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0xC0 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0xD0 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0xE0 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0xF0 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* End of the run of bytes from i, before stop, that QP writes as themselves
 * wherever the line is past its first column. */
static size_t qp_run(const char *s, size_t n, size_t i, size_t stop)
{
    const unsigned char *u = (const unsigned char *)s;

    for (; i < stop; i++) {
        unsigned char k = qp_class[u[i]];
        if (k == 0 || (k == 2 && (i + 1 == n || s[i + 1] == '\r')))
            break;
    }
    return i;
}

/* A lower bound of the quoted-printable length of s[0, n): what cannot be
 * written as itself takes 3 bytes. Cheap, to skip measuring what base64
 * beats anyway (Arabic). */
static size_t qp_floor(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t esc = 0;

    for (size_t i = 0; i < n; i++) /* no branch: the compiler vectorises it */
        esc += (size_t)(u[i] >> 7) + (size_t)(u[i] == '=');
    return n + 2 * esc;
}

/* 1 if byte i of CRLF text s[0, n) may be written as itself in QP. */
static int qp_literal(const char *s, size_t n, size_t i, size_t col)
{
    unsigned char c = (unsigned char)s[i];
    int eol = i + 1 == n || s[i + 1] == '\r';

    if (c == ' ' || c == '\t')
        return !eol; /* white space before a line end would be lost */
    if (c < 33 || c > 126 || c == '=')
        return 0;
    if (col == 0 && c == '.')
        return 0; /* a lone "." line ends SMTP DATA */
    if (col == 0 && c == 'F' && n - i >= 5 && memcmp(s + i, "From ", 5) == 0)
        return 0; /* mbox "From " lines */
    return 1;
}

/*
 * Quoted-printable of CRLF text s[0, n) (RFC 2045 §6.7) written to dst
 * (room for QP_MAX(n) bytes); returns its length. CRLF pairs are line
 * breaks; lines are at most QP_LINE characters, the soft break's "="
 * included; "=XX" is never split. Runs of plain bytes are copied whole:
 * messages are built one per subscriber (SPEC §11).
 */
static size_t qp_encode(const char *s, size_t n, char *dst)
{
    size_t col = 0, o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (col > 0 && col < QP_LINE - 1) {
            /* a run of bytes that are themselves, up to the column where a
             * soft break may be needed: what the byte rules below would do */
            size_t room = QP_LINE - 1 - col;
            size_t j = qp_run(s, n, i, n - i > room ? i + room : n);
            if (j > i) {
                memcpy(dst + o, s + i, j - i);
                o += j - i;
                col += j - i;
                i = j - 1;
                continue;
            }
        }
        if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
            memcpy(dst + o, "\r\n", 2);
            o += 2;
            col = 0;
            i++;
            continue;
        }
        int eol = i + 1 == n || s[i + 1] == '\r';
        int lit = qp_literal(s, n, i, col);
        if (col + (lit ? 1 : 3) > (eol ? QP_LINE : QP_LINE - 1)) {
            memcpy(dst + o, "=\r\n", 3);
            o += 3;
            col = 0;
            lit = qp_literal(s, n, i, col);
        }
        if (lit) {
            dst[o] = (char)c;
        } else {
            dst[o] = '=';
            dst[o + 1] = hex_digits[c >> 4];
            dst[o + 2] = hex_digits[c & 15];
        }
        o += lit ? 1 : 3;
        col += lit ? 1 : 3;
    }
    return o;
}

/* Appends the quoted-printable of CRLF text s[0, n) if it is at most limit
 * bytes long (0), else appends nothing (1); -1 when o cannot take it. */
static int qp_append(struct buf *o, const char *s, size_t n, size_t limit)
{
    if (buf_reserve(o, QP_MAX(n)) < 0)
        return -1;
    size_t qlen = qp_encode(s, n, o->data + o->len);
    if (qlen > limit)
        return 1;
    o->len += qlen;
    o->data[o->len] = '\0';
    return 0;
}

/* Length of the base64 body of n bytes: lines of 76, each ending in CRLF. */
static size_t b64_body_len(size_t n)
{
    size_t chars = b64_len(n), lines = (chars + 75) / 76;

    return chars + 2 * (lines ? lines : 1);
}

/* Appends the base64 body of s[0, n) (RFC 2045 §6.8), blen bytes long: lines
 * of 76 characters (57 bytes) ending in CRLF. */
static int b64_body_append(struct buf *o, const char *s, size_t n, size_t blen)
{
    const unsigned char *u = (const unsigned char *)s;
    char *d;

    if (buf_reserve(o, blen) < 0)
        return -1;
    d = o->data + o->len;
    for (size_t i = 0; i < n || i == 0; i += 57) {
        size_t k = n - i < 57 ? n - i : 57, full = k / 3 * 3;
        for (size_t j = 0; j < full; j += 3, d += 4) {
            unsigned v = (unsigned)u[i + j] << 16 | (unsigned)u[i + j + 1] << 8 | u[i + j + 2];
            d[0] = b64_digits[v >> 18];
            d[1] = b64_digits[(v >> 12) & 63];
            d[2] = b64_digits[(v >> 6) & 63];
            d[3] = b64_digits[v & 63];
        }
        if (k > full) { /* the last 1 or 2 bytes, padded */
            unsigned v =
                (unsigned)u[i + full] << 16 | (k - full > 1 ? (unsigned)u[i + full + 1] << 8 : 0);
            d[0] = b64_digits[v >> 18];
            d[1] = b64_digits[(v >> 12) & 63];
            d[2] = k - full > 1 ? b64_digits[(v >> 6) & 63] : '=';
            d[3] = '=';
            d += 4;
        }
        *d++ = '\r';
        *d++ = '\n';
    }
    o->len += blen;
    o->data[o->len] = '\0';
    return 0;
}

/*
 * Appends body[0, len), line breaks made CRLF, in the shorter of
 * quoted-printable and base64; *mech says which.
 */
static int encode_body(struct buf *enc, const char *body, size_t len, int *mech)
{
    struct buf crlf;
    int rc = -1;

    buf_init(&crlf, len * 2 + 16);
    if (crlf_append(&crlf, body, len) == 0) {
        const char *s = buf_str(&crlf);
        size_t n = crlf.len, blen = b64_body_len(n);
        rc = qp_floor(s, n) > blen ? 1 : qp_append(enc, s, n, blen);
        *mech = MAILMIME_MECHANISM_QUOTED_PRINTABLE;
        if (rc == 1) {
            *mech = MAILMIME_MECHANISM_BASE64;
            rc = b64_body_append(enc, s, n, blen);
        }
    }
    buf_free(&crlf);
    return rc;
}

/*
 * The encoded bodies do not go through libetpan's writer, which would copy
 * them a byte at a time: each part holds a placeholder, replaced by its body
 * when the message is copied out. No header can hold one (headers carry no
 * control characters).
 */
#define PH_TEXT "\x01nashra-text-part\x01"
#define PH_HTML "\x01nashra-html-part\x01"

/*
 * One text part: "type; charset=utf-8", its body encoded into *keep, and the
 * placeholder ph in its place in the tree.
 */
static struct mailmime *build_part(const char *type, const char *body, size_t len, struct buf *keep,
                                   const char *ph)
{
    struct mailmime_content *content = NULL;
    struct mailmime_fields *fields = NULL;
    struct mailmime *part = NULL;
    struct mailmime_data *data;
    int mech;

    if (encode_body(keep, body, len, &mech) < 0)
        return NULL;
    content = mailmime_content_new_with_str(type);
    fields = content ? mailmime_fields_new_encoding(mech) : NULL;
    part = fields ? mailmime_new_empty(content, fields) : NULL;
    if (!part)
        goto fail;
    content = NULL;
    fields = NULL;
    data = mailmime_data_new(MAILMIME_DATA_TEXT, mech, 1, ph, strlen(ph), NULL);
    if (!data)
        goto fail;
    part->mm_data.mm_single = data;
    return part;
fail:
    if (part)
        mailmime_free(part);
    if (fields)
        mailmime_fields_free(fields);
    if (content)
        mailmime_content_free(content);
    return NULL;
}

/* Replaces libetpan's random boundary by "=_nashra_" and a hash of seed. */
static int set_boundary(struct mailmime *mp, const char *seed)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    char b[40];

    for (const unsigned char *p = (const unsigned char *)seed; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    snprintf(b, sizeof(b), "=_nashra_%016llx", (unsigned long long)h);
    for (clistiter *it = clist_begin(mp->mm_content_type->ct_parameters); it; it = clist_next(it)) {
        struct mailmime_parameter *p = clist_content(it);
        if (strcasecmp(p->pa_name, "boundary") == 0) {
            char *v = strdup(b);
            if (!v)
                return -1;
            free(p->pa_value);
            p->pa_value = v;
            return 0;
        }
    }
    return -1;
}

/* Adds a part to the multipart (freed here when it cannot be added). */
static int add_part(struct mailmime *mp, struct mailmime *part)
{
    if (!part)
        return -1;
    if (mailmime_smart_add_part(mp, part) != MAILIMF_NO_ERROR) {
        mailmime_free(part);
        return -1;
    }
    return 0;
}

/* The multipart/alternative: text/plain first, then text/html (RFC 2046
 * §5.1.4: the preferred, richest form last). */
static struct mailmime *build_body(const struct mime_message *m, struct buf *kt, struct buf *kh)
{
    struct mailmime *mp = mailmime_multiple_new("multipart/alternative");

    if (!mp)
        return NULL;
    if (set_boundary(mp, m->message_id) < 0 ||
        add_part(mp, build_part("text/plain; charset=utf-8", m->text, m->text_len, kt, PH_TEXT)) <
            0 ||
        add_part(mp, build_part("text/html; charset=utf-8", m->html, m->html_len, kh, PH_HTML)) <
            0) {
        mailmime_free(mp);
        return NULL;
    }
    return mp;
}

static int body_ok(const char *s, size_t n)
{
    return (s || n == 0) && (n == 0 || utf8_valid(s, n, NULL));
}

/*
 * Appends libetpan's output less the space it leaves at the end of a header
 * line when it folds before a value's first word ("List-Unsubscribe: " CRLF
 * " <https://...>"): written "List-Unsubscribe:" CRLF, as in RFC 8058 §8;
 * and with the two parts' bodies in place of their placeholders.
 */
static int copy_out(struct buf *out, const char *s, size_t n, const struct buf *kt,
                    const struct buf *kh)
{
    const char *end = memmem(s, n, "\r\n\r\n", 4);
    size_t head = end ? (size_t)(end - s) : 0, run = 0;
    const char *ph[2] = {PH_TEXT, PH_HTML};
    const struct buf *body[2] = {kt, kh};

    if (buf_reserve(out, n + kt->len + kh->len) < 0)
        return -1;
    for (size_t i = 0; i < head; i++) {
        if (s[i] == ' ' && s[i + 1] == '\r') {
            if (buf_append(out, s + run, i - run) < 0)
                return -1;
            run = i + 1;
        }
    }
    for (int k = 0; k < 2; k++) {
        const char *at = memmem(s + run, n - run, ph[k], strlen(ph[k]));
        if (!at)
            return -1;
        if (buf_append(out, s + run, (size_t)(at - s) - run) < 0 ||
            buf_append(out, buf_str(body[k]), body[k]->len) < 0)
            return -1;
        run = (size_t)(at - s) + strlen(ph[k]);
    }
    return buf_append(out, s + run, n - run);
}

/* Writes the message tree to out through libetpan's memory writer, the
 * bodies kt and kh spliced in. */
static int write_message(struct mailmime *msg, struct buf *out, const struct buf *kt,
                         const struct buf *kh)
{
    MMAPString *s = mmap_string_new("");
    int col = 0, rc = -1;

    if (!s)
        return -1;
    if (mailmime_write_mem(s, &col, msg) == MAILIMF_NO_ERROR)
        rc = copy_out(out, s->str, s->len, kt, kh);
    mmap_string_free(s);
    return rc;
}

int mime_build(const struct mime_message *m, struct buf *out)
{
    struct buf kt, kh;
    struct mailimf_fields *fields = NULL;
    struct mailmime *mp = NULL, *msg = NULL;
    int rc = -1;

    if (!m || !out || !body_ok(m->text, m->text_len) || !body_ok(m->html, m->html_len) ||
        !m->message_id)
        return -1;
    buf_init(&kt, QP_MAX(m->text_len * 2) + 64); /* room to try QP on CRLF text */
    buf_init(&kh, QP_MAX(m->html_len * 2) + 64);
    fields = build_fields(m);
    mp = fields ? build_body(m, &kt, &kh) : NULL;
    msg = mp ? mailmime_new_message_data(mp) : NULL;
    if (!msg)
        goto done;
    mp = NULL;
    mailmime_set_imf_fields(msg, fields);
    fields = NULL;
    rc = write_message(msg, out, &kt, &kh);
done:
    if (msg)
        mailmime_free(msg);
    if (mp)
        mailmime_free(mp);
    if (fields)
        mailimf_fields_free(fields);
    buf_free(&kt);
    buf_free(&kh);
    return rc;
}
