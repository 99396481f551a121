"""Shared helpers of the Python binding tests (tests/python/test_*.py).

Each test script is a unittest module run by :func:`run`, which prints the
plain summary line "N passed, N failed" last and exits non-zero on failure
(tests/summarize.py adds the counts to the suite's total).

Environment (tests/meson.build): CANDOR_LIBRARY (libcandor.so of the build),
CANDOR_BIN (the candor CLI), CANDOR_SHARED (../shared), CANDOR_SOURCE (the
source tree), CANDOR_TEST_DATA (tests/data). The package is imported from
the source tree's bindings/python, so nothing has to be installed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
SOURCE = Path(os.environ.get("CANDOR_SOURCE") or HERE.parent.parent)
BINDINGS = SOURCE / "bindings" / "python"
SHARED = Path(os.environ.get("CANDOR_SHARED") or SOURCE.parent / "shared")
TEST_DATA = Path(os.environ.get("CANDOR_TEST_DATA") or SOURCE / "tests" / "data")
DATA = TEST_DATA / "python"
sys.path.insert(0, str(BINDINGS))

import candor  # noqa: E402,F401  (after the path is set; re-exported)


def env_for_subprocess() -> Dict[str, str]:
    """The environment for `python3 -m candor` children: finds the package
    in the source tree and the same library as this process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(BINDINGS) + (os.pathsep + env["PYTHONPATH"]
                                         if env.get("PYTHONPATH") else "")
    return env


def candor_bin() -> Optional[str]:
    b = os.environ.get("CANDOR_BIN")
    if b and os.access(b, os.X_OK):
        return b
    for cand in sorted(SOURCE.glob("build*/examples/candor")):
        if os.access(cand, os.X_OK):
            return str(cand)
    return None


_corpora: Dict[tuple, Path] = {}
_tmp = tempfile.TemporaryDirectory(prefix="candor-pytest-")


def corpus(count: int, seed: int) -> Path:
    """A maildir of COUNT messages from ../shared/tools/gen-corpus (cached
    for this process, removed at exit)."""
    key = (count, seed)
    if key not in _corpora:
        out = Path(_tmp.name) / ("corpus-%d-%d" % key)
        subprocess.run([sys.executable, str(SHARED / "tools" / "gen-corpus"),
                        "--count", str(count), "--seed", str(seed), "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _corpora[key] = out
    return _corpora[key]


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(dir=_tmp.name))


def maildir_files(root: Path) -> List[str]:
    """The messages of a maildir, new/ then cur/, sorted by name."""
    out: List[str] = []
    for sub in ("new", "cur"):
        d = root / sub
        if d.is_dir():
            out.extend(str(d / n) for n in sorted(os.listdir(d)))
    return out


def fixture_messages() -> List[Path]:
    """The hand-written fixtures in tests/data/python/*.eml."""
    return sorted(DATA.glob("*.eml"))


def same_json(a: Any, b: Any, tol: float = 1e-6, path: str = "$") -> Optional[str]:
    """None when A and B are the same JSON value (floats within TOL), else
    where they first differ."""
    if isinstance(a, bool) or isinstance(b, bool):
        return None if a is b else "%s: %r != %r" % (path, a, b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isclose(float(a), float(b), rel_tol=0, abs_tol=tol):
            return None
        return "%s: %r != %r" % (path, a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a.keys()) != list(b.keys()) and set(a) != set(b):
            return "%s: keys %s != %s" % (path, sorted(a), sorted(b))
        for k in a:
            d = same_json(a[k], b[k], tol, "%s.%s" % (path, k))
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return "%s: %d items != %d items" % (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            d = same_json(x, y, tol, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    return None if a == b and type(a) is type(b) else "%s: %r != %r" % (path, a, b)


def json_lines(text: str) -> List[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class _Result(unittest.TextTestResult):
    pass


def run(module_name: str = "__main__") -> None:
    """Run the module's tests; print "N passed, N failed" last; exit 1 on
    any failure."""
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[module_name])
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=_Result)
    res = runner.run(suite)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    passed = res.testsRun - failed - len(res.skipped)
    sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
