#!/usr/bin/env python3
"""PostgreSQL stopped for ten seconds under a running candor-lmtpd (issue 11).

A daemon on loopback with `--state` the private server's conninfo receives
a paced stream of customer mail over LMTP (two sessions, one message per
transaction; whatever gets 4xx is retried a second later, as an MTA would).
A few seconds in, PostgreSQL is stopped (pg_ctl -m fast) for OUTAGE seconds,
then started again; the daemon is left alone. Checked and printed:
  - while PostgreSQL is down, no transaction gets 250, and what is refused
    is refused with 451 4.3.0; `candor ack` exits 75;
  - the daemon accepts mail again by itself after the restart (time to the
    first 250 printed);
  - no message delivered while its decision failed (log: status=delivered
    with ack=failed or triage=failed);
  - at the end every message is in the maildir exactly once;
  - no sender got two acknowledgements (the stand-in sendmail counts them),
    and after one daemon restart (which hands over acknowledgements left
    pending while the server was away) every sender has exactly one.

    with-pg.sh python3 tests/pg/test-outage.py [--mails 200] [--senders 100]
        [--outage 10] [--rate 10]
Skips (77) without PostgreSQL or without the backend in the build.
Last line: "N passed, N failed"."""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lmtpd"))
import pgtest  # noqa: E402
from lmtpdtest import Daemon  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--mails", type=int, default=200)
ap.add_argument("--senders", type=int, default=100)
ap.add_argument("--outage", type=float, default=10.0)
ap.add_argument("--before", type=float, default=4.0, help="seconds of stream before the stop")
ap.add_argument("--rate", type=float, default=10.0, help="new messages per second")
ap.add_argument("--sessions", type=int, default=2)
ap.add_argument("--state", help="use this state instead of a fresh PostgreSQL database "
                                "(to try the machinery; the outage checks then fail)")
a = ap.parse_args()

R = pgtest.Report()
if not a.state:
    why = pgtest.pg_backend_problem()
    if why:
        print("outage test skipped: %s" % why)
        R.finish(why)

tmp = tempfile.mkdtemp(prefix="candor-pg-outage-")
os.chmod(tmp, 0o755)
sent_dir = os.path.join(tmp, "sent")
os.makedirs(sent_dir)
fake = os.path.join(tmp, "sendmail")
with open(fake, "w") as f:
    f.write('#!/bin/sh\n# stand-in sendmail: one file per acknowledgement, argv first\n'
            'f=$(mktemp "%s/ack.XXXXXX") || exit 75\n'
            'printf "%%s\\n" "$*" > "$f"\ncat >> "$f"\n' % sent_dir)
os.chmod(fake, 0o755)

state = a.state or pgtest.createdb("candor_outage")
mails = pgtest.make_mails(a.mails, a.senders, tag="outage")
senders = sorted({m["sender"] for m in mails})
os.makedirs(os.path.join(tmp, "daemon"))
d = Daemon({"accept-recipients": "@shop.example"}, workdir=os.path.join(tmp, "daemon"),
           extra_args=["--sendmail", fake, "--address", pgtest.OUR_ADDRESS])
d.state = state

lock = threading.Lock()
events = []        # (start, end, msgid, code, text)
queue = pgtest.RetryQueue()   # the MTA's queue
accepted = {}      # msgid -> count of 250
done_feeding = threading.Event()
stop_all = threading.Event()
t0 = time.time()


def feeder():
    for i, m in enumerate(mails):
        at = t0 + i / a.rate
        while not stop_all.is_set() and time.time() < at:
            time.sleep(min(0.05, max(0.0, at - time.time())))
        queue.put(m)
    done_feeding.set()


def session():
    c = None
    while not stop_all.is_set():
        m = queue.take()
        if m is None:
            if done_feeding.is_set() and queue.empty() and len(accepted) == len(mails):
                break
            time.sleep(0.02)
            continue
        start = time.time()
        code, text, c = pgtest.offer(c, d.port, m)
        end = time.time()
        with lock:
            events.append((start, end, m["msgid"], code, text))
            if code == 250:
                accepted[m["msgid"]] = accepted.get(m["msgid"], 0) + 1
            elif code and code >= 500:
                pass     # permanent: counted as lost below
            else:
                queue.put(m, end + 1.0)   # the MTA's retry
    pgtest.quit_session(c)


def ack_files():
    out = []
    for n in sorted(os.listdir(sent_dir)):
        with open(os.path.join(sent_dir, n), encoding="utf-8", errors="replace") as f:
            argv = f.readline().split()
            body = f.read()
        t = re.search(r"^X-Candor-Ticket:\s*(\S+)", body, re.M | re.I)
        out.append((argv[-1] if argv else "", t.group(1) if t else None))
    return out


def maildir_ids():
    ids = collections.Counter()
    for root, dirs, names in os.walk(d.maildir):
        if os.path.basename(root) not in ("new", "cur"):
            continue
        for n in names:
            with open(os.path.join(root, n), "rb") as f:
                head = f.read(65536).split(b"\n\n", 1)[0].decode("utf-8", "replace")
            mm = re.search(r"^Message-ID:\s*(\S+)", head, re.M | re.I)
            ids[mm.group(1) if mm else "?"] += 1
    return ids


down_from = down_to = None
cli_rc, cli_err = None, ""
restart_ok = True
try:
    d.start()
    threads = [threading.Thread(target=feeder)] + \
              [threading.Thread(target=session) for _ in range(a.sessions)]
    for t in threads:
        t.start()
    time.sleep(a.before)
    if not a.state:
        pgtest.harness("stop", pgtest.pg_dir())
    down_from = time.time()
    print("t=%5.1f s: PostgreSQL stopped (%d messages accepted so far)"
          % (down_from - t0, len(accepted)), flush=True)
    # the CLI, meanwhile: a temporary failure (75), so a delivery agent retries
    probe = os.path.join(tmp, "probe.eml")
    with open(probe, "w") as f:
        f.write(pgtest.PROBE)
    cli = subprocess.run([pgtest.BIN, "ack", "--state", state, probe], cwd=tmp,
                         capture_output=True, text=True, timeout=60)
    cli_rc, cli_err = cli.returncode, cli.stderr.strip()
    time.sleep(max(0.0, down_from + a.outage - time.time()))
    down_to = time.time()
    if not a.state:
        try:
            pgtest.harness("start", pgtest.pg_dir())
        except RuntimeError as e:
            restart_ok = False
            print("PostgreSQL did not start again: %s" % e)
    up_at = time.time()
    print("t=%5.1f s: PostgreSQL started again (%d accepted)" % (up_at - t0, len(accepted)),
          flush=True)
    limit = up_at + 120 + len(mails) / a.rate
    while time.time() < limit and len(accepted) < len(mails):
        time.sleep(0.2)
    stop_all.set()
    for t in threads:
        t.join(120)
    end_at = time.time()
    # acknowledgements are handed over after the reply: let them finish
    time.sleep(2)
    acks_live = ack_files()
    d.stop()
    # a restart hands over what stayed pending while the server was away
    d.start()
    time.sleep(3)
    d.stop()
    acks_all = ack_files()
    log = d.read_log()
finally:
    stop_all.set()
    if d.proc and d.proc.poll() is None:
        d.stop()

# ---- counts ----
codes = collections.Counter(code for _, _, _, code, _ in events)
during = [e for e in events if down_from and e[0] >= down_from + 0.5 and e[1] <= down_to]
ok_during = [e for e in during if e[3] == 250]
bad_refusals = [e for e in during if e[3] != 250 and not (e[3] == 451 and "4.3.0" in e[4])]
after = sorted(e[1] for e in events if down_to and e[0] >= down_to and e[3] == 250)
recovery = (after[0] - down_to) if after else None
ids = maildir_ids()
want = {m["msgid"] for m in mails}
lost = sorted(want - set(ids))
doubled = sorted(i for i, n in ids.items() if n > 1)
stray = sorted(set(ids) - want)
undecided = [ln for ln in log.splitlines()
             if "status=delivered" in ln and ("ack=failed" in ln or "triage=failed" in ln)]
# (the CLI's probe mail would count only if `candor ack` had wrongly worked)
live = collections.Counter(r for r, _ in acks_live if not r.startswith("probe@"))
total = collections.Counter(r for r, _ in acks_all if not r.startswith("probe@"))
tickets = collections.Counter(t for _, t in acks_all)

print("stream: %d messages from %d senders at %.0f/s over %d sessions; PostgreSQL down "
      "%.1f s (t=%.1f..%.1f s)" % (len(mails), len(senders), a.rate, a.sessions,
                                   (down_to or 0) - (down_from or 0), (down_from or t0) - t0,
                                   (down_to or t0) - t0))
print("transactions: %d (%s); during the outage: %d, of them %d got 250"
      % (len(events), ", ".join("%s: %d" % (k, v) for k, v in sorted(codes.items())),
         len(during), len(ok_during)))
print("recovery: first 250 %.2f s after PostgreSQL was started again; all accepted at t=%.1f s"
      % (recovery if recovery is not None else float("nan"), end_at - t0))
print("maildir: %d files, %d of %d messages, %d lost, %d twice, %d unexpected"
      % (sum(ids.values()), len(set(ids) & want), len(want), len(lost), len(doubled), len(stray)))
print("acknowledgements: %d handed to sendmail by the running daemon (%d senders, %d twice); "
      "%d in all after one restart (%d of %d senders, %d twice, %d tickets twice)"
      % (len(acks_live), len(live), sum(1 for n in live.values() if n > 1), len(acks_all),
         len(total), len(senders), sum(1 for n in total.values() if n > 1),
         sum(1 for n in tickets.values() if n > 1)))
print("delivered without a decision (log): %d" % len(undecided))

print("candor ack while PostgreSQL was down: exit %s (%s)" % (cli_rc, cli_err[:160]))
R.check("PostgreSQL restarted", restart_ok)
R.check("candor ack exits 75 while PostgreSQL is down", cli_rc == 75,
        "exit %s: %s" % (cli_rc, cli_err[:200]))
R.check("transactions ran while PostgreSQL was down", len(during) > 0, str(len(during)))
R.check("no 250 while PostgreSQL was down", not ok_during,
        "; ".join("%s at t=%.1f" % (e[2], e[1] - t0) for e in ok_during[:5]))
R.check("refusals while down are 451 4.3.0", not bad_refusals,
        "; ".join("%s: %s" % (e[3], e[4][:80]) for e in bad_refusals[:5]))
R.check("the daemon recovered by itself", recovery is not None and len(accepted) == len(mails),
        "%d of %d accepted" % (len(accepted), len(mails)))
R.check("no message lost", not lost, " ".join(lost[:5]))
R.check("no message delivered twice", not doubled, " ".join(doubled[:5]))
R.check("no unexpected file in the maildir", not stray, " ".join(stray[:5]))
R.check("no message delivered without a decision", not undecided,
        " | ".join(ln[-160:] for ln in undecided[:3]))
R.check("no acknowledgement doubled (live)", all(n == 1 for n in live.values()),
        str([s for s, n in live.items() if n > 1][:5]))
R.check("every sender acknowledged exactly once after a restart",
        set(total) == set(senders) and all(n == 1 for n in total.values()),
        "%d senders acked, %d twice, missing %s" % (
            len(total), sum(1 for n in total.values() if n > 1),
            sorted(set(senders) - set(total))[:5]))
R.check("no ticket acknowledged twice", all(n == 1 for n in tickets.values()),
        str([t for t, n in tickets.items() if n > 1][:5]))
shutil.rmtree(tmp, ignore_errors=True)
R.finish()
