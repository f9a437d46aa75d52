/*
 * feed_html: the HTML archive (SPEC §5): posts/{slug}/index.html and
 * index.html, rendered with lib/mustache over a jansson object built here.
 * Built-in templates (post.html, index.html and the partial head.html) are
 * the constants below, each overridable by a file in output.templates;
 * every template is compiled, and a sample page rendered, at load time so
 * that a broken override is reported by `nashra check` with its position.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../lib/fileio.h"
#include "../lib/mustache.h"
#include "../lib/text.h"
#include "../lib/timefmt.h"
#include "feed_int.h"
#include "feeds.h"

/* An override template larger than this is refused. */
#define TPL_MAX (1u << 20)
/* Cap of the sample pages rendered at load time. */
#define TPL_SAMPLE_CAP (16u << 20)

enum { TPL_POST, TPL_INDEX, TPL_HEAD, TPL_N };

static const char *const tpl_names[TPL_N] = {"post.html", "index.html", "head.html"};

/* --- built-in templates -------------------------------------------------- */

/* Readable in both directions: only logical properties (inline/block). */
#define HTML_STYLE                                                                                 \
    "<style>\n"                                                                                    \
    ":root{color-scheme:light dark}\n"                                                             \
    "body{margin-block:0;margin-inline:auto;max-inline-size:44rem;padding:1rem 1.25rem;"           \
    "font:1.0625rem/1.7 system-ui,-apple-system,\"Segoe UI\",\"Noto Sans\","                       \
    "\"Noto Naskh Arabic\",Tahoma,sans-serif}\n"                                                   \
    "header.site{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;"                \
    "justify-content:space-between;border-block-end:1px solid #8886;padding-block:.5rem}\n"        \
    "header.site h1{margin:0;font-size:1.5rem}\n"                                                  \
    "h1,h2,h3{line-height:1.3}\n"                                                                  \
    "img,video{max-inline-size:100%;block-size:auto}\n"                                            \
    ".meta{opacity:.75;font-size:.9em}\n"                                                          \
    "blockquote{margin-inline:0;padding-inline-start:1rem;border-inline-start:.25rem solid #8886}" \
    "\n"                                                                                           \
    "ul,ol{padding-inline-start:1.5rem}\n"                                                         \
    "pre{overflow:auto;padding:.75rem;background:#8881;direction:ltr;text-align:start}\n"          \
    "table{border-collapse:collapse}td,th{border:1px solid #8886;padding:.25rem .5rem;"            \
    "text-align:start}\n"                                                                          \
    ".posts{list-style:none;padding-inline-start:0}.posts li{margin-block-end:1.25rem}\n"          \
    ".posts p{margin-block:.25rem 0}\n"                                                            \
    ".subscribe{margin-block:2rem;padding:1rem;border:1px solid #8886;border-radius:.5rem}\n"      \
    ".subscribe h2{margin-block-start:0;font-size:1.2rem}\n"                                       \
    ".subscribe label{display:block;margin-block-end:.5rem}\n"                                     \
    ".subscribe input{display:block;box-sizing:border-box;inline-size:100%;padding:.4rem;"         \
    "margin-block-start:.25rem;font:inherit}\n"                                                    \
    ".subscribe button{font:inherit;padding:.4rem 1.25rem}\n"                                      \
    ".hp{position:absolute;inset-inline-start:-10000px;inline-size:1px;block-size:1px;"            \
    "overflow:hidden}\n"                                                                           \
    ".handle{unicode-bidi:isolate}\n"                                                              \
    "footer.site{border-block-start:1px solid #8886;margin-block-start:2rem;padding-block:.5rem;"  \
    "font-size:.9em}\n"                                                                            \
    "</style>\n"

static const char tpl_head[] =
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>{{title}}</title>\n"
    "<meta name=\"generator\" content=\"nashra\">\n"
    "{{#description}}\n"
    "<meta name=\"description\" content=\"{{description}}\">\n"
    "{{/description}}\n"
    "{{#post}}\n"
    "<link rel=\"canonical\" href=\"{{url}}\">\n"
    "<meta property=\"og:type\" content=\"article\">\n"
    "<meta property=\"og:title\" content=\"{{title}}\">\n"
    "<meta property=\"og:url\" content=\"{{url}}\">\n"
    "{{#image}}\n"
    "<meta property=\"og:image\" content=\"{{image}}\">\n"
    "{{/image}}\n"
    "{{/post}}\n"
    "<link rel=\"alternate\" type=\"application/rss+xml\" title=\"{{site.title}} (RSS)\" "
    "href=\"{{feeds.rss}}\">\n"
    "<link rel=\"alternate\" type=\"application/atom+xml\" title=\"{{site.title}} (Atom)\" "
    "href=\"{{feeds.atom}}\">\n"
    "<link rel=\"alternate\" type=\"application/feed+json\" title=\"{{site.title}} (JSON Feed)\" "
    "href=\"{{feeds.json}}\">\n"
    "{{#site.actor}}\n"
    "<link rel=\"me\" href=\"{{site.actor}}\">\n"
    "{{/site.actor}}\n" HTML_STYLE;

/* The site's header: its title and, with ActivityPub, the fediverse handle. */
#define HTML_HEADER(title_tag)                                                                     \
    "<header class=\"site\">\n"                                                                    \
    "<" title_tag "><a href=\"{{site.url}}/\" lang=\"{{site.language}}\" dir=\"{{site.dir}}\">"    \
    "{{site.title}}</a></" title_tag ">\n"                                                         \
    "{{#site.handle}}\n"                                                                           \
    "<a class=\"handle\" dir=\"ltr\" rel=\"me\" href=\"{{site.actor}}\">{{site.handle}}</a>\n"     \
    "{{/site.handle}}\n"                                                                           \
    "</header>\n"

/* One form a list; the "website" field is a honeypot people never see. */
#define HTML_FOOTER                                                                                \
    "{{#lists}}\n"                                                                                 \
    "<form class=\"subscribe\" method=\"post\" action=\"{{site.url}}/subscribe\">\n"               \
    "<h2>{{t.subscribe_to}} <bdi>{{name}}</bdi></h2>\n"                                            \
    "<label>{{t.email}} <input type=\"email\" name=\"email\" required "                            \
    "autocomplete=\"email\"></label>\n"                                                            \
    "<label>{{t.name}} ({{t.optional}}) <input type=\"text\" name=\"name\" "                       \
    "autocomplete=\"name\"></label>\n"                                                             \
    "<input type=\"hidden\" name=\"list\" value=\"{{id}}\">\n"                                     \
    "<div class=\"hp\" aria-hidden=\"true\"><label>{{t.website}} <input type=\"text\" "            \
    "name=\"website\" value=\"\" tabindex=\"-1\" autocomplete=\"off\"></label></div>\n"            \
    "<button type=\"submit\">{{t.subscribe}}</button>\n"                                           \
    "</form>\n"                                                                                    \
    "{{/lists}}\n"                                                                                 \
    "<footer class=\"site\">\n"                                                                    \
    "<p>{{t.feeds}}: <a href=\"{{feeds.rss}}\">RSS</a> \xc2\xb7 <a href=\"{{feeds.atom}}\">Atom"   \
    "</a> \xc2\xb7 <a href=\"{{feeds.json}}\">JSON Feed</a></p>\n"                                 \
    "</footer>\n"

static const char tpl_post[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"{{lang}}\" dir=\"{{dir}}\">\n"
    "<head>\n"
    "{{> head.html}}\n"
    "</head>\n"
    "<body>\n" HTML_HEADER(
        "p") "<main>\n"
             "<article>\n"
             "<h1>{{post.title}}</h1>\n"
             "<p class=\"meta\">{{t.published}} <time "
             "datetime=\"{{post.date}}\">{{post.date_human}}"
             "</time>{{#post.author}} \xc2\xb7 {{t.by}} {{post.author}}{{/post.author}}</p>\n"
             "{{#post.image}}\n"
             "<img class=\"cover\" src=\"{{post.image}}\" alt=\"\">\n"
             "{{/post.image}}\n"
             "<div class=\"content\">\n"
             "{{{post.html}}}\n"
             "</div>\n"
             "{{#post.has_categories}}\n"
             "<p class=\"meta\">{{t.categories}}: {{#post.categories}}<a "
             "href=\"{{url}}\">{{name}}</a> "
             "{{/post.categories}}</p>\n"
             "{{/post.has_categories}}\n"
             "{{#post.has_tags}}\n"
             "<p class=\"meta\">{{t.tags}}: {{#post.tags}}<bdi>#{{.}}</bdi> {{/post.tags}}</p>\n"
             "{{/post.has_tags}}\n"
             "</article>\n"
             "</main>\n" HTML_FOOTER "</body>\n"
             "</html>\n";

static const char tpl_index[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"{{lang}}\" dir=\"{{dir}}\">\n"
    "<head>\n"
    "{{> head.html}}\n"
    "</head>\n"
    "<body>\n" HTML_HEADER(
        "h1") "<main>\n"
              "<h2>{{heading}}</h2>\n"
              "{{^posts}}\n"
              "<p>{{t.no_posts}}</p>\n"
              "{{/posts}}\n"
              "<ol class=\"posts\">\n"
              "{{#posts}}\n"
              "<li lang=\"{{lang}}\" dir=\"{{dir}}\"><a href=\"{{url}}\">{{title}}</a> "
              "<time class=\"meta\" datetime=\"{{date}}\">{{date_human}}</time>"
              "{{#summary}}<p>{{summary}}</p>{{/summary}}</li>\n"
              "{{/posts}}\n"
              "</ol>\n"
              "{{#has_years}}\n"
              "<nav class=\"archive\">\n"
              "<h2>{{t.archive}}</h2>\n"
              "<p>{{#years}}<a href=\"{{url}}\">{{year}}</a> {{/years}}</p>\n"
              "</nav>\n"
              "{{/has_years}}\n"
              "</main>\n" HTML_FOOTER "</body>\n"
              "</html>\n";

static const char *const tpl_builtin[TPL_N] = {tpl_post, tpl_index, tpl_head};
static const size_t tpl_builtin_len[TPL_N] = {sizeof tpl_post - 1, sizeof tpl_index - 1,
                                              sizeof tpl_head - 1};

/* --- labels -------------------------------------------------------------- */

struct html_label {
    const char *key, *en, *ar;
};

static const struct html_label html_labels[] = {
    {"subscribe", "Subscribe", "اشترك"},
    {"subscribe_to", "Subscribe to", "اشترك في"},
    {"email", "Email", "البريد الإلكتروني"},
    {"name", "Name", "الاسم"},
    {"optional", "optional", "اختياري"},
    {"website", "Leave this field empty", "اترك هذا الحقل فارغًا"},
    {"posts", "Posts", "المقالات"},
    {"no_posts", "No posts yet.", "لا توجد مقالات بعد."},
    {"published", "Published on", "نُشر في"},
    {"by", "by", "بقلم"},
    {"categories", "Categories", "التصنيفات"},
    {"tags", "Tags", "الوسوم"},
    {"feeds", "Feeds", "الخلاصات"},
    {"home", "Home", "الرئيسية"},
    {"archive", "Archive", "الأرشيف"},
};

/* 1 when the primary subtag of a BCP 47 tag is "ar". */
static int lang_primary_ar(const char *lang)
{
    return lang && strncasecmp(lang, "ar", 2) == 0 &&
           (lang[2] == '\0' || lang[2] == '-' || lang[2] == '_');
}

static json_t *html_t(struct feed_jb *jb, const char *lang)
{
    json_t *t = json_object();
    int ar = lang_primary_ar(lang);
    for (size_t i = 0; i < sizeof html_labels / sizeof *html_labels; i++)
        feed_jb_str(jb, t, html_labels[i].key, ar ? html_labels[i].ar : html_labels[i].en);
    return t;
}

/* --- page data ----------------------------------------------------------- */

static const char *dir_of(int rtl)
{
    return rtl ? "rtl" : "ltr";
}

/* obj[key] = printf(fmt, ...) */
__attribute__((format(printf, 4, 5))) static void jb_printf(struct feed_jb *jb, json_t *obj,
                                                            const char *key, const char *fmt, ...)
{
    struct buf s;
    va_list ap;
    buf_init(&s, FEED_TEXT_CAP);
    va_start(ap, fmt);
    if (buf_vprintf(&s, fmt, ap) < 0)
        jb->err = 1;
    va_end(ap);
    feed_jb_strn(jb, obj, key, buf_str(&s), s.len);
    buf_free(&s);
}

static json_t *html_site(const struct config *cfg, struct feed_jb *jb)
{
    json_t *site = json_object();
    feed_jb_str(jb, site, "title", cfg->site.title);
    feed_jb_str(jb, site, "url", cfg->site.url);
    feed_jb_str(jb, site, "language", cfg->site.language);
    feed_jb_str(jb, site, "dir", dir_of(cfg->site.rtl));
    feed_jb_str(jb, site, "host", cfg->site.host);
    if (cfg->activitypub.enabled && cfg->activitypub.username) {
        jb_printf(jb, site, "handle", "@%s@%s", cfg->activitypub.username, cfg->site.host);
        jb_printf(jb, site, "actor", "%s/ap/actor", cfg->site.url);
    }
    return site;
}

static json_t *html_feeds(const struct config *cfg, struct feed_jb *jb)
{
    json_t *f = json_object();
    jb_printf(jb, f, "rss", "%s/feed.xml", cfg->site.url);
    jb_printf(jb, f, "atom", "%s/atom.xml", cfg->site.url);
    jb_printf(jb, f, "json", "%s/feed.json", cfg->site.url);
    return f;
}

static json_t *html_lists(const struct config *cfg, struct feed_jb *jb)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < cfg->nlists && !jb->err; i++) {
        json_t *l = json_object();
        feed_jb_str(jb, l, "id", cfg->lists[i].id);
        feed_jb_str(jb, l, "name", cfg->lists[i].name ? cfg->lists[i].name : cfg->lists[i].id);
        if (!l || json_array_append_new(arr, l) < 0)
            jb->err = 1;
    }
    return arr;
}

/* The data every page has: lang, dir, title, site, feeds, lists, t. */
static json_t *html_page(const struct config *cfg, const char *lang, int rtl, struct feed_jb *jb)
{
    json_t *root = json_object();
    feed_jb_str(jb, root, "lang", lang);
    feed_jb_str(jb, root, "dir", dir_of(rtl));
    feed_jb_set(jb, root, "site", html_site(cfg, jb));
    feed_jb_set(jb, root, "feeds", html_feeds(cfg, jb));
    feed_jb_set(jb, root, "lists", html_lists(cfg, jb));
    feed_jb_set(jb, root, "t", html_t(jb, lang));
    if (!root)
        jb->err = 1;
    return root;
}

/* [{name, url}]: url is the category's feed when there are category feeds. */
static json_t *html_categories(const struct config *cfg, const struct post *p, struct feed_jb *jb)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < p->ncategories && !jb->err; i++) {
        json_t *c = json_object();
        feed_jb_str(jb, c, "name", p->categories[i]);
        char *slug = cfg->feeds.categories ? feed_category_slug(p->categories[i]) : NULL;
        if (slug) {
            struct buf u, dir;
            buf_init(&u, FEED_TEXT_CAP);
            buf_init(&dir, FEED_TEXT_CAP);
            if (buf_printf(&dir, "categories/%s/", slug) < 0 ||
                feed_url(cfg, buf_str(&dir), "feed.xml", &u) < 0)
                jb->err = 1;
            feed_jb_strn(jb, c, "url", buf_str(&u), u.len);
            buf_free(&u);
            buf_free(&dir);
        } else if (cfg->feeds.categories) {
            jb->err = 1;
        }
        free(slug);
        if (!c || json_array_append_new(arr, c) < 0)
            jb->err = 1;
    }
    return arr;
}

/* The post's fields; with_body adds html, categories and tags. */
static json_t *html_post(const struct config *cfg, const struct post *p, int with_body,
                         struct feed_jb *jb)
{
    json_t *o = json_object();
    const char *lang = feed_post_lang(cfg, p);
    char date[64];

    feed_jb_str(jb, o, "title", p->title);
    feed_jb_str(jb, o, "url", p->url);
    feed_jb_str(jb, o, "summary", p->summary);
    feed_jb_str(jb, o, "date", timefmt_rfc3339(p->date, date, sizeof date));
    feed_jb_str(jb, o, "date_human", timefmt_human(p->date, lang, date, sizeof date));
    feed_jb_str(jb, o, "author", p->author);
    feed_jb_str(jb, o, "image", p->image);
    feed_jb_str(jb, o, "lang", lang);
    feed_jb_str(jb, o, "dir", dir_of(p->rtl));
    if (with_body) {
        if (p->html)
            feed_jb_clean(jb, o, "html", p->html, feed_html_len(p)); /* rendered clean */
        feed_jb_set(jb, o, "categories", html_categories(cfg, p, jb));
        feed_jb_set(jb, o, "has_categories", json_boolean(p->ncategories > 0));
        json_t *tags = json_array();
        for (size_t i = 0; i < p->ntags; i++)
            feed_jb_push(jb, tags, p->tags[i]);
        feed_jb_set(jb, o, "tags", tags);
        feed_jb_set(jb, o, "has_tags", json_boolean(p->ntags > 0));
    }
    if (!o)
        jb->err = 1;
    return o;
}

/* --- templates ----------------------------------------------------------- */

struct html_templates {
    struct mustache *tpl[TPL_N];
    struct buf src[TPL_N]; /* an override's bytes */
    const char *text[TPL_N];
    size_t len[TPL_N];
    char *path[TPL_N]; /* the override's path, NULL for the built-in one */
};

/* Partials: "head.html" (or "head"); any other name is empty. */
static const char *html_partial(void *arg, const char *name, size_t *len)
{
    const struct html_templates *t = arg;
    if (strcmp(name, "head.html") && strcmp(name, "head"))
        return NULL;
    *len = t->len[TPL_HEAD];
    return t->text[TPL_HEAD];
}

static int html_render(const struct html_templates *t, int which, json_t *data, struct buf *out)
{
    size_t len0 = out->len;
    if (mustache_render(t->tpl[which], data, html_partial, (void *)t, out) == 0)
        return 0;
    if (out->data) {
        out->len = len0;
        out->data[len0] = '\0';
    }
    return -1;
}

int html_post_page(const struct config *cfg, const struct html_templates *t, const struct post *p,
                   struct buf *out)
{
    struct feed_jb jb;
    struct buf title;
    int rc = -1;

    feed_jb_init(&jb);
    buf_init(&title, FEED_TEXT_CAP);
    json_t *root = html_page(cfg, feed_post_lang(cfg, p), p->rtl, &jb);
    if (buf_printf(&title, "%s \xe2\x80\x94 %s", p->title ? p->title : "", cfg->site.title) < 0)
        jb.err = 1;
    feed_jb_strn(&jb, root, "title", buf_str(&title), title.len);
    feed_jb_str(&jb, root, "description", p->summary);
    feed_jb_set(&jb, root, "post", html_post(cfg, p, 1, &jb));
    if (!jb.err)
        rc = html_render(t, TPL_POST, root, out);
    json_decref(root);
    buf_free(&title);
    feed_jb_free(&jb);
    return rc;
}

int html_index_page(const struct config *cfg, const struct html_templates *t, int year,
                    struct post *const *posts, size_t n, const int *years, size_t nyears,
                    struct buf *out)
{
    struct feed_jb jb;
    struct buf title, url;
    int rc = -1;
    int ar = lang_primary_ar(cfg->site.language);
    const char *archive = ar ? "الأرشيف" : "Archive";

    feed_jb_init(&jb);
    buf_init(&title, FEED_TEXT_CAP);
    buf_init(&url, FEED_TEXT_CAP);
    json_t *root = html_page(cfg, cfg->site.language, cfg->site.rtl, &jb);
    json_t *arr = json_array(), *ys = json_array();
    if (year) {
        if (buf_printf(&title, "%s %d \xe2\x80\x94 %s", archive, year, cfg->site.title) < 0)
            jb.err = 1;
        feed_jb_strn(&jb, root, "title", buf_str(&title), title.len);
        buf_reset(&title);
        if (buf_printf(&title, "%s %d", archive, year) < 0)
            jb.err = 1;
        feed_jb_strn(&jb, root, "heading", buf_str(&title), title.len);
    } else {
        feed_jb_str(&jb, root, "title", cfg->site.title);
        feed_jb_str(&jb, root, "heading", ar ? "المقالات" : "Posts");
    }
    feed_jb_set(&jb, root, "posts", json_incref(arr));
    for (size_t i = 0; i < n && !jb.err; i++) {
        json_t *o = html_post(cfg, posts[i], 0, &jb);
        if (o && year)
            json_object_del(o, "summary"); /* a year's list is titles only */
        if (!o || json_array_append_new(arr, o) < 0)
            jb.err = 1;
    }
    for (size_t i = 0; i < nyears && !jb.err; i++) {
        json_t *y = json_object();
        buf_reset(&url);
        if (!y || json_array_append_new(ys, y) < 0 ||
            buf_printf(&url, "%s/archive/%d/", cfg->site.url, years[i]) < 0 ||
            json_object_set_new(y, "year", json_integer(years[i])) < 0)
            jb.err = 1;
        feed_jb_strn(&jb, y, "url", buf_str(&url), url.len);
    }
    feed_jb_set(&jb, root, "years", json_incref(ys));
    feed_jb_set(&jb, root, "has_years", json_boolean(nyears > 0));
    if (!jb.err)
        rc = html_render(t, TPL_INDEX, root, out);
    json_decref(arr);
    json_decref(ys);
    json_decref(root);
    buf_free(&title);
    buf_free(&url);
    feed_jb_free(&jb);
    return rc;
}

/* Reports an error in template `which`: the file's path in *err_file, or
 * (when the caller wants none) the template's name in the message. */
static void tpl_blame(const struct html_templates *t, int which, struct diag *err, char **err_file)
{
    const char *file = t->path[which] ? t->path[which] : tpl_names[which];
    if (err_file) {
        free(*err_file);
        *err_file = strdup(file);
    } else {
        struct diag d = *err;
        diag_set(err, d.line, d.col, "%s: %.400s", tpl_names[which], d.msg);
    }
}

/* Line and column (1-based, column in bytes) of offset off in s. */
static void tpl_position(const char *s, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            ++*line;
            *col = 1;
        } else {
            ++*col;
        }
    }
}

/* Reads output.templates/<name> into t->src[which] if it exists. Returns 1
 * (read), 0 (no such file: the built-in one is used) or -1 (err set). */
static int tpl_read(const struct config *cfg, struct html_templates *t, int which, struct diag *err)
{
    struct stat st;
    const char *why = NULL;
    size_t bad;

    if (!cfg->output.templates)
        return 0;
    if (!(t->path[which] = path_join(cfg->output.templates, tpl_names[which]))) {
        diag_set(err, 0, 0, "out of memory");
        return -1;
    }
    if (stat(t->path[which], &st) < 0 && (errno == ENOENT || errno == ENOTDIR)) {
        free(t->path[which]);
        t->path[which] = NULL;
        return 0;
    }
    buf_init(&t->src[which], TPL_MAX + 1);
    if (file_read(t->path[which], TPL_MAX, &t->src[which], &why) < 0) {
        diag_set(err, 0, 0, "cannot read template: %s", why ? why : "error");
        return -1;
    }
    if (!utf8_valid(buf_str(&t->src[which]), t->src[which].len, &bad)) {
        int line, col;
        tpl_position(t->src[which].data, bad, &line, &col);
        diag_set(err, line, col, "template is not valid UTF-8");
        return -1;
    }
    return 1;
}

static int tpl_load(const struct config *cfg, struct html_templates *t, int which, struct diag *err)
{
    int r = tpl_read(cfg, t, which, err);
    if (r < 0)
        return -1;
    t->text[which] = r ? buf_str(&t->src[which]) : tpl_builtin[which];
    t->len[which] = r ? t->src[which].len : tpl_builtin_len[which];
    t->tpl[which] = mustache_compile(t->text[which], t->len[which], err);
    return t->tpl[which] ? 0 : -1;
}

/* Renders both pages over a sample post: what fails here would fail for
 * every post at build time. */
static int tpl_check(const struct config *cfg, const struct html_templates *t, int *which)
{
    char *cats[] = {"Sample"}, *tags[] = {"sample"};
    struct buf url, out;
    int rc = -1;

    buf_init(&url, FEED_TEXT_CAP);
    buf_init(&out, TPL_SAMPLE_CAP);
    *which = TPL_POST; /* a valid index for the caller's blame even if we fail first */
    struct post p = {.slug = "sample",
                     .title = "Sample",
                     .author = cfg->site.author_name,
                     .summary = "Sample.",
                     .lang = cfg->site.language,
                     .rtl = cfg->site.rtl,
                     .categories = cats,
                     .ncategories = 1,
                     .tags = tags,
                     .ntags = 1,
                     .html = "<p>Sample.</p>",
                     .html_len = 14,
                     .newsletter = 1};
    struct post *list[] = {&p};
    if (buf_printf(&url, "%s/posts/sample/", cfg->site.url) == 0) {
        p.url = url.data;
        *which = TPL_POST;
        if (html_post_page(cfg, t, &p, &out) == 0) {
            buf_reset(&out);
            *which = TPL_INDEX;
            static const int years[] = {2024};
            rc = html_index_page(cfg, t, 0, list, 1, years, 1, &out);
            if (rc == 0) {
                buf_reset(&out);
                rc = html_index_page(cfg, t, 2024, list, 1, years, 1, &out);
            }
        }
    }
    buf_free(&url);
    buf_free(&out);
    return rc;
}

void html_templates_digest(const struct html_templates *t, unsigned char out[32])
{
    struct buf k;
    buf_init(&k, 0);
    int rc = 0;
    for (int i = 0; rc == 0 && i < TPL_N; i++) {
        size_t len = t->len[i];
        if (buf_append(&k, &len, sizeof len) < 0 || buf_append(&k, t->text[i], len) < 0)
            rc = -1;
    }
    SHA256((const unsigned char *)buf_str(&k), rc == 0 ? k.len : 0, out);
    buf_free(&k);
}

struct html_templates *html_templates_load(const struct config *cfg, struct diag *err,
                                           char **err_file)
{
    struct html_templates *t = calloc(1, sizeof *t);
    int which = 0;

    if (!t) {
        diag_set(err, 0, 0, "out of memory");
        return NULL;
    }
    for (which = 0; which < TPL_N; which++)
        if (tpl_load(cfg, t, which, err) < 0)
            goto fail;
    if (tpl_check(cfg, t, &which) == 0)
        return t;
    diag_set(err, 0, 0,
             "rendering a sample page failed (a partial does not compile, or the page is "
             "larger than %u MiB)",
             TPL_SAMPLE_CAP >> 20);
    if (!t->path[which] && t->path[TPL_HEAD])
        which = TPL_HEAD;
fail:
    tpl_blame(t, which, err, err_file);
    html_templates_free(t);
    return NULL;
}

void html_templates_free(struct html_templates *t)
{
    if (!t)
        return;
    for (int i = 0; i < TPL_N; i++) {
        mustache_free(t->tpl[i]);
        buf_free(&t->src[i]);
        free(t->path[i]);
    }
    free(t);
}
