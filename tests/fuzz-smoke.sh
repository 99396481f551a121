#!/bin/sh
# tests/fuzz-smoke.sh — a short libFuzzer run of every target (issue 6).
#
# Configures its own build directory ($CANDOR_BUILD/fuzz-smoke) with
# CC=clang -Dfuzz=true, builds the targets, then fuzzes each one for
# FUZZ_SMOKE_SECONDS (default 3) from its kept corpus (tests/fuzz/corpus/T)
# and its regression inputs (tests/data/fuzz/T), with its dictionary.
# A crash, hang (-timeout), leak or broken invariant fails the target; the
# input is left in the scratch directory named in the output.
# Skips (exit 77) with a clear message when clang or its libFuzzer runtime
# is missing (Debian: apt-get install clang libclang-rt-14-dev).
# The long campaign is in tests/fuzz/README.
set -u
src=${CANDOR_SOURCE:-$(cd "$(dirname "$0")/.." && pwd)}
build=${CANDOR_BUILD:-$src/build}
secs=${FUZZ_SMOKE_SECONDS:-3}
targets=${FUZZ_SMOKE_TARGETS:-"message html triage check ack config lmtpd train"}

skip() { echo "SKIP: $*"; exit 77; }
command -v clang >/dev/null 2>&1 || skip "clang not found (Debian: apt-get install clang libclang-rt-14-dev)"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/candor-fuzz-smoke-XXXXXX") || exit 2
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$scratch/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined "$scratch/probe.c" -o "$scratch/probe" >/dev/null 2>&1; then
    rm -rf "$scratch"
    skip "clang cannot link libFuzzer (Debian: apt-get install libclang-rt-14-dev)"
fi

fb=$build/fuzz-smoke
if [ ! -f "$fb/build.ninja" ]; then
    CC=clang meson setup "$fb" "$src" -Dfuzz=true -Dtests=false >"$scratch/setup.log" 2>&1 ||
        { cat "$scratch/setup.log"; echo "fuzz build: meson setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! meson compile -C "$fb" >"$scratch/compile.log" 2>&1; then
    tail -n 40 "$scratch/compile.log"
    echo "fuzz build: compile failed"; echo "0 passed, 1 failed"; exit 1
fi

pass=0 fail=0
for t in $targets; do
    exe=$fb/tests/fuzz/fuzz-$t
    case $t in
        message|triage|check|ack|train) dict=mime.dict ;;
        lmtpd) dict=lmtp.dict ;;
        *) dict=$t.dict ;;
    esac
    # candor-lmtpd logs to stderr by design
    mask=0; [ "$t" = lmtpd ] && mask=2
    mkdir -p "$scratch/$t/new"
    set -- "$scratch/$t/new" "$src/tests/fuzz/corpus/$t"
    [ -d "$src/tests/data/fuzz/$t" ] && set -- "$@" "$src/tests/data/fuzz/$t"
    start=$(date +%s)
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -dict="$src/tests/fuzz/$dict" -artifact_prefix="$scratch/$t/" \
        -print_final_stats=1 -close_fd_mask=$mask "$@" >"$scratch/$t/log" 2>&1
    rc=$?
    end=$(date +%s)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$t/log")
    cov=$(grep -E '^#[0-9]+' "$scratch/$t/log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+')
    if [ $rc = 0 ]; then
        pass=$((pass + 1))
        echo "ok   fuzz-$t: ${runs:-?} runs in $((end - start)) s, ${cov:-no coverage line}"
    else
        fail=$((fail + 1))
        echo "FAIL fuzz-$t (exit $rc); log and input in $scratch/$t/"
        grep -E 'ERROR|SUMMARY|invariant|runtime error' "$scratch/$t/log" | head -n 8
    fi
done
[ $fail = 0 ] && rm -rf "$scratch"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
