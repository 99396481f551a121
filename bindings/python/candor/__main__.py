"""``python3 -m candor triage|parse [OPTION]... FILE...``

Prints the same JSON Lines as the C command-line tool (``candor triage`` /
``candor parse``, CONTRACT.md), one object per message, built through the
Python API. Exit status: 0 success, 1 some message could not be read or had
errors, 2 bad usage or configuration, 75 a temporary failure.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence

from ._context import ordered_map
from . import (ConfigError, Context, Error, InvalidArgumentError, LibraryError,
               TemporaryError, unreadable)

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_TEMPFAIL = 0, 1, 2, 75


def _maildir_files(root: str, recursive: bool) -> Iterator[str]:
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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python3 -m candor",
        description="Parse or triage mail through libcandor; JSON Lines on "
                    "standard output, as the candor command-line tool prints.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_ in (("triage", "triage each message (intent, urgency, ...)"),
                        ("parse", "parse each message")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("files", nargs="*", metavar="FILE",
                       help='mail files ("-": standard input)')
        s.add_argument("--config", help="configuration file")
        s.add_argument("--model", help="model file")
        if name == "triage":
            s.add_argument("--maildir", metavar="DIR", help="triage the messages of a maildir")
            s.add_argument("--recursive", action="store_true",
                           help="with --maildir: also its maildir++ folders")
            s.add_argument("--jobs", type=int, default=1, metavar="N",
                           help="threads (output order is the same for any N)")
            s.add_argument("--state", help="state database (read only)")
            s.add_argument("--now", help="the time, RFC 3339 (default: the clock)")
            s.add_argument("--address", action="append", default=[],
                           help="our own address (repeatable)")
            s.add_argument("--trusted-authserv", metavar="ID")
            s.add_argument("--sender", metavar="ADDR", help="envelope sender")
            s.add_argument("--recipient", metavar="ADDR", help="envelope recipient")
            s.add_argument("--explain", action="store_true",
                           help="add the rules and features that decided")
    return p


_dump = json.JSONEncoder(ensure_ascii=False).encode


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    files: List[str] = list(args.files)
    if args.command == "triage" and args.maildir:
        if files:
            print("python3 -m candor triage: --maildir and FILE are exclusive",
                  file=sys.stderr)
            return EXIT_USAGE
        if not (os.path.isdir(os.path.join(args.maildir, "cur"))
                or os.path.isdir(os.path.join(args.maildir, "new"))):
            print("python3 -m candor triage: --maildir %s: not a maildir (no cur/ or new/)"
                  % args.maildir, file=sys.stderr)
            return EXIT_USAGE
        files = list(_maildir_files(args.maildir, args.recursive))
    elif not files:
        print("python3 -m candor %s: no FILE given" % args.command, file=sys.stderr)
        return EXIT_USAGE

    kw: Dict[str, Any] = {"config": args.config, "model": args.model}
    if args.command == "triage":
        kw.update(state=args.state, addresses=args.address or None,
                  trusted_authserv=args.trusted_authserv)
    try:
        ctx = Context(**kw)
    except (ConfigError, InvalidArgumentError) as e:
        print("python3 -m candor: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except LibraryError as e:
        print("python3 -m candor: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except TemporaryError as e:
        print("python3 -m candor: %s" % e, file=sys.stderr)
        return EXIT_TEMPFAIL
    except Error as e:
        print("python3 -m candor: %s" % e, file=sys.stderr)
        return EXIT_PROBLEM

    status = EXIT_OK
    out = sys.stdout
    stdin_data: Optional[bytes] = None

    def item(f: str) -> Any:
        nonlocal stdin_data
        if f == "-":
            if stdin_data is None:
                stdin_data = sys.stdin.buffer.read()
            return stdin_data
        return f

    gc.disable()   # results are dropped as soon as printed: no cycles to find
    with ctx:
        try:
            if args.command == "triage":
                try:
                    # --now read once (a bad one is a usage error)
                    opts: Dict[str, Any] = dict(sender=args.sender, recipient=args.recipient,
                                                now=ctx._now(args.now), explain=args.explain)
                except InvalidArgumentError as e:
                    print("python3 -m candor triage: --now %s: %s" % (args.now, e),
                          file=sys.stderr)
                    return EXIT_USAGE
                results = ordered_map(lambda f: _triage_one(ctx, item(f), f, opts),
                                      files, max(1, args.jobs) if "-" not in files else 1)
                for f, r in zip(files, results):
                    status = _emit(out, f, r, status)
            else:
                for f in files:
                    try:
                        parsed: Any = ctx.parse(item(f), file=f)
                    except Error as e:
                        parsed = e
                    status = _emit(out, f, parsed, status)
            out.flush()
        except BrokenPipeError:
            try:
                sys.stdout = open(os.devnull, "w")
            except OSError:
                pass
            return EXIT_PROBLEM
        except TemporaryError as e:
            print("python3 -m candor: %s" % e, file=sys.stderr)
            return EXIT_TEMPFAIL
    return status


def _triage_one(ctx: Context, data: Any, f: str, opts: Dict[str, Any]) -> Any:
    try:
        return ctx.triage(data, file=f, **opts)
    except Error as e:
        return e


def _emit(out: Any, f: str, r: Any, status: int) -> int:
    """Write the object for file F (a result, or an Error); new status."""
    if isinstance(r, TemporaryError):
        raise r
    if isinstance(r, Error):
        try:
            obj = unreadable(f, str(r))
        except Error:
            print("python3 -m candor: %s: %s" % (f, r), file=sys.stderr)
            return EXIT_PROBLEM
        out.write(_dump(obj))
        out.write("\n")
        return EXIT_PROBLEM
    out.write(r.to_json())   # the library's own JSON text for this result
    out.write("\n")
    if r.errors:
        return EXIT_PROBLEM
    return status


if __name__ == "__main__":
    sys.exit(main())
