/*
 * fuzz_yaml: YAML as the config loader and the post front matter read it,
 * through lib/yaml_tree: ydoc_parse() (libyaml, aliases by reference, node
 * and depth caps), then a walk of the whole tree that asks every mapping for
 * a key and every scalar for a boolean and a null, as the readers do.
 */
#include "../../lib/yaml_tree.h"
#include "fuzz.h"

static size_t visited;

static void walk(const struct ynode *n, int depth)
{
    int b;
    if (!n)
        return;
    if (depth > YTREE_MAX_DEPTH + 1 || ++visited > 4 * YTREE_MAX_NODES)
        abort(); /* the caps hold for what the tree hands out */
    switch (n->type) {
    case YNODE_SCALAR:
        if (!n->str || strlen(n->str) > n->len)
            abort();
        (void)ynode_bool(n, &b);
        (void)ynode_is_null(n);
        break;
    case YNODE_MAP:
        if (n->n && (!n->kv || !n->kv[0]))
            abort();
        (void)ynode_get(n, "title");
        for (size_t i = 0; i < 2 * n->n; i++)
            walk(n->kv[i], depth + 1);
        break;
    case YNODE_SEQ:
        for (size_t i = 0; i < n->n; i++)
            walk(n->kv[i], depth + 1);
        break;
    default:
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct diag d = {0};
    struct ydoc *doc = ydoc_parse((const char *)data, size, 2, &d);
    if (!doc) {
        if (!d.msg[0])
            abort();
        return 0;
    }
    visited = 0;
    walk(ydoc_root(doc), 0);
    ydoc_free(doc);
    return 0;
}
