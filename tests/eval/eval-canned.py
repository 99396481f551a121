#!/usr/bin/env python3
"""Evaluate `candor check` on the canned-reply corpus (../shared/corpus/canned).

The recipe of the corpus README: one fresh state, every history reply
recorded with `candor record-reply` (file-name order = date order), then
every case checked against it. Prints the confusion counts, precision,
recall and F1 of "flagged" (review or canned), the recall of each finding
kind with the cases it missed, and the cases with no or unparsable output.

    tests/eval/eval-canned.py [--candor BIN] [--corpus DIR] [--results FILE]

The targets (issue 5) are checked: precision >= 0.90 and recall >= 0.85 for
flagged replies, recall >= 0.80 for each kind. Exit status 0 when all are
met; the last line is "N passed, N failed" over the targets.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--candor", default=os.environ.get("CANDOR_BIN", "build/examples/candor"))
ap.add_argument("--corpus", default=os.path.join(os.environ.get("CANDOR_SHARED", "../shared"),
                                                 "corpus", "canned"))
ap.add_argument("--config", default=None, help="configuration file for both commands")
ap.add_argument("--results", default=None, help="also write results.tsv here")
args = ap.parse_args()

corpus = args.corpus
if not os.path.isdir(os.path.join(corpus, "cases")):
    print("corpus not found: %s" % corpus)
    print("0 passed, 1 failed")
    sys.exit(1)
cfg = ["--config", args.config] if args.config else []

with tempfile.TemporaryDirectory() as tmp:
    state = os.path.join(tmp, "state.db")
    hist = sorted(f for f in os.listdir(os.path.join(corpus, "history")) if f.endswith(".eml"))
    bad_record = []
    for h in hist:
        r = subprocess.run([args.candor, "record-reply", "--state", state,
                            "--now", "2026-11-02T09:59:00Z"] + cfg
                           + [os.path.join(corpus, "history", h)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            bad_record.append((h, r.stderr.strip()))
    results = {}
    lines = []
    for n in sorted(os.listdir(os.path.join(corpus, "cases"))):
        c = os.path.join(corpus, "cases", n)
        r = subprocess.run([args.candor, "check", "--state", state, "--now", "2026-11-02T10:00:00Z"]
                           + cfg + ["--original", os.path.join(c, "incoming.eml"),
                                    os.path.join(c, "reply.eml")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out = r.stdout.replace("\n", "")
        lines.append("%s\t%s" % (n, out))
        try:
            results[n] = json.loads(out)
        except ValueError:
            results[n] = None
    if args.results:
        with open(args.results, "w") as f:
            f.write("\n".join(lines) + "\n")

labels = {}
with open(os.path.join(corpus, "labels.tsv")) as f:
    for row in csv.DictReader(f, delimiter="\t"):
        labels[row["case"]] = (row["verdict"], [k for k in row["expected_kinds"].split(",") if k])

tp = fp = fn = tn = 0
missed, alarms, broken = [], [], []
kinds = {}
for case, (verdict, expected) in sorted(labels.items()):
    r = results.get(case)
    positive = verdict == "canned"
    if r is None or "verdict" not in r:
        broken.append(case)
        flagged = not positive          # wrong either way
    else:
        flagged = r["verdict"] in ("review", "canned")
    if positive and flagged:
        tp += 1
    elif positive:
        fn += 1
        missed.append(case)
    elif flagged:
        fp += 1
        alarms.append(case)
    else:
        tn += 1
    got = {f.get("kind") for f in (r or {}).get("findings", [])} if r else set()
    for k in expected:
        hit, total, miss = kinds.setdefault(k, [0, 0, []])
        kinds[k][1] += 1
        if k in got:
            kinds[k][0] += 1
        else:
            kinds[k][2].append(case)

p = tp / (tp + fp) if tp + fp else 0.0
rc = tp / (tp + fn) if tp + fn else 0.0
f1 = 2 * p * rc / (p + rc) if p + rc else 0.0
print("history replies recorded: %d (%d failed)" % (len(hist), len(bad_record)))
for h, e in bad_record[:5]:
    print("  record-reply %s: %s" % (h, e))
print("cases: %d, no or unparsable output: %d %s" % (len(labels), len(broken), " ".join(broken)))
print("flagged: TP %d  FP %d  FN %d  TN %d" % (tp, fp, fn, tn))
print("precision %.3f  recall %.3f  F1 %.3f" % (p, rc, f1))
print("missed (canned, not flagged): %s" % (" ".join(missed) or "-"))
print("false alarms (ok, flagged):   %s" % (" ".join(alarms) or "-"))
print("recall per finding kind:")
passed = failed = 0
for k, (hit, total, miss) in sorted(kinds.items()):
    ok = hit / total >= 0.80
    passed += ok
    failed += not ok
    print("  %-15s %2d/%2d = %.2f  %s  missed: %s" % (k, hit, total, hit / total,
                                                    "ok  " if ok else "LOW ", " ".join(miss) or "-"))
for name, val, target in (("precision", p, 0.90), ("recall", rc, 0.85)):
    if val >= target:
        passed += 1
    else:
        failed += 1
        print("target missed: %s %.3f < %.2f" % (name, val, target))
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
