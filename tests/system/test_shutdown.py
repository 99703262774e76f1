"""Graceful SIGTERM: listeners close at once, idle sessions get 421, a
transaction in progress may finish until shutdown_timeout, then 421; exit
0 and a consistent queue."""
import os
import signal
import socket
import time

import pytest

import helpers


def sigterm(srv):
    os.kill(srv.proc.pid, signal.SIGTERM)
    srv.stopped = True
    helpers.wait_for(lambda: "event=stopping" in srv.run_log(),
                     msg="event=stopping")


def wait_exit(srv, timeout):
    srv.proc.wait(timeout)
    return srv.proc.returncode


def refused(srv):
    try:
        with socket.create_connection((srv.host, srv.port), timeout=2) as s:
            s.settimeout(2)
            return s.recv(512) == b""
    except (ConnectionRefusedError, ConnectionResetError):
        return True


def test_transaction_finishes_after_sigterm(make_server):
    srv = make_server({"shutdown_timeout": "20s"})
    idle = srv.raw()
    c = srv.raw()
    helpers.ehlo(c)
    helpers.start_tx(c, rcpts=("alice@example.test",))
    code, _ = c.cmd("DATA")
    assert code == 354
    c.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
    t0 = time.monotonic()
    sigterm(srv)
    # the idle session is told at once; new connections are refused
    code, text = idle.reply(timeout=5)
    assert code == 421 and "4.3.2" in text
    assert idle.closed()
    assert refused(srv)
    # the transaction goes on and gets its 250 after the fsync
    time.sleep(0.5)
    c.send(b"second half\r\n.\r\n")
    code, text = c.reply(timeout=5)
    assert code == 250, text
    qid = helpers.queued_id((code, text))
    # then the session is ended too, well before the deadline
    code, text = c.reply(timeout=5)
    assert code == 421 and "4.3.2" in text
    assert wait_exit(srv, 10) == 0
    assert time.monotonic() - t0 < 10
    # nothing half-written; the message is delivered or still queued
    assert srv.partial_files() == []
    srv.start()
    [msg] = srv.wait_mail("alice")
    assert b"first half\nsecond half" in msg
    assert qid in msg.decode()


def test_deadline_ends_a_stalled_transaction(make_server):
    srv = make_server({"shutdown_timeout": "1s"})
    c = srv.raw()
    helpers.ehlo(c)
    helpers.start_tx(c, rcpts=("alice@example.test",))
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: never finished\r\n\r\npartial\r\n")
    t0 = time.monotonic()
    sigterm(srv)
    code, text = c.reply(timeout=5)
    took = time.monotonic() - t0
    assert code == 421 and "4.3.2" in text
    assert 0.8 <= took < 4, took
    assert wait_exit(srv, 10) == 0
    assert "event=shutdown-deadline sessions=1" in srv.run_log()
    assert srv.partial_files() == [] and srv.queued_ids() == []
    srv.start()
    time.sleep(0.5)
    assert srv.maildir_files("alice") == []


def test_session_after_rset_is_ended_by_the_sweep(make_server):
    srv = make_server({"shutdown_timeout": "20s"})
    c = srv.raw()
    helpers.ehlo(c)
    helpers.start_tx(c, rcpts=("alice@example.test",))
    t0 = time.monotonic()
    sigterm(srv)
    assert c.pending(timeout=0.5) == b""     # in a transaction: spared
    assert c.cmd("RSET")[0] == 250
    code, text = c.reply(timeout=5)
    assert code == 421, text
    assert wait_exit(srv, 10) == 0
    assert time.monotonic() - t0 < 5


def test_zero_timeout_is_immediate(make_server):
    srv = make_server({"shutdown_timeout": 0})
    c = srv.raw()
    helpers.ehlo(c)
    helpers.start_tx(c, rcpts=("alice@example.test",))
    sigterm(srv)
    code, _ = c.reply(timeout=5)
    assert code == 421
    assert wait_exit(srv, 10) == 0


def test_bad_shutdown_timeout_refused(make_server, tmp_path):
    import subprocess
    from conftest import SLUICED
    srv = make_server({"shutdown_timeout": "2h"}, start=False)
    r = subprocess.run([SLUICED, "-t", "-c", srv.cfg_path],
                       capture_output=True, timeout=10)
    assert r.returncode == 1
    assert b"shutdown_timeout" in r.stderr and b"out of range" in r.stderr


def test_delivery_in_flight_at_the_stop_is_recorded_once(make_server,
                                                          tmp_path):
    """A message already in the Maildir whose attempt is still running (a
    'delivered' filter takes 1.5 s) when SIGTERM comes: the server waits
    for the attempt and records the delivery before it exits, so the
    restarted server does not deliver the message a second time."""
    lua = tmp_path / "slow_delivered.lua"
    lua.write_text("return { delivered = function(ctx) sleep(1.5) end }\n")
    srv = make_server({"shutdown_timeout": "20s",
                       "pipeline": [{"lua": str(lua)}]})
    with srv.smtp() as c:
        c.ehlo("client.example.test")
        assert c.mail("sender@remote.test")[0] == 250
        assert c.rcpt("alice@example.test")[0] == 250
        helpers.queued_id(c.data(b"Subject: in flight\r\n\r\nbody\r\n"))
    srv.wait_mail("alice")                   # delivered, filter running
    sigterm(srv)
    assert wait_exit(srv, 15) == 0
    assert "event=removed" in srv.run_log()
    srv.start()
    time.sleep(1)                            # time to deliver it again
    assert len(srv.read_mail("alice")) == 1
    assert srv.queued_ids() == []
