/*
 * fuzz_csv: a subscribers CSV file (`nashra subscribers import`, SPEC §8)
 * through lib/csv, read the way the import reads it: byte order mark, the
 * header line, then every record, each checked as the import checks a row
 * (UTF-8, the e-mail address with mime_address_ok, the state name). The
 * input is given to the reader as a stream (fmemopen).
 */
#include <stdio.h>
#include <strings.h>

#include "../../lib/csv.h"
#include "../../mail/mime.h"
#include "../../store/mail_store.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen refuses an empty buffer */
    FILE *fp = fmemopen((void *)data, size, "rb");
    if (!fp)
        abort();
    struct csv c;
    struct diag d = {0};
    struct buf email;
    int email_col = -1, state_col = -1, nheader = -1, rc, last_line = 0;
    csv_init(&c, fp);
    buf_init(&email, 512);
    csv_skip_bom(&c);
    while ((rc = csv_next(&c, &d)) != 0) {
        if (c.start < last_line || c.line < c.start)
            abort(); /* lines only move forward */
        last_line = c.start;
        if (rc < 0) {
            if (!d.msg[0] || d.line != c.start)
                abort();
            d.msg[0] = '\0';
            continue;
        }
        if (c.nfields < 1 || c.nfields > CSV_FIELDS_MAX)
            abort();
        for (int i = 0; i < c.nfields; i++)
            if (strlen(csv_field(&c, i)) > csv_len(&c, i) || csv_len(&c, i) > CSV_RECORD_MAX)
                abort(); /* a field ends at its NUL (or holds NUL bytes) */
        if (!csv_utf8(&c))
            continue;
        if (nheader < 0) {
            nheader = c.nfields;
            for (int i = 0; i < c.nfields; i++) {
                if (!strcasecmp(csv_field(&c, i), "email"))
                    email_col = i;
                else if (!strcasecmp(csv_field(&c, i), "state"))
                    state_col = i;
            }
            continue;
        }
        if (c.nfields != nheader)
            continue;
        buf_reset(&email);
        if (email_col >= 0)
            (void)mime_address_ok(csv_field(&c, email_col), &email);
        if (state_col >= 0)
            (void)mail_sub_state_parse(csv_field(&c, state_col));
    }
    if (!c.eof)
        abort();
    buf_free(&email);
    csv_free(&c);
    fclose(fp);
    return 0;
}
