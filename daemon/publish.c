/*
 * publish: the pipeline of one pass (see publish.h).
 *
 * State first, outputs second: the store is updated and the announcements
 * appended in one SQLite transaction, so a crash leaves either the old state
 * or the new one; the outputs are then derived from the store alone (every
 * file written atomically, unchanged ones left alone), so a crash there is
 * repaired by the next pass and `rm -rf public/` loses nothing.
 */
#include "publish.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/fileio.h"
#include "../lib/log.h"
#include "../lib/timefmt.h"

int (*publish_should_stop)(void);

/* --- reading the folder -------------------------------------------------- */

static void report(const struct config *cfg, const char *relpath, const struct diag *d)
{
    char *full = path_join(cfg->content.dir, relpath);
    diag_print(stderr, full ? full : relpath, d);
    free(full);
}

/* A sorted set of slugs, to find a second post claiming one. */
struct slugset {
    char **slug;
    char **path;
    size_t n, alloc;
};

static const char *slugset_owner(const struct slugset *s, const char *slug)
{
    for (size_t lo = 0, hi = s->n; lo < hi;) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(slug, s->slug[mid]);
        if (c == 0)
            return s->path[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* qsort, which must not be given NULL even for nothing to sort. */
static void sort_n(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

/* Appends; the caller adds in slug order. */
static int slugset_push(struct slugset *s, const char *slug, const char *path)
{
    if (s->n == s->alloc) {
        size_t na = s->alloc ? s->alloc * 2 : 256;
        char **a = realloc(s->slug, na * sizeof *a);
        if (!a)
            return -1;
        s->slug = a;
        char **b = realloc(s->path, na * sizeof *b);
        if (!b)
            return -1;
        s->path = b;
        s->alloc = na;
    }
    s->slug[s->n] = (char *)slug;
    s->path[s->n++] = (char *)path;
    return 0;
}

/* Inserts in slug order. */
static int slugset_add(struct slugset *s, const char *slug, const char *path)
{
    if (slugset_push(s, slug, path) < 0)
        return -1;
    size_t i = s->n - 1;
    while (i > 0 && strcmp(s->slug[i - 1], slug) > 0) {
        s->slug[i] = s->slug[i - 1];
        s->path[i] = s->path[i - 1];
        i--;
    }
    s->slug[i] = (char *)slug;
    s->path[i] = (char *)path;
    return 0;
}

static void slugset_free(struct slugset *s)
{
    free(s->slug);
    free(s->path);
}

long publish_check(const struct config *cfg)
{
    struct post_scan scan;
    struct diag d = {0};
    struct slugset seen = {0};
    struct post **posts = NULL;
    long problems = 0;
    if (post_scan(cfg->content.dir, &scan, &d) < 0) {
        diag_print(stderr, cfg->content.dir, &d);
        return -1;
    }
    posts = calloc(scan.n + 1, sizeof *posts);
    for (size_t i = 0; posts && i < scan.n; i++) {
        memset(&d, 0, sizeof d);
        posts[i] = post_read(cfg, scan.paths[i], timefmt_now(), &d);
        if (!posts[i]) {
            report(cfg, scan.paths[i], &d);
            problems++;
            continue;
        }
        const char *owner = slugset_owner(&seen, posts[i]->slug);
        if (owner) {
            diag_set(&d, 0, 0, "slug '%s' is already used by %s", posts[i]->slug, owner);
            report(cfg, scan.paths[i], &d);
            problems++;
        } else if (slugset_add(&seen, posts[i]->slug, posts[i]->path) < 0) {
            problems = -1;
            break;
        }
    }
    for (size_t i = 0; posts && i < scan.n; i++)
        post_free(posts[i]);
    free(posts);
    slugset_free(&seen);
    post_scan_free(&scan);
    return problems;
}

/* --- the state pass ------------------------------------------------------ */

static int strcmp_indirect(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct pass {
    const struct config *cfg;
    struct store *st;
    struct publish_stats *stats;
    int64_t now;
    int first_run;
    int rerender;             /* the settings posts are rendered with changed: re-read all */
    struct store_row *before; /* the store as this pass found it, by path */
    size_t nbefore;
    struct slugset claimed; /* slug -> first path (this pass) that holds it */
    char **paths;           /* incremental: only these files changed (sorted) */
    size_t npaths;
    struct slugset touched; /* slugs whose page must be written (incremental) */
    struct slugset gone;    /* slugs whose page must go (incremental) */
    int *years;             /* years whose archive page changed (incremental) */
    size_t nyears, ayears;
    char okey[65]; /* what the outputs depend on besides the posts */
    int reuse;     /* the outputs were whole for okey when this pass began */
};

static struct store_row *row_find(struct store_row *rows, size_t n, const char *path)
{
    for (size_t lo = 0, hi = n; lo < hi;) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(path, rows[mid].path);
        if (c == 0)
            return &rows[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int announce(struct pass *ps, const char *kind, const char *slug, const char *url,
                    const char *title)
{
    if (ps->first_run)
        return 0; /* the back catalogue is published, never announced */
    if (store_announce(ps->st, kind, slug, url, title, ps->now) < 0)
        return -1;
    ps->stats->announced++;
    log_event(LOG_INFO, "announce", "kind=%s slug=%s", kind, log_quote(slug));
    return 0;
}

/*
 * One file into the store, unless its bytes are those already stored (then
 * it is not even parsed). A rejected file keeps its last good version.
 * Returns 0, or -1 on a store error.
 */
/* A failure to read or parse that says nothing about the post: no memory.
 * (Every module reports ENOMEM as "out of memory", file_read as strerror.) */
static int resource_error(const struct diag *d)
{
    return strstr(d->msg, "out of memory") || strstr(d->msg, strerror(ENOMEM));
}

static int pass_file(struct pass *ps, const char *path)
{
    struct store_row *old = row_find(ps->before, ps->nbefore, path);
    struct buf data;
    struct diag d = {0};
    struct post *p = NULL;
    const char *why, *slug = old ? old->slug : NULL;
    char *full = path_join(ps->cfg->content.dir, path);
    int rc = 0;
    int64_t seen = store_first_seen(ps->st, path, ps->now);
    buf_init(&data, ps->cfg->content.max_bytes);
    if (!full || seen < 0) {
        rc = -1;
        goto out;
    }
    /* The file as stat(2) sees it, taken before reading: the same size,
     * times and inode as when its bytes were stored, and it is not read. */
    char sig[128] = "";
    struct stat sb;
    if (stat(full, &sb) == 0 && S_ISREG(sb.st_mode))
        snprintf(sig, sizeof sig, "%lld:%lld.%09ld:%lld.%09ld:%llu", (long long)sb.st_size,
                 (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec, (long long)sb.st_ctim.tv_sec,
                 sb.st_ctim.tv_nsec, (unsigned long long)sb.st_ino);
    if (old && *sig && old->fstat && !strcmp(old->fstat, sig) && !ps->rerender)
        goto claim;
    if (file_read(full, ps->cfg->content.max_bytes, &data, &why) < 0) {
        diag_set(&d, 0, 0, "cannot read: %s", why);
        goto rejected;
    }
    if (old) {
        unsigned char h[32];
        SHA256((const unsigned char *)buf_str(&data), data.len, h);
        if (!memcmp(h, old->hash, 32) && !ps->rerender) { /* unchanged since the last pass */
            if (*sig && store_post_fstat(ps->st, path, sig) < 0)
                rc = -1;
            goto claim;
        }
    }
    ps->stats->parsed++;
    if (!(p = post_parse(ps->cfg, path, buf_str(&data), data.len, seen, &d)))
        goto rejected;
    const char *owner = slugset_owner(&ps->claimed, p->slug);
    char *stored = !owner && ps->paths ? store_slug_owner(ps->st, p->slug, path) : NULL;
    if (owner || stored) {
        diag_set(&d, 0, 0, "slug '%s' is already used by %s", p->slug, owner ? owner : stored);
        free(stored);
        goto rejected;
    }
    int64_t updated = p->updated                               ? p->updated
                      : old && !memcmp(old->hash, p->hash, 32) ? old->updated
                      : old                                    ? ps->now
                                                               : p->date;
    /* A new post is stored as it will most likely be (pass_publish decides,
     * in this transaction): the first pass then writes each row once. */
    int published = old ? old->published : !p->draft && p->date <= ps->now;
    if (store_post_put(ps->st, p, updated, published) < 0 ||
        (*sig && store_post_fstat(ps->st, path, sig) < 0)) {
        rc = -1;
        goto out;
    }
    slug = p->slug;
    goto claim;
rejected:
    if (resource_error(&d)) { /* not the post's fault: the pass fails, to be run again */
        log_event(LOG_ERROR, "post_read", "path=%s error=%s", log_quote(path), log_quote(d.msg));
        rc = -1;
        goto out;
    }
    diag_print(stderr, full, &d);
    ps->stats->rejected++;
    log_event(LOG_WARN, "post_rejected", "path=%s kept_last_good=%s", log_quote(path),
              old ? "yes" : "no");
claim:
    /* The slug stays this file's (a rejected edit keeps the last good one). */
    if (slug && !slugset_owner(&ps->claimed, slug)) {
        char *ks = strdup(slug), *kp = strdup(path);
        if (!ks || !kp || slugset_add(&ps->claimed, ks, kp) < 0) {
            free(ks);
            free(kp);
            rc = -1;
        }
    }
out:
    post_free(p);
    free(full);
    buf_free(&data);
    return rc;
}

/* Notes what an incremental pass must rewrite: the page of slug (or its
 * removal), and the archive page of the year of date. */
static int mark(struct pass *ps, struct slugset *set, const char *slug, int64_t date)
{
    int y = timefmt_year(date);
    size_t i = 0;
    while (i < ps->nyears && ps->years[i] != y)
        i++;
    if (i == ps->nyears) {
        if (ps->nyears == ps->ayears) {
            size_t na = ps->ayears ? ps->ayears * 2 : 8;
            int *a = realloc(ps->years, na * sizeof *a);
            if (!a)
                return -1;
            ps->years = a;
            ps->ayears = na;
        }
        ps->years[ps->nyears++] = y;
    }
    if (!set || slugset_owner(set, slug))
        return 0;
    char *k = strdup(slug);
    if (!k || slugset_add(set, k, k) < 0) {
        free(k);
        return -1;
    }
    return 0;
}

/* A stored post leaves: announced if it was published, its page goes. */
static int remove_row(struct pass *ps, const struct store_row *r)
{
    if (r->published && (announce(ps, "removed", r->slug, r->url, r->title) < 0 ||
                         mark(ps, &ps->gone, r->slug, r->date) < 0))
        return -1;
    return store_post_delete(ps->st, r->path);
}

/* Rows whose file is gone: removed. */
static int pass_deleted(struct pass *ps, const struct post_scan *scan)
{
    for (size_t i = 0; i < ps->nbefore; i++) {
        struct store_row *r = &ps->before[i];
        if (bsearch(&r->path, scan->paths, scan->n, sizeof *scan->paths, strcmp_indirect))
            continue;
        if (remove_row(ps, r) < 0)
            return -1;
    }
    return 0;
}

static int row_by_path(const void *a, const void *b)
{
    return strcmp(((const struct store_row *)a)->path, ((const struct store_row *)b)->path);
}

/*
 * The rows an incremental pass must decide again: every row holding a slug
 * that a changed file held or holds now, or that a post now due holds (a
 * scheduled post, a duplicate whose winner left), in path order. Whole slug
 * groups, so the first-path-wins rule sees every contender.
 */
static int candidates(struct pass *ps, struct store_row **rows, size_t *n)
{
    struct store_row *seed = NULL;
    size_t nseed = 0;
    char **slugs = NULL;
    size_t nslugs = 0;
    int rc = -1;
    for (size_t i = 0; i < ps->npaths; i++)
        if (store_rows_by(ps->st, ps->paths[i], NULL, 0, &seed, &nseed) < 0)
            return -1;
    if (store_rows_by(ps->st, NULL, NULL, ps->now, &seed, &nseed) < 0)
        return -1;
    if (!(slugs = calloc(nseed + ps->nbefore + 1, sizeof *slugs)))
        goto out;
    for (size_t i = 0; i < nseed; i++)
        slugs[nslugs++] = seed[i].slug;
    for (size_t i = 0; i < ps->nbefore; i++)
        slugs[nslugs++] = ps->before[i].slug;
    sort_n(slugs, nslugs, sizeof *slugs, strcmp_indirect);
    for (size_t i = 0; i < nslugs; i++)
        if ((i == 0 || strcmp(slugs[i - 1], slugs[i])) &&
            store_rows_by(ps->st, NULL, slugs[i], 0, rows, n) < 0)
            goto out;
    sort_n(*rows, *n, sizeof **rows, row_by_path);
    rc = 0;
out:
    free(slugs);
    store_rows_free(seed, nseed);
    return rc;
}

/* A row as the pass found it: from before (full pass, or a changed path;
 * NULL: a new file), or the row itself (incremental: unchanged). */
static const struct store_row *before_of(const struct pass *ps, const struct store_row *r)
{
    const struct store_row *b = row_find(ps->before, ps->nbefore, r->path);
    if (b || !ps->paths)
        return b;
    return bsearch(&r->path, ps->paths, ps->npaths, sizeof *ps->paths, strcmp_indirect) ? NULL : r;
}

static int row_by_slug(const void *a, const void *b)
{
    const struct store_row *x = *(const struct store_row *const *)a;
    const struct store_row *y = *(const struct store_row *const *)b;
    int c = strcmp(x->slug, y->slug);
    return c ? c : strcmp(x->path, y->path);
}

/*
 * Each stored post's published state: not a draft, its date has come, and
 * its slug not taken by a post earlier in path order. Every change is one
 * event in the announcement log; a new slug is a new URL (removed, then
 * published).
 */
static int pass_publish(struct pass *ps)
{
    struct store_row *rows = NULL;
    size_t n = 0;
    int rc = -1;
    if (ps->paths ? candidates(ps, &rows, &n) : store_rows(ps->st, &rows, &n))
        return -1;
    /* The winner of each slug: the first path that may be published. */
    struct store_row **by = calloc(n + 1, sizeof *by);
    char *win = calloc(n + 1, 1);
    if (!by || !win)
        goto out;
    for (size_t i = 0; i < n; i++)
        by[i] = &rows[i];
    sort_n(by, n, sizeof *by, row_by_slug);
    for (size_t i = 0; i < n;) {
        size_t j = i, w = n;
        for (; j < n && !strcmp(by[j]->slug, by[i]->slug); j++)
            if (w == n && !by[j]->draft && by[j]->date <= ps->now)
                w = j;
        if (w < n)
            win[by[w] - rows] = 1;
        i = j;
    }
    for (size_t i = 0; i < n; i++) {
        struct store_row *r = &rows[i];
        const struct store_row *b = before_of(ps, r);
        int want = win[i];
        int was = b ? b->published : 0;
        int moved = b && strcmp(b->slug, r->slug);
        int edited = b && memcmp(b->hash, r->hash, 32);
        if (!r->draft && r->date > ps->now &&
            (!ps->stats->next_due || r->date < ps->stats->next_due))
            ps->stats->next_due = r->date;
        if (want)
            ps->stats->published++;
        if (was && (!want || moved) &&
            (announce(ps, "removed", b->slug, b->url, b->title) < 0 ||
             mark(ps, &ps->gone, b->slug, b->date) < 0))
            goto out;
        if (want && (!was || moved)) {
            if (announce(ps, "published", r->slug, r->url, r->title) < 0)
                goto out;
        } else if (want && edited) {
            if (announce(ps, "updated", r->slug, r->url, r->title) < 0)
                goto out;
        }
        if (want != r->published && store_post_set_published(ps->st, r->path, want) < 0)
            goto out;
        if (want && (!was || moved || edited) &&
            (mark(ps, &ps->touched, r->slug, r->date) < 0 ||
             (b && mark(ps, NULL, NULL, b->date) < 0)))
            goto out;
    }
    if (ps->paths) { /* the counts of the whole store, not of these rows */
        int64_t c = store_count_published(ps->st), due = store_next_due(ps->st, ps->now);
        if (c < 0 || due < 0)
            goto out;
        ps->stats->published = (size_t)c;
        ps->stats->next_due = due;
    }
    rc = 0;
out:
    free(by);
    free(win);
    store_rows_free(rows, n);
    return rc;
}

/*
 * A digest of the settings a stored post's rendering depends on: when it
 * changes (a new site.url, allow_html turned on), every post is read again.
 */
static void render_key(const struct config *cfg, char out[65])
{
    struct buf k;
    unsigned char h[32];
    buf_init(&k, 0);
    int rc = buf_printf(&k, "v1|%s|%s|%s|%s|%s|%d|%zu", cfg->site.url, cfg->site.language,
                        cfg->site.timezone, cfg->site.author_name ? cfg->site.author_name : "",
                        cfg->site.title, cfg->content.allow_html, cfg->content.max_bytes);
    SHA256((const unsigned char *)buf_str(&k), rc == 0 ? k.len : 0, h);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
    buf_free(&k);
}

/*
 * The incremental form of the state pass: only the changed paths are read
 * (a path whose file is gone is removed); every other stored post keeps its
 * slug, so a changed file that takes one is rejected. ps->before holds the
 * rows of the changed paths only.
 */
static int pass_paths(struct pass *ps)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ps->npaths; i++) {
        const char *path = ps->paths[i];
        char *full = path_join(ps->cfg->content.dir, path);
        struct stat sb;
        int exists = full && stat(full, &sb) == 0 && !S_ISDIR(sb.st_mode);
        free(full);
        if (exists) {
            rc = pass_file(ps, path);
            continue;
        }
        struct store_row *r = row_find(ps->before, ps->nbefore, path);
        if (r && remove_row(ps, r) < 0)
            rc = -1;
    }
    return rc;
}

/*
 * Whether the outputs were whole when this pass began, and, in the same
 * transaction as the state it changes, the mark that they are not any more:
 * a crash between this commit and the last output written leaves no key, and
 * the next full pass renders every page again instead of trusting them.
 */
static int outputs_due(struct pass *ps)
{
    char *k = store_meta_get(ps->st, "outputs_key");
    ps->reuse = k && !strcmp(k, ps->okey);
    free(k);
    if (ps->reuse && (ps->touched.n || ps->gone.n || ps->nyears || ps->rerender))
        return store_meta_put(ps->st, "outputs_key", "");
    return 0;
}

static int pass_state(struct pass *ps)
{
    char key[65];
    char *old_key = NULL;
    struct post_scan scan = {0};
    struct diag d = {0};
    int rc = -1;
    if (!ps->paths && post_scan(ps->cfg->content.dir, &scan, &d) < 0) {
        diag_print(stderr, ps->cfg->content.dir, &d);
        return -1;
    }
    ps->stats->files = scan.n;
    if (store_begin(ps->st) < 0) { /* locked past the busy timeout, read-only... */
        log_event(LOG_ERROR, "state", "db=%s error=%s", log_quote(store_path(ps->st)),
                  log_quote(store_errmsg(ps->st)));
        goto out;
    }
    ps->first_run = store_is_new(ps->st);
    render_key(ps->cfg, key);
    old_key = store_meta_get(ps->st, "render_key");
    ps->rerender = !old_key || strcmp(old_key, key);
    if (ps->rerender && ps->paths) { /* settings changed: a full pass is due */
        rc = 1;
        store_rollback(ps->st);
        goto out;
    }
    if (ps->rerender && store_meta_put(ps->st, "render_key", key) < 0)
        goto rollback;
    for (size_t i = 0; ps->paths && i < ps->npaths; i++)
        if (store_rows_by(ps->st, ps->paths[i], NULL, 0, &ps->before, &ps->nbefore) < 0)
            goto rollback;
    if (!ps->paths && store_rows(ps->st, &ps->before, &ps->nbefore) < 0)
        goto rollback;
    if (ps->paths) {
        ps->stats->files = ps->nbefore;
        if (pass_paths(ps) < 0 || pass_publish(ps) < 0 || outputs_due(ps) < 0 ||
            store_commit(ps->st) < 0)
            goto rollback;
        rc = 0;
        goto out;
    }
    int progress = scan.n >= 1000 && isatty(STDERR_FILENO);
    for (size_t i = 0; i < scan.n; i++) {
        if (i % 64 == 63 && publish_should_stop && publish_should_stop()) {
            log_event(LOG_INFO, "publish", "result=interrupted_for_stop files_read=%zu", i);
            store_rollback(ps->st);
            goto out;
        }
        if (pass_file(ps, scan.paths[i]) < 0)
            goto rollback;
        if (progress && (i % 250 == 0 || i + 1 == scan.n))
            fprintf(stderr, "\rreading posts: %zu/%zu%s", i + 1, scan.n,
                    i + 1 == scan.n ? "\n" : "");
    }
    if (pass_deleted(ps, &scan) < 0 || pass_publish(ps) < 0)
        goto rollback;
    if (ps->first_run && store_mark_initialized(ps->st) < 0)
        goto rollback;
    if (outputs_due(ps) < 0)
        goto rollback;
    if (store_commit(ps->st) < 0)
        goto rollback;
    rc = 0;
    goto out;
rollback:
    if (strcmp(store_errmsg(ps->st), "not an error")) /* else the failure logged itself */
        log_event(LOG_ERROR, "state", "db=%s error=%s", log_quote(store_path(ps->st)),
                  log_quote(store_errmsg(ps->st)));
    store_rollback(ps->st);
out:
    free(old_key);
    for (size_t i = 0; i < ps->claimed.n; i++) {
        free(ps->claimed.slug[i]);
        free(ps->claimed.path[i]);
    }
    slugset_free(&ps->claimed);
    store_rows_free(ps->before, ps->nbefore);
    ps->before = NULL;
    ps->nbefore = 0;
    post_scan_free(&scan);
    return rc;
}

/* --- outputs ------------------------------------------------------------- */

#define OUTPUT_TMP  ".nashra-tmp" /* in output.dir; hidden, so never served */
#define INDEX_POSTS 50            /* on index.html; every post is on its year's page */

struct outputs {
    const struct config *cfg;
    struct store *st;
    const struct html_templates *tpl;
    struct publish_stats *stats;
    struct buf page;
    int failed;
    struct post **list; /* what the last query collected */
    size_t n, alloc;
    int incremental;
    char *tmpdir;                /* output.dir/.nashra-tmp: temporary files, renamed into place */
    size_t pages;                /* seen by a full pass so far */
    int reuse;                   /* a full pass may keep pages of posts not in fresh */
    const struct slugset *fresh; /* a full pass: the posts this pass changed */
    char **slugs;                /* a full pass: every published slug, for pruning */
    size_t nslugs, aslugs;
};

static int write_out(struct outputs *o, const char *rel, const struct buf *b)
{
    char *path = path_join(o->cfg->output.dir, rel);
    int r = path ? file_write_if_changed_in(path, o->tmpdir, buf_str(b), b->len) : -1;
    if (r < 0) {
        log_event(LOG_ERROR, "write", "path=%s error=%s", log_quote(path ? path : rel),
                  log_quote(strerror(errno)));
        o->failed = 1;
    } else if (r > 0) {
        o->stats->written++;
    }
    free(path);
    return r < 0 ? -1 : 0;
}

/* A store query callback: keeps the posts in o->list. */
static int collect(void *arg, struct post *p)
{
    struct outputs *o = arg;
    if (o->n == o->alloc) {
        size_t na = o->alloc ? o->alloc * 2 : 64;
        struct post **a = realloc(o->list, na * sizeof *a);
        if (!a) {
            post_free(p);
            return -1;
        }
        o->list = a;
        o->alloc = na;
    }
    o->list[o->n++] = p;
    return 0;
}

static void list_clear(struct outputs *o)
{
    for (size_t i = 0; i < o->n; i++)
        post_free(o->list[i]);
    o->n = 0;
}

static int write_page(struct outputs *o, const struct post *p)
{
    struct buf rel;
    buf_init(&rel, 0);
    buf_reset(&o->page);
    int rc = html_post_page(o->cfg, o->tpl, p, &o->page);
    if (rc == 0)
        rc = buf_printf(&rel, "posts/%s/index.html", p->slug);
    if (rc == 0)
        write_out(o, rel.data, &o->page);
    buf_free(&rel);
    return rc;
}

/* 1 if output/posts/{slug}/index.html exists. */
static int page_exists(struct outputs *o, const char *slug)
{
    struct buf rel;
    struct stat sb;
    buf_init(&rel, 0);
    char *path = buf_printf(&rel, "posts/%s/index.html", slug) == 0
                     ? path_join(o->cfg->output.dir, buf_str(&rel))
                     : NULL;
    int there = path && stat(path, &sb) == 0;
    free(path);
    buf_free(&rel);
    return there;
}

/*
 * store_each_published callback of a full pass: the page, then forget it.
 * When neither the settings, the templates nor nashra itself changed since
 * the last full pass, the page of a post this pass did not change is kept
 * as it is (if it is there): a warm build renders nothing.
 */
static int on_page(void *arg, struct post *p)
{
    struct outputs *o = arg;
    int rc = 0;
    if (++o->pages % 64 == 0 && publish_should_stop && publish_should_stop()) {
        post_free(p);
        return -1; /* the next full pass finishes the job */
    }
    if (!o->reuse || slugset_owner(o->fresh, p->slug) || !page_exists(o, p->slug)) {
        rc = p->html ? 0 : store_post_html(o->st, p);
        if (rc == 0)
            rc = write_page(o, p);
    }
    if (rc == 0 && o->nslugs == o->aslugs) {
        size_t na = o->aslugs ? o->aslugs * 2 : 1024;
        char **a = realloc(o->slugs, na * sizeof *a);
        if (a) {
            o->slugs = a;
            o->aslugs = na;
        } else {
            rc = -1;
        }
    }
    if (rc == 0) {
        o->slugs[o->nslugs++] = p->slug;
        p->slug = NULL;
    }
    post_free(p);
    return rc;
}

static void hex32(const unsigned char h[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/*
 * The three feeds of the site (category NULL) or of one category. A feed is
 * made of its newest posts alone (the settings are the same between full
 * passes), so an incremental pass skips a feed whose posts did not change:
 * their digest is kept in the store's meta table under "feed:DIR".
 */
static int write_feeds(struct outputs *o, const char *category, const char *dir)
{
    unsigned char h[32];
    char hex[65], key[512], *old = NULL;
    int rc = store_latest_digest(o->st, category, o->cfg->feeds.items, h);
    if (rc < 0)
        return -1;
    hex32(h, hex);
    snprintf(key, sizeof key, "feed:%s", dir);
    if (o->incremental && (old = store_meta_get(o->st, key)) && !strcmp(old, hex)) {
        struct stat sb;
        char rel[512], *path;
        snprintf(rel, sizeof rel, "%sfeed.json", dir); /* written last */
        path = path_join(o->cfg->output.dir, rel);
        int there = path && stat(path, &sb) == 0;
        free(path);
        free(old);
        if (there)
            return 0;
        old = NULL;
    }
    free(old);
    rc = store_latest(o->st, category, o->cfg->feeds.items, 1, collect, o);
    struct feed_set fs = {.category = category, .dir = dir, .posts = o->list, .n = o->n};
    static const char *const names[] = {"feed.xml", "atom.xml", "feed.json"};
    int (*const writers[])(const struct config *, const struct feed_set *,
                           struct buf *) = {feed_rss, feed_atom, feed_json};
    for (int i = 0; rc == 0 && i < 3; i++) {
        struct buf rel;
        buf_init(&rel, 0);
        buf_reset(&o->page);
        rc = writers[i](o->cfg, &fs, &o->page);
        if (rc == 0)
            rc = buf_printf(&rel, "%s%s", dir, names[i]);
        if (rc == 0)
            rc = write_out(o, rel.data, &o->page);
        buf_free(&rel);
    }
    list_clear(o);
    if (rc == 0 && !o->failed && store_meta_put(o->st, key, hex) < 0)
        rc = -1;
    return rc;
}

/* 1 if the folder holds nothing but files named in ours (what nashra writes
 * there); a folder with anything else in it is the user's, and stays. */
static int only_ours(const char *dir, const char *const *ours)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int mine = d != NULL;
    while (mine && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        mine = 0;
        for (size_t i = 0; ours[i]; i++)
            if (!strcmp(de->d_name, ours[i]))
                mine = 1;
    }
    if (d)
        closedir(d);
    return mine;
}

static const char *const page_files[] = {"index.html", NULL};
static const char *const feed_files[] = {"feed.xml", "atom.xml", "feed.json", NULL};

/* Removes the folder output/sub/name if it holds only the files nashra
 * writes there (ours). */
static void remove_dir(struct outputs *o, const char *sub, const char *name,
                       const char *const *ours)
{
    char *dir = path_join(o->cfg->output.dir, sub);
    char *child = dir ? path_join(dir, name) : NULL;
    if (child && only_ours(child, ours)) {
        for (size_t i = 0; ours[i]; i++) {
            char *f = path_join(child, ours[i]);
            if (f)
                unlink(f);
            free(f);
        }
        if (rmdir(child) == 0)
            log_event(LOG_INFO, "output_removed", "path=%s", log_quote(child));
    }
    free(child);
    free(dir);
}

/* Removes output/sub/NAME for each NAME not in keep (sorted). */
static void prune(struct outputs *o, const char *sub, char **keep, size_t nkeep,
                  const char *const *ours)
{
    char *dir = path_join(o->cfg->output.dir, sub);
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        const char *name = de->d_name;
        if (name[0] != '.' && !bsearch(&name, keep, nkeep, sizeof *keep, strcmp_indirect))
            remove_dir(o, sub, name, ours);
    }
    if (d)
        closedir(d);
    free(dir);
}

/* Every category's feeds; the folders of categories gone are removed. */
static int write_categories(struct outputs *o)
{
    char **names = NULL, **slugs = NULL;
    size_t n = 0;
    int rc = o->cfg->feeds.categories ? store_categories(o->st, &names, &n) : 0;
    if (rc == 0 && !(slugs = calloc(n + 1, sizeof *slugs)))
        rc = -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct buf dir;
        buf_init(&dir, 0);
        if (!(slugs[i] = feed_category_slug(names[i])) ||
            buf_printf(&dir, "categories/%s/", slugs[i]) < 0)
            rc = -1;
        else
            rc = write_feeds(o, names[i], buf_str(&dir));
        buf_free(&dir);
    }
    if (rc == 0 && !o->failed) {
        sort_n(slugs, n, sizeof *slugs, strcmp_indirect);
        prune(o, "categories", slugs, n, feed_files);
    }
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
        if (slugs)
            free(slugs[i]);
    }
    free(names);
    free(slugs);
    return rc;
}

static int stop_at_first(void *arg, struct post *p)
{
    (void)arg;
    post_free(p);
    return 1;
}

/* The years that have published posts, newest first. */
static int years_list(struct outputs *o, int **years, size_t *n)
{
    int64_t first, last;
    int any = store_span(o->st, &first, &last);
    *years = NULL;
    *n = 0;
    if (any <= 0)
        return any;
    int y0 = timefmt_year(first), y1 = timefmt_year(last);
    if (!(*years = calloc((size_t)(y1 - y0 + 1), sizeof **years)))
        return -1;
    for (int y = y1; y >= y0; y--) {
        int r = store_between(o->st, timefmt_year_start(y), timefmt_year_start(y + 1), 0,
                              stop_at_first, NULL);
        if (r < 0)
            return -1;
        if (r > 0)
            (*years)[(*n)++] = y;
    }
    return 0;
}

/* archive/{year}/index.html, or its removal when the year has no post. */
static int write_year(struct outputs *o, int year)
{
    char rel[64];
    int rc =
        store_between(o->st, timefmt_year_start(year), timefmt_year_start(year + 1), 0, collect, o);
    snprintf(rel, sizeof rel, "%d", year);
    if (rc == 0 && o->n == 0) {
        remove_dir(o, "archive", rel, page_files);
    } else if (rc == 0) {
        buf_reset(&o->page);
        /* no list of years here: a new year would make every year page stale */
        rc = html_index_page(o->cfg, o->tpl, year, o->list, o->n, NULL, 0, &o->page);
        snprintf(rel, sizeof rel, "archive/%d/index.html", year);
        if (rc == 0)
            rc = write_out(o, rel, &o->page);
    }
    list_clear(o);
    return rc;
}

static int write_index(struct outputs *o, const int *years, size_t nyears)
{
    int rc = store_latest(o->st, NULL, INDEX_POSTS, 0, collect, o);
    if (rc == 0) {
        buf_reset(&o->page);
        rc = html_index_page(o->cfg, o->tpl, 0, o->list, o->n, years, nyears, &o->page);
    }
    if (rc == 0)
        rc = write_out(o, "index.html", &o->page);
    list_clear(o);
    return rc;
}

/*
 * The outputs, from the store alone. A full pass (ps NULL) writes every
 * page and prunes what is no longer published; an incremental one writes the
 * pages ps touched, removes the ones it let go, and rewrites the year pages
 * it changed. Both rewrite the feeds and the index (unchanged bytes are not
 * written: only what differs touches the disk).
 */
/* What every output depends on besides the posts: the settings, the
 * templates, and the build of nashra that renders them. */
static void outputs_key(const struct config *cfg, const struct html_templates *tpl, char out[65])
{
    unsigned char h[32], t[32];
    char rk[65];
    struct buf k;
    buf_init(&k, 0);
    render_key(cfg, rk);
    html_templates_digest(tpl, t);
    int rc = buf_printf(&k, "%s|%s %s|%d|%d|%d", rk, __DATE__, __TIME__, cfg->feeds.items,
                        cfg->feeds.full_content, cfg->feeds.categories);
    if (rc == 0)
        rc = buf_append(&k, t, sizeof t);
    SHA256((const unsigned char *)buf_str(&k), rc == 0 ? k.len : 0, h);
    hex32(h, out);
    buf_free(&k);
}

static int pass_outputs(const struct config *cfg, struct store *st,
                        const struct html_templates *tpl, const struct pass *ps, int full,
                        struct publish_stats *stats)
{
    struct outputs o = {.cfg = cfg, .st = st, .tpl = tpl, .stats = stats, .incremental = !full};
    int *years = NULL;
    size_t nyears = 0;
    int rc = (o.tmpdir = path_join(cfg->output.dir, OUTPUT_TMP)) ? 0 : -1;
    buf_init(&o.page, 0);
    if (full && rc == 0 && file_sweep_tmp(o.tmpdir) > 0)
        log_event(LOG_INFO, "output", "note=removed_files_left_by_a_crash dir=%s",
                  log_quote(o.tmpdir));
    if (rc < 0) {
    } else if (full) {
        o.reuse = ps->reuse;
        o.fresh = &ps->touched;
        rc = store_each_published(st, 0, on_page, &o);
    } else {
        for (size_t i = 0; i < ps->gone.n; i++)
            if (!slugset_owner(&ps->touched, ps->gone.slug[i]))
                remove_dir(&o, "posts", ps->gone.slug[i], page_files);
        for (size_t i = 0; rc == 0 && i < ps->touched.n; i++) {
            struct post *p = store_published_slug(st, ps->touched.slug[i]);
            rc = p ? write_page(&o, p) : -1;
            post_free(p);
        }
    }
    if (rc == 0)
        rc = write_feeds(&o, NULL, "");
    if (rc == 0)
        rc = write_categories(&o);
    if (rc == 0)
        rc = years_list(&o, &years, &nyears);
    if (full) {
        for (size_t i = 0; rc == 0 && i < nyears; i++)
            rc = write_year(&o, years[i]);
    } else {
        for (size_t i = 0; rc == 0 && i < ps->nyears; i++)
            rc = write_year(&o, ps->years[i]);
    }
    if (rc == 0)
        rc = write_index(&o, years, nyears);
    /* Whole again: a full pass made them so, an incremental one kept them. */
    if (rc == 0 && !o.failed && (full || ps->reuse) &&
        store_meta_put(st, "outputs_key", ps->okey) < 0)
        rc = -1;
    if (rc == 0 && !o.failed && full) {
        sort_n(o.slugs, o.nslugs, sizeof *o.slugs, strcmp_indirect);
        prune(&o, "posts", o.slugs, o.nslugs, page_files);
        /* Years to keep: all of them or no pruning (a partial list would
         * remove the archive of a year that has posts). */
        char **ykeep = calloc(nyears + 1, sizeof *ykeep);
        for (size_t i = 0; ykeep && i < nyears; i++)
            if (asprintf(&ykeep[i], "%d", years[i]) < 0) {
                ykeep[i] = NULL;
                rc = -1;
            }
        if (!ykeep)
            rc = -1;
        if (rc == 0) {
            sort_n(ykeep, nyears, sizeof *ykeep, strcmp_indirect);
            prune(&o, "archive", ykeep, nyears, page_files);
        }
        for (size_t i = 0; ykeep && i < nyears; i++)
            free(ykeep[i]);
        free(ykeep);
    }
    list_clear(&o);
    free(o.list);
    for (size_t i = 0; i < o.nslugs; i++)
        free(o.slugs[i]);
    free(o.slugs);
    free(years);
    free(o.tmpdir);
    buf_free(&o.page);
    return rc < 0 || o.failed ? -1 : 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pass_free(struct pass *ps)
{
    for (size_t i = 0; i < ps->touched.n; i++)
        free(ps->touched.slug[i]);
    slugset_free(&ps->touched);
    for (size_t i = 0; i < ps->gone.n; i++)
        free(ps->gone.slug[i]);
    slugset_free(&ps->gone);
    free(ps->years);
}

int publish_run(const struct config *cfg, struct store *st, const struct html_templates *tpl,
                struct publish_stats *stats)
{
    struct pass ps = {.cfg = cfg, .st = st, .stats = stats, .now = timefmt_now()};
    memset(stats, 0, sizeof *stats);
    outputs_key(cfg, tpl, ps.okey);
    int rc = pass_state(&ps);
    if (rc == 0)
        rc = pass_outputs(cfg, st, tpl, &ps, 1, stats);
    pass_free(&ps);
    return rc < 0 ? -1 : 0;
}

int publish_changes(const struct config *cfg, struct store *st, const struct html_templates *tpl,
                    char **paths, size_t npaths, struct publish_stats *stats)
{
    static char *none[1];
    sort_n(paths, npaths, sizeof *paths, strcmp_indirect);
    size_t u = 0; /* once each */
    for (size_t i = 0; i < npaths; i++)
        if (!u || strcmp(paths[u - 1], paths[i]))
            paths[u++] = paths[i];
    npaths = u;
    struct pass ps = {.cfg = cfg,
                      .st = st,
                      .stats = stats,
                      .now = timefmt_now(),
                      .paths = npaths ? paths : none,
                      .npaths = npaths};
    memset(stats, 0, sizeof *stats);
    outputs_key(cfg, tpl, ps.okey);
    int64_t t0 = mono_ms();
    int rc = pass_state(&ps);
    if (rc > 0) { /* the settings posts are rendered with changed */
        pass_free(&ps);
        return publish_run(cfg, st, tpl, stats);
    }
    int64_t t1 = mono_ms();
    if (rc == 0)
        rc = pass_outputs(cfg, st, tpl, &ps, 0, stats);
    log_event(LOG_DEBUG, "publish_changes",
              "paths=%zu pages=%zu gone=%zu years=%zu state_ms=%lld "
              "outputs_ms=%lld",
              npaths, ps.touched.n, ps.gone.n, ps.nyears, (long long)(t1 - t0),
              (long long)(mono_ms() - t1));
    pass_free(&ps);
    return rc;
}
