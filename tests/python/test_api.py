#!/usr/bin/env python3
"""The candor package's surface: results, inputs, options, structs, and
agreement with the C CLI on the hand-written fixtures (tests/data/python)."""

from __future__ import annotations

import ctypes
import datetime
import json
import os
import pathlib
import shutil
import subprocess
import textwrap
import unittest

from common import (DATA, SOURCE, candor, candor_bin, fixture_messages, json_lines,
                    run, same_json, tmpdir)
from candor import _lib

NOW = "2026-11-24T12:00:00Z"
PARSE_KEYS = ["file", "message_id", "from", "to", "cc", "reply_to", "subject", "date",
              "in_reply_to", "references", "text", "new_text", "attachments",
              "auto_submitted", "list_id", "errors"]
TRIAGE_EXTRA = ["intent", "confidence", "scores", "urgency", "sentiment", "churn_risk",
                "entities", "autoreply"]
REASONS = {"no_sender", "loop", "auto_submitted", "precedence", "mailing_list",
           "system_sender", "spoofed", "suspected_spam", "not_addressed_to_us",
           "already_acknowledged", "rate_limited", "ok"}
FINDINGS = {"template_reuse", "unresponsive", "stock_phrase", "impersonal", "deflection",
            "no_empathy", "no_next_step", "repeat_send"}


def cli(*args: str, check_rc=(0, 1)) -> str:
    b = candor_bin()
    if not b:
        raise unittest.SkipTest("no candor CLI (CANDOR_BIN)")
    p = subprocess.run([b, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode not in check_rc:
        raise AssertionError("candor %s exited %d: %s" % (" ".join(args), p.returncode,
                                                         p.stderr.decode(errors="replace")))
    return p.stdout.decode("utf-8")


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.dir = tmpdir()
        cls.state = str(cls.dir / "state.db")
        cls.ctx = candor.Context(state=cls.state)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.ctx.close()


class TestParse(Base):
    def test_keys_and_types(self) -> None:
        for path in fixture_messages():
            m = self.ctx.parse(str(path))
            self.assertIsInstance(m, candor.Message)
            d = m.as_dict()
            self.assertEqual(sorted(d), sorted(PARSE_KEYS), path.name)
            self.assertEqual(m.file, str(path))
            self.assertIsInstance(m.errors, list)
            self.assertIsInstance(m.to, list)
            self.assertTrue(m.from_ is None or isinstance(m.from_, dict))

    def test_from_alias(self) -> None:
        m = self.ctx.parse(str(DATA / "refund.eml"))
        self.assertEqual(m.from_, m["from"])
        self.assertEqual(m.from_, getattr(m, "from"))
        self.assertEqual(m.as_dict()["from"], m.from_)
        self.assertEqual(m.from_["address"], "maria.lopez@example.org")
        self.assertEqual(m.subject, "Refund for order A12345 please")
        with self.assertRaises(KeyError):
            m["no_such_member"]
        with self.assertRaises(AttributeError):
            m.no_such_member

    def test_bytes_and_paths_agree(self) -> None:
        path = DATA / "html.eml"
        raw = path.read_bytes()
        a = self.ctx.parse(raw)
        self.assertIsNone(a.file)
        for data in (str(path), path, bytearray(raw), memoryview(raw)):
            b = self.ctx.parse(data)
            da, db = a.as_dict(), b.as_dict()
            da.pop("file"), db.pop("file")
            self.assertEqual(da, db, type(data).__name__)
        self.assertEqual(self.ctx.parse(raw, file="x.eml").file, "x.eml")

    def test_bad_type(self) -> None:
        with self.assertRaises(candor.InvalidArgumentError):
            self.ctx.parse(12345)  # type: ignore[arg-type]
        # bytes are the message itself, never a path
        m = self.ctx.parse(os.fsencode(str(DATA / "refund.eml")))
        self.assertIsNone(m.file)
        self.assertIsNone(m.message_id)
        with self.assertRaises(ValueError):
            self.ctx.parse(None)  # type: ignore[arg-type]

    def test_frozen_and_to_json(self) -> None:
        import dataclasses
        m = self.ctx.parse(str(DATA / "refund.eml"))
        with self.assertRaises(dataclasses.FrozenInstanceError):
            m.subject = "changed"  # type: ignore[misc]
        self.assertEqual(json.loads(m.to_json()), m.as_dict())
        built = candor.Message(subject="x", errors=["e"])
        self.assertEqual(json.loads(built.to_json())["subject"], "x")
        self.assertEqual(json.loads(built.to_json())["from"], None)
        self.assertEqual(built.as_dict()["errors"], ["e"])
        self.assertEqual(dataclasses.replace(m, subject="y").subject, "y")

    def test_json_is_plain(self) -> None:
        m = self.ctx.parse(str(DATA / "html.eml"))
        # Round-trips through json: plain values only, nothing from ctypes.
        self.assertEqual(json.loads(json.dumps(m.as_dict())), m.as_dict())

    def test_same_as_cli_parse(self) -> None:
        files = [str(p) for p in fixture_messages()]
        want = json_lines(cli("parse", *files))
        got = [self.ctx.parse(f).as_dict() for f in files]
        self.assertEqual(len(want), len(got))
        for w, g in zip(want, got):
            self.assertIsNone(same_json(w, g), w.get("file"))


class TestTriage(Base):
    def test_fields_and_domains(self) -> None:
        for path in fixture_messages():
            t = self.ctx.triage(str(path), now=NOW)
            self.assertIsInstance(t, candor.Triage)
            d = t.as_dict()
            self.assertEqual(sorted(d), sorted([k for k in PARSE_KEYS if k != "text"]
                                               + TRIAGE_EXTRA), path.name)
            self.assertIn(t.intent, candor.INTENTS)
            self.assertIsInstance(t.confidence, float)
            self.assertTrue(0.0 <= t.confidence <= 1.0)
            self.assertEqual(set(t.scores), set(candor.INTENTS))
            self.assertIn(t.urgency, candor.URGENCIES)
            self.assertIn(t.sentiment, candor.SENTIMENTS)
            self.assertIsInstance(t.churn_risk, bool)
            self.assertIsInstance(t.entities, list)
            self.assertIsInstance(t.autoreply["send"], bool)
            self.assertIn(t.autoreply["reason"], REASONS)
            self.assertEqual(t.autoreply["send"], t.autoreply["reason"] == "ok")
            with self.assertRaises(AttributeError):
                t.text

    def test_same_as_cli_triage(self) -> None:
        files = [str(p) for p in fixture_messages()]
        want = json_lines(cli("triage", "--state", self.state, "--now", NOW, *files))
        got = [self.ctx.triage(f, now=NOW).as_dict() for f in files]
        self.assertEqual(len(want), len(got))
        for w, g in zip(want, got):
            self.assertIsNone(same_json(w, g), w.get("file"))

    def test_now_forms_agree(self) -> None:
        path = str(DATA / "refund.eml")
        epoch = int(datetime.datetime(2026, 11, 24, 12, tzinfo=datetime.timezone.utc).timestamp())
        forms = [NOW, "2026-11-24T13:00:00+01:00", epoch, float(epoch),
                 datetime.datetime(2026, 11, 24, 12),
                 datetime.datetime(2026, 11, 24, 12, tzinfo=datetime.timezone.utc)]
        results = [self.ctx.triage(path, now=f).as_dict() for f in forms]
        for f, r in zip(forms, results):
            self.assertEqual(r, results[0], repr(f))
        self.assertEqual(self.ctx._now(NOW), epoch)
        for bad in ("yesterday", -5, True, object()):
            with self.assertRaises(candor.InvalidArgumentError, msg=repr(bad)):
                self.ctx.triage(path, now=bad)  # type: ignore[arg-type]

    def test_envelope_sender(self) -> None:
        t = self.ctx.triage(str(DATA / "refund.eml"), sender="<>", now=NOW)
        self.assertEqual(t.autoreply, {"send": False, "reason": "no_sender"})

    def test_explain(self) -> None:
        t = self.ctx.triage(str(DATA / "refund.eml"), now=NOW, explain=True)
        self.assertIn("explain", t.extra)
        self.assertNotIn("explain", self.ctx.triage(str(DATA / "refund.eml"), now=NOW).extra)

    def test_one_call_and_three_calls_agree(self) -> None:
        """triage() goes through candor_triage_json when the library has it,
        else parse + triage + to_json: the same bytes, the same errors."""
        self.assertIsNotNone(self.ctx._triage_json, "the library lacks candor_triage_json")
        inputs = [str(p) for p in fixture_messages()]
        inputs += [open(p, "rb").read() for p in inputs]
        kwargs = [dict(now=NOW), dict(now=NOW, explain=True),
                  dict(now=NOW, file="given.eml", sender="a@example.org",
                       recipient="support@shop.example")]
        for kw in kwargs:
            one = [self.ctx.triage(d, **kw) for d in inputs]
            saved, self.ctx._triage_json = self.ctx._triage_json, None
            try:
                three = [self.ctx.triage(d, **kw) for d in inputs]
                with self.assertRaises(candor.InputOutputError):
                    self.ctx.triage("/nonexistent/x.eml")
            finally:
                self.ctx._triage_json = saved
            self.assertEqual([t.to_json_bytes() for t in one],
                             [t.to_json_bytes() for t in three], kw)
            self.assertEqual([t.__dict__["_message_errors"] for t in one],
                             [t.__dict__["_message_errors"] for t in three])
        with self.assertRaises(candor.InputOutputError) as cm:
            self.ctx.triage("/nonexistent/x.eml")
        self.assertIn("/nonexistent/x.eml", str(cm.exception))

    def test_triage_many_order(self) -> None:
        files = [str(p) for p in fixture_messages()] * 5
        one = [t.as_dict() for t in self.ctx.triage_many(files, now=NOW)]
        two = [t.as_dict() for t in self.ctx.triage_many(files, jobs=3, now=NOW)]
        self.assertEqual(one, two)
        self.assertEqual([d["file"] for d in one], files)
        mixed = list(self.ctx.triage_many([files[0], "/nonexistent/x.eml"], errors="return",
                                          now=NOW))
        self.assertIsInstance(mixed[0], candor.Triage)
        self.assertIsInstance(mixed[1], candor.InputOutputError)


class TestAckReplyCheck(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tmpdir()
        self.state = str(self.dir / "state.db")
        self.log = self.dir / "sendmail.log"
        fake = self.dir / "sendmail"
        fake.write_text(textwrap.dedent("""\
            #!/bin/sh
            echo "$@" >> "%s.args"
            cat >> "%s"
            exit ${FAKE_SENDMAIL_RC:-0}
            """ % (self.log, self.log)))
        fake.chmod(0o755)
        self.fake = str(fake)

    def test_ack_records_and_composes(self) -> None:
        with candor.Context(state=self.state) as ctx:
            a = ctx.ack(str(DATA / "refund.eml"), now=NOW)
            self.assertIsInstance(a, candor.Ack)
            self.assertEqual(sorted(a.as_dict()), ["message", "promise", "reason", "send", "ticket"])
            self.assertIn(a.reason, REASONS)
            self.assertEqual(a.send, a.reason == "ok")
            self.assertEqual(a.message is not None, a.send)
            self.assertFalse(a.sent)
            # The same mail again: the thread was handled, no second ack.
            b = ctx.ack(str(DATA / "refund.eml"), now="2026-11-24T12:05:00Z")
            self.assertFalse(b.send)
            self.assertIsNone(b.message)
            if a.send:
                self.assertIn(b.reason, ("already_acknowledged", "rate_limited"))
            # triage reads the same state (this thread's read-write handle)
            t = ctx.triage(str(DATA / "refund.eml"), now="2026-11-24T12:06:00Z")
            self.assertFalse(t.autoreply["send"])

    def test_ack_send_hands_to_sendmail(self) -> None:
        with candor.Context(state=self.state, sendmail=[self.fake]) as ctx:
            a = ctx.ack(str(DATA / "refund.eml"), now=NOW, send=True)
            self.assertEqual(a.sent, a.send)
            if a.send:
                args = pathlib.Path(str(self.log) + ".args").read_text().split()
                self.assertEqual(args[-5:], ["-f", "<>", "-i", "--", "maria.lopez@example.org"])
                body = self.log.read_bytes()
                self.assertNotIn(b"\r\n", body)
                self.assertEqual(body, a.message.replace("\r\n", "\n").encode("utf-8"))
            else:
                self.assertFalse(self.log.exists())
            a2 = ctx.ack(str(DATA / "autoreply.eml"), now=NOW, send=True)
            self.assertFalse(a2.send)
            self.assertFalse(a2.sent)

    def test_ack_sendmail_failure_is_temporary(self) -> None:
        with candor.Context(state=self.state, sendmail=["/bin/false"]) as ctx:
            try:
                a = ctx.ack(str(DATA / "refund.eml"), now=NOW, send=True)
            except candor.TemporaryError as e:
                self.assertIn("pending", str(e))
            else:
                self.assertFalse(a.send, "an allowed ack with a failing sendmail must raise")

    def test_record_reply(self) -> None:
        with candor.Context(state=self.state) as ctx:
            a = ctx.ack(str(DATA / "refund.eml"), now=NOW)
            r = ctx.record_reply(str(DATA / "reply-good.eml"), now="2026-11-24T16:00:00Z")
            self.assertIsInstance(r, candor.ReplyRecord)
            self.assertEqual(sorted(r.as_dict()), ["first_response", "promise_kept", "ticket"])
            self.assertIsInstance(r.first_response, bool)
            self.assertIn(r.promise_kept, (True, False, None))
            if a.ticket:
                self.assertEqual(r.ticket, a.ticket)
            st = ctx.stats(now="2026-11-25T00:00:00Z")
            self.assertIsInstance(st, dict)

    def test_check(self) -> None:
        with candor.Context(state=self.state) as ctx:
            for reply in ("reply-canned.eml", "reply-good.eml"):
                c = ctx.check(str(DATA / "refund.eml"), str(DATA / reply), now=NOW)
                self.assertIsInstance(c, candor.Check)
                self.assertIn(c.verdict, ("ok", "review", "canned"))
                self.assertIsInstance(c.score, float)
                for f in c.findings:
                    self.assertIn(f["kind"], FINDINGS)
                want = json.loads(cli("check", "--state", self.state, "--now", NOW,
                                      "--original", str(DATA / "refund.eml"),
                                      str(DATA / reply)))
                self.assertIsNone(same_json(want, c.as_dict()), reply)
            canned = ctx.check(DATA.joinpath("refund.eml").read_bytes(),
                               DATA.joinpath("reply-canned.eml").read_bytes(), now=NOW)
            good = ctx.check(str(DATA / "refund.eml"), str(DATA / "reply-good.eml"), now=NOW)
            self.assertGreater(canned.score, good.score)


class TestContext(unittest.TestCase):
    def test_context_manager_and_close(self) -> None:
        with candor.Context() as ctx:
            self.assertFalse(ctx.closed)
            self.assertTrue(ctx.config_path)
        self.assertTrue(ctx.closed)
        ctx.close()  # idempotent
        with self.assertRaises(candor.InvalidArgumentError):
            ctx.parse(b"From: a@b\n\nhi\n")

    def test_options(self) -> None:
        with candor.Context(addresses=["help@other.example"], trusted_authserv="mx.other.example",
                            max_text_bytes=4096, sendmail="/usr/bin/true -x") as ctx:
            self.assertEqual(ctx.sendmail_command, ["/usr/bin/true", "-x"])
            t = ctx.triage(str(DATA / "refund.eml"), now=NOW)
            # support@shop.example is no longer ours
            self.assertEqual(t.autoreply["reason"], "not_addressed_to_us")
        with self.assertRaises(candor.InvalidArgumentError):
            candor.Context(max_headers=-1)

    def test_log_callback(self) -> None:
        lines = []
        with candor.Context(log=lambda level, line: lines.append((level, line))) as ctx:
            ctx.triage(str(DATA / "html.eml"), now=NOW)
        for level, line in lines:
            self.assertIn(level, (0, 1, 2, 3))
            self.assertIsInstance(line, str)

    def test_version(self) -> None:
        self.assertEqual(candor.__version__, _lib.VERSION_STRING)
        self.assertEqual(candor.library_version().split(".")[:2],
                         candor.__version__.split(".")[:2])


class TestStructMirror(unittest.TestCase):
    """ctypes' layout of candor_ctx_options_t and candor_envelope_t is the C
    compiler's (sizeof and offsetof of every field, from candor.h)."""

    def test_layout(self) -> None:
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            self.skipTest("no C compiler")
        d = tmpdir()
        lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "candor.h"',
                 'int main(void) {']
        for cname, cls in (("candor_ctx_options_t", _lib.CtxOptions),
                           ("candor_envelope_t", _lib.Envelope)):
            lines.append('printf("%s sizeof %%zu\\n", sizeof(%s));' % (cname, cname))
            for fname, _ in cls._fields_:
                lines.append('printf("%s %s %%zu\\n", offsetof(%s, %s));'
                             % (cname, fname, cname, fname))
        lines += ['return 0;', '}']
        (d / "layout.c").write_text("\n".join(lines) + "\n")
        subprocess.run([cc, "-I", str(SOURCE / "include"), "-o", str(d / "layout"),
                        str(d / "layout.c")], check=True)
        out = subprocess.run([str(d / "layout")], check=True, stdout=subprocess.PIPE,
                             text=True).stdout.split("\n")
        want = {}
        for line in out:
            if line:
                name, field, value = line.split()
                want[(name, field)] = int(value)
        for cname, cls in (("candor_ctx_options_t", _lib.CtxOptions),
                           ("candor_envelope_t", _lib.Envelope)):
            self.assertEqual(ctypes.sizeof(cls), want[(cname, "sizeof")], cname)
            for fname, _ in cls._fields_:
                self.assertEqual(getattr(cls, fname).offset, want[(cname, fname)],
                                 "%s.%s" % (cname, fname))
        # and the C API agrees the mirrored struct is valid
        o = _lib.CtxOptions()
        _lib.get().candor_ctx_options_init(ctypes.byref(o), _lib.CANDOR_CTX_OPTIONS_VERSION)
        self.assertEqual(o.version, _lib.CANDOR_CTX_OPTIONS_VERSION)
        self.assertIsNone(o.config_path)

    def test_every_function_declared(self) -> None:
        lib = _lib.get()
        header = (SOURCE / "include" / "candor.h").read_text()
        import re
        declared = set(re.findall(r"\b(candor_[a-z0-9_]+)\s*\(", header))
        used = [n for n in declared if n in lib.__dict__]
        self.assertTrue(used)
        for name in used:
            f = getattr(lib, name)
            self.assertIsNotNone(f.argtypes, name)
        for name in ("candor_ctx_new", "candor_message_parse", "candor_triage",
                     "candor_ack", "candor_check", "candor_record_reply"):
            self.assertIs(getattr(lib, name).errcheck, _lib._check_status, name)


if __name__ == "__main__":
    run()
