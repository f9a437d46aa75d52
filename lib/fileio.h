/*
 * fileio: reading files from untrusted folders and writing outputs safely.
 */
#ifndef NASHRA_FILEIO_H
#define NASHRA_FILEIO_H

#include <stddef.h>

#include "buf.h"

/*
 * Reads a whole regular file into out (capped at max bytes). Never blocks on
 * a FIFO or device (opened O_NONBLOCK, then fstat: not a regular file is an
 * error), follows no symlink loop. Returns 0, or -1 with *why set to a short
 * reason ("not a regular file", "larger than N bytes", strerror(errno)).
 */
int file_read(const char *path, size_t max, struct buf *out, const char **why);

/*
 * Writes data to path atomically: a temporary file in the same folder, fsync
 * is not done (outputs are rebuildable), rename into place. When the file
 * already holds exactly these bytes nothing is written and its mtime is kept.
 * Creates missing parent folders. Returns 1 if written, 0 if unchanged, -1 on
 * error (errno set).
 */
int file_write_if_changed(const char *path, const void *data, size_t len);

/* The same with the temporary file in tmpdir (same file system), named
 * "PID.N": a crash leaves nothing beside the outputs, and file_sweep_tmp
 * finds what it left. tmpdir NULL: beside path. */
int file_write_if_changed_in(const char *path, const char *tmpdir, const void *data, size_t len);

/* Removes from tmpdir the temporary files of processes that are gone; the
 * number removed. */
int file_sweep_tmp(const char *tmpdir);

/* mkdir -p with mode 0755; 0 or -1 (errno set). */
int mkdir_p(const char *path);

/* Joins a and b with one '/'; the caller frees. */
char *path_join(const char *a, const char *b);

#endif
