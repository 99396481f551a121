#!/usr/bin/env python3
"""Failures become clear candor.Error exceptions, never crashes: a missing
file, an unreadable or broken configuration, a library of the wrong
version (or none at all), bad arguments, input over a limit, and each
thread seeing its own error message.

Table-driven: each table below has one named row per case, and every row
becomes its own test method (test_<table>_<row>), so a failure names the
case and each case counts in the "N passed, N failed" line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import unittest
from pathlib import Path
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Tuple, Type

from common import DATA, SOURCE, candor, env_for_subprocess, run, tmpdir
from candor import _errors, _lib

REFUND = str(DATA / "refund.eml")


def add_rows(cls: type, table: str, rows: Sequence[Any], check: Callable[..., None]) -> None:
    """One test method per named row: test_TABLE_ROW runs CHECK(self, row)."""
    for row in rows:
        name = "test_%s_%s" % (table, row.name)
        assert not hasattr(cls, name), name

        def method(self: unittest.TestCase, row: Any = row) -> None:
            check(self, row)
        method.__name__ = name
        method.__doc__ = "%s: %s" % (table, row.name)
        setattr(cls, name, method)


# ---------------------------------------------------------------- files

class FileRow(NamedTuple):
    name: str
    call: Callable[[candor.Context, str], Any]   # ctx, bad path -> result
    data: Callable[[], str]                      # the bad path
    error: Type[candor.Error]
    message_has_path: bool


def _missing() -> str:
    return "/nonexistent/dir/message.eml"


FILE_ROWS = [
    FileRow("parse_missing", lambda c, p: c.parse(p), _missing, candor.InputOutputError, True),
    FileRow("triage_missing", lambda c, p: c.triage(p), _missing, candor.InputOutputError, True),
    FileRow("check_missing_original",
            lambda c, p: c.check(p, str(DATA / "reply-good.eml")), _missing,
            candor.InputOutputError, False),
    FileRow("check_missing_reply", lambda c, p: c.check(REFUND, p), _missing,
            candor.InputOutputError, False),
    FileRow("parse_directory", lambda c, p: c.parse(p), lambda: str(DATA), candor.Error, False),
    FileRow("triage_directory", lambda c, p: c.triage(p), lambda: str(tmpdir()), candor.Error,
            False),
]


class TestFiles(unittest.TestCase):
    def check_file(self, row: FileRow) -> None:
        path = row.data()
        with candor.Context() as ctx:
            with self.assertRaises(row.error) as cm:
                row.call(ctx, path)
            e = cm.exception
            self.assertIsInstance(e, candor.Error)
            self.assertTrue(str(e))
            self.assertTrue(e.status_name.startswith("CANDOR_E"), e.status_name)
            if row.error is candor.InputOutputError:
                self.assertEqual((e.status, e.status_name), (-4, "CANDOR_EIO"))
            if row.message_has_path:
                self.assertIn(path, str(e))
            # the context still works after a failure
            self.assertIsInstance(ctx.parse(REFUND), candor.Message)


add_rows(TestFiles, "file", FILE_ROWS, TestFiles.check_file)


# ---------------------------------------------------------------- configuration

class ConfigRow(NamedTuple):
    name: str
    make: Callable[[Path], Optional[Path]]   # a temporary dir -> the config (None: skip)
    errors: Tuple[Type[candor.Error], ...]
    pattern: Optional[str]                   # regex the message must match


def _write(name: str, text: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        (d / name).write_text(text)
        return d / name
    return make


def _unreadable(d: Path) -> Optional[Path]:
    if os.geteuid() == 0:
        return None   # root reads any file; the other rows still run
    p = d / "candor.xml"
    shutil.copy(SOURCE / "lib" / "data" / "candor.xml", p)
    p.chmod(0)
    return p


def _symlink_loop(d: Path) -> Path:
    """Unreadable for root too: opening it fails with ELOOP."""
    os.symlink(d / "loop-b.xml", d / "loop-a.xml")
    os.symlink(d / "loop-a.xml", d / "loop-b.xml")
    return d / "loop-a.xml"


CONFIG_ROWS = [
    ConfigRow("symlink_loop", _symlink_loop, (candor.ConfigError, candor.InputOutputError),
              None),
    ConfigRow("missing", lambda d: d / "no-such-config.xml",
              (candor.ConfigError, candor.InputOutputError), None),
    ConfigRow("directory", lambda d: d, (candor.ConfigError, candor.InputOutputError), None),
    ConfigRow("unreadable", _unreadable, (candor.ConfigError, candor.InputOutputError), None),
    ConfigRow("broken_xml", _write("broken.xml", '<?xml version="1.0"?>\n<candor version="1">\n'
                                   '  <mailbox>\n</candor>\n'),
              (candor.ConfigError,), r"broken\.xml:\d+"),
    ConfigRow("invalid_element", _write("invalid.xml", '<?xml version="1.0"?>\n'
                                        '<candor version="1">\n  <no-such-element/>\n</candor>\n'),
              (candor.ConfigError,), r"invalid\.xml"),
]


class TestConfig(unittest.TestCase):
    def check_config(self, row: ConfigRow) -> None:
        path = row.make(tmpdir())
        if path is None:
            self.skipTest("%s: root reads any file" % row.name)
        with self.assertRaises(candor.Error) as cm:
            candor.Context(config=path)
        e = cm.exception
        self.assertIsInstance(e, row.errors)
        self.assertIn(os.path.basename(str(path).rstrip("/")), str(e))
        if row.pattern:
            self.assertRegex(str(e), row.pattern)


add_rows(TestConfig, "config", CONFIG_ROWS, TestConfig.check_config)


# ---------------------------------------------------------------- the library

def build_so(source: str) -> Optional[str]:
    """A shared library from C SOURCE (None without a C compiler)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    d = tmpdir()
    (d / "fake.c").write_text(source)
    so = str(d / "libcandor.so")
    subprocess.run([cc, "-shared", "-fPIC", "-o", so, str(d / "fake.c")], check=True)
    return so


def fake_version(version: int) -> Callable[[], Optional[str]]:
    return lambda: build_so(
        "int candor_version_number(void) { return %d; }\n"
        'const char *candor_version_string(void) { return "fake"; }\n' % version)


class LibraryRow(NamedTuple):
    name: str
    library: Callable[[], Optional[str]]   # CANDOR_LIBRARY for the child (None: no compiler)
    prelude: str                           # Python run before the Context is made
    error: str                             # the candor exception class expected
    says: Sequence[str]                    # the message holds these ("{lib}": the path)


LIBRARY_ROWS = [
    LibraryRow("wrong_version", fake_version(9 * 10000 + 3 * 100 + 1), "",
               "VersionMismatchError", ("9.3.1", candor.__version__, "{lib}")),
    LibraryRow("package_newer_than_library", lambda: os.environ.get("CANDOR_LIBRARY", ""),
               "from candor import _lib\n_lib.VERSION_MINOR = 99\n",
               "VersionMismatchError", ("needs 0.99.x",)),
    LibraryRow("missing", lambda: "/nonexistent/libcandor.so", "",
               "LibraryError", ("{lib}", "CANDOR_LIBRARY")),
    LibraryRow("not_candor", lambda: build_so("int something_else(void) { return 1; }\n"), "",
               "LibraryError", ("not libcandor", "{lib}")),
]

CHILD = """\
import candor   # importing never needs the library
{prelude}
try:
    candor.Context()
except candor.{error} as e:
    print("OK", e)
else:
    print("no exception")
"""


class TestLibrary(unittest.TestCase):
    def check_library(self, row: LibraryRow) -> None:
        lib = row.library()
        if lib is None:
            self.skipTest("no C compiler")
        env = env_for_subprocess()
        env["CANDOR_LIBRARY"] = lib
        p = subprocess.run([sys.executable, "-c", CHILD.format(prelude=row.prelude,
                                                               error=row.error)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("OK"), p.stdout + p.stderr)
        for s in row.says:
            self.assertIn(s.replace("{lib}", lib), p.stdout)

    def test_check_version(self) -> None:
        with self.assertRaises(candor.VersionMismatchError):
            _lib.check_version(10000, "x")
        _lib.check_version(_lib.VERSION_NUMBER + 7, "patch level differs: fine")


add_rows(TestLibrary, "library", LIBRARY_ROWS, TestLibrary.check_library)


# ---------------------------------------------------------------- python3 -m candor

class CliRow(NamedTuple):
    name: str
    args: Callable[[], Optional[List[str]]]   # arguments after -m candor (None: skip)
    library: Optional[Callable[[], Optional[str]]]   # CANDOR_LIBRARY (None: the real one)
    status: int
    stderr_has: Sequence[str]
    stdout_lines: int                         # JSON lines expected on standard output


CLI_ROWS = [
    CliRow("unreadable_file_is_a_line",
           lambda: ["triage", REFUND, "/nonexistent/m.eml"], None, 1, (), 2),
    CliRow("bad_config_is_usage_error",
           lambda: ["triage", "--config", "/nonexistent/candor.xml", REFUND], None, 2,
           ("/nonexistent/candor.xml",), 0),
    CliRow("wrong_library_is_usage_error", lambda: ["triage", REFUND],
           fake_version(5 * 10000), 2, ("5.0.0",), 0),
    CliRow("unknown_option", lambda: ["triage", "--no-such-option", REFUND], None, 2,
           ("--no-such-option",), 0),
    CliRow("jobs_not_a_number", lambda: ["triage", "--jobs", "many", REFUND], None, 2,
           ("--jobs",), 0),
    CliRow("bad_now", lambda: ["triage", "--now", "yesterday", REFUND], None, 2, ("--now",), 0),
    CliRow("not_a_maildir", lambda: ["triage", "--maildir", str(tmpdir())], None, 2,
           ("not a maildir",), 0),
    CliRow("no_file", lambda: ["parse"], None, 2, ("no FILE",), 0),
]


class TestCli(unittest.TestCase):
    def check_cli(self, row: CliRow) -> None:
        env = env_for_subprocess()
        if row.library is not None:
            lib = row.library()
            if lib is None:
                self.skipTest("no C compiler")
            env["CANDOR_LIBRARY"] = lib
        args = row.args()
        assert args is not None
        p = subprocess.run([sys.executable, "-m", "candor", *args], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, row.status, p.stderr)
        self.assertNotIn("Traceback", p.stderr)
        for s in row.stderr_has:
            self.assertIn(s, p.stderr)
        lines = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual(len(lines), row.stdout_lines, p.stdout)
        if row.name == "unreadable_file_is_a_line":
            self.assertEqual(lines[1]["file"], "/nonexistent/m.eml")
            self.assertTrue(lines[1]["errors"])
            self.assertEqual(lines[0]["file"], REFUND)


add_rows(TestCli, "cli", CLI_ROWS, TestCli.check_cli)


# ---------------------------------------------------------------- statuses and arguments

STATUS_ROWS: List[Tuple[int, Type[candor.Error], Optional[type]]] = [
    (-1, candor.Error, None),
    (-2, candor.OutOfMemoryError, MemoryError),
    (-3, candor.InvalidArgumentError, ValueError),
    (-4, candor.InputOutputError, None),
    (-5, candor.ConfigError, None),
    (-6, candor.LimitError, None),
    (-7, candor.TemporaryError, None),
    (-8, candor.NotFoundError, LookupError),
    (-99, candor.Error, None),
]


class ArgRow(NamedTuple):
    name: str
    call: Callable[[candor.Context], Any]
    error: Type[BaseException]
    status_name: Optional[str]   # when the library itself refused


ARG_ROWS = [
    ArgRow("now_not_a_time", lambda c: c.triage(REFUND, now="not a time"),
           candor.InvalidArgumentError, "CANDOR_EINVAL"),
    ArgRow("now_negative", lambda c: c.triage(REFUND, now=-5), candor.InvalidArgumentError, None),
    ArgRow("now_bool", lambda c: c.triage(REFUND, now=True), candor.InvalidArgumentError, None),
    ArgRow("data_int", lambda c: c.parse(12345), candor.InvalidArgumentError, None),
    ArgRow("data_none", lambda c: c.parse(None), ValueError, None),
    ArgRow("closed_context", lambda c: (c.close(), c.parse(REFUND)),
           candor.InvalidArgumentError, None),
]


class TestArgumentsAndLimits(unittest.TestCase):
    def test_exception_hierarchy(self) -> None:
        for status, cls, builtin in STATUS_ROWS:
            with self.subTest(status=status):
                e = _errors.error_for_status(status, "what: why")
                self.assertIs(type(e), cls)
                self.assertIsInstance(e, candor.Error)
                if builtin is not None:
                    self.assertIsInstance(e, builtin)
                self.assertEqual(str(e), "what: why")
        self.assertTrue(issubclass(candor.VersionMismatchError, candor.LibraryError))
        self.assertTrue(issubclass(candor.LibraryError, ImportError))

    def check_argument(self, row: ArgRow) -> None:
        ctx = candor.Context()
        try:
            with self.assertRaises(row.error) as cm:
                row.call(ctx)
            self.assertTrue(str(cm.exception))
            if row.status_name:
                self.assertEqual(cm.exception.status_name, row.status_name)  # type: ignore
        finally:
            ctx.close()

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
                    ctx.parse(REFUND)  # success in between
            threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.assertEqual(problems, [])


add_rows(TestArgumentsAndLimits, "argument", ARG_ROWS, TestArgumentsAndLimits.check_argument)

if __name__ == "__main__":
    run()
