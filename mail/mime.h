/*
 * mime: one newsletter e-mail as bytes (SPEC §8), built with libetpan:
 * the headers a list message needs, and a multipart/alternative of
 * text/plain and text/html (UTF-8, each part in the shorter of
 * quoted-printable and base64, no line over 76 characters). Display names and
 * the subject are RFC 2047 encoded when not plain ASCII, never splitting a
 * UTF-8 sequence; CR, LF and other controls in any header value are replaced,
 * so no caller-supplied text can add a header.
 */
#ifndef NASHRA_MIME_H
#define NASHRA_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"

struct mime_addr {
    const char *name;  /* display name, UTF-8, may be NULL or "" */
    const char *email; /* addr-spec, ASCII (validated by the caller) */
};

struct mime_message {
    struct mime_addr from;
    struct mime_addr to;
    const char *subject;      /* UTF-8 */
    int64_t date;             /* unix seconds: Date: in RFC 5322 form, +0000 */
    const char *message_id;   /* "id@host", without the angle brackets */
    const char *list_id;      /* List-Id: "name <id.host>" (name may be non-ASCII) */
    const char *list_name;    /* the name part of List-Id, or NULL */
    const char *unsub_https;  /* List-Unsubscribe https URL (also One-Click POST) */
    const char *unsub_mailto; /* List-Unsubscribe mailto URL, or NULL */
    const char *html;         /* the text/html part, UTF-8 */
    size_t html_len;
    const char *text; /* the text/plain part, UTF-8 */
    size_t text_len;
};

/*
 * Appends the whole message (CRLF line ends, ending with CRLF) to out.
 * Adds MIME-Version, Auto-Submitted: auto-generated and
 * List-Unsubscribe-Post: List-Unsubscribe=One-Click. 0, or -1 (out as it was).
 */
int mime_build(const struct mime_message *m, struct buf *out);

/* Appends s as a header value: as is when printable ASCII, else RFC 2047
 * encoded-words (UTF-8, B or Q, each at most 75 characters, split only between
 * characters). Controls are replaced by spaces. 0 or -1. */
int mime_header_text(struct buf *out, const char *s);

/* 1 if s is an acceptable mailbox address (local@domain, ASCII, no spaces or
 * controls, at most 254 characters); writes its normalised form (domain
 * lower-cased, surrounding spaces dropped) to out when out is not NULL. */
int mime_address_ok(const char *s, struct buf *out);

#endif
