/*
 * mail_store: subscribers, issues and deliveries in SQLite (see
 * mail_store.h; the tables are migration 2 of store/store.c). Statements are
 * prepared once, on the store's connection, and kept for the life of the
 * handle. The queue is read through the partial index deliveries_queue,
 * whose entries are (state, next_try, issue, subscriber): pending rows have
 * next_try 0, so they come out in (issue, subscriber) order with no sort,
 * and a finished row leaves the index.
 */
#include "mail_store.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mstmt {
    M_SUB_ADD,
    M_SUB_ID,
    M_SUB_LIST,
    M_SUB_SET,
    M_SUB_CLOSE,
    M_SUB_DELETE,
    M_SUB_GET,
    M_SUB_FIND,
    M_SUB_EACH,
    M_SUB_EACH_STATE,
    M_SUB_COUNT,
    M_SUB_COUNT_STATE,
    M_SUB_SOFT,
    M_SUB_SOFT_GET,
    M_ISSUE_EACH,
    M_ISSUE_EACH_ID,
    M_ISSUE_DIGEST,
    M_ISSUE_DIGEST_ID,
    M_RECIPIENTS,
    M_ISSUE_TOTAL,
    M_LAST_DIGEST,
    M_PROGRESS,
    M_ISSUES,
    M_ISSUES_LIST,
    M_DUE,
    M_SENT,
    M_RETRY,
    M_FAILED,
    M_NEXT_RETRY,
    M_COUNT
};

#define SUB_COLS                                                                                   \
    "SELECT id, list, email, name, extra, state, soft_bounces, created, updated FROM subscribers "

/* The two arms of the queue, each in (issue, subscriber) order, merged. The
 * redundant "state IN" term lets the planner use the partial index; a
 * pending row has made no attempt yet. */
#define DUE_ARM(attempts, cond)                                                                    \
    "SELECT d.issue, d.subscriber, " attempts ", i.list, i.kind, i.post, i.window_from, "          \
    "i.window_to, s.email, s.name, s.extra "                                                       \
    "FROM deliveries d CROSS JOIN issues i ON i.id = d.issue "                                     \
    "CROSS JOIN subscribers s ON s.id = d.subscriber "                                             \
    "WHERE d.state IN ('pending', 'retry') AND " cond " "                                          \
    "AND (d.issue, d.subscriber) > (?2, ?3) AND s.state = 'active' "

static const char *const msql[M_COUNT] = {
    [M_SUB_ADD] = "INSERT INTO subscribers(list, email, name, extra, state, created, updated) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT DO NOTHING",
    [M_SUB_ID] = "SELECT id FROM subscribers WHERE list = ?1 AND email = ?2",
    [M_SUB_LIST] = "SELECT list FROM subscribers WHERE id = ?1",
    [M_SUB_SET] = "UPDATE subscribers SET state = ?2, updated = ?3, "
                  "soft_bounces = CASE WHEN ?2 = 'active' THEN 0 ELSE soft_bounces END "
                  "WHERE id = ?1 AND state <> ?2",
    /* By primary key, once per issue of the list: "+state" keeps the
     * planner off the queue index, which would walk the whole queue. */
    [M_SUB_CLOSE] = "UPDATE deliveries SET state = 'failed', error = ?3, done_at = ?4 "
                    "WHERE subscriber = ?1 AND +state IN ('pending', 'retry') "
                    "AND issue IN (SELECT id FROM issues WHERE list = ?2)",
    [M_SUB_DELETE] = "DELETE FROM subscribers WHERE id = ?1",
    [M_SUB_GET] = SUB_COLS "WHERE id = ?1",
    [M_SUB_FIND] = SUB_COLS "WHERE list = ?1 AND email = ?2",
    [M_SUB_EACH] = SUB_COLS "WHERE list = ?1 ORDER BY id",
    [M_SUB_EACH_STATE] = SUB_COLS "WHERE list = ?1 AND state = ?2 ORDER BY id",
    [M_SUB_COUNT] = "SELECT COUNT(*) FROM subscribers WHERE list = ?1",
    [M_SUB_COUNT_STATE] = "SELECT COUNT(*) FROM subscribers WHERE list = ?1 AND state = ?2",
    [M_SUB_SOFT] = "UPDATE subscribers SET soft_bounces = soft_bounces + 1, updated = ?2 "
                   "WHERE id = ?1",
    [M_SUB_SOFT_GET] = "SELECT soft_bounces FROM subscribers WHERE id = ?1",
    [M_ISSUE_EACH] = "INSERT INTO issues(list, kind, post, created, total) "
                     "VALUES (?1, 'each', ?2, ?3, 0) ON CONFLICT DO NOTHING",
    [M_ISSUE_EACH_ID] = "SELECT id FROM issues WHERE list = ?1 AND kind = 'each' AND post = ?2",
    [M_ISSUE_DIGEST] = "INSERT INTO issues(list, kind, window_from, window_to, created, total) "
                       "VALUES (?1, 'digest', ?2, ?3, ?4, 0) ON CONFLICT DO NOTHING",
    [M_ISSUE_DIGEST_ID] = "SELECT id FROM issues WHERE list = ?1 AND kind = 'digest' "
                          "AND window_to = ?2",
    [M_RECIPIENTS] = "INSERT INTO deliveries(issue, subscriber, state) "
                     "SELECT ?1, id, 'pending' FROM subscribers "
                     "WHERE list = ?2 AND state = 'active' ORDER BY id",
    [M_ISSUE_TOTAL] = "UPDATE issues SET total = ?2 WHERE id = ?1",
    [M_LAST_DIGEST] = "SELECT COALESCE(MAX(window_to), 0) FROM issues "
                      "WHERE list = ?1 AND kind = 'digest'",
    [M_PROGRESS] = "SELECT (SELECT total FROM issues WHERE id = ?1), "
                   "COALESCE(SUM(state = 'sent'), 0), COALESCE(SUM(state = 'failed'), 0), "
                   "COALESCE(SUM(state = 'retry'), 0), COALESCE(SUM(state = 'pending'), 0) "
                   "FROM deliveries WHERE issue = ?1",
#define ISSUE_COLS                                                                                 \
    "SELECT id, list, kind, post, window_from, window_to, created, total FROM issues "
    [M_ISSUES] = ISSUE_COLS "ORDER BY id DESC",
    [M_ISSUES_LIST] = ISSUE_COLS "WHERE list = ?1 ORDER BY id DESC",
    [M_DUE] = DUE_ARM("0", "d.state = 'pending' AND d.next_try = 0")             /* */
    "UNION ALL " DUE_ARM("d.attempts", "d.state = 'retry' AND d.next_try <= ?1") /* */
    "ORDER BY 1, 2 LIMIT ?4",
    [M_SENT] = "UPDATE deliveries SET state = 'sent', attempts = attempts + 1, done_at = ?3, "
               "code = NULL, error = NULL WHERE issue = ?1 AND subscriber = ?2",
    [M_RETRY] = "UPDATE deliveries SET state = 'retry', attempts = attempts + 1, next_try = ?3, "
                "code = ?4, error = ?5 WHERE issue = ?1 AND subscriber = ?2",
    [M_FAILED] = "UPDATE deliveries SET state = 'failed', attempts = attempts + 1, done_at = ?3, "
                 "code = ?4, error = ?5 WHERE issue = ?1 AND subscriber = ?2",
    /* One probe of the queue index (state, next_try). */
    [M_NEXT_RETRY] = "SELECT COALESCE(MIN(next_try), 0) FROM deliveries "
                     "WHERE state = 'retry' AND next_try > ?1",
};

struct mail_store {
    struct store *st;
    sqlite3 *db;
    sqlite3_stmt *stmt[M_COUNT];
};

static const char *const state_names[] = {
    [MAIL_SUB_PENDING] = "pending",
    [MAIL_SUB_ACTIVE] = "active",
    [MAIL_SUB_UNSUBSCRIBED] = "unsubscribed",
    [MAIL_SUB_BOUNCED] = "bounced",
};
#define NSTATES ((int)(sizeof state_names / sizeof *state_names))

const char *mail_sub_state_name(int state)
{
    return state >= 0 && state < NSTATES ? state_names[state] : NULL;
}

int mail_sub_state_parse(const char *name)
{
    for (int i = 0; name && i < NSTATES; i++)
        if (!strcmp(name, state_names[i]))
            return i;
    return -1;
}

struct mail_store *mail_store_new(struct store *st)
{
    struct mail_store *ms = calloc(1, sizeof *ms);
    if (!ms)
        return NULL;
    ms->st = st;
    ms->db = store_sqlite(st);
    if (store_stmts_prepare(ms->db, msql, M_COUNT, ms->stmt) < 0) {
        mail_store_free(ms);
        return NULL;
    }
    return ms;
}

void mail_store_free(struct mail_store *ms)
{
    if (!ms)
        return;
    store_stmts_finalize(ms->stmt, M_COUNT);
    free(ms);
}

/* ---- helpers ------------------------------------------------------------ */

/* A cached statement, reset and unbound for its next use. */
static sqlite3_stmt *use(struct mail_store *ms, enum mstmt id)
{
    return store_stmt_fresh(ms->stmt[id]);
}

/* The first column of s's one row as an integer: 1 and *v, 0 no row, -1. */
static int step_int(sqlite3_stmt *s, int64_t *v)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int exec(struct mail_store *ms, const char *sql)
{
    return sqlite3_exec(ms->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/*
 * Changes made of several statements: inside the caller's transaction a
 * savepoint, else BEGIN IMMEDIATE, which takes the write lock first (a
 * deferred one that read first could not upgrade once the daemon wrote).
 */
static int tx_begin(struct mail_store *ms, int *nested)
{
    *nested = !sqlite3_get_autocommit(ms->db);
    return exec(ms, *nested ? "SAVEPOINT mail_store" : "BEGIN IMMEDIATE");
}

/* Ends what tx_begin opened: commits when rc >= 0 (returning rc, or -1 if
 * the commit fails), else rolls back and returns rc. */
static int tx_end(struct mail_store *ms, int nested, int rc)
{
    if (rc >= 0 && exec(ms, nested ? "RELEASE mail_store" : "COMMIT") == 0)
        return rc;
    exec(ms, nested ? "ROLLBACK TO mail_store; RELEASE mail_store" : "ROLLBACK");
    return -1;
}

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? (const char *)t : "";
}

/* ---- subscribers -------------------------------------------------------- */

int mail_sub_add(struct mail_store *ms, const char *list, const char *email, const char *name,
                 const char *extra, int state, int64_t now)
{
    const char *st = mail_sub_state_name(state);
    if (!list || !email || !st)
        return -1;
    sqlite3_stmt *s = use(ms, M_SUB_ADD);
    sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, email, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, name ? name : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, extra ? extra : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, st, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, now);
    if (store_step_done(s) < 0)
        return -1;
    return sqlite3_changes(ms->db) > 0;
}

/* Closes the deliveries still open to subscriber id of list, as failed
 * with error why. Inside a transaction. */
static int close_deliveries(struct mail_store *ms, int64_t id, const char *list, const char *why,
                            int64_t now)
{
    sqlite3_stmt *s = use(ms, M_SUB_CLOSE);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, list, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, why, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now);
    return store_step_done(s);
}

/* The list of subscriber id (malloc'd) into *list: 1, 0 none, -1. */
static int sub_list(struct mail_store *ms, int64_t id, char **list)
{
    sqlite3_stmt *s = use(ms, M_SUB_LIST);
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    *list = NULL;
    if (rc == SQLITE_ROW && !(*list = strdup(col_text(s, 0))))
        rc = SQLITE_NOMEM;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* set_state_id inside a transaction. */
static int set_state(struct mail_store *ms, int64_t id, int state, int64_t now)
{
    char *list;
    int rc = sub_list(ms, id, &list);
    if (rc <= 0)
        return rc;
    sqlite3_stmt *s = use(ms, M_SUB_SET);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, mail_sub_state_name(state), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now);
    rc = store_step_done(s);
    if (rc == 0 && sqlite3_changes(ms->db) > 0 && state != MAIL_SUB_ACTIVE)
        rc = close_deliveries(ms, id, list, mail_sub_state_name(state), now);
    free(list);
    return rc < 0 ? -1 : 1;
}

int mail_sub_set_state_id(struct mail_store *ms, int64_t id, int state, int64_t now)
{
    int nested;
    if (!mail_sub_state_name(state) || tx_begin(ms, &nested) < 0)
        return -1;
    return tx_end(ms, nested, set_state(ms, id, state, now));
}

/* The id of (list, email): 1, 0 none, -1. */
static int sub_id(struct mail_store *ms, const char *list, const char *email, int64_t *id)
{
    sqlite3_stmt *s = use(ms, M_SUB_ID);
    sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, email, -1, SQLITE_STATIC);
    return step_int(s, id);
}

int mail_sub_set_state(struct mail_store *ms, const char *list, const char *email, int state,
                       int64_t now)
{
    int nested;
    int64_t id;
    if (!list || !email || !mail_sub_state_name(state) || tx_begin(ms, &nested) < 0)
        return -1;
    int rc = sub_id(ms, list, email, &id);
    if (rc > 0)
        rc = set_state(ms, id, state, now);
    return tx_end(ms, nested, rc);
}

int mail_sub_remove(struct mail_store *ms, const char *list, const char *email, int64_t now)
{
    int nested;
    int64_t id;
    if (!list || !email || tx_begin(ms, &nested) < 0)
        return -1;
    int rc = sub_id(ms, list, email, &id);
    if (rc > 0 && close_deliveries(ms, id, list, "removed", now) < 0)
        rc = -1;
    if (rc > 0) {
        sqlite3_stmt *s = use(ms, M_SUB_DELETE);
        sqlite3_bind_int64(s, 1, id);
        if (store_step_done(s) < 0)
            rc = -1;
    }
    return tx_end(ms, nested, rc);
}

/* The subscriber of s's current row; its strings point into s. */
static void sub_from_row(sqlite3_stmt *s, struct mail_subscriber *m)
{
    m->id = sqlite3_column_int64(s, 0);
    m->list = col_text(s, 1);
    m->email = col_text(s, 2);
    m->name = col_text(s, 3);
    m->extra = col_text(s, 4);
    m->state = mail_sub_state_parse(col_text(s, 5));
    m->soft_bounces = sqlite3_column_int(s, 6);
    m->created = sqlite3_column_int64(s, 7);
    m->updated = sqlite3_column_int64(s, 8);
}

/* A copy of the subscriber of s's current row in one malloc'd block. */
static struct mail_subscriber *sub_copy(sqlite3_stmt *s)
{
    struct mail_subscriber m;
    sub_from_row(s, &m);
    const char *src[4] = {m.list, m.email, m.name, m.extra};
    size_t len[4], total = sizeof m;
    for (int i = 0; i < 4; i++)
        total += (len[i] = strlen(src[i])) + 1;
    struct mail_subscriber *c = malloc(total);
    if (!c)
        return NULL;
    *c = m;
    char *p = (char *)(c + 1);
    const char **dst[4] = {&c->list, &c->email, &c->name, &c->extra};
    for (int i = 0; i < 4; i++) {
        memcpy(p, src[i], len[i] + 1);
        *dst[i] = p;
        p += len[i] + 1;
    }
    return c;
}

static int sub_fetch(sqlite3_stmt *s, struct mail_subscriber **out)
{
    int rc = sqlite3_step(s);
    *out = NULL;
    if (rc == SQLITE_ROW && !(*out = sub_copy(s)))
        rc = SQLITE_NOMEM;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int mail_sub_get(struct mail_store *ms, int64_t id, struct mail_subscriber **out)
{
    sqlite3_stmt *s = use(ms, M_SUB_GET);
    sqlite3_bind_int64(s, 1, id);
    return sub_fetch(s, out);
}

int mail_sub_find(struct mail_store *ms, const char *list, const char *email,
                  struct mail_subscriber **out)
{
    sqlite3_stmt *s = use(ms, M_SUB_FIND);
    sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, email, -1, SQLITE_STATIC);
    return sub_fetch(s, out);
}

int mail_sub_each(struct mail_store *ms, const char *list, int state, mail_sub_fn fn, void *arg)
{
    const char *name = mail_sub_state_name(state);
    if (!list || (state != MAIL_SUB_ANY && !name))
        return -1;
    sqlite3_stmt *s = use(ms, name ? M_SUB_EACH_STATE : M_SUB_EACH);
    sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
    if (name)
        sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    int rc, r = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct mail_subscriber m;
        sub_from_row(s, &m);
        if ((r = fn(arg, &m)) != 0)
            break;
    }
    sqlite3_reset(s);
    return r != 0 ? r : rc == SQLITE_DONE ? 0 : -1;
}

int64_t mail_sub_count(struct mail_store *ms, const char *list, int state)
{
    const char *name = mail_sub_state_name(state);
    int64_t n;
    if (!list || (state != MAIL_SUB_ANY && !name))
        return -1;
    sqlite3_stmt *s = use(ms, name ? M_SUB_COUNT_STATE : M_SUB_COUNT);
    sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
    if (name)
        sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    return step_int(s, &n) == 1 ? n : -1;
}

int mail_sub_soft_bounce(struct mail_store *ms, int64_t id, int64_t now)
{
    int nested;
    int64_t n = 0;
    if (tx_begin(ms, &nested) < 0)
        return -1;
    sqlite3_stmt *s = use(ms, M_SUB_SOFT);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, now);
    int rc = store_step_done(s);
    if (rc == 0 && sqlite3_changes(ms->db) > 0) {
        s = use(ms, M_SUB_SOFT_GET);
        sqlite3_bind_int64(s, 1, id);
        rc = step_int(s, &n) == 1 ? 0 : -1;
    }
    return tx_end(ms, nested, rc < 0 ? -1 : (int)(n > INT32_MAX ? INT32_MAX : n));
}

/* ---- issues ------------------------------------------------------------- */

/*
 * The end of mail_issue_each and _digest: ins has inserted the issue, or
 * found it there (no change); find looks its id up. Adds the recipients
 * and the total to a new issue. Inside a transaction.
 */
static int issue_made(struct mail_store *ms, const char *list, sqlite3_stmt *find, int64_t *id)
{
    int64_t issue;
    if (sqlite3_changes(ms->db) == 0) { /* made before: nothing to add */
        int rc = step_int(find, &issue);
        if (rc > 0 && id)
            *id = issue;
        return rc > 0 ? 0 : -1;
    }
    sqlite3_reset(find);
    issue = sqlite3_last_insert_rowid(ms->db);
    sqlite3_stmt *s = use(ms, M_RECIPIENTS);
    sqlite3_bind_int64(s, 1, issue);
    sqlite3_bind_text(s, 2, list, -1, SQLITE_STATIC);
    if (store_step_done(s) < 0)
        return -1;
    int64_t total = sqlite3_changes(ms->db);
    s = use(ms, M_ISSUE_TOTAL);
    sqlite3_bind_int64(s, 1, issue);
    sqlite3_bind_int64(s, 2, total);
    if (store_step_done(s) < 0)
        return -1;
    if (id)
        *id = issue;
    return 1;
}

int mail_issue_each(struct mail_store *ms, const char *list, const char *post, int64_t now,
                    int64_t *id)
{
    int nested;
    if (!list || !post || tx_begin(ms, &nested) < 0)
        return -1;
    sqlite3_stmt *s = use(ms, M_ISSUE_EACH);
    sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, post, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now);
    int rc = store_step_done(s);
    if (rc == 0) {
        sqlite3_stmt *find = use(ms, M_ISSUE_EACH_ID);
        sqlite3_bind_text(find, 1, list, -1, SQLITE_STATIC);
        sqlite3_bind_text(find, 2, post, -1, SQLITE_STATIC);
        rc = issue_made(ms, list, find, id);
    }
    return tx_end(ms, nested, rc);
}

int mail_issue_digest(struct mail_store *ms, const char *list, int64_t from, int64_t to,
                      int64_t now, int64_t *id)
{
    int nested;
    if (!list || tx_begin(ms, &nested) < 0)
        return -1;
    sqlite3_stmt *s = use(ms, M_ISSUE_DIGEST);
    sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, from);
    sqlite3_bind_int64(s, 3, to);
    sqlite3_bind_int64(s, 4, now);
    int rc = store_step_done(s);
    if (rc == 0) {
        sqlite3_stmt *find = use(ms, M_ISSUE_DIGEST_ID);
        sqlite3_bind_text(find, 1, list, -1, SQLITE_STATIC);
        sqlite3_bind_int64(find, 2, to);
        rc = issue_made(ms, list, find, id);
    }
    return tx_end(ms, nested, rc);
}

int64_t mail_last_digest(struct mail_store *ms, const char *list)
{
    int64_t v;
    sqlite3_stmt *s = use(ms, M_LAST_DIGEST);
    sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
    return step_int(s, &v) == 1 ? v : -1;
}

int mail_issue_progress(struct mail_store *ms, int64_t id, struct mail_issue *p)
{
    sqlite3_stmt *s = use(ms, M_PROGRESS);
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s), found = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        found = 1;
        p->total = sqlite3_column_int64(s, 0);
        p->sent = sqlite3_column_int64(s, 1);
        p->failed = sqlite3_column_int64(s, 2);
        p->retrying = sqlite3_column_int64(s, 3);
        p->pending = sqlite3_column_int64(s, 4);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? found : -1;
}

int mail_issue_each_progress(struct mail_store *ms, const char *list, mail_issue_fn fn, void *arg)
{
    sqlite3_stmt *s = use(ms, list ? M_ISSUES_LIST : M_ISSUES);
    if (list)
        sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
    int rc, r = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct mail_issue is = {0};
        is.id = sqlite3_column_int64(s, 0);
        is.list = col_text(s, 1);
        is.kind = strcmp(col_text(s, 2), "digest") ? MAIL_ISSUE_EACH : MAIL_ISSUE_DIGEST;
        is.post = sqlite3_column_type(s, 3) == SQLITE_NULL ? NULL : col_text(s, 3);
        is.window_from = sqlite3_column_int64(s, 4);
        is.window_to = sqlite3_column_int64(s, 5);
        is.created = sqlite3_column_int64(s, 6);
        if (mail_issue_progress(ms, is.id, &is) != 1) {
            r = -1;
            break;
        }
        if ((r = fn(arg, &is)) != 0)
            break;
    }
    sqlite3_reset(s);
    return r != 0 ? r : rc == SQLITE_DONE ? 0 : -1;
}

/* ---- deliveries --------------------------------------------------------- */

/* Fills d from the current row of the due query; its strings copied into
 * one block, d->mem. 0, or -1. */
static int due_from_row(sqlite3_stmt *s, struct mail_delivery *d)
{
    /* columns: issue, subscriber, attempts, list, kind, post, from, to,
     * email, name, extra */
    static const int cols[5] = {3, 5, 8, 9, 10};
    size_t len[5], total = 0;
    int isnull[5];
    for (int i = 0; i < 5; i++) {
        isnull[i] = sqlite3_column_type(s, cols[i]) == SQLITE_NULL;
        total += (len[i] = strlen(col_text(s, cols[i]))) + 1;
    }
    memset(d, 0, sizeof *d);
    if (!(d->mem = malloc(total)))
        return -1;
    const char **dst[5] = {&d->list, &d->post, &d->email, &d->name, &d->extra};
    char *p = d->mem;
    for (int i = 0; i < 5; i++) {
        memcpy(p, col_text(s, cols[i]), len[i] + 1);
        *dst[i] = p;
        p += len[i] + 1;
    }
    if (isnull[1])
        d->post = NULL;
    d->key.issue = sqlite3_column_int64(s, 0);
    d->key.subscriber = d->subscriber_id = sqlite3_column_int64(s, 1);
    d->attempts = sqlite3_column_int(s, 2);
    d->kind = strcmp(col_text(s, 4), "digest") ? MAIL_ISSUE_EACH : MAIL_ISSUE_DIGEST;
    d->window_from = sqlite3_column_int64(s, 6);
    d->window_to = sqlite3_column_int64(s, 7);
    return 0;
}

int mail_due(struct mail_store *ms, int64_t now, const struct mail_key *after, size_t max,
             struct mail_delivery **v, size_t *n)
{
    *v = NULL;
    *n = 0;
    if (max == 0)
        return 0;
    if (max > INT32_MAX)
        max = INT32_MAX;
    sqlite3_stmt *s = use(ms, M_DUE);
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, after ? after->issue : INT64_MIN);
    sqlite3_bind_int64(s, 3, after ? after->subscriber : INT64_MIN);
    sqlite3_bind_int64(s, 4, (int64_t)max);
    size_t alloc = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == alloc) {
            alloc = alloc ? alloc * 2 : (max < 64 ? max : 64);
            struct mail_delivery *nv = realloc(*v, alloc * sizeof *nv);
            if (!nv)
                break;
            *v = nv;
        }
        if (due_from_row(s, &(*v)[*n]) < 0)
            break;
        (*n)++;
    }
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return 0;
    mail_due_free(*v, *n);
    *v = NULL;
    *n = 0;
    return -1;
}

void mail_due_free(struct mail_delivery *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].mem);
    free(v);
}

/* A delivery's change of state: s bound from ?3 on by the caller. */
static int delivery_update(sqlite3_stmt *s, struct mail_key k)
{
    sqlite3_bind_int64(s, 1, k.issue);
    sqlite3_bind_int64(s, 2, k.subscriber);
    return store_step_done(s);
}

static void bind_code(sqlite3_stmt *s, int i, int code)
{
    if (code)
        sqlite3_bind_int(s, i, code);
    else
        sqlite3_bind_null(s, i);
}

int mail_delivery_sent(struct mail_store *ms, struct mail_key k, int64_t now)
{
    sqlite3_stmt *s = use(ms, M_SENT);
    sqlite3_bind_int64(s, 3, now);
    return delivery_update(s, k);
}

int mail_delivery_retry(struct mail_store *ms, struct mail_key k, int64_t next_try, int code,
                        const char *error)
{
    sqlite3_stmt *s = use(ms, M_RETRY);
    sqlite3_bind_int64(s, 3, next_try);
    bind_code(s, 4, code);
    bind_text_or_null(s, 5, error);
    return delivery_update(s, k);
}

int mail_delivery_failed(struct mail_store *ms, struct mail_key k, int64_t now, int code,
                         const char *error)
{
    sqlite3_stmt *s = use(ms, M_FAILED);
    sqlite3_bind_int64(s, 3, now);
    bind_code(s, 4, code);
    bind_text_or_null(s, 5, error);
    return delivery_update(s, k);
}

int64_t mail_next_retry(struct mail_store *ms, int64_t now)
{
    int64_t v;
    sqlite3_stmt *s = use(ms, M_NEXT_RETRY);
    sqlite3_bind_int64(s, 1, now);
    return step_int(s, &v) == 1 ? v : -1;
}

/* ---- cursor ------------------------------------------------------------- */

#define CURSOR_KEY "mail_cursor"

int64_t mail_cursor_get(struct mail_store *ms)
{
    char *v = store_meta_get(ms->st, CURSOR_KEY);
    int64_t seq = v ? strtoll(v, NULL, 10) : 0;
    free(v);
    return seq > 0 ? seq : 0;
}

int mail_cursor_put(struct mail_store *ms, int64_t seq)
{
    char v[24];
    snprintf(v, sizeof v, "%" PRId64, seq);
    return store_meta_put(ms->st, CURSOR_KEY, v);
}

int mail_cursor_init(struct mail_store *ms, int64_t seq)
{
    char *v = store_meta_get(ms->st, CURSOR_KEY);
    if (v) {
        free(v);
        return 0;
    }
    return mail_cursor_put(ms, seq) < 0 ? -1 : 1;
}
