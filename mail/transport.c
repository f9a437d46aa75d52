/*
 * transport: the one door to the mail system (transport.h). Picks the kind
 * that mail.transport names, checks what every kind needs checked (the
 * envelope addresses), and hands each call to transport_maildir.c or
 * transport_smtp.c.
 */
#include "transport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "transport_int.h"

#define ADDR_MAX 320 /* RFC 5321 4.5.3.1: 64-octet local part, '@', 255-octet domain */

struct transport {
    enum mail_transport kind;
    struct tr_maildir *md; /* kind MAIL_MAILDIR */
    struct tr_smtp *smtp;  /* kind MAIL_SMTP */
};

int transport_addr_ok(const char *addr, int empty_ok)
{
    size_t n = strlen(addr);
    if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>') {
        addr++;
        n -= 2;
    }
    if (n == 0)
        return empty_ok;
    if (n > ADDR_MAX)
        return 0;
    /*
     * curl writes the address as it is into "MAIL FROM:<...>" and
     * "RCPT TO:<...>": a CR or LF in a subscriber's address would let it add
     * SMTP commands of its own (another RCPT TO, a second message), a space
     * or bracket would let it add parameters. Addresses with any of them are
     * refused here, whatever the caller checked before.
     */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)addr[i];
        if (c <= ' ' || c == 0x7f || c == '<' || c == '>')
            return 0;
    }
    return 1;
}

struct transport *transport_new(const struct config *cfg, struct loop *loop, transport_done_fn done,
                                void *arg)
{
    struct transport *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->kind = cfg->mail.transport;
    switch (t->kind) {
    case MAIL_MAILDIR:
        t->md = tr_maildir_new(cfg->mail.maildir_path, done, arg);
        if (t->md)
            return t;
        break;
    case MAIL_SMTP:
        t->smtp = tr_smtp_new(cfg, loop, done, arg);
        if (t->smtp)
            return t;
        break;
    default:
        errno = EINVAL;
        break;
    }
    free(t);
    return NULL;
}

void transport_free(struct transport *t)
{
    if (!t)
        return;
    tr_maildir_free(t->md);
    tr_smtp_free(t->smtp);
    free(t);
}

int transport_ready(struct transport *t)
{
    return t->md ? tr_maildir_ready(t->md) : tr_smtp_ready(t->smtp);
}

int transport_send(struct transport *t, uint64_t id, const char *env_from, const char *rcpt,
                   const char *data, size_t len)
{
    if (!transport_addr_ok(env_from, 1) || !transport_addr_ok(rcpt, 0)) {
        errno = EINVAL;
        return -1;
    }
    if (t->md)
        return tr_maildir_send(t->md, id, data, len);
    return tr_smtp_send(t->smtp, id, env_from, rcpt, data, len);
}

size_t transport_inflight(const struct transport *t)
{
    return t->md ? tr_maildir_inflight(t->md) : tr_smtp_inflight(t->smtp);
}

int64_t transport_tick(struct transport *t)
{
    return t->md ? tr_maildir_tick(t->md) : tr_smtp_tick(t->smtp);
}

int transport_wait(struct transport *t, int64_t timeout_ms)
{
    return t->md ? tr_maildir_wait(t->md, timeout_ms) : tr_smtp_wait(t->smtp, timeout_ms);
}
