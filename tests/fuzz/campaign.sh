#!/bin/sh
# tests/fuzz/campaign.sh BUILD-FUZZ OUT [TARGET...] — the long campaign
# (tests/fuzz/README): the targets one after another (one core), each to
# 2 million executions or FUZZ_SECONDS (default 1800), niced, then its
# corpus merged (minimised) into OUT/merged/TARGET, ready to replace
# tests/fuzz/corpus/TARGET. Results: OUT/TARGET.log (libFuzzer's final
# stats), crashes as OUT/TARGET/crash-* (also leak-*, timeout-*), and one
# line a target in OUT/summary. The binaries and lib/data are copied into
# OUT first, so rebuilding or editing the tree meanwhile changes nothing.
set -eu
build=${1:?usage: campaign.sh BUILD-FUZZ OUT [TARGET...]}
out=${2:?usage: campaign.sh BUILD-FUZZ OUT [TARGET...]}
shift 2
[ $# -gt 0 ] || set -- message html triage check ack config lmtpd train
src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${FUZZ_SECONDS:-1800}
runs=${FUZZ_RUNS:-2000000}
mkdir -p "$out/bin"
cp "$build"/tests/fuzz/fuzz-* "$out/bin/" 2>/dev/null || true
rm -rf "$out/bin"/*.p "$out/data"
cp -r "$src/lib/data" "$out/data"
export CANDOR_FUZZ_DATADIR="$out/data"
[ -d "$out/seeds" ] || "$src/tests/fuzz/make-seeds.sh" "$out/seeds" >/dev/null
for t in "$@"; do
    case $t in
        message|triage|check|ack|train) dict=mime.dict ;;
        lmtpd) dict=lmtp.dict ;;
        *) dict=$t.dict ;;
    esac
    # candor-lmtpd logs to stderr by design
    mask=0; [ "$t" = lmtpd ] && mask=2
    mkdir -p "$out/$t/corpus"
    nice -n 19 "$out/bin/fuzz-$t" -dict="$src/tests/fuzz/$dict" -timeout=30 \
        -rss_limit_mb=2048 -detect_leaks=1 -max_len=262144 -runs="$runs" \
        -max_total_time="$secs" -print_final_stats=1 -close_fd_mask=$mask \
        -artifact_prefix="$out/$t/" "$out/$t/corpus" "$out/seeds/$t" \
        >"$out/$t.log" 2>&1 || true
    rm -rf "$out/merged/$t"; mkdir -p "$out/merged/$t"
    nice -n 19 "$out/bin/fuzz-$t" -merge=1 -max_len=2048 -timeout=30 -rss_limit_mb=2048 \
        -close_fd_mask=$mask "$out/merged/$t" "$src/tests/fuzz/corpus/$t" "$out/$t/corpus" \
        >"$out/$t.merge.log" 2>&1 || true
    last=$(grep -E '^#[0-9]+.*(DONE|cov:)' "$out/$t.log" | tail -n 1)
    printf '%s %s execs=%s secs=%s cov=%s ft=%s crashes=%s merged=%s\n' \
        "$(date -u +%FT%TZ)" "$t" \
        "$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log")" \
        "$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$out/$t.log")" \
        "$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')" \
        "$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')" \
        "$(ls "$out/$t" | grep -c -E '^(crash|leak|timeout|oom|slow-unit)-' || true)" \
        "$(ls "$out/merged/$t" | wc -l)" >>"$out/summary"
done
cat "$out/summary"
