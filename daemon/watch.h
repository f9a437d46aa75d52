/*
 * watch: inotify over the whole content tree. Reports the relative paths of
 * post files that were closed after writing, moved in or out, or deleted;
 * asks for a full rescan when it cannot know exactly (a new or moved folder,
 * an event queue overflow).
 */
#ifndef NASHRA_WATCH_H
#define NASHRA_WATCH_H

#include "../lib/diag.h"

struct watch;

struct watch *watch_new(const char *root, struct diag *err);
void watch_free(struct watch *w);
int watch_fd(const struct watch *w);

/*
 * Drains the pending events: calls fn(arg, relpath) for each post file that
 * changed, and sets *rescan to 1 when the tree must be read whole. Returns
 * 0, or -1 on a read error.
 */
int watch_read(struct watch *w, void (*fn)(void *arg, const char *relpath), void *arg, int *rescan);

#endif
