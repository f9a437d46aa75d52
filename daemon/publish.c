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
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/fileio.h"
#include "../lib/log.h"
#include "../lib/timefmt.h"

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
    if (file_read(full, ps->cfg->content.max_bytes, &data, &why) < 0) {
        diag_set(&d, 0, 0, "cannot read: %s", why);
        goto rejected;
    }
    if (old) {
        unsigned char h[32];
        SHA256((const unsigned char *)buf_str(&data), data.len, h);
        if (!memcmp(h, old->hash, 32) && !ps->rerender)
            goto claim; /* unchanged since the last pass */
    }
    ps->stats->parsed++;
    if (!(p = post_parse(ps->cfg, path, buf_str(&data), data.len, seen, &d)))
        goto rejected;
    const char *owner = slugset_owner(&ps->claimed, p->slug);
    if (owner) {
        diag_set(&d, 0, 0, "slug '%s' is already used by %s", p->slug, owner);
        goto rejected;
    }
    int64_t updated = p->updated                               ? p->updated
                      : old && !memcmp(old->hash, p->hash, 32) ? old->updated
                      : old                                    ? ps->now
                                                               : p->date;
    if (store_post_put(ps->st, p, updated, old ? old->published : 0) < 0) {
        rc = -1;
        goto out;
    }
    slug = p->slug;
    goto claim;
rejected:
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

/* Rows whose file is gone: removed. */
static int pass_deleted(struct pass *ps, const struct post_scan *scan)
{
    for (size_t i = 0; i < ps->nbefore; i++) {
        struct store_row *r = &ps->before[i];
        if (bsearch(&r->path, scan->paths, scan->n, sizeof *scan->paths, strcmp_indirect))
            continue;
        if (r->published && announce(ps, "removed", r->slug, r->url, r->title) < 0)
            return -1;
        if (store_post_delete(ps->st, r->path) < 0)
            return -1;
    }
    return 0;
}

/* Marks a page to be written by an incremental pass. */
static int touch(struct pass *ps, const char *slug)
{
    char *k = strdup(slug);
    if (!k || slugset_add(&ps->touched, k, k) < 0) {
        free(k);
        return -1;
    }
    return 0;
}

/*
 * Each stored post's published state: not a draft, its date has come, and
 * its slug not taken by a post earlier in path order. Every change is one
 * event in the announcement log; a new slug is a new URL (removed, then
 * published).
 */
static int pass_publish(struct pass *ps)
{
    struct store_row *rows;
    size_t n;
    struct slugset winners = {0};
    int rc = -1;
    if (store_rows(ps->st, &rows, &n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct store_row *r = &rows[i];
        struct store_row *b = row_find(ps->before, ps->nbefore, r->path);
        int taken = slugset_owner(&winners, r->slug) != NULL;
        int want = !r->draft && r->date <= ps->now && !taken;
        int was = b ? b->published : 0;
        int moved = b && strcmp(b->slug, r->slug);
        if (!r->draft && r->date > ps->now &&
            (!ps->stats->next_due || r->date < ps->stats->next_due))
            ps->stats->next_due = r->date;
        if (want) {
            ps->stats->published++;
            if (slugset_add(&winners, r->slug, r->path) < 0)
                goto out;
        }
        if (was && (!want || moved) && announce(ps, "removed", b->slug, b->url, b->title) < 0)
            goto out;
        if (want && (!was || moved)) {
            if (announce(ps, "published", r->slug, r->url, r->title) < 0)
                goto out;
        } else if (want && memcmp(b->hash, r->hash, 32)) {
            if (announce(ps, "updated", r->slug, r->url, r->title) < 0)
                goto out;
        }
        if (want != was && store_post_set_published(ps->st, r->path, want) < 0)
            goto out;
        if (want && (!b || moved || !was || memcmp(b->hash, r->hash, 32)) &&
            !slugset_owner(&ps->touched, r->slug) && touch(ps, r->slug) < 0)
            goto out;
    }
    rc = 0;
out:
    slugset_free(&winners);
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
 * slug, so a changed file that takes one is rejected.
 */
static int pass_paths(struct pass *ps)
{
    char **ks = calloc(ps->nbefore + 1, sizeof *ks);
    char **kp = calloc(ps->nbefore + 1, sizeof *kp);
    size_t n = 0;
    if (!ks || !kp) {
        free(ks);
        free(kp);
        return -1;
    }
    for (size_t i = 0; i < ps->nbefore; i++) {
        struct store_row *r = &ps->before[i];
        if (bsearch(&r->path, ps->paths, ps->npaths, sizeof *ps->paths, strcmp_indirect))
            continue;
        ks[n] = r->slug;
        kp[n++] = r->path;
    }
    /* Sorted by slug for slugset_owner (inserting one by one is quadratic). */
    int rc = 0;
    char **pairs = calloc(2 * n + 1, sizeof *pairs);
    if (!pairs)
        rc = -1;
    for (size_t i = 0; pairs && i < n; i++) {
        pairs[2 * i] = ks[i];
        pairs[2 * i + 1] = kp[i];
    }
    if (pairs)
        qsort(pairs, n, 2 * sizeof *pairs, strcmp_indirect);
    for (size_t i = 0; pairs && rc == 0 && i < n; i++) {
        char *a = strdup(pairs[2 * i]), *b = strdup(pairs[2 * i + 1]);
        if (!a || !b || slugset_push(&ps->claimed, a, b) < 0) {
            free(a);
            free(b);
            rc = -1;
        }
    }
    free(pairs);
    free(ks);
    free(kp);
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
        if (!r)
            continue;
        if (r->published && announce(ps, "removed", r->slug, r->url, r->title) < 0)
            rc = -1;
        else if (store_post_delete(ps->st, r->path) < 0)
            rc = -1;
    }
    return rc;
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
    if (store_begin(ps->st) < 0)
        goto out;
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
    if (store_rows(ps->st, &ps->before, &ps->nbefore) < 0)
        goto rollback;
    if (ps->paths) {
        ps->stats->files = ps->nbefore;
        if (pass_paths(ps) < 0 || pass_publish(ps) < 0 || store_commit(ps->st) < 0)
            goto rollback;
        rc = 0;
        goto out;
    }
    int progress = scan.n >= 1000 && isatty(STDERR_FILENO);
    for (size_t i = 0; i < scan.n; i++) {
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
    if (store_commit(ps->st) < 0)
        goto rollback;
    rc = 0;
    goto out;
rollback:
    log_event(LOG_ERROR, "state", "error=%s", log_quote(store_errmsg(ps->st)));
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

struct feed_acc {
    char *category; /* NULL: the site feed */
    char *slug;     /* folder under categories/ */
    struct post **posts;
    size_t n;
};

struct outputs {
    const struct config *cfg;
    struct store *st;
    const struct slugset *touched; /* incremental: the pages to write; NULL: all */
    const struct html_templates *tpl;
    struct publish_stats *stats;
    struct post **all; /* every published post, newest first */
    size_t nall, alloc;
    struct feed_acc site;
    struct feed_acc *cats;
    size_t ncats;
    struct buf page;
    int failed;
};

static int write_out(struct outputs *o, const char *rel, const struct buf *b)
{
    char *path = path_join(o->cfg->output.dir, rel);
    int r = path ? file_write_if_changed(path, buf_str(b), b->len) : -1;
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

static int feed_take(struct feed_acc *f, struct post *p, int items)
{
    if (f->n >= (size_t)items)
        return 0;
    if (!f->posts && !(f->posts = calloc((size_t)items, sizeof *f->posts)))
        return -1;
    f->posts[f->n++] = p;
    return 1;
}

static struct feed_acc *category_acc(struct outputs *o, const char *name)
{
    for (size_t i = 0; i < o->ncats; i++)
        if (!strcmp(o->cats[i].category, name))
            return &o->cats[i];
    struct feed_acc *nc = realloc(o->cats, (o->ncats + 1) * sizeof *nc);
    if (!nc)
        return NULL;
    o->cats = nc;
    struct feed_acc *f = &o->cats[o->ncats];
    memset(f, 0, sizeof *f);
    f->category = strdup(name);
    f->slug = feed_category_slug(name);
    if (!f->category || !f->slug) {
        free(f->category);
        free(f->slug);
        return NULL;
    }
    o->ncats++;
    return f;
}

/* store_each_published callback: the post's page, and its place in feeds. */
static int on_post(void *arg, struct post *p)
{
    struct outputs *o = arg;
    if (o->nall == o->alloc) {
        size_t na = o->alloc ? o->alloc * 2 : 1024;
        struct post **a = realloc(o->all, na * sizeof *a);
        if (!a) {
            post_free(p);
            return -1;
        }
        o->all = a;
        o->alloc = na;
    }
    o->all[o->nall++] = p;

    int items = o->cfg->feeds.items, kept = feed_take(&o->site, p, items);
    for (size_t i = 0; o->cfg->feeds.categories && i < p->ncategories; i++) {
        struct feed_acc *f = category_acc(o, p->categories[i]);
        if (!f)
            return -1;
        kept |= feed_take(f, p, items);
    }
    if (kept < 0)
        return -1;
    int page = !o->touched || slugset_owner(o->touched, p->slug);
    if (!p->html && (page || kept) && store_post_html(o->st, p) < 0)
        return -1;
    if (page) {
        buf_reset(&o->page);
        struct buf rel;
        buf_init(&rel, 0);
        int rc = html_post_page(o->cfg, o->tpl, p, &o->page);
        if (rc == 0)
            rc = buf_printf(&rel, "posts/%s/index.html", p->slug);
        if (rc == 0)
            write_out(o, rel.data, &o->page);
        buf_free(&rel);
        if (rc < 0)
            return -1;
    }
    if (!kept) { /* only the index needs it now: drop the body */
        free(p->html);
        p->html = NULL;
        p->html_len = 0;
    }
    return 0;
}

static int write_feed(struct outputs *o, struct feed_acc *f)
{
    struct feed_set fs = {.category = f->category, .posts = f->posts, .n = f->n};
    struct buf dir;
    buf_init(&dir, 0);
    int rc = f->category ? buf_printf(&dir, "categories/%s/", f->slug) : buf_puts(&dir, "");
    fs.dir = buf_str(&dir);
    static const char *const names[] = {"feed.xml", "atom.xml", "feed.json"};
    int (*const writers[])(const struct config *, const struct feed_set *,
                           struct buf *) = {feed_rss, feed_atom, feed_json};
    for (int i = 0; rc == 0 && i < 3; i++) {
        struct buf rel;
        buf_init(&rel, 0);
        buf_reset(&o->page);
        rc = writers[i](o->cfg, &fs, &o->page);
        if (rc == 0)
            rc = buf_printf(&rel, "%s%s", fs.dir, names[i]);
        if (rc == 0)
            rc = write_out(o, rel.data, &o->page);
        buf_free(&rel);
    }
    buf_free(&dir);
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

/* Removes output/<sub>/NAME for each NAME not in keep (sorted) whose folder
 * holds only the files nashra writes there (ours). */
static void prune(struct outputs *o, const char *sub, char **keep, size_t nkeep,
                  const char *const *ours)
{
    char *dir = path_join(o->cfg->output.dir, sub);
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        const char *name = de->d_name;
        if (bsearch(&name, keep, nkeep, sizeof *keep, strcmp_indirect))
            continue;
        char *child = path_join(dir, name);
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
    }
    if (d)
        closedir(d);
    free(dir);
}

static void prune_all(struct outputs *o)
{
    char **keep = calloc(o->nall + o->ncats + 1, sizeof *keep);
    if (!keep)
        return;
    for (size_t i = 0; i < o->nall; i++)
        keep[i] = o->all[i]->slug;
    qsort(keep, o->nall, sizeof *keep, strcmp_indirect);
    static const char *const page[] = {"index.html", NULL};
    static const char *const feeds[] = {"feed.xml", "atom.xml", "feed.json", NULL};
    prune(o, "posts", keep, o->nall, page);
    for (size_t i = 0; i < o->ncats; i++)
        keep[i] = o->cats[i].slug;
    qsort(keep, o->ncats, sizeof *keep, strcmp_indirect);
    prune(o, "categories", keep, o->cfg->feeds.categories ? o->ncats : 0, feeds);
    free(keep);
}

static int pass_outputs(const struct config *cfg, struct store *st,
                        const struct html_templates *tpl, const struct slugset *touched,
                        struct publish_stats *stats)
{
    struct outputs o = {.cfg = cfg, .st = st, .tpl = tpl, .touched = touched, .stats = stats};
    buf_init(&o.page, 0);
    int rc = store_each_published(st, !touched, on_post, &o);
    if (rc == 0)
        rc = write_feed(&o, &o.site);
    for (size_t i = 0; rc == 0 && i < o.ncats; i++)
        rc = write_feed(&o, &o.cats[i]);
    if (rc == 0) {
        buf_reset(&o.page);
        rc = html_index_page(cfg, tpl, o.all, o.nall, &o.page);
        if (rc == 0)
            rc = write_out(&o, "index.html", &o.page);
    }
    if (rc == 0 && !o.failed)
        prune_all(&o);
    for (size_t i = 0; i < o.nall; i++)
        post_free(o.all[i]);
    free(o.all);
    free(o.site.posts);
    for (size_t i = 0; i < o.ncats; i++) {
        free(o.cats[i].category);
        free(o.cats[i].slug);
        free(o.cats[i].posts);
    }
    free(o.cats);
    buf_free(&o.page);
    return rc < 0 || o.failed ? -1 : 0;
}

static void touched_free(struct slugset *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->slug[i]);
    slugset_free(t);
}

int publish_run(const struct config *cfg, struct store *st, const struct html_templates *tpl,
                struct publish_stats *stats)
{
    struct pass ps = {.cfg = cfg, .st = st, .stats = stats, .now = timefmt_now()};
    memset(stats, 0, sizeof *stats);
    int rc = pass_state(&ps);
    touched_free(&ps.touched);
    if (rc < 0)
        return -1;
    return pass_outputs(cfg, st, tpl, NULL, stats);
}

int publish_changes(const struct config *cfg, struct store *st, const struct html_templates *tpl,
                    char **paths, size_t npaths, struct publish_stats *stats)
{
    static char *none[1];
    qsort(paths, npaths, sizeof *paths, strcmp_indirect);
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
    int rc = pass_state(&ps);
    if (rc > 0) { /* the settings posts are rendered with changed */
        touched_free(&ps.touched);
        return publish_run(cfg, st, tpl, stats);
    }
    if (rc == 0)
        rc = pass_outputs(cfg, st, tpl, &ps.touched, stats);
    touched_free(&ps.touched);
    return rc;
}
