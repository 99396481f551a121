#!/bin/sh
# tests/triage/test-cli.sh — `candor triage` and `candor train` from the
# outside: one JSON line per file, an unreadable file still gets its line
# and exit 1, --explain, --help, usage errors, and a model trained by
# `candor train` on a labels file is used by `candor triage --model`.
set -u
bin=${CANDOR_BIN:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

cat > "$tmp/a.eml" <<'EOM'
From: Pat <pat@customer.example>
To: support@shop.example
Subject: Refund please

I returned the kettle last week, please refund my money.
EOM
cat > "$tmp/b.eml" <<'EOM'
From: Sam <sam@customer.example>
To: support@shop.example
Subject: Where is my parcel?

My parcel has not arrived yet. Tracking 1Z999AA10123456784.
EOM

"$bin" triage "$tmp/a.eml" "$tmp/missing.eml" "$tmp/b.eml" > "$tmp/out" 2> "$tmp/err"
rc=$?
[ "$rc" = 1 ] && ok || bad "exit status with an unreadable file: $rc (want 1)"
[ "$(wc -l < "$tmp/out")" = 3 ] && ok || bad "want 3 lines, got $(wc -l < "$tmp/out")"
python3 - "$tmp/out" <<'EOP' && ok || bad "JSON lines content"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
a, m, b = lines
assert a["intent"] == "refund", a["intent"]
assert b["intent"] == "order_status", b["intent"]
assert m["errors"], m
assert "text" not in m, m
for o in (a, b):
    assert "text" not in o
    assert set(o["scores"]) == {"complaint", "refund", "cancellation", "billing", "order_status",
        "technical_support", "account_change", "sales_inquiry", "praise", "general_question"}
    assert abs(sum(o["scores"].values()) - 1) < 0.01
    assert o["urgency"] in ("low", "normal", "high", "critical")
    assert o["sentiment"] in ("negative", "neutral", "positive")
    assert isinstance(o["churn_risk"], bool)
    assert set(o["autoreply"]) == {"send", "reason"}
    assert "explain" not in o
assert {"kind": "tracking_number", "value": "1Z999AA10123456784"} in b["entities"]
EOP

"$bin" triage "$tmp/a.eml" > /dev/null && ok || bad "exit status 0 for a clean file"
"$bin" triage --explain "$tmp/a.eml" | python3 -c '
import json, sys
o = json.load(sys.stdin)
assert o["explain"]["rules"] and "id" in o["explain"]["rules"][0]
assert "features" in o["explain"]' && ok || bad "--explain"
"$bin" triage > /dev/null 2>&1; [ $? = 2 ] && ok || bad "no FILE is a usage error"
"$bin" triage --jobs 2 "$tmp/a.eml" > /dev/null 2>&1; [ $? = 2 ] && ok || bad "--jobs without --maildir is a usage error"
"$bin" triage --help | grep -q -- "--maildir DIR" && ok || bad "--help"

# train on a tiny labelled set, then triage with that model
mkdir -p "$tmp/m"
i=0
for t in "I want my money back for the lamp" "please refund the broken chair" "refund my order please" \
         "money back for the damaged sofa" "give me a refund for the kettle"; do
    i=$((i + 1))
    printf 'From: x@customer.example\nSubject: r%s\n\n%s\n' "$i" "$t" > "$tmp/m/r$i.eml"
    printf 'From: x@customer.example\nSubject: p%s\n\nthank you, wonderful team, great job number %s\n' "$i" "$i" > "$tmp/m/p$i.eml"
done
{ printf 'file\tintent\turgency\tsentiment\n'
  for i in 1 2 3 4 5; do printf 'm/r%s.eml\trefund\tnormal\tneutral\nm/p%s.eml\tpraise\tlow\tpositive\n' $i $i; done; } > "$tmp/labels.tsv"
"$bin" train --labels "$tmp/labels.tsv" -o "$tmp/model.txt" > "$tmp/report" 2> "$tmp/err"
[ $? = 0 ] && ok || { bad "candor train: $(cat "$tmp/err")"; }
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["documents"] == 10 and "reliability" in r' "$tmp/report" \
    && ok || bad "train report"
head -1 "$tmp/model.txt" | grep -qx 'candor-model 1' && ok || bad "model file version line"
"$bin" triage --model "$tmp/model.txt" "$tmp/a.eml" | grep -q '"intent":"refund"' && ok || bad "triage with the trained model"
# a maildir whose subfolders are named after intents (plain and maildir++)
mkdir -p "$tmp/md/refund/cur" "$tmp/md/.praise/new"
for i in 1 2 3 4 5; do
    cp "$tmp/m/r$i.eml" "$tmp/md/refund/cur/r$i"
    cp "$tmp/m/p$i.eml" "$tmp/md/.praise/new/p$i"
done
"$bin" train --maildir "$tmp/md" -o "$tmp/model2.txt" > "$tmp/report2" 2> "$tmp/err"
[ $? = 0 ] && python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["documents"] == 10' "$tmp/report2" \
    && ok || bad "train --maildir: $(cat "$tmp/err")"
"$bin" train -o "$tmp/x.txt" > /dev/null 2>&1; [ $? = 2 ] && ok || bad "train without data is a usage error"
printf 'candor-model 9\n' > "$tmp/bad.txt"
"$bin" triage --model "$tmp/bad.txt" "$tmp/a.eml" > /dev/null 2> "$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q 'bad.txt:1:' "$tmp/err" && ok || bad "bad model file: exit $rc, $(cat "$tmp/err")"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
