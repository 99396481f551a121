#!/bin/sh
# tests/valgrind-wrap.sh — meson test wrapper for the valgrind pass in CI:
#   meson test -C BUILD --suite unit --wrapper tests/valgrind-wrap.sh
# Runs compiled test programs under memcheck (definite and indirect leaks
# and every memory error fail the test); script tests (sh, python) run as
# they are, since valgrind on an interpreter checks the interpreter.
prog=$1
if [ -f "$prog" ] && [ "$(head -c 4 "$prog" | od -An -c | tr -d ' ')" = '177ELF' ]; then
    exec valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --show-leak-kinds=definite,indirect --error-exitcode=1 --track-origins=yes \
        --suppressions="$(dirname "$0")/valgrind.supp" "$@"
fi
exec "$@"
