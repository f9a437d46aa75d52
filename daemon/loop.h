/*
 * loop: the daemon's one event loop (epoll). File descriptors (inotify,
 * signalfd, libmicrohttpd's epoll fd, curl's sockets later) are watched
 * with a callback each; after every wake-up the loop calls one tick
 * function, which does the timed work and says when it wants to run next,
 * the way Redis's serverCron does. Stands alone: no other module of ours.
 */
#ifndef NASHRA_LOOP_H
#define NASHRA_LOOP_H

#include <stdint.h>

struct loop;

typedef void (*loop_fd_fn)(struct loop *l, int fd, uint32_t events, void *arg);

/* Returns milliseconds until the tick wants to run again (-1: only on an event). */
typedef int64_t (*loop_tick_fn)(struct loop *l, void *arg);

struct loop *loop_new(void);
void loop_free(struct loop *l);

/* events: EPOLLIN etc. One callback per fd. 0 or -1 (errno set). */
int loop_add(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *arg);
int loop_del(struct loop *l, int fd);

/* Runs until loop_stop(); returns 0, or -1 if epoll itself fails. */
int loop_run(struct loop *l, loop_tick_fn tick, void *arg);
void loop_stop(struct loop *l);

/* Monotonic milliseconds, for deadlines. */
int64_t loop_now_ms(void);

#endif
