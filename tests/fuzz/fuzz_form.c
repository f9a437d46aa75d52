/*
 * fuzz_form: the form body POSTed to /subscribe (subs_form_get in
 * daemon/subs_http.c: '&'-separated key=value, '+' and %XX decoded) and a
 * query value (http_query_decode, what /confirm and /unsubscribe read t=
 * with). A decoded value holds no NUL and is never longer than its raw
 * text; the first of several fields wins.
 */
#include "../../daemon/http_int.h"
#include "../../daemon/subs_http.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"email", "name", "list", "website", "t", ""};
    const char *body = (const char *)data;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char *v = subs_form_get(body, size, keys[i]);
        if (v) {
            size_t n = strlen(v);
            if (n > size)
                abort();
            /* the first field named keys[i] holds at least n raw bytes */
            size_t klen = strlen(keys[i]);
            const char *p = body;
            while (!(p + klen < body + size && !memcmp(p, keys[i], klen) && p[klen] == '=')) {
                p = memchr(p, '&', size - (size_t)(p - body));
                if (!p)
                    abort(); /* a value for a key that is not there */
                p++;
            }
            const char *end = memchr(p, '&', size - (size_t)(p - body));
            size_t raw = (end ? (size_t)(end - p) : size - (size_t)(p - body)) - klen - 1;
            if (n > raw)
                abort();
            free(v);
        }
    }
    char *s = fuzz_str(data, size);
    size_t before = strlen(s);
    if (http_query_decode(s) == 0 && strlen(s) > before)
        abort();
    free(s);
    return 0;
}
