#!/usr/bin/env python3
"""The replay through the command line: TICKETS (default 1,000) customer
mails over six weeks go through `candor ack --now` and the team's replies
through `candor record-reply --now`, in time order, on one state file.
First-reply times drift: a slow week (x1.8), a week with a holiday
(2026-01-28), a fast week (x0.5). The reply-by calendar (Mon-Fri
09:00-17:00 Europe/Paris) is re-implemented here with zoneinfo, so the
library's business-time arithmetic is checked against an independent one.

Pass: >= 90% of the promises made after the first week kept, and the median
promised wait <= 2x the median actual wait. Prints both figures, then
"N passed, N failed". Slow (one process per mail): in the slow suite.
Usage: replay-cli.py [TICKETS]"""
import atexit
import datetime as dt
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from zoneinfo import ZoneInfo

BIN = os.environ.get("CANDOR_BIN", "build/examples/candor")
DATA = os.environ.get("CANDOR_TEST_DATA", "tests/data")
DATADIR = os.environ.get("CANDOR_DATADIR", "lib/data")
TICKETS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
TZ = ZoneInfo("Europe/Paris")
HOLIDAYS = {dt.date(2026, 1, 28)}
START = dt.datetime(2026, 1, 5, tzinfo=TZ)          # a Monday
FACTOR = [1.0, 1.0, 1.8, 1.0, 0.5, 1.1]
KINDS = [
    ("Where is my order {o}?", "Hello, I ordered {o} ten days ago and it has not arrived. "
     "The tracking page shows nothing. Where is my parcel?", 2.5),
    ("Refund for order {o}", "Hello, the blender from order {o} arrived broken. I returned it "
     "last week and I want my money back, please refund me.", 5.0),
    ("Cannot log in", "Hi, since yesterday the app says 'invalid password' although I reset "
     "it twice. I cannot log in to my account at all. Order {o} is stuck.", 4.0),
    ("Charged twice", "Hello, my credit card was charged twice for order {o}. Please check "
     "the invoice and remove the double charge.", 3.0),
    ("Opening hours", "Hello, what are your opening hours during the holidays? And do you "
     "ship to Switzerland? (about {o})", 2.0),
]
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    if not ok:
        print("FAIL", name, detail)


def add_business(t, secs):
    """T (aware datetime) plus SECS of Mon-Fri 09:00-17:00 Paris time."""
    t = t.astimezone(TZ)
    day = t.date()
    for _ in range(3660):
        if day.weekday() < 5 and day not in HOLIDAYS:
            o = dt.datetime.combine(day, dt.time(9), TZ)
            c = dt.datetime.combine(day, dt.time(17), TZ)
            s = max(o, t)
            if c > s:
                avail = (c - s).total_seconds()
                if secs <= avail:
                    return s + dt.timedelta(seconds=secs)
                secs -= avail
        day += dt.timedelta(days=1)
    raise RuntimeError("calendar walk")


def rfc3339(t):
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc5322(t):
    import email.utils
    return email.utils.format_datetime(t.astimezone(dt.timezone.utc))


def run(*args):
    p = subprocess.run([BIN] + list(args), capture_output=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (args[0], p.returncode, p.stderr.decode()))
    return json.loads(p.stdout)


tmp = tempfile.mkdtemp(prefix="candor-replay-cli-")
if not os.environ.get("CANDOR_TEST_KEEP"):
    atexit.register(shutil.rmtree, tmp, True)
base = open(os.path.join(DATADIR, "candor.xml")).read()
eta = re.search(r"<eta .*?</eta>", open(os.path.join(DATA, "ack", "replay.xml")).read(), re.S).group(0)
cfg = os.path.join(tmp, "candor.xml")
open(cfg, "w").write(re.sub(r"<eta .*?</eta>", lambda m: eta, base, count=1, flags=re.S))
state = os.path.join(tmp, "state.db")

rnd = random.Random(int(os.environ.get("CANDOR_REPLAY_SEED", "20260105")))
arrivals = []
while len(arrivals) < TICKETS:
    day = rnd.randrange(42)
    if day % 7 >= 5 and rnd.random() > 0.3:
        continue
    hour = 7 + 13 * rnd.random() if rnd.random() >= 0.15 else 24 * rnd.random()
    arrivals.append(START + dt.timedelta(days=day, hours=hour))
arrivals.sort()
events = []
for i, t in enumerate(arrivals):
    k = rnd.randrange(len(KINDS))
    week = min(5, (t - START).days // 7)
    hours = KINDS[k][2] * FACTOR[week] * math.exp(0.45 * rnd.gauss(0, 1))
    reply = add_business(t, hours * 3600)
    events.append((t, 0, i, k))
    events.append((reply, 1, i, k))
events.sort()

promise, actual, kept, made, unmatched = {}, {}, {}, {}, []
for t, is_reply, i, k in events:
    order = "A%05d" % (10000 + i)
    subject = KINDS[k][0].format(o=order)
    path = os.path.join(tmp, "m.eml")
    if not is_reply:
        open(path, "w").write(
            "Return-Path: <c%d@customer.example>\nFrom: Customer %d <c%d@customer.example>\n"
            "To: support@shop.example\nSubject: %s\nDate: %s\nMessage-ID: <t%d@customer.example>\n\n"
            "%s\n" % (i, i, i, subject, rfc5322(t), i, KINDS[k][1].format(o=order)))
        r = run("ack", "--config", cfg, "--state", state, "--now", rfc3339(t), path)
        if r.get("send") and r.get("promise"):
            by = dt.datetime.strptime(r["promise"]["by"], "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=dt.timezone.utc)
            promise[i] = (by - t).total_seconds()
            made[i] = t
    else:
        open(path, "w").write(
            "From: Support <support@shop.example>\nTo: c%d@customer.example\nSubject: Re: %s\n"
            "Date: %s\nMessage-ID: <r%d@shop.example>\nIn-Reply-To: <t%d@customer.example>\n\n"
            "Hello, about %s: we looked into it and here is what we found.\n"
            % (i, subject, rfc5322(t), i, i, order))
        r = run("record-reply", "--config", cfg, "--state", state, "--now", rfc3339(t), path)
        actual[i] = (t - arrivals[i]).total_seconds()
        kept[i] = r.get("promise_kept")
        if r.get("first_response") is not True:
            unmatched.append(i)

later = [i for i in promise if (made[i] - START).days >= 7]
check("every mail acknowledged", len(promise) == TICKETS, len(promise))
check("every reply matched to its ticket as the first response", not unmatched, unmatched[:10])
share = sum(1 for i in later if kept.get(i)) / max(1, len(later))
# the library's verdict agrees with the times seen here
check("kept agrees", all(kept[i] == (actual[i] <= promise[i]) for i in later))
med = lambda v: sorted(v)[len(v) // 2]
mp, ma = med([promise[i] for i in later]) / 3600, med([actual[i] for i in later]) / 3600
print("replay-cli: %d tickets, %d promises after week 1" % (TICKETS, len(later)))
print("replay-cli: promises kept after week 1: %.1f%% (need >= 90%%)" % (100 * share))
print("replay-cli: median promised wait %.2f h, median actual wait %.2f h, ratio %.2f (need <= 2)"
      % (mp, ma, mp / ma if ma else 0))
check("kept >= 90%", share >= 0.90)
check("median promised <= 2x median actual", mp <= 2 * ma)
stats = run("stats", "--json", "--config", cfg, "--state", state, "--now", rfc3339(events[-1][0]))
check("stats: tickets", stats["overall"]["tickets"] == TICKETS, stats["overall"])
check("stats: first replies", stats["overall"]["first_replies"] == TICKETS)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
