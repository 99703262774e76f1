#!/usr/bin/python3
"""idle_sessions.py - memory cost of idle SMTP sessions in sluiced.

Starts build/sluiced on a free loopback port with its own spool, opens N
idle sessions (default 10000, each reads its 220 greeting), and prints the
server's resident memory before, with the sessions open, and the cost per
session. Every wait is bounded; the server is stopped by its PID.

    /usr/bin/python3 tests/bench/idle_sessions.py [N]
"""
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICED = os.environ.get("SLUICED", os.path.join(ROOT, "build", "sluiced"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, max(n + 100,
                       resource.getrlimit(resource.RLIMIT_NOFILE)[1])))
    tmp = tempfile.mkdtemp(prefix="sluice-idle.")
    port = free_port()
    conf = os.path.join(tmp, "sluiced.yaml")
    with open(conf, "w") as f:
        f.write(f"""hostname: mx.example.test
spool: {tmp}/spool
listeners:
  - {{name: mx, address: 127.0.0.1, port: {port}, role: mx}}
domains: {{local: [example.test]}}
mailboxes: {{maildir: "{tmp}/mail/%d/%u/Maildir", users: [a@example.test]}}
limits: {{sessions: {n + 10}, per_ip_sessions: {n + 10}}}
""")
    log = open(os.path.join(tmp, "sluiced.log"), "w")
    proc = subprocess.Popen([SLUICED, "-c", conf], stderr=log)
    socks = []
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("sluiced did not start")
                time.sleep(0.05)
        time.sleep(0.3)
        before = rss_kb(proc.pid)
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), 10)
            socks.append(s)
        for s in socks:
            s.settimeout(10)
            if not s.recv(512).startswith(b"220"):
                raise SystemExit("a session was not greeted")
        time.sleep(0.5)
        after = rss_kb(proc.pid)
        print(f"idle sessions: {n}")
        print(f"sluiced RSS before: {before / 1024:.1f} MB, with the "
              f"sessions: {after / 1024:.1f} MB, per session: "
              f"{(after - before) * 1024 / n:.0f} bytes")
    finally:
        for s in socks:
            s.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        subprocess.run(["rm", "-rf", tmp], check=False)


if __name__ == "__main__":
    main()
