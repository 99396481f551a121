#!/usr/bin/env python3
"""The Python baseline of tests/bench/parse-bench.py: what `candor parse`
does, with the standard library's `email` package (policy default): parse
each file named in LIST (one path a line), read the fields of the `candor
parse` object, extract the preferred body (get_body plain, else html) and
the attachment names, and write one JSON line per message to stdout."""
import email
import email.policy
import json
import sys


def addrs(msg, name):
    h = msg[name]
    try:
        return [{"name": a.display_name or None, "address": a.addr_spec or None}
                for a in h.addresses] if h is not None else []
    except Exception:  # noqa: BLE001
        return []


def main():
    out = sys.stdout
    for path in open(sys.argv[1], encoding="utf-8").read().splitlines():
        with open(path, "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))
        try:
            text = body.get_content() if body is not None else ""
        except Exception:  # noqa: BLE001
            text = ""
        atts = []
        for part in msg.iter_attachments():
            payload = part.get_payload(decode=True) or b""
            atts.append({"filename": part.get_filename(), "content_type": part.get_content_type(),
                         "size": len(payload)})
        date = msg["date"]
        frm = addrs(msg, "from")
        row = {"file": path, "message_id": msg["message-id"],
               "from": frm[0] if frm else {"name": None, "address": None},
               "to": addrs(msg, "to"), "cc": addrs(msg, "cc"), "reply_to": addrs(msg, "reply-to"),
               "subject": str(msg["subject"]) if msg["subject"] is not None else None,
               "date": date.datetime.isoformat() if date is not None and date.datetime else None,
               "in_reply_to": msg["in-reply-to"], "references": str(msg["references"] or ""),
               "text": text, "attachments": atts,
               "auto_submitted": msg["auto-submitted"], "list_id": msg["list-id"], "errors": []}
        out.write(json.dumps(row, default=str) + "\n")


if __name__ == "__main__":
    main()
