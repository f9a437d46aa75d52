/*
 * feed_atom: Atom 1.0 (RFC 4287), written with libxml2's xmlTextWriter.
 * The output validates against the RFC's RELAX NG schema (Appendix B): the
 * feed always has an author, updated is the newest post's (never the build
 * time), and xml:lang is only written with a well-formed tag.
 */
#include <string.h>
#include <strings.h>

#include "../lib/timefmt.h"
#include "feed_int.h"
#include "feeds.h"

#define NS_ATOM "http://www.w3.org/2005/Atom"

/* Feeds with no entry still need an updated: a fixed one keeps the bytes
 * the same from one build to the next. */
#define ATOM_EPOCH "1970-01-01T00:00:00Z"

static void atom_link(struct feed_xml *x, const char *rel, const char *href, const char *type)
{
    feed_xml_start(x, "link");
    feed_xml_attr(x, "rel", rel);
    feed_xml_attr(x, "href", href);
    feed_xml_attr(x, "type", type);
    feed_xml_end(x);
}

static void atom_author(struct feed_xml *x, const char *name, const char *email)
{
    feed_xml_start(x, "author");
    feed_xml_elem(x, "name", name);
    if (email && strchr(email, '@'))
        feed_xml_elem(x, "email", email);
    feed_xml_end(x);
}

static void atom_head(const struct config *cfg, const struct feed_set *fs, struct feed_xml *x,
                      struct buf *s)
{
    char date[64];

    buf_reset(s);
    if (feed_title(cfg, fs, s) < 0)
        x->err = 1;
    feed_xml_elem(x, "title", buf_str(s));
    buf_reset(s);
    if (feed_url(cfg, fs->dir, "", s) < 0)
        x->err = 1;
    feed_xml_elem(x, "id", buf_str(s));
    buf_reset(s);
    if (feed_url(cfg, fs->dir, "atom.xml", s) < 0)
        x->err = 1;
    atom_link(x, "self", buf_str(s), "application/atom+xml");
    buf_reset(s);
    if (buf_printf(s, "%s/", cfg->site.url) < 0)
        x->err = 1;
    atom_link(x, "alternate", buf_str(s), "text/html");
    feed_xml_elem(x, "updated",
                  fs->n ? timefmt_rfc3339(feed_newest(fs), date, sizeof date) : ATOM_EPOCH);
    atom_author(x, cfg->site.author_name ? cfg->site.author_name : cfg->site.title,
                cfg->site.author_email);
    feed_xml_elem(x, "generator", "nashra");
}

static void atom_entry(const struct config *cfg, const struct post *p, struct feed_xml *x)
{
    char date[64];
    const char *lang = feed_post_lang(cfg, p);

    feed_xml_start(x, "entry");
    if (lang && strcasecmp(lang, cfg->site.language) != 0 && feed_lang_ok(lang))
        feed_xml_attr(x, "xml:lang", lang);
    feed_xml_elem(x, "title", p->title ? p->title : "");
    feed_xml_elem(x, "id", p->url);
    atom_link(x, "alternate", p->url, "text/html");
    feed_xml_elem(x, "published", timefmt_rfc3339(p->date, date, sizeof date));
    feed_xml_elem(x, "updated", timefmt_rfc3339(feed_post_updated(p), date, sizeof date));
    atom_author(x, p->author ? p->author : cfg->site.author_name, NULL);
    for (size_t i = 0; i < p->ncategories; i++) {
        feed_xml_start(x, "category");
        feed_xml_attr(x, "term", p->categories[i]);
        feed_xml_end(x);
    }
    if (p->summary) {
        feed_xml_start(x, "summary");
        feed_xml_attr(x, "type", "text");
        feed_xml_elem_text(x, p->summary, strlen(p->summary));
        feed_xml_end(x);
    }
    if (cfg->feeds.full_content && p->html) {
        feed_xml_start(x, "content");
        feed_xml_attr(x, "type", "html");
        feed_xml_elem_text(x, p->html, feed_html_len(p));
        feed_xml_end(x);
    }
    feed_xml_end(x);
}

int feed_atom(const struct config *cfg, const struct feed_set *fs, struct buf *out)
{
    struct feed_xml x;
    struct buf s;

    buf_init(&s, FEED_TEXT_CAP);
    feed_xml_open(&x);
    feed_xml_start(&x, "feed");
    feed_xml_attr(&x, "xmlns", NS_ATOM);
    if (feed_lang_ok(cfg->site.language))
        feed_xml_attr(&x, "xml:lang", cfg->site.language);
    atom_head(cfg, fs, &x, &s);
    for (size_t i = 0; i < fs->n && !x.err; i++)
        atom_entry(cfg, fs->posts[i], &x);
    buf_free(&s);
    return feed_xml_close(&x, out);
}
