"""Delivery log lines in Postfix's shape (issue 7, part 2), a log file
reopened on SIGUSR1, and syslog with facility mail.

Every event=delivery line is parsed field by field: the queue ID first,
to=<...>, relay=, delay=, delays=a/b/c/d (four non-negative numbers that
add up to delay=), dsn=, status=sent|deferred|bounced, reply= (the remote
server's reply, when one decided) and text=. The SMTP cases go to a
Downstream (tests/system/downstream.py) that is slow on purpose at the
greeting and after the message, so that the connection-setup (c) and
transmission (d) parts of delays= have something to measure.
"""
import ctypes
import os
import re
import signal
import socket
import subprocess

import pytest

from conftest import SLUICED
from downstream import Downstream
from helpers import (LOG_LINE_RE, log_events, message, parse_kv,
                     submit_message, wait_for, wait_log_event)

SENDER = "sender@remote.test"
REMOTE = "bob@remote.test"
GREET_DELAY = 0.4       # the downstream waits this long before its 220
EOM_DELAY = 0.4         # ... and before its reply to the message
DELAYS_RE = re.compile(r"^(\d+\.\d\d)/(\d+\.\d\d)/(\d+\.\d\d)/(\d+\.\d\d)$")


def relay_server(make_server, ds, **extra):
    cfg = {"trusted_networks": ["127.0.0.0/8"],     # may relay
           "routes": {'"*"': f"smtp:[127.0.0.1]:{ds.port}"},
           "retry": {"first": "1h", "max_interval": "1h"},
           "delivery": {"connection_cache": "0s"}}
    cfg.update(extra)
    return make_server(cfg)


def send(srv, rcpt):
    return submit_message(srv, SENDER, [rcpt],
                          message(subject="log test") + ".\r\n")


def delivery_line(srv, qid, timeout=10):
    """The raw event=delivery line of qid and its fields (quotes kept)."""
    wait_log_event(srv, qid, "delivery", timeout=timeout)
    for line in srv.log_lines():
        m = LOG_LINE_RE.match(line)
        if m and f"qid={qid} event=delivery " in line:
            kv = parse_kv(m.group(4))
            assert kv is not None, f"not key=value: {line!r}"
            return m.group(4), kv
    raise AssertionError(f"no delivery line for {qid}")


def unquote(v):
    if not v.startswith('"'):
        return v
    return re.sub(r'\\(.)', r'\1', v[1:-1])


def check_shape(kv, qid, rcpt, status, dsn):
    """The common fields; returns {key: unquoted value} and the delays."""
    keys = [k for k, _ in kv]
    assert keys[:2] == ["qid", "event"], keys
    # Postfix's order: to, relay, delay, delays, dsn, status (reply)
    order = [k for k in keys if k in ("to", "relay", "delay", "delays",
                                      "dsn", "status", "reply")]
    want = ["to", "relay", "delay", "delays", "dsn", "status"]
    assert order[:6] == want, keys
    assert keys[-1] == "text", keys
    f = {k: unquote(v) for k, v in kv}
    assert f["qid"] == qid and f["event"] == "delivery"
    assert f["to"] == f"<{rcpt}>"
    assert f["status"] == status
    assert f["dsn"] == dsn
    m = DELAYS_RE.match(f["delays"])
    assert m, f["delays"]
    parts = [float(x) for x in m.groups()]
    assert all(p >= 0 for p in parts)
    delay = float(f["delay"])
    assert abs(sum(parts) - delay) <= 0.035, (parts, delay)
    return f, parts


def test_maildir_delivery_line(server):
    qid = send(server, "alice@example.test")
    raw, kv = delivery_line(server, qid)
    f, (a, b, c, d) = check_shape(kv, qid, "alice@example.test", "sent",
                                  "2.0.0")
    assert f["relay"] == "maildir"
    assert c == 0                       # no connection to set up
    assert "reply" not in f             # no remote server said anything
    assert f["text"].startswith("delivered to maildir as ")
    assert int(f["attempt_ms"]) >= 0


def test_smtp_sent_line_with_reply_and_delays(make_server):
    with Downstream(slow={"greeting": GREET_DELAY, "EOM": EOM_DELAY}) as ds:
        srv = relay_server(make_server, ds)
        qid = send(srv, REMOTE)
        raw, kv = delivery_line(srv, qid)
    f, (a, b, c, d) = check_shape(kv, qid, REMOTE, "sent", "2.0.0")
    # Postfix's relay=host[address]:port
    assert f["relay"] == f"127.0.0.1[127.0.0.1]:{ds.port}"
    assert re.fullmatch(r"250 2\.0\.0 Ok: queued as \w+", f["reply"]), f
    # Postfix renders it "status=sent (250 2.0.0 ...)": here the same
    # reply, in its own key so the line stays key=value
    assert 'status=sent reply="250 2.0.0 ' in raw
    assert c >= GREET_DELAY - 0.05, (a, b, c, d)     # waited for the 220
    assert d >= EOM_DELAY - 0.05, (a, b, c, d)       # waited after the dot
    assert d < EOM_DELAY + 1 and c < GREET_DELAY + 1
    assert "downstream.test" in f["text"] or "127.0.0.1" in f["text"]


def test_smtp_deferred_line(make_server):
    later = "451 4.3.0 try again later"
    with Downstream(rcpt_replies={REMOTE: later}) as ds:
        srv = relay_server(make_server, ds)
        qid = send(srv, REMOTE)
        raw, kv = delivery_line(srv, qid)
    f, _ = check_shape(kv, qid, REMOTE, "deferred", "4.3.0")
    assert f["reply"] == later
    assert "in reply to RCPT TO" in f["text"]
    assert f" status=deferred reply={kv_value(kv, 'reply')} " in raw


def test_smtp_bounced_line(make_server):
    no = "554 5.7.1 rejected for policy reasons"
    with Downstream(data_reply=no) as ds:
        srv = relay_server(make_server, ds)
        qid = send(srv, REMOTE)
        raw, kv = delivery_line(srv, qid)
    f, (a, b, c, d) = check_shape(kv, qid, REMOTE, "bounced", "5.7.1")
    assert f["reply"] == no
    assert "status=bounced" in raw


def test_unreachable_next_hop_has_no_reply(make_server):
    """Refused connections: deferred, no remote reply, the reason in text=;
    the failed setup counts as connection time (c)."""
    with Downstream() as ds:
        port = ds.port                  # closed once the block ends
    srv = make_server({"trusted_networks": ["127.0.0.0/8"],
                       "routes": {'"*"': f"smtp:[127.0.0.1]:{port}"},
                       "retry": {"first": "1h", "max_interval": "1h"}})
    qid = send(srv, REMOTE)
    raw, kv = delivery_line(srv, qid)
    f, _ = check_shape(kv, qid, REMOTE, "deferred", "4.4.1")
    assert "reply" not in f
    assert "Connection refused" in f["text"]


def kv_value(kv, key):
    return dict(kv)[key]


def test_readme_grep_recipe(make_server):
    """The README's recipes find the lines they promise."""
    with Downstream(rcpt_replies={"bad@remote.test": "550 5.1.1 no such "
                                  "user"}) as ds:
        srv = relay_server(make_server, ds)
        ok = send(srv, REMOTE)
        bad = send(srv, "bad@remote.test")
        wait_log_event(srv, ok, "delivery")
        wait_log_event(srv, bad, "delivery")
    log = os.path.join(srv.tmp, "copy.log")
    with open(log, "w") as f:
        f.write(srv.log())
    out = subprocess.run(["grep", "-E", "event=delivery .* status=bounced",
                          log], capture_output=True, text=True).stdout
    assert bad in out and ok not in out
    out = subprocess.run(
        ["sh", "-c", "grep 'event=delivery' \"$1\" | grep -o "
         "'^[^ ]* [^ ]* [^ ]* qid=[^ ]*\\|status=[a-z]*' | paste - -",
         "-", log], capture_output=True, text=True).stdout
    assert f"qid={ok}\tstatus=sent" in out
    assert f"qid={bad}\tstatus=bounced" in out


# -- the log file and SIGUSR1 ------------------------------------------------

def file_lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def test_log_file_reopened_on_sigusr1(make_server, tmp_path):
    os.mkdir(tmp_path / "logs")
    srv = make_server({"log": {"target": "file",
                               "file": "logs/sluice.log"}}, start=False)
    srv.start(wait=False)
    path = str(tmp_path / "logs" / "sluice.log")     # relative to its cwd
    wait_for(lambda: any("event=ready" in l for l in file_lines(path)),
             timeout=5, msg="event=ready in the log file")
    first = send(srv, "alice@example.test")
    wait_for(lambda: any(f"qid={first} event=delivery" in l
                         for l in file_lines(path)), timeout=10)
    # nothing goes to stderr any more
    assert "event=delivery" not in srv.log()

    os.rename(path, path + ".1")
    os.kill(srv.pid, signal.SIGUSR1)
    wait_for(lambda: any("event=log-reopen" in l for l in file_lines(path)),
             timeout=5, msg="the reopened file")
    second = send(srv, "alice@example.test")
    wait_for(lambda: any(f"qid={second} event=delivery" in l
                         for l in file_lines(path)), timeout=10)
    old, new = file_lines(path + ".1"), file_lines(path)
    assert any(f"qid={first} event=delivery" in l for l in old)
    assert not any(second in l for l in old)
    assert not any(first in l for l in new)
    for l in old + new:                 # whole lines only, same format
        assert LOG_LINE_RE.match(l), l
    # the file is appended to, never truncated: a restart keeps the lines
    assert not any("event=ready" in l for l in new)
    srv.stop()
    srv.start(wait=False)
    wait_for(lambda: sum("event=ready" in l for l in file_lines(path)) == 1
             and any(second in l for l in file_lines(path)), timeout=5)


def test_sigusr1_without_a_log_file(server):
    os.kill(server.pid, signal.SIGUSR1)
    wait_for(lambda: "signal=USR1 action=none" in server.log(), timeout=5)
    assert server.alive()


def test_log_file_errors(make_server, tmp_path):
    srv = make_server({"log": {"target": "file"}}, start=False)
    r = subprocess.run([SLUICED, "-t", "-c", srv.cfg_path],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "target file needs 'file: PATH'" in \
        r.stderr, r
    srv = make_server({"log": {"target": "file",
                               "file": "missing/dir/x.log"}}, start=False)
    r = subprocess.run([SLUICED, "-c", srv.cfg_path], capture_output=True,
                       text=True, cwd=srv.tmp, timeout=10)
    assert r.returncode == 1
    assert "cannot open the log file" in r.stderr and "missing/dir" in \
        r.stderr, r


def test_syslog_facility_accepted(make_server):
    for fac in ("mail", "local3"):
        srv = make_server({"log": {"target": "syslog", "facility": fac}},
                          start=False)
        r = subprocess.run([SLUICED, "-t", "-c", srv.cfg_path],
                           capture_output=True, text=True)
        assert r.returncode == 0, r
    srv = make_server({"log": {"target": "syslog", "facility": "mial"}},
                      start=False)
    r = subprocess.run([SLUICED, "-t", "-c", srv.cfg_path],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "mial" in r.stderr, r


# -- syslog, for real: /dev/log owned by the test ------------------------------

CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
DEV_FILES = ("null", "zero", "random", "urandom")


def private_dev(devdir):
    """A preexec_fn: in a mount namespace of its own, the child sees
    devdir (a copy of the device files it needs, and the test's log
    socket) as /dev. Nothing outside the child changes."""
    libc = ctypes.CDLL(None, use_errno=True)

    def run():
        ok = libc.unshare(CLONE_NEWNS) == 0 and libc.mount(
            b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0
        for name in DEV_FILES:
            ok = ok and libc.mount(f"/dev/{name}".encode(),
                                   f"{devdir}/{name}".encode(), None,
                                   MS_BIND, None) == 0
        ok = ok and libc.mount(devdir.encode(), b"/dev", None, MS_BIND,
                               None) == 0
        if not ok:
            os._exit(97)
    return run


def can_unshare():
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    return r.returncode == 0


@pytest.mark.skipif(not can_unshare(), reason="needs root and mount "
                    "namespaces to give sluiced a /dev/log of the test's")
def test_syslog_facility_mail(make_server, tmp_path):
    devdir = str(tmp_path / "dev")
    os.mkdir(devdir)
    for name in DEV_FILES:
        open(os.path.join(devdir, name), "w").close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.path.join(devdir, "log"))
    sock.settimeout(0.2)
    got = []

    def drain():
        try:
            while True:
                got.append(sock.recv(65536).decode("utf-8", "replace"))
        except socket.timeout:
            pass
        return got

    try:
        srv = make_server({"log": {"target": "syslog", "facility": "mail"}},
                          start=False)
        srv.preexec_fn = private_dev(devdir)
        srv.start(wait=False)
        wait_for(lambda: any("event=ready" in m for m in drain()),
                 timeout=5, msg="event=ready over syslog")
        qid = send(srv, "alice@example.test")
        wait_for(lambda: any(f"qid={qid} event=delivery" in m
                             for m in drain()), timeout=10)
    finally:
        sock.close()
    [line] = [m for m in got if f"qid={qid} event=delivery" in m]
    # <PRI> = facility mail (2) * 8 + info (6); then "sluiced[pid]: "
    assert line.startswith("<22>"), line
    assert f"sluiced[{srv.pid}]: info: qid={qid} event=delivery " in line
    assert "status=sent" in line and "delays=" in line
    assert "event=delivery" not in srv.log()       # not on stderr
