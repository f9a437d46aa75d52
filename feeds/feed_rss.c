/*
 * feed_rss: RSS 2.0 (https://www.rssboard.org/rss-specification) with the
 * Atom self link, content:encoded (RSS 1.0 content module) and dc:creator,
 * written with libxml2's xmlTextWriter. Also holds what every feed writer
 * shares (feed_int.h): titles, URLs, dates, category slugs, the XML writer.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/text.h"
#include "../lib/timefmt.h"
#include "feed_int.h"
#include "feeds.h"

#define NS_ATOM    "http://www.w3.org/2005/Atom"
#define NS_CONTENT "http://purl.org/rss/1.0/modules/content/"
#define NS_DC      "http://purl.org/dc/elements/1.1/"

/* A category folder name longer than this is cut (at a character). */
#define SLUG_MAX 200

/* --- shared helpers ------------------------------------------------------ */

int64_t feed_post_updated(const struct post *p)
{
    return p->updated > p->date ? p->updated : p->date;
}

size_t feed_html_len(const struct post *p)
{
    return p->html_len || !p->html ? p->html_len : strlen(p->html);
}

int64_t feed_newest(const struct feed_set *fs)
{
    int64_t newest = 0;
    for (size_t i = 0; i < fs->n; i++) {
        int64_t t = feed_post_updated(fs->posts[i]);
        if (i == 0 || t > newest)
            newest = t;
    }
    return newest;
}

int feed_title(const struct config *cfg, const struct feed_set *fs, struct buf *out)
{
    if (fs->category)
        return buf_printf(out, "%s \xe2\x80\x94 %s", cfg->site.title, fs->category);
    return buf_puts(out, cfg->site.title);
}

int feed_url(const struct config *cfg, const char *dir, const char *name, struct buf *out)
{
    if (buf_printf(out, "%s/", cfg->site.url) < 0)
        return -1;
    while (dir && *dir) {
        const char *slash = strchr(dir, '/');
        size_t n = slash ? (size_t)(slash - dir) : strlen(dir);
        if (text_url_segment(out, dir, n) < 0 || (slash && buf_putc(out, '/') < 0))
            return -1;
        dir += slash ? n + 1 : n;
    }
    return buf_puts(out, name);
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int feed_lang_ok(const char *tag)
{
    size_t run = 0, part = 0;
    if (!tag || !*tag)
        return 0;
    for (const char *s = tag;; s++) {
        if (*s == '-' || *s == '\0') {
            if (run == 0 || run > 8)
                return 0;
            if (*s == '\0')
                return 1;
            run = 0;
            part++;
            continue;
        }
        if (!(is_alpha(*s) || (part > 0 && is_digit(*s))))
            return 0;
        run++;
    }
}

const char *feed_post_lang(const struct config *cfg, const struct post *p)
{
    return p->lang && *p->lang ? p->lang : cfg->site.language;
}

/* --- category slugs ------------------------------------------------------ */

/* Length of a character that cannot be in a folder name at s (0: none):
 * ASCII controls, space, / \ ? # % " < >, C1 controls, Unicode spaces and
 * direction marks (U+00A0, U+2000-U+200F, U+2028/9, U+3000), bad UTF-8. */
static size_t slug_unsafe(const unsigned char *s, size_t n)
{
    if (*s < 0x80)
        return *s <= 0x20 || *s == 0x7f || strchr("/\\?#%\"<>", *s) ? 1 : 0;
    size_t len = utf8_seqlen(*s);
    if (len > n || len == 1 || !utf8_valid((const char *)s, len, NULL))
        return 1;
    if (s[0] == 0xC2 && (s[1] <= 0x9F || s[1] == 0xA0))
        return len;
    if (s[0] == 0xE2 && s[1] == 0x80 && (s[2] <= 0x8F || s[2] == 0xA8 || s[2] == 0xA9))
        return len;
    if (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80)
        return len;
    return 0;
}

char *feed_category_slug(const char *category)
{
    const unsigned char *s = (const unsigned char *)category;
    size_t n = strlen(category), o = 0;
    char *out = malloc(SLUG_MAX + 1);
    int dash = 0; /* the last byte written replaced something */

    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t bad = slug_unsafe(s + i, n - i);
        size_t len = bad ? bad : utf8_seqlen(s[i]);
        if (o + (bad ? 1 : len) > SLUG_MAX)
            break;
        if (bad && !dash)
            out[o++] = '-';
        else if (!bad)
            for (size_t k = 0; k < len; k++)
                out[o++] = (char)(s[i + k] >= 'A' && s[i + k] <= 'Z' ? s[i + k] + 32 : s[i + k]);
        dash = bad != 0;
        i += len;
    }
    if (o == 0)
        out[o++] = '-';
    if (out[0] == '.') /* ".", "..", and hidden folders */
        out[0] = '-';
    out[o] = '\0';
    return out;
}

/* --- the XML writer ------------------------------------------------------ */

#if LIBXML_VERSION >= 21200
static void on_xml_error(void *ctx, const xmlError *e)
#else
static void on_xml_error(void *ctx, xmlErrorPtr e)
#endif
{
    struct feed_xml *x = ctx;
    if (e && e->level >= XML_ERR_ERROR)
        x->err = 1;
}

/* libxml2's list code says "Cannot initialize memory for new link" this
 * way, and xmlTextWriterStartElement goes on as if it had not failed. */
__attribute__((format(printf, 2, 3))) static void on_xml_generic(void *ctx, const char *msg, ...)
{
    struct feed_xml *x = ctx;
    (void)msg;
    x->err = 1;
}

int feed_xml_open(struct feed_xml *x)
{
    memset(x, 0, sizeof *x);
    buf_init(&x->tmp, FEED_TEXT_CAP);
    x->old_handler = xmlStructuredError;
    x->old_ctx = xmlStructuredErrorContext;
    xmlSetStructuredErrorFunc(x, on_xml_error);
    x->old_generic = xmlGenericError;
    x->old_generic_ctx = xmlGenericErrorContext;
    xmlSetGenericErrorFunc(x, on_xml_generic);
    if (!(x->xbuf = xmlBufferCreate()) || !(x->w = xmlNewTextWriterMemory(x->xbuf, 0)) ||
        xmlTextWriterSetIndent(x->w, 1) < 0 ||
        xmlTextWriterSetIndentString(x->w, (const xmlChar *)"  ") < 0 ||
        xmlTextWriterStartDocument(x->w, NULL, "UTF-8", NULL) < 0) {
        x->err = 1;
        return -1;
    }
    return 0;
}

/* Leaves the cleaned s in x->tmp; 0 or -1 (error set). */
static int xml_clean(struct feed_xml *x, const char *s, size_t len)
{
    buf_reset(&x->tmp);
    if (text_xml_clean(&x->tmp, s, len) < 0 || buf_putc(&x->tmp, '\0') < 0) {
        x->err = 1;
        return -1;
    }
    return 0;
}

static const xmlChar *xml_tmp(const struct feed_xml *x)
{
    return (const xmlChar *)x->tmp.data;
}

void feed_xml_start(struct feed_xml *x, const char *name)
{
    if (!x->err && xmlTextWriterStartElement(x->w, (const xmlChar *)name) < 0)
        x->err = 1;
}

void feed_xml_end(struct feed_xml *x)
{
    if (!x->err && xmlTextWriterEndElement(x->w) < 0)
        x->err = 1;
}

void feed_xml_attr(struct feed_xml *x, const char *name, const char *value)
{
    if (x->err || !value || xml_clean(x, value, strlen(value)) < 0)
        return;
    if (xmlTextWriterWriteAttribute(x->w, (const xmlChar *)name, xml_tmp(x)) < 0)
        x->err = 1;
}

void feed_xml_elem_len(struct feed_xml *x, const char *name, const char *text, size_t len)
{
    if (x->err || !text || xml_clean(x, text, len) < 0)
        return;
    if (xmlTextWriterWriteElement(x->w, (const xmlChar *)name, xml_tmp(x)) < 0)
        x->err = 1;
}

void feed_xml_elem_text(struct feed_xml *x, const char *text, size_t len)
{
    if (x->err || xml_clean(x, text, len) < 0)
        return;
    if (xmlTextWriterWriteString(x->w, xml_tmp(x)) < 0)
        x->err = 1;
}

void feed_xml_elem(struct feed_xml *x, const char *name, const char *text)
{
    if (text)
        feed_xml_elem_len(x, name, text, strlen(text));
}

int feed_xml_close(struct feed_xml *x, struct buf *out)
{
    int rc = -1;
    if (!x->err && xmlTextWriterEndDocument(x->w) >= 0) {
        xmlFreeTextWriter(x->w); /* flushes into xbuf */
        x->w = NULL;
        if (!x->err) /* the flush may fail too */
            rc = buf_append(out, xmlBufferContent(x->xbuf), (size_t)xmlBufferLength(x->xbuf));
    }
    if (x->w)
        xmlFreeTextWriter(x->w);
    if (x->xbuf)
        xmlBufferFree(x->xbuf);
    xmlSetStructuredErrorFunc(x->old_ctx, x->old_handler);
    xmlSetGenericErrorFunc(x->old_generic_ctx, x->old_generic);
    buf_free(&x->tmp);
    memset(x, 0, sizeof *x);
    return rc;
}

/* --- RSS ----------------------------------------------------------------- */

static void rss_channel_head(const struct config *cfg, const struct feed_set *fs,
                             struct feed_xml *x, struct buf *s)
{
    char date[64];

    buf_reset(s);
    if (feed_title(cfg, fs, s) < 0)
        x->err = 1;
    feed_xml_elem(x, "title", buf_str(s));
    buf_reset(s);
    if (buf_printf(s, "%s/", cfg->site.url) < 0)
        x->err = 1;
    feed_xml_elem(x, "link", buf_str(s));
    feed_xml_elem(x, "description", cfg->site.title);
    feed_xml_elem(x, "language", cfg->site.language);
    feed_xml_elem(x, "generator", "nashra");
    if (fs->n > 0)
        feed_xml_elem(x, "lastBuildDate", timefmt_rfc822(feed_newest(fs), date, sizeof date));
    buf_reset(s);
    if (feed_url(cfg, fs->dir, "feed.xml", s) < 0)
        x->err = 1;
    feed_xml_start(x, "atom:link");
    feed_xml_attr(x, "href", buf_str(s));
    feed_xml_attr(x, "rel", "self");
    feed_xml_attr(x, "type", "application/rss+xml");
    feed_xml_end(x);
}

static void rss_item(const struct config *cfg, const struct post *p, struct feed_xml *x)
{
    char date[64];

    feed_xml_start(x, "item");
    feed_xml_elem(x, "title", p->title);
    feed_xml_elem(x, "link", p->url);
    feed_xml_start(x, "guid");
    feed_xml_attr(x, "isPermaLink", "true");
    if (p->url)
        feed_xml_elem_text(x, p->url, strlen(p->url));
    feed_xml_end(x);
    feed_xml_elem(x, "pubDate", timefmt_rfc822(p->date, date, sizeof date));
    feed_xml_elem(x, "dc:creator", p->author ? p->author : cfg->site.author_name);
    for (size_t i = 0; i < p->ncategories; i++)
        feed_xml_elem(x, "category", p->categories[i]);
    feed_xml_elem(x, "description", p->summary);
    if (cfg->feeds.full_content && p->html)
        feed_xml_elem_len(x, "content:encoded", p->html, feed_html_len(p));
    feed_xml_end(x);
}

int feed_rss(const struct config *cfg, const struct feed_set *fs, struct buf *out)
{
    struct feed_xml x;
    struct buf s;

    buf_init(&s, FEED_TEXT_CAP);
    feed_xml_open(&x);
    feed_xml_start(&x, "rss");
    feed_xml_attr(&x, "version", "2.0");
    feed_xml_attr(&x, "xmlns:atom", NS_ATOM);
    feed_xml_attr(&x, "xmlns:content", NS_CONTENT);
    feed_xml_attr(&x, "xmlns:dc", NS_DC);
    feed_xml_start(&x, "channel");
    rss_channel_head(cfg, fs, &x, &s);
    for (size_t i = 0; i < fs->n && !x.err; i++)
        rss_item(cfg, fs->posts[i], &x);
    buf_free(&s);
    return feed_xml_close(&x, out); /* closes channel and rss */
}
