/*
 * log: one logfmt line per event on stderr (SPEC §10):
 *   ts=2026-11-28T19:58:36Z level=info event=build posts=5 ms=12
 * and the user-facing "FILE:LINE:COL: error: ..." diagnostics of `check`.
 * Stands alone: no other module of ours is needed to use it.
 */
#ifndef NASHRA_LOG_H
#define NASHRA_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level min);
enum log_level log_get_level(void);

/*
 * log_event(LOG_INFO, "build", "posts=%d ms=%ld", n, ms): fmt holds the
 * key=value fields after event=. Values with spaces or quotes should go
 * through log_quote().
 */
__attribute__((format(printf, 3, 4))) void log_event(enum log_level lvl, const char *event,
                                                     const char *fmt, ...);

/*
 * A logfmt-safe copy of s ("..." with \" \\ \n escaped when needed) in one of
 * four rotating static buffers: valid until the fourth next call.
 */
const char *log_quote(const char *s);

/* fatal: for startup and broken invariants only; prints and exits 1. */
__attribute__((noreturn, format(printf, 1, 2))) void fatal(const char *fmt, ...);

#endif
