#!/bin/sh
# tests/bench/bench-maildir.sh [BUILDDIR [COUNT]]
#
# `candor triage --maildir` (issue 9) over a gen-corpus maildir (default
# 10,000 messages, seed 1), every comparison in the same run, median of
# several hyperfine runs:
#
#   triage-j1    candor triage --maildir DIR --jobs 1 > /dev/null
#   triage-j2    candor triage --maildir DIR --jobs 2 > /dev/null
#   bogofilter   bogofilter -B DIR/new DIR/cur (bulk mode, a small wordlist
#                trained first; its exit status is its verdict, so ignored),
#                a classifier every mail admin knows
#   headers-j2   candor triage --maildir COPY --apply headers --jobs 2
#                (each run on a fresh `cp -a` copy: prepare step, not timed)
#   cp-a         cp -a DIR COPY2 (the plain copy baseline for rewriting
#                every message)
#
# Then peak memory (GNU time %M) of --jobs 2 on the first 1,000, 5,000 and
# COUNT messages of the same corpus: it must not grow with the maildir
# (bounded reorder window; only the sorted name list grows, ~60 B/message).
#
# Target: triage-j2 at least 1.7 x faster than triage-j1 on two cores,
# judged on interleaved j1/j2/j1 triplets (PAIRS of them, default 5).
# Prints a table and the verdicts; exit 1 if the target is missed.
# Environment: RUNS (default 5), WARMUP (1), KEEP=1 keeps the corpus,
# CORPUS=DIR reuses an existing gen-corpus maildir (read only).
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
count=${2:-10000}
case $build in /*) ;; *) build=$here/$build ;; esac
shared=${CANDOR_SHARED:-$here/../shared}
bin=$build/examples/candor
runs=${RUNS:-5}
warmup=${WARMUP:-1}
addr="--address support@shop.example"
for p in hyperfine bogofilter /usr/bin/time; do
    command -v "$p" >/dev/null || { echo "bench-maildir: $p is needed"; exit 2; }
done
[ -x "$bin" ] || { echo "bench-maildir: build first (meson compile -C $build)"; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/candor-bench-md.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
if [ -n "${CORPUS:-}" ]; then
    corpus=$CORPUS
else
    corpus=$work/corpus
    "$shared/tools/gen-corpus" --count "$count" --seed 1 --out "$corpus" | head -1
fi
n=$(find "$corpus/new" "$corpus/cur" -type f | wc -l)
echo "bench-maildir: $n messages ($(du -sh "$corpus" | cut -f1)), $(nproc) cores," \
     "$(hyperfine --version), runs=$runs, load $(cut -d' ' -f1-3 /proc/loadavg)"

# a small bogofilter wordlist: 200 messages as ham, the bounces and
# newsletters of new/ as spam (the point is its speed, not its verdicts)
bogo=$work/bogo
mkdir -p "$bogo"
find "$corpus/cur" -type f | head -200 | xargs bogofilter -d "$bogo" -B -n >/dev/null 2>&1 || true
find "$corpus/new" -type f | head -100 | xargs bogofilter -d "$bogo" -B -s >/dev/null 2>&1 || true

hyperfine --style basic --warmup "$warmup" --runs "$runs" --export-json "$work/triage.json" \
    -n triage-j1 "$bin triage --maildir $corpus --jobs 1 $addr > /dev/null" \
    -n triage-j2 "$bin triage --maildir $corpus --jobs 2 $addr > /dev/null" \
    -n bogofilter "bogofilter -d $bogo -B $corpus/new $corpus/cur > /dev/null || true"

# On a shared machine the load drifts between hyperfine's blocks of runs:
# also time interleaved triplets j1, j2, j1 and take the median of the
# per-triplet ratios (mean of the two j1 over the j2 between them).
python3 -c '
import statistics, subprocess, sys, time
b, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def run(j):
    t = time.monotonic()
    subprocess.run([b, "triage", "--maildir", d, "--jobs", str(j), "--address",
                    "support@shop.example"], stdout=subprocess.DEVNULL, check=True)
    return time.monotonic() - t
r = []
for i in range(n):
    a, m, c = run(1), run(2), run(1)
    r.append((a + c) / 2 / m)
print(f"{statistics.median(r):.2f} {min(r):.2f} {max(r):.2f}")
' "$bin" "$corpus" "${PAIRS:-5}" > "$work/paired.txt"

hyperfine --style basic --runs "$runs" --export-json "$work/apply.json" \
    --prepare "rm -rf $work/a $work/b && cp -a $corpus $work/a && sync" \
    -n headers-j2 "$bin triage --maildir $work/a --apply headers --jobs 2 $addr > /dev/null" \
    -n cp-a "cp -a $corpus $work/b"
rm -rf "$work/a" "$work/b"

# peak memory against maildir size: the first K messages (by name) of the
# same corpus, hard-linked into smaller maildirs
mem=""
for k in 1000 5000 "$n"; do
    [ "$k" -le "$n" ] || continue
    d=$work/m$k
    python3 -c '
import os, shutil, sys
src, dst, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = sorted((n, s) for s in ("new", "cur") for n in os.listdir(os.path.join(src, s)))[:k]
for s in ("new", "cur", "tmp"):
    os.makedirs(os.path.join(dst, s))
for n, s in files:
    a, b = os.path.join(src, s, n), os.path.join(dst, s, n)
    try:
        os.link(a, b)
    except OSError:
        shutil.copy2(a, b)
' "$corpus" "$d" "$k"
    kb=$(/usr/bin/time -f %M "$bin" triage --maildir "$d" --jobs 2 $addr 2>&1 >/dev/null | tail -1)
    mem="$mem $k:$kb"
    rm -rf "$d"
done

python3 - "$work/triage.json" "$work/apply.json" "$n" "$mem" "$(cat "$work/paired.txt")" <<'EOF'
import json, sys
t = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
a = {r["command"]: r for r in json.load(open(sys.argv[2]))["results"]}
n = int(sys.argv[3])
mem = [x.split(":") for x in sys.argv[4].split()]
print(f"\n{'command':<12} {'median s':>9} {'min s':>8} {'max s':>8} {'msg/s':>8}")
for name, r in list(t.items()) + list(a.items()):
    print(f"{name:<12} {r['median']:9.2f} {r['min']:8.2f} {r['max']:8.2f} {n / r['median']:8.0f}")
sp = t["triage-j1"]["median"] / t["triage-j2"]["median"]
pm, plo, phi = map(float, sys.argv[5].split())
print(f"\n--jobs 2 vs --jobs 1: {sp:.2f} x from the medians above; interleaved j1/j2/j1 "
      f"triplets: median {pm:.2f} x (range {plo:.2f}-{phi:.2f}) (target >= 1.7)")
sp = pm
print(f"--jobs 2 vs bogofilter -B: {t['bogofilter']['median'] / t['triage-j2']['median']:.2f} x "
      "(above 1: candor faster)")
print(f"--apply headers vs cp -a: {a['headers-j2']['median'] / a['cp-a']['median']:.2f} x the time "
      "of a plain copy")
print("peak RSS, --jobs 2: " + ", ".join(f"{k} messages {int(kb) / 1024:.1f} MiB" for k, kb in mem))
ok = sp >= 1.7
print(f"{'PASS' if ok else 'MISS'}: --jobs 2 speed-up {sp:.2f} x")
sys.exit(0 if ok else 1)
EOF
