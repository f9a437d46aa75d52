/*
 * post_render: the body of a post to safe HTML (internal to posts/).
 * Markdown goes through md4c's callback API so that every link and image is
 * made absolute and checked while rendering, and raw HTML is dropped unless
 * content.allow_html. Also collects the plain text the defaults need: the
 * first level-1 heading (title) and the first paragraph (summary).
 */
#ifndef NASHRA_POST_RENDER_H
#define NASHRA_POST_RENDER_H

#include <stddef.h>

#include "../lib/buf.h"

struct render_out {
    struct buf html;       /* the body, XML-safe */
    struct buf heading;    /* text of the first "# heading" */
    struct buf first_para; /* text of the first paragraph */
    size_t lead_h1_end;    /* the body opens with that heading: html[0, this) holds it; 0: no */
};

void render_out_init(struct render_out *o, size_t cap);
void render_out_free(struct render_out *o);

/* base: the post's URL (ends in '/'). 0, or -1 on a cap or md4c error. */
int render_markdown(const char *src, size_t len, const char *base, int allow_html,
                    struct render_out *o);

/* Plain text: blank-line separated blocks → <p>, single line breaks → <br>. */
int render_text(const char *src, size_t len, struct render_out *o);

/*
 * Resolves reference ref against base (RFC 3986 §5.2, dot segments removed)
 * into out. Returns 0, or -1 when the result would not be a safe link: a
 * scheme other than http, https, mailto, tel, ftp (javascript:, data:,
 * vbscript: ...), or one hidden by control characters or whitespace.
 */
int url_resolve(struct buf *out, const char *base, const char *ref, size_t reflen);

/* Cuts plain text to about max characters at a word boundary, adding "…";
 * whitespace runs become one space. Result in out (reset first). */
int text_summary(struct buf *out, const char *s, size_t len, size_t max);

#endif
