#!/usr/bin/env python3
"""A full disk: the maildir on a small tmpfs. A message that does not fit
gets 452 4.3.1 (not 250), no partial file is left in tmp/, new/ or cur/;
behind Postfix the message stays queued and, once space is freed, Postfix's
retry delivers it, whole and once."""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lmtpdtest import (Daemon, Report, Sandbox, message, sandbox_problem, send_smtp,  # noqa: E402
                      transaction, wait_for)

r = Report()
why = sandbox_problem()
if why:
    r.check("Postfix sandbox available: " + why, False)
    r.finish()

base = tempfile.mkdtemp(prefix="lmtpd-full-")
os.chmod(base, 0o755)
mnt = os.path.join(base, "mnt")
os.makedirs(mnt)
p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", mnt],
                   capture_output=True, text=True)
if p.returncode != 0:
    r.check("mount a small tmpfs: " + p.stderr.strip(), False)
    r.finish()

sb = Sandbox(base)
d = None
filler = os.path.join(mnt, "filler")
try:
    md = os.path.join(mnt, "Maildir")
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(md, sub))
    # fill the disk, leaving ~40 KiB
    with open(filler, "wb") as f:
        st = os.statvfs(mnt)
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 40 * 1024))
    sb.start()
    os.makedirs(os.path.join(base, "daemon"))
    d = Daemon({"accept-recipients": "@shop.example"}, extra_args=["--no-ack"],
               workdir=os.path.join(base, "daemon"), port=sb.lmtp_port, maildir=md).start()

    big = message(subject="big attachment", msgid="<full-1@customer.example>",
                  body=("%s\n" % ("q" * 76)) * 2000)           # ~150 KiB
    small = message(subject="small", msgid="<small-1@customer.example>", body="fits\n")

    # direct LMTP: 452 4.3.1, nothing left behind; a small one still fits
    c = d.connect()
    c.lhlo()
    rr, dr = transaction(c, ["support@shop.example"], big)
    r.check("disk full: 452 (not 250)", dr == [452], dr)
    r.check("disk full: no file in new/ or cur/",
            os.listdir(os.path.join(md, "new")) == [] and os.listdir(os.path.join(md, "cur")) == [])
    r.check("disk full: no partial file in tmp/", os.listdir(os.path.join(md, "tmp")) == [])
    rr, dr = transaction(c, ["support@shop.example"], small)
    r.check("a small message still fits: 250", dr == [250], dr)
    c.cmd("QUIT")
    r.check("disk full logged", "status=diskfull" in d.read_log())

    # through Postfix: deferred, then delivered after space is freed
    send_smtp(sb.smtp_port, "alice@customer.example", ["support@shop.example"],
              message(subject="big via postfix", msgid="<full-2@customer.example>",
                      body=("%s\n" % ("p" * 76)) * 2000))
    wait_for(lambda: d.read_log().count("status=diskfull") >= 2, 30)
    time.sleep(0.5)
    r.check("Postfix keeps the message (deferred)", len(sb.queued()) == 1, sb.queued())
    r.check("still no partial file", os.listdir(os.path.join(md, "tmp")) == [] and
            len(os.listdir(os.path.join(md, "new"))) == 1)
    os.unlink(filler)
    sb.flush()

    def arrived():
        for n in os.listdir(os.path.join(md, "new")):
            raw = open(os.path.join(md, "new", n), "rb").read()
            if b"<full-2@customer.example>" in raw:
                return raw
        return None

    raw = wait_for(arrived, 60, 1)
    r.check("after space is freed, Postfix's retry delivers", bool(raw))
    r.check("delivered whole", bool(raw) and raw.endswith((("%s\n" % ("p" * 76)) * 2000).encode()))
    r.check("delivered once", len(os.listdir(os.path.join(md, "new"))) == 2)
    r.check("queue empty", wait_for(lambda: not sb.queued(), 10))
finally:
    if d:
        d.stop(signal.SIGKILL)
    sb.stop()
    subprocess.run(["umount", "-l", mnt], capture_output=True)
r.finish()
