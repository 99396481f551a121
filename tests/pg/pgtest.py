"""Helpers for the PostgreSQL store tests and benchmarks (issue 11): the
private server from tests/pg/pg-harness.sh (through with-pg.sh's
CANDOR_TEST_PG* variables), fresh databases, a probe for whether the
`candor` build has the PostgreSQL backend yet, and generated customer mail:
senders with threads of replies."""
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("CANDOR_SOURCE", os.path.abspath(os.path.join(HERE, "..", "..")))
BUILD = os.environ.get("CANDOR_BUILD", os.path.join(SOURCE, "build"))
BIN = os.environ.get("CANDOR_BIN", os.path.join(BUILD, "examples", "candor"))
HARNESS = os.environ.get("CANDOR_PG_HARNESS", os.path.join(HERE, "pg-harness.sh"))
OUR_ADDRESS = "support@shop.example"

# the script tests' pass/fail counter (tests/lmtpd/lmtpdtest.py)
sys.path.insert(0, os.path.join(HERE, "..", "lmtpd"))
from lmtpdtest import Client, Report, stuff  # noqa: E402,F401


def pg_dir():
    return os.environ.get("CANDOR_TEST_PG_DIR")


def harness(*args, timeout=120):
    """Run pg-harness.sh ARGS on the with-pg.sh server; its stdout."""
    p = subprocess.run(["sh", HARNESS] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("pg-harness.sh %s: %s" % (" ".join(args), p.stderr.strip()))
    return p.stdout.strip()


def createdb(name):
    """A fresh empty database NAME on the private server; its conninfo."""
    return harness("createdb", pg_dir(), name)


def psql(conninfo, sql):
    """One query through psql (unaligned, tuples only); its stdout or None."""
    bindir = harness("bindir")
    p = subprocess.run([os.path.join(bindir, "psql"), "-X", "-A", "-t", "-q", conninfo,
                        "-c", sql], capture_output=True, text=True, timeout=60)
    return p.stdout.strip() if p.returncode == 0 else None


PROBE = ("Return-Path: <probe@customer.example>\nDelivered-To: support@shop.example\n"
         "From: Probe <probe@customer.example>\nTo: support@shop.example\n"
         "Subject: where is my order A10001?\nDate: Tue, 24 Nov 2026 08:00:00 +0000\n"
         "Message-ID: <probe@customer.example>\n\nIt has not arrived.\n")


def pg_backend_problem():
    """None when `candor ack --state CONNINFO` takes the conninfo for
    PostgreSQL (it wrote its schema there, or failed with a PostgreSQL
    error: then the tests run and fail on it); else why the PostgreSQL parts
    cannot run (no server, or a build without the backend, which takes the
    conninfo for a SQLite path or says it is not built in)."""
    if not os.environ.get("CANDOR_TEST_PG"):
        return "no PostgreSQL server (run under tests/pg/with-pg.sh)"
    try:
        conn = createdb("candor_probe")
    except (RuntimeError, subprocess.SubprocessError) as e:
        return str(e)
    tmp = tempfile.mkdtemp(prefix="candor-pg-probe-")
    try:
        mail = os.path.join(tmp, "probe.eml")
        with open(mail, "w") as f:
            f.write(PROBE)
        # in an empty directory: a build without the backend takes the
        # conninfo for a SQLite path there
        p = subprocess.run([BIN, "ack", "--state", conn, "--now", "2026-11-24T08:00:00Z", mail],
                           cwd=tmp, capture_output=True, text=True, timeout=60)
        tables = psql(conn, "select count(*) from pg_tables where schemaname not in "
                            "('pg_catalog', 'information_schema')")
        if tables and tables != "0":
            return None
        err = p.stderr.strip()
        if "PostgreSQL" in err and "not built in" not in err:
            print("note: the PostgreSQL backend failed on a first acknowledgement: %s"
                  % err[:300])
            return None
        return "this build has no PostgreSQL backend yet (candor ack --state %s: exit %d%s)" \
            % (conn, p.returncode, ": " + err[:200] if err else ", wrote no table")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- mail

FIRST = ["Anna", "Ben", "Carla", "David", "Emma", "Farid", "Grace", "Hiro", "Ivan", "Julia",
         "Kofi", "Laura", "Mateo", "Nina", "Omar", "Priya", "Rosa", "Sam", "Wei", "Zoe"]
REQUESTS = [
    ("Where is my order {o}?", "my order {o} has not arrived yet. The tracking page has not "
     "changed for a week. Could you tell me where it is?"),
    ("Refund for order {o}", "the kettle from order {o} arrived broken. I would like a refund, "
     "please tell me how to send it back."),
    ("Cancel my subscription", "please cancel my subscription at the end of this month. "
     "My customer number is {o}."),
    ("Charged twice for {o}", "my card was charged twice for order {o}. Please refund the "
     "second payment."),
    ("Cannot log in", "since yesterday I cannot log in to my account, the page says my "
     "password is wrong although I reset it. Order {o} is waiting."),
    ("Change my delivery address", "I moved last week. Could you change the delivery address "
     "of order {o} to 12 Harbour Street, Leeds?"),
]
FOLLOW_UPS = ["Any news? I am still waiting.", "I forgot to say: it is rather urgent.",
              "Here is a photo of the box, as you asked.", "Is there anything I should do?",
              "Sorry to insist, but I need an answer this week."]


def thread_sizes(k):
    """How a sender's K mails split into threads: two threads when K >= 2
    (the first one the longer), else one."""
    if k < 2:
        return [k]
    first = (k + 1) // 2
    return [first, k - first]


def mails_per_sender(n_mails, n_senders):
    """N_MAILS spread over N_SENDERS unevenly (around the mean: -4, +4, 0,
    -2, +2; at least one each), as real customers write once or many times.
    The uneven counts also make two independent stores number their
    tickets differently, as they would in production."""
    base = max(1, n_mails // n_senders)
    per = [max(1, base + (-4, 4, 0, -2, 2)[s % 5]) for s in range(n_senders)]
    diff, s = n_mails - sum(per), 0
    while diff and any(p > 1 for p in per):
        i = s % n_senders
        if diff > 0:
            per[i] += 1
            diff -= 1
        elif per[i] > 1:
            per[i] -= 1
            diff += 1
        s += 1
    return per


def make_mails(n_mails, n_senders, domain="customer.example", tag="race"):
    """N_MAILS customer mails from N_SENDERS senders (spread evenly), each
    sender's mails in threads of replies (In-Reply-To, References). Returns
    a list of dicts: sender, thread (a global id), index (within the
    sender), msgid, data (bytes)."""
    mails = []
    per = mails_per_sender(n_mails, n_senders)
    for s in range(n_senders):
        addr = "c%04d.%s@%s" % (s, tag, domain)
        name = "%s %s" % (FIRST[s % len(FIRST)], "Customer%04d" % s)
        idx = 0
        for t, size in enumerate(thread_sizes(per[s])):
            thread = "%s-s%04d-t%d" % (tag, s, t)
            subj_t, body_t = REQUESTS[(s + t) % len(REQUESTS)]
            order = "A%05d" % (10000 + s * 7 + t)
            subject = subj_t.format(o=order)
            ids = []
            for j in range(size):
                msgid = "<%s.m%d.%s@%s>" % (thread, j, tag, domain)
                hdr = ["Return-Path: <%s>" % addr, "Delivered-To: %s" % OUR_ADDRESS,
                       "From: %s <%s>" % (name, addr), "To: Shop Support <%s>" % OUR_ADDRESS,
                       "Subject: %s%s" % ("Re: " if j else "", subject),
                       "Date: Tue, 24 Nov 2026 %02d:%02d:00 +0000" % (6 + j, (s + t) % 60),
                       "Message-ID: %s" % msgid]
                if ids:
                    hdr.append("In-Reply-To: %s" % ids[-1])
                    hdr.append("References: %s" % " ".join(ids))
                text = body_t.format(o=order) if j == 0 else FOLLOW_UPS[(s + j) % len(FOLLOW_UPS)]
                body = "Hello,\n\n%s\n\nThanks,\n%s\n" % (text, name.split()[0])
                data = ("\n".join(hdr) + "\n\n" + body).encode("utf-8")
                mails.append({"sender": addr, "thread": thread, "index": idx, "msgid": msgid,
                              "data": data})
                ids.append(msgid)
                idx += 1
    return mails


def host_lists(mails):
    """Host A's and host B's mails (of make_mails()): a sender's mails
    alternate between them (odd senders start on B), each host in sender
    order, so that both hosts work on the same sender -- often the same
    thread -- at the same moment."""
    by_sender = collections.OrderedDict()
    for m in mails:
        by_sender.setdefault(m["sender"], []).append(m)
    hosts = ([], [])
    for s, ms in enumerate(by_sender.values()):
        for m in ms:
            hosts[(m["index"] + s) % 2].append(m)
    return hosts


def lmtp_offer(c, m):
    """Offer the mail M (of make_mails()) to OUR_ADDRESS on the LMTP client
    C: MAIL, RCPT, DATA, each only after a 250 (354 for DATA). Returns the
    last reply's code and lines."""
    code, lines = c.cmd("MAIL FROM:<%s>" % m["sender"])
    if code == 250:
        code, lines = c.cmd("RCPT TO:<%s>" % OUR_ADDRESS)
    if code == 250:
        code, lines = c.cmd("DATA")
        if code == 354:
            c.send(stuff(m["data"]))
            code, lines = c.reply()
    return code, lines


class RetryQueue:
    """The mails an MTA still has to deliver, each with the time before
    which it is not offered again (its retry); shared by sessions."""

    def __init__(self, mails=()):
        self.lock = threading.Lock()
        self.q = collections.deque((0.0, m) for m in mails)

    def put(self, m, not_before=0.0):
        with self.lock:
            self.q.append((not_before, m))

    def take(self):
        """The first mail that is due, or None."""
        with self.lock:
            now = time.time()
            for _ in range(len(self.q)):
                nb, m = self.q.popleft()
                if nb <= now:
                    return m
                self.q.append((nb, m))
        return None

    def empty(self):
        with self.lock:
            return not self.q


def offer(c, port, m):
    """One attempt of the MTA at the mail M over the session C (None: a new
    one to PORT). Returns (code, text, the session to use next, or None):
    RSET after a refusal, a new session after 421 or a broken one (code
    0)."""
    try:
        if c is None:
            c = Client(port, timeout=60)
            c.lhlo()
        code, lines = lmtp_offer(c, m)
        if code != 250 and code < 421:
            c.cmd("RSET")
        if code == 421:
            c.close()
            c = None
        return code, " ".join(lines), c
    except (OSError, EOFError, ValueError) as e:
        if c:
            c.close()
        return 0, "connection: %s" % e, None


def quit_session(c):
    """QUIT and close the session C (None: nothing)."""
    if c:
        try:
            c.cmd("QUIT")
        except (OSError, EOFError):
            pass
        c.close()
