/*
 * diag: located errors (see diag.h).
 */
#include "diag.h"

#include <stdarg.h>

void diag_set(struct diag *d, int line, int col, const char *fmt, ...)
{
    if (!d)
        return;
    d->line = line;
    d->col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
}

void diag_print(FILE *fp, const char *file, const struct diag *d)
{
    if (d->line > 0 && d->col > 0)
        fprintf(fp, "%s:%d:%d: error: %s\n", file, d->line, d->col, d->msg);
    else if (d->line > 0)
        fprintf(fp, "%s:%d: error: %s\n", file, d->line, d->msg);
    else
        fprintf(fp, "%s: error: %s\n", file, d->msg);
}
