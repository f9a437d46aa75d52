/*
 * html2text: the text/plain part of a newsletter, made from its HTML with
 * libxml2's HTML parser: paragraphs and headings separated by blank lines,
 * other blocks (div, li, tr...) by line breaks, list items as "- item"
 * (numbered for <ol>, nested lists indented), links as "text <url>" (the URL
 * alone when it is the text), <br> as a line break, blockquotes as "> ",
 * <pre> kept as is, images by their alt text; scripts, styles, <head> and
 * hidden elements (hidden attribute, style display:none) dropped; white
 * space collapsed; lines wrapped at spaces to 72 characters (counted as
 * characters, not bytes: never inside a UTF-8 sequence, never inside a URL; a
 * longer word gets a line of its own).
 */
#ifndef NASHRA_HTML2TEXT_H
#define NASHRA_HTML2TEXT_H

#include <stddef.h>

#include "../lib/buf.h"

/* Appends the text of UTF-8 html[0, len) to out, every line ending in "\n"
 * (nothing for empty or blank input). 0, or -1 (out as it was: out's cap,
 * memory, or libxml2). */
int html_to_text(const char *html, size_t len, struct buf *out);

/*
 * The same text, recorded for filling in later (mail/compose's per-issue
 * cache): the HTML carries placeholders that start with rec->mark (a UTF-8
 * string no real text holds), and each paragraph whose text holds the mark
 * is kept as a region: out[start, end) is how it was written with the
 * placeholders, para its text before wrapping and st the state wrapping and
 * line prefixes used. h2t_region_write writes such a paragraph again, its
 * placeholders replaced, exactly as html_to_text would have written the
 * paragraph with those values (when they are single-spaced text without
 * controls). rec->urls are the link targets that held the mark (a value
 * there that holds a space, or begins a target with '#' or "javascript:",
 * would have been written otherwise); rec->unsafe is set when a decision
 * depended on the mark itself (a style, a list number, a link whose text
 * and target both held it): no template then.
 * out must be empty; offsets are from its start.
 */
struct h2t_state {
    int pre, sep, quote, last_quote;
    size_t indent;
    char marker[24];
};
struct h2t_region {
    size_t start, end;
    char *para;
    size_t len;
    struct h2t_state st;
};
struct h2t_rec {
    const char *mark; /* set by the caller */
    struct h2t_region *r;
    size_t n, alloc;
    char **urls;
    size_t nurls, aurls;
    int unsafe;
};
int html_to_text_rec(const char *html, size_t len, struct h2t_rec *rec, struct buf *out);
void h2t_rec_free(struct h2t_rec *rec);

/* Appends region r written with para[0, len) in place of its own text to
 * out, which holds everything the text had before r. 0, or -1. */
int h2t_region_write(const struct h2t_region *r, const char *para, size_t len, struct buf *out);

#endif
