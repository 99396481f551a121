#!/usr/bin/env python3
"""candor-lmtpd protocol tests with a raw socket client: RFC 2033 commands,
pipelining, one reply per recipient, dot-stuffing, X-Candor-* removal,
limits (line, size, recipients, connections), timeouts, 100 concurrent
sessions, redelivery recognised, SIGHUP reload, SIGTERM drain."""
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lmtpdtest import Daemon, Report, message, stuff, transaction, wait_for  # noqa: E402

r = Report()
d = Daemon({"max-connections": "150", "idle-timeout": "2", "command-timeout": "2",
            "max-message-bytes": "200000", "max-line-bytes": "1000",
            "max-data-line-bytes": "5000", "accept-recipients": "@shop.example"},
           extra_args=["--no-ack"]).start()

try:
    # --- basic commands ---
    c = d.connect()
    r.check("greeting 220", c.greeting[0] == 220, c.greeting)
    code, lines = c.cmd("HELO client.example")
    r.check("HELO refused", code == 500, lines)
    code, lines = c.cmd("MAIL FROM:<a@b.example>")
    r.check("MAIL before LHLO refused", code == 503, lines)
    code, lines = c.lhlo()
    ext = [ln[4:].split()[0].upper() for ln in lines[1:]]
    r.check("LHLO 250", code == 250, lines)
    for e in ("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SIZE"):
        r.check("advertises " + e, e in ext, lines)
    r.check("SIZE value", "250 SIZE 200000" in lines, lines)
    code, lines = c.cmd("VRFY support@shop.example")
    r.check("VRFY refused", code == 502 and "5.5.1" in lines[0], lines)
    r.check("NOOP", c.cmd("NOOP")[0] == 250)
    r.check("RCPT before MAIL", c.cmd("RCPT TO:<support@shop.example>")[0] == 503)
    r.check("DATA before MAIL", c.cmd("DATA")[0] == 503)
    r.check("MAIL with BODY=8BITMIME", c.cmd("MAIL FROM:<a@b.example> BODY=8BITMIME")[0] == 250)
    r.check("nested MAIL", c.cmd("MAIL FROM:<a@b.example>")[0] == 503)
    r.check("RSET", c.cmd("RSET")[0] == 250)
    r.check("MAIL after RSET", c.cmd("MAIL FROM:<> SIZE=100")[0] == 250)
    code, lines = c.cmd("RCPT TO:<nobody@elsewhere.example>")
    r.check("unknown recipient 550 5.1.1", code == 550 and "5.1.1" in lines[0], lines)
    r.check("DATA without recipients", c.cmd("DATA")[0] == 503)
    r.check("unknown command", c.cmd("FROB")[0] == 500)
    code, lines = c.cmd("X" * 3000)
    r.check("over-long command line 500 5.5.2", code == 500 and "5.5.2" in lines[0], lines)
    r.check("session goes on after a long line", c.cmd("NOOP")[0] == 250)
    r.check("QUIT", c.cmd("QUIT")[0] == 221 and c.closed())

    # --- pipelining: everything in one write, one reply per accepted recipient ---
    c = d.connect()
    body = (b"From: Alice <alice@customer.example>\nTo: support@shop.example\n"
            b"Subject: pipelined\nMessage-ID: <pipe-1@customer.example>\n"
            b"X-Candor-Intent: praise\nX-CANDOR-Ticket: CND-999999\n  continued\n"
            b"X-Other: kept\n\n"
            b".leading dot\n..two dots\n.\nlast line\n\xc3\xa9t\xc3\xa9 8bit\n")
    before = set(d.files())
    c.send(b"LHLO client.example\r\nMAIL FROM:<alice@customer.example>\r\n"
           b"RCPT TO:<support@shop.example>\r\nRCPT TO:<nobody@elsewhere.example>\r\n"
           b"RCPT TO:<billing@shop.example>\r\nDATA\r\n")
    replies = [c.reply()[0] for _ in range(6)]
    r.check("pipelined replies in order", replies == [250, 250, 250, 550, 250, 354], replies)
    c.send(stuff(body) + b"NOOP\r\n")
    after_data = [c.reply() for _ in range(2)]
    r.check("one DATA reply per accepted recipient",
            [x[0] for x in after_data] == [250, 250], after_data)
    r.check("recipient named in each reply",
            "support@shop.example" in after_data[0][1][0] and
            "billing@shop.example" in after_data[1][1][0], after_data)
    r.check("pipelined command after the dot", c.reply()[0] == 250)
    new = sorted(set(d.files()) - before)
    r.check("one file for two recipients in one maildir", len(new) == 1, new)
    if new:
        data = open(new[0], "rb").read()
        hdr, _, got_body = data.partition(b"\n\n")
        r.check("dot-unstuffed body byte-identical",
                got_body == body.partition(b"\n\n")[2], got_body)
        r.check("incoming X-Candor-* removed (with continuation)",
                b"X-Candor-Intent: praise" not in data and b"CND-999999" not in data
                and b"  continued" not in data, hdr)
        r.check("other fields kept", b"X-Other: kept" in hdr)
        r.check("our X-Candor-* block added once, ahead of the message's fields",
                hdr.count(b"X-Candor-Intent: ") == 1 and hdr.count(b"X-Candor-Autoreply: ") == 1
                and hdr.index(b"X-Candor-Intent: ") < hdr.index(b"From: "), hdr)
        r.check("no CR in the maildir file", b"\r" not in data)
        r.check("maildir name <sec>.M<usec>P<pid>Q<n>.<host>",
                bool(__import__("re").match(r"^\d+\.M\d{6}P\d+Q\d+\.\S+$",
                                            os.path.basename(new[0]))), new[0])
    r.check("tmp/ empty", os.listdir(os.path.join(d.maildir, "tmp")) == [])
    c.cmd("QUIT")

    # --- redelivery: the same message again is recognised ---
    c = d.connect()
    c.lhlo()
    before = set(d.files())
    rr, dr = transaction(c, ["support@shop.example", "billing@shop.example"], body)
    r.check("redelivery answered 250", dr == [250, 250], dr)
    r.check("redelivery not delivered twice", set(d.files()) == before)
    body2 = body.replace(b"last line", b"another last line")
    rr, dr = transaction(c, ["support@shop.example"], body2)
    r.check("same Message-ID, other body: delivered", dr == [250] and
            len(set(d.files()) - before) == 1, dr)
    noid1 = b"From: a@customer.example\nSubject: no id\nReceived: by mx id AAA1\n\nsame text\n"
    noid2 = b"From: a@customer.example\nSubject: no id\nReceived: by mx id AAA2\n\nsame text\n"
    before = set(d.files())
    dr = [transaction(c, ["support@shop.example"], m)[1][0] for m in (noid1, noid2, noid1)]
    r.check("no Message-ID: two submissions of one text both delivered, the exact "
            "resend recognised", dr == [250, 250, 250] and len(set(d.files()) - before) == 2,
            (dr, len(set(d.files()) - before)))
    c.cmd("QUIT")

    # --- size limit: SIZE= in MAIL, and an over-size message without SIZE ---
    c = d.connect()
    c.lhlo()
    code, lines = c.cmd("MAIL FROM:<a@customer.example> SIZE=300000")
    r.check("MAIL SIZE over the limit 552 5.3.4", code == 552 and "5.3.4" in lines[0], lines)
    before = set(d.files())
    big = message(body="x" * 999 + "\n") * 1
    big = big + (b"y" * 999 + b"\n") * 250
    rr, dr = transaction(c, ["support@shop.example", "billing@shop.example"], big)
    r.check("over-size message: 552 per recipient", dr == [552, 552], dr)
    r.check("over-size message: nothing delivered", set(d.files()) == before)
    longline = message(body="z" * 6000 + "\n")
    rr, dr = transaction(c, ["support@shop.example"], longline)
    r.check("over-long message line: 554 5.6.0", dr == [554], dr)
    r.check("over-long line: nothing delivered", set(d.files()) == before)
    r.check("session usable after refusals", c.cmd("NOOP")[0] == 250)
    c.cmd("QUIT")

    # --- a client that stalls (idle-timeout=2, command-timeout=2) ---
    c = d.connect()
    c.lhlo()
    t0 = time.time()
    code, lines = c.reply()
    r.check("idle client gets 421 4.4.2", code == 421 and "4.4.2" in lines[0], lines)
    r.check("idle client closed after about 2 s", 1.5 < time.time() - t0 < 6 and c.closed())
    c = d.connect()
    c.lhlo()
    c.cmd("MAIL FROM:<a@customer.example>")
    c.cmd("RCPT TO:<support@shop.example>")
    c.cmd("DATA")
    before = set(d.files())
    c.send(b"Subject: stalled\r\n\r\nhalf a mess")
    code, lines = c.reply()
    r.check("stall inside DATA gets 421", code == 421, lines)
    r.check("stalled message not delivered", set(d.files()) == before and
            os.listdir(os.path.join(d.maildir, "tmp")) == [])

    # --- 100 concurrent sessions ---
    results = []
    lock = threading.Lock()
    before = set(d.files())

    def one(i):
        try:
            cl = d.connect(timeout=30)
            cl.lhlo()
            msg = message(subject="concurrent %d" % i, msgid="<conc-%d@customer.example>" % i,
                          body="message number %d\n" % i)
            rr, dr = transaction(cl, ["support@shop.example"], msg)
            cl.cmd("QUIT")
            with lock:
                results.append(dr == [250])
        except Exception as e:  # noqa: BLE001
            with lock:
                results.append(repr(e))

    # hold 100 sessions open at the same time, then let them all deliver
    threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    got = set(d.files()) - before
    r.check("100 concurrent sessions all 250", results.count(True) == 100,
            [x for x in results if x is not True][:3])
    r.check("100 concurrent sessions: 100 files", len(got) == 100, len(got))
    texts = set()
    for f in got:
        texts.add(open(f, "rb").read().split(b"\n\n", 1)[1])
    r.check("100 distinct bodies", len(texts) == 100, len(texts))

    # --- MAIL parameters parsed in parallel sessions (the parser must not
    # share state between threads: strtok() did; a 555 to a valid SIZE=
    # makes Postfix bounce the message) ---
    bad = []

    def params(i):
        try:
            cl = d.connect(timeout=30)
            cl.lhlo()
            # pipelined: the server parses them back to back
            cl.send("".join("MAIL FROM:<p%d-%d@customer.example> SIZE=%d BODY=8BITMIME\r\n"
                            "RSET\r\n" % (i, k, 1000 + k) for k in range(200)))
            for k in range(400):
                code, lines = cl.reply()
                if code != 250:
                    with lock:
                        bad.append(lines)
            cl.cmd("QUIT")
        except Exception as e:  # noqa: BLE001
            with lock:
                bad.append(repr(e))

    threads = [threading.Thread(target=params, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    r.check("4,000 pipelined MAIL commands with SIZE= BODY= in 20 parallel sessions: all 250",
            not bad, bad[:3])

    # --- SIGHUP reloads without dropping a connection ---
    c = d.connect()
    c.lhlo()
    d.reconfigure({"max-message-bytes": "123456"})
    d.kill(signal.SIGHUP)
    # loading a configuration (the model) takes a while under ASan
    wait_for(lambda: "configuration reloaded" in d.read_log(), 15)
    r.check("session survives SIGHUP", c.cmd("NOOP")[0] == 250)
    code, lines = c.lhlo()
    r.check("reloaded setting in effect", "250 SIZE 123456" in lines, lines)
    c.cmd("QUIT")
    r.check("reload logged", "configuration reloaded" in d.read_log())
    good = open(d.config).read()
    open(d.config, "w").write(good.replace("<daemon ", "<daemon max-connections=\"0\" ", 1))
    d.kill(signal.SIGHUP)
    wait_for(lambda: "reload failed" in d.read_log(), 15)
    c = d.connect()
    code, lines = c.lhlo()
    r.check("a bad configuration on SIGHUP is refused and the old one kept",
            "reload failed" in d.read_log() and "250 SIZE 123456" in lines, lines)
    c.cmd("QUIT")
    open(d.config, "w").write(good)

    # --- SIGTERM: the transaction in flight finishes, then 421, exit 0 ---
    c = d.connect()
    c.lhlo()
    idle = d.connect()
    idle.lhlo()
    c.cmd("MAIL FROM:<a@customer.example>")
    c.cmd("RCPT TO:<support@shop.example>")
    c.cmd("DATA")
    before = set(d.files())
    d.kill(signal.SIGTERM)
    time.sleep(0.3)
    code, lines = idle.reply()
    r.check("waiting session gets 421 4.3.2 on SIGTERM", code == 421 and "4.3.2" in lines[0], lines)
    c.send(stuff(message(subject="in flight", msgid="<flight@customer.example>")))
    r.check("transaction in flight completes with 250", c.reply()[0] == 250)
    r.check("in-flight message delivered", len(set(d.files()) - before) == 1)
    code, lines = c.cmd("NOOP")
    r.check("next command gets 421 4.3.2", code == 421, lines)
    try:
        d.proc.wait(10)
    except Exception:  # noqa: BLE001
        pass
    r.check("exit status 0 after SIGTERM", d.proc.returncode == 0, d.proc.returncode)
    try:
        socket.create_connection(("127.0.0.1", d.port), timeout=1).close()
        refused = False
    except OSError:
        refused = True
    r.check("no longer listening", refused)
    r.check("one log line per message with id, intent, decision, time",
            all(k in d.read_log() for k in (" intent=", " decision=", " time=", " status=delivered")))
finally:
    d.stop(signal.SIGKILL)

# --- per-intent maildir++ folders ---
d3 = Daemon({"folder-per-intent": "yes"}, extra_args=["--no-ack"]).start()
try:
    c = d3.connect()
    c.lhlo()
    msgs = [message(subject="Refund for order A20001", msgid="<fpi-1@customer.example>",
                    body="I want my money back for order A20001, it arrived broken.\n"),
            message(subject="Thank you!", msgid="<fpi-2@customer.example>",
                    body="Just wanted to say thanks, the team was wonderful.\n")]
    dr = [transaction(c, ["support@shop.example"], m)[1] for m in msgs]
    c.cmd("QUIT")
    r.check("per-intent delivery 250", dr == [[250], [250]], dr)
    files = d3.files()
    ok = len(files) == 2
    for f in files:
        raw = open(f, "rb").read()
        intent = raw.split(b"X-Candor-Intent: ", 1)[1].split(b"\n", 1)[0].decode()
        folder = os.path.basename(os.path.dirname(os.path.dirname(f)))
        ok = ok and folder == "." + intent and os.path.exists(
            os.path.join(os.path.dirname(os.path.dirname(f)), "maildirfolder"))
    r.check("each message in the maildir++ folder .<its X-Candor-Intent>/ with maildirfolder",
            ok, files)
    r.check("nothing in the top-level new/", os.listdir(os.path.join(d3.maildir, "new")) == [])
finally:
    d3.stop(signal.SIGKILL)

# --- connection limit (max-connections=3) ---
d2 = Daemon({"max-connections": "3"}, extra_args=["--no-ack"]).start()
try:
    time.sleep(0.5)   # the start-up probe's session must be gone
    cs = [d2.connect() for _ in range(3)]
    extra = d2.connect()
    r.check("connection over the limit gets 421", extra.greeting[0] == 421, extra.greeting)
    r.check("sessions within the limit work", all(x.lhlo()[0] == 250 for x in cs))
    for x in cs:
        x.cmd("QUIT")
    time.sleep(0.3)
    r.check("a slot frees when a session ends", d2.connect().greeting[0] == 220)
finally:
    d2.stop(signal.SIGKILL)

r.finish()
