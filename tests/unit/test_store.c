/*
 * test_store: the SQLite state on a real file: schema creation and version,
 * first-seen dates that never drift, posts round-trip, published order,
 * the announcement log's sequence, reopening.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../store/store.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/nashra-test-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static struct post *mkpost(const char *path, const char *slug, int64_t date, const char *cat)
{
    struct post *p = calloc(1, sizeof *p);
    p->path = strdup(path);
    p->slug = strdup(slug);
    p->url = strdup("https://x.org/posts/s/");
    p->title = strdup("عنوان");
    p->author = strdup("a");
    p->summary = strdup("s");
    p->lang = strdup("ar");
    p->rtl = 1;
    p->categories = calloc(2, sizeof(char *));
    if (cat) {
        p->categories[0] = strdup(cat);
        p->ncategories = 1;
    }
    p->tags = calloc(1, sizeof(char *));
    p->date = date;
    p->newsletter = 1;
    p->html = strdup("<p>x</p>");
    p->html_len = 8;
    p->hash[0] = (unsigned char)date;
    return p;
}

static int collect(void *arg, struct post *p)
{
    char *order = arg;
    strcat(order, p->slug);
    strcat(order, p->html ? "+" : "-");
    if (p->ncategories)
        strcat(order, p->categories[0]);
    strcat(order, ",");
    post_free(p);
    return 0;
}

static void test_lifecycle(void **state)
{
    (void)state;
    struct diag d = {0};
    struct store *st = store_open(dir, 0, &d);
    assert_non_null(st);
    assert_true(store_is_new(st));

    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_first_seen(st, "a.md", 100), 100);
    assert_int_equal(store_first_seen(st, "a.md", 200), 100); /* never drifts */
    struct post *a = mkpost("a.md", "a", 10, "نشاطات"), *b = mkpost("b.md", "b", 20, NULL);
    assert_int_equal(store_post_put(st, a, 10, 1), 0);
    assert_int_equal(store_post_put(st, b, 20, 1), 0);
    assert_int_equal(store_announce(st, "published", "a", "u", "t", 1), 1);
    assert_int_equal(store_announce(st, "updated", "a", "u", "t", 2), 2);
    assert_int_equal(store_mark_initialized(st), 0);
    assert_int_equal(store_commit(st), 0);
    assert_false(store_is_new(st));

    char order[256] = "";
    assert_int_equal(store_each_published(st, 1, collect, order), 0);
    assert_string_equal(order, "b+,a+نشاطات,");
    order[0] = '\0';
    assert_int_equal(store_each_published(st, 0, collect, order), 0);
    assert_string_equal(order, "b-,a-نشاطات,");

    struct store_row *rows;
    size_t n;
    assert_int_equal(store_rows(st, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].path, "a.md");
    assert_int_equal(rows[0].published, 1);
    assert_int_equal(rows[1].hash[0], 20);
    store_rows_free(rows, n);

    assert_int_equal(store_post_set_published(st, "b.md", 0), 0);
    assert_int_equal(store_post_delete(st, "a.md"), 0);
    order[0] = '\0';
    assert_int_equal(store_each_published(st, 0, collect, order), 0);
    assert_string_equal(order, "");
    post_free(a);
    post_free(b);
    store_close(st);

    /* Reopen: the schema is kept, the log goes on from where it was. */
    st = store_open(dir, 0, &d);
    assert_non_null(st);
    assert_false(store_is_new(st));
    assert_int_equal(store_announce(st, "removed", "a", "u", "t", 3), 3);
    store_close(st);

    sqlite3 *db;
    char path[128];
    snprintf(path, sizeof path, "%s/nashra.db", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), STORE_SCHEMA_VERSION);
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/nashra.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct diag d = {0};
    assert_null(store_open(dir, 0, &d));
    assert_non_null(strstr(d.msg, "newer"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_newer_schema_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
