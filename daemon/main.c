/*
 * main: nashra's entry point. Picks the subcommand and hands it argv; every
 * subcommand parses its own options (SPEC §2).
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static const char usage[] =
    "usage: nashra COMMAND [-c FILE] [-v|-q] [--help]\n"
    "\n"
    "Turns a folder of posts into feeds, a web archive, newsletters and\n"
    "fediverse posts.\n"
    "\n"
    "commands:\n"
    "  build        one full publish pass, then exit (--deliver: and send mail)\n"
    "  check        validate config, templates and every post\n"
    "  serve        the daemon: publish every change, send mail, serve HTTP\n"
    "  preview      a list's newsletter for a post, as .eml or .html\n"
    "  send         queue a list's issue of a post now, or a test send (--to)\n"
    "  subscribers  add, remove, list, import or export a list's subscribers\n"
    "  status       posts, followers, subscribers, and every issue's progress\n"
    "  keys         the ActivityPub actor's key; --rotate makes a new one\n"
    "\n"
    "`nashra COMMAND --help` tells more. See nashra(1) and nashra.yaml(5).\n";

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"build", cmd_build},     {"check", cmd_check}, {"serve", cmd_serve},
                {"preview", cmd_preview}, {"send", cmd_send},   {"subscribers", cmd_subscribers},
                {"status", cmd_status},   {"keys", cmd_keys}};

    /* Output never depends on the locale: C for everything we format. */
    setlocale(LC_ALL, "C");
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "nashra: unknown command '%s'\n%s", argv[1], usage);
    return 2;
}
