"""Slow clients (slowloris): a command line trickled a byte at a time ends
at limits.command_timeout; message content ends at limits.data_timeout or
when it comes slower than limits.min_data_rate after
limits.data_rate_grace. Each gets 421 4.4.2 and the close, the partial
message is dropped (nothing queued) and the abort is logged with the queue
ID. The limits are made small here so each test takes a few seconds."""
import re
import time

from helpers import check, queued_id, received_qid

HDR = "From: <s@remote.test>\r\nTo: <alice@example.test>\r\nSubject: s\r\n\r\n"


def trickle(c, data, interval, limit):
    """Send data `step` bytes every `interval` s until the server answers
    or closes; returns (what it said, seconds taken). Bounded by limit."""
    t0 = time.monotonic()
    said = b""
    i = 0
    while time.monotonic() - t0 < limit:
        if i < len(data):
            try:
                c.send(data[i:i + 1])
            except OSError:
                break
            i += 1
        said += c.pending(interval)
        if said.endswith(b"\r\n") or c.eof:
            break
    return said.decode(errors="replace"), time.monotonic() - t0


def open_tx(srv):
    """A session with a transaction open, ready for DATA or BDAT."""
    c = srv.raw()
    check(c.cmd("EHLO slow.test"), 250)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250)
    check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    return c


def assert_aborted(srv, c, said, reason):
    assert re.match(r"421 4\.4\.2 ", said), said
    assert reason in said, said
    assert c.closed(3)
    m = re.search(r"qid=(\S+) session=\S+ event=abort client=127.0.0.1 "
                  r"reason=\"" + reason, srv.run_log())
    assert m, srv.run_log()
    time.sleep(0.3)
    assert srv.queued_ids() == [] and srv.partial_files() == []
    return m.group(1)


def test_trickled_command_line_times_out(make_server):
    """One byte every 0.3 s into a command line keeps the idle timer happy,
    but the line must be complete within command_timeout."""
    srv = make_server({"limits": {"command_timeout": "2s",
                                  "idle_timeout": "30s"}})
    c = srv.raw()
    check(c.cmd("EHLO slow.test"), 250)
    said, took = trickle(c, b"MAIL FROM:<slow@remote.test> " + b"x" * 400,
                         0.3, 8)
    assert said.startswith("421 4.4.2 "), said
    assert "command timeout" in said, said
    assert 1.8 <= took < 4, took
    assert c.closed(3)
    assert 'event=close reason="command timeout"' in srv.run_log()


def test_trickled_lines_each_bounded(make_server):
    """Several lines trickled one after the other: each gets its own
    command_timeout; a line finished in time is served."""
    srv = make_server({"limits": {"command_timeout": "2s",
                                  "idle_timeout": "30s"}})
    c = srv.raw()
    said, took = trickle(c, b"NOOP\r\n", 0.2, 5)
    assert said.startswith("250 "), said
    said, took = trickle(c, b"EHLO " + b"s" * 60 + b"\r\n", 0.1, 8)
    assert said.startswith("421 4.4.2 "), said
    assert took < 3.5, took


def test_slow_data_rate(make_server):
    """DATA content at ~40 bytes/s against min_data_rate 1K after a 1 s
    grace: 421, nothing queued, abort logged with the queue ID."""
    srv = make_server({"limits": {"min_data_rate": "1K",
                                  "data_rate_grace": "1s",
                                  "data_timeout": "60s"}})
    c = open_tx(srv)
    check(c.cmd("DATA"), 354)
    c.send(HDR)
    said, took = trickle(c, b"y" * 10000, 0.025, 8)
    assert took < 4, took
    qid = assert_aborted(srv, c, said, "message data rate too low")
    assert f"qid={qid} session=" in srv.run_log()


def test_data_timeout(make_server):
    """The whole content must be in within data_timeout, whatever the
    rate."""
    srv = make_server({"limits": {"data_timeout": "2s",
                                  "min_data_rate": 0}})
    c = open_tx(srv)
    check(c.cmd("DATA"), 354)
    said, took = trickle(c, (HDR + "z" * 1000).encode(), 0.05, 8)
    assert 1.8 <= took < 4, took
    assert_aborted(srv, c, said, "message content timeout exceeded")


def test_bdat_data_timeout(make_server):
    """BDAT content is bounded the same way, across chunks."""
    srv = make_server({"limits": {"data_timeout": "2s",
                                  "min_data_rate": 0}})
    c = open_tx(srv)
    body = HDR.encode() + b"b" * 100
    c.send(b"BDAT %d\r\n" % len(body) + body)
    check(c.reply(), 250, "2.0.0")
    c.send(b"BDAT 1000 LAST\r\n")
    said, took = trickle(c, b"q" * 1000, 0.05, 8)
    assert took < 3, took
    assert_aborted(srv, c, said, "message content timeout exceeded")


def test_fast_client_unaffected(make_server):
    """A message that comes at a normal pace goes through with tight
    limits, and the next transaction has its own clock."""
    srv = make_server({"limits": {"data_timeout": "2s",
                                  "min_data_rate": "1K",
                                  "data_rate_grace": "1s"}})
    c = srv.raw()
    check(c.cmd("EHLO fast.test"), 250)
    qids = []
    for i in range(2):
        check(c.cmd("MAIL FROM:<s@remote.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(HDR + ("line of text\r\n" * 5000) + ".\r\n")
        qids.append(queued_id(c.reply()))
        time.sleep(1.5)     # idle between messages is not content time
    mails = srv.wait_mail("alice", 2)
    assert sorted(received_qid(m) for m in mails) == sorted(qids)
    assert "event=abort" not in srv.run_log()
