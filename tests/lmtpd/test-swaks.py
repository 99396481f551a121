#!/usr/bin/env python3
"""candor-lmtpd driven by swaks (a real SMTP/LMTP client): delivery,
pipelining, several recipients with one failing, dot-stuffing, an over-long
line, an over-size message, an 8-bit body, and a UNIX socket."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lmtpdtest import DAEMON, Daemon, Report, watch_log  # noqa: E402

r = Report()
if not shutil.which("swaks"):
    r.check("swaks installed (apt-get install swaks)", False)
    r.finish()

d = Daemon({"max-message-bytes": "100000", "max-data-line-bytes": "2000",
            "accept-recipients": "@shop.example"}, extra_args=["--no-ack"]).start()


def swaks(*args, server=None, body=None):
    where = ["--socket", server] if server else ["--server", "127.0.0.1:%d" % d.port]
    cmd = ["swaks", "--protocol", "LMTP"] + where + [
           "--from", "alice@customer.example", "--helo", "client.example",
           "--timeout", "20"] + list(args)
    if body is not None:
        cmd += ["--body", "-"]
    p = subprocess.run(cmd, input=body, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def replies(out):
    return [ln.split()[1] for ln in out.splitlines() if ln.startswith("<") and len(ln.split()) > 1
            and ln.split()[1][:3].isdigit()]


try:
    before = set(d.files())
    rc, out = swaks("--to", "support@shop.example", "--header", "Subject: where is order A10442?",
                    body="It is late.\n")
    r.check("swaks LMTP delivery exits 0", rc == 0, out[-500:])
    r.check("swaks: 250 2.0.0 after DATA", "250 2.0.0" in out, out[-500:])
    r.check("swaks: one file delivered", len(set(d.files()) - before) == 1)

    before = set(d.files())
    rc, out = swaks("--pipeline", "--to", "support@shop.example", "--header", "Subject: pipelined",
                    body="pipelined body\n")
    r.check("swaks --pipeline exits 0", rc == 0, out[-800:])
    r.check("swaks --pipeline: delivered", len(set(d.files()) - before) == 1)

    before = set(d.files())
    rc, out = swaks("--to", "support@shop.example,nobody@elsewhere.example,billing@shop.example",
                    "--header", "Subject: three recipients", body="three\n")
    codes = replies(out)
    r.check("one recipient of three refused 550", codes.count("550") == 1, codes)
    after_data = codes[codes.index("354") + 1:] if "354" in codes else []
    r.check("two replies after DATA, both 250", after_data[:2] == ["250", "250"], codes)
    r.check("three recipients: delivered once", len(set(d.files()) - before) == 1)

    before = set(d.files())
    dotted = "first\n.single dot start\n..double\n.\nend\n"
    rc, out = swaks("--to", "support@shop.example", "--header", "Subject: dots",
                    "--header", "Message-ID: <dots-1@customer.example>", body=dotted)
    new = sorted(set(d.files()) - before)
    ok = False
    if new:
        got = open(new[0], "rb").read().split(b"\n\n", 1)[1]
        ok = got.startswith(dotted.encode())
    r.check("dot-stuffed lines arrive unstuffed", ok, new)

    before = set(d.files())
    rc, out = swaks("--to", "support@shop.example", "--header", "Subject: long line",
                    body="a" * 5000 + "\n")
    r.check("over-long line refused 554 5.6.0", "554 5.6.0" in out, out[-400:])
    r.check("over-long line: nothing delivered", set(d.files()) == before)

    rc, out = swaks("--to", "support@shop.example", "--header", "Subject: big",
                    body=("b" * 999 + "\n") * 150)
    r.check("over-size message refused 552 5.3.4", "552 5.3.4" in out, out[-400:])
    r.check("over-size: nothing delivered", set(d.files()) == before)

    before = set(d.files())
    rc, out = swaks("--to", "support@shop.example", "--header", "Subject: =?UTF-8?Q?caf=C3=A9?=",
                    "--header", "Content-Type: text/plain; charset=utf-8",
                    "--header", "Content-Transfer-Encoding: 8bit",
                    body="Le café était froid. Ünïcödé.\n")
    new = sorted(set(d.files()) - before)
    r.check("8-bit body delivered byte-identical",
            bool(new) and "Le café était froid. Ünïcödé.\n".encode() in open(new[0], "rb").read())
finally:
    d.stop(signal.SIGKILL)

# the same over a UNIX socket
tmp = tempfile.mkdtemp(prefix="lmtpd-unix-")
sock = os.path.join(tmp, "lmtp.sock")
md = os.path.join(tmp, "Maildir")
cfg = Daemon()  # only for its config file
os.makedirs(os.path.join(md, "tmp"))
for name, age in (("stale", 40 * 3600), ("young", 3600)):
    fn = os.path.join(md, "tmp", name)
    open(fn, "w").write("partial")
    os.utime(fn, (time.time() - age, time.time() - age))
log = open(os.path.join(tmp, "log"), "wb")
watch_log(log.name)
p = subprocess.Popen([DAEMON, "--listen", "unix:" + sock, "--maildir", md, "--config", cfg.config,
                      "--state", os.path.join(tmp, "state.db"), "--no-ack",
                      "--pid-file", os.path.join(tmp, "pid")], stderr=log)
for _ in range(100):
    if os.path.exists(sock):
        break
    time.sleep(0.05)
try:
    rc, out = swaks("--to", "support@shop.example", "--header", "Subject: over unix",
                    server=sock, body="unix\n")
    r.check("UNIX socket: delivered", rc == 0 and len(os.listdir(os.path.join(md, "new"))) == 1,
            out[-400:])
    r.check("start-up removes tmp/ files older than 36 h, keeps younger ones",
            sorted(os.listdir(os.path.join(md, "tmp"))) == ["young"], os.listdir(os.path.join(md, "tmp")))
    r.check("pid file written", open(os.path.join(tmp, "pid")).read().strip() == str(p.pid))
finally:
    p.send_signal(signal.SIGTERM)
    p.wait(10)
r.check("SIGTERM: exit 0, socket and pid file removed",
        p.returncode == 0 and not os.path.exists(sock) and not os.path.exists(os.path.join(tmp, "pid")),
        p.returncode)

# --user: bind first (as root), then run as that user
if os.geteuid() == 0:
    import pwd
    nobody = pwd.getpwnam("nobody")
    du = Daemon({"accept-recipients": "@shop.example"}, extra_args=["--no-ack", "--user", "nobody"])
    os.makedirs(du.maildir)
    for x in (du.dir, du.maildir):
        os.chown(x, nobody.pw_uid, nobody.pw_gid)
    du.start()
    try:
        uid = [ln.split()[1] for ln in open("/proc/%d/status" % du.proc.pid)
               if ln.startswith("Uid:")][0]
        r.check("--user: runs as nobody after binding", int(uid) == nobody.pw_uid, uid)
        d = du
        rc, out = swaks("--to", "support@shop.example", "--header", "Subject: as nobody",
                        body="x\n")
        files = du.files()
        r.check("--user: delivers as nobody", rc == 0 and len(files) == 1 and
                os.stat(files[0]).st_uid == nobody.pw_uid, out[-300:])
    finally:
        du.stop(signal.SIGKILL)
r.finish()
