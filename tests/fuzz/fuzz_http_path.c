/*
 * fuzz_http_path: the request line and header values the HTTP server
 * decodes itself (daemon/http_path.c, http_static.c): the request path
 * (http_path_normalise: %-decoding, dot segments, UTF-8, length), a query
 * value (http_query_decode), If-Modified-Since (http_date_parse) and
 * If-None-Match (http_etag_match); form bodies are fuzz_form's. A
 * normalised path, encoded again with http_path_encode(), must normalise to
 * itself, and never hold a ".." segment.
 */
#include "../../daemon/http_int.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    static char out[HTTP_PATH_MAX], again[HTTP_PATH_MAX];
    const char *why;
    int64_t t;

    if (http_path_normalise(s, out, sizeof out, &why) == 0) {
        size_t n = strlen(out);
        if (out[0] != '/' || strstr(out, "//") || strstr(out, "/../") || strstr(out, "/./") ||
            (n >= 3 && !strcmp(out + n - 3, "/..")) || (n >= 2 && !strcmp(out + n - 2, "/.")))
            abort();
        struct buf enc;
        buf_init(&enc, 4 * HTTP_PATH_MAX);
        if (http_path_encode(&enc, out) < 0)
            abort();
        if (http_path_normalise(buf_str(&enc), again, sizeof again, &why) < 0 || strcmp(out, again))
            abort(); /* normalising is idempotent */
        buf_free(&enc);
    } else if (!why) {
        abort();
    }

    (void)http_query_decode(s);
    free(s);

    s = fuzz_str(data, size);
    if (http_date_parse(s, &t) == 0) {
        char back[40];
        http_date_format(t, back, sizeof back);
        if (strlen(back) != 29)
            abort();
    }
    (void)http_etag_match(s, "\"1a-2b-3c\"");
    (void)http_etag_match(s, "\"\"");
    free(s);
    return 0;
}
