/*
 * ap_docs: the JSON documents of the site's ActivityPub actor (SPEC §6,
 * §7): WebFinger (RFC 7033, RFC 7565 acct:), NodeInfo 2.1, the actor, post
 * objects (Activity Vocabulary Article/Note, FEP-b2b8), their activities,
 * the outbox and followers collections (ActivityPub §5), and the Accept
 * negotiation of RFC 9110 §12.5.1. See docs.h for each document's shape.
 *
 * Every builder makes a jansson tree with a sticky error (struct apj), so a
 * function is a list of fields without a check after each, and dumps it
 * compact, keys in insertion order (Mastodon does not care about order; a
 * reader of a capture does). Strings from outside go through lib/text's
 * cleaning first: jansson refuses invalid UTF-8, and a control character in
 * a title must not cost the post its federation.
 */
#include <ctype.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../lib/text.h"
#include "../lib/timefmt.h"
#include "docs.h"

/* Cap of scratch buffers (a post body is capped by content.max_bytes long
 * before this). */
#define AP_TEXT_CAP (256u << 20)

#define AP_NS_SECURITY "https://w3id.org/security/v1"

/* The @context of the actor: Mastodon's extension terms it reads, inline
 * (a remote context would cost JSON-LD readers a fetch). */
static const char ctx_actor[] =
    "[\"" AP_NS_AS "\",\"" AP_NS_SECURITY "\","
    "{\"manuallyApprovesFollowers\":\"as:manuallyApprovesFollowers\","
    "\"toot\":\"http://joinmastodon.org/ns#\","
    "\"discoverable\":\"toot:discoverable\","
    "\"indexable\":\"toot:indexable\","
    "\"webfinger\":{\"@id\":\"https://purl.archive.org/socialweb/webfinger#webfinger\","
    "\"@type\":\"http://www.w3.org/2001/XMLSchema#string\"}}]";

/* The @context of every other document. */
static const char ctx_as[] = "\"" AP_NS_AS "\"";

/* The @context of documents that hold post objects. */
static const char ctx_object[] = "[\"" AP_NS_AS "\","
                                 "{\"Hashtag\":\"as:Hashtag\",\"sensitive\":\"as:sensitive\"}]";

/* --- building JSON with a sticky error ----------------------------------- */

struct apj {
    const struct config *cfg;
    struct buf tmp; /* the cleaned copy of the string being added */
    int err;
};

/* A config without site.url or site.host (config_load never makes one)
 * fails every builder, before any of them formats a NULL. */
static void apj_init(struct apj *j, const struct config *cfg)
{
    j->cfg = cfg;
    buf_init(&j->tmp, AP_TEXT_CAP);
    j->err = !cfg->site.url || !cfg->site.host;
}

/* A JSON string of s[0..len), cleaned; NULL (and the error) on failure. */
static json_t *apj_strn(struct apj *j, const char *s, size_t len)
{
    json_t *v = NULL;
    size_t bad;

    if (j->err)
        return NULL;
    if (utf8_valid(s, len, &bad) && text_xml_is_clean(s, len)) {
        v = json_stringn_nocheck(s, len);
    } else {
        buf_reset(&j->tmp);
        if (text_xml_clean(&j->tmp, s, len) == 0)
            v = json_stringn_nocheck(buf_str(&j->tmp), j->tmp.len); /* valid UTF-8 now */
    }
    if (!v)
        j->err = 1;
    return v;
}

static json_t *apj_str(struct apj *j, const char *s)
{
    return apj_strn(j, s, strlen(s));
}

__attribute__((format(printf, 2, 0))) static json_t *apj_vfmt(struct apj *j, const char *fmt,
                                                              va_list ap)
{
    struct buf b;
    json_t *v = NULL;

    buf_init(&b, AP_TEXT_CAP);
    if (!j->err && buf_vprintf(&b, fmt, ap) == 0)
        v = apj_strn(j, buf_str(&b), b.len);
    if (!v)
        j->err = 1;
    buf_free(&b);
    return v;
}

__attribute__((format(printf, 2, 3))) static json_t *apj_fmt(struct apj *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *v = apj_vfmt(j, fmt, ap);
    va_end(ap);
    return v;
}

/* obj[key] = v; v is consumed (jansson's *_new setters release it even when
 * obj is NULL); a NULL v or obj sets the error. */
static void apj_set(struct apj *j, json_t *obj, const char *key, json_t *v)
{
    if (json_object_set_new(obj, key, v) < 0)
        j->err = 1;
}

/* obj[key] = s, cleaned; nothing when s is NULL. */
static void apj_sets(struct apj *j, json_t *obj, const char *key, const char *s)
{
    if (s)
        apj_set(j, obj, key, apj_str(j, s));
}

__attribute__((format(printf, 4, 5))) static void apj_setf(struct apj *j, json_t *obj,
                                                           const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    apj_set(j, obj, key, apj_vfmt(j, fmt, ap));
    va_end(ap);
}

/* {site.url}{path} */
static json_t *apj_url(struct apj *j, const char *path)
{
    return apj_fmt(j, "%s%s", j->cfg->site.url, path);
}

/* obj[key] = RFC 3339 date of t. */
static void apj_date(struct apj *j, json_t *obj, const char *key, int64_t t)
{
    char d[64];
    apj_sets(j, obj, key, timefmt_rfc3339(t, d, sizeof d));
}

static void apj_bool(struct apj *j, json_t *obj, const char *key, int v)
{
    apj_set(j, obj, key, json_boolean(v));
}

/* [v], v consumed. */
static json_t *apj_list1(struct apj *j, json_t *v)
{
    json_t *a = json_array();
    if (json_array_append_new(a, v) < 0) {
        json_decref(a);
        j->err = 1;
        return NULL;
    }
    return a;
}

static json_t *apj_object(struct apj *j)
{
    json_t *o = json_object();
    if (!o)
        j->err = 1;
    return o;
}

/* A constant JSON text (the @contexts). */
static json_t *apj_const(struct apj *j, const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!v)
        j->err = 1;
    return v;
}

static int apj_out(const char *data, size_t size, void *arg)
{
    return buf_append(arg, data, size);
}

/* Appends root to out compact and frees root and j: 0, or -1 with out as it
 * was when anything failed on the way. */
static int apj_finish(struct apj *j, json_t *root, struct buf *out)
{
    size_t len0 = out->len;
    int rc = -1;

    if (!j->err && root &&
        json_dump_callback(root, apj_out, out, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0)
        rc = 0;
    if (rc < 0 && out->data) {
        out->len = len0;
        out->data[len0] = '\0';
    }
    json_decref(root);
    buf_free(&j->tmp);
    return rc;
}

/* --- the config's names, with the defaults config.c gives them ----------- */

static const char *ap_username(const struct config *cfg)
{
    return cfg->activitypub.username ? cfg->activitypub.username : "news";
}

static int ap_is_note(const struct config *cfg)
{
    return cfg->activitypub.object_type && !strcmp(cfg->activitypub.object_type, "Note");
}

static const char *ap_object_type(const struct config *cfg)
{
    return ap_is_note(cfg) ? "Note" : "Article";
}

static const char *ap_actor_type(const struct config *cfg)
{
    const char *t = cfg->activitypub.actor_type;
    return t && !strcmp(t, "Person") ? "Person" : "Service";
}

static const char *ap_post_lang(const struct config *cfg, const struct post *p)
{
    if (p->lang && *p->lang)
        return p->lang;
    return cfg->site.language && *cfg->site.language ? cfg->site.language : "en";
}

/* --- media types and content negotiation --------------------------------- */

const char *ap_media_type(enum ap_media m)
{
    switch (m) {
    case AP_MEDIA_ACTIVITY:
        return "application/activity+json";
    case AP_MEDIA_LD:
        return "application/ld+json; profile=\"" AP_NS_AS "\"";
    case AP_MEDIA_JRD:
        return "application/jrd+json";
    case AP_MEDIA_NODEINFO:
        return "application/json; profile=\"" AP_NODEINFO_SCHEMA "#\"";
    case AP_MEDIA_JSON:
        return "application/json";
    }
    return "application/json"; /* not an enum ap_media: the generic type */
}

/* One media range of an Accept header. */
struct media_range {
    const char *type, *sub;
    size_t tlen, slen;
    int q;       /* weight x 1000 */
    int profile; /* 0: no profile parameter; 1: one naming ActivityStreams; -1: others only */
};

/* RFC 9110 tchar */
static int is_tchar(int c)
{
    return c > 0x20 && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Past the quoted-string opening at p (p[0] == '"'); at its closing quote,
 * or at the end of the string when it is not closed. */
static const char *skip_quoted(const char *p)
{
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1])
            p++;
    return p;
}

static int token_is(const char *s, size_t n, const char *want)
{
    return strlen(want) == n && !strncasecmp(s, want, n);
}

/* RFC 9110 weight: "0" ["." 0*3DIGIT] | "1" ["." 0*3("0")], as 0..1000. */
static int parse_q(const char *v, size_t n, int *q)
{
    int w, scale = 100;

    if (n == 0 || (v[0] != '0' && v[0] != '1') || n > 5 || (n > 1 && v[1] != '.'))
        return -1;
    w = (v[0] - '0') * 1000;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (!isdigit((unsigned char)v[i]))
            return -1;
        w += (v[i] - '0') * scale;
    }
    if (w > 1000)
        return -1;
    *q = w;
    return 0;
}

/* 1 if the space-separated profile list v[0..n) names ActivityStreams. */
static int profile_is_as(const char *v, size_t n)
{
    const char *end = v + n;
    while (v < end) {
        while (v < end && *v == ' ')
            v++;
        const char *w = v;
        while (v < end && *v != ' ')
            v++;
        if (token_is(w, (size_t)(v - w), AP_NS_AS) ||
            token_is(w, (size_t)(v - w), "http://www.w3.org/ns/activitystreams"))
            return 1;
    }
    return 0;
}

/* Reads the parameters of a media range at p (at a ';' or not); returns
 * where they end, or NULL when one is malformed. */
static const char *range_params(const char *p, struct media_range *r)
{
    while (*p == ';') {
        const char *name = p = skip_ows(p + 1), *val;
        size_t nl, vl;
        while (is_tchar((unsigned char)*p))
            p++;
        nl = (size_t)(p - name);
        if (!nl || *p++ != '=')
            return NULL;
        if (*p == '"') {
            val = p + 1;
            p = skip_quoted(p);
            if (*p != '"')
                return NULL;
            vl = (size_t)(p++ - val);
        } else {
            for (val = p; is_tchar((unsigned char)*p); p++)
                ;
            vl = (size_t)(p - val);
        }
        if (token_is(name, nl, "q") && parse_q(val, vl, &r->q) < 0)
            return NULL;
        if (token_is(name, nl, "profile"))
            r->profile = profile_is_as(val, vl) ? 1 : r->profile == 1 ? 1 : -1;
        p = skip_ows(p);
    }
    return p;
}

/*
 * Reads the list element at *pp into *r and moves *pp past it (and its
 * ','). Returns 1, or 0 for an empty or malformed element, which the caller
 * skips. Always advances unless at the end of the string.
 */
static int next_range(const char **pp, struct media_range *r)
{
    const char *p = skip_ows(*pp);
    int ok = 0;

    memset(r, 0, sizeof *r);
    r->q = 1000;
    r->type = p;
    while (is_tchar((unsigned char)*p))
        p++;
    r->tlen = (size_t)(p - r->type);
    if (r->tlen && *p == '/') {
        r->sub = ++p;
        while (is_tchar((unsigned char)*p))
            p++;
        r->slen = (size_t)(p - r->sub);
        if (r->slen && (p = range_params(skip_ows(p), r)) && (*p == ',' || !*p))
            ok = 1;
    }
    if (!p) /* bad parameter: skip from where the element began */
        p = r->type;
    while (*p && *p != ',') {
        if (*p == '"' && *(p = skip_quoted(p)) == '\0')
            break;
        p++;
    }
    *pp = *p ? p + 1 : p;
    return ok;
}

/*
 * How specifically r matches type/sub: 0 not at all, 1 any type (a star over
 * a star), 2 any subtype of type, 3 the type itself, 4 the type with the
 * ActivityStreams profile. For the JSON types (as_json) a range whose
 * profiles are all others does not match.
 */
static int range_match(const struct media_range *r, const char *type, const char *sub, int as_json)
{
    int star_sub = r->slen == 1 && r->sub[0] == '*';
    if (r->tlen == 1 && r->type[0] == '*')
        return star_sub ? 1 : 0;
    if (!token_is(r->type, r->tlen, type))
        return 0;
    if (star_sub)
        return 2;
    if (!token_is(r->sub, r->slen, sub) || (as_json && r->profile < 0))
        return 0;
    return as_json && r->profile > 0 ? 4 : 3;
}

/* The weight a representation gets: that of its most specific range. */
struct pref {
    int spec, q;
};

static void pref_see(struct pref *pf, int spec, int q)
{
    if (spec > pf->spec || (spec && spec == pf->spec && q > pf->q)) {
        pf->spec = spec;
        pf->q = q;
    }
}

int ap_wants_json(const char *accept)
{
    struct pref aj = {0, 0}, ld = {0, 0}, html = {0, 0};
    struct media_range r;
    const char *p = accept;

    if (!p)
        return 0;
    while (*p) {
        if (!next_range(&p, &r))
            continue;
        pref_see(&aj, range_match(&r, "application", "activity+json", 1), r.q);
        pref_see(&ld, range_match(&r, "application", "ld+json", 1), r.q);
        pref_see(&html, range_match(&r, "text", "html", 0), r.q);
    }
    int json_q = aj.q > ld.q ? aj.q : ld.q;
    if (json_q == 0 || json_q <= html.q)
        return 0;
    return aj.q >= ld.q ? AP_MEDIA_ACTIVITY : AP_MEDIA_LD;
}

/* --- WebFinger ------------------------------------------------------------- */

/* "{user}@{host}", one leading '@' allowed. */
static int acct_match(const struct config *cfg, const char *r)
{
    const char *user = ap_username(cfg);
    size_t ul = strlen(user);

    if (!cfg->site.host)
        return 0;
    if (*r == '@')
        r++;
    return !strncasecmp(r, user, ul) && r[ul] == '@' && !strcasecmp(r + ul + 1, cfg->site.host);
}

/* 1 if url is {site.url}{path}: scheme and host without case, the rest exactly. */
static int url_match(const struct config *cfg, const char *url, const char *path)
{
    const char *site = cfg->site.url, *sep = site ? strstr(site, "://") : NULL;
    if (!sep)
        return 0;
    size_t origin = (size_t)(sep + 3 - site) + strcspn(sep + 3, "/"), rest = strlen(site + origin);
    return !strncasecmp(url, site, origin) && !strncmp(url + origin, site + origin, rest) &&
           !strcmp(url + origin + rest, path);
}

int ap_webfinger_match(const struct config *cfg, const char *resource)
{
    if (!resource || strnlen(resource, AP_RESOURCE_MAX + 1) > AP_RESOURCE_MAX)
        return 0;
    if (!strncasecmp(resource, "acct:", 5))
        return acct_match(cfg, resource + 5);
    if (!strncasecmp(resource, "https://", 8) || !strncasecmp(resource, "http://", 7))
        return url_match(cfg, resource, AP_PATH_ACTOR) || url_match(cfg, resource, "/") ||
               url_match(cfg, resource, "");
    return strchr(resource, '@') && acct_match(cfg, resource);
}

/* {"rel": rel, "type": type, "href": href}, href consumed. */
static json_t *jrd_link(struct apj *j, const char *rel, const char *type, json_t *href)
{
    json_t *l = apj_object(j);
    apj_sets(j, l, "rel", rel);
    apj_sets(j, l, "type", type);
    apj_set(j, l, "href", href);
    return l;
}

static const char *image_type(const char *url);

int ap_webfinger(const struct config *cfg, struct buf *out)
{
    struct apj j;
    apj_init(&j, cfg);
    json_t *root = apj_object(&j), *aliases = json_array(), *links = json_array();

    apj_setf(&j, root, "subject", "acct:%s@%s", ap_username(cfg), cfg->site.host);
    apj_set(&j, root, "aliases", aliases);
    if (json_array_append_new(aliases, apj_url(&j, AP_PATH_ACTOR)) < 0 ||
        json_array_append_new(aliases, apj_url(&j, "/")) < 0)
        j.err = 1;
    apj_set(&j, root, "links", links);
    if (json_array_append_new(links, jrd_link(&j, "http://webfinger.net/rel/profile-page",
                                              "text/html", apj_url(&j, "/"))) < 0 ||
        json_array_append_new(links, jrd_link(&j, "self", ap_media_type(AP_MEDIA_ACTIVITY),
                                              apj_url(&j, AP_PATH_ACTOR))) < 0)
        j.err = 1;
    if (cfg->activitypub.icon &&
        json_array_append_new(links, jrd_link(&j, "http://webfinger.net/rel/avatar",
                                              image_type(cfg->activitypub.icon),
                                              apj_str(&j, cfg->activitypub.icon))) < 0)
        j.err = 1;
    return apj_finish(&j, root, out);
}

/* --- NodeInfo -------------------------------------------------------------- */

int ap_nodeinfo_links(const struct config *cfg, struct buf *out)
{
    struct apj j;
    apj_init(&j, cfg);
    json_t *root = apj_object(&j), *link = apj_object(&j);

    apj_sets(&j, link, "rel", AP_NODEINFO_SCHEMA);
    apj_set(&j, link, "href", apj_url(&j, AP_PATH_NODEINFO));
    apj_set(&j, root, "links", apj_list1(&j, link));
    return apj_finish(&j, root, out);
}

int ap_nodeinfo(const struct config *cfg, const char *version, size_t local_posts, struct buf *out)
{
    struct apj j;
    if (!version)
        return -1;
    apj_init(&j, cfg);
    json_t *root = apj_object(&j), *sw = apj_object(&j), *services = apj_object(&j),
           *outbound = json_array(), *usage = apj_object(&j), *users = apj_object(&j),
           *meta = apj_object(&j);

    apj_sets(&j, root, "version", "2.1");
    apj_sets(&j, sw, "name", "nashra");
    apj_sets(&j, sw, "version", version);
    apj_set(&j, root, "software", sw);
    apj_set(&j, root, "protocols", apj_list1(&j, apj_str(&j, "activitypub")));
    apj_set(&j, services, "inbound", json_array());
    /* What else the site publishes, in NodeInfo's names for it. */
    if (json_array_append_new(outbound, apj_str(&j, "atom1.0")) < 0 ||
        json_array_append_new(outbound, apj_str(&j, "rss2.0")) < 0)
        j.err = 1;
    apj_set(&j, services, "outbound", outbound);
    apj_set(&j, root, "services", services);
    apj_bool(&j, root, "openRegistrations", 0);
    apj_set(&j, users, "total", json_integer(1));
    apj_set(&j, users, "activeMonth", json_integer(1));
    apj_set(&j, users, "activeHalfyear", json_integer(1));
    apj_set(&j, usage, "users", users);
    apj_set(&j, usage, "localPosts", json_integer((json_int_t)local_posts));
    apj_set(&j, root, "usage", usage);
    apj_sets(&j, meta, "nodeName", cfg->site.title);
    apj_set(&j, root, "metadata", meta);
    return apj_finish(&j, root, out);
}

/* --- the actor ------------------------------------------------------------- */

/* The media type of an image URL by its extension; NULL when unknown. */
static const char *image_type(const char *url)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"jpg", "image/jpeg"},    {"jpeg", "image/jpeg"}, {"png", "image/png"},
        {"gif", "image/gif"},     {"webp", "image/webp"}, {"avif", "image/avif"},
        {"svg", "image/svg+xml"},
    };
    size_t end = strcspn(url, "?#"), i = end;

    while (i > 0 && url[i - 1] != '.' && url[i - 1] != '/')
        i--;
    if (i == 0 || url[i - 1] != '.')
        return NULL;
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
        if (token_is(url + i, end - i, types[k].ext))
            return types[k].type;
    return NULL;
}

/* {"type": "Image", "mediaType": …, "url": url} */
static json_t *image_json(struct apj *j, const char *url)
{
    json_t *o = apj_object(j);
    apj_sets(j, o, "type", "Image");
    apj_sets(j, o, "mediaType", image_type(url));
    apj_sets(j, o, "url", url);
    return o;
}

/* Appends text as one HTML paragraph: escaped, line breaks as <br>, trailing
 * ones dropped. */
static int html_paragraph(struct buf *out, const char *text)
{
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    if (buf_puts(out, "<p>") < 0)
        return -1;
    for (size_t i = 0; i < n;) {
        size_t k = strcspn(text + i, "\n"), line;
        if (k > n - i)
            k = n - i;
        line = k > 0 && text[i + k - 1] == '\r' ? k - 1 : k;
        if (text_escape_html(out, text + i, line) < 0 || (i + k < n && buf_puts(out, "<br>") < 0))
            return -1;
        i += k + 1;
    }
    return buf_puts(out, "</p>");
}

/* The actor document; with its @context unless embedded. */
static json_t *actor_json(struct apj *j, const char *pem, int64_t created, int embedded)
{
    const struct config *cfg = j->cfg;
    json_t *a = apj_object(j), *endpoints = apj_object(j), *key = apj_object(j);
    struct buf sum;

    if (!embedded)
        apj_set(j, a, "@context", apj_const(j, ctx_actor));
    apj_set(j, a, "id", apj_url(j, AP_PATH_ACTOR));
    apj_sets(j, a, "type", ap_actor_type(cfg));
    apj_sets(j, a, "preferredUsername", ap_username(cfg));
    apj_sets(j, a, "name",
             cfg->activitypub.display_name ? cfg->activitypub.display_name : cfg->site.title);
    buf_init(&sum, AP_TEXT_CAP);
    if (cfg->activitypub.summary && *cfg->activitypub.summary &&
        html_paragraph(&sum, cfg->activitypub.summary) < 0)
        j->err = 1;
    apj_set(j, a, "summary", apj_strn(j, buf_str(&sum), sum.len));
    buf_free(&sum);
    apj_set(j, a, "url", apj_url(j, "/"));
    apj_set(j, a, "inbox", apj_url(j, AP_PATH_INBOX));
    apj_set(j, a, "outbox", apj_url(j, AP_PATH_OUTBOX));
    apj_set(j, a, "followers", apj_url(j, AP_PATH_FOLLOWERS));
    apj_set(j, endpoints, "sharedInbox", apj_url(j, AP_PATH_INBOX));
    apj_set(j, a, "endpoints", endpoints);
    apj_set(j, key, "id", apj_url(j, AP_PATH_ACTOR AP_KEY_FRAGMENT));
    apj_set(j, key, "owner", apj_url(j, AP_PATH_ACTOR));
    apj_sets(j, key, "publicKeyPem", pem);
    apj_set(j, a, "publicKey", key);
    if (cfg->activitypub.icon)
        apj_set(j, a, "icon", image_json(j, cfg->activitypub.icon));
    apj_bool(j, a, "manuallyApprovesFollowers", 0);
    apj_bool(j, a, "discoverable", 1);
    apj_bool(j, a, "indexable", 1);
    apj_setf(j, a, "webfinger", "%s@%s", ap_username(cfg), cfg->site.host);
    if (created)
        apj_date(j, a, "published", created);
    return a;
}

int ap_actor(const struct config *cfg, const char *public_key_pem, int64_t created, struct buf *out)
{
    struct apj j;
    if (!public_key_pem)
        return -1;
    apj_init(&j, cfg);
    return apj_finish(&j, actor_json(&j, public_key_pem, created, 0), out);
}

/* The fields every activity has, in order: @context (none when ctx is NULL:
 * embedded), id (consumed), type, actor. */
static json_t *activity_head(struct apj *j, const char *ctx, json_t *id, const char *type)
{
    json_t *act = apj_object(j);
    if (ctx)
        apj_set(j, act, "@context", apj_const(j, ctx));
    apj_set(j, act, "id", id);
    apj_sets(j, act, "type", type);
    apj_set(j, act, "actor", apj_url(j, AP_PATH_ACTOR));
    return act;
}

int ap_actor_update(const struct config *cfg, const char *public_key_pem, int64_t created,
                    int64_t now, struct buf *out)
{
    struct apj j;
    if (!public_key_pem)
        return -1;
    apj_init(&j, cfg);
    json_t *act = activity_head(
        &j, ctx_actor, apj_fmt(&j, "%s" AP_PATH_ACTOR "#update-%" PRId64, cfg->site.url, now),
        "Update");
    apj_date(&j, act, "published", now);
    apj_set(&j, act, "to", apj_list1(&j, apj_str(&j, AP_PUBLIC)));
    apj_set(&j, act, "object", actor_json(&j, public_key_pem, created, 1));
    return apj_finish(&j, act, out);
}

/* --- post objects ---------------------------------------------------------- */

/* Appends "#name" for a tag, without what Mastodon's hashtags cannot hold
 * (ASCII other than letters, digits and '_'; other UTF-8 is kept). 0 when
 * nothing usable is left (no letter at all: Mastodon wants one). */
static int hashtag_name(struct buf *out, const char *tag)
{
    int letter = 0;
    if (buf_putc(out, '#') < 0)
        return -1;
    for (const unsigned char *s = (const unsigned char *)tag; *s; s++) {
        if (*s >= 0x80 || isalpha(*s))
            letter = 1;
        if ((*s >= 0x80 || isalnum(*s) || *s == '_') && buf_putc(out, (char)*s) < 0)
            return -1;
    }
    return letter;
}

static json_t *hashtags(struct apj *j, const struct post *p)
{
    json_t *arr = json_array();
    struct buf name;

    buf_init(&name, AP_TEXT_CAP);
    for (size_t i = 0; arr && !j->err && i < p->ntags; i++) {
        buf_reset(&name);
        int rc = hashtag_name(&name, p->tags[i]);
        if (rc < 0)
            j->err = 1;
        if (rc <= 0)
            continue;
        json_t *v = apj_strn(j, buf_str(&name), name.len), *t;
        size_t k;
        int dup = 0;
        json_array_foreach(arr, k, t)
        {
            dup |= v &&
                   !strcasecmp(json_string_value(json_object_get(t, "name")), json_string_value(v));
        }
        if (dup) {
            json_decref(v);
            continue;
        }
        t = apj_object(j);
        apj_sets(j, t, "type", "Hashtag");
        apj_set(j, t, "name", v);
        if (json_array_append_new(arr, t) < 0)
            j->err = 1;
    }
    if (!arr)
        j->err = 1;
    buf_free(&name);
    return arr;
}

/* Appends <p><a href="url">url</a></p>. */
static int html_link(struct buf *out, const char *url)
{
    size_t n = strlen(url);
    if (buf_puts(out, "<p><a href=\"") < 0 || text_escape_html(out, url, n) < 0 ||
        buf_puts(out, "\">") < 0 || text_escape_html(out, url, n) < 0)
        return -1;
    return buf_puts(out, "</a></p>");
}

/* A Note's content: the title in bold, the summary, the link. The preview
 * of an Article (with_title 0): the summary and the link. */
static int short_html(struct buf *out, const struct post *p, int with_title)
{
    if (with_title && p->title &&
        (buf_puts(out, "<p><strong>") < 0 ||
         text_escape_html(out, p->title, strlen(p->title)) < 0 ||
         buf_puts(out, "</strong></p>") < 0))
        return -1;
    if (p->summary && *p->summary && html_paragraph(out, p->summary) < 0)
        return -1;
    return html_link(out, p->url);
}

/* obj["content"] = html and obj["contentMap"] = {lang: html}. */
static void set_content(struct apj *j, json_t *obj, const char *lang, const char *html, size_t len)
{
    json_t *c = apj_strn(j, html, len), *map = apj_object(j);
    apj_set(j, obj, "content", json_incref(c));
    apj_set(j, map, lang, c);
    apj_set(j, obj, "contentMap", map);
}

static void set_audience(struct apj *j, json_t *obj)
{
    apj_set(j, obj, "to", apj_list1(j, apj_str(j, AP_PUBLIC)));
    apj_set(j, obj, "cc", apj_list1(j, apj_url(j, AP_PATH_FOLLOWERS)));
}

/* The cover image: `image`, and an Image attachment Mastodon shows. */
static void set_image(struct apj *j, json_t *obj, const char *url)
{
    const char *type = image_type(url);
    apj_set(j, obj, "image", image_json(j, url));
    if (type && strcmp(type, "image/svg+xml") != 0)
        apj_set(j, obj, "attachment", apj_list1(j, image_json(j, url)));
}

/* The post's object, with its @context unless embedded; updated 0:
 * p->updated when later than p->date. */
static json_t *object_json(struct apj *j, const struct post *p, int64_t updated, int embedded)
{
    const struct config *cfg = j->cfg;
    const char *lang = ap_post_lang(cfg, p);
    int note = ap_is_note(cfg);
    json_t *o = apj_object(j);
    struct buf s;

    if (!p->url) {
        j->err = 1;
        return o;
    }
    if (!embedded)
        apj_set(j, o, "@context", apj_const(j, ctx_object));
    if (!updated && p->updated > p->date)
        updated = p->updated;
    buf_init(&s, AP_TEXT_CAP);
    apj_sets(j, o, "id", p->url);
    apj_sets(j, o, "type", ap_object_type(cfg));
    apj_set(j, o, "attributedTo", apj_url(j, AP_PATH_ACTOR));
    apj_sets(j, o, "name", p->title);
    if (note) {
        if (short_html(&s, p, 1) < 0)
            j->err = 1;
        set_content(j, o, lang, buf_str(&s), s.len);
    } else {
        const char *html = p->html ? p->html : "";
        set_content(j, o, lang, html, p->html_len || !p->html ? p->html_len : strlen(html));
        if (p->summary && *p->summary) {
            if (html_paragraph(&s, p->summary) < 0)
                j->err = 1;
            apj_set(j, o, "summary", apj_strn(j, buf_str(&s), s.len));
        }
    }
    apj_sets(j, o, "url", p->url);
    apj_date(j, o, "published", p->date);
    if (updated)
        apj_date(j, o, "updated", updated);
    set_audience(j, o);
    if (p->ntags)
        apj_set(j, o, "tag", hashtags(j, p));
    if (p->image)
        set_image(j, o, p->image);
    if (!note) {
        json_t *pv = apj_object(j);
        buf_reset(&s);
        if (short_html(&s, p, 0) < 0)
            j->err = 1;
        apj_sets(j, pv, "type", "Note");
        apj_set(j, pv, "attributedTo", apj_url(j, AP_PATH_ACTOR));
        set_content(j, pv, lang, buf_str(&s), s.len);
        apj_set(j, o, "preview", pv);
    }
    apj_bool(j, o, "sensitive", 0);
    buf_free(&s);
    return o;
}

int ap_object(const struct config *cfg, const struct post *p, struct buf *out)
{
    struct apj j;
    apj_init(&j, cfg);
    return apj_finish(&j, object_json(&j, p, 0, 0), out);
}

/* Create or Update of p; without @context when embedded (outbox pages). */
static json_t *post_activity(struct apj *j, const struct post *p, int update, int64_t when,
                             int embedded)
{
    json_t *id = apj_fmt(j, "%s#%s-%" PRId64, p->url ? p->url : "", update ? "update" : "create",
                         when),
           *act = activity_head(j, embedded ? NULL : ctx_object, id, update ? "Update" : "Create");
    apj_date(j, act, "published", when);
    set_audience(j, act);
    apj_set(j, act, "object", object_json(j, p, update ? when : 0, 1));
    return act;
}

int ap_create(const struct config *cfg, const struct post *p, struct buf *out)
{
    struct apj j;
    apj_init(&j, cfg);
    return apj_finish(&j, post_activity(&j, p, 0, p->date, 0), out);
}

int ap_update(const struct config *cfg, const struct post *p, int64_t updated, struct buf *out)
{
    struct apj j;
    apj_init(&j, cfg);
    return apj_finish(&j, post_activity(&j, p, 1, updated, 0), out);
}

int ap_delete(const struct config *cfg, const char *object_id, int64_t deleted, struct buf *out)
{
    struct apj j;
    if (!object_id)
        return -1;
    apj_init(&j, cfg);
    json_t *act = activity_head(&j, ctx_as, apj_fmt(&j, "%s#delete-%" PRId64, object_id, deleted),
                                "Delete"),
           *tomb = apj_object(&j);
    apj_date(&j, act, "published", deleted);
    set_audience(&j, act);
    apj_sets(&j, tomb, "id", object_id);
    apj_sets(&j, tomb, "type", "Tombstone");
    apj_sets(&j, tomb, "formerType", ap_object_type(cfg));
    apj_date(&j, tomb, "deleted", deleted);
    apj_set(&j, act, "object", tomb);
    return apj_finish(&j, act, out);
}

/* --- Accept{Follow} -------------------------------------------------------- */

int ap_accept(const struct config *cfg, const json_t *follow, struct buf *out)
{
    const char *type = json_string_value(json_object_get(follow, "type")),
               *id = json_string_value(json_object_get(follow, "id"));
    const json_t *actor = json_object_get(follow, "actor");
    const char *who = json_is_string(actor) ? json_string_value(actor)
                                            : json_string_value(json_object_get(actor, "id"));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[33];
    struct apj j;

    if (!type || strcmp(type, "Follow") != 0 || !id || !*id || !who || !*who ||
        !EVP_Digest(id, strlen(id), md, &mdlen, EVP_sha256(), NULL) || mdlen < 16)
        return -1;
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    apj_init(&j, cfg);
    json_t *act = activity_head(
        &j, ctx_as, apj_fmt(&j, "%s" AP_PATH_ACTOR "#accept-%s", cfg->site.url, hex), "Accept");
    apj_set(&j, act, "to", apj_list1(&j, apj_str(&j, who)));
    json_t *copy = json_deep_copy(follow);
    apj_set(&j, act, "object", copy);
    return apj_finish(&j, act, out);
}

/* --- collections ----------------------------------------------------------- */

size_t ap_outbox_pages(size_t total, size_t page_size)
{
    if (!page_size)
        page_size = AP_OUTBOX_PAGE_SIZE;
    return total ? (total - 1) / page_size + 1 : 1;
}

int ap_outbox(const struct config *cfg, size_t total, size_t page_size, struct buf *out)
{
    struct apj j;
    apj_init(&j, cfg);
    json_t *root = apj_object(&j);

    apj_set(&j, root, "@context", apj_const(&j, ctx_as));
    apj_set(&j, root, "id", apj_url(&j, AP_PATH_OUTBOX));
    apj_sets(&j, root, "type", "OrderedCollection");
    apj_set(&j, root, "totalItems", json_integer((json_int_t)total));
    apj_setf(&j, root, "first", "%s" AP_PATH_OUTBOX "?page=1", cfg->site.url);
    apj_setf(&j, root, "last", "%s" AP_PATH_OUTBOX "?page=%zu", cfg->site.url,
             ap_outbox_pages(total, page_size));
    return apj_finish(&j, root, out);
}

int ap_outbox_page(const struct config *cfg, const struct post *const *posts, size_t n, size_t page,
                   size_t page_size, size_t total, struct buf *out)
{
    struct apj j;
    size_t pages = ap_outbox_pages(total, page_size);

    if (!page_size)
        page_size = AP_OUTBOX_PAGE_SIZE;
    if (page == 0 || page > pages || n > page_size || (n && !posts))
        return -1;
    apj_init(&j, cfg);
    json_t *root = apj_object(&j), *items = json_array();
    apj_set(&j, root, "@context", apj_const(&j, ctx_object));
    apj_setf(&j, root, "id", "%s" AP_PATH_OUTBOX "?page=%zu", cfg->site.url, page);
    apj_sets(&j, root, "type", "OrderedCollectionPage");
    apj_set(&j, root, "partOf", apj_url(&j, AP_PATH_OUTBOX));
    apj_set(&j, root, "totalItems", json_integer((json_int_t)total));
    if (page > 1)
        apj_setf(&j, root, "prev", "%s" AP_PATH_OUTBOX "?page=%zu", cfg->site.url, page - 1);
    if (page < pages)
        apj_setf(&j, root, "next", "%s" AP_PATH_OUTBOX "?page=%zu", cfg->site.url, page + 1);
    for (size_t i = 0; i < n && !j.err; i++)
        if (!posts[i] ||
            json_array_append_new(items, post_activity(&j, posts[i], 0, posts[i]->date, 1)) < 0)
            j.err = 1;
    apj_set(&j, root, "orderedItems", items);
    return apj_finish(&j, root, out);
}

int ap_followers(const struct config *cfg, size_t total, struct buf *out)
{
    struct apj j;
    apj_init(&j, cfg);
    json_t *root = apj_object(&j);
    apj_set(&j, root, "@context", apj_const(&j, ctx_as));
    apj_set(&j, root, "id", apj_url(&j, AP_PATH_FOLLOWERS));
    apj_sets(&j, root, "type", "OrderedCollection");
    apj_set(&j, root, "totalItems", json_integer((json_int_t)total));
    return apj_finish(&j, root, out);
}
