/*
 * text: UTF-8 checks and the escapes every output needs (XML/HTML text and
 * attributes, URL percent-encoding). Stands alone.
 *
 * "XML-safe" means: only characters XML 1.0 allows (tab, LF, CR, U+0020-
 * U+D7FF, U+E000-U+FFFD, U+10000-U+10FFFF); C0/C1 controls other than tab,
 * LF and CR, U+FFFE/U+FFFF and invalid sequences are removed (SPEC §5).
 */
#ifndef NASHRA_TEXT_H
#define NASHRA_TEXT_H

#include <stddef.h>

#include "buf.h"

/*
 * Returns 1 if s[0..len) is valid UTF-8 (no overlongs, no surrogates, no NUL
 * bytes); otherwise 0 with *bad_off set to the offset of the first bad byte.
 */
int utf8_valid(const char *s, size_t len, size_t *bad_off);

/* The value of hexadecimal digit c, or -1. */
int text_hexval(int c);

/* 1 if valid UTF-8 s holds no character XML forbids (text_xml_clean would
 * copy it as is), else 0. */
int text_xml_is_clean(const char *s, size_t len);

/* Appends s with characters XML forbids removed. */
int text_xml_clean(struct buf *out, const char *s, size_t len);

/* Appends s escaped for XML/HTML text and attribute values (& < > " ');
 * forbidden characters are removed as by text_xml_clean. */
int text_escape_html(struct buf *out, const char *s, size_t len);

/* Appends s percent-encoded as one URL path segment (RFC 3986 unreserved kept;
 * UTF-8 bytes encoded as %XX, upper case). */
int text_url_segment(struct buf *out, const char *s, size_t len);

/* Number of bytes of the UTF-8 sequence starting with byte c (1 for invalid). */
size_t utf8_seqlen(unsigned char c);

#endif
