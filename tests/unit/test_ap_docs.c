/*
 * test_ap_docs: the ActivityPub documents (ap/docs.c) parsed back with
 * jansson, field by field: WebFinger (and its resource matching), NodeInfo,
 * the actor, Arabic and English post objects (Article and Note, escaping,
 * control characters, invalid UTF-8), Create/Update/Delete, Accept{Follow},
 * outbox paging at its edges, followers; the media types and a table of
 * Accept headers (Mastodon's, browsers', wildcards, q=0, malformed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "../../ap/docs.h"

#define SITE      "https://news.example.org"
#define HOST      "news.example.org"
#define ACTOR     SITE "/ap/actor"
#define FOLLOWERS SITE "/ap/followers"
#define OUTBOX    SITE "/ap/outbox"
#define PUBLIC    "https://www.w3.org/ns/activitystreams#Public"
#define AS_NS     "https://www.w3.org/ns/activitystreams"
#define PEM                                                                                        \
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC "   \
    "KEY-----\n"

#define SITE_TITLE "نشاطات منظمة التعاون الرقمي"
#define AR_URL     SITE "/posts/%D9%85%D9%86%D8%AA%D8%AF%D9%89/"
#define AR_TITLE   "منتدى الدبلوماسية الرقمية"
#define AR_HTML    "<p>نص <a href=\"https://example.org/\">رابط</a></p>"
#define AR_SUMMARY "ملخص المنتدى"
#define AR_DATE    1713000000 /* 2024-04-13T09:20:00Z */
#define AR_UPDATE  1713100000 /* 2024-04-14T13:06:40Z */
#define EN_URL     SITE "/posts/brief/"
#define EN_RAW                                                                                     \
    "A <b> & \"q\" \x01"                                                                           \
    "end"
#define EN_TITLE "A <b> & \"q\" end" /* EN_RAW without the control character */
#define EN_HTML  "<p>Body &amp; more \x01<b>bold</b></p>"
#define EN_CLEAN "<p>Body &amp; more <b>bold</b></p>"
#define EN_DATE  1712000000 /* 2024-04-01T19:33:20Z */

static char *ar_tags[] = {"Briefs", "دبلوماسية", "دبلوماسية", "data flows",
                          "2024",   "#C-lang",   "briefs"};

static struct config cfg;
static struct post ar_post, en_post;

static void fixtures(void)
{
    memset(&cfg, 0, sizeof cfg);
    cfg.site.title = SITE_TITLE;
    cfg.site.url = SITE;
    cfg.site.host = HOST;
    cfg.site.language = "ar";
    cfg.site.rtl = 1;
    cfg.activitypub.enabled = 1;
    cfg.activitypub.username = "news";
    cfg.activitypub.display_name = "نشرة";
    cfg.activitypub.summary = "Digital <news> & \"notes\"\nسطر ثان\n";
    cfg.activitypub.object_type = "Article";
    cfg.activitypub.actor_type = "Service";
    cfg.activitypub.icon = SITE "/icon.png";

    memset(&ar_post, 0, sizeof ar_post);
    ar_post.slug = "منتدى";
    ar_post.url = AR_URL;
    ar_post.title = AR_TITLE;
    ar_post.summary = AR_SUMMARY;
    ar_post.lang = "ar";
    ar_post.rtl = 1;
    ar_post.image = SITE "/images/cover.JPG";
    ar_post.tags = ar_tags;
    ar_post.ntags = sizeof ar_tags / sizeof ar_tags[0];
    ar_post.date = AR_DATE;
    ar_post.updated = AR_UPDATE;
    ar_post.html = AR_HTML;
    ar_post.html_len = strlen(AR_HTML);

    memset(&en_post, 0, sizeof en_post);
    en_post.slug = "brief";
    en_post.url = EN_URL;
    en_post.title = EN_RAW;
    en_post.summary = "Why <now> & \"then\"";
    en_post.lang = "en";
    en_post.image = SITE "/img/cover.svg";
    en_post.date = EN_DATE;
    en_post.html = EN_HTML; /* html_len 0: the builder measures it */
}

static int setup(void **state)
{
    (void)state;
    fixtures();
    return 0;
}

/* --- helpers ------------------------------------------------------------- */

/* Parses out (which it frees) strictly: valid UTF-8, no duplicate keys. */
static json_t *parse(struct buf *out)
{
    json_error_t e;
    json_t *v = json_loadb(out->data, out->len, JSON_REJECT_DUPLICATES, &e);
    if (!v)
        fail_msg("not valid JSON (%s at %d):\n%s", e.text, e.position, buf_str(out));
    buf_free(out);
    return v;
}

/* The value at a '.'-separated path; array elements by index ("tag.0.name"). */
static json_t *jget(json_t *root, const char *path)
{
    char tmp[256], *save = NULL;
    snprintf(tmp, sizeof tmp, "%s", path);
    json_t *v = root;
    for (char *t = strtok_r(tmp, ".", &save); v && t; t = strtok_r(NULL, ".", &save))
        v = json_is_array(v) ? json_array_get(v, strtoul(t, NULL, 10)) : json_object_get(v, t);
    return v;
}

static void jeq(json_t *root, const char *path, const char *want)
{
    const char *got = json_string_value(jget(root, path));
    if (!got || strcmp(got, want) != 0)
        fail_msg("%s is '%s', want '%s'", path, got ? got : "(not a string)", want);
}

static void jabsent(json_t *root, const char *path)
{
    if (jget(root, path))
        fail_msg("%s must be absent", path);
}

static json_int_t jint(json_t *root, const char *path)
{
    json_t *v = jget(root, path);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", path);
    return json_integer_value(v);
}

static void jbool(json_t *root, const char *path, int want)
{
    json_t *v = jget(root, path);
    if (!json_is_boolean(v) || json_is_true(v) != want)
        fail_msg("%s is not %s", path, want ? "true" : "false");
}

static size_t jsize(json_t *root, const char *path)
{
    json_t *v = jget(root, path);
    if (!json_is_array(v))
        fail_msg("%s is not an array", path);
    return json_array_size(v);
}

static json_t *actor_doc(void)
{
    struct buf out;
    buf_init(&out, 0);
    assert_int_equal(ap_actor(&cfg, PEM, AR_DATE, &out), 0);
    return parse(&out);
}

static json_t *object_doc(const struct post *p)
{
    struct buf out;
    buf_init(&out, 0);
    assert_int_equal(ap_object(&cfg, p, &out), 0);
    return parse(&out);
}

/* --- media types and negotiation ----------------------------------------- */

static void test_media_types(void **state)
{
    (void)state;
    assert_string_equal(ap_media_type(AP_MEDIA_ACTIVITY), "application/activity+json");
    assert_string_equal(ap_media_type(AP_MEDIA_LD),
                        "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"");
    assert_string_equal(ap_media_type(AP_MEDIA_JRD), "application/jrd+json");
    assert_string_equal(
        ap_media_type(AP_MEDIA_NODEINFO),
        "application/json; profile=\"http://nodeinfo.diaspora.software/ns/schema/2.1#\"");
    assert_string_equal(ap_media_type(AP_MEDIA_JSON), "application/json");
    assert_string_equal(ap_media_type((enum ap_media)99), "application/json");
}

static void test_accept_table(void **state)
{
    static const struct {
        const char *accept;
        int want;
    } cases[] = {
        {NULL, 0},
        {"", 0},
        {"application/activity+json", AP_MEDIA_ACTIVITY},
        {"application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"", AP_MEDIA_LD},
        /* what Mastodon sends when it fetches an actor or an object */
        {"application/activity+json, application/ld+json", AP_MEDIA_ACTIVITY},
        {"application/activity+json, application/ld+json; "
         "profile=\"https://www.w3.org/ns/activitystreams\", text/html;q=0.1",
         AP_MEDIA_ACTIVITY},
        {"application/ld+json", AP_MEDIA_LD},
        {"application/ld+json;profile=\"https://example.org/p https://www.w3.org/ns/"
         "activitystreams\"",
         AP_MEDIA_LD},
        {"application/ld+json; profile=\"http://schema.org\"", 0},
        {"application/ld+json; PROFILE=https://www.w3.org/ns/activitystreams", 0}, /* '/' */
        {"APPLICATION/Activity+JSON", AP_MEDIA_ACTIVITY},
        {"application/activity+json ; q=0.9 , text/html;q=0.8", AP_MEDIA_ACTIVITY},
        {"application/activity+json;charset=utf-8", AP_MEDIA_ACTIVITY},
        /* browsers */
        {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 0},
        {"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/"
         "apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
         0},
        {"*/*", 0},
        {"application/*", AP_MEDIA_ACTIVITY},
        {"application/json", 0},
        /* weights */
        {"application/activity+json;q=0", 0},
        {"application/activity+json;q=0, */*", 0},
        {"application/activity+json;q=0.001", AP_MEDIA_ACTIVITY},
        {"text/html;q=0.5, application/activity+json", AP_MEDIA_ACTIVITY},
        {"application/activity+json;q=0.5, text/html", 0},
        {"text/html, application/activity+json", 0}, /* a tie is HTML */
        {"application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\", "
         "application/activity+json;q=0.5",
         AP_MEDIA_LD},
        {"text/*;q=0.3, application/activity+json;q=0.4", AP_MEDIA_ACTIVITY},
        /* malformed ranges are skipped */
        {"application/activity+json;q=2", 0},
        {"application/activity+json;q=abc", 0},
        {"application/activity+json;q=1.0001", 0},
        {"application/activity+json;q=", 0},
        {"application/activity+json;q=0.5;profile=\"x", 0},
        {"application/activity+json;=1", 0},
        {"application/", 0},
        {"/activity+json", 0},
        {"garbage", 0},
        {",,, ,", 0},
        {"foo/bar;x=\"a,application/activity+json\"", 0},
        {"foo/bar;x=\"a\\\",application/activity+json\"", 0},
        {"bad;;x, application/activity+json", AP_MEDIA_ACTIVITY},
        {"application/activity+json;q=0.5 junk, text/html;q=0.1", 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = ap_wants_json(cases[i].accept);
        if (got != cases[i].want)
            fail_msg("Accept '%s': got %d, want %d", cases[i].accept ? cases[i].accept : "(null)",
                     got, cases[i].want);
    }
}

static void test_accept_long(void **state)
{
    struct buf b;
    (void)state;
    buf_init(&b, 0);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(buf_puts(&b, "x/y;q=0.5, "), 0);
    assert_int_equal(ap_wants_json(buf_str(&b)), 0);
    assert_int_equal(buf_puts(&b, "application/activity+json"), 0);
    assert_int_equal(ap_wants_json(buf_str(&b)), AP_MEDIA_ACTIVITY);
    buf_free(&b);
}

/* --- WebFinger ------------------------------------------------------------- */

static void test_webfinger_match(void **state)
{
    static const struct {
        const char *resource;
        int want;
    } cases[] = {
        {"acct:news@news.example.org", 1},
        {"acct:NEWS@NEWS.Example.ORG", 1},
        {"ACCT:news@news.example.org", 1},
        {"news@news.example.org", 1},
        {"@news@news.example.org", 1},
        {"acct:@news@news.example.org", 1},
        {ACTOR, 1},
        {"HTTPS://NEWS.EXAMPLE.ORG/ap/actor", 1},
        {SITE "/", 1},
        {SITE, 1},
        {"acct:other@news.example.org", 0},
        {"acct:new@news.example.org", 0},
        {"acct:newsx@news.example.org", 0},
        {"acct:news@other.example.org", 0},
        {"acct:news@news.example.org.evil.example", 0},
        {"acct:news@news.example.org:443", 0},
        {"acct:news@news.example.org@evil.example", 0},
        {"acct:news@news.example.org ", 0},
        {" acct:news@news.example.org", 0},
        {"acct:news@", 0},
        {"acct:news", 0},
        {"acct:", 0},
        {"acct:@@", 0},
        {"", 0},
        {"news", 0},
        {"garbage", 0},
        {"mailto:news@news.example.org", 0},
        {SITE "/AP/ACTOR", 0},
        {"http://news.example.org/ap/actor", 0},
        {SITE "/ap/actor/", 0},
        {SITE "/ap/actorx", 0},
        {SITE "/ap/actor#main-key", 0},
        {SITE "//", 0},
        {"https://news.example.org.evil/ap/actor", 0},
        {"https://evil.example/ap/actor", 0},
        {"https://", 0},
    };
    (void)state;
    assert_int_equal(ap_webfinger_match(&cfg, NULL), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (ap_webfinger_match(&cfg, cases[i].resource) != cases[i].want)
            fail_msg("resource '%s': want %d", cases[i].resource, cases[i].want);
}

static void test_webfinger_match_long(void **state)
{
    char *s = malloc(AP_RESOURCE_MAX * 4);
    (void)state;
    assert_non_null(s);
    /* the right account, padded past the limit with a valid-looking host */
    strcpy(s, "acct:news@");
    memset(s + 10, 'a', AP_RESOURCE_MAX * 3);
    s[10 + AP_RESOURCE_MAX * 3] = '\0';
    assert_int_equal(ap_webfinger_match(&cfg, s), 0);
    memset(s, 'a', AP_RESOURCE_MAX);
    s[AP_RESOURCE_MAX] = '\0';
    assert_int_equal(ap_webfinger_match(&cfg, s), 0);
    free(s);
}

static void test_webfinger_port_and_path(void **state)
{
    (void)state;
    cfg.site.url = "http://127.0.0.1:8443/blog";
    cfg.site.host = "127.0.0.1:8443";
    assert_int_equal(ap_webfinger_match(&cfg, "acct:news@127.0.0.1:8443"), 1);
    assert_int_equal(ap_webfinger_match(&cfg, "acct:news@127.0.0.1"), 0);
    assert_int_equal(ap_webfinger_match(&cfg, "http://127.0.0.1:8443/blog/ap/actor"), 1);
    assert_int_equal(ap_webfinger_match(&cfg, "http://127.0.0.1:8443/ap/actor"), 0);
    assert_int_equal(ap_webfinger_match(&cfg, "http://127.0.0.1:8443/BLOG/ap/actor"), 0);
    assert_int_equal(ap_webfinger_match(&cfg, "http://127.0.0.1:8443/blog/"), 1);

    struct buf out;
    buf_init(&out, 0);
    assert_int_equal(ap_webfinger(&cfg, &out), 0);
    json_t *jrd = parse(&out);
    jeq(jrd, "subject", "acct:news@127.0.0.1:8443");
    jeq(jrd, "links.1.href", "http://127.0.0.1:8443/blog/ap/actor");
    json_decref(jrd);
}

static void test_webfinger_jrd(void **state)
{
    struct buf out;
    (void)state;
    buf_init(&out, 0);
    assert_int_equal(ap_webfinger(&cfg, &out), 0);
    json_t *jrd = parse(&out);
    jeq(jrd, "subject", "acct:news@" HOST);
    assert_int_equal(jsize(jrd, "aliases"), 2);
    jeq(jrd, "aliases.0", ACTOR);
    jeq(jrd, "aliases.1", SITE "/");
    assert_int_equal(jsize(jrd, "links"), 3);
    jeq(jrd, "links.0.rel", "http://webfinger.net/rel/profile-page");
    jeq(jrd, "links.0.type", "text/html");
    jeq(jrd, "links.0.href", SITE "/");
    jeq(jrd, "links.1.rel", "self");
    jeq(jrd, "links.1.type", "application/activity+json");
    jeq(jrd, "links.1.href", ACTOR);
    jeq(jrd, "links.2.rel", "http://webfinger.net/rel/avatar");
    jeq(jrd, "links.2.type", "image/png");
    jeq(jrd, "links.2.href", SITE "/icon.png");
    json_decref(jrd);

    /* without an icon: no avatar link */
    cfg.activitypub.icon = NULL;
    buf_init(&out, 0);
    assert_int_equal(ap_webfinger(&cfg, &out), 0);
    jrd = parse(&out);
    assert_int_equal(jsize(jrd, "links"), 2);
    json_decref(jrd);
}

/* --- NodeInfo -------------------------------------------------------------- */

static void test_nodeinfo(void **state)
{
    struct buf out;
    (void)state;
    buf_init(&out, 0);
    assert_int_equal(ap_nodeinfo_links(&cfg, &out), 0);
    json_t *doc = parse(&out);
    assert_int_equal(jsize(doc, "links"), 1);
    jeq(doc, "links.0.rel", "http://nodeinfo.diaspora.software/ns/schema/2.1");
    jeq(doc, "links.0.href", SITE "/nodeinfo/2.1");
    json_decref(doc);

    buf_init(&out, 0);
    assert_int_equal(ap_nodeinfo(&cfg, "0.3.0", 1234, &out), 0);
    doc = parse(&out);
    jeq(doc, "version", "2.1");
    jeq(doc, "software.name", "nashra");
    jeq(doc, "software.version", "0.3.0");
    assert_int_equal(jsize(doc, "protocols"), 1);
    jeq(doc, "protocols.0", "activitypub");
    assert_int_equal(jsize(doc, "services.inbound"), 0);
    jeq(doc, "services.outbound.0", "atom1.0");
    jeq(doc, "services.outbound.1", "rss2.0");
    jbool(doc, "openRegistrations", 0);
    assert_int_equal(jint(doc, "usage.users.total"), 1);
    assert_int_equal(jint(doc, "usage.users.activeMonth"), 1);
    assert_int_equal(jint(doc, "usage.users.activeHalfyear"), 1);
    assert_int_equal(jint(doc, "usage.localPosts"), 1234);
    jeq(doc, "metadata.nodeName", SITE_TITLE);
    json_decref(doc);

    buf_init(&out, 0);
    assert_int_equal(ap_nodeinfo(&cfg, NULL, 0, &out), -1);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

/* --- the actor ------------------------------------------------------------- */

static void test_actor(void **state)
{
    (void)state;
    json_t *a = actor_doc();
    jeq(a, "@context.0", AS_NS);
    jeq(a, "@context.1", "https://w3id.org/security/v1");
    jeq(a, "@context.2.toot", "http://joinmastodon.org/ns#");
    jeq(a, "@context.2.discoverable", "toot:discoverable");
    jeq(a, "@context.2.indexable", "toot:indexable");
    jeq(a, "@context.2.manuallyApprovesFollowers", "as:manuallyApprovesFollowers");
    jeq(a, "@context.2.webfinger.@id", "https://purl.archive.org/socialweb/webfinger#webfinger");
    jeq(a, "id", ACTOR);
    jeq(a, "type", "Service");
    jeq(a, "preferredUsername", "news");
    jeq(a, "name", "نشرة");
    jeq(a, "summary", "<p>Digital &lt;news&gt; &amp; &quot;notes&quot;<br>سطر ثان</p>");
    jeq(a, "url", SITE "/");
    jeq(a, "inbox", SITE "/ap/inbox");
    jeq(a, "outbox", OUTBOX);
    jeq(a, "followers", FOLLOWERS);
    jeq(a, "endpoints.sharedInbox", SITE "/ap/inbox");
    jeq(a, "publicKey.id", ACTOR "#main-key");
    jeq(a, "publicKey.owner", ACTOR);
    jeq(a, "publicKey.publicKeyPem", PEM);
    jeq(a, "icon.type", "Image");
    jeq(a, "icon.mediaType", "image/png");
    jeq(a, "icon.url", SITE "/icon.png");
    jbool(a, "manuallyApprovesFollowers", 0);
    jbool(a, "discoverable", 1);
    jbool(a, "indexable", 1);
    jeq(a, "webfinger", "news@" HOST);
    jeq(a, "published", "2024-04-13T09:20:00Z");
    json_decref(a);
}

static void test_actor_defaults(void **state)
{
    struct buf out;
    (void)state;
    cfg.activitypub.actor_type = "Person";
    cfg.activitypub.display_name = NULL; /* site.title */
    cfg.activitypub.summary = "";
    cfg.activitypub.icon = NULL;
    buf_init(&out, 0);
    assert_int_equal(ap_actor(&cfg, PEM, 0, &out), 0);
    json_t *a = parse(&out);
    jeq(a, "type", "Person");
    jeq(a, "name", SITE_TITLE);
    jeq(a, "summary", "");
    jabsent(a, "icon");
    jabsent(a, "published");
    json_decref(a);

    buf_init(&out, 0);
    assert_int_equal(ap_actor(&cfg, NULL, 0, &out), -1);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

static void test_actor_update(void **state)
{
    struct buf out;
    (void)state;
    buf_init(&out, 0);
    assert_int_equal(ap_actor_update(&cfg, PEM, AR_DATE, AR_UPDATE, &out), 0);
    json_t *u = parse(&out);
    jeq(u, "@context.0", AS_NS);
    jeq(u, "id", ACTOR "#update-1713100000");
    jeq(u, "type", "Update");
    jeq(u, "actor", ACTOR);
    jeq(u, "published", "2024-04-14T13:06:40Z");
    jeq(u, "to.0", PUBLIC);
    jeq(u, "object.id", ACTOR);
    jeq(u, "object.type", "Service");
    jeq(u, "object.publicKey.publicKeyPem", PEM);
    jabsent(u, "object.@context");
    json_decref(u);
}

/* --- post objects ---------------------------------------------------------- */

static void test_object_article_arabic(void **state)
{
    (void)state;
    json_t *o = object_doc(&ar_post);
    jeq(o, "@context.0", AS_NS);
    jeq(o, "@context.1.Hashtag", "as:Hashtag");
    jeq(o, "@context.1.sensitive", "as:sensitive");
    jeq(o, "id", AR_URL);
    jeq(o, "type", "Article");
    jeq(o, "attributedTo", ACTOR);
    jeq(o, "name", AR_TITLE);
    jeq(o, "content", AR_HTML);
    jeq(o, "contentMap.ar", AR_HTML);
    assert_int_equal(json_object_size(jget(o, "contentMap")), 1);
    jeq(o, "summary", "<p>" AR_SUMMARY "</p>");
    jeq(o, "url", AR_URL);
    jeq(o, "published", "2024-04-13T09:20:00Z");
    jeq(o, "updated", "2024-04-14T13:06:40Z");
    assert_int_equal(jsize(o, "to"), 1);
    jeq(o, "to.0", PUBLIC);
    assert_int_equal(jsize(o, "cc"), 1);
    jeq(o, "cc.0", FOLLOWERS);
    /* one Hashtag a distinct usable tag; "2024" has no letter, "briefs" is
     * "Briefs" again */
    assert_int_equal(jsize(o, "tag"), 4);
    jeq(o, "tag.0.type", "Hashtag");
    jeq(o, "tag.0.name", "#Briefs");
    jeq(o, "tag.1.name", "#دبلوماسية");
    jeq(o, "tag.2.name", "#dataflows");
    jeq(o, "tag.3.name", "#Clang");
    jabsent(o, "tag.0.href");
    jeq(o, "image.type", "Image");
    jeq(o, "image.mediaType", "image/jpeg");
    jeq(o, "image.url", SITE "/images/cover.JPG");
    assert_int_equal(jsize(o, "attachment"), 1);
    jeq(o, "attachment.0.type", "Image");
    jeq(o, "attachment.0.mediaType", "image/jpeg");
    jeq(o, "attachment.0.url", SITE "/images/cover.JPG");
    jeq(o, "preview.type", "Note");
    jeq(o, "preview.attributedTo", ACTOR);
    jeq(o, "preview.content", "<p>" AR_SUMMARY "</p><p><a href=\"" AR_URL "\">" AR_URL "</a></p>");
    jeq(o, "preview.contentMap.ar",
        "<p>" AR_SUMMARY "</p><p><a href=\"" AR_URL "\">" AR_URL "</a></p>");
    jbool(o, "sensitive", 0);
    json_decref(o);
}

static void test_object_note(void **state)
{
    (void)state;
    cfg.activitypub.object_type = "Note";
    json_t *o = object_doc(&ar_post);
    const char *want = "<p><strong>" AR_TITLE "</strong></p><p>" AR_SUMMARY
                       "</p><p><a href=\"" AR_URL "\">" AR_URL "</a></p>";
    jeq(o, "type", "Note");
    jeq(o, "name", AR_TITLE);
    jeq(o, "content", want);
    jeq(o, "contentMap.ar", want);
    jabsent(o, "summary"); /* Mastodon would show it as a content warning */
    jabsent(o, "preview");
    jeq(o, "url", AR_URL);
    jeq(o, "attachment.0.url", SITE "/images/cover.JPG");
    jbool(o, "sensitive", 0);
    json_decref(o);

    /* Delete names the configured type */
    struct buf out;
    buf_init(&out, 0);
    assert_int_equal(ap_delete(&cfg, AR_URL, AR_UPDATE, &out), 0);
    o = parse(&out);
    jeq(o, "object.formerType", "Note");
    json_decref(o);
}

static void test_object_escaping(void **state)
{
    (void)state;
    json_t *o = object_doc(&en_post);
    jeq(o, "name", EN_TITLE);
    jeq(o, "content", EN_CLEAN);
    jeq(o, "contentMap.en", EN_CLEAN);
    jeq(o, "summary", "<p>Why &lt;now&gt; &amp; &quot;then&quot;</p>");
    jeq(o, "preview.content",
        "<p>Why &lt;now&gt; &amp; &quot;then&quot;</p><p><a href=\"" EN_URL "\">" EN_URL
        "</a></p>");
    jabsent(o, "updated"); /* never edited */
    jabsent(o, "tag");
    jeq(o, "image.mediaType", "image/svg+xml");
    jabsent(o, "attachment"); /* Mastodon does not show SVG */
    json_decref(o);

    /* Note: the title is escaped into the content */
    cfg.activitypub.object_type = "Note";
    o = object_doc(&en_post);
    jeq(o, "content",
        "<p><strong>A &lt;b&gt; &amp; &quot;q&quot; end</strong></p><p>Why &lt;now&gt; "
        "&amp; &quot;then&quot;</p><p><a href=\"" EN_URL "\">" EN_URL "</a></p>");
    json_decref(o);
}

static void test_object_bad_bytes(void **state)
{
    (void)state;
    en_post.title = "bad \xff\xfe bytes \x7f\x1b[31m";
    en_post.html = "<p>\xc3\x28 x</p>";
    en_post.summary = NULL;
    en_post.image = NULL;
    en_post.lang = NULL; /* site.language */
    json_t *o = object_doc(&en_post);
    const char *name = json_string_value(jget(o, "name"));
    assert_non_null(name);
    assert_null(strchr(name, '\x1b'));
    assert_non_null(strstr(name, "bytes"));
    assert_non_null(jget(o, "contentMap.ar"));
    jabsent(o, "summary");
    jeq(o, "preview.content", "<p><a href=\"" EN_URL "\">" EN_URL "</a></p>");
    jabsent(o, "image");
    json_decref(o);
}

/* --- activities ------------------------------------------------------------ */

static void test_create(void **state)
{
    struct buf out;
    (void)state;
    buf_init(&out, 0);
    assert_int_equal(ap_create(&cfg, &ar_post, &out), 0);
    json_t *c = parse(&out);
    jeq(c, "@context.0", AS_NS);
    jeq(c, "@context.1.Hashtag", "as:Hashtag");
    jeq(c, "id", AR_URL "#create-1713000000");
    jeq(c, "type", "Create");
    jeq(c, "actor", ACTOR);
    jeq(c, "published", "2024-04-13T09:20:00Z");
    jeq(c, "to.0", PUBLIC);
    jeq(c, "cc.0", FOLLOWERS);
    jeq(c, "object.id", AR_URL);
    jeq(c, "object.type", "Article");
    jeq(c, "object.contentMap.ar", AR_HTML);
    jeq(c, "object.name", AR_TITLE);
    jeq(c, "object.summary", "<p>" AR_SUMMARY "</p>");
    jeq(c, "object.url", AR_URL);
    jeq(c, "object.preview.type", "Note");
    jabsent(c, "object.@context");
    json_decref(c);
}

static void test_update(void **state)
{
    struct buf out;
    (void)state;
    buf_init(&out, 0);
    assert_int_equal(ap_update(&cfg, &ar_post, AR_UPDATE + 60, &out), 0);
    json_t *u = parse(&out);
    jeq(u, "id", AR_URL "#update-1713100060");
    jeq(u, "type", "Update");
    jeq(u, "actor", ACTOR);
    jeq(u, "published", "2024-04-14T13:07:40Z");
    jeq(u, "to.0", PUBLIC);
    jeq(u, "cc.0", FOLLOWERS);
    jeq(u, "object.id", AR_URL);
    jeq(u, "object.published", "2024-04-13T09:20:00Z");
    jeq(u, "object.updated", "2024-04-14T13:07:40Z");
    json_decref(u);
}

static void test_delete(void **state)
{
    struct buf out;
    (void)state;
    buf_init(&out, 0);
    assert_int_equal(ap_delete(&cfg, AR_URL, AR_UPDATE, &out), 0);
    json_t *d = parse(&out);
    jeq(d, "@context", AS_NS);
    jeq(d, "id", AR_URL "#delete-1713100000");
    jeq(d, "type", "Delete");
    jeq(d, "actor", ACTOR);
    jeq(d, "published", "2024-04-14T13:06:40Z");
    jeq(d, "to.0", PUBLIC);
    jeq(d, "cc.0", FOLLOWERS);
    jeq(d, "object.id", AR_URL);
    jeq(d, "object.type", "Tombstone");
    jeq(d, "object.formerType", "Article");
    jeq(d, "object.deleted", "2024-04-14T13:06:40Z");
    json_decref(d);

    buf_init(&out, 0);
    assert_int_equal(ap_delete(&cfg, NULL, AR_UPDATE, &out), -1);
    buf_free(&out);
}

static json_t *follow(const char *id, const char *actor_json)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"@context\":\"" AS_NS "\",\"id\":\"%s\",\"type\":\"Follow\",\"actor\":%s,"
             "\"object\":\"" ACTOR "\"}",
             id, actor_json);
    json_t *f = json_loads(text, 0, NULL);
    assert_non_null(f);
    return f;
}

static void test_accept_follow(void **state)
{
    const char *fid = "https://mastodon.example/0d8f3b2e-1c3a-4f4e-9b1a-5d2c";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    char want[200];
    struct buf out;
    (void)state;

    assert_int_equal(EVP_Digest(fid, strlen(fid), md, &mdlen, EVP_sha256(), NULL), 1);
    int k = snprintf(want, sizeof want, ACTOR "#accept-");
    for (int i = 0; i < 16; i++)
        k += snprintf(want + k, sizeof want - (size_t)k, "%02x", md[i]);

    json_t *f = follow(fid, "\"https://mastodon.example/users/alice\"");
    buf_init(&out, 0);
    assert_int_equal(ap_accept(&cfg, f, &out), 0);
    json_t *a = parse(&out);
    jeq(a, "@context", AS_NS);
    jeq(a, "id", want);
    jeq(a, "type", "Accept");
    jeq(a, "actor", ACTOR);
    assert_int_equal(jsize(a, "to"), 1);
    jeq(a, "to.0", "https://mastodon.example/users/alice");
    assert_true(json_equal(jget(a, "object"), f)); /* embedded as received */
    json_decref(a);

    /* the same Follow, the same Accept id; an actor given as an object */
    json_t *f2 = follow(fid, "{\"id\":\"https://mastodon.example/users/bob\",\"type\":\"Person\"}");
    buf_init(&out, 0);
    assert_int_equal(ap_accept(&cfg, f2, &out), 0);
    a = parse(&out);
    jeq(a, "id", want);
    jeq(a, "to.0", "https://mastodon.example/users/bob");
    json_decref(a);
    json_decref(f2);

    /* another Follow, another id */
    f2 = follow("https://mastodon.example/other", "\"https://mastodon.example/users/alice\"");
    buf_init(&out, 0);
    assert_int_equal(ap_accept(&cfg, f2, &out), 0);
    a = parse(&out);
    assert_string_not_equal(json_string_value(jget(a, "id")), want);
    json_decref(a);
    json_decref(f2);

    /* not a usable Follow: -1, out untouched */
    buf_init(&out, 0);
    assert_int_equal(buf_puts(&out, "kept"), 0);
    json_object_set_new(f, "type", json_string("Like"));
    assert_int_equal(ap_accept(&cfg, f, &out), -1);
    json_object_set_new(f, "type", json_string("Follow"));
    json_object_del(f, "actor");
    assert_int_equal(ap_accept(&cfg, f, &out), -1);
    json_object_set_new(f, "actor", json_object());
    assert_int_equal(ap_accept(&cfg, f, &out), -1);
    json_object_set_new(f, "actor", json_string("https://mastodon.example/users/alice"));
    json_object_set_new(f, "id", json_integer(7));
    assert_int_equal(ap_accept(&cfg, f, &out), -1);
    json_object_set_new(f, "id", json_string(""));
    assert_int_equal(ap_accept(&cfg, f, &out), -1);
    assert_int_equal(ap_accept(&cfg, NULL, &out), -1);
    json_t *arr = json_array();
    assert_int_equal(ap_accept(&cfg, arr, &out), -1);
    json_decref(arr);
    assert_string_equal(buf_str(&out), "kept");
    buf_free(&out);
    json_decref(f);
}

/* --- collections ----------------------------------------------------------- */

#define NPOSTS 45
static struct post many[NPOSTS];
static const struct post *many_ptr[NPOSTS];
static char many_url[NPOSTS][64];

/* NPOSTS posts, newest first. */
static void make_many(void)
{
    for (int i = 0; i < NPOSTS; i++) {
        memset(&many[i], 0, sizeof many[i]);
        snprintf(many_url[i], sizeof many_url[i], SITE "/posts/p%02d/", NPOSTS - 1 - i);
        many[i].url = many_url[i];
        many[i].title = "t";
        many[i].html = "<p>x</p>";
        many[i].lang = "en";
        many[i].date = AR_DATE - i * 3600;
        many_ptr[i] = &many[i];
    }
}

static json_t *outbox_page(size_t page, size_t size, size_t total)
{
    struct buf out;
    size_t first = (page - 1) * size, n = total > first ? total - first : 0;
    if (n > size)
        n = size;
    buf_init(&out, 0);
    assert_int_equal(ap_outbox_page(&cfg, many_ptr + first, n, page, size, total, &out), 0);
    return parse(&out);
}

static void test_outbox_empty(void **state)
{
    struct buf out;
    (void)state;
    assert_int_equal(ap_outbox_pages(0, 20), 1);
    buf_init(&out, 0);
    assert_int_equal(ap_outbox(&cfg, 0, 0, &out), 0);
    json_t *c = parse(&out);
    jeq(c, "@context", AS_NS);
    jeq(c, "id", OUTBOX);
    jeq(c, "type", "OrderedCollection");
    assert_int_equal(jint(c, "totalItems"), 0);
    jeq(c, "first", OUTBOX "?page=1");
    jeq(c, "last", OUTBOX "?page=1");
    json_decref(c);

    buf_init(&out, 0);
    assert_int_equal(ap_outbox_page(&cfg, NULL, 0, 1, 0, 0, &out), 0);
    c = parse(&out);
    jeq(c, "id", OUTBOX "?page=1");
    jeq(c, "type", "OrderedCollectionPage");
    jeq(c, "partOf", OUTBOX);
    assert_int_equal(jsize(c, "orderedItems"), 0);
    jabsent(c, "next");
    jabsent(c, "prev");
    json_decref(c);

    buf_init(&out, 0);
    assert_int_equal(ap_outbox_page(&cfg, NULL, 0, 2, 0, 0, &out), -1);
    assert_int_equal(ap_outbox_page(&cfg, NULL, 0, 0, 0, 0, &out), -1);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

static void test_outbox_one_page(void **state)
{
    struct buf out;
    (void)state;
    make_many();
    assert_int_equal(ap_outbox_pages(20, 20), 1);
    assert_int_equal(ap_outbox_pages(1, 20), 1);
    buf_init(&out, 0);
    assert_int_equal(ap_outbox(&cfg, 20, 20, &out), 0);
    json_t *c = parse(&out);
    assert_int_equal(jint(c, "totalItems"), 20);
    jeq(c, "last", OUTBOX "?page=1");
    json_decref(c);

    c = outbox_page(1, 20, 20);
    assert_int_equal(jsize(c, "orderedItems"), 20);
    jabsent(c, "next");
    jabsent(c, "prev");
    jabsent(c, "orderedItems.0.@context");
    jeq(c, "orderedItems.0.type", "Create");
    jeq(c, "orderedItems.0.id", SITE "/posts/p44/#create-1713000000");
    jeq(c, "orderedItems.0.object.id", SITE "/posts/p44/");
    jeq(c, "orderedItems.19.object.id", SITE "/posts/p25/");
    jeq(c, "orderedItems.0.object.preview.type", "Note");
    json_decref(c);

    buf_init(&out, 0);
    assert_int_equal(ap_outbox_page(&cfg, many_ptr, 21, 1, 20, 45, &out), -1); /* n > size */
    assert_int_equal(ap_outbox_page(&cfg, many_ptr, 20, 2, 20, 20, &out), -1); /* past last */
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

static void test_outbox_many(void **state)
{
    struct buf out;
    (void)state;
    make_many();
    assert_int_equal(ap_outbox_pages(NPOSTS, 20), 3);
    assert_int_equal(ap_outbox_pages(NPOSTS, 0), 3);
    assert_int_equal(ap_outbox_pages(40, 20), 2);
    assert_int_equal(ap_outbox_pages(41, 20), 3);
    buf_init(&out, 0);
    assert_int_equal(ap_outbox(&cfg, NPOSTS, 20, &out), 0);
    json_t *c = parse(&out);
    assert_int_equal(jint(c, "totalItems"), NPOSTS);
    jeq(c, "first", OUTBOX "?page=1");
    jeq(c, "last", OUTBOX "?page=3");
    json_decref(c);

    c = outbox_page(1, 20, NPOSTS);
    jabsent(c, "prev");
    jeq(c, "next", OUTBOX "?page=2");
    assert_int_equal(jsize(c, "orderedItems"), 20);
    json_decref(c);

    c = outbox_page(2, 20, NPOSTS);
    jeq(c, "id", OUTBOX "?page=2");
    jeq(c, "prev", OUTBOX "?page=1");
    jeq(c, "next", OUTBOX "?page=3");
    assert_int_equal(jsize(c, "orderedItems"), 20);
    jeq(c, "orderedItems.0.object.id", SITE "/posts/p24/");
    json_decref(c);

    c = outbox_page(3, 20, NPOSTS);
    jeq(c, "prev", OUTBOX "?page=2");
    jabsent(c, "next");
    assert_int_equal(jsize(c, "orderedItems"), 5);
    jeq(c, "orderedItems.4.object.id", SITE "/posts/p00/");
    jeq(c, "orderedItems.4.published", "2024-04-11T13:20:00Z");
    json_decref(c);

    buf_init(&out, 0);
    assert_int_equal(ap_outbox_page(&cfg, many_ptr, 5, 4, 20, NPOSTS, &out), -1);
    const struct post *holes[2] = {&many[0], NULL};
    assert_int_equal(ap_outbox_page(&cfg, holes, 2, 1, 20, 2, &out), -1);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

static void test_followers(void **state)
{
    struct buf out;
    (void)state;
    buf_init(&out, 0);
    assert_int_equal(ap_followers(&cfg, 50, &out), 0);
    json_t *c = parse(&out);
    jeq(c, "@context", AS_NS);
    jeq(c, "id", FOLLOWERS);
    jeq(c, "type", "OrderedCollection");
    assert_int_equal(jint(c, "totalItems"), 50);
    jabsent(c, "first");
    jabsent(c, "orderedItems");
    json_decref(c);
}

/* --- buffers --------------------------------------------------------------- */

static void test_buffer_cap_and_append(void **state)
{
    struct buf out;
    (void)state;
    /* past the cap: -1 and the buffer as it was */
    buf_init(&out, 64);
    assert_int_equal(buf_puts(&out, "before"), 0);
    assert_int_equal(ap_actor(&cfg, PEM, 0, &out), -1);
    assert_int_equal(ap_create(&cfg, &ar_post, &out), -1);
    assert_string_equal(buf_str(&out), "before");
    buf_free(&out);

    /* builders append */
    buf_init(&out, 0);
    assert_int_equal(buf_puts(&out, "prefix"), 0);
    assert_int_equal(ap_followers(&cfg, 1, &out), 0);
    assert_memory_equal(out.data, "prefix{", 7);
    json_t *v = json_loads(out.data + 6, 0, NULL);
    assert_non_null(v);
    json_decref(v);
    buf_free(&out);

    /* a config without a host fails cleanly */
    cfg.site.host = NULL;
    buf_init(&out, 0);
    assert_int_equal(ap_webfinger(&cfg, &out), -1);
    assert_int_equal(ap_webfinger_match(&cfg, "acct:news@" HOST), 0);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_media_types, setup),
        cmocka_unit_test_setup(test_accept_table, setup),
        cmocka_unit_test_setup(test_accept_long, setup),
        cmocka_unit_test_setup(test_webfinger_match, setup),
        cmocka_unit_test_setup(test_webfinger_match_long, setup),
        cmocka_unit_test_setup(test_webfinger_port_and_path, setup),
        cmocka_unit_test_setup(test_webfinger_jrd, setup),
        cmocka_unit_test_setup(test_nodeinfo, setup),
        cmocka_unit_test_setup(test_actor, setup),
        cmocka_unit_test_setup(test_actor_defaults, setup),
        cmocka_unit_test_setup(test_actor_update, setup),
        cmocka_unit_test_setup(test_object_article_arabic, setup),
        cmocka_unit_test_setup(test_object_note, setup),
        cmocka_unit_test_setup(test_object_escaping, setup),
        cmocka_unit_test_setup(test_object_bad_bytes, setup),
        cmocka_unit_test_setup(test_create, setup),
        cmocka_unit_test_setup(test_update, setup),
        cmocka_unit_test_setup(test_delete, setup),
        cmocka_unit_test_setup(test_accept_follow, setup),
        cmocka_unit_test_setup(test_outbox_empty, setup),
        cmocka_unit_test_setup(test_outbox_one_page, setup),
        cmocka_unit_test_setup(test_outbox_many, setup),
        cmocka_unit_test_setup(test_followers, setup),
        cmocka_unit_test_setup(test_buffer_cap_and_append, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
