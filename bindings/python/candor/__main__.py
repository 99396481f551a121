"""``python3 -m candor triage|parse [OPTION]... FILE...``

Prints the same JSON Lines as the C command-line tool (``candor triage`` /
``candor parse``, CONTRACT.md), one object per message, built through the
Python API (:meth:`candor.Context.triage` / :meth:`~candor.Context.parse`;
each line is the result's :meth:`~candor.Triage.to_json_bytes`). Exit
status: 0 success, 1 some message could not be read (or, for FILE
arguments, had errors), 2 bad usage or configuration, 75 a temporary
failure.

With ``--maildir`` the messages are triaged on as many threads as the C tool
uses by default (the CPUs this process may run on), ``--jobs N`` to change
it; the output order is the same for any N.

Start-up time counts here (one process per run): the options are read by a
small parser of our own (argparse's import and set-up cost more than
triaging a few messages) and output goes out in 64 kB writes, whatever
``PYTHONUNBUFFERED`` says.
"""

from __future__ import annotations

import os
import sys

from . import (ConfigError, Context, Error, InvalidArgumentError, LibraryError,
               TemporaryError)
from ._context import ordered_map, unreadable_json

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Sequence

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_TEMPFAIL = 0, 1, 2, 75

USAGE = """\
Usage: python3 -m candor triage [OPTION]... FILE...
       python3 -m candor triage [OPTION]... --maildir DIR
       python3 -m candor parse [--config FILE] [--model FILE]
                               [--max-config-bytes N] FILE...

Parse or triage mail through libcandor and print one JSON object per message
(JSON Lines), exactly as the candor command-line tool does. "-" as FILE reads
standard input.

Options of triage:
      --maildir DIR        triage the messages of the maildir DIR (new/, cur/)
      --recursive          with --maildir: also its maildir++ folders
      --jobs N             threads (default: with --maildir the number of CPUs,
                           as candor triage; else 1); same output for any N
      --config FILE        configuration (default: $CANDOR_CONFIG, else the installed one)
      --model FILE         intent model (default: the configuration's)
      --max-config-bytes N refuse a configuration larger than N bytes (suffix
                           k, M or G; default 4M); parse takes it too
      --state FILE         state database (read only; default: the configuration's)
      --now TIME           the time, RFC 3339 (default: the clock)
      --address ADDR       our own address (repeatable)
      --trusted-authserv ID  the authserv-id whose Authentication-Results are believed
      --sender ADDR        envelope sender
      --recipient ADDR     envelope recipient
      --explain            add the rules and features that decided
  -h, --help               show this help and exit

Exit status: 0 success, 1 some message could not be read or had errors,
2 bad usage or configuration, 75 temporary failure.
"""

# option -> takes a value; per command
_OPTIONS = {
    "triage": {"--config": True, "--model": True, "--maildir": True, "--recursive": False,
               "--jobs": True, "--state": True, "--now": True, "--address": True,
               "--trusted-authserv": True, "--sender": True, "--recipient": True,
               "--explain": False, "--max-config-bytes": True},
    "parse": {"--config": True, "--model": True, "--max-config-bytes": True},
}


def parse_bytes(text: str) -> int:
    """A byte count as the CLI takes it: digits and an optional binary
    suffix k, M or G, above 0."""
    shift = {"k": 10, "K": 10, "M": 20, "G": 30}.get(text[-1:], 0)
    digits = text[:-1] if shift else text
    if not digits.isdigit() or not digits.isascii() or int(digits) == 0:
        raise UsageError("--max-config-bytes %s: not a byte count (N, Nk, NM or NG, above 0)"
                         % text)
    return int(digits) << shift


class UsageError(Exception):
    pass


def parse_args(argv: "Sequence[str]") -> "Dict[str, Any]":
    """The command line as a dict: "command", "files" and one key per option
    (``--trusted-authserv`` -> ``trusted_authserv``; ``address`` a list)."""
    if not argv or argv[0] in ("-h", "--help"):
        raise UsageError("" if argv else "no command given (triage or parse)")
    cmd = argv[0]
    if cmd not in _OPTIONS:
        raise UsageError("unknown command %r (triage or parse)" % cmd)
    known = _OPTIONS[cmd]
    args: "Dict[str, Any]" = {"command": cmd, "files": [], "address": []}
    i, n = 1, len(argv)
    while i < n:
        a = argv[i]
        i += 1
        if a == "--":
            args["files"].extend(argv[i:])
            break
        if a in ("-h", "--help"):
            raise UsageError("")
        if not a.startswith("--") or a == "-":
            if a.startswith("-") and a != "-":
                raise UsageError("unknown option %s" % a)
            args["files"].append(a)
            continue
        name, eq, value = a.partition("=")
        if name not in known:
            raise UsageError("unknown option %s" % name)
        key = name[2:].replace("-", "_")
        if not known[name]:
            if eq:
                raise UsageError("%s takes no value" % name)
            args[key] = True
            continue
        if not eq:
            if i >= n:
                raise UsageError("%s needs a value" % name)
            value = argv[i]
            i += 1
        if key == "address":
            args["address"].append(value)
        else:
            args[key] = value
    if "max_config_bytes" in args:
        args["max_config_bytes"] = parse_bytes(args["max_config_bytes"])
    if "jobs" in args:
        try:
            args["jobs"] = int(args["jobs"])
        except ValueError:
            raise UsageError("--jobs %s: not a number" % args["jobs"]) from None
        if not 1 <= args["jobs"] <= 1024:
            raise UsageError("--jobs %d: not a number from 1 to 1024" % args["jobs"])
    return args


def default_jobs() -> int:
    """What ``candor triage --maildir`` uses without --jobs: the CPUs this
    process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _maildir_files(root: str, recursive: bool) -> "Iterator[str]":
    """The messages of a maildir in the order of ``candor triage --maildir``:
    per folder (the maildir itself, then with RECURSIVE its maildir++
    folders .NAME sorted), the files of new/ and cur/ sorted by name, new/
    first on equal names; hidden names and non-files skipped."""
    root = root.rstrip("/") or "/"
    folders = [""]
    if recursive:
        try:
            subs = [e.name for e in os.scandir(root)
                    if e.name.startswith(".") and e.name not in (".", "..")
                    and e.is_dir()
                    and (os.path.isdir(os.path.join(root, e.name, "cur"))
                         or os.path.isdir(os.path.join(root, e.name, "new")))]
        except OSError:
            subs = []
        folders.extend(sorted(subs, key=os.fsencode))
    for folder in folders:
        base = os.path.join(root, folder) if folder else root
        entries = []
        for k, sub in enumerate(("new", "cur")):
            try:
                with os.scandir(os.path.join(base, sub)) as it:
                    for e in it:
                        if not e.name.startswith(".") and e.is_file():
                            entries.append((os.fsencode(e.name), k, e.name, sub))
            except (FileNotFoundError, NotADirectoryError):
                continue
        entries.sort()
        for _, _, name, sub in entries:
            yield base + "/" + sub + "/" + name


def _err(text: str) -> None:
    sys.stderr.write("python3 -m candor: %s\n" % text)


class _Out:
    """Output in large writes (the C tool's stdio buffering); a write error
    other than a closed pipe is remembered, as the C tool does."""

    def __init__(self, stream: "BinaryIO") -> None:
        self.stream = stream
        self.parts: "List[bytes]" = []
        self.size = 0

    def line(self, data: bytes) -> None:
        self.parts.append(data)
        self.parts.append(b"\n")
        self.size += len(data) + 1
        if self.size >= 65536:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            data = b"".join(self.parts)
            self.parts = []
            self.size = 0
            self.stream.write(data)
        self.stream.flush()


def main(argv: "Optional[Sequence[str]]" = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else list(argv))
    except UsageError as e:
        if str(e):
            _err(str(e))
            sys.stderr.write("Try 'python3 -m candor --help'.\n")
            return EXIT_USAGE
        sys.stdout.write(USAGE)
        return EXIT_OK
    command = args["command"]
    files: "List[str]" = args["files"]
    maildir = args.get("maildir")
    if maildir is not None:
        if files:
            _err("triage: --maildir and FILE are exclusive")
            return EXIT_USAGE
        if not (os.path.isdir(os.path.join(maildir, "cur"))
                or os.path.isdir(os.path.join(maildir, "new"))):
            _err("triage: --maildir %s: not a maildir (no cur/ or new/)" % maildir)
            return EXIT_USAGE
        files = list(_maildir_files(maildir, bool(args.get("recursive"))))
    elif not files:
        _err("%s: no FILE given" % command)
        return EXIT_USAGE
    elif args.get("recursive"):
        _err("triage: --recursive needs --maildir")
        return EXIT_USAGE

    kw: "Dict[str, Any]" = {"config": args.get("config"), "model": args.get("model"),
                            "max_config_bytes": args.get("max_config_bytes")}
    if command == "triage":
        kw.update(state=args.get("state"), addresses=args["address"] or None,
                  trusted_authserv=args.get("trusted_authserv"))
    try:
        ctx = Context(**kw)
    except (ConfigError, InvalidArgumentError, LibraryError) as e:
        _err(str(e))
        return EXIT_USAGE
    except TemporaryError as e:
        _err(str(e))
        return EXIT_TEMPFAIL
    except Error as e:
        _err(str(e))
        return EXIT_PROBLEM

    status = EXIT_OK
    sys.stdout.flush()
    out = _Out(open(sys.stdout.fileno(), "wb", buffering=0, closefd=False))
    stdin_data: "Optional[bytes]" = None

    def item(f: str) -> "Any":
        nonlocal stdin_data
        if f == "-":
            if stdin_data is None:
                stdin_data = sys.stdin.buffer.read()
            return stdin_data
        return f

    with ctx:
        try:
            if command == "triage":
                try:
                    # --now read once (a bad one is a usage error)
                    opts: "Dict[str, Any]" = dict(
                        sender=args.get("sender"), recipient=args.get("recipient"),
                        now=ctx._now(args.get("now")), explain=bool(args.get("explain")))
                except Error as e:
                    _err("triage: --now %s: %s" % (args.get("now"), e))
                    return EXIT_USAGE
                jobs = args.get("jobs") or (default_jobs() if maildir is not None else 1)
                if "-" in files:
                    jobs = 1
                triage = ctx.triage

                def one(f: str) -> "Any":
                    try:
                        return triage(item(f), file=f, **opts)
                    except Error as e:
                        return e

                for f, r in zip(files, ordered_map(one, files, jobs)):
                    if isinstance(r, Error):
                        status = _unreadable(out, f, r)
                        continue
                    out.line(r.to_json_bytes())  # the library's own JSON text
                    # `candor triage FILE` exits 1 for a message with errors;
                    # over a maildir only unreadable messages count.
                    if maildir is None and r.__dict__.get("_message_errors"):
                        status = EXIT_PROBLEM
            else:
                for f in files:
                    try:
                        m = ctx.parse(item(f), file=f)
                    except Error as e:
                        status = _unreadable(out, f, e)
                        continue
                    out.line(m.to_json_bytes())
                    if m.__dict__.get("_message_errors"):
                        status = EXIT_PROBLEM
            out.flush()
        except BrokenPipeError:
            return EXIT_PROBLEM
        except TemporaryError as e:
            try:
                out.flush()
            except OSError:
                pass
            _err(str(e))
            return EXIT_TEMPFAIL
    return status


def _unreadable(out: _Out, f: str, e: Error) -> int:
    """The object for a file that could not be read; the new status."""
    if isinstance(e, TemporaryError):
        raise e
    try:
        out.line(unreadable_json(f, str(e)))
    except Error:
        _err("%s: %s" % (f, e))
    return EXIT_PROBLEM


if __name__ == "__main__":
    sys.exit(main())
