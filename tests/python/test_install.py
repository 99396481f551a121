#!/usr/bin/env python3
"""The package installs offline with the platform's own pip and setuptools
(no build isolation, no index): build a wheel of bindings/python, install it
into a fresh directory, and use it from there -- py.typed included, the
library found through CANDOR_LIBRARY."""

from __future__ import annotations

import os
import subprocess
import sys
import unittest
import zipfile

from common import BINDINGS, DATA, run, tmpdir


def have(module: str) -> bool:
    return subprocess.run([sys.executable, "-c", "import " + module],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


class TestInstall(unittest.TestCase):
    def test_wheel_offline(self) -> None:
        if not (have("pip") and have("setuptools") and have("wheel")):
            self.skipTest("pip, setuptools or wheel missing (python3-pip, python3-setuptools, "
                          "python3-wheel)")
        d = tmpdir()
        src = d / "src"
        # build from a copy, so the source tree gets no build/ or egg-info
        subprocess.run(["cp", "-r", str(BINDINGS), str(src)], check=True)
        env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
        env.pop("PYTHONPATH", None)
        p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation",
                            "--no-index", "--no-deps", "-w", str(d / "dist"), str(src)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.assertEqual(p.returncode, 0, p.stdout[-2000:])
        wheels = list((d / "dist").glob("candor-*.whl"))
        self.assertEqual(len(wheels), 1)
        names = zipfile.ZipFile(wheels[0]).namelist()
        for f in ("candor/__init__.py", "candor/_lib.py", "candor/__main__.py", "candor/py.typed"):
            self.assertIn(f, names)
        self.assertFalse([n for n in names if n.endswith(".so")], "no compiled code")
        target = d / "site"
        p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps",
                            "--target", str(target), str(wheels[0])],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.assertEqual(p.returncode, 0, p.stdout[-2000:])
        env["PYTHONPATH"] = str(target)
        p = subprocess.run([sys.executable, "-c",
                            "import candor, sys; print(candor.__file__); "
                            "print(candor.Context().triage(sys.argv[1]).intent)",
                            str(DATA / "refund.eml")],
                           env=env, cwd=str(d), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        where, intent = p.stdout.split()
        self.assertTrue(where.startswith(str(target)), where)
        import candor
        self.assertIn(intent, candor.INTENTS)


if __name__ == "__main__":
    run()
