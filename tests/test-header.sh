#!/bin/sh
# candor.h compiles alone as C99 -pedantic -Werror and as C++.
set -u
h=$1
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
printf '#include "%s"\nint main(void) { return candor_version_number() == CANDOR_VERSION_NUMBER ? 0 : 1; }\n' "$h" > "$d/t.c"
p=0 f=0
if cc -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only "$d/t.c"; then p=$((p+1)); else echo "FAIL: C99 pedantic"; f=$((f+1)); fi
cp "$d/t.c" "$d/t.cc"
if command -v c++ >/dev/null; then
  if c++ -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only "$d/t.cc"; then p=$((p+1)); else echo "FAIL: C++"; f=$((f+1)); fi
fi
if grep -E '#include *<(libetpan|pcre2|libxml|sqlite3|json)' "$h"; then echo "FAIL: includes a dependency header"; f=$((f+1)); else p=$((p+1)); fi
echo "$p passed, $f failed"
[ $f = 0 ]
