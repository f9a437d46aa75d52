/*
 * fuzz_mustache: a template (the output.templates folder, a list's
 * template, a list's subject) compiled by mustache_compile() and, when it
 * compiles, rendered with a fixed context shaped like the archive's and the
 * newsletters' (nested objects, lists, booleans, HTML in strings). Partials:
 * "self" is the input itself (nesting must stay bounded), "p" a fixed one,
 * any other name empty.
 */
#include <jansson.h>

#include "../../lib/mustache.h"
#include "fuzz.h"

static json_t *ctx;
static const char *self;
static size_t self_len;

static const char context[] =
    "{\"site\":{\"title\":\"نشرة <b>&\",\"url\":\"https://news.example.org\",\"rtl\":true},"
    "\"post\":{\"title\":\"T\\\"<>'\",\"html\":\"<p>x</p>\",\"tags\":[\"a\",\"b\"],"
    "\"date\":1700000000,\"draft\":false,\"image\":null},"
    "\"posts\":[{\"title\":\"one\",\"url\":\"/1\"},{\"title\":\"two\",\"url\":\"/2\","
    "\"posts\":[{\"title\":\"deep\"}]}],"
    "\"list\":{\"name\":\"weekly\",\"id\":\"w\"},\"subscriber\":{\"name\":\"سارة\",\"city\":\"x\"},"
    "\"empty\":[],\"zero\":0,\"yes\":true,\"no\":false,\"pi\":3.14,\"s\":\"\"}";

static const char *partial(void *arg, const char *name, size_t *len)
{
    (void)arg;
    if (!strcmp(name, "self")) {
        *len = self_len;
        return self;
    }
    if (!strcmp(name, "p")) {
        *len = strlen("<li>{{title}}{{#posts}}{{>p}}{{/posts}}</li>\n");
        return "<li>{{title}}{{#posts}}{{>p}}{{/posts}}</li>\n";
    }
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (!(ctx = json_loads(context, 0, NULL)))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct diag d = {0};
    struct mustache *t = mustache_compile((const char *)data, size, &d);
    if (!t) {
        if (!d.msg[0])
            abort();
        return 0;
    }
    struct buf out;
    buf_init(&out, 1 << 20);
    self = (const char *)data, self_len = size;
    (void)mustache_render(t, ctx, partial, NULL, &out);
    buf_reset(&out);
    (void)mustache_render(t, ctx, NULL, NULL, &out);
    buf_free(&out);
    mustache_free(t);
    return 0;
}
