#!/usr/bin/env python3
"""triage_report.py -- triage a support maildir and print a per-intent report.

    python3 examples/triage_report.py [--jobs N] [--recursive] [--limit N]
                                      [--config FILE] [--state FILE] MAILDIR

First the messages that need a human soonest -- critical or high urgency,
or a churn risk (the sender threatens to leave, a chargeback, a review, a
lawyer) -- most pressing first; then, per intent, the number of messages,
their share, the median confidence, and how many of them are urgent or at
risk. Unreadable messages are counted, not fatal. Nothing in the maildir or
the state is changed (triage only reads the state).

Uses the candor Python package (bindings/python): run it from a source
checkout (it finds the package and the build tree itself) or with the
package installed; set CANDOR_LIBRARY to pick a particular libcandor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections import defaultdict
from typing import Dict, Iterator, List, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))
# examples/candor/ is the C tool's source directory, not the Python package:
# keep this script's directory out of the import path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
try:
    import candor
    candor.Context
except (ImportError, AttributeError):  # from the source tree, not installed
    sys.modules.pop("candor", None)
    sys.path.insert(0, os.path.join(_HERE, "..", "bindings", "python"))
    import candor

URGENCY_RANK = {"critical": 3, "high": 2, "normal": 1, "low": 0}


def maildir_messages(root: str, recursive: bool) -> Iterator[str]:
    """new/ then cur/ of ROOT (and of its maildir++ folders with RECURSIVE)."""
    folders = [root]
    if recursive:
        folders += sorted(os.path.join(root, e.name) for e in os.scandir(root)
                          if e.name.startswith(".") and e.is_dir()
                          and e.name not in (".", ".."))
    for folder in folders:
        for sub in ("new", "cur"):
            d = os.path.join(folder, sub)
            if not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                if not name.startswith("."):
                    yield os.path.join(d, name)


def needs_attention(t: candor.Triage) -> bool:
    return URGENCY_RANK.get(t.urgency or "", 0) >= 2 or t.churn_risk


def sender(t: candor.Triage) -> str:
    f = t.from_ or {}
    return f.get("address") or f.get("name") or "(unknown sender)"


def clip(s: Optional[str], n: int) -> str:
    s = (s or "").replace("\n", " ").replace("\t", " ")
    return s if len(s) <= n else s[: n - 1] + "…"


def report(results: List[candor.Triage], unreadable: List[str], limit: int,
           out=sys.stdout) -> None:
    w = out.write
    urgent = sorted((t for t in results if needs_attention(t)),
                    key=lambda t: (-URGENCY_RANK.get(t.urgency or "", 0),
                                   not t.churn_risk, -t.confidence, t.file or ""))
    w("Needs attention first: %d of %d messages (urgency high/critical or churn risk)\n"
      % (len(urgent), len(results)))
    if urgent:
        w("  %-8s %-5s %-17s %5s  %-28s %s\n" % ("urgency", "churn", "intent", "conf",
                                                 "from", "subject"))
        for t in urgent[:limit]:
            w("  %-8s %-5s %-17s %5.2f  %-28s %s\n"
              % (t.urgency, "yes" if t.churn_risk else "no", t.intent, t.confidence,
                 clip(sender(t), 28), clip(t.subject, 60)))
        if len(urgent) > limit:
            w("  ... and %d more (--limit)\n" % (len(urgent) - limit))
    w("\n")

    by_intent: Dict[str, List[candor.Triage]] = defaultdict(list)
    for t in results:
        by_intent[t.intent or "?"].append(t)
    total = len(results) or 1
    w("%-18s %6s %7s %9s %7s %6s %7s\n" % ("intent", "count", "share", "median conf",
                                          "urgent", "churn", "auto-ack"))
    for intent in sorted(by_intent, key=lambda i: (-len(by_intent[i]), i)):
        ts = by_intent[intent]
        w("%-18s %6d %6.1f%% %11.2f %7d %6d %7d\n"
          % (intent, len(ts), 100.0 * len(ts) / total,
             statistics.median(t.confidence for t in ts),
             sum(URGENCY_RANK.get(t.urgency or "", 0) >= 2 for t in ts),
             sum(bool(t.churn_risk) for t in ts),
             sum(bool(t.autoreply.get("send")) for t in ts)))
    w("%-18s %6d\n" % ("total", len(results)))
    if unreadable:
        w("\n%d message(s) could not be read:\n" % len(unreadable))
        for line in unreadable[:limit]:
            w("  %s\n" % line)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("maildir")
    p.add_argument("--recursive", action="store_true", help="include maildir++ folders")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="threads sharing one candor.Context (default: the cores)")
    p.add_argument("--limit", type=int, default=25, help="rows of the attention list")
    p.add_argument("--config", help="Candor configuration file")
    p.add_argument("--state", help="state database (read only)")
    args = p.parse_args(argv)
    if not os.path.isdir(os.path.join(args.maildir, "cur")) and \
            not os.path.isdir(os.path.join(args.maildir, "new")):
        print("triage_report: %s is not a maildir (no cur/ or new/)" % args.maildir,
              file=sys.stderr)
        return 2
    try:
        ctx = candor.Context(config=args.config, state=args.state)
    except candor.Error as e:
        print("triage_report: %s" % e, file=sys.stderr)
        return 2
    results: List[candor.Triage] = []
    unreadable: List[str] = []
    with ctx:
        files = list(maildir_messages(args.maildir, args.recursive))
        for f, r in zip(files, ctx.triage_many(files, jobs=args.jobs, errors="return")):
            if isinstance(r, candor.Error):
                unreadable.append("%s: %s" % (f, r))
            else:
                results.append(r)
    report(results, unreadable, args.limit)
    return 1 if unreadable else 0


if __name__ == "__main__":
    sys.exit(main())
