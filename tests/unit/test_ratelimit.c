/*
 * test_ratelimit: lib/ratelimit's fixed windows (max events per window per
 * key, a new window after it), keys kept apart, and the bound: a flood of
 * distinct keys in a small table takes over the oldest entries and never
 * grows it, and the newest keys are still limited.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "../../lib/ratelimit.h"

static void test_window(void **state)
{
    struct ratelimit *r = ratelimit_new(64);
    (void)state;
    assert_non_null(r);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ratelimit_hit(r, "a", 100 + i, 3, 60), 1);
    assert_int_equal(ratelimit_hit(r, "a", 130, 3, 60), 0);
    assert_int_equal(ratelimit_hit(r, "a", 159, 3, 60), 0);
    assert_int_equal(ratelimit_hit(r, "b", 159, 3, 60), 1); /* another key */
    assert_int_equal(ratelimit_hit(r, "a", 160, 3, 60), 1); /* a new window */
    assert_int_equal(ratelimit_hit(r, "a", 40, 3, 60), 1);  /* the clock went back */
    ratelimit_free(r);
}

static void test_one_per_hour(void **state)
{
    struct ratelimit *r = ratelimit_new(16);
    (void)state;
    assert_int_equal(ratelimit_hit(r, "x@example.org\nnews", 0, 1, 3600), 1);
    assert_int_equal(ratelimit_hit(r, "x@example.org\nnews", 3599, 1, 3600), 0);
    assert_int_equal(ratelimit_hit(r, "x@example.org\nweekly", 3599, 1, 3600), 1);
    assert_int_equal(ratelimit_hit(r, "x@example.org\nnews", 3600, 1, 3600), 1);
    ratelimit_free(r);
}

static void test_flood(void **state)
{
    struct ratelimit *r = ratelimit_new(16);
    char key[32];
    (void)state;
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(ratelimit_hit(r, key, i, 1, 1000000), 1);
    }
    /* the last key is still there and limited */
    assert_int_equal(ratelimit_hit(r, "k9999", 10000, 1, 1000000), 0);
    ratelimit_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_one_per_hour),
        cmocka_unit_test(test_flood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
