/*
 * post: one post read from the content folder (SPEC §4): front matter, body
 * rendered to safe HTML with absolute links, and every field's default.
 *
 * Reading a post needs the config (site URL, language, time zone,
 * allow_html, max_bytes) and, for the date default, the time nashra first
 * saw the file, which the caller gets from the store.
 */
#ifndef NASHRA_POST_H
#define NASHRA_POST_H

#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../lib/diag.h"

enum post_kind { POST_MARKDOWN, POST_TEXT };

struct post {
    char *path; /* relative to content.dir, '/'-separated: "2024/a.md" */
    enum post_kind kind;
    char *slug;  /* UTF-8, never holds / ? # % whitespace or "..": safe as a folder name */
    char *url;   /* {site.url}/posts/{percent-encoded slug}/ */
    char *title; /* plain text, one line */
    char *author;
    char *summary;     /* plain text, <= ~280 characters, cut at a word */
    char *lang;        /* BCP 47 */
    int rtl;           /* direction of lang (or front matter dir: rtl|ltr) */
    char *image;       /* absolute URL, or NULL */
    char **categories; /* ncategories strings */
    size_t ncategories;
    char **tags;
    size_t ntags;
    int64_t date;    /* seconds since the epoch (UTC) */
    int64_t updated; /* front matter `updated`, or 0: the store decides */
    int has_date;    /* date came from the front matter */
    int draft;
    int newsletter; /* default 1 */
    char *html;     /* body: sanitised HTML, links absolute, XML-safe UTF-8 */
    size_t html_len;
    unsigned char hash[32]; /* SHA-256 of the file's bytes */
};

/* 1 for a path that names a post (*.md, *.txt) and is not hidden or an
 * editor's file (*~ *.swp .#* #*# *.tmp); name is the last path component. */
int post_path_wanted(const char *name);

/*
 * Reads and renders the post at content_dir/relpath. first_seen is the date
 * default. Returns NULL with *err filled (line/col in the file where there is
 * one) for a rejected post.
 */
struct post *post_read(const struct config *cfg, const char *relpath, int64_t first_seen,
                       struct diag *err);

/* The same from bytes already in memory (tests, fuzzing). */
struct post *post_parse(const struct config *cfg, const char *relpath, const char *data, size_t len,
                        int64_t first_seen, struct diag *err);

void post_free(struct post *p);

/* 1 if slug is acceptable (see struct post); else 0 and *why says why. */
int post_slug_valid(const char *slug, const char **why);

/*
 * The content folder's posts, recursively, sorted by path (byte order), so
 * "first by path wins" is stable. Symlinks to folders are not followed (no
 * loops); other entries that post_path_wanted() refuses are skipped.
 */
struct post_scan {
    char **paths; /* relative to content.dir */
    size_t n;
};
int post_scan(const char *content_dir, struct post_scan *out, struct diag *err);
void post_scan_free(struct post_scan *s);

#endif
