/*
 * store: nashra's SQLite state (see store.h). One connection, prepared
 * statements cached for the life of the store, WAL mode so CLI readers can
 * run beside the daemon, busy timeout so they wait instead of failing.
 */
#include "store.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/buf.h"
#include "../lib/fileio.h"

enum stmt_id {
    S_FIRST_SEEN_GET,
    S_FIRST_SEEN_PUT,
    S_META_GET,
    S_META_PUT,
    S_ROWS,
    S_ROW_PATH,
    S_ROWS_SLUG,
    S_ROWS_DUE,
    S_SLUG_OWNER,
    S_COUNT_PUBLISHED,
    S_NEXT_DUE,
    S_LAST_SEQ,
    S_POST_PUT,
    S_POST_PUBLISHED,
    S_POST_DELETE,
    S_CAT_PUBLISHED,
    S_POST_FSTAT,
    S_BODY_PUT,
    S_BODY_GET,
    S_BODY_DELETE,
    S_EACH_PUBLISHED,
    S_LATEST,
    S_PAGE,
    S_LATEST_IN,
    S_SIG,
    S_SIG_IN,
    S_BETWEEN,
    S_BY_SLUG,
    S_BY_PATH,
    S_ANN_AFTER,
    S_ANN_BETWEEN,
    S_CATEGORIES,
    S_CAT_PUT,
    S_CAT_DELETE,
    S_SPAN,
    S_ANNOUNCE,
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_FIRST_SEEN_GET] = "SELECT first_seen FROM seen WHERE path = ?1",
    [S_FIRST_SEEN_PUT] = "INSERT INTO seen(path, first_seen) VALUES (?1, ?2)",
    [S_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [S_META_PUT] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
#define ROW_COLS                                                                                   \
    "SELECT path, slug, hash, date, updated, draft, published, url, title, fstat FROM posts "
    [S_ROWS] = ROW_COLS "ORDER BY path",
    [S_ROW_PATH] = ROW_COLS "WHERE path = ?1",
    [S_ROWS_SLUG] = ROW_COLS "WHERE slug = ?1 ORDER BY path",
    [S_ROWS_DUE] = ROW_COLS "WHERE published = 0 AND draft = 0 AND date <= ?1 ORDER BY path",
    [S_SLUG_OWNER] = "SELECT path FROM posts WHERE slug = ?1 AND path <> ?2 ORDER BY path LIMIT 1",
    [S_COUNT_PUBLISHED] = "SELECT COUNT(*) FROM posts WHERE published = 1",
    [S_LAST_SEQ] = "SELECT COALESCE(MAX(seq), 0) FROM announcements",
    [S_NEXT_DUE] = "SELECT MIN(date) FROM posts WHERE draft = 0 AND date > ?1",
    [S_POST_PUT] = "INSERT OR REPLACE INTO posts(path, slug, hash, kind, url, title, author, "
                   "summary, lang, rtl, image, categories, tags, date, updated, draft, "
                   "newsletter, published) VALUES "
                   "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)",
    [S_POST_PUBLISHED] = "UPDATE posts SET published = ?2 WHERE path = ?1",
    [S_POST_FSTAT] = "UPDATE posts SET fstat = ?2 WHERE path = ?1",
    [S_CAT_PUBLISHED] = "UPDATE post_categories SET published = ?2 WHERE path = ?1",
    [S_POST_DELETE] = "DELETE FROM posts WHERE path = ?1",
    [S_BODY_PUT] = "INSERT OR REPLACE INTO bodies(path, html) VALUES (?1, ?2)",
    [S_BODY_GET] = "SELECT html FROM bodies WHERE path = ?1",
    [S_BODY_DELETE] = "DELETE FROM bodies WHERE path = ?1",
#define POST_COLS                                                                                  \
    "SELECT path, slug, hash, kind, url, title, author, summary, lang, rtl, image, categories, "   \
    "tags, date, updated, draft, newsletter, "                                                     \
    "CASE WHEN ?1 THEN (SELECT html FROM bodies b WHERE b.path = p.path) END FROM posts p "
    [S_EACH_PUBLISHED] = POST_COLS "WHERE published = 1 ORDER BY date DESC, slug ASC",
    [S_LATEST] = POST_COLS "WHERE published = 1 ORDER BY date DESC, slug ASC LIMIT ?2",
    [S_PAGE] = POST_COLS "WHERE published = 1 ORDER BY date DESC, slug ASC LIMIT ?2 OFFSET ?3",
    /* The newest paths first, then their columns: sorting whole rows would
     * read every body of the category. */
    [S_LATEST_IN] = POST_COLS "WHERE path IN (SELECT path FROM post_categories WHERE "
                              "category = ?3 AND published = 1 "
                              "ORDER BY date DESC, slug ASC LIMIT ?2) "
                              "ORDER BY date DESC, slug ASC",
    [S_SIG] = "SELECT path, hash, date, updated FROM posts WHERE published = 1 "
              "ORDER BY date DESC, slug ASC LIMIT ?1",
    [S_SIG_IN] = "SELECT q.path, q.hash, q.date, q.updated FROM post_categories c "
                 "JOIN posts q ON q.path = c.path WHERE c.category = ?2 AND c.published = 1 "
                 "ORDER BY c.date DESC, c.slug ASC LIMIT ?1",
    [S_BETWEEN] = POST_COLS "WHERE published = 1 AND date >= ?2 AND date < ?3 "
                            "ORDER BY date DESC, slug ASC",
    [S_BY_SLUG] = POST_COLS "WHERE slug = ?2 AND +published = 1", /* by the slug index */
    [S_BY_PATH] = POST_COLS "WHERE path = ?2",
    [S_ANN_AFTER] = "SELECT seq, ts, kind, slug FROM announcements WHERE seq > ?1 ORDER BY seq",
    [S_ANN_BETWEEN] = "SELECT seq, ts, kind, slug FROM announcements "
                      "WHERE kind = 'published' AND ts >= ?1 AND ts < ?2 ORDER BY seq",
    [S_CATEGORIES] = "SELECT DISTINCT category FROM post_categories WHERE published = 1 "
                     "ORDER BY 1",
    [S_CAT_PUT] = "INSERT OR IGNORE INTO post_categories(path, category, published, date, slug) "
                  "VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_CAT_DELETE] = "DELETE FROM post_categories WHERE path = ?1",
    [S_SPAN] = "SELECT MIN(date), MAX(date) FROM posts WHERE published = 1",
    [S_ANNOUNCE] = "INSERT INTO announcements(ts, kind, slug, url, title) VALUES (?1,?2,?3,?4,?5)",
};

/* Each entry moves the schema from version i to i + 1. */
static const char *const migrations[] = {
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE seen(path TEXT PRIMARY KEY, first_seen INTEGER NOT NULL);"
    "CREATE TABLE posts("
    "  path TEXT PRIMARY KEY, slug TEXT NOT NULL, hash BLOB NOT NULL, kind INTEGER NOT NULL,"
    "  url TEXT NOT NULL, title TEXT NOT NULL, author TEXT NOT NULL, summary TEXT NOT NULL,"
    "  lang TEXT NOT NULL, rtl INTEGER NOT NULL, image TEXT, categories TEXT NOT NULL,"
    "  tags TEXT NOT NULL, date INTEGER NOT NULL, updated INTEGER NOT NULL,"
    "  draft INTEGER NOT NULL, newsletter INTEGER NOT NULL,"
    "  published INTEGER NOT NULL DEFAULT 0,"
    "  fstat TEXT) WITHOUT ROWID;" /* rows in path order */
    /* Bodies apart: scans of posts stay small (no overflow pages to walk). */
    "CREATE TABLE bodies(path TEXT PRIMARY KEY, html TEXT NOT NULL);"
    "CREATE TABLE post_categories(path TEXT NOT NULL, category TEXT NOT NULL,"
    "  published INTEGER NOT NULL, date INTEGER NOT NULL, slug TEXT NOT NULL,"
    "  PRIMARY KEY (path, category));" /* the order of posts, again: a category's newest */
    "CREATE INDEX post_categories_newest ON post_categories(category, published, date, slug);"
    "CREATE INDEX posts_slug ON posts(slug);"
    "CREATE INDEX posts_published ON posts(published, date);"
    "CREATE TABLE announcements("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('published', 'updated', 'removed')),"
    "  slug TEXT NOT NULL, url TEXT NOT NULL, title TEXT NOT NULL);",
    /* 2: newsletters (SPEC §8, store/mail_store.c). An issue's recipients are
     * its delivery rows, made when the issue is; extra holds a subscriber's
     * other CSV columns as a JSON object. */
    "CREATE TABLE subscribers("
    /* AUTOINCREMENT: ids are in VERP tokens and links, and a removed
     * subscriber's must never name someone else. NOCASE: Ali@x.org and
     * ali@x.org are one subscriber (kept as first written). */
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, list TEXT NOT NULL,"
    "  email TEXT NOT NULL COLLATE NOCASE,"
    "  name TEXT NOT NULL DEFAULT '', extra TEXT NOT NULL DEFAULT '{}',"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'unsubscribed', 'bounced')),"
    "  soft_bounces INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL, updated INTEGER NOT NULL,"
    "  UNIQUE (list, email));"
    "CREATE INDEX subscribers_state ON subscribers(list, state);" /* an issue's recipients */
    "CREATE TABLE issues("
    "  id INTEGER PRIMARY KEY, list TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('each', 'digest')),"
    "  post TEXT, window_from INTEGER, window_to INTEGER,"
    "  created INTEGER NOT NULL, total INTEGER NOT NULL,"
    "  UNIQUE (list, kind, post), UNIQUE (list, kind, window_to));"
    "CREATE TABLE deliveries("
    "  issue INTEGER NOT NULL, subscriber INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'retry', 'failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 0, next_try INTEGER NOT NULL DEFAULT 0,"
    "  code INTEGER, error TEXT, done_at INTEGER,"
    "  PRIMARY KEY (issue, subscriber)) WITHOUT ROWID;"
    /* The queue: entries (state, next_try, issue, subscriber), so pending
     * rows come in (issue, subscriber) order without a sort; partial, so a
     * row that is done leaves it and it stays the size of the queue. */
    "CREATE INDEX deliveries_queue ON deliveries(state, next_try)"
    "  WHERE state IN ('pending', 'retry');",
    /* 3: ActivityPub (SPEC §7, store/ap_store.c): followers, the cache of
     * remote keys, and the delivery queue: one activity body, one row per
     * (activity, target inbox). The consumer's cursor is a meta row. */
    "CREATE TABLE ap_followers("
    "  actor TEXT PRIMARY KEY, inbox TEXT NOT NULL, shared_inbox TEXT,"
    "  created INTEGER NOT NULL);"
    "CREATE INDEX ap_followers_inbox ON ap_followers(inbox);"
    "CREATE INDEX ap_followers_shared ON ap_followers(shared_inbox);"
    "CREATE TABLE ap_keys("
    "  key_id TEXT PRIMARY KEY, owner TEXT NOT NULL, pem TEXT NOT NULL,"
    "  fetched_at INTEGER NOT NULL);"
    "CREATE TABLE ap_activities("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE ap_deliveries("
    "  activity INTEGER NOT NULL REFERENCES ap_activities(id), inbox TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'retry', 'failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 0, next_try INTEGER NOT NULL DEFAULT 0,"
    "  code INTEGER, error TEXT, done_at INTEGER,"
    "  PRIMARY KEY (activity, inbox)) WITHOUT ROWID;"
    "CREATE INDEX ap_deliveries_queue ON ap_deliveries(state, next_try)"
    "  WHERE state IN ('pending', 'retry');",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
};

struct sqlite3 *store_sqlite(struct store *st)
{
    return st->db;
}

const char *store_errmsg(struct store *st)
{
    return st && st->db ? sqlite3_errmsg(st->db) : "no database";
}

const char *store_path(struct store *st)
{
    const char *p = st && st->db ? sqlite3_db_filename(st->db, "main") : NULL;
    return p ? p : "";
}

static int exec(struct store *st, const char *sql)
{
    return sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int migrate(struct store *st, struct diag *err)
{
    sqlite3_stmt *s;
    int version = 0;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (version > STORE_SCHEMA_VERSION) {
        diag_set(err, 0, 0, "state schema version %d is newer than this nashra (%d)", version,
                 STORE_SCHEMA_VERSION);
        return -1;
    }
    for (int v = version; v < STORE_SCHEMA_VERSION; v++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
        if (exec(st, "BEGIN IMMEDIATE") < 0)
            goto fail;
        if (exec(st, migrations[v]) < 0 || exec(st, pragma) < 0) {
            diag_set(err, 0, 0, "migrating state to version %d: %s", v + 1, sqlite3_errmsg(st->db));
            exec(st, "ROLLBACK");
            return -1;
        }
        if (exec(st, "COMMIT") < 0)
            goto fail;
    }
    return 0;
fail:
    diag_set(err, 0, 0, "%s", sqlite3_errmsg(st->db));
    return -1;
}

struct store *store_open(const char *dir, int readonly, struct diag *err)
{
    struct store *st = calloc(1, sizeof *st);
    char *path = path_join(dir, "nashra.db");
    if (!st || !path) {
        diag_set(err, 0, 0, "out of memory");
        goto fail;
    }
    if (!readonly && mkdir_p(dir) < 0) {
        diag_set(err, 0, 0, "cannot create state folder %s: %s", dir, strerror(errno));
        goto fail;
    }
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &st->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        diag_set(err, 0, 0, "cannot open %s: %s", path, st->db ? sqlite3_errmsg(st->db) : "");
        goto fail;
    }
    if (!readonly)
        chmod(path, 0600);
    sqlite3_busy_timeout(st->db, 5000);
    if (!readonly && (exec(st, "PRAGMA journal_mode = WAL") < 0 ||
                      exec(st, "PRAGMA synchronous = NORMAL") < 0)) {
        diag_set(err, 0, 0, "%s: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (!readonly && migrate(st, err) < 0)
        goto fail;
    if (store_stmts_prepare(st->db, stmt_sql, S_COUNT, st->stmt) < 0) {
        diag_set(err, 0, 0, "%s: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    free(path);
    return st;
fail:
    free(path);
    store_close(st);
    return NULL;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    store_stmts_finalize(st->stmt, S_COUNT);
    sqlite3_close(st->db);
    free(st);
}

int store_begin(struct store *st)
{
    return exec(st, "BEGIN IMMEDIATE");
}

int store_commit(struct store *st)
{
    return exec(st, "COMMIT");
}

void store_rollback(struct store *st)
{
    exec(st, "ROLLBACK");
}

int store_stmts_prepare(sqlite3 *db, const char *const *sql, int n, sqlite3_stmt **out)
{
    for (int i = 0; i < n; i++)
        if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &out[i], NULL) !=
            SQLITE_OK)
            return -1;
    return 0;
}

void store_stmts_finalize(sqlite3_stmt **s, int n)
{
    for (int i = 0; i < n; i++)
        sqlite3_finalize(s[i]);
}

sqlite3_stmt *store_stmt_fresh(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

int store_step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Resets a cached statement for its next use. */
static sqlite3_stmt *use(struct store *st, enum stmt_id id)
{
    return store_stmt_fresh(st->stmt[id]);
}

static char *col_strdup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? strdup((const char *)t) : NULL;
}

int store_is_new(struct store *st)
{
    sqlite3_stmt *s = use(st, S_META_GET);
    sqlite3_bind_text(s, 1, "initialized", -1, SQLITE_STATIC);
    int found = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_reset(s);
    return !found;
}

int store_mark_initialized(struct store *st)
{
    return store_meta_put(st, "initialized", "1");
}

char *store_meta_get(struct store *st, const char *key)
{
    sqlite3_stmt *s = use(st, S_META_GET);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    char *v = sqlite3_step(s) == SQLITE_ROW ? col_strdup(s, 0) : NULL;
    sqlite3_reset(s);
    return v;
}

int store_meta_put(struct store *st, const char *key, const char *value)
{
    sqlite3_stmt *s = use(st, S_META_PUT);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    return store_step_done(s);
}

int64_t store_first_seen(struct store *st, const char *path, int64_t now)
{
    sqlite3_stmt *s = use(st, S_FIRST_SEEN_GET);
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        return t;
    }
    sqlite3_reset(s);
    s = use(st, S_FIRST_SEEN_PUT);
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now);
    return store_step_done(s) == 0 ? now : -1;
}

static int rows_append(sqlite3_stmt *s, struct store_row **rows, size_t *n);

int store_rows(struct store *st, struct store_row **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    return rows_append(use(st, S_ROWS), rows, n);
}

int store_rows_by(struct store *st, const char *path, const char *slug, int64_t due,
                  struct store_row **rows, size_t *n)
{
    sqlite3_stmt *s;
    if (path) {
        s = use(st, S_ROW_PATH);
        sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    } else if (slug) {
        s = use(st, S_ROWS_SLUG);
        sqlite3_bind_text(s, 1, slug, -1, SQLITE_STATIC);
    } else {
        s = use(st, S_ROWS_DUE);
        sqlite3_bind_int64(s, 1, due);
    }
    return rows_append(s, rows, n);
}

char *store_slug_owner(struct store *st, const char *slug, const char *path)
{
    sqlite3_stmt *s = use(st, S_SLUG_OWNER);
    sqlite3_bind_text(s, 1, slug, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    char *v = sqlite3_step(s) == SQLITE_ROW ? col_strdup(s, 0) : NULL;
    sqlite3_reset(s);
    return v;
}

int64_t store_count_published(struct store *st)
{
    sqlite3_stmt *s = use(st, S_COUNT_PUBLISHED);
    int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_reset(s);
    return v;
}

int64_t store_last_seq(struct store *st)
{
    sqlite3_stmt *s = use(st, S_LAST_SEQ);
    int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_reset(s);
    return v;
}

int64_t store_next_due(struct store *st, int64_t now)
{
    sqlite3_stmt *s = use(st, S_NEXT_DUE);
    sqlite3_bind_int64(s, 1, now);
    int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_reset(s);
    return v;
}

/* What rows_append allocated for n rows: 0, or a power of two from 256. */
static size_t rows_capacity(size_t n)
{
    size_t c = n ? 256 : 0;
    while (c && c < n)
        c *= 2;
    return c;
}

/* Appends the rows s returns to *rows (*n of them already there, from
 * earlier calls). On error everything is freed and *rows is NULL. */
static int rows_append(sqlite3_stmt *s, struct store_row **rows, size_t *n)
{
    size_t alloc = rows_capacity(*n);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == alloc) {
            alloc = alloc ? alloc * 2 : 256;
            struct store_row *nr = realloc(*rows, alloc * sizeof *nr);
            if (!nr)
                goto fail;
            *rows = nr;
        }
        struct store_row *r = &(*rows)[*n];
        memset(r, 0, sizeof *r);
        r->path = col_strdup(s, 0);
        r->slug = col_strdup(s, 1);
        (*n)++;
        if (!r->path || !r->slug)
            goto fail;
        if (sqlite3_column_bytes(s, 2) == 32)
            memcpy(r->hash, sqlite3_column_blob(s, 2), 32);
        r->date = sqlite3_column_int64(s, 3);
        r->updated = sqlite3_column_int64(s, 4);
        r->draft = sqlite3_column_int(s, 5);
        r->published = sqlite3_column_int(s, 6);
        r->url = col_strdup(s, 7);
        r->title = col_strdup(s, 8);
        r->fstat = col_strdup(s, 9); /* NULL: not known */
        if (!r->url || !r->title)
            goto fail;
    }
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return 0;
fail:
    sqlite3_reset(s);
    store_rows_free(*rows, *n);
    *rows = NULL;
    *n = 0;
    return -1;
}

void store_rows_free(struct store_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].path);
        free(rows[i].slug);
        free(rows[i].url);
        free(rows[i].title);
        free(rows[i].fstat);
    }
    free(rows);
}

static char *names_to_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(v[i])) < 0) { /* no memory: not a name less */
            json_decref(a);
            a = NULL;
        }
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

/* The names stored by names_to_json; NULL when they cannot all be had (no
 * memory): a post read with some of its names missing would be published
 * so. */
static char **names_from_json(const char *s, size_t *n)
{
    json_t *a = s ? json_loads(s, 0, NULL) : NULL;
    size_t count = json_is_array(a) ? json_array_size(a) : 0;
    char **v = s && !a ? NULL : calloc(count + 1, sizeof *v);
    *n = 0;
    for (size_t i = 0; v && i < count; i++) {
        const char *t = json_string_value(json_array_get(a, i));
        if (t && !(v[*n] = strdup(t))) {
            while (*n > 0)
                free(v[--*n]);
            free(v);
            v = NULL;
        } else if (t) {
            (*n)++;
        }
    }
    json_decref(a);
    return v;
}

int store_post_put(struct store *st, const struct post *p, int64_t updated, int published)
{
    char *cats = names_to_json(p->categories, p->ncategories);
    char *tags = names_to_json(p->tags, p->ntags);
    int rc = -1;
    if (!cats || !tags)
        goto out;
    sqlite3_stmt *s = use(st, S_POST_PUT);
    sqlite3_bind_text(s, 1, p->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, p->slug, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, p->hash, 32, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, (int)p->kind);
    sqlite3_bind_text(s, 5, p->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, p->title, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, p->author, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, p->summary, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, p->lang, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 10, p->rtl);
    if (p->image)
        sqlite3_bind_text(s, 11, p->image, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 12, cats, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 13, tags, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 14, p->date);
    sqlite3_bind_int64(s, 15, updated);
    sqlite3_bind_int(s, 16, p->draft);
    sqlite3_bind_int(s, 17, p->newsletter);
    sqlite3_bind_int(s, 18, published);
    if ((rc = store_step_done(s)) < 0)
        goto out;
    s = use(st, S_BODY_PUT);
    sqlite3_bind_text(s, 1, p->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, p->html ? p->html : "", (int)p->html_len, SQLITE_STATIC);
    if ((rc = store_step_done(s)) < 0)
        goto out;
    s = use(st, S_CAT_DELETE);
    sqlite3_bind_text(s, 1, p->path, -1, SQLITE_STATIC);
    rc = store_step_done(s);
    for (size_t i = 0; rc == 0 && i < p->ncategories; i++) {
        s = use(st, S_CAT_PUT);
        sqlite3_bind_text(s, 1, p->path, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, p->categories[i], -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 3, published);
        sqlite3_bind_int64(s, 4, p->date);
        sqlite3_bind_text(s, 5, p->slug, -1, SQLITE_STATIC);
        rc = store_step_done(s);
    }
out:
    free(cats);
    free(tags);
    return rc;
}

int store_post_set_published(struct store *st, const char *path, int published)
{
    sqlite3_stmt *s = use(st, S_POST_PUBLISHED);
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, published);
    if (store_step_done(s) < 0)
        return -1;
    s = use(st, S_CAT_PUBLISHED);
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, published);
    return store_step_done(s);
}

int store_post_fstat(struct store *st, const char *path, const char *fstat)
{
    sqlite3_stmt *s = use(st, S_POST_FSTAT);
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, fstat, -1, SQLITE_STATIC);
    return store_step_done(s);
}

int store_post_delete(struct store *st, const char *path)
{
    sqlite3_stmt *s = use(st, S_POST_DELETE);
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    if (store_step_done(s) < 0)
        return -1;
    s = use(st, S_BODY_DELETE);
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    if (store_step_done(s) < 0)
        return -1;
    s = use(st, S_CAT_DELETE);
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    return store_step_done(s);
}

int store_post_html(struct store *st, struct post *p)
{
    sqlite3_stmt *s = use(st, S_BODY_GET);
    sqlite3_bind_text(s, 1, p->path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        free(p->html);
        p->html_len = (size_t)sqlite3_column_bytes(s, 0);
        p->html = col_strdup(s, 0);
        rc = p->html ? 0 : -1;
    } else {
        rc = -1;
    }
    sqlite3_reset(s);
    return rc;
}

static struct post *post_from_row(sqlite3_stmt *s)
{
    struct post *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->path = col_strdup(s, 0);
    p->slug = col_strdup(s, 1);
    if (sqlite3_column_bytes(s, 2) == 32)
        memcpy(p->hash, sqlite3_column_blob(s, 2), 32);
    p->kind = (enum post_kind)sqlite3_column_int(s, 3);
    p->url = col_strdup(s, 4);
    p->title = col_strdup(s, 5);
    p->author = col_strdup(s, 6);
    p->summary = col_strdup(s, 7);
    p->lang = col_strdup(s, 8);
    p->rtl = sqlite3_column_int(s, 9);
    p->image = col_strdup(s, 10);
    p->categories = names_from_json((const char *)sqlite3_column_text(s, 11), &p->ncategories);
    p->tags = names_from_json((const char *)sqlite3_column_text(s, 12), &p->ntags);
    p->date = sqlite3_column_int64(s, 13);
    p->updated = sqlite3_column_int64(s, 14);
    p->has_date = 1;
    p->draft = sqlite3_column_int(s, 15);
    p->newsletter = sqlite3_column_int(s, 16);
    if (sqlite3_column_type(s, 17) != SQLITE_NULL) {
        p->html_len = (size_t)sqlite3_column_bytes(s, 17);
        p->html = col_strdup(s, 17);
    }
    if (!p->path || !p->slug || !p->url || !p->title || !p->author || !p->summary || !p->lang ||
        !p->categories || !p->tags || (!p->image && sqlite3_column_type(s, 10) != SQLITE_NULL) ||
        (!p->html && sqlite3_column_type(s, 17) != SQLITE_NULL)) {
        post_free(p);
        return NULL;
    }
    return p;
}

static int each_post(sqlite3_stmt *s, store_post_fn fn, void *arg)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct post *p = post_from_row(s);
        if (!p) {
            sqlite3_reset(s);
            return -1;
        }
        int r = fn(arg, p);
        if (r != 0) {
            sqlite3_reset(s);
            return r;
        }
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_each_published(struct store *st, int with_html, store_post_fn fn, void *arg)
{
    sqlite3_stmt *s = use(st, S_EACH_PUBLISHED);
    sqlite3_bind_int(s, 1, with_html);
    return each_post(s, fn, arg);
}

int store_latest(struct store *st, const char *category, int limit, int with_html, store_post_fn fn,
                 void *arg)
{
    sqlite3_stmt *s = use(st, category ? S_LATEST_IN : S_LATEST);
    sqlite3_bind_int(s, 1, with_html);
    sqlite3_bind_int(s, 2, limit);
    if (category)
        sqlite3_bind_text(s, 3, category, -1, SQLITE_STATIC);
    return each_post(s, fn, arg);
}

int store_page(struct store *st, size_t offset, int limit, int with_html, store_post_fn fn,
               void *arg)
{
    sqlite3_stmt *s = use(st, S_PAGE);
    sqlite3_bind_int(s, 1, with_html);
    sqlite3_bind_int(s, 2, limit);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)offset);
    return each_post(s, fn, arg);
}

int store_latest_digest(struct store *st, const char *category, int limit, unsigned char out[32])
{
    sqlite3_stmt *s = use(st, category ? S_SIG_IN : S_SIG);
    struct buf b;
    int rc, err = 0;
    buf_init(&b, 0);
    sqlite3_bind_int(s, 1, limit);
    if (category)
        sqlite3_bind_text(s, 2, category, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t t[2] = {sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3)};
        if (buf_append(&b, sqlite3_column_text(s, 0), (size_t)sqlite3_column_bytes(s, 0) + 1) < 0 ||
            buf_append(&b, sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1)) < 0 ||
            buf_append(&b, t, sizeof t) < 0)
            err = 1;
    }
    SHA256((const unsigned char *)buf_str(&b), b.len, out);
    sqlite3_reset(s);
    buf_free(&b);
    return rc == SQLITE_DONE && !err ? 0 : -1;
}

int store_between(struct store *st, int64_t from, int64_t to, int with_html, store_post_fn fn,
                  void *arg)
{
    sqlite3_stmt *s = use(st, S_BETWEEN);
    sqlite3_bind_int(s, 1, with_html);
    sqlite3_bind_int64(s, 2, from);
    sqlite3_bind_int64(s, 3, to);
    return each_post(s, fn, arg);
}

struct post *store_published_slug(struct store *st, const char *slug)
{
    sqlite3_stmt *s = use(st, S_BY_SLUG);
    sqlite3_bind_int(s, 1, 1);
    sqlite3_bind_text(s, 2, slug, -1, SQLITE_STATIC);
    struct post *p = sqlite3_step(s) == SQLITE_ROW ? post_from_row(s) : NULL;
    sqlite3_reset(s);
    return p;
}

struct post *store_post_by_path(struct store *st, const char *path, int *published)
{
    sqlite3_stmt *s = use(st, S_BY_PATH);
    sqlite3_bind_int(s, 1, 1);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    struct post *p = sqlite3_step(s) == SQLITE_ROW ? post_from_row(s) : NULL;
    sqlite3_reset(s);
    if (p && published) {
        struct store_row *r = NULL;
        size_t n = 0;
        *published = store_rows_by(st, path, NULL, 0, &r, &n) == 0 && n && r[0].published;
        store_rows_free(r, n);
    }
    return p;
}

int store_announcements(struct store *st, int64_t after, int64_t from, int64_t to, store_ann_fn fn,
                        void *arg)
{
    sqlite3_stmt *s;
    if (after >= 0) {
        s = use(st, S_ANN_AFTER);
        sqlite3_bind_int64(s, 1, after);
    } else {
        s = use(st, S_ANN_BETWEEN);
        sqlite3_bind_int64(s, 1, from);
        sqlite3_bind_int64(s, 2, to);
    }
    int rc, r = 0;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW)
        r = fn(arg, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
               (const char *)sqlite3_column_text(s, 2), (const char *)sqlite3_column_text(s, 3));
    sqlite3_reset(s);
    return r ? r : rc == SQLITE_DONE ? 0 : -1;
}

int store_categories(struct store *st, char ***names, size_t *n)
{
    sqlite3_stmt *s = use(st, S_CATEGORIES);
    size_t alloc = 0;
    int rc;
    *names = NULL;
    *n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n + 1 >= alloc) {
            alloc = alloc ? alloc * 2 : 16;
            char **a = realloc(*names, alloc * sizeof *a);
            if (!a)
                break;
            *names = a;
        }
        if (!((*names)[*n] = col_strdup(s, 0)))
            break;
        (*names)[++*n] = NULL;
    }
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return 0;
    for (size_t i = 0; i < *n; i++)
        free((*names)[i]);
    free(*names);
    *names = NULL;
    *n = 0;
    return -1;
}

int store_span(struct store *st, int64_t *first, int64_t *last)
{
    sqlite3_stmt *s = use(st, S_SPAN);
    int rc = sqlite3_step(s);
    int any = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
    if (any) {
        *first = sqlite3_column_int64(s, 0);
        *last = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? any : -1;
}

int64_t store_announce(struct store *st, const char *kind, const char *slug, const char *url,
                       const char *title, int64_t ts)
{
    sqlite3_stmt *s = use(st, S_ANNOUNCE);
    sqlite3_bind_int64(s, 1, ts);
    sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, slug, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, url, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, title, -1, SQLITE_STATIC);
    if (store_step_done(s) < 0)
        return -1;
    return sqlite3_last_insert_rowid(st->db);
}
