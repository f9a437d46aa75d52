/*
 * feed_json: JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/) with
 * jansson, keys in a fixed order, 2-space indent, UTF-8 kept as is. Also
 * the jansson helpers (feed_int.h) the HTML archive builds its data with.
 */
#include <string.h>

#include "../lib/text.h"
#include "../lib/timefmt.h"
#include "feed_int.h"
#include "feeds.h"

#define JSONFEED_VERSION "https://jsonfeed.org/version/1.1"

/* --- jansson helpers ----------------------------------------------------- */

void feed_jb_init(struct feed_jb *jb)
{
    buf_init(&jb->tmp, FEED_TEXT_CAP);
    jb->err = 0;
}

void feed_jb_free(struct feed_jb *jb)
{
    buf_free(&jb->tmp);
}

json_t *feed_jb_string(struct feed_jb *jb, const char *s, size_t len)
{
    json_t *v = NULL;
    buf_reset(&jb->tmp);
    if (!jb->err && text_xml_clean(&jb->tmp, s, len) == 0)
        v = json_stringn_nocheck(buf_str(&jb->tmp), jb->tmp.len); /* valid UTF-8 now */
    if (!v)
        jb->err = 1;
    return v;
}

void feed_jb_clean(struct feed_jb *jb, json_t *obj, const char *key, const char *s, size_t len)
{
    if (s && !jb->err)
        feed_jb_set(jb, obj, key,
                    text_xml_is_clean(s, len) ? json_stringn_nocheck(s, len)
                                              : feed_jb_string(jb, s, len));
}

/* jansson's *_new setters release value even when obj is NULL or wrong. */
void feed_jb_set(struct feed_jb *jb, json_t *obj, const char *key, json_t *value)
{
    if (!value || json_object_set_new(obj, key, value) < 0)
        jb->err = 1;
}

void feed_jb_strn(struct feed_jb *jb, json_t *obj, const char *key, const char *s, size_t len)
{
    if (s && !jb->err)
        feed_jb_set(jb, obj, key, feed_jb_string(jb, s, len));
}

void feed_jb_str(struct feed_jb *jb, json_t *obj, const char *key, const char *s)
{
    if (s)
        feed_jb_strn(jb, obj, key, s, strlen(s));
}

void feed_jb_push(struct feed_jb *jb, json_t *arr, const char *s)
{
    if (!s || jb->err)
        return;
    json_t *v = feed_jb_string(jb, s, strlen(s));
    if (!v || json_array_append_new(arr, v) < 0)
        jb->err = 1;
}

/* --- JSON Feed ----------------------------------------------------------- */

/* [{"name": name}] */
static json_t *json_authors(struct feed_jb *jb, const char *name)
{
    json_t *arr = json_array(), *a = json_object();
    feed_jb_str(jb, a, "name", name);
    if (!a || json_array_append_new(arr, a) < 0) {
        jb->err = 1;
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static int json_has(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!strcmp(json_string_value(v), s))
            return 1;
    }
    return 0;
}

/* Categories, then tags, each once (compared after cleaning). */
static json_t *json_tags(struct feed_jb *jb, const struct post *p)
{
    json_t *arr = json_array();
    size_t n = p->ncategories + p->ntags;
    for (size_t i = 0; arr && !jb->err && i < n; i++) {
        const char *s = i < p->ncategories ? p->categories[i] : p->tags[i - p->ncategories];
        json_t *v = feed_jb_string(jb, s, strlen(s));
        if (v && json_has(arr, json_string_value(v)))
            json_decref(v);
        else if (!v || json_array_append_new(arr, v) < 0)
            jb->err = 1;
    }
    if (!arr)
        jb->err = 1;
    return arr;
}

static json_t *json_item(const struct config *cfg, const struct post *p, struct feed_jb *jb)
{
    json_t *it = json_object();
    char date[64];

    feed_jb_str(jb, it, "id", p->url);
    feed_jb_str(jb, it, "url", p->url);
    feed_jb_str(jb, it, "title", p->title);
    if (cfg->feeds.full_content && p->html)
        feed_jb_strn(jb, it, "content_html", p->html, feed_html_len(p));
    else
        feed_jb_str(jb, it, "content_text", p->summary ? p->summary : "");
    feed_jb_str(jb, it, "summary", p->summary);
    feed_jb_str(jb, it, "date_published", timefmt_rfc3339(p->date, date, sizeof date));
    feed_jb_str(jb, it, "date_modified", timefmt_rfc3339(feed_post_updated(p), date, sizeof date));
    feed_jb_set(jb, it, "authors", json_authors(jb, p->author ? p->author : cfg->site.author_name));
    if (p->ncategories + p->ntags > 0)
        feed_jb_set(jb, it, "tags", json_tags(jb, p));
    feed_jb_str(jb, it, "language", feed_post_lang(cfg, p));
    feed_jb_str(jb, it, "image", p->image);
    if (!it)
        jb->err = 1;
    return it;
}

static json_t *json_head(const struct config *cfg, const struct feed_set *fs, struct feed_jb *jb)
{
    json_t *root = json_object();
    struct buf s;

    buf_init(&s, FEED_TEXT_CAP);
    feed_jb_str(jb, root, "version", JSONFEED_VERSION);
    if (feed_title(cfg, fs, &s) < 0)
        jb->err = 1;
    feed_jb_str(jb, root, "title", buf_str(&s));
    buf_reset(&s);
    if (buf_printf(&s, "%s/", cfg->site.url) < 0)
        jb->err = 1;
    feed_jb_str(jb, root, "home_page_url", buf_str(&s));
    buf_reset(&s);
    if (feed_url(cfg, fs->dir, "feed.json", &s) < 0)
        jb->err = 1;
    feed_jb_str(jb, root, "feed_url", buf_str(&s));
    feed_jb_str(jb, root, "description", cfg->site.title);
    feed_jb_str(jb, root, "language", cfg->site.language);
    feed_jb_set(jb, root, "authors",
                json_authors(jb, cfg->site.author_name ? cfg->site.author_name : cfg->site.title));
    buf_free(&s);
    if (!root)
        jb->err = 1;
    return root;
}

static int json_out(const char *data, size_t size, void *arg)
{
    return buf_append(arg, data, size);
}

int feed_json(const struct config *cfg, const struct feed_set *fs, struct buf *out)
{
    struct feed_jb jb;
    size_t len0 = out->len;
    int rc = -1;

    feed_jb_init(&jb);
    json_t *root = json_head(cfg, fs, &jb), *items = json_array();
    feed_jb_set(&jb, root, "items", json_incref(items));
    for (size_t i = 0; i < fs->n && !jb.err; i++) {
        json_t *it = json_item(cfg, fs->posts[i], &jb);
        if (!it || json_array_append_new(items, it) < 0)
            jb.err = 1;
    }
    if (!jb.err &&
        json_dump_callback(root, json_out, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 &&
        buf_putc(out, '\n') == 0)
        rc = 0;
    if (rc < 0 && out->data) {
        out->len = len0;
        out->data[len0] = '\0';
    }
    json_decref(items);
    json_decref(root);
    feed_jb_free(&jb);
    return rc;
}
