#!/usr/bin/env python3
"""Benchmark (issue 11): the PostgreSQL store against SQLite, same run.

1. Acknowledgement decisions per second: C concurrent clients (processes,
   each with its own candor.Context through the Python bindings, i.e.
   candor_ack() in-process: triage + the one store transaction) share
   DECISIONS mails (a third new senders, the rest replies and second
   threads, each sender's mails spread over the clients), against
     - PostgreSQL over TCP on 127.0.0.1 (a private server from
       tests/pg/pg-harness.sh, fsync on), a fresh database per run, and
     - SQLite, a fresh file per run on the same disk,
   for C = 1, 2, 8, alternating backends, median of RUNS. Also the server's
   CPU time per decision (postmaster + backends, from /proc), which says
   how many decisions per second PostgreSQL itself could carry per core.
2. candor-lmtpd end to end: MESSAGES distinct messages over LMTP on
   loopback (SESSIONS parallel client processes, one message per
   transaction) into a maildir, acknowledgements on (a stand-in sendmail
   that reads and discards), with --state on each backend; messages/s
   until the last 250, median of RUNS, and the daemon's CPU per message.

    python3 tests/bench/store-bench.py [--decisions 600] [--clients 1,2,8]
        [--runs 3] [--messages 1000] [--sessions 8] [--skip-daemon]
        [--skip-decisions] [--baseline-build DIR] [--backends sqlite,pg]
(CANDOR_BUILD=build by default; needs PostgreSQL's binaries, and root or a
user that can run initdb.)"""
import argparse
import multiprocessing as mp
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
os.environ.setdefault("CANDOR_SOURCE", SRC)
os.environ.setdefault("CANDOR_BUILD", os.path.join(SRC, "build"))
os.environ.setdefault("CANDOR_BIN", os.path.join(os.environ["CANDOR_BUILD"], "examples",
                                                 "candor"))
os.environ.setdefault("CANDOR_DATADIR", os.path.join(SRC, "lib", "data"))
if not os.environ.get("CANDOR_LIBRARY"):
    for name in ("libcandor.so",):
        p = os.path.join(os.environ["CANDOR_BUILD"], "lib", name)
        if os.path.exists(p):
            os.environ["CANDOR_LIBRARY"] = p
sys.path.insert(0, os.path.join(HERE, "..", "pg"))
sys.path.insert(0, os.path.join(HERE, "..", "lmtpd"))
sys.path.insert(0, os.path.join(SRC, "bindings", "python"))
import pgtest  # noqa: E402
import lmtpdtest  # noqa: E402

DAEMON = lmtpdtest.DAEMON

NOW = "2026-11-24T18:00:00Z"


# ---------------------------------------------------------------- decisions

def decision_client(state, datas, barrier, out):
    import candor
    try:
        with candor.Context(state=state, addresses=[pgtest.OUR_ADDRESS]) as ctx:
            # open the store and load the model before the clock starts
            ctx.ack(pgtest.PROBE.replace("probe@", "warm%d@" % os.getpid()).encode(), now=NOW)
            barrier.wait(timeout=600)
            t0 = time.time()
            sent = 0
            for data in datas:
                sent += 1 if ctx.ack(data, now=NOW).send else 0
            out.put((t0, time.time(), len(datas), sent))
    except Exception as e:   # noqa: BLE001 - reported by the parent
        barrier.abort()
        out.put(("error", "%s: %s" % (type(e).__name__, e)))


def init_state(state):
    """Create the schema once before the clients start (their concurrent
    first opens are the race test's business, not the benchmark's)."""
    tmp = tempfile.mkdtemp(prefix="candor-bench-init-")
    try:
        mail = os.path.join(tmp, "init.eml")
        with open(mail, "w") as f:
            f.write(pgtest.PROBE.replace("probe@", "init@"))
        p = subprocess.run([pgtest.BIN, "ack", "--state", state, "--now", NOW, mail],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError("candor ack --state %s: %s" % (state, p.stderr.strip()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def postgres_cpu(pgdir):
    """CPU seconds used so far by the private server: the postmaster with
    its reaped children (cutime/cstime) plus its live children."""
    try:
        with open(os.path.join(pgdir, "data", "postmaster.pid")) as f:
            pm = int(f.readline())
    except (OSError, ValueError):
        return None
    tck = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid = int(fields[1])
        if int(pid) == pm:
            total += sum(int(x) for x in fields[11:15])   # utime stime cutime cstime
        elif ppid == pm:
            total += int(fields[11]) + int(fields[12])
    return total / tck


def decisions_run(state, mails, clients, pgdir=None):
    init_state(state)
    parts = [[m["data"] for m in mails[i::clients]] for i in range(clients)]
    barrier = mp.Barrier(clients + 1)
    out = mp.Queue()
    procs = [mp.Process(target=decision_client, args=(state, parts[i], barrier, out))
             for i in range(clients)]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=600)
    except Exception:   # noqa: BLE001 - a client failed; its message follows
        pass
    cpu0 = postgres_cpu(pgdir) if pgdir else None
    res = [out.get(timeout=1800) for _ in procs]
    cpu1 = postgres_cpu(pgdir) if pgdir else None
    for p in procs:
        p.join()
    errors = [r[1] for r in res if r[0] == "error"]
    if errors:
        raise RuntimeError("decision client failed: %s" % errors[0])
    t0 = min(r[0] for r in res)
    t1 = max(r[1] for r in res)
    n = sum(r[2] for r in res)
    sent = sum(r[3] for r in res)
    pg_ms = 1000.0 * (cpu1 - cpu0) / n if cpu0 is not None and cpu1 is not None else None
    return n / (t1 - t0), sent, pg_ms


# ---------------------------------------------------------------- daemon

def lmtp_client(port, datas, senders, barrier, out):
    from lmtpdtest import Client, stuff
    c = Client(port, timeout=120)
    c.lhlo()
    barrier.wait()
    ok = bad = 0
    for data, sender in zip(datas, senders):
        code, _ = c.cmd("MAIL FROM:<%s>" % sender)
        code, _ = c.cmd("RCPT TO:<%s>" % pgtest.OUR_ADDRESS)
        code, _ = c.cmd("DATA")
        c.send(stuff(data))
        code, _ = c.reply()
        if code == 250:
            ok += 1
        else:
            bad += 1
    c.cmd("QUIT")
    out.put((time.time(), ok, bad))


def daemon_run(state, mails, sessions, workdir, fake_sendmail, daemon=None):
    import lmtpdtest
    from lmtpdtest import Daemon
    lmtpdtest.DAEMON = daemon or DAEMON
    os.makedirs(workdir)
    d = Daemon({"accept-recipients": "@shop.example"}, workdir=workdir,
               extra_args=["--sendmail", fake_sendmail, "--address", pgtest.OUR_ADDRESS])
    d.state = state
    init_state(state)
    d.start()
    try:
        barrier = mp.Barrier(sessions + 1)
        out = mp.Queue()
        procs = [mp.Process(target=lmtp_client,
                            args=(d.port, [m["data"] for m in mails[i::sessions]],
                                  [m["sender"] for m in mails[i::sessions]], barrier, out))
                 for i in range(sessions)]
        for p in procs:
            p.start()
        barrier.wait(timeout=300)
        t0 = time.time()
        res = [out.get(timeout=3600) for _ in procs]
        for p in procs:
            p.join()
        t1 = max(r[0] for r in res)
        ok = sum(r[1] for r in res)
        bad = sum(r[2] for r in res)
        time.sleep(0.5)
    finally:
        d.stop()
    cpu = sorted(float(x) for x in re.findall(r"status=delivered\S* file=\S+ cpu=([0-9.]+)",
                                               d.read_log()))
    return ok / (t1 - t0), ok, bad, (statistics.median(cpu) * 1000 if cpu else float("nan"))


def show_decisions(rates, clients, backends, a, label=""):
    print("\nacknowledgement decisions per second%s (%d decisions, median of %d runs):"
          % (label, a.decisions, a.runs))
    print("| clients | SQLite | PostgreSQL | PG / SQLite | PG server CPU per decision |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for c in clients:
        s = statistics.median(x[0] for x in rates[("sqlite", c)]) if "sqlite" in backends \
            else float("nan")
        if "pg" in backends:
            p = statistics.median(x[0] for x in rates[("pg", c)])
            ms = statistics.median(x[1] for x in rates[("pg", c)])
            print("| %d | %.1f/s | %.1f/s | %.2f | %.2f ms (%.0f decisions/s per core) |"
                  % (c, s, p, p / s, ms, 1000.0 / ms if ms else float("inf")))
        else:
            print("| %d | %.1f/s | - | - | - |" % (c, s))


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--decisions", type=int, default=600)
    ap.add_argument("--clients", default="1,2,8")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--skip-daemon", action="store_true")
    ap.add_argument("--baseline-build", metavar="DIR",
                    help="also run DIR/examples/candor-lmtpd (e.g. a copy of the build before "
                         "a change) in the same runs, alternating with this build's")
    ap.add_argument("--skip-decisions", action="store_true")
    ap.add_argument("--backends", default="sqlite,pg", help="comma-separated: sqlite, pg")
    ap.add_argument("--pg-synchronous-commit", choices=["on", "off"], default="on",
                    help="diagnosis: off = commits do not wait for the WAL flush "
                         "(the server's fsync stays on)")
    a = ap.parse_args()
    clients = [int(x) for x in a.clients.split(",")]

    tmp = tempfile.mkdtemp(prefix="candor-store-bench-")
    os.chmod(tmp, 0o755)
    pgdir = os.path.join(tmp, "pg")
    os.environ["CANDOR_TEST_PG_DIR"] = pgdir
    try:
        os.environ["CANDOR_TEST_PG"] = pgtest.harness("start", pgdir)
        why = pgtest.pg_backend_problem()
        if a.pg_synchronous_commit == "off":
            pgtest.psql(os.environ["CANDOR_TEST_PG"], "ALTER SYSTEM SET synchronous_commit = off")
            pgtest.psql(os.environ["CANDOR_TEST_PG"], "SELECT pg_reload_conf()")
    except RuntimeError as e:
        why = str(e)
    wanted = a.backends.split(",")
    backends = [b for b in ("sqlite", "pg") if b in wanted and (b == "sqlite" or not why)]
    if why:
        print("PostgreSQL not measured: %s" % why)
    try:
        uptime = open("/proc/loadavg").read().split()[:3]
        print("%s, %d cores, load average %s; PostgreSQL on 127.0.0.1 (TCP), fsync on, "
              "synchronous_commit %s"
              % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count(),
                 " ".join(uptime), a.pg_synchronous_commit))
        # --- decisions
        libs = [("", os.environ.get("CANDOR_LIBRARY", ""))]
        if a.baseline_build:
            libs.append((" (baseline)", os.path.join(a.baseline_build, "lib", "libcandor.so")))
        dvariants = [(b, label, lib) for b in backends for label, lib in libs]
        rates = {}
        for r in range(0 if a.skip_decisions else a.runs):
            for c in clients:
                for i, (b, label, lib) in enumerate(dvariants if r % 2 == 0
                                                    else dvariants[::-1]):
                    tag = "r%dc%d%s%d" % (r, c, b, i)
                    mails = pgtest.make_mails(a.decisions, max(1, a.decisions // 3), tag=tag)
                    if b == "pg":
                        state = pgtest.createdb("bench_" + tag)
                    else:
                        state = os.path.join(tmp, "bench-%s.db" % tag)
                    os.environ["CANDOR_LIBRARY"] = lib   # read by the clients' import
                    rate, sent, pg_ms = decisions_run(state, mails, c,
                                                      pgdir if b == "pg" else None)
                    rates.setdefault((b, c, label), []).append((rate, pg_ms))
                    print("  run %d, %d client%s, %-6s%s: %7.1f decisions/s (%d acks sent)%s"
                          % (r + 1, c, "s" if c > 1 else " ", b, label, rate, sent,
                             "" if pg_ms is None else ", server CPU %.2f ms/decision" % pg_ms),
                          flush=True)
            os.environ["CANDOR_LIBRARY"] = libs[0][1]
        if not a.skip_decisions:
            for label, _ in libs:
                show_decisions({(b, c): v for (b, c, lb), v in rates.items() if lb == label},
                               clients, backends, a, label)
        # --- daemon
        if not a.skip_daemon:
            fake = os.path.join(tmp, "sendmail")
            with open(fake, "w") as f:
                f.write("#!/bin/sh\nexec cat >/dev/null\n")
            os.chmod(fake, 0o755)
            builds = [("", DAEMON)]
            if a.baseline_build:
                builds.append((" (baseline)", os.path.join(a.baseline_build, "examples",
                                                           "candor-lmtpd")))
            variants = [(b, label, path) for b in backends for label, path in builds]
            drates = {}
            for r in range(a.runs):
                for i, (b, label, path) in enumerate(variants if r % 2 == 0 else variants[::-1]):
                    tag = "d%d%s%d" % (r, b, i)
                    mails = pgtest.make_mails(a.messages, max(1, a.messages // 3), tag=tag)
                    if b == "pg":
                        state = pgtest.createdb("bench_" + tag)
                    else:
                        state = os.path.join(tmp, "bench-%s.db" % tag)
                    rate, ok, bad, cpu = daemon_run(state, mails, a.sessions,
                                                    os.path.join(tmp, tag), fake, path)
                    drates.setdefault((b, label), []).append((rate, cpu))
                    print("  run %d, candor-lmtpd%s on %-6s: %7.1f msg/s (%d accepted, "
                          "%d refused), daemon CPU p50 %.2f ms/msg"
                          % (r + 1, label, b, rate, ok, bad, cpu), flush=True)
            print("\ncandor-lmtpd end to end (%d messages, %d LMTP sessions, acks on, median of %d):"
                  % (a.messages, a.sessions, a.runs))
            print("| state | msg/s | daemon CPU p50 per message |")
            print("| --- | ---: | ---: |")
            for b, label, _ in variants:
                print("| %s%s | %.1f | %.2f ms |" % (
                    {"sqlite": "SQLite", "pg": "PostgreSQL"}[b], label,
                    statistics.median(x[0] for x in drates[(b, label)]),
                    statistics.median(x[1] for x in drates[(b, label)])))
    finally:
        try:
            pgtest.harness("stop", pgdir)
        except RuntimeError as e:
            print(e)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
