/*
 * test_text: strict UTF-8 validation, XML cleaning, HTML escaping and URL
 * path-segment encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/text.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* Asserts that lit is invalid with the first bad byte at want. */
static void check_bad(const char *s, size_t len, size_t want)
{
    size_t off = 12345;
    assert_int_equal(utf8_valid(s, len, &off), 0);
    assert_int_equal(off, want);
}

static void test_utf8_valid_ok(void **state)
{
    (void)state;
    size_t off = 777;
    assert_int_equal(utf8_valid(S(""), &off), 1);
    assert_int_equal(utf8_valid(S("plain ASCII\t\n\r~\x7f"), &off), 1);
    assert_int_equal(utf8_valid(S("سلام عليكم"), &off), 1);
    assert_int_equal(utf8_valid(S("\xc2\x80"), &off), 1);         /* U+0080 */
    assert_int_equal(utf8_valid(S("\xe0\xa0\x80"), &off), 1);     /* U+0800 */
    assert_int_equal(utf8_valid(S("\xed\x9f\xbf"), &off), 1);     /* U+D7FF */
    assert_int_equal(utf8_valid(S("\xee\x80\x80"), &off), 1);     /* U+E000 */
    assert_int_equal(utf8_valid(S("\xef\xbf\xbf"), &off), 1);     /* U+FFFF */
    assert_int_equal(utf8_valid(S("\xf0\x9f\x98\x80"), &off), 1); /* emoji */
    assert_int_equal(utf8_valid(S("\xf4\x8f\xbf\xbf"), &off), 1); /* U+10FFFF */
    assert_int_equal(off, 777);                                   /* untouched */
    assert_int_equal(utf8_valid(S("no offset wanted"), NULL), 1);
}

/* The word-at-a-time ASCII path: a bad byte at every offset of a long ASCII
 * run is found at that offset, and an Arabic letter there is fine. */
static void test_utf8_ascii_runs(void **state)
{
    static const unsigned char bad[] = {0x00, 0x80, 0xbf, 0xc0, 0xff};
    char s[41];
    size_t off;
    (void)state;
    for (size_t pos = 0; pos < 40; pos++) {
        for (size_t b = 0; b < sizeof bad; b++) {
            memset(s, 'a', 40);
            s[pos] = (char)bad[b];
            off = 999;
            assert_false(utf8_valid(s, 40, &off));
            assert_int_equal(off, pos);
        }
        if (pos + 1 < 40) {
            memset(s, 'a', 40);
            s[pos] = (char)0xd8; /* U+0628 */
            s[pos + 1] = (char)0xa8;
            assert_true(utf8_valid(s, 40, NULL));
            s[pos + 1] = 'a'; /* a lead byte without its continuation */
            off = 999;
            assert_false(utf8_valid(s, 40, &off));
            assert_int_equal(off, pos);
        }
    }
}

static void test_utf8_invalid(void **state)
{
    (void)state;
    check_bad(S("ab\xc0\xaf"), 2);         /* overlong '/' */
    check_bad(S("\xc1\xbf"), 0);           /* overlong */
    check_bad(S("x\xe0\x80\xaf"), 1);      /* overlong 3-byte */
    check_bad(S("xy\xf0\x80\x80\xaf"), 2); /* overlong 4-byte */
    check_bad(S("a\xed\xa0\x80z"), 1);     /* surrogate U+D800 */
    check_bad(S("\xed\xbf\xbf"), 0);       /* surrogate U+DFFF */
    check_bad(S("ok\xf4\x90\x80\x80"), 2); /* U+110000 */
    check_bad(S("\xf5\x80\x80\x80"), 0);   /* lead byte past F4 */
    check_bad(S("\xff"), 0);
    check_bad(S("abc\x80"), 3);      /* stray continuation */
    check_bad(S("سل\xd8"), 4);       /* truncated at end */
    check_bad(S("a\xe2\x82z"), 1);   /* truncated in the middle */
    check_bad(S("\xf0\x9f\x98"), 0); /* 3 of 4 bytes */
    check_bad(S("ab\0cd"), 2);       /* NUL */
    /* the length is honoured: a valid prefix of a bad string is valid */
    assert_int_equal(utf8_valid("ab\xff", 2, NULL), 1);
    assert_int_equal(utf8_valid("\xe2\x82\xac", 2, NULL), 0);
}

static void test_seqlen(void **state)
{
    (void)state;
    assert_int_equal(utf8_seqlen('a'), 1);
    assert_int_equal(utf8_seqlen(0xd8), 2);
    assert_int_equal(utf8_seqlen(0xe2), 3);
    assert_int_equal(utf8_seqlen(0xf0), 4);
    assert_int_equal(utf8_seqlen(0x80), 1);
    assert_int_equal(utf8_seqlen(0xc0), 1);
    assert_int_equal(utf8_seqlen(0xf5), 1);
}

/* Runs fn over s and compares with want. */
static void check_out(int (*fn)(struct buf *, const char *, size_t), const char *s, size_t len,
                      const char *want)
{
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(fn(&b, s, len), 0);
    assert_string_equal(buf_str(&b), want);
    assert_int_equal(b.len, strlen(want));
    buf_free(&b);
}

static void test_xml_clean(void **state)
{
    (void)state;
    check_out(text_xml_clean, S(""), "");
    check_out(text_xml_clean,
              S("a\x01"
                "b\x1b[0mc"),
              "ab[0mc");
    check_out(text_xml_clean, S("tab\tlf\ncr\r"), "tab\tlf\ncr\r");
    check_out(text_xml_clean, S("x\xef\xbf\xbey\xef\xbf\xbfz"), "xyz");         /* FFFE FFFF */
    check_out(text_xml_clean, S("c1\xc2\x80\xc2\x9f!\xc2\xa0"), "c1!\xc2\xa0"); /* C1, NBSP */
    check_out(text_xml_clean, S("\xef\xbf\xbd"), "\xef\xbf\xbd");               /* U+FFFD kept */
    check_out(text_xml_clean,
              S("a\xc0\xaf"
                "b\xed\xa0\x80"
                "c\xff"),
              "abc"); /* invalid */
    check_out(text_xml_clean, S("cut\xe2\x82"), "cut");
    check_out(text_xml_clean, S("nul\0byte"), "nulbyte");
    check_out(text_xml_clean, S("<a href=\"x\">&'</a>"), "<a href=\"x\">&'</a>");
    check_out(text_xml_clean, S("مرحبا 😀"), "مرحبا 😀");
}

static void test_escape_html(void **state)
{
    (void)state;
    check_out(text_escape_html, S("<a href=\"x\">Tom & Jerry's</a>"),
              "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
    check_out(text_escape_html, S("&&"), "&amp;&amp;");
    check_out(text_escape_html, S("عن <القدس>"), "عن &lt;القدس&gt;");
    check_out(text_escape_html, S("a\x01<\xef\xbf\xbe>\x7f"), "a&lt;&gt;\x7f");
    check_out(text_escape_html, S("no specials"), "no specials");
}

static void test_url_segment(void **state)
{
    (void)state;
    check_out(text_url_segment, S("hello-world_1.0~x"), "hello-world_1.0~x");
    check_out(text_url_segment, S("a b/c?d#e%f+g"), "a%20b%2Fc%3Fd%23e%25f%2Bg");
    check_out(text_url_segment, S("مرحبا-بالعالم"),
              "%D9%85%D8%B1%D8%AD%D8%A8%D8%A7-%D8%A8%D8%A7%D9%84%D8%B9%D8%A7%D9%84%D9%85");
    check_out(text_url_segment, S("\xff\x00"), "%FF%00");
}

static void test_appends_and_cap(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_puts(&b, "x:"), 0);
    assert_int_equal(text_escape_html(&b, S("<>")), 0);
    assert_string_equal(b.data, "x:&lt;&gt;");
    /* past the cap: an error, and the buffer holds no half character */
    assert_int_equal(text_escape_html(&b, S("&")), -1);
    assert_string_equal(b.data, "x:&lt;&gt;");
    assert_int_equal(text_url_segment(&b, S(" ")), -1);
    assert_int_equal(text_xml_clean(&b, S("abc")), -1);
    assert_string_equal(b.data, "x:&lt;&gt;");
    buf_free(&b);
    /* a failure half-way leaves nothing of this call behind */
    buf_init(&b, 12);
    assert_int_equal(buf_puts(&b, "ab"), 0);
    assert_int_equal(text_escape_html(&b, S("12<34>56")), -1);
    assert_string_equal(b.data, "ab");
    assert_int_equal(b.len, 2);
    assert_int_equal(text_url_segment(&b, S("abcd efgh")), -1);
    assert_string_equal(b.data, "ab");
    assert_int_equal(text_url_segment(&b, S("abcd efg")), 0); /* exactly 12 */
    assert_string_equal(b.data, "ababcd%20efg");
    buf_free(&b);
}

/* A long mixed input: cleaning and escaping agree with a byte-by-byte model. */
static void test_long_input(void **state)
{
    (void)state;
    const char *piece = "نص عربي <b>&amp;</b>\x01 ";
    struct buf in, out;
    buf_init(&in, 0);
    buf_init(&out, 0);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(buf_puts(&in, piece), 0);
    assert_int_equal(text_escape_html(&out, in.data, in.len), 0);
    const char *want = "نص عربي &lt;b&gt;&amp;amp;&lt;/b&gt; ";
    assert_int_equal(out.len, strlen(want) * 5000);
    for (size_t off = 0; off < out.len; off += strlen(want))
        assert_memory_equal(out.data + off, want, strlen(want));
    buf_free(&in);
    buf_free(&out);
}

/* text_xml_is_clean agrees with text_xml_clean at every position, across the
 * eight-byte blocks of its fast path. */
static void test_xml_is_clean(void **state)
{
    (void)state;
    static const char *const bad[] = {"\x01", "\x1b", "\xC2\x85", "\xEF\xBF\xBE", "\xEF\xBF\xBF"};
    char s[64];
    assert_int_equal(text_xml_is_clean("", 0), 1);
    const char *ok = "plain text\twith tabs\r\nand lines \xD8\xB9\xD8\xB1\xD8\xA8\xD9\x8A "
                     "\xC2\xA9 \xEF\xBB\xBF \xEF\xBF\xBD end";
    assert_int_equal(text_xml_is_clean(ok, strlen(ok)), 1);
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
        for (size_t at = 0; at < 24; at++) {
            size_t n = strlen(bad[b]);
            memset(s, 'a', sizeof s);
            memcpy(s + at, bad[b], n);
            assert_int_equal(text_xml_is_clean(s, 40), 0);
            struct buf out;
            buf_init(&out, 0);
            assert_int_equal(text_xml_clean(&out, s, 40), 0);
            assert_int_equal(out.len, 40 - n); /* what is_clean saw, clean removes */
            buf_free(&out);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xml_is_clean),    cmocka_unit_test(test_utf8_valid_ok),
        cmocka_unit_test(test_utf8_invalid),    cmocka_unit_test(test_utf8_ascii_runs),
        cmocka_unit_test(test_seqlen),          cmocka_unit_test(test_xml_clean),
        cmocka_unit_test(test_escape_html),     cmocka_unit_test(test_url_segment),
        cmocka_unit_test(test_appends_and_cap), cmocka_unit_test(test_long_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
