/*
 * Unit tests for lib/yaml_tree: positions, scalars, aliases and their
 * bounds (billion laughs, depth), duplicate keys, libyaml errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/yaml_tree.h"

static struct ydoc *parse(const char *src, int first_line, struct diag *d)
{
    memset(d, 0, sizeof *d);
    return ydoc_parse(src, strlen(src), first_line, d);
}

/* Parses src, which must fail; checks the error's position and a word in it. */
static void expect_error(const char *src, int line, int col, const char *word)
{
    struct diag d;
    struct ydoc *doc = parse(src, 1, &d);
    if (doc)
        fail_msg("parsed, expected an error: %s", src);
    if (line && (d.line != line || d.col != col))
        fail_msg("error at %d:%d, expected %d:%d: %s", d.line, d.col, line, col, d.msg);
    if (!strstr(d.msg, word))
        fail_msg("'%s' not in error: %s", word, d.msg);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_positions(void **state)
{
    (void)state;
    struct diag d;
    const char *src = "title: hello\nlist:\n  - one\n  - {k: v, n: 2}\nmap:\n  inner: \"q\"\n";
    struct ydoc *doc = parse(src, 2, &d);
    assert_non_null(doc);
    const struct ynode *root = ydoc_root(doc);
    assert_int_equal(root->type, YNODE_MAP);
    assert_int_equal(root->n, 3);
    assert_int_equal(root->line, 2);
    assert_int_equal(root->col, 1);

    const struct ynode *t = ynode_get(root, "title");
    assert_string_equal(t->str, "hello");
    assert_int_equal(t->len, 5);
    assert_int_equal(t->line, 2);
    assert_int_equal(t->col, 8);

    const struct ynode *l = ynode_get(root, "list");
    assert_int_equal(l->type, YNODE_SEQ);
    assert_int_equal(l->n, 2);
    assert_int_equal(l->kv[0]->line, 4);
    assert_int_equal(l->kv[0]->col, 5);
    const struct ynode *flow = l->kv[1];
    assert_int_equal(flow->type, YNODE_MAP);
    assert_int_equal(flow->line, 5);
    assert_int_equal(flow->col, 5);
    const struct ynode *nv = ynode_get(flow, "n");
    assert_string_equal(nv->str, "2");
    assert_int_equal(nv->col, 15);

    /* Keys carry positions too. */
    const struct ynode *m = ynode_get(root, "map");
    assert_int_equal(m->kv[0]->line, 7);
    assert_int_equal(m->kv[0]->col, 3);
    assert_true(ynode_get(m, "inner")->quoted);
    assert_null(ynode_get(root, "missing"));
    assert_null(ynode_get(t, "title")); /* not a mapping */
    ydoc_free(doc);
}

static void test_columns_count_characters(void **state)
{
    (void)state;
    struct diag d;
    struct ydoc *doc = parse("عنوان: نص\n", 1, &d);
    assert_non_null(doc);
    const struct ynode *v = ynode_get(ydoc_root(doc), "عنوان");
    assert_non_null(v);
    assert_int_equal(v->col, 8);
    ydoc_free(doc);
}

static void test_empty_documents(void **state)
{
    (void)state;
    struct diag d;
    const char *empties[] = {"", "# only a comment\n", "---\n", "\n\n"};
    for (size_t i = 0; i < sizeof empties / sizeof *empties; i++) {
        struct ydoc *doc = parse(empties[i], 1, &d);
        assert_non_null(doc);
        assert_null(ydoc_root(doc));
        ydoc_free(doc);
    }
    struct ydoc *doc = ydoc_parse(NULL, 0, 1, &d);
    assert_non_null(doc);
    assert_null(ydoc_root(doc));
    ydoc_free(doc);
    ydoc_free(NULL);
    assert_null(ydoc_root(NULL));
}

static void test_null_and_bool(void **state)
{
    (void)state;
    struct diag d;
    const char *src = "a:\nb: ~\nc: null\nd: Null\ne: NULL\nf: \"\"\ng: 'null'\nh: nil\n"
                      "t1: true\nt2: True\nt3: TRUE\nf1: false\nf2: False\nf3: FALSE\n"
                      "y: yes\nm: maybe\nq: \"true\"\nl: [true]\nt4: tRUE\n"
                      "st: !!str true\nsn: !!str null\n";
    struct ydoc *doc = parse(src, 1, &d);
    assert_non_null(doc);
    const struct ynode *r = ydoc_root(doc);
    const char *nulls[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++)
        assert_true(ynode_is_null(ynode_get(r, nulls[i])));
    assert_false(ynode_is_null(ynode_get(r, "f")));
    assert_false(ynode_is_null(ynode_get(r, "g")));
    assert_false(ynode_is_null(ynode_get(r, "h")));
    assert_false(ynode_is_null(ynode_get(r, "l")));
    assert_false(ynode_is_null(NULL));

    int v = -1;
    const char *trues[] = {"t1", "t2", "t3"}, *falses[] = {"f1", "f2", "f3"};
    for (size_t i = 0; i < 3; i++) {
        v = -1;
        assert_int_equal(ynode_bool(ynode_get(r, trues[i]), &v), 0);
        assert_int_equal(v, 1);
        assert_int_equal(ynode_bool(ynode_get(r, falses[i]), &v), 0);
        assert_int_equal(v, 0);
    }
    v = 7;
    assert_false(ynode_is_null(ynode_get(r, "sn")));
    const char *nots[] = {"y", "m", "q", "l", "t4", "a", "st"};
    for (size_t i = 0; i < sizeof nots / sizeof *nots; i++)
        assert_int_equal(ynode_bool(ynode_get(r, nots[i]), &v), -1);
    assert_int_equal(v, 7);
    assert_int_equal(ynode_bool(NULL, &v), -1);
    ydoc_free(doc);
}

static void test_block_scalars(void **state)
{
    (void)state;
    struct diag d;
    struct ydoc *doc = parse("s: |\n  one\n  two\nnul: \"a\\0b\"\n", 1, &d);
    assert_non_null(doc);
    const struct ynode *s = ynode_get(ydoc_root(doc), "s");
    assert_string_equal(s->str, "one\ntwo\n");
    assert_true(s->quoted);
    const struct ynode *nul = ynode_get(ydoc_root(doc), "nul");
    assert_int_equal(nul->len, 3); /* the length tells an embedded NUL apart */
    ydoc_free(doc);
}

static void test_alias_shares_node(void **state)
{
    (void)state;
    struct diag d;
    struct ydoc *doc = parse("a: &x {k: v}\nb: *x\nc: &s word\nd: *s\n", 1, &d);
    assert_non_null(doc);
    const struct ynode *r = ydoc_root(doc);
    assert_ptr_equal(ynode_get(r, "a"), ynode_get(r, "b"));
    assert_ptr_equal(ynode_get(r, "c"), ynode_get(r, "d"));
    assert_string_equal(ynode_get(ynode_get(r, "b"), "k")->str, "v");
    ydoc_free(doc);
}

static void test_alias_errors(void **state)
{
    (void)state;
    expect_error("a: 1\nb: *nowhere\n", 2, 4, "unknown alias '*nowhere'");
    expect_error("a: &r [1, *r]\n", 1, 11, "holds it");
}

static void test_billion_laughs(void **state)
{
    (void)state;
    char src[4096] =
        "x0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
    for (int i = 1; i <= 12; i++) {
        char line[200];
        snprintf(line, sizeof line, "x%d: &a%d [*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d]\n", i,
                 i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
        strcat(src, line);
    }
    struct timespec t0;
    struct diag d;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct ydoc *doc = parse(src, 2, &d);
    double took = seconds_since(&t0);
    assert_null(doc);
    assert_non_null(strstr(d.msg, "too large"));
    /* x4 weighs 66,430 nodes: the first alias of it on x5's line (line 7
     * with first_line 2) goes past 100,000. */
    assert_int_equal(d.line, 7);
    assert_int_equal(d.col, 10);
    assert_true(d.col > 1);
    assert_true(took < 0.1);
}

static void test_expanded_size_bound(void **state)
{
    (void)state;
    /* Root, key "a" and a list of 9,999 items: 10,002 nodes, the list weighing
     * 10,000; key "b" and its list: 2 more; each alias of the list adds
     * 10,000. Eight aliases make 90,004 nodes, nine 100,004 > 100,000. */
    size_t cap = 9999 * 2 + 512;
    char *src = malloc(cap);
    assert_non_null(src);
    for (int aliases = 8; aliases <= 9; aliases++) {
        char *p = src + sprintf(src, "a: &x [1");
        for (int i = 1; i < 9999; i++)
            p += sprintf(p, ",1");
        p += sprintf(p, "]\nb: [*x");
        for (int i = 1; i < aliases; i++)
            p += sprintf(p, ",*x");
        sprintf(p, "]\n");
        struct diag d;
        struct ydoc *doc = parse(src, 1, &d);
        if (aliases == 8) {
            assert_non_null(doc);
            assert_int_equal(ynode_get(ydoc_root(doc), "b")->n, 8);
        } else {
            assert_null(doc);
            assert_non_null(strstr(d.msg, "too large"));
            assert_int_equal(d.line, 2);
            assert_int_equal(d.col, 5 + 3 * 8);
        }
        ydoc_free(doc);
    }
    free(src);
}

static void test_depth_bound(void **state)
{
    (void)state;
    char src[512] = "";
    for (int i = 0; i < YTREE_MAX_DEPTH; i++)
        strcat(src, "[");
    for (int i = 0; i < YTREE_MAX_DEPTH; i++)
        strcat(src, "]");
    struct diag d;
    struct ydoc *doc = parse(src, 1, &d);
    assert_non_null(doc); /* exactly the bound */
    ydoc_free(doc);

    memset(src, 0, sizeof src);
    for (int i = 0; i <= YTREE_MAX_DEPTH; i++)
        strcat(src, "[");
    expect_error(src, 1, YTREE_MAX_DEPTH + 1, "deeper than");

    /* Nesting reached through aliases counts too. */
    char alias[1024] = "a: &d ";
    for (int i = 0; i < YTREE_MAX_DEPTH - 2; i++)
        strcat(alias, "[");
    for (int i = 0; i < YTREE_MAX_DEPTH - 2; i++)
        strcat(alias, "]");
    strcat(alias, "\nb: [[*d]]\n");
    expect_error(alias, 2, 6, "once aliases are expanded");
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    expect_error("a: 1\nb: 2\na: 3\n", 3, 1, "duplicate key 'a'");
    expect_error("m: {x: 1, 'x': 2}\n", 1, 11, "duplicate key 'x'");
    /* Large mappings take the sorted path: the first repeat in document order. */
    char src[4096] = "";
    for (int i = 0; i < 100; i++) {
        char line[32];
        snprintf(line, sizeof line, "k%d: %d\n", i, i);
        strcat(src, line);
    }
    strcat(src, "k70: again\nk5: again\n");
    expect_error(src, 101, 1, "duplicate key 'k70'");
    /* The same key in two mappings is fine. */
    struct diag d;
    struct ydoc *doc = parse("a: {k: 1}\nb: {k: 2}\n", 1, &d);
    assert_non_null(doc);
    ydoc_free(doc);
}

static void test_keys_must_be_scalars(void **state)
{
    (void)state;
    expect_error("? [a, b]\n: c\n", 1, 3, "mapping key");
    expect_error("{{a: 1}: 2}\n", 1, 2, "mapping key");
    expect_error("s: &s [1]\n*s : 2\n", 2, 1, "mapping key");
}

static void test_multiple_documents(void **state)
{
    (void)state;
    expect_error("a: 1\n---\nb: 2\n", 2, 1, "more than one YAML document");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    struct diag d;
    struct ydoc *doc = parse("site:\n  url: x\n title: y\n", 1, &d);
    assert_null(doc);
    assert_int_equal(d.line, 3);
    assert_int_equal(d.col, 2);
    assert_non_null(strstr(d.msg, "did not find expected key"));

    expect_error("a: [unclosed\n", 0, 0, "flow sequence");
    expect_error("title: \"unclosed quote\ndate: 2024-01-01\n", 0, 0, "quoted scalar");
    expect_error("a: b: c\n", 1, 5, "mapping values are not allowed");
    /* Front matter positions: line numbers follow first_line. */
    doc = parse("a: 1\nb: [\n", 2, &d);
    assert_null(doc);
    assert_true(d.line >= 3);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    expect_error("a: ok\nb: \xff\xfe bad\n", 2, 4, "UTF-8");
    expect_error("a: \x01\n", 1, 4, "control characters");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positions),           cmocka_unit_test(test_columns_count_characters),
        cmocka_unit_test(test_empty_documents),     cmocka_unit_test(test_null_and_bool),
        cmocka_unit_test(test_block_scalars),       cmocka_unit_test(test_alias_shares_node),
        cmocka_unit_test(test_alias_errors),        cmocka_unit_test(test_billion_laughs),
        cmocka_unit_test(test_expanded_size_bound), cmocka_unit_test(test_depth_bound),
        cmocka_unit_test(test_duplicate_keys),      cmocka_unit_test(test_keys_must_be_scalars),
        cmocka_unit_test(test_multiple_documents),  cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_invalid_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
