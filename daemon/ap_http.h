/*
 * ap_http: the ActivityPub actor's HTTP routes (WebFinger, NodeInfo, actor,
 * outbox, followers, post URLs as ActivityStreams, and the inbox), added to
 * the daemon's HTTP server when activitypub.enabled.
 */
#ifndef NASHRA_AP_HTTP_H
#define NASHRA_AP_HTTP_H

#include <openssl/evp.h>

#include "../config/config.h"
#include "../lib/diag.h"
#include "../store/store.h"
#include "http.h"

#define NASHRA_VERSION "0.1.0"

struct ap_http;

/* Loads (or creates, mode 0600) the actor's key in state.dir/actor.pem and
 * adds the routes to srv. NULL on error, with err. */
struct ap_http *ap_http_start(const struct config *cfg, struct store *st, struct http_server *srv,
                              struct diag *err);

/* A reloaded configuration: the routes answer from it from now on. */
void ap_http_config(struct ap_http *a, const struct config *cfg);
void ap_http_free(struct ap_http *a);

/* The actor's private key (owned by a) and its id ({actor}#main-key). */
EVP_PKEY *ap_http_key(struct ap_http *a, const char **key_id);

/* Loads state.dir/actor.pem again when the file changed (`nashra keys
 * --rotate`): 1 when a new key is in use (ap_http_key() gives it), else 0. */
int ap_http_key_refresh(struct ap_http *a);

/* An fd readable when state.dir changed (for the loop), or -1. */
int ap_http_key_fd(const struct ap_http *a);

/* fn(arg) is called when the inbox queued a delivery (an Accept). */
void ap_http_on_queued(struct ap_http *a, void (*fn)(void *), void *arg);

/* The inbox's workers: ap_http_stop before http_stop (their suspended
 * requests are answered 503 there); the fd readable when fetches are done,
 * and what the loop calls then. */
void ap_http_stop(struct ap_http *a);
int ap_http_inbox_fd(const struct ap_http *a);
void ap_http_inbox_done(struct ap_http *a);

/* Inbox POSTs accepted (202) and refused (401), for /metrics. */
void ap_http_inbox_stats(const struct ap_http *a, unsigned long *accepted, unsigned long *refused);

#endif
