/*
 * ratelimit: "at most max events per window seconds for this key", in a
 * bounded table held in memory (a fixed number of slots, set at creation):
 * for the daemon's /subscribe (per client address, per e-mail address).
 * Keys are hashed with a random per-table seed (SipHash-like mixing is not
 * needed: a flood of crafted keys can only evict entries, never grow the
 * table); when a key's neighbourhood is full the entry whose window started
 * longest ago is taken over, so under a flood of distinct keys the oldest
 * limits are forgotten first. Stands alone: nothing of ours.
 */
#ifndef NASHRA_RATELIMIT_H
#define NASHRA_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/* slots: entries kept (at least 16). NULL when out of memory. */
struct ratelimit *ratelimit_new(size_t slots);
void ratelimit_free(struct ratelimit *r);

/* Counts one event for key at now (seconds) in a fixed window of window
 * seconds: 1 when it is within max (counted), 0 when over (not counted). */
int ratelimit_hit(struct ratelimit *r, const char *key, int64_t now, int max, int64_t window);

#endif
