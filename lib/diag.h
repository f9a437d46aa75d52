/*
 * diag: a located error ("FILE:LINE:COL: error: MSG") as parsers report it.
 * A parser fills a struct diag; the caller adds the file name and prints or
 * collects it. line/col are 1-based; 0 means "no position".
 */
#ifndef NASHRA_DIAG_H
#define NASHRA_DIAG_H

#include <stdio.h>

struct diag {
    int line;
    int col;
    char msg[480];
};

__attribute__((format(printf, 4, 5))) void diag_set(struct diag *d, int line, int col,
                                                    const char *fmt, ...);

/* Prints "file:line:col: error: msg" (fields left out when 0) on fp. */
void diag_print(FILE *fp, const char *file, const struct diag *d);

#endif
