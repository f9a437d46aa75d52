/*
 * dsn: reads a bounce (SPEC §8): a Delivery Status Notification (RFC 3464:
 * multipart/report; report-type=delivery-status, with a
 * message/delivery-status part; RFC 6533's message/global-delivery-status
 * too), parsed with libetpan's MIME parser. A pure function over a buffer
 * (no file, no store, no key), so it can be unit tested and fuzzed: it says
 * what the report says per recipient and where the bounce was addressed
 * (the VERP address the caller checks: mail/newsletter.h), and what that
 * means for the subscriber (dsn_verdict). Anything that is not a DSN (an
 * auto-reply, spam, a human answer) is not one: its verdict is DSN_NONE.
 */
#ifndef NASHRA_DSN_H
#define NASHRA_DSN_H

#include <stddef.h>

#define DSN_MAX_RCPT  16  /* per-recipient blocks kept; more are ignored */
#define DSN_MAX_ADDRS 8   /* candidate bounce addresses kept */
#define DSN_ADDR_MAX  400 /* bytes of one of them (longer ones are cut) */

struct dsn_rcpt {
    char action[24]; /* "failed", "delayed", "delivered", ... lower-cased; "" when absent */
    char status[16]; /* "5.1.1" (the code only); "" when absent or malformed */
    char recipient[DSN_ADDR_MAX]; /* Final-Recipient's value ("rfc822; a@b"), "" */
};

struct dsn {
    int is_dsn; /* a delivery-status part was found and read */
    struct dsn_rcpt rcpt[DSN_MAX_RCPT];
    size_t nrcpt;
    /* Where the bounce went, most telling first: the Delivered-To and
     * X-Original-To headers the delivering MTA adds (the envelope
     * recipient), the To header (MTAs address a DSN to the envelope sender
     * of the message that bounced), and the report's X-Postfix-Sender
     * (that envelope sender itself). Raw header values. */
    char addrs[DSN_MAX_ADDRS][DSN_ADDR_MAX];
    size_t naddrs;
};

/*
 * Parses the message in buf[0..len) into *out (zeroed first). 0 when it is
 * a message at all (out->is_dsn then says whether it is a DSN); -1 when
 * libetpan cannot parse it (out stays zeroed). Never reads past len; any
 * bytes, NULs included, are fine.
 */
int dsn_parse(const char *buf, size_t len, struct dsn *out);

enum dsn_verdict {
    DSN_NONE, /* not a DSN, or nothing failed (delivered, relayed, expanded) */
    DSN_SOFT, /* the MTA gave up on a transient failure: 4.x.x with Action failed */
    DSN_HARD, /* a permanent failure: 5.x.x with Action failed */
};
/* Without an Action field the status class decides alone. A delay warning
 * (Action delayed) is no bounce at all: the message may still arrive, and
 * its final failure, if any, comes as a DSN of its own (counting both would
 * count one message twice). */

/* The worst outcome among d's recipients (one message, one recipient with
 * VERP: a report naming several is read as a whole). */
enum dsn_verdict dsn_verdict(const struct dsn *d);

#endif
