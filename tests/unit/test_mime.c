/*
 * test_mime: newsletter messages (SPEC §8) built by mail/mime.c, read back
 * with libetpan's parsers (mailmime_parse, mailmime_part_parse,
 * mailmime_encoded_phrase_parse) and by hand: every header present once, the
 * multipart/alternative structure, bodies that decode to what went in,
 * base64 for Arabic and quoted-printable for English, lines of at most 76
 * characters ending in CRLF, RFC 2047 words that round-trip and never split a
 * character, CR/LF injection attempts that add no header, address checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libetpan/libetpan.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../lib/text.h"
#include "../../mail/mime.h"

#define AR_TITLE "عنوان المقال: مرحبا بكم في النشرة الأسبوعية للمدونة"
#define AR_BODY                                                                                                                  \
    "<p dir=\"rtl\">هذا نص عربي طويل بعض الشيء، نكتبه لنرى كيف تُرمَّز الرسالة " \
    "بالعربية: كل حرف فيها بايتان.</p>\n<p>فقرة ثانية قصيرة.</p>\n"
#define AR_TEXT "هذا نص عربي طويل بعض الشيء، نكتبه لنرى كيف تُرمَّز الرسالة\nبالعربية.\n"
#define EN_HTML                                                                                    \
    "<html><body><p>Hello, this is the weekly letter.</p>\n<p>From the desk of the editor: "       \
    "a line that is certainly longer than seventy-six characters, to see soft breaks.</p>"         \
    "\n</body></html>\n"
#define EN_TEXT                                                                                    \
    "Hello, this is the weekly letter.\n\nFrom the desk of the editor: a line that is "            \
    "certainly longer than seventy-six characters, to see soft breaks.\n"

/* ---- helpers -------------------------------------------------------------- */

static struct mime_message sample(const char *subject, const char *html, const char *text)
{
    struct mime_message m = {
        .from = {"نشرة المدونة", "news@example.com"},
        .to = {"Ali Hassan", "ali@example.org"},
        .subject = subject,
        .date = 1712991600, /* Sat, 13 Apr 2024 07:00:00 +0000 */
        .message_id = "20240413.42.7f3a@example.com",
        .list_id = "weekly.example.com",
        .list_name = "النشرة الأسبوعية",
        .unsub_https = "https://example.com/u/7f3a9c",
        .unsub_mailto = "mailto:unsubscribe+7f3a9c@example.com",
        .html = html,
        .html_len = strlen(html),
        .text = text,
        .text_len = strlen(text),
    };
    return m;
}

/* Builds m into a fresh buffer (asserting success). */
static void build(const struct mime_message *m, struct buf *out)
{
    buf_init(out, 1 << 20);
    assert_int_equal(mime_build(m, out), 0);
    assert_true(out->len > 0);
}

/* Every line ends in CRLF (no bare CR or LF), none is longer than 76 or ends
 * in white space (which transports may strip, and QP decoders must), the whole
 * message ends with CRLF, and it is all ASCII. */
static void check_lines(const struct buf *b)
{
    const char *s = buf_str(b);
    size_t col = 0;

    assert_true(b->len >= 2);
    assert_memory_equal(s + b->len - 2, "\r\n", 2);
    for (size_t i = 0; i < b->len; i++) {
        unsigned char c = (unsigned char)s[i];
        assert_true(c < 0x80 && c != '\0');
        if (c == '\r') {
            assert_true(i + 1 < b->len && s[i + 1] == '\n');
            if (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
                fail_msg("line ends in white space at offset %zu", i);
            i++;
            col = 0;
            continue;
        }
        assert_true(c != '\n');
        col++;
        if (col > 76)
            fail_msg("line longer than 76 at offset %zu", i);
    }
}

/* The header block, unfolded: one "Name: value" per line, in order. */
struct hdrs {
    size_t n;
    char name[32][64];
    char value[32][2048];
};

static void parse_headers(const struct buf *b, struct hdrs *h)
{
    const char *s = buf_str(b), *end = strstr(s, "\r\n\r\n");

    assert_non_null(end);
    memset(h, 0, sizeof(*h));
    for (const char *p = s; p < end + 2;) {
        const char *eol = strstr(p, "\r\n");
        size_t n = (size_t)(eol - p);
        if (*p == ' ' || *p == '\t') { /* continuation: append, unfolded */
            assert_true(h->n > 0);
            char *v = h->value[h->n - 1];
            assert_true(strlen(v) + n < sizeof(h->value[0]));
            strncat(v, p, n);
        } else {
            const char *colon = memchr(p, ':', n);
            assert_non_null(colon);
            assert_true(h->n < 32);
            snprintf(h->name[h->n], sizeof(h->name[0]), "%.*s", (int)(colon - p), p);
            const char *v = colon + 1;
            while (*v == ' ')
                v++;
            snprintf(h->value[h->n], sizeof(h->value[0]), "%.*s", (int)(eol - v), v);
            h->n++;
        }
        p = eol + 2;
    }
}

/* The value of the one header called name (asserting there is exactly one). */
static const char *header(const struct hdrs *h, const char *name)
{
    const char *found = NULL;

    for (size_t i = 0; i < h->n; i++) {
        if (strcasecmp(h->name[i], name) == 0) {
            if (found)
                fail_msg("header %s twice", name);
            found = h->value[i];
        }
    }
    if (!found)
        fail_msg("header %s missing", name);
    return found;
}

/* Decodes an RFC 2047 phrase or text with libetpan; the caller frees. */
static char *decode_2047(const char *v)
{
    size_t idx = 0;
    char *out = NULL;

    assert_int_equal(mailmime_encoded_phrase_parse("utf-8", v, strlen(v), &idx, "utf-8", &out),
                     MAILIMF_NO_ERROR);
    assert_non_null(out);
    return out;
}

static int hexval(char c)
{
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - '0';
}

/* Decodes one encoded-word by hand into out (NUL-terminated); its length. */
static size_t decode_word(const char *w, size_t n, char *out)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;

    assert_true(n > 12);
    assert_true(strncasecmp(w, "=?UTF-8?", 8) == 0);
    assert_memory_equal(w + n - 2, "?=", 2);
    const char *p = w + 10, *e = w + n - 2;
    if (w[8] == 'B' || w[8] == 'b') {
        unsigned acc = 0;
        int bits = 0;
        for (; p < e && *p != '='; p++) {
            const char *d = strchr(digits, *p);
            assert_non_null(d);
            acc = (acc << 6) | (unsigned)(d - digits);
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                out[o++] = (char)((acc >> bits) & 0xff);
            }
        }
    } else {
        assert_true(w[8] == 'Q' || w[8] == 'q');
        for (; p < e; p++) {
            if (*p == '_') {
                out[o++] = ' ';
            } else if (*p == '=') {
                out[o++] = (char)(hexval(p[1]) * 16 + hexval(p[2]));
                p += 2;
            } else {
                out[o++] = *p;
            }
        }
    }
    out[o] = '\0';
    return o;
}

/* Checks the encoded-words of a header value: each at most 75 characters and
 * decoding, alone, to valid UTF-8 (no character split between two words).
 * Returns how many there were. */
static int check_words(const char *v)
{
    int words = 0;

    for (const char *p = strstr(v, "=?"); p; p = strstr(p, "=?")) {
        const char *q = strchr(p + 2, '?'); /* charset end */
        assert_non_null(q);
        q = strchr(q + 1, '?'); /* encoding end */
        assert_non_null(q);
        const char *end = strstr(q + 1, "?=");
        assert_non_null(end);
        size_t n = (size_t)(end + 2 - p);
        char dec[128];
        assert_true(n <= 75);
        size_t dn = decode_word(p, n, dec);
        assert_int_equal(utf8_valid(dec, dn, NULL), 1);
        words++;
        p = end + 2;
    }
    return words;
}

/* The body of a parsed part, decoded; the caller frees with mmap_string_unref. */
static char *part_body(struct mailmime *part, size_t *len)
{
    struct mailmime_data *d = part->mm_data.mm_single;
    size_t idx = 0;
    char *out = NULL;

    assert_non_null(d);
    assert_int_equal(mailmime_part_parse(d->dt_data.dt_text.dt_data, d->dt_data.dt_text.dt_length,
                                         &idx, d->dt_encoding, &out, len),
                     MAILIMF_NO_ERROR);
    return out;
}

/* s with every line break made CRLF (how the parts are sent). */
static char *crlf(const char *s)
{
    char *o = malloc(strlen(s) * 2 + 1), *p = o;

    assert_non_null(o);
    for (; *s; s++) {
        if (*s == '\r' && s[1] == '\n')
            continue;
        if (*s == '\n' || *s == '\r') {
            *p++ = '\r';
            *p++ = '\n';
        } else {
            *p++ = *s;
        }
    }
    *p = '\0';
    return o;
}

/*
 * Parses the message with libetpan and checks the MIME structure: a
 * multipart/alternative holding text/plain then text/html, both UTF-8, with
 * the given transfer encodings (-1: either), decoding to text and html.
 */
static void check_structure(const struct buf *b, int enc_text, int enc_html, const char *text,
                            const char *html)
{
    struct mailmime *mime = NULL;
    size_t idx = 0;
    const int encs[2] = {enc_text, enc_html};
    const char *subtypes[2] = {"plain", "html"}, *want[2] = {text, html};

    assert_int_equal(mailmime_parse(b->data, b->len, &idx, &mime), MAILIMF_NO_ERROR);
    assert_int_equal(mime->mm_type, MAILMIME_MESSAGE);
    struct mailmime *mp = mime->mm_data.mm_message.mm_msg_mime;
    assert_non_null(mp);
    assert_int_equal(mp->mm_type, MAILMIME_MULTIPLE);
    assert_string_equal(mp->mm_content_type->ct_subtype, "alternative");
    assert_int_equal(clist_count(mp->mm_data.mm_multipart.mm_mp_list), 2);
    int i = 0;
    for (clistiter *it = clist_begin(mp->mm_data.mm_multipart.mm_mp_list); it;
         it = clist_next(it), i++) {
        struct mailmime *part = clist_content(it);
        struct mailmime_single_fields sf;
        size_t len = 0;

        assert_int_equal(part->mm_type, MAILMIME_SINGLE);
        mailmime_single_fields_init(&sf, part->mm_mime_fields, part->mm_content_type);
        assert_int_equal(part->mm_content_type->ct_type->tp_data.tp_discrete_type->dt_type,
                         MAILMIME_DISCRETE_TYPE_TEXT);
        assert_string_equal(part->mm_content_type->ct_subtype, subtypes[i]);
        assert_non_null(sf.fld_content_charset);
        assert_string_equal(sf.fld_content_charset, "utf-8");
        assert_non_null(sf.fld_encoding);
        if (encs[i] >= 0)
            assert_int_equal(sf.fld_encoding->enc_type, encs[i]);
        else
            assert_true(sf.fld_encoding->enc_type == MAILMIME_MECHANISM_BASE64 ||
                        sf.fld_encoding->enc_type == MAILMIME_MECHANISM_QUOTED_PRINTABLE);
        char *body = part_body(part, &len), *exp = crlf(want[i]);
        assert_int_equal(len, strlen(exp));
        assert_memory_equal(body, exp, len);
        free(exp);
        mmap_string_unref(body);
    }
    mailmime_free(mime);
}

/* ---- messages ------------------------------------------------------------- */

static void test_headers(void **state)
{
    (void)state;
    struct mime_message m = sample(AR_TITLE, AR_BODY, AR_TEXT);
    struct buf b;
    struct hdrs h;

    build(&m, &b);
    parse_headers(&b, &h);
    assert_int_equal(h.n, 11); /* nothing but the headers below */

    char *from = decode_2047(header(&h, "From"));
    assert_string_equal(from, "نشرة المدونة <news@example.com>");
    free(from);
    assert_non_null(strstr(header(&h, "From"), "=?UTF-8?")); /* non-ASCII name: encoded */
    assert_string_equal(header(&h, "To"), "Ali Hassan <ali@example.org>");
    char *subj = decode_2047(header(&h, "Subject"));
    assert_string_equal(subj, AR_TITLE);
    free(subj);
    assert_string_equal(header(&h, "Date"), "Sat, 13 Apr 2024 07:00:00 +0000");
    assert_string_equal(header(&h, "Message-ID"), "<20240413.42.7f3a@example.com>");
    assert_string_equal(header(&h, "MIME-Version"), "1.0");
    char *lid = decode_2047(header(&h, "List-Id"));
    assert_string_equal(lid, "النشرة الأسبوعية <weekly.example.com>");
    free(lid);
    assert_string_equal(header(&h, "List-Unsubscribe"),
                        "<https://example.com/u/7f3a9c>, <mailto:unsubscribe+7f3a9c@example.com>");
    assert_string_equal(header(&h, "List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    assert_string_equal(header(&h, "Auto-Submitted"), "auto-generated");
    const char *ct = header(&h, "Content-Type");
    assert_true(strncmp(ct, "multipart/alternative;", 22) == 0);
    assert_non_null(strstr(ct, "boundary=\"=_"));
    check_lines(&b);
    buf_free(&b);
}

static void test_arabic_base64(void **state)
{
    (void)state;
    struct mime_message m = sample(AR_TITLE, AR_BODY, AR_TEXT);
    struct buf b;

    build(&m, &b);
    check_lines(&b);
    check_structure(&b, MAILMIME_MECHANISM_BASE64, MAILMIME_MECHANISM_BASE64, AR_TEXT, AR_BODY);
    buf_free(&b);
}

static void test_english_qp(void **state)
{
    (void)state;
    struct mime_message m = sample("The weekly letter", EN_HTML, EN_TEXT);
    struct buf b;

    build(&m, &b);
    check_lines(&b);
    check_structure(&b, MAILMIME_MECHANISM_QUOTED_PRINTABLE, MAILMIME_MECHANISM_QUOTED_PRINTABLE,
                    EN_TEXT, EN_HTML);
    /* readable: plain words stay as they are */
    assert_non_null(strstr(b.data, "Hello, this is the weekly letter."));
    buf_free(&b);
}

/* The corners of quoted-printable: white space at line ends (libetpan's own
 * encoder doubles it), a part ending in a space, "From " and "." at the start
 * of a line, "=", tabs, CR and LF line ends, lines far over 76 characters,
 * a long run of "=" (3 characters each, never split). */
static void test_qp_corners(void **state)
{
    (void)state;
    static const char text[] =
        "ends with a space \nends with a tab\t\r\nFrom here\n.\n..dots\na=b ==\n"
        "\ttab first\rlone CR\n"
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234\n"
        "=========================\n"
        "café crème, naïve\n"
        "Plain prose keeps quoted-printable the shorter of the two encodings for this part, "
        "and the structure check below proves it was chosen.\nlast space ";
    struct mime_message m = sample("QP", "<p>x</p>", text);
    struct buf b;

    build(&m, &b);
    check_lines(&b);
    check_structure(&b, MAILMIME_MECHANISM_QUOTED_PRINTABLE, MAILMIME_MECHANISM_QUOTED_PRINTABLE,
                    text, "<p>x</p>");
    assert_null(strstr(b.data, "\r\nFrom ")); /* mbox-safe */
    assert_null(strstr(b.data, "\r\n.\r\n")); /* SMTP-safe */
    buf_free(&b);
}

/* Random bodies made of the pieces that matter to the encoders (plain runs,
 * spaces and tabs before line ends, "=", "." and "From " at line starts, CR,
 * LF and CRLF, Arabic, 4-byte characters, long lines): every message keeps
 * the line rules and decodes to its input. */
static void test_random_bodies(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "word",  "a much longer run of plain words that fills most of a line",
        " ",     "\t",
        "=",     "==",
        "\n",    "\r\n",
        "\r",    ".",
        "From ", "F",
        "مرحبا", "😀",
        "é",     "0123456789012345678901234567890123456789012345678901234567890123456789012",
        "\"'<>", "_?",
    };
    unsigned long seed = 12345;
    char body[4096];

    for (int iter = 0; iter < 300; iter++) {
        size_t len = 0;
        body[0] = '\0';
        for (;;) {
            seed = seed * 6364136223846793005UL + 1442695040888963407UL;
            const char *p = pieces[(seed >> 33) % (sizeof(pieces) / sizeof(pieces[0]))];
            size_t pl = strlen(p);
            if (len + pl >= sizeof(body) || (seed >> 20) % 97 == 0)
                break;
            memcpy(body + len, p, pl + 1);
            len += pl;
        }
        struct mime_message m = sample("random", body, body);
        struct buf b;
        build(&m, &b);
        check_lines(&b);
        check_structure(&b, -1, -1, body, body);
        buf_free(&b);
    }
}

/* Mostly "=" and accents: quoted-printable would triple it, base64 is chosen. */
static void test_choice_flips(void **state)
{
    (void)state;
    static const char text[] = "==== é è à ü ==== ==== é è à ü ==== ==== é è à ü ====\n";
    struct mime_message m = sample("choice", EN_HTML, text);
    struct buf b;

    build(&m, &b);
    check_lines(&b);
    check_structure(&b, MAILMIME_MECHANISM_BASE64, MAILMIME_MECHANISM_QUOTED_PRINTABLE, text,
                    EN_HTML);
    buf_free(&b);

    /* plain ASCII, but every line ends in a space (=20): measured, QP loses */
    char spaces[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(spaces, "a \n");
    m = sample("choice", EN_HTML, spaces);
    build(&m, &b);
    check_lines(&b);
    check_structure(&b, MAILMIME_MECHANISM_BASE64, MAILMIME_MECHANISM_QUOTED_PRINTABLE, spaces,
                    EN_HTML);
    buf_free(&b);
}

/* Line limits hold with long names, long subjects and long bodies on one line. */
static void test_long_everything(void **state)
{
    (void)state;
    char subject[2048], name[512], html[8192];
    struct buf b;

    snprintf(subject, sizeof(subject), "%s %s %s — %s", AR_TITLE, AR_TITLE,
             "an English tail with a verylongwordthatgoesonandonandonforeverandeverandeverandever",
             "😀🎉 emoji and more emoji 😀🎉😀🎉😀🎉😀🎉");
    snprintf(name, sizeof(name), "%s",
             "A Very Long Display Name, Esq., of the Department of "
             "Long Names and Longer Titles (Newsletter Division)");
    html[0] = '\0';
    for (int i = 0; i < 60; i++)
        strcat(html, "<span>word مرحبا</span>");
    struct mime_message m = sample(subject, html, html);
    m.to.name = name;
    m.from.name = "Nashra: the \"weekly\" letter";
    build(&m, &b);
    check_lines(&b);

    struct hdrs h;
    parse_headers(&b, &h);
    char *s = decode_2047(header(&h, "Subject"));
    assert_string_equal(s, subject);
    free(s);
    assert_true(check_words(header(&h, "Subject")) > 3);
    char *to = decode_2047(header(&h, "To"));
    assert_non_null(strstr(to, "Longer Titles (Newsletter Division)"));
    free(to);
    assert_string_equal(header(&h, "From"),
                        "\"Nashra: the \\\"weekly\\\" letter\" <news@example.com>");
    buf_free(&b);
}

/* Tokens that cannot be folded, at the lengths mime.h promises 76 columns
 * for: a 62-character Message-ID, a 72-character https URL, a 73-character
 * mailto URL. Longer ones still make a valid message (lines under 998). */
static void test_long_tokens(void **state)
{
    (void)state;
    char id[128], https[160], mailto[160], want[400];
    struct buf b;
    struct hdrs h;

    for (int over = 0; over <= 1; over++) {
        snprintf(id, sizeof(id), "%0*d@example.com", 62 - 12 + over * 40, 7);
        snprintf(https, sizeof(https), "https://example.com/u/%0*d", 72 - 22 + over * 40, 9);
        snprintf(mailto, sizeof(mailto), "mailto:u+%0*d@example.com", 73 - 21 + over * 40, 3);
        assert_int_equal(strlen(id), 62 + over * 40);
        assert_int_equal(strlen(https), 72 + over * 40);
        assert_int_equal(strlen(mailto), 73 + over * 40);
        struct mime_message m = sample("s", EN_HTML, EN_TEXT);
        m.message_id = id;
        m.unsub_https = https;
        m.unsub_mailto = mailto;
        build(&m, &b);
        if (!over) {
            check_lines(&b);
        } else {
            for (const char *p = b.data; (p = strstr(p, "\r\n")) != NULL; p += 2)
                assert_true(p[-1] != ' ');
        }
        parse_headers(&b, &h);
        snprintf(want, sizeof(want), "<%s>", id);
        assert_string_equal(header(&h, "Message-ID"), want);
        snprintf(want, sizeof(want), " <%s>, <%s>", https, mailto); /* folded first */
        assert_string_equal(header(&h, "List-Unsubscribe"), want);
        assert_non_null(strstr(b.data, "\r\nList-Unsubscribe:\r\n <https://")); /* RFC 8058 */
        buf_free(&b);
    }
}

/* CR, LF and other controls in caller text never start a header line. */
static void test_injection(void **state)
{
    (void)state;
    static const char *const evil[] = {
        "Title\r\nBcc: victim@example.net", "Title\nBcc: victim@example.net",
        "Title\rBcc: victim@example.net",   "عنوان\r\nBcc: victim@example.net",
        "Title\r\n\r\n<html>body</html>",   "T\x0b\x0c\x1b\x7f\xc2\x85x\xe2\x80\xa8y",
    };
    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        struct mime_message m = sample(evil[i], EN_HTML, EN_TEXT);
        struct buf b;
        struct hdrs h;

        m.from.name = evil[i];
        m.to.name = evil[i];
        m.list_name = evil[i];
        build(&m, &b);
        check_lines(&b);
        parse_headers(&b, &h);
        assert_int_equal(h.n, 11);
        for (size_t k = 0; k < h.n; k++)
            assert_true(strcasecmp(h.name[k], "Bcc") != 0);
        char *s = decode_2047(header(&h, "Subject"));
        assert_null(strchr(s, '\r'));
        assert_null(strchr(s, '\n'));
        free(s);
        /* libetpan's own header parser agrees */
        struct mailimf_fields *f = NULL;
        size_t idx = 0;
        assert_int_equal(mailimf_fields_parse(b.data, b.len, &idx, &f), MAILIMF_NO_ERROR);
        assert_int_equal(clist_count(f->fld_list), 11);
        mailimf_fields_free(f);
        buf_free(&b);
    }
}

static void test_deterministic(void **state)
{
    (void)state;
    struct mime_message m = sample(AR_TITLE, AR_BODY, AR_TEXT);
    struct buf a, b;

    build(&m, &a);
    build(&m, &b);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    buf_free(&a);
    buf_free(&b);
}

/* Errors leave out as it was. */
static void test_rejects(void **state)
{
    (void)state;
    struct buf b;
    struct mime_message m;

    buf_init(&b, 1 << 20);
    assert_int_equal(buf_puts(&b, "kept"), 0);
#define REJECT(field, value)                                                                       \
    do {                                                                                           \
        m = sample("s", EN_HTML, EN_TEXT);                                                         \
        m.field = value;                                                                           \
        assert_int_equal(mime_build(&m, &b), -1);                                                  \
        assert_string_equal(buf_str(&b), "kept");                                                  \
    } while (0)
    REJECT(from.email, "not an address");
    REJECT(to.email, "ali@@example.org");
    REJECT(to.email, NULL);
    REJECT(message_id, NULL);
    REJECT(message_id, "no-at-sign");
    REJECT(message_id, "a b@example.com");
    REJECT(message_id, "a@example.com\r\nBcc: x@y");
    REJECT(list_id, NULL);
    REJECT(list_id, "list id");
    REJECT(unsub_https, NULL);
    REJECT(unsub_https, "http://example.com/u/1");
    REJECT(unsub_https, "https://example.com/u/1\r\nBcc: x@y");
    REJECT(unsub_https, "https://example.com/u/<1>");
    REJECT(unsub_mailto, "https://example.com/");
    REJECT(html, "bad \xff UTF-8");
#undef REJECT
    m = sample("s", EN_HTML, EN_TEXT);
    m.text = NULL;
    m.text_len = 5;
    assert_int_equal(mime_build(&m, &b), -1);

    /* past the cap */
    struct buf small;
    buf_init(&small, 100);
    m = sample("s", EN_HTML, EN_TEXT);
    assert_int_equal(mime_build(&m, &small), -1);
    assert_int_equal(small.len, 0);
    buf_free(&small);
    buf_free(&b);
}

/* Optional pieces: no mailto, no list name, no display names, empty parts. */
static void test_optional(void **state)
{
    (void)state;
    struct mime_message m = sample("Hi", "", "");
    struct buf b;
    struct hdrs h;

    m.unsub_mailto = NULL;
    m.list_name = NULL;
    m.from.name = NULL;
    m.to.name = "";
    m.message_id = "<already@bracketed>";
    build(&m, &b);
    check_lines(&b);
    parse_headers(&b, &h);
    assert_string_equal(header(&h, "From"), "news@example.com");
    assert_string_equal(header(&h, "To"), "ali@example.org");
    assert_string_equal(header(&h, "List-Id"), "<weekly.example.com>");
    assert_string_equal(header(&h, "List-Unsubscribe"), "<https://example.com/u/7f3a9c>");
    assert_string_equal(header(&h, "Message-ID"), "<already@bracketed>");
    check_structure(&b, MAILMIME_MECHANISM_QUOTED_PRINTABLE, MAILMIME_MECHANISM_QUOTED_PRINTABLE,
                    "", "");
    buf_free(&b);
}

/* ---- header text ---------------------------------------------------------- */

static char *header_text(const char *s)
{
    struct buf b;

    buf_init(&b, 0);
    assert_int_equal(mime_header_text(&b, s), 0);
    return buf_steal(&b);
}

static void test_header_text_plain(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"Weekly letter #12", "Weekly letter #12"},
        {"  spaced   out\t words ", "spaced out words"},
        {"Title\r\nBcc: x@y", "Title Bcc: x@y"},
        {"", ""},
        {NULL, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = header_text(cases[i].in);
        assert_string_equal(got, cases[i].want);
        free(got);
    }
}

/* Text that looks like an encoded-word, or has a word too long to fold, is
 * encoded, and decodes back. */
static void test_header_text_ascii_encoded(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "price =?UTF-8?B?Zm9v?= trick",
        "a-word-that-is-much-too-long-to-fold-into-a-header-line-of-76-columns-at-all",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = header_text(cases[i]);
        assert_true(strncmp(got, "=?UTF-8?Q?", 10) == 0);
        check_words(got);
        char *dec = decode_2047(got);
        assert_string_equal(dec, cases[i]);
        free(dec);
        free(got);
    }
}

/* Arabic: B words (shorter than Q for it), each at most 75 characters, no
 * character split, and the whole decodes to the input. So do 4-byte emoji and
 * mostly-Latin text, which takes Q. */
static void test_header_text_roundtrip(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        char enc;
    } cases[] = {
        {AR_TITLE, 'B'},
        {"مرحبا", 'B'},
        {"😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀", 'B'},
        {"Café crème: the naïve façade of the weekly letter", 'Q'},
        {"ا ب ت ث ج ح خ د ذ ر ز س ش ص ض ط ظ ع غ ف ق ك ل م ن ه و ي", 'B'},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = header_text(cases[i].in);
        assert_int_equal(got[8], cases[i].enc);
        assert_true(check_words(got) >= 1);
        for (const char *p = got; *p; p++) /* ASCII, no controls */
            assert_true(*p >= ' ' && *p <= '~');
        char *dec = decode_2047(got);
        assert_string_equal(dec, cases[i].in);
        free(dec);
        free(got);
    }
    /* a long one takes several words */
    char *got = header_text(AR_TITLE " " AR_TITLE);
    assert_true(check_words(got) >= 4);
    free(got);
}

/* Invalid UTF-8 becomes U+FFFD; controls become spaces. */
static void test_header_text_cleaning(void **state)
{
    (void)state;
    char *got = header_text("ok\xff\xfe"
                            "ok\x01\x02tab\there");
    char *dec = decode_2047(got);
    assert_string_equal(dec, "ok\xef\xbf\xbd\xef\xbf\xbdok tab here");
    free(dec);
    free(got);

    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_puts(&b, "abc"), 0);
    assert_int_equal(mime_header_text(&b, "مرحبا"), -1); /* past the cap */
    assert_string_equal(buf_str(&b), "abc");
    buf_free(&b);
}

/* ---- addresses ------------------------------------------------------------ */

static void test_address_table(void **state)
{
    (void)state;
    static const struct {
        const char *in, *norm; /* norm NULL: rejected */
    } cases[] = {
        {"ali@example.org", "ali@example.org"},
        {"  Ali.Hassan@Example.ORG \r\n", "Ali.Hassan@example.org"},
        {"first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"},
        {"o'neil@example.ie", "o'neil@example.ie"},
        {"user@localhost", "user@localhost"},
        {"x@a-b.example", "x@a-b.example"},
        {"!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~@example.com"},
        {"", NULL},
        {"   ", NULL},
        {"no-at-sign", NULL},
        {"@example.com", NULL},
        {"ali@", NULL},
        {"ali@@example.com", NULL},
        {"a@b@example.com", NULL},
        {"ali hassan@example.com", NULL},
        {"ali@exa mple.com", NULL},
        {"ali\r\n@example.com", NULL},
        {"ali@example.com\r\nBcc: x@y", NULL},
        {"ali\t@example.com", NULL},
        {"ali\x7f@example.com", NULL},
        {".ali@example.com", NULL},
        {"ali.@example.com", NULL},
        {"al..i@example.com", NULL},
        {"ali@.example.com", NULL},
        {"ali@example.com.", NULL},
        {"ali@example..com", NULL},
        {"ali@-example.com", NULL},
        {"ali@example-.com", NULL},
        {"ali@exam_ple.com", NULL},
        {"علي@example.com", NULL},
        {"ali@مثال.com", NULL},
        {"\"quoted\"@example.com", NULL},
        {"<ali@example.com>", NULL},
        {"ali@[127.0.0.1]", NULL},
        {"Ali <ali@example.com>", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b;
        buf_init(&b, 0);
        int ok = mime_address_ok(cases[i].in, &b);
        if (ok != (cases[i].norm != NULL))
            fail_msg("case %zu \"%s\": got %d", i, cases[i].in, ok);
        if (cases[i].norm)
            assert_string_equal(buf_str(&b), cases[i].norm);
        else
            assert_int_equal(b.len, 0);
        assert_int_equal(mime_address_ok(cases[i].in, NULL), ok);
        buf_free(&b);
    }
    assert_int_equal(mime_address_ok(NULL, NULL), 0);
}

static void test_address_lengths(void **state)
{
    (void)state;
    char s[400];

    /* local part: 64 is the most */
    memset(s, 'a', 64);
    strcpy(s + 64, "@example.com");
    assert_int_equal(mime_address_ok(s, NULL), 1);
    memset(s, 'a', 65);
    strcpy(s + 65, "@example.com");
    assert_int_equal(mime_address_ok(s, NULL), 0);
    /* a label: 63 is the most */
    strcpy(s, "a@");
    memset(s + 2, 'b', 63);
    strcpy(s + 65, ".com");
    assert_int_equal(mime_address_ok(s, NULL), 1);
    memset(s + 2, 'b', 64);
    strcpy(s + 66, ".com");
    assert_int_equal(mime_address_ok(s, NULL), 0);
    /* the whole: 254 is the most */
    strcpy(s, "a@");
    size_t n = 2;
    while (n + 50 <= 254) {
        memset(s + n, 'c', 49);
        s[n + 49] = '.';
        n += 50;
    }
    memset(s + n, 'd', 254 - n);
    s[254] = '\0';
    assert_int_equal(mime_address_ok(s, NULL), 1);
    s[254] = 'd';
    s[255] = '\0';
    assert_int_equal(mime_address_ok(s, NULL), 0);
    /* a full buffer: not acceptable, buffer as it was */
    struct buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_puts(&b, "xy"), 0);
    assert_int_equal(mime_address_ok("someone@example.com", &b), 0);
    assert_string_equal(buf_str(&b), "xy");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_arabic_base64),
        cmocka_unit_test(test_english_qp),
        cmocka_unit_test(test_qp_corners),
        cmocka_unit_test(test_choice_flips),
        cmocka_unit_test(test_random_bodies),
        cmocka_unit_test(test_long_everything),
        cmocka_unit_test(test_long_tokens),
        cmocka_unit_test(test_injection),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_optional),
        cmocka_unit_test(test_header_text_plain),
        cmocka_unit_test(test_header_text_ascii_encoded),
        cmocka_unit_test(test_header_text_roundtrip),
        cmocka_unit_test(test_header_text_cleaning),
        cmocka_unit_test(test_address_table),
        cmocka_unit_test(test_address_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
