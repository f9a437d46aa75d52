/*
 * test_html2text: the text/plain part made from a newsletter's HTML
 * (mail/html2text.c): blocks and blank lines, line breaks, lists, links,
 * images, dropped and hidden elements, white space, <pre>, quotes, wrapping
 * (Arabic counted in characters, URLs never broken), caps and errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/text.h"
#include "../../mail/html2text.h"

/* The text of html (asserting success); the caller frees. */
static char *conv(const char *html)
{
    struct buf b;

    buf_init(&b, 1 << 20);
    assert_int_equal(html_to_text(html, strlen(html), &b), 0);
    assert_int_equal(utf8_valid(buf_str(&b), b.len, NULL), 1);
    return buf_steal(&b);
}

static void check(const char *html, const char *want)
{
    char *got = conv(html);
    assert_string_equal(got, want);
    free(got);
}

/* Characters (not bytes) of each line of s: none over max, unless the line is
 * a single word. */
static void check_width(const char *s, size_t max)
{
    while (*s) {
        const char *eol = strchr(s, '\n');
        size_t cols = 0;
        assert_non_null(eol);
        for (const char *p = s; p < eol; p++)
            cols += ((unsigned char)*p & 0xc0) != 0x80;
        if (cols > max && memchr(s, ' ', (size_t)(eol - s)))
            fail_msg("line of %zu characters: %.*s", cols, (int)(eol - s), s);
        s = eol + 1;
    }
}

static void test_blocks(void **state)
{
    (void)state;
    check("<h1>Title</h1><p>One.</p><p>Two.</p>", "Title\n\nOne.\n\nTwo.\n");
    check("<div>a</div><div>b</div><div><div>c</div></div>", "a\nb\nc\n");
    check("<p>para</p><div>line</div><p>para</p>", "para\n\nline\n\npara\n");
    check("text before<p>para</p>text after", "text before\n\npara\n\ntext after\n");
    check("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>",
          "a b\nc d\n");
    check("<p>one</p><hr><p>two</p>", "one\n\ntwo\n");
    /* no blank line at either end, nothing for empty blocks */
    check("<html><body><p></p><div> </div><p>x</p><p>  </p></body></html>", "x\n");
}

static void test_br_and_space(void **state)
{
    (void)state;
    check("<p>a<br>b<br/>c</p>", "a\nb\nc\n");
    check("<p>a<br><br>b</p>", "a\n\nb\n");
    check("<p>trailing<br></p>", "trailing\n");
    check("<p>  lots \n\t of   <b>white</b>   space  </p>", "lots of white space\n");
    check("<p>a&nbsp;&nbsp;b &amp; c &lt;d&gt;</p>", "a b & c <d>\n");
    check("<p>in<b>line</b> <i>tags</i></p>", "inline tags\n");
}

static void test_lists(void **state)
{
    (void)state;
    check("<ul><li>one</li><li>two</li></ul>", "- one\n- two\n");
    check("<ol><li>one</li><li>two</li></ol>", "1. one\n2. two\n");
    check("<ol start=\"9\"><li>nine</li><li>ten</li><li>eleven</li></ol>",
          "9. nine\n10. ten\n11. eleven\n");
    check("<p>before</p><ul><li>a<ul><li>b</li><li>c</li></ul></li><li>d</li></ul><p>after</p>",
          "before\n\n- a\n  - b\n  - c\n- d\n\nafter\n");
    check("<ol><li>a<ol><li>b</li></ol></li></ol>", "1. a\n   1. b\n");
    /* a wrapped item lines up under its text */
    char *got = conv("<ul><li>This item is long enough that it must wrap onto a second line "
                     "because it is longer than seventy-two characters.</li></ul>");
    assert_string_equal(got, "- This item is long enough that it must wrap onto a second line "
                             "because\n  it is longer than seventy-two characters.\n");
    free(got);
}

static void test_links(void **state)
{
    (void)state;
    check("<p>Read <a href=\"https://example.com/p/1\">the post</a>.</p>",
          "Read the post <https://example.com/p/1>.\n");
    check("<p><a href=\"https://example.com/p/1\">https://example.com/p/1</a></p>",
          "https://example.com/p/1\n");
    check("<p><a href=\"https://example.com/\">https://example.com</a></p>",
          "https://example.com\n");
    check("<p><a href=\"mailto:ed@example.com\">ed@example.com</a></p>", "ed@example.com\n");
    check("<p><a href=\"https://example.com/x\"><img src=\"a.png\"></a></p>",
          "https://example.com/x\n");
    check("<p><a href=\"#top\">top</a> <a href=\"javascript:alert(1)\">js</a></p>", "top js\n");
    check("<p><a>no href</a></p>", "no href\n");
    check("<p><a href=\" https://example.com/a b \">spaced</a></p>",
          "spaced <https://example.com/a%20b>\n");
    check("<p><a href=\"https://example.com/&#1605;\">عربي</a></p>",
          "عربي <https://example.com/م>\n");
}

static void test_images(void **state)
{
    (void)state;
    check("<p>a<img src=\"x.png\" alt=\"Logo\">b</p>", "a Logo b\n");
    check("<p><img src=\"pixel.gif\">text<img src=\"s.gif\" alt=\"\"></p>", "text\n");
    check("<p><img alt=\"شعار النشرة\" src=\"x\"></p>", "شعار النشرة\n");
}

static void test_dropped(void **state)
{
    (void)state;
    check("<html><head><title>T</title><style>p{color:red}</style></head>"
          "<body><script>var x = 1;</script><p>shown</p><noscript></noscript></body></html>",
          "shown\n");
    check("<div style=\"display:none; max-height:0\">preheader</div><p>body</p>", "body\n");
    check("<div style=\"color: red; DISPLAY : None\">x</div><p>body</p>", "body\n");
    check("<p hidden>secret</p><p>body</p>", "body\n");
    check("<p>a<!-- comment -->b</p>", "ab\n");
    check("<p>a<svg><text>drawn</text></svg>b</p>", "ab\n");
}

static void test_pre(void **state)
{
    (void)state;
    check("<p>before</p><pre>  indented\n    more   spaces\n\nafter blank</pre><p>after</p>",
          "before\n\n  indented\n    more   spaces\n\nafter blank\n\nafter\n");
    /* not wrapped */
    char *got = conv("<pre>a very long line of preformatted text that goes well beyond the "
                     "seventy-two column limit of wrapping</pre>");
    assert_ptr_equal(strchr(got, '\n'), got + strlen(got) - 1); /* one line */
    free(got);
}

static void test_quote(void **state)
{
    (void)state;
    check("<p>said:</p><blockquote><p>one</p><p>two</p></blockquote><p>end</p>",
          "said:\n\n> one\n>\n> two\n\nend\n");
    check("<blockquote>outer<blockquote>inner</blockquote></blockquote>",
          "> outer\n>\n> > inner\n");
}

static void test_wrap(void **state)
{
    (void)state;
    char html[4096], *got;

    /* English */
    strcpy(html, "<p>");
    for (int i = 0; i < 40; i++)
        strcat(html, "word ");
    strcat(html, "</p>");
    got = conv(html);
    check_width(got, 72);
    assert_true(strchr(got, '\n') < got + strlen(got) - 1); /* more than one line */
    free(got);

    /* Arabic: 72 characters, not 72 bytes, per line */
    strcpy(html, "<p dir=\"rtl\">");
    for (int i = 0; i < 30; i++)
        strcat(html, "مرحبا بكم ");
    strcat(html, "</p>");
    got = conv(html);
    check_width(got, 72);
    const char *first_eol = strchr(got, '\n');
    size_t cols = 0;
    for (const char *p = got; p < first_eol; p++)
        cols += ((unsigned char)*p & 0xc0) != 0x80;
    assert_true(cols > 60); /* filled by characters: bytes would stop near 36 */
    free(got);

    /* a long URL is never broken, and gets a line of its own */
    got = conv("<p>Some text before a link to <a href=\"https://example.com/a/very/long/path/that/"
               "goes/on/and/on/for/more/than/seventy-two/characters/index.html\">this page</a> "
               "and after.</p>");
    assert_non_null(strstr(got, "\n<https://example.com/a/very/long/path/that/goes/on/and/on/for/"
                                "more/than/seventy-two/characters/index.html>\n"));
    check_width(got, 72);
    free(got);

    /* deep nesting keeps a usable width */
    got = conv("<blockquote><blockquote><blockquote><ul><li><ul><li><ul><li>deep item with "
               "enough words in it to need wrapping at least once here</li></ul></li></ul>"
               "</li></ul></blockquote></blockquote></blockquote>");
    check_width(got, 72);
    free(got);
}

static void test_tag_soup(void **state)
{
    (void)state;
    check("<p>unclosed <b>bold<p>next", "unclosed bold\n\nnext\n");
    check("plain text, no tags", "plain text, no tags\n");
    check("<p>a</p></div></span>b", "a\n\nb\n");
}

static void test_buffers(void **state)
{
    (void)state;
    struct buf b;

    /* appends to what is there */
    buf_init(&b, 0);
    assert_int_equal(buf_puts(&b, "before\n"), 0);
    assert_int_equal(html_to_text("<p>x</p>", 8, &b), 0);
    assert_string_equal(buf_str(&b), "before\nx\n");
    buf_free(&b);

    /* empty and blank input: nothing */
    buf_init(&b, 0);
    assert_int_equal(html_to_text("", 0, &b), 0);
    assert_int_equal(html_to_text(NULL, 0, &b), 0);
    assert_int_equal(html_to_text(" \n\t", 3, &b), 0);
    assert_int_equal(b.len, 0);
    buf_free(&b);

    /* past the cap: -1, buffer as it was */
    buf_init(&b, 16);
    assert_int_equal(buf_puts(&b, "kept"), 0);
    static const char big[] = "<p>far more text than sixteen bytes</p>";
    assert_int_equal(html_to_text(big, sizeof(big) - 1, &b), -1);
    assert_string_equal(buf_str(&b), "kept");
    buf_free(&b);

    /* the length is honoured (no NUL needed) */
    buf_init(&b, 0);
    assert_int_equal(html_to_text("<p>ab</p><p>cd</p>", 9, &b), 0);
    assert_string_equal(buf_str(&b), "ab\n");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks),  cmocka_unit_test(test_br_and_space),
        cmocka_unit_test(test_lists),   cmocka_unit_test(test_links),
        cmocka_unit_test(test_images),  cmocka_unit_test(test_dropped),
        cmocka_unit_test(test_pre),     cmocka_unit_test(test_quote),
        cmocka_unit_test(test_wrap),    cmocka_unit_test(test_tag_soup),
        cmocka_unit_test(test_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
