/*
 * mustache: a small Mustache engine (https://mustache.github.io/mustache.5.html)
 * for the HTML archive and the newsletters: {{var}} (HTML-escaped),
 * {{{raw}}} and {{& raw}}, dotted names, sections over lists, objects and
 * truthy values, inverted sections, partials {{> name}} with standalone
 * indentation, comments, and set-delimiter tags. Data is a jansson value.
 * Stands alone: needs only lib/buf, lib/diag and jansson.
 *
 * Templates are compiled once (errors with line and column at compile time,
 * so `nashra check` finds them) and rendered many times.
 */
#ifndef NASHRA_MUSTACHE_H
#define NASHRA_MUSTACHE_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"
#include "diag.h"

struct mustache;

struct mustache *mustache_compile(const char *src, size_t len, struct diag *err);
void mustache_free(struct mustache *t);

/*
 * Returns the source of partial `name` (*len set), or NULL for an empty
 * partial. The returned memory must stay valid during the render.
 */
typedef const char *(*mustache_partial_fn)(void *arg, const char *name, size_t *len);

/*
 * Renders t with data into out. partials may be NULL. Partial nesting is
 * bounded (16). Returns 0, or -1 when out's cap is hit or a partial fails to
 * compile.
 */
int mustache_render(const struct mustache *t, const json_t *data, mustache_partial_fn partials,
                    void *arg, struct buf *out);

/* Appends s[0, n) escaped as {{var}} writes it (& < > " ' as entities).
 * 0, or -1 (out's cap). */
int mustache_escape(struct buf *out, const char *s, size_t n);

#endif
