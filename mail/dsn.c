/*
 * dsn: Delivery Status Notifications (RFC 3464, RFC 3463 status codes,
 * RFC 6522 multipart/report), see dsn.h. libetpan finds the MIME structure
 * and undoes transfer encodings; the delivery-status body (blocks of
 * header-like fields: one per message, then one per recipient, separated by
 * blank lines) is read here, line by line, with folded lines joined.
 */
#include "dsn.h"

#include <libetpan/libetpan.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 8 /* MIME nesting followed */

static void copy_cut(char *dst, size_t cap, const char *s, size_t n)
{
    size_t k = 0, i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    for (; i < n && k + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[k++] = c < 0x20 || c == 0x7f ? ' ' : (char)c; /* no controls, NULs included */
    }
    while (k > 0 && dst[k - 1] == ' ')
        k--;
    dst[k] = '\0';
}

static void add_addr(struct dsn *d, const char *s, size_t n)
{
    if (d->naddrs < DSN_MAX_ADDRS && n > 0)
        copy_cut(d->addrs[d->naddrs++], DSN_ADDR_MAX, s, n);
}

/* ---- the MIME structure ----------------------------------------------------- */

static int type_is(const struct mailmime_content *c, const char *type, const char *sub)
{
    const char *t = NULL;
    if (!c || !c->ct_type || !c->ct_subtype || strcasecmp(c->ct_subtype, sub))
        return 0;
    if (c->ct_type->tp_type == MAILMIME_TYPE_COMPOSITE_TYPE) {
        const struct mailmime_composite_type *ct = c->ct_type->tp_data.tp_composite_type;
        t = !ct                                                ? NULL
            : ct->ct_type == MAILMIME_COMPOSITE_TYPE_MESSAGE   ? "message"
            : ct->ct_type == MAILMIME_COMPOSITE_TYPE_MULTIPART ? "multipart"
                                                               : ct->ct_token;
    } else if (c->ct_type->tp_type == MAILMIME_TYPE_DISCRETE_TYPE) {
        const struct mailmime_discrete_type *dt = c->ct_type->tp_data.tp_discrete_type;
        t = !dt                                                 ? NULL
            : dt->dt_type == MAILMIME_DISCRETE_TYPE_TEXT        ? "text"
            : dt->dt_type == MAILMIME_DISCRETE_TYPE_APPLICATION ? "application"
            : dt->dt_type == MAILMIME_DISCRETE_TYPE_EXTENSION   ? dt->dt_extension
                                                                : NULL;
    }
    return t && !strcasecmp(t, type);
}

static const char *param(const struct mailmime_content *c, const char *name)
{
    if (!c || !c->ct_parameters)
        return NULL;
    for (clistiter *it = clist_begin(c->ct_parameters); it; it = clist_next(it)) {
        const struct mailmime_parameter *p = clist_content(it);
        if (p && p->pa_name && p->pa_value && !strcasecmp(p->pa_name, name))
            return p->pa_value;
    }
    return NULL;
}

/* ---- the delivery-status body ----------------------------------------------- */

/* The status code alone ("5.1.1" of "5.1.1 (user unknown)"): class 2, 4 or
 * 5, then 1-3 digits, then 1-3 digits (RFC 3463). "" if malformed. */
static void status_code(char *dst, size_t cap, const char *v)
{
    size_t i = 0, n[3] = {0};
    dst[0] = '\0';
    while (*v == ' ' || *v == '\t')
        v++;
    if (v[0] != '2' && v[0] != '4' && v[0] != '5')
        return;
    for (int part = 0; part < 3; part++) {
        if (part) {
            if (v[i] != '.')
                return;
            i++;
        }
        while (v[i] >= '0' && v[i] <= '9' && n[part] < 4)
            i++, n[part]++;
        if (n[part] == 0 || n[part] > 3 || (part == 0 && n[part] != 1))
            return;
    }
    if ((v[i] && v[i] != ' ' && v[i] != '\t' && v[i] != '(') || i + 1 > cap)
        return;
    memcpy(dst, v, i);
    dst[i] = '\0';
}

/* One field of block number blk (0: the per-message block). */
static void on_field(struct dsn *d, size_t blk, const char *name, size_t nlen, const char *val,
                     size_t vlen)
{
    char v[DSN_ADDR_MAX];
    copy_cut(v, sizeof v, val, vlen);
    if (blk == 0) {
        if (nlen == 16 && !strncasecmp(name, "X-Postfix-Sender", 16))
            add_addr(d, v, strlen(v));
        return;
    }
    if (blk > DSN_MAX_RCPT)
        return;
    if (d->nrcpt < blk)
        d->nrcpt = blk;
    struct dsn_rcpt *r = &d->rcpt[blk - 1];
    if (nlen == 6 && !strncasecmp(name, "Action", 6)) {
        const char *p = v;
        while (*p == ' ')
            p++;
        size_t k = 0;
        for (; p[k] && p[k] != ' ' && p[k] != '(' && k + 1 < sizeof r->action; k++)
            r->action[k] = (char)(p[k] >= 'A' && p[k] <= 'Z' ? p[k] + 32 : p[k]);
        r->action[k] = '\0';
    } else if (nlen == 6 && !strncasecmp(name, "Status", 6)) {
        status_code(r->status, sizeof r->status, v);
    } else if (nlen == 15 && !strncasecmp(name, "Final-Recipient", 15)) {
        snprintf(r->recipient, sizeof r->recipient, "%s", v);
    }
}

/* Reads the fields of s[0..n): blocks separated by blank lines, folded lines
 * (starting with a space or tab) joined to the field before. */
static void read_status(struct dsn *d, const char *s, size_t n)
{
    size_t blk = 0, nlen = 0, jlen = 0;
    int in_block = 0, have = 0;
    const char *name = NULL;
    char joined[DSN_ADDR_MAX];

    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && s[e] != '\n')
            e++;
        size_t le = e > i && s[e - 1] == '\r' ? e - 1 : e;
        int blank = le == i, fold = !blank && (s[i] == ' ' || s[i] == '\t');
        if (fold) {
            if (have && jlen + 1 + (le - i) < sizeof joined) {
                joined[jlen++] = ' ';
                memcpy(joined + jlen, s + i, le - i);
                jlen += le - i;
            }
        } else {
            if (have)
                on_field(d, blk, name, nlen, joined, jlen);
            have = 0;
            if (blank) {
                blk += in_block;
                in_block = 0;
            } else {
                const char *colon = memchr(s + i, ':', le - i);
                in_block = 1;
                if (colon) {
                    have = 1;
                    name = s + i;
                    nlen = (size_t)(colon - name);
                    jlen = le - (size_t)(colon + 1 - s);
                    if (jlen >= sizeof joined)
                        jlen = sizeof joined - 1;
                    memcpy(joined, colon + 1, jlen);
                }
            }
        }
        i = e + 1;
    }
    if (have)
        on_field(d, blk, name, nlen, joined, jlen);
}

/* ---- the whole message ------------------------------------------------------ */

static void read_headers(struct dsn *d, const struct mailimf_fields *f)
{
    static const char *const names[] = {"Delivered-To", "X-Original-To"};
    if (!f || !f->fld_list)
        return;
    for (size_t k = 0; k < 2; k++)
        for (clistiter *it = clist_begin(f->fld_list); it; it = clist_next(it)) {
            const struct mailimf_field *fld = clist_content(it);
            const struct mailimf_optional_field *o = fld->fld_data.fld_optional_field;
            if (fld->fld_type == MAILIMF_FIELD_OPTIONAL_FIELD && o && o->fld_name && o->fld_value &&
                !strcasecmp(o->fld_name, names[k]))
                add_addr(d, o->fld_value, strlen(o->fld_value));
        }
    for (clistiter *it = clist_begin(f->fld_list); it; it = clist_next(it)) {
        const struct mailimf_field *fld = clist_content(it);
        if (fld->fld_type != MAILIMF_FIELD_TO || !fld->fld_data.fld_to ||
            !fld->fld_data.fld_to->to_addr_list)
            continue;
        clist *al = fld->fld_data.fld_to->to_addr_list->ad_list;
        for (clistiter *a = al ? clist_begin(al) : NULL; a; a = clist_next(a)) {
            const struct mailimf_address *ad = clist_content(a);
            if (ad->ad_type == MAILIMF_ADDRESS_MAILBOX && ad->ad_data.ad_mailbox &&
                ad->ad_data.ad_mailbox->mb_addr_spec)
                add_addr(d, ad->ad_data.ad_mailbox->mb_addr_spec,
                         strlen(ad->ad_data.ad_mailbox->mb_addr_spec));
        }
    }
}

/* The delivery-status part of a multipart/report, decoded. */
static void read_part(struct dsn *d, const struct mailmime *m)
{
    const struct mailmime_data *b = m->mm_data.mm_single;
    char *dec = NULL;
    size_t idx = 0, dlen = 0;
    if (!b || b->dt_type != MAILMIME_DATA_TEXT || !b->dt_data.dt_text.dt_data)
        return;
    if (mailmime_part_parse(b->dt_data.dt_text.dt_data, b->dt_data.dt_text.dt_length, &idx,
                            b->dt_encoding, &dec, &dlen) != MAILIMF_NO_ERROR)
        return;
    d->is_dsn = 1;
    read_status(d, dec, dlen);
    mmap_string_unref(dec);
}

static void walk(struct dsn *d, const struct mailmime *m, int depth, int in_report)
{
    if (!m || depth > MAX_DEPTH || d->is_dsn)
        return;
    if (m->mm_type == MAILMIME_SINGLE) {
        if (in_report && (type_is(m->mm_content_type, "message", "delivery-status") ||
                          type_is(m->mm_content_type, "message", "global-delivery-status")))
            read_part(d, m);
        return;
    }
    if (m->mm_type != MAILMIME_MULTIPLE) /* a message inside: the returned original */
        return;
    const char *rt = param(m->mm_content_type, "report-type");
    int report = type_is(m->mm_content_type, "multipart", "report") && rt &&
                 (!strcasecmp(rt, "delivery-status") || !strcasecmp(rt, "global-delivery-status"));
    clist *parts = m->mm_data.mm_multipart.mm_mp_list;
    for (clistiter *it = parts ? clist_begin(parts) : NULL; it; it = clist_next(it))
        walk(d, clist_content(it), depth + 1, report);
}

int dsn_parse(const char *buf, size_t len, struct dsn *out)
{
    struct mailmime *m = NULL;
    size_t idx = 0;
    memset(out, 0, sizeof *out);
    if (!buf || mailmime_parse(buf, len, &idx, &m) != MAILIMF_NO_ERROR || !m)
        return -1;
    if (m->mm_type == MAILMIME_MESSAGE) {
        read_headers(out, m->mm_data.mm_message.mm_fields);
        walk(out, m->mm_data.mm_message.mm_msg_mime, 0, 0);
    }
    mailmime_free(m);
    if (!out->is_dsn) { /* only a DSN says anything: keep nothing else */
        out->nrcpt = 0;
        memset(out->rcpt, 0, sizeof out->rcpt);
    }
    return 0;
}

enum dsn_verdict dsn_verdict(const struct dsn *d)
{
    enum dsn_verdict worst = DSN_NONE;
    if (!d->is_dsn)
        return DSN_NONE;
    for (size_t i = 0; i < d->nrcpt; i++) {
        const struct dsn_rcpt *r = &d->rcpt[i];
        char cls = r->status[0];
        int failed = !strcmp(r->action, "failed") || r->action[0] == '\0';
        enum dsn_verdict v = DSN_NONE;
        if (cls == '5' && failed)
            v = DSN_HARD;
        else if (cls == '4' && failed)
            v = DSN_SOFT;
        if (v > worst)
            worst = v;
    }
    return worst;
}
