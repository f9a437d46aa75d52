/*
 * test_post: reading posts (posts/): front matter and its types, defaults,
 * slugs, dates, Markdown and text rendering, link safety, encoding checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/timefmt.h"
#include "../../posts/post.h"
#include "../../posts/post_render.h"

static struct config cfg;

static int setup(void **state)
{
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.site.title = "نشرة";
    cfg.site.url = "https://news.example.org";
    cfg.site.language = "ar";
    cfg.site.rtl = 1;
    cfg.site.timezone = "Asia/Riyadh";
    cfg.site.author_name = "Desk";
    cfg.content.dir = "/nonexistent";
    cfg.content.max_bytes = 1 << 20;
    assert_int_equal(timefmt_set_zone("Asia/Riyadh"), 0);
    return 0;
}

static struct post *parse(const char *path, const char *src, struct diag *d)
{
    memset(d, 0, sizeof *d);
    return post_parse(&cfg, path, src, strlen(src), 1700000000, d);
}

static void test_front_matter_fields(void **state)
{
    (void)state;
    struct diag d;
    struct post *p = parse("2024/a.md",
                           "---\ntitle: \"عنوان\"\ndate: 2024-04-13 10:00\n"
                           "categories: [\"نشاطات\", x]\ntags: [t]\n"
                           "lang: en\nslug: my-post\ndraft: false\n---\nBody.\n",
                           &d);
    assert_non_null(p);
    assert_string_equal(p->title, "عنوان");
    assert_int_equal(p->date, 1712991600); /* 2024-04-13T07:00:00Z */
    assert_int_equal(p->ncategories, 2);
    assert_string_equal(p->categories[0], "نشاطات");
    assert_int_equal(p->ntags, 1);
    assert_string_equal(p->lang, "en");
    assert_int_equal(p->rtl, 0);
    assert_string_equal(p->slug, "my-post");
    assert_string_equal(p->url, "https://news.example.org/posts/my-post/");
    assert_string_equal(p->author, "Desk");
    assert_string_equal(p->summary, "Body.");
    assert_string_equal(p->html, "<p>Body.</p>\n");
    post_free(p);
}

static void test_defaults(void **state)
{
    (void)state;
    struct diag d;
    struct post *p = parse("dir/مقالة.md", "# العنوان الأول\n\nفقرة أولى.\n\nثانية.\n", &d);
    assert_non_null(p);
    assert_string_equal(p->title, "العنوان الأول");
    assert_string_equal(p->slug, "مقالة");
    assert_string_equal(p->url, "https://news.example.org/posts/"
                                "%D9%85%D9%82%D8%A7%D9%84%D8%A9/");
    assert_int_equal(p->date, 1700000000); /* first seen */
    assert_int_equal(p->rtl, 1);
    assert_string_equal(p->lang, "ar");
    assert_string_equal(p->summary, "فقرة أولى.");
    assert_int_equal(p->newsletter, 1);
    /* the heading became the title: the body does not repeat it */
    assert_string_equal(p->html, "<p>فقرة أولى.</p>\n<p>ثانية.</p>\n");
    post_free(p);

    /* a title given in front matter: the heading is the body's own */
    p = parse("t.md", "---\ntitle: T\n---\n# H\n\nx\n", &d);
    assert_non_null(p);
    assert_string_equal(p->title, "T");
    assert_string_equal(p->html, "<h1>H</h1>\n<p>x</p>\n");
    post_free(p);

    /* a heading that is not the first block stays where it is */
    p = parse("u.md", "intro\n\n# H\n", &d);
    assert_non_null(p);
    assert_string_equal(p->title, "H");
    assert_string_equal(p->html, "<p>intro</p>\n<h1>H</h1>\n");
    post_free(p);

    p = parse("x/only-name.md", "no heading here\n", &d);
    assert_non_null(p);
    assert_string_equal(p->title, "only-name");
    post_free(p);
}

static void test_text_post(void **state)
{
    (void)state;
    struct diag d;
    struct post *p = parse("a.txt", "\nFirst line <b>\nsecond & line\n\nPara two\n", &d);
    assert_non_null(p);
    assert_int_equal(p->kind, POST_TEXT);
    assert_string_equal(p->title, "First line <b>");
    assert_string_equal(p->html, "<p>First line &lt;b&gt;<br>\nsecond &amp; line</p>\n"
                                 "<p>Para two</p>\n");
    post_free(p);
}

static void test_links_absolute_and_safe(void **state)
{
    (void)state;
    struct diag d;
    struct post *p =
        parse("b.md",
              "See [r](report.pdf), [p](/press/), [u](../up/x?q=1#f), [j](javascript:alert(1)),\n"
              "[J](JaVaScRiPt:x), [d](data:text/html,x), [m](mailto:a@b.c) and "
              "![img](images/a.png).\n\n<script>alert(1)</script>\n\n<b onclick=x>raw</b>\n",
              &d);
    assert_non_null(p);
    const char *h = p->html;
    assert_non_null(strstr(h, "href=\"https://news.example.org/posts/b/report.pdf\""));
    assert_non_null(strstr(h, "href=\"https://news.example.org/press/\""));
    assert_non_null(strstr(h, "href=\"https://news.example.org/posts/up/x?q=1#f\""));
    assert_non_null(strstr(h, "href=\"mailto:a@b.c\""));
    assert_non_null(strstr(h, "src=\"https://news.example.org/posts/b/images/a.png\" alt=\"img\""));
    assert_null(strstr(h, "javascript"));
    assert_null(strstr(h, "JaVaScRiPt"));
    assert_null(strstr(h, "data:"));
    assert_null(strstr(h, "<script"));
    assert_null(strstr(h, "onclick"));
    assert_non_null(strstr(h, ">j</a>") == NULL ? "ok" : NULL); /* unsafe link keeps text only */
    assert_non_null(strstr(h, " j,"));
    post_free(p);
}

static void test_allow_html(void **state)
{
    (void)state;
    struct diag d;
    cfg.content.allow_html = 1;
    struct post *p = parse("c.md", "<div class=\"x\">kept</div>\n", &d);
    cfg.content.allow_html = 0;
    assert_non_null(p);
    assert_non_null(strstr(p->html, "<div class=\"x\">kept</div>"));
    post_free(p);
}

static void test_table_and_strike(void **state)
{
    (void)state;
    struct diag d;
    struct post *p = parse("t.md", "| a | b |\n|---|--:|\n| 1 | 2 |\n\n~~gone~~\n", &d);
    assert_non_null(p);
    assert_non_null(strstr(p->html, "<table>"));
    assert_non_null(strstr(p->html, "<td style=\"text-align:right\">2</td>"));
    assert_non_null(strstr(p->html, "<del>gone</del>"));
    post_free(p);
}

static void test_rejections(void **state)
{
    (void)state;
    struct diag d;
    assert_null(parse("e.md", "", &d));
    assert_non_null(strstr(d.msg, "empty"));

    assert_null(parse("u.md", "---\ntitle: x\n\nbody\n", &d));
    assert_int_equal(d.line, 1);
    assert_non_null(strstr(d.msg, "never closed"));

    assert_null(parse("y.md", "---\ntitle: \"unclosed\ndate: 2024-01-01\n---\nbody\n", &d));
    assert_true(d.line >= 2);

    assert_null(
        parse("w.md", "---\ntitle: t\ndate: yesterday\ncategories: 5\ndraft: maybe\n---\nb\n", &d));
    assert_int_equal(d.line, 3);
    assert_non_null(strstr(d.msg, "date"));
    assert_non_null(strstr(d.msg, "categories"));
    assert_non_null(strstr(d.msg, "draft"));

    assert_null(parse("i.md", "---\ntitle: t\n---\nline\nvalid \xc3( bad\n", &d));
    assert_int_equal(d.line, 5);
    assert_int_equal(d.col, 7);
    assert_non_null(strstr(d.msg, "UTF-8"));

    assert_null(parse("d.md", "---\ndate: 2024-02-30\n---\nx\n", &d));
    assert_int_equal(d.line, 2);

    assert_null(parse("s.md", "---\nslug: ../../etc/x\n---\nx\n", &d));
    assert_non_null(strstr(d.msg, "slug"));
    assert_null(parse("s.md", "---\nslug: \"a/b?c#d e\"\n---\nx\n", &d));
    assert_null(parse("s.md", "---\nslug: \".hidden\"\n---\nx\n", &d));
}

static void test_bom_crlf_controls(void **state)
{
    (void)state;
    struct diag d;
    struct post *p = parse("bom.md", "\xEF\xBB\xBF---\r\ntitle: \"BOM\"\r\n---\r\nbody\r\n", &d);
    assert_non_null(p);
    assert_string_equal(p->title, "BOM");
    post_free(p);

    p = parse("cc.md",
              "---\ntitle: \"a\x01"
              "b\\r\\nBcc: x\"\n---\nbell\x07 nonchar \xEF\xBF\xBE end\n",
              &d);
    assert_non_null(p);
    assert_null(strchr(p->title, '\r'));
    assert_null(strchr(p->title, '\n'));
    assert_null(strchr(p->html, '\x07'));
    assert_null(strstr(p->html, "\xEF\xBF\xBE"));
    post_free(p);
}

static void test_yaml_bomb_is_bounded(void **state)
{
    (void)state;
    struct diag d;
    char src[4096] =
        "---\ntitle: bomb\nx0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
    for (int i = 1; i < 12; i++) {
        char line[128];
        snprintf(line, sizeof line, "x%d: &a%d [*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d]\n", i, i,
                 i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
        strcat(src, line);
    }
    strcat(src, "---\nbody\n");
    assert_null(parse("bomb.md", src, &d));
}

static void test_summary_cut(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    char s[2000] = "";
    for (int i = 0; i < 100; i++)
        strcat(s, "كلمة ");
    assert_int_equal(text_summary(&b, s, strlen(s), 280), 0);
    assert_true(b.len < strlen(s));
    assert_non_null(strstr(b.data, "…"));
    assert_memory_equal(b.data + b.len - strlen("كلمة…"), "كلمة…", strlen("كلمة…"));
    buf_free(&b);
}

static void test_path_wanted(void **state)
{
    (void)state;
    assert_true(post_path_wanted("a.md"));
    assert_true(post_path_wanted("a.txt"));
    assert_false(post_path_wanted(".a.md"));
    assert_false(post_path_wanted("a.md~"));
    assert_false(post_path_wanted("a.md.swp"));
    assert_false(post_path_wanted("#a.md#"));
    assert_false(post_path_wanted("a.tmp"));
    assert_false(post_path_wanted("a.html"));
}

static void test_url_resolve(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    const char *base = "https://h.org/site/posts/s/";
    assert_int_equal(url_resolve(&b, base, "a/../b/./c", 10), 0);
    assert_string_equal(b.data, "https://h.org/site/posts/s/b/c");
    buf_reset(&b);
    assert_int_equal(url_resolve(&b, base, "//cdn.org/x", 11), 0);
    assert_string_equal(b.data, "https://cdn.org/x");
    buf_reset(&b);
    assert_int_equal(url_resolve(&b, base, "#top", 4), 0);
    assert_string_equal(b.data, "https://h.org/site/posts/s/#top");
    buf_reset(&b);
    assert_int_equal(url_resolve(&b, base, "../../../../x", 13), 0);
    assert_string_equal(b.data, "https://h.org/x");
    assert_int_equal(url_resolve(&b, base, "java\tscript:x", 13), -1);
    assert_int_equal(url_resolve(&b, base, "vbscript:x", 10), -1);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_front_matter_fields),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_text_post),
        cmocka_unit_test(test_links_absolute_and_safe),
        cmocka_unit_test(test_allow_html),
        cmocka_unit_test(test_table_and_strike),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_bom_crlf_controls),
        cmocka_unit_test(test_yaml_bomb_is_bounded),
        cmocka_unit_test(test_summary_cut),
        cmocka_unit_test(test_path_wanted),
        cmocka_unit_test(test_url_resolve),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
