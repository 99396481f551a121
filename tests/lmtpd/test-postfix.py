#!/usr/bin/env python3
"""End to end behind a real Postfix (../shared/tools/mail-sandbox): mail
sent over SMTP reaches the support maildir with X-Candor-* fields; the
acknowledgement comes back through Postfix into the customer's maildir,
threaded (In-Reply-To, References) and Auto-Submitted: auto-replied; mail
with Auto-Submitted, Precedence: bulk or from a list gets none; a second
mail from the same customer the same day gets none; a copy of a team reply
sent to the "sent" address is recorded and checked, not delivered."""
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lmtpdtest import (Daemon, Report, Sandbox, header_fields, sandbox_problem,  # noqa: E402
                      send_smtp, wait_for)

r = Report()
why = sandbox_problem()
if why:
    r.check("Postfix sandbox available: " + why, False)
    r.finish()

base = tempfile.mkdtemp(prefix="lmtpd-e2e-")
os.chmod(base, 0o755)
sb = Sandbox(base)
d = None
try:
    sb.start()
    os.makedirs(os.path.join(base, "daemon"))
    d = Daemon({"accept-recipients": "@shop.example", "sent-address": "sent@shop.example",
                "review-folder": "Review"},
               extra_args=["--sendmail", sb.sendmail, "--address", "support@shop.example"],
               workdir=os.path.join(base, "daemon"), port=sb.lmtp_port).start()

    def mail(sender, subject, body, msgid, extra=""):
        return ("From: %s\nTo: Support <support@shop.example>\nSubject: %s\n"
                "Message-ID: <%s>\nDate: %s\n%s\n%s" % (
                    sender, subject, msgid,
                    time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
                    extra, body)).encode()

    def support_files():
        return d.files("new") + d.files("cur")

    def find_support(msgid):
        for f in support_files():
            if ("<%s>" % msgid).encode() in open(f, "rb").read().split(b"\n\n", 1)[0]:
                return f
        return None

    def acks_to(addr):
        out = []
        for f in sb.customer_mail():
            raw = open(f, "rb").read()
            h = dict(header_fields(raw))
            if h.get("delivered-to", "").lower() == addr:
                out.append((f, raw, header_fields(raw)))
        return out

    # 1. a customer's first mail: delivered with X-Candor-*, acknowledged
    body = "Hello,\nmy order A10442 was due last week and has not arrived. Where is it?\nAlice\n"
    send_smtp(sb.smtp_port, "alice@customer.example", ["support@shop.example"],
              mail("Alice <alice@customer.example>", "Where is order A10442?", body,
                   "alice-1@customer.example"))
    f = wait_for(lambda: find_support("alice-1@customer.example"), 30)
    r.check("mail through Postfix reaches the support maildir", bool(f), sb.maillog()[-800:])
    raw = open(f, "rb").read() if f else b""
    fields = header_fields(raw)
    names = [k for k, _ in fields]
    for fld in ("x-candor-intent", "x-candor-confidence", "x-candor-urgency",
                "x-candor-sentiment", "x-candor-churn-risk", "x-candor-autoreply"):
        r.check("delivered message has " + fld, fld in names, names)
    r.check("body byte-identical", raw.split(b"\n\n", 1)[-1] == body.encode())
    ack = wait_for(lambda: acks_to("alice@customer.example"), 30)
    r.check("acknowledgement arrives in the customer maildir", len(ack) == 1,
            d.read_log()[-1500:])
    if ack:
        h = dict(ack[0][2])
        r.check("ack In-Reply-To the customer's mail",
                "<alice-1@customer.example>" in h.get("in-reply-to", ""), h)
        r.check("ack References the customer's mail",
                "<alice-1@customer.example>" in h.get("references", ""), h)
        r.check("ack Auto-Submitted: auto-replied",
                h.get("auto-submitted", "").lower().startswith("auto-replied"), h)
        r.check("ack sent with the null envelope sender",
                h.get("return-path", "") in ("<>", "<MAILER-DAEMON>", ""), h.get("return-path"))
        ticket = dict(fields).get("x-candor-ticket")
        r.check("delivered mail carries the ticket",
                bool(ticket) and ticket in ack[0][1].decode("utf-8", "replace"), ticket)

    # 2. robots and lists get nothing
    robots = [("bob@customer.example", "Auto-Submitted: auto-generated\n"),
              ("carol@customer.example", "Precedence: bulk\n"),
              ("dave@customer.example", "List-Id: <news.customer.example>\n"
                                        "List-Unsubscribe: <mailto:leave@customer.example>\n")]
    for i, (who, extra) in enumerate(robots):
        send_smtp(sb.smtp_port, who, ["support@shop.example"],
                  mail(who, "Refund please", "I want a refund for order A2000%d.\n" % i,
                       "robot-%d@customer.example" % i, extra))
    # 3. Alice again, same day, a new thread
    send_smtp(sb.smtp_port, "alice@customer.example", ["support@shop.example"],
              mail("Alice <alice@customer.example>", "Also: my invoice",
                   "And my invoice shows a double charge.\n", "alice-2@customer.example"))
    ok = wait_for(lambda: all(find_support(m) for m in
                              ["robot-0@customer.example", "robot-1@customer.example",
                               "robot-2@customer.example", "alice-2@customer.example"]), 30)
    r.check("robot, list and second mails delivered", bool(ok))
    sb.flush()
    time.sleep(3)   # give any (wrong) acknowledgement time to arrive
    for who, label in (("bob@customer.example", "Auto-Submitted"),
                       ("carol@customer.example", "Precedence: bulk"),
                       ("dave@customer.example", "list mail")):
        r.check("no acknowledgement for " + label, acks_to(who) == [])
    r.check("second mail the same day: no second acknowledgement",
            len(acks_to("alice@customer.example")) == 1)
    log = d.read_log()
    r.check("decisions logged with reasons",
            "reason=auto_submitted" in log and "reason=precedence" in log and
            "reason=mailing_list" in log and "reason=rate_limited" in log, log[-2000:])

    # 4. a copy of the team's reply to the "sent" address: recorded, checked
    reply = ("From: Support <support@shop.example>\nTo: alice@customer.example\n"
             "Subject: Re: Where is order A10442?\nMessage-ID: <reply-1@shop.example>\n"
             "In-Reply-To: <alice-1@customer.example>\nReferences: <alice-1@customer.example>\n"
             "Date: %s\n\nDear customer,\nWe apologize for any inconvenience. "
             "Please do not hesitate to contact us.\nKind regards\n"
             % time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())).encode()
    send_smtp(sb.smtp_port, "support@shop.example", ["sent@shop.example"], reply)
    got = wait_for(lambda: "<reply-1@shop.example>" in d.read_log() and "sent ticket=" in d.read_log(), 30)
    r.check("sent copy recorded and checked (logged)", bool(got), d.read_log()[-1000:])
    main_new = os.path.join(d.maildir, "new")
    r.check("sent copy not delivered to the support maildir",
            not any("<reply-1@shop.example>" in open(os.path.join(main_new, n), errors="replace").read()
                    for n in os.listdir(main_new)))
    review = os.path.join(d.maildir, ".Review", "new")
    r.check("flagged reply logged with its findings",
            "flagged reply ticket=" in d.read_log() and '"findings"' in d.read_log(), d.read_log()[-800:])
    r.check("flagged reply copied to the review folder",
            os.path.isdir(review) and len(os.listdir(review)) == 1 and
            os.path.exists(os.path.join(d.maildir, ".Review", "maildirfolder")))
finally:
    if d:
        d.stop()
    sb.stop()
r.finish()
