#!/usr/bin/env python3
"""tests/bench/parse-bench.py [BUILDDIR] [--count N] [--runs R] [--corpus DIR]

`candor parse` against Python's `email` package (policy default, preferred
body extracted: tests/bench/parse-python.py) over the same gen-corpus
maildir (../shared/tools/gen-corpus --count 10000 --seed 1), in the same run,
interleaved (candor, python, candor, python, ...), median of R runs (3).

Reports for each: messages/s and MB/s by wall-clock time and by CPU time
(user+sys: the machine is shared, so CPU time is the steadier figure), and
peak RSS (GNU time's maximum resident set size). Then the memory check:
candor's peak RSS on the first 1,000 messages and on all of them must be
within 25% (it streams: one message at a time).

Target: candor at least 30 times Python's rate. Exit status 1 if the target
or the memory check is missed, 2 on a usage or setup problem.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent
SHARED = Path(os.environ.get("CANDOR_SHARED", SOURCE.parent / "shared"))


def timed(cmd, stdout=subprocess.DEVNULL):
    """Run CMD under /usr/bin/time; return (wall s, cpu s, peak RSS KB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        r = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", tf.name, *cmd],
                           stdout=stdout, stderr=subprocess.PIPE, check=False)
        wall = time.perf_counter() - t0
        if r.returncode not in (0, 1):
            sys.exit("bench: %s failed (%d): %s" % (cmd[0], r.returncode,
                                                   r.stderr.decode(errors="replace")[-500:]))
        user, sys_, rss = tf.read().split()[-3:]
    return wall, float(user) + float(sys_), int(rss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--corpus", help="an existing gen-corpus maildir (read only)")
    a = ap.parse_args()
    build = Path(a.build) if os.path.isabs(a.build) else SOURCE / a.build
    candor = build / "examples" / "candor"
    if not candor.exists() or not Path("/usr/bin/time").exists():
        print("parse-bench: needs %s (meson compile) and /usr/bin/time" % candor)
        return 2
    tmp = tempfile.TemporaryDirectory(prefix="candor-parse-bench-")
    corpus = Path(a.corpus) if a.corpus else Path(tmp.name) / "maildir"
    if not a.corpus:
        subprocess.run([sys.executable, str(SHARED / "tools" / "gen-corpus"), "--count", str(a.count),
                        "--seed", "1", "--out", str(corpus), "--quiet"], check=True)
    files = sorted(str(p) for p in corpus.glob("*/*") if p.is_file())
    nbytes = sum(os.path.getsize(f) for f in files)
    listfile = Path(tmp.name) / "list"
    listfile.write_text("\n".join(files) + "\n", encoding="utf-8")
    small = files[:1000]

    cmd_c = [str(candor), "parse", *files]
    cmd_p = [sys.executable, str(HERE / "parse-python.py"), str(listfile)]
    print("corpus: %d messages, %.1f MB (%s)" % (len(files), nbytes / 1e6, corpus))
    print("load average at start: %.2f %.2f %.2f" % os.getloadavg())
    res = {"candor": [], "python": []}
    for i in range(a.runs):
        res["candor"].append(timed(cmd_c))
        res["python"].append(timed(cmd_p))
        print("run %d: candor %.2f s wall %.2f s cpu %d KB | python %.2f s wall %.2f s cpu %d KB"
              % (i + 1, *res["candor"][-1], *res["python"][-1]), flush=True)

    def med(name, k):
        return statistics.median(r[k] for r in res[name])

    print("\n%-8s %12s %10s %12s %10s %10s" % ("", "msg/s wall", "MB/s wall", "msg/s cpu", "MB/s cpu",
                                               "peak RSS"))
    rate = {}
    for name in ("candor", "python"):
        w, c, m = med(name, 0), med(name, 1), med(name, 2)
        rate[name] = (len(files) / w, len(files) / c)
        print("%-8s %12.0f %10.1f %12.0f %10.1f %7.1f MB" % (
            name, len(files) / w, nbytes / 1e6 / w, len(files) / c, nbytes / 1e6 / c, m / 1024))
    ratio_wall = rate["candor"][0] / rate["python"][0]
    ratio_cpu = rate["candor"][1] / rate["python"][1]
    print("candor/python: %.1fx (wall), %.1fx (cpu)   target >= 30x" % (ratio_wall, ratio_cpu))

    # memory flat in the number of messages
    rss_small = statistics.median(timed([str(candor), "parse", *small])[2] for _ in range(a.runs))
    rss_all = med("candor", 2)
    flat = rss_all <= rss_small * 1.25
    print("candor peak RSS: %.1f MB for %d messages, %.1f MB for %d: %s" % (
        rss_small / 1024, len(small), rss_all / 1024, len(files), "flat" if flat else "GROWS"))
    print("load average at end: %.2f %.2f %.2f" % os.getloadavg())
    ok = ratio_cpu >= 30 and ratio_wall >= 30 and flat
    print("verdict: %s" % ("target met" if ok else "target MISSED"))
    tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
