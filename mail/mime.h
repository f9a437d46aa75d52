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
    const char *email; /* addr-spec, ASCII; mime_build checks it again with
                        * mime_address_ok and writes the normalised form */
};

struct mime_message {
    struct mime_addr from;
    struct mime_addr to;
    const char *subject;      /* UTF-8 */
    int64_t date;             /* unix seconds: Date: in RFC 5322 form, +0000 */
    const char *message_id;   /* "id@host", without the angle brackets */
    const char *list_id;      /* "id.host" (RFC 2919), without angle brackets: the
                               * header is List-Id: list_name <list_id> */
    const char *list_name;    /* the name part of List-Id (may be non-ASCII), or NULL */
    const char *unsub_https;  /* List-Unsubscribe https URL (also One-Click POST) */
    const char *unsub_mailto; /* List-Unsubscribe mailto URL, or NULL */
    const char *html;         /* the text/html part, UTF-8 */
    size_t html_len;
    const char *text; /* the text/plain part, UTF-8 */
    size_t text_len;
    int no_list; /* 1: a message to one person (a confirmation), not a list's:
                  * no List-Id, List-Unsubscribe or List-Unsubscribe-Post
                  * (list_id, list_name and the unsub URLs are then unused) */
};

/*
 * Appends the whole message (CRLF line ends, ending with CRLF) to out:
 * From, To, Subject, Date, Message-ID, List-Id, List-Unsubscribe,
 * List-Unsubscribe-Post: List-Unsubscribe=One-Click, Auto-Submitted:
 * auto-generated, MIME-Version, then the multipart/alternative (text/plain,
 * then text/html). Line breaks in both parts are sent as CRLF (the canonical
 * form: a reader decoding them gets CRLF back). The same message gives the same
 * bytes (the boundary comes from the Message-ID).
 * Lines stay within 76 characters as long as the tokens that cannot be folded
 * do: a Message-ID of at most 62 characters, an https URL of at most 72, a
 * mailto URL of at most 73, a list id of at most 72 (longer ones make longer
 * lines, always under 998).
 * 0, or -1 (out as it was): out's cap, memory, an unacceptable address, a
 * missing or malformed message_id / list_id / unsub_https (https:// only) /
 * unsub_mailto (mailto: only) (tokens: printable ASCII without spaces or angle
 * brackets, at most 900 bytes), a part that is not valid UTF-8, a NULL part
 * with a length.
 */
int mime_build(const struct mime_message *m, struct buf *out);

/*
 * Appends s (UTF-8, NULL as "") as an unstructured header value. First made
 * safe: controls (CR and LF among them), DEL, C1 controls and U+2028/U+2029
 * become spaces, invalid UTF-8 becomes U+FFFD, runs of white space become one
 * space, none at either end. Then written as is when printable ASCII with no
 * "=?" and no word over 62 characters; else as RFC 2047 encoded-words (UTF-8,
 * B or Q, whichever is shorter for the whole text; each word at most 62
 * characters, under RFC 2047's 75, so it fits after "Subject: "; split only
 * between characters), separated by single spaces where the writer may fold.
 * 0, or -1 (out as it was; text over 8 KiB once cleaned).
 */
int mime_header_text(struct buf *out, const char *s);

/*
 * 1 if s is an acceptable mailbox address, else 0. Pragmatic: surrounding
 * spaces, tabs, CR and LF are dropped; then local@domain, at most 254
 * characters, ASCII only (no SMTPUTF8); the local part a dot-atom (RFC 5322
 * atext and single inner dots, at most 64; quoted local parts are refused);
 * the domain a host name (letters, digits, inner hyphens; labels of 1-63;
 * no address literals; "localhost" is accepted). Appends the normalised form
 * (domain lower-cased, local part kept) to out when out is not NULL; 0, out as
 * it was, when out cannot take it.
 */
int mime_address_ok(const char *s, struct buf *out);

#endif
