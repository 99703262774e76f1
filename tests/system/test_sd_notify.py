"""sd_notify: sluiced speaks the systemd notification protocol itself.
The test plays systemd: a unix datagram socket named in NOTIFY_SOCKET."""
import os
import signal
import socket
import time

import pytest

import helpers


def recv_state(sock, want, timeout=5.0):
    """Datagrams until one holds the line `want`; all of them, in order."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = sock.recv(4096).decode()
        except socket.timeout:
            break
        got.append(d)
        if want in d.split("\n"):
            return got
    raise AssertionError(f"no {want!r} in {got!r}")


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request, tmp_path, monkeypatch):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        name = str(tmp_path / "notify.sock")
        s.bind(name)
    else:
        name = "@sluice-test-%d-%d" % (os.getpid(), time.monotonic_ns())
        s.bind("\0" + name[1:])
    monkeypatch.setenv("NOTIFY_SOCKET", name)
    yield s
    s.close()


def test_ready_reload_stopping(make_server, notify_socket):
    srv = make_server(start=False)
    srv.start(wait=False)
    recv_state(notify_socket, "READY=1")
    # ready means ready: the listener accepts, the queue is recovered
    with srv.raw() as c:
        assert c.cmd("QUIT")[0] == 221
    assert "event=ready" in srv.run_log()

    os.kill(srv.proc.pid, signal.SIGHUP)
    got = recv_state(notify_socket, "READY=1")
    assert got[0].startswith("RELOADING=1\nMONOTONIC_USEC=")
    helpers.wait_for(lambda: "event=reload status=ok" in srv.run_log())

    os.kill(srv.proc.pid, signal.SIGTERM)
    srv.stopped = True
    recv_state(notify_socket, "STOPPING=1")
    srv.proc.wait(10)
    assert srv.proc.returncode == 0


def test_refused_reload_still_ready(make_server, notify_socket):
    srv = make_server(start=False)
    srv.start(wait=False)
    recv_state(notify_socket, "READY=1")
    with open(srv.cfg_path, "a") as f:
        f.write("no_such_key: 1\n")
    os.kill(srv.proc.pid, signal.SIGHUP)
    got = recv_state(notify_socket, "READY=1")
    assert "last reload refused" in got[-1]
    srv.write_config()


def test_no_notify_socket_no_trouble(make_server, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    srv = make_server()
    assert "sd-notify" not in srv.run_log()


def test_unusable_notify_socket_is_logged(make_server, monkeypatch, tmp_path):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    srv = make_server()
    assert "cannot reach NOTIFY_SOCKET" in srv.run_log()
