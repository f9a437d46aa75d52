/*
 * fuzz_timefmt: a date as front matter gives it (date:, updated:) through
 * timefmt_parse(): RFC 3339, "YYYY-MM-DD" and "YYYY-MM-DD HH:MM[:SS]" in
 * the site's zone. A date that parses is formatted back every way the feeds
 * and pages do, and its RFC 3339 form must parse to the same second.
 */
#include "../../lib/timefmt.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (timefmt_set_zone("America/St_Johns") < 0) /* a half-hour offset, and DST */
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    const char *msg = NULL;
    int64_t t, back;
    char out[64];

    if (timefmt_parse(s, &t, &msg) == 0) {
        timefmt_rfc822(t, out, sizeof out);
        timefmt_human(t, "en", out, sizeof out);
        timefmt_human(t, "ar", out, sizeof out);
        (void)timefmt_year_start(timefmt_year(t));
        timefmt_rfc3339(t, out, sizeof out);
        if (timefmt_parse(out, &back, &msg) < 0 || back != t)
            abort();
    } else if (!msg) {
        abort();
    }
    free(s);
    return 0;
}
