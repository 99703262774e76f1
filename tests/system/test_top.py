"""sluicectl top (issue 7, part 5): one plain-text frame (-n 1, or stdout
not a terminal) against a running sluiced after known traffic: totals and
rates of sessions, messages accepted / rejected, deliveries by result,
the queue by state with the oldest age, the busiest next hop (a
Downstream that holds its reply to the message, so the connection is
still open while top looks) and the filters by name. Also: the control
socket's metrics command, the same gauges over HTTP, and top with no
server (at start and when it goes away)."""
import os
import re
import socket
import subprocess
import time
import urllib.request

from conftest import SLUICED
from downstream import Downstream
from helpers import message, submit_message, wait_for
from procs import free_port

SLUICECTL = os.path.join(os.path.dirname(SLUICED), "sluicectl")
HOLD = 4.0          # the downstream holds its reply to the message this long

LUA = """
local f = {}
function f.rcpt(ctx)
  if ctx.rcpt == "blocked@example.test" then
    return reject(550, "5.7.1", "not this one")
  end
  return accept()
end
return f
"""


def top(srv, *args, sock=None, timeout=30):
    sock = sock or os.path.join(srv.spool, "control")
    return subprocess.run([SLUICECTL, "top", *args, "-s", sock],
                          capture_output=True, text=True, timeout=timeout)


def send(srv, rcpt, sender="sender@remote.test"):
    return submit_message(srv, sender, [rcpt], message() + ".\r\n")


def refused(srv, rcpt):
    c = srv.raw()
    try:
        c.cmd("EHLO client.example.test")
        c.cmd("MAIL FROM:<sender@remote.test>")
        code, _ = c.cmd(f"RCPT TO:<{rcpt}>")
        c.cmd("QUIT")
        return code
    finally:
        c.close()


def field(out, word):
    """'WORD RATE/s (TOTAL)' -> (rate, total)."""
    m = re.search(rf"\b{word} (\d+\.\d\d)/s \((\d+)\)", out)
    assert m, f"no '{word}' in:\n{out}"
    return float(m.group(1)), int(m.group(2))


def queue_state(out, state):
    """'STATE N' or 'STATE N (oldest AGE)' of the queue line."""
    [line] = [l for l in out.splitlines() if l.startswith("queue")]
    m = re.search(rf"\b{state} (\d+)(?: \(oldest (\w+)\))?", line)
    assert m, line
    return int(m.group(1)), m.group(2)


def test_top_one_frame_after_traffic(make_server, tmp_path):
    script = tmp_path / "policy.lua"
    script.write_text(LUA)
    mport = free_port()
    with Downstream(slow={"EOM": HOLD}) as ds:
        with Downstream() as gone:
            closed = gone.port
        srv = make_server({
            "trusted_networks": ["127.0.0.0/8"],
            "routes": {"remote.test": f"smtp:[127.0.0.1]:{ds.port}",
                       "unreachable.test": f"smtp:[127.0.0.1]:{closed}"},
            "retry": {"first": "1h", "max_interval": "1h"},
            "pipeline": [{"lua": str(script), "name": "policy"}],
            "metrics": {"address": "127.0.0.1", "port": mport}})
        for _ in range(3):
            send(srv, "alice@example.test")
        assert refused(srv, "blocked@example.test") == 550
        assert refused(srv, "nobody@example.test") == 550
        deferred = send(srv, "x@unreachable.test")
        wait_for(lambda: f"qid={deferred} event=deferred" in srv.log(),
                 timeout=10)
        t_sent = time.monotonic()
        send(srv, "bob@remote.test")
        send(srv, "carol@remote.test")
        wait_for(lambda: len(ds.sessions) >= 1 and srv.log().count(
            "event=delivery") >= 4, timeout=5)
        time.sleep(1.1)                 # the deferred one is 1 s old
        r = top(srv, "-n", "1", "-i", "0.5")
        busy = time.monotonic() - t_sent < HOLD
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics",
                                    timeout=5) as h:
            http = h.read().decode()
        ds.wait_messages(2, timeout=15)
    assert r.returncode == 0, r
    out = r.stdout
    assert "\x1b[" not in out                       # plain text: not a tty
    assert out.startswith("sluice top ") and "over 0.5s" in out, out
    # totals since start; nothing happened in the 0.5 s window
    assert field(out, "accepted") == (0.0, 6)
    assert field(out, "rejected") == (0.0, 2)
    assert field(out, "tempfailed") == (0.0, 0)
    assert field(out, "sent")[1] == 3
    assert field(out, "deferred")[1] == 1
    assert field(out, "bounced")[1] == 0
    # one probe of wait_ready and 6 sessions of the test, none open now
    assert re.search(r"open 0  new 0\.00/s \((\d+)\)", out), out
    n, age = queue_state(out, "deferred")
    assert n == 1 and re.fullmatch(r"[1-9]\d*s", age), (n, age)
    assert queue_state(out, "hold") == (0, None)
    assert queue_state(out, "quarantine") == (0, None)
    if busy:        # the remote messages are still in flight
        assert queue_state(out, "active")[0] == 2
        dest = f"smtp:[127.0.0.1]:{ds.port}"
        [row] = [l for l in out.splitlines() if l.startswith(dest)]
        conns, queued = map(int, row.split()[1:3])
        assert conns >= 1 and conns + queued >= 1, row
        assert re.search(r'^sluice_destination_connections\{destination='
                         rf'"smtp:\[127\.0\.0\.1\]:{ds.port}"\}} [1-9]',
                         http, re.M), http
    # the filter by its name: 3 + 2 + 2 RCPTs, and the unreachable one
    [frow] = [l for l in out.splitlines() if l.startswith("policy ")]
    cells = frow.split()
    assert cells[1] == "0.00" and cells[-1] == "all", frow   # idle window
    assert float(cells[2]) >= 0 and float(cells[3]) > 0, frow
    assert "sluice_queue_messages{state=\"deferred\"} 1" in http


def test_top_rates_over_the_interval(make_server):
    srv = make_server()
    p = subprocess.Popen([SLUICECTL, "top", "-n", "1", "-i", "2.5", "-s",
                          os.path.join(srv.spool, "control")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(0.5)                     # its first look is taken
    for _ in range(4):
        send(srv, "alice@example.test")
    wait_for(lambda: srv.log().count("event=delivery") >= 4, timeout=5)
    out, err = p.communicate(timeout=15)
    assert p.returncode == 0, err
    dt = float(re.search(r"over (\d+\.\d)s", out).group(1))
    rate, total = field(out, "accepted")
    assert total == 4
    assert abs(rate * dt - 4) < 0.2, (rate, dt, out)
    rate, total = field(out, "sent")
    assert total == 4 and abs(rate * dt - 4) < 0.2, out
    rate, _ = field(out, "new")          # sessions
    assert abs(rate * dt - 4) < 0.2, out


def test_top_several_frames_when_not_a_tty(server):
    r = top(server, "-n", "3", "-i", "0.2")
    assert r.returncode == 0, r
    assert r.stdout.count("sluice top ") == 3
    assert r.stdout.count("\n\nsluice top ") == 2


def test_top_without_a_server(tmp_path):
    sock = str(tmp_path / "no-such-socket")
    r = subprocess.run([SLUICECTL, "top", "-n", "1", "-s", sock],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert r.stdout == ""
    assert "cannot reach sluiced" in r.stderr and sock in r.stderr, r


def test_top_when_the_server_goes_away(server):
    p = subprocess.Popen([SLUICECTL, "top", "-i", "0.2", "-s",
                          os.path.join(server.spool, "control")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        time.sleep(0.7)
        server.stop()
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 2
    assert "sluice top " in out                 # it ran until then
    assert "cannot reach sluiced" in err


def test_top_usage(server):
    for args in (["-i", "0"], ["-i", "x"], ["-n", "-1"], ["extra"]):
        r = top(server, *args)
        assert r.returncode == 2 and "usage: sluicectl top" in r.stderr, r


def test_metrics_control_command(server):
    """The raw request: an exposition, from the queue manager's own loop
    (no deadlock), not logged (top asks every second)."""
    for _ in range(3):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(os.path.join(server.spool, "control"))
            s.sendall(b"metrics\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        text = data.decode()
        assert text.startswith("ok\n# HELP "), text[:200]
        assert 'sluice_queue_messages{state="active"} 0' in text
        assert "# TYPE sluice_destination_connections gauge" in text
        assert "sluice_smtp_sessions_total" in text
    assert "command=metrics" not in server.log()
