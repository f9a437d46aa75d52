/*
 * feeds: the outputs of SPEC §5 as pure functions of the published posts:
 * RSS 2.0, Atom 1.0, JSON Feed 1.1 and the HTML archive. No I/O here but
 * reading override templates; the caller writes the bytes (atomically).
 * Same posts and config in, same bytes out: no build timestamps, no locale.
 */
#ifndef NASHRA_FEEDS_H
#define NASHRA_FEEDS_H

#include <stddef.h>

#include "../config/config.h"
#include "../lib/buf.h"
#include "../lib/diag.h"
#include "../posts/post.h"

/* One feed: the site's, or one category's. */
struct feed_set {
    const char *category; /* NULL for the site feed */
    const char *dir;      /* "" or "categories/{slug}/": where the feed files live */
    struct post **posts;  /* newest first, at most feeds.items, html filled */
    size_t n;
};

int feed_rss(const struct config *cfg, const struct feed_set *fs, struct buf *out);
int feed_atom(const struct config *cfg, const struct feed_set *fs, struct buf *out);
int feed_json(const struct config *cfg, const struct feed_set *fs, struct buf *out);

/* The slug of a category's folder under categories/: the name itself when
 * it is a safe path segment (Arabic stays Arabic), lower-cased ASCII, spaces
 * as '-'. Caller frees. */
char *feed_category_slug(const char *category);

/*
 * HTML archive. Templates are Mustache (lib/mustache): built-in ones, each
 * overridable by a file of the same name in output.templates ("post.html",
 * "index.html", partial "head.html"). A broken override is an error found at
 * load time (nashra check), never at render time.
 */
struct html_templates;
struct html_templates *html_templates_load(const struct config *cfg, struct diag *err,
                                           char **err_file);
void html_templates_free(struct html_templates *t);

/* A digest of the templates' text: the same digest, the same pages. */
void html_templates_digest(const struct html_templates *t, unsigned char out[32]);

/* posts/{slug}/index.html for p (p->html filled). */
int html_post_page(const struct config *cfg, const struct html_templates *t, const struct post *p,
                   struct buf *out);

/*
 * year 0: index.html, the newest posts with their summaries, and links to
 * archive/{year}/ for each of years (newest first). Otherwise
 * archive/{year}/index.html: that year's posts, titles only. Posts newest
 * first; their html is not used (may be NULL).
 */
int html_index_page(const struct config *cfg, const struct html_templates *t, int year,
                    struct post *const *posts, size_t n, const int *years, size_t nyears,
                    struct buf *out);

#endif
