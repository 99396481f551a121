#!/usr/bin/env python3
"""Benchmark: messages/s through one private Postfix (mail-sandbox) into a
maildir, with candor-lmtpd in the path (shop.example -> LMTP -> triage,
delivery, acknowledgement decision) against the same Postfix delivering the
same mail straight into a maildir with its own virtual(8) (customer.example),
in the same run, alternating, median of ROUNDS (and the median of the
per-round ratios). Also the daemon's CPU time per message (p50, p99) from
its own log lines (each delivery line's cpu=: the session thread's CPU time,
CLOCK_THREAD_CPUTIME_ID, from DATA to the durable file), and its wall time.

    sudo python3 tests/bench/lmtpd-bench.py [--messages 1000] [--rounds 3] [--sessions 8]
                                            [--lmtp unix|inet] [--sink] [--lmtp-cache]
    (CANDOR_BUILD=build, CANDOR_SHARED=../shared by default)
Needs root, postfix (smtp-source ships with it)."""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "lmtpd"))
os.environ.setdefault("CANDOR_SOURCE", os.path.abspath(os.path.join(here, "..", "..")))
os.environ.setdefault("CANDOR_BUILD", os.path.join(os.environ["CANDOR_SOURCE"], "build"))
os.environ.setdefault("CANDOR_SHARED", os.path.join(os.environ["CANDOR_SOURCE"], "..", "shared"))
from lmtpdtest import Daemon, Sandbox, free_port, sandbox_problem  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--messages", type=int, default=1000)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--sessions", type=int, default=8)
ap.add_argument("--no-ack", action="store_true")
ap.add_argument("--lmtp-cache", action="store_true",
                help="Postfix's default LMTP connection caching (lmtp_connection_cache_on_demand"
                     " = yes) instead of the sandbox's one connection per message")
ap.add_argument("--postconf", action="append", default=[], metavar="NAME=VALUE",
                help="another main.cf setting for this run (repeatable)")
ap.add_argument("--lmtp", choices=("unix", "inet"), default="unix",
                help="how Postfix reaches the LMTP servers (candor-lmtpd and, with --sink,"
                     " smtp-sink): a UNIX socket, as the shipped candor-lmtpd.socket and the usual"
                     " lmtp:unix:private/... transports do (default), or TCP on 127.0.0.1")
ap.add_argument("--sink", action="store_true",
                help="a third path in every round: the same Postfix over LMTP to smtp-sink -L,"
                     " a server that does no delivery work (no file, no fsync): the most any"
                     " LMTP delivery agent could reach on this machine")
a = ap.parse_args()
if a.lmtp_cache:
    a.postconf.insert(0, "lmtp_connection_cache_on_demand=yes")

why = sandbox_problem()
if why:
    sys.exit("lmtpd-bench: " + why)

MESSAGE = """From: Alice Example <alice@customer.example>
To: Support <support@shop.example>
Subject: Where is my order A10442? It was due last week
Date: Sat, 28 Nov 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Hello,

I ordered a pair of boots (order A10442) on the 12th and the tracking page
still says "label created". It was supposed to arrive last Tuesday. I need
them for a trip on Friday. Can you tell me where the parcel is, and if it
will not make it, can I cancel and get a refund instead?

This is the second time an order of mine has been late, which is
frustrating.

Thanks,
Alice

> On 12 Nov, Shop wrote:
> Thank you for your order A10442. We will let you know when it ships.
"""

base = tempfile.mkdtemp(prefix="lmtpd-bench-")
os.chmod(base, 0o755)
msgfile = os.path.join(base, "message.eml")
with open(msgfile, "w") as f:
    f.write(MESSAGE)
sb = Sandbox(base)
d = None
sink = None


# CPU time of everything the bench starts (Postfix, the daemon, smtp-source,
# this script): a cpuacct cgroup (v1) of its own that they all inherit, read
# per round. Without one, only the daemon's own log is used.
CG = "/sys/fs/cgroup/cpuacct/lmtpd-bench-%d" % os.getpid()
try:
    os.mkdir(CG)
    with open(os.path.join(CG, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
except OSError:
    CG = None


def cg_cpu():
    if not CG:
        return float("nan")
    with open(os.path.join(CG, "cpuacct.usage")) as f:
        return int(f.read()) / 1e9


def cg_leave():
    if not CG:
        return
    try:
        with open("/sys/fs/cgroup/cpuacct/cgroup.procs", "w") as f:
            f.write(str(os.getpid()))
    except OSError:
        pass
    for _ in range(50):   # Postfix and the daemon are gone once they have exited
        try:
            os.rmdir(CG)
            return
        except OSError:
            time.sleep(0.1)


def count(dirpath):
    try:
        return len(os.listdir(dirpath))
    except OSError:
        return 0


def proc_cpu(pid):
    """User and system CPU seconds of process PID (all its threads)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        hz = os.sysconf("SC_CLK_TCK")
        return int(v[11]) / hz, int(v[12]) / hz
    except (OSError, IndexError, ValueError):
        return float("nan"), float("nan")


def sink_count():
    """Deliveries to the sink so far, from Postfix's log."""
    try:
        with open(sb.info["MAIL_SANDBOX_LOG"], errors="replace") as f:
            return sum(1 for ln in f if "to=<bench@sink.example>" in ln and "status=sent" in ln)
    except OSError:
        return 0


def run(to, newdir, n, cpu=None, dcpu=None):
    counter = (lambda: count(newdir)) if newdir else sink_count
    start = counter()
    c0 = cg_cpu()
    u0, s0 = proc_cpu(d.proc.pid)
    t0 = time.time()
    subprocess.run(["smtp-source", "-s", str(a.sessions), "-m", str(n), "-d", "-F", msgfile,
                    "-f", "alice@customer.example", "-t", to, "127.0.0.1:%d" % sb.smtp_port],
                   check=True, capture_output=True, timeout=3600)
    last, seen = time.time(), counter()
    while seen < start + n:
        time.sleep(0.02)
        now = counter()
        if now != seen:
            seen, last = now, time.time()
        elif time.time() - last > 60:   # no progress for a minute: say why
            bounced = subprocess.run(["grep", "-c", "status=bounced", sb.info["MAIL_SANDBOX_LOG"]],
                                     capture_output=True, text=True).stdout.strip()
            raise RuntimeError("stalled at %d of %d (%s bounced in %s)" % (
                seen - start, n, bounced or "0", sb.log))
    if cpu is not None:
        cpu.append((cg_cpu() - c0) / n)
    if dcpu is not None:
        u1, s1 = proc_cpu(d.proc.pid)
        dcpu.append(((u1 - u0) / n, (s1 - s0) / n))
    return n / (time.time() - t0)


def on_signal(signum, frame):
    raise KeyboardInterrupt   # run the finally: stop the daemon and Postfix


signal.signal(signal.SIGTERM, on_signal)


try:
    sb.start()
    if a.postconf:
        etc = os.path.join(sb.dir, "etc")
        subprocess.run(["postconf", "-c", etc, "-e"] + a.postconf, check=True)
        subprocess.run(["postfix", "-c", etc, "reload"], check=True, capture_output=True)
        time.sleep(1)
    etc = os.path.join(sb.dir, "etc")
    # Both maildirs side by side, away from Postfix's queue. Where a new
    # file's inode goes follows its directory; on this VM's journal-less
    # ext4 every file created scans past the inodes freed in that region in
    # the last minute or so (recently_deleted(): 0.02 ms against 0.2-0.5 ms
    # a file), and Postfix's queue frees one per message. The sandbox
    # leaves customers/ to virtual(8), which created it wherever the
    # allocator chose, and the daemon's maildir landed next to the queue:
    # one path paid that scan and the other did not. Here both are made
    # together in one directory that the allocator places afresh (the
    # top-directory flag, chattr +T, spreads its subdirectories like those
    # of /), the way a server keeps /var/spool/postfix and its mail store
    # apart.
    base_md = sb.info["MAIL_SANDBOX_MAILDIRS"]
    st = os.stat(base_md)
    if subprocess.run(["chattr", "+T", base_md], capture_output=True).returncode != 0:
        print("note: chattr +T failed (not ext4?): maildirs placed by the default rule")
    stores = os.path.join(base_md, "stores")
    os.mkdir(stores, 0o755)
    os.chown(stores, st.st_uid, st.st_gid)
    for sub in ("", "tmp", "new", "cur"):
        for name in ("customers", "support"):   # virtual(8) writes as the sandbox's user
            path = os.path.join(stores, name, sub)
            os.mkdir(path, 0o700)
            if name == "customers":
                os.chown(path, st.st_uid, st.st_gid)
    sb.customers = os.path.join(stores, "customers")
    unix = a.lmtp == "unix"
    over = "a UNIX socket" if unix else "TCP"
    lmtp_sock = os.path.join(base, "lmtp.sock")
    transports = ["shop.example=" + ("lmtp:unix:" + lmtp_sock if unix else
                                     "lmtp:inet:127.0.0.1:%d" % sb.lmtp_port)]
    if a.sink:
        where = os.path.join(base, "sink.sock") if unix else "127.0.0.1:%d" % free_port()
        sink = subprocess.Popen(["smtp-sink", "-L", "-u", "nobody", "-m", "1000",
                                 ("unix:" if unix else "") + where, "1000"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        transports.append("sink.example=lmtp:%s:%s" % (a.lmtp, where))
    subprocess.run(["postconf", "-c", etc, "-e",
                    "virtual_mailbox_base = " + stores,
                    "relay_domains = shop.example, sink.example",
                    "transport_maps = inline:{ %s }" % ", ".join(transports)], check=True)
    subprocess.run(["postfix", "-c", etc, "reload"], check=True, capture_output=True)
    time.sleep(1)
    print("LMTP over %s; maildirs' tmp/ inodes: candor-lmtpd %d, virtual(8) %d; Postfix's "
          "queue (incoming/) %d" % (
              over,
              os.stat(os.path.join(stores, "support", "tmp")).st_ino,
              os.stat(os.path.join(stores, "customers", "tmp")).st_ino,
              os.stat(os.path.join(sb.dir, "queue", "incoming")).st_ino), flush=True)
    os.makedirs(os.path.join(base, "daemon"))
    extra = ["--sendmail", sb.sendmail, "--address", "support@shop.example"]
    if a.no_ack:
        extra.append("--no-ack")
    d = Daemon({"accept-recipients": "@shop.example"}, extra_args=extra,
               workdir=os.path.join(base, "daemon"), port=sb.lmtp_port,
               maildir=os.path.join(stores, "support"),
               listen="unix:" + lmtp_sock if unix else None).start()
    candor_new = os.path.join(d.maildir, "new")
    virtual_new = os.path.join(sb.customers, "new")
    run("support@shop.example", candor_new, 50)        # warm-up, both paths
    run("bench@customer.example", virtual_new, 50)
    if a.sink:
        run("bench@sink.example", None, 50)
    # the warm-up's one acknowledgement lands in the customers' maildir too:
    # let it arrive before the virtual(8) rounds count that maildir (none
    # comes when the daemon decides nothing: --no-ack, or an ablation
    # level of lmtpd-ablation.py)
    decides = not a.no_ack and os.environ.get("LMTPD_ABLATION", "") in ("", "full")
    t0 = time.time()
    while decides and "ack ticket=" not in d.read_log() and time.time() - t0 < 30:
        time.sleep(0.1)
    subprocess.run(["postqueue", "-c", os.path.join(sb.dir, "etc"), "-f"], capture_output=True)
    time.sleep(1)
    with open(d.log) as f:
        warm_lines = sum(1 for _ in f)
    rc, rv, cc, cv, dc, rs, cs = [], [], [], [], [], [], []
    # the order alternates round by round (candor first, then virtual
    # first, ...): the machine's state drifts during a run (on this VM's
    # journal-less ext4 every file created costs more while many inodes
    # were freed in the last minutes, e.g. by the previous run's clean-up),
    # so whichever path always ran first would always pay more
    for i in range(a.rounds):
        if i % 2 == 0:
            rc.append(run("support@shop.example", candor_new, a.messages, cc, dc))
            rv.append(run("bench@customer.example", virtual_new, a.messages, cv))
        else:
            rv.append(run("bench@customer.example", virtual_new, a.messages, cv))
            rc.append(run("support@shop.example", candor_new, a.messages, cc, dc))
        if a.sink:   # after both, alternating with them would change their order
            rs.append(run("bench@sink.example", None, a.messages, cs))
        print("round %d (%s first): candor-lmtpd %.1f msg/s, virtual %.1f msg/s, ratio %.0f%%; "
              "CPU per message, whole pipeline: %.2f ms vs %.2f ms%s" % (
                  i + 1, "candor" if i % 2 == 0 else "virtual", rc[-1], rv[-1],
                  100 * rc[-1] / rv[-1], 1000 * cc[-1], 1000 * cv[-1],
                  "; LMTP to smtp-sink %.1f msg/s (%.0f%% of virtual), %.2f ms" % (
                      rs[-1], 100 * rs[-1] / rv[-1], 1000 * cs[-1]) if a.sink else ""),
              flush=True)
    with open(d.log) as f:
        lines = f.readlines()[warm_lines:]
    cpu = sorted(float(m.group(1)) for m in (re.search(r" cpu=([0-9.]+)", ln) for ln in lines
                                             if "status=delivered" in ln) if m)
    wall = sorted(float(m.group(1)) for m in (re.search(r" time=([0-9.]+)", ln) for ln in lines
                                              if "status=delivered" in ln) if m)

    def pct(v, p):
        return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))] if v else float("nan")

    mc, mv = statistics.median(rc), statistics.median(rv)
    print("messages per run %d, %d rounds, %d SMTP sessions, LMTP over %s, acks %s%s" % (
        a.messages, a.rounds, a.sessions, over,
        "off" if a.no_ack else "on (one sender: rate-limited)",
        "".join(", " + x for x in a.postconf)))
    print("Postfix -> candor-lmtpd -> maildir: median %.1f msg/s" % mc)
    print("Postfix -> virtual(8) -> maildir:   median %.1f msg/s" % mv)
    print("candor-lmtpd throughput / virtual:  %.0f%% (cost %.0f%%)" % (100 * mc / mv, 100 - 100 * mc / mv))
    ratios = [c / v for c, v in zip(rc, rv)]
    print("median of the per-round ratios:     %.0f%% (the load drifts between rounds)" % (
        100 * statistics.median(ratios)))
    if a.sink:
        print("Postfix -> LMTP -> smtp-sink (no delivery work): median %.1f msg/s, %.0f%% of virtual"
              " (median of the per-round ratios %.0f%%), CPU per message %.2f ms: the ceiling of"
              " an LMTP delivery agent here" % (
                  statistics.median(rs), 100 * statistics.median(rs) / mv,
                  100 * statistics.median([x / v for x, v in zip(rs, rv)]),
                  1000 * statistics.median(cs)))
    print("CPU per message of the whole pipeline (Postfix, delivery, smtp-source; median): "
          "candor-lmtpd path %.2f ms, virtual path %.2f ms" % (
              1000 * statistics.median(cc), 1000 * statistics.median(cv)))
    print("daemon process CPU per message (all threads; median): user %.2f ms, system %.2f ms" % (
        1000 * statistics.median(x[0] for x in dc), 1000 * statistics.median(x[1] for x in dc)))
    print("daemon CPU per message: p50 %.2f ms, p99 %.2f ms (%d messages)" % (
        1000 * pct(cpu, 50), 1000 * pct(cpu, 99), len(cpu)))
    print("daemon wall time per message (DATA to durable): p50 %.2f ms, p99 %.2f ms" % (
        1000 * pct(wall, 50), 1000 * pct(wall, 99)))
finally:
    if sink:
        sink.terminate()
        sink.wait()
    if d:
        d.stop()
    sb.stop()
    cg_leave()
    if not os.environ.get("LMTPD_BENCH_KEEP"):
        shutil.rmtree(base, ignore_errors=True)
