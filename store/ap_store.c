/*
 * ap_store: followers, remote keys and the ActivityPub delivery queue in
 * SQLite (see ap_store.h; the tables are migration 3 of store/store.c).
 * Statements are prepared once on the store's connection. The queue is read
 * through the partial index ap_deliveries_queue.
 */
#include "ap_store.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum astmt {
    A_FOL_PUT,
    A_FOL_DEL,
    A_FOL_DEL_INBOX,
    A_FOL_IS,
    A_FOL_COUNT,
    A_FOL_INBOXES,
    A_KEY_GET,
    A_KEY_PUT,
    A_ACT_ADD,
    A_ACT_DROP,
    A_ENQ_FOL,
    A_ENQ_ONE,
    A_DUE,
    A_BODY,
    A_SENT,
    A_RETRY,
    A_FAILED,
    A_NEXT_RETRY,
    A_PENDING,
    A_ANN_URL,
    A_PRUNE_DEL,
    A_PRUNE_ACT,
    A_COUNT
};

#define TARGET "COALESCE(shared_inbox, inbox)"

static const char *const asql[A_COUNT] = {
    [A_FOL_PUT] = "INSERT INTO ap_followers(actor, inbox, shared_inbox, created) "
                  "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(actor) DO UPDATE SET "
                  "inbox = excluded.inbox, shared_inbox = excluded.shared_inbox",
    [A_FOL_DEL] = "DELETE FROM ap_followers WHERE actor = ?1",
    [A_FOL_DEL_INBOX] = "DELETE FROM ap_followers WHERE inbox = ?1 OR shared_inbox = ?1",
    [A_FOL_IS] = "SELECT 1 FROM ap_followers WHERE actor = ?1",
    [A_FOL_COUNT] = "SELECT COUNT(*) FROM ap_followers",
    [A_FOL_INBOXES] = "SELECT COUNT(DISTINCT " TARGET ") FROM ap_followers",
    [A_KEY_GET] = "SELECT owner, pem, fetched_at FROM ap_keys WHERE key_id = ?1",
    [A_KEY_PUT] = "INSERT OR REPLACE INTO ap_keys(key_id, owner, pem, fetched_at) "
                  "VALUES (?1, ?2, ?3, ?4)",
    [A_ACT_ADD] = "INSERT INTO ap_activities(body, created) VALUES (?1, ?2)",
    [A_ACT_DROP] = "DELETE FROM ap_activities WHERE id = ?1",
    [A_ENQ_FOL] = "INSERT OR IGNORE INTO ap_deliveries(activity, inbox, state) "
                  "SELECT DISTINCT ?1, " TARGET ", 'pending' FROM ap_followers",
    [A_ENQ_ONE] = "INSERT OR IGNORE INTO ap_deliveries(activity, inbox, state) "
                  "VALUES (?1, ?2, 'pending')",
    [A_DUE] = "SELECT d.activity, d.inbox, d.attempts, a.created FROM ap_deliveries d "
              "JOIN ap_activities a ON a.id = d.activity "
              "WHERE d.state IN ('pending', 'retry') AND d.next_try <= ?1 "
              "AND (d.activity, d.inbox) > (?2, ?3) ORDER BY d.activity, d.inbox LIMIT ?4",
    [A_BODY] = "SELECT body FROM ap_activities WHERE id = ?1",
    [A_SENT] = "UPDATE ap_deliveries SET state = 'sent', attempts = attempts + 1, done_at = ?3, "
               "code = ?4, error = NULL WHERE activity = ?1 AND inbox = ?2",
    [A_RETRY] = "UPDATE ap_deliveries SET state = 'retry', attempts = attempts + 1, "
                "next_try = ?3, code = ?4, error = ?5 WHERE activity = ?1 AND inbox = ?2",
    [A_FAILED] = "UPDATE ap_deliveries SET state = 'failed', attempts = attempts + 1, "
                 "done_at = ?3, code = ?4, error = ?5 WHERE activity = ?1 AND inbox = ?2",
    [A_NEXT_RETRY] = "SELECT COALESCE(MIN(next_try), 0) FROM ap_deliveries "
                     "WHERE state = 'retry' AND next_try > ?1",
    [A_PENDING] = "SELECT COUNT(*) FROM ap_deliveries WHERE state IN ('pending', 'retry')",
    [A_ANN_URL] = "SELECT url FROM announcements WHERE seq = ?1",
    [A_PRUNE_DEL] = "DELETE FROM ap_deliveries WHERE state IN ('sent', 'failed') AND done_at < ?1",
    [A_PRUNE_ACT] = "DELETE FROM ap_activities WHERE created < ?1 AND NOT EXISTS "
                    "(SELECT 1 FROM ap_deliveries d WHERE d.activity = ap_activities.id)",
};

struct ap_store {
    struct store *st;
    sqlite3 *db;
    sqlite3_stmt *stmt[A_COUNT];
};

struct ap_store *ap_store_new(struct store *st)
{
    struct ap_store *as = calloc(1, sizeof *as);
    if (!as)
        return NULL;
    as->st = st;
    as->db = store_sqlite(st);
    if (store_stmts_prepare(as->db, asql, A_COUNT, as->stmt) < 0) {
        ap_store_free(as);
        return NULL;
    }
    return as;
}

void ap_store_free(struct ap_store *as)
{
    if (!as)
        return;
    store_stmts_finalize(as->stmt, A_COUNT);
    free(as);
}

/* ---- helpers ------------------------------------------------------------ */

static sqlite3_stmt *use(struct ap_store *as, enum astmt id)
{
    return store_stmt_fresh(as->stmt[id]);
}

static int64_t step_int(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_reset(s);
    return v;
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return strdup(t ? t : "");
}

static int exec(struct ap_store *as, const char *sql)
{
    return sqlite3_exec(as->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* ---- followers ------------------------------------------------------------ */

int ap_follower_put(struct ap_store *as, const char *actor, const char *inbox,
                    const char *shared_inbox, int64_t now)
{
    int was = ap_follower_is(as, actor);
    if (was < 0)
        return -1;
    sqlite3_stmt *s = use(as, A_FOL_PUT);
    sqlite3_bind_text(s, 1, actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, inbox, -1, SQLITE_STATIC);
    if (shared_inbox)
        sqlite3_bind_text(s, 3, shared_inbox, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now);
    return store_step_done(s) < 0 ? -1 : !was;
}

int ap_follower_remove(struct ap_store *as, const char *actor)
{
    sqlite3_stmt *s = use(as, A_FOL_DEL);
    sqlite3_bind_text(s, 1, actor, -1, SQLITE_STATIC);
    if (store_step_done(s) < 0)
        return -1;
    return sqlite3_changes(as->db) > 0;
}

int64_t ap_followers_remove_inbox(struct ap_store *as, const char *inbox)
{
    sqlite3_stmt *s = use(as, A_FOL_DEL_INBOX);
    sqlite3_bind_text(s, 1, inbox, -1, SQLITE_STATIC);
    if (store_step_done(s) < 0)
        return -1;
    return sqlite3_changes(as->db);
}

int ap_follower_is(struct ap_store *as, const char *actor)
{
    sqlite3_stmt *s = use(as, A_FOL_IS);
    sqlite3_bind_text(s, 1, actor, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int64_t ap_followers_count(struct ap_store *as)
{
    return step_int(use(as, A_FOL_COUNT));
}

int64_t ap_followers_inboxes(struct ap_store *as)
{
    return step_int(use(as, A_FOL_INBOXES));
}

/* ---- keys ----------------------------------------------------------------- */

int ap_key_get(struct ap_store *as, const char *key_id, char **owner, char **pem,
               int64_t *fetched_at)
{
    sqlite3_stmt *s = use(as, A_KEY_GET);
    sqlite3_bind_text(s, 1, key_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s), r = rc == SQLITE_DONE ? 0 : -1;
    if (rc == SQLITE_ROW) {
        *owner = col_dup(s, 0);
        *pem = col_dup(s, 1);
        if (fetched_at)
            *fetched_at = sqlite3_column_int64(s, 2);
        r = *owner && *pem ? 1 : -1;
        if (r < 0) {
            free(*owner);
            free(*pem);
            *owner = *pem = NULL;
        }
    }
    sqlite3_reset(s);
    return r;
}

int ap_key_put(struct ap_store *as, const char *key_id, const char *owner, const char *pem,
               int64_t now)
{
    sqlite3_stmt *s = use(as, A_KEY_PUT);
    sqlite3_bind_text(s, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, pem, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now);
    return store_step_done(s);
}

/* ---- queue ---------------------------------------------------------------- */

static int64_t activity_add(struct ap_store *as, const char *body, int64_t now)
{
    sqlite3_stmt *s = use(as, A_ACT_ADD);
    sqlite3_bind_text(s, 1, body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now);
    if (store_step_done(s) < 0)
        return -1;
    return sqlite3_last_insert_rowid(as->db);
}

int64_t ap_enqueue_followers(struct ap_store *as, const char *body, int64_t now,
                             int64_t *deliveries)
{
    if (deliveries)
        *deliveries = 0;
    if (exec(as, "SAVEPOINT ap_enqueue") < 0)
        return -1;
    int64_t id = activity_add(as, body, now), n = 0;
    if (id > 0) {
        sqlite3_stmt *s = use(as, A_ENQ_FOL);
        sqlite3_bind_int64(s, 1, id);
        if (store_step_done(s) < 0)
            id = -1;
        else
            n = sqlite3_changes(as->db);
    }
    if (id > 0 && n == 0) { /* no follower: no activity kept either */
        sqlite3_stmt *s = use(as, A_ACT_DROP);
        sqlite3_bind_int64(s, 1, id);
        id = store_step_done(s) < 0 ? -1 : 0;
    }
    if (id < 0) {
        exec(as, "ROLLBACK TO ap_enqueue");
        exec(as, "RELEASE ap_enqueue");
        return -1;
    }
    if (exec(as, "RELEASE ap_enqueue") < 0)
        return -1;
    if (deliveries)
        *deliveries = n;
    return id;
}

int64_t ap_enqueue_one(struct ap_store *as, const char *body, const char *inbox, int64_t now)
{
    if (exec(as, "SAVEPOINT ap_enqueue") < 0)
        return -1;
    int64_t id = activity_add(as, body, now);
    if (id > 0) {
        sqlite3_stmt *s = use(as, A_ENQ_ONE);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, inbox, -1, SQLITE_STATIC);
        if (store_step_done(s) < 0)
            id = -1;
    }
    if (id < 0) {
        exec(as, "ROLLBACK TO ap_enqueue");
        exec(as, "RELEASE ap_enqueue");
        return -1;
    }
    return exec(as, "RELEASE ap_enqueue") < 0 ? -1 : id;
}

void ap_due_free(struct ap_delivery *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].inbox);
    free(v);
}

int ap_due(struct ap_store *as, int64_t now, int64_t after_activity, const char *after_inbox,
           size_t limit, struct ap_delivery **out, size_t *n)
{
    sqlite3_stmt *s = use(as, A_DUE);
    struct ap_delivery *v = limit ? calloc(limit, sizeof *v) : NULL;
    size_t k = 0;
    int rc = SQLITE_DONE;
    *out = NULL;
    *n = 0;
    if (!v)
        return limit ? -1 : 0;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, after_inbox ? after_activity : -1);
    sqlite3_bind_text(s, 3, after_inbox ? after_inbox : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)limit);
    while (k < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        v[k].activity = sqlite3_column_int64(s, 0);
        v[k].inbox = col_dup(s, 1);
        v[k].attempts = sqlite3_column_int(s, 2);
        v[k].created = sqlite3_column_int64(s, 3);
        if (!v[k].inbox) {
            rc = SQLITE_NOMEM;
            break;
        }
        k++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        ap_due_free(v, k);
        return -1;
    }
    *out = v;
    *n = k;
    return 0;
}

char *ap_activity_body(struct ap_store *as, int64_t id)
{
    sqlite3_stmt *s = use(as, A_BODY);
    sqlite3_bind_int64(s, 1, id);
    char *b = sqlite3_step(s) == SQLITE_ROW ? col_dup(s, 0) : NULL;
    sqlite3_reset(s);
    return b;
}

static int outcome(struct ap_store *as, enum astmt which, int64_t activity, const char *inbox,
                   int64_t t, int code, const char *error)
{
    sqlite3_stmt *s = use(as, which);
    sqlite3_bind_int64(s, 1, activity);
    sqlite3_bind_text(s, 2, inbox, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, t);
    if (code)
        sqlite3_bind_int(s, 4, code);
    if (error && which != A_SENT)
        sqlite3_bind_text(s, 5, error, -1, SQLITE_STATIC);
    return store_step_done(s);
}

int ap_delivery_sent(struct ap_store *as, int64_t activity, const char *inbox, int64_t now,
                     int code)
{
    return outcome(as, A_SENT, activity, inbox, now, code, NULL);
}

int ap_delivery_retry(struct ap_store *as, int64_t activity, const char *inbox, int64_t next_try,
                      int code, const char *error)
{
    return outcome(as, A_RETRY, activity, inbox, next_try, code, error);
}

int ap_delivery_failed(struct ap_store *as, int64_t activity, const char *inbox, int64_t now,
                       int code, const char *error)
{
    return outcome(as, A_FAILED, activity, inbox, now, code, error);
}

int64_t ap_next_retry(struct ap_store *as, int64_t now)
{
    sqlite3_stmt *s = use(as, A_NEXT_RETRY);
    sqlite3_bind_int64(s, 1, now);
    return step_int(s);
}

int64_t ap_pending_count(struct ap_store *as)
{
    return step_int(use(as, A_PENDING));
}

/* ---- cursor --------------------------------------------------------------- */

#define CURSOR_KEY "ap_cursor"

int64_t ap_cursor_get(struct ap_store *as)
{
    char *v = store_meta_get(as->st, CURSOR_KEY);
    int64_t seq = v ? strtoll(v, NULL, 10) : 0;
    free(v);
    return seq > 0 ? seq : 0;
}

int ap_cursor_put(struct ap_store *as, int64_t seq)
{
    char v[24];
    snprintf(v, sizeof v, "%" PRId64, seq);
    return store_meta_put(as->st, CURSOR_KEY, v);
}

int ap_cursor_init(struct ap_store *as, int64_t seq)
{
    char *v = store_meta_get(as->st, CURSOR_KEY);
    if (v) {
        free(v);
        return 0;
    }
    return ap_cursor_put(as, seq) < 0 ? -1 : 1;
}

char *ap_announcement_url(struct ap_store *as, int64_t seq)
{
    sqlite3_stmt *s = use(as, A_ANN_URL);
    sqlite3_bind_int64(s, 1, seq);
    char *u = sqlite3_step(s) == SQLITE_ROW ? col_dup(s, 0) : NULL;
    sqlite3_reset(s);
    return u;
}

int64_t ap_prune(struct ap_store *as, int64_t before)
{
    sqlite3_stmt *s = use(as, A_PRUNE_DEL);
    sqlite3_bind_int64(s, 1, before);
    if (store_step_done(s) < 0)
        return -1;
    int64_t n = sqlite3_changes(as->db);
    s = use(as, A_PRUNE_ACT);
    sqlite3_bind_int64(s, 1, before);
    return store_step_done(s) < 0 ? -1 : n;
}
