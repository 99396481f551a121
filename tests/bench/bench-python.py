#!/usr/bin/env python3
"""tests/bench/bench-python.py -- the Python bindings against the C CLI and
the pure-Python baseline, in the same run, over the same gen-corpus maildirs.

    tests/bench/bench-python.py [--build build] [--counts 2000 10000]
                                [--rounds 5] [--base-rounds 3] [--python PY]

The package is first installed the way a user installs it -- PY -m pip
install --no-build-isolation --no-index --target DIR (a copy of
bindings/python), bytecode compiled -- and run from there, with
CANDOR_LIBRARY pointing at the build's library. (Run from the source tree,
with PYTHONDONTWRITEBYTECODE set, every start would compile the package.)

Commands, over each maildir (gen-corpus --count N --seed 1):

  cli        candor triage --maildir DIR                (C, its default
             number of worker threads: the CPUs it may run on)
  python     PY -m candor triage --maildir DIR          (the Python API with
             the same default: that many threads share one candor.Context;
             interpreter start-up, import, library loading, ctypes calls, a
             Triage dataclass per message (its JSON decoded lazily, on first
             field access -- here never: the line printed is the library's
             JSON), output)
  cli-j1     the same with --jobs 1
  python-j1  the same with --jobs 1
  baseline   PY ../shared/tools/py-triage-baseline DIR  (stdlib email +
             regexes, one thread)

The runs are interleaved -- round after round, each round running every
command once, in a rotated order -- so that the load of a shared machine
falls on all commands alike (hyperfine runs each command's runs back to
back, which on a busy machine compares different moments). One untimed
warm-up round first. Reported: the median wall time and the median CPU time
(user + system, from wait4) of each command, and the load average at the
start and the end. The baseline is slow, so it runs in the first
--base-rounds rounds only.

Targets (issue 10), on the wall-clock medians of the same run: python at
most 1.25 x cli (both with the CLI's default threads, and both with one),
and baseline at least 8 x python. Exit status 1 when a target is missed.
PY defaults to Debian's /usr/bin/python3 (the platform the package is
installed on) when present, else python3.
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
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
NOW = "2026-11-24T12:00:00Z"


def run_once(argv: List[str], env: Dict[str, str]) -> Tuple[float, float]:
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        p = subprocess.Popen(argv, stdout=null, stderr=subprocess.PIPE, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        err = p.stderr.read() if p.stderr else b""
        if p.stderr:
            p.stderr.close()
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode not in (0, 1):
        raise SystemExit("bench-python: %s exited %d: %s"
                         % (" ".join(argv[:3]), p.returncode, err.decode(errors="replace")[-500:]))
    return wall, ru.ru_utime + ru.ru_stime


def install_package(py: str, work: str) -> str:
    """Install bindings/python as a user would; the directory for PYTHONPATH."""
    src = os.path.join(work, "src")
    site = os.path.join(work, "site")
    shutil.copytree(os.path.join(SOURCE, "bindings", "python"), src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    p = subprocess.run([py, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                        "--no-deps", "--target", site, src], env=env, cwd=work,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode == 0:
        how = "pip install --target"
    else:  # no pip: a compiled copy
        shutil.rmtree(site, ignore_errors=True)
        shutil.copytree(os.path.join(src, "candor"), os.path.join(site, "candor"))
        subprocess.run([py, "-m", "compileall", "-q", site], check=True,
                       stdout=subprocess.DEVNULL)
        how = "a compileall'ed copy (pip failed: %s)" % p.stdout.strip().splitlines()[-1:]
    print("bench-python: package installed with %s in %s" % (how, site))
    return site


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
    work = tempfile.mkdtemp(prefix="candor-bench-py.")
    env = dict(os.environ)
    env["CANDOR_LIBRARY"] = lib
    env["PYTHONPATH"] = install_package(py, work)
    state = os.path.join(work, "state.db")   # absent: triage reads an empty state
    pyver = subprocess.run([py, "--version"], stdout=subprocess.PIPE, text=True).stdout.strip()
    try:
        threads = len(os.sched_getaffinity(0))
    except AttributeError:
        threads = os.cpu_count() or 1
    print("bench-python: %d cores, load %.2f %.2f %.2f, %s (%s), rounds=%d, baseline rounds=%d"
          % (os.cpu_count() or 0, *os.getloadavg(), pyver, py, a.rounds, a.base_rounds))
    print("bench-python: cli and python run with the CLI's default worker threads (%d here); "
          "cli-j1 and python-j1 with one" % threads)
    ok = True
    rows = []
    try:
        for n in a.counts:
            d = os.path.join(work, "corpus-%d" % n)
            subprocess.run([py, os.path.join(shared, "tools", "gen-corpus"), "--count", str(n),
                            "--seed", "1", "--out", d], check=True, stdout=subprocess.DEVNULL)
            common = ["triage", "--state", state, "--now", NOW, "--maildir", d]
            cmds = {
                "cli": [cli, *common],
                "python": [py, "-m", "candor", *common],
                "cli-j1": [cli, *common, "--jobs", "1"],
                "python-j1": [py, "-m", "candor", *common, "--jobs", "1"],
                "baseline": [py, os.path.join(shared, "tools", "py-triage-baseline"), d],
            }
            # Same output first, else the timing means nothing.
            outs = [subprocess.run(cmds[k], env=env, stdout=subprocess.PIPE).stdout
                    for k in ("cli", "python", "python-j1")]
            lines = outs[0].count(b"\n")
            same = outs[0] == outs[1] == outs[2]
            print("\n%d messages: %d JSON lines from the CLI; python and python-j1 %s"
                  % (n, lines, "print the same bytes" if same else "DIFFER"))
            ok &= same and lines == n
            wall: Dict[str, List[float]] = {k: [] for k in cmds}
            cpu: Dict[str, List[float]] = {k: [] for k in cmds}
            fast = [k for k in cmds if k != "baseline"]
            load0 = os.getloadavg()[0]
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
            load1 = os.getloadavg()[0]
            med = {k: statistics.median(v) for k, v in wall.items()}
            mcpu = {k: statistics.median(v) for k, v in cpu.items()}
            print("  load average %.2f at the start, %.2f at the end" % (load0, load1))
            print("  %-10s %5s %10s %10s %10s %10s" % ("command", "runs", "wall med", "min",
                                                      "msgs/s", "cpu med"))
            for k in cmds:
                print("  %-10s %5d %10.3f %10.3f %10.0f %10.3f"
                      % (k, len(wall[k]), med[k], min(wall[k]), n / med[k], mcpu[k]))
            ratios = {}
            for j in ("", "-j1"):
                r = med["python" + j] / med["cli" + j]
                ratios["py/cli" + j] = r
                good = r <= 1.25
                ok &= good
                print("  python%s / cli%s = %.3f (target <= 1.25): %-6s  cpu: %.3f"
                      % (j, j, r, "ok" if good else "MISSED",
                         mcpu["python" + j] / mcpu["cli" + j]))
            for j in ("", "-j1"):
                r = med["baseline"] / med["python" + j]
                ratios["base/py" + j] = r
                good = r >= 8
                if not j:
                    ok &= good
                print("  baseline / python%s = %.1f x (target >= 8%s): %-6s  cpu: %.1f x"
                      % (j, r, "" if not j else ", shown", "ok" if good else "MISSED",
                         mcpu["baseline"] / mcpu["python" + j]))
            print("  (the C CLI alone: baseline / cli = %.1f x wall, %.1f x cpu; "
                  "baseline / cli-j1 = %.1f x wall)"
                  % (med["baseline"] / med["cli"], mcpu["baseline"] / mcpu["cli"],
                     med["baseline"] / med["cli-j1"]))
            rows.append("| %s (%d rounds, baseline %d) | %.2f-%.2f | %.3f s | %.3f s | %.2f (%.2f) "
                        "| %.3f s | %.3f s | %.2f (%.2f) | %.2f s | %.1f x (%.1f x) |"
                        % (format(n, ","), a.rounds, min(a.rounds, a.base_rounds), load0, load1,
                           med["cli"], med["python"], ratios["py/cli"],
                           mcpu["python"] / mcpu["cli"], med["cli-j1"], med["python-j1"],
                           ratios["py/cli-j1"], mcpu["python-j1"] / mcpu["cli-j1"],
                           med["baseline"], ratios["base/py"],
                           mcpu["baseline"] / mcpu["python"]))
            if not a.keep:
                shutil.rmtree(d, ignore_errors=True)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\nFor tests/bench/README.md (wall medians; CPU-time ratios in parentheses):\n")
    print("| N | load | cli | python | python / cli | cli-j1 | python-j1 | python-j1 / cli-j1 "
          "| baseline | baseline / python |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(row)
    print("\nbench-python: %s" % ("all targets met" if ok else "some target MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
