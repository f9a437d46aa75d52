/*
 * fuzz_mime: the parts of a newsletter that come from outside (subscriber
 * names and addresses from a CSV import or the subscribe form, subjects and
 * bodies from posts) through mail/mime: mime_address_ok(), the RFC 2047
 * writer mime_header_text(), and a whole mime_build(). The input's first
 * lines are from name, from address, to name, to address, subject and list
 * name; the rest is the HTML part, and the text part is the same bytes.
 * The built message must not grow a header from any of them.
 */
#include "../../mail/mime.h"
#include "fuzz.h"

#define NFIELDS 6

static int nheaders; /* of a plain message: every message has as many */

/* Header fields of a message (continuation lines are not fields); -1 if
 * there is no empty line after them. */
static int count_headers(const struct buf *b)
{
    const char *body = strstr(buf_str(b), "\r\n\r\n");
    int n = 1;
    if (!body)
        return -1;
    for (const char *q = b->data; q < body; q++)
        if (q[0] == '\r' && q[1] == '\n' && q[2] != ' ' && q[2] != '\t')
            n++;
    return n;
}

static const struct mime_message plain = {
    .from = {"News", "news@news.example.org"},
    .to = {"Reader", "reader@example.com"},
    .subject = "Hello",
    .date = 1700000000,
    .message_id = "1.abc@news.example.org",
    .list_id = "weekly.news.example.org",
    .list_name = "Weekly",
    .unsub_https = "https://news.example.org/u/x",
    .unsub_mailto = "mailto:u@news.example.org",
    .html = "<p>x</p>",
    .html_len = 8,
    .text = "x",
    .text_len = 1,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    struct buf b;
    buf_init(&b, 1 << 20);
    if (mime_build(&plain, &b) < 0 || (nheaders = count_headers(&b)) < 5)
        abort();
    buf_free(&b);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size), *f[NFIELDS], *p = s, *end = s + size;
    struct buf out;
    buf_init(&out, 1 << 20);

    (void)mime_address_ok(s, &out);
    buf_reset(&out);
    (void)mime_header_text(&out, s);
    if (strpbrk(buf_str(&out), "\r\n"))
        abort(); /* an unstructured value is one line */
    buf_reset(&out);

    for (int i = 0; i < NFIELDS; i++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        f[i] = p;
        if (nl) {
            *nl = '\0';
            p = nl + 1;
        } else {
            p = end;
        }
    }
    struct mime_message m = plain;
    m.from = (struct mime_addr){f[0], f[1]};
    m.to = (struct mime_addr){f[2], f[3]};
    m.subject = f[4];
    m.list_name = f[5];
    m.html = m.text = p;
    m.html_len = m.text_len = (size_t)(end - p);
    if (mime_build(&m, &out) == 0) {
        if (count_headers(&out) != nheaders)
            abort(); /* no outside text adds (or hides) a header */
    } else if (out.len) {
        abort();
    }
    buf_free(&out);
    free(s);
    return 0;
}
