#!/usr/bin/env python3
"""tests/test-limits-entry.py -- the limits of issue 6 through the ways a
user sets them that tests/test-limits.c (the C API) does not reach:

  cli      `candor --max-config-bytes N` (global, before the command, and
           as an option of a command): a configuration over the default
           4 MiB is refused (exit 2, "FILE:0: ... max_config_bytes"), the
           same file loads with a higher value, a small value refuses the
           shipped configuration; bad values are usage errors;
  python   candor.Context(max_config_bytes=...) the same way, and
           `python3 -m candor --max-config-bytes`; every message limit
           keyword (max_message_bytes ... max_html_depth) set small and hit
           (LimitError or an `errors` entry) while the same input under the
           default limits parses cleanly -- so each keyword reaches its
           field of candor_ctx_options_t;
  stdin    `candor triage -`, `parse -` and `filter` under a configuration
           with <limits max-message-bytes="4096">: a message over it is
           refused on standard input as the same file is (exit 1, an
           "errors" entry), and `filter` passes it through unlabelled and
           unchanged (exit 0); a message under it is handled normally;
  lmtpd    <daemon max-recipients>: recipients past it get 452 4.5.3 and the
           message goes to the ones within it; the daemon refuses a
           configuration over 4 MiB at start; `--max-config-bytes N` lowers
           the cap (refused at start and on a SIGHUP reload, the old
           configuration kept) and raises it (a 5 MiB configuration starts
           and delivers); a bad N is a usage error (exit 2).

Prints "N passed, N failed" last; exit 1 on a failure.
"""
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SOURCE = os.environ.get("CANDOR_SOURCE", os.path.join(os.path.dirname(__file__), ".."))
DATADIR = os.path.abspath(os.environ.get("CANDOR_DATADIR", os.path.join(SOURCE, "lib", "data")))
BIN = os.environ.get("CANDOR_BIN", os.path.join("build", "examples", "candor"))
sys.path.insert(0, os.path.join(SOURCE, "bindings", "python"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lmtpd"))
import candor  # noqa: E402
from lmtpdtest import DAEMON, Daemon, Report, message, transaction  # noqa: E402

r = Report()
tmp = tempfile.mkdtemp(prefix="limits-entry-")
SHIPPED = os.path.join(DATADIR, "candor.xml")
MAIL = os.path.join(tmp, "mail.eml")
with open(MAIL, "wb") as f:
    f.write(b"From: Alice <alice@customer.example>\nTo: support@shop.example\n"
            b"Subject: where is order A10442?\nMessage-ID: <l1@customer.example>\n\n"
            b"It is late.\n")


def config_copy(path, pad_to=0):
    """The shipped configuration (model and state paths made absolute),
    padded with a comment to about PAD_TO bytes."""
    with open(SHIPPED, encoding="utf-8") as f:
        xml = f.read()
    xml = re.sub(r'<model path="[^"]*"/>',
                 '<model path="%s"/>' % os.path.join(DATADIR, "model.txt"), xml)
    xml = re.sub(r'<state path="[^"]*"/>',
                 '<state path="%s"/>' % os.path.join(tmp, "state.db"), xml)
    if pad_to > len(xml):
        line = "padding padding padding padding padding padding padding padding\n"
        pad = "<!--\n" + line * ((pad_to - len(xml)) // len(line) + 1) + "-->\n"
        xml = xml.replace("</candor>", pad + "</candor>")
    with open(path, "w", encoding="utf-8") as f:
        f.write(xml)
    return path


BIG = config_copy(os.path.join(tmp, "big.xml"), 5 << 20)        # over the default 4 MiB
SMALL = config_copy(os.path.join(tmp, "small.xml"))             # the shipped one, ~80 kB
r.check("big config is over 4 MiB", os.path.getsize(BIG) > 4 << 20, os.path.getsize(BIG))


def run(args, **kw):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def refused(rc, err, path, limit):
    return (rc == 2 and "%s:0:" % path in err and "max_config_bytes" in err
            and ("larger than %d bytes" % limit) in err)


# ---- cli ----
rc, out, err = run([BIN, "parse", "--config", BIG, MAIL])
r.check("cli: 5 MiB config refused under the default 4 MiB (exit 2, file:0:)",
        refused(rc, err, BIG, 4 << 20), (rc, err))
for args in (["--max-config-bytes", "8M", "parse", "--config", BIG, MAIL],
             ["--max-config-bytes=8M", "parse", "--config", BIG, MAIL],
             ["parse", "--max-config-bytes", "8388608", "--config", BIG, MAIL],
             ["parse", "--config", BIG, "--max-config-bytes=8192k", MAIL]):
    rc, out, err = run([BIN] + args)
    r.check("cli: candor %s loads it" % " ".join(a for a in args if a not in (BIG, MAIL)),
            rc == 0 and '"subject":"where is order A10442?"' in out, (rc, err))
rc, out, err = run([BIN, "--max-config-bytes", "10k", "parse", "--config", SMALL, MAIL])
r.check("cli: --max-config-bytes 10k refuses the shipped config (global option)",
        refused(rc, err, SMALL, 10240) and out == "", (rc, err))
rc, out, err = run([BIN, "triage", "--max-config-bytes", "10000", "--config", SMALL, MAIL])
r.check("cli: triage --max-config-bytes 10000 refuses it (command option)",
        refused(rc, err, SMALL, 10000) and out == "", (rc, err))
rc, out, err = run([BIN, "--max-config-bytes", "1M", "triage", "--config", SMALL, MAIL])
r.check("cli: --max-config-bytes 1M triages with it", rc == 0 and '"intent":' in out, (rc, err))
for bad in (["--max-config-bytes", "0"], ["--max-config-bytes", "x"],
            ["--max-config-bytes", "5Q"], ["--max-config-bytes", "-5"],
            ["--max-config-bytes=99999999999999999999G"], ["--max-config-bytes"]):
    rc, out, err = run([BIN] + bad + ["parse", MAIL])
    r.check("cli: candor %s parse is a usage error" % " ".join(bad),
            rc == 2 and "not a byte count" in err, (rc, err))
    rc, out, err = run([BIN, "parse"] + bad + [MAIL])
    r.check("cli: candor parse %s is a usage error" % " ".join(bad),
            rc == 2 and "not a byte count" in err, (rc, err))
rc, out, err = run([BIN, "--help"])
r.check("cli: --help names --max-config-bytes", rc == 0 and "--max-config-bytes N" in out, out)
page = open(os.path.join(SOURCE, "examples", "candor.1"), encoding="utf-8").read()
r.check("cli: candor.1 documents --max-config-bytes", "max\\-config\\-bytes" in page)

# ---- stdin: the configured max-message-bytes, not the built-in 64 MiB ----
LIM = os.path.join(tmp, "limit4k.xml")
with open(SMALL, encoding="utf-8") as f:
    xml = f.read()
xml, n = re.subn(r'(<limits\b[^>]*?\bmax-message-bytes=)"\d+"', r'\1"4096"', xml)
with open(LIM, "w", encoding="utf-8") as f:
    f.write(xml)
r.check("stdin: the 4096-byte config sets max-message-bytes", n == 1, n)
OVER = os.path.join(tmp, "over.eml")       # about 18 kB: over 4096, far under 64 MiB
with open(OVER, "wb") as f:
    f.write(b"From: Alice <alice@customer.example>\nTo: support@shop.example\n"
            b"Subject: where is order A10442?\nMessage-ID: <l2@customer.example>\n"
            b"X-Candor-Intent: spam\n\n" + b"Where is my order? It is late.\n" * 600)
over_bytes = open(OVER, "rb").read()
mail_bytes = open(MAIL, "rb").read()


def run_in(args, data):
    p = subprocess.run(args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def one_json(out):
    try:
        lines = out.decode().splitlines()
        return json.loads(lines[0]) if len(lines) == 1 else None
    except ValueError:
        return None


for cmd in ("triage", "parse"):
    rc_f, out_f, err_f = run_in([BIN, cmd, "--config", LIM, OVER], b"")
    rc_s, out_s, err_s = run_in([BIN, cmd, "--config", LIM, "-"], over_bytes)
    jf, js = one_json(out_f), one_json(out_s)
    r.check("stdin: %s FILE over max-message-bytes 4096: exit 1, an errors entry" % cmd,
            rc_f == 1 and jf and any("over the limit of 4096" in e for e in jf["errors"]),
            (rc_f, out_f[:300], err_f))
    r.check("stdin: %s - over it behaves the same (exit 1, one object, errors entry)" % cmd,
            rc_s == rc_f and js and js["file"] == "-" and sorted(js) == sorted(jf)
            and any("over the limit of 4096" in e for e in js["errors"])
            and js.get("subject") == jf.get("subject"),
            (rc_s, out_s[:300], err_s))
    rc, out, err = run_in([BIN, cmd, "--config", LIM, "-"], mail_bytes)
    j = one_json(out)
    r.check("stdin: %s - under it (control): exit 0, parsed" % cmd,
            rc == 0 and j and j["subject"] == "where is order A10442?" and not j["errors"],
            (rc, out[:300], err))
rc, out, err = run_in([BIN, "filter", "--config", LIM], over_bytes)
r.check("stdin: filter over max-message-bytes 4096: passed through unlabelled (exit 0)",
        rc == 0 and out == over_bytes.replace(b"X-Candor-Intent: spam\n", b"")
        and "passed through unlabelled" in err and "4096" in err, (rc, out[:300], err))
rc, out, err = run_in([BIN, "filter", "--config", LIM], mail_bytes)
r.check("stdin: filter under it (control): labelled, body unchanged (exit 0)",
        rc == 0 and out.startswith(b"X-Candor-Intent: ") and out.endswith(mail_bytes),
        (rc, out[:300], err))
rc, out, err = run_in([BIN, "filter", "--config", os.path.join(tmp, "missing.xml")],
                      over_bytes)
r.check("stdin: filter with a missing config: exit 75, nothing written",
        rc == 75 and out == b"", (rc, out[:100], err))

# ---- python ----
try:
    candor.Context(config=BIG)
    r.check("python: 5 MiB config refused by default (ConfigError)", False, "loaded")
except candor.ConfigError as e:
    r.check("python: 5 MiB config refused by default (ConfigError)",
            "%s:0:" % BIG in str(e) and "max_config_bytes" in str(e), str(e))
try:
    with candor.Context(config=BIG, max_config_bytes=8 << 20) as ctx:
        t = ctx.triage(MAIL)
    r.check("python: max_config_bytes=8 MiB loads it", t.intent is not None, t)
except candor.Error as e:
    r.check("python: max_config_bytes=8 MiB loads it", False, str(e))
try:
    candor.Context(config=SMALL, max_config_bytes=10000)
    r.check("python: max_config_bytes=10000 refuses the shipped config", False, "loaded")
except candor.ConfigError as e:
    r.check("python: max_config_bytes=10000 refuses the shipped config",
            "larger than 10000 bytes" in str(e), str(e))
try:
    candor.Context(config=SMALL, max_config_bytes=-1)
    r.check("python: max_config_bytes=-1 refused", False, "accepted")
except candor.InvalidArgumentError:
    r.check("python: max_config_bytes=-1 refused", True)
env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE, "bindings", "python"))
rc, out, err = run([sys.executable, "-m", "candor", "parse", "--max-config-bytes", "10k",
                    "--config", SMALL, MAIL], env=env)
r.check("python -m candor parse --max-config-bytes 10k refuses it (exit 2)",
        refused(rc, err, SMALL, 10240), (rc, err))
rc, out, err = run([sys.executable, "-m", "candor", "triage", "--max-config-bytes=8M",
                    "--config", BIG, MAIL], env=env)
r.check("python -m candor triage --max-config-bytes=8M loads the 5 MiB config",
        rc == 0 and '"intent":' in out, (rc, err))
rc, out, err = run([sys.executable, "-m", "candor", "parse", "--max-config-bytes", "0", MAIL],
                   env=env)
r.check("python -m candor --max-config-bytes 0 is a usage error",
        rc == 2 and "not a byte count" in err, (rc, err))


# The message limits, one keyword each: (keyword, small value, input over it).
def head(ctype):
    return ("From: Mallory <mallory@attacker.example>\nTo: support@shop.example\n"
            "Subject: limits\nMessage-ID: <limits@attacker.example>\nMIME-Version: 1.0\n"
            "Content-Type: %s\n\n" % ctype)


def depth(n):
    s = head('multipart/mixed; boundary="d0"')
    for i in range(1, n + 1):
        s += '--d%d\nContent-Type: multipart/mixed; boundary="d%d"\n\n' % (i - 1, i)
    s += "--d%d\nContent-Type: text/plain\n\nWhere is my order?\n" % n
    return s + "".join("--d%d--\n" % i for i in range(n, -1, -1))


def parts(n):
    s = head('multipart/mixed; boundary="p"') + "--p\nContent-Type: text/plain\n\nWhere?\n"
    for i in range(1, n):
        s += ("--p\nContent-Type: application/octet-stream\nContent-Disposition: attachment; "
              'filename="f%d.bin"\n\nxx\n' % i)
    return s + "--p--\n"


def b64(n):
    enc = base64.encodebytes(bytes(n)).decode()
    return (head('multipart/mixed; boundary="o"') + "--o\nContent-Type: text/plain\n\nSee.\n"
            "--o\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
            'Content-Disposition: attachment; filename="z.bin"\n\n' + enc + "--o--\n")


ROWS = [
    ("max_message_bytes", 4096, head("text/plain") + "Where is my order? It is late.\n" * 600),
    ("max_header_bytes", 2048,
     "X-Long:" + " aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" * 200
     + head("text/plain") + "Where is my order?\n"),
    ("max_headers", 20, "".join("X-Filler-%d: value\n" % i for i in range(100))
     + head("text/plain") + "Where is my order?\n"),
    ("max_mime_depth", 3, depth(10)),
    ("max_mime_parts", 5, parts(40)),
    ("max_line_bytes", 1000, head("text/plain") + "Where?\n" + "xxxxxxx " * 2500 + "\n"),
    ("max_decoded_bytes", 10000, b64(200000)),
    ("max_text_bytes", 1000, head("text/plain") + "Where is my order? It is late.\n" * 600),
    ("max_html_depth", 10, head("text/html; charset=utf-8") + "<html><body>" + "<div>" * 100
     + "Where is my order?" + "</div>" * 100 + "</body></html>\n"),
]
with candor.Context(config=SMALL) as dflt:
    for kw, small, text in ROWS:
        data = text.encode()
        m = dflt.parse(data)
        r.check("python: %s control parses cleanly under the defaults" % kw,
                not m.errors, m.errors[:2])
        with candor.Context(config=SMALL, **{kw: small}) as ctx:
            try:
                m = ctx.parse(data)
                hit = bool(m.errors)
                shown = m.errors[:1]
                if kw == "max_text_bytes":
                    hit = hit and len((m.text or "").encode()) <= small
            except candor.LimitError as e:
                hit, shown = True, str(e)
            r.check("python: %s=%d is hit (%s)" % (kw, small, shown), hit, shown)

# ---- lmtpd ----
os.makedirs(os.path.join(tmp, "lmtpd"))
d = Daemon({"max-recipients": "3", "accept-recipients": "@shop.example"},
           extra_args=["--no-ack"], workdir=os.path.join(tmp, "lmtpd"))
try:
    d.start()
    c = d.connect()
    c.lhlo()
    rcpts = ["a@shop.example", "b@shop.example", "c@shop.example", "d@shop.example"]
    c.cmd("MAIL FROM:<alice@customer.example>")
    replies = [c.cmd("RCPT TO:<%s>" % a) for a in rcpts]
    r.check("lmtpd: max-recipients 3: the first three get 250",
            [x[0] for x in replies[:3]] == [250, 250, 250], replies[:3])
    r.check("lmtpd: the fourth gets 452 4.5.3",
            replies[3][0] == 452 and "4.5.3" in replies[3][1][0], replies[3])
    c.cmd("RSET")
    rr, dr = transaction(c, rcpts[:3], message(msgid="<rcpt-limit@customer.example>"))
    r.check("lmtpd: a message to three recipients is delivered (250 each)",
            dr == [250, 250, 250] and len(d.files()) == 1, (rr, dr))
    c.cmd("QUIT")
finally:
    d.stop(signal.SIGKILL)

def config_daemon(name, extra=(), pad_to=0):
    """A daemon (no acknowledgements) in tmp/NAME on the shipped
    configuration padded to about PAD_TO bytes."""
    os.makedirs(os.path.join(tmp, name))
    d = Daemon({}, extra_args=["--no-ack"] + list(extra), workdir=os.path.join(tmp, name))
    config_copy(d.config, pad_to)
    return d


def start_refused(d):
    """Start D, which should exit at once: its exit status and log."""
    d.start(wait=False)
    try:
        d.proc.wait(60)
    except subprocess.TimeoutExpired:
        pass
    return d.proc.returncode, d.read_log()


d = config_daemon("lmtpd-big", pad_to=5 << 20)
try:
    rc, log = start_refused(d)
    r.check("lmtpd: refuses a 5 MiB configuration at start (exit 2, max_config_bytes)",
            rc == 2 and "max_config_bytes" in log, (rc, log[-300:]))
finally:
    d.stop(signal.SIGKILL)



def wait_log(d, text, timeout=20):
    """True once TEXT is in the daemon's log."""
    for _ in range(int(timeout / 0.1)):
        if text in d.read_log():
            return True
        time.sleep(0.1)
    return False


def delivers(d, msgid):
    c = d.connect()
    c.lhlo()
    rr, dr = transaction(c, ["support@shop.example"], message(msgid=msgid))
    c.cmd("QUIT")
    return rr == [250] and dr == [250], (rr, dr)


# --max-config-bytes raises the cap: the 5 MiB configuration starts and delivers.
d = config_daemon("lmtpd-raised", ["--max-config-bytes", "8M"], 5 << 20)
try:
    try:
        d.start()
        ok, detail = delivers(d, "<raised@customer.example>")
        r.check("lmtpd: --max-config-bytes 8M starts with the 5 MiB configuration and delivers",
                ok, detail)
    except (RuntimeError, OSError, EOFError) as e:
        r.check("lmtpd: --max-config-bytes 8M starts with the 5 MiB configuration and delivers",
                False, (str(e)[-300:], d.read_log()[-300:]))
finally:
    d.stop(signal.SIGKILL)

# --max-config-bytes lowers it: the shipped (~80 kB) configuration refused at start.
d = config_daemon("lmtpd-lowered", ["--max-config-bytes", "10k"])
try:
    rc, log = start_refused(d)
    r.check("lmtpd: --max-config-bytes 10k refuses the shipped configuration at start (exit 2)",
            rc == 2 and "%s:0:" % d.config in log and "max_config_bytes" in log
            and "larger than 10240 bytes" in log, (rc, log[-300:]))
finally:
    d.stop(signal.SIGKILL)

# ... and on a SIGHUP reload: a configuration grown past it is refused and
# the old one kept; one within it is taken.
d = config_daemon("lmtpd-reload", ["--max-config-bytes", "200k"])
NAME = "lmtpd: --max-config-bytes 200k on reload"
try:
    try:
        d.start()
        config_copy(d.config, 300 << 10)
        d.kill(signal.SIGHUP)
        refused_hup = wait_log(d, "reload failed")
        log = d.read_log()
        r.check(NAME + ": a 300 kB configuration is refused, the old one kept",
                refused_hup and "larger than 204800 bytes" in log and d.proc.poll() is None,
                log[-400:])
        ok, detail = delivers(d, "<after-refused-reload@customer.example>")
        r.check(NAME + ": still delivers after the refused reload", ok, detail)
        config_copy(d.config, 150 << 10)
        d.kill(signal.SIGHUP)
        r.check(NAME + ": a 150 kB configuration is taken",
                wait_log(d, "configuration reloaded"), d.read_log()[-400:])
    except (RuntimeError, OSError, EOFError) as e:
        r.check(NAME, False, (str(e)[-300:], d.read_log()[-300:]))
finally:
    d.stop(signal.SIGKILL)

# Bad values are usage errors (exit 2) before anything starts.
for bad in (["--max-config-bytes", "0"], ["--max-config-bytes", "x"],
            ["--max-config-bytes=5Q"], ["--max-config-bytes", "-5"]):
    rc, out, err = run([DAEMON] + bad + ["--listen", "127.0.0.1:1",
                                         "--maildir", os.path.join(tmp, "never")])
    r.check("lmtpd: candor-lmtpd %s is a usage error (exit 2)" % " ".join(bad),
            rc == 2 and "not a byte count" in err and not os.path.exists(os.path.join(tmp, "never")),
            (rc, err[-300:]))
rc, out, err = run([DAEMON, "--help"])
r.check("lmtpd: --help names --max-config-bytes", rc == 0 and "--max-config-bytes N" in out, out)
page = open(os.path.join(SOURCE, "examples", "candor-lmtpd.8"), encoding="utf-8").read()
r.check("lmtpd: candor-lmtpd.8 documents --max-config-bytes", "max\\-config\\-bytes" in page)

shutil.rmtree(tmp, ignore_errors=True)
r.finish()
