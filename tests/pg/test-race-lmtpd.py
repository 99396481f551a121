#!/usr/bin/env python3
"""Two mail hosts, one memory, with the real daemons (issue 11): two
candor-lmtpd processes ("host A" and "host B", each with its own maildir
and its own stand-in sendmail) receive MAILS customer mails from SENDERS
senders over LMTP, SESSIONS parallel sessions each; every sender's mails
(two threads of replies) are split across both daemons, so that both
decide for the same sender -- often the same thread -- at the same moment.
Whatever gets 4xx is offered again shortly after, as an MTA would.

  pg            both daemons with --state on the same PostgreSQL database:
                every sender exactly one acknowledgement, no thread two,
                no ticket number on two threads, one ticket per thread,
                every message delivered exactly once (on one host);
  sqlite-split  each daemon its own SQLite file (one file per host, what
                several hosts had before the PostgreSQL store): the
                duplicates it produces are printed, and the test checks it
                does see them (else it could not see them on PostgreSQL).
Counted from what left the hosts: the acknowledgements handed to the
stand-in sendmails and the X-Candor-Ticket field of the delivered files.

    with-pg.sh python3 tests/pg/test-race-lmtpd.py [--mails 1000]
        [--senders 200] [--sessions 4] [--only pg|sqlite-split]
Skips (77) the pg part without PostgreSQL or without the backend in the
build. Last line: "N passed, N failed"."""
import argparse
import collections
import os
import re
import shutil
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
ap.add_argument("--mails", type=int, default=1000)
ap.add_argument("--senders", type=int, default=200)
ap.add_argument("--sessions", type=int, default=4, help="LMTP sessions per daemon")
ap.add_argument("--only", choices=["pg", "sqlite-split"], action="append")
a = ap.parse_args()

R = pgtest.Report()
tmp = tempfile.mkdtemp(prefix="candor-pg-race-lmtpd-")
os.chmod(tmp, 0o755)


def fake_sendmail(path, out_dir):
    with open(path, "w") as f:
        f.write('#!/bin/sh\n# stand-in sendmail: one file per acknowledgement, argv first\n'
                'f=$(mktemp "%s/ack.XXXXXX") || exit 75\n'
                'printf "%%s\\n" "$*" > "$f"\ncat >> "$f"\n' % out_dir)
    os.chmod(path, 0o755)


def feed(daemon, mails, sessions, codes, errors, temp, deadline):
    """Offer MAILS to DAEMON over SESSIONS sessions until each got 250 (4xx:
    again 0.2 s later; 5xx or a broken session: counted as an error)."""
    lock = threading.Lock()
    queue = pgtest.RetryQueue(mails)
    left = [len(mails)]

    def session():
        c = None
        while time.time() < deadline:
            with lock:
                if left[0] == 0:
                    break
            m = queue.take()
            if m is None:
                time.sleep(0.02)
                continue
            code, text, c = pgtest.offer(c, daemon.port, m)
            with lock:
                codes[code] += 1
                if code == 250:
                    left[0] -= 1
                elif 400 <= code < 500 or code == 0:
                    queue.put(m, time.time() + 0.2)   # the MTA's retry
                    if len(temp) < 3:
                        temp.append("%s: %s %s" % (m["msgid"], code, text[:160]))
                else:
                    left[0] -= 1
                    errors.append("%s: %s %s" % (m["msgid"], code, text[:120]))
        pgtest.quit_session(c)

    ths = [threading.Thread(target=session) for _ in range(sessions)]
    for t in ths:
        t.start()
    return ths


def delivered(maildir):
    """Message-ID -> [X-Candor-Ticket of each delivered copy]."""
    out = collections.defaultdict(list)
    for root, dirs, names in os.walk(maildir):
        if os.path.basename(root) not in ("new", "cur"):
            continue
        for n in names:
            with open(os.path.join(root, n), "rb") as f:
                head = f.read(65536).split(b"\n\n", 1)[0].decode("utf-8", "replace")
            mid = re.search(r"^Message-ID:\s*(\S+)", head, re.M | re.I)
            t = re.search(r"^X-Candor-Ticket:\s*(\S+)", head, re.M | re.I)
            out[mid.group(1) if mid else "?"].append(t.group(1) if t else None)
    return out


def acks(sent_dir):
    """(recipient, ticket, In-Reply-To) of every acknowledgement handed over."""
    out = []
    for n in sorted(os.listdir(sent_dir)):
        with open(os.path.join(sent_dir, n), encoding="utf-8", errors="replace") as f:
            argv = f.readline().split()
            body = f.read()
        head = body.split("\n\n", 1)[0]
        t = re.search(r"^X-Candor-Ticket:\s*(\S+)", head, re.M | re.I)
        irt = re.search(r"^In-Reply-To:\s*(\S+)", head, re.M | re.I)
        out.append((argv[-1] if argv else "", t.group(1) if t else None,
                    irt.group(1) if irt else None))
    return out


def run(name, states):
    """Both daemons in parallel; STATES = (state of host A, of host B)."""
    mails = pgtest.make_mails(a.mails, a.senders, tag=name.replace("-", ""))
    base = os.path.join(tmp, name)
    daemons, sent_dirs = [], []
    for h, st in zip("AB", states):
        hd = os.path.join(base, "host" + h)
        sd = os.path.join(hd, "sent")
        os.makedirs(sd)
        fake = os.path.join(hd, "sendmail")
        fake_sendmail(fake, sd)
        d = Daemon({"accept-recipients": "@shop.example"}, workdir=hd,
                   extra_args=["--sendmail", fake, "--address", pgtest.OUR_ADDRESS])
        d.state = st
        daemons.append(d)
        sent_dirs.append(sd)
    codes, errors, temp = collections.Counter(), [], []
    t0 = time.time()
    try:
        for d in daemons:
            d.start()
        deadline = time.time() + 300 + a.mails / 5.0
        ths = []
        for d, hm in zip(daemons, pgtest.host_lists(mails)):
            ths += feed(d, hm, a.sessions, codes, errors, temp, deadline)
        for t in ths:
            t.join()
        secs = time.time() - t0
        time.sleep(1.0)   # the acknowledgements are handed over after the 250s
    finally:
        for d in daemons:
            d.stop()
    logs = "".join(d.read_log() for d in daemons)
    copies = collections.defaultdict(list)
    for d in daemons:
        for mid, ts in delivered(d.maildir).items():
            copies[mid] += ts
    handed = [x for sd in sent_dirs for x in acks(sd)]
    for t in temp:
        print("%-12s offered again after: %s" % (name, t))
    for ln in [ln for ln in logs.splitlines() if "status=tempfail" in ln][:3]:
        print("%-12s daemon: %s" % (name, ln[-300:]))
    return mails, codes, errors, copies, handed, logs, secs


def analyse(mails, copies, handed):
    thread_of = {m["msgid"]: m["thread"] for m in mails}
    senders = {m["sender"] for m in mails}
    c = {"mails": len(mails), "senders": len(senders),
         "threads": len({m["thread"] for m in mails})}
    want = set(thread_of)
    c["lost"] = len(want - set(copies))
    c["twice"] = sum(1 for mid in want if len(copies.get(mid, [])) > 1)
    c["stray"] = len(set(copies) - want)
    by_sender = collections.Counter(r for r, _, _ in handed)
    by_thread = collections.Counter(thread_of.get(irt, "?") for _, _, irt in handed)
    by_ticket = collections.Counter(t for _, t, _ in handed)
    c["acks"] = len(handed)
    c["senders_acked_twice"] = sum(1 for s in senders if by_sender[s] > 1)
    c["duplicate_acks"] = sum(by_sender[s] - 1 for s in senders if by_sender[s] > 1)
    c["senders_unacked"] = sum(1 for s in senders if by_sender[s] == 0)
    c["stray_acks"] = sum(n for r, n in by_sender.items() if r not in senders)
    c["threads_acked_twice"] = sum(1 for n in by_thread.values() if n > 1)
    c["acks_per_ticket_twice"] = sum(1 for n in by_ticket.values() if n > 1)
    threads_of_ticket = collections.defaultdict(set)
    tickets_of_thread = collections.defaultdict(set)
    c["no_ticket"] = 0
    for mid, ts in copies.items():
        for t in ts:
            if t is None:
                c["no_ticket"] += 1
            elif mid in thread_of:
                threads_of_ticket[t].add(thread_of[mid])
                tickets_of_thread[thread_of[mid]].add(t)
    c["tickets"] = len(threads_of_ticket)
    c["tickets_on_two_threads"] = sum(1 for v in threads_of_ticket.values() if len(v) > 1)
    c["threads_on_two_tickets"] = sum(1 for v in tickets_of_thread.values() if len(v) > 1)
    return c


def show(name, c, codes, secs):
    print("%-12s %d mails, %d senders, %d threads in %.1f s (LMTP replies: %s)"
          % (name, c["mails"], c["senders"], c["threads"], secs,
             ", ".join("%s: %d" % (k, v) for k, v in sorted(codes.items()))))
    print("%-12s delivered: %d lost, %d twice, %d unexpected; acknowledgements: %d for %d "
          "senders, %d senders acked twice (%d duplicate acks), %d unacked, %d threads acked "
          "twice, %d tickets acked twice; tickets: %d for %d threads, %d ticket numbers on two "
          "threads, %d threads on two tickets, %d copies without ticket"
          % ("", c["lost"], c["twice"], c["stray"], c["acks"], c["senders"],
             c["senders_acked_twice"], c["duplicate_acks"], c["senders_unacked"],
             c["threads_acked_twice"], c["acks_per_ticket_twice"], c["tickets"],
             c["threads"], c["tickets_on_two_threads"], c["threads_on_two_tickets"],
             c["no_ticket"]))
    sys.stdout.flush()


def delivered_checks(name, c, errors, logs):
    R.check("%s: every message accepted (250) in the end" % name, not errors,
            "; ".join(errors[:3]))
    R.check("%s: every message delivered exactly once, on one host" % name,
            c["lost"] == 0 and c["twice"] == 0 and c["stray"] == 0,
            "%d lost, %d twice, %d unexpected" % (c["lost"], c["twice"], c["stray"]))
    undecided = [ln for ln in logs.splitlines()
                 if "status=delivered" in ln and ("ack=failed" in ln or "triage=failed" in ln)]
    R.check("%s: no message delivered without its decision" % name, not undecided,
            " | ".join(ln[-160:] for ln in undecided[:3]))


which = a.only or ["pg", "sqlite-split"]
skip = None
try:
    print("%d mails from %d senders, each sender's mails split across two candor-lmtpd "
          "daemons (%d LMTP sessions each)" % (a.mails, a.senders, a.sessions))
    if "pg" in which:
        skip = pgtest.pg_backend_problem()
        if skip:
            print("pg: skipped: %s" % skip)
        else:
            conn = pgtest.createdb("candor_race_lmtpd")
            mails, codes, errors, copies, handed, logs, secs = run("pg", (conn, conn))
            c = analyse(mails, copies, handed)
            show("pg", c, codes, secs)
            pending = pgtest.psql(conn, "SELECT count(*) FROM acks WHERE status = 'pending'")
            print("%-12s outbox after both daemons stopped: %s pending" % ("", pending))
            delivered_checks("pg", c, errors, logs)
            R.check("pg: every sender acknowledged exactly once",
                    c["senders_acked_twice"] == 0 and c["senders_unacked"] == 0 and
                    c["stray_acks"] == 0 and c["acks"] == c["senders"],
                    "%d acks for %d senders: %d twice, %d never" % (
                        c["acks"], c["senders"], c["senders_acked_twice"],
                        c["senders_unacked"]))
            R.check("pg: no thread acknowledged twice", c["threads_acked_twice"] == 0,
                    str(c["threads_acked_twice"]))
            R.check("pg: no ticket acknowledged twice", c["acks_per_ticket_twice"] == 0,
                    str(c["acks_per_ticket_twice"]))
            R.check("pg: no ticket number on two threads", c["tickets_on_two_threads"] == 0,
                    str(c["tickets_on_two_threads"]))
            R.check("pg: one ticket per thread, on every copy",
                    c["threads_on_two_tickets"] == 0 and c["tickets"] == c["threads"] and
                    c["no_ticket"] == 0,
                    "%d tickets for %d threads, %d threads split, %d without" % (
                        c["tickets"], c["threads"], c["threads_on_two_tickets"],
                        c["no_ticket"]))
            R.check("pg: no acknowledgement left pending", pending == "0", str(pending))
    if "sqlite-split" in which:
        sa, sb = os.path.join(tmp, "host-a.db"), os.path.join(tmp, "host-b.db")
        mails, codes, errors, copies, handed, logs, secs = run("sqlite-split", (sa, sb))
        c = analyse(mails, copies, handed)
        show("sqlite-split", c, codes, secs)
        print("sqlite-split: two SQLite files acknowledged %d of %d senders twice (%d duplicate "
              "acknowledgements, %d threads twice); %d ticket numbers were given to two threads"
              % (c["senders_acked_twice"], c["senders"], c["duplicate_acks"],
                 c["threads_acked_twice"], c["tickets_on_two_threads"]))
        delivered_checks("sqlite-split", c, errors, logs)
        R.check("sqlite-split: the checker sees the duplicates of separate files",
                c["duplicate_acks"] > 0 and c["tickets_on_two_threads"] > 0,
                "%d duplicate acks, %d shared ticket numbers" % (
                    c["duplicate_acks"], c["tickets_on_two_threads"]))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
R.finish(skip)
