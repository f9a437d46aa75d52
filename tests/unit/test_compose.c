/*
 * test_compose: the per-issue cache of mail/compose makes every message byte
 * for byte as compose() makes it alone, for the built-in templates (ar, en,
 * a digest) and for our own templates that put subscriber values raw,
 * escaped, in sections, in links, in lists, quotes and <pre>, with names
 * short and long enough to change where lines wrap; values it cannot place
 * (controls, double spaces, markup written raw...) go the slow way, and so
 * does a template whose text part depends on a placeholder. The counters
 * show which way each message went, so a cache that never serves fails too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../config/config.h"
#include "../../lib/diag.h"
#include "../../lib/fileio.h"
#include "../../mail/compose.h"
#include "../../mail/newsletter.h"
#include "../../posts/post.h"

static char dir[64];

/* Our own templates: values in every place html2text treats apart. */
static const char tpl_rich[] =
    "<html dir=\"{{dir}}\"><body>\n"
    "<p>{{t.greeting}}{{#subscriber.name}} {{subscriber.name}}{{/subscriber.name}}"
    "{{^subscriber.name}} reader{{/subscriber.name}},</p>\n"
    "<p>Raw: {{{subscriber.name}}} and escaped: {{subscriber.email}}. A long line to wrap "
    "around the name {{subscriber.name}} of the reader who lives in {{subscriber.city}} "
    "and likes {{subscriber.city}} very much indeed, {{subscriber.name}}.</p>\n"
    "<ul><li>{{subscriber.name}} first item with enough words to wrap past seventy-two "
    "columns of text</li><li>second <b>{{subscriber.city}}</b></li>"
    "<li><ol start=\"3\"><li>nested {{subscriber.name}}</li></ol></li></ul>\n"
    "<blockquote><p>Quoted {{subscriber.name}} {{subscriber.name}} {{subscriber.name}} "
    "{{subscriber.name}} {{subscriber.name}}</p></blockquote>\n"
    "<pre>  pre {{subscriber.name}}\n   kept</pre>\n"
    "<p><a href=\"{{subscriber.website}}\">my site</a> "
    "<img alt=\"photo of {{subscriber.name}}\" src=\"x.png\"></p>\n"
    "{{#post}}<h1>{{title}}</h1>{{{html}}}{{/post}}\n"
    "<p><a href=\"{{unsubscribe_url}}\">{{t.unsubscribe}}</a></p>\n"
    "</body></html>\n";

/* The link's text is the placeholder of its own target: not cacheable. */
static const char tpl_unsafe[] = "<p>Hi {{subscriber.name}}</p>\n"
                                 "<p><a href=\"{{unsubscribe_url}}\">{{unsubscribe_url}}</a></p>\n";

static const char post_md[] = "---\ntitle: \"Lists & <quotes>\"\ndate: 2026-03-01\n---\n\n"
                              "A paragraph with **bold** and a [link](https://example.org/a).\n\n"
                              "- one\n- two with a longer text that goes on and on and on\n\n"
                              "> a quote\n\n```\ncode  block\n```\n";

static struct config *cfg;
static struct newsletter *nl;
static struct composer comp;
static struct post *seed, *md;

static void put(const char *name, const char *text)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    char path[160];
    struct diag err = {0};
    char *err_file = NULL;
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/nashra-compose-XXXXXX");
    assert_non_null(mkdtemp(dir));
    put("rich.html", tpl_rich);
    put("unsafe.html", tpl_unsafe);
    put("nashra.yaml", "site:\n  title: \"نشرة\"\n  url: https://news.example.org\n"
                       "  language: ar\n"
                       "mail:\n  from: \"نشرة الأخبار <news@example.org>\"\n"
                       "lists:\n"
                       "  - id: ar\n    name: \"نشاطات\"\n"
                       "  - id: en\n    name: \"English\"\n    language: en\n"
                       "    subject: \"{{post.title}} for {{subscriber.name}}\"\n"
                       "  - id: digest\n    mode: digest\n    schedule: \"daily 08:00\"\n"
                       "  - id: rich\n    template: rich.html\n"
                       "    subject: \"{{subscriber.name}} / {{subscriber.city}}\"\n"
                       "  - id: unsafe\n    template: unsafe.html\n");
    snprintf(path, sizeof path, "%s/nashra.yaml", dir);
    cfg = config_load(path, &err, &err_file);
    if (!cfg)
        fail_msg("config: %s", err.msg);
    nl = newsletter_load(cfg, &err, &err_file);
    if (!nl)
        fail_msg("templates: %s", err.msg);
    unsigned char key[32];
    memset(key, 7, sizeof key);
    newsletter_use_key(nl, key);
    assert_int_equal(composer_init(&comp, cfg, nl, key), 0);

    struct buf data;
    buf_init(&data, 1u << 24);
    const char *why = NULL;
    assert_int_equal(
        file_read("../shared/corpus/seed/000_4b7e5a30f0005dac.txt", 1u << 24, &data, &why), 0);
    seed = post_parse(cfg, "seed.txt", buf_str(&data), data.len, 1767225600, &err);
    buf_free(&data);
    assert_non_null(seed);
    md = post_parse(cfg, "md.md", post_md, strlen(post_md), 1767225600, &err);
    assert_non_null(md);
    setenv("NASHRA_NOW", "1780000000", 1);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    post_free(seed);
    post_free(md);
    composer_free(&comp);
    newsletter_free(nl);
    config_free(cfg);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

struct who {
    const char *email, *name, *extra;
    int fast; /* 1: the cache must serve it; 0: the slow way; -1: either; -2: slow for "rich" */
};

static const struct who people[] = {
    {"ali@example.net", "علي", "{}", 1},
    {"fatima@example.net", "فاطمة الزهراء بنت محمد الحلبي", "{\"city\":\"حلب\"}", 1},
    {"x@example.net", "", "{}", 1},
    {"long@example.net",
     "Abcdefghij Klmnopqrstu Vwxyzabcde Fghijklmno Pqrstuvwxy Zabcdefghi Jklmnopqrs Tuvwxyzabc",
     "{\"city\":\"Tunis\",\"website\":\"https://long.example.net/me\"}", 1},
    {"word@example.net",
     "Averyveryveryverylongsinglewordnamethatisfarlongerthanseventytwocolumns"
     "ofanytextline",
     "{\"city\":\"\"}", 1},
    {"o@example.net", "O'Brien & Sons", "{}", -1},
    {"tag@example.net", "<b>bold</b>", "{}", -1},
    {"two@example.net", "two  spaces", "{}", 0},
    {"lead@example.net", " leading", "{}", 0},
    {"crlf@example.net", "Evil\r\nBcc: victim@example.org", "{}", 0},
    {"nbsp@example.net",
     "no\xc2\xa0"
     "break",
     "{}", 0},
    {"pua@example.net",
     "mark \xee\x80\x80"
     "&00 here",
     "{}", 0},
    {"num@example.net", "Num", "{\"age\":42}", 0},
    {"site@example.net", "Site", "{\"website\":\"https://a.example/b c\"}", -1},
    {"hash@example.net", "Hash", "{\"website\":\"#top\"}", -2},
    {"js@example.net", "Js", "{\"website\":\"JavaScript:alert(1)\"}", -2},
    {"ali2@example.net", "علي", "{}", 1},
};

static void same_messages(const char *list, struct post *const *posts, size_t nposts, int digest,
                          int want_fast)
{
    size_t li = 0;
    while (li < cfg->nlists && strcmp(cfg->lists[li].id, list))
        li++;
    assert_true(li < cfg->nlists);
    struct compose_cache cc;
    compose_cache_init(&cc);
    for (int round = 0; round < 2; round++) /* the second from the cache's shapes */
        for (size_t i = 0; i < sizeof people / sizeof *people; i++) {
            const struct who *w = &people[i];
            struct newsletter_to to = {
                .id = (int64_t)i + 1, .email = w->email, .name = w->name, .extra = w->extra};
            struct buf a, b, va, vb;
            buf_init(&a, 1u << 26);
            buf_init(&b, 1u << 26);
            buf_init(&va, 4096);
            buf_init(&vb, 4096);
            unsigned long fast = cc.fast, slow = cc.slow;
            assert_int_equal(compose(&comp, li, posts, nposts, digest, &to, 9, &a, &va, NULL), 0);
            assert_int_equal(compose_cached(&comp, &cc, li, posts, nposts, digest, &to, 9, &b, &vb),
                             0);
            if (a.len != b.len || memcmp(a.data, b.data, a.len)) {
                char p1[200], p2[200];
                snprintf(p1, sizeof p1, "%s/slow-%s-%zu.eml", dir, list, i);
                snprintf(p2, sizeof p2, "%s/fast-%s-%zu.eml", dir, list, i);
                file_write_if_changed(p1, a.data, a.len);
                file_write_if_changed(p2, b.data, b.len);
                fail_msg("list %s, subscriber %zu (%s): the messages differ: diff %s %s", list, i,
                         w->email, p1, p2);
            }
            assert_string_equal(buf_str(&va), buf_str(&vb));
            int went_fast = cc.fast > fast;
            assert_true(went_fast || cc.slow > slow);
            if (want_fast && w->fast == 1 && !went_fast)
                fail_msg("list %s, subscriber %zu (%s): not served by the cache", list, i,
                         w->email);
            if ((w->fast == 0 || (w->fast == -2 && !strcmp(list, "rich"))) && went_fast)
                fail_msg("list %s, subscriber %zu (%s): served by the cache", list, i, w->email);
            if (!want_fast && went_fast)
                fail_msg("list %s: an unsafe template served by the cache", list);
            buf_free(&a);
            buf_free(&b);
            buf_free(&va);
            buf_free(&vb);
        }
    if (want_fast)
        assert_true(cc.fast >= 2 * 6);
    compose_cache_free(&cc);
}

static void test_builtin_ar(void **state)
{
    (void)state;
    same_messages("ar", &seed, 1, 0, 1);
    same_messages("ar", &md, 1, 0, 1);
}

static void test_builtin_en(void **state)
{
    (void)state;
    same_messages("en", &md, 1, 0, 1);
}

static void test_digest(void **state)
{
    struct post *both[2] = {md, seed};
    (void)state;
    same_messages("digest", both, 2, 1, 1);
}

static void test_rich(void **state)
{
    (void)state;
    same_messages("rich", &md, 1, 0, 1);
    same_messages("rich", &seed, 1, 0, 1);
}

static void test_unsafe(void **state)
{
    (void)state;
    same_messages("unsafe", &md, 1, 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_ar), cmocka_unit_test(test_builtin_en),
        cmocka_unit_test(test_digest),     cmocka_unit_test(test_rich),
        cmocka_unit_test(test_unsafe),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
