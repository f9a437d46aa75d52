/*
 * cmd: the subcommands of SPEC §2, one function each, called by main with
 * argv starting at the subcommand's name. Each returns the exit code:
 * 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#ifndef NASHRA_CMD_H
#define NASHRA_CMD_H

#include <stdint.h>

#include "../config/config.h"

int cmd_build(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_subscribers(int argc, char **argv);
int cmd_preview(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_keys(int argc, char **argv);

/* Shared by the subcommands: -c FILE, -v, -q, --help. */
struct cmd_opts {
    const char *config;
    int verbose, quiet, help;
    int deliver;
};

/* Parses the common options (and --deliver where allowed); prints usage
 * errors itself. Returns 0, or 2 on a usage error. */
int cmd_parse(int argc, char **argv, const char *usage, int allow_deliver, struct cmd_opts *o);

/* Loads the config named by o, sets the log level and time zone; prints a
 * located error and returns NULL on failure. */
struct config *cmd_config(const struct cmd_opts *o);

/* The lists' templates compiled once, to check them: a broken one is a
 * configuration error, printed as FILE:LINE:COL: error: ... 0, or -1. */
int cmd_check_lists(const struct config *cfg);

/* daemon/cmd_confirm.c: the mark of list's subscribers now (the highest
 * id, -1 on error), and the confirmation mail to each pending subscriber
 * of list added after that mark: 0, 1 when some could not be sent, 2 on a
 * configuration error. */
struct mail_store;
int64_t cmd_confirm_mark(struct mail_store *ms, const char *list);
int cmd_confirm_pending(const struct config *cfg, struct mail_store *ms, const char *list,
                        int64_t after, int quiet);

#endif
