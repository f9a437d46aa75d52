/*
 * confirm: the double opt-in message (see confirm.h). Its texts are here,
 * in Arabic and English; the HTML is one table-free block with dir and
 * lang on <html> and direction in the body's style (Gmail drops the
 * attribute alone), the text part its plain twin.
 */
#include "confirm.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/text.h"
#include "dkim.h"
#include "mime.h"
#include "newsletter.h"

#define PART_MAX (256u << 10)

struct confirm_texts {
    const char *subject; /* %s: the list's name */
    const char *hello;   /* followed by the name, if any, then end */
    const char *end;
    const char *body; /* %s: the list's name */
    const char *button;
    const char *expiry;
    const char *ignore;
};

static const struct confirm_texts en = {
    .subject = "Confirm your subscription to %s",
    .hello = "Hello",
    .end = ",",
    .body = "Someone, probably you, asked to subscribe this address to %s.",
    .button = "Confirm my subscription",
    .expiry = "The link works for 7 days.",
    .ignore = "If it was not you, ignore this message: nothing will be sent to you.",
};

static const struct confirm_texts ar = {
    .subject = "أكِّد اشتراكك في %s",
    .hello = "مرحبًا",
    .end = "،",
    .body = "طلب أحدٌ، لعلّه أنت، اشتراك هذا العنوان في %s.",
    .button = "أكِّد اشتراكي",
    .expiry = "يعمل الرابط مدّة سبعة أيام.",
    .ignore = "إن لم تكن أنت، فتجاهل هذه الرسالة: لن يُرسَل إليك شيء.",
};

int confirm_lang_ar(const char *lang)
{
    return lang && (lang[0] == 'a' || lang[0] == 'A') && (lang[1] == 'r' || lang[1] == 'R') &&
           (lang[2] == '\0' || lang[2] == '-' || lang[2] == '_');
}

/* tmpl with its one "%s" replaced by arg (no printf: the texts are data). */
static int put_with(struct buf *b, const char *tmpl, const char *arg)
{
    const char *pc = strstr(tmpl, "%s");
    if (!pc)
        return buf_puts(b, tmpl);
    int rc = buf_append(b, tmpl, (size_t)(pc - tmpl));
    rc = rc < 0 ? rc : buf_puts(b, arg);
    return rc < 0 ? rc : buf_puts(b, pc + 2);
}

static int esc(struct buf *b, const char *s)
{
    return text_escape_html(b, s, strlen(s));
}

static int build_html(struct buf *h, const struct confirm_texts *t, const char *lang, int rtl,
                      const char *site, const char *list, const char *name, const char *url)
{
    const char *dir = rtl ? "rtl" : "ltr", *align = rtl ? "right" : "left";
    int rc = buf_printf(h,
                        "<!DOCTYPE html>\n<html lang=\"%s\" dir=\"%s\">\n<head>\n"
                        "<meta charset=\"utf-8\">\n"
                        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                        "<title>",
                        lang, dir);
    rc = rc < 0 ? rc : esc(h, site);
    rc = rc < 0 ? rc
                : buf_printf(h,
                             "</title>\n</head>\n<body dir=\"%s\" style=\"margin:0;padding:24px;"
                             "direction:%s;text-align:%s;font-family:Tahoma,Arial,sans-serif;"
                             "font-size:16px;line-height:1.7;color:#222222;\">\n<p>%s",
                             dir, dir, align, t->hello);
    if (rc == 0 && name && *name) {
        rc = buf_puts(h, " <bdi>");
        rc = rc < 0 ? rc : esc(h, name);
        rc = rc < 0 ? rc : buf_puts(h, "</bdi>");
    }
    rc = rc < 0 ? rc : buf_printf(h, "%s</p>\n<p>", t->end);
    /* the body's %s is the list's name, escaped and isolated */
    const char *pc = strstr(t->body, "%s");
    rc = rc < 0 ? rc : buf_append(h, t->body, (size_t)(pc - t->body));
    rc = rc < 0 ? rc : buf_puts(h, "<bdi><strong>");
    rc = rc < 0 ? rc : esc(h, list);
    rc = rc < 0 ? rc : buf_puts(h, "</strong></bdi>");
    rc = rc < 0 ? rc : buf_puts(h, pc + 2);
    rc = rc < 0 ? rc : buf_puts(h, "</p>\n<p style=\"margin:24px 0;\"><a href=\"");
    rc = rc < 0 ? rc : esc(h, url);
    rc = rc < 0 ? rc
                : buf_printf(h,
                             "\" style=\"display:inline-block;padding:10px 20px;"
                             "background:#1a5fb4;color:#ffffff;text-decoration:none;"
                             "border-radius:4px;\">%s</a></p>\n<p dir=\"ltr\" style=\"font-size:"
                             "13px;color:#555555;direction:ltr;text-align:left;word-break:"
                             "break-all;\">",
                             t->button);
    rc = rc < 0 ? rc : esc(h, url);
    rc = rc < 0 ? rc
                : buf_printf(h,
                             "</p>\n<p style=\"font-size:13px;color:#555555;\">%s %s</p>\n"
                             "</body>\n</html>\n",
                             t->expiry, t->ignore);
    return rc;
}

int confirm_compose(const struct composer *c, size_t li, const struct newsletter_to *to,
                    int64_t now, struct buf *msg, struct buf *verp)
{
    const struct config *cfg = c->cfg;
    const struct config_list *l = &cfg->lists[li];
    const char *lang = l->language ? l->language : cfg->site.language;
    const struct confirm_texts *t = confirm_lang_ar(lang) ? &ar : &en;
    const char *list = l->name ? l->name : l->id;
    char token[96], local[96];
    struct buf subject, html, text, url, mid;
    buf_init(&subject, 4096);
    buf_init(&html, PART_MAX);
    buf_init(&text, PART_MAX);
    buf_init(&url, 4096);
    buf_init(&mid, 1024);
    newsletter_confirm_token(c->key, l->id, to->id, to->email, now, token);
    newsletter_verp_local(c->key, 0, to->id, local);
    int rc = buf_printf(&url, "%s/confirm?t=%s", cfg->site.url, token);
    rc = rc < 0 ? rc : put_with(&subject, t->subject, list);
    rc = rc < 0 ? rc
                : build_html(&html, t, lang, lang_is_rtl(lang), cfg->site.title, list, to->name,
                             buf_str(&url));
    rc = rc < 0 ? rc
                : buf_printf(&text, "%s%s%s%s\r\n\r\n", t->hello, to->name && *to->name ? " " : "",
                             to->name ? to->name : "", t->end);
    rc = rc < 0 ? rc : put_with(&text, t->body, list);
    rc = rc < 0 ? rc
                : buf_printf(&text, "\r\n\r\n%s:\r\n%s\r\n\r\n%s %s\r\n", t->button, buf_str(&url),
                             t->expiry, t->ignore);
    /* unique: two confirmations of one address are two messages */
    rc = rc < 0 ? rc
                : buf_printf(&mid, "confirm.%lld.%lld.%ld.%x@%s", (long long)to->id, (long long)now,
                             (long)getpid(), (unsigned)rand(), c->domain);
    rc = rc < 0 ? rc : buf_printf(verp, "%s@%s", local, c->domain);
    if (rc == 0) {
        struct mime_message m = {
            .from = {.name = c->from_name, .email = c->from_addr},
            .to = {.name = to->name, .email = to->email},
            .subject = buf_str(&subject),
            .date = now,
            .message_id = buf_str(&mid),
            .html = buf_str(&html),
            .html_len = html.len,
            .text = buf_str(&text),
            .text_len = text.len,
            .no_list = 1,
        };
        rc = mime_build(&m, msg);
        if (rc == 0 && c->dkim)
            rc = dkim_sign(c->dkim, m.date, msg);
    }
    buf_free(&subject);
    buf_free(&html);
    buf_free(&text);
    buf_free(&url);
    buf_free(&mid);
    return rc;
}
