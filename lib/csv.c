/*
 * csv: the RFC 4180 reader of `nashra subscribers import` (see csv.h), a
 * module of its own so that the fuzz target reads CSV as the import does.
 */
#include "csv.h"

#include <string.h>

#include "text.h"

void csv_init(struct csv *c, FILE *fp)
{
    memset(c, 0, sizeof *c);
    c->fp = fp;
    c->line = 1;
    buf_init(&c->rec, CSV_RECORD_MAX);
}

void csv_free(struct csv *c)
{
    buf_free(&c->rec);
}

static int csv_getc(struct csv *c)
{
    return c->nback ? c->back[--c->nback] : getc(c->fp);
}

static void csv_ungetc(struct csv *c, int ch)
{
    if (ch != EOF && c->nback < 3)
        c->back[c->nback++] = ch;
}

void csv_skip_bom(struct csv *c)
{
    static const int bom[3] = {0xEF, 0xBB, 0xBF};
    int got[3], n = 0;
    while (n < 3 && (got[n] = csv_getc(c)) == bom[n])
        n++;
    if (n == 3)
        return;
    csv_ungetc(c, got[n]); /* not one: give back what was read, last first */
    while (n > 0)
        csv_ungetc(c, got[--n]);
}

/* Skips what is left of the current physical line. */
static void csv_skip_line(struct csv *c)
{
    int ch;
    while ((ch = csv_getc(c)) != EOF && ch != '\n')
        ;
    if (ch == EOF)
        c->eof = 1;
    else
        c->line++;
}

int csv_next(struct csv *c, struct diag *d)
{
    enum {
        FIELD_START, /* nothing of the field read yet */
        UNQUOTED,    /* inside a field that did not begin with a quote */
        QUOTED,      /* inside "...": commas and line breaks are data */
        QUOTE_SEEN,  /* a quote inside "...": the end, or the first of "" */
    } state = FIELD_START;
    const char *why = "record longer than 65536 bytes";
    int ch, end;

    buf_reset(&c->rec);
    c->nfields = 0;
    c->off[0] = 0;
    c->start = c->line;
    if (c->eof)
        return 0;
    for (;;) {
        ch = csv_getc(c);
        end = ch == EOF || ch == '\n' || ch == '\r';
        if (ch == '\r') { /* CRLF, or a lone CR: one line break */
            int next = csv_getc(c);
            if (next != '\n')
                csv_ungetc(c, next);
        }
        switch (state) {
        case FIELD_START:
            if (ch == '"') {
                state = QUOTED;
                continue;
            }
            if (end && c->nfields == 0) { /* a blank line, or the end */
                if (ch == EOF) {
                    c->eof = 1;
                    return 0;
                }
                c->line++;
                c->start = c->line;
                continue;
            }
            state = UNQUOTED;
            /* fall through */
        case UNQUOTED:
        case QUOTE_SEEN:
            if (state == QUOTE_SEEN && ch == '"') {
                state = QUOTED; /* "" inside quotes: one quote */
                break;
            }
            if (ch == ',' || end) {
                if (buf_putc(&c->rec, '\0') < 0)
                    goto bad;
                c->nfields++;
                if (end) {
                    if (ch == EOF)
                        c->eof = 1;
                    else
                        c->line++;
                    return 1;
                }
                if (c->nfields == CSV_FIELDS_MAX) {
                    why = "more than 64 fields";
                    goto bad;
                }
                c->off[c->nfields] = c->rec.len;
                state = FIELD_START;
                continue;
            }
            if (state == QUOTE_SEEN) {
                why = "characters after a closing quote (a quote inside quotes is written \"\")";
                goto bad;
            }
            break;
        case QUOTED:
            if (ch == EOF) {
                c->eof = 1;
                diag_set(d, c->start, 1, "unterminated quoted field (no closing quote)");
                return -1;
            }
            if (ch == '"') {
                state = QUOTE_SEEN;
                continue;
            }
            if (end) { /* a line break inside quotes is data: one LF */
                c->line++;
                ch = '\n';
            }
            break;
        }
        if (buf_putc(&c->rec, (char)ch) < 0)
            goto bad;
    }
bad:
    diag_set(d, c->start, 1, "%s", why);
    if (ch == EOF)
        c->eof = 1;
    else if (!end)
        csv_skip_line(c);
    else if (state != QUOTED) /* the line is over already (counted, inside quotes) */
        c->line++;
    return -1;
}

size_t csv_len(const struct csv *c, int i)
{
    size_t next = i + 1 < c->nfields ? c->off[i + 1] : c->rec.len;
    return next - c->off[i] - 1;
}

int csv_utf8(const struct csv *c)
{
    size_t bad;
    for (int i = 0; i < c->nfields; i++)
        if (!utf8_valid(c->rec.data + c->off[i], csv_len(c, i), &bad))
            return 0;
    return 1;
}

char *csv_field(struct csv *c, int i)
{
    return c->rec.data + c->off[i];
}
