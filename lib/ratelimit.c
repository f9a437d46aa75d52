/*
 * ratelimit: fixed-window counters in an open-addressed table (see
 * ratelimit.h). A slot holds the key's 64-bit hash, not the key: two keys
 * sharing a hash (one chance in 2^64 per pair) share a limit.
 */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROBE 8 /* slots a key may live in */

struct rl_slot {
    uint64_t hash; /* 0: free */
    int64_t start; /* the window's start */
    int count;
};

struct ratelimit {
    struct rl_slot *v;
    size_t n;
    uint64_t seed;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

struct ratelimit *ratelimit_new(size_t slots)
{
    struct ratelimit *r = calloc(1, sizeof *r);
    struct timespec ts;
    if (slots < 16)
        slots = 16;
    if (!r || !(r->v = calloc(slots, sizeof *r->v))) {
        free(r);
        return NULL;
    }
    r->n = slots;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->seed = mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid() ^
                  (uint64_t)(uintptr_t)r);
    return r;
}

void ratelimit_free(struct ratelimit *r)
{
    if (!r)
        return;
    free(r->v);
    free(r);
}

static uint64_t hash_key(const struct ratelimit *r, const char *key)
{
    uint64_t h = r->seed;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = mix(h ^ *p) + 0x9e3779b97f4a7c15ULL;
    return h ? h : 1;
}

int ratelimit_hit(struct ratelimit *r, const char *key, int64_t now, int max, int64_t window)
{
    uint64_t h = hash_key(r, key);
    struct rl_slot *found = NULL, *victim = NULL;
    int victim_free = 0; /* victim is free or its window is over */
    for (size_t i = 0; i < PROBE; i++) {
        struct rl_slot *s = &r->v[(h + i) % r->n];
        if (s->hash == h) {
            found = s;
            break;
        }
        if (!s->hash || now - s->start >= window) {
            if (!victim_free) {
                victim = s;
                victim_free = 1;
            }
        } else if (!victim_free && (!victim || s->start < victim->start)) {
            victim = s; /* all taken: the oldest window goes */
        }
    }
    if (!found) {
        found = victim;
        found->hash = h;
        found->start = now;
        found->count = 0;
    }
    if (now - found->start >= window || now < found->start) {
        found->start = now;
        found->count = 0;
    }
    if (found->count >= max)
        return 0;
    found->count++;
    return 1;
}
