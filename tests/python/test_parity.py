#!/usr/bin/env python3
"""`python3 -m candor triage` prints the same objects as the C CLI
`candor triage` over a few hundred generated messages (gen-corpus --count
300 --seed 5), object for object, floats to 1e-6; likewise `parse`, and
the same output for any --jobs."""

from __future__ import annotations

import subprocess
import sys
import unittest
from typing import List

from common import (candor, candor_bin, corpus, env_for_subprocess, json_lines,
                    maildir_files, run, same_json, tmpdir)

NOW = "2026-11-24T12:00:00Z"


def run_cmd(argv: List[str], ok=(0, 1)) -> str:
    p = subprocess.run(argv, env=env_for_subprocess(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode not in ok:
        raise AssertionError("%s exited %d: %s" % (" ".join(argv[:4]), p.returncode,
                                                   p.stderr.decode(errors="replace")[-2000:]))
    return p.stdout.decode("utf-8")


class TestParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.bin = candor_bin()
        if not cls.bin:
            raise unittest.SkipTest("no candor CLI (CANDOR_BIN)")
        cls.maildir = corpus(300, 5)
        cls.files = maildir_files(cls.maildir)
        cls.state = str(tmpdir() / "state.db")   # absent: an empty state

    def compare(self, want: list, got: list) -> None:
        self.assertEqual(len(want), len(got))
        diffs = []
        for w, g in zip(want, got):
            d = same_json(w, g)
            if d:
                diffs.append("%s: %s" % (w.get("file"), d))
        self.assertEqual(diffs[:5], [], "%d of %d objects differ" % (len(diffs), len(want)))

    def test_triage_files(self) -> None:
        common = ["--state", self.state, "--now", NOW]
        want = json_lines(run_cmd([self.bin, "triage", *common, *self.files]))
        got = json_lines(run_cmd([sys.executable, "-m", "candor", "triage", *common,
                                  *self.files]))
        self.assertEqual(len(want), 300)
        self.compare(want, got)

    def test_triage_same_bytes(self) -> None:
        """Not only the same objects: the same bytes (Triage.to_json() is the
        library's own text)."""
        common = ["--state", self.state, "--now", NOW]
        want = run_cmd([self.bin, "triage", *common, *self.files[:100]])
        got = run_cmd([sys.executable, "-m", "candor", "triage", *common, *self.files[:100]])
        self.assertEqual(len(want.splitlines()), 100)
        self.assertEqual(want, got)

    def test_triage_jobs(self) -> None:
        common = ["--state", self.state, "--now", NOW]
        one = run_cmd([sys.executable, "-m", "candor", "triage", *common, *self.files[:120]])
        two = run_cmd([sys.executable, "-m", "candor", "triage", "--jobs", "3", *common,
                       *self.files[:120]])
        self.assertEqual(len(json_lines(one)), 120)
        self.assertEqual(one, two)

    def test_triage_maildir(self) -> None:
        common = ["--state", self.state, "--now", NOW, "--maildir", str(self.maildir)]
        want = json_lines(run_cmd([self.bin, "triage", "--jobs", "1", *common]))
        got = json_lines(run_cmd([sys.executable, "-m", "candor", "triage", *common]))
        key = lambda o: o["file"]
        self.assertEqual(len(want), 300)
        self.compare(sorted(want, key=key), sorted(got, key=key))

    def test_parse_files(self) -> None:
        want = json_lines(run_cmd([self.bin, "parse", *self.files[:150]]))
        got = json_lines(run_cmd([sys.executable, "-m", "candor", "parse", *self.files[:150]]))
        self.assertEqual(len(want), 150)
        self.compare(want, got)

    def test_api_objects(self) -> None:
        """The dataclasses carry exactly the CLI's members."""
        want = json_lines(run_cmd([self.bin, "triage", "--state", self.state, "--now", NOW,
                                   *self.files[:50]]))
        with candor.Context(state=self.state) as ctx:
            got = []
            for f, w in zip(self.files[:50], want):
                t = ctx.triage(f, now=NOW)
                self.assertEqual((t.intent, t.urgency, t.sentiment, t.churn_risk),
                                 (w["intent"], w["urgency"], w["sentiment"], w["churn_risk"]))
                self.assertAlmostEqual(t.confidence, w["confidence"], delta=1e-6)
                got.append(t.as_dict())
        self.compare(want, got)


if __name__ == "__main__":
    run()
