/*
 * sender: the newsletter side of the daemon (SPEC §8). It reads the
 * announcement log from its own cursor and turns each new post into one
 * issue per matching `each` list; it closes `digest` windows at their
 * schedule; and it drains the delivery queue through a transport, recording
 * each outcome as the server gives it. A delivery is marked sent only once
 * the server accepted the message, so a crash loses nothing and repeats at
 * most the messages that were in flight.
 */
#ifndef NASHRA_SENDER_H
#define NASHRA_SENDER_H

#include <stdint.h>

#include "../config/config.h"
#include "../lib/diag.h"
#include "../store/store.h"

struct loop;
struct sender;

/* loop NULL: a one-shot sender (sender_drain). NULL on error with err. */
struct sender *sender_new(const struct config *cfg, struct store *st, struct loop *loop,
                          struct diag *err);
void sender_free(struct sender *s);

/* The daemon's consumer hooks (daemon/serve.c): new announcements up to
 * last_seq; timed work, returning the milliseconds until it is due again
 * (-1: nothing until the next event). */
void sender_announced(void *arg, int64_t last_seq);
int64_t sender_tick(void *arg, int64_t now_ms);

/* One-shot: takes in the announcements, closes due digests, and sends until
 * nothing is due (or timeout_ms passes). 0, or -1. */
int sender_drain(struct sender *s, int64_t timeout_ms);

/* Counters for /metrics and status. */
struct sender_stats {
    uint64_t sent, failed, retried;
    size_t inflight;
};
void sender_stats(const struct sender *s, struct sender_stats *out);

#endif
