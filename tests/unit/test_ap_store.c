/*
 * test_ap_store: the ActivityPub tables on a real SQLite file: followers
 * (add, follow again, remove, remove by a gone inbox), the key cache, the
 * queue (one delivery per distinct inbox, shared inboxes first, nothing
 * stored without followers, due order and retry times, transitions) and
 * the consumer's cursor.
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

#include "../../store/ap_store.h"

struct fixture {
    char dir[64];
    struct store *st;
    struct ap_store *as;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct diag d = {0};
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/nashra-test-ap-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->st = store_open(f->dir, 0, &d);
    assert_non_null(f->st);
    f->as = ap_store_new(f->st);
    assert_non_null(f->as);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    ap_store_free(f->as);
    store_close(f->st);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc;
}

static void test_followers(void **state)
{
    struct ap_store *as = ((struct fixture *)*state)->as;
    assert_int_equal(ap_followers_count(as), 0);
    assert_int_equal(ap_follower_put(as, "https://a.example/u/1", "https://a.example/u/1/inbox",
                                     "https://a.example/inbox", 10),
                     1);
    assert_int_equal(ap_follower_put(as, "https://a.example/u/1", "https://a.example/u/1/inbox",
                                     "https://a.example/inbox", 11),
                     0);
    assert_int_equal(ap_follower_put(as, "https://a.example/u/2", "https://a.example/u/2/inbox",
                                     "https://a.example/inbox", 10),
                     1);
    assert_int_equal(
        ap_follower_put(as, "https://b.example/x", "https://b.example/x/inbox", NULL, 10), 1);
    assert_int_equal(ap_followers_count(as), 3);
    assert_int_equal(ap_followers_inboxes(as), 2);
    assert_int_equal(ap_follower_is(as, "https://b.example/x"), 1);
    assert_int_equal(ap_follower_remove(as, "https://b.example/x"), 1);
    assert_int_equal(ap_follower_remove(as, "https://b.example/x"), 0);
    assert_int_equal(ap_follower_is(as, "https://b.example/x"), 0);
    assert_int_equal(ap_followers_remove_inbox(as, "https://a.example/inbox"), 2);
    assert_int_equal(ap_followers_count(as), 0);
}

static void test_keys(void **state)
{
    struct ap_store *as = ((struct fixture *)*state)->as;
    char *owner = NULL, *pem = NULL;
    int64_t at = 0;
    assert_int_equal(ap_key_get(as, "https://a.example/u#k", &owner, &pem, &at), 0);
    assert_int_equal(ap_key_put(as, "https://a.example/u#k", "https://a.example/u", "PEM1", 5), 0);
    assert_int_equal(ap_key_put(as, "https://a.example/u#k", "https://a.example/u", "PEM2", 6), 0);
    assert_int_equal(ap_key_get(as, "https://a.example/u#k", &owner, &pem, &at), 1);
    assert_string_equal(owner, "https://a.example/u");
    assert_string_equal(pem, "PEM2");
    assert_int_equal(at, 6);
    free(owner);
    free(pem);
}

static void test_queue(void **state)
{
    struct ap_store *as = ((struct fixture *)*state)->as;
    int64_t n = -1;
    /* no follower: nothing stored */
    assert_int_equal(ap_enqueue_followers(as, "{}", 100, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ap_pending_count(as), 0);
    char actor[64], inbox[64], shared[64];
    for (int i = 0; i < 10; i++) {
        snprintf(actor, sizeof actor, "https://h%d.example/u/%d", i % 3, i);
        snprintf(inbox, sizeof inbox, "https://h%d.example/u/%d/inbox", i % 3, i);
        snprintf(shared, sizeof shared, "https://h%d.example/inbox", i % 3);
        assert_int_equal(ap_follower_put(as, actor, inbox, i == 9 ? NULL : shared, 1), 1);
    }
    int64_t id = ap_enqueue_followers(as, "{\"type\":\"Create\"}", 100, &n);
    assert_true(id > 0);
    assert_int_equal(n, 4); /* three shared inboxes and follower 9's own */
    char *body = ap_activity_body(as, id);
    assert_string_equal(body, "{\"type\":\"Create\"}");
    free(body);
    int64_t one = ap_enqueue_one(as, "{\"type\":\"Accept\"}", "https://z.example/inbox", 101);
    assert_true(one > id);
    assert_int_equal(ap_pending_count(as), 5);

    struct ap_delivery *v;
    size_t k;
    assert_int_equal(ap_due(as, 200, 0, NULL, 3, &v, &k), 0);
    assert_int_equal(k, 3);
    assert_int_equal(v[0].activity, id);
    assert_string_equal(v[0].inbox, "https://h0.example/inbox");
    assert_int_equal(v[0].created, 100);
    assert_string_equal(v[1].inbox, "https://h0.example/u/9/inbox");
    assert_string_equal(v[2].inbox, "https://h1.example/inbox");
    char *last = strdup(v[2].inbox);
    ap_due_free(v, k);
    assert_int_equal(ap_due(as, 200, id, last, 10, &v, &k), 0);
    free(last);
    assert_int_equal(k, 2);
    assert_string_equal(v[0].inbox, "https://h2.example/inbox");
    assert_int_equal(v[1].activity, one);
    ap_due_free(v, k);

    assert_int_equal(ap_delivery_sent(as, id, "https://h0.example/inbox", 201, 202), 0);
    assert_int_equal(
        ap_delivery_retry(as, id, "https://h1.example/inbox", 500, 503, "Service Unavailable"), 0);
    assert_int_equal(ap_delivery_failed(as, id, "https://h2.example/inbox", 201, 410, "Gone"), 0);
    assert_int_equal(ap_pending_count(as), 3);
    assert_int_equal(ap_next_retry(as, 201), 500);
    assert_int_equal(ap_due(as, 201, 0, NULL, 10, &v, &k), 0);
    assert_int_equal(k, 2); /* the retry is not due yet */
    ap_due_free(v, k);
    assert_int_equal(ap_due(as, 500, 0, NULL, 10, &v, &k), 0);
    assert_int_equal(k, 3);
    assert_string_equal(v[1].inbox, "https://h1.example/inbox");
    assert_int_equal(v[1].attempts, 1);
    ap_due_free(v, k);

    /* pruning: finished deliveries only, then activities nobody names */
    assert_int_equal(ap_prune(as, 200), 0);
    assert_int_equal(ap_prune(as, 1000), 2); /* sent and failed */
    assert_int_equal(ap_pending_count(as), 3);
    body = ap_activity_body(as, id);
    assert_non_null(body); /* still has deliveries open */
    free(body);
    assert_int_equal(ap_delivery_sent(as, one, "https://z.example/inbox", 300, 202), 0);
    assert_int_equal(ap_prune(as, 1000), 1);
    assert_null(ap_activity_body(as, one));
}

static void test_cursor(void **state)
{
    struct ap_store *as = ((struct fixture *)*state)->as;
    assert_int_equal(ap_cursor_get(as), 0);
    assert_int_equal(ap_cursor_init(as, 7), 1);
    assert_int_equal(ap_cursor_init(as, 9), 0);
    assert_int_equal(ap_cursor_get(as), 7);
    assert_int_equal(ap_cursor_put(as, 12), 0);
    assert_int_equal(ap_cursor_get(as), 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_followers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
