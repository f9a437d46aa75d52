/*
 * post_md: Markdown (CommonMark + GitHub tables and strikethrough) to safe
 * HTML through md4c's callback API, and plain-text posts to paragraphs.
 *
 * Safety is decided here, while rendering: links and images are resolved
 * against the post URL (RFC 3986 §5.2) and dropped when their scheme is not
 * one a reader can follow safely; raw HTML is dropped unless allowed; text is
 * escaped and stripped of characters XML forbids, so every output that embeds
 * the HTML stays well-formed.
 */
#include "post_render.h"

#include <ctype.h>
#include <errno.h>
#include <md4c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/text.h"

#define MD_PAD 64 /* NUL bytes after the text md4c parses */

void render_out_init(struct render_out *o, size_t cap)
{
    buf_init(&o->html, cap);
    buf_init(&o->heading, 4096);
    buf_init(&o->first_para, 16384);
    o->lead_h1_end = 0;
}

void render_out_free(struct render_out *o)
{
    buf_free(&o->html);
    buf_free(&o->heading);
    buf_free(&o->first_para);
}

/* --- URLs ---------------------------------------------------------------- */

static int scheme_len(const char *s, size_t n)
{
    if (n == 0 || !isalpha((unsigned char)s[0]))
        return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ':')
            return (int)i;
        if (!isalnum(c) && c != '+' && c != '-' && c != '.')
            return 0;
    }
    return 0;
}

/* RFC 3986 §5.2.4 on path[0..n), appended to out. */
static int remove_dot_segments(struct buf *out, const char *path, size_t n)
{
    size_t start = out->len;
    size_t i = 0;
    while (i < n) {
        if (n - i >= 3 && !memcmp(path + i, "../", 3)) {
            i += 3;
        } else if (n - i >= 2 && !memcmp(path + i, "./", 2)) {
            i += 2;
        } else if (n - i >= 3 && !memcmp(path + i, "/./", 3)) {
            i += 2;
        } else if (n - i == 2 && !memcmp(path + i, "/.", 2)) {
            i += 1;
            if (buf_putc(out, '/') < 0)
                return -1;
            break;
        } else if ((n - i >= 4 && !memcmp(path + i, "/../", 4)) ||
                   (n - i == 3 && !memcmp(path + i, "/..", 3))) {
            int last = n - i == 3;
            i += 3;
            while (out->len > start && out->data[out->len - 1] != '/')
                out->len--;
            if (out->len > start)
                out->len--;
            out->data[out->len] = '\0';
            if (last) {
                if (buf_putc(out, '/') < 0)
                    return -1;
                break;
            }
        } else if ((n - i == 1 && path[i] == '.') || (n - i == 2 && !memcmp(path + i, "..", 2))) {
            break;
        } else {
            size_t j = i + (path[i] == '/');
            while (j < n && path[j] != '/')
                j++;
            if (buf_append(out, path + i, j - i) < 0)
                return -1;
            i = j;
        }
    }
    return 0;
}

int url_resolve(struct buf *out, const char *base, const char *ref, size_t reflen)
{
    static const char *const safe[] = {"http", "https", "mailto", "tel", "ftp"};
    /* Browsers ignore tabs and newlines inside a URL ("java\tscript:"), so
     * any control character or space makes the link unsafe rather than
     * being stripped and re-checked. */
    while (reflen && ref[0] == ' ')
        ref++, reflen--;
    while (reflen && ref[reflen - 1] == ' ')
        reflen--;
    for (size_t i = 0; i < reflen; i++)
        if ((unsigned char)ref[i] < 0x20 || ref[i] == 0x7f || ref[i] == '\\')
            return -1;

    int sl = scheme_len(ref, reflen);
    if (sl > 0) {
        for (size_t k = 0; k < sizeof safe / sizeof *safe; k++)
            if (strlen(safe[k]) == (size_t)sl && !strncasecmp(ref, safe[k], (size_t)sl))
                return buf_append(out, ref, reflen);
        return -1;
    }

    /* base is absolute: scheme://authority/path/ */
    const char *auth = strstr(base, "://");
    if (!auth)
        return -1;
    const char *path = strchr(auth + 3, '/');
    size_t origin_len = path ? (size_t)(path - base) : strlen(base);
    size_t scheme_end = (size_t)(auth - base) + 1; /* "https:" */

    if (reflen >= 2 && ref[0] == '/' && ref[1] == '/') {
        if (buf_append(out, base, scheme_end) < 0)
            return -1;
        return buf_append(out, ref, reflen);
    }
    if (reflen == 0)
        return buf_puts(out, base);

    /* Split off query and fragment: they are kept as they are. */
    size_t plen = 0;
    while (plen < reflen && ref[plen] != '?' && ref[plen] != '#')
        plen++;
    if (buf_append(out, base, origin_len) < 0)
        return -1;
    if (plen == 0) { /* "?q" or "#frag": the base document itself */
        if (buf_puts(out, base + origin_len) < 0)
            return -1;
    } else if (ref[0] == '/') {
        if (remove_dot_segments(out, ref, plen) < 0)
            return -1;
    } else {
        struct buf merged;
        buf_init(&merged, 0);
        const char *bpath = path ? path : "/";
        const char *slash = strrchr(bpath, '/');
        int r = buf_append(&merged, bpath, (size_t)(slash - bpath) + 1);
        if (r == 0)
            r = buf_append(&merged, ref, plen);
        if (r == 0)
            r = remove_dot_segments(out, merged.data, merged.len);
        buf_free(&merged);
        if (r < 0)
            return -1;
    }
    return buf_append(out, ref + plen, reflen - plen);
}

/* --- entities ------------------------------------------------------------ */

static int put_codepoint(struct buf *out, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        cp = 0xFFFD;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return text_xml_clean(out, u, n);
}

/*
 * Decodes one entity ("&amp;", "&#1575;", "&#x627;") into UTF-8. Named
 * entities beyond the basic five and nbsp are kept as written when
 * keep_unknown (valid in HTML), else dropped: plain text never shows them.
 */
static int put_entity(struct buf *out, const char *e, size_t n, int escape, int keep_unknown)
{
    static const struct {
        const char *name;
        uint32_t cp;
    } named[] = {{"&amp;", '&'},  {"&lt;", '<'},    {"&gt;", '>'},
                 {"&quot;", '"'}, {"&apos;", '\''}, {"&nbsp;", 0xA0}};
    uint32_t cp = 0;
    int found = 0;
    if (n > 3 && e[1] == '#') {
        int hex = e[2] == 'x' || e[2] == 'X';
        for (size_t i = hex ? 3 : 2; i + 1 < n && cp <= 0x10FFFF; i++)
            cp = cp * (hex ? 16 : 10) + (uint32_t)(isdigit((unsigned char)e[i])
                                                       ? e[i] - '0'
                                                       : (tolower((unsigned char)e[i]) - 'a' + 10));
        found = 1;
    } else {
        for (size_t k = 0; k < sizeof named / sizeof *named; k++)
            if (strlen(named[k].name) == n && !memcmp(named[k].name, e, n)) {
                cp = named[k].cp;
                found = 1;
            }
    }
    if (!found)
        return keep_unknown ? buf_append(out, e, n) : 0;
    if (escape && (cp == '&' || cp == '<' || cp == '>' || cp == '"' || cp == '\'')) {
        char c = (char)cp;
        return text_escape_html(out, &c, 1);
    }
    return put_codepoint(out, cp);
}

/* --- the md4c renderer --------------------------------------------------- */

/* Length of "<hN>". */
static size_t tmp_len(unsigned level)
{
    return level < 10 ? 4 : 5;
}

struct mdr {
    struct render_out *o;
    const char *base;
    int allow_html;
    int img_depth;        /* > 0 inside an image: text goes to its alt */
    int img_open;         /* an "<img ... alt=\"" waits for its closing quote */
    int in_heading1;      /* collecting the first "# heading" */
    int lead_h1;          /* ... and it is the first thing in the body */
    int para_state;       /* 0 before the first paragraph, 1 inside it, 2 after */
    int link_dropped[32]; /* per nesting level of <a>: 1 when the link was unsafe */
    int link_depth;
    int failed;
    const char *src, *src_end; /* the copy md4c parses (see render_markdown) */
};

static void out_s(struct mdr *r, const char *s)
{
    if (buf_puts(&r->o->html, s) < 0)
        r->failed = 1;
}

static void out_attr_url(struct mdr *r, const MD_ATTRIBUTE *a, int *ok)
{
    struct buf raw, abs;
    buf_init(&raw, 65536);
    buf_init(&abs, 65536);
    *ok = 0;
    for (unsigned i = 0; i < a->size && a->substr_offsets[i] < a->size; i++) {
        MD_OFFSET off = a->substr_offsets[i], end = a->substr_offsets[i + 1];
        const char *t = a->text + off;
        int rc = 0;
        if (a->substr_types[i] == MD_TEXT_ENTITY)
            rc = put_entity(&raw, t, end - off, 0, 1);
        else if (a->substr_types[i] == MD_TEXT_NULLCHAR)
            rc = buf_puts(&raw, "\xEF\xBF\xBD");
        else
            rc = buf_append(&raw, t, end - off);
        if (rc < 0) { /* no memory: the render fails (not a link dropped as unsafe) */
            r->failed = 1;
            goto out;
        }
    }
    errno = 0;
    if (url_resolve(&abs, r->base, buf_str(&raw), raw.len) < 0) {
        if (errno == ENOMEM)
            r->failed = 1;
        goto out;
    }
    if (text_escape_html(&r->o->html, abs.data, abs.len) < 0)
        r->failed = 1;
    *ok = 1;
out:
    buf_free(&raw);
    buf_free(&abs);
}

static void out_attr_text(struct mdr *r, const MD_ATTRIBUTE *a)
{
    for (unsigned i = 0; i < a->size && a->substr_offsets[i] < a->size; i++) {
        MD_OFFSET off = a->substr_offsets[i], end = a->substr_offsets[i + 1];
        int rc;
        if (a->substr_types[i] == MD_TEXT_ENTITY)
            rc = put_entity(&r->o->html, a->text + off, end - off, 1, 1);
        else
            rc = text_escape_html(&r->o->html, a->text + off, end - off);
        if (rc < 0)
            r->failed = 1;
    }
}

static int enter_block(MD_BLOCKTYPE type, void *detail, void *ud)
{
    struct mdr *r = ud;
    char tmp[64];
    switch (type) {
    case MD_BLOCK_DOC:
        break;
    case MD_BLOCK_QUOTE:
        out_s(r, "<blockquote>\n");
        break;
    case MD_BLOCK_UL:
        out_s(r, "<ul>\n");
        break;
    case MD_BLOCK_OL: {
        const MD_BLOCK_OL_DETAIL *d = detail;
        if (d->start == 1) {
            out_s(r, "<ol>\n");
        } else {
            snprintf(tmp, sizeof tmp, "<ol start=\"%u\">\n", d->start);
            out_s(r, tmp);
        }
        break;
    }
    case MD_BLOCK_LI:
        out_s(r, "<li>");
        break;
    case MD_BLOCK_HR:
        out_s(r, "<hr>\n");
        break;
    case MD_BLOCK_H: {
        const MD_BLOCK_H_DETAIL *d = detail;
        snprintf(tmp, sizeof tmp, "<h%u>", d->level);
        out_s(r, tmp);
        if (d->level == 1 && r->o->heading.len == 0) {
            r->in_heading1 = 1;
            r->lead_h1 = r->o->html.len == tmp_len(d->level); /* the first block */
        }
        break;
    }
    case MD_BLOCK_CODE: {
        const MD_BLOCK_CODE_DETAIL *d = detail;
        out_s(r, "<pre><code");
        if (d->lang.text && d->lang.size) {
            out_s(r, " class=\"language-");
            out_attr_text(r, &d->lang);
            out_s(r, "\"");
        }
        out_s(r, ">");
        break;
    }
    case MD_BLOCK_HTML:
        break;
    case MD_BLOCK_P:
        out_s(r, "<p>");
        if (r->para_state == 0)
            r->para_state = 1;
        break;
    case MD_BLOCK_TABLE:
        out_s(r, "<table>\n");
        break;
    case MD_BLOCK_THEAD:
        out_s(r, "<thead>\n");
        break;
    case MD_BLOCK_TBODY:
        out_s(r, "<tbody>\n");
        break;
    case MD_BLOCK_TR:
        out_s(r, "<tr>");
        break;
    case MD_BLOCK_TH:
    case MD_BLOCK_TD: {
        static const char *const align[] = {"", " style=\"text-align:left\"",
                                            " style=\"text-align:center\"",
                                            " style=\"text-align:right\""};
        const MD_BLOCK_TD_DETAIL *d = detail;
        snprintf(tmp, sizeof tmp, "<%s%s>", type == MD_BLOCK_TH ? "th" : "td",
                 align[d->align <= MD_ALIGN_RIGHT ? d->align : 0]);
        out_s(r, tmp);
        break;
    }
    default:
        break;
    }
    return r->failed ? -1 : 0;
}

static int leave_block(MD_BLOCKTYPE type, void *detail, void *ud)
{
    struct mdr *r = ud;
    char tmp[16];
    switch (type) {
    case MD_BLOCK_QUOTE:
        out_s(r, "</blockquote>\n");
        break;
    case MD_BLOCK_UL:
        out_s(r, "</ul>\n");
        break;
    case MD_BLOCK_OL:
        out_s(r, "</ol>\n");
        break;
    case MD_BLOCK_LI:
        out_s(r, "</li>\n");
        break;
    case MD_BLOCK_H: {
        const MD_BLOCK_H_DETAIL *d = detail;
        snprintf(tmp, sizeof tmp, "</h%u>\n", d->level);
        out_s(r, tmp);
        if (r->in_heading1 && r->lead_h1)
            r->o->lead_h1_end = r->o->html.len;
        r->in_heading1 = 0;
        r->lead_h1 = 0;
        break;
    }
    case MD_BLOCK_CODE:
        out_s(r, "</code></pre>\n");
        break;
    case MD_BLOCK_P:
        out_s(r, "</p>\n");
        if (r->para_state == 1)
            r->para_state = 2;
        break;
    case MD_BLOCK_TABLE:
        out_s(r, "</table>\n");
        break;
    case MD_BLOCK_THEAD:
        out_s(r, "</thead>\n");
        break;
    case MD_BLOCK_TBODY:
        out_s(r, "</tbody>\n");
        break;
    case MD_BLOCK_TR:
        out_s(r, "</tr>\n");
        break;
    case MD_BLOCK_TH:
        out_s(r, "</th>");
        break;
    case MD_BLOCK_TD:
        out_s(r, "</td>");
        break;
    default:
        break;
    }
    return r->failed ? -1 : 0;
}

static int enter_span(MD_SPANTYPE type, void *detail, void *ud)
{
    struct mdr *r = ud;
    if (r->img_depth > 0) { /* inside alt text: no markup at all */
        if (type == MD_SPAN_IMG)
            r->img_depth++;
        return 0;
    }
    switch (type) {
    case MD_SPAN_EM:
        out_s(r, "<em>");
        break;
    case MD_SPAN_STRONG:
        out_s(r, "<strong>");
        break;
    case MD_SPAN_DEL:
        out_s(r, "<del>");
        break;
    case MD_SPAN_CODE:
        out_s(r, "<code>");
        break;
    case MD_SPAN_A: {
        const MD_SPAN_A_DETAIL *d = detail;
        size_t mark = r->o->html.len;
        int ok;
        out_s(r, "<a href=\"");
        out_attr_url(r, &d->href, &ok);
        if (ok && d->title.text && d->title.size) {
            out_s(r, "\" title=\"");
            out_attr_text(r, &d->title);
        }
        out_s(r, "\">");
        if (!ok) { /* unsafe link: keep its text, drop the link */
            r->o->html.len = mark;
            r->o->html.data[mark] = '\0';
        }
        if (r->link_depth < 32)
            r->link_dropped[r->link_depth] = !ok;
        r->link_depth++;
        break;
    }
    case MD_SPAN_IMG: {
        const MD_SPAN_IMG_DETAIL *d = detail;
        size_t mark = r->o->html.len;
        int ok;
        out_s(r, "<img src=\"");
        out_attr_url(r, &d->src, &ok);
        if (!ok) {
            r->o->html.len = mark;
            r->o->html.data[mark] = '\0';
            r->img_depth = 1;
            return 0;
        }
        if (d->title.text && d->title.size) {
            out_s(r, "\" title=\"");
            out_attr_text(r, &d->title);
        }
        out_s(r, "\" alt=\"");
        r->img_depth = 1;
        r->img_open = 1;
        break;
    }
    default:
        break;
    }
    return r->failed ? -1 : 0;
}

static int leave_span(MD_SPANTYPE type, void *detail, void *ud)
{
    struct mdr *r = ud;
    (void)detail;
    if (r->img_depth > 0) {
        if (type == MD_SPAN_IMG && --r->img_depth == 0 && r->img_open) {
            out_s(r, "\">");
            r->img_open = 0;
        }
        return r->failed ? -1 : 0;
    }
    switch (type) {
    case MD_SPAN_EM:
        out_s(r, "</em>");
        break;
    case MD_SPAN_STRONG:
        out_s(r, "</strong>");
        break;
    case MD_SPAN_DEL:
        out_s(r, "</del>");
        break;
    case MD_SPAN_CODE:
        out_s(r, "</code>");
        break;
    case MD_SPAN_A:
        if (r->link_depth == 0) /* md4c 0.4.8 can close a link it never opened */
            break;
        r->link_depth--;
        if (r->link_depth >= 32 || !r->link_dropped[r->link_depth])
            out_s(r, "</a>");
        break;
    default:
        break;
    }
    return r->failed ? -1 : 0;
}

/* Plain text of headings and the first paragraph, for title and summary. */
static void collect(struct mdr *r, MD_TEXTTYPE type, const char *t, size_t n)
{
    struct buf *dst[2] = {r->in_heading1 ? &r->o->heading : NULL,
                          r->para_state == 1 ? &r->o->first_para : NULL};
    for (int k = 0; k < 2; k++) {
        if (!dst[k])
            continue;
        int rc;
        errno = 0;
        if (type == MD_TEXT_ENTITY)
            rc = put_entity(dst[k], t, n, 0, 0);
        else if (type == MD_TEXT_BR || type == MD_TEXT_SOFTBR)
            rc = buf_putc(dst[k], ' ');
        else if (type == MD_TEXT_NULLCHAR)
            rc = 0;
        else
            rc = text_xml_clean(dst[k], t, n);
        /* these buffers are capped: a long heading is cut, not an error;
         * no memory is one (the title or the summary would be cut short) */
        if (rc < 0 && errno == ENOMEM)
            r->failed = 1;
    }
}

static int on_text(MD_TEXTTYPE type, const MD_CHAR *t, MD_SIZE n, void *ud)
{
    struct mdr *r = ud;
    struct buf *h = &r->o->html;
    int rc = 0;
    if (t >= r->src && t < r->src_end + MD_PAD) { /* not one of md4c's own strings */
        if (t >= r->src_end)
            return 0;
        if (n > (MD_SIZE)(r->src_end - t)) /* md4c 0.4.8 can run past the end */
            n = (MD_SIZE)(r->src_end - t);
    }
    if (type != MD_TEXT_HTML)
        collect(r, type, t, n);
    switch (type) {
    case MD_TEXT_NULLCHAR:
        rc = buf_puts(h, "\xEF\xBF\xBD");
        break;
    case MD_TEXT_BR:
        rc = r->img_depth ? buf_putc(h, ' ') : buf_puts(h, "<br>\n");
        break;
    case MD_TEXT_SOFTBR:
        rc = buf_putc(h, r->img_depth ? ' ' : '\n');
        break;
    case MD_TEXT_ENTITY:
        rc = put_entity(h, t, n, 1, 1);
        break;
    case MD_TEXT_HTML:
        if (r->allow_html && !r->img_depth)
            rc = text_xml_clean(h, t, n);
        break;
    default:
        rc = text_escape_html(h, t, n);
        break;
    }
    if (rc < 0)
        r->failed = 1;
    return r->failed ? -1 : 0;
}

int render_markdown(const char *src, size_t len, const char *base, int allow_html,
                    struct render_out *o)
{
    struct mdr r = {.o = o, .base = base, .allow_html = allow_html};
    MD_PARSER p = {
        .abi_version = 0,
        .flags = MD_FLAG_TABLES | MD_FLAG_STRIKETHROUGH,
        .enter_block = enter_block,
        .leave_block = leave_block,
        .enter_span = enter_span,
        .leave_span = leave_span,
        .text = on_text,
    };
    if (len > UINT32_MAX - MD_PAD)
        return -1;
    if (buf_reserve(&o->html, len + len / 4) < 0)
        return -1;
    /* md4c 0.4.8 reads past the end of its input (valgrind and fuzz_post
     * show it): it parses a copy followed by MD_PAD NUL bytes, and on_text
     * cuts what it is given at the real end. */
    char *copy = malloc(len + MD_PAD);
    if (!copy)
        return -1;
    memcpy(copy, src, len);
    memset(copy + len, 0, MD_PAD);
    r.src = copy;
    r.src_end = copy + len;
    int rc = md_parse(copy, (MD_SIZE)len, &p, &r);
    free(copy);
    return rc == 0 && !r.failed ? 0 : -1;
}

/* --- plain text ---------------------------------------------------------- */

static int is_blank_line(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

int render_text(const char *src, size_t len, struct render_out *o)
{
    int in_para = 0, paras = 0;
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && src[e] != '\n')
            e++;
        size_t n = e - i;
        if (n && src[i + n - 1] == '\r')
            n--;
        if (is_blank_line(src + i, n)) {
            if (in_para && buf_puts(&o->html, "</p>\n") < 0)
                return -1;
            in_para = 0;
        } else {
            if (buf_puts(&o->html, in_para ? "<br>\n" : "<p>") < 0)
                return -1;
            if (!in_para)
                paras++;
            if (text_escape_html(&o->html, src + i, n) < 0)
                return -1;
            if (paras == 1) {
                /* first_para is capped: a long first paragraph is cut (no
                 * memory is an error: the summary would be cut short) */
                errno = 0;
                int rc = in_para ? buf_putc(&o->first_para, ' ') : 0;
                if (rc == 0)
                    rc = text_xml_clean(&o->first_para, src + i, n);
                if (rc < 0 && errno == ENOMEM)
                    return -1;
            }
            in_para = 1;
        }
        i = e + 1;
    }
    if (in_para && buf_puts(&o->html, "</p>\n") < 0)
        return -1;
    return 0;
}

/* --- summaries ----------------------------------------------------------- */

int text_summary(struct buf *out, const char *s, size_t len, size_t max)
{
    buf_reset(out);
    size_t chars = 0, last_space = 0;
    int space = 1;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = utf8_seqlen(c);
        if (i + n > len)
            break;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (!space) {
                last_space = out->len;
                if (buf_putc(out, ' ') < 0)
                    return -1;
            }
            space = 1;
            i++;
            continue;
        }
        if (chars >= max) {
            if (last_space > out->len / 2) /* cut at the last word boundary */
                out->len = last_space;
            while (out->len && out->data[out->len - 1] == ' ')
                out->len--;
            out->data[out->len] = '\0';
            return buf_puts(out, "…");
        }
        if (buf_append(out, s + i, n) < 0)
            return -1;
        space = 0;
        chars++;
        i += n;
    }
    while (out->len && out->data[out->len - 1] == ' ')
        out->len--;
    if (out->data)
        out->data[out->len] = '\0';
    return 0;
}
