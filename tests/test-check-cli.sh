#!/bin/sh
# test-check-cli.sh — `candor check`: exit statuses and the JSON object
# (CONTRACT.md): 0 ok, 1 review/canned, 2 bad usage or unreadable input;
# the state is only read (two runs, same output; the file is unchanged).
set -u
bin=${CANDOR_BIN:?}
data=${CANDOR_TEST_DATA:?}/canned
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
expect() {   # expect NAME STATUS ARGS...
    name=$1 want=$2
    shift 2
    "$bin" check "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    [ "$got" = "$want" ] && ok || bad "$name: exit $got, want $want ($(cat "$tmp/err"))"
}
expect good 0 --original "$data/original.eml" "$data/reply-good.eml"
expect canned 1 --original "$data/original.eml" "$data/reply-canned.eml"
expect empty_reply 1 --original "$data/original.eml" "$data/reply-empty.eml"
expect no_original 2 "$data/reply-good.eml"
expect two_replies 2 --original "$data/original.eml" "$data/reply-good.eml" "$data/reply-good.eml"
expect missing_file 2 --original "$data/original.eml" "$tmp/nope.eml"
expect bad_now 2 --now yesterday --original "$data/original.eml" "$data/reply-good.eml"
expect unknown_option 2 --frobnicate --original "$data/original.eml" "$data/reply-good.eml"
expect stdin_reply 0 --original "$data/original.eml" - <"$data/reply-good.eml"

# one JSON object with score, verdict and findings
"$bin" check --original "$data/original.eml" "$data/reply-canned.eml" >"$tmp/j"
python3 - "$tmp/j" <<'PY' && ok || bad "json shape"
import json, sys
o = json.load(open(sys.argv[1]))
assert set(o) == {"score", "verdict", "findings"}, o
assert 0 <= o["score"] <= 1 and o["verdict"] in ("review", "canned")
kinds = {"template_reuse", "unresponsive", "stock_phrase", "impersonal", "deflection",
         "no_empathy", "no_next_step", "repeat_send"}
for f in o["findings"]:
    assert set(f) == {"kind", "detail", "weight"} and f["kind"] in kinds and f["detail"], f
PY

# read only: the content of a recorded state is not changed by check, and answers the same twice
"$bin" record-reply --state "$tmp/s.db" --now 2026-11-02T10:00:00Z "$data/reply-good.eml" >/dev/null \
    && ok || bad "record-reply"
dump() { python3 -c "import sqlite3,sys; print('\n'.join(sqlite3.connect(sys.argv[1]).iterdump()))" "$1" | cksum; }
sum1=$(dump "$tmp/s.db")
"$bin" check --state "$tmp/s.db" --now 2026-11-02T10:00:00Z --original "$data/original.eml" \
    "$data/reply-canned.eml" >"$tmp/a"
"$bin" check --state "$tmp/s.db" --now 2026-11-02T10:00:00Z --original "$data/original.eml" \
    "$data/reply-canned.eml" >"$tmp/b"
cmp -s "$tmp/a" "$tmp/b" && ok || bad "two runs differ"
sum2=$(dump "$tmp/s.db")
[ "$sum1" = "$sum2" ] && ok || bad "check changed the state"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
