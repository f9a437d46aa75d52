/*
 * yaml_tree: a YAML document (libyaml) as a small tree of scalars, sequences
 * and mappings, each node with its line and column, for the config loader
 * and post front matter.
 *
 * Safety: the input is capped by the caller; aliases are resolved by
 * reference (never copied) and the document's expanded size is bounded
 * (YTREE_MAX_NODES), so a "billion laughs" document fails fast with an error
 * instead of eating memory. Nesting is bounded by YTREE_MAX_DEPTH.
 */
#ifndef NASHRA_YAML_TREE_H
#define NASHRA_YAML_TREE_H

#include <stddef.h>

#include "diag.h"

#define YTREE_MAX_NODES 100000
#define YTREE_MAX_DEPTH 64

enum ynode_type { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP };

struct ynode {
    enum ynode_type type;
    int line, col;     /* 1-based position of the node in the source */
    int quoted;        /* scalar written quoted ('..' or "..") or as a block */
    char *str;         /* scalar value, NUL-terminated (NULL for seq/map) */
    size_t len;        /* scalar length in bytes */
    struct ynode **kv; /* seq: n items; map: n pairs, key kv[2i], value kv[2i+1] */
    size_t n;
};

struct ydoc;

/*
 * Parses one YAML document. first_line is the source line of src's first
 * byte (1 for a file, 2 for front matter after its "---"), so positions in
 * errors and nodes are those of the whole file. An empty document gives a
 * root of NULL. Returns NULL on error with *err filled.
 */
struct ydoc *ydoc_parse(const char *src, size_t len, int first_line, struct diag *err);
const struct ynode *ydoc_root(const struct ydoc *doc);
void ydoc_free(struct ydoc *doc);

/* The value for key in a mapping, or NULL (also when map is not a mapping). */
const struct ynode *ynode_get(const struct ynode *map, const char *key);

/* 1 if a plain (unquoted) scalar is YAML null: "", "~", "null", "Null", "NULL". */
int ynode_is_null(const struct ynode *n);

/* Parses a YAML 1.2 core-schema boolean scalar into *out; -1 if not one. */
int ynode_bool(const struct ynode *n, int *out);

#endif
