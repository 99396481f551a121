#!/usr/bin/env python3
"""Sum the per-test "N passed, N failed" lines of a meson test run.

Reads BUILDDIR/meson-logs/testlog.json. A test program that prints such a
line contributes its counts; one that does not (a shell or Python check)
counts as one test, passed or failed by its result. Prints one plain line
"N passed, N failed" (last) and exits 1 when anything failed or nothing ran.
"""
import json
import re
import sys

LINE = re.compile(r"^(\d+) passed, (\d+) failed", re.M)


def main(builddir):
    passed = failed = 0
    rows = []
    try:
        with open(f"{builddir}/meson-logs/testlog.json", encoding="utf-8") as f:
            entries = [json.loads(l) for l in f if l.strip()]
    except OSError as e:
        print(f"summarize: {e}", file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    for e in entries:
        out = e.get("stdout") or ""
        ok = e.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
        m = LINE.findall(out)
        if e.get("result") == "SKIP":
            rows.append((e["name"], "skipped"))
            continue
        if m:
            p, f_ = map(int, m[-1])
            if not ok and f_ == 0:
                f_ = 1      # crashed or exited non-zero after its summary
        else:
            p, f_ = (1, 0) if ok else (0, 1)
        passed += p
        failed += f_
        rows.append((e["name"], f"{p} passed, {f_} failed ({e.get('result')})"))
    for name, what in rows:
        print(f"  {name:<32} {what}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build"))
