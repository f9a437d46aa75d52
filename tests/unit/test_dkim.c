/*
 * test_dkim: DKIM signatures (SPEC §8) made by mail/dkim.c on messages from
 * mime_build, checked by a real verifier: Debian's python3-dkim (dkimpy), run
 * through dkim_verify.py with the test key's public half as the DNS record.
 * A signed message verifies, also after changes relaxed canonicalization
 * ignores; a changed Subject, body byte or List-Unsubscribe fails; the
 * signature covers the List-Unsubscribe headers; no line is over 76; bad
 * keys and messages are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "../../mail/dkim.h"
#include "../../mail/mime.h"

#define AR_SUBJECT "النشرة الأسبوعية: مرحبا بكم في عدد هذا الأسبوع من المدونة"
#define AR_HTML                                                                                             \
    "<html dir=\"rtl\"><body style=\"direction:rtl\"><p>هذا نص عربي طويل بعض الشيء، " \
    "نكتبه لنرى كيف تُرمَّز الرسالة.</p>\n<p>فقرة ثانية.</p></body></html>\n"
#define AR_TEXT "هذا نص عربي طويل بعض الشيء، نكتبه لنرى كيف تُرمَّز الرسالة.\n\nفقرة ثانية.\n"
#define EN_HTML "<html><body><p>Hello   there,\tthe weekly letter.</p>\n\n\n</body></html>\n\n\n"
#define EN_TEXT "Hello   there,\tthe weekly letter.  \n\n\n\n"

#define DOMAIN   "example.com"
#define SELECTOR "s2026"

static char tmpdir[64], keypath[128], pub_b64[1024];

/* ---- helpers ---------------------------------------------------------------- */

static struct mime_message sample(const char *subject, const char *html, const char *text)
{
    struct mime_message m = {
        .from = {"نشرة المدونة", "news@example.com"},
        .to = {"علي حسن", "ali@example.org"},
        .subject = subject,
        .date = 1712991600,
        .message_id = "20240413.42.7f3a@example.com",
        .list_id = "weekly.example.com",
        .list_name = "النشرة الأسبوعية",
        .unsub_https = "https://example.com/unsubscribe?t=7f3a9c",
        .unsub_mailto = "mailto:news@example.com?subject=unsubscribe%207f3a9c",
        .html = html,
        .html_len = strlen(html),
        .text = text,
        .text_len = strlen(text),
    };
    return m;
}

static const char *script(void)
{
    static char p[512];
    const char *slash = strrchr(__FILE__, '/');
    int n = slash ? (int)(slash - __FILE__) : 0;
    snprintf(p, sizeof p, "%.*s%sdkim_verify.py", n, __FILE__, slash ? "/" : "");
    return p;
}

/* The verifier's verdict on msg[0..n): 0 verifies, 1 does not, else error. */
static int verify_bytes(const char *msg, size_t n)
{
    char path[192], cmd[2048];
    snprintf(path, sizeof path, "%s/msg.eml", tmpdir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(msg, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' %s %s '%s'", script(), path, SELECTOR,
             DOMAIN, pub_b64);
    int st = system(cmd);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static int verify(const struct buf *b)
{
    return verify_bytes(b->data, b->len);
}

/* A signed message from m into out (asserting success). */
static void signed_message(const struct dkim *d, const struct mime_message *m, struct buf *out)
{
    buf_init(out, 0);
    assert_int_equal(mime_build(m, out), 0);
    assert_int_equal(dkim_sign(d, 1712991601, out), 0);
}

/* The DKIM-Signature header of msg, unfolded and without spaces. */
static char *sig_header(const struct buf *b)
{
    assert_true(b->len > 15 && strncmp(b->data, "DKIM-Signature:", 15) == 0);
    char *s = malloc(b->len + 1);
    size_t k = 0;
    assert_non_null(s);
    for (size_t i = 15; i < b->len; i++) {
        if (b->data[i] == '\r' && i + 2 < b->len && b->data[i + 1] == '\n' &&
            b->data[i + 2] != ' ' && b->data[i + 2] != '\t')
            break;
        if (b->data[i] != '\r' && b->data[i] != '\n' && b->data[i] != ' ' && b->data[i] != '\t')
            s[k++] = b->data[i];
    }
    s[k] = '\0';
    return s;
}

static void assert_lines_76(const struct buf *b)
{
    size_t start = 0;
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] == '\n') {
            assert_true(i > 0 && b->data[i - 1] == '\r');
            assert_in_range(i - 1 - start, 0, 76);
            start = i + 1;
        }
    assert_int_equal(start, b->len); /* ends with CRLF */
}

/* Replaces the first occurrence of from (after off) in b by to (same length). */
static void patch(struct buf *b, size_t off, const char *from, const char *to)
{
    assert_int_equal(strlen(from), strlen(to));
    char *p = strstr(b->data + off, from);
    assert_non_null(p);
    memcpy(p, to, strlen(to));
}

static size_t body_off(const struct buf *b)
{
    char *p = strstr(b->data, "\r\n\r\n");
    assert_non_null(p);
    return (size_t)(p - b->data) + 4;
}

/* ---- setup ------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_dkim.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(keypath, sizeof keypath, "%s/dkim.pem", tmpdir);
    EVP_PKEY *key = EVP_RSA_gen(2048);
    if (!key)
        return -1;
    umask(077);
    FILE *f = fopen(keypath, "w");
    int ok = f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    if (f)
        ok = fclose(f) == 0 && ok;
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    ok = ok && n > 0 && 4 * ((n + 2) / 3) < (int)sizeof pub_b64;
    if (ok)
        EVP_EncodeBlock((unsigned char *)pub_b64, der, n);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct dkim *load(void)
{
    struct diag err = {0};
    struct dkim *d = dkim_load(DOMAIN, SELECTOR, keypath, &err);
    if (!d)
        fail_msg("dkim_load: %s", err.msg);
    return d;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_verifies(void **state)
{
    (void)state;
    struct dkim *d = load();
    struct mime_message m = sample(AR_SUBJECT, AR_HTML, AR_TEXT);
    struct buf plain, b;
    buf_init(&plain, 0);
    assert_int_equal(mime_build(&m, &plain), 0);
    signed_message(d, &m, &b);
    /* Prepended: the message follows the header unchanged. */
    assert_true(b.len > plain.len);
    assert_memory_equal(b.data + (b.len - plain.len), plain.data, plain.len);
    assert_int_equal(verify(&b), 0);
    assert_int_equal(verify(&plain), 1); /* no signature: not verified */
    assert_lines_76(&b);

    char *h = sig_header(&b);
    assert_non_null(strstr(h, "v=1;"));
    assert_non_null(strstr(h, "a=rsa-sha256;"));
    assert_non_null(strstr(h, "c=relaxed/relaxed;"));
    assert_non_null(strstr(h, "d=" DOMAIN ";"));
    assert_non_null(strstr(h, "s=" SELECTOR ";"));
    assert_non_null(strstr(h, "t=1712991601;"));
    assert_non_null(strstr(h, "h=from:to:subject:date:message-id:mime-version:content-type:"
                              "list-id:list-unsubscribe:list-unsubscribe-post;"));
    assert_non_null(strstr(h, "bh="));
    assert_non_null(strstr(h, "b="));
    free(h);
    buf_free(&plain);
    buf_free(&b);
    dkim_free(d);
}

static void test_tampered(void **state)
{
    (void)state;
    struct dkim *d = load();
    struct mime_message m = sample(AR_SUBJECT, AR_HTML, AR_TEXT);
    struct buf b;
    size_t off;

    /* Subject: the same message with another subject, under the old signature. */
    signed_message(d, &m, &b);
    off = (size_t)(strstr(b.data, "\r\nSubject:") - b.data);
    struct mime_message m2 = sample(AR_SUBJECT "!", AR_HTML, AR_TEXT);
    struct buf other;
    buf_init(&other, 0);
    assert_int_equal(mime_build(&m2, &other), 0);
    {
        struct buf mixed;
        char *hend = strstr(b.data, "\r\nFrom:");
        assert_non_null(hend);
        buf_init(&mixed, 0);
        assert_int_equal(buf_append(&mixed, b.data, (size_t)(hend - b.data) + 2), 0);
        assert_int_equal(buf_append(&mixed, other.data, other.len), 0);
        assert_int_equal(verify(&mixed), 1);
        buf_free(&mixed);
    }
    buf_free(&other);
    /* One character of the (encoded) subject. */
    assert_int_equal(verify(&b), 0);
    b.data[off + 14] ^= 1;
    assert_int_equal(verify(&b), 1);
    buf_free(&b);

    /* A body byte. */
    signed_message(d, &m, &b);
    assert_true(b.len - 10 > body_off(&b));
    b.data[b.len - 10] ^= 1;
    assert_int_equal(verify(&b), 1);
    buf_free(&b);

    /* List-Unsubscribe and List-Unsubscribe-Post. */
    signed_message(d, &m, &b);
    patch(&b, 0, "t=7f3a9c", "t=7f3a9d");
    assert_int_equal(verify(&b), 1);
    buf_free(&b);
    signed_message(d, &m, &b);
    patch(&b, 0, "List-Unsubscribe=One-Click", "List-Unsubscribe=One-Clicj");
    assert_int_equal(verify(&b), 1);
    buf_free(&b);
    dkim_free(d);
}

/* Changes relaxed canonicalization ignores still verify: header case and
 * white space, trailing spaces and empty lines in the body. */
static void test_relaxed(void **state)
{
    (void)state;
    struct dkim *d = load();
    struct mime_message m = sample("Weekly letter", EN_HTML, EN_TEXT);
    struct buf b, c;
    signed_message(d, &m, &b);
    assert_int_equal(verify(&b), 0);
    assert_lines_76(&b);

    buf_init(&c, 0);
    char *subj = strstr(b.data, "\r\nSubject: ");
    assert_non_null(subj);
    size_t at = (size_t)(subj - b.data) + 2;
    assert_int_equal(buf_append(&c, b.data, at), 0);
    assert_int_equal(buf_puts(&c, "SUBJECT:  Weekly \t letter  "), 0);
    char *eol = strstr(subj + 2, "\r\n");
    assert_int_equal(buf_append(&c, eol, (size_t)(b.data + b.len - eol)), 0);
    assert_int_equal(buf_puts(&c, "\r\n  \r\n\r\n"), 0);
    assert_int_equal(verify(&c), 0);
    buf_free(&c);
    buf_free(&b);
    dkim_free(d);
}

/* Only the listed headers that are present are signed; From always. */
static void test_hand_made(void **state)
{
    (void)state;
    struct dkim *d = load();
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(buf_puts(&b, "from: a@example.com\r\nX-Other: 1\r\nsubject: hi\r\n"
                                  "\tthere\r\n\r\nbody  \r\n\r\n"),
                     0);
    assert_int_equal(dkim_sign(d, 5, &b), 0);
    char *h = sig_header(&b);
    assert_non_null(strstr(h, "h=from:subject;"));
    free(h);
    assert_int_equal(verify(&b), 0);
    buf_free(&b);

    /* Empty body. */
    buf_init(&b, 0);
    assert_int_equal(buf_puts(&b, "From: a@example.com\r\n\r\n"), 0);
    assert_int_equal(dkim_sign(d, 5, &b), 0);
    assert_int_equal(verify(&b), 0);
    buf_free(&b);

    /* Refused, msg as it was: no From, no header section end, a cap. */
    const char *bad[] = {"To: a@example.com\r\n\r\nx\r\n", "From: a@example.com\r\n",
                         "\r\nFrom: a@example.com\r\n\r\n", " From: a@example.com\r\n\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        buf_init(&b, 0);
        assert_int_equal(buf_puts(&b, bad[i]), 0);
        assert_int_equal(dkim_sign(d, 5, &b), -1);
        assert_string_equal(b.data, bad[i]);
        buf_free(&b);
    }
    buf_init(&b, 100);
    assert_int_equal(buf_puts(&b, "From: a@example.com\r\n\r\nx\r\n"), 0);
    assert_int_equal(dkim_sign(d, 5, &b), -1);
    assert_string_equal(b.data, "From: a@example.com\r\n\r\nx\r\n");
    buf_free(&b);
    dkim_free(d);
}

static void test_load_errors(void **state)
{
    (void)state;
    struct diag err = {0};
    char path[192];
    assert_null(dkim_load(DOMAIN, SELECTOR, "/nonexistent/dkim.pem", &err));
    assert_non_null(strstr(err.msg, "No such file"));
    assert_null(dkim_load("bad domain;", SELECTOR, keypath, &err));
    assert_null(dkim_load(DOMAIN, "s1\r\nX: y", keypath, &err));
    assert_null(dkim_load(DOMAIN, SELECTOR, NULL, &err));

    /* Readable by others. */
    snprintf(path, sizeof path, "%s/open.pem", tmpdir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && chmod 644 '%s'", keypath, path, path);
    assert_int_equal(system(cmd), 0);
    assert_null(dkim_load(DOMAIN, SELECTOR, path, &err));
    assert_non_null(strstr(err.msg, "chmod 600"));

    /* Not a key. */
    snprintf(path, sizeof path, "%s/junk.pem", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    assert_null(dkim_load(DOMAIN, SELECTOR, path, &err));
    assert_non_null(strstr(err.msg, "PEM private key"));

    /* An EC key is not RSA. */
    snprintf(path, sizeof path, "%s/ec.pem", tmpdir);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    assert_non_null(ec);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, ec, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    EVP_PKEY_free(ec);
    assert_null(dkim_load(DOMAIN, SELECTOR, path, &err));
    assert_non_null(strstr(err.msg, "RSA"));
    dkim_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verifies),    cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_relaxed),     cmocka_unit_test(test_hand_made),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
