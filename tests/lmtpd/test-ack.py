#!/usr/bin/env python3
"""The acknowledgement hand-over, with a fake sendmail that records each
call: sent with -f <> -i -- RECIPIENT only after the 250; a sendmail failure
leaves it pending and the next start-up sends it, once, as does a periodic
retry round (with a backoff) while the daemon runs; a crash while
sendmail runs does not make the next start-up send it again (and that
sendmail still finishes); --no-ack sends nothing."""
import os
import signal
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lmtpdtest import Daemon, FakeSendmail, Report, message, transaction, wait_for  # noqa: E402

r = Report()
fs = FakeSendmail("lmtpd-ack-")   # records each hand-over; fs.set_mode(ok | fail | slow)
tmp, calls, fake = fs.dir, fs.calls, fs.path
mode, sent = fs.set_mode, fs.sent


def deliver(d, who, msgid, quit=True):
    c = d.connect()
    c.lhlo()
    rr, dr = transaction(c, ["support@shop.example"],
                         message(sender=who, msgid="<%s>" % msgid,
                                 subject="Where is order A10442?",
                                 body="Hello, where is my order A10442? It is late.\n"),
                         sender=who)
    if quit:
        c.cmd("QUIT")   # (the session hands the ack over before it reads this)
    return dr


workdir = os.path.join(tmp, "d")
os.makedirs(workdir)
args = ["--sendmail", fake + " -oi", "--address", "support@shop.example"]

# 1. a working sendmail: one call, null sender, after the 250
mode("ok")
d = Daemon(extra_args=args, workdir=workdir).start()
try:
    dr = deliver(d, "alice@customer.example", "a1@customer.example")
    r.check("delivered 250", dr == [250], dr)
    wait_for(lambda: sent(), 10)
    r.check("one acknowledgement handed over", len(sent()) == 1, sent())
    if sent():
        a = open(os.path.join(calls, sent()[0].replace(".msg", ".args"))).read().split("\n")
        r.check("sendmail ARGS -f <> -i -- recipient", a[:6] == ["-oi", "-f", "<>", "-i", "--",
                                                                   "alice@customer.example"], a)
        m = open(os.path.join(calls, sent()[0]), "rb").read()
        r.check("acknowledgement text is complete, LF line ends", b"\r" not in m and
                b"In-Reply-To: <a1@customer.example>" in m and m.endswith(b"\n"), m[-200:])
    log = d.read_log()
    r.check("ack logged after the delivery line",
            log.find("ack ticket=") > log.find("status=delivered") > 0, log[-600:])

    # 2. sendmail fails: left pending
    mode("fail")
    dr = deliver(d, "bob@customer.example", "b1@customer.example")
    r.check("delivered despite the failing sendmail", dr == [250], dr)
    r.check("failure logged, ack left pending", wait_for(
        lambda: "left pending (sendmail failed)" in d.read_log(), 10))
finally:
    d.stop()
n_before = len(sent())
mode("ok")
d = Daemon(extra_args=args, workdir=workdir).start()
try:
    r.check("start-up sends the pending acknowledgement once",
            # both at once: the fake sendmail writes its copy before the
            # daemon logs the hand-over, so checking the log afterwards raced
            wait_for(lambda: len(sent()) == n_before + 1 and
                     "pending ack ticket=" in d.read_log(), 10), sent())
finally:
    d.stop()
d = Daemon(extra_args=args, workdir=workdir).start()
time.sleep(1)
d.stop()
r.check("a second start-up sends nothing more", len(sent()) == n_before + 1, sent())

# 3. killed while sendmail runs: that sendmail finishes, no second copy
mode("slow")
d = Daemon(extra_args=args, workdir=workdir).start()
try:
    dr = deliver(d, "carol@customer.example", "c1@customer.example", quit=False)
    r.check("delivered 250 before the slow sendmail", dr == [250], dr)
    time.sleep(0.5)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    mode("ok")
    d.start()
    time.sleep(1)
    r.check("start-up does not hand over an interrupted ack again",
            "not sent again" in d.read_log(), d.read_log()[-500:])
    r.check("the interrupted sendmail completed: exactly one copy",
            wait_for(lambda: len(sent()) == n_before + 2, 10) and
            (time.sleep(3.5) or len(sent()) == n_before + 2), sent())
finally:
    d.stop()

# 4. periodic retry: a failed hand-over is retried while the daemon runs,
# with a backoff, once it works it is sent exactly once
def failed_handover(name, max_interval, who, msgid):
    """With sendmail failing, a daemon in tmp/NAME (retry every second, at
    most every MAX_INTERVAL) delivers WHO's MSGID and fails to hand its
    acknowledgement over. Returns the daemon and the count of mail sent
    before; checks the 250 and the failed hand-over."""
    mode("fail")
    before = len(sent())
    os.makedirs(os.path.join(tmp, name))
    dm = Daemon({"ack-retry-interval": "1", "ack-retry-max-interval": max_interval},
                extra_args=args, workdir=os.path.join(tmp, name)).start()
    try:
        dr = deliver(dm, who, msgid)
        r.check(name + ": delivered 250", dr == [250], dr)
        r.check(name + ": the session's hand-over failed", wait_for(
            lambda: "left pending (sendmail failed)" in dm.read_log(), 10))
    except BaseException:
        dm.stop()
        raise
    return dm, before


d, n = failed_handover("retry", "2", "erin@customer.example", "e1@customer.example")
try:
    r.check("retry: periodic attempts while sendmail fails, backing off", wait_for(
        lambda: "still pending (attempt 2; next in 2 s)" in d.read_log(), 15), d.read_log()[-800:])
    mode("ok")
    r.check("retry: sent by a periodic round once sendmail works", wait_for(
        lambda: len(sent()) == n + 1 and "pending ack ticket=" in d.read_log() and
        " sent to=<erin@customer.example>" in d.read_log(), 15), d.read_log()[-800:])
    time.sleep(3)
    r.check("retry: never a second copy", len(sent()) == n + 1, sent())
    # a fresh acknowledgement that goes out at once is not touched by the retry
    dr = deliver(d, "frank@customer.example", "f1@customer.example")
    wait_for(lambda: len(sent()) == n + 2, 10)
    time.sleep(3)
    r.check("retry: a session's own hand-over is not repeated by the retry",
            len(sent()) == n + 2 and d.read_log().count("<frank@customer.example>") == 2,
            d.read_log()[-800:])
finally:
    d.stop()

# 4b. another daemon (sharing the state) is handing the acknowledgement
# over: its fresh hand-over mark is left alone, neither sent again nor
# taken for sent, until that daemon releases it (its sendmail failed);
# then this daemon's retry sends it, once
d, n = failed_handover("shared", "1", "gina@customer.example", "g1@customer.example")
try:
    db = sqlite3.connect(d.state, timeout=10)
    tickets = [t for (t,) in db.execute("SELECT ticket FROM acks WHERE status = 'pending'")]
    r.check("shared: one acknowledgement pending", len(tickets) == 1, tickets)
    # the failed hand-over's released mark; then what another host's
    # daemon writes when it starts its own hand-over
    marks = [k for (k,) in db.execute("SELECT key FROM candor_delivery WHERE key LIKE "
                                      "'ack-handover:%' AND delivered = 0")]
    r.check("shared: the failed hand-over released its mark", len(marks) == 1, marks)
    db.execute("UPDATE candor_delivery SET path = 'started:other-host.example:4242', "
               "delivered = 1, at = strftime('%s','now') WHERE key LIKE 'ack-handover:%'")
    db.commit()
    mode("ok")
    r.check("shared: a live holder's hand-over is left to it", wait_for(
        lambda: "is being handed over by another daemon" in d.read_log(), 10), d.read_log()[-800:])
    time.sleep(2.5)
    st = [s for (s,) in db.execute("SELECT status FROM acks WHERE ticket = ?", (tickets[0],))]
    r.check("shared: neither sent again nor taken for sent",
            len(sent()) == n and st == ["pending"] and "not sent again" not in d.read_log(),
            (sent(), st))
    # the other daemon's sendmail failed: it releases the mark
    db.execute("UPDATE candor_delivery SET path = 'failed', delivered = 0 "
               "WHERE key LIKE 'ack-handover:%'")
    db.commit()
    r.check("shared: sent once the holder released it", wait_for(
        lambda: len(sent()) == n + 1 and " sent to=<gina@customer.example>" in d.read_log(), 10),
        d.read_log()[-800:])
    time.sleep(2.5)
    r.check("shared: never a second copy", len(sent()) == n + 1, sent())
    db.close()
finally:
    d.stop()

# 5. --no-ack: nothing leaves
mode("ok")
n = len(sent())
d = Daemon(extra_args=args + ["--no-ack"]).start()
try:
    dr = deliver(d, "dave@customer.example", "d1@customer.example")
    time.sleep(1)
    r.check("--no-ack: delivered, nothing handed to sendmail", dr == [250] and len(sent()) == n)
finally:
    d.stop()
r.finish()
