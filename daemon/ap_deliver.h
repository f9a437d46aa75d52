/*
 * ap_deliver: the ActivityPub side of the daemon's announcements (SPEC §7).
 * It reads the announcement log from its own cursor and turns each event
 * into an activity for the followers (published: Create, updated: Update
 * with `updated`, removed: Delete of a Tombstone), queued in the store as
 * one delivery per distinct inbox (a follower's sharedInbox when it has
 * one); and it drains that queue with signed POSTs (draft-cavage rsa-sha256
 * over (request-target) host date digest) through libcurl's multi
 * interface driven by the daemon's epoll loop: bounded concurrency,
 * connections kept alive, exponential backoff across restarts for up to
 * two days; 400/401/403/404/410/422 are final, and 410 Gone removes the
 * followers at that inbox. A delivery is marked done only when the inbox
 * answered, so a crash repeats at most those in flight.
 */
#ifndef NASHRA_AP_DELIVER_H
#define NASHRA_AP_DELIVER_H

#include <openssl/evp.h>
#include <stdint.h>

#include "../config/config.h"
#include "../lib/diag.h"
#include "../store/store.h"

#define AP_DELIVER_SIGNERS     2                     /* threads that sign requests */
#define AP_DELIVER_CONCURRENCY 16                    /* requests in flight */
#define AP_DELIVER_GIVE_UP     (2 * 24 * 3600)       /* seconds after the activity was made */
#define AP_BACKOFF_ENV         "NASHRA_AP_BACKOFF_S" /* tests: first retry delay, 1 to 3600 */

struct loop;
struct ap_deliver;

/* key (the actor's, not owned) signs; key_id is {actor}#main-key (copied).
 * The first deliverer on a state starts its cursor at the end of the log:
 * the back catalogue is never sent. NULL on error with err. */
struct ap_deliver *ap_deliver_new(const struct config *cfg, struct store *st, struct loop *loop,
                                  EVP_PKEY *key, const char *key_id, struct diag *err);
void ap_deliver_free(struct ap_deliver *d);

/* A new configuration (reload); the same state and key. */
void ap_deliver_config(struct ap_deliver *d, const struct config *cfg);

/* The daemon's consumer hooks (daemon/serve.c). */
void ap_deliver_announced(void *arg, int64_t last_seq);
int64_t ap_deliver_tick(void *arg, int64_t now_ms);

/* A new actor key (rotated): signs from now on (not owned). */
void ap_deliver_set_key(struct ap_deliver *d, EVP_PKEY *key);

/* New deliveries were queued by someone else (the inbox's Accept). */
void ap_deliver_kick(void *arg);

/* One-shot (`nashra build --deliver`): takes in the announcements and sends
 * every delivery due now, running loop (its own) until none is left in
 * flight or timeout_ms passes (-1 then). Retries due later stay queued. */
int ap_deliver_drain(struct ap_deliver *d, int64_t timeout_ms);

struct ap_deliver_stats {
    uint64_t sent, failed, retried, activities;
    size_t inflight;
    int64_t followers, pending; /* from the store (-1: unknown) */
};
/* d NULL: zeros. */
void ap_deliver_stats(struct ap_deliver *d, struct ap_deliver_stats *out);

#endif
