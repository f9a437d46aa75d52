/*
 * Unit tests for config/config: every default, every key, unknown keys with
 * suggestions, ${NAME} expansion, _file secrets, relative paths, and the
 * errors (types, lists, URL, time zone, sizes) with their positions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../config/config.h"

#define MINIMAL "site:\n  url: https://news.example.org\n  title: \"News\"\n"

static char tmpdir[PATH_MAX]; /* realpath of a mkdtemp folder */

static char *tmp_path(const char *name)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(tmp_path(name), "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static struct config *load_text(const char *text, struct diag *d, char **err_file)
{
    write_file("nashra.yaml", text);
    memset(d, 0, sizeof *d);
    return config_load(tmp_path("nashra.yaml"), d, err_file);
}

static struct config *load_ok(const char *text)
{
    struct diag d;
    struct config *cfg = load_text(text, &d, NULL);
    if (!cfg)
        fail_msg("config rejected: %d:%d: %s", d.line, d.col, d.msg);
    return cfg;
}

/* Loads text, which must fail at line:col (0:0: unchecked) with each word. */
static void expect_error(const char *text, int line, int col, const char *w1, const char *w2)
{
    struct diag d;
    char *file = NULL;
    struct config *cfg = load_text(text, &d, &file);
    if (cfg)
        fail_msg("accepted, expected an error: %s", text);
    assert_non_null(file);
    assert_string_equal(file, tmp_path("nashra.yaml"));
    free(file);
    if (line && (d.line != line || d.col != col))
        fail_msg("error at %d:%d, expected %d:%d: %s", d.line, d.col, line, col, d.msg);
    if (w1 && !strstr(d.msg, w1))
        fail_msg("'%s' not in: %s", w1, d.msg);
    if (w2 && !strstr(d.msg, w2))
        fail_msg("'%s' not in: %s", w2, d.msg);
}

/* The same, with MINIMAL before extra: positions count MINIMAL's 3 lines. */
static char *with_minimal(const char *extra)
{
    char *text = malloc(strlen(MINIMAL) + strlen(extra) + 1);
    assert_non_null(text);
    strcpy(text, MINIMAL);
    strcat(text, extra);
    return text;
}

static void expect_extra_error(const char *extra, int line, int col, const char *w1, const char *w2)
{
    char *text = with_minimal(extra);
    expect_error(text, line, col, w1, w2);
    free(text);
}

static struct config *load_extra(const char *extra)
{
    char *text = with_minimal(extra);
    struct config *cfg = load_ok(text);
    free(text);
    return cfg;
}

static char *in_tmp(const char *rel)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    return path;
}

static int setup(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/nashra-test-config-XXXXXX";
    if (!mkdtemp(tmpl) || !realpath(tmpl, tmpdir))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"nashra.yaml", "smtp.pass", "empty.pass", "bad.pass", "big.yaml"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unlink(tmp_path(names[i]));
    rmdir(tmp_path("sub"));
    return rmdir(tmpdir);
}

static void test_minimal_defaults(void **state)
{
    (void)state;
    struct config *cfg = load_ok(MINIMAL);
    assert_string_equal(cfg->path, in_tmp("nashra.yaml"));
    assert_string_equal(cfg->dir, tmpdir);
    assert_string_equal(cfg->site.title, "News");
    assert_string_equal(cfg->site.url, "https://news.example.org");
    assert_string_equal(cfg->site.host, "news.example.org");
    assert_string_equal(cfg->site.language, "en");
    assert_false(cfg->site.rtl);
    assert_string_equal(cfg->site.timezone, "UTC");
    assert_string_equal(cfg->site.author_name, "News");
    assert_null(cfg->site.author_email);
    assert_string_equal(cfg->content.dir, in_tmp("content"));
    assert_false(cfg->content.allow_html);
    assert_int_equal(cfg->content.max_bytes, 10 * 1024 * 1024);
    assert_string_equal(cfg->output.dir, in_tmp("public"));
    assert_string_equal(cfg->output.templates, in_tmp("templates"));
    assert_string_equal(cfg->state.dir, in_tmp("state"));
    assert_int_equal(cfg->feeds.items, 20);
    assert_true(cfg->feeds.full_content);
    assert_true(cfg->feeds.categories);
    assert_string_equal(cfg->http.listen, "127.0.0.1:8080");
    assert_false(cfg->http.trust_proxy);
    assert_true(cfg->activitypub.enabled);
    assert_string_equal(cfg->activitypub.username, "news");
    assert_string_equal(cfg->activitypub.display_name, "News");
    assert_string_equal(cfg->activitypub.summary, "");
    assert_string_equal(cfg->activitypub.object_type, "Article");
    assert_string_equal(cfg->activitypub.actor_type, "Service");
    assert_null(cfg->activitypub.icon);
    assert_false(cfg->activitypub.allow_insecure_loopback);
    assert_int_equal(cfg->mail.transport, MAIL_MAILDIR);
    assert_string_equal(cfg->mail.maildir_path, in_tmp("state/outbox"));
    assert_string_equal(cfg->mail.smtp.host, "localhost");
    assert_int_equal(cfg->mail.smtp.port, 587);
    assert_int_equal(cfg->mail.smtp.tls, SMTP_TLS_STARTTLS);
    assert_null(cfg->mail.smtp.username);
    assert_null(cfg->mail.smtp.password);
    assert_int_equal(cfg->mail.smtp.connections, 4);
    assert_int_equal(cfg->mail.smtp.rate, 50);
    assert_int_equal(cfg->mail.smtp.timeout, 30);
    assert_string_equal(cfg->mail.from, "News <news@news.example.org>");
    assert_string_equal(cfg->mail.secret_file, in_tmp("state/secret"));
    assert_null(cfg->mail.dkim.domain);
    assert_null(cfg->mail.dkim.selector);
    assert_null(cfg->mail.dkim.key_file);
    assert_null(cfg->mail.bounces.maildir);
    assert_int_equal(cfg->mail.bounces.soft_limit, 3);
    assert_null(cfg->lists);
    assert_int_equal(cfg->nlists, 0);
    config_free(cfg);
    config_free(NULL);
}

static const char FULL[] =
    "site:\n"
    "  title: \"نشاطات منظمة التعاون الرقمي\"\n"
    "  url: HTTPS://news.example.org:8443/ar/\n"
    "  language: ar-SA\n"
    "  timezone: Asia/Riyadh\n"
    "  author: { name: \"فريق التحرير\", email: team@example.org }\n"
    "content: { dir: posts, allow_html: true, max_bytes: 512KiB }\n"
    "output: { dir: ./out/, templates: /srv/tpl }\n"
    "state: { dir: var/state }\n"
    "feeds: { items: 5, full_content: false, categories: False }\n"
    "http: { listen: \"[::1]:9000\", trust_proxy: TRUE }\n"
    "activitypub:\n"
    "  enabled: false\n"
    "  username: akhbar\n"
    "  display_name: أخبار\n"
    "  summary: |\n"
    "    line one\n"
    "    line two\n"
    "  object_type: Note\n"
    "  actor_type: Person\n"
    "  icon: /icon.png\n"
    "  allow_insecure_loopback: true\n"
    "mail:\n"
    "  transport: smtp\n"
    "  maildir: { path: /var/outbox }\n"
    "  smtp: { host: mx.example.org, tls: tls, username: u, password: p, connections: 8,\n"
    "          rate: 0, timeout: 60 }\n"
    "  from: \"نشرة <news@example.org>\"\n"
    "  secret_file: keys/secret\n"
    "  dkim: { domain: example.org, selector: s1, key_file: dkim.pem }\n"
    "  bounces: { maildir: bounces, soft_limit: 5 }\n"
    "lists:\n"
    "  - id: activities\n"
    "    name: نشاطات\n"
    "    categories: [\"نشاطات\", events]\n"
    "    mode: digest\n"
    "    schedule: \"weekly MON 7:05\"\n"
    "    subject: \"{{post.title}} — نشرة\"\n"
    "    template: templates/newsletter.html\n"
    "    language: ar\n"
    "  - id: all_posts-2\n"
    "    categories: one\n";

static void test_every_key(void **state)
{
    (void)state;
    struct config *cfg = load_ok(FULL);
    assert_string_equal(cfg->site.title, "نشاطات منظمة التعاون الرقمي");
    assert_string_equal(cfg->site.url, "https://news.example.org:8443/ar");
    assert_string_equal(cfg->site.host, "news.example.org:8443");
    assert_string_equal(cfg->site.language, "ar-SA");
    assert_true(cfg->site.rtl);
    assert_string_equal(cfg->site.timezone, "Asia/Riyadh");
    assert_string_equal(cfg->site.author_name, "فريق التحرير");
    assert_string_equal(cfg->site.author_email, "team@example.org");
    assert_string_equal(cfg->content.dir, in_tmp("posts"));
    assert_true(cfg->content.allow_html);
    assert_int_equal(cfg->content.max_bytes, 512 * 1024);
    assert_string_equal(cfg->output.dir, in_tmp("out/"));
    assert_string_equal(cfg->output.templates, "/srv/tpl");
    assert_string_equal(cfg->state.dir, in_tmp("var/state"));
    assert_int_equal(cfg->feeds.items, 5);
    assert_false(cfg->feeds.full_content);
    assert_false(cfg->feeds.categories);
    assert_string_equal(cfg->http.listen, "[::1]:9000");
    assert_true(cfg->http.trust_proxy);
    assert_false(cfg->activitypub.enabled);
    assert_string_equal(cfg->activitypub.username, "akhbar");
    assert_string_equal(cfg->activitypub.display_name, "أخبار");
    assert_string_equal(cfg->activitypub.summary, "line one\nline two\n");
    assert_string_equal(cfg->activitypub.object_type, "Note");
    assert_string_equal(cfg->activitypub.actor_type, "Person");
    assert_string_equal(cfg->activitypub.icon, "https://news.example.org:8443/ar/icon.png");
    assert_true(cfg->activitypub.allow_insecure_loopback);
    assert_int_equal(cfg->mail.transport, MAIL_SMTP);
    assert_string_equal(cfg->mail.maildir_path, "/var/outbox");
    assert_string_equal(cfg->mail.smtp.host, "mx.example.org");
    assert_int_equal(cfg->mail.smtp.port, 465); /* tls: tls */
    assert_int_equal(cfg->mail.smtp.tls, SMTP_TLS_TLS);
    assert_string_equal(cfg->mail.smtp.username, "u");
    assert_string_equal(cfg->mail.smtp.password, "p");
    assert_int_equal(cfg->mail.smtp.connections, 8);
    assert_int_equal(cfg->mail.smtp.rate, 0);
    assert_int_equal(cfg->mail.smtp.timeout, 60);
    assert_string_equal(cfg->mail.from, "نشرة <news@example.org>");
    assert_string_equal(cfg->mail.secret_file, in_tmp("keys/secret"));
    assert_string_equal(cfg->mail.dkim.domain, "example.org");
    assert_string_equal(cfg->mail.dkim.selector, "s1");
    assert_string_equal(cfg->mail.dkim.key_file, in_tmp("dkim.pem"));
    assert_string_equal(cfg->mail.bounces.maildir, in_tmp("bounces"));
    assert_int_equal(cfg->mail.bounces.soft_limit, 5);

    assert_int_equal(cfg->nlists, 2);
    const struct config_list *l = &cfg->lists[0];
    assert_string_equal(l->id, "activities");
    assert_string_equal(l->name, "نشاطات");
    assert_int_equal(l->ncategories, 2);
    assert_string_equal(l->categories[0], "نشاطات");
    assert_string_equal(l->categories[1], "events");
    assert_null(l->categories[2]);
    assert_int_equal(l->mode, LIST_DIGEST);
    assert_string_equal(l->schedule, "weekly mon 07:05");
    assert_string_equal(l->subject, "{{post.title}} — نشرة");
    assert_string_equal(l->template, in_tmp("templates/newsletter.html"));
    assert_string_equal(l->language, "ar");
    l = &cfg->lists[1];
    assert_string_equal(l->id, "all_posts-2");
    assert_string_equal(l->name, "all_posts-2");
    assert_int_equal(l->ncategories, 1);
    assert_string_equal(l->categories[0], "one");
    assert_int_equal(l->mode, LIST_EACH);
    assert_string_equal(l->schedule, "daily 08:00");
    assert_string_equal(l->subject, "{{post.title}}");
    assert_null(l->template);
    assert_string_equal(l->language, "ar-SA"); /* site.language */
    config_free(cfg);
}

static void test_list_defaults_without_categories(void **state)
{
    (void)state;
    struct config *cfg = load_extra("lists:\n  - id: weekly\n    mode: digest\n");
    assert_int_equal(cfg->nlists, 1);
    assert_int_equal(cfg->lists[0].ncategories, 0);
    assert_non_null(cfg->lists[0].categories);
    assert_null(cfg->lists[0].categories[0]);
    assert_string_equal(cfg->lists[0].schedule, "daily 08:00");
    assert_string_equal(cfg->lists[0].language, "en");
    config_free(cfg);
    cfg = load_extra("lists: []\n");
    assert_int_equal(cfg->nlists, 0);
    config_free(cfg);
}

static void test_smtp_port_follows_tls(void **state)
{
    (void)state;
    struct config *cfg = load_extra("mail: { smtp: { tls: none } }\n");
    assert_int_equal(cfg->mail.smtp.port, 25);
    config_free(cfg);
    cfg = load_extra("mail: { smtp: { tls: tls, port: 2465 } }\n");
    assert_int_equal(cfg->mail.smtp.port, 2465);
    config_free(cfg);
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_extra_error("  langauge: ar\n", 4, 3, "did you mean 'language'?", "'langauge'");
    expect_extra_error("feed:\n  items: 5\n", 4, 1, "did you mean 'feeds'?", NULL);
    expect_extra_error("items: 5\n", 4, 1, "did you mean 'feeds.items'?", NULL);
    expect_extra_error("mail:\n  smtp:\n    pasword_file: x\n", 6, 5,
                       "did you mean 'password_file'?", "mail.smtp");
    expect_extra_error("lists:\n  - id: a\n    mdoe: each\n", 6, 5, "did you mean 'mode'?",
                       "lists[0]");
    /* Nothing close: no suggestion. */
    struct diag d;
    char *file = NULL;
    char text[256];
    snprintf(text, sizeof text, "%s%s", MINIMAL, "zzzzzzzz: 1\n");
    assert_null(load_text(text, &d, &file));
    assert_non_null(strstr(d.msg, "unknown key 'zzzzzzzz'"));
    assert_null(strstr(d.msg, "did you mean"));
    assert_int_equal(d.line, 4);
    free(file);
}

static void test_env_substitution(void **state)
{
    (void)state;
    setenv("NASHRA_TEST_HOST", "env.example.org", 1);
    setenv("NASHRA_TEST_PASS", "s3cret", 1);
    setenv("NASHRA_TEST_ITEMS", "7", 1);
    struct config *cfg = load_ok("site:\n  url: https://${NASHRA_TEST_HOST}/x\n"
                                 "  title: \"${NASHRA_TEST_HOST} and ${NASHRA_TEST_HOST}\"\n"
                                 "feeds: { items: \"${NASHRA_TEST_ITEMS}\" }\n"
                                 "mail: { smtp: { password: \"${NASHRA_TEST_PASS}\" } }\n");
    assert_string_equal(cfg->site.url, "https://env.example.org/x");
    assert_string_equal(cfg->site.host, "env.example.org");
    assert_string_equal(cfg->site.title, "env.example.org and env.example.org");
    assert_int_equal(cfg->feeds.items, 7);
    assert_string_equal(cfg->mail.smtp.password, "s3cret");
    config_free(cfg);

    unsetenv("NASHRA_TEST_UNSET");
    expect_extra_error("mail:\n  from: \"x <${NASHRA_TEST_UNSET}@example.org>\"\n", 5, 9,
                       "NASHRA_TEST_UNSET is not set", "mail.from");
    expect_extra_error("state: { dir: \"${1BAD}\" }\n", 4, 15, "${NAME}", "state.dir");
    expect_extra_error("state: { dir: \"${OPEN\" }\n", 4, 15, "${NAME}", NULL);
}

static void test_password_file(void **state)
{
    (void)state;
    write_file("smtp.pass", "hunter2\n");
    mkdir(tmp_path("sub"), 0755);
    struct config *cfg = load_extra("mail:\n  smtp: { password_file: smtp.pass }\n");
    assert_string_equal(cfg->mail.smtp.password, "hunter2");
    config_free(cfg);
    char text[PATH_MAX + 512];
    snprintf(text, sizeof text, "mail:\n  smtp: { password_file: %s }\n", tmp_path("smtp.pass"));
    cfg = load_extra(text);
    assert_string_equal(cfg->mail.smtp.password, "hunter2");
    config_free(cfg);

    /* A missing file: the error is in the config, at the value. */
    expect_extra_error("mail:\n  smtp: { password_file: nowhere.pass }\n", 5, 26, "cannot read",
                       "No such file");
    expect_extra_error("mail:\n  smtp: { password_file: sub }\n", 5, 26, "not a regular file",
                       NULL);
    expect_extra_error("mail:\n  smtp: { password_file: smtp.pass, password: x }\n", 5, 26,
                       "not both", NULL);

    /* A bad secret: the error is in the secret's file, without its contents. */
    write_file("empty.pass", "\n");
    write_file("bad.pass", "line1\nline2\n");
    const char *bad[] = {"empty.pass", "bad.pass"};
    const int lines[] = {0, 1};
    for (int i = 0; i < 2; i++) {
        struct diag d;
        char *file = NULL;
        snprintf(text, sizeof text, "%smail:\n  smtp: { password_file: %s }\n", MINIMAL, bad[i]);
        assert_null(load_text(text, &d, &file));
        assert_non_null(file);
        assert_string_equal(file, tmp_path(bad[i]));
        assert_int_equal(d.line, lines[i]);
        assert_null(strstr(d.msg, "line2"));
        free(file);
    }
}

static void test_relative_paths(void **state)
{
    (void)state;
    struct config *cfg = load_extra("content: { dir: . }\noutput: { dir: ../www }\n"
                                    "state: { dir: ./././st }\n"
                                    "mail: { maildir: { path: out/box } }\n");
    assert_string_equal(cfg->content.dir, tmpdir);
    assert_string_equal(cfg->output.dir, in_tmp("../www"));
    assert_string_equal(cfg->state.dir, in_tmp("st"));
    assert_string_equal(cfg->mail.maildir_path, in_tmp("out/box"));
    /* Defaults under state.dir follow it. */
    assert_string_equal(cfg->mail.secret_file, in_tmp("st/secret"));
    config_free(cfg);
    cfg = load_extra("state: { dir: /var/lib/nashra }\n");
    assert_string_equal(cfg->mail.maildir_path, "/var/lib/nashra/outbox");
    assert_string_equal(cfg->mail.secret_file, "/var/lib/nashra/secret");
    config_free(cfg);
    expect_extra_error("content: { dir: \"\" }\n", 4, 17, "empty path", "content.dir");
}

static void test_bad_types(void **state)
{
    (void)state;
    expect_extra_error("feeds:\n  items: \"abc\"\n", 5, 10, "feeds.items", "whole number");
    expect_extra_error("feeds:\n  items: 0\n", 5, 10, "feeds.items", "from 1");
    expect_extra_error("feeds:\n  items: 12abc\n", 5, 10, "feeds.items", NULL);
    expect_extra_error("feeds:\n  items: [1]\n", 5, 10, "feeds.items", "not a list");
    expect_extra_error("content:\n  allow_html: maybe\n", 5, 15, "content.allow_html", "'maybe'");
    expect_extra_error("content:\n  allow_html: yes\n", 5, 15, "true or false", NULL);
    expect_extra_error("content:\n  allow_html: \"true\"\n", 5, 15, "without quotes", NULL);
    expect_extra_error("feeds: 5\n", 4, 8, "feeds", "mapping");
    expect_extra_error("http: { listen: \"localhost\" }\n", 4, 17, "http.listen", NULL);
    expect_extra_error("http: { listen: \"::1:80\" }\n", 4, 17, "http.listen", NULL);
    expect_extra_error("mail: { transport: pigeon }\n", 4, 20, "maildir or smtp", "'pigeon'");
    expect_extra_error("mail: { smtp: { tls: ssl } }\n", 4, 22, "none or starttls or tls", NULL);
    expect_extra_error("mail: { smtp: { port: 70000 } }\n", 4, 23, "mail.smtp.port", NULL);
    expect_extra_error("mail: { from: nobody }\n", 4, 15, "mail.from", NULL);
    expect_extra_error("mail: { dkim: { domain: example.org } }\n", 4, 15, "together", NULL);
    expect_extra_error("activitypub: { object_type: Page }\n", 4, 29, "Article or Note", NULL);
    expect_extra_error("activitypub: { username: \"a b\" }\n", 4, 26, "activitypub.username", NULL);
    expect_extra_error("activitypub: { icon: icon.png }\n", 4, 22, "activitypub.icon", NULL);
    expect_extra_error("site:\n  x: 1\n", 4, 1, "duplicate key 'site'", NULL);
    expect_error("site:\n  url: https://a.org\n  title: [a]\n", 3, 10, "site.title", "list");
    expect_error("site:\n  url: https://a.org\n  title: \"a\\nb\"\n", 3, 10, "line breaks", NULL);
    expect_error("- a\n- b\n", 1, 1, "mapping", NULL);
    expect_error("site:\n  url: https://a.org\n  title: \"a\\0b\"\n", 3, 10, "NUL", NULL);
    expect_error("site:\n  url: [unclosed\n", 0, 0, "flow sequence", NULL);
}

static void test_required(void **state)
{
    (void)state;
    expect_error("site:\n  title: \"no url\"\n", 0, 0, "site.url is required", NULL);
    expect_error("site:\n  url: https://x.org\n", 0, 0, "site.title is required", NULL);
    expect_error("site:\n  url: https://x.org\n  title: \"\"\n", 3, 10, "empty title", NULL);
    expect_error("", 0, 0, "site.url", NULL);
    expect_error("feeds: { items: 3 }\n", 0, 0, "site.url", NULL);
}

static void test_lists_errors(void **state)
{
    (void)state;
    expect_extra_error("lists:\n  - name: x\n", 5, 5, "lists[0].id is required", NULL);
    expect_extra_error("lists:\n  - id: News\n", 5, 9, "lists[0].id", "lower-case");
    expect_extra_error("lists:\n  - id: a\n  - id: a\n", 6, 9, "lists[1].id",
                       "already the id of lists[0]");
    expect_extra_error("lists:\n  - id: a\n    mode: weekly\n", 6, 11, "each or digest",
                       "'weekly'");
    const char *bad[] = {"daily",     "daily 8",          "daily 24:00",  "daily 08:60",
                         "daily 8:5", "daily 08:00x",     "weekly 08:00", "weekly monday 08:00",
                         "hourly",    "weekly xyz 08:00", "daily +8:00"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char extra[256];
        snprintf(extra, sizeof extra, "lists:\n  - id: d\n    mode: digest\n    schedule: \"%s\"\n",
                 bad[i]);
        expect_extra_error(extra, 7, 15, "lists[0].schedule", "daily HH:MM");
    }
    expect_extra_error("lists: { id: a }\n", 4, 8, "lists", NULL);
    expect_extra_error("lists:\n  - id: a\n    categories: { a: 1 }\n", 6, 17, "categories", NULL);
    expect_extra_error("lists:\n  - id: a\n    language: \"ar SA\"\n", 6, 15, "language", NULL);
    struct config *cfg = load_extra("lists:\n  - id: d\n    schedule: \"weekly Sun  23:59\"\n");
    assert_string_equal(cfg->lists[0].schedule, "weekly sun 23:59");
    config_free(cfg);
}

static void test_site_url(void **state)
{
    (void)state;
    const char *bad[] = {"ftp://example.org",
                         "news.example.org",
                         "https://",
                         "https:///x",
                         "\"https://a b.org\"",
                         "https://a.org/?q=1",
                         "https://a.org/#top",
                         "https://user@a.org",
                         "https://a.org:http",
                         "https://a.org:99999",
                         "//a.org"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[256];
        snprintf(text, sizeof text, "site:\n  title: t\n  url: %s\n", bad[i]);
        expect_error(text, 3, 8, "site.url", NULL);
    }
    struct config *cfg = load_ok("site:\n  title: t\n  url: http://localhost:8080///\n");
    assert_string_equal(cfg->site.url, "http://localhost:8080");
    assert_string_equal(cfg->site.host, "localhost:8080");
    assert_string_equal(cfg->mail.from, "t <news@localhost>");
    config_free(cfg);
}

static void test_timezone(void **state)
{
    (void)state;
    const char *bad[] = {"Mars/Olympus_Mons",
                         "../../etc/passwd",
                         "/etc/localtime",
                         "zone.tab",
                         "Asia",
                         "Asia/Riyadh\\ ",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char extra[256];
        snprintf(extra, sizeof extra, "  timezone: \"%s\"\n", bad[i]);
        expect_extra_error(extra, 4, 13, "site.timezone", NULL);
    }
    struct config *cfg = load_extra("  timezone: UTC\n");
    assert_string_equal(cfg->site.timezone, "UTC");
    config_free(cfg);
    struct stat st;
    if (stat("/usr/share/zoneinfo/Europe/Paris", &st) == 0) {
        cfg = load_extra("  timezone: Europe/Paris\n");
        assert_string_equal(cfg->site.timezone, "Europe/Paris");
        config_free(cfg);
    }
}

static void test_max_bytes_units(void **state)
{
    (void)state;
    const struct {
        const char *text;
        size_t bytes;
    } ok[] = {{"1048576", 1048576}, {"10MiB", 10485760},  {"512KiB", 524288},    {"1MB", 1000000},
              {"2 KB", 2000},       {"1GiB", 1073741824}, {"\"64 kib\"", 65536}, {"100B", 100}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char extra[128];
        snprintf(extra, sizeof extra, "content:\n  max_bytes: %s\n", ok[i].text);
        struct config *cfg = load_extra(extra);
        assert_int_equal(cfg->content.max_bytes, ok[i].bytes);
        config_free(cfg);
    }
    const char *bad[] = {"0", "10XB", "-5", "MiB", "2GiB", "1.5MiB", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char extra[128];
        snprintf(extra, sizeof extra, "content:\n  max_bytes: %s\n", bad[i]);
        expect_extra_error(extra, 5, 14, "content.max_bytes", "10MiB");
    }
}

static void test_language_direction(void **state)
{
    (void)state;
    const char *rtl[] = {"ar", "fa", "he",  "ur", "ps",    "sd",
                         "ug", "yi", "ckb", "dv", "AR-eg", "fa-IR"};
    for (size_t i = 0; i < sizeof rtl / sizeof *rtl; i++)
        assert_true(lang_is_rtl(rtl[i]));
    const char *ltr[] = {"en", "fr-CA", "arn", "a", "", "de", "ku"};
    for (size_t i = 0; i < sizeof ltr / sizeof *ltr; i++)
        assert_false(lang_is_rtl(ltr[i]));
    assert_false(lang_is_rtl(NULL));
    expect_extra_error("  language: ar_SA\n", 4, 13, "site.language", "BCP 47");
    expect_extra_error("  language: e\n", 4, 13, "site.language", NULL);
    struct config *cfg = load_extra("  language: fa\n");
    assert_true(cfg->site.rtl);
    config_free(cfg);
}

static void test_file_errors(void **state)
{
    (void)state;
    struct diag d = {0};
    char *file = NULL;
    assert_null(config_load(tmp_path("does-not-exist.yaml"), &d, &file));
    assert_string_equal(file, tmp_path("does-not-exist.yaml"));
    assert_non_null(strstr(d.msg, "No such file"));
    free(file);
    assert_null(config_load(tmpdir, &d, NULL));
    assert_non_null(strstr(d.msg, "not a regular file"));

    /* Over 1 MiB: refused before parsing. */
    size_t n = 1024 * 1024 + 16;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, '#', n);
    memcpy(big, MINIMAL, strlen(MINIMAL));
    big[n] = '\0';
    write_file("big.yaml", big);
    free(big);
    assert_null(config_load(tmp_path("big.yaml"), &d, NULL));
    assert_non_null(strstr(d.msg, "1 MiB"));
}

static void test_example_loads(void **state)
{
    (void)state;
    struct diag d = {0};
    char *file = NULL;
    struct config *cfg = config_load("config/nashra.example.yaml", &d, &file);
    if (!cfg)
        fail_msg("%s:%d:%d: %s", file, d.line, d.col, d.msg);
    assert_true(cfg->site.rtl);
    assert_int_equal(cfg->content.max_bytes, 10 * 1024 * 1024);
    assert_true(cfg->nlists >= 1);
    assert_null(file);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_list_defaults_without_categories),
        cmocka_unit_test(test_smtp_port_follows_tls),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_env_substitution),
        cmocka_unit_test(test_password_file),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_bad_types),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_lists_errors),
        cmocka_unit_test(test_site_url),
        cmocka_unit_test(test_timezone),
        cmocka_unit_test(test_max_bytes_units),
        cmocka_unit_test(test_language_direction),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_example_loads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
