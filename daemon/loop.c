/*
 * loop: epoll with one callback per fd and one tick per wake-up (loop.h).
 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* The daemon watches about 10 fds of its own, plus curl's sockets (16
 * deliveries at once, each with a resolver fd while it looks a name up):
 * room to spare, and a full table is an error (ENOSPC), never a crash. */
#define LOOP_MAX_FDS 256

struct watch {
    int fd;
    loop_fd_fn fn;
    void *arg;
};

struct loop {
    int epfd;
    int stop;
    struct watch w[LOOP_MAX_FDS];
    int n;
};

int64_t loop_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    return l;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    free(l);
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *arg)
{
    if (l->n == LOOP_MAX_FDS) {
        errno = ENOSPC;
        return -1;
    }
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    l->w[l->n++] = (struct watch){fd, fn, arg};
    return 0;
}

int loop_del(struct loop *l, int fd)
{
    for (int i = 0; i < l->n; i++) {
        if (l->w[i].fd == fd) {
            l->w[i] = l->w[--l->n];
            return epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
        }
    }
    errno = ENOENT;
    return -1;
}

void loop_stop(struct loop *l)
{
    l->stop = 1;
}

int loop_run(struct loop *l, loop_tick_fn tick, void *arg)
{
    int64_t wait = tick ? tick(l, arg) : -1;
    while (!l->stop) {
        struct epoll_event ev[16];
        int timeout = wait < 0 ? -1 : wait > 60000 ? 60000 : (int)wait;
        int n = epoll_wait(l->epfd, ev, 16, timeout);
        if (n < 0 && errno != EINTR)
            return -1;
        for (int i = 0; i < n && !l->stop; i++) {
            for (int k = 0; k < l->n; k++) {
                if (l->w[k].fd == ev[i].data.fd) {
                    l->w[k].fn(l, l->w[k].fd, ev[i].events, l->w[k].arg);
                    break;
                }
            }
        }
        if (!l->stop && tick)
            wait = tick(l, arg);
    }
    return 0;
}
