/*
 * mail_store: the newsletter tables of the state (SPEC §8, §9) on the store's
 * one SQLite connection (store_sqlite): the subscribers of each list, the
 * issues (one list × one post, or one list × one digest window) and their
 * deliveries, which are the send queue, and the sender's cursor in the
 * announcement log.
 *
 * Creating an issue fixes its recipients: the issue row and one 'pending'
 * delivery per subscriber active at that moment are written in one
 * transaction, and nobody is added later. A delivery then goes pending ->
 * sent | retry (-> sent | retry | failed) | failed, each change one UPDATE by
 * primary key. A subscriber who stops being active (unsubscribed, bounced,
 * removed) has the deliveries still open to them closed as 'failed' in the
 * same transaction, so nobody is mailed after leaving and the queue drains.
 *
 * Strings: list ids, e-mail addresses (normalised by the caller, through
 * mime_address_ok; compared without regard to ASCII case, so Ali@x.org and
 * ali@x.org are one subscriber, kept as first written), names and post
 * paths are UTF-8; extra is a JSON object text. Functions that change
 * several rows use the caller's transaction when one is open (a savepoint
 * inside it), else their own (BEGIN IMMEDIATE). Errors: -1, with
 * store_errmsg(st) telling why.
 */
#ifndef NASHRA_MAIL_STORE_H
#define NASHRA_MAIL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum mail_sub_state {
    MAIL_SUB_PENDING,      /* signed up, not confirmed: not mailed */
    MAIL_SUB_ACTIVE,       /* a recipient of every new issue */
    MAIL_SUB_UNSUBSCRIBED, /* left: never mailed again */
    MAIL_SUB_BOUNCED,      /* a hard bounce, or mail.bounces.soft_limit soft ones */
};
#define MAIL_SUB_ANY (-1) /* for filters: every state */

/* "pending", "active", "unsubscribed", "bounced" (NULL for anything else). */
const char *mail_sub_state_name(int state);
/* The enum value of such a name, or -1. */
int mail_sub_state_parse(const char *name);

enum mail_issue_kind { MAIL_ISSUE_EACH, MAIL_ISSUE_DIGEST };

struct mail_store;

/* Prepares the statements on st's connection (whose schema must be current:
 * store_open migrates it). NULL on error (store_errmsg(st) tells why).
 * Free it before store_close(st). */
struct mail_store *mail_store_new(struct store *st);
void mail_store_free(struct mail_store *ms);

/* ---- subscribers -------------------------------------------------------- */

struct mail_subscriber {
    int64_t id; /* never reused, even after a removal */
    const char *list;
    const char *email;
    const char *name;  /* "" when none */
    const char *extra; /* JSON object text, "{}" when none */
    int state;         /* enum mail_sub_state */
    int soft_bounces;  /* since the last time the subscriber became active */
    int64_t created, updated;
};

/* Adds email to list in state (PENDING or ACTIVE, usually); name and extra
 * may be NULL ("" and "{}"). 1 added, 0 already on the list (in whatever
 * state: nothing is changed), -1 error. */
int mail_sub_add(struct mail_store *ms, const char *list, const char *email, const char *name,
                 const char *extra, int state, int64_t now);

/* Sets a subscriber's state (becoming active clears soft_bounces; leaving
 * active closes their open deliveries as failed, error = the new state).
 * 1 done (or already in that state), 0 no such subscriber, -1 error. */
int mail_sub_set_state(struct mail_store *ms, const char *list, const char *email, int state,
                       int64_t now);
int mail_sub_set_state_id(struct mail_store *ms, int64_t id, int state, int64_t now);

/* Deletes the subscriber (their open deliveries closed as failed,
 * error "removed"; the finished ones kept for the issues' counts).
 * 1 removed, 0 no such subscriber, -1 error. */
int mail_sub_remove(struct mail_store *ms, const char *list, const char *email, int64_t now);

/* One subscriber, by id or by (list, email): 1 and *out (one malloc'd block,
 * strings included: the caller frees it with free()), 0 none, -1 error. */
int mail_sub_get(struct mail_store *ms, int64_t id, struct mail_subscriber **out);
int mail_sub_find(struct mail_store *ms, const char *list, const char *email,
                  struct mail_subscriber **out);

/* Calls fn for each subscriber of list in state (or MAIL_SUB_ANY), in the
 * order they were added; s and its strings are valid during the call only.
 * Stops and returns fn's value when it is not 0; 0 at the end; -1 error.
 * fn must not write to the store. */
typedef int (*mail_sub_fn)(void *arg, const struct mail_subscriber *s);
int mail_sub_each(struct mail_store *ms, const char *list, int state, mail_sub_fn fn, void *arg);

/* Subscribers of list in state (or MAIL_SUB_ANY); -1 on error. */
int64_t mail_sub_count(struct mail_store *ms, const char *list, int state);

/* Counts one soft bounce: the subscriber's new soft_bounces (the caller
 * compares it with mail.bounces.soft_limit and sets BOUNCED), 0 no such
 * subscriber, -1 error. */
int mail_sub_soft_bounce(struct mail_store *ms, int64_t id, int64_t now);

/* ---- issues ------------------------------------------------------------- */

/*
 * Creates list's 'each' issue for the post stored at post (its path) with one
 * pending delivery per subscriber active now, total = their number, in one
 * transaction. 1 created, 0 it already existed (nothing written: an
 * announcement handled twice makes one issue), -1 error; *id (when not
 * NULL) gets the issue's id either way.
 */
int mail_issue_each(struct mail_store *ms, const char *list, const char *post, int64_t now,
                    int64_t *id);

/* The same for list's digest of the window [from, to); an issue is known by
 * (list, to). */
int mail_issue_digest(struct mail_store *ms, const char *list, int64_t from, int64_t to,
                      int64_t now, int64_t *id);

/* The end (window_to) of list's newest digest issue; 0 when none, -1 error. */
int64_t mail_last_digest(struct mail_store *ms, const char *list);

/* An issue and where its deliveries stand (sent + failed + retrying +
 * pending == total). */
struct mail_issue {
    int64_t id;
    const char *list;
    int kind;                       /* enum mail_issue_kind */
    const char *post;               /* each: the post's path; digest: NULL */
    int64_t window_from, window_to; /* digest: [from, to); each: 0, 0 */
    int64_t created;
    int64_t total, sent, failed, retrying, pending;
};

/* Fills p's counts (total .. pending) for issue id, its other fields left
 * as they are. 1, 0 no such issue, -1 error. */
int mail_issue_progress(struct mail_store *ms, int64_t id, struct mail_issue *p);

/* Calls fn for each issue of list (NULL: of every list), newest first, with
 * its progress; strings valid during the call only. As mail_sub_each. */
typedef int (*mail_issue_fn)(void *arg, const struct mail_issue *is);
int mail_issue_each_progress(struct mail_store *ms, const char *list, mail_issue_fn fn, void *arg);

/* ---- deliveries: the send queue ----------------------------------------- */

/* A delivery's primary key; also the sender's place in the queue. */
struct mail_key {
    int64_t issue, subscriber;
};

/* One due delivery and what sending it takes. Every string lives in mem,
 * which mail_due_free releases. */
struct mail_delivery {
    struct mail_key key;
    int attempts; /* made so far (0 for a pending one) */
    const char *list;
    int kind;                       /* enum mail_issue_kind */
    const char *post;               /* each: the post's path; digest: NULL */
    int64_t window_from, window_to; /* digest */
    int64_t subscriber_id;          /* == key.subscriber */
    const char *email, *name, *extra;
    char *mem;
};

/*
 * Up to max due deliveries (pending, or retry with next_try <= now) whose
 * subscriber is active, ordered by (issue, subscriber), those after the key
 * *after only when after is not NULL (so a sender with a batch still in
 * flight asks for the next one; it starts again from NULL when a fetch
 * comes back short). *v (malloc'd, NULL when *n is 0) is freed with
 * mail_due_free. 0, or -1 (*v NULL, *n 0).
 */
int mail_due(struct mail_store *ms, int64_t now, const struct mail_key *after, size_t max,
             struct mail_delivery **v, size_t *n);
void mail_due_free(struct mail_delivery *v, size_t n);

/* A delivery's outcome, one UPDATE each; attempts + 1 in all three.
 * sent: the server accepted the message. retry: try again at next_try (the
 * caller's backoff). failed: for good (a 5xx, or too many attempts).
 * code: the SMTP reply code (0: none, stored NULL); error: a short reason
 * or NULL. 0, or -1. */
int mail_delivery_sent(struct mail_store *ms, struct mail_key k, int64_t now);
int mail_delivery_retry(struct mail_store *ms, struct mail_key k, int64_t next_try, int code,
                        const char *error);
int mail_delivery_failed(struct mail_store *ms, struct mail_key k, int64_t now, int code,
                         const char *error);

/* The earliest next_try of the deliveries waiting to be retried after now
 * (a retry already due is left to mail_due): 0 when none, -1 error. The
 * sender asks it on start and whenever the retry it waited for has come, so
 * a retry set before a restart, or later than the one it waited for, is
 * not forgotten. */
int64_t mail_next_retry(struct mail_store *ms, int64_t now);

/* ---- the sender's cursor in the announcement log ------------------------ */

/* The seq of the last announcement the sender has turned into issues
 * (meta key "mail_cursor"): 0 when none. */
int64_t mail_cursor_get(struct mail_store *ms);
int mail_cursor_put(struct mail_store *ms, int64_t seq);
/* Sets the cursor to seq when it was never set (a sender's first start:
 * what was announced before it existed is not mailed); 1 set, 0 it was
 * there already, -1 error. */
int mail_cursor_init(struct mail_store *ms, int64_t seq);

#endif
