#!/usr/bin/env python3
"""Crash test (issue 9): `candor triage --maildir --apply headers` and
`--apply move`, killed with SIGKILL at random moments, then run to
completion. Afterwards every message is present exactly once (by
Message-ID), its body byte-identical, its other header bytes, name, new/cur
and flags kept, and every message labelled (headers: an X-Candor-Intent at
the top; move: it sits in its .<intent>/ folder).

messages: argv[1] or MAILDIR_CRASH_COUNT (default 300; 2000 with -Dslow_tests=true),
MAILDIR_CRASH_KILLS kills per mode (default 10), MAILDIR_CRASH_SEED.
"""
import collections
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mdtest import (ADDR, BIN, INTENTS, Checks, base_and_flags, gen_corpus,  # noqa: E402
                    maildir_files, message_id, require_triage, split, strip_candor)

COUNT = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MAILDIR_CRASH_COUNT", "300"))
KILLS = int(os.environ.get("MAILDIR_CRASH_KILLS", "10"))
SEED = int(os.environ.get("MAILDIR_CRASH_SEED", str(int(time.time()) % 100000)))
t = Checks()


def load(root):
    """Message-ID -> list of (folder, sub, base, flags, raw)."""
    out = collections.defaultdict(list)
    for f, sub, n, p in maildir_files(root):
        with open(p, "rb") as fh:
            raw = fh.read()
        base, flags = base_and_flags(n)
        out[message_id(raw) or "(none):" + base].append((f, sub, base, flags, raw))
    return out


def cmd(d, mode):
    return [BIN, "triage", "--maildir", d, "--jobs", "2", "--apply", mode,
            "--recursive"] + ADDR


def timed_run(d, mode):
    t0 = time.monotonic()
    r = subprocess.run(cmd(d, mode), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.monotonic() - t0, r


def crash_mode(work, orig, ref, mode, rng):
    d = os.path.join(work, mode)
    shutil.copytree(orig, d, symlinks=True)
    # how long a whole run takes, on a scratch copy
    scratch = os.path.join(work, mode + "-scratch")
    shutil.copytree(orig, scratch, symlinks=True)
    full, r = timed_run(scratch, mode)
    shutil.rmtree(scratch)
    t.ok(r.returncode == 0, f"{mode}: uninterrupted run", r.stderr.decode()[-300:])
    # Kill at a random moment of each run; a run that ends before its kill
    # tells how long the (shrinking) remaining work takes now.
    killed = finished = 0
    est = full
    while killed < KILLS and finished < 3 * KILLS:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd(d, mode), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, est * 0.9))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed += 1
            p.wait()
        else:
            finished += 1
            est = time.monotonic() - t0
    leftovers = sum(len(os.listdir(os.path.join(f, "tmp")))
                    for f in [d] + [os.path.join(d, x) for x in os.listdir(d)
                                    if x.startswith(".") and os.path.isdir(os.path.join(d, x, "tmp"))])
    r = subprocess.run(cmd(d, mode), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t.ok(r.returncode == 0, f"{mode}: final run exit 0", r.stderr.decode()[-300:])

    got = load(d)
    once = sum(1 for v in got.values() if len(v) == 1)
    dups = sum(len(v) - 1 for v in got.values() if len(v) > 1)
    missing = sum(1 for k in ref if k not in got)
    extra = sum(1 for k in got if k not in ref)
    body_same = flags_kept = labelled = header_kept = 0
    for mid, refs in ref.items():
        for (f0, sub0, base0, flags0, raw0), now in zip(refs, got.get(mid, [])):
            f, sub, base, flags, raw = now
            h0, b0 = split(raw0)
            h, b = split(raw)
            body_same += b == b0
            flags_kept += (sub, base, flags) == (sub0, base0, flags0)
            if mode == "headers":
                header_kept += strip_candor(h) == h0
                labelled += h.lower().startswith(b"x-candor-intent:")
            else:
                header_kept += raw == raw0
                labelled += f[1:] in INTENTS
    n = sum(len(v) for v in ref.values())
    print(f"{mode}: {n} messages, {killed} SIGKILLs mid-run ({finished} runs ended before their kill), "
          f"run {full:.2f} s; afterwards: {once} present once, {dups} duplicates, "
          f"{missing} missing, {extra} unknown, {body_same} bodies identical, "
          f"{header_kept} headers kept, {flags_kept} names/flags kept, {labelled} labelled, "
          f"{leftovers} stale tmp/ files before the final run", flush=True)
    t.ok(once == len(ref) and dups == 0 and missing == 0 and extra == 0,
         f"{mode}: every message exactly once")
    t.ok(body_same == n, f"{mode}: bodies byte-identical", f"{body_same}/{n}")
    t.ok(header_kept == n, f"{mode}: other header bytes kept", f"{header_kept}/{n}")
    t.ok(flags_kept == n, f"{mode}: names, new/cur and flags kept", f"{flags_kept}/{n}")
    t.ok(labelled == n, f"{mode}: every message labelled", f"{labelled}/{n}")
    t.ok(killed > 0, f"{mode}: at least one kill landed mid-run")


def main():
    require_triage()
    print(f"seed {SEED}")
    rng = random.Random(SEED)
    work = tempfile.mkdtemp(prefix="candor-crash-")
    try:
        orig = os.path.join(work, "orig")
        gen_corpus(orig, COUNT, seed=11)
        # Dovecot-style sizes on some names, so the size rename is exercised
        for i, (f, sub, n, p) in enumerate(maildir_files(orig)):
            if i % 5 == 0:
                base, _, info = n.partition(":")
                nn = f"{base},S={os.path.getsize(p)}" + (":" + info if info else "")
                os.rename(p, os.path.join(os.path.dirname(p), nn))
        ref = load(orig)
        flagged = sum(1 for v in ref.values() for x in v if x[1] == "cur" and x[3] not in (None, "2,"))
        print(f"corpus: {COUNT} messages, {len(ref)} Message-IDs, {flagged} flagged in cur/")
        t.ok(flagged > 0, "some messages in cur/ with flags")
        for mode in ("headers", "move"):
            crash_mode(work, orig, ref, mode, rng)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    t.finish()


if __name__ == "__main__":
    main()
