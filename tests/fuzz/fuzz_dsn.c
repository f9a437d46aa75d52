/*
 * fuzz_dsn: a bounce as it comes from the internet (mail/dsn.c: dsn_parse,
 * libetpan's MIME parser underneath, then dsn_verdict). Whatever the bytes,
 * the counts stay within their caps, every kept field is a NUL-terminated
 * string, a failed parse leaves the result zeroed, and the verdict is one
 * of the three.
 */
#include "../../mail/dsn.h"
#include "fuzz.h"

static void terminated(const char *s, size_t cap)
{
    if (!memchr(s, '\0', cap))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct dsn d, zero;
    memset(&d, 0xa5, sizeof d); /* dsn_parse must zero it */
    int rc = dsn_parse((const char *)data, size, &d);
    if (rc < 0) {
        if (memcmp(&d, &zero, sizeof d))
            abort();
        return 0;
    }
    if (rc != 0 || d.nrcpt > DSN_MAX_RCPT || d.naddrs > DSN_MAX_ADDRS)
        abort();
    if (!d.is_dsn && d.nrcpt)
        abort();
    for (size_t i = 0; i < d.nrcpt; i++) {
        terminated(d.rcpt[i].action, sizeof d.rcpt[i].action);
        terminated(d.rcpt[i].status, sizeof d.rcpt[i].status);
        terminated(d.rcpt[i].recipient, sizeof d.rcpt[i].recipient);
    }
    for (size_t i = 0; i < d.naddrs; i++)
        terminated(d.addrs[i], sizeof d.addrs[i]);
    enum dsn_verdict v = dsn_verdict(&d);
    if (v != DSN_NONE && v != DSN_SOFT && v != DSN_HARD)
        abort();
    if (!d.is_dsn && v != DSN_NONE)
        abort();
    return 0;
}
