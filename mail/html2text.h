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

#endif
