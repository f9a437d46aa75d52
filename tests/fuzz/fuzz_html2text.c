/*
 * fuzz_html2text: a post's HTML (raw HTML is allowed with
 * content.allow_html) turned into a newsletter's text/plain part by
 * html_to_text() (libxml2's HTML parser and our walk of its tree). The text
 * must be valid UTF-8 (when the input is) with every line ending in "\n".
 */
#include "../../lib/text.h"
#include "../../mail/html2text.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf out;
    size_t bad;
    buf_init(&out, 4 << 20);
    if (html_to_text((const char *)data, size, &out) == 0) {
        if (out.len && out.data[out.len - 1] != '\n')
            abort();
        if (utf8_valid((const char *)data, size, &bad) && !utf8_valid(out.data, out.len, &bad))
            abort();
    } else if (out.len) {
        abort();
    }
    buf_free(&out);
    return 0;
}
