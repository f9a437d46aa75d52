/*
 * compose: one newsletter message, whole: the list's template rendered for
 * one subscriber, its text part, its headers and links (unsubscribe with
 * the subscriber's token, List-Id, VERP envelope sender), as bytes ready for
 * a transport. The sender, `nashra preview` and `nashra send --to` all make
 * their messages here.
 */
#ifndef NASHRA_COMPOSE_H
#define NASHRA_COMPOSE_H

#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../lib/buf.h"
#include "../posts/post.h"
#include "html2text.h"
#include "newsletter.h"

struct dkim;

struct composer {
    const struct config *cfg;
    const struct newsletter *nl;
    unsigned char key[32]; /* the HMAC key of subscription links */
    char *from_name, *from_addr, *domain;
    const struct dkim *dkim; /* signs each message when not NULL (not owned) */
};

/* Fills c from cfg->mail.from. 0, or -1 (no memory). */
int composer_init(struct composer *c, const struct config *cfg, const struct newsletter *nl,
                  const unsigned char key[32]);
void composer_free(struct composer *c);

/*
 * The message of list li for posts (one, or a digest's) to one subscriber,
 * for issue (0: a test send). msg: the RFC 5322 bytes; verp: the envelope
 * sender; html (may be NULL): the rendered HTML alone. 0, or -1.
 */
int compose(const struct composer *c, size_t li, struct post *const *posts, size_t nposts,
            int digest, const struct newsletter_to *to, int64_t issue, struct buf *msg,
            struct buf *verp, struct buf *html);

/*
 * The per-issue cache (see compose.c): the same message as compose(), byte
 * for byte, from one rendering per issue and shape of subscriber instead of
 * one per subscriber. The sender keeps one, and it renews itself when the
 * issue (or list) changes: it assumes posts and digest stay the same for one
 * issue. cc->fast and cc->slow count the messages made each way.
 */
#define COMPOSE_FIELDS 32
#define COMPOSE_SHAPES 8
struct compose_shape {
    char *key;
    int slow;
    struct buf subject, html, text;
    struct h2t_rec rec;
    unsigned char flags[COMPOSE_FIELDS]; /* 1 escaped, 2 raw, 4 in the subject, 8 in a URL */
};
struct compose_cache {
    int64_t issue;
    size_t li;
    char nonce[16];
    struct compose_shape shapes[COMPOSE_SHAPES];
    size_t nshapes;
    unsigned long fast, slow;
};
void compose_cache_init(struct compose_cache *cc);
void compose_cache_free(struct compose_cache *cc);
int compose_cached(const struct composer *c, struct compose_cache *cc, size_t li,
                   struct post *const *posts, size_t nposts, int digest,
                   const struct newsletter_to *to, int64_t issue, struct buf *msg,
                   struct buf *verp);

#endif
