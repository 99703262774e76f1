"""Running out of file descriptors at accept(): sluiced is started with a
small RLIMIT_NOFILE and more connections are opened than it can hold. The
clients it cannot take get "421 4.3.2 ... try again later" (the spare
descriptor of accept_reserve.c), the server neither dies nor spins, the
refusals are logged without flooding the log, and once the connections
are closed new sessions work as before."""
import os
import resource
import socket
import time

from helpers import received_qid, submit_message

NOFILE = 64


def first_line(sock):
    """The first reply line the server sends on a fresh connection."""
    data = b""
    while b"\r\n" not in data:
        d = sock.recv(512)
        if not d:
            break
        data += d
    return data.decode(errors="replace")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settled_fds(srv, timeout=3.0):
    """Descriptors in use once start-up is over (threads that start
    after the port opens -- queue recovery, pickup -- may still hold
    some): one session first, then the count once it stays the same
    for 0.3 s (bounded)."""
    with srv.smtp() as c:
        c.ehlo("client.example.test")
    deadline = time.monotonic() + timeout
    n = open_fds(srv.pid)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        m = open_fds(srv.pid)
        if m == n:
            break
        n = m
    return n


def low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def connect(srv):
    s = socket.create_connection((srv.host, srv.port), timeout=5)
    s.settimeout(5)
    return s


def test_fd_exhaustion_answers_421_and_recovers(make_server):
    srv = make_server({"limits": {"sessions": 1000, "per_ip_sessions": 1000}},
                      start=False)
    srv.preexec_fn = low_nofile
    srv.start()
    base = settled_fds(srv)
    assert base < NOFILE - 10, f"{base} descriptors open at start"
    socks, greeted, refused = [], 0, []
    try:
        # more connections than descriptors are left
        for _ in range(NOFILE - base + 10):
            s = connect(srv)
            socks.append(s)
            line = first_line(s)
            if line.startswith("220 "):
                greeted += 1
            else:
                refused.append(line)
        assert greeted >= NOFILE - base - 5, (greeted, base)
        assert len(refused) >= 10, refused
        for line in refused:
            assert line.startswith("421 4.3.2 "), line
            assert "try again later" in line, line
        # still exhausted: more clients are refused at once, and the
        # server does not spin meanwhile
        cpu0 = cpu_seconds(srv.pid)
        t0 = time.monotonic()
        for _ in range(10):
            with connect(srv) as s:
                assert first_line(s).startswith("421 4.3.2 ")
            time.sleep(0.1)
        elapsed = time.monotonic() - t0
        assert cpu_seconds(srv.pid) - cpu0 < 0.5 * elapsed, "spinning"
        assert srv.alive()
    finally:
        for s in socks:
            s.close()
    # descriptors are back: a whole session works again
    deadline = time.monotonic() + 5
    while open_fds(srv.pid) > base + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    qid = submit_message(srv, "s@remote.test", ["alice@example.test"],
                         "Subject: back\r\n\r\nfine\r\n.\r\n")
    [data] = srv.wait_mail("alice")
    assert received_qid(data) == qid
    log = srv.run_log()
    n = log.count('reason="out of file descriptors"')
    assert 1 <= n <= 2, log[-3000:]     # logged, rate-limited
