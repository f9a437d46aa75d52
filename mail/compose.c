/*
 * compose: a whole newsletter message (see compose.h). The pieces: the
 * template (mail/newsletter), the text part made from the HTML
 * (mail/html2text), the headers and MIME (mail/mime).
 */
#include "compose.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/timefmt.h"
#include "dkim.h"
#include "html2text.h"
#include "mime.h"

#define PART_MAX (32u << 20) /* one rendered part */

int composer_init(struct composer *c, const struct config *cfg, const struct newsletter *nl,
                  const unsigned char key[32])
{
    const char *from = cfg->mail.from ? cfg->mail.from : "news@localhost";
    const char *lt = strrchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->nl = nl;
    memcpy(c->key, key, 32);
    if (lt && gt) { /* Name <addr> */
        const char *b = from, *e = lt;
        while (b < e && (*b == ' ' || *b == '"'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '"'))
            e--;
        c->from_name = strndup(b, (size_t)(e - b));
        c->from_addr = strndup(lt + 1, (size_t)(gt - lt - 1));
    } else {
        c->from_name = strdup("");
        c->from_addr = strdup(from);
    }
    const char *at = c->from_addr ? strrchr(c->from_addr, '@') : NULL;
    c->domain = strdup(at ? at + 1 : "localhost");
    if (!c->from_name || !c->from_addr || !c->domain) {
        composer_free(c);
        return -1;
    }
    return 0;
}

void composer_free(struct composer *c)
{
    free(c->from_name);
    free(c->from_addr);
    free(c->domain);
    memset(c, 0, sizeof *c);
}

int compose(const struct composer *c, size_t li, struct post *const *posts, size_t nposts,
            int digest, const struct newsletter_to *to, int64_t issue, struct buf *msg,
            struct buf *verp, struct buf *html_out)
{
    const struct config_list *l = &c->cfg->lists[li];
    struct buf subject, html, text, list_id, unsub, mid, mailto;
    char token[96];
    buf_init(&subject, 8192);
    buf_init(&html, PART_MAX);
    buf_init(&text, PART_MAX);
    buf_init(&list_id, 8192);
    buf_init(&unsub, 8192);
    buf_init(&mid, 8192);
    buf_init(&mailto, 8192);
    newsletter_token(c->key, "unsubscribe", l->id, to->id, to->email, token);
    int rc = newsletter_render(c->nl, li, posts, nposts, digest, to, &subject, &html);
    if (rc == 0)
        rc = html_to_text(buf_str(&html), html.len, &text);
    if (rc == 0)
        rc = buf_printf(&list_id, "%s.%s", l->id, c->domain);
    if (rc == 0)
        rc = buf_printf(&unsub, "%s/unsubscribe?t=%s", c->cfg->site.url, token);
    if (rc == 0)
        rc = buf_printf(&mailto, "mailto:%s?subject=unsubscribe%%20%s", c->from_addr, token);
    /* One Message-ID a delivery: a resend after a crash carries the same
     * one, so a receiver can drop the copy. A test send (issue 0) gets a
     * fresh one. Short enough for one line of 76 (mail/mime.h). */
    if (rc == 0)
        rc = issue
                 ? buf_printf(&mid, "%lld.%lld@%s", (long long)issue, (long long)to->id, c->domain)
                 : buf_printf(&mid, "test.%lld.%ld@%s", (long long)timefmt_now(), (long)getpid(),
                              c->domain);
    if (rc == 0) { /* bounces+ISSUE.SUBSCRIBER.MAC: mail/bounces reads it back */
        char local[96];
        newsletter_verp_local(c->key, issue, to->id, local);
        rc = buf_printf(verp, "%s@%s", local, c->domain);
    }
    if (rc == 0) {
        struct mime_message m = {
            .from = {.name = c->from_name, .email = c->from_addr},
            .to = {.name = to->name, .email = to->email},
            .subject = buf_str(&subject),
            .date = timefmt_now(),
            .message_id = buf_str(&mid),
            .list_id = buf_str(&list_id),
            .list_name = l->name ? l->name : l->id,
            .unsub_https = buf_str(&unsub),
            .unsub_mailto = buf_str(&mailto),
            .html = buf_str(&html),
            .html_len = html.len,
            .text = buf_str(&text),
            .text_len = text.len,
        };
        rc = mime_build(&m, msg);
        if (rc == 0 && c->dkim)
            rc = dkim_sign(c->dkim, m.date, msg);
    }
    if (rc == 0 && html_out)
        rc = buf_append(html_out, buf_str(&html), html.len);
    buf_free(&subject);
    buf_free(&html);
    buf_free(&text);
    buf_free(&list_id);
    buf_free(&unsub);
    buf_free(&mid);
    buf_free(&mailto);
    return rc;
}
