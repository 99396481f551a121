#!/usr/bin/env python3
"""What each part of candor-lmtpd's work costs behind Postfix: lmtpd-bench.py
run with the daemon doing all of its work, then leaving parts out, in turn,
in the same session, and the median ratio to Postfix's own virtual(8) of
each level.

    sudo python3 tests/bench/lmtpd-ablation.py [--runs 3] [--build DIR]
                                               [-- lmtpd-bench.py options]

Levels (the environment's LMTPD_ABLATION, read only by a daemon built with
meson -Dlmtpd_ablation=true, which this script makes in DIR, by default a
temporary directory):
  full       everything: parse, triage, redelivery lookup, the decision and
             the delivery-log row in one synchronous group commit, the
             durable maildir file, the delivered=1 mark
  no-triage  no parsing, triage or decision; the redelivery lookup, the
             delivery-log rows (in the synchronous group commit) and the
             durable file stay
  no-flush   as no-triage, but each delivery-log row is written on its own
             without waiting for the disk (what the state costs without its
             flush)
  file-only  no state either: the LMTP session and the durable maildir file
             (tmp/, fsync, rename into new/, fsync of new/) and nothing else
Each run goes through the four levels in this order; the lmtpd-bench.py
options default to --messages 1000 --rounds 3 --sink."""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
source = os.path.abspath(os.path.join(here, "..", ".."))
LEVELS = ("full", "no-triage", "no-flush", "file-only")

ap = argparse.ArgumentParser(usage=__doc__.split("\n\n")[1].strip())
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--build", help="where to build the ablation flavour (kept); default: a temporary"
                " directory, removed at the end")
ap.add_argument("--pause", type=float, default=10, help="seconds between benchmark runs (default 10)")
ap.add_argument("bench", nargs="*", help="lmtpd-bench.py options (after --)")
a = ap.parse_args()
bench_args = a.bench or ["--messages", "1000", "--rounds", "3", "--sink"]

tmp = None
build = a.build
if not build:
    tmp = tempfile.mkdtemp(prefix="candor-ablation-")
    build = os.path.join(tmp, "build")
if not os.path.exists(os.path.join(build, "build.ninja")):
    subprocess.run(["meson", "setup", build, source, "-Dlmtpd_ablation=true", "-Dtests=false",
                    "--buildtype=debugoptimized"], check=True, stdout=subprocess.DEVNULL)
else:
    subprocess.run(["meson", "configure", build, "-Dlmtpd_ablation=true"], check=True)
subprocess.run(["meson", "compile", "-C", build], check=True, stdout=subprocess.DEVNULL)

PATTERNS = {
    "ratio": r"median of the per-round ratios: *(\d+)%",
    "sink": r"smtp-sink \(no delivery work\): median [0-9.]+ msg/s, (\d+)%",
    "cpu": r"candor-lmtpd path ([0-9.]+) ms, virtual path ([0-9.]+) ms",
    "daemon": r"user ([0-9.]+) ms, system ([0-9.]+) ms",
}

results = {lv: [] for lv in LEVELS}
try:
    for run in range(1, a.runs + 1):
        for lv in LEVELS:
            env = dict(os.environ, CANDOR_BUILD=build)
            env.pop("LMTPD_ABLATION", None)
            if lv != "full":
                env["LMTPD_ABLATION"] = lv
            subprocess.run(["sync"])
            time.sleep(a.pause)
            p = subprocess.run([sys.executable, os.path.join(here, "lmtpd-bench.py")] + bench_args,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            out = p.stdout
            if p.returncode != 0:
                sys.stderr.write(out)
                sys.exit("lmtpd-ablation: lmtpd-bench.py failed (%s, run %d)" % (lv, run))
            r = {}
            for k, pat in PATTERNS.items():
                m = re.search(pat, out)
                r[k] = m.groups() if m else None
            r["rounds"] = re.findall(r"^round \d+ .*ratio (\d+)%", out, re.M)
            results[lv].append(r)
            print("run %d %-9s  ratio %s%% (rounds %s)  sink %s%%  pipeline CPU/msg %s vs %s ms"
                  "  daemon CPU/msg user %s, system %s ms" % (
                      run, lv, r["ratio"][0] if r["ratio"] else "?", "/".join(r["rounds"]),
                      r["sink"][0] if r["sink"] else "-",
                      *(r["cpu"] or ("?", "?")), *(r["daemon"] or ("?", "?"))), flush=True)
finally:
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)

print()
print("level      median ratio to virtual(8)   runs          median daemon CPU/msg (user+system)")
for lv in LEVELS:
    rs = [int(r["ratio"][0]) for r in results[lv] if r["ratio"]]
    ds = [float(r["daemon"][0]) + float(r["daemon"][1]) for r in results[lv] if r["daemon"]]
    print("%-10s %3.0f%%                         %-13s %.2f ms" % (
        lv, statistics.median(rs) if rs else float("nan"), "/".join("%d%%" % x for x in rs),
        statistics.median(ds) if ds else float("nan")))
