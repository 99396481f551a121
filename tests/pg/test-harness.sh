#!/bin/sh
# tests/pg/test-harness.sh: the private PostgreSQL harness works: with-pg.sh
# starts a server whose conninfo answers `select 1` over TCP and over the
# unix socket, with fsync on; stop/start keep the port and the data; stop is
# safe twice; with-pg.sh passes CMD's exit status through and cleans up.
# Skips (77) when PostgreSQL's binaries are missing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${CANDOR_TEST_PG:-}" ]; then
    exec "$here/with-pg.sh" "$0" "$@"
fi
h=$CANDOR_PG_HARNESS
dir=$CANDOR_TEST_PG_DIR
psql="$("$h" bindir)/psql -X -A -t -q"
pass=0 fail=0
check() {   # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then pass=$((pass + 1)); echo "ok   $1"
    else fail=$((fail + 1)); echo "FAIL $1: expected '$2', got '$3'"; fi
}

check "conninfo is a loopback URI" yes \
    "$(echo "$CANDOR_TEST_PG" | grep -Eq '^postgresql://candor@127\.0\.0\.1:[0-9]+/candor$' && echo yes || echo no)"
check "select 1 over TCP" 1 "$($psql "$CANDOR_TEST_PG" -c 'select 1' 2>&1)"
sock=$("$h" conninfo "$dir" socket)
check "select 1 over the unix socket" 1 "$($psql "$sock" -c 'select 1' 2>&1)"
check "fsync stays on" on "$($psql "$CANDOR_TEST_PG" -c 'show fsync' 2>&1)"
check "the data directory is not root's" yes \
    "$([ "$(stat -c %u "$dir/data")" != 0 ] && echo yes || echo no)"
$psql "$CANDOR_TEST_PG" -c 'create table t (x int); insert into t values (42)' >/dev/null 2>&1
uri=$("$h" createdb "$dir" other_db 2>&1)
check "createdb prints the new database's URI" "${CANDOR_TEST_PG%/candor}/other_db" "$uri"
check "the new database is empty" 0 \
    "$($psql "$uri" -c "select count(*) from pg_tables where schemaname = 'public'" 2>&1)"
$psql "$uri" -c 'create table u (y int)' >/dev/null 2>&1
"$h" createdb "$dir" other_db >/dev/null 2>&1
check "createdb again starts afresh" 0 \
    "$($psql "$uri" -c "select count(*) from pg_tables where schemaname = 'public'" 2>&1)"
check "status while running" 0 "$("$h" status "$dir"; echo $?)"
check "stop" 0 "$("$h" stop "$dir" >/dev/null 2>&1; echo $?)"
check "status after stop" 1 "$("$h" status "$dir"; echo $?)"
check "connection refused while stopped" failed \
    "$($psql "$CANDOR_TEST_PG" -c 'select 1' >/dev/null 2>&1 && echo answered || echo failed)"
check "stop twice is safe" 0 "$("$h" stop "$dir" >/dev/null 2>&1; echo $?)"
check "start again: same conninfo" "$CANDOR_TEST_PG" "$("$h" start "$dir" 2>&1)"
check "data survives the restart" 42 "$($psql "$CANDOR_TEST_PG" -c 'select x from t' 2>&1)"
check "restart" "$CANDOR_TEST_PG" "$("$h" restart "$dir" 2>&1)"
check "select 1 after restart" 1 "$($psql "$CANDOR_TEST_PG" -c 'select 1' 2>&1)"

# with-pg.sh itself: CMD's status comes back, the directory is removed.
out=$(mktemp) || exit 1
"$here/with-pg.sh" sh -c 'echo "$CANDOR_TEST_PG_DIR"; exit 3' >"$out" 2>&1
check "with-pg.sh passes CMD's exit status" 3 "$?"
inner=$(head -n 1 "$out")
check "with-pg.sh removes its directory" gone "$([ -n "$inner" ] && [ ! -e "$inner" ] && echo gone || echo "still there: $inner")"
rm -f "$out"
check "with-pg.sh skips (77) without PostgreSQL's binaries" 77 \
    "$(PG_BINDIR=/nonexistent "$here/with-pg.sh" true >/dev/null 2>&1; echo $?)"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
