/*
 * cmd: the subcommands of SPEC §2, one function each, called by main with
 * argv starting at the subcommand's name. Each returns the exit code:
 * 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#ifndef NASHRA_CMD_H
#define NASHRA_CMD_H

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

#endif
