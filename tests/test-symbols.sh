#!/bin/sh
# The exported dynamic symbols of libcandor.so must be exactly the names in
# lib/candor.map, and every one must start with candor_.
set -eu
so=$1 map=$2
exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRV]$/ {print $3}' | sed 's/@.*//' | grep -v '^CANDOR_' | sort -u)
listed=$(sed -n 's/^ *\(candor_[a-z0-9_]*\);$/\1/p' "$map" | sort -u)
bad=0
if [ "$exported" != "$listed" ]; then
    echo "exported symbols differ from $map:"
    diff -u /dev/fd/3 /dev/fd/4 3<<E1 4<<E2 || true
$listed
E1
$exported
E2
    bad=1
fi
if echo "$exported" | grep -v '^candor_' >/dev/null; then
    echo "symbols without the candor_ prefix:"; echo "$exported" | grep -v '^candor_'; bad=1
fi
[ $bad = 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $bad
