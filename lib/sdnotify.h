/*
 * sdnotify: systemd's readiness protocol (sd_notify(3)) without libsystemd:
 * one datagram to $NOTIFY_SOCKET. Does nothing when it is not set.
 */
#ifndef NASHRA_SDNOTIFY_H
#define NASHRA_SDNOTIFY_H

#include <stdint.h>

/* Sends state ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=..."). */
int sd_notify_send(const char *state);

/* The watchdog interval asked for by $WATCHDOG_USEC, in ms (0: none). */
int64_t sd_watchdog_ms(void);

#endif
