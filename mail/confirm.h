/*
 * confirm: the double opt-in message (SPEC §6, §8): "confirm your
 * subscription to LIST" with the link to {site.url}/confirm?t=TOKEN, in the
 * list's language (Arabic or English, right to left where the language is),
 * as a whole RFC 5322 message from mail.from, with the VERP envelope
 * sender of issue 0 (a bounce of it marks the address bounced), DKIM-signed
 * when the composer has a key. No List-* headers: it goes to one person who
 * asked for it.
 */
#ifndef NASHRA_CONFIRM_H
#define NASHRA_CONFIRM_H

#include <stdint.h>

#include "../lib/buf.h"
#include "compose.h"

/*
 * The confirmation for subscriber to of list li (c->cfg->lists[li]), its
 * link's token issued at now. msg: the message; verp: the envelope sender.
 * 0, or -1 (a cap, memory, an address mime_build refuses).
 */
int confirm_compose(const struct composer *c, size_t li, const struct newsletter_to *to,
                    int64_t now, struct buf *msg, struct buf *verp);

/* 1 if lang (a BCP 47 tag) is Arabic: the built-in texts are Arabic or English. */
int confirm_lang_ar(const char *lang);

#endif
