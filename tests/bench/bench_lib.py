#!/usr/bin/python3
"""Helpers for tests/bench/accept.sh and relay.sh (standard library only).

Subcommands:
  freeport N                      print N distinct free TCP ports on 127.0.0.1
  waitport PORT TIMEOUT [PID]     wait until 127.0.0.1:PORT accepts; fail early if PID dies
  pidwait PID TIMEOUT             wait until PID has exited (zombies count as exited)
  fsync DIR [N]                   create N 4 KiB files with fsync each, print files/s
  run --log F --pid P [--tree] [--timeout S] [--sink F --expect N] -- CMD...
                                  time CMD with a monotonic clock while sampling the
                                  RSS/PSS of P (plus all its descendants with --tree)
                                  every 0.2 s; prints "rc elapsed peak_rss_kb
                                  peak_pss_kb max_procs"; with --sink, then waits
                                  (bounded: timeout, or 15 s without progress) until
                                  smtp-sink's counter in F reaches N and appends
                                  "end_to_end_elapsed sink_count" (RSS sampled
                                  until then)
  sinkcount F                     the last message count smtp-sink -c wrote into F
  count BASE                      number of messages in new/ and cur/ of Maildirs under BASE
  drain --base B --expect N [--queue Q] [--timeout S] [--stall S]
                                  wait (bounded) until N messages were delivered under B
                                  and the Postfix queue Q is empty; prints delivered count
  report RAW [--postfix-only] [--what TEXT]
                                  print the result table from the raw TSV file
                                  (TEXT: what the rates count, default "accepted")
"""

import os
import socket
import statistics
import subprocess
import sys
import threading
import time

SAMPLE_INTERVAL = 0.2


# --------------------------------------------------------------------------- procs

def proc_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return False
    state = data.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def descendants(root):
    """root plus all its descendants, found by scanning /proc."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                data = f.read()
        except OSError:
            continue
        fields = data.rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
    out, todo = [], [root]
    while todo and len(out) < 10000:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def mem_kb(pid):
    """(rss_kb, pss_kb) of one process; (0, 0) if it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                    break
    except OSError:
        return 0, 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                    break
    except OSError:
        pass
    return rss, pss


class Sampler(threading.Thread):
    def __init__(self, pid, tree):
        super().__init__(daemon=True)
        self.pid, self.tree = pid, tree
        self.peak_rss = self.peak_pss = self.max_procs = 0
        self.stop_evt = threading.Event()

    def sample(self):
        pids = descendants(self.pid) if self.tree else [self.pid]
        rss = pss = n = 0
        for p in pids:
            r, s = mem_kb(p)
            if r:
                rss, pss, n = rss + r, pss + s, n + 1
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.max_procs = max(self.max_procs, n)

    def run(self):
        while True:
            self.sample()
            if self.stop_evt.wait(SAMPLE_INTERVAL):
                break
        self.sample()


# --------------------------------------------------------------------------- commands

def cmd_freeport(args):
    n = int(args[0]) if args else 1
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        print(" ".join(str(s.getsockname()[1]) for s in socks))
    finally:
        for s in socks:
            s.close()
    return 0


def cmd_waitport(args):
    port, timeout = int(args[0]), float(args[1])
    pid = int(args[2]) if len(args) > 2 else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None and not proc_alive(pid):
            print(f"process {pid} exited before port {port} opened", file=sys.stderr)
            return 2
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return 0
        except OSError:
            time.sleep(0.1)
    print(f"port {port} not accepting after {timeout:g}s", file=sys.stderr)
    return 1


def cmd_pidwait(args):
    pid, timeout = int(args[0]), float(args[1])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc_alive(pid):
            return 0
        time.sleep(0.1)
    return 1


def cmd_fsync(args):
    d = args[0]
    n = int(args[1]) if len(args) > 1 else 500
    os.makedirs(d, exist_ok=True)
    buf = b"x" * 4096
    t0 = time.monotonic()
    for i in range(n):
        fd = os.open(os.path.join(d, f"f{i}"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            os.write(fd, buf)
            os.fsync(fd)
        finally:
            os.close(fd)
    elapsed = time.monotonic() - t0
    for i in range(n):
        os.unlink(os.path.join(d, f"f{i}"))
    print(f"{n / elapsed:.0f}")
    return 0


def sink_count(path):
    """smtp-sink -c writes "sess=N quit=N mesg=N\r" per event."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 200))
            tail = f.read().decode("ascii", "replace")
    except FileNotFoundError:
        return 0
    marks = [p for p in tail.split("mesg=")[1:] if p[:1].isdigit()]
    if not marks:
        return 0
    return int("".join(c for c in marks[-1][:12] if c.isdigit()) or 0)


def cmd_sinkcount(args):
    print(sink_count(args[0]))
    return 0


def wait_sink(path, expect, deadline, stall=15.0):
    last, last_change = -1, time.monotonic()
    while True:
        n = sink_count(path)
        now = time.monotonic()
        if n >= expect or now > deadline:
            return n
        if n != last:
            last, last_change = n, now
        elif now - last_change > stall:
            return n
        time.sleep(0.02)


def cmd_run(args):
    log, pid, tree, timeout = None, None, False, 600.0
    sink, expect = None, 0
    i = 0
    while i < len(args) and args[i] != "--":
        a = args[i]
        if a == "--log":
            log, i = args[i + 1], i + 2
        elif a == "--pid":
            pid, i = int(args[i + 1]), i + 2
        elif a == "--timeout":
            timeout, i = float(args[i + 1]), i + 2
        elif a == "--tree":
            tree, i = True, i + 1
        elif a == "--sink":
            sink, i = args[i + 1], i + 2
        elif a == "--expect":
            expect, i = int(args[i + 1]), i + 2
        else:
            raise SystemExit(f"run: unknown option {a}")
    cmd = args[i + 1:]
    if not cmd or log is None or pid is None:
        raise SystemExit("usage: run --log F --pid P [--tree] [--timeout S] -- CMD...")
    sampler = Sampler(pid, tree)
    sampler.start()
    with open(log, "ab") as out:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = 124
        elapsed = time.monotonic() - t0
    extra = ""
    if sink:
        got = wait_sink(sink, expect, t0 + timeout)
        extra = f" {time.monotonic() - t0:.4f} {got}"
    sampler.stop_evt.set()
    sampler.join(5)
    print(f"{rc} {elapsed:.4f} {sampler.peak_rss} {sampler.peak_pss} {sampler.max_procs}{extra}")
    return 0


def count_maildir(base):
    n = 0
    for dirpath, _dirs, files in os.walk(base):
        if os.path.basename(dirpath) in ("new", "cur"):
            n += len(files)
    return n


def count_queue(qdir):
    n = 0
    for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
        for _dp, _d, files in os.walk(os.path.join(qdir, sub)):
            n += len(files)
    return n


def cmd_count(args):
    print(count_maildir(args[0]))
    return 0


def cmd_drain(args):
    opts = {"--base": None, "--expect": None, "--queue": None, "--timeout": "120", "--stall": "15"}
    for k, v in zip(args[::2], args[1::2]):
        if k not in opts:
            raise SystemExit(f"drain: unknown option {k}")
        opts[k] = v
    base, expect = opts["--base"], int(opts["--expect"])
    qdir = opts["--queue"]
    deadline = time.monotonic() + float(opts["--timeout"])
    stall = float(opts["--stall"])
    last, last_change = -1, time.monotonic()
    while True:
        n = count_maildir(base)
        q = count_queue(qdir) if qdir else 0
        now = time.monotonic()
        if n >= expect and q == 0:
            break
        if (n, q) != last:
            last, last_change = (n, q), now
        if now - last_change > stall or now > deadline:
            break
        time.sleep(0.25)
    print(n)
    return 0


def cmd_rss(args):
    """rss PID: resident set size in KB now"""
    print(mem_kb(int(args[0]))[0])
    return 0


def fmt_rate(v):
    return "-" if v is None else f"{v:.1f}"


def cmd_report(args):
    raw = args[0]
    postfix_only = "--postfix-only" in args
    what = args[args.index("--what") + 1] if "--what" in args else "accepted"
    rows = []
    with open(raw) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            p = line.rstrip("\n").split("\t")
            rows.append({
                "server": p[0], "size": int(p[1]), "sessions": int(p[2]), "rep": int(p[3]),
                "rc": int(p[4]), "elapsed": float(p[5]), "count": int(p[6]), "rate": float(p[7]),
                "rss": int(p[8]), "pss": int(p[9]), "procs": int(p[10]), "delivered": int(p[11]),
            })
    cells = []
    for r in rows:
        key = (r["size"], r["sessions"])
        if key not in cells:
            cells.append(key)
    servers = ["postfix"] if postfix_only else ["sluice", "postfix"]

    def size_label(b):
        return f"{b // 1024} KB" if b % 1024 == 0 else f"{b} B"

    print("Individual runs (msg/s; FAIL = smtp-source exit status != 0, not counted):")
    for key in cells:
        for s in servers:
            rs = sorted((r for r in rows if (r["size"], r["sessions"]) == key and r["server"] == s),
                        key=lambda r: r["rep"])
            runs = "  ".join("FAIL(rc=%d)" % r["rc"] if r["rc"] else f"{r['rate']:.1f}" for r in rs)
            dl = " ".join(f"{r['delivered']}/{r['count']}" for r in rs)
            print(f"  {size_label(key[0]):>7} x{key[1]:<3} {s:<8} {runs}   [delivered {dl}]")
    print()

    hdr = ["size", "sessions", "sluice msg/s", "postfix msg/s", "sluice/postfix",
           "sluice RSS MB", "postfix RSS MB", "postfix PSS MB", "postfix procs"]
    table = []
    for key in cells:
        med, mem = {}, {}
        notes = []
        for s in servers:
            rs = [r for r in rows if (r["size"], r["sessions"]) == key and r["server"] == s]
            ok = [r["rate"] for r in rs if r["rc"] == 0]
            med[s] = statistics.median(ok) if ok else None
            fails = len(rs) - len(ok)
            if fails:
                notes.append(f"{s}: {fails} failed")
            short = [r for r in rs if r["rc"] == 0 and r["delivered"] < r["count"]]
            if short:
                notes.append(f"{s}: {len(short)} run(s) not fully delivered")
            mem[s] = (max((r["rss"] for r in rs), default=0), max((r["pss"] for r in rs), default=0),
                      max((r["procs"] for r in rs), default=0))
        sl, pf = med.get("sluice"), med.get("postfix")
        ratio = f"{sl / pf:.2f}" if sl and pf else "-"
        row = [size_label(key[0]), str(key[1]), fmt_rate(sl), fmt_rate(pf), ratio,
               f"{mem['sluice'][0] / 1024:.1f}" if "sluice" in mem else "-",
               f"{mem['postfix'][0] / 1024:.1f}", f"{mem['postfix'][1] / 1024:.1f}",
               str(mem["postfix"][2])]
        table.append((row, notes))
    widths = [max(len(h), *(len(r[0][i]) for r in table)) if table else len(h)
              for i, h in enumerate(hdr)]
    print(f"Median msg/s {what} (peak memory sampled every 0.2 s during the runs):")
    print("  ".join(h.rjust(w) for h, w in zip(hdr, widths)))
    print("  ".join("-" * w for w in widths))
    for row, notes in table:
        line = "  ".join(c.rjust(w) for c, w in zip(row, widths))
        if notes:
            line += "   (" + "; ".join(notes) + ")"
        print(line)
    return 0


COMMANDS = {
    "freeport": cmd_freeport, "waitport": cmd_waitport, "pidwait": cmd_pidwait,
    "fsync": cmd_fsync, "run": cmd_run, "count": cmd_count, "drain": cmd_drain,
    "report": cmd_report, "sinkcount": cmd_sinkcount, "rss": cmd_rss,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
    except KeyboardInterrupt:
        sys.exit(130)
