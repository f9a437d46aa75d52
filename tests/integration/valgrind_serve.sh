#!/bin/sh
# nashra serve under valgrind's memcheck (test_serve.ValgrindServeTest): a
# start, changes (add, edit, rename, a new folder, delete, an invalid post),
# HTTP requests (304, 405, 413, /metrics, a bad path), a broken and a good
# SIGHUP, then SIGTERM. The daemon must exit 0 (--error-exitcode=3 turns any
# memory error, or a definite or indirect leak, into exit 3), log
# event=stop result=clean, and valgrind must report nothing definitely lost.
#
#   tests/integration/valgrind_serve.sh
#   NASHRA=/abs/path/nashra tests/integration/valgrind_serve.sh
#
# Without NASHRA it builds its own copy with -gdwarf-4 under
# ${TMPDIR:-/tmp}/nashra-valgrind-build-<checksum of the checkout's path> (Debian 12's valgrind 3.19 gives up
# on gcc 12's default DWARF 5: "unhandled dwarf2 abbrev form code 0x25").
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
command -v valgrind >/dev/null || {
    echo "valgrind_serve.sh: valgrind is not installed (apt-get install valgrind)" >&2
    exit 2
}
if [ -z "${NASHRA:-}" ]; then
    # one folder per checkout: two checkouts' objects must never mix
    out="${TMPDIR:-/tmp}/nashra-valgrind-build-$(printf '%s' "$repo" | cksum | cut -d' ' -f1)"
    make -s -C "$repo" BUILD="$out" CFLAGS='-O2 -g -gdwarf-4' "$out/nashra"
    NASHRA="$out/nashra"
fi
export NASHRA NASHRA_VALGRIND=1
exec /usr/bin/python3 "$here/run.py" ValgrindServeTest ValgrindApTest
