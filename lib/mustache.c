/*
 * mustache: compiles a Mustache template (https://mustache.github.io/mustache.5.html,
 * the mustache/spec suite minus lambdas) to a flat op list, and renders it
 * against a jansson value. See mustache.h.
 */
#include "mustache.h"

#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MUS_MAX_NEST      100 /* sections open at once in one template */
#define MUS_MAX_PARTIALS  16  /* partials nested at render time */
#define MUS_MAX_DELIM     16  /* bytes in a set-delimiter */
#define MUS_DEFAULT_OPEN  "{{"
#define MUS_DEFAULT_CLOSE "}}"

enum mus_type {
    MUS_TEXT,     /* literal bytes src[off, off+len) */
    MUS_VAR,      /* {{name}}: HTML-escaped value */
    MUS_RAW,      /* {{{name}}} or {{& name}}: value as is */
    MUS_SECTION,  /* {{#name}}: body is ops (i, skip) */
    MUS_INVERTED, /* {{^name}}: body is ops (i, skip) */
    MUS_PARTIAL,  /* {{> name}}: indent is src[off, off+len) */
};

struct mus_op {
    enum mus_type type;
    size_t off, len; /* text, or a standalone partial's indentation */
    size_t tag;      /* offset of the tag, for errors */
    size_t skip;     /* sections: index of the first op after the body */
    char *name;      /* the name as written ("post.title"), NUL-terminated */
    char *path;      /* the same split at dots ("post\0title"); NULL for "." */
    int nparts;      /* parts in path; 0 for the implicit iterator "." */
};

struct mustache {
    char *src; /* a copy of the source: text ops point into it */
    size_t len;
    struct mus_op *ops;
    size_t nops, cap;
};

/* A tag as scanned: [start, end) spans it from its opening delimiter to
 * past its closing one; [in, in + inlen) is its content after the sigil. */
struct mus_tag {
    char type; /* 'v' (variable), or the sigil: # ^ / > { & = ! */
    size_t start, end;
    size_t in, inlen;
};

/* Compiler state: the scan position, the delimiters in force, the stack of
 * open sections (op indices). */
struct mus_parse {
    const char *s;
    size_t len;
    size_t pos; /* start of the text not yet emitted */
    char open[MUS_MAX_DELIM + 1], close[MUS_MAX_DELIM + 1];
    size_t olen, clen;
    size_t stack[MUS_MAX_NEST];
    int depth;
    struct mustache *t;
    struct diag *err;
};

/* 1-based line and column (in UTF-8 characters) of byte offset off. */
static void mus_pos(const char *s, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)s[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

static int mus_is_space(char c)
{
    return (unsigned char)c <= ' ';
}

static struct mus_op *mus_new_op(struct mustache *t, enum mus_type type)
{
    if (t->nops == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct mus_op *ops = realloc(t->ops, cap * sizeof *ops);
        if (!ops)
            return NULL;
        t->ops = ops;
        t->cap = cap;
    }
    struct mus_op *op = &t->ops[t->nops++];
    memset(op, 0, sizeof *op);
    op->type = type;
    return op;
}

static int mp_oom(struct mus_parse *p)
{
    diag_set(p->err, 0, 0, "out of memory");
    return -1;
}

static int mp_emit_text(struct mus_parse *p, size_t from, size_t to)
{
    if (to <= from)
        return 0;
    struct mus_op *op = mus_new_op(p->t, MUS_TEXT);
    if (!op)
        return mp_oom(p);
    op->off = from;
    op->len = to - from;
    return 0;
}

/* Finds the next tag from p->pos. Returns 1 and fills g, 0 when there is
 * none, -1 (diag set) for a tag that is never closed. */
static int mp_find_tag(struct mus_parse *p, struct mus_tag *g)
{
    const char *s = p->s;
    const char *o = memmem(s + p->pos, p->len - p->pos, p->open, p->olen);
    if (!o)
        return 0;
    g->start = (size_t)(o - s);
    g->in = g->start + p->olen;
    g->type = 'v';
    if (g->in < p->len && s[g->in] != '\0' && strchr("#^/>{&=!", s[g->in]))
        g->type = s[g->in++];
    /* {{{x}}} and {{=a b=}} end in '}' or '=' before the closing delimiter. */
    char closer[MUS_MAX_DELIM + 2];
    size_t n = 0;
    if (g->type == '{' || g->type == '=')
        closer[n++] = g->type == '{' ? '}' : '=';
    memcpy(closer + n, p->close, p->clen);
    n += p->clen;
    const char *c = memmem(s + g->in, p->len - g->in, closer, n);
    if (!c) {
        int line, col;
        mus_pos(s, g->start, &line, &col);
        diag_set(p->err, line, col, "unclosed tag (no '%s')", p->close);
        return -1;
    }
    g->inlen = (size_t)(c - (s + g->in));
    g->end = (size_t)(c - s) + n;
    return 1;
}

/* If g stands alone on its line (only whitespace around it), sets *ls to
 * the start of the line and *next past the line's end, and returns 1. */
static int mp_standalone(const struct mus_parse *p, const struct mus_tag *g, size_t *ls,
                         size_t *next)
{
    const char *s = p->s;
    if (!strchr("#^/>=!", g->type))
        return 0;
    size_t i = g->start;
    while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
        i--;
    if (i > 0 && s[i - 1] != '\n')
        return 0;
    size_t j = g->end;
    while (j < p->len && (s[j] == ' ' || s[j] == '\t'))
        j++;
    if (j < p->len && s[j] == '\n')
        j++;
    else if (j + 1 < p->len && s[j] == '\r' && s[j + 1] == '\n')
        j += 2;
    else if (j < p->len)
        return 0;
    *ls = i;
    *next = j;
    return 1;
}

/* Trims the tag's content and checks it is one name without whitespace:
 * sets [*b, *e). Returns 0, or -1 (diag set). */
static int mp_trim_name(struct mus_parse *p, const struct mus_tag *g, size_t *b, size_t *e)
{
    *b = g->in;
    *e = g->in + g->inlen;
    while (*b < *e && mus_is_space(p->s[*b]))
        (*b)++;
    while (*e > *b && mus_is_space(p->s[*e - 1]))
        (*e)--;
    const char *why = NULL;
    if (*b == *e)
        why = "empty tag";
    for (size_t i = *b; i < *e && !why; i++)
        if (mus_is_space(p->s[i]))
            why = "space inside a tag name";
    if (!why)
        return 0;
    int line, col;
    mus_pos(p->s, g->start, &line, &col);
    diag_set(p->err, line, col, "%s", why);
    return -1;
}

/* Fills op's name and dotted path from the tag's content. */
static int mp_name(struct mus_parse *p, const struct mus_tag *g, struct mus_op *op)
{
    size_t b, e;
    if (mp_trim_name(p, g, &b, &e) < 0)
        return -1;
    size_t n = e - b;
    char *mem = malloc(2 * (n + 1));
    if (!mem)
        return mp_oom(p);
    op->name = mem;
    memcpy(op->name, p->s + b, n);
    op->name[n] = '\0';
    op->tag = g->start;
    if (op->type == MUS_PARTIAL || (n == 1 && op->name[0] == '.'))
        return 0;
    op->path = mem + n + 1;
    memcpy(op->path, op->name, n + 1);
    op->nparts = 1;
    int bad = op->path[0] == '.' || op->path[n - 1] == '.';
    for (size_t i = 0; i < n; i++) {
        if (op->path[i] != '.')
            continue;
        bad |= op->path[i + 1] == '.';
        op->path[i] = '\0';
        op->nparts++;
    }
    if (!bad)
        return 0;
    int line, col;
    mus_pos(p->s, g->start, &line, &col);
    diag_set(p->err, line, col, "bad dotted name '%s'", op->name);
    return -1;
}

/* {{=<% %>=}}: two delimiters, separated by whitespace, without whitespace
 * or '=' in them. */
static int mp_set_delims(struct mus_parse *p, const struct mus_tag *g)
{
    const char *s = p->s + g->in, *end = s + g->inlen;
    const char *d[2];
    size_t n[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        while (s < end && mus_is_space(*s))
            s++;
        d[k] = s;
        while (s < end && !mus_is_space(*s) && *s != '=')
            s++;
        n[k] = (size_t)(s - d[k]);
    }
    while (s < end && mus_is_space(*s))
        s++;
    if (s != end || n[0] == 0 || n[1] == 0 || n[0] > MUS_MAX_DELIM || n[1] > MUS_MAX_DELIM) {
        int line, col;
        mus_pos(p->s, g->start, &line, &col);
        diag_set(p->err, line, col, "bad set-delimiter tag (want two delimiters, at most %d bytes)",
                 MUS_MAX_DELIM);
        return -1;
    }
    memcpy(p->open, d[0], n[0]);
    p->open[n[0]] = '\0';
    p->olen = n[0];
    memcpy(p->close, d[1], n[1]);
    p->close[n[1]] = '\0';
    p->clen = n[1];
    return 0;
}

static int mp_open_section(struct mus_parse *p, const struct mus_tag *g)
{
    if (p->depth == MUS_MAX_NEST) {
        int line, col;
        mus_pos(p->s, g->start, &line, &col);
        diag_set(p->err, line, col, "sections nested too deeply (at most %d)", MUS_MAX_NEST);
        return -1;
    }
    struct mus_op *op = mus_new_op(p->t, g->type == '#' ? MUS_SECTION : MUS_INVERTED);
    if (!op)
        return mp_oom(p);
    p->stack[p->depth++] = p->t->nops - 1;
    return mp_name(p, g, op);
}

static int mp_close_section(struct mus_parse *p, const struct mus_tag *g)
{
    size_t b, e;
    if (mp_trim_name(p, g, &b, &e) < 0)
        return -1;
    int line, col;
    mus_pos(p->s, g->start, &line, &col);
    if (p->depth == 0) {
        diag_set(p->err, line, col, "closing tag '%.*s' without an open section", (int)(e - b),
                 p->s + b);
        return -1;
    }
    struct mus_op *op = &p->t->ops[p->stack[p->depth - 1]];
    if (strlen(op->name) != e - b || memcmp(op->name, p->s + b, e - b) != 0) {
        int oline, ocol;
        mus_pos(p->s, op->tag, &oline, &ocol);
        diag_set(p->err, line, col, "closing tag '%.*s' does not match section '%s' (%d:%d)",
                 (int)(e - b), p->s + b, op->name, oline, ocol);
        return -1;
    }
    op->skip = p->t->nops;
    p->depth--;
    return 0;
}

static int mp_value_tag(struct mus_parse *p, const struct mus_tag *g)
{
    struct mus_op *op = mus_new_op(p->t, g->type == 'v' ? MUS_VAR : MUS_RAW);
    if (!op)
        return mp_oom(p);
    return mp_name(p, g, op);
}

static int mp_partial(struct mus_parse *p, const struct mus_tag *g, int alone, size_t ls)
{
    struct mus_op *op = mus_new_op(p->t, MUS_PARTIAL);
    if (!op)
        return mp_oom(p);
    if (alone) {
        op->off = ls;
        op->len = g->start - ls;
    }
    return mp_name(p, g, op);
}

/* Emits the text before tag g and the op for g; moves p->pos past it. */
static int mp_tag(struct mus_parse *p, const struct mus_tag *g)
{
    size_t ls = g->start, next = g->end;
    int alone = mp_standalone(p, g, &ls, &next);
    if (mp_emit_text(p, p->pos, ls) < 0)
        return -1;
    p->pos = next;
    switch (g->type) {
    case 'v':
    case '{':
    case '&':
        return mp_value_tag(p, g);
    case '#':
    case '^':
        return mp_open_section(p, g);
    case '/':
        return mp_close_section(p, g);
    case '>':
        return mp_partial(p, g, alone, ls);
    case '=':
        return mp_set_delims(p, g);
    case '!':
        return 0;
    default:
        diag_set(p->err, 0, 0, "internal error: tag type '%c'", g->type);
        return -1;
    }
}

static int mp_run(struct mus_parse *p)
{
    struct mus_tag g;
    int r;
    while ((r = mp_find_tag(p, &g)) == 1)
        if (mp_tag(p, &g) < 0)
            return -1;
    if (r < 0)
        return -1;
    if (p->depth > 0) {
        const struct mus_op *op = &p->t->ops[p->stack[p->depth - 1]];
        int line, col;
        mus_pos(p->s, op->tag, &line, &col);
        diag_set(p->err, line, col, "unclosed section '%s'", op->name);
        return -1;
    }
    return mp_emit_text(p, p->pos, p->len);
}

void mustache_free(struct mustache *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nops; i++)
        free(t->ops[i].name);
    free(t->ops);
    free(t->src);
    free(t);
}

struct mustache *mustache_compile(const char *src, size_t len, struct diag *err)
{
    struct mus_parse *p = NULL;
    struct mustache *t = calloc(1, sizeof *t);
    if (!t || !(t->src = malloc(len + 1)) || !(p = calloc(1, sizeof *p))) {
        diag_set(err, 0, 0, "out of memory");
        goto fail;
    }
    if (len)
        memcpy(t->src, src, len);
    t->src[len] = '\0';
    t->len = len;
    p->s = t->src;
    p->len = len;
    p->t = t;
    p->err = err;
    strcpy(p->open, MUS_DEFAULT_OPEN);
    strcpy(p->close, MUS_DEFAULT_CLOSE);
    p->olen = p->clen = 2;
    if (mp_run(p) < 0)
        goto fail;
    free(p);
    return t;
fail:
    free(p);
    mustache_free(t);
    return NULL;
}

/* ---- rendering ---------------------------------------------------------- */

/* The context stack: one frame a section or list item, innermost first. */
struct mus_ctx {
    const json_t *v;
    const struct mus_ctx *up;
};

/* A partial compiled during one render, per (name, indentation). */
struct mus_cached {
    char *name;
    char *indent;
    struct mustache *t; /* NULL for an empty or missing partial */
    struct mus_cached *next;
};

struct mus_render {
    mustache_partial_fn partials;
    void *arg;
    struct buf *out;
    int depth; /* partials nested */
    struct mus_cached *cache;
};

static int mr_range(struct mus_render *st, const struct mustache *t, size_t from, size_t to,
                    const struct mus_ctx *ctx);

static const json_t *mr_lookup(const struct mus_ctx *ctx, const struct mus_op *op)
{
    if (op->nparts == 0)
        return ctx ? ctx->v : NULL;
    const char *part = op->path;
    const json_t *v = NULL;
    for (; ctx && !v; ctx = ctx->up)
        if (json_is_object(ctx->v))
            v = json_object_get(ctx->v, part);
    /* Later parts resolve against the first part's value only. */
    for (int i = 1; i < op->nparts && v; i++) {
        part += strlen(part) + 1;
        v = json_is_object(v) ? json_object_get(v, part) : NULL;
    }
    return v;
}

static int mr_truthy(const json_t *v)
{
    if (!v || json_is_null(v) || json_is_false(v))
        return 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    return 1;
}

int mustache_escape(struct buf *out, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            continue;
        }
        if (buf_append(out, s + run, i - run) < 0 || buf_puts(out, rep) < 0)
            return -1;
        run = i + 1;
    }
    return buf_append(out, s + run, n - run);
}

/* The shortest of %.15g..%.17g that reads back as d, with a '.' whatever
 * LC_NUMERIC says: 1.21 renders "1.21", 3.0 renders "3". */
static void mr_real(char *tmp, size_t size, double d)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, size, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    const char *dp = localeconv()->decimal_point;
    char *at = dp && dp[0] && strcmp(dp, ".") != 0 ? strstr(tmp, dp) : NULL;
    if (at) {
        *at = '.';
        memmove(at + 1, at + strlen(dp), strlen(at + strlen(dp)) + 1);
    }
}

/* A value as text: strings as they are, numbers as JSON writes them,
 * true/false; null, objects and arrays as nothing. */
static int mr_value(struct buf *out, const json_t *v, int escape)
{
    char tmp[64];
    const char *s = NULL;
    size_t n = 0;
    if (json_is_string(v)) {
        s = json_string_value(v);
        n = json_string_length(v);
    } else if (json_is_integer(v)) {
        snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s = tmp;
        n = strlen(s);
    } else if (json_is_real(v)) {
        mr_real(tmp, sizeof tmp, json_real_value(v));
        s = tmp;
        n = strlen(s);
    } else if (json_is_boolean(v)) {
        s = json_is_true(v) ? "true" : "false";
        n = strlen(s);
    } else {
        return 0;
    }
    return escape ? mustache_escape(out, s, n) : buf_append(out, s, n);
}

static int mr_section(struct mus_render *st, const struct mustache *t, size_t i,
                      const struct mus_ctx *ctx)
{
    const struct mus_op *op = &t->ops[i];
    const json_t *v = mr_lookup(ctx, op);
    if (op->type == MUS_INVERTED)
        return mr_truthy(v) ? 0 : mr_range(st, t, i + 1, op->skip, ctx);
    if (!mr_truthy(v))
        return 0;
    struct mus_ctx frame = {v, ctx};
    if (!json_is_array(v))
        return mr_range(st, t, i + 1, op->skip, &frame);
    for (size_t k = 0; k < json_array_size(v); k++) {
        frame.v = json_array_get(v, k);
        if (mr_range(st, t, i + 1, op->skip, &frame) < 0)
            return -1;
    }
    return 0;
}

/* src with indent put before every line (not after a final newline). */
static char *mr_indent(const char *src, size_t len, const char *ind, size_t ilen, size_t *outlen)
{
    size_t lines = 1;
    for (size_t i = 0; i + 1 < len; i++)
        lines += src[i] == '\n';
    char *s = malloc(len + lines * ilen + 1);
    if (!s)
        return NULL;
    char *w = s;
    for (size_t i = 0; i < len; i++) {
        if (i == 0 || (src[i - 1] == '\n'))
            w = (char *)memcpy(w, ind, ilen) + ilen;
        *w++ = src[i];
    }
    *w = '\0';
    *outlen = (size_t)(w - s);
    return s;
}

/* Compiles partial op->name for this render (with its indentation) and
 * adds it to the cache. Returns the entry, or NULL on failure. */
static struct mus_cached *mr_load(struct mus_render *st, const struct mustache *t,
                                  const struct mus_op *op)
{
    struct mus_cached *c = calloc(1, sizeof *c);
    char *indented = NULL;
    if (!c || !(c->name = strdup(op->name)) || !(c->indent = strndup(t->src + op->off, op->len)))
        goto fail;
    size_t len = 0;
    const char *src = st->partials ? st->partials(st->arg, op->name, &len) : NULL;
    if (src && len) {
        if (op->len) {
            if (!(indented = mr_indent(src, len, c->indent, op->len, &len)))
                goto fail;
            src = indented;
        }
        if (!(c->t = mustache_compile(src, len, NULL)))
            goto fail;
    }
    free(indented);
    c->next = st->cache;
    st->cache = c;
    return c;
fail:
    free(indented);
    if (c) {
        free(c->name);
        free(c->indent);
        free(c);
    }
    return NULL;
}

static int mr_partial(struct mus_render *st, const struct mustache *t, const struct mus_op *op,
                      const struct mus_ctx *ctx)
{
    if (st->depth >= MUS_MAX_PARTIALS)
        return -1;
    struct mus_cached *c = st->cache;
    while (c && (strcmp(c->name, op->name) != 0 || strlen(c->indent) != op->len ||
                 memcmp(c->indent, t->src + op->off, op->len) != 0))
        c = c->next;
    if (!c && !(c = mr_load(st, t, op)))
        return -1;
    if (!c->t)
        return 0;
    st->depth++;
    int r = mr_range(st, c->t, 0, c->t->nops, ctx);
    st->depth--;
    return r;
}

static int mr_range(struct mus_render *st, const struct mustache *t, size_t from, size_t to,
                    const struct mus_ctx *ctx)
{
    for (size_t i = from; i < to; i++) {
        const struct mus_op *op = &t->ops[i];
        int r = 0;
        switch (op->type) {
        case MUS_TEXT:
            r = buf_append(st->out, t->src + op->off, op->len);
            break;
        case MUS_VAR:
        case MUS_RAW:
            r = mr_value(st->out, mr_lookup(ctx, op), op->type == MUS_VAR);
            break;
        case MUS_SECTION:
        case MUS_INVERTED:
            r = mr_section(st, t, i, ctx);
            i = op->skip - 1;
            break;
        case MUS_PARTIAL:
            r = mr_partial(st, t, op, ctx);
            break;
        default:
            r = -1;
        }
        if (r < 0)
            return -1;
    }
    return 0;
}

int mustache_render(const struct mustache *t, const json_t *data, mustache_partial_fn partials,
                    void *arg, struct buf *out)
{
    struct mus_render st = {partials, arg, out, 0, NULL};
    struct mus_ctx root = {data, NULL};
    int r = mr_range(&st, t, 0, t->nops, &root);
    while (st.cache) {
        struct mus_cached *next = st.cache->next;
        mustache_free(st.cache->t);
        free(st.cache->name);
        free(st.cache->indent);
        free(st.cache);
        st.cache = next;
    }
    return r;
}
