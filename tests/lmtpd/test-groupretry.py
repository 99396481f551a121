#!/usr/bin/env python3
"""A state group commit that fails for a reason other than a busy or absent
state is run again job by job (deliver.c, gc_run_conf): one bad message
costs only itself, never a 451 for every message of its group.

The failure comes through the state itself, no test hook: an SQLite trigger
on the delivery log aborts the row of one "poison" Message-ID (RAISE(ABORT)
is SQLITE_CONSTRAINT, which the store reports as CANDOR_EIO, not
CANDOR_ETEMPFAIL; the upsert's BEFORE INSERT trigger fires whether or not
the key exists). Bursts of concurrent sessions, the poison among their
messages, are sent until the daemon logs that a group with more than one
waiting session failed and was run again one by one (groups depend on
timing: bounded number of bursts, never reached is a failure). Then: every
other message 250 and in new/ once with its X-Candor-* fields and a ticket
of its own; the poison 451 4.3.0 each time, no file of it anywhere, no
acknowledgement for it; the daemon alive, exit 0 on SIGTERM."""
import os
import re
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lmtpdtest import (Daemon, FakeSendmail, Report, header_fields, message, stuff,  # noqa: E402
                       transaction)

SESSIONS = 12          # concurrent LMTP sessions per burst
PER_SESSION = 4        # messages per session
MAX_BURSTS = 10        # bursts before giving up (a failure)
POISON = "poison@test"
POISON_SENDER = "poisoned@customer.example"
SUBJECTS = [("Where is order A%d?", "Hello, where is my order? It is late.\n"),
            ("Refund for order A%d", "I want my money back for this order, please.\n"),
            ("Cannot log in (case %d)", "The app says error 500 when I log in.\n"),
            ("Thank you! %d", "Great service, thanks a lot.\n")]
RETRY = re.compile(r"-: state group of (\d+) \(sessions waiting: (\d+)\) failed \((.*)\): "
                   r"run again one by one$", re.M)

r = Report()
fs = FakeSendmail("lmtpd-groupretry-")   # records the recipient of each acknowledgement
tmp, fake = fs.dir, fs.path

workdir = os.path.join(tmp, "d")
os.makedirs(workdir)
args = ["--sendmail", fake + " -oi", "--address", "support@shop.example"]


def session(d, items, out):
    """One LMTP session delivering ITEMS [(msgid, sender, data)]; OUT gets
    msgid -> (code, first reply line) per message, or an exception text."""
    try:
        c = d.connect(timeout=30)
        c.lhlo()
        for msgid, sender, data in items:
            code, lines = c.cmd("MAIL FROM:<%s>" % sender)
            if code != 250:
                out.append((msgid, code, "MAIL: " + lines[0]))
                c.cmd("RSET")
                continue
            code, lines = c.cmd("RCPT TO:<support@shop.example>")
            if code != 250:
                out.append((msgid, code, "RCPT: " + lines[0]))
                c.cmd("RSET")
                continue
            code, lines = c.cmd("DATA")
            if code != 354:
                out.append((msgid, code, "DATA: " + lines[0]))
                c.cmd("RSET")
                continue
            c.send(stuff(data))
            code, lines = c.reply()
            out.append((msgid, code, lines[0]))
        c.cmd("QUIT")
        c.close()
    except Exception as e:   # noqa: BLE001 (reported as a failed check)
        out.append((None, 0, "session error: %r" % e))


def burst(d, b):
    """SESSIONS concurrent sessions, PER_SESSION messages each, the poison
    in every third session at a varying place. Returns the replies
    [(msgid, code, line)] and the ids sent."""
    plans, sent = [], []
    for s in range(SESSIONS):
        items = []
        for k in range(PER_SESSION):
            if s % 3 == 0 and k == (s // 3) % PER_SESSION:
                data = message(subject="Order problem", body="Where is my order A999?\n",
                               msgid="<%s>" % POISON, sender=POISON_SENDER)
                items.append((POISON, POISON_SENDER, data))
                continue
            msgid = "b%d-s%d-m%d@customer.example" % (b, s, k)
            subj, body = SUBJECTS[(s + k) % len(SUBJECTS)]
            sender = "c%d-%d@customer.example" % (s, k)
            items.append((msgid, sender, message(subject=subj % (1000 + s * 10 + k), body=body,
                                                 msgid="<%s>" % msgid, sender=sender)))
            sent.append(msgid)
        plans.append(items)
    out = []
    gate = threading.Barrier(SESSIONS)

    def run(items):
        try:
            gate.wait(10)
        except threading.BrokenBarrierError:
            pass
        session(d, items, out)

    threads = [threading.Thread(target=run, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out, sent


def message_ids(path):
    with open(path, "rb") as f:
        raw = f.read()
    return raw, dict(header_fields(raw)).get("message-id", "").strip("<>")


t0 = time.time()
d = Daemon(extra_args=args, workdir=workdir)

# 1. a first start creates the state and, with one delivery, the delivery
# log's table (created on first use); then the trigger goes in
d.start()
try:
    c = d.connect()
    c.lhlo()
    _, dr = transaction(c, ["support@shop.example"],
                        message(msgid="<warm-up@customer.example>", sender="warm@customer.example"),
                        sender="warm@customer.example")
    c.cmd("QUIT")
    r.check("warm-up message delivered", dr == [250], dr)
finally:
    rc = d.stop()
r.check("first start: exit 0 on SIGTERM", rc == 0, rc)
db = sqlite3.connect(d.state, timeout=10)
cols = [row[1] for row in db.execute("PRAGMA table_info(candor_delivery)")]
r.check("delivery log table with a message_id column", "message_id" in cols, cols)
db.execute("CREATE TRIGGER poison BEFORE INSERT ON candor_delivery "
           "WHEN NEW.message_id = '%s' BEGIN SELECT RAISE(ABORT, 'poison'); END" % POISON)
db.commit()
# the trigger fires on the daemon's upsert (INSERT ... ON CONFLICT DO UPDATE)
try:
    db.execute("INSERT INTO candor_delivery(key, message_id, path, delivered, at) "
               "VALUES('k', ?, 'p', 0, 0) ON CONFLICT(key) DO UPDATE SET "
               "message_id = excluded.message_id", (POISON,))
    fired = None
except sqlite3.IntegrityError as e:   # SQLITE_CONSTRAINT(_TRIGGER): CANDOR_EIO
    fired = str(e)
db.rollback()
db.close()
r.check("the trigger aborts the upsert of the poison (SQLITE_CONSTRAINT)", fired == "poison",
        fired)

# 2. bursts until a group of several waiting sessions failed and ran again
d.start()
replies, sent_ids, bursts = [], [], 0
seen = []
try:
    while bursts < MAX_BURSTS:
        out, ids = burst(d, bursts)
        bursts += 1
        replies += out
        sent_ids += ids
        seen = [(int(n), int(w), why) for n, w, why in RETRY.findall(d.read_log())]
        if any(w >= 2 for n, w, why in seen):
            break
    alive = d.proc.poll() is None
finally:
    rc = d.stop()
log = d.read_log()
elapsed = time.time() - t0

multi = [s for s in seen if s[1] >= 2]
print("bursts: %d, messages sent: %d (%d poison), groups run again: %d (%d with several "
      "sessions waiting, largest %d jobs), %.1f s"
      % (bursts, len(replies), sum(1 for m, _, _ in replies if m == POISON), len(seen),
         len(multi), max([s[0] for s in seen] or [0]), elapsed))
r.check("a group with several waiting sessions failed and was run again one by one "
        "(within %d bursts)" % MAX_BURSTS, bool(multi),
        "never seen; retry lines: %r" % seen[:5])
r.check("each group failed on the poison's delivery-log row, not a busy state",
        seen and all("delivery log" in why and "poison" in why and "busy" not in why
                     for _, _, why in seen), seen[:5])
r.check("no session error", all(m is not None for m, _, _ in replies),
        [x for x in replies if x[0] is None][:3])

good = [(m, code, ln) for m, code, ln in replies if m and m != POISON]
bad = [(m, code, ln) for m, code, ln in replies if m == POISON]
r.check("every other message answered 250 (%d)" % len(good),
        len(good) == len(sent_ids) and all(code == 250 for _, code, _ in good),
        [x for x in good if x[1] != 250][:5])
r.check("the poison answered 451 4.3.0 each time (%d)" % len(bad),
        bad and all(code == 451 and "4.3.0" in ln for _, code, ln in bad), bad[:5])

files = d.files("new")
by_id = {}
missing_fields = []
tickets = {}
for p in files:
    raw, mid = message_ids(p)
    by_id.setdefault(mid, []).append(p)
    fields = dict(header_fields(raw))
    if mid != "warm-up@customer.example":
        if not all(k in fields for k in ("x-candor-intent", "x-candor-confidence",
                                         "x-candor-urgency", "x-candor-sentiment",
                                         "x-candor-churn-risk", "x-candor-autoreply")):
            missing_fields.append(mid)
        if "x-candor-ticket" in fields:
            tickets.setdefault(fields["x-candor-ticket"], []).append(mid)
r.check("every other message in new/ exactly once (%d files)" % len(files),
        all(len(by_id.get(m, [])) == 1 for m in sent_ids) and
        len(files) == len(sent_ids) + 1,
        [(m, len(by_id.get(m, []))) for m in sent_ids if len(by_id.get(m, [])) != 1][:5])
r.check("each with its X-Candor-* fields", not missing_fields, missing_fields[:5])
r.check("each with a ticket of its own (the group's rolled-back decisions made again once)",
        sum(len(v) for v in tickets.values()) == len(sent_ids) and
        all(len(v) == 1 for v in tickets.values()),
        (len(tickets), len(sent_ids), [v for v in tickets.values() if len(v) > 1][:3]))
anywhere = []
for sub in ("new", "cur", "tmp"):
    for p in d.files(sub):
        if message_ids(p)[1] == POISON:
            anywhere.append(p)
r.check("no file of the poison in new/, cur/ or tmp/", not anywhere, anywhere)
r.check("tmp/ left empty", not d.files("tmp"), d.files("tmp")[:5])
poison_lines = [ln for ln in log.splitlines() if "message-id=<%s>" % POISON in ln]
r.check("the poison logged status=tempfail with its delivery-log error",
        len(poison_lines) == len(bad) and
        all("status=tempfail" in ln and "poison" in ln for ln in poison_lines),
        poison_lines[:3])
acked = fs.recipients()
r.check("no acknowledgement for the poison's sender (%d handed over)" % len(acked),
        POISON_SENDER not in acked, acked.count(POISON_SENDER))
r.check("the daemon stayed up through the bursts", alive)
r.check("exit 0 on SIGTERM", rc == 0, rc)
r.finish()
