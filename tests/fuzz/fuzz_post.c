/*
 * fuzz_post: a post file as the content folder may hold it (SPEC §4), read
 * by post_parse(): front matter (lib/yaml_tree), dates, slugs, Markdown
 * (md4c) or plain text rendering and the HTML sanitiser. Each input is read
 * three ways: as "a.md" with and without content.allow_html, and as "a.txt".
 */
#include <string.h>

#include "../../lib/timefmt.h"
#include "../../posts/post.h"
#include "fuzz.h"

static struct config cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    cfg.site.title = "نشرة";
    cfg.site.url = "https://news.example.org";
    cfg.site.host = "news.example.org";
    cfg.site.language = "ar";
    cfg.site.rtl = 1;
    cfg.site.timezone = "Asia/Riyadh";
    cfg.site.author_name = "Desk";
    cfg.content.dir = "/nonexistent";
    cfg.content.max_bytes = 1 << 20;
    if (timefmt_set_zone("Asia/Riyadh") < 0)
        abort();
    return 0;
}

static void one(const char *path, int allow_html, const uint8_t *data, size_t size)
{
    struct diag d;
    memset(&d, 0, sizeof d);
    cfg.content.allow_html = allow_html;
    struct post *p = post_parse(&cfg, path, (const char *)data, size, 1700000000, &d);
    if (p) {
        /* what the feeds rely on */
        if (!p->slug || !p->url || !p->title || !p->html || strlen(p->html) != p->html_len)
            abort();
        if (!post_slug_valid(p->slug, &(const char *){NULL}))
            abort();
        post_free(p);
    } else if (!d.msg[0]) {
        abort(); /* a rejected post always says why */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one("2024/a.md", 0, data, size);
    one("2024/a.md", 1, data, size);
    one("b.txt", 0, data, size);
    return 0;
}
