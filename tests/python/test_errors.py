#!/usr/bin/env python3
"""Failures become clear candor.Error exceptions, never crashes: a missing
file, an unreadable or broken configuration, a library of the wrong
version (or none at all), bad arguments, input over a limit, and each
thread seeing its own error message."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import unittest

from common import DATA, SOURCE, candor, env_for_subprocess, run, tmpdir
from candor import _errors, _lib


def child(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run CODE in a fresh interpreter (library loading is per process)."""
    e = env_for_subprocess()
    e.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=e,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=120)


class TestMissingFile(unittest.TestCase):
    def test_missing_file(self) -> None:
        with candor.Context() as ctx:
            for op in (ctx.parse, ctx.triage):
                with self.assertRaises(candor.InputOutputError) as cm:
                    op("/nonexistent/dir/message.eml")
                e = cm.exception
                self.assertIsInstance(e, candor.Error)
                self.assertEqual(e.status, -4)
                self.assertEqual(e.status_name, "CANDOR_EIO")
                self.assertIn("/nonexistent/dir/message.eml", str(e))
            with self.assertRaises(candor.InputOutputError):
                ctx.check("/nonexistent/a.eml", str(DATA / "reply-good.eml"))
            # the context still works after a failure
            self.assertIsInstance(ctx.parse(str(DATA / "refund.eml")), candor.Message)

    def test_directory_as_message(self) -> None:
        with candor.Context() as ctx:
            with self.assertRaises(candor.Error) as cm:
                ctx.parse(str(DATA))
            self.assertTrue(str(cm.exception))

    def test_cli_reports_unreadable(self) -> None:
        p = subprocess.run([sys.executable, "-m", "candor", "triage", str(DATA / "refund.eml"),
                            "/nonexistent/m.eml"], env=env_for_subprocess(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 1, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 2)
        import json
        bad = json.loads(lines[1])
        self.assertEqual(bad["file"], "/nonexistent/m.eml")
        self.assertTrue(bad["errors"])


class TestConfig(unittest.TestCase):
    def check_config_error(self, path: str) -> candor.Error:
        with self.assertRaises(candor.Error) as cm:
            candor.Context(config=path)
        e = cm.exception
        self.assertIsInstance(e, (candor.ConfigError, candor.InputOutputError))
        self.assertIn(os.path.basename(path), str(e))
        return e

    def test_missing_config(self) -> None:
        self.check_config_error(str(tmpdir() / "no-such-config.xml"))

    def test_directory_config(self) -> None:
        self.check_config_error(str(tmpdir()))

    def test_unreadable_config(self) -> None:
        if os.geteuid() == 0:
            self.skipTest("root reads any file; see the other config tests")
        d = tmpdir()
        p = d / "candor.xml"
        shutil.copy(SOURCE / "lib" / "data" / "candor.xml", p)
        p.chmod(0)
        self.check_config_error(str(p))

    def test_broken_config(self) -> None:
        p = tmpdir() / "broken.xml"
        p.write_text('<?xml version="1.0"?>\n<candor version="1">\n  <mailbox>\n</candor>\n')
        e = self.check_config_error(str(p))
        self.assertIsInstance(e, candor.ConfigError)
        self.assertRegex(str(e), r"broken\.xml:\d+")

    def test_invalid_config(self) -> None:
        p = tmpdir() / "invalid.xml"
        p.write_text('<?xml version="1.0"?>\n<candor version="1">\n'
                     '  <no-such-element/>\n</candor>\n')
        e = self.check_config_error(str(p))
        self.assertIsInstance(e, candor.ConfigError)

    def test_cli_bad_config_is_usage_error(self) -> None:
        p = subprocess.run([sys.executable, "-m", "candor", "triage", "--config",
                            "/nonexistent/candor.xml", str(DATA / "refund.eml")],
                           env=env_for_subprocess(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent/candor.xml", p.stderr)
        self.assertNotIn("Traceback", p.stderr)
        self.assertEqual(p.stdout, "")


class TestLibrary(unittest.TestCase):
    def build_so(self, source: str) -> str:
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            self.skipTest("no C compiler")
        d = tmpdir()
        (d / "fake.c").write_text(source)
        so = str(d / "libcandor.so")
        subprocess.run([cc, "-shared", "-fPIC", "-o", so, str(d / "fake.c")], check=True)
        return so

    def fake_library(self, version: int) -> str:
        return self.build_so(
            "int candor_version_number(void) { return %d; }\n"
            'const char *candor_version_string(void) { return "fake"; }\n' % version)

    def test_wrong_version_library(self) -> None:
        so = self.fake_library(9 * 10000 + 3 * 100 + 1)
        p = child("""
            import candor
            try:
                candor.Context()
            except candor.VersionMismatchError as e:
                print("OK", e)
            """, CANDOR_LIBRARY=so)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("OK"), p.stdout + p.stderr)
        self.assertIn("9.3.1", p.stdout)
        self.assertIn(candor.__version__, p.stdout)
        self.assertIn(so, p.stdout)

    def test_wrong_version_monkeypatched(self) -> None:
        # The real library against a package that believes it is 0.99
        p = child("""
            import candor
            from candor import _lib
            _lib.VERSION_MINOR = 99
            try:
                candor.load_library()
            except candor.VersionMismatchError as e:
                print("OK", e)
            """)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("OK"), p.stdout + p.stderr)
        self.assertIn("needs 0.99.x", p.stdout)
        # and the check itself
        with self.assertRaises(candor.VersionMismatchError):
            _lib.check_version(10000, "x")
        _lib.check_version(_lib.VERSION_NUMBER + 7, "patch level differs: fine")

    def test_missing_library(self) -> None:
        p = child("""
            import candor   # importing never needs the library
            try:
                candor.Context()
            except candor.LibraryError as e:
                print("OK", e)
            """, CANDOR_LIBRARY="/nonexistent/libcandor.so")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("OK", p.stdout)
        self.assertIn("/nonexistent/libcandor.so", p.stdout)
        self.assertIn("CANDOR_LIBRARY", p.stdout)

    def test_not_candor(self) -> None:
        so = self.build_so("int something_else(void) { return 1; }\n")
        p = child("""
            import candor
            try:
                candor.Context()
            except candor.LibraryError as e:
                print("OK", e)
            """, CANDOR_LIBRARY=so)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("not libcandor", p.stdout)

    def test_cli_wrong_library(self) -> None:
        so = self.fake_library(5 * 10000)
        e = env_for_subprocess()
        e["CANDOR_LIBRARY"] = so
        p = subprocess.run([sys.executable, "-m", "candor", "triage", str(DATA / "refund.eml")],
                           env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("5.0.0", p.stderr)
        self.assertNotIn("Traceback", p.stderr)


class TestArgumentsAndLimits(unittest.TestCase):
    def test_exception_hierarchy(self) -> None:
        for status, cls, builtin in ((-2, candor.OutOfMemoryError, MemoryError),
                                     (-3, candor.InvalidArgumentError, ValueError),
                                     (-8, candor.NotFoundError, LookupError)):
            e = _errors.error_for_status(status, "what: why")
            self.assertIsInstance(e, cls)
            self.assertIsInstance(e, builtin)
            self.assertIsInstance(e, candor.Error)
            self.assertEqual(str(e), "what: why")
        for status, cls in ((-4, candor.InputOutputError), (-5, candor.ConfigError),
                            (-6, candor.LimitError), (-7, candor.TemporaryError),
                            (-1, candor.Error), (-99, candor.Error)):
            self.assertIs(type(_errors.error_for_status(status, "m")), cls)
        self.assertTrue(issubclass(candor.VersionMismatchError, candor.LibraryError))
        self.assertTrue(issubclass(candor.LibraryError, ImportError))

    def test_status_from_library(self) -> None:
        with candor.Context() as ctx:
            with self.assertRaises(candor.InvalidArgumentError) as cm:
                ctx.triage(str(DATA / "refund.eml"), now="not a time")
            self.assertEqual(cm.exception.status_name, "CANDOR_EINVAL")
            self.assertTrue(str(cm.exception))

    def test_limit(self) -> None:
        big = (b"From: a@example.org\nTo: support@shop.example\nSubject: big\n\n"
               + b"refund please " * 20000 + b"\n")
        with candor.Context(max_message_bytes=4096) as ctx:
            try:
                m = ctx.parse(big)
            except candor.LimitError as e:
                self.assertEqual(e.status_name, "CANDOR_ELIMIT")
            else:
                self.assertTrue(m.errors, "over-limit input parsed without an error entry")

    def test_errors_per_thread(self) -> None:
        """Each thread's exception carries its own message although the
        failures overlap in time (errcheck reads the per-thread slot)."""
        problems = []
        with candor.Context() as ctx:
            def work(i: int) -> None:
                for j in range(200):
                    name = "/nonexistent/t%d-%d.eml" % (i, j)
                    try:
                        ctx.parse(name)
                    except candor.InputOutputError as e:
                        if name not in str(e):
                            problems.append((name, str(e)))
                    else:
                        problems.append((name, "no exception"))
                    ctx.parse(str(DATA / "refund.eml"))  # success in between
            threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.assertEqual(problems, [])


if __name__ == "__main__":
    run()
