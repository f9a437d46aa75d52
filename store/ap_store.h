/*
 * ap_store: the ActivityPub tables of the state (SPEC §7, §9) on the store's
 * one SQLite connection (store_sqlite): the followers, the cache of remote
 * actors' public keys, the delivery queue, and the AP consumer's cursor in
 * the announcement log (a meta row).
 *
 * The queue holds each activity's body once (ap_activities) and one delivery
 * row per (activity, target inbox). Enqueueing for the followers makes one
 * row per distinct inbox: a follower's sharedInbox when it has one, else its
 * own inbox; the rows are fixed when the activity is made (a follower who
 * arrives later does not get it). A delivery goes pending -> sent | retry
 * (-> sent | retry | failed) | failed, each change one UPDATE by primary key.
 *
 * Strings are UTF-8 (actor ids and inbox URLs as received). Functions that
 * change several rows use the caller's transaction when one is open, else
 * their own. Errors: -1, with store_errmsg(st) telling why.
 */
#ifndef NASHRA_AP_STORE_H
#define NASHRA_AP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct ap_store;

/* Prepares the statements on st's connection (schema current: store_open
 * migrates it). NULL on error. Free it before store_close(st). */
struct ap_store *ap_store_new(struct store *st);
void ap_store_free(struct ap_store *as);

/* ---- followers ----------------------------------------------------------- */

/* Adds actor (or updates its inboxes when it follows again); shared_inbox
 * may be NULL. 1 added, 0 already there, -1. */
int ap_follower_put(struct ap_store *as, const char *actor, const char *inbox,
                    const char *shared_inbox, int64_t now);
/* Removes actor. 1 removed, 0 was not a follower, -1. */
int ap_follower_remove(struct ap_store *as, const char *actor);
/* Removes every follower whose inbox or shared inbox is inbox (a 410 Gone
 * there). The number removed, or -1. */
int64_t ap_followers_remove_inbox(struct ap_store *as, const char *inbox);
/* 1 when actor follows, 0 when not, -1. */
int ap_follower_is(struct ap_store *as, const char *actor);
int64_t ap_followers_count(struct ap_store *as);
/* Distinct delivery inboxes of the followers (sharedInbox, else inbox). */
int64_t ap_followers_inboxes(struct ap_store *as);

/* ---- remote keys ------------------------------------------------------- */

/* The cached key key_id: 1 with *owner and *pem malloc'd (and *fetched_at
 * when not NULL), 0 not cached, -1. */
int ap_key_get(struct ap_store *as, const char *key_id, char **owner, char **pem,
               int64_t *fetched_at);
int ap_key_put(struct ap_store *as, const char *key_id, const char *owner, const char *pem,
               int64_t now);

/* ---- the delivery queue -------------------------------------------------- */

/* Stores body as a new activity and one pending delivery to each distinct
 * follower inbox. *deliveries (when not NULL) gets their number. With no
 * follower, nothing is stored. Returns the activity's id (0: none stored),
 * or -1. */
int64_t ap_enqueue_followers(struct ap_store *as, const char *body, int64_t now,
                             int64_t *deliveries);
/* Stores body and one pending delivery to inbox; the activity's id or -1. */
int64_t ap_enqueue_one(struct ap_store *as, const char *body, const char *inbox, int64_t now);

struct ap_delivery {
    int64_t activity;
    char *inbox;
    int attempts;
    int64_t created; /* the activity's */
};

/* At most limit due deliveries (pending, or retry with next_try <= now),
 * in (activity, inbox) order after (after_activity, after_inbox) (after_inbox
 * NULL: from the start). Free with ap_due_free. 0, or -1. */
int ap_due(struct ap_store *as, int64_t now, int64_t after_activity, const char *after_inbox,
           size_t limit, struct ap_delivery **out, size_t *n);
void ap_due_free(struct ap_delivery *v, size_t n);

/* The body of activity id (malloc'd), or NULL. */
char *ap_activity_body(struct ap_store *as, int64_t id);

int ap_delivery_sent(struct ap_store *as, int64_t activity, const char *inbox, int64_t now,
                     int code);
int ap_delivery_retry(struct ap_store *as, int64_t activity, const char *inbox, int64_t next_try,
                      int code, const char *error);
int ap_delivery_failed(struct ap_store *as, int64_t activity, const char *inbox, int64_t now,
                       int code, const char *error);

/* The earliest next_try of a retry after now (0: none), or -1. */
int64_t ap_next_retry(struct ap_store *as, int64_t now);

/* Deliveries pending or waiting for a retry, or -1. */
int64_t ap_pending_count(struct ap_store *as);

/* Forgets deliveries finished (sent or failed) before `before`, and the
 * activities made before then that no delivery names any more. The number
 * of deliveries removed, or -1. */
int64_t ap_prune(struct ap_store *as, int64_t before);

/* ---- the consumer's cursor --------------------------------------------- */

int64_t ap_cursor_get(struct ap_store *as);
int ap_cursor_put(struct ap_store *as, int64_t seq);
/* Sets the cursor to seq unless one is set: 1 set, 0 was set, -1. */
int ap_cursor_init(struct ap_store *as, int64_t seq);

/* The url the announcement seq names (malloc'd), or NULL. */
char *ap_announcement_url(struct ap_store *as, int64_t seq);

#endif
