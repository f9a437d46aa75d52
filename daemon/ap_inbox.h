/*
 * ap_inbox: POST /ap/inbox (the actor's inbox and its shared inbox, SPEC §7):
 * checks each request's HTTP signature against its actor's key (fetched by a
 * signed GET, cached in the store, fetched again once when it no longer
 * verifies), then handles Follow (a follower, and an Accept queued to them),
 * Undo{Follow} and Delete of a follower; anything else is 202 and ignored.
 * Unsigned, forged or mismatched requests are 401 and change nothing.
 *
 * The key and actor fetches (ap/fetch: blocking, bounded by its timeout)
 * run on AP_INBOX_WORKERS worker threads while the request waits suspended
 * (http_suspend); the answer is given on the loop's thread when the loop
 * sees ap_inbox_fd() readable and calls ap_inbox_done(). A request whose
 * key is cached and verifies, and that is not a Follow, is answered at once.
 */
#ifndef NASHRA_AP_INBOX_H
#define NASHRA_AP_INBOX_H

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>

#include "../config/config.h"
#include "../store/ap_store.h"
#include "http.h"

#define AP_INBOX_BODY_MAX  (256u * 1024) /* a request body we read */
#define AP_INBOX_MAX_DEPTH 32            /* JSON nesting we parse */

#define AP_INBOX_WORKERS 4 /* fetches at once */

/* What a signed GET needs (copied per job: a reload may free the config). */
struct ap_getter {
    EVP_PKEY *key;      /* our actor's private key */
    const char *key_id; /* {actor}#main-key */
    const char *site_url;
    int allow_loopback;       /* activitypub.allow_insecure_loopback */
    const char *ca_file;      /* trusted CAs; NULL: the system's */
    const atomic_int *cancel; /* set: give up the fetch (a stop) */
};

struct ap_job;

struct ap_inbox_env {
    const struct config *cfg;
    struct ap_store *as;
    EVP_PKEY *key;        /* the actor's private key: signs our fetches */
    const char *key_id;   /* {actor}#main-key */
    void (*kick)(void *); /* new deliveries queued (the Accept); may be NULL */
    void *kick_arg;
    const char *ca_file;              /* trusted CAs for fetches; NULL: the system's */
    unsigned long accepted, rejected; /* counters for /metrics */
    /* the workers (ap_inbox_start) */
    int started, efd;
    atomic_int stopping;
    pthread_t workers[AP_INBOX_WORKERS];
    size_t nworkers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct ap_job *queue, *done; /* under mu */
};

/* Starts the workers (e's other fields set first). 0, or -1 with err. */
int ap_inbox_start(struct ap_inbox_env *e, struct diag *err);
/* Stops them; requests still waiting stay suspended (http_stop answers
 * them 503): call it before http_stop. Idempotent. */
void ap_inbox_stop(struct ap_inbox_env *e);
/* Readable when fetches are done: then call ap_inbox_done. -1 if not started. */
int ap_inbox_fd(const struct ap_inbox_env *e);
void ap_inbox_done(struct ap_inbox_env *e);

/* The route's handler: arg is a struct ap_inbox_env. */
enum http_verdict ap_inbox_post(const struct http_request *rq, struct http_response *rs, void *arg);

/* 1 when the JSON text nests no deeper than max (strings are skipped), else 0. */
int ap_json_depth_ok(const char *s, size_t len, int max);

/*
 * A signed GET (draft-cavage, our actor's key) of url under the fetch policy
 * (ap/fetch, activitypub.allow_insecure_loopback): the parsed JSON document of
 * a 2xx answer, or NULL with why.
 */
json_t *ap_signed_get(const struct ap_getter *g, const char *url, struct diag *why);

/* What ap_inbox_parse says of a POSTed body. */
enum { AP_PARSE_OK = 0, AP_PARSE_DEEP = -1, AP_PARSE_NOT_ACTIVITY = -2 };
/*
 * Reads the body of a POST to the inbox (outside input): AP_PARSE_DEEP when
 * its JSON nests deeper than AP_INBOX_MAX_DEPTH, AP_PARSE_NOT_ACTIVITY when
 * it is not JSON or has no actor (a string, or an object's id) and type;
 * else AP_PARSE_OK with *act (the caller's to json_decref) and *actor and
 * *type (strings inside *act). Pure: no network, no store.
 */
int ap_inbox_parse(const char *body, size_t len, json_t **act, const char **actor,
                   const char **type);

/*
 * What a fetched actor (or key) document d says of the key key_id: its
 * publicKey (an object, or an array of them) with that id, or d itself when
 * it is that key. *owner and *pem (strings inside d) are set, 0; else with
 * why -1 when there is no such key, -2 when its owner is not a URL of the
 * key's origin (a key document elsewhere cannot speak for an actor).
 */
int ap_doc_key(const json_t *d, const char *key_id, const char **owner, const char **pem,
               struct diag *why);

/*
 * The inboxes of actor from doc, its fetched actor document: its id must be
 * actor; inbox (needed) and endpoints.sharedInbox (dropped when unusable)
 * must pass the fetch policy (ap_fetch_url_ok). 0 with *inbox and *shared
 * (NULL when none) malloc'd, else -1 with why.
 */
int ap_doc_inboxes(const json_t *doc, const char *actor, int allow_loopback, char **inbox,
                   char **shared, struct diag *why);

#endif
