/*
 * yaml_tree: libyaml's event stream built into a tree of struct ynode (see
 * yaml_tree.h). Every node and string lives in one arena freed with the
 * document; aliases share their target node, and the document's expanded
 * size and depth are bounded while it is read (YAML 1.2, "billion laughs").
 */
#include "yaml_tree.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define ARENA_BLOCK    4096
#define ANCHOR_BUCKETS 4096

/* --- arena: every node, key array and string of a document --------------- */

struct ablock {
    struct ablock *next;
    size_t used, size;
    alignas(max_align_t) char data[];
};

struct ydoc {
    struct ynode *root;
    struct ablock *blocks; /* newest first */
};

static void *arena_alloc(struct ydoc *doc, size_t n)
{
    const size_t al = alignof(max_align_t);
    n = (n + al - 1) / al * al;
    struct ablock *b = doc->blocks;
    if (!b || b->size - b->used < n) {
        size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        if (!(b = malloc(sizeof *b + size)))
            return NULL;
        b->used = 0;
        b->size = size;
        b->next = doc->blocks;
        doc->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static char *arena_strndup(struct ydoc *doc, const char *s, size_t len)
{
    char *p = arena_alloc(doc, len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

void ydoc_free(struct ydoc *doc)
{
    if (!doc)
        return;
    while (doc->blocks) {
        struct ablock *next = doc->blocks->next;
        free(doc->blocks);
        doc->blocks = next;
    }
    free(doc);
}

const struct ynode *ydoc_root(const struct ydoc *doc)
{
    return doc ? doc->root : NULL;
}

/* --- the builder: a stack of open collections and the anchors seen ------- */

/* An open sequence or mapping: its items until its end event. */
struct frame {
    struct ynode *node;
    struct ynode **items; /* malloc'd; copied into the arena at the end */
    size_t n, cap;
    size_t weight;      /* expanded size of the subtree so far */
    int height;         /* collection levels in the subtree, this one included */
    const char *anchor; /* arena string or NULL */
};

/* A defined anchor; chained in buckets, newest first (a redefinition wins). */
struct anchor {
    const char *name;
    struct ynode *node;
    size_t weight;
    int height;
    size_t next; /* index + 1 in the anchor array; 0 ends the chain */
};

struct builder {
    struct ydoc *doc;
    struct diag *err;
    const char *src;
    size_t len;
    int first_line;
    int ndocs;
    size_t expanded; /* nodes in the document once aliases are expanded */
    struct frame stack[YTREE_MAX_DEPTH];
    int depth;
    struct anchor *anchors;
    size_t nanchors, anchors_cap;
    size_t *buckets; /* ANCHOR_BUCKETS chain heads (index + 1), or NULL */
};

static int mark_line(const struct builder *b, yaml_mark_t m)
{
    return (int)m.line + b->first_line;
}

static int mark_col(yaml_mark_t m)
{
    return (int)m.column + 1;
}

static size_t hash_name(const char *s)
{
    size_t h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h % ANCHOR_BUCKETS;
}

static const struct anchor *anchor_find(const struct builder *b, const char *name)
{
    if (!b->buckets)
        return NULL;
    for (size_t i = b->buckets[hash_name(name)]; i; i = b->anchors[i - 1].next)
        if (!strcmp(b->anchors[i - 1].name, name))
            return &b->anchors[i - 1];
    return NULL;
}

static int anchor_add(struct builder *b, const char *name, struct ynode *node, size_t weight,
                      int height)
{
    if (!b->buckets && !(b->buckets = calloc(ANCHOR_BUCKETS, sizeof *b->buckets)))
        return -1;
    if (b->nanchors == b->anchors_cap) {
        size_t cap = b->anchors_cap ? b->anchors_cap * 2 : 16;
        struct anchor *a = realloc(b->anchors, cap * sizeof *a);
        if (!a)
            return -1;
        b->anchors = a;
        b->anchors_cap = cap;
    }
    size_t h = hash_name(name);
    b->anchors[b->nanchors] = (struct anchor){name, node, weight, height, b->buckets[h]};
    b->buckets[h] = ++b->nanchors;
    return 0;
}

static void builder_free(struct builder *b)
{
    for (int i = 0; i < b->depth; i++)
        free(b->stack[i].items);
    b->depth = 0;
    free(b->anchors);
    free(b->buckets);
}

/* Counts n more nodes of the expanded document; -1 (err set) past the bound. */
static int count_nodes(struct builder *b, size_t n, yaml_mark_t at)
{
    if (n > YTREE_MAX_NODES || b->expanded > YTREE_MAX_NODES - n) {
        diag_set(b->err, mark_line(b, at), mark_col(at),
                 "YAML document too large: more than %d nodes once aliases are expanded",
                 YTREE_MAX_NODES);
        return -1;
    }
    b->expanded += n;
    return 0;
}

static struct ynode *node_new(struct builder *b, enum ynode_type type, yaml_mark_t at)
{
    struct ynode *n = arena_alloc(b->doc, sizeof *n);
    if (!n) {
        diag_set(b->err, mark_line(b, at), mark_col(at), "out of memory");
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->type = type;
    n->line = mark_line(b, at);
    n->col = mark_col(at);
    return n;
}

/*
 * Attaches a finished node (new or aliased) to the open collection, or makes
 * it the root. Mapping keys must be scalars. line and col are where the node
 * (or the alias of it) is written, for errors.
 */
static int attach(struct builder *b, struct ynode *n, size_t weight, int height, int line, int col)
{
    if (b->depth == 0) {
        b->doc->root = n;
        return 0;
    }
    struct frame *f = &b->stack[b->depth - 1];
    if (f->node->type == YNODE_MAP && f->n % 2 == 0 && n->type != YNODE_SCALAR) {
        diag_set(b->err, line, col, "a mapping key must be a plain value, not a %s",
                 n->type == YNODE_SEQ ? "list" : "mapping");
        return -1;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct ynode **items = realloc(f->items, cap * sizeof *items);
        if (!items) {
            diag_set(b->err, line, col, "out of memory");
            return -1;
        }
        f->items = items;
        f->cap = cap;
    }
    f->items[f->n++] = n;
    f->weight += weight;
    if (height + 1 > f->height)
        f->height = height + 1;
    return 0;
}

/* Registers the anchor of a finished node, if it has one. */
static int define_anchor(struct builder *b, const char *anchor, struct ynode *n, size_t weight,
                         int height)
{
    if (!anchor || anchor_add(b, anchor, n, weight, height) == 0)
        return 0;
    diag_set(b->err, n->line, n->col, "out of memory");
    return -1;
}

/* --- events ---------------------------------------------------------------- */

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
    const char *tag = (const char *)ev->data.scalar.tag;
    const char *anchor = NULL;
    struct ynode *n;

    if (count_nodes(b, 1, ev->start_mark) < 0 || !(n = node_new(b, YNODE_SCALAR, ev->start_mark)))
        return -1;
    n->len = ev->data.scalar.length;
    n->str = arena_strndup(b->doc, (const char *)ev->data.scalar.value, n->len);
    /* A quoted or block scalar, or one tagged !!str, is never null or bool. */
    n->quoted =
        ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (tag && !strcmp(tag, YAML_STR_TAG));
    if (ev->data.scalar.anchor)
        anchor = arena_strndup(b->doc, (const char *)ev->data.scalar.anchor,
                               strlen((const char *)ev->data.scalar.anchor));
    if (!n->str || (ev->data.scalar.anchor && !anchor)) {
        diag_set(b->err, n->line, n->col, "out of memory");
        return -1;
    }
    if (define_anchor(b, anchor, n, 1, 0) < 0)
        return -1;
    return attach(b, n, 1, 0, n->line, n->col);
}

static int on_start(struct builder *b, const yaml_event_t *ev, enum ynode_type type)
{
    const yaml_char_t *anchor =
        type == YNODE_SEQ ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
    struct ynode *n;

    if (b->depth == YTREE_MAX_DEPTH) {
        diag_set(b->err, mark_line(b, ev->start_mark), mark_col(ev->start_mark),
                 "YAML nested deeper than %d levels", YTREE_MAX_DEPTH);
        return -1;
    }
    if (count_nodes(b, 1, ev->start_mark) < 0 || !(n = node_new(b, type, ev->start_mark)))
        return -1;
    struct frame *f = &b->stack[b->depth];
    memset(f, 0, sizeof *f);
    f->node = n;
    f->weight = 1;
    f->height = 1;
    if (anchor &&
        !(f->anchor = arena_strndup(b->doc, (const char *)anchor, strlen((const char *)anchor)))) {
        diag_set(b->err, n->line, n->col, "out of memory");
        return -1;
    }
    b->depth++;
    return 0;
}

static int same_key(const struct ynode *a, const struct ynode *b)
{
    return a->len == b->len && !memcmp(a->str, b->str, a->len);
}

struct keyref {
    const struct ynode *key;
    size_t index;
};

static int keyref_cmp(const void *a, const void *b)
{
    const struct keyref *x = a, *y = b;
    if (x->key->len != y->key->len)
        return x->key->len < y->key->len ? -1 : 1;
    int c = memcmp(x->key->str, y->key->str, x->key->len);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * The first key (in document order) that repeats an earlier one of the
 * mapping, or NULL; *oom set when memory ran out. Small mappings (config
 * sections, front matter) are compared pairwise; large ones sorted, so a
 * hostile mapping of 50,000 keys costs n log n, not n^2.
 */
static const struct ynode *first_duplicate(struct ynode *const *kv, size_t npairs, int *oom)
{
    const struct ynode *dup = NULL;
    *oom = 0;
    if (npairs <= 32) {
        for (size_t i = 1; i < npairs && !dup; i++)
            for (size_t j = 0; j < i && !dup; j++)
                if (same_key(kv[2 * j], kv[2 * i]))
                    dup = kv[2 * i];
        return dup;
    }
    struct keyref *refs = malloc(npairs * sizeof *refs);
    if (!refs) {
        *oom = 1;
        return NULL;
    }
    for (size_t i = 0; i < npairs; i++)
        refs[i] = (struct keyref){kv[2 * i], i};
    qsort(refs, npairs, sizeof *refs, keyref_cmp);
    size_t best = npairs;
    for (size_t i = 1; i < npairs; i++)
        if (same_key(refs[i].key, refs[i - 1].key) && refs[i].index < best)
            best = refs[i].index;
    free(refs);
    return best < npairs ? kv[2 * best] : NULL;
}

/* Closes the innermost collection: its items move into the arena. */
static int on_end(struct builder *b)
{
    struct frame *f = &b->stack[b->depth - 1];
    struct ynode *n = f->node;
    int oom = 0;

    if (f->n && !(n->kv = arena_alloc(b->doc, f->n * sizeof *n->kv)))
        oom = 1;
    else if (f->n)
        memcpy(n->kv, f->items, f->n * sizeof *n->kv);
    n->n = n->type == YNODE_MAP ? f->n / 2 : f->n;
    const struct ynode *dup =
        n->type == YNODE_MAP && !oom ? first_duplicate(n->kv, n->n, &oom) : NULL;
    if (oom) {
        diag_set(b->err, n->line, n->col, "out of memory");
        return -1;
    }
    if (dup) {
        diag_set(b->err, dup->line, dup->col, "duplicate key '%.200s' in one mapping", dup->str);
        return -1;
    }
    size_t weight = f->weight;
    int height = f->height;
    const char *anchor = f->anchor;
    free(f->items);
    b->depth--;
    if (define_anchor(b, anchor, n, weight, height) < 0)
        return -1;
    return attach(b, n, weight, height, n->line, n->col);
}

static int on_alias(struct builder *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    int line = mark_line(b, ev->start_mark), col = mark_col(ev->start_mark);
    const struct anchor *a = anchor_find(b, name);

    if (!a) {
        for (int i = 0; i < b->depth; i++)
            if (b->stack[i].anchor && !strcmp(b->stack[i].anchor, name)) {
                diag_set(b->err, line, col, "alias '*%.100s' refers to a node that holds it", name);
                return -1;
            }
        diag_set(b->err, line, col, "unknown alias '*%.100s'", name);
        return -1;
    }
    if (b->depth + a->height > YTREE_MAX_DEPTH) {
        diag_set(b->err, line, col, "YAML nested deeper than %d levels once aliases are expanded",
                 YTREE_MAX_DEPTH);
        return -1;
    }
    if (count_nodes(b, a->weight, ev->start_mark) < 0)
        return -1;
    return attach(b, a->node, a->weight, a->height, line, col);
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_STREAM_END_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (b->ndocs++ == 0)
            return 0;
        diag_set(b->err, mark_line(b, ev->start_mark), mark_col(ev->start_mark),
                 "more than one YAML document (a second '---' starts one)");
        return -1;
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(b, ev, YNODE_SEQ);
    case YAML_MAPPING_START_EVENT:
        return on_start(b, ev, YNODE_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(b);
    case YAML_ALIAS_EVENT:
        return on_alias(b, ev);
    }
    diag_set(b->err, mark_line(b, ev->start_mark), mark_col(ev->start_mark),
             "unexpected YAML event %d", (int)ev->type);
    return -1;
}

/* --- libyaml errors ------------------------------------------------------- */

/* Line and column of a byte offset (reader errors carry only an offset). */
static void offset_position(const struct builder *b, size_t off, int *line, int *col)
{
    *line = b->first_line;
    *col = 1;
    for (size_t i = 0; i < off && i < b->len; i++) {
        if (b->src[i] == '\n') {
            ++*line;
            *col = 1;
        } else if (((unsigned char)b->src[i] & 0xC0) != 0x80) {
            ++*col;
        }
    }
}

static void parser_error(struct builder *b, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "invalid YAML";
    int line, col;

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        diag_set(b->err, 0, 0, "out of memory while reading YAML");
        return;
    case YAML_READER_ERROR:
        offset_position(b, p->problem_offset, &line, &col);
        diag_set(b->err, line, col, "%s", problem);
        return;
    default:
        break;
    }
    line = mark_line(b, p->problem_mark);
    col = mark_col(p->problem_mark);
    if (p->context && (p->context_mark.line != p->problem_mark.line ||
                       p->context_mark.column != p->problem_mark.column))
        diag_set(b->err, line, col, "%s %s started at line %d, column %d", problem, p->context,
                 mark_line(b, p->context_mark), mark_col(p->context_mark));
    else if (p->context)
        diag_set(b->err, line, col, "%s %s", problem, p->context);
    else
        diag_set(b->err, line, col, "%s", problem);
}

/* --- parse ---------------------------------------------------------------- */

struct ydoc *ydoc_parse(const char *src, size_t len, int first_line, struct diag *err)
{
    struct builder b;
    yaml_parser_t parser;
    yaml_event_t ev;
    int done = 0, rc = -1;

    memset(&b, 0, sizeof b);
    b.err = err;
    b.src = src ? src : "";
    b.len = src ? len : 0;
    b.first_line = first_line;
    if (!(b.doc = calloc(1, sizeof *b.doc))) {
        diag_set(err, 0, 0, "out of memory");
        return NULL;
    }
    if (!yaml_parser_initialize(&parser)) {
        diag_set(err, 0, 0, "out of memory");
        goto out_doc;
    }
    /* libyaml asserts on a NULL input, even an empty one. */
    yaml_parser_set_input_string(&parser, (const unsigned char *)b.src, b.len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            parser_error(&b, &parser);
            goto out;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        int r = on_event(&b, &ev);
        yaml_event_delete(&ev);
        if (r < 0)
            goto out;
    }
    /* "---" alone, or an empty input: no root. */
    if (b.doc->root && b.doc->root->type == YNODE_SCALAR && !b.doc->root->quoted &&
        b.doc->root->len == 0)
        b.doc->root = NULL;
    rc = 0;
out:
    yaml_parser_delete(&parser);
out_doc:
    builder_free(&b);
    if (rc < 0) {
        ydoc_free(b.doc);
        return NULL;
    }
    return b.doc;
}

/* --- queries -------------------------------------------------------------- */

const struct ynode *ynode_get(const struct ynode *map, const char *key)
{
    if (!map || map->type != YNODE_MAP || !key)
        return NULL;
    size_t len = strlen(key);
    for (size_t i = 0; i < map->n; i++) {
        const struct ynode *k = map->kv[2 * i];
        if (k->len == len && !memcmp(k->str, key, len))
            return map->kv[2 * i + 1];
    }
    return NULL;
}

int ynode_is_null(const struct ynode *n)
{
    if (!n || n->type != YNODE_SCALAR || n->quoted)
        return 0;
    return n->len == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
           !strcmp(n->str, "Null") || !strcmp(n->str, "NULL");
}

int ynode_bool(const struct ynode *n, int *out)
{
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};

    if (!n || n->type != YNODE_SCALAR || n->quoted)
        return -1;
    for (size_t i = 0; i < 3; i++) {
        if (!strcmp(n->str, yes[i])) {
            *out = 1;
            return 0;
        }
        if (!strcmp(n->str, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}
