/*
 * newsletter: what a list sends (SPEC §8). For one issue and one subscriber,
 * the subject and the HTML, from the list's templates (the built-in one,
 * localised for Arabic and English, right to left where the list's language
 * is, or the list's own Mustache file), and the links a message carries
 * (unsubscribe with its HMAC token, view in browser). Templates are compiled
 * when the configuration is loaded, so `nashra check` reports their errors
 * with file, line and column, never the sender.
 */
#ifndef NASHRA_NEWSLETTER_H
#define NASHRA_NEWSLETTER_H

#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../lib/buf.h"
#include "../lib/diag.h"
#include "../posts/post.h"

struct newsletter;

/* Compiles every list's subject and template. NULL on error, with err and
 * (when not NULL) *err_file naming the template. */
struct newsletter *newsletter_load(const struct config *cfg, struct diag *err, char **err_file);
void newsletter_free(struct newsletter *n);

/* The key unsubscribe links are signed with (newsletter_secret); without
 * one (nashra check, preview) links carry no token. */
void newsletter_use_key(struct newsletter *n, const unsigned char key[32]);

/* The person one message goes to. extra: a JSON object of CSV columns. */
struct newsletter_to {
    int64_t id;
    const char *email;
    const char *name;
    const char *extra;
    const char *unsub_url; /* unsubscribe_url as given, when not NULL (compose's cache) */
};

/*
 * Renders list li's message: one post (each) or the posts of a digest
 * (newest first), for subscriber to. subject: one line, no control
 * characters. html: the whole document. 0, or -1 (a cap, or no memory).
 */
int newsletter_render(const struct newsletter *n, size_t li, struct post *const *posts,
                      size_t nposts, int digest, const struct newsletter_to *to,
                      struct buf *subject, struct buf *html);

/*
 * The HMAC key of subscription links (mail.secret_file), created (32 random
 * bytes, mode 0600) when absent. 0, or -1 with err.
 */
int newsletter_secret(const struct config *cfg, unsigned char key[32], struct diag *err);

/* The token of an unsubscribe or confirm link: "<id>.<20 hex digits of the HMAC of
 * purpose|list|id|email>" (purpose "unsubscribe" or "confirm"). */
void newsletter_token(const unsigned char key[32], const char *purpose, const char *list,
                      int64_t id, const char *email, char out[96]);

/* 1 if token is the one newsletter_token makes for these (constant time). */
int newsletter_token_ok(const unsigned char key[32], const char *purpose, const char *list,
                        int64_t id, const char *email, const char *token);

/* The subscriber id a token of either kind names (its digits before the
 * first '.'), or -1 when it does not start with one. */
int64_t newsletter_token_id(const char *token);

/* A confirm link's token, which expires: "<id>.<issued>.<20 hex digits of the
 * HMAC of confirm|list|id|email|issued>" (issued: unix seconds). */
#define NEWSLETTER_CONFIRM_TTL (7 * 24 * 3600) /* seconds a confirm link works */
void newsletter_confirm_token(const unsigned char key[32], const char *list, int64_t id,
                              const char *email, int64_t issued, char out[96]);

/* 1 if token is a confirm token for these, issued no more than
 * NEWSLETTER_CONFIRM_TTL before now (and not after it); else 0. */
int newsletter_confirm_ok(const unsigned char key[32], const char *list, int64_t id,
                          const char *email, const char *token, int64_t now);

/*
 * The VERP envelope sender's local part: "bounces+<issue>.<subscriber>.<12
 * hex digits of the HMAC of bounce|issue|subscriber>" (issue 0: a
 * confirmation mail), so a forged bounce cannot name a subscriber.
 */
void newsletter_verp_local(const unsigned char key[32], int64_t issue, int64_t subscriber,
                           char out[96]);

/* Finds such a local part in s (an address or a whole header value, any
 * case): 1 with *issue and *subscriber when one is there and its HMAC is
 * right, else 0. */
int newsletter_verp_parse(const unsigned char key[32], const char *s, int64_t *issue,
                          int64_t *subscriber);

#endif
