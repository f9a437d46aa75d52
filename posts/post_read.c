/*
 * post_read: one file of the content folder into a struct post (SPEC §4):
 * encoding checks, YAML front matter and its types, every field's default,
 * the slug rules, and the body rendered by post_md.c.
 *
 * A post is rejected (NULL and a located diag) rather than published half
 * right: the caller keeps the last good version and reports the problem.
 */
#include "post.h"

#include <ctype.h>
#include <openssl/sha.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/fileio.h"
#include "../lib/text.h"
#include "../lib/timefmt.h"
#include "../lib/yaml_tree.h"
#include "post_render.h"

#define SUMMARY_CHARS 280

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int post_path_wanted(const char *name)
{
    if (name[0] == '.' || name[0] == '#' || has_suffix(name, "~") || has_suffix(name, ".swp") ||
        has_suffix(name, ".tmp"))
        return 0;
    return has_suffix(name, ".md") || has_suffix(name, ".txt");
}

int post_slug_valid(const char *slug, const char **why)
{
    size_t n = strlen(slug);
    if (n == 0) {
        *why = "is empty";
        return 0;
    }
    if (n > 200) {
        *why = "is longer than 200 bytes";
        return 0;
    }
    if (slug[0] == '.') {
        *why = "starts with '.'";
        return 0;
    }
    if (!utf8_valid(slug, n, NULL)) {
        *why = "is not UTF-8";
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)slug; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || strchr("/\\?#%\"<>", *p)) {
            *why = "holds a character slugs cannot hold (/ \\ ? # % \" < > or a space)";
            return 0;
        }
        /* U+00A0 and U+2000-U+200F, U+2028/9, U+3000: spaces and direction marks */
        if ((p[0] == 0xC2 && p[1] == 0xA0) ||
            (p[0] == 0xE2 && p[1] == 0x80 && (p[2] <= 0x8F || p[2] == 0xA8 || p[2] == 0xA9)) ||
            (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80)) {
            *why = "holds a space or an invisible direction mark";
            return 0;
        }
    }
    return 1;
}

void post_free(struct post *p)
{
    if (!p)
        return;
    free(p->path);
    free(p->slug);
    free(p->url);
    free(p->title);
    free(p->author);
    free(p->summary);
    free(p->lang);
    free(p->image);
    for (size_t i = 0; i < p->ncategories; i++)
        free(p->categories[i]);
    free(p->categories);
    for (size_t i = 0; i < p->ntags; i++)
        free(p->tags[i]);
    free(p->tags);
    free(p->html);
    free(p);
}

/* A one-line, XML-safe copy: newlines, tabs and controls become spaces, runs
 * of spaces one, ends trimmed. Titles and authors end up in mail headers. */
static char *one_line(const char *s, size_t n)
{
    struct buf clean, out;
    buf_init(&clean, 0);
    buf_init(&out, 0);
    if (text_xml_clean(&clean, s, n) < 0)
        goto fail;
    int space = 1;
    for (size_t i = 0; i < clean.len; i++) {
        unsigned char c = (unsigned char)clean.data[i];
        if (c < 0x20 || c == ' ') {
            if (!space && buf_putc(&out, ' ') < 0)
                goto fail;
            space = 1;
        } else {
            if (buf_putc(&out, (char)c) < 0)
                goto fail;
            space = 0;
        }
    }
    while (out.len && out.data[out.len - 1] == ' ')
        out.data[--out.len] = '\0';
    buf_free(&clean);
    return buf_steal(&out);
fail:
    buf_free(&clean);
    buf_free(&out);
    return NULL;
}

/* Line and column (1-based, in characters) of byte offset off. */
static void locate(const char *s, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)s[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

/* --- front matter -------------------------------------------------------- */

struct fm_errors {
    struct diag *err;
    int count;
    char msg[400];
};

static void fm_error(struct fm_errors *fe, const struct ynode *n, const char *key, const char *what)
{
    size_t used = strlen(fe->msg);
    if (fe->count == 0)
        diag_set(fe->err, n->line, n->col, "%s", "");
    snprintf(fe->msg + used, sizeof fe->msg - used, "%s%s: %s", fe->count ? "; " : "", key, what);
    fe->count++;
}

static const char *fm_scalar(struct fm_errors *fe, const struct ynode *m, const char *key)
{
    const struct ynode *n = ynode_get(m, key);
    if (!n || ynode_is_null(n))
        return NULL;
    if (n->type != YNODE_SCALAR) {
        fm_error(fe, n, key, "expected a single value");
        return NULL;
    }
    return n->str;
}

static int fm_bool(struct fm_errors *fe, const struct ynode *m, const char *key, int def)
{
    const struct ynode *n = ynode_get(m, key);
    int v;
    if (!n || ynode_is_null(n))
        return def;
    if (ynode_bool(n, &v) < 0) {
        char what[160];
        snprintf(what, sizeof what, "expected true or false, not '%.80s'",
                 n->type == YNODE_SCALAR ? n->str : "a list");
        fm_error(fe, n, key, what);
        return def;
    }
    return v;
}

static int64_t fm_date(struct fm_errors *fe, const struct ynode *m, const char *key, int *has)
{
    const struct ynode *n = ynode_get(m, key);
    int64_t t = 0;
    const char *why = "not a date";
    *has = 0;
    if (!n || ynode_is_null(n))
        return 0;
    if (n->type == YNODE_SCALAR && timefmt_parse(n->str, &t, &why) == 0) {
        *has = 1;
        return t;
    }
    char what[200];
    snprintf(what, sizeof what, "%s: '%.60s' (expected YYYY-MM-DD, YYYY-MM-DD HH:MM or RFC 3339)",
             why, n->type == YNODE_SCALAR ? n->str : "a list");
    fm_error(fe, n, key, what);
    return 0;
}

static char **fm_list(struct fm_errors *fe, const struct ynode *m, const char *key, size_t *count)
{
    const struct ynode *n = ynode_get(m, key);
    *count = 0;
    if (!n || ynode_is_null(n))
        return NULL;
    if (n->type != YNODE_SEQ) {
        fm_error(fe, n, key, "expected a list of names, like [\"a\", \"b\"]");
        return NULL;
    }
    char **v = calloc(n->n + 1, sizeof *v);
    if (!v) {
        fm_error(fe, n, key, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *it = n->kv[i];
        if (it->type != YNODE_SCALAR || it->len == 0) {
            fm_error(fe, it, key, "expected a list of names");
            break;
        }
        char *s = one_line(it->str, it->len);
        if (!s) {
            fm_error(fe, it, key, "out of memory");
            break;
        }
        int dup = 0;
        for (size_t k = 0; k < *count; k++)
            dup |= !strcmp(v[k], s);
        if (dup || !*s)
            free(s);
        else
            v[(*count)++] = s;
    }
    return v;
}

static int lang_valid(const char *s)
{
    size_t run = 0;
    if (!isalpha((unsigned char)*s))
        return 0;
    for (; *s; s++) {
        if (*s == '-' || *s == '_') {
            if (run == 0)
                return 0;
            run = 0;
        } else if (isalnum((unsigned char)*s) && ++run <= 8) {
            continue;
        } else {
            return 0;
        }
    }
    return run > 0;
}

/*
 * Splits off the front matter. Returns 0 with fm and fm_len (NULL when there
 * is none) and body_off, or -1 with err set for an unterminated one.
 */
static int split_front_matter(const char *s, size_t len, const char **fm, size_t *fm_len,
                              size_t *body_off, struct diag *err)
{
    *fm = NULL;
    *fm_len = 0;
    *body_off = 0;
    if (len < 3 || memcmp(s, "---", 3))
        return 0;
    size_t i = 3;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
        i++;
    if (i < len && s[i] != '\n')
        return 0; /* "--- text" or "----": not a fence */
    size_t start = i < len ? i + 1 : len;
    for (size_t ln = start; ln < len;) {
        size_t e = ln;
        while (e < len && s[e] != '\n')
            e++;
        size_t n = e - ln;
        while (n && (s[ln + n - 1] == '\r' || s[ln + n - 1] == ' ' || s[ln + n - 1] == '\t'))
            n--;
        if (n == 3 && (!memcmp(s + ln, "---", 3) || !memcmp(s + ln, "...", 3))) {
            *fm = s + start;
            *fm_len = ln - start;
            *body_off = e < len ? e + 1 : len;
            return 0;
        }
        ln = e + 1;
    }
    diag_set(err, 1, 1, "front matter opened on line 1 is never closed (no closing '---' line)");
    return -1;
}

/* --- the post ------------------------------------------------------------ */

static char *stem_of(const char *relpath)
{
    const char *base = strrchr(relpath, '/');
    base = base ? base + 1 : relpath;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return strndup(base, n);
}

static char *make_url(const struct config *cfg, const char *slug)
{
    struct buf u;
    buf_init(&u, 0);
    if (buf_puts(&u, cfg->site.url) < 0 || buf_puts(&u, "/posts/") < 0 ||
        text_url_segment(&u, slug, strlen(slug)) < 0 || buf_putc(&u, '/') < 0) {
        buf_free(&u);
        return NULL;
    }
    return buf_steal(&u);
}

static int apply_front_matter(const struct config *cfg, struct post *p, const struct ynode *m,
                              char **slug, struct diag *err)
{
    struct fm_errors fe = {.err = err};
    if (m && m->type != YNODE_MAP) {
        diag_set(err, m->line, m->col, "front matter must be a mapping of fields (key: value)");
        return -1;
    }
    const char *v;
    /* A value lost to a failed allocation would be filled in by a default:
     * "out of memory" makes the caller fail the pass instead. */
    if ((v = fm_scalar(&fe, m, "title")) && !(p->title = one_line(v, strlen(v))))
        fm_error(&fe, m, "title", "out of memory");
    if ((v = fm_scalar(&fe, m, "author")) && !(p->author = one_line(v, strlen(v))))
        fm_error(&fe, m, "author", "out of memory");
    if ((v = fm_scalar(&fe, m, "summary")) && !(p->summary = one_line(v, strlen(v))))
        fm_error(&fe, m, "summary", "out of memory");
    if ((v = fm_scalar(&fe, m, "slug")) && !(*slug = strdup(v)))
        fm_error(&fe, m, "slug", "out of memory");
    if ((v = fm_scalar(&fe, m, "lang"))) {
        if (lang_valid(v) && !(p->lang = strdup(v)))
            fm_error(&fe, m, "lang", "out of memory");
        else if (!lang_valid(v))
            fm_error(&fe, ynode_get(m, "lang"), "lang", "not a language tag (like ar, en, fr-CA)");
    }
    if ((v = fm_scalar(&fe, m, "image"))) {
        struct buf u;
        buf_init(&u, 8192);
        errno = 0;
        int r = url_resolve(&u, cfg->site.url, v, strlen(v));
        if (r < 0 && errno == ENOMEM)
            fm_error(&fe, ynode_get(m, "image"), "image", "out of memory");
        else if (r == 0 && u.len && !strncmp(u.data, "http", 4))
            p->image = buf_steal(&u);
        else
            fm_error(&fe, ynode_get(m, "image"), "image", "not an http(s) or relative URL");
        buf_free(&u);
    }
    p->date = fm_date(&fe, m, "date", &p->has_date);
    int has_updated;
    p->updated = fm_date(&fe, m, "updated", &has_updated);
    p->draft = fm_bool(&fe, m, "draft", 0);
    p->newsletter = fm_bool(&fe, m, "newsletter", 1);
    p->categories = fm_list(&fe, m, "categories", &p->ncategories);
    p->tags = fm_list(&fe, m, "tags", &p->ntags);
    const char *dir = fm_scalar(&fe, m, "dir");
    if (dir && strcmp(dir, "rtl") && strcmp(dir, "ltr"))
        fm_error(&fe, ynode_get(m, "dir"), "dir", "expected rtl or ltr");
    p->rtl = dir ? !strcmp(dir, "rtl") : -1;
    if (fe.count) {
        static const char lead[] = "invalid front matter: ";
        memcpy(err->msg, lead, sizeof lead - 1);
        snprintf(err->msg + sizeof lead - 1, sizeof err->msg - (sizeof lead - 1), "%s", fe.msg);
        return -1;
    }
    return 0;
}

static int fill_defaults(const struct config *cfg, struct post *p, char *slug,
                         struct render_out *ro, int64_t first_seen, struct diag *err)
{
    const char *why;
    if (!post_slug_valid(slug, &why)) {
        diag_set(err, 0, 0, "invalid slug '%.100s': it %s", slug, why);
        free(slug);
        return -1;
    }
    p->slug = slug;
    if (!p->title && ro->heading.len && !(p->title = one_line(ro->heading.data, ro->heading.len))) {
        diag_set(err, 0, 0, "out of memory"); /* not the file name instead */
        return -1;
    }
    if (!p->title || !*p->title) {
        free(p->title);
        char *stem = stem_of(p->path);
        p->title = stem ? one_line(stem, strlen(stem)) : NULL;
        free(stem);
    }
    if (!p->author)
        p->author = strdup(cfg->site.author_name ? cfg->site.author_name : cfg->site.title);
    if (!p->summary) {
        struct buf s;
        buf_init(&s, 0);
        if (text_summary(&s, buf_str(&ro->first_para), ro->first_para.len, SUMMARY_CHARS) == 0)
            p->summary = buf_steal(&s);
        buf_free(&s);
    }
    if (!p->lang)
        p->lang = strdup(cfg->site.language);
    if (p->rtl < 0)
        p->rtl = lang_is_rtl(p->lang);
    if (!p->has_date)
        p->date = first_seen;
    if (!p->categories)
        p->categories = calloc(1, sizeof(char *));
    if (!p->tags)
        p->tags = calloc(1, sizeof(char *));
    p->html_len = ro->html.len;
    p->html = buf_steal(&ro->html);
    if (!p->url || !p->title || !p->author || !p->summary || !p->lang || !p->categories ||
        !p->tags) {
        diag_set(err, 0, 0, "out of memory");
        return -1;
    }
    return 0;
}

/* Encoding checks: not empty, UTF-8, no NUL. */
static int check_bytes(const char *data, size_t len, struct diag *err)
{
    size_t bad;
    size_t i = 0;
    while (i < len && isspace((unsigned char)data[i]))
        i++;
    if (i == len) {
        diag_set(err, 0, 0, "empty post");
        return -1;
    }
    if (!utf8_valid(data, len, &bad)) {
        int line, col;
        locate(data, bad, &line, &col);
        size_t nul = 0;
        for (size_t k = 0; k < len && k < 8192; k++)
            nul += data[k] == '\0';
        diag_set(err, line, col,
                 nul ? "not text: binary data (NUL bytes)" : "not UTF-8: invalid byte 0x%02x",
                 (unsigned char)data[bad]);
        return -1;
    }
    return 0;
}

struct post *post_parse(const struct config *cfg, const char *relpath, const char *data, size_t len,
                        int64_t first_seen, struct diag *err)
{
    struct post *p = calloc(1, sizeof *p);
    struct ydoc *doc = NULL;
    struct render_out ro;
    struct buf clean;
    char *slug = NULL;
    render_out_init(&ro, cfg->content.max_bytes * 4 + 4096);
    buf_init(&clean, len + 1); /* filled only when the post needs cleaning */
    if (!p || !(p->path = strdup(relpath)))
        goto oom;
    p->kind = has_suffix(relpath, ".txt") ? POST_TEXT : POST_MARKDOWN;
    p->rtl = -1;
    SHA256((const unsigned char *)data, len, p->hash);
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) { /* BOM */
        data += 3;
        len -= 3;
    }
    if (check_bytes(data, len, err) < 0)
        goto fail;
    /* Characters XML forbids (C0 controls but tab and newlines, U+FFFE,
     * U+FFFF) go before anything reads the post, front matter included:
     * libyaml rejects them and no output may carry them. */
    if (!text_xml_is_clean(data, len)) {
        if (text_xml_clean(&clean, data, len) < 0)
            goto oom;
        data = buf_str(&clean);
        len = clean.len;
    }

    const char *fm;
    size_t fm_len, body_off;
    if (split_front_matter(data, len, &fm, &fm_len, &body_off, err) < 0)
        goto fail;
    if (fm && !(doc = ydoc_parse(fm, fm_len, 2, err)))
        goto fail;
    /* Without front matter every field takes its default. */
    if (apply_front_matter(cfg, p, doc ? ydoc_root(doc) : NULL, &slug, err) < 0)
        goto fail;
    if (!slug)
        slug = stem_of(relpath);
    if (!slug || !(p->url = make_url(cfg, slug)))
        goto oom;

    const char *body = data + body_off;
    size_t blen = len - body_off;
    errno = 0; /* ENOMEM after a failure: no memory, not a post too large */
    int rc = p->kind == POST_TEXT
                 ? render_text(body, blen, &ro)
                 : render_markdown(body, blen, p->url, cfg->content.allow_html, &ro);
    if (rc < 0 && errno == ENOMEM)
        goto oom;
    if (rc < 0) {
        diag_set(err, 0, 0, "the body could not be rendered (too large?)");
        goto fail;
    }
    if (p->kind == POST_TEXT && !p->title && ro.first_para.len) {
        /* First non-empty line: the text up to the first <br> of paragraph 1. */
        const char *b = body;
        while (b < body + blen && (*b == '\n' || *b == '\r' || *b == ' ' || *b == '\t'))
            b++;
        const char *e = memchr(b, '\n', (size_t)(body + blen - b));
        p->title = one_line(b, e ? (size_t)(e - b) : (size_t)(body + blen - b));
        if (!p->title)
            goto oom;
    }
    if (!p->title && ro.heading.len && ro.lead_h1_end && ro.lead_h1_end <= ro.html.len) {
        /* The opening "# heading" became the title: the page shows it as
         * the title, so the body does not repeat it. */
        memmove(ro.html.data, ro.html.data + ro.lead_h1_end, ro.html.len - ro.lead_h1_end + 1);
        ro.html.len -= ro.lead_h1_end;
    }
    if (fill_defaults(cfg, p, slug, &ro, first_seen, err) < 0) {
        slug = NULL;
        goto fail;
    }
    ydoc_free(doc);
    render_out_free(&ro);
    buf_free(&clean);
    return p;
oom:
    diag_set(err, 0, 0, "out of memory");
fail:
    free(slug);
    ydoc_free(doc);
    render_out_free(&ro);
    buf_free(&clean);
    post_free(p);
    return NULL;
}

struct post *post_read(const struct config *cfg, const char *relpath, int64_t first_seen,
                       struct diag *err)
{
    struct buf data;
    const char *why;
    char *full = path_join(cfg->content.dir, relpath);
    struct post *p = NULL;
    buf_init(&data, cfg->content.max_bytes);
    if (!full) {
        diag_set(err, 0, 0, "out of memory");
    } else if (file_read(full, cfg->content.max_bytes, &data, &why) < 0) {
        diag_set(err, 0, 0, "cannot read: %s", why);
    } else {
        p = post_parse(cfg, relpath, buf_str(&data), data.len, first_seen, err);
    }
    free(full);
    buf_free(&data);
    return p;
}
