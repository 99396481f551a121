#!/usr/bin/env python3
"""Differential test: `candor parse` against Python's standard `email` package.

For every message of three sets -- the project's fixtures (tests/data/message),
the shared labelled corpus ($CANDOR_SHARED/corpus/intent/msgs, skipped when
absent) and a generated corpus ($CANDOR_SHARED/tools/gen-corpus --count 300
--seed 3, skipped when the tool is absent) -- the fields below must agree
between Candor and Python's parser (policy=email.policy.default):

  subject, from (name, address), to / cc / reply_to (names, addresses),
  message_id, date (as UTC), attachment file names, the text body.

Values are compared after normalising white space (runs collapsed, ends
trimmed). The "text body" of the reference is what Candor promises: the part
EmailMessage.get_body(('plain', 'html')) picks, or, when there is none, the
same choice inside the first attached message/rfc822 (a forward sent as a lone
attachment); attachments are the leaf parts other than that body, not looking
inside attached messages.

Where the two legitimately differ, a difference is accepted only when one of
the documented reasons in ALLOWED applies (each is a check on the message,
never a list of files). Every accepted difference is counted by reason and
printed. The last line is "N passed, N failed" (one per message).
"""
import email
import email.policy
import html.parser
import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = Path(os.environ.get("CANDOR_SOURCE", HERE.parent.parent))
SHARED = Path(os.environ.get("CANDOR_SHARED", SOURCE.parent / "shared"))
CANDOR = os.environ.get("CANDOR_BIN", str(SOURCE / "build" / "examples" / "candor"))
FFFD = "\ufffd"


# ---------------------------------------------------------------- reference

def ws(s):
    return re.sub(r"\s+", " ", s or "").strip()


def words(s):
    return re.findall(r"\w+", s or "")


class HTMLText(html.parser.HTMLParser):
    """The words a reader sees in HTML: everything but script, style, head."""
    SKIP = {"script", "style", "head", "title", "template", "object"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        self.out.append(" ")

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skip:
            self.skip -= 1
        self.out.append(" ")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def html_words(markup):
    p = HTMLText()
    p.feed(markup)
    p.close()
    return words("".join(p.out))


def part_text(part):
    try:
        return part.get_content()
    except Exception:  # noqa: BLE001 - the reference's own failure
        raw = part.get_payload(decode=True) or b""
        return raw.decode("utf-8", "replace")


def find_body(msg):
    body = msg.get_body(preferencelist=("plain", "html"))
    if body is not None:
        return body
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                inner = inner[0]
            if isinstance(inner, email.message.EmailMessage):
                body = inner.get_body(preferencelist=("plain", "html"))
                if body is not None:
                    return body
    return None


def leaves(part):
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        for sub in part.get_payload():
            yield from leaves(sub)
    else:
        yield part


def addr_list(msg, name):
    h = msg[name]
    if h is None:
        return []
    try:
        return [(a.display_name or None, a.addr_spec or None) for a in h.addresses]
    except Exception:  # noqa: BLE001
        return None


def reference(path):
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    ref = {"msg": msg}
    subj = msg["subject"]
    ref["subject"] = None if subj is None else str(subj)
    frm = addr_list(msg, "from")
    ref["from"] = None if frm is None else (frm[0] if frm else (None, None))
    for name in ("to", "cc", "reply_to"):
        ref[name] = addr_list(msg, name.replace("_", "-"))
    mid = msg["message-id"]
    ref["message_id"] = None if mid is None else (str(mid).strip().strip("<>").strip() or None)
    date = msg["date"]
    dt = getattr(date, "datetime", None) if date is not None else None
    if dt is not None:
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        ref["date"] = dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        ref["date"] = None
    body = find_body(msg)
    ref["body_part"] = body
    if body is None:
        ref["text"], ref["html"] = "", False
    else:
        ref["text"] = part_text(body)
        ref["html"] = body.get_content_subtype() == "html"
    names = []
    for part in leaves(msg):
        if part is body:
            continue
        try:
            fn = part.get_filename()
        except Exception:  # noqa: BLE001
            fn = None
        if fn:
            names.append(fn)
    ref["attachments"] = names
    return ref


# ------------------------------------------------------------- allowed reasons
# Each reason: (name, why, check(field, ours, theirs, ref, row) -> bool).

SUPERSETS = {"iso-8859-1": "cp1252", "latin1": "cp1252", "us-ascii": "cp1252",
             "gb2312": "gb18030", "shift_jis": "cp932", "iso-2022-jp": "iso2022_jp_2",
             "ks_c_5601-1987": "cp949", "euc-kr": "cp949"}


def body_charset(ref):
    part = ref["body_part"]
    return (part.get_content_charset() or "us-ascii").lower() if part is not None else None


def same_text(ours, theirs, html):
    if html:
        return words(ours) == html_words(theirs)
    return ws(ours) == ws(theirs)


def r_charset_superset(field, ours, theirs, ref, row):
    """Candor reads a charset label as the superset mail clients use
    (iso-8859-1 as windows-1252, gb2312 as GB18030, shift_jis as CP932...);
    Python decodes the label strictly. Accepted when Python, decoding with
    the superset, gets Candor's text."""
    if field != "text":
        return False
    cs = body_charset(ref)
    if cs not in SUPERSETS:
        return False
    raw = ref["body_part"].get_payload(decode=True) or b""
    return same_text(ours, raw.decode(SUPERSETS[cs], "replace"), ref["html"])


def r_replacement_runs(field, ours, theirs, ref, row):
    """Invalid bytes: both sides write U+FFFD, but Python replaces a maximal
    invalid subsequence once where Candor replaces each byte, and Python
    keeps NUL where Candor writes U+FFFD (Candor's output is NUL-free).
    Accepted when the texts agree once NUL is U+FFFD and runs of U+FFFD are
    collapsed."""
    if not isinstance(ours, str) or not isinstance(theirs, str):
        return False
    if FFFD not in ours and FFFD not in theirs:
        return False
    c = lambda s: re.sub(FFFD + "+", FFFD, s.replace("\0", FFFD))  # noqa: E731
    if field == "text":
        return same_text(c(ours), c(theirs), ref["html"])
    return ws(c(ours)) == ws(c(theirs))


def r_undeclared_8bit(field, ours, theirs, ref, row):
    """8-bit text with no charset or us-ascii declared: Python writes U+FFFD
    for every such byte; Candor reads it as UTF-8 when it is valid UTF-8,
    else as windows-1252 (the usual senders of undeclared 8-bit)."""
    if field != "text" or FFFD not in (theirs or ""):
        return False
    part = ref["body_part"]
    cs = part.get_content_charset()
    if cs not in (None, "us-ascii", "ascii"):
        return False
    raw = part.get_payload(decode=True) or b""
    try:
        alt = raw.decode("utf-8")
    except UnicodeDecodeError:
        alt = raw.decode("cp1252", "replace")
    return same_text(ours, alt, ref["html"])


def r_unknown_charset_body(field, ours, theirs, ref, row):
    """A body in a charset neither side knows: Candor reads it as UTF-8 when
    it is valid UTF-8, else as windows-1252 (and lists an error); Python
    decodes it as UTF-8 with U+FFFD for what is not."""
    if field != "text" or ref["body_part"] is None:
        return False
    import codecs
    try:
        codecs.lookup(body_charset(ref))
        return False
    except LookupError:
        pass
    raw = ref["body_part"].get_payload(decode=True) or b""
    try:
        alt = raw.decode("utf-8")
    except UnicodeDecodeError:
        alt = raw.decode("cp1252", "replace")
    return any("unknown charset" in e for e in row["errors"]) and same_text(ours, alt, ref["html"])


def r_phrase_word_space(field, ours, theirs, ref, row):
    """Adjacent encoded words in a display name: RFC 2047 section 6.2 says
    the white space between them is not displayed; Candor drops it (as
    Python does in Subject), Python keeps it in address phrases."""
    if field not in ("from", "to", "cc", "reply_to"):
        return False
    hname = field.replace("_", "-")
    raw = " ".join(str(v) for k, v in ref["msg"].raw_items() if k.lower() == hname)
    if not re.search(r"\?=\s+=\?", raw):
        return False
    squash = lambda v: re.sub(r"\s+", "", json.dumps(v, ensure_ascii=False))  # noqa: E731
    return squash(ours) == squash(theirs)


def r_format_flowed_delsp(field, ours, theirs, ref, row):
    """format=flowed; delsp=yes (RFC 3676): Candor joins soft-broken lines
    and deletes the space before the break; Python leaves the lines as sent.
    Accepted when the word sequence without white space agrees."""
    if field != "text" or ref["body_part"] is None:
        return False
    p = ref["body_part"]
    if (p.get_param("format") or "").lower() != "flowed":
        return False
    return re.sub(r"\s+", "", ours) == re.sub(r"\s+", "", theirs)


def r_unknown_charset_word(field, ours, theirs, ref, row):
    """An encoded word in a charset iconv does not know: Candor keeps the
    word as written (and lists an error); Python decodes its bytes anyway."""
    return (field in ("subject", "from", "to", "cc", "reply_to") and "=?" in json.dumps(ours)
            and any("unknown charset" in e for e in row["errors"]))


def r_malformed_header(field, ours, theirs, ref, row):
    """A header Candor reports as malformed (listed in errors: address read
    leniently, date it cannot parse, a header section ended early) and
    Python registers a defect for: both recover, differently."""
    defects = list(ref["msg"].defects)
    names = {"from": "from", "to": "to", "cc": "cc", "reply_to": "reply-to",
             "date": "date", "subject": "subject"}
    h = ref["msg"][names.get(field, field)] if field in names else None
    if h is not None:
        defects += list(getattr(h, "defects", []))
    key = {"reply_to": "Reply-To", "to": "To", "cc": "Cc", "from": "From", "date": "date"}.get(field, "")
    ours_noted = any(e.startswith(key) or e.startswith("header:") for e in row["errors"]) if key else False
    return bool(defects) and ours_noted


def r_date_lenient(field, ours, theirs, ref, row):
    """A Date field one of the two parsers refuses (obsolete or broken
    syntax): Candor lists it in errors and gives null."""
    return field == "date" and ours is None and any(e.startswith("date:") for e in row["errors"])


ALLOWED = [
    ("charset_superset", r_charset_superset),
    ("replacement_runs", r_replacement_runs),
    ("undeclared_8bit", r_undeclared_8bit),
    ("format_flowed_delsp", r_format_flowed_delsp),
    ("unknown_charset_body", r_unknown_charset_body),
    ("phrase_word_space", r_phrase_word_space),
    ("unknown_charset_word", r_unknown_charset_word),
    ("malformed_header", r_malformed_header),
    ("date_lenient", r_date_lenient),
]


# ------------------------------------------------------------------ compare

def ours_addr(a):
    return (a["name"], a["address"])


def compare(path, row):
    ref = reference(path)
    fields = {
        "subject": (row["subject"], ref["subject"]),
        "from": (ours_addr(row["from"]), ref["from"]),
        "to": ([ours_addr(a) for a in row["to"]], ref["to"]),
        "cc": ([ours_addr(a) for a in row["cc"]], ref["cc"]),
        "reply_to": ([ours_addr(a) for a in row["reply_to"]], ref["reply_to"]),
        "message_id": (row["message_id"], ref["message_id"]),
        "date": (row["date"], ref["date"]),
        "attachments": ([a["filename"] for a in row["attachments"] if a["filename"]],
                        ref["attachments"]),
        "text": (row["text"] or "", ref["text"] or ""),
    }
    problems, allowed = [], []
    for field, (ours, theirs) in fields.items():
        if field == "text":
            same = same_text(ours, theirs, ref["html"])
        elif isinstance(ours, str) or isinstance(theirs, str):
            same = ws(ours) == ws(theirs) if ours is not None and theirs is not None else ours == theirs
        else:
            norm = lambda v: json.loads(json.dumps(v))  # noqa: E731 tuples -> lists
            if isinstance(ours, list) and isinstance(theirs, list):
                ours_n = [[ws(x) if isinstance(x, str) else x for x in (t if isinstance(t, (list, tuple)) else [t])]
                          for t in ours]
                theirs_n = [[ws(x) if isinstance(x, str) else x for x in (t if isinstance(t, (list, tuple)) else [t])]
                            for t in theirs]
                same = ours_n == theirs_n
            else:
                same = norm(ours) == norm(theirs)
                if not same and isinstance(ours, tuple) and isinstance(theirs, tuple):
                    same = [ws(x) if x else x for x in ours] == [ws(x) if x else x for x in theirs]
        if same:
            continue
        reason = next((name for name, check in ALLOWED
                       if check(field, ours, theirs, ref, row)), None)
        if reason:
            allowed.append((field, reason))
        else:
            problems.append((field, ours, theirs))
    return problems, allowed


def candor_parse(files):
    rows = {}
    for i in range(0, len(files), 200):
        chunk = files[i:i + 200]
        out = subprocess.run([CANDOR, "parse", *chunk], capture_output=True, check=False)
        if out.returncode not in (0, 1):
            sys.exit("candor parse failed: %s" % out.stderr.decode(errors="replace"))
        for line in out.stdout.decode("utf-8").splitlines():
            row = json.loads(line)
            rows[row["file"]] = row
    return rows


def main():
    sets = {}
    sets["fixtures"] = sorted(str(p) for p in (SOURCE / "tests" / "data" / "message").glob("*.eml"))
    intent = SHARED / "corpus" / "intent" / "msgs"
    if intent.is_dir():
        sets["intent"] = sorted(str(p) for p in intent.glob("*.eml"))
    else:
        print("SKIP intent corpus: %s absent" % intent)
    tmp = tempfile.TemporaryDirectory(prefix="candor-diff-")
    gen = SHARED / "tools" / "gen-corpus"
    if gen.exists():
        out = Path(tmp.name) / "gen"
        r = subprocess.run([sys.executable, str(gen), "--count", "300", "--seed", "3", "--out",
                            str(out), "--quiet"], capture_output=True, check=False)
        if r.returncode == 0:
            sets["generated"] = sorted(str(p) for p in out.glob("*/*") if p.is_file())
        else:
            print("SKIP generated corpus: gen-corpus failed: %s" % r.stderr.decode(errors="replace"))
    else:
        print("SKIP generated corpus: %s absent" % gen)

    passed = failed = 0
    reasons = {}
    for name, files in sets.items():
        rows = candor_parse(files)
        set_fail = 0
        for path in files:
            row = rows.get(path)
            if row is None:
                print("FAIL %s: no output from candor parse" % path)
                failed += 1
                set_fail += 1
                continue
            problems, allowed = compare(path, row)
            for field, reason in allowed:
                reasons[reason] = reasons.get(reason, 0) + 1
            if problems:
                failed += 1
                set_fail += 1
                for field, ours, theirs in problems:
                    print("FAIL %s: %s\n  candor: %r\n  python: %r" % (
                        path, field, ours if not isinstance(ours, str) else ours[:300],
                        theirs if not isinstance(theirs, str) else theirs[:300]))
            else:
                passed += 1
        print("set %-10s %4d messages, %d differing" % (name, len(files), set_fail))
    for name, check in ALLOWED:
        if reasons.get(name):
            why = " ".join((check.__doc__ or "").split())
            print("allowed %-22s %4d  (%s)" % (name, reasons[name], why[:150]))
    tmp.cleanup()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
