#!/usr/bin/env python3
"""tests/bench/bench-triage.py — triage speed, in one run, on one corpus.

Generates (or reuses) a maildir with ../shared/tools/gen-corpus (--seed 1)
and measures, each the median of --runs runs:
  1. the Python baseline ../shared/tools/py-triage-baseline (email package +
     ~60 regular expressions) on the maildir, alternating run by run with
  2. `candor triage --maildir DIR --jobs 1` (one core, like the baseline; the
     median of the per-pair ratios is printed too); then `--jobs 2`;
  3. bogofilter: trained on 1,000 messages as ham and 1,000 as spam, then
     `bogofilter -B` classifying the same maildir;
  4. peak memory (max RSS) of `candor triage --jobs 1` on 1/10 of the
     messages and on all of them (flat = the same);
  5. the rules doubled (every <rule> twice, under a new id) against the
     shipped configuration.
Wall-clock rates (messages/s) and CPU time (user+sys) per message are both
printed: on a shared machine the CPU time is the steadier figure.

Usage: tests/bench/bench-triage.py [--candor BIN] [--count 10000] [--runs 3]
                                   [--dir CACHE_DIR]
"""
import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run_once(cmd, env=None, stdout=subprocess.DEVNULL):
    """(wall, cpu) seconds of one run of CMD; cpu = user + sys."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode not in (0, 1):
        sys.stderr.write(p.stderr.decode("utf-8", "replace")[-2000:])
        raise SystemExit("%s failed (%d)" % (cmd[0], p.returncode))
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(cmd, runs, env=None, stdout=subprocess.DEVNULL):
    walls, cpus = [], []
    for _ in range(runs):
        w, c = run_once(cmd, env, stdout)
        walls.append(w)
        cpus.append(c)
    return statistics.median(walls), statistics.median(cpus)


def measure_pairs(cmd_a, cmd_b, runs):
    """CMD_A and CMD_B alternately, RUNS times each (a shared machine's
    load drifts: each pair sees about the same). Returns the medians of A
    and of B (wall, cpu) and the median of the per-pair ratios A/B."""
    a, b, rw, rc = [], [], [], []
    for _ in range(runs):
        x = run_once(cmd_a)
        y = run_once(cmd_b)
        a.append(x)
        b.append(y)
        rw.append(x[0] / y[0])
        rc.append(x[1] / y[1])
    med = lambda v, i: statistics.median(t[i] for t in v)
    return ((med(a, 0), med(a, 1)), (med(b, 0), med(b, 1)),
            (statistics.median(rw), statistics.median(rc)))


def peak_rss(cmd):
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    return int(p.stderr.decode().strip().splitlines()[-1])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--candor", default=os.environ.get("CANDOR_BIN", os.path.join(root, "build", "examples", "candor")))
    ap.add_argument("--shared", default=os.environ.get("CANDOR_SHARED", os.path.join(root, "..", "shared")))
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="keep the generated corpus here")
    a = ap.parse_args()

    work = a.dir or tempfile.mkdtemp(prefix="candor-bench-")
    md = os.path.join(work, "md-%d" % a.count)
    if not os.path.isdir(os.path.join(md, "cur")):
        subprocess.run([sys.executable, os.path.join(a.shared, "tools", "gen-corpus"), "--count",
                        str(a.count), "--seed", "1", "--out", md], check=True, stdout=subprocess.DEVNULL)
    files = sorted(os.path.join(md, d, f) for d in ("cur", "new") for f in os.listdir(os.path.join(md, d)))
    n = len(files)
    print("corpus: %d messages, %.0f MB, gen-corpus --seed 1" % (n, sum(os.path.getsize(f) for f in files) / 1e6))

    rows = []

    def row(name, wall, cpu):
        rows.append((name, wall, cpu))
        print("%-44s %8.0f msg/s  %7.3f ms CPU/msg  (%.1f s wall, %.1f s CPU)" % (
            name, n / wall, cpu * 1000 / n, wall, cpu), flush=True)

    # the baseline and --jobs 1 alternate, so that both see the same load
    py, c1, pair = measure_pairs([sys.executable, os.path.join(a.shared, "tools", "py-triage-baseline"), md],
                                 [a.candor, "triage", "--maildir", md, "--jobs", "1"], a.runs)
    row("py-triage-baseline", *py)
    row("candor triage --maildir --jobs 1", *c1)
    c2 = measure([a.candor, "triage", "--maildir", md, "--jobs", "2"], a.runs)
    row("candor triage --maildir --jobs 2", *c2)

    bog = None
    if shutil.which("bogofilter"):
        db = os.path.join(work, "bogodb")
        shutil.rmtree(db, ignore_errors=True)
        os.makedirs(db)
        subprocess.run(["bogofilter", "-d", db, "-n", "-B"] + files[:1000], check=True)
        subprocess.run(["bogofilter", "-d", db, "-s", "-B"] + files[1000:2000], check=True)
        bog = measure(["bogofilter", "-d", db, "-B", os.path.join(md, "cur"), os.path.join(md, "new")], a.runs)
        row("bogofilter -B (after training)", *bog)

    # peak memory on a tenth and on all of it
    tenth = os.path.join(work, "md-tenth")
    if not os.path.isdir(tenth):
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(tenth, d), exist_ok=True)
        for f in files[: max(1, n // 10)]:
            dst = os.path.join(tenth, os.path.basename(os.path.dirname(f)), os.path.basename(f))
            if not os.path.exists(dst):
                os.link(f, dst)
    rss_small = peak_rss([a.candor, "triage", "--maildir", tenth, "--jobs", "1"])
    rss_all = peak_rss([a.candor, "triage", "--maildir", md, "--jobs", "1"])
    print("peak memory (max RSS), --jobs 1: %d KB on %d messages, %d KB on %d" % (rss_small, n // 10, rss_all, n))

    # the rules doubled
    cfgdir = os.path.join(root, "lib", "data")
    with open(os.path.join(cfgdir, "candor.xml"), encoding="utf-8") as f:
        cfg = f.read()
    cfg = cfg.replace('<model path="model.txt"/>', '<model path="%s"/>' % os.path.join(cfgdir, "model.txt"))
    rules = re.findall(r"    <rule [^\n]*</rule>\n", cfg)
    copies = "".join(re.sub(r'id="([^"]+)"', r'id="\1-copy"', r) for r in rules)
    doubled = cfg.replace("  </rules>", copies + "  </rules>")
    dpath = os.path.join(work, "doubled.xml")
    with open(dpath, "w", encoding="utf-8") as f:
        f.write(doubled)
    d1 = measure([a.candor, "triage", "--config", dpath, "--maildir", md, "--jobs", "1"], a.runs)
    row("candor, %d rules doubled to %d (--jobs 1)" % (len(rules), 2 * len(rules)), *d1)

    print()
    print("candor --jobs 1 vs Python baseline: %.1fx the rate (wall), %.1fx less CPU" % (py[0] / c1[0], py[1] / c1[1]))
    print("  (median of the %d alternating pairs' ratios: %.1fx wall, %.1fx CPU)" % (a.runs, pair[0], pair[1]))
    print("candor --jobs 2 vs Python baseline: %.1fx the rate (wall)" % (py[0] / c2[0]))
    if bog:
        print("candor --jobs 1 vs bogofilter -B:   %.1fx the rate (wall), %.1fx less CPU" % (bog[0] / c1[0], bog[1] / c1[1]))
        print("candor --jobs 2 vs bogofilter -B:   %.1fx the rate (wall)" % (bog[0] / c2[0]))
    print("rules doubled: +%.0f%% CPU time, +%.0f%% wall time" % ((d1[1] / c1[1] - 1) * 100, (d1[0] / c1[0] - 1) * 100))
    if not a.dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
