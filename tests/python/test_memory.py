#!/usr/bin/env python3
"""20,000 parse+triage calls in one process keep the resident set flat:
at most 4 MiB of growth after a warm-up of 2,000 calls, and at most 2 MiB
more of malloc'd memory in use (glibc mallinfo2), which catches a leak of
~100 bytes per call that RSS alone might hide."""

from __future__ import annotations

import ctypes
import gc
import unittest

from common import candor, corpus, maildir_files, run, tmpdir

CALLS = 20000
WARMUP = 2000
MAX_RSS_GROWTH = 4 << 20
MAX_HEAP_GROWTH = 2 << 20


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]


def heap_in_use() -> int:
    libc = ctypes.CDLL(None)
    f = getattr(libc, "mallinfo2", None)
    if f is None:
        return 0
    f.restype = MallInfo2
    m = f()
    return m.uordblks + m.hblkhd


class TestMemory(unittest.TestCase):
    def test_parse_triage_flat(self) -> None:
        # small and medium messages (what a mailbox mostly gets), as bytes and paths
        files = [f for f in maildir_files(corpus(300, 5))][:60]
        data = [open(f, "rb").read() for f in files]
        items = [d for d in data if len(d) < 64 * 1024][:40] + files[:10]
        state = str(tmpdir() / "state.db")
        with candor.Context(state=state) as ctx:
            def batch(n: int) -> None:
                for i in range(n):
                    item = items[i % len(items)]
                    if i % 2:
                        ctx.parse(item)
                    else:
                        ctx.triage(item, now=1795000000)
            batch(WARMUP)
            gc.collect()
            r0, h0 = rss(), heap_in_use()
            half = (CALLS - WARMUP) // 2
            batch(half)
            gc.collect()
            r1 = rss()
            batch(CALLS - WARMUP - half)
            gc.collect()
            r2, h2 = rss(), heap_in_use()
        print("RSS after warm-up %.1f MiB, +%.2f MiB after %d more calls (+%.2f MiB at half); "
              "heap in use +%.2f MiB" % (r0 / 2**20, (r2 - r0) / 2**20, CALLS - WARMUP,
                                          (r1 - r0) / 2**20, (h2 - h0) / 2**20))
        self.assertLessEqual(r2 - r0, MAX_RSS_GROWTH)
        self.assertLessEqual(h2 - h0, MAX_HEAP_GROWTH)

    def test_errors_do_not_leak(self) -> None:
        with candor.Context() as ctx:
            def batch(n: int) -> None:
                for i in range(n):
                    try:
                        ctx.parse("/nonexistent/%d.eml" % i)
                    except candor.InputOutputError:
                        pass
            batch(1000)
            gc.collect()
            h0 = heap_in_use()
            batch(10000)
            gc.collect()
            self.assertLessEqual(heap_in_use() - h0, 512 << 10)


if __name__ == "__main__":
    run()
