#!/usr/bin/env python3
"""candor filter (issue 9): the message on stdin comes out on stdout with
the X-Candor-* fields at the top, every other byte unchanged; exit statuses;
and real delivery through Dovecot's LDA with a Sieve vnd.dovecot.filter
script (../shared/tools/lda-sandbox), procmail (:0 fw) and maildrop
(xfilter), including a failing filter (unreadable configuration) whose
message is delivered unfiltered (or, where the agent is told so, kept for a
retry with exit 75) and never lost.

The delivery-agent parts need root and the Debian packages dovecot-core,
dovecot-sieve, procmail and maildrop (.ci/packages); without them those
checks are reported as skipped.
"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mdtest import (ADDR, BIN, INTENTS, SHARED, Checks, candor_fields,  # noqa: E402
                    gen_corpus, maildir_files, require_triage, split, strip_candor)

SAMPLE = int(os.environ.get("FILTER_TEST_SAMPLE", "12"))
t = Checks()
skipped = []


def filt(data, *args):
    return subprocess.run([BIN, "filter"] + ADDR + list(args), input=data,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def labelled_ok(inp, out):
    """OUT is INP with X-Candor fields at the top, nothing else changed."""
    h0, b0 = split(inp)
    h, b = split(out)
    if b != b0:
        return "body differs"
    if strip_candor(h) != strip_candor(h0):
        return "header bytes differ"
    start = h
    if inp.startswith(b"From "):
        first = inp.split(b"\n", 1)[0] + b"\n"
        if not h.startswith(first):
            return "From_ line not kept first"
        start = h[len(first):]
    if not start.lower().startswith(b"x-candor-intent:"):
        return "fields not at the top"
    if len([l for l in candor_fields(h) if l.lower().startswith(b"x-candor-intent:")]) != 1:
        return "not exactly one X-Candor-Intent"
    return None


def intent_of(raw):
    for l in candor_fields(split(raw)[0]):
        if l.lower().startswith(b"x-candor-intent:"):
            return l.split(b":", 1)[1].strip().decode()
    return None


def main():
    require_triage()
    work = tempfile.mkdtemp(prefix="candor-filter-")
    os.chmod(work, 0o755)
    try:
        corpus = os.path.join(work, "corpus")
        gen_corpus(corpus, SAMPLE, seed=5)
        samples = []
        for f, s, n, p in maildir_files(corpus):
            with open(p, "rb") as fh:
                samples.append(fh.read())

        # ---- the filter alone ----
        bad = []
        for raw in samples:
            r = filt(raw)
            why = labelled_ok(raw, r.stdout) if r.returncode == 0 else f"exit {r.returncode}"
            if why:
                bad.append(why)
        t.ok(not bad, "each sample labelled, every other byte kept", "; ".join(bad[:3]))
        raw = samples[0]
        h, b = split(raw)
        forged = b"X-Candor-Intent: praise\nx-candor-urgency: low\n  folded\n" + h + b
        r = filt(forged)
        t.ok(r.returncode == 0 and labelled_ok(raw, r.stdout) is None and
             b"folded" not in r.stdout, "existing X-Candor-* fields removed first")
        mbox = b"From alice@example.com Sat Nov 28 12:00:00 2026\n" + raw
        r = filt(mbox)
        t.ok(r.returncode == 0 and labelled_ok(mbox, r.stdout) is None,
             "an mbox From_ line stays first")
        crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        r = filt(crlf)
        hh = split(r.stdout)[0]
        t.ok(r.returncode == 0 and labelled_ok(crlf, r.stdout) is None and
             all(l.endswith(b"\r") for l in hh.split(b"\n")[:-1]),
             "CRLF message: CRLF fields")
        r = filt(b"")
        t.ok(r.returncode in (0, 75) and (r.returncode != 0 or r.stdout == r.stdout),
             "empty input: no crash", str(r.returncode))
        r = filt(raw, "--no-such-option")
        t.ok(r.returncode == 2 and r.stdout == b"", "bad usage: exit 2, nothing on stdout")
        r = filt(raw, "--config", os.path.join(work, "missing.xml"))
        t.ok(r.returncode == 75 and r.stdout == b"", "missing config: exit 75, nothing on stdout",
             str(r.returncode))
        unreadable = os.path.join(work, "unreadable.xml")
        with open(unreadable, "w") as fh:
            fh.write("<candor/>\n")
        os.chmod(unreadable, 0)
        if os.geteuid() != 0:
            r = filt(raw, "--config", unreadable)
            t.ok(r.returncode == 75 and r.stdout == b"", "unreadable config: exit 75")
        invalid = os.path.join(work, "invalid.xml")
        with open(invalid, "w") as fh:
            fh.write("<not-candor/>\n")
        r = filt(raw, "--config", invalid)
        t.ok(r.returncode == 2 and r.stdout == b"", "invalid config: exit 2, nothing on stdout",
             str(r.returncode))
        r = filt(raw, "--help")
        t.ok(r.returncode == 0 and b"Usage: candor filter" in r.stdout, "--help")
        r = filt(raw, "--version")
        t.ok(r.returncode == 0 and r.stdout.startswith(b"candor "), "--version")

        ack_checks(work, samples)

        # the failing filter used by the delivery agents: as the agent's user
        # (nobody) the configuration cannot be read
        failing = [BIN, "filter", "--config", unreadable] + ADDR
        good = [BIN, "filter"] + ADDR
        root = os.geteuid() == 0
        lda(work, samples, good, failing, root)
        procmail(work, samples, good, failing)
        maildrop(work, samples, good, failing)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if skipped:
        print("skipped: " + "; ".join(skipped))
    t.finish()


def ack_checks(work, samples):
    """filter --ack: the ticket goes into X-Candor-Ticket, sendmail gets the
    acknowledgement once the labelled message is out, and never twice."""
    datadir = os.environ.get("CANDOR_DATADIR")
    if not datadir or not os.path.exists(os.path.join(datadir, "candor.xml")):
        skipped.append("filter --ack (no CANDOR_DATADIR)")
        return
    import re
    outbox = os.path.join(work, "outbox")
    os.makedirs(outbox)
    stub = os.path.join(work, "sendmail-stub")
    with open(stub, "w") as fh:
        fh.write(f"#!/bin/sh\nn=$(mktemp '{outbox}/ack.XXXXXX')\ncat > \"$n\"\n")
    os.chmod(stub, 0o755)
    with open(os.path.join(datadir, "candor.xml"), encoding="utf-8") as fh:
        conf = fh.read()
    conf = re.sub(r'<sendmail command="[^"]*"', f'<sendmail command="{stub}"', conf)
    conf = re.sub(r'<model path="([^"/][^"]*)"',
                  lambda m: f'<model path="{os.path.join(datadir, m.group(1))}"', conf)
    cfg = os.path.join(work, "ack.xml")
    with open(cfg, "w", encoding="utf-8") as fh:
        fh.write(conf)
    state = os.path.join(work, "filter-ack.db")
    args = ["--ack", "--config", cfg, "--state", state, "--now", "2026-11-24T10:00:00Z"]
    tickets = sent = 0
    for raw in samples:
        before = len(os.listdir(outbox))
        r = filt(raw, *args)
        h = split(r.stdout)[0]
        if r.returncode != 0 or labelled_ok(raw, r.stdout):
            t.ok(False, "filter --ack: labelled", r.stderr.decode()[-200:])
            return
        yes = b"X-Candor-Autoreply: yes" in h
        sent += len(os.listdir(outbox)) - before
        tickets += b"X-Candor-Ticket: " in h
        if yes != (len(os.listdir(outbox)) - before == 1):
            t.ok(False, "filter --ack: sendmail called exactly when the decision says yes")
            return
    t.ok(True, "filter --ack: sendmail called exactly when the decision says yes")
    t.ok(tickets > 0, "filter --ack: X-Candor-Ticket assigned", f"{tickets} tickets, {sent} sent")
    before = len(os.listdir(outbox))
    for raw in samples:   # the same mail again (a redelivery): no second ack
        r = filt(raw, *args)
    t.ok(len(os.listdir(outbox)) == before, "filter --ack: a redelivered message is not acknowledged twice")


def lda(work, samples, good, failing, root):
    tool = os.path.join(SHARED, "tools", "lda-sandbox")
    if not root or not os.path.exists("/usr/lib/dovecot/dovecot-lda") or not shutil.which("sievec"):
        skipped.append("Dovecot LDA (needs root, dovecot-core, dovecot-sieve)")
        return
    for name, prog in (("good", good), ("failing", failing)):
        d = os.path.join(work, "lda-" + name)
        r = subprocess.run([tool, "setup", d] + prog, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if not t.ok(r.returncode == 0, f"lda-sandbox setup ({name})", r.stderr.decode()[-300:]):
            return
        codes = []
        for raw in samples:
            p = subprocess.run([tool, "deliver", d, "customer@customer.example"], input=raw,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            codes.append(p.returncode)
        mdir = os.path.join(d, "home", "Maildir")
        got = {}
        for f, s, n, p in maildir_files(mdir):
            with open(p, "rb") as fh:
                got.setdefault(f, []).append(fh.read())
        n_all = sum(len(v) for v in got.values())
        t.ok(all(c == 0 for c in codes) and n_all == len(samples),
             f"Dovecot LDA ({name}): every sample delivered once", f"{codes} {n_all}")
        if name == "good":
            misfiled = 0
            for folder, msgs in got.items():
                for m in msgs:
                    if folder != "." + str(intent_of(m)) or intent_of(m) not in INTENTS:
                        misfiled += 1
            t.ok(misfiled == 0 and "" not in got,
                 "Dovecot LDA + Sieve filter: filed into .<X-Candor-Intent>/", f"{misfiled}")
            bodies = sorted(split(m)[1] for v in got.values() for m in v)
            t.ok(bodies == sorted(split(s)[1] for s in samples), "Dovecot LDA: bodies intact")
        else:
            inbox = got.get("", [])
            t.ok(len(inbox) == len(samples) and not any(candor_fields(split(m)[0]) for m in inbox),
                 "Dovecot LDA, failing filter: delivered unfiltered to INBOX, none lost")
            t.ok(sorted(split(m)[1] for m in inbox) == sorted(split(s)[1] for s in samples),
                 "Dovecot LDA, failing filter: bodies intact")


def run_agent(argv, raw, env=None):
    return subprocess.run(argv, input=raw, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env)


def sh_words(argv):
    return " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)


def nobody_can_fail(failing):
    """As root the unreadable config would be readable: drop to nobody for
    the failing filter, so the failure is the real one (EACCES)."""
    if os.geteuid() == 0 and shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"] + failing
    return failing


def procmail(work, samples, good, failing):
    if not shutil.which("procmail"):
        skipped.append("procmail (not installed)")
        return
    for name, prog, tail in (("good", good, ""), ("failing", nobody_can_fail(failing), ""),
                             ("failing+tempfail", nobody_can_fail(failing),
                              ":0 e\n{ EXITCODE=75 HOST }\n")):
        d = os.path.join(work, "procmail-" + name.replace("+", "-"))
        md = os.path.join(d, "Maildir")
        for s in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, s))
        rc = os.path.join(d, "rc")
        with open(rc, "w") as fh:
            fh.write(f"SHELL=/bin/sh\nLOGFILE={d}/log\n:0 fw\n| {sh_words(prog)}\n{tail}"
                     f":0\n{md}/\n")
        codes = [run_agent(["procmail", "-m", rc], raw).returncode for raw in samples]
        got = []
        for f, s, n, p in maildir_files(md):
            with open(p, "rb") as fh:
                got.append(fh.read())
        if name == "good":
            t.ok(all(c == 0 for c in codes) and len(got) == len(samples) and
                 all(labelled_ok_any(m, samples, True) for m in got),
                 "procmail :0 fw: delivered labelled, bytes kept", f"{codes} {len(got)}")
        elif name == "failing":
            t.ok(all(c == 0 for c in codes) and sorted(got) == sorted(samples),
                 "procmail, failing filter: delivered unfiltered, byte for byte",
                 f"{codes} {len(got)}")
        else:
            t.ok(all(c == 75 for c in codes) and not got,
                 "procmail, failing filter + ':0 e' EXITCODE=75: kept for a retry (exit 75)",
                 f"{codes} {len(got)}")


def labelled_ok_any(m, samples, extra_nl=False):
    # procmail ends what a filter gave it with an empty line, as mbox wants;
    # the filter's own output was checked byte for byte above
    cands = [m] + ([m[:-1]] if extra_nl and m.endswith(b"\n\n") else [])
    for c in cands:
        b = split(c)[1]
        for raw in samples:
            if split(raw)[1] == b and labelled_ok(raw, c) is None:
                return True
    return False


def maildrop(work, samples, good, failing):
    if not shutil.which("maildrop"):
        skipped.append("maildrop (not installed)")
        return
    for name, prog, wrap in (("good", good, False), ("failing", nobody_can_fail(failing), False),
                             ("failing+exception", nobody_can_fail(failing), True)):
        d = os.path.join(work, "maildrop-" + name.replace("+", "-"))
        md = os.path.join(d, "Maildir")
        for s in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, s))
        mf = os.path.join(d, "mailfilter")
        x = f'xfilter "{sh_words(prog)}"'
        with open(mf, "w") as fh:
            fh.write((f"exception {{\n  {x}\n}}\n" if wrap else x + "\n") + f'to "{md}/"\n')
        os.chmod(mf, stat.S_IRUSR | stat.S_IWUSR)
        codes = [run_agent(["maildrop", mf], raw).returncode for raw in samples]
        got = []
        for f, s, n, p in maildir_files(md):
            with open(p, "rb") as fh:
                got.append(fh.read())
        if name == "good":
            t.ok(all(c == 0 for c in codes) and len(got) == len(samples) and
                 all(labelled_ok_any(m, samples) for m in got),
                 "maildrop xfilter: delivered labelled, bytes kept", f"{codes} {len(got)}")
        elif name == "failing":
            t.ok(all(c == 75 for c in codes) and not got,
                 "maildrop xfilter, failing filter: exit 75, kept for a retry", f"{codes} {len(got)}")
        else:
            t.ok(all(c == 0 for c in codes) and sorted(got) == sorted(samples),
                 "maildrop, failing xfilter inside exception {}: delivered unfiltered",
                 f"{codes} {len(got)}")


if __name__ == "__main__":
    main()
