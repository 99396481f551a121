#!/bin/sh
# tests/fuzz/make-seeds.sh DIR — a seed directory per fuzz target under DIR,
# from the kept corpus, the fixtures in tests/data and the shared corpora
# (../shared/corpus or $CANDOR_SHARED/corpus). Copies; changes nothing else.
set -eu
out=${1:?usage: make-seeds.sh DIR}
src=$(cd "$(dirname "$0")/../.." && pwd)
shared=${CANDOR_SHARED:-$src/../shared}/corpus
# train gets only its own small corpus: one execution fits a model (~5/s)
for t in message html triage check config ack lmtpd train; do
    mkdir -p "$out/$t"
    cp "$src/tests/fuzz/corpus/$t/"* "$out/$t/" 2>/dev/null || true
    [ -d "$src/tests/data/fuzz/$t" ] && cp "$src/tests/data/fuzz/$t/"* "$out/$t/" 2>/dev/null
done
n=0
for f in "$shared"/intent/msgs/*.eml "$shared"/canned/cases/*/*.eml "$shared"/canned/history/*.eml \
         $(find "$src/tests/data" -name '*.eml' 2>/dev/null); do
    [ -f "$f" ] || continue
    n=$((n + 1))
    cp "$f" "$out/message/seed-$n.eml"
    cp "$f" "$out/triage/seed-$n.eml"
    cp "$f" "$out/ack/seed-$n.eml"
    grep -qi '<html\|<body\|<div\|<p>' "$f" && cp "$f" "$out/html/seed-$n.html"
done
for d in "$shared"/canned/cases/*/; do
    [ -f "$d/incoming.eml" ] && [ -f "$d/reply.eml" ] || continue
    { cat "$d/incoming.eml"; printf '\n--8<--\n'; cat "$d/reply.eml"; } > "$out/check/case-$(basename "$d").txt"
done
for f in $(find "$src/tests/data" -name '*.html' 2>/dev/null); do
    n=$((n + 1)); cp "$f" "$out/html/seed-$n.html"
done
for f in "$src/lib/data/candor.xml" $(find "$src/tests/data" -name '*.xml' 2>/dev/null); do
    n=$((n + 1)); cp "$f" "$out/config/seed-$n.xml"
done
for t in message html triage check config ack lmtpd train; do
    printf '%s: %s seeds\n' "$t" "$(ls "$out/$t" | wc -l)"
done
