#!/usr/bin/env python3
"""examples/triage_report.py over a generated maildir: runs cleanly, its
per-intent counts match the API's own triage of the same messages, and the
attention list puts the most urgent first."""

from __future__ import annotations

import collections
import re
import subprocess
import sys
import unittest

from common import SOURCE, candor, corpus, env_for_subprocess, maildir_files, run

URGENCY_RANK = {"critical": 3, "high": 2, "normal": 1, "low": 0}


class TestTriageReport(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.maildir = corpus(120, 9)
        # as a user runs it from the source tree: no PYTHONPATH, cwd examples/
        env = env_for_subprocess()
        env.pop("PYTHONPATH", None)
        p = subprocess.run([sys.executable, "triage_report.py",
                            "--jobs", "2", "--limit", "1000", str(cls.maildir)],
                           cwd=str(SOURCE / "examples"), env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=300)
        cls.proc = p
        with candor.Context() as ctx:
            cls.want = [ctx.triage(f) for f in maildir_files(cls.maildir)]

    def test_runs(self) -> None:
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        self.assertEqual(self.proc.stderr, "")

    def test_counts(self) -> None:
        rows = {}
        for line in self.proc.stdout.splitlines():
            m = re.match(r"^(\w+)\s+(\d+)\s+([\d.]+)%\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(\d+)$", line)
            if m and m.group(1) in candor.INTENTS:
                rows[m.group(1)] = (int(m.group(2)), float(m.group(4)))
        counts = collections.Counter(t.intent for t in self.want)
        self.assertEqual({k: v[0] for k, v in rows.items()}, dict(counts))
        m = re.search(r"^total\s+(\d+)$", self.proc.stdout, re.M)
        self.assertTrue(m)
        self.assertEqual(int(m.group(1)), len(self.want))
        import statistics
        for intent, (count, median) in rows.items():
            want = statistics.median(t.confidence for t in self.want if t.intent == intent)
            self.assertAlmostEqual(median, want, delta=0.006, msg=intent)

    def test_attention_first(self) -> None:
        m = re.search(r"^Needs attention first: (\d+) of (\d+)", self.proc.stdout, re.M)
        self.assertTrue(m, self.proc.stdout[:500])
        want = [t for t in self.want if URGENCY_RANK[t.urgency] >= 2 or t.churn_risk]
        self.assertEqual(int(m.group(1)), len(want))
        ranks = []
        for line in self.proc.stdout.splitlines():
            f = line.split()
            if line.startswith("  ") and f and f[0] in URGENCY_RANK and f[1] in ("yes", "no"):
                ranks.append((URGENCY_RANK[f[0]], f[1] == "yes"))
        self.assertEqual(len(ranks), len(want))
        keys = [(-r, not churn) for r, churn in ranks]
        self.assertEqual(keys, sorted(keys))


if __name__ == "__main__":
    run()
