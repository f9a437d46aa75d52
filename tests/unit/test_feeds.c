/*
 * test_feeds: RSS 2.0, Atom 1.0, JSON Feed 1.1 and the HTML archive built
 * from hand-made posts (Arabic and English, text that needs escaping, a
 * control character XML forbids), parsed back with libxml2 and jansson.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "../../feeds/feeds.h"
#include "../../lib/fileio.h"
#include "../../lib/timefmt.h"

#define SITE_URL   "https://news.example.org"
#define SITE_TITLE "نشاطات منظمة التعاون الرقمي"
#define AR_SLUG    "منتدى-الدبلوماسية"
#define AR_URL                                                                                     \
    SITE_URL "/posts/%D9%85%D9%86%D8%AA%D8%AF%D9%89-%D8%A7%D9%84%D8%AF%D8%A8%D9%84%D9%88%D9%85%D8" \
             "%A7%D8%B3%D9%8A%D8%A9/"
#define AR_TITLE "منتدى الدبلوماسية الرقمية"
#define EN_URL   SITE_URL "/posts/brief/"
#define EN_RAW                                                                                     \
    "A <b> & \"q\" ]]> \x01"                                                                       \
    "end"
#define EN_TITLE  "A <b> & \"q\" ]]> end" /* what every output must hold */
#define EN_HTML   "<p>Body &amp; more ]]&gt; \x01<b>bold</b></p>"
#define EN_CLEAN  "<p>Body &amp; more ]]&gt; <b>bold</b></p>"
#define AR_HTML   "<p>نص <a href=\"https://example.org/\">رابط</a></p>"
#define AR_DATE   1713000000 /* Sat, 13 Apr 2024 09:20:00 UTC */
#define AR_UPDATE 1713100000 /* Sun, 14 Apr 2024 13:06:40 UTC */
#define EN_DATE   1712000000 /* Mon, 01 Apr 2024 19:33:20 UTC */
#define CAT_AR    "نشاطات"

static char *ar_cats[] = {CAT_AR, "Briefs"};
static char *ar_tags[] = {"Briefs", "دبلوماسية", "دبلوماسية"};
static char *en_cats[] = {"Briefs"};

static struct config_list lists[] = {
    {.id = "activities", .name = CAT_AR},
    {.id = "briefs", .name = "Briefs"},
};

static struct config cfg;
static struct post ar_post, en_post;
static struct post *both[2];
static char tmpdir[64];

static void fixtures(void)
{
    memset(&cfg, 0, sizeof cfg);
    cfg.site.title = SITE_TITLE;
    cfg.site.url = SITE_URL;
    cfg.site.host = "news.example.org";
    cfg.site.language = "ar";
    cfg.site.rtl = 1;
    cfg.site.timezone = "UTC";
    cfg.site.author_name = "Editorial desk";
    cfg.site.author_email = "news@example.org";
    cfg.output.templates = "/nonexistent/nashra-templates";
    cfg.feeds.items = 20;
    cfg.feeds.full_content = 1;
    cfg.feeds.categories = 1;
    cfg.activitypub.enabled = 1;
    cfg.activitypub.username = "news";
    cfg.lists = lists;
    cfg.nlists = 2;

    memset(&ar_post, 0, sizeof ar_post);
    ar_post.slug = AR_SLUG;
    ar_post.url = AR_URL;
    ar_post.title = AR_TITLE;
    ar_post.author = "د. وسيلة محمود الحلبي";
    ar_post.summary = "ملخص المنتدى";
    ar_post.lang = "ar";
    ar_post.rtl = 1;
    ar_post.image = SITE_URL "/images/cover.jpg";
    ar_post.categories = ar_cats;
    ar_post.ncategories = 2;
    ar_post.tags = ar_tags;
    ar_post.ntags = 3;
    ar_post.date = AR_DATE;
    ar_post.updated = AR_UPDATE;
    ar_post.html = AR_HTML;
    ar_post.html_len = strlen(AR_HTML);

    memset(&en_post, 0, sizeof en_post);
    en_post.slug = "brief";
    en_post.url = EN_URL;
    en_post.title = EN_RAW;
    en_post.author = "Editorial desk";
    en_post.summary = "Why data flows matter \x01<now>.";
    en_post.lang = "en";
    en_post.categories = en_cats;
    en_post.ncategories = 1;
    en_post.date = EN_DATE;
    en_post.html = EN_HTML;
    en_post.html_len = strlen(EN_HTML);

    both[0] = &ar_post;
    both[1] = &en_post;
}

static int setup(void **state)
{
    (void)state;
    fixtures();
    return 0;
}

/* --- helpers ------------------------------------------------------------- */

typedef int (*feed_fn)(const struct config *, const struct feed_set *, struct buf *);

static char *render(feed_fn fn, const struct feed_set *fs)
{
    struct buf out;
    buf_init(&out, 0);
    assert_int_equal(fn(&cfg, fs, &out), 0);
    assert_non_null(out.data);
    return buf_steal(&out);
}

static xmlDocPtr parse_xml(const char *s)
{
    xmlDocPtr doc = xmlReadMemory(s, (int)strlen(s), "feed.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        fail_msg("not well-formed XML:\n%s", s);
    return doc;
}

static xmlXPathObjectPtr eval(xmlDocPtr doc, const char *expr)
{
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    assert_non_null(ctx);
    xmlXPathRegisterNs(ctx, BAD_CAST "a", BAD_CAST "http://www.w3.org/2005/Atom");
    xmlXPathRegisterNs(ctx, BAD_CAST "atom", BAD_CAST "http://www.w3.org/2005/Atom");
    xmlXPathRegisterNs(ctx, BAD_CAST "content",
                       BAD_CAST "http://purl.org/rss/1.0/modules/content/");
    xmlXPathRegisterNs(ctx, BAD_CAST "dc", BAD_CAST "http://purl.org/dc/elements/1.1/");
    xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST expr, ctx);
    xmlXPathFreeContext(ctx);
    if (!o)
        fail_msg("bad XPath %s", expr);
    return o;
}

/* Asserts that string(expr) is want. */
static void xp_eq(xmlDocPtr doc, const char *expr, const char *want)
{
    char full[512];
    snprintf(full, sizeof full, "string(%s)", expr);
    xmlXPathObjectPtr o = eval(doc, full);
    if (strcmp((const char *)o->stringval, want) != 0)
        fail_msg("%s is '%s', want '%s'", expr, o->stringval, want);
    xmlXPathFreeObject(o);
}

static int xp_count(xmlDocPtr doc, const char *expr)
{
    char full[512];
    snprintf(full, sizeof full, "count(%s)", expr);
    xmlXPathObjectPtr o = eval(doc, full);
    int n = (int)o->floatval;
    xmlXPathFreeObject(o);
    return n;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("'%s' not found in:\n%s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
    if (strstr(hay, needle))
        fail_msg("'%s' must not be in:\n%s", needle, hay);
}

static const struct feed_set site_set = {.category = NULL, .dir = "", .posts = both, .n = 2};

/* --- RSS ----------------------------------------------------------------- */

static void test_rss(void **state)
{
    (void)state;
    char *s = render(feed_rss, &site_set);
    xmlDocPtr doc = parse_xml(s);

    assert_int_equal(strncmp(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss", 43), 0);
    xp_eq(doc, "/rss/@version", "2.0");
    xp_eq(doc, "/rss/channel/title", SITE_TITLE);
    xp_eq(doc, "/rss/channel/link", SITE_URL "/");
    xp_eq(doc, "/rss/channel/description", SITE_TITLE);
    xp_eq(doc, "/rss/channel/language", "ar");
    xp_eq(doc, "/rss/channel/generator", "nashra");
    xp_eq(doc, "/rss/channel/lastBuildDate", "Sun, 14 Apr 2024 13:06:40 +0000");
    xp_eq(doc, "/rss/channel/atom:link[@rel='self']/@href", SITE_URL "/feed.xml");
    xp_eq(doc, "/rss/channel/atom:link[@rel='self']/@type", "application/rss+xml");
    assert_int_equal(xp_count(doc, "/rss/channel/item"), 2);

    xp_eq(doc, "/rss/channel/item[1]/title", AR_TITLE);
    xp_eq(doc, "/rss/channel/item[1]/link", AR_URL);
    xp_eq(doc, "/rss/channel/item[1]/guid", AR_URL);
    xp_eq(doc, "/rss/channel/item[1]/guid/@isPermaLink", "true");
    xp_eq(doc, "/rss/channel/item[1]/pubDate", "Sat, 13 Apr 2024 09:20:00 +0000");
    xp_eq(doc, "/rss/channel/item[1]/dc:creator", "د. وسيلة محمود الحلبي");
    assert_int_equal(xp_count(doc, "/rss/channel/item[1]/category"), 2);
    xp_eq(doc, "/rss/channel/item[1]/category[1]", CAT_AR);
    xp_eq(doc, "/rss/channel/item[1]/category[2]", "Briefs");
    xp_eq(doc, "/rss/channel/item[1]/description", "ملخص المنتدى");
    xp_eq(doc, "/rss/channel/item[1]/content:encoded", AR_HTML);

    xp_eq(doc, "/rss/channel/item[2]/title", EN_TITLE);
    xp_eq(doc, "/rss/channel/item[2]/pubDate", "Mon, 01 Apr 2024 19:33:20 +0000");
    xp_eq(doc, "/rss/channel/item[2]/description", "Why data flows matter <now>.");
    xp_eq(doc, "/rss/channel/item[2]/content:encoded", EN_CLEAN);

    /* Escaped by the writer, not wrapped in CDATA; the control char gone. */
    assert_lacks(s, "CDATA");
    assert_lacks(s, "\x01");
    assert_lacks(s, "&#1;");
    assert_contains(s, "<title>A &lt;b&gt; &amp; &quot;q&quot; ]]&gt; end</title>");
    assert_contains(s, "\n    <item>\n      <title>"); /* 2-space indent */
    xmlFreeDoc(doc);
    free(s);
}

static void test_rss_summary_only(void **state)
{
    (void)state;
    cfg.feeds.full_content = 0;
    char *s = render(feed_rss, &site_set);
    xmlDocPtr doc = parse_xml(s);
    assert_int_equal(xp_count(doc, "//content:encoded"), 0);
    assert_int_equal(xp_count(doc, "//item/description"), 2);
    xmlFreeDoc(doc);
    free(s);
}

/* --- Atom ---------------------------------------------------------------- */

static void test_atom(void **state)
{
    (void)state;
    char *s = render(feed_atom, &site_set);
    xmlDocPtr doc = parse_xml(s);

    xp_eq(doc, "/a:feed/@xml:lang", "ar");
    xp_eq(doc, "/a:feed/a:title", SITE_TITLE);
    xp_eq(doc, "/a:feed/a:id", SITE_URL "/");
    xp_eq(doc, "/a:feed/a:link[@rel='self']/@href", SITE_URL "/atom.xml");
    xp_eq(doc, "/a:feed/a:link[@rel='self']/@type", "application/atom+xml");
    xp_eq(doc, "/a:feed/a:link[@rel='alternate']/@href", SITE_URL "/");
    xp_eq(doc, "/a:feed/a:updated", "2024-04-14T13:06:40Z");
    xp_eq(doc, "/a:feed/a:author/a:name", "Editorial desk");
    xp_eq(doc, "/a:feed/a:author/a:email", "news@example.org");
    xp_eq(doc, "/a:feed/a:generator", "nashra");
    assert_int_equal(xp_count(doc, "/a:feed/a:entry"), 2);

    assert_int_equal(xp_count(doc, "/a:feed/a:entry[1]/@xml:lang"), 0); /* same as the site */
    xp_eq(doc, "/a:feed/a:entry[1]/a:title", AR_TITLE);
    xp_eq(doc, "/a:feed/a:entry[1]/a:id", AR_URL);
    xp_eq(doc, "/a:feed/a:entry[1]/a:link[@rel='alternate']/@href", AR_URL);
    xp_eq(doc, "/a:feed/a:entry[1]/a:published", "2024-04-13T09:20:00Z");
    xp_eq(doc, "/a:feed/a:entry[1]/a:updated", "2024-04-14T13:06:40Z");
    xp_eq(doc, "/a:feed/a:entry[1]/a:author/a:name", "د. وسيلة محمود الحلبي");
    xp_eq(doc, "/a:feed/a:entry[1]/a:category[1]/@term", CAT_AR);
    xp_eq(doc, "/a:feed/a:entry[1]/a:summary/@type", "text");
    xp_eq(doc, "/a:feed/a:entry[1]/a:content/@type", "html");
    xp_eq(doc, "/a:feed/a:entry[1]/a:content", AR_HTML);

    xp_eq(doc, "/a:feed/a:entry[2]/@xml:lang", "en");
    xp_eq(doc, "/a:feed/a:entry[2]/a:title", EN_TITLE);
    xp_eq(doc, "/a:feed/a:entry[2]/a:published", "2024-04-01T19:33:20Z");
    xp_eq(doc, "/a:feed/a:entry[2]/a:updated", "2024-04-01T19:33:20Z"); /* no updated: the date */
    xp_eq(doc, "/a:feed/a:entry[2]/a:content", EN_CLEAN);
    assert_lacks(s, "\x01");
    assert_lacks(s, "CDATA");
    xmlFreeDoc(doc);
    free(s);
}

/* --- JSON Feed ----------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (!v)
        fail_msg("no string %s", key);
    return v;
}

static void test_json(void **state)
{
    (void)state;
    char *s = render(feed_json, &site_set);
    json_error_t je;
    json_t *root = json_loads(s, 0, &je);
    if (!root)
        fail_msg("JSON: %s at %d:%d", je.text, je.line, je.column);

    assert_int_equal(strncmp(s, "{\n  \"version\": ", 15), 0); /* order and indent */
    assert_int_equal(s[strlen(s) - 1], '\n');
    assert_contains(s, SITE_TITLE); /* UTF-8, not \u escapes */
    assert_string_equal(jstr(root, "version"), "https://jsonfeed.org/version/1.1");
    assert_string_equal(jstr(root, "title"), SITE_TITLE);
    assert_string_equal(jstr(root, "home_page_url"), SITE_URL "/");
    assert_string_equal(jstr(root, "feed_url"), SITE_URL "/feed.json");
    assert_string_equal(jstr(root, "language"), "ar");
    assert_string_equal(jstr(json_array_get(json_object_get(root, "authors"), 0), "name"),
                        "Editorial desk");

    json_t *items = json_object_get(root, "items");
    assert_int_equal(json_array_size(items), 2);
    json_t *ar = json_array_get(items, 0), *en = json_array_get(items, 1);
    assert_string_equal(jstr(ar, "id"), AR_URL);
    assert_string_equal(jstr(ar, "url"), AR_URL);
    assert_string_equal(jstr(ar, "title"), AR_TITLE);
    assert_string_equal(jstr(ar, "content_html"), AR_HTML);
    assert_string_equal(jstr(ar, "date_published"), "2024-04-13T09:20:00Z");
    assert_string_equal(jstr(ar, "date_modified"), "2024-04-14T13:06:40Z");
    assert_string_equal(jstr(ar, "image"), SITE_URL "/images/cover.jpg");
    assert_string_equal(jstr(ar, "language"), "ar");
    json_t *tags = json_object_get(ar, "tags");
    assert_int_equal(json_array_size(tags), 3); /* categories, then tags, each once */
    assert_string_equal(json_string_value(json_array_get(tags, 0)), CAT_AR);
    assert_string_equal(json_string_value(json_array_get(tags, 1)), "Briefs");
    assert_string_equal(json_string_value(json_array_get(tags, 2)), "دبلوماسية");

    assert_string_equal(jstr(en, "title"), EN_TITLE);
    assert_string_equal(jstr(en, "content_html"), EN_CLEAN);
    assert_string_equal(jstr(en, "summary"), "Why data flows matter <now>.");
    assert_string_equal(jstr(en, "language"), "en");
    assert_string_equal(jstr(json_array_get(json_object_get(en, "authors"), 0), "name"),
                        "Editorial desk");
    assert_null(json_object_get(en, "image"));
    json_decref(root);
    free(s);
}

static void test_json_summary_only(void **state)
{
    (void)state;
    cfg.feeds.full_content = 0;
    char *s = render(feed_json, &site_set);
    json_t *root = json_loads(s, 0, NULL);
    assert_non_null(root);
    json_t *it = json_array_get(json_object_get(root, "items"), 0);
    assert_null(json_object_get(it, "content_html"));
    assert_string_equal(jstr(it, "content_text"), "ملخص المنتدى");
    json_decref(root);
    free(s);
}

/* --- every feed ---------------------------------------------------------- */

/* The same posts give the same bytes, whatever the clock says. */
static void test_deterministic(void **state)
{
    (void)state;
    feed_fn fns[] = {feed_rss, feed_atom, feed_json};
    char *first[3];
    setenv("NASHRA_NOW", "2030-01-01T00:00:00Z", 1);
    for (int i = 0; i < 3; i++)
        first[i] = render(fns[i], &site_set);
    setenv("NASHRA_NOW", "2031-06-01T12:00:00Z", 1);
    sleep(1);
    for (int i = 0; i < 3; i++) {
        char *again = render(fns[i], &site_set);
        assert_string_equal(first[i], again);
        assert_lacks(again, "2030");
        free(again);
        free(first[i]);
    }
    unsetenv("NASHRA_NOW");
}

static void test_empty_feeds(void **state)
{
    (void)state;
    struct feed_set none = {.dir = "", .posts = NULL, .n = 0};
    char *s = render(feed_rss, &none);
    xmlDocPtr doc = parse_xml(s);
    assert_int_equal(xp_count(doc, "/rss/channel/item"), 0);
    assert_int_equal(xp_count(doc, "/rss/channel/lastBuildDate"), 0);
    xp_eq(doc, "/rss/channel/title", SITE_TITLE);
    xmlFreeDoc(doc);
    free(s);

    s = render(feed_atom, &none);
    doc = parse_xml(s);
    assert_int_equal(xp_count(doc, "/a:feed/a:entry"), 0);
    xp_eq(doc, "/a:feed/a:updated", "1970-01-01T00:00:00Z");
    xp_eq(doc, "/a:feed/a:author/a:name", "Editorial desk");
    xmlFreeDoc(doc);
    free(s);

    s = render(feed_json, &none);
    json_t *root = json_loads(s, 0, NULL);
    assert_non_null(root);
    assert_true(json_is_array(json_object_get(root, "items")));
    assert_int_equal(json_array_size(json_object_get(root, "items")), 0);
    json_decref(root);
    free(s);
}

static void test_category_feed(void **state)
{
    (void)state;
    struct feed_set cat = {
        .category = CAT_AR, .dir = "categories/" CAT_AR "/", .posts = both, .n = 1};
    const char *enc = SITE_URL "/categories/%D9%86%D8%B4%D8%A7%D8%B7%D8%A7%D8%AA/";
    char want[256];

    char *s = render(feed_rss, &cat);
    xmlDocPtr doc = parse_xml(s);
    xp_eq(doc, "/rss/channel/title", SITE_TITLE " \xe2\x80\x94 " CAT_AR);
    snprintf(want, sizeof want, "%sfeed.xml", enc);
    xp_eq(doc, "/rss/channel/atom:link[@rel='self']/@href", want);
    assert_int_equal(xp_count(doc, "/rss/channel/item"), 1);
    xmlFreeDoc(doc);
    free(s);

    s = render(feed_atom, &cat);
    doc = parse_xml(s);
    xp_eq(doc, "/a:feed/a:id", enc);
    snprintf(want, sizeof want, "%satom.xml", enc);
    xp_eq(doc, "/a:feed/a:link[@rel='self']/@href", want);
    xmlFreeDoc(doc);
    free(s);

    s = render(feed_json, &cat);
    json_t *root = json_loads(s, 0, NULL);
    assert_non_null(root);
    snprintf(want, sizeof want, "%sfeed.json", enc);
    assert_string_equal(jstr(root, "feed_url"), want);
    assert_string_equal(jstr(root, "title"), SITE_TITLE " \xe2\x80\x94 " CAT_AR);
    json_decref(root);
    free(s);
}

/* A buffer too small for the feed: an error, and the buffer as it was. */
static void test_feed_cap(void **state)
{
    (void)state;
    feed_fn fns[] = {feed_rss, feed_atom, feed_json};
    for (int i = 0; i < 3; i++) {
        struct buf out;
        buf_init(&out, 64);
        assert_int_equal(buf_puts(&out, "keep"), 0);
        assert_int_equal(fns[i](&cfg, &site_set, &out), -1);
        assert_string_equal(buf_str(&out), "keep");
        buf_free(&out);
    }
}

static void check_slug(const char *in, const char *want)
{
    char *s = feed_category_slug(in);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

static void test_category_slug(void **state)
{
    (void)state;
    check_slug(CAT_AR, CAT_AR);
    check_slug("Briefs", "briefs");
    check_slug("Data Flows", "data-flows");
    check_slug("a/b?c#d%e\\f", "a-b-c-d-e-f");
    check_slug("A  / B", "a-b");
    check_slug("\x01x\x7f", "-x-");
    check_slug("نشاطات\xc2\xa0عامة", "نشاطات-عامة"); /* no-break space */
    check_slug("\xe2\x80\x8fRTL", "-rtl");           /* direction mark */
    check_slug(".", "-");
    check_slug("..", "-.");
    check_slug(".hidden", "-hidden");
    check_slug("", "-");
    check_slug("bad\xff", "bad-");

    char longname[1000] = "";
    for (int i = 0; i < 200; i++)
        strcat(longname, "ع");
    char *s = feed_category_slug(longname);
    assert_true(strlen(s) <= 200);
    assert_int_equal(strlen(s) % 2, 0); /* whole characters only */
    free(s);
}

/* --- HTML ---------------------------------------------------------------- */

static struct html_templates *load_ok(void)
{
    struct diag d = {0};
    char *file = NULL;
    struct html_templates *t = html_templates_load(&cfg, &d, &file);
    if (!t)
        fail_msg("templates: %s:%d:%d: %s", file ? file : "?", d.line, d.col, d.msg);
    assert_null(file);
    return t;
}

static char *page(const struct html_templates *t, const struct post *p)
{
    struct buf out;
    buf_init(&out, 0);
    assert_int_equal(html_post_page(&cfg, t, p, &out), 0);
    return buf_steal(&out);
}

static char *index_page(const struct html_templates *t, struct post *const *posts, size_t n)
{
    struct buf out;
    buf_init(&out, 0);
    assert_int_equal(html_index_page(&cfg, t, 0, posts, n, NULL, 0, &out), 0);
    return buf_steal(&out);
}

static void test_html_post_ar(void **state)
{
    (void)state;
    struct html_templates *t = load_ok();
    char *s = page(t, &ar_post);

    assert_int_equal(strncmp(s, "<!DOCTYPE html>\n<html lang=\"ar\" dir=\"rtl\">", 42), 0);
    assert_contains(s, "<meta charset=\"utf-8\">");
    assert_contains(s, "<title>" AR_TITLE " \xe2\x80\x94 " SITE_TITLE "</title>");
    assert_contains(s, "<link rel=\"alternate\" type=\"application/rss+xml\"");
    assert_contains(s, "href=\"" SITE_URL "/feed.xml\"");
    assert_contains(s, "type=\"application/atom+xml\"");
    assert_contains(s, "href=\"" SITE_URL "/atom.xml\"");
    assert_contains(s, "type=\"application/feed+json\"");
    assert_contains(s, "href=\"" SITE_URL "/feed.json\"");
    assert_contains(s, "<style>");
    assert_contains(s, "margin-inline");
    assert_contains(s, AR_HTML); /* raw: already sanitised */
    assert_contains(s, "@news@news.example.org");
    assert_contains(s, "rel=\"me\" href=\"" SITE_URL "/ap/actor\"");
    assert_contains(s, "datetime=\"2024-04-13T09:20:00Z\"");
    assert_contains(s, "src=\"" SITE_URL "/images/cover.jpg\"");
    assert_contains(s, "categories/%D9%86%D8%B4%D8%A7%D8%B7%D8%A7%D8%AA/feed.xml");
    assert_contains(s, "categories/briefs/feed.xml");

    /* a subscribe form per list, labels in Arabic */
    assert_int_equal(count_of(s, "<form "), 2);
    assert_int_equal(count_of(s, "action=\"" SITE_URL "/subscribe\""), 2);
    assert_int_equal(count_of(s, "method=\"post\""), 2);
    assert_contains(s, "name=\"list\" value=\"activities\"");
    assert_contains(s, "name=\"list\" value=\"briefs\"");
    assert_int_equal(count_of(s, "type=\"email\" name=\"email\" required"), 2);
    assert_int_equal(count_of(s, "name=\"website\""), 2);
    assert_int_equal(count_of(s, "tabindex=\"-1\" autocomplete=\"off\""), 2);
    assert_contains(s, "اشترك");
    assert_contains(s, "البريد الإلكتروني");
    assert_contains(s, "نُشر في");
    assert_lacks(s, ">Subscribe<");
    assert_lacks(s, "{{");
    free(s);
    html_templates_free(t);
}

static void test_html_post_en_escaped(void **state)
{
    (void)state;
    struct html_templates *t = load_ok();
    char *s = page(t, &en_post);

    assert_contains(s, "<html lang=\"en\" dir=\"ltr\">");
    assert_contains(s, "A &lt;b&gt; &amp; ");
    assert_lacks(s, "A <b>");
    assert_lacks(s, "\x01");
    assert_contains(s, EN_CLEAN);
    assert_contains(s, ">Subscribe<");
    assert_contains(s, "Email");
    free(s);

    /* a title cannot inject markup */
    struct post evil = en_post;
    evil.title = "<script>alert(1)</script>";
    evil.summary = "\"><script>x</script>";
    s = page(t, &evil);
    assert_lacks(s, "<script");
    assert_contains(s, "&lt;script&gt;");
    free(s);

    /* no handle without ActivityPub */
    cfg.activitypub.enabled = 0;
    s = page(t, &en_post);
    assert_lacks(s, "@news@");
    assert_lacks(s, "/ap/actor");
    free(s);
    html_templates_free(t);
}

static void test_html_index(void **state)
{
    (void)state;
    struct html_templates *t = load_ok();
    en_post.html = NULL; /* the index does without bodies */
    en_post.html_len = 0;
    char *s = index_page(t, both, 2);

    assert_int_equal(strncmp(s, "<!DOCTYPE html>\n<html lang=\"ar\" dir=\"rtl\">", 42), 0);
    assert_contains(s, "<title>" SITE_TITLE "</title>");
    assert_contains(s, "href=\"" AR_URL "\"");
    assert_contains(s, "href=\"" EN_URL "\"");
    assert_contains(s, "lang=\"en\" dir=\"ltr\"");
    assert_contains(s, "A &lt;b&gt;");
    assert_contains(s, "المقالات");
    assert_int_equal(count_of(s, "<form "), 2);
    assert_contains(s, "@news@news.example.org");
    assert_contains(s, "href=\"" SITE_URL "/feed.json\"");
    assert_lacks(s, AR_HTML);
    assert_true(strstr(s, AR_URL) < strstr(s, EN_URL)); /* order kept */
    free(s);

    s = index_page(t, NULL, 0);
    assert_contains(s, "<html lang=\"ar\" dir=\"rtl\">");
    assert_contains(s, "لا توجد مقالات");
    free(s);
    html_templates_free(t);
}

/* --- template overrides -------------------------------------------------- */

static void write_file(const char *name, const char *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void remove_file(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    unlink(path);
    rmdir(path);
}

static int setup_tmp(void **state)
{
    fixtures();
    strcpy(tmpdir, "/tmp/test_feeds.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    cfg.output.templates = tmpdir;
    (void)state;
    return 0;
}

static int teardown_tmp(void **state)
{
    (void)state;
    remove_file("post.html");
    remove_file("index.html");
    remove_file("head.html");
    rmdir(tmpdir);
    return 0;
}

static void expect_error(const char *name, int line, int col)
{
    struct diag d = {0};
    char *file = NULL, want[256];
    assert_null(html_templates_load(&cfg, &d, &file));
    snprintf(want, sizeof want, "%s/%s", tmpdir, name);
    assert_non_null(file);
    assert_string_equal(file, want);
    assert_true(d.msg[0] != '\0');
    if (line >= 0) {
        assert_int_equal(d.line, line);
        assert_int_equal(d.col, col);
    }
    free(file);

    /* without err_file, the name goes into the message */
    memset(&d, 0, sizeof d);
    assert_null(html_templates_load(&cfg, &d, NULL));
    assert_contains(d.msg, name);
}

static void test_override_used(void **state)
{
    (void)state;
    static const char idx[] = "<p>{{site.title}}|{{#posts}}[{{title}}]{{/posts}}</p>\n";
    static const char head[] = "<title>HEAD {{title}}</title>\n";
    static const char post[] = "{{> head.html}}<h1>{{post.title}}</h1>{{{post.html}}}\n";
    write_file("index.html", idx, sizeof idx - 1);
    write_file("head.html", head, sizeof head - 1);
    write_file("post.html", post, sizeof post - 1);
    struct html_templates *t = load_ok();
    char *s = index_page(t, both, 2);
    assert_string_equal(s,
                        "<p>" SITE_TITLE "|[" AR_TITLE "][A &lt;b&gt; &amp; &quot;q&quot; ]]&gt; "
                        "end]</p>\n");
    free(s);
    s = page(t, &ar_post);
    assert_string_equal(s, "<title>HEAD " AR_TITLE " \xe2\x80\x94 " SITE_TITLE
                           "</title>\n<h1>" AR_TITLE "</h1>" AR_HTML "\n");
    free(s);
    html_templates_free(t);
}

static void test_override_syntax_error(void **state)
{
    (void)state;
    static const char bad[] = "<p>one</p>\n<p>two</p>\n  {{#post}}{{title}}\n";
    write_file("post.html", bad, sizeof bad - 1);
    expect_error("post.html", -1, 0);
    struct diag d = {0};
    assert_null(html_templates_load(&cfg, &d, NULL));
    assert_true(d.line >= 3); /* the unclosed section, or the end of the file */
    assert_true(d.col >= 1);
    remove_file("post.html");

    static const char bad_head[] = "<title>\n{{title</title>\n";
    write_file("head.html", bad_head, sizeof bad_head - 1);
    expect_error("head.html", -1, 0);
    memset(&d, 0, sizeof d);
    assert_null(html_templates_load(&cfg, &d, NULL));
    assert_int_equal(d.line, 2);
    assert_true(d.col >= 1);
}

static void test_override_bad_files(void **state)
{
    (void)state;
    static const char bad_utf8[] = "<p>ok</p>\n<p>x\xff</p>\n";
    write_file("index.html", bad_utf8, sizeof bad_utf8 - 1);
    expect_error("index.html", 2, 5);
    remove_file("index.html");

    char path[256];
    snprintf(path, sizeof path, "%s/post.html", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0); /* not a regular file */
    expect_error("post.html", 0, 0);
    remove_file("post.html");

    size_t big = (1u << 20) + 1;
    char *data = malloc(big);
    assert_non_null(data);
    memset(data, 'x', big);
    write_file("index.html", data, big);
    free(data);
    expect_error("index.html", 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_rss, setup),
        cmocka_unit_test_setup(test_rss_summary_only, setup),
        cmocka_unit_test_setup(test_atom, setup),
        cmocka_unit_test_setup(test_json, setup),
        cmocka_unit_test_setup(test_json_summary_only, setup),
        cmocka_unit_test_setup(test_deterministic, setup),
        cmocka_unit_test_setup(test_empty_feeds, setup),
        cmocka_unit_test_setup(test_category_feed, setup),
        cmocka_unit_test_setup(test_feed_cap, setup),
        cmocka_unit_test_setup(test_category_slug, setup),
        cmocka_unit_test_setup(test_html_post_ar, setup),
        cmocka_unit_test_setup(test_html_post_en_escaped, setup),
        cmocka_unit_test_setup(test_html_index, setup),
        cmocka_unit_test_setup_teardown(test_override_used, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_override_syntax_error, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_override_bad_files, setup_tmp, teardown_tmp),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmlCleanupParser();
    return rc;
}
