#!/usr/bin/env python3
"""candor-lmtpd.8 documents what the program and its config accept: every
option of --help, every <daemon> attribute of the default configuration,
every reply code the daemon can give; and it renders without warnings."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lmtpdtest import DAEMON, DATADIR, SOURCE, Report  # noqa: E402

r = Report()
page = os.path.join(SOURCE, "examples", "candor-lmtpd.8")
src = open(page, encoding="utf-8").read()
text = src.replace("\\-", "-")
helptext = subprocess.run([DAEMON, "--help"], capture_output=True, text=True).stdout
opts = sorted(set(re.findall(r"--[a-z][a-z-]+", helptext)))
r.check("--help lists options", len(opts) >= 10, opts)
for o in opts:
    r.check("man page documents " + o, o in text)
xml = open(os.path.join(DATADIR, "candor.xml"), encoding="utf-8").read()
daemon = re.search(r"<daemon\b([^>]*)/>", xml, re.S)
attrs = re.findall(r"([a-z-]+)=\"", daemon.group(1)) if daemon else []
r.check("default config has <daemon> attributes", len(attrs) >= 10, attrs)
for a in attrs:
    r.check("man page documents <daemon> " + a, a in text)
codes = set(re.findall(r'"([245]\d\d [245]\.\d\.\d+)', open(
    os.path.join(SOURCE, "examples", "lmtpd", "session.c")).read()))
codes |= {"250 2.0.0", "451 4.3.0", "452 4.3.1"}
for c in sorted(codes):
    if c.startswith(("2", "3")) and c != "250 2.0.0":
        continue
    r.check("man page lists reply " + c, c in text)
p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page], capture_output=True, text=True)
r.check("renders without groff warnings", p.returncode == 0 and not p.stderr.strip(), p.stderr[:300])
r.finish()
