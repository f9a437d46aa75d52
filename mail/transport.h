/*
 * transport: hands finished messages to the mail system, without blocking
 * the daemon's loop (SPEC §8). Two kinds:
 *   - maildir: each message a file in maildir_path/new (written to tmp/,
 *     then renamed), done at once;
 *   - smtp: libcurl's SMTP on one multi handle driven from daemon/loop.c
 *     (its sockets and timer registered there): STARTTLS or implicit TLS,
 *     AUTH, at most `connections` connections kept open across messages, at
 *     most `rate` messages a second, timeouts.
 * Every message ends in exactly one call of the done callback with its
 * outcome: TRANSPORT_SENT only once the server accepted it (250 after DATA);
 * TRANSPORT_RETRY for 4xx replies, network and TLS errors, timeouts;
 * TRANSPORT_FAILED for 5xx replies (the code and the server's text given).
 */
#ifndef NASHRA_TRANSPORT_H
#define NASHRA_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"

struct loop;
struct transport;

enum transport_outcome { TRANSPORT_SENT, TRANSPORT_RETRY, TRANSPORT_FAILED };

typedef void (*transport_done_fn)(void *arg, uint64_t id, enum transport_outcome outcome,
                                  int code, const char *why);

/* loop NULL: a blocking transport for one-shot commands (transport_wait). */
struct transport *transport_new(const struct config *cfg, struct loop *loop,
                                transport_done_fn done, void *arg);
void transport_free(struct transport *t);

/* 1 when another message may be handed over now (connections and rate). */
int transport_ready(struct transport *t);

/*
 * Hands over one message (the transport keeps its own copy): envelope
 * sender (VERP), one recipient, the bytes (CRLF). 0, or -1 when it could
 * not even be queued (then done is not called).
 */
int transport_send(struct transport *t, uint64_t id, const char *env_from, const char *rcpt,
                   const char *data, size_t len);

/* Messages handed over and not done yet. */
size_t transport_inflight(const struct transport *t);

/* Timed work (libcurl's timer, the rate limit); milliseconds until it wants
 * to run again, -1 for none. The daemon calls it from its tick. */
int64_t transport_tick(struct transport *t);

/* Without a loop: runs until every message handed over is done or
 * timeout_ms passes. 0, or -1 on timeout. */
int transport_wait(struct transport *t, int64_t timeout_ms);

#endif
