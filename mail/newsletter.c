/*
 * newsletter: subjects and bodies of the e-mails lists send (see
 * newsletter.h). The data a template sees is one jansson object:
 *   site.{title,url,language,dir}  list.{id,name}  lang dir align end
 *   post.{title,url,html,summary,date,date_iso,author,image,lang,dir,
 *         categories}                        (each)
 *   posts[] of the same, digest: true        (digest)
 *   subscriber.{email,name,...CSV columns}   unsubscribe_url  web_url
 *   t.{greeting,view_online,...}             (the labels, in the list's language)
 * The built-in template is tables and inline styles (what mail clients
 * render alike), with dir and lang on <html> and direction in the body's
 * style too (Gmail drops the attribute alone).
 */
#include "newsletter.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/fileio.h"
#include "../lib/mustache.h"
#include "../lib/text.h"
#include "../lib/timefmt.h"

#define TEMPLATE_MAX (1u << 20) /* a template file */
#define SUBJECT_MAX  998        /* RFC 5322's line limit bounds any sane subject */

static const char builtin[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"{{lang}}\" dir=\"{{dir}}\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<meta name=\"color-scheme\" content=\"light\">\n"
    "<title>{{site.title}}</title>\n"
    "</head>\n"
    "<body dir=\"{{dir}}\" style=\"margin:0;padding:0;background:#f3f3f3;direction:{{dir}};"
    "text-align:{{align}};\">\n"
    "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" "
    "border=\"0\" style=\"background:#f3f3f3;\">\n"
    "<tr><td align=\"center\" style=\"padding:16px 8px;\">\n"
    "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" "
    "border=\"0\" style=\"max-width:640px;background:#ffffff;border-radius:6px;\">\n"
    "<tr><td dir=\"{{dir}}\" style=\"padding:18px 24px 6px;font-family:Tahoma,Arial,"
    "sans-serif;font-size:13px;color:#666666;direction:{{dir}};text-align:{{align}};\">\n"
    "<a href=\"{{site.url}}/\" style=\"color:#444444;font-weight:bold;text-decoration:none;\">"
    "{{site.title}}</a> &middot; <bdi>{{list.name}}</bdi> &middot; "
    "<a href=\"{{web_url}}\" style=\"color:#1a5fb4;\">{{t.view_online}}</a>\n"
    "</td></tr>\n"
    "<tr><td dir=\"{{dir}}\" style=\"padding:6px 24px 16px;font-family:Tahoma,Arial,"
    "sans-serif;font-size:16px;line-height:1.7;color:#222222;direction:{{dir}};"
    "text-align:{{align}};\">\n"
    "<p style=\"margin:8px 0 16px;\">{{t.greeting}}{{#subscriber.name}} "
    "<bdi>{{subscriber.name}}</bdi>{{/subscriber.name}}{{t.greeting_end}}</p>\n"
    "{{#post}}\n"
    "<h1 dir=\"{{dir}}\" lang=\"{{lang}}\" style=\"font-size:24px;line-height:1.4;"
    "margin:0 0 6px;direction:{{dir}};\"><a href=\"{{url}}\" style=\"color:#222222;"
    "text-decoration:none;\">{{title}}</a></h1>\n"
    "<p style=\"margin:0 0 16px;font-size:13px;color:#777777;\">{{date}}"
    "{{#author}} &middot; {{author}}{{/author}}</p>\n"
    "{{#image}}<img src=\"{{image}}\" alt=\"\" width=\"592\" style=\"display:block;"
    "max-width:100%;height:auto;border:0;margin:0 0 16px;\">\n{{/image}}"
    "<div dir=\"{{dir}}\" lang=\"{{lang}}\" style=\"direction:{{dir}};\">\n"
    "{{{html}}}\n"
    "</div>\n"
    "{{/post}}\n"
    "{{#digest}}\n"
    "{{#posts}}\n"
    "<h2 dir=\"{{dir}}\" lang=\"{{lang}}\" style=\"font-size:19px;line-height:1.4;"
    "margin:20px 0 4px;direction:{{dir}};\"><a href=\"{{url}}\" style=\"color:#222222;"
    "text-decoration:none;\">{{title}}</a></h2>\n"
    "<p style=\"margin:0 0 6px;font-size:13px;color:#777777;\">{{date}}</p>\n"
    "<p dir=\"{{dir}}\" lang=\"{{lang}}\" style=\"margin:0 0 6px;direction:{{dir}};\">"
    "{{summary}}</p>\n"
    "<p style=\"margin:0 0 12px;\"><a href=\"{{url}}\" style=\"color:#1a5fb4;\">"
    "{{t.read_more}}</a></p>\n"
    "{{/posts}}\n"
    "{{/digest}}\n"
    "</td></tr>\n"
    "<tr><td dir=\"{{dir}}\" style=\"padding:14px 24px 20px;border-top:1px solid #eeeeee;"
    "font-family:Tahoma,Arial,sans-serif;font-size:12px;line-height:1.6;color:#777777;"
    "direction:{{dir}};text-align:{{align}};\">\n"
    "<p style=\"margin:0 0 6px;\">{{t.why}} <bdi>{{list.name}}</bdi> &middot; "
    "<a href=\"{{site.url}}/\" style=\"color:#777777;\">{{site.title}}</a></p>\n"
    "<p style=\"margin:0;\"><a href=\"{{unsubscribe_url}}\" style=\"color:#777777;\">"
    "{{t.unsubscribe}}</a></p>\n"
    "</td></tr>\n"
    "</table>\n"
    "</td></tr>\n"
    "</table>\n"
    "</body>\n"
    "</html>\n";

struct label {
    const char *key, *en, *ar;
};

static const struct label labels[] = {
    {"greeting", "Hello", "مرحباً"},
    {"greeting_end", ",", "،"},
    {"view_online", "View in your browser", "اقرأها في المتصفح"},
    {"read_more", "Read the full post", "اقرأ المقال كاملاً"},
    {"why", "You receive this because you subscribed to", "تصلك هذه الرسالة لأنك مشترك في"},
    {"unsubscribe", "Unsubscribe", "إلغاء الاشتراك"},
};

struct newsletter {
    const struct config *cfg;
    struct mustache **body;    /* one a list */
    struct mustache **subject; /* one a list */
    unsigned char key[32];
    int has_key;
};

static int lang_ar(const char *lang)
{
    return lang && (lang[0] == 'a' || lang[0] == 'A') && (lang[1] == 'r' || lang[1] == 'R') &&
           (lang[2] == '\0' || lang[2] == '-' || lang[2] == '_');
}

static const char *list_lang(const struct config *cfg, const struct config_list *l)
{
    return l->language ? l->language : cfg->site.language;
}

static struct mustache *compile_file(const char *path, struct diag *err)
{
    struct buf src;
    const char *why;
    struct mustache *t = NULL;
    buf_init(&src, TEMPLATE_MAX + 1);
    if (file_read(path, TEMPLATE_MAX, &src, &why) < 0)
        diag_set(err, 0, 0, "cannot read the template: %s", why);
    else
        t = mustache_compile(buf_str(&src), src.len, err);
    buf_free(&src);
    return t;
}

struct newsletter *newsletter_load(const struct config *cfg, struct diag *err, char **err_file)
{
    struct newsletter *n = calloc(1, sizeof *n);
    if (!n || !(n->body = calloc(cfg->nlists + 1, sizeof *n->body)) ||
        !(n->subject = calloc(cfg->nlists + 1, sizeof *n->subject))) {
        diag_set(err, 0, 0, "out of memory");
        newsletter_free(n);
        return NULL;
    }
    n->cfg = cfg;
    for (size_t i = 0; i < cfg->nlists; i++) {
        const struct config_list *l = &cfg->lists[i];
        n->body[i] = l->template ? compile_file(l->template, err)
                                 : mustache_compile(builtin, sizeof builtin - 1, err);
        if (!n->body[i]) {
            if (err_file)
                *err_file = strdup(l->template ? l->template : "built-in newsletter template");
            newsletter_free(n);
            return NULL;
        }
        const char *subj = l->subject ? l->subject : "{{post.title}}";
        if (!(n->subject[i] = mustache_compile(subj, strlen(subj), err))) {
            char where[300];
            snprintf(where, sizeof where, "%s (lists[%zu].subject)", cfg->path, i);
            if (l->subject_line && err->line == 1) {
                /* one line of the config file: point there (exact unless the
                 * quoted text uses escapes before the error) */
                err->line = l->subject_line;
                err->col = l->subject_col + (err->col > 0 ? err->col - 1 : 0);
                snprintf(where, sizeof where, "%s", cfg->path);
            }
            if (err_file)
                *err_file = strdup(where);
            newsletter_free(n);
            return NULL;
        }
    }
    return n;
}

void newsletter_free(struct newsletter *n)
{
    if (!n)
        return;
    for (size_t i = 0; n->cfg && i < n->cfg->nlists; i++) {
        if (n->body)
            mustache_free(n->body[i]);
        if (n->subject)
            mustache_free(n->subject[i]);
    }
    free(n->body);
    free(n->subject);
    OPENSSL_cleanse(n->key, sizeof n->key);
    free(n);
}

void newsletter_use_key(struct newsletter *n, const unsigned char key[32])
{
    memcpy(n->key, key, 32);
    n->has_key = 1;
}

/* --- the data a template sees --------------------------------------------- */

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, json_string(v));
}

static json_t *post_json(const struct config *cfg, const char *lang, const struct post *p)
{
    json_t *o = json_object();
    char date[64];
    const char *plang = p->lang ? p->lang : cfg->site.language;
    set_str(o, "title", p->title);
    set_str(o, "url", p->url);
    if (p->html)
        json_object_set_new(o, "html", json_stringn(p->html, p->html_len));
    set_str(o, "summary", p->summary);
    set_str(o, "date", timefmt_human(p->date, lang, date, sizeof date));
    set_str(o, "date_iso", timefmt_rfc3339(p->date, date, sizeof date));
    set_str(o, "author", p->author);
    set_str(o, "image", p->image);
    set_str(o, "lang", plang);
    set_str(o, "dir", p->rtl ? "rtl" : "ltr");
    json_t *cats = json_array();
    for (size_t i = 0; i < p->ncategories; i++)
        json_array_append_new(cats, json_string(p->categories[i]));
    json_object_set_new(o, "categories", cats);
    return o;
}

static int link_of(const struct newsletter *n, const struct config_list *l,
                   const struct newsletter_to *to, struct buf *out)
{
    char token[96];
    if (!n->has_key)
        return buf_printf(out, "%s/unsubscribe", n->cfg->site.url);
    newsletter_token(n->key, "unsubscribe", l->id, to->id, to->email, token);
    return buf_printf(out, "%s/unsubscribe?t=%s", n->cfg->site.url, token);
}

static json_t *context(const struct newsletter *n, size_t li, struct post *const *posts,
                       size_t nposts, int digest, const struct newsletter_to *to)
{
    const struct config *cfg = n->cfg;
    const struct config_list *l = &cfg->lists[li];
    const char *lang = list_lang(cfg, l);
    int ar = lang_ar(lang), rtl = lang_is_rtl(lang);
    json_t *root = json_object(), *site = json_object(), *list = json_object();
    json_t *t = json_object(), *sub = NULL;
    struct buf url;
    buf_init(&url, 8192);

    set_str(site, "title", cfg->site.title);
    set_str(site, "url", cfg->site.url);
    set_str(site, "language", cfg->site.language);
    set_str(site, "dir", cfg->site.rtl ? "rtl" : "ltr");
    json_object_set_new(root, "site", site);
    set_str(list, "id", l->id);
    set_str(list, "name", l->name ? l->name : l->id);
    json_object_set_new(root, "list", list);
    set_str(root, "lang", lang);
    set_str(root, "dir", rtl ? "rtl" : "ltr");
    set_str(root, "align", rtl ? "right" : "left");
    set_str(root, "end", rtl ? "left" : "right");
    for (size_t i = 0; i < sizeof labels / sizeof *labels; i++)
        set_str(t, labels[i].key, ar ? labels[i].ar : labels[i].en);
    json_object_set_new(root, "t", t);

    if (digest) {
        json_t *arr = json_array();
        for (size_t i = 0; i < nposts; i++)
            json_array_append_new(arr, post_json(cfg, lang, posts[i]));
        json_object_set_new(root, "posts", arr);
        json_object_set_new(root, "digest", json_true());
        set_str(root, "web_url", cfg->site.url);
    } else if (nposts) {
        json_object_set_new(root, "post", post_json(cfg, lang, posts[0]));
        set_str(root, "web_url", posts[0]->url);
    }
    if (to) {
        json_error_t je;
        sub = to->extra && *to->extra ? json_loads(to->extra, 0, &je) : NULL;
        if (!json_is_object(sub)) {
            json_decref(sub);
            sub = json_object();
        }
        set_str(sub, "email", to->email);
        set_str(sub, "name", to->name && *to->name ? to->name : NULL);
        json_object_set_new(root, "subscriber", sub);
        if (to->unsub_url)
            set_str(root, "unsubscribe_url", to->unsub_url);
        else if (link_of(n, l, to, &url) == 0)
            set_str(root, "unsubscribe_url", buf_str(&url));
    }
    buf_free(&url);
    return root;
}

/* One line: controls and line breaks become spaces, runs of them one. */
static int one_line(struct buf *out, const char *s, size_t len)
{
    int space = 0;
    size_t start = out->len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            space = 1;
            continue;
        }
        if (space && out->len > start && buf_putc(out, ' ') < 0)
            return -1;
        space = 0;
        if (buf_putc(out, (char)c) < 0)
            return -1;
    }
    return 0;
}

int newsletter_render(const struct newsletter *n, size_t li, struct post *const *posts,
                      size_t nposts, int digest, const struct newsletter_to *to,
                      struct buf *subject, struct buf *html)
{
    if (li >= n->cfg->nlists)
        return -1;
    json_t *ctx = context(n, li, posts, nposts, digest, to);
    struct buf subj;
    int rc = ctx ? 0 : -1;
    buf_init(&subj, SUBJECT_MAX * 4);
    if (rc == 0)
        rc = mustache_render(n->subject[li], ctx, NULL, NULL, &subj);
    /* The subject is text, not HTML: undo the escaping of {{var}}. */
    if (rc == 0) {
        static const char *const ent[][2] = {{"&amp;", "&"},   {"&lt;", "<"},  {"&gt;", ">"},
                                             {"&quot;", "\""}, {"&#39;", "'"}, {"&#x27;", "'"}};
        struct buf plain;
        buf_init(&plain, SUBJECT_MAX * 4);
        for (size_t i = 0; rc == 0 && i < subj.len;) {
            size_t k = 0;
            while (k < sizeof ent / sizeof *ent &&
                   strncmp(subj.data + i, ent[k][0], strlen(ent[k][0])))
                k++;
            if (k < sizeof ent / sizeof *ent) {
                rc = buf_puts(&plain, ent[k][1]);
                i += strlen(ent[k][0]);
            } else {
                rc = buf_putc(&plain, subj.data[i++]);
            }
        }
        if (rc == 0)
            rc = one_line(subject, buf_str(&plain), plain.len);
        buf_free(&plain);
    }
    if (rc == 0)
        rc = mustache_render(n->body[li], ctx, NULL, NULL, html);
    buf_free(&subj);
    json_decref(ctx);
    return rc;
}

/* --- the secret and the tokens -------------------------------------------- */

int newsletter_secret(const struct config *cfg, unsigned char key[32], struct diag *err)
{
    const char *path = cfg->mail.secret_file;
    struct buf b;
    const char *why;
    buf_init(&b, 4096);
    if (file_read(path, 4096, &b, &why) == 0) {
        int ok = b.len >= 64;
        for (size_t i = 0; ok && i < 32; i++) {
            int hi = text_hexval(b.data[2 * i]), lo = text_hexval(b.data[2 * i + 1]);
            ok = hi >= 0 && lo >= 0;
            key[i] = (unsigned char)(hi << 4 | lo);
        }
        OPENSSL_cleanse(b.data, b.len);
        buf_free(&b);
        if (!ok)
            diag_set(err, 1, 1, "%s: expected 64 hexadecimal digits (32 random bytes)", path);
        return ok ? 0 : -1;
    }
    buf_free(&b);
    if (errno != ENOENT) {
        diag_set(err, 0, 0, "%s: %s", path, why);
        return -1;
    }
    char hex[66];
    if (RAND_bytes(key, 32) != 1) {
        diag_set(err, 0, 0, "no random bytes for %s", path);
        return -1;
    }
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    hex[64] = '\n';
    char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash && slash != dir) {
        *slash = '\0';
        mkdir_p(dir);
    }
    free(dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, hex, 65) == 65;
    if (fd >= 0 && close(fd) < 0)
        ok = 0;
    OPENSSL_cleanse(hex, sizeof hex);
    if (!ok) {
        diag_set(err, 0, 0, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void newsletter_token(const unsigned char key[32], const char *purpose, const char *list,
                      int64_t id, const char *email, char out[96])
{
    unsigned char mac[32];
    unsigned int maclen = 0;
    struct buf msg;
    buf_init(&msg, 4096);
    if (buf_printf(&msg, "%s|%s|%lld|%s", purpose, list, (long long)id, email) < 0)
        buf_reset(&msg);
    HMAC(EVP_sha256(), key, 32, (const unsigned char *)buf_str(&msg), msg.len, mac, &maclen);
    int n = snprintf(out, 96, "%lld.", (long long)id);
    for (int i = 0; i < 10 && n + 2 < 96; i++, n += 2)
        snprintf(out + n, 3, "%02x", mac[i]);
    buf_free(&msg);
}

int newsletter_token_ok(const unsigned char key[32], const char *purpose, const char *list,
                        int64_t id, const char *email, const char *token)
{
    char want[96];
    newsletter_token(key, purpose, list, id, email, want);
    size_t n = strlen(want);
    return token && strlen(token) == n && CRYPTO_memcmp(want, token, n) == 0;
}

/* Digits only (no sign, no space, at most 18): strtoll takes more. */
static int64_t parse_num(const char *s, const char **end)
{
    int64_t v = 0;
    size_t i = 0;
    while (s[i] >= '0' && s[i] <= '9' && i < 18)
        v = v * 10 + (s[i++] - '0');
    *end = s + i;
    return i ? v : -1;
}

int64_t newsletter_token_id(const char *token)
{
    const char *end;
    int64_t id = token ? parse_num(token, &end) : -1;
    return id >= 0 && *end == '.' ? id : -1;
}

/* The first n bytes of the HMAC of msg, in hex, appended at out + at. */
static void mac_hex(const unsigned char key[32], const struct buf *msg, int nbytes, char *out,
                    int at, int outlen)
{
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, 32, (const unsigned char *)buf_str(msg), msg->len, mac, &maclen);
    for (int i = 0; i < nbytes && at + 2 < outlen; i++, at += 2)
        snprintf(out + at, 3, "%02x", mac[i]);
}

void newsletter_confirm_token(const unsigned char key[32], const char *list, int64_t id,
                              const char *email, int64_t issued, char out[96])
{
    struct buf msg;
    buf_init(&msg, 4096);
    if (buf_printf(&msg, "confirm|%s|%lld|%s|%lld", list, (long long)id, email, (long long)issued) <
        0)
        buf_reset(&msg);
    int n = snprintf(out, 96, "%lld.%lld.", (long long)id, (long long)issued);
    mac_hex(key, &msg, 10, out, n, 96);
    buf_free(&msg);
}

int newsletter_confirm_ok(const unsigned char key[32], const char *list, int64_t id,
                          const char *email, const char *token, int64_t now)
{
    const char *p;
    if (!token || newsletter_token_id(token) != id)
        return 0;
    p = strchr(token, '.') + 1;
    int64_t issued = parse_num(p, &p);
    if (issued < 0 || *p != '.' || issued > now || now - issued > NEWSLETTER_CONFIRM_TTL)
        return 0;
    char want[96];
    newsletter_confirm_token(key, list, id, email, issued, want);
    size_t n = strlen(want);
    return strlen(token) == n && CRYPTO_memcmp(want, token, n) == 0;
}

#define VERP_PREFIX "bounces+"

void newsletter_verp_local(const unsigned char key[32], int64_t issue, int64_t subscriber,
                           char out[96])
{
    struct buf msg;
    buf_init(&msg, 128);
    if (buf_printf(&msg, "bounce|%lld|%lld", (long long)issue, (long long)subscriber) < 0)
        buf_reset(&msg);
    int n = snprintf(out, 96, VERP_PREFIX "%lld.%lld.", (long long)issue, (long long)subscriber);
    mac_hex(key, &msg, 6, out, n, 96);
    buf_free(&msg);
}

int newsletter_verp_parse(const unsigned char key[32], const char *s, int64_t *issue,
                          int64_t *subscriber)
{
    const size_t plen = sizeof VERP_PREFIX - 1;
    for (const char *p = s ? strcasestr(s, VERP_PREFIX) : NULL; p;
         p = strcasestr(p + 1, VERP_PREFIX)) {
        const char *q;
        int64_t is = parse_num(p + plen, &q), sub = -1;
        if (is >= 0 && *q == '.')
            sub = parse_num(q + 1, &q);
        if (sub < 0 || *q != '.' || strlen(q + 1) < 12)
            continue;
        char want[96];
        newsletter_verp_local(key, is, sub, want);
        char got[96];
        size_t n = strlen(want);
        if ((size_t)(q + 13 - p) != n)
            continue;
        /* the local part may come back in another case: compare lower-cased */
        for (size_t i = 0; i < n; i++)
            got[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
        if (CRYPTO_memcmp(want, got, n) == 0) {
            *issue = is;
            *subscriber = sub;
            return 1;
        }
    }
    return 0;
}
