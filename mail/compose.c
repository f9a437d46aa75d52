/*
 * compose: a whole newsletter message (see compose.h). The pieces: the
 * template (mail/newsletter), the text part made from the HTML
 * (mail/html2text), the headers and MIME (mail/mime).
 */
#include "compose.h"

#include <jansson.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../lib/mustache.h"
#include "../lib/text.h"
#include "../lib/timefmt.h"
#include "dkim.h"
#include "html2text.h"
#include "mime.h"

#define PART_MAX    (32u << 20) /* one rendered part */
#define SUBJECT_CAP 8192

int composer_init(struct composer *c, const struct config *cfg, const struct newsletter *nl,
                  const unsigned char key[32])
{
    const char *from = cfg->mail.from ? cfg->mail.from : "news@localhost";
    const char *lt = strrchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->nl = nl;
    memcpy(c->key, key, 32);
    if (lt && gt) { /* Name <addr> */
        const char *b = from, *e = lt;
        while (b < e && (*b == ' ' || *b == '"'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '"'))
            e--;
        c->from_name = strndup(b, (size_t)(e - b));
        c->from_addr = strndup(lt + 1, (size_t)(gt - lt - 1));
    } else {
        c->from_name = strdup("");
        c->from_addr = strdup(from);
    }
    const char *at = c->from_addr ? strrchr(c->from_addr, '@') : NULL;
    c->domain = strdup(at ? at + 1 : "localhost");
    if (!c->from_name || !c->from_addr || !c->domain) {
        composer_free(c);
        return -1;
    }
    return 0;
}

void composer_free(struct composer *c)
{
    free(c->from_name);
    free(c->from_addr);
    free(c->domain);
    memset(c, 0, sizeof *c);
}

/*
 * The message around its three rendered pieces: the headers, links and
 * identifiers of one subscriber, then MIME (and DKIM). token: the
 * subscriber's unsubscribe token.
 */
static int assemble(const struct composer *c, size_t li, const struct newsletter_to *to,
                    int64_t issue, const char *token, const struct buf *subject,
                    const struct buf *html, const struct buf *text, struct buf *msg,
                    struct buf *verp)
{
    const struct config_list *l = &c->cfg->lists[li];
    struct buf list_id, unsub, mid, mailto;
    int rc;
    buf_init(&list_id, 8192);
    buf_init(&unsub, 8192);
    buf_init(&mid, 8192);
    buf_init(&mailto, 8192);
    rc = buf_printf(&list_id, "%s.%s", l->id, c->domain);
    if (rc == 0)
        rc = buf_printf(&unsub, "%s/unsubscribe?t=%s", c->cfg->site.url, token);
    if (rc == 0)
        rc = buf_printf(&mailto, "mailto:%s?subject=unsubscribe%%20%s", c->from_addr, token);
    /* One Message-ID a delivery: a resend after a crash carries the same
     * one, so a receiver can drop the copy. A test send (issue 0) gets a
     * fresh one. Short enough for one line of 76 (mail/mime.h). */
    if (rc == 0)
        rc = issue
                 ? buf_printf(&mid, "%lld.%lld@%s", (long long)issue, (long long)to->id, c->domain)
                 : buf_printf(&mid, "test.%lld.%ld@%s", (long long)timefmt_now(), (long)getpid(),
                              c->domain);
    if (rc == 0) { /* bounces+ISSUE.SUBSCRIBER.MAC: mail/bounces reads it back */
        char local[96];
        newsletter_verp_local(c->key, issue, to->id, local);
        rc = buf_printf(verp, "%s@%s", local, c->domain);
    }
    if (rc == 0) {
        struct mime_message m = {
            .from = {.name = c->from_name, .email = c->from_addr},
            .to = {.name = to->name, .email = to->email},
            .subject = buf_str(subject),
            .date = timefmt_now(),
            .message_id = buf_str(&mid),
            .list_id = buf_str(&list_id),
            .list_name = l->name ? l->name : l->id,
            .unsub_https = buf_str(&unsub),
            .unsub_mailto = buf_str(&mailto),
            .html = buf_str(html),
            .html_len = html->len,
            .text = buf_str(text),
            .text_len = text->len,
        };
        rc = mime_build(&m, msg);
        if (rc == 0 && c->dkim)
            rc = dkim_sign(c->dkim, m.date, msg);
    }
    buf_free(&list_id);
    buf_free(&unsub);
    buf_free(&mid);
    buf_free(&mailto);
    return rc;
}

int compose(const struct composer *c, size_t li, struct post *const *posts, size_t nposts,
            int digest, const struct newsletter_to *to, int64_t issue, struct buf *msg,
            struct buf *verp, struct buf *html_out)
{
    const struct config_list *l = &c->cfg->lists[li];
    struct buf subject, html, text;
    char token[96];
    buf_init(&subject, SUBJECT_CAP);
    buf_init(&html, PART_MAX);
    buf_init(&text, PART_MAX);
    newsletter_token(c->key, "unsubscribe", l->id, to->id, to->email, token);
    int rc = newsletter_render(c->nl, li, posts, nposts, digest, to, &subject, &html);
    if (rc == 0)
        rc = html_to_text(buf_str(&html), html.len, &text);
    if (rc == 0)
        rc = assemble(c, li, to, issue, token, &subject, &html, &text, msg, verp);
    if (rc == 0 && html_out)
        rc = buf_append(html_out, buf_str(&html), html.len);
    buf_free(&subject);
    buf_free(&html);
    buf_free(&text);
    return rc;
}

/* --- the per-issue cache ------------------------------------------------------
 *
 * Rendering the template and making its text part cost most of a message,
 * and only the subscriber's values differ between two messages of an issue.
 * So an issue is rendered once with placeholders in place of those values
 * (the fields: 0 the unsubscribe token, 1 the address, 2 the name, then the
 * CSV columns), each "MARK &<nonce><2 digits> END" with MARK U+E000 and END
 * U+E001. {{var}} writes one as "MARK &amp;..." and {{{var}}} as "MARK &...",
 * so the HTML tells which escaping each place wants; libxml2 reads both as
 * "MARK &..." for the text part, whose paragraphs holding one are recorded
 * (html_to_text_rec) to be wrapped again with the real values. A field that
 * is empty renders as empty, not as a placeholder (a section on it must see
 * it false, and an empty paragraph writes nothing), so the cache keeps one
 * rendering per shape: which fields a subscriber has, and which are empty.
 *
 * A message made here is byte for byte the one compose() makes (the unit
 * tests compare them); whenever that cannot be promised, compose() makes it:
 * a value that is not single-spaced text without controls, markup where the
 * template writes it raw, a template whose text part depends on a
 * placeholder itself (html2text's rec->unsafe), too many shapes or fields.
 */

#define MARK     "\xee\x80\x80"
#define MARK_END "\xee\x80\x81"
#define NONCE    8 /* decimal digits */

static void shape_free(struct compose_shape *sh)
{
    free(sh->key);
    buf_free(&sh->subject);
    buf_free(&sh->html);
    buf_free(&sh->text);
    h2t_rec_free(&sh->rec);
    memset(sh, 0, sizeof *sh);
}

void compose_cache_init(struct compose_cache *cc)
{
    memset(cc, 0, sizeof *cc);
}

void compose_cache_free(struct compose_cache *cc)
{
    for (size_t i = 0; i < cc->nshapes; i++)
        shape_free(&cc->shapes[i]);
    memset(cc, 0, sizeof *cc);
}

/* A subscriber's fields (see above): values[i], names[i] for the CSV
 * columns; the extra object is kept in *obj (the caller decrefs it). -1 when
 * they do not fit the cache (too many, not strings, not valid JSON). */
static int fields_of(const struct newsletter_to *to, const char *token, json_t **obj,
                     const char *names[COMPOSE_FIELDS], const char *values[COMPOSE_FIELDS],
                     size_t *n)
{
    json_error_t je;
    *obj = NULL;
    names[0] = "";
    values[0] = token;
    names[1] = "";
    values[1] = to->email ? to->email : "";
    names[2] = "";
    values[2] = to->name ? to->name : "";
    *n = 3;
    if (!to->extra || !*to->extra || !strcmp(to->extra, "{}"))
        return 0;
    *obj = json_loads(to->extra, 0, &je); /* not inside json_is_object: it reads twice */
    if (!json_is_object(*obj))
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach(*obj, k, v)
    {
        if (!strcmp(k, "email") || !strcmp(k, "name"))
            continue; /* the subscriber's own win (newsletter's context) */
        if (!json_is_string(v) || *n == COMPOSE_FIELDS)
            return -1;
        names[*n] = k;
        values[(*n)++] = json_string_value(v);
    }
    return 0;
}

/* 1 for a value the cache can place: UTF-8, no controls or NBSP, single
 * spaces and none at the ends, no placeholder marks. */
static int plain_value(const char *v)
{
    size_t n = strlen(v);
    if (n && (v[0] == ' ' || v[n - 1] == ' '))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < 0x20 || ch == 0x7f || (ch == ' ' && v[i + 1] == ' '))
            return 0;
        if ((ch == 0xc2 && (unsigned char)v[i + 1] == 0xa0) ||
            (ch == 0xee && (unsigned char)v[i + 1] == 0x80 &&
             ((unsigned char)v[i + 2] == 0x80 || (unsigned char)v[i + 2] == 0x81)))
            return 0;
    }
    return utf8_valid(v, n, NULL);
}

/* The shape's key: each field's name and whether it is empty. */
static char *shape_key(const char *names[], const char *values[], size_t n)
{
    struct buf k;
    buf_init(&k, 1u << 16);
    for (size_t i = 0; i < n; i++)
        if (buf_printf(&k, "%s=%c;", names[i], *values[i] ? '1' : '0') < 0) {
            buf_free(&k);
            return NULL;
        }
    char *key = strdup(buf_str(&k));
    buf_free(&k);
    return key;
}

/*
 * Reads a placeholder at s (which starts with MARK): its field in *field,
 * whether it was escaped in *escaped; the bytes it takes, or 0 when it is
 * not one of this cache's.
 */
static size_t placeholder(const struct compose_cache *cc, const char *s, size_t n, size_t *field,
                          int *escaped)
{
    size_t m = strlen(MARK), i = m;
    if (n < i + 1 || s[i] != '&')
        return 0;
    i++;
    *escaped = n >= i + 4 && !memcmp(s + i, "amp;", 4);
    if (*escaped)
        i += 4;
    if (n < i + NONCE + 2 + strlen(MARK_END) || memcmp(s + i, cc->nonce, NONCE))
        return 0;
    i += NONCE;
    if (s[i] < '0' || s[i] > '9' || s[i + 1] < '0' || s[i + 1] > '9')
        return 0;
    *field = (size_t)(s[i] - '0') * 10 + (size_t)(s[i + 1] - '0');
    i += 2;
    if (memcmp(s + i, MARK_END, strlen(MARK_END)))
        return 0;
    return i + strlen(MARK_END);
}

/* Walks the placeholders of s[0, n): flags (when not NULL) gets, for each
 * field, 1 if written escaped and 2 if written raw; out (when not NULL) gets
 * s with each placeholder replaced by its value, escaped as it was. -1 for
 * a mark that is no placeholder of this cache, or no memory. */
static int fill(const struct compose_cache *cc, const char *s, size_t n, const char *const *values,
                size_t nvalues, unsigned char *flags, struct buf *out)
{
    size_t run = 0;
    for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), MARK, strlen(MARK)));) {
        size_t field, len;
        int escaped;
        if (!(len = placeholder(cc, p, n - (size_t)(p - s), &field, &escaped)) || field >= nvalues)
            return -1;
        if (flags)
            flags[field] |= escaped ? 1 : 2;
        if (out) {
            const char *v = values[field];
            if (buf_append(out, s + run, (size_t)(p - s) - run) < 0 ||
                (escaped ? mustache_escape(out, v, strlen(v)) : buf_puts(out, v)) < 0)
                return -1;
        }
        p += len;
        run = (size_t)(p - s);
    }
    return out ? buf_append(out, s + run, n - run) : 0;
}

/* Renders the shape of these fields with placeholders; sh->slow when the
 * cache cannot serve it. 0, or -1 (no memory, a cap). */
static int shape_make(const struct composer *c, struct compose_cache *cc, size_t li,
                      struct post *const *posts, size_t nposts, int digest,
                      const struct newsletter_to *to, const char *names[], const char *values[],
                      size_t n, struct compose_shape *sh)
{
    char ph[COMPOSE_FIELDS][64];
    const char *pv[COMPOSE_FIELDS];
    struct buf unsub;
    json_t *extra = json_object();
    char *extra_text = NULL;
    int rc = -1;

    buf_init(&unsub, 8192);
    buf_init(&sh->subject, SUBJECT_CAP);
    buf_init(&sh->html, PART_MAX);
    buf_init(&sh->text, PART_MAX);
    for (size_t i = 0; i < n; i++) {
        snprintf(ph[i], sizeof ph[i], MARK "&%s%02zu" MARK_END, cc->nonce, i);
        pv[i] = *values[i] ? ph[i] : "";
        if (i >= 3 && json_object_set_new(extra, names[i], json_string(pv[i])) < 0)
            goto done;
    }
    if (!extra || !(extra_text = json_dumps(extra, JSON_COMPACT)) ||
        buf_printf(&unsub, "%s/unsubscribe?t=%s", c->cfg->site.url, pv[0]) < 0)
        goto done;
    struct newsletter_to t = {.id = to->id,
                              .email = pv[1],
                              .name = pv[2],
                              .extra = extra_text,
                              .unsub_url = buf_str(&unsub)};
    if (newsletter_render(c->nl, li, posts, nposts, digest, &t, &sh->subject, &sh->html) < 0)
        goto done;
    sh->rec.mark = MARK;
    if (html_to_text_rec(buf_str(&sh->html), sh->html.len, &sh->rec, &sh->text) < 0)
        goto done;
    rc = 0;
    memset(sh->flags, 0, sizeof sh->flags);
    unsigned char subj[COMPOSE_FIELDS] = {0}, url[COMPOSE_FIELDS] = {0};
    if (sh->rec.unsafe || fill(cc, buf_str(&sh->html), sh->html.len, pv, n, sh->flags, NULL) ||
        fill(cc, buf_str(&sh->subject), sh->subject.len, pv, n, subj, NULL) ||
        fill(cc, buf_str(&sh->text), sh->text.len, pv, n, NULL, NULL)) {
        sh->slow = 1;
        goto done;
    }
    for (size_t i = 0; i < sh->rec.nurls; i++)
        if (fill(cc, sh->rec.urls[i], strlen(sh->rec.urls[i]), pv, n, url, NULL)) {
            sh->slow = 1;
            goto done;
        }
    for (size_t i = 0; i < n; i++)
        sh->flags[i] |= (subj[i] ? 4 : 0) | (url[i] ? 8 : 0);
done:
    json_decref(extra);
    free(extra_text);
    buf_free(&unsub);
    return rc;
}

/* 1 if these values can be placed where sh's template puts them. */
static int values_fit(const struct compose_shape *sh, const char *values[], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = values[i];
        if (!*v || !sh->flags[i])
            continue;
        if (!plain_value(v))
            return 0;
        if ((sh->flags[i] & 2) && strpbrk(v, "&<>\"'"))
            return 0; /* markup written raw: it would be HTML, not text */
        if ((sh->flags[i] & 4) && strchr(v, '&'))
            return 0; /* the subject undoes escaping: "&amp;" would read "&" */
        if ((sh->flags[i] & 8) &&
            (strchr(v, ' ') || *v == '#' || !strncasecmp(v, "javascript:", 11)))
            return 0; /* in a link target: spaces written %20, such targets dropped */
    }
    return 1;
}

/* The text part of sh with values: its recorded paragraphs wrapped again. */
static int text_of(const struct compose_cache *cc, const struct compose_shape *sh,
                   const char *values[], size_t n, struct buf *out)
{
    const char *t = buf_str(&sh->text);
    size_t at = 0;
    struct buf para;
    int rc = 0;
    buf_init(&para, PART_MAX);
    for (size_t i = 0; rc == 0 && i < sh->rec.n; i++) {
        const struct h2t_region *r = &sh->rec.r[i];
        buf_reset(&para);
        rc = buf_append(out, t + at, r->start - at);
        if (rc == 0)
            rc = fill(cc, r->para, r->len, values, n, NULL, &para);
        if (rc == 0)
            rc = h2t_region_write(r, buf_str(&para), para.len, out);
        at = r->end;
    }
    if (rc == 0)
        rc = buf_append(out, t + at, sh->text.len - at);
    buf_free(&para);
    return rc;
}

int compose_cached(const struct composer *c, struct compose_cache *cc, size_t li,
                   struct post *const *posts, size_t nposts, int digest,
                   const struct newsletter_to *to, int64_t issue, struct buf *msg, struct buf *verp)
{
    const char *names[COMPOSE_FIELDS], *values[COMPOSE_FIELDS];
    const struct config_list *l = &c->cfg->lists[li];
    struct compose_shape *sh = NULL;
    json_t *obj = NULL;
    char token[96], *key = NULL;
    size_t n;
    int rc = -1;

    if (cc->issue != issue || cc->li != li || !cc->nonce[0]) {
        compose_cache_free(cc);
        unsigned char r[4];
        uint32_t x = (uint32_t)getpid() ^ (uint32_t)issue;
        if (RAND_bytes(r, sizeof r) == 1)
            x ^= (uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3];
        snprintf(cc->nonce, sizeof cc->nonce, "%08u", (unsigned)(x % 100000000u));
        cc->issue = issue;
        cc->li = li;
    }
    newsletter_token(c->key, "unsubscribe", l->id, to->id, to->email, token);
    if (fields_of(to, token, &obj, names, values, &n) < 0 || !(key = shape_key(names, values, n)))
        goto slow;
    for (size_t i = 0; i < cc->nshapes && !sh; i++)
        if (!strcmp(cc->shapes[i].key, key))
            sh = &cc->shapes[i];
    if (!sh) {
        if (cc->nshapes == COMPOSE_SHAPES)
            goto slow;
        sh = &cc->shapes[cc->nshapes];
        memset(sh, 0, sizeof *sh);
        if (shape_make(c, cc, li, posts, nposts, digest, to, names, values, n, sh) < 0) {
            shape_free(sh);
            goto slow; /* compose() tells what went wrong */
        }
        sh->key = key;
        key = NULL;
        cc->nshapes++;
    }
    if (sh->slow || !values_fit(sh, values, n))
        goto slow;
    struct buf subject, html, text;
    buf_init(&subject, SUBJECT_CAP);
    buf_init(&html, PART_MAX);
    buf_init(&text, PART_MAX);
    rc = fill(cc, buf_str(&sh->subject), sh->subject.len, values, n, NULL, &subject);
    if (rc == 0)
        rc = fill(cc, buf_str(&sh->html), sh->html.len, values, n, NULL, &html);
    if (rc == 0)
        rc = text_of(cc, sh, values, n, &text);
    if (rc == 0)
        rc = assemble(c, li, to, issue, token, &subject, &html, &text, msg, verp);
    buf_free(&subject);
    buf_free(&html);
    buf_free(&text);
    cc->fast++;
    json_decref(obj);
    free(key);
    return rc;
slow:
    json_decref(obj);
    free(key);
    cc->slow++;
    return compose(c, li, posts, nposts, digest, to, issue, msg, verp, NULL);
}
