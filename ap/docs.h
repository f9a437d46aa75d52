/*
 * ap_docs: the JSON documents the site's one ActivityPub actor publishes
 * (SPEC §6, §7), built with jansson as pure functions of the config and
 * posts, with the shapes and media types Mastodon expects:
 *
 *   WebFinger (RFC 7033) JRD for acct:{username}@{host}, and the matcher
 *   for its resource= query; NodeInfo 2.1 and its /.well-known links; the
 *   actor (FEP-2c59 "webfinger"); a post's object (Article or Note, FEP-b2b8
 *   long-form with a `preview` Note); Create, Update, Delete (Tombstone),
 *   Accept of a Follow, Update of the actor; the outbox (paged
 *   OrderedCollection, newest first) and the followers collection (its size
 *   only: who follows a publication is not published); the media types and
 *   the Accept-header negotiation (RFC 9110 §12.5.1) of post and actor URLs.
 *
 * Every builder appends compact UTF-8 JSON (keys in a fixed order) to out and
 * returns 0, or -1 with out left as it was (out's cap reached, no memory, or
 * an argument the function documents as invalid). Strings from outside are
 * cleaned as every output is (lib/text: characters XML forbids and invalid
 * UTF-8 removed), so the JSON is always valid whatever a post holds. Nothing
 * here reads a file, a clock or the network: every date is an argument.
 *
 * Ids: the actor is {site.url}/ap/actor, its key {actor}#main-key; a post's
 * object id is its canonical URL (SPEC §4); activities about a post are
 * fragments of it that carry the date they announce ({url}#create-{date},
 * #update-{updated}, #delete-{deleted}, in seconds since the epoch), so an
 * activity's id is stable when it is sent again and new for each new event.
 */
#ifndef NASHRA_AP_DOCS_H
#define NASHRA_AP_DOCS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../lib/buf.h"
#include "../posts/post.h"

/* Paths under site.url (the well-known ones are at the host's root). */
#define AP_PATH_ACTOR     "/ap/actor"
#define AP_PATH_INBOX     "/ap/inbox"
#define AP_PATH_OUTBOX    "/ap/outbox"
#define AP_PATH_FOLLOWERS "/ap/followers"
#define AP_PATH_NODEINFO  "/nodeinfo/2.1"
#define AP_KEY_FRAGMENT   "#main-key"

#define AP_PUBLIC           "https://www.w3.org/ns/activitystreams#Public"
#define AP_NS_AS            "https://www.w3.org/ns/activitystreams"
#define AP_NODEINFO_SCHEMA  "http://nodeinfo.diaspora.software/ns/schema/2.1"
#define AP_OUTBOX_PAGE_SIZE 20   /* items a page of the outbox */
#define AP_RESOURCE_MAX     1024 /* longest WebFinger resource looked at */

/* --- media types and content negotiation ------------------------------- */

enum ap_media {
    AP_MEDIA_ACTIVITY = 1, /* application/activity+json */
    AP_MEDIA_LD,           /* application/ld+json; profile="…activitystreams" */
    AP_MEDIA_JRD,          /* application/jrd+json (WebFinger) */
    AP_MEDIA_NODEINFO,     /* application/json; profile="…schema/2.1#" */
    AP_MEDIA_JSON,         /* application/json (the nodeinfo links document) */
};

/* The Content-Type value for m (a static string; "application/json" for an
 * unknown m). JSON is UTF-8 by definition: no charset parameter. */
const char *ap_media_type(enum ap_media m);

/*
 * Content negotiation for a post or the actor URL (SPEC §6): 0 when the
 * client should get HTML, else the media type to answer with
 * (AP_MEDIA_ACTIVITY, or AP_MEDIA_LD when the client prefers ld+json).
 *
 * accept is an Accept header value (NULL or "" mean HTML). Each
 * representation gets the q of the most specific media range that matches
 * it (RFC 9110 §12.5.1); JSON wins only with q > 0 and a q higher than
 * text/html's, so browsers and a bare wildcard get HTML. application/activity+json
 * and application/ld+json match; a range with a profile parameter matches
 * only if one of its space-separated profiles is the ActivityStreams
 * namespace. Bare application/ld+json matches too: Mastodon itself asks for
 * "application/activity+json, application/ld+json". Media types and
 * parameter names are case-insensitive; a range with a malformed q is
 * ignored.
 */
int ap_wants_json(const char *accept);

/* --- WebFinger and NodeInfo -------------------------------------------- */

/*
 * 1 if a WebFinger resource= value (already percent-decoded) names the
 * actor, else 0 (the caller answers 404). Accepted: "acct:{user}@{host}"
 * (also without "acct:", and with one leading '@'), the actor id and the
 * profile page ({site.url}/, with or without the '/'). The user, the
 * "acct:" prefix, and the URLs' scheme and host compare case-insensitively
 * against activitypub.username and site.host (with its port, if site.url
 * has one); a URL's path compares exactly. Longer than AP_RESOURCE_MAX: 0.
 */
int ap_webfinger_match(const struct config *cfg, const char *resource);

/* The JRD (application/jrd+json): subject acct:{user}@{host}, aliases
 * [actor, profile page], links profile-page (text/html), self
 * (application/activity+json → actor) and, with an icon, avatar. */
__attribute__((warn_unused_result)) int ap_webfinger(const struct config *cfg, struct buf *out);

/* /.well-known/nodeinfo (application/json): one link, rel the 2.1 schema,
 * href {site.url}/nodeinfo/2.1. */
__attribute__((warn_unused_result)) int ap_nodeinfo_links(const struct config *cfg,
                                                          struct buf *out);

/* /nodeinfo/2.1: software nashra {version}, protocols [activitypub], one
 * user, local_posts published posts, openRegistrations false,
 * metadata.nodeName site.title. version NULL: -1. */
__attribute__((warn_unused_result)) int ap_nodeinfo(const struct config *cfg, const char *version,
                                                    size_t local_posts, struct buf *out);

/* --- the actor ------------------------------------------------------------ */

/*
 * The actor document: type activitypub.actor_type (Service or Person),
 * preferredUsername, name (display_name, else site.title), summary (the
 * configured text as one HTML paragraph), url (site), inbox, outbox,
 * followers, endpoints.sharedInbox ({site.url}/ap/inbox), publicKey {id,
 * owner, publicKeyPem}, icon (with an icon), manuallyApprovesFollowers
 * false, discoverable and indexable true, webfinger "{user}@{host}",
 * published (created, when not 0). public_key_pem is the SPKI PEM; NULL: -1.
 */
__attribute__((warn_unused_result)) int
ap_actor(const struct config *cfg, const char *public_key_pem, int64_t created, struct buf *out);

/* Update{actor} (after `nashra keys --rotate`): id {actor}#update-{now}, to
 * Public, the actor document as ap_actor() builds it embedded. */
__attribute__((warn_unused_result)) int ap_actor_update(const struct config *cfg,
                                                        const char *public_key_pem, int64_t created,
                                                        int64_t now, struct buf *out);

/* --- posts and their activities ----------------------------------------- */

/*
 * A post's object, as its URL serves it to ActivityPub clients: id and url
 * the post's URL, type activitypub.object_type, attributedTo the actor, name
 * (the title, plain text), content and contentMap {lang: content}, published,
 * updated (p->updated when later than p->date), to Public, cc followers, tag
 * (one Hashtag "#tag" a distinct tag: characters Mastodon does not allow in a
 * hashtag, such as spaces and '-', dropped), image (and the same picture as an
 * Image attachment when its type is one Mastodon shows), sensitive false.
 *
 * Article: content is the post's HTML; summary the post's summary as HTML;
 * preview a Note with the summary and the link (Mastodon shows an Article
 * as name, summary and link). Note: content is the title, the summary and
 * the link (a Note's content is what Mastodon shows), and there is no
 * summary: on a Note, Mastodon shows summary as a content warning that hides
 * the post. lang is p->lang, else site.language.
 */
__attribute__((warn_unused_result)) int ap_object(const struct config *cfg, const struct post *p,
                                                  struct buf *out);

/* Create{object}: id {url}#create-{p->date}, published p->date. */
__attribute__((warn_unused_result)) int ap_create(const struct config *cfg, const struct post *p,
                                                  struct buf *out);

/* Update{object}: id {url}#update-{updated}; the object's updated and the
 * activity's published are `updated` (the edit's time: Mastodon applies an
 * Update only when `updated` is later than what it has). */
__attribute__((warn_unused_result)) int ap_update(const struct config *cfg, const struct post *p,
                                                  int64_t updated, struct buf *out);

/* Delete{Tombstone}: id {object_id}#delete-{deleted}; the Tombstone has id,
 * formerType (activitypub.object_type) and deleted. object_id is the removed
 * post's URL (the post itself may be gone). */
__attribute__((warn_unused_result)) int ap_delete(const struct config *cfg, const char *object_id,
                                                  int64_t deleted, struct buf *out);

/*
 * Accept{Follow}, the answer to a Follow the inbox received: the Follow is
 * embedded as received; to its actor. id {actor}#accept-{h}, h the first 16
 * bytes of SHA-256(follow id) in hex: the same Follow gets the same id.
 * follow must be an object of type Follow with a string id and an actor (a
 * string, or an object with a string id); else -1.
 */
__attribute__((warn_unused_result)) int ap_accept(const struct config *cfg, const json_t *follow,
                                                  struct buf *out);

/* --- collections ------------------------------------------------------------ */

/* Pages of an outbox of total items: ceil(total / page_size), at least 1
 * (page 1 of an empty outbox exists and is empty). page_size 0 means
 * AP_OUTBOX_PAGE_SIZE. */
size_t ap_outbox_pages(size_t total, size_t page_size);

/* The outbox: OrderedCollection, totalItems total, first {outbox}?page=1,
 * last {outbox}?page={ap_outbox_pages()}. */
__attribute__((warn_unused_result)) int ap_outbox(const struct config *cfg, size_t total,
                                                  size_t page_size, struct buf *out);

/*
 * Page `page` (1-based) of the outbox: OrderedCollectionPage, id
 * {outbox}?page={page}, partOf the outbox, orderedItems the Create of each
 * of posts[0..n) in the given order (the caller passes that page's posts,
 * newest first), prev/next when there is such a page. -1 when page is 0 or
 * past ap_outbox_pages(total, page_size), or n is more than page_size.
 */
__attribute__((warn_unused_result)) int ap_outbox_page(const struct config *cfg,
                                                       const struct post *const *posts, size_t n,
                                                       size_t page, size_t page_size, size_t total,
                                                       struct buf *out);

/* The followers collection: OrderedCollection with totalItems only. */
__attribute__((warn_unused_result)) int ap_followers(const struct config *cfg, size_t total,
                                                     struct buf *out);

#endif
