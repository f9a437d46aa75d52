/*
 * html2text: the text/plain alternative of a newsletter (SPEC §8), made from
 * its HTML with libxml2's HTML parser (tag soup in, a tree out), walked once.
 *
 * Reading model: inline text gathers into a paragraph with white space
 * collapsed; a block element (p, div, h1-h6, li, tr, blockquote, pre, ...)
 * ends the paragraph, which is then wrapped at spaces to WRAP columns and
 * written out. Blocks are separated by a line break or a blank line (the
 * larger of what the two sides ask for wins; none at the start or the end).
 *   - <br>: a line break inside the paragraph;
 *   - <ul>/<ol>: items as "- item" / "1. item", nested lists indented,
 *     wrapped lines aligned under the item's text;
 *   - <blockquote>: lines start with "> ";
 *   - <pre>: kept as is, not wrapped;
 *   - <a href>: "text <url>", or "url" alone when the text is the URL;
 *   - <img>: its alt text; scripts, styles, <head> and hidden elements
 *     (style "display:none", the hidden attribute: e-mail preheaders) dropped.
 * Columns are counted in characters, not bytes, and lines break only at
 * spaces, so neither a UTF-8 sequence nor a URL is ever cut; a word longer
 * than a line gets a line of its own. Arabic needs nothing special: text is
 * kept in logical order and the reader's client lays it out.
 */
#include "html2text.h"

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/text.h"

#define WRAP      72  /* columns a wrapped line aims at */
#define MIN_WIDTH 24  /* text columns left however deep the indentation */
#define MAX_DEPTH 256 /* elements nested deeper are skipped */

/* What an element does to the text. */
enum kind {
    K_INLINE, /* its children, nothing else */
    K_DROP,   /* nothing at all */
    K_LINE,   /* a block on lines of its own */
    K_PARA,   /* a block with blank lines around it */
    K_BR,
    K_PRE,
    K_QUOTE,
    K_UL,
    K_OL,
    K_LI,
    K_A,
    K_IMG,
    K_CELL
};

static const struct {
    const char *name;
    enum kind kind;
} kinds[] = {
    {"a", K_A},
    {"address", K_PARA},
    {"article", K_LINE},
    {"aside", K_LINE},
    {"blockquote", K_QUOTE},
    {"br", K_BR},
    {"button", K_DROP},
    {"caption", K_LINE},
    {"center", K_LINE},
    {"dd", K_LINE},
    {"details", K_LINE},
    {"dialog", K_LINE},
    {"div", K_LINE},
    {"dl", K_PARA},
    {"dt", K_LINE},
    {"embed", K_DROP},
    {"fieldset", K_LINE},
    {"figcaption", K_LINE},
    {"figure", K_PARA},
    {"footer", K_LINE},
    {"form", K_LINE},
    {"h1", K_PARA},
    {"h2", K_PARA},
    {"h3", K_PARA},
    {"h4", K_PARA},
    {"h5", K_PARA},
    {"h6", K_PARA},
    {"head", K_DROP},
    {"header", K_LINE},
    {"hgroup", K_LINE},
    {"hr", K_PARA},
    {"iframe", K_DROP},
    {"img", K_IMG},
    {"input", K_DROP},
    {"li", K_LI},
    {"main", K_LINE},
    {"math", K_DROP},
    {"nav", K_LINE},
    {"object", K_DROP},
    {"ol", K_OL},
    {"p", K_PARA},
    {"pre", K_PRE},
    {"script", K_DROP},
    {"section", K_LINE},
    {"select", K_DROP},
    {"style", K_DROP},
    {"summary", K_LINE},
    {"svg", K_DROP},
    {"table", K_PARA},
    {"td", K_CELL},
    {"template", K_DROP},
    {"textarea", K_DROP},
    {"th", K_CELL},
    {"title", K_DROP},
    {"tr", K_LINE},
    {"ul", K_UL},
};

/* The list being read: its kind and the number of its next item. */
struct h2t_list {
    int ordered;
    long next;
};

struct h2t {
    struct buf *out;       /* the text so far */
    struct buf para;       /* inline text of the current block, not yet written */
    struct h2t_list *list; /* innermost list, or NULL */
    int space;             /* a collapsed white space is owed before the next text */
    int pre;               /* inside <pre>: white space kept, no wrapping */
    int sep;               /* owed before the next block: 1 line break, 2 a blank line */
    int quote;             /* <blockquote> depth */
    int last_quote;        /* <blockquote> depth of the last line written */
    size_t indent;         /* list indentation, in columns */
    char marker[24];       /* list marker for the next line written ("- ", "3. "), or "" */
    unsigned long flushes; /* paragraphs written so far */
    struct h2t_rec *rec;   /* html_to_text_rec: what to record, or NULL */
    int err;
};

static void put(struct h2t *h, const char *s, size_t n)
{
    if (!h->err && buf_append(h->out, s, n) < 0)
        h->err = 1;
}

static void para_put(struct h2t *h, const char *s, size_t n)
{
    if (!h->err && buf_append(&h->para, s, n) < 0)
        h->err = 1;
}

static void put_spaces(struct h2t *h, size_t n)
{
    static const char sp[] = "                                ";

    while (n > 0) {
        size_t k = n < sizeof(sp) - 1 ? n : sizeof(sp) - 1;
        put(h, sp, k);
        n -= k;
    }
}

/* Characters (not bytes) in UTF-8 s[0, n). */
static size_t columns(const char *s, size_t n)
{
    size_t c = 0;

    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

/* Writes one output line: quote marks, indentation or the pending list
 * marker, then s[0, n). */
static void put_line(struct h2t *h, const char *s, size_t n)
{
    size_t mlen = strlen(h->marker);

    h->last_quote = h->quote;
    for (int q = 0; q < h->quote; q++)
        put(h, "> ", n == 0 && !mlen ? 1 : 2); /* no trailing space on an empty line */
    if (mlen) {
        put_spaces(h, h->indent > mlen ? h->indent - mlen : 0);
        put(h, h->marker, mlen);
        h->marker[0] = '\0';
    } else if (n > 0) {
        put_spaces(h, h->indent);
    }
    put(h, s, n);
    put(h, "\n", 1);
}

/* Writes s[0, n) (single spaces, no line break) wrapped at spaces. */
static void wrap_line(struct h2t *h, const char *s, size_t n)
{
    size_t width = WRAP > 2 * (size_t)h->quote + h->indent + MIN_WIDTH
                       ? WRAP - 2 * (size_t)h->quote - h->indent
                       : MIN_WIDTH;
    size_t start = 0, end = 0, cols = 0;

    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j] != ' ')
            j++;
        size_t w = columns(s + i, j - i);
        if (cols > 0 && cols + 1 + w > width) {
            put_line(h, s + start, end - start);
            start = i;
            cols = 0;
        }
        cols += (cols ? 1 : 0) + w;
        end = j;
        i = j + 1;
    }
    put_line(h, s + start, end - start);
}

/* 1 if s[0, n) holds the recording's mark. */
static int marked(const struct h2t *h, const char *s, size_t n)
{
    return h->rec && memmem(s, n, h->rec->mark, strlen(h->rec->mark)) != NULL;
}

static void record(struct h2t *h, const struct h2t_state *st, size_t start)
{
    struct h2t_rec *rec = h->rec;
    if (rec->n == rec->alloc) {
        size_t na = rec->alloc ? rec->alloc * 2 : 8;
        struct h2t_region *r = realloc(rec->r, na * sizeof *r);
        if (!r) {
            h->err = 1;
            return;
        }
        rec->r = r;
        rec->alloc = na;
    }
    struct h2t_region *r = &rec->r[rec->n];
    if (!(r->para = malloc(h->para.len + 1))) {
        h->err = 1;
        return;
    }
    memcpy(r->para, buf_str(&h->para), h->para.len + 1);
    r->len = h->para.len;
    r->st = *st;
    r->start = start;
    r->end = h->out->len;
    rec->n++;
}

/* Writes the current paragraph (if it holds any text) and empties it. */
static void flush(struct h2t *h)
{
    const char *s = buf_str(&h->para);
    size_t b = 0, e = h->para.len, start = h->out->len;
    int rec = marked(h, s, e);
    struct h2t_state st = {h->pre, h->sep, h->quote, h->last_quote, h->indent, ""};

    if (rec)
        memcpy(st.marker, h->marker, sizeof st.marker);

    while (b < e && (s[b] == '\n' || (s[b] == ' ' && !h->pre)))
        b++;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\n'))
        e--;
    if (b < e) {
        if (h->sep == 2 && h->out->len > 0) { /* quoted only between quoted lines */
            int depth = h->quote < h->last_quote ? h->quote : h->last_quote;
            for (int q = 0; q <= depth; q++)
                put(h, q < depth ? ">" : "\n", 1);
        }
        h->sep = 0;
        for (size_t i = b; i <= e; i++) {
            size_t j = i;
            while (j < e && s[j] != '\n')
                j++;
            if (h->pre)
                put_line(h, s + i, j - i);
            else
                wrap_line(h, s + i, j - i);
            i = j;
        }
        h->flushes++;
        if (rec)
            record(h, &st, start);
    }
    buf_reset(&h->para);
    h->space = 0;
}

static void need_sep(struct h2t *h, int sep)
{
    if (h->sep < sep)
        h->sep = sep;
}

/* Inline text: white space collapsed (NBSP included), controls dropped. */
static void add_text(struct h2t *h, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
            (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] == 0xa0)) {
            h->space = 1;
            i += c == 0xc2 ? 2 : 1;
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && (unsigned char)s[j] > ' ' && s[j] != 0x7f &&
               !((unsigned char)s[j] == 0xc2 && j + 1 < n && (unsigned char)s[j + 1] == 0xa0))
            j++;
        if (h->space && h->para.len > 0 && h->para.data[h->para.len - 1] != '\n')
            para_put(h, " ", 1);
        h->space = 0;
        para_put(h, s + i, j - i);
        i = j;
    }
}

/* Text inside <pre>: kept, line breaks made LF, controls other than tab
 * dropped. */
static void add_pre(struct h2t *h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r') {
            if (i + 1 < n && s[i + 1] == '\n')
                continue;
            c = '\n';
        }
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
            continue;
        para_put(h, (const char *)&c, 1);
    }
}

static void text_node(struct h2t *h, const xmlChar *content)
{
    if (!content)
        return;
    if (h->pre)
        add_pre(h, (const char *)content, strlen((const char *)content));
    else
        add_text(h, (const char *)content, strlen((const char *)content));
}

/* The kind of an element: binary search of kinds[] (sorted; libxml2's HTML
 * parser gives element names in lower case). */
static enum kind kind_of(const xmlChar *name)
{
    size_t lo = 0, hi = sizeof(kinds) / sizeof(kinds[0]);

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp((const char *)name, kinds[mid].name);
        if (c == 0)
            return kinds[mid].kind;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return K_INLINE;
}

/* 1 if CSS text s holds "display:none" (case and white space ignored).
 * *tail carries the last characters seen between calls (a match may straddle
 * two text nodes of one attribute). */
static int has_display_none(const xmlChar *s, char tail[16])
{
    static const char want[] = "display:none";
    size_t n = strlen(tail);

    for (; *s; s++) {
        char c = (char)((*s >= 'A' && *s <= 'Z') ? *s - 'A' + 'a' : *s);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            continue;
        if (n == sizeof(want) - 1) {
            memmove(tail, tail + 1, n - 1);
            n--;
        }
        tail[n++] = c;
        tail[n] = '\0';
        if (n == sizeof(want) - 1 && memcmp(tail, want, n) == 0)
            return 1;
    }
    return 0;
}

/* 1 for elements a reader does not see: hidden, or styled display:none.
 * Reads the attributes in place (most e-mail elements carry a style). */
static int hidden(xmlNode *node)
{
    for (xmlAttr *a = node->properties; a; a = a->next) {
        if (strcmp((const char *)a->name, "hidden") == 0)
            return 1;
        if (strcmp((const char *)a->name, "style") != 0)
            continue;
        char tail[16] = "";
        for (xmlNode *t = a->children; t; t = t->next)
            if (t->type == XML_TEXT_NODE && t->content && has_display_none(t->content, tail))
                return 1;
    }
    return 0;
}

static void walk(struct h2t *h, xmlNode *node, int depth);

static void walk_children(struct h2t *h, xmlNode *node, int depth)
{
    for (xmlNode *c = node->children; c && !h->err; c = c->next)
        walk(h, c, depth + 1);
}

static void block(struct h2t *h, xmlNode *node, int depth, int sep)
{
    flush(h);
    need_sep(h, sep);
    walk_children(h, node, depth);
    flush(h);
    need_sep(h, sep);
}

static void pre_block(struct h2t *h, xmlNode *node, int depth)
{
    flush(h);
    need_sep(h, 2);
    h->pre++;
    walk_children(h, node, depth);
    flush(h);
    h->pre--;
    need_sep(h, 2);
}

static void quote_block(struct h2t *h, xmlNode *node, int depth)
{
    flush(h);
    need_sep(h, 2);
    h->quote++;
    walk_children(h, node, depth);
    flush(h);
    h->quote--;
    need_sep(h, 2);
}

/* The value of a numeric attribute, or def. */
static long num_attr(xmlNode *node, const char *name, long def)
{
    xmlChar *v = xmlGetProp(node, BAD_CAST name);
    long n = def;

    if (v) {
        char *end;
        long x = strtol((const char *)v, &end, 10);
        if (end != (char *)v && x > -1000000 && x < 1000000)
            n = x;
        xmlFree(v);
    }
    return n;
}

static void list_block(struct h2t *h, xmlNode *node, int depth, int ordered)
{
    struct h2t_list list = {ordered, ordered ? num_attr(node, "start", 1) : 0};
    struct h2t_list *outer = h->list;
    int sep = outer ? 1 : 2;

    flush(h);
    need_sep(h, sep);
    h->list = &list;
    walk_children(h, node, depth);
    flush(h);
    h->list = outer;
    need_sep(h, sep);
}

static void list_item(struct h2t *h, xmlNode *node, int depth)
{
    size_t outer = h->indent;

    flush(h);
    need_sep(h, 1);
    if (h->list && h->list->ordered) {
        long n = num_attr(node, "value", h->list->next);
        h->list->next = n + 1;
        snprintf(h->marker, sizeof(h->marker), "%ld. ", n);
    } else {
        snprintf(h->marker, sizeof(h->marker), "- ");
    }
    h->indent = outer + strlen(h->marker);
    walk_children(h, node, depth);
    flush(h);
    h->indent = outer;
    h->marker[0] = '\0';
    need_sep(h, 1);
}

/* Appends a URL as one word: white space in it removed or escaped. */
static void add_url(struct h2t *h, const char *url, int brackets)
{
    if (h->para.len > 0 && h->para.data[h->para.len - 1] != '\n')
        para_put(h, " ", 1);
    h->space = 0;
    if (brackets)
        para_put(h, "<", 1);
    for (const char *p = url; *p; p++) {
        if (*p == ' ')
            para_put(h, "%20", 3);
        else if (!((unsigned char)*p < 0x20 || *p == 0x7f))
            para_put(h, p, 1);
    }
    if (brackets)
        para_put(h, ">", 1);
}

/* 1 when the link's text says no more than its URL. */
static int same_url(const char *t, size_t n, const char *url)
{
    size_t ul = strlen(url);

    if (n == ul && memcmp(t, url, n) == 0)
        return 1;
    if (ul == n + 1 && url[n] == '/' && memcmp(t, url, n) == 0)
        return 1; /* "https://example.com" for "https://example.com/" */
    return ul == n + 7 && strncasecmp(url, "mailto:", 7) == 0 && memcmp(t, url + 7, n) == 0;
}

/* Recording: a link target holding the mark, kept for the caller, whose
 * values there must not begin with '#' or "javascript:" nor hold spaces. If
 * the link's text holds the mark too, "is the text the URL" compared
 * placeholders: unsafe. */
static int keep_url(struct h2t *h, const char *u, const char *t, size_t n)
{
    struct h2t_rec *rec = h->rec;
    if (marked(h, t, n))
        rec->unsafe = 1;
    if (rec->nurls == rec->aurls) {
        size_t na = rec->aurls ? rec->aurls * 2 : 4;
        char **v = realloc(rec->urls, na * sizeof *v);
        if (!v)
            return -1;
        rec->urls = v;
        rec->aurls = na;
    }
    if (!(rec->urls[rec->nurls] = strdup(u)))
        return -1;
    rec->nurls++;
    return 0;
}

static void link_elem(struct h2t *h, xmlNode *node, int depth)
{
    xmlChar *href = xmlGetProp(node, BAD_CAST "href");
    const char *url = href ? (const char *)href : "";
    unsigned long before = h->flushes;
    size_t start = h->para.len;

    while (*url == ' ' || *url == '\t' || *url == '\n' || *url == '\r')
        url++;
    walk_children(h, node, depth);
    if (*url && *url != '#' && strncasecmp(url, "javascript:", 11) != 0 && !h->err) {
        const char *t = buf_str(&h->para);
        size_t e = h->para.len;
        if (before != h->flushes)
            start = 0; /* the link's text began in a paragraph already written */
        while (start < e && (t[start] == ' ' || t[start] == '\n'))
            start++;
        size_t ul = strlen(url);
        while (ul > 0 && (url[ul - 1] == ' ' || url[ul - 1] == '\n' || url[ul - 1] == '\r'))
            ul--;
        char *u = strndup(url, ul);
        if (!u)
            h->err = 1;
        else if (marked(h, u, ul) && keep_url(h, u, t + start, e - start) < 0)
            h->err = 1;
        else if (!same_url(t + start, e - start, u))
            add_url(h, u, e > start);
        free(u);
    }
    xmlFree(href);
}

static void image(struct h2t *h, xmlNode *node)
{
    xmlChar *alt = xmlGetProp(node, BAD_CAST "alt");

    if (alt) {
        h->space = h->space || h->para.len > 0;
        add_text(h, (const char *)alt, strlen((const char *)alt));
        h->space = 1;
        xmlFree(alt);
    }
}

/* Recording: 1 when an attribute whose value steers the text (a style,
 * a list number) holds the mark. */
static int marked_attr(struct h2t *h, xmlNode *node)
{
    for (xmlAttr *a = node->properties; a; a = a->next) {
        const char *n = (const char *)a->name;
        if (strcmp(n, "style") && strcmp(n, "start") && strcmp(n, "value"))
            continue;
        for (xmlNode *t = a->children; t; t = t->next)
            if (t->content && marked(h, (const char *)t->content, strlen((char *)t->content)))
                return 1;
    }
    return 0;
}

static void element(struct h2t *h, xmlNode *node, int depth)
{
    enum kind k = kind_of(node->name);

    if (h->rec && marked_attr(h, node))
        h->rec->unsafe = 1;

    if (k == K_DROP || hidden(node))
        return;
    switch (k) {
    case K_BR:
        if (h->pre)
            para_put(h, "\n", 1);
        else if (h->para.len > 0)
            para_put(h, "\n", 1);
        h->space = 0;
        break;
    case K_LINE:
        block(h, node, depth, 1);
        break;
    case K_PARA:
        block(h, node, depth, 2);
        break;
    case K_PRE:
        pre_block(h, node, depth);
        break;
    case K_QUOTE:
        quote_block(h, node, depth);
        break;
    case K_UL:
    case K_OL:
        list_block(h, node, depth, k == K_OL);
        break;
    case K_LI:
        list_item(h, node, depth);
        break;
    case K_A:
        link_elem(h, node, depth);
        break;
    case K_IMG:
        image(h, node);
        break;
    case K_CELL:
        h->space = 1;
        walk_children(h, node, depth);
        h->space = 1;
        break;
    case K_INLINE:
    case K_DROP:
        walk_children(h, node, depth);
        break;
    }
}

static void walk(struct h2t *h, xmlNode *node, int depth)
{
    if (depth > MAX_DEPTH)
        return;
    switch (node->type) {
    case XML_TEXT_NODE:
    case XML_CDATA_SECTION_NODE:
        text_node(h, node->content);
        break;
    case XML_ELEMENT_NODE:
        element(h, node, depth);
        break;
    default: /* comments, processing instructions, the DTD */
        break;
    }
}

/* 1 if s[0, len) holds nothing but white space. */
static int blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' && s[i] != '\f')
            return 0;
    return 1;
}

static int convert(const char *html, size_t len, struct h2t_rec *rec, struct buf *out)
{
    struct buf text;
    struct h2t h = {.rec = rec};
    htmlDocPtr doc;
    int rc = -1;

    if (!html || len == 0 || blank(html, len))
        return 0;
    if (len > INT_MAX)
        return -1;
    xmlInitParser();
    doc = htmlReadMemory(html, (int)len, NULL, "UTF-8",
                         HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
    if (!doc)
        return -1;
    buf_init(&text, out->cap > out->len ? out->cap - out->len : 1);
    buf_init(&h.para, out->cap);
    h.out = &text;
    for (xmlNode *c = doc->children; c && !h.err; c = c->next)
        walk(&h, c, 0);
    flush(&h);
    if (!h.err)
        rc = buf_append(out, buf_str(&text), text.len);
    buf_free(&h.para);
    buf_free(&text);
    xmlFreeDoc(doc);
    return rc;
}

int html_to_text(const char *html, size_t len, struct buf *out)
{
    return convert(html, len, NULL, out);
}

int html_to_text_rec(const char *html, size_t len, struct h2t_rec *rec, struct buf *out)
{
    if (out->len || !rec->mark || !*rec->mark)
        return -1; /* the regions' offsets are from the start of out */
    int rc = convert(html, len, rec, out);
    if (rc == 0 && marked(&(struct h2t){.rec = rec}, buf_str(out), out->len)) {
        /* a mark outside the recorded paragraphs: nothing to fill it */
        size_t at = 0;
        for (size_t i = 0; i < rec->n; i++) {
            if (marked(&(struct h2t){.rec = rec}, buf_str(out) + at, rec->r[i].start - at))
                rec->unsafe = 1;
            at = rec->r[i].end;
        }
        if (marked(&(struct h2t){.rec = rec}, buf_str(out) + at, out->len - at))
            rec->unsafe = 1;
    }
    return rc;
}

void h2t_rec_free(struct h2t_rec *rec)
{
    for (size_t i = 0; i < rec->n; i++)
        free(rec->r[i].para);
    for (size_t i = 0; i < rec->nurls; i++)
        free(rec->urls[i]);
    free(rec->r);
    free(rec->urls);
    rec->r = NULL;
    rec->urls = NULL;
    rec->n = rec->alloc = rec->nurls = rec->aurls = 0;
}

int h2t_region_write(const struct h2t_region *r, const char *para, size_t len, struct buf *out)
{
    struct h2t h = {.out = out};
    int rc;

    buf_init(&h.para, len + 1);
    h.pre = r->st.pre;
    h.sep = r->st.sep;
    h.quote = r->st.quote;
    h.last_quote = r->st.last_quote;
    h.indent = r->st.indent;
    memcpy(h.marker, r->st.marker, sizeof h.marker);
    para_put(&h, para, len);
    flush(&h);
    rc = h.err ? -1 : 0;
    buf_free(&h.para);
    return rc;
}
