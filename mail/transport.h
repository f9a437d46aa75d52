/*
 * transport: hands finished messages to the mail system from the daemon's
 * loop (SPEC §8). Two kinds:
 *   - maildir: each message a file in maildir_path/new (written to tmp/,
 *     fsynced, then renamed) during transport_send;
 *   - smtp: libcurl's SMTP, one worker thread a connection (libcurl waits
 *     for some replies blocking: see transport_smtp.c), the outcomes
 *     brought back to the caller's thread through an eventfd that
 *     daemon/loop.c watches: STARTTLS or implicit TLS, AUTH, at most
 *     `connections` connections kept open across messages and sending in
 *     parallel, at most `rate` messages a second, timeouts.
 * Every message ends in exactly one call of the done callback with its
 * outcome: TRANSPORT_SENT only once the server accepted it (250 after DATA);
 * TRANSPORT_RETRY for 4xx replies, network and TLS errors, timeouts, I/O
 * errors, and 5xx replies before RCPT TO (greeting, AUTH, MAIL FROM: not the
 * recipient's fault); TRANSPORT_FAILED for 5xx replies to RCPT TO, DATA or
 * the end of DATA (the code and the server's text given).
 *
 * When done is called: on the caller's thread (never a worker's), from the
 * loop's callbacks, transport_tick or transport_wait, never from inside
 * transport_send (maildir too: its files are written at once, the outcomes
 * reported on the next tick). done may call transport_send; it must not call
 * transport_free. Its why is valid during
 * the call only: for SENT the server's reply ("250 2.0.0 Ok: queued as X") or
 * NULL, otherwise the server's reply line or the local error.
 */
#ifndef NASHRA_TRANSPORT_H
#define NASHRA_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"

struct loop;
struct transport;

enum transport_outcome { TRANSPORT_SENT, TRANSPORT_RETRY, TRANSPORT_FAILED };

typedef void (*transport_done_fn)(void *arg, uint64_t id, enum transport_outcome outcome, int code,
                                  const char *why);

/*
 * loop NULL: a blocking transport for one-shot commands (transport_wait).
 * Uses cfg during the call only. NULL on error (out of memory, libcurl).
 */
struct transport *transport_new(const struct config *cfg, struct loop *loop, transport_done_fn done,
                                void *arg);
/*
 * Messages still in flight are dropped without a done call (so their state
 * stays pending and they go again later); open connections are closed (SMTP
 * QUIT, its answer awaited a second at most). With a loop: call it before
 * loop_free.
 */
void transport_free(struct transport *t);

/* 1 when another message may be handed over now: fewer than `connections`
 * in flight (maildir: fewer than 64 outcomes unreported) and, for SMTP, a
 * token in the rate bucket. */
int transport_ready(struct transport *t);

/*
 * Hands over one message (the transport keeps its own copy): envelope
 * sender (VERP; "" or "<>" for the null sender), one recipient, the bytes
 * (CRLF, ending in CRLF). 0, or -1 when it could not even be queued (then
 * done is not called) with errno EAGAIN (not transport_ready), EINVAL (an
 * address longer than 320 bytes or holding a control byte, space, '<' or
 * '>': it would change the SMTP command it goes into) or ENOMEM.
 */
int transport_send(struct transport *t, uint64_t id, const char *env_from, const char *rcpt,
                   const char *data, size_t len);

/* Messages handed over and not done yet. */
size_t transport_inflight(const struct transport *t);

/* Timed work (the outcomes waiting, the rate limit);
 * milliseconds until it wants to run again (0: at once), -1 for none. The
 * daemon calls it from its tick, after handing messages over (a message
 * just handed over wants work at once), and sleeps no longer than it says.
 * Reports a token due only when the rate is all that keeps ready() at 0. */
int64_t transport_tick(struct transport *t);

/* Without a loop: runs until every message handed over is done (including
 * those its done callbacks hand over) or timeout_ms passes (< 0: no limit).
 * 0, or -1 with errno ETIMEDOUT (or EINVAL for an SMTP transport on a loop). */
int transport_wait(struct transport *t, int64_t timeout_ms);

#endif
