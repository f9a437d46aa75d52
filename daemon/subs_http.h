/*
 * subs_http: subscriptions over the web (SPEC §6, §8), on the daemon's
 * HTTP server:
 *   POST /subscribe         form email, name, list (and the honeypot
 *                           `website`, which people leave empty): a pending
 *                           subscriber and a confirmation mail (double opt-in)
 *   GET  /confirm?t=T       activates (T expires after 7 days)
 *   GET  /unsubscribe?t=T   a page with a button; changes nothing
 *   POST /unsubscribe?t=T   RFC 8058 one-click (and the button): unsubscribes
 * Answers are small pages in the list's language and direction. Whether an
 * address is on a list is never told: /subscribe says "check your mail" in
 * every case. Rate limits (in memory, bounded): requests per client address
 * (http.trust_proxy: the last hop of X-Forwarded-For) and confirmation mails
 * per address. Confirmations go out through a transport of their own on the
 * loop (SMTP on its worker threads), never blocking it, from a bounded queue
 * kept in memory (a restart forgets it: the person asks again).
 */
#ifndef NASHRA_SUBS_HTTP_H
#define NASHRA_SUBS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../lib/diag.h"
#include "../store/store.h"
#include "http.h"

struct loop;
struct subs_http;

/* Adds the routes to srv (for the life of srv) and takes cfg. NULL on error
 * with err. */
struct subs_http *subs_http_start(const struct config *cfg, struct store *st, struct loop *loop,
                                  struct http_server *srv, struct diag *err);

/* A reloaded configuration (the old one may be freed after the call): the
 * lists, the transport and the key are taken from it. 0, or -1 with err
 * (the routes then answer 503 until a good one comes). */
int subs_http_config(struct subs_http *s, const struct config *cfg, struct diag *err);

/* Timed work (the confirmation queue); ms until it wants to run again. */
int64_t subs_http_tick(struct subs_http *s, int64_t now_ms);

void subs_http_free(struct subs_http *s);

/* The form field key of an application/x-www-form-urlencoded body
 * body[0..len) (outside input: /subscribe's), decoded ('+' a space, %XX),
 * malloc'd; NULL when absent, bad (%-escape, NUL) or out of memory. The
 * first of several wins. Pure. */
char *subs_form_get(const char *body, size_t len, const char *key);

#endif
