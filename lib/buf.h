/*
 * buf: a growable byte buffer with a hard size cap.
 *
 * Every buffer filled from outside (posts, HTTP bodies, remote JSON) is a
 * struct buf with a cap: appending past the cap fails with -1 and leaves the
 * buffer as it was, so the caller can report "too large" and move on.
 * The buffer owns its memory; buf_free() releases it. data is always
 * NUL-terminated (not counted in len) so it can be handed to C string APIs.
 */
#ifndef NASHRA_BUF_H
#define NASHRA_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;  /* NUL-terminated; NULL until the first append */
    size_t len;  /* bytes in use, without the terminating NUL */
    size_t size; /* bytes allocated */
    size_t cap;  /* most bytes len may reach; 0 means SIZE_MAX/2 */
};

void buf_init(struct buf *b, size_t cap);
void buf_free(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, memory kept */

/* All appenders return 0, or -1 (buffer unchanged) past the cap or on ENOMEM. */
__attribute__((warn_unused_result)) int buf_append(struct buf *b, const void *p, size_t n);
__attribute__((warn_unused_result)) int buf_puts(struct buf *b, const char *s);
__attribute__((warn_unused_result)) int buf_putc(struct buf *b, char c);
__attribute__((warn_unused_result, format(printf, 2, 3))) int buf_printf(struct buf *b,
                                                                         const char *fmt, ...);
__attribute__((warn_unused_result, format(printf, 2, 0))) int
buf_vprintf(struct buf *b, const char *fmt, va_list ap);
__attribute__((warn_unused_result)) int buf_reserve(struct buf *b, size_t extra);

/* Hands the bytes to the caller (who frees them) and empties the buffer. */
char *buf_steal(struct buf *b);

/* A "" string when the buffer is empty, never NULL. */
const char *buf_str(const struct buf *b);

#endif
