/*
 * transport_int: what transport.c shares with the two kinds behind it,
 * transport_maildir.c and transport_smtp.c. Each kind implements the calls of
 * transport.h with the same contracts. Other modules use transport.h only.
 */
#ifndef NASHRA_TRANSPORT_INT_H
#define NASHRA_TRANSPORT_INT_H

#include "transport.h"

struct tr_maildir;
struct tr_maildir *tr_maildir_new(const char *path, transport_done_fn done, void *arg);
void tr_maildir_free(struct tr_maildir *m);
int tr_maildir_ready(const struct tr_maildir *m);
int tr_maildir_send(struct tr_maildir *m, uint64_t id, const char *data, size_t len);
size_t tr_maildir_inflight(const struct tr_maildir *m);
int64_t tr_maildir_tick(struct tr_maildir *m);
int tr_maildir_wait(struct tr_maildir *m, int64_t timeout_ms);

struct tr_smtp;
struct tr_smtp *tr_smtp_new(const struct config *cfg, struct loop *loop, transport_done_fn done,
                            void *arg);
void tr_smtp_free(struct tr_smtp *s);
int tr_smtp_ready(const struct tr_smtp *s);
int tr_smtp_send(struct tr_smtp *s, uint64_t id, const char *env_from, const char *rcpt,
                 const char *data, size_t len);
size_t tr_smtp_inflight(const struct tr_smtp *s);
int64_t tr_smtp_tick(struct tr_smtp *s);
int tr_smtp_wait(struct tr_smtp *s, int64_t timeout_ms);

/*
 * 1 if addr may go into "MAIL FROM:<addr>" or "RCPT TO:<addr>": at most 320
 * bytes (RFC 5321: 64 for the local part, 255 for the domain), no byte below
 * 0x21, no DEL, no '<' or '>' inside (one enclosing pair is allowed), and
 * not empty unless empty_ok (the null sender "<>").
 */
int transport_addr_ok(const char *addr, int empty_ok);

#endif
