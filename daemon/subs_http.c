/*
 * subs_http: /subscribe, /confirm and /unsubscribe (see subs_http.h).
 *
 * Tokens (mail/newsletter.h) name a subscriber by id and carry an HMAC of
 * their list and address: the subscriber is looked up by the id, then the
 * token recomputed for them and compared in constant time; any mismatch
 * (another address, another list, a changed digit, an expired confirm
 * token) is 403 and changes nothing. A GET never changes a subscription
 * except /confirm, which the spec makes a GET (the link in the mail);
 * unsubscribing takes a POST, since link scanners follow every GET.
 */
#include "subs_http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/log.h"
#include "../lib/ratelimit.h"
#include "../lib/text.h"
#include "../lib/timefmt.h"
#include "../mail/compose.h"
#include "../mail/confirm.h"
#include "../mail/dkim.h"
#include "../mail/mime.h"
#include "../mail/newsletter.h"
#include "../mail/transport.h"
#include "../store/mail_store.h"

#define FORM_MAX       (16u << 10) /* a /subscribe or /unsubscribe body */
#define NAME_MAX_BYTES 200         /* a subscriber's name from the form */
#define TOKEN_MAX      95
#define IP_MAX         10   /* /subscribe requests per client address ... */
#define IP_WINDOW      60   /* ... per this many seconds */
#define ADDR_WINDOW    3600 /* one confirmation mail per address per hour */
#define RL_SLOTS       4096 /* entries of each rate-limit table */
#define QUEUE_MAX      256  /* confirmation mails waiting or in flight */
#define TRIES_MAX      5    /* a confirmation retried (4xx, network) this often */
#define RETRY_FIRST_S  30   /* then doubled */

struct cmsg {
    uint64_t id;
    int64_t subscriber;
    char *rcpt, *verp;
    struct buf msg;
    int inflight, attempts;
    int64_t at; /* not before (unix seconds) */
};

struct subs_http {
    const struct config *cfg;
    struct store *st;
    struct mail_store *ms;
    struct loop *loop;
    int ready; /* key, composer and transport are there */
    unsigned char key[32];
    struct composer comp;
    int comp_ready;
    struct dkim *dkim;
    struct transport *tr;
    struct ratelimit *per_ip, *per_addr;
    struct cmsg *q[QUEUE_MAX];
    size_t nq;
    uint64_t next_id;
};

/* --- pages -------------------------------------------------------------------- */

struct page_texts {
    const char *check_title, *check_text; /* %s: the list */
    const char *confirmed_title, *confirmed_text;
    const char *unsub_title, *unsub_text, *unsub_button; /* %s: the address, then the list */
    const char *unsubscribed_title, *unsubscribed_text;
    const char *bad_title, *bad_text;
    const char *email_title, *email_text;
    const char *busy_title, *busy_text;
    const char *nolist_title, *nolist_text;
    const char *back;
};

static const struct page_texts texts_en = {
    .check_title = "Check your mail",
    .check_text = "If this address can be subscribed to %s, a message with a link to confirm "
                  "the subscription is on its way to it.",
    .confirmed_title = "Subscription confirmed",
    .confirmed_text = "You are subscribed to %s.",
    .unsub_title = "Unsubscribe",
    .unsub_text = "Stop mailing %s the messages of %s?",
    .unsub_button = "Unsubscribe",
    .unsubscribed_title = "You are unsubscribed",
    .unsubscribed_text = "No more messages of %s will be sent to you.",
    .bad_title = "This link does not work",
    .bad_text = "It may have expired, or been changed on the way. Nothing was changed.",
    .email_title = "Please check the address",
    .email_text = "That does not look like an e-mail address.",
    .busy_title = "Too many requests",
    .busy_text = "Please try again in a minute.",
    .nolist_title = "No such list",
    .nolist_text = "There is no list of that name here.",
    .back = "Back to the site",
};

static const struct page_texts texts_ar = {
    .check_title = "تحقّق من بريدك",
    .check_text =
        "إن أمكن اشتراك هذا العنوان في %s، فرسالةٌ فيها رابط تأكيد الاشتراك في طريقها إليه.",
    .confirmed_title = "تأكّد اشتراكك",
    .confirmed_text = "أنت الآن مشترك في %s.",
    .unsub_title = "إلغاء الاشتراك",
    .unsub_text = "أنوقف إرسال رسائل %2$s إلى %1$s؟",
    .unsub_button = "ألغِ الاشتراك",
    .unsubscribed_title = "أُلغي اشتراكك",
    .unsubscribed_text = "لن تصلك رسائل %s بعد الآن.",
    .bad_title = "هذا الرابط لا يعمل",
    .bad_text = "ربما انتهت صلاحيته أو تغيّر في الطريق. لم يتغيّر شيء.",
    .email_title = "تحقّق من العنوان",
    .email_text = "لا يبدو هذا عنوان بريد إلكتروني.",
    .busy_title = "طلبات كثيرة",
    .busy_text = "حاول مرة أخرى بعد دقيقة.",
    .nolist_title = "لا توجد قائمة بهذا الاسم",
    .nolist_text = "ليست هنا قائمة بهذا الاسم.",
    .back = "العودة إلى الموقع",
};

static const char *list_lang(const struct config *cfg, const struct config_list *l)
{
    return l && l->language ? l->language : cfg->site.language;
}

static const struct page_texts *texts_for(const char *lang)
{
    return confirm_lang_ar(lang) ? &texts_ar : &texts_en;
}

/* Appends tmpl with "%s" (or "%1$s", "%2$s") replaced by the escaped a and
 * b, each isolated in <bdi> (an address inside Arabic text stays whole). */
static int put_text(struct buf *o, const char *tmpl, const char *a, const char *b)
{
    int next = 0, rc = 0;
    while (rc == 0 && *tmpl) {
        const char *pc = strchr(tmpl, '%');
        if (!pc)
            return buf_puts(o, tmpl);
        rc = buf_append(o, tmpl, (size_t)(pc - tmpl));
        const char *arg;
        if (pc[1] == 's') {
            arg = next++ ? b : a;
            tmpl = pc + 2;
        } else if ((pc[1] == '1' || pc[1] == '2') && pc[2] == '$' && pc[3] == 's') {
            arg = pc[1] == '1' ? a : b;
            tmpl = pc + 4;
        } else {
            rc = rc < 0 ? rc : buf_puts(o, "%");
            tmpl = pc + 1;
            continue;
        }
        rc = rc < 0 ? rc : buf_puts(o, "<bdi><strong>");
        rc = rc < 0 ? rc : text_escape_html(o, arg ? arg : "", arg ? strlen(arg) : 0);
        rc = rc < 0 ? rc : buf_puts(o, "</strong></bdi>");
    }
    return rc;
}

/* A whole page: title, one paragraph (tmpl with a and b), and for the
 * unsubscribe page its button. */
static enum http_verdict page(const struct subs_http *s, struct http_response *rs, int status,
                              const char *lang, const char *title, const char *tmpl, const char *a,
                              const char *b, const char *button)
{
    const struct config *cfg = s->cfg;
    const struct page_texts *t = texts_for(lang);
    const char *dir = lang_is_rtl(lang) ? "rtl" : "ltr";
    struct buf *o = &rs->body;
    rs->status = status;
    rs->content_type = "text/html; charset=utf-8";
    if (http_response_header(rs, "Cache-Control", "no-store") < 0 ||
        http_response_header(rs, "Referrer-Policy", "no-referrer") < 0 ||
        http_response_header(rs, "X-Robots-Tag", "noindex") < 0 ||
        http_response_header(rs, "Content-Security-Policy",
                             "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                             "frame-ancestors 'none'") < 0)
        return HTTP_ERROR;
    int rc = buf_puts(o, "<!DOCTYPE html>\n<html lang=\"");
    rc = rc < 0 ? rc : text_escape_html(o, lang, strlen(lang));
    rc = rc < 0 ? rc
                : buf_printf(o,
                             "\" dir=\"%s\">\n<head>\n<meta charset=\"utf-8\">\n"
                             "<meta name=\"viewport\" content=\"width=device-width, "
                             "initial-scale=1\">\n<meta name=\"robots\" content=\"noindex\">\n"
                             "<title>%s \xe2\x80\x94 ",
                             dir, title);
    rc = rc < 0 ? rc : text_escape_html(o, cfg->site.title, strlen(cfg->site.title));
    rc = rc < 0 ? rc
                : buf_puts(o, "</title>\n<style>body{margin:3rem auto;max-inline-size:36rem;"
                              "padding:0 1.25rem;font:1.0625rem/1.7 system-ui,\"Noto Sans\","
                              "\"Noto Naskh Arabic\",Tahoma,sans-serif}button{font:inherit;"
                              "padding:.4rem 1.25rem}</style>\n</head>\n<body>\n");
    rc = rc < 0 ? rc : buf_printf(o, "<h1>%s</h1>\n<p>", title);
    rc = rc < 0 ? rc : put_text(o, tmpl, a, b);
    rc = rc < 0 ? rc : buf_puts(o, "</p>\n");
    /* no action: the form posts to this very URL, token included */
    if (rc == 0 && button)
        rc = buf_printf(o,
                        "<form method=\"post\">\n<input type=\"hidden\" name=\"List-Unsubscribe\" "
                        "value=\"One-Click\">\n<button type=\"submit\">%s</button>\n</form>\n",
                        button);
    rc = rc < 0 ? rc : buf_puts(o, "<p><a href=\"");
    rc = rc < 0 ? rc : text_escape_html(o, cfg->site.url, strlen(cfg->site.url));
    rc = rc < 0 ? rc : buf_printf(o, "/\">%s</a></p>\n</body>\n</html>\n", t->back);
    return rc < 0 ? HTTP_ERROR : HTTP_DONE;
}

/* --- requests ------------------------------------------------------------------ */

char *subs_form_get(const char *body, size_t len, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && body[e] != '&')
            e++;
        if (e - i > klen && !memcmp(body + i, key, klen) && body[i + klen] == '=') {
            const char *v = body + i + klen + 1;
            size_t n = e - (i + klen + 1), k = 0;
            char *out = malloc(n + 1);
            for (size_t j = 0; out && j < n; j++) {
                if (v[j] == '+') {
                    out[k++] = ' ';
                } else if (v[j] == '%') {
                    int hi = j + 2 < n ? text_hexval(v[j + 1]) : -1;
                    int lo = j + 2 < n ? text_hexval(v[j + 2]) : -1;
                    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                        free(out);
                        return NULL;
                    }
                    out[k++] = (char)(hi << 4 | lo);
                    j += 2;
                } else {
                    out[k++] = v[j];
                }
            }
            if (out)
                out[k] = '\0';
            return out;
        }
        i = e + 1;
    }
    return NULL;
}

/* Whom the rate limit counts: the peer, or with http.trust_proxy the last
 * hop of X-Forwarded-For (the one our proxy added: those before it are the
 * client's to invent); an IPv6 address by its /64. */
static void client_of(const struct subs_http *s, const struct http_request *rq, char *out,
                      size_t outlen)
{
    const char *c = rq->client;
    char hop[64];
    const char *xff = s->cfg->http.trust_proxy ? http_header(rq, "X-Forwarded-For") : NULL;
    if (xff) {
        const char *last = strrchr(xff, ',');
        last = last ? last + 1 : xff;
        while (*last == ' ' || *last == '\t')
            last++;
        size_t n = strcspn(last, " \t");
        if (n > 0 && n < sizeof hop) {
            memcpy(hop, last, n);
            hop[n] = '\0';
            c = hop;
        }
    }
    unsigned char a[16];
    if (inet_pton(AF_INET6, c, a) == 1) {
        memset(a + 8, 0, 8);
        inet_ntop(AF_INET6, a, out, (socklen_t)outlen);
    } else if (inet_pton(AF_INET, c, a) == 1) {
        snprintf(out, outlen, "%s", c);
    } else {
        snprintf(out, outlen, "%s", rq->client); /* not an address: the peer's */
    }
}

static int find_list(const struct config *cfg, const char *id)
{
    for (size_t i = 0; id && i < cfg->nlists; i++)
        if (!strcmp(cfg->lists[i].id, id))
            return (int)i;
    return -1;
}

/* The subscriber a token names, if the token is theirs for this purpose
 * (confirm: and not expired): 1 with *out (free() it), 0 not, -1 error. */
static int token_owner(struct subs_http *s, const char *t, int confirm,
                       struct mail_subscriber **out)
{
    *out = NULL;
    int64_t id = newsletter_token_id(t);
    if (id < 0 || strlen(t) > TOKEN_MAX)
        return 0;
    struct mail_subscriber *sub = NULL;
    int r = mail_sub_get(s->ms, id, &sub);
    if (r <= 0)
        return r;
    int ok = confirm ? newsletter_confirm_ok(s->key, sub->list, id, sub->email, t, timefmt_now())
                     : newsletter_token_ok(s->key, "unsubscribe", sub->list, id, sub->email, t);
    if (!ok) {
        free(sub);
        return 0;
    }
    *out = sub;
    return 1;
}

static enum http_verdict not_ready(const struct subs_http *s, struct http_response *rs)
{
    const struct page_texts *t = texts_for(s->cfg->site.language);
    return page(s, rs, s->cfg->nlists ? 503 : 404, s->cfg->site.language, t->nolist_title,
                t->nolist_text, NULL, NULL, NULL);
}

static enum http_verdict bad_token(const struct subs_http *s, struct http_response *rs,
                                   const char *what)
{
    const struct page_texts *t = texts_for(s->cfg->site.language);
    log_event(LOG_INFO, what, "result=bad_token");
    return page(s, rs, 403, s->cfg->site.language, t->bad_title, t->bad_text, NULL, NULL, NULL);
}

/* --- the confirmation queue ------------------------------------------------------ */

static void cmsg_free(struct cmsg *m)
{
    if (!m)
        return;
    free(m->rcpt);
    free(m->verp);
    buf_free(&m->msg);
    free(m);
}

static void queue_drop(struct subs_http *s, size_t i)
{
    cmsg_free(s->q[i]);
    s->q[i] = s->q[--s->nq];
}

static void pump(struct subs_http *s)
{
    int64_t now = timefmt_now();
    for (size_t i = 0; s->tr && i < s->nq && transport_ready(s->tr); i++) {
        struct cmsg *m = s->q[i];
        if (m->inflight || m->at > now)
            continue;
        if (transport_send(s->tr, m->id, m->verp, m->rcpt, buf_str(&m->msg), m->msg.len) < 0) {
            if (errno != EINVAL)
                break; /* not now: the next tick tries again */
            log_event(LOG_WARN, "confirm_mail", "subscriber=%lld result=refused why=address",
                      (long long)m->subscriber);
            queue_drop(s, i--);
            continue;
        }
        m->inflight = 1;
    }
}

static void on_done(void *arg, uint64_t id, enum transport_outcome outcome, int code,
                    const char *why)
{
    struct subs_http *s = arg;
    size_t i = 0;
    while (i < s->nq && s->q[i]->id != id)
        i++;
    if (i == s->nq)
        return;
    struct cmsg *m = s->q[i];
    m->inflight = 0;
    if (outcome == TRANSPORT_RETRY && ++m->attempts < TRIES_MAX) {
        m->at = timefmt_now() + ((int64_t)RETRY_FIRST_S << (m->attempts - 1));
        log_event(LOG_WARN, "confirm_mail", "subscriber=%lld result=retry code=%d why=%s",
                  (long long)m->subscriber, code, log_quote(why ? why : ""));
        return;
    }
    log_event(outcome == TRANSPORT_SENT ? LOG_INFO : LOG_WARN, "confirm_mail",
              "subscriber=%lld result=%s code=%d", (long long)m->subscriber,
              outcome == TRANSPORT_SENT ? "sent" : "failed", code);
    if (outcome == TRANSPORT_FAILED && code >= 500) { /* a hard bounce (SPEC §8) */
        struct mail_subscriber *sub = NULL;
        if (mail_sub_get(s->ms, m->subscriber, &sub) > 0 && sub->state != MAIL_SUB_ACTIVE)
            mail_sub_set_state_id(s->ms, m->subscriber, MAIL_SUB_BOUNCED, timefmt_now());
        free(sub);
    }
    queue_drop(s, i);
}

/* Makes the confirmation for sub (of list li) and queues it. */
static void queue_confirm(struct subs_http *s, size_t li, const struct mail_subscriber *sub)
{
    if (s->nq == QUEUE_MAX) {
        log_event(LOG_WARN, "confirm_mail", "subscriber=%lld result=dropped why=queue_full",
                  (long long)sub->id);
        return;
    }
    struct cmsg *m = calloc(1, sizeof *m);
    struct buf verp;
    buf_init(&verp, 1024);
    if (m)
        buf_init(&m->msg, 1u << 20);
    struct newsletter_to to = {.id = sub->id, .email = sub->email, .name = sub->name};
    if (!m || confirm_compose(&s->comp, li, &to, timefmt_now(), &m->msg, &verp) < 0 ||
        !(m->rcpt = strdup(sub->email)) || !(m->verp = strdup(buf_str(&verp)))) {
        log_event(LOG_ERROR, "confirm_mail", "subscriber=%lld result=not_made", (long long)sub->id);
        cmsg_free(m);
        buf_free(&verp);
        return;
    }
    buf_free(&verp);
    m->id = ++s->next_id;
    m->subscriber = sub->id;
    s->q[s->nq++] = m;
    pump(s);
}

/* --- routes ---------------------------------------------------------------------- */

static enum http_verdict on_subscribe(const struct http_request *rq, struct http_response *rs,
                                      void *arg)
{
    struct subs_http *s = arg;
    const struct config *cfg = s->cfg;
    const struct page_texts *t = texts_for(cfg->site.language);
    int64_t now = timefmt_now();
    char client[80];
    enum http_verdict v = HTTP_ERROR;
    char *email = NULL, *name = NULL, *list = NULL, *website = NULL;
    struct mail_subscriber *sub = NULL;
    struct buf norm, key;
    buf_init(&norm, 512);
    buf_init(&key, 1024);

    if (!s->ready)
        return not_ready(s, rs);
    client_of(s, rq, client, sizeof client);
    if (!ratelimit_hit(s->per_ip, client, now, IP_MAX, IP_WINDOW)) {
        log_event(LOG_INFO, "subscribe", "client=%s result=rate_limited", log_quote(client));
        if (http_response_header(rs, "Retry-After", "60") < 0)
            return HTTP_ERROR;
        return page(s, rs, 429, cfg->site.language, t->busy_title, t->busy_text, NULL, NULL, NULL);
    }
    const char *ct = http_header(rq, "Content-Type");
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) ||
        (ct[33] && ct[33] != ';' && ct[33] != ' ')) {
        if (http_response_text(rs, 415, "expected an application/x-www-form-urlencoded form") < 0)
            return HTTP_ERROR;
        return HTTP_DONE;
    }
    email = subs_form_get(rq->body, rq->body_len, "email");
    name = subs_form_get(rq->body, rq->body_len, "name");
    list = subs_form_get(rq->body, rq->body_len, "list");
    website = subs_form_get(rq->body, rq->body_len, "website");
    int li = find_list(cfg, list);
    if (li < 0) {
        v = page(s, rs, 404, cfg->site.language, t->nolist_title, t->nolist_text, NULL, NULL, NULL);
        goto done;
    }
    const struct config_list *l = &cfg->lists[li];
    const char *lang = list_lang(cfg, l), *lname = l->name ? l->name : l->id;
    t = texts_for(lang);
    if (website && *website) { /* a bot filled the hidden field: it is told what people are */
        log_event(LOG_INFO, "subscribe", "list=%s client=%s result=honeypot", log_quote(l->id),
                  log_quote(client));
        v = page(s, rs, 200, lang, t->check_title, t->check_text, lname, NULL, NULL);
        goto done;
    }
    if (!email || !mime_address_ok(email, &norm)) {
        v = page(s, rs, 400, lang, t->email_title, t->email_text, NULL, NULL, NULL);
        goto done;
    }
    if (name) { /* one line of valid UTF-8, capped; controls become spaces */
        size_t n = strlen(name);
        if (n > NAME_MAX_BYTES || !utf8_valid(name, n, NULL))
            name[0] = '\0';
        for (char *p = name; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = ' ';
    }
    int r = mail_sub_find(s->ms, l->id, buf_str(&norm), &sub);
    if (r == 0 &&
        mail_sub_add(s->ms, l->id, buf_str(&norm), name, NULL, MAIL_SUB_PENDING, now) >= 0)
        r = mail_sub_find(s->ms, l->id, buf_str(&norm), &sub);
    if (r <= 0) {
        log_event(LOG_ERROR, "subscribe", "list=%s error=%s", log_quote(l->id),
                  log_quote(store_errmsg(s->st)));
        goto done;
    }
    const char *result = "already_active";
    if (sub->state != MAIL_SUB_ACTIVE) {
        for (const char *p = buf_str(&norm); *p; p++)
            if (buf_printf(&key, "%c", tolower((unsigned char)*p)) < 0)
                goto done;
        if (buf_printf(&key, "\n%s", l->id) < 0)
            goto done;
        result = "address_rate_limited";
        if (ratelimit_hit(s->per_addr, buf_str(&key), now, 1, ADDR_WINDOW)) {
            queue_confirm(s, (size_t)li, sub);
            result = "confirmation_queued";
        }
    }
    log_event(LOG_INFO, "subscribe", "list=%s subscriber=%lld state=%s client=%s result=%s",
              log_quote(l->id), (long long)sub->id, mail_sub_state_name(sub->state),
              log_quote(client), result);
    v = page(s, rs, 200, lang, t->check_title, t->check_text, lname, NULL, NULL);
done:
    free(email);
    free(name);
    free(list);
    free(website);
    free(sub);
    buf_free(&norm);
    buf_free(&key);
    return v;
}

/*
 * What /confirm and /unsubscribe share: the subscriber the request's t=
 * names (a confirm token when confirm), their list (NULL when no longer
 * configured) and its language. 1 with *sub (the caller frees it), or 0 with
 * *v the answer already made (403 for a bad token, 503 before the state is
 * ready) or HTTP_ERROR.
 */
static int token_subscriber(struct subs_http *s, const struct http_request *rq,
                            struct http_response *rs, int confirm, struct mail_subscriber **sub,
                            const struct config_list **l, const char **lang, enum http_verdict *v)
{
    if (!s->ready) {
        *v = not_ready(s, rs);
        return 0;
    }
    const char *tok = http_query(rq, "t");
    int r = tok ? token_owner(s, tok, confirm, sub) : 0;
    if (r <= 0) {
        *v = r < 0 ? HTTP_ERROR : bad_token(s, rs, confirm ? "confirm" : "unsubscribe");
        return 0;
    }
    int li = find_list(s->cfg, (*sub)->list);
    *l = li >= 0 ? &s->cfg->lists[li] : NULL;
    *lang = list_lang(s->cfg, *l);
    return 1;
}

static enum http_verdict on_confirm(const struct http_request *rq, struct http_response *rs,
                                    void *arg)
{
    struct subs_http *s = arg;
    struct mail_subscriber *sub = NULL;
    const struct config_list *l;
    const char *lang;
    enum http_verdict v;
    if (!token_subscriber(s, rq, rs, 1, &sub, &l, &lang, &v))
        return v;
    const struct page_texts *t = texts_for(lang);
    v = HTTP_ERROR;
    int was = sub->state;
    if (was == MAIL_SUB_ACTIVE ||
        mail_sub_set_state_id(s->ms, sub->id, MAIL_SUB_ACTIVE, timefmt_now()) > 0) {
        log_event(LOG_INFO, "confirm", "list=%s subscriber=%lld was=%s result=active",
                  log_quote(sub->list), (long long)sub->id, mail_sub_state_name(was));
        v = page(s, rs, 200, lang, t->confirmed_title, t->confirmed_text,
                 l && l->name ? l->name : sub->list, NULL, NULL);
    }
    free(sub);
    return v;
}

static enum http_verdict on_unsubscribe(const struct http_request *rq, struct http_response *rs,
                                        void *arg)
{
    struct subs_http *s = arg;
    struct mail_subscriber *sub = NULL;
    const struct config_list *l;
    const char *lang;
    enum http_verdict v;
    if (!token_subscriber(s, rq, rs, 0, &sub, &l, &lang, &v))
        return v;
    const char *lname = l && l->name ? l->name : sub->list;
    const struct page_texts *t = texts_for(lang);
    v = HTTP_ERROR;
    if (strcmp(rq->method, "POST")) { /* GET, HEAD: the page with the button, nothing changed */
        v = page(s, rs, 200, lang, t->unsub_title, t->unsub_text, sub->email, lname,
                 t->unsub_button);
        free(sub);
        return v;
    }
    /* RFC 8058: the POST itself unsubscribes (its body, List-Unsubscribe=One-
     * Click, is what mail providers send; the token is the authority). A
     * bounced address stays bounced: it is not mailed either way. */
    int was = sub->state;
    if (was == MAIL_SUB_UNSUBSCRIBED || was == MAIL_SUB_BOUNCED ||
        mail_sub_set_state_id(s->ms, sub->id, MAIL_SUB_UNSUBSCRIBED, timefmt_now()) > 0) {
        log_event(LOG_INFO, "unsubscribe", "list=%s subscriber=%lld was=%s one_click=%d",
                  log_quote(sub->list), (long long)sub->id, mail_sub_state_name(was),
                  rq->body_len && strstr(rq->body, "List-Unsubscribe=One-Click") ? 1 : 0);
        v = page(s, rs, 200, lang, t->unsubscribed_title, t->unsubscribed_text, lname, NULL, NULL);
    }
    free(sub);
    return v;
}

/* --- life -------------------------------------------------------------------------- */

static void teardown(struct subs_http *s)
{
    transport_free(s->tr); /* in flight: dropped without a done call, so sent again */
    s->tr = NULL;
    for (size_t i = 0; i < s->nq; i++)
        s->q[i]->inflight = 0;
    if (s->comp_ready)
        composer_free(&s->comp);
    s->comp_ready = 0;
    dkim_free(s->dkim);
    s->dkim = NULL;
    s->ready = 0;
}

int subs_http_config(struct subs_http *s, const struct config *cfg, struct diag *err)
{
    teardown(s);
    s->cfg = cfg;
    if (!cfg->nlists)
        return 0;
    if (newsletter_secret(cfg, s->key, err) < 0)
        return -1;
    if (composer_init(&s->comp, cfg, NULL, s->key) < 0) {
        diag_set(err, 0, 0, "out of memory");
        return -1;
    }
    s->comp_ready = 1;
    if (cfg->mail.dkim.domain) {
        if (!(s->dkim = dkim_load(cfg->mail.dkim.domain, cfg->mail.dkim.selector,
                                  cfg->mail.dkim.key_file, err)))
            return -1;
        s->comp.dkim = s->dkim;
    }
    if (!(s->tr = transport_new(cfg, s->loop, on_done, s))) {
        diag_set(err, 0, 0, "the mail transport could not start");
        return -1;
    }
    s->ready = 1;
    return 0;
}

struct subs_http *subs_http_start(const struct config *cfg, struct store *st, struct loop *loop,
                                  struct http_server *srv, struct diag *err)
{
    struct subs_http *s = calloc(1, sizeof *s);
    if (!s || !(s->per_ip = ratelimit_new(RL_SLOTS)) || !(s->per_addr = ratelimit_new(RL_SLOTS))) {
        diag_set(err, 0, 0, "out of memory");
        goto fail;
    }
    s->loop = loop;
    s->cfg = cfg;
    s->st = st;
    if (!(s->ms = mail_store_new(st))) {
        diag_set(err, 0, 0, "newsletter tables: %s", store_errmsg(st));
        goto fail;
    }
    if (subs_http_config(s, cfg, err) < 0)
        goto fail;
    if (http_route_capped(srv, "POST", "/subscribe", FORM_MAX, on_subscribe, s) < 0 ||
        http_route_capped(srv, "GET", "/confirm", 0, on_confirm, s) < 0 ||
        http_route_capped(srv, "GET", "/unsubscribe", 0, on_unsubscribe, s) < 0 ||
        http_route_capped(srv, "POST", "/unsubscribe", FORM_MAX, on_unsubscribe, s) < 0) {
        diag_set(err, 0, 0, "out of memory");
        goto fail;
    }
    return s;
fail:
    subs_http_free(s);
    return NULL;
}

int64_t subs_http_tick(struct subs_http *s, int64_t now_ms)
{
    (void)now_ms;
    if (!s || !s->tr)
        return -1;
    pump(s);
    int64_t wait = transport_tick(s->tr);
    pump(s); /* outcomes free slots */
    int64_t now = timefmt_now();
    for (size_t i = 0; i < s->nq; i++) {
        const struct cmsg *m = s->q[i];
        if (m->inflight)
            continue;
        int64_t w = m->at > now ? (m->at - now) * 1000 : 1000; /* due: the transport was busy */
        if (wait < 0 || w < wait)
            wait = w;
    }
    return wait;
}

void subs_http_free(struct subs_http *s)
{
    if (!s)
        return;
    teardown(s);
    for (size_t i = 0; i < s->nq; i++)
        cmsg_free(s->q[i]);
    mail_store_free(s->ms);
    ratelimit_free(s->per_ip);
    ratelimit_free(s->per_addr);
    free(s);
}
