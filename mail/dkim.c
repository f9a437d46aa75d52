/*
 * dkim: DKIM signing (see dkim.h), RFC 6376 with OpenSSL's EVP interface.
 * Relaxed header canonicalization (§3.4.2): names lower-cased, lines
 * unfolded, runs of white space made one space, none around the value.
 * Relaxed body canonicalization (§3.4.4): runs of white space made one
 * space, none at a line's end, no empty lines at the end, CRLF line ends.
 * The signature's own header is hashed with an empty b= last, then the
 * value is written after "b=", folded only where RFC 6376 allows white space
 * (between tags, around the ':' of h=, inside the base64 of b=), so the
 * verifier's header with b= emptied is the one that was signed.
 */
#include "dkim.h"

#include "../lib/pkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define MIN_BITS      1024
#define LINE_MAX_COLS 76
#define HDR_MAX       256 /* header fields looked at */

struct dkim {
    char *domain, *selector;
    EVP_PKEY *key;
};

static const char *const signed_names[] = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
};

/* ---- key ------------------------------------------------------------------------ */

static int name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* The key, its errors named after the config key. */
static EVP_PKEY *key_read(const char *path, struct diag *err)
{
    struct diag why = {0};
    EVP_PKEY *key = pkey_load_private(path, MIN_BITS, &why);
    if (!key)
        diag_set(err, 0, 0, "mail.dkim.key_file: %s", why.msg);
    return key;
}

struct dkim *dkim_load(const char *domain, const char *selector, const char *key_file,
                       struct diag *err)
{
    if (!name_ok(domain) || !name_ok(selector) || !key_file) {
        diag_set(err, 0, 0, "mail.dkim: domain and selector must be host names, key_file set");
        return NULL;
    }
    struct dkim *d = calloc(1, sizeof *d);
    if (!d || !(d->domain = strdup(domain)) || !(d->selector = strdup(selector))) {
        diag_set(err, 0, 0, "out of memory");
        dkim_free(d);
        return NULL;
    }
    if (!(d->key = key_read(key_file, err))) {
        dkim_free(d);
        return NULL;
    }
    return d;
}

void dkim_free(struct dkim *d)
{
    if (!d)
        return;
    free(d->domain);
    free(d->selector);
    EVP_PKEY_free(d->key);
    free(d);
}

/* ---- canonicalization -------------------------------------------------------------- */

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* Appends the relaxed form of the header field p[0..n) (its CRLF left off):
 * "name:value", without the CRLF. */
static int canon_header(struct buf *out, const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return -1;
    const char *ne = colon;
    while (ne > p && is_wsp(ne[-1]))
        ne--;
    for (const char *q = p; q < ne; q++) {
        char c = *q;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (buf_putc(out, c) < 0)
            return -1;
    }
    if (buf_putc(out, ':') < 0)
        return -1;
    int space = 0, any = 0;
    for (const char *q = colon + 1; q < p + n; q++) {
        if (*q == '\r' || *q == '\n' || is_wsp(*q)) {
            space = 1; /* unfolded: CRLF dropped, the WSP after it kept */
            continue;
        }
        if (space && any && buf_putc(out, ' ') < 0)
            return -1;
        space = 0;
        any = 1;
        if (buf_putc(out, *q) < 0)
            return -1;
    }
    return 0;
}

/* SHA-256 of the relaxed form of body b[0..n) into the digest context. */
static int hash_body(EVP_MD_CTX *ctx, const char *b, size_t n)
{
    struct buf line;
    size_t empty = 0; /* empty lines held back: only written before a non-empty one */
    int rc = 0;
    buf_init(&line, 0);
    for (size_t i = 0; i < n && rc == 0;) {
        const char *e = NULL;
        for (size_t j = i; j + 1 < n; j++)
            if (b[j] == '\r' && b[j + 1] == '\n') {
                e = b + j;
                break;
            }
        size_t end = e ? (size_t)(e - b) : n;
        buf_reset(&line);
        int space = 0;
        for (size_t j = i; j < end && rc == 0; j++) {
            if (is_wsp(b[j])) {
                space = 1;
                continue;
            }
            if (space)
                rc = buf_putc(&line, ' ');
            space = 0;
            if (rc == 0)
                rc = buf_putc(&line, b[j]);
        }
        /* WSP at the line's end is dropped (space left pending). */
        if (rc == 0 && line.len == 0) {
            empty++;
        } else if (rc == 0) {
            for (; empty > 0 && rc == 0; empty--)
                rc = EVP_DigestUpdate(ctx, "\r\n", 2) == 1 ? 0 : -1;
            if (rc == 0 && (EVP_DigestUpdate(ctx, line.data, line.len) != 1 ||
                            EVP_DigestUpdate(ctx, "\r\n", 2) != 1))
                rc = -1;
        }
        i = e ? end + 2 : n;
    }
    buf_free(&line);
    return rc;
}

/* ---- the header ------------------------------------------------------------------ */

struct folder {
    struct buf *out;
    size_t col;
};

/* Appends atom, after a space (sep) or nothing, or after CRLF SP when the
 * line would go past 76. */
static int fold_put(struct folder *f, const char *atom, int sep)
{
    size_t n = strlen(atom);
    if (f->col + (size_t)sep + n > LINE_MAX_COLS && f->col > 1) {
        if (buf_puts(f->out, "\r\n ") < 0)
            return -1;
        f->col = 1;
    } else if (sep) {
        if (buf_putc(f->out, ' ') < 0)
            return -1;
        f->col++;
    }
    if (buf_puts(f->out, atom) < 0)
        return -1;
    f->col += n;
    return 0;
}

static int b64(struct buf *out, const unsigned char *p, size_t n)
{
    size_t need = 4 * ((n + 2) / 3);
    if (buf_reserve(out, need + 1) < 0)
        return -1;
    int w = EVP_EncodeBlock((unsigned char *)out->data + out->len, p, (int)n);
    if (w < 0 || (size_t)w != need)
        return -1;
    out->len += need;
    out->data[out->len] = '\0';
    return 0;
}

struct field {
    size_t off, len; /* one header field, its CRLF left off */
    int used;
};

int dkim_sign(const struct dkim *d, int64_t now, struct buf *msg)
{
    if (!d || !msg || !msg->data)
        return -1;
    const char *m = msg->data;
    size_t n = msg->len, hend = 0, body = n;
    /* The header section: up to the first empty line. */
    if (n >= 2 && m[0] == '\r' && m[1] == '\n')
        return -1;
    for (size_t i = 0; i + 3 < n; i++)
        if (m[i] == '\r' && m[i + 1] == '\n' && m[i + 2] == '\r' && m[i + 3] == '\n') {
            hend = i + 2;
            body = i + 4;
            break;
        }
    if (!hend)
        return -1;

    struct field *fl = calloc(HDR_MAX, sizeof *fl);
    size_t nf = 0;
    if (!fl)
        return -1;
    for (size_t i = 0; i < hend;) {
        size_t j = i;
        for (;;) { /* to the CRLF not followed by WSP */
            while (j + 1 < hend && !(m[j] == '\r' && m[j + 1] == '\n'))
                j++;
            if (j + 2 < hend && is_wsp(m[j + 2])) {
                j += 2;
                continue;
            }
            break;
        }
        if (nf == HDR_MAX || j + 1 >= hend || is_wsp(m[i])) {
            free(fl);
            return -1;
        }
        fl[nf++] = (struct field){.off = i, .len = j - i};
        i = j + 2;
    }

    EVP_MD_CTX *bctx = EVP_MD_CTX_new(), *sctx = EVP_MD_CTX_new();
    struct buf hdr, canon, hlist;
    unsigned char bh[EVP_MAX_MD_SIZE], *sig = NULL;
    unsigned bhlen = 0;
    size_t siglen = 0;
    char tmp[600];
    int rc = -1, have_from = 0;
    buf_init(&hdr, 0);
    buf_init(&canon, 0);
    buf_init(&hlist, 0);
    if (!bctx || !sctx)
        goto out;

    /* bh= */
    if (EVP_DigestInit_ex(bctx, EVP_sha256(), NULL) != 1 ||
        hash_body(bctx, m + body, n - body) < 0 || EVP_DigestFinal_ex(bctx, bh, &bhlen) != 1)
        goto out;

    /* The signed fields, each name's last instance (RFC 6376 §5.4.2), in
     * canon, their names in hlist. */
    for (size_t k = 0; k < sizeof signed_names / sizeof *signed_names; k++) {
        const char *name = signed_names[k];
        size_t nl = strlen(name);
        for (size_t f = nf; f-- > 0;) {
            const char *p = m + fl[f].off;
            size_t q = 0;
            while (q < fl[f].len && p[q] != ':')
                q++;
            size_t e = q;
            while (e > 0 && is_wsp(p[e - 1]))
                e--;
            if (fl[f].used || q == fl[f].len || e != nl || strncasecmp(p, name, nl) != 0)
                continue;
            fl[f].used = 1;
            if (k == 0)
                have_from = 1;
            if (canon_header(&canon, p, fl[f].len) < 0 || buf_puts(&canon, "\r\n") < 0 ||
                (hlist.len && buf_putc(&hlist, ':') < 0) || buf_puts(&hlist, name) < 0)
                goto out;
            break;
        }
    }
    if (!have_from)
        goto out;

    /* The DKIM-Signature header up to "b=". */
    struct folder fo = {.out = &hdr, .col = 0};
    if (fold_put(&fo, "DKIM-Signature:", 0) < 0 || fold_put(&fo, "v=1;", 1) < 0 ||
        fold_put(&fo, "a=rsa-sha256;", 1) < 0 || fold_put(&fo, "c=relaxed/relaxed;", 1) < 0)
        goto out;
    snprintf(tmp, sizeof tmp, "d=%s;", d->domain);
    if (fold_put(&fo, tmp, 1) < 0)
        goto out;
    snprintf(tmp, sizeof tmp, "s=%s;", d->selector);
    if (fold_put(&fo, tmp, 1) < 0)
        goto out;
    snprintf(tmp, sizeof tmp, "t=%lld;", (long long)now);
    if (fold_put(&fo, tmp, 1) < 0)
        goto out;
    /* h=: folded only before a ':' (FWS is allowed there). */
    {
        const char *p = hlist.data;
        int first = 1;
        while (*p) {
            const char *c = strchr(p + 1, ':');
            size_t len = c ? (size_t)(c - p) : strlen(p);
            snprintf(tmp, sizeof tmp, "%s%.*s%s", first ? "h=" : "", (int)len, p, c ? "" : ";");
            if (fold_put(&fo, tmp, first) < 0)
                goto out;
            first = 0;
            p += len;
        }
    }
    {
        struct buf t;
        buf_init(&t, 0);
        int r = buf_puts(&t, "bh=") < 0 || b64(&t, bh, bhlen) < 0 || buf_putc(&t, ';') < 0 ||
                fold_put(&fo, t.data, 1) < 0;
        buf_free(&t);
        if (r)
            goto out;
    }
    if (fold_put(&fo, "b=", 1) < 0)
        goto out;

    /* The signature: the fields, then this header with b= empty, no CRLF. */
    if (canon_header(&canon, hdr.data, hdr.len) < 0)
        goto out;
    if (EVP_DigestSignInit(sctx, NULL, EVP_sha256(), NULL, d->key) != 1 ||
        EVP_DigestSign(sctx, NULL, &siglen, (const unsigned char *)canon.data, canon.len) != 1 ||
        !(sig = malloc(siglen)) ||
        EVP_DigestSign(sctx, sig, &siglen, (const unsigned char *)canon.data, canon.len) != 1)
        goto out;

    /* b=, folded anywhere inside the base64. */
    {
        struct buf t;
        buf_init(&t, 0);
        if (b64(&t, sig, siglen) < 0) {
            buf_free(&t);
            goto out;
        }
        int r = 0;
        for (size_t i = 0; i < t.len && r == 0;) {
            size_t room = fo.col < LINE_MAX_COLS ? LINE_MAX_COLS - fo.col : 0;
            if (room == 0) {
                r = buf_puts(&hdr, "\r\n ");
                fo.col = 1;
                continue;
            }
            size_t take = t.len - i < room ? t.len - i : room;
            r = buf_append(&hdr, t.data + i, take);
            fo.col += take;
            i += take;
        }
        buf_free(&t);
        if (r < 0 || buf_puts(&hdr, "\r\n") < 0)
            goto out;
    }

    /* In front of the message, within msg's cap. */
    {
        struct buf all;
        buf_init(&all, msg->cap);
        if (buf_append(&all, hdr.data, hdr.len) < 0 || buf_append(&all, msg->data, msg->len) < 0) {
            buf_free(&all);
            goto out;
        }
        buf_free(msg);
        *msg = all;
    }
    rc = 0;
out:
    if (rc < 0)
        ERR_clear_error();
    free(sig);
    free(fl);
    EVP_MD_CTX_free(bctx);
    EVP_MD_CTX_free(sctx);
    buf_free(&hdr);
    buf_free(&canon);
    buf_free(&hlist);
    return rc;
}
