"""Helpers for the candor-lmtpd script tests: start the daemon on a free
port with a private config, state and maildir; a raw LMTP client; a tiny
check/report harness that prints "N passed, N failed"."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("CANDOR_BUILD", "build")
SOURCE = os.environ.get("CANDOR_SOURCE", ".")
DATADIR = os.path.abspath(os.environ.get("CANDOR_DATADIR", os.path.join(SOURCE, "lib", "data")))
DAEMON = os.environ.get("CANDOR_LMTPD", os.path.join(BUILD, "examples", "candor-lmtpd"))

# What AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer print
# (CI runs this suite on a -Db_sanitize=address,undefined build), and what
# LeakSanitizer prints when it could not check at all. The
# daemon's stderr goes to its log file, so a report there would otherwise
# pass unseen: every log a test's daemons wrote is scanned by
# Report.finish() and a report fails the test.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ERROR: UndefinedBehaviorSanitizer",
                   "Sanitizer has encountered a fatal error")
_daemon_logs = []


def watch_log(path):
    """Have Report.finish() scan PATH (a daemon's stderr) for sanitizer reports."""
    if path not in _daemon_logs:
        _daemon_logs.append(path)


def sanitizer_reports(path):
    """The lines of PATH that start a sanitizer report (empty if none)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [ln.rstrip("\n") for ln in f if any(m in ln for m in SANITIZER_MARKS)]
    except OSError:
        return []


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("ok   %s" % name)
        else:
            self.failed += 1
            print("FAIL %s %s" % (name, detail))
        sys.stdout.flush()
        return ok

    def finish(self, skip_reason=None):
        """The last line is "N passed, N failed"; exit 1 on a failure, 77
        (skipped) when SKIP_REASON says a part could not run and nothing
        failed. A sanitizer report in any daemon log is a failure (printed
        with its log, which holds the stack)."""
        if _daemon_logs:
            bad = {}
            for path in _daemon_logs:
                found = sanitizer_reports(path)
                if found:
                    bad[path] = found[:5]
                    with open(path, encoding="utf-8", errors="replace") as f:
                        print("---- %s (last 20000 characters)\n%s" % (path, f.read()[-20000:]))
            self.check("no sanitizer report in the %d daemon log(s)" % len(_daemon_logs),
                       not bad, bad)
        if skip_reason and not self.failed:
            print("SKIPPED: %s" % skip_reason)
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else (77 if skip_reason else 0))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def write_config(path, daemon=None, addresses=("support@shop.example",)):
    """A copy of the default config with <daemon> attributes replaced."""
    with open(os.path.join(DATADIR, "candor.xml"), encoding="utf-8") as f:
        xml = f.read()
    attrs = " ".join('%s="%s"' % (k, v) for k, v in (daemon or {}).items())
    xml = re.sub(r"<daemon\b[^>]*/>", "<daemon %s/>" % attrs, xml, flags=re.S)
    xml = re.sub(r'<model path="[^"]*"/>',
                 '<model path="%s"/>' % os.path.join(DATADIR, "model.txt"), xml)
    xml = re.sub(r'<state path="[^"]*"/>', '<state path="%s"/>' %
                 os.path.join(os.path.dirname(path), "state.db"), xml)
    addr = "".join("<address>%s</address>" % a for a in addresses)
    xml = re.sub(r"<address>[^<]*</address>", addr, xml, count=1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(xml)


class Daemon:
    def __init__(self, daemon_settings=None, extra_args=(), workdir=None, port=None,
                 maildir=None, addresses=("support@shop.example",), listen=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="lmtpd-test-")
        os.chmod(self.dir, 0o755)
        self.port = port or free_port()
        # where it listens: 127.0.0.1:PORT unless LISTEN says unix:PATH
        self.listen = listen or "127.0.0.1:%d" % self.port
        self.config = os.path.join(self.dir, "candor.xml")
        self.state = os.path.join(self.dir, "state.db")
        self.maildir = maildir or os.path.join(self.dir, "Maildir")
        self.log = os.path.join(self.dir, "lmtpd.log")
        watch_log(self.log)
        self.settings = dict(daemon_settings or {})
        self.addresses = addresses
        write_config(self.config, self.settings, addresses)
        self.extra = list(extra_args)
        self.proc = None

    def start(self, wait=True):
        args = [DAEMON, "--listen", self.listen, "--maildir", self.maildir,
                "--config", self.config, "--state", self.state] + self.extra
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=self.logf)
        if wait:
            for _ in range(100):
                try:
                    if self.listen.startswith("unix:"):
                        with socket.socket(socket.AF_UNIX) as s:
                            s.settimeout(1)
                            s.connect(self.listen[5:])
                    else:
                        socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return self
                except OSError:
                    if self.proc.poll() is not None:
                        raise RuntimeError("daemon exited: " + self.read_log())
                    time.sleep(0.05)
            raise RuntimeError("daemon did not listen")
        return self

    def reconfigure(self, daemon_settings):
        self.settings.update(daemon_settings)
        write_config(self.config, self.settings, self.addresses)

    def kill(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def read_log(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def files(self, sub="new"):
        out = []
        for root, dirs, names in os.walk(self.maildir):
            if os.path.basename(root) == sub:
                out += [os.path.join(root, n) for n in names]
        return sorted(out)

    def connect(self, timeout=10):
        return Client(self.port, timeout)


class Client:
    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """One (possibly multi-line) reply: (code, [lines])."""
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return int(ln[:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def lhlo(self):
        return self.cmd("LHLO client.example")

    def closed(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def stuff(body):
    """Dot-stuff and CRLF a message (bytes with LF line ends)."""
    out = []
    for ln in body.split(b"\n"):
        if ln.startswith(b"."):
            ln = b"." + ln
        out.append(ln)
    if out and out[-1] == b"":
        out.pop()
    return b"\r\n".join(out) + b"\r\n.\r\n"


def message(subject="where is order A10442?", body="It is late.\n", msgid=None,
            sender="alice@customer.example", to="support@shop.example", extra=""):
    msgid = msgid or "<%s.%d@customer.example>" % (time.time(), os.getpid())
    return ("From: Alice <%s>\nTo: %s\nSubject: %s\nMessage-ID: %s\n"
            "Date: Sat, 28 Nov 2026 10:00:00 +0000\n%s\n%s"
            % (sender, to, subject, msgid, extra, body)).encode()


def transaction(c, rcpts, data, sender="alice@customer.example"):
    """MAIL, RCPTs, DATA; returns the list of RCPT replies and the DATA replies."""
    code, _ = c.cmd("MAIL FROM:<%s>" % sender)
    assert code == 250, code
    rr = [c.cmd("RCPT TO:<%s>" % r)[0] for r in rcpts]
    code, _ = c.cmd("DATA")
    if code != 354:
        return rr, [code]
    c.send(stuff(data))
    return rr, [c.reply()[0] for r in rr if r == 250]


SHARED = os.environ.get("CANDOR_SHARED", os.path.join(SOURCE, "..", "shared"))
SANDBOX = os.path.join(SHARED, "tools", "mail-sandbox")


def sandbox_problem():
    """Why the Postfix sandbox cannot run here, or None."""
    import shutil
    if os.geteuid() != 0:
        return "needs root (the postfix master refuses to run otherwise)"
    if not shutil.which("postfix") and not os.path.exists("/usr/sbin/postfix"):
        return "postfix not installed (apt-get install postfix)"
    if not os.path.exists(SANDBOX):
        return "no mail-sandbox at " + SANDBOX
    return None


class Sandbox:
    """A private Postfix from ../shared/tools/mail-sandbox: SMTP on
    smtp_port, *@shop.example over LMTP to lmtp_port, *@customer.example
    into one maildir."""

    def __init__(self, base, smtp_port=None, lmtp_port=None):
        self.dir = os.path.join(base, "pf")
        self.smtp_port = smtp_port or free_port()
        self.lmtp_port = lmtp_port or free_port()
        self.info = {}

    def start(self):
        p = subprocess.run(["bash", SANDBOX, "start", self.dir, str(self.smtp_port),
                            str(self.lmtp_port)], capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError("mail-sandbox start failed: " + p.stdout + p.stderr)
        for ln in p.stdout.splitlines():
            if ln.startswith("MAIL_SANDBOX_") and "=" in ln:
                k, v = ln.split("=", 1)
                self.info[k] = v.strip('"')
        self.sendmail = self.info["MAIL_SANDBOX_SENDMAIL"]
        self.customers = os.path.join(self.info["MAIL_SANDBOX_MAILDIRS"], "customers")
        return self

    def stop(self):
        subprocess.run(["bash", SANDBOX, "stop", self.dir], capture_output=True, timeout=120)

    def flush(self):
        etc = os.path.join(self.dir, "etc")
        subprocess.run(["postqueue", "-c", etc, "-f"], capture_output=True, timeout=60)
        # and wake pickup for what sendmail left in maildrop
        subprocess.run(["postkick", "-c", etc, "public", "pickup", "W"],
                       capture_output=True, timeout=60)

    def queued(self):
        p = subprocess.run(["postqueue", "-c", os.path.join(self.dir, "etc"), "-j"],
                           capture_output=True, text=True, timeout=60)
        out = [ln for ln in p.stdout.splitlines() if ln.strip()]
        md = os.path.join(self.dir, "queue", "maildrop")
        try:
            out += ["maildrop/" + n for n in os.listdir(md)]
        except OSError:
            pass
        return out

    def customer_mail(self):
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.customers, sub)
            if os.path.isdir(d):
                out += [os.path.join(d, n) for n in os.listdir(d)]
        return sorted(out)

    def maillog(self):
        try:
            with open(self.info.get("MAIL_SANDBOX_LOG", ""), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def send_smtp(port, sender, rcpts, data, timeout=60):
    """Submit one message over SMTP to 127.0.0.1:port (bytes, LF or CRLF)."""
    import smtplib
    if isinstance(data, bytes):   # smtplib adds a CRLF unless the data ends in one
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as s:
        s.sendmail(sender, rcpts, data)


class FakeSendmail:
    """A scratch directory (self.dir) with an executable fake sendmail
    (self.path) that records each hand-over in self.calls: <n>.args (its
    arguments, one a line; the recipient is the last) and <n>.msg (the
    message). set_mode(): ok (exit 0), fail (exit 75) or slow (3 s, then 0)."""

    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.dir, 0o755)
        self.calls = os.path.join(self.dir, "calls")
        os.makedirs(self.calls)
        self.path = os.path.join(self.dir, "fake-sendmail")
        with open(self.path, "w") as f:
            f.write("""#!/bin/sh
mode=$(cat "%s/mode" 2>/dev/null || echo ok)
[ "$mode" = fail ] && exit 75
[ "$mode" = slow ] && sleep 3
n=$(date +%%s%%N).$$
printf '%%s\\n' "$@" > "%s/$n.args"
cat > "%s/$n.msg"
exit 0
""" % (self.dir, self.calls, self.calls))
        os.chmod(self.path, 0o755)

    def set_mode(self, mode):
        with open(os.path.join(self.dir, "mode"), "w") as f:
            f.write(mode)

    def sent(self):
        """The recorded messages' file names (<n>.msg), oldest first."""
        return sorted(n for n in os.listdir(self.calls) if n.endswith(".msg"))

    def recipients(self):
        """The recipient (last argument) of each recorded hand-over."""
        out = []
        for n in self.sent():
            with open(os.path.join(self.calls, n[:-4] + ".args")) as f:
                out.append(f.read().rstrip("\n").split("\n")[-1])
        return out


def wait_for(pred, timeout, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def header_fields(raw):
    """The header of a message (bytes) as a list of (name-lowercase, value)."""
    head = raw.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    fields = []
    for ln in head.split("\n"):
        if ln[:1] in (" ", "\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + " " + ln.strip())
        elif ":" in ln:
            k, v = ln.split(":", 1)
            fields.append((k.strip().lower(), v.strip()))
    return fields
