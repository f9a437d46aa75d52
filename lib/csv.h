/*
 * csv: a reader of CSV as RFC 4180 has it (fields quoted or not, "" for a
 * quote inside quotes, line breaks inside quotes, CRLF, LF or a lone CR),
 * one record at a time from a stream, for `nashra subscribers import`.
 * Records are capped (CSV_RECORD_MAX bytes, CSV_FIELDS_MAX fields); a bad
 * record is reported with the line it began on and skipped. Needs only
 * lib/buf, lib/diag and lib/text.
 *
 *     struct csv c;
 *     csv_init(&c, fp);
 *     csv_skip_bom(&c);
 *     while ((rc = csv_next(&c, &d)) != 0)
 *         rc > 0 ? use(csv_field(&c, 0), ...) : report(&d);
 *     csv_free(&c);
 */
#ifndef NASHRA_CSV_H
#define NASHRA_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "buf.h"
#include "diag.h"

#define CSV_RECORD_MAX (64 * 1024) /* bytes of one record, quotes and separators included */
#define CSV_FIELDS_MAX 64

struct csv {
    FILE *fp;
    int line;       /* the physical line the reader is on, 1-based */
    int start;      /* the line the last record began on */
    struct buf rec; /* the last record: its fields, each ending with a NUL */
    size_t off[CSV_FIELDS_MAX + 1];
    int nfields;
    int eof;
    int back[3]; /* bytes read ahead and given back, last first */
    int nback;
};

/* Sets c up to read fp (not owned) from line 1. */
void csv_init(struct csv *c, FILE *fp);
void csv_free(struct csv *c);

/* Drops a UTF-8 byte order mark at the start, as spreadsheets write one. */
void csv_skip_bom(struct csv *c);

/*
 * The next record into c->rec / c->off / c->nfields, blank lines skipped.
 * 1 a record, 0 the end of the file, -1 a bad one (d says why, at the line
 * it began on; the reader has moved to the next line). A quote inside a
 * field that is not quoted is taken as a character, as most readers do.
 */
int csv_next(struct csv *c, struct diag *d);

/* Field i's length (a field may hold a NUL byte, which is not UTF-8 here). */
size_t csv_len(const struct csv *c, int i);

/* 1 if every field of the record is valid UTF-8 (no NUL bytes). */
int csv_utf8(const struct csv *c);

/* Field i of the record, NUL-terminated (writable: callers trim in place). */
char *csv_field(struct csv *c, int i);

#endif
