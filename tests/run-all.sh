#!/bin/sh
# tests/run-all.sh [BUILDDIR [MESON-SETUP-OPTIONS...]]
# Configure (if needed), build and run the whole test suite, then print the
# plain summary line "N passed, N failed". Exit status 0 only if all passed.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
[ $# -gt 0 ] && shift
cd "$here" || exit 2
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$@" >/dev/null || { echo "meson setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! meson compile -C "$build" >"$build/compile.log" 2>&1; then
    tail -n 40 "$build/compile.log"
    echo "0 passed, 1 failed"
    exit 1
fi
meson test -C "$build" --print-errorlogs --num-processes 2 ${CANDOR_TEST_ARGS:-}
python3 tests/summarize.py "$build"
