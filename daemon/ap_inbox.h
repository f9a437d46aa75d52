/*
 * ap_inbox: POST /ap/inbox (the actor's inbox and its shared inbox, SPEC §7):
 * checks each request's HTTP signature against its actor's key (fetched by a
 * signed GET, cached in the store, fetched again once when it no longer
 * verifies), then handles Follow (a follower, and an Accept queued to them),
 * Undo{Follow} and Delete of a follower; anything else is 202 and ignored.
 * Unsigned, forged or mismatched requests are 401 and change nothing.
 *
 * The key and actor fetches are blocking (ap/fetch, bounded by its
 * timeout): they run on the loop's thread, and a cached key needs none.
 */
#ifndef NASHRA_AP_INBOX_H
#define NASHRA_AP_INBOX_H

#include <jansson.h>
#include <openssl/evp.h>

#include "../config/config.h"
#include "../store/ap_store.h"
#include "http.h"

#define AP_INBOX_BODY_MAX  (256u * 1024) /* a request body we read */
#define AP_INBOX_MAX_DEPTH 32            /* JSON nesting we parse */

struct ap_inbox_env {
    const struct config *cfg;
    struct ap_store *as;
    EVP_PKEY *key;        /* the actor's private key: signs our fetches */
    const char *key_id;   /* {actor}#main-key */
    void (*kick)(void *); /* new deliveries queued (the Accept); may be NULL */
    void *kick_arg;
    const char *ca_file;              /* trusted CAs for fetches; NULL: the system's */
    unsigned long accepted, rejected; /* counters for /metrics */
};

/* The route's handler: arg is a struct ap_inbox_env. */
enum http_verdict ap_inbox_post(const struct http_request *rq, struct http_response *rs, void *arg);

/* 1 when the JSON text nests no deeper than max (strings are skipped), else 0. */
int ap_json_depth_ok(const char *s, size_t len, int max);

/*
 * A signed GET (draft-cavage, our actor's key) of url under the fetch policy
 * (ap/fetch, activitypub.allow_insecure_loopback): the parsed JSON document of
 * a 2xx answer, or NULL with why.
 */
json_t *ap_signed_get(const struct ap_inbox_env *e, const char *url, struct diag *why);

#endif
