/*
 * store: the state of SPEC §9 in SQLite (state.dir/nashra.db, WAL mode,
 * schema versioned with PRAGMA user_version and migrated forward on open).
 *
 * It keeps, per post file, the first time nashra saw it and the last good
 * version of the post (fields and rendered HTML: the outputs, the mail and the
 * fediverse are all made from here, never from a half-edited file), whether
 * it is published, and the announcement log: "published", "updated",
 * "removed" events with a sequence number, which the newsletter and
 * ActivityPub consumers read with their own cursors.
 */
#ifndef NASHRA_STORE_H
#define NASHRA_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/diag.h"
#include "../posts/post.h"

#define STORE_SCHEMA_VERSION 3

struct store;

/* Opens (creating the folder and the file, mode 0700/0600) and migrates.
 * readonly: for commands that only read (status, check). */
struct store *store_open(const char *dir, int readonly, struct diag *err);
void store_close(struct store *st);

/* The database handle, for the other tables' modules (store/mail_store.c):
 * one connection, one writer. */
struct sqlite3;
struct sqlite3 *store_sqlite(struct store *st);

/* Prepared statements kept for a handle's life, shared by store.c and the
 * stores built on its connection (mail_store, ap_store): prepares n
 * statements (out zeroed on failure, the finalize safe either way), 0 or -1;
 * finalizes them; a statement reset and unbound for its next use; a step
 * that must finish (SQLITE_DONE), then reset: 0 or -1. */
struct sqlite3_stmt;
int store_stmts_prepare(struct sqlite3 *db, const char *const *sql, int n,
                        struct sqlite3_stmt **out);
void store_stmts_finalize(struct sqlite3_stmt **s, int n);
struct sqlite3_stmt *store_stmt_fresh(struct sqlite3_stmt *s);
int store_step_done(struct sqlite3_stmt *s);

/* The last SQLite error, for logs. */
const char *store_errmsg(struct store *st);

/* The database file's path (for log lines), "" if none. */
const char *store_path(struct store *st);

__attribute__((warn_unused_result)) int store_begin(struct store *st); /* BEGIN IMMEDIATE */
__attribute__((warn_unused_result)) int store_commit(struct store *st);
void store_rollback(struct store *st);

/* 1 before the first publish pass has completed over this state. */
int store_is_new(struct store *st);
int store_mark_initialized(struct store *st);

/* Small named values (meta table). get: a malloc'd copy, or NULL. */
char *store_meta_get(struct store *st, const char *key);
int store_meta_put(struct store *st, const char *key, const char *value);

/* When path was first seen; records now if it never was. -1 on error. */
int64_t store_first_seen(struct store *st, const char *path, int64_t now);

/* What the publisher needs to know of a stored post without loading it. */
struct store_row {
    char *path;
    char *slug;
    char *url;
    char *title;
    unsigned char hash[32];
    int64_t date;
    int64_t updated;
    int draft;
    int published;
    char *fstat; /* the file's size, times and inode when it was last read, or NULL */
};

/* Every stored post, ordered by path. The caller frees with store_rows_free. */
int store_rows(struct store *st, struct store_row **rows, size_t *n);
void store_rows_free(struct store_row *rows, size_t n);

/* Appends to rows (n already there, from these calls only) the row of path,
 * or else the rows holding slug, or else the rows due by then but not
 * published (not drafts). 0, or -1 (rows freed). */
int store_rows_by(struct store *st, const char *path, const char *slug, int64_t due,
                  struct store_row **rows, size_t *n);

/* The first path other than path whose post holds slug (malloc'd), or NULL. */
char *store_slug_owner(struct store *st, const char *slug, const char *path);

/* Published posts; the date of the next scheduled one after now (0: none). */
int64_t store_count_published(struct store *st);
int64_t store_next_due(struct store *st, int64_t now);

/* The sequence number of the newest announcement (0: none; -1: error). */
int64_t store_last_seq(struct store *st);

/* Inserts or replaces the post stored for p->path; published kept as given. */
int store_post_put(struct store *st, const struct post *p, int64_t updated, int published);
int store_post_set_published(struct store *st, const char *path, int published);
int store_post_delete(struct store *st, const char *path);

/* Records what stat(2) said of path's file when its bytes were stored. */
int store_post_fstat(struct store *st, const char *path, const char *fstat);

/* Loads the stored HTML of p (by p->path) into p->html. 0, or -1. */
int store_post_html(struct store *st, struct post *p);

/*
 * Calls fn for each published post, newest first (date, then slug), each a
 * fresh struct post that fn owns (must post_free it, or keep it). with_html 0
 * leaves html NULL. Stops and returns fn's value when it is not 0.
 */
typedef int (*store_post_fn)(void *arg, struct post *p);
int store_each_published(struct store *st, int with_html, store_post_fn fn, void *arg);

/* The newest limit published posts (of one category, or all: NULL), newest
 * first, as store_each_published. */
int store_latest(struct store *st, const char *category, int limit, int with_html, store_post_fn fn,
                 void *arg);

/* The published posts from the offset-th newest on, at most limit. */
int store_page(struct store *st, size_t offset, int limit, int with_html, store_post_fn fn,
               void *arg);

/* A digest of what store_latest would return (paths, contents, dates): the
 * same digest, the same feed. */
int store_latest_digest(struct store *st, const char *category, int limit, unsigned char out[32]);

/* The published posts dated in [from, to), newest first. */
int store_between(struct store *st, int64_t from, int64_t to, int with_html, store_post_fn fn,
                  void *arg);

/* The published post with this slug (html filled), or NULL. */
struct post *store_published_slug(struct store *st, const char *slug);

/* The stored post of path (published or not; html filled), or NULL;
 * *published (when not NULL) tells whether it is published. */
struct post *store_post_by_path(struct store *st, const char *path, int *published);

/* Calls fn for each announcement after seq `after` (after >= 0), or else for
 * each "published" one with ts in [from, to), in order. Stops at fn's first
 * non-zero value and returns it; 0 at the end; -1 error. */
typedef int (*store_ann_fn)(void *arg, int64_t seq, int64_t ts, const char *kind, const char *slug);
int store_announcements(struct store *st, int64_t after, int64_t from, int64_t to, store_ann_fn fn,
                        void *arg);

/* The categories of published posts, sorted, NULL-terminated; 0 or -1. */
int store_categories(struct store *st, char ***names, size_t *n);

/* Dates of the oldest and newest published post: 1, 0 when none, -1. */
int store_span(struct store *st, int64_t *first, int64_t *last);

/* Appends one event to the announcement log; returns its seq, or -1. */
int64_t store_announce(struct store *st, const char *kind, const char *slug, const char *url,
                       const char *title, int64_t ts);

#endif
