#!/usr/bin/env python3
"""tests/bench/bench-python.py -- the Python bindings against the C CLI and
the pure-Python baseline, in the same run, over the same gen-corpus maildirs.

    tests/bench/bench-python.py [--build build] [--counts 2000 10000]
                                [--rounds 5] [--base-rounds 3] [--python PY]

Commands, over each maildir (gen-corpus --count N --seed 1):

  cli-jN     candor triage --maildir DIR --jobs N             (C; N = 1, 2)
  python-jN  PY -m candor triage --maildir DIR --jobs N       (the Python API:
             interpreter start-up, import, ctypes calls, a frozen dataclass
             per message (json.loads of the library's JSON), output; N
             threads share one candor.Context)
  baseline   PY ../shared/tools/py-triage-baseline DIR        (stdlib email + regexes)

The runs are interleaved -- round after round, each round running every
command once, in a rotated order -- so that the load of a shared machine
falls on all commands alike (hyperfine runs each command's runs back to
back, which on a busy machine compares different moments). One untimed
warm-up round first. Reported: the median wall time and the median CPU time
(user + system, from wait4) of each command. The baseline is slow, so it
runs in the first --base-rounds rounds only.

Targets (issue 10), on the wall-clock medians: python-jN at most 1.25 x
cli-jN, and baseline at least 8 x python-j1 (python-j2 shown too). Exit
status 1 when a target is missed. PY defaults to Debian's /usr/bin/python3
(the platform the package is installed on) when present, else python3.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
NOW = "2026-11-24T12:00:00Z"


def run_once(argv: List[str], env: Dict[str, str]) -> tuple:
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        p = subprocess.Popen(argv, stdout=null, stderr=subprocess.PIPE, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        err = p.stderr.read() if p.stderr else b""
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode not in (0, 1):
        raise SystemExit("bench-python: %s exited %d: %s"
                         % (" ".join(argv[:3]), p.returncode, err.decode(errors="replace")[-500:]))
    return wall, ru.ru_utime + ru.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--counts", type=int, nargs="+", default=[2000, 10000])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--base-rounds", type=int, default=3)
    ap.add_argument("--python", default="/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK)
                    else "python3")
    ap.add_argument("--keep", action="store_true", help="keep the corpora")
    a = ap.parse_args()

    build = a.build if os.path.isabs(a.build) else os.path.join(SOURCE, a.build)
    shared = os.environ.get("CANDOR_SHARED") or os.path.join(SOURCE, "..", "shared")
    cli = os.path.join(build, "examples", "candor")
    lib = os.path.join(build, "lib", "libcandor.so")
    if not (os.access(cli, os.X_OK) and os.path.exists(lib)):
        print("bench-python: build first (meson compile -C %s)" % a.build)
        return 2
    py = a.python
    env = dict(os.environ)
    env["CANDOR_LIBRARY"] = lib
    env["PYTHONPATH"] = os.path.join(SOURCE, "bindings", "python")
    work = tempfile.mkdtemp(prefix="candor-bench-py.")
    state = os.path.join(work, "state.db")   # absent: triage reads an empty state
    pyver = subprocess.run([py, "--version"], stdout=subprocess.PIPE, text=True).stdout.strip()
    print("bench-python: %d cores, load %.1f, %s (%s), rounds=%d, baseline rounds=%d"
          % (os.cpu_count() or 0, os.getloadavg()[0], pyver, py, a.rounds, a.base_rounds))
    ok = True
    try:
        for n in a.counts:
            d = os.path.join(work, "corpus-%d" % n)
            subprocess.run([py, os.path.join(shared, "tools", "gen-corpus"), "--count", str(n),
                            "--seed", "1", "--out", d], check=True, stdout=subprocess.DEVNULL)
            common = ["triage", "--state", state, "--now", NOW, "--maildir", d]
            cmds = {
                "cli-j1": [cli, *common, "--jobs", "1"],
                "python-j1": [py, "-m", "candor", *common, "--jobs", "1"],
                "cli-j2": [cli, *common, "--jobs", "2"],
                "python-j2": [py, "-m", "candor", *common, "--jobs", "2"],
                "baseline": [py, os.path.join(shared, "tools", "py-triage-baseline"), d],
            }
            # Same output first, else the timing means nothing.
            outs = [subprocess.run(cmds[k], env=env, stdout=subprocess.PIPE).stdout
                    for k in ("cli-j1", "python-j1", "python-j2")]
            lines = outs[0].count(b"\n")
            same = outs[0] == outs[1] == outs[2]
            print("\n%d messages: %d JSON lines from the CLI; python-j1 and -j2 %s"
                  % (n, lines, "print the same bytes" if same else "DIFFER"))
            ok &= same and lines == n
            wall: Dict[str, List[float]] = {k: [] for k in cmds}
            cpu: Dict[str, List[float]] = {k: [] for k in cmds}
            fast = [k for k in cmds if k != "baseline"]
            for k in fast:                       # warm-up round, untimed
                run_once(cmds[k], env)
            for r in range(a.rounds):
                order = fast[r % len(fast):] + fast[:r % len(fast)]
                if r < a.base_rounds:
                    order.insert(r % (len(order) + 1), "baseline")
                for k in order:
                    w, c = run_once(cmds[k], env)
                    wall[k].append(w)
                    cpu[k].append(c)
            med = {k: statistics.median(v) for k, v in wall.items()}
            mcpu = {k: statistics.median(v) for k, v in cpu.items()}
            print("  %-10s %5s %10s %10s %10s %10s" % ("command", "runs", "wall med", "min",
                                                      "msgs/s", "cpu med"))
            for k in cmds:
                print("  %-10s %5d %10.3f %10.3f %10.0f %10.3f"
                      % (k, len(wall[k]), med[k], min(wall[k]), n / med[k], mcpu[k]))
            for j in ("j1", "j2"):
                r = med["python-" + j] / med["cli-" + j]
                good = r <= 1.25
                ok &= good
                print("  python-%s / cli-%s = %.3f (target <= 1.25): %-6s  cpu: %.3f"
                      % (j, j, r, "ok" if good else "MISSED",
                         mcpu["python-" + j] / mcpu["cli-" + j]))
            for j in ("j1", "j2"):
                r = med["baseline"] / med["python-" + j]
                good = r >= 8
                if j == "j1":
                    ok &= good
                print("  baseline / python-%s = %.1f x (target >= 8%s): %-6s  cpu: %.1f x"
                      % (j, r, "" if j == "j1" else ", shown", "ok" if good else "MISSED",
                         mcpu["baseline"] / mcpu["python-" + j]))
            print("  (the C CLI alone: baseline / cli-j1 = %.1f x wall, %.1f x cpu)"
                  % (med["baseline"] / med["cli-j1"], mcpu["baseline"] / mcpu["cli-j1"]))
            if not a.keep:
                shutil.rmtree(d, ignore_errors=True)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\nbench-python: %s" % ("all targets met" if ok else "some target MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
