/*
 * dkim: a DKIM-Signature (RFC 6376) for a whole message (SPEC §8, §3
 * mail.dkim): rsa-sha256, relaxed/relaxed, over From, To, Subject, Date,
 * Message-ID, MIME-Version, Content-Type, List-Id, List-Unsubscribe and
 * List-Unsubscribe-Post (those present; From always), so a receiver can
 * trust the one-click unsubscribe headers. The header is folded so that no
 * line is over 76 characters (as long as the domain and selector fit) and is
 * put in front of the message.
 */
#ifndef NASHRA_DKIM_H
#define NASHRA_DKIM_H

#include <stdint.h>

#include "../lib/buf.h"
#include "../lib/diag.h"

struct dkim;

/*
 * Loads the signing key: key_file an unencrypted PEM RSA private key of 1024
 * bits or more, a regular file not readable by group or others (mode 600).
 * domain and selector: host-name-like (letters, digits, '-', '_', '.'),
 * at most 253 characters. NULL, with err set, on any failure.
 */
struct dkim *dkim_load(const char *domain, const char *selector, const char *key_file,
                       struct diag *err);
void dkim_free(struct dkim *d);

/*
 * Signs msg (RFC 5322 bytes with CRLF line ends, as mime_build makes them)
 * with t=now and puts the DKIM-Signature header in front of it. 0, or -1
 * (msg as it was: no header section, no From header, msg's cap, memory,
 * signing failed).
 */
int dkim_sign(const struct dkim *d, int64_t now, struct buf *msg);

#endif
