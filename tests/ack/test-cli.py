#!/usr/bin/env python3
"""`candor ack`, `record-reply` and `stats` through the CLI: the
acknowledgement parsed back by Python's email package (policy default, no
defects) and by `candor parse`, with every header the issue names; --send
through a stand-in sendmail (argv and the message it got); record-reply and
stats JSON; exit statuses. Prints "N passed, N failed"."""
import atexit
import email
import email.policy
import email.utils
import json
import os
import sqlite3
import stat
import shutil
import subprocess
import sys
import tempfile

BIN = os.environ.get("CANDOR_BIN", "build/examples/candor")
DATA = os.environ.get("CANDOR_TEST_DATA", "tests/data")
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL %s %s" % (name, detail))


def run(*args, stdin=None):
    p = subprocess.run([BIN] + list(args), input=stdin, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


tmp = tempfile.mkdtemp(prefix="candor-ack-cli-")
if not os.environ.get("CANDOR_TEST_KEEP"):
    atexit.register(shutil.rmtree, tmp, True)
state = os.path.join(tmp, "state.db")
NOW = "2026-11-24T07:15:00Z"
fixture = lambda name: os.path.join(DATA, "ack", name + ".eml")

# ---- the acknowledgement, parsed back ----
cases = [
    ("ok", "alice@customer.example", "Auto: Where is my order A12345?"),
    ("nonascii-subject", "s1@customer.example",
     "Auto: Commande n\u00b0 A12345 pas re\u00e7ue \u2014 o\u00f9 est-elle ?"),
    ("inject-subject", "s2@customer.example", "Auto: Help Bcc: victim@evil.example body"),
    ("stacked", "erin@customer.example", "Auto: Refund for my broken kettle"),
    ("fr", "claire@client.example", "Auto: Ma commande A77881 n'est toujours pas arriv\u00e9e"),
]
for name, sender, subject in cases:
    rc, out, err = run("ack", "--state", state, "--now", NOW, "--sender", sender, fixture(name))
    check("%s: exit 0" % name, rc == 0, err)
    try:
        res = json.loads(out)
    except ValueError:
        check("%s: JSON" % name, False, out[:200])
        continue
    check("%s: send" % name, res.get("send") is True and res.get("reason") == "ok", out[:300])
    raw = res.get("message") or ""
    check("%s: CRLF" % name, "\r\n" in raw and "\n" not in raw.replace("\r\n", ""))
    msg = email.message_from_bytes(raw.encode("utf-8"), policy=email.policy.default)
    check("%s: no defects" % name, not msg.defects and not any(
        h.defects for h in (msg[k] for k in msg.keys()) if hasattr(h, "defects")), msg.defects)
    check("%s: From" % name, msg["From"].addresses[0].addr_spec == "support@shop.example",
          str(msg["From"]))
    check("%s: To" % name, [a.addr_spec for a in msg["To"].addresses] == [sender], str(msg["To"]))
    check("%s: Subject" % name, str(msg["Subject"]) == subject, repr(str(msg["Subject"])))
    check("%s: Auto-Submitted" % name, str(msg["Auto-Submitted"]) == "auto-replied")
    check("%s: X-Loop" % name, str(msg["X-Loop"]) == "support@shop.example")
    check("%s: Precedence" % name, str(msg["Precedence"]) == "bulk")
    check("%s: X-Auto-Response-Suppress" % name, str(msg["X-Auto-Response-Suppress"]) == "All")
    orig = email.message_from_binary_file(open(fixture(name), "rb"), policy=email.policy.default)
    check("%s: In-Reply-To" % name, str(msg["In-Reply-To"]) == str(orig["Message-ID"]),
          str(msg["In-Reply-To"]))
    check("%s: References" % name, str(orig["Message-ID"]) in str(msg["References"]).split())
    check("%s: Message-ID" % name, str(msg["Message-ID"]).startswith("<") and "@" in str(msg["Message-ID"]))
    check("%s: Date" % name, email.utils.parsedate_to_datetime(str(msg["Date"])) is not None)
    check("%s: no injected field" % name, msg["Bcc"] is None and len(msg.keys()) == 16, msg.keys())
    body = msg.get_body(("plain",)).get_content()
    check("%s: ticket in text" % name, res.get("ticket") and res["ticket"] in body)
    check("%s: ticket header" % name, str(msg["X-Candor-Ticket"]) == res.get("ticket"))
    # our own parser agrees
    path = os.path.join(tmp, name + "-ack.eml")
    open(path, "wb").write(raw.encode("utf-8"))
    rc, out, err = run("parse", path)
    p = json.loads(out) if rc == 0 else {}
    check("%s: candor parse" % name, p.get("subject") == subject and
          p.get("auto_submitted") == "auto-replied" and
          p.get("in_reply_to") == str(orig["Message-ID"]).strip("<>") and
          p.get("to", [{}])[0].get("address") == sender, out[:300] + err)
    if name == "fr":
        check("fr: French text", "accus\u00e9 de r\u00e9ception automatique" in body, body[:200])

# the second mail in a thread and a sender within the window: send=false
rc, out, _ = run("ack", "--state", state, "--now", NOW, fixture("ok"))
check("same thread again", rc == 0 and json.loads(out)["reason"] == "already_acknowledged", out)
rc, out, _ = run("ack", "--state", state, "--now", "2026-11-24T09:00:00Z",
                 os.path.join(DATA, "autoreply", "new-thread.eml"))
r = json.loads(out) if rc == 0 else {}
check("rate limited", r.get("reason") == "rate_limited" and r.get("send") is False and
      r.get("ticket") == "CND-000006" and r.get("message") is None, out)

# ---- --send through a stand-in sendmail ----
fake = os.path.join(tmp, "sendmail")
log = os.path.join(tmp, "sendmail.log")
open(fake, "w").write("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s.argv\ncat > %s.msg\nexit ${FAKE_EXIT:-0}\n"
                      % (log, log))
os.chmod(fake, 0o755)
cfg = os.path.join(tmp, "candor.xml")
base = open(os.path.join(os.environ.get("CANDOR_DATADIR", "lib/data"), "candor.xml")).read()
open(cfg, "w").write(base.replace('<sendmail command="/usr/sbin/sendmail"/>',
                                  '<sendmail command="%s -oi"/>' % fake))
state2 = os.path.join(tmp, "send.db")
rc, out, err = run("ack", "--send", "--config", cfg, "--state", state2, "--now", NOW, fixture("ok"))
check("--send: exit 0", rc == 0, err)
argv = open(log + ".argv").read().split("\n")[:-1] if os.path.exists(log + ".argv") else []
check("--send: argv", argv == ["-oi", "-f", "<>", "-i", "--", "alice@customer.example"], argv)
sent = open(log + ".msg", "rb").read().decode() if os.path.exists(log + ".msg") else ""
check("--send: the message", sent == json.loads(out)["message"])
db = sqlite3.connect(state2)
check("--send: marked sent", db.execute("SELECT status FROM acks").fetchall() == [("sent",)])
db.close()
env = dict(os.environ, FAKE_EXIT="1")
p = subprocess.run([BIN, "ack", "--send", "--config", cfg, "--state", state2, "--now", NOW,
                    "--sender", "zoe@customer.example", fixture("stacked")],
                   capture_output=True, env=env)
check("--send failing: exit 75", p.returncode == 75, p.stderr)
db = sqlite3.connect(state2)
check("--send failing: stays pending",
      db.execute("SELECT status FROM acks WHERE recipient = 'zoe@customer.example'").fetchall()
      == [("pending",)])
db.close()

# ---- record-reply and stats ----
rc, out, err = run("record-reply", "--state", state, "--now", "2026-11-25T12:00:00Z",
                   fixture("reply-human"))
r = json.loads(out) if rc == 0 else {}
check("record-reply", r == {"ticket": "CND-000001", "first_response": True, "promise_kept": True},
      out + err)
rc, out, err = run("record-reply", "--state", state, "--now", "2026-11-25T12:00:00Z",
                   fixture("reply-second"))
r = json.loads(out) if rc == 0 else {}
check("record-reply again", r.get("first_response") is False and r.get("promise_kept") is None, out)
rc, out, err = run("stats", "--json", "--state", state, "--now", "2026-11-25T12:00:00Z")
s = json.loads(out) if rc == 0 else {}
o = s.get("overall", {})
check("stats --json", o.get("tickets") == 6 and o.get("acknowledged") == 5 and
      o.get("first_replies") == 1 and o.get("median_first_reply_seconds") == 3 * 3600 + 15 * 60,
      out[:400] + err)
check("stats per intent", set(s.get("intents", {})) >= {"refund", "order_status", "billing"})
rc, out, err = run("stats", "--state", state, "--now", "2026-11-25T12:00:00Z")
check("stats table", rc == 0 and "overall" in out and "promises kept" in out, out + err)
rc, out, err = run("stats", "--json", "--state", os.path.join(tmp, "missing.db"))
check("stats on a missing state: empty", rc == 0 and json.loads(out)["overall"]["tickets"] == 0,
      out + err)

# ---- usage ----
rc, _, _ = run("ack", "--state", state)
check("ack without a file: exit 2", rc == 2)
rc, _, _ = run("ack", "--state", state, "--now", "yesterday", fixture("ok"))
check("bad --now: exit 2", rc == 2)
rc, _, _ = run("ack", "--state", state, os.path.join(tmp, "nope.eml"))
check("unreadable message: exit 1", rc == 1)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
