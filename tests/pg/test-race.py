#!/usr/bin/env python3
"""Two mail hosts, one memory (issue 11): MAILS customer mails from SENDERS
senders, each sender's mails in two threads of replies and split across two
"hosts" = two `candor ack` loops running in parallel (each mail one
`candor ack --state STATE --now T` process, as a delivery agent would run
it; exit 75 is retried like an MTA does). Counted from `candor ack`'s JSON:

  pg            both hosts on the same PostgreSQL database: every sender
                exactly one acknowledgement (send=true), no thread two, no
                ticket number on two threads, no thread split over two
                tickets, `candor stats` counts the same acknowledgements;
  sqlite-shared both loops on ONE SQLite file (one host, two processes):
                the same checks (the checker's own control);
  sqlite-split  each host its own SQLite file (today's multi-host set-up):
                the duplicates it produces are printed, and the test checks
                it does see them (else it could not see them on PostgreSQL).

    with-pg.sh python3 tests/pg/test-race.py [--mails 1000] [--senders 200]
Without the PostgreSQL backend in the build (or without PostgreSQL) the pg
part is skipped with the reason and the script exits 77 after the SQLite
parts (1 if those fail). Last line: "N passed, N failed"."""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgtest  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--mails", type=int, default=1000)
ap.add_argument("--senders", type=int, default=200)
ap.add_argument("--only", choices=["pg", "sqlite-shared", "sqlite-split"], action="append")
a = ap.parse_args()

NOW = "2026-11-24T18:00:00Z"
R = pgtest.Report()
tmp = tempfile.mkdtemp(prefix="candor-pg-race-")


def ack_loop(mails, state, results, barrier):
    barrier.wait()
    for m in mails:
        out, rc, err = None, None, ""
        for attempt in range(100):
            p = subprocess.run([pgtest.BIN, "ack", "--state", state, "--now", NOW,
                                "--address", pgtest.OUR_ADDRESS, m["path"]],
                               capture_output=True, text=True, timeout=120)
            rc, err = p.returncode, p.stderr.strip()
            if rc != 75:
                break
            time.sleep(0.05 * min(attempt + 1, 10))   # the MTA retries later
        if rc == 0:
            try:
                out = json.loads(p.stdout)
            except ValueError:
                out, rc, err = None, -1, "not JSON: " + p.stdout[:200]
        results.append((m, rc, out, err))


def run(name, states):
    """Both hosts in parallel; STATES = (state of host A, of host B)."""
    mails = pgtest.make_mails(a.mails, a.senders, tag=name.replace("-", ""))
    d = os.path.join(tmp, name)
    os.makedirs(d)
    for i, m in enumerate(mails):
        m["path"] = os.path.join(d, "m%05d.eml" % i)
        with open(m["path"], "wb") as f:
            f.write(m["data"])
    results = []
    barrier = threading.Barrier(2)
    t0 = time.time()
    ths = [threading.Thread(target=ack_loop, args=(hm, st, results, barrier))
           for hm, st in zip(pgtest.host_lists(mails), states)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return mails, results, time.time() - t0


def analyse(mails, results):
    c = {"mails": len(mails), "done": 0, "errors": 0, "acks": 0, "no_ticket": 0}
    acks_by_sender = collections.Counter()
    acks_by_thread = collections.Counter()
    threads_of_ticket = collections.defaultdict(set)
    tickets_of_thread = collections.defaultdict(set)
    reasons = collections.Counter()
    first_error = ""
    for m, rc, out, err in results:
        if rc != 0 or not isinstance(out, dict):
            c["errors"] += 1
            first_error = first_error or "exit %s: %s" % (rc, err[:200])
            continue
        c["done"] += 1
        reasons[out.get("reason")] += 1
        if out.get("send") is True:
            c["acks"] += 1
            acks_by_sender[m["sender"]] += 1
            acks_by_thread[m["thread"]] += 1
        t = out.get("ticket")
        if t:
            threads_of_ticket[t].add(m["thread"])
            tickets_of_thread[m["thread"]].add(t)
        else:
            c["no_ticket"] += 1
    senders = {m["sender"] for m in mails}
    c["senders"] = len(senders)
    c["senders_unacked"] = sum(1 for s in senders if acks_by_sender[s] == 0)
    c["senders_acked_twice"] = sum(1 for s in senders if acks_by_sender[s] > 1)
    c["duplicate_acks"] = sum(n - 1 for n in acks_by_sender.values() if n > 1)
    c["threads"] = len({m["thread"] for m in mails})
    c["threads_acked_twice"] = sum(1 for n in acks_by_thread.values() if n > 1)
    c["tickets"] = len(threads_of_ticket)
    c["tickets_on_two_threads"] = sum(1 for v in threads_of_ticket.values() if len(v) > 1)
    c["threads_on_two_tickets"] = sum(1 for v in tickets_of_thread.values() if len(v) > 1)
    c["reasons"] = dict(reasons)
    c["first_error"] = first_error
    return c


def stats_acknowledged(state):
    p = subprocess.run([pgtest.BIN, "stats", "--json", "--state", state, "--now", NOW],
                       capture_output=True, text=True, timeout=120)
    try:
        return json.loads(p.stdout)["overall"]["acknowledged"]
    except (ValueError, KeyError, TypeError):
        return "exit %d: %s" % (p.returncode, p.stderr.strip()[:200])


def show(name, c, secs):
    print("%-13s %5d mails %3d senders %3d threads in %5.1f s: %d errors, %d acks, "
          "%d senders acked twice (%d duplicate acks), %d unacked, %d threads acked twice, "
          "%d ticket numbers on two threads, %d threads on two tickets, %d without ticket"
          % (name, c["mails"], c["senders"], c["threads"], secs, c["errors"], c["acks"],
             c["senders_acked_twice"], c["duplicate_acks"], c["senders_unacked"],
             c["threads_acked_twice"], c["tickets_on_two_threads"], c["threads_on_two_tickets"],
             c["no_ticket"]))
    print("%-13s reasons: %s" % ("", json.dumps(c["reasons"], sort_keys=True)))
    if c["first_error"]:
        print("%-13s first error: %s" % ("", c["first_error"]))
    sys.stdout.flush()


def must_be_exact(name, c, stats):
    R.check("%s: every mail decided (exit 0, JSON)" % name, c["errors"] == 0,
            "%d errors, first: %s" % (c["errors"], c["first_error"]))
    R.check("%s: every sender acknowledged exactly once" % name,
            c["senders_acked_twice"] == 0 and c["senders_unacked"] == 0 and
            c["acks"] == c["senders"],
            "%d acks for %d senders: %d twice, %d never" % (
                c["acks"], c["senders"], c["senders_acked_twice"], c["senders_unacked"]))
    R.check("%s: no thread acknowledged twice" % name, c["threads_acked_twice"] == 0,
            str(c["threads_acked_twice"]))
    R.check("%s: no ticket number on two threads" % name, c["tickets_on_two_threads"] == 0,
            str(c["tickets_on_two_threads"]))
    R.check("%s: one ticket per thread" % name,
            c["threads_on_two_tickets"] == 0 and c["tickets"] == c["threads"],
            "%d tickets for %d threads, %d threads split" % (
                c["tickets"], c["threads"], c["threads_on_two_tickets"]))
    R.check("%s: every customer mail got a ticket" % name, c["no_ticket"] == 0,
            str(c["no_ticket"]))
    R.check("%s: candor stats counts the same acknowledgements" % name, stats == c["acks"],
            "stats %r, JSON %d" % (stats, c["acks"]))


which = a.only or ["pg", "sqlite-shared", "sqlite-split"]
skip = None
try:
    print("%d mails from %d senders, split across two hosts (two candor ack loops)"
          % (a.mails, a.senders))
    if "pg" in which:
        skip = pgtest.pg_backend_problem()
        if skip:
            print("pg: skipped: %s" % skip)
        else:
            conn = pgtest.createdb("candor_race")
            mails, res, secs = run("pg", (conn, conn))
            c = analyse(mails, res)
            show("pg", c, secs)
            must_be_exact("pg", c, stats_acknowledged(conn))
    if "sqlite-shared" in which:
        st = os.path.join(tmp, "shared.db")
        mails, res, secs = run("sqlite-shared", (st, st))
        c = analyse(mails, res)
        show("sqlite-shared", c, secs)
        must_be_exact("sqlite-shared", c, stats_acknowledged(st))
    if "sqlite-split" in which:
        sa, sb = os.path.join(tmp, "host-a.db"), os.path.join(tmp, "host-b.db")
        mails, res, secs = run("sqlite-split", (sa, sb))
        c = analyse(mails, res)
        show("sqlite-split", c, secs)
        print("sqlite-split: two SQLite files acknowledged %d of %d senders twice "
              "(%d duplicate acknowledgements); %d ticket numbers were given to two threads"
              % (c["senders_acked_twice"], c["senders"], c["duplicate_acks"],
                 c["tickets_on_two_threads"]))
        R.check("sqlite-split: every mail decided", c["errors"] == 0, c["first_error"])
        R.check("sqlite-split: the checker sees the duplicates of separate files",
                c["duplicate_acks"] > 0 and c["tickets_on_two_threads"] > 0,
                "%d duplicate acks, %d shared ticket numbers" % (
                    c["duplicate_acks"], c["tickets_on_two_threads"]))
        sa_n, sb_n = stats_acknowledged(sa), stats_acknowledged(sb)
        R.check("sqlite-split: candor stats of both files add up to the acknowledgements",
                isinstance(sa_n, int) and isinstance(sb_n, int) and sa_n + sb_n == c["acks"],
                "%r + %r vs %d" % (sa_n, sb_n, c["acks"]))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
R.finish(skip)
