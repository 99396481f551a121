#!/bin/sh
# tests/bench/bench-python.sh [BUILDDIR [COUNT...]]
#
# The Python bindings against the C CLI and the pure-Python baseline, in the
# same run, over the same gen-corpus maildirs (default 2,000 and 10,000
# messages, seed 1), median of several hyperfine runs each:
#
#   cli-jN     candor triage --maildir DIR --jobs N            (C, N = 1, 2)
#   python-jN  python3 -m candor triage --maildir DIR --jobs N (the Python API:
#              interpreter start-up, import, ctypes calls, dataclasses and
#              json.dumps of every result included; N threads share one
#              candor.Context)
#   baseline   ../shared/tools/py-triage-baseline DIR          (stdlib email + regexes)
#
# Targets (issue 10): python-jN at most 1.25 x cli-jN, and baseline at least
# 8 x python-j1. Prints a table and one verdict line per target; exits 1 if
# a target is missed. The wall-clock medians decide; the table also shows the
# mean CPU time (user + system) of each command, which a loaded machine
# disturbs less. Environment: RUNS (default 5), WARMUP (1), KEEP=1 to keep
# the corpora, PYTHON (default: Debian's /usr/bin/python3 when present -- the
# platform the package is installed on -- else python3).
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
[ $# -gt 0 ] && shift
counts=${*:-2000 10000}
case $build in /*) ;; *) build=$here/$build ;; esac
shared=${CANDOR_SHARED:-$here/../shared}
bin=$build/examples/candor
lib=$build/lib/libcandor.so
if [ -z "${PYTHON:-}" ] && [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; fi
py=${PYTHON:-python3}
runs=${RUNS:-5}
warmup=${WARMUP:-1}
command -v hyperfine >/dev/null || { echo "bench-python: hyperfine is needed"; exit 2; }
[ -x "$bin" ] && [ -e "$lib" ] || { echo "bench-python: build first (meson compile -C $build)"; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/candor-bench-py.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
export CANDOR_LIBRARY="$lib" PYTHONPATH="$here/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
state="$work/state.db"        # absent: triage reads an empty state
now=2026-11-24T12:00:00Z

echo "bench-python: $(nproc) cores, $("$py" --version 2>&1), $(hyperfine --version), runs=$runs"
status=0
for n in $counts; do
    dir="$work/corpus-$n"
    "$py" "$shared/tools/gen-corpus" --count "$n" --seed 1 --out "$dir" >/dev/null
    # Parity first: the two tools print the same objects (else timing means nothing).
    "$bin" triage --state "$state" --now "$now" --maildir "$dir" --jobs 1 >"$work/cli.jsonl" || true
    "$py" -m candor triage --state "$state" --now "$now" --maildir "$dir" >"$work/py.jsonl" || true
    "$py" - "$work/cli.jsonl" "$work/py.jsonl" <<'EOF'
import json, sys
a = sorted((json.loads(l) for l in open(sys.argv[1])), key=lambda o: o["file"])
b = sorted((json.loads(l) for l in open(sys.argv[2])), key=lambda o: o["file"])
same = len(a) == len(b) and all(x["file"] == y["file"] and x["intent"] == y["intent"]
                                and abs(x["confidence"] - y["confidence"]) < 1e-6
                                for x, y in zip(a, b))
print("bench-python: %d CLI objects, %d Python objects, %s" % (len(a), len(b),
      "same results" if same else "RESULTS DIFFER"))
EOF
    hyperfine -N --style basic --warmup "$warmup" --runs "$runs" \
        --export-json "$work/h-$n.json" \
        -n cli-j1 "$bin triage --state $state --now $now --maildir $dir --jobs 1" \
        -n python-j1 "$py -m candor triage --state $state --now $now --maildir $dir --jobs 1" \
        -n cli-j2 "$bin triage --state $state --now $now --maildir $dir --jobs 2" \
        -n python-j2 "$py -m candor triage --state $state --now $now --maildir $dir --jobs 2" \
        -n baseline "$py $shared/tools/py-triage-baseline $dir" >"$work/h-$n.log" 2>&1 \
        || { cat "$work/h-$n.log"; exit 1; }
    "$py" - "$work/h-$n.json" "$n" <<'EOF' || status=1
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
n = int(sys.argv[2])
med = {k: r["median"] for k, r in res.items()}
print("\n%d messages (median of %d runs, seconds)" % (n, len(res["cli-j1"]["times"])))
cpu = {k: r["user"] + r["system"] for k, r in res.items()}
print("  %-10s %9s %9s %10s %9s" % ("command", "median", "stddev", "msgs/s", "cpu"))
for k in ("cli-j1", "python-j1", "cli-j2", "python-j2", "baseline"):
    print("  %-10s %9.3f %9.3f %10.0f %9.3f" % (k, med[k], res[k]["stddev"] or 0, n / med[k], cpu[k]))
ok = True
for j in ("j1", "j2"):
    r = med["python-" + j] / med["cli-" + j]
    good = r <= 1.25
    ok &= good
    print("  python-%s / cli-%s = %.3f (target <= 1.25): %s   [cpu time %.3f]"
          % (j, j, r, "ok" if good else "MISSED", cpu["python-" + j] / cpu["cli-" + j]))
r = med["baseline"] / med["python-j1"]
good = r >= 8
ok &= good
print("  baseline / python-j1 = %.1f x (target >= 8): %s   [cpu time %.1f x]"
      % (r, "ok" if good else "MISSED", cpu["baseline"] / cpu["python-j1"]))
sys.exit(0 if ok else 1)
EOF
done
exit $status
