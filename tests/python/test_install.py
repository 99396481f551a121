#!/usr/bin/env python3
"""The package installs offline with the platform's own Python and pip --
Debian's /usr/bin/python3, whatever python3 comes first on PATH -- and then
finds the installed library by itself.

The README's steps, in a temporary directory: `meson install --destdir` of
the build (the library as `meson install` puts it), a venv with
--system-site-packages (Debian's pip, setuptools and wheel come from the
system), `pip install --no-build-isolation --no-index` of a copy of
bindings/python, then `import candor` from the venv with neither
CANDOR_LIBRARY nor PYTHONPATH nor the source tree to help: only the dynamic
loader's path (LD_LIBRARY_PATH, standing in for ldconfig). Also the wheel:
pure Python, py.typed inside.

Skipped (with the reason printed) only when /usr/bin/python3 has no pip;
CI installs python3-pip, python3-setuptools, python3-wheel and python3-venv
(.ci/packages)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unittest
import zipfile
from pathlib import Path

from common import BINDINGS, DATA, run, tmpdir

SYSTEM_PYTHON = os.environ.get("CANDOR_SYSTEM_PYTHON", "/usr/bin/python3")
BUILD = Path(os.environ.get("CANDOR_BUILD") or "")


def system_pip_missing() -> str:
    """Why the platform's pip cannot be used, or "" when it can."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return "%s does not exist" % SYSTEM_PYTHON
    p = subprocess.run([SYSTEM_PYTHON, "-m", "pip", "--version"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        return "%s has no pip (apt-get install python3-pip): %s" % (
            SYSTEM_PYTHON, p.stdout.strip().splitlines()[-1:] or "")
    return ""


def clean_env(**extra: str) -> dict:
    """The environment of a user who installed candor: no hint where the
    package or the library is, no network for pip."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CANDOR_LIBRARY", "PYTHONPATH", "PYTHONHOME", "LD_LIBRARY_PATH",
                        "VIRTUAL_ENV", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1",
               PIP_NO_INPUT="1", PIP_CONFIG_FILE=os.devnull,
               http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    env.update(extra)
    return env


def sh(argv: list, **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          **kw)  # type: ignore[call-overload,no-any-return]


class TestInstall(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        why = system_pip_missing()
        if why:
            print("SKIP test_install: %s" % why)
            raise unittest.SkipTest(why)
        cls.dir = tmpdir()
        cls.src = cls.dir / "src"
        # a copy: the build must leave no build/ or egg-info in the source tree
        shutil.copytree(BINDINGS, cls.src, ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__"))

    def test_wheel_is_pure_python(self) -> None:
        p = sh([SYSTEM_PYTHON, "-m", "pip", "wheel", "--no-build-isolation", "--no-index",
                "--no-deps", "-w", str(self.dir / "dist"), str(self.src)],
               env=clean_env(), cwd=str(self.dir))
        self.assertEqual(p.returncode, 0, p.stdout[-3000:])
        wheels = list((self.dir / "dist").glob("candor-*.whl"))
        self.assertEqual(len(wheels), 1)
        names = zipfile.ZipFile(wheels[0]).namelist()
        for f in ("candor/__init__.py", "candor/_lib.py", "candor/__main__.py",
                  "candor/py.typed"):
            self.assertIn(f, names)
        self.assertFalse([n for n in names if n.endswith(".so")], "no compiled code")
        self.assertTrue(wheels[0].name.endswith("-py3-none-any.whl"), wheels[0].name)

    def test_venv_install_finds_installed_library(self) -> None:
        self.assertTrue((BUILD / "build.ninja").is_file(), "CANDOR_BUILD is no meson build")
        # The library where `meson install` puts it, under a staging root.
        root = self.dir / "root"
        p = sh(["meson", "install", "-C", str(BUILD), "--no-rebuild", "--quiet",
                "--destdir", str(root)])
        self.assertEqual(p.returncode, 0, p.stdout[-3000:])
        installed = json.loads(sh(["meson", "introspect", "--installed", str(BUILD)]).stdout)
        libs = [v for v in installed.values() if os.path.basename(v).startswith("libcandor.so.")]
        self.assertTrue(libs, "meson installs no libcandor.so.N")
        libdir = root / os.path.dirname(libs[0]).lstrip("/")
        rng = [v for v in installed.values() if v.endswith("/candor.rng")]
        self.assertTrue(rng, "meson installs no candor.rng")
        datadir = root / os.path.dirname(rng[0]).lstrip("/")

        venv = self.dir / "venv"
        p = sh([SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", "--without-pip",
                str(venv)], env=clean_env())
        self.assertEqual(p.returncode, 0, p.stdout[-3000:])
        py = str(venv / "bin" / "python")
        # Debian's own pip (from the system site), as the README says.
        p = sh([py, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                str(self.src)], env=clean_env(), cwd=str(self.dir))
        self.assertEqual(p.returncode, 0, p.stdout[-3000:])

        env = clean_env(LD_LIBRARY_PATH=str(libdir), CANDOR_DATADIR=str(datadir))
        p = subprocess.run(
            [py, "-c", "import candor, sys\n"
             "print(candor.__file__)\n"
             "candor.load_library()\n"
             "print(sorted({l.split()[-1] for l in open('/proc/self/maps')\n"
             "              if 'libcandor.so' in l}))\n"
             "with candor.Context() as ctx:\n"
             "    print(ctx.triage(sys.argv[1]).intent)\n",
             str(DATA / "refund.eml")],
            env=env, cwd=str(self.dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        where, lib, intent = p.stdout.split("\n")[:3]
        self.assertTrue(where.startswith(str(venv)), where)
        self.assertNotIn(str(BINDINGS), where)
        # the process mapped the staged copy, and no other libcandor
        self.assertEqual(lib, repr([os.path.realpath(libdir / os.path.basename(libs[0]))]))
        import candor
        self.assertIn(intent, candor.INTENTS)
        # `python -m candor` of the installed package works the same way
        p = subprocess.run([py, "-m", "candor", "triage", str(DATA / "refund.eml")],
                           env=env, cwd=str(self.dir), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        self.assertEqual(json.loads(p.stdout)["intent"], intent)


if __name__ == "__main__":
    run()
