/*
 * bounces: the daemon's reader of mail.bounces.maildir (SPEC §8). The
 * bounce address (bounces+ISSUE.SUBSCRIBER.MAC@domain, mail/newsletter.h)
 * delivers into that Maildir; every message in its new/ is read once: a DSN
 * (mail/dsn) whose VERP address checks out marks its subscriber bounced
 * (5.x.x) or counts a soft bounce (4.x.x; bounced at
 * mail.bounces.soft_limit); anything else (auto-replies, a DSN naming no
 * subscriber of ours) changes nothing. Each file is then in cur/ with the
 * Maildir "seen" flag (NAME:2,S), so it is never read again.
 *
 * The Maildir is read at start, whenever inotify says a file arrived in
 * new/, and every minute besides (inotify can miss files on network file
 * systems), all on the daemon's loop: files are small and local.
 */
#ifndef NASHRA_BOUNCES_H
#define NASHRA_BOUNCES_H

#include <stdint.h>

#include "../config/config.h"
#include "../lib/diag.h"
#include "../store/store.h"

struct loop;
struct bounces;

/* Creates the Maildir's new/, cur/ and tmp/ when missing, watches new/ on
 * loop (NULL: no watch, bounces_scan by hand), and reads what is there.
 * NULL on error with err. cfg must outlive it. */
struct bounces *bounces_new(const struct config *cfg, struct store *st, struct loop *loop,
                            struct diag *err);
void bounces_free(struct bounces *b);

/* Reads every file in new/ now; the number read, or -1 (new/ unreadable). */
int bounces_scan(struct bounces *b);

/* The daemon's consumer tick: a scan when one is due; ms until the next. */
int64_t bounces_tick(void *arg, int64_t now_ms);

#endif
