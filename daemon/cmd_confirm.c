/*
 * cmd_confirm: the confirmation mails of `nashra subscribers add|import
 * --pending` (SPEC §2: the operator does not vouch for these addresses, so
 * each gets the double opt-in mail the web form sends, mail/confirm),
 * through the configured transport, waited for, with a count at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/diag.h"
#include "../lib/log.h"
#include "../lib/timefmt.h"
#include "../mail/compose.h"
#include "../mail/confirm.h"
#include "../mail/dkim.h"
#include "../mail/newsletter.h"
#include "../mail/transport.h"
#include "../store/mail_store.h"
#include "cmd.h"

#define CONFIRM_WAIT_MS (120 * 1000) /* for the messages in flight at once */

struct pending {
    int64_t *id;
    size_t n, alloc;
    int64_t after; /* ids are never reused: the new ones are above it */
};

static int collect(void *arg, const struct mail_subscriber *s)
{
    struct pending *p = arg;
    if (s->id <= p->after)
        return 0;
    if (p->n == p->alloc) {
        size_t na = p->alloc ? p->alloc * 2 : 64;
        int64_t *v = realloc(p->id, na * sizeof *v);
        if (!v)
            return -1;
        p->id = v;
        p->alloc = na;
    }
    p->id[p->n++] = s->id;
    return 0;
}

struct outcome {
    unsigned long sent, refused, later;
};

static void on_done(void *arg, uint64_t id, enum transport_outcome outcome, int code,
                    const char *why)
{
    struct outcome *o = arg;
    if (outcome == TRANSPORT_SENT)
        o->sent++;
    else if (outcome == TRANSPORT_RETRY)
        o->later++;
    else
        o->refused++;
    if (outcome != TRANSPORT_SENT)
        log_event(LOG_WARN, "confirm_mail", "subscriber=%llu code=%d why=%s",
                  (unsigned long long)id, code, log_quote(why ? why : ""));
}

static int highest(void *arg, const struct mail_subscriber *s)
{
    int64_t *max = arg;
    if (s->id > *max)
        *max = s->id;
    return 0;
}

int64_t cmd_confirm_mark(struct mail_store *ms, const char *list)
{
    int64_t max = 0;
    return mail_sub_each(ms, list, MAIL_SUB_ANY, highest, &max) == 0 ? max : -1;
}

int cmd_confirm_pending(const struct config *cfg, struct mail_store *ms, const char *list,
                        int64_t after, int quiet)
{
    struct pending p = {.after = after};
    struct outcome o = {0};
    struct diag d = {0};
    char *file = NULL;
    unsigned char key[32];
    struct newsletter *nl = NULL;
    struct composer comp;
    int comp_ready = 0, rc = 1;
    struct dkim *dkim = NULL;
    struct transport *tr = NULL;
    size_t li = 0;

    while (li < cfg->nlists && strcmp(cfg->lists[li].id, list))
        li++;
    if (li == cfg->nlists)
        return 2;
    if (mail_sub_each(ms, list, MAIL_SUB_PENDING, collect, &p) != 0) {
        fprintf(stderr, "nashra subscribers: the pending addresses could not be read\n");
        goto out;
    }
    if (!p.n) {
        rc = 0;
        goto out;
    }
    if (!(nl = newsletter_load(cfg, &d, &file))) {
        diag_print(stderr, file ? file : cfg->path, &d);
        rc = 2;
        goto out;
    }
    if (newsletter_secret(cfg, key, &d) < 0) {
        diag_print(stderr, cfg->mail.secret_file, &d);
        goto out;
    }
    newsletter_use_key(nl, key);
    if (composer_init(&comp, cfg, nl, key) < 0)
        goto out;
    comp_ready = 1;
    if (cfg->mail.dkim.domain) {
        if (!(dkim = dkim_load(cfg->mail.dkim.domain, cfg->mail.dkim.selector,
                               cfg->mail.dkim.key_file, &d))) {
            diag_print(stderr, cfg->path, &d);
            goto out;
        }
        comp.dkim = dkim;
    }
    if (!(tr = transport_new(cfg, NULL, on_done, &o))) {
        fprintf(stderr, "nashra subscribers: the mail transport could not start\n");
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i < p.n && rc == 0; i++) {
        struct mail_subscriber *s = NULL;
        if (mail_sub_get(ms, p.id[i], &s) <= 0 || s->state != MAIL_SUB_PENDING) {
            free(s);
            continue;
        }
        struct newsletter_to to = {
            .id = s->id, .email = s->email, .name = s->name, .extra = s->extra};
        struct buf msg, verp;
        buf_init(&msg, 32u << 20);
        buf_init(&verp, 1024);
        if (!transport_ready(tr) && transport_wait(tr, CONFIRM_WAIT_MS) < 0)
            rc = 1;
        else if (confirm_compose(&comp, li, &to, timefmt_now(), &msg, &verp) < 0)
            o.refused++;
        else if (transport_send(tr, (uint64_t)s->id, buf_str(&verp), s->email, buf_str(&msg),
                                msg.len) < 0)
            rc = 1;
        buf_free(&msg);
        buf_free(&verp);
        free(s);
    }
    if (transport_wait(tr, CONFIRM_WAIT_MS) < 0)
        rc = 1;
    if (!quiet)
        printf("confirmation mails: %lu sent, %lu not sent (4xx or network: the address "
               "stays pending, it can subscribe on the web), %lu refused\n",
               o.sent, o.later, o.refused);
    if (o.later || o.refused)
        rc = 1;
out:
    transport_free(tr);
    dkim_free(dkim);
    if (comp_ready)
        composer_free(&comp);
    newsletter_free(nl);
    free(file);
    free(p.id);
    return rc;
}
