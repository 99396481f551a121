#!/bin/sh
# tests/pg/with-pg.sh CMD ARGS...: run CMD with a private PostgreSQL server.
# Starts tests/pg/pg-harness.sh in a fresh temporary directory, exports
#   CANDOR_TEST_PG      the conninfo (postgresql://candor@127.0.0.1:PORT/candor)
#   CANDOR_TEST_PG_DIR  the harness directory (for `pg-harness.sh stop/start`)
#   CANDOR_PG_HARNESS   the path of pg-harness.sh
# runs CMD, then stops the server and removes the directory (also on a
# signal) and exits with CMD's status.  Exits 77 (meson's "skipped") with a
# message when PostgreSQL's binaries are missing.
set -u
[ $# -ge 1 ] || { echo "usage: with-pg.sh CMD ARGS..." >&2; exit 2; }
harness=$(cd "$(dirname "$0")" && pwd)/pg-harness.sh
if ! "$harness" bindir >/dev/null 2>&1; then
    echo "with-pg: SKIP: PostgreSQL's binaries are missing (Debian package postgresql; or set PG_BINDIR)"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/candor-pg.XXXXXX") || exit 1
chmod 755 "$tmp"        # as root the server runs as another user
cleanup() {
    "$harness" stop "$tmp/pg" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
if ! conninfo=$("$harness" start "$tmp/pg"); then
    echo "with-pg: the private PostgreSQL server did not start" >&2
    exit 1
fi
CANDOR_TEST_PG=$conninfo
CANDOR_TEST_PG_DIR=$tmp/pg
CANDOR_PG_HARNESS=$harness
export CANDOR_TEST_PG CANDOR_TEST_PG_DIR CANDOR_PG_HARNESS
"$@"
status=$?
exit $status
