/*
 * test_mail_store: the newsletter tables on a real SQLite file: subscribers
 * (add, states, remove, lookups, counts, soft bounces), issues that fix
 * their recipients when made (later, pending, unsubscribed and bounced
 * subscribers get nothing) and are made once, the queue (due order, the
 * cursor, retry times), delivery transitions and each issue's progress, and
 * the sender's cursor in the announcement log.
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

#include "../../store/mail_store.h"

struct fixture {
    char dir[64];
    struct store *st;
    struct mail_store *ms;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct diag d = {0};
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/nashra-test-mail-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->st = store_open(f->dir, 0, &d);
    assert_non_null(f->st);
    f->ms = mail_store_new(f->st);
    assert_non_null(f->ms);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    mail_store_free(f->ms);
    store_close(f->st);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc;
}

static int64_t add(struct mail_store *ms, const char *list, const char *email, int state)
{
    struct mail_subscriber *s;
    assert_int_equal(mail_sub_add(ms, list, email, "اسم", NULL, state, 100), 1);
    assert_int_equal(mail_sub_find(ms, list, email, &s), 1);
    int64_t id = s->id;
    free(s);
    return id;
}

/* One due delivery, as "issue:email" into a string, for order checks. */
static void due_keys(struct mail_store *ms, int64_t now, const struct mail_key *after, size_t max,
                     char *out, size_t outsz)
{
    struct mail_delivery *v;
    size_t n;
    assert_int_equal(mail_due(ms, now, after, max, &v, &n), 0);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, outsz - len, "%s%lld:%s", i ? "," : "", (long long)v[i].key.issue,
                 v[i].email);
    }
    mail_due_free(v, n);
}

static void test_states(void **state)
{
    (void)state;
    assert_string_equal(mail_sub_state_name(MAIL_SUB_BOUNCED), "bounced");
    assert_null(mail_sub_state_name(7));
    assert_null(mail_sub_state_name(MAIL_SUB_ANY));
    assert_int_equal(mail_sub_state_parse("unsubscribed"), MAIL_SUB_UNSUBSCRIBED);
    assert_int_equal(mail_sub_state_parse("Active"), -1);
    assert_int_equal(mail_sub_state_parse(NULL), -1);
}

static void test_subscribers(void **state)
{
    struct fixture *f = *state;
    struct mail_store *ms = f->ms;
    struct mail_subscriber *s;

    assert_int_equal(mail_sub_add(ms, "a", "x@example.org", "سارة", "{\"city\":\"الرياض\"}",
                                  MAIL_SUB_ACTIVE, 100),
                     1);
    /* already there: nothing changes, not even the state */
    assert_int_equal(mail_sub_add(ms, "a", "x@example.org", "Other", NULL, MAIL_SUB_PENDING, 200),
                     0);
    /* addresses compare without regard to case; kept as first written */
    assert_int_equal(mail_sub_add(ms, "a", "X@Example.ORG", NULL, NULL, MAIL_SUB_ACTIVE, 200), 0);
    assert_int_equal(mail_sub_find(ms, "a", "x@EXAMPLE.org", &s), 1);
    assert_string_equal(s->email, "x@example.org");
    free(s);
    /* the same address on another list is another subscriber */
    assert_int_equal(mail_sub_add(ms, "b", "x@example.org", NULL, NULL, MAIL_SUB_PENDING, 300), 1);
    assert_int_equal(mail_sub_add(ms, "a", "x@example.org", NULL, NULL, 9, 300), -1);

    assert_int_equal(mail_sub_find(ms, "a", "x@example.org", &s), 1);
    assert_string_equal(s->name, "سارة");
    assert_string_equal(s->extra, "{\"city\":\"الرياض\"}");
    assert_string_equal(s->list, "a");
    assert_int_equal(s->state, MAIL_SUB_ACTIVE);
    assert_int_equal(s->created, 100);
    int64_t id = s->id;
    free(s);
    assert_int_equal(mail_sub_get(ms, id, &s), 1);
    assert_string_equal(s->email, "x@example.org");
    free(s);
    assert_int_equal(mail_sub_find(ms, "b", "x@example.org", &s), 1);
    assert_string_equal(s->name, "");
    assert_string_equal(s->extra, "{}");
    assert_int_equal(s->state, MAIL_SUB_PENDING);
    free(s);
    assert_int_equal(mail_sub_find(ms, "c", "x@example.org", &s), 0);
    assert_null(s);
    assert_int_equal(mail_sub_get(ms, 999, &s), 0);

    assert_int_equal(mail_sub_count(ms, "a", MAIL_SUB_ANY), 1);
    assert_int_equal(mail_sub_count(ms, "a", MAIL_SUB_ACTIVE), 1);
    assert_int_equal(mail_sub_count(ms, "a", MAIL_SUB_PENDING), 0);
    assert_int_equal(mail_sub_count(ms, "b", MAIL_SUB_PENDING), 1);
    assert_int_equal(mail_sub_count(ms, "none", MAIL_SUB_ANY), 0);

    /* soft bounces count up, and becoming active again clears them */
    assert_int_equal(mail_sub_soft_bounce(ms, id, 400), 1);
    assert_int_equal(mail_sub_soft_bounce(ms, id, 401), 2);
    assert_int_equal(mail_sub_soft_bounce(ms, 999, 401), 0);
    assert_int_equal(mail_sub_set_state(ms, "a", "x@example.org", MAIL_SUB_UNSUBSCRIBED, 500), 1);
    assert_int_equal(mail_sub_set_state(ms, "a", "x@example.org", MAIL_SUB_UNSUBSCRIBED, 501), 1);
    assert_int_equal(mail_sub_get(ms, id, &s), 1);
    assert_int_equal(s->state, MAIL_SUB_UNSUBSCRIBED);
    assert_int_equal(s->soft_bounces, 2);
    assert_int_equal(s->updated, 500);
    free(s);
    assert_int_equal(mail_sub_set_state_id(ms, id, MAIL_SUB_ACTIVE, 600), 1);
    assert_int_equal(mail_sub_get(ms, id, &s), 1);
    assert_int_equal(s->soft_bounces, 0);
    free(s);
    assert_int_equal(mail_sub_set_state(ms, "a", "nobody@example.org", MAIL_SUB_ACTIVE, 1), 0);
    assert_int_equal(mail_sub_set_state_id(ms, 999, MAIL_SUB_ACTIVE, 1), 0);
    assert_int_equal(mail_sub_set_state_id(ms, id, -1, 1), -1);

    assert_int_equal(mail_sub_remove(ms, "a", "x@example.org", 700), 1);
    assert_int_equal(mail_sub_remove(ms, "a", "x@example.org", 700), 0);
    assert_int_equal(mail_sub_count(ms, "a", MAIL_SUB_ANY), 0);
    /* an id is never given again */
    assert_int_equal(mail_sub_add(ms, "a", "x@example.org", NULL, NULL, MAIL_SUB_ACTIVE, 800), 1);
    assert_int_equal(mail_sub_find(ms, "a", "x@example.org", &s), 1);
    assert_true(s->id > id);
    free(s);
}

struct seen {
    char emails[256];
    int stop_after;
    int calls;
};

static int collect(void *arg, const struct mail_subscriber *s)
{
    struct seen *w = arg;
    strcat(w->emails, s->email);
    strcat(w->emails, ",");
    return ++w->calls == w->stop_after ? 42 : 0;
}

static void test_each(void **state)
{
    struct fixture *f = *state;
    struct mail_store *ms = f->ms;
    add(ms, "a", "c@x.org", MAIL_SUB_ACTIVE);
    add(ms, "a", "a@x.org", MAIL_SUB_PENDING);
    add(ms, "a", "b@x.org", MAIL_SUB_ACTIVE);
    add(ms, "b", "z@x.org", MAIL_SUB_ACTIVE);

    struct seen w = {0};
    assert_int_equal(mail_sub_each(ms, "a", MAIL_SUB_ANY, collect, &w), 0);
    assert_string_equal(w.emails, "c@x.org,a@x.org,b@x.org,"); /* in the order added */
    memset(&w, 0, sizeof w);
    assert_int_equal(mail_sub_each(ms, "a", MAIL_SUB_ACTIVE, collect, &w), 0);
    assert_string_equal(w.emails, "c@x.org,b@x.org,");
    memset(&w, 0, sizeof w);
    w.stop_after = 1;
    assert_int_equal(mail_sub_each(ms, "a", MAIL_SUB_ANY, collect, &w), 42);
    assert_string_equal(w.emails, "c@x.org,");
    assert_int_equal(mail_sub_each(ms, "a", 12, collect, &w), -1);
}

static void test_issue_fixes_recipients(void **state)
{
    struct fixture *f = *state;
    struct mail_store *ms = f->ms;
    int64_t a = add(ms, "a", "a@x.org", MAIL_SUB_ACTIVE);
    add(ms, "a", "p@x.org", MAIL_SUB_PENDING);
    add(ms, "a", "u@x.org", MAIL_SUB_UNSUBSCRIBED);
    add(ms, "a", "b@x.org", MAIL_SUB_BOUNCED);
    add(ms, "a", "c@x.org", MAIL_SUB_ACTIVE);
    add(ms, "other", "o@x.org", MAIL_SUB_ACTIVE);

    int64_t id = 0, again = 0;
    assert_int_equal(mail_issue_each(ms, "a", "2026/post.md", 1000, &id), 1);
    assert_true(id > 0);
    /* added after the issue was made: not a recipient of it */
    add(ms, "a", "late@x.org", MAIL_SUB_ACTIVE);
    /* made twice (the announcement handled again): nothing new */
    assert_int_equal(mail_issue_each(ms, "a", "2026/post.md", 2000, &again), 0);
    assert_int_equal(again, id);

    struct mail_issue p = {0};
    assert_int_equal(mail_issue_progress(ms, id, &p), 1);
    assert_int_equal(p.total, 2);
    assert_int_equal(p.pending, 2);
    assert_int_equal(p.sent + p.failed + p.retrying, 0);
    assert_int_equal(mail_issue_progress(ms, id + 100, &p), 0);

    char keys[512];
    due_keys(ms, 5000, NULL, 100, keys, sizeof keys);
    char want[128];
    snprintf(want, sizeof want, "%lld:a@x.org,%lld:c@x.org", (long long)id, (long long)id);
    assert_string_equal(keys, want);

    /* what the sender gets */
    struct mail_delivery *v;
    size_t n;
    assert_int_equal(mail_due(ms, 5000, NULL, 1, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].key.issue, id);
    assert_int_equal(v[0].key.subscriber, a);
    assert_int_equal(v[0].subscriber_id, a);
    assert_int_equal(v[0].kind, MAIL_ISSUE_EACH);
    assert_string_equal(v[0].list, "a");
    assert_string_equal(v[0].post, "2026/post.md");
    assert_string_equal(v[0].name, "اسم");
    assert_string_equal(v[0].extra, "{}");
    assert_int_equal(v[0].attempts, 0);
    mail_due_free(v, n);

    /* another post: the late subscriber is one of its recipients */
    int64_t id2;
    assert_int_equal(mail_issue_each(ms, "a", "2026/second.md", 3000, &id2), 1);
    assert_int_equal(mail_issue_progress(ms, id2, &p), 1);
    assert_int_equal(p.total, 3);
    /* another list's issue for the same post is another issue */
    int64_t id3;
    assert_int_equal(mail_issue_each(ms, "other", "2026/post.md", 3000, &id3), 1);
    assert_true(id3 != id);
    assert_int_equal(mail_issue_progress(ms, id3, &p), 1);
    assert_int_equal(p.total, 1);
}

static void test_issue_in_caller_transaction(void **state)
{
    struct fixture *f = *state;
    struct mail_store *ms = f->ms;
    add(ms, "a", "a@x.org", MAIL_SUB_ACTIVE);
    int64_t id;

    /* inside the caller's transaction, undone with it */
    assert_int_equal(store_begin(f->st), 0);
    assert_int_equal(mail_issue_each(ms, "a", "p.md", 1, &id), 1);
    assert_int_equal(mail_cursor_put(ms, 7), 0);
    store_rollback(f->st);
    struct mail_issue p;
    assert_int_equal(mail_issue_progress(ms, id, &p), 0);
    assert_int_equal(mail_cursor_get(ms), 0);

    assert_int_equal(store_begin(f->st), 0);
    assert_int_equal(mail_issue_each(ms, "a", "p.md", 1, &id), 1);
    assert_int_equal(mail_cursor_put(ms, 7), 0);
    assert_int_equal(store_commit(f->st), 0);
    assert_int_equal(mail_issue_progress(ms, id, &p), 1);
    assert_int_equal(p.total, 1);
    assert_int_equal(mail_cursor_get(ms), 7);
}

static void test_digest(void **state)
{
    struct fixture *f = *state;
    struct mail_store *ms = f->ms;
    add(ms, "d", "a@x.org", MAIL_SUB_ACTIVE);
    int64_t id, again;
    assert_int_equal(mail_last_digest(ms, "d"), 0);
    assert_int_equal(mail_issue_digest(ms, "d", 100, 200, 201, &id), 1);
    assert_int_equal(mail_issue_digest(ms, "d", 100, 200, 202, &again), 0);
    assert_int_equal(again, id);
    assert_int_equal(mail_issue_digest(ms, "d", 200, 300, 301, &again), 1);
    assert_int_equal(mail_last_digest(ms, "d"), 300);
    /* an 'each' issue and a digest of the same list do not collide */
    assert_int_equal(mail_issue_each(ms, "d", "x.md", 1, NULL), 1);

    struct mail_delivery *v;
    size_t n;
    assert_int_equal(mail_due(ms, 1000, NULL, 10, &v, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(v[0].kind, MAIL_ISSUE_DIGEST);
    assert_null(v[0].post);
    assert_int_equal(v[0].window_from, 100);
    assert_int_equal(v[0].window_to, 200);
    assert_int_equal(v[2].kind, MAIL_ISSUE_EACH);
    mail_due_free(v, n);
}

static void test_transitions_and_progress(void **state)
{
    struct fixture *f = *state;
    struct mail_store *ms = f->ms;
    int64_t s1 = add(ms, "a", "1@x.org", MAIL_SUB_ACTIVE);
    int64_t s2 = add(ms, "a", "2@x.org", MAIL_SUB_ACTIVE);
    int64_t s3 = add(ms, "a", "3@x.org", MAIL_SUB_ACTIVE);
    int64_t s4 = add(ms, "a", "4@x.org", MAIL_SUB_ACTIVE);
    int64_t id;
    assert_int_equal(mail_issue_each(ms, "a", "p.md", 1000, &id), 1);

    struct mail_key k1 = {id, s1}, k2 = {id, s2}, k3 = {id, s3};
    assert_int_equal(mail_delivery_sent(ms, k1, 1001), 0);
    assert_int_equal(mail_delivery_retry(ms, k2, 1100, 421, "try later"), 0);
    assert_int_equal(mail_delivery_failed(ms, k3, 1002, 550, "no such user"), 0);

    struct mail_issue p;
    assert_int_equal(mail_issue_progress(ms, id, &p), 1);
    assert_int_equal(p.total, 4);
    assert_int_equal(p.sent, 1);
    assert_int_equal(p.retrying, 1);
    assert_int_equal(p.failed, 1);
    assert_int_equal(p.pending, 1);

    /* the next retry after a time: the earliest one later than it */
    assert_int_equal(mail_next_retry(ms, 0), 1100);
    assert_int_equal(mail_next_retry(ms, 1099), 1100);
    assert_int_equal(mail_next_retry(ms, 1100), 0); /* due: mail_due's part */

    /* before its time a retry is not due; sent and failed never are */
    char keys[256], want[256];
    due_keys(ms, 1099, NULL, 10, keys, sizeof keys);
    snprintf(want, sizeof want, "%lld:4@x.org", (long long)id);
    assert_string_equal(keys, want);
    due_keys(ms, 1100, NULL, 10, keys, sizeof keys);
    snprintf(want, sizeof want, "%lld:2@x.org,%lld:4@x.org", (long long)id, (long long)id);
    assert_string_equal(keys, want);

    struct mail_delivery *v;
    size_t n;
    assert_int_equal(mail_due(ms, 1100, NULL, 10, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].attempts, 1);
    assert_int_equal(v[1].attempts, 0);
    mail_due_free(v, n);

    /* the retry goes through at last */
    assert_int_equal(mail_delivery_sent(ms, k2, 1101), 0);
    struct mail_key k4 = {id, s4};
    assert_int_equal(mail_delivery_sent(ms, k4, 1102), 0);
    assert_int_equal(mail_issue_progress(ms, id, &p), 1);
    assert_int_equal(p.sent, 3);
    assert_int_equal(p.failed, 1);
    assert_int_equal(p.retrying + p.pending, 0);
    due_keys(ms, 99999, NULL, 10, keys, sizeof keys);
    assert_string_equal(keys, "");
    assert_int_equal(mail_next_retry(ms, 0), 0);

    /* what the table holds: attempts, code and error */
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(store_sqlite(f->st),
                                        "SELECT attempts, code, error, done_at FROM deliveries "
                                        "WHERE issue = ?1 AND subscriber = ?2",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, s2);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 2);
    assert_int_equal(sqlite3_column_type(s, 1), SQLITE_NULL);
    assert_int_equal(sqlite3_column_int64(s, 3), 1101);
    sqlite3_reset(s);
    sqlite3_bind_int64(s, 2, s3);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 1);
    assert_int_equal(sqlite3_column_int(s, 1), 550);
    assert_string_equal((const char *)sqlite3_column_text(s, 2), "no such user");
    sqlite3_finalize(s);
}

static void test_due_order_and_cursor(void **state)
{
    struct fixture *f = *state;
    struct mail_store *ms = f->ms;
    int64_t sub[5];
    char email[32];
    for (int i = 0; i < 5; i++) {
        snprintf(email, sizeof email, "%d@x.org", i);
        sub[i] = add(ms, "a", email, MAIL_SUB_ACTIVE);
    }
    int64_t i1, i2;
    assert_int_equal(mail_issue_each(ms, "a", "one.md", 1, &i1), 1);
    assert_int_equal(mail_issue_each(ms, "a", "two.md", 2, &i2), 1);
    /* a retry due now sorts in among the pending ones by its key */
    struct mail_key r = {i1, sub[3]};
    assert_int_equal(mail_delivery_retry(ms, r, 50, 451, NULL), 0);

    struct mail_delivery *v;
    size_t n;
    assert_int_equal(mail_due(ms, 100, NULL, 100, &v, &n), 0);
    assert_int_equal(n, 10);
    for (size_t i = 1; i < n; i++)
        assert_true(v[i - 1].key.issue < v[i].key.issue ||
                    (v[i - 1].key.issue == v[i].key.issue &&
                     v[i - 1].key.subscriber < v[i].key.subscriber));
    assert_int_equal(v[3].key.subscriber, sub[3]);
    assert_int_equal(v[3].attempts, 1);
    mail_due_free(v, n);

    /* batches of 3, each after the last key of the one before */
    struct mail_key after = {0, 0};
    const struct mail_key *ap = NULL;
    size_t total = 0, batches = 0;
    for (;;) {
        assert_int_equal(mail_due(ms, 100, ap, 3, &v, &n), 0);
        if (n == 0)
            break;
        batches++;
        total += n;
        after = v[n - 1].key;
        ap = &after;
        mail_due_free(v, n);
    }
    assert_int_equal(total, 10);
    assert_int_equal(batches, 4);
    assert_int_equal(mail_due(ms, 100, NULL, 0, &v, &n), 0);
    assert_int_equal(n, 0);
    assert_null(v);
}

static void test_leaving_closes_deliveries(void **state)
{
    struct fixture *f = *state;
    struct mail_store *ms = f->ms;
    int64_t a = add(ms, "a", "a@x.org", MAIL_SUB_ACTIVE);
    int64_t b = add(ms, "a", "b@x.org", MAIL_SUB_ACTIVE);
    add(ms, "a", "c@x.org", MAIL_SUB_ACTIVE);
    add(ms, "a", "d@x.org", MAIL_SUB_ACTIVE);
    int64_t id;
    assert_int_equal(mail_issue_each(ms, "a", "p.md", 1, &id), 1);
    struct mail_key ka = {id, a}, kb = {id, b};
    assert_int_equal(mail_delivery_sent(ms, ka, 2), 0);
    assert_int_equal(mail_delivery_retry(ms, kb, 10, 421, "busy"), 0);

    /* a sent one stays sent; open ones close as failed */
    assert_int_equal(mail_sub_set_state(ms, "a", "a@x.org", MAIL_SUB_UNSUBSCRIBED, 3), 1);
    assert_int_equal(mail_sub_set_state_id(ms, b, MAIL_SUB_BOUNCED, 3), 1);
    assert_int_equal(mail_sub_remove(ms, "a", "c@x.org", 3), 1);

    struct mail_issue p;
    assert_int_equal(mail_issue_progress(ms, id, &p), 1);
    assert_int_equal(p.total, 4);
    assert_int_equal(p.sent, 1);
    assert_int_equal(p.failed, 2);
    assert_int_equal(p.pending, 1);
    assert_int_equal(p.retrying, 0);

    char keys[128], want[128];
    due_keys(ms, 100, NULL, 10, keys, sizeof keys);
    snprintf(want, sizeof want, "%lld:d@x.org", (long long)id);
    assert_string_equal(keys, want);

    /* a subscriber made active again is not put back into old issues */
    assert_int_equal(mail_sub_set_state_id(ms, b, MAIL_SUB_ACTIVE, 4), 1);
    due_keys(ms, 100, NULL, 10, keys, sizeof keys);
    assert_string_equal(keys, want);
}

struct issues_seen {
    char text[256];
};

static int collect_issue(void *arg, const struct mail_issue *is)
{
    struct issues_seen *w = arg;
    size_t len = strlen(w->text);
    snprintf(w->text + len, sizeof w->text - len, "%s:%s:%s:%lld/%lld;", is->list,
             is->kind == MAIL_ISSUE_EACH ? "each" : "digest", is->post ? is->post : "-",
             (long long)is->sent, (long long)is->total);
    return 0;
}

static void test_issue_listing(void **state)
{
    struct fixture *f = *state;
    struct mail_store *ms = f->ms;
    int64_t a = add(ms, "a", "a@x.org", MAIL_SUB_ACTIVE);
    add(ms, "b", "b@x.org", MAIL_SUB_ACTIVE);
    int64_t i1;
    assert_int_equal(mail_issue_each(ms, "a", "one.md", 1, &i1), 1);
    assert_int_equal(mail_issue_digest(ms, "b", 0, 10, 11, NULL), 1);
    assert_int_equal(mail_issue_each(ms, "a", "two.md", 12, NULL), 1);
    struct mail_key k = {i1, a};
    assert_int_equal(mail_delivery_sent(ms, k, 13), 0);

    struct issues_seen w = {{0}};
    assert_int_equal(mail_issue_each_progress(ms, NULL, collect_issue, &w), 0);
    assert_string_equal(w.text, "a:each:two.md:0/1;b:digest:-:0/1;a:each:one.md:1/1;");
    memset(&w, 0, sizeof w);
    assert_int_equal(mail_issue_each_progress(ms, "a", collect_issue, &w), 0);
    assert_string_equal(w.text, "a:each:two.md:0/1;a:each:one.md:1/1;");
}

static void test_cursor(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(mail_cursor_get(f->ms), 0);
    /* init sets a cursor never set, once */
    assert_int_equal(mail_cursor_init(f->ms, 5), 1);
    assert_int_equal(mail_cursor_get(f->ms), 5);
    assert_int_equal(mail_cursor_init(f->ms, 9), 0);
    assert_int_equal(mail_cursor_get(f->ms), 5);
    assert_int_equal(mail_cursor_put(f->ms, 12345678901LL), 0);
    assert_int_equal(mail_cursor_get(f->ms), 12345678901LL);
    /* the key of the brief, in the meta table */
    char *v = store_meta_get(f->st, "mail_cursor");
    assert_string_equal(v, "12345678901");
    free(v);
}

static void test_schema(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = store_sqlite(f->st);
    /* the CHECK constraints hold whatever the caller does */
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO subscribers(list, email, state, created, "
                                      "updated) VALUES ('a', 'e@x.org', 'gone', 1, 1)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO deliveries(issue, subscriber, state) "
                                      "VALUES (1, 1, 'lost')",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    /* the queue query reads the partial index, never the whole table */
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "EXPLAIN QUERY PLAN SELECT issue FROM deliveries "
                                        "WHERE state IN ('pending', 'retry') AND state = "
                                        "'pending' AND next_try = 0 ORDER BY issue, subscriber",
                                        -1, &s, NULL),
                     SQLITE_OK);
    int used = 0;
    while (sqlite3_step(s) == SQLITE_ROW)
        used |= strstr((const char *)sqlite3_column_text(s, 3), "deliveries_queue") != NULL;
    sqlite3_finalize(s);
    assert_true(used);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states),
        cmocka_unit_test_setup_teardown(test_subscribers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_fixes_recipients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_in_caller_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transitions_and_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_due_order_and_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leaving_closes_deliveries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
