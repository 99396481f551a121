#!/usr/bin/env python3
"""Four threads triaging different messages through one Context give the
same results as one thread; each thread gets its own store handle, freed
when the thread ends; triage_many(jobs=4) keeps the input order."""

from __future__ import annotations

import gc
import threading
import unittest

from common import candor, corpus, maildir_files, run, tmpdir

NOW = "2026-11-24T12:00:00Z"
THREADS = 4


def run_threads(work, args: list) -> list:
    """WORK(arg) on one thread per ARG, all joined; the repr of every
    exception raised (none lost)."""
    errors: list = []

    def guarded(arg) -> None:
        try:
            work(arg)
        except BaseException as e:  # report, don't lose
            errors.append(repr(e))

    threads = [threading.Thread(target=guarded, args=(a,)) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


class TestThreads(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.files = maildir_files(corpus(300, 5))[:200]
        cls.data = [open(f, "rb").read() for f in cls.files]
        cls.state = str(tmpdir() / "state.db")

    def reference(self, ctx: candor.Context) -> list:
        return [ctx.triage(f, now=NOW).as_dict() for f in self.files]

    def test_four_threads_one_context(self) -> None:
        with candor.Context(state=self.state) as ctx:
            want = self.reference(ctx)
            got = [None] * len(self.files)
            start = threading.Barrier(THREADS)

            def work(k: int) -> None:
                start.wait()
                for _ in range(2):  # twice, to overlap more
                    for i in range(k, len(self.files), THREADS):
                        # alternate paths and bytes
                        data = self.files[i] if i % 2 else self.data[i]
                        got[i] = ctx.triage(data, file=self.files[i], now=NOW).as_dict()

            self.assertEqual(run_threads(work, list(range(THREADS))), [])
            diffs = [self.files[i] for i in range(len(want)) if want[i] != got[i]]
            self.assertEqual(diffs, [])

    def test_store_per_thread_and_freed(self) -> None:
        with candor.Context(state=self.state) as ctx:
            ctx.triage(self.files[0], now=NOW)          # the main thread's handle
            seen = []

            def work(_: int) -> None:
                ctx.triage(self.files[1], now=NOW)
                seen.append(ctx._store(True))

            self.assertEqual(run_threads(work, list(range(THREADS))), [])
            self.assertEqual(len(seen), THREADS)
            # THREADS ended threads + this one; their handles are freed once
            # their thread-local slots go away.
            gc.collect()
            live = [s for s in list(ctx._stores) if s.ptr]
            self.assertEqual(len(live), 1, "handles of ended threads still open")
        self.assertEqual([s for s in list(ctx._stores) if s.ptr], [])

    def test_triage_many_jobs(self) -> None:
        with candor.Context(state=self.state) as ctx:
            want = self.reference(ctx)
            got = [t.as_dict() for t in ctx.triage_many(self.files, jobs=THREADS, now=NOW)]
            self.assertEqual(want, got)

    def test_ack_threads(self) -> None:
        """Writes from four threads (one read-write store handle each) all
        land: every allowed acknowledgement gets its own ticket."""
        state = str(tmpdir() / "ack.db")
        with candor.Context(state=state) as ctx:
            tickets = []

            def work(k: int) -> None:
                for i in range(k, 40, THREADS):
                    a = ctx.ack(self.data[i], now=NOW)
                    if a.ticket:
                        tickets.append(a.ticket)

            self.assertEqual(run_threads(work, list(range(THREADS))), [])
            self.assertEqual(len(tickets), len(set(tickets)))


if __name__ == "__main__":
    run()
