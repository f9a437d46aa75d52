/*
 * html2text: the text/plain part of a newsletter, made from its HTML with
 * libxml2's HTML parser: paragraphs and headings separated by blank lines,
 * list items as "- item" (numbered for <ol>), links as "text <url>", <br> as
 * a line break, images by their alt text, scripts and styles dropped, lines
 * wrapped near 72 characters at spaces (never inside a UTF-8 sequence).
 */
#ifndef NASHRA_HTML2TEXT_H
#define NASHRA_HTML2TEXT_H

#include <stddef.h>

#include "../lib/buf.h"

/* Appends the text of html[0, len) to out. 0, or -1 (out's cap, or libxml2). */
int html_to_text(const char *html, size_t len, struct buf *out);

#endif
