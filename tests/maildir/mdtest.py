"""Helpers shared by the maildir and filter script tests (issue 9).

Environment (tests/meson.build): CANDOR_BIN (the candor CLI), CANDOR_SHARED
(../shared: tools/gen-corpus, tools/lda-sandbox). Each test prints
"N passed, N failed" as its last line; exit 77 (meson: skipped) when the
library parts it needs are not there yet.
"""
import email.parser
import os
import re
import subprocess
import sys
import tempfile

BIN = os.environ.get("CANDOR_BIN", "candor")
SHARED = os.environ.get("CANDOR_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
GEN = os.path.join(SHARED, "tools", "gen-corpus")
ADDR = ["--address", "support@shop.example"]
INTENTS = ["complaint", "refund", "cancellation", "billing", "order_status",
           "technical_support", "account_change", "sales_inquiry", "praise",
           "general_question"]


class Checks:
    """Named checks; prints each failure, then the summary line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, cond, name, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {name}" + (f": {detail}" if detail else ""), flush=True)
        return cond

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)


def skip(why):
    print(f"SKIP: {why}")
    print("0 passed, 0 failed")
    sys.exit(77)


def run(args, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([BIN] + args, **kw)


def gen_corpus(out, count, seed=1):
    subprocess.run([sys.executable, GEN, "--count", str(count), "--seed", str(seed),
                    "--out", out], check=True, stdout=subprocess.DEVNULL)


def require_triage():
    """Skip unless `candor triage --maildir` works on a one-message maildir."""
    with tempfile.TemporaryDirectory() as d:
        gen_corpus(d, 1)
        r = run(["triage", "--maildir", d] + ADDR)
        if r.returncode != 0 or not r.stdout.strip():
            skip("candor triage --maildir does not work yet: "
                 + r.stderr.decode(errors="replace").strip()[:200])


def split(raw):
    """(header bytes incl. the blank line, body bytes) of a message."""
    m = re.search(rb"\r?\n\r?\n", raw)
    if not m:
        return raw, b""
    return raw[:m.end()], raw[m.end():]


def strip_candor(header):
    """The header without X-Candor-* fields (continuations included)."""
    out, dropping = [], False
    for line in header.splitlines(keepends=True):
        if line[:1] not in (b" ", b"\t"):
            dropping = line.lower().startswith(b"x-candor-")
        if not dropping:
            out.append(line)
    return b"".join(out)


def candor_fields(header):
    return [l for l in header.splitlines() if l.lower().startswith(b"x-candor-")]


def message_id(raw):
    h, _ = split(raw)
    msg = email.parser.BytesHeaderParser().parsebytes(h)
    v = msg.get("Message-ID")
    return str(v).strip() if v is not None else None


def base_and_flags(name):
    """('base without ,S=/,W=', 'flags' or None) of a maildir file name."""
    base, sep, info = name.partition(":")
    base = re.sub(r",[SW]=\d+", "", base)
    return base, (info if sep else None)


def maildir_files(root):
    """Every message file under the maildir ROOT (root and .folders,
    new/ and cur/): list of (folder, sub, name, path)."""
    out = []
    folders = [""] + sorted(f for f in os.listdir(root)
                            if f.startswith(".") and f not in (".", "..")
                            and os.path.isdir(os.path.join(root, f)))
    for f in folders:
        for sub in ("new", "cur"):
            d = os.path.join(root, f, sub)
            if not os.path.isdir(d):
                continue
            for n in sorted(os.listdir(d)):
                if not n.startswith("."):
                    out.append((f, sub, n, os.path.join(d, n)))
    return out


def snapshot(root):
    """{relative path: (bytes, mtime_ns, mode)} of every file under ROOT."""
    snap = {}
    for dp, dn, fn in os.walk(root):
        for n in fn:
            p = os.path.join(dp, n)
            st = os.stat(p)
            with open(p, "rb") as f:
                snap[os.path.relpath(p, root)] = (f.read(), st.st_mtime_ns, st.st_mode)
    return snap
