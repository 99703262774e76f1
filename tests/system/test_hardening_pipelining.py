"""RFC 2920 command order for clients outside trusted_networks
(smtp.pipelining_checks, smtp.greeting_delay): an early talker and a client
that pipelines past EHLO, HELO, DATA, VRFY, EXPN, NOOP or QUIT get
554 5.5.0 and are disconnected; RFC-conforming pipelining, BDAT chunks and
trusted clients are not affected."""
import time

import pytest

from helpers import check, queued_id, received_qid, RawClient

HDR = "From: <s@remote.test>\r\nTo: <alice@example.test>\r\nSubject: s\r\n\r\n"
TRUSTED = {"trusted_networks": ["127.0.0.0/8"]}


def refused_sync(srv, c, what):
    """The 554 5.5.0 reply, the close and the log line."""
    check(c.reply(), 554, "5.5.0")
    assert c.closed(3)
    log = srv.run_log()
    assert f'reason="{what}"' in log, log
    assert 'event=close reason="pipelining violation"' in log, log


def test_early_talker_refused(make_server):
    """A client that talks during the greeting delay gets 554 5.5.0 instead
    of the greeting, and is disconnected."""
    srv = make_server({"smtp": {"greeting_delay": "1s"}})
    c = RawClient(srv.host, srv.port, timeout=5)
    c.send(b"EHLO early.test\r\n")
    t0 = time.monotonic()
    refused_sync(srv, c, "input before the greeting")
    assert time.monotonic() - t0 >= 0.8     # at the end of the delay
    assert "event=reject client=127.0.0.1" in srv.run_log()


def test_patient_client_greeted_after_delay(make_server):
    """A client that waits gets the 220 after greeting_delay, and its mail
    goes through."""
    srv = make_server({"smtp": {"greeting_delay": "1s"}})
    t0 = time.monotonic()
    c = srv.raw()
    assert time.monotonic() - t0 >= 0.8
    check(c.cmd("EHLO patient.test"), 250)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    check(c.cmd("DATA"), 354)
    c.send(HDR + "patience\r\n.\r\n")
    qid = queued_id(c.reply())
    [data] = srv.wait_mail("alice")
    assert received_qid(data) == qid


def test_trusted_early_talker_served_at_once(make_server):
    """A trusted client is neither delayed nor refused for talking
    first."""
    srv = make_server(dict(TRUSTED, smtp={"greeting_delay": "2s"}))
    c = RawClient(srv.host, srv.port, timeout=5)
    t0 = time.monotonic()
    c.send(b"EHLO early.test\r\nMAIL FROM:<s@remote.test>\r\n")
    check(c.reply(), 220)
    assert time.monotonic() - t0 < 1.5
    check(c.reply(), 250)
    check(c.reply(), 250, "2.1.0")


# a command that must end its group, and what the client sent after it
# (after EHLO: the command, then a MAIL glued to it in the same write)
AFTER = [
    ("EHLO c.test", None),
    ("HELO c.test", None),
    ("NOOP", "EHLO"),
    ("VRFY alice", "EHLO"),
    ("EXPN staff", "EHLO"),
    ("QUIT", "EHLO"),
]


@pytest.mark.parametrize("cmd,before", AFTER, ids=[a[0].split()[0]
                                                  for a in AFTER])
def test_input_after_group_end_refused(server, cmd, before):
    """More input glued to a command that ends a pipelined group: 554 5.5.0
    and close; the glued command is never run."""
    c = server.raw()
    if before:
        check(c.cmd("EHLO c.test"), 250)
    c.send(cmd + "\r\nMAIL FROM:<s@remote.test>\r\n")
    verb = cmd.split()[0]
    refused_sync(server, c, f"input after {verb} before its reply")
    assert "event=mail" not in server.run_log()


def test_text_after_data_refused(server):
    """Message text sent with DATA, before the 354, is refused and nothing
    is queued -- whatever DATA's answer would have been, the text is never
    read as commands or as a message."""
    c = server.raw()
    check(c.cmd("EHLO c.test"), 250)
    c.send("MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\n"
           "DATA\r\n" + HDR + "RSET\r\nMAIL FROM:<x@remote.test>\r\n"
           ".\r\n")
    check(c.reply(), 250, "2.1.0")
    check(c.reply(), 250, "2.1.5")
    refused_sync(server, c, "input after DATA before its reply")
    time.sleep(0.3)
    assert server.queued_ids() == [] and server.partial_files() == []


def test_refused_data_text_not_read_as_commands(server):
    """The classic desynchronisation: RCPT refused, so DATA is refused too;
    the text that followed DATA in the same write must not run as SMTP
    commands."""
    c = server.raw()
    check(c.cmd("EHLO c.test"), 250)
    c.send("MAIL FROM:<s@remote.test>\r\nRCPT TO:<nobody@example.test>\r\n"
           "DATA\r\nMAIL FROM:<evil@remote.test>\r\n"
           "RCPT TO:<bob@example.test>\r\n")
    check(c.reply(), 250, "2.1.0")
    check(c.reply(), 550, "5.1.1")
    refused_sync(server, c, "input after DATA before its reply")
    assert "evil@remote.test" not in server.run_log()


def test_rfc2920_pipelining_accepted(server):
    """What RFC 2920 allows goes through with the checks on: MAIL, RCPTs and
    DATA in one group; after the end of data the next transaction's MAIL,
    RCPT and DATA; BDAT chunks with the next commands glued to them."""
    c = server.raw()
    check(c.cmd("EHLO c.test"), 250)
    c.send("MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\n"
           "RCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
           "DATA\r\n")
    check(c.reply(), 250, "2.1.0")
    check(c.reply(), 250, "2.1.5")
    check(c.reply(), 550, "5.1.1")
    check(c.reply(), 250, "2.1.5")
    check(c.reply(), 354)
    c.send(HDR + "one\r\n.\r\nMAIL FROM:<s@remote.test>\r\n"
           "RCPT TO:<alice@example.test>\r\nDATA\r\n")
    q1 = queued_id(c.reply())
    check(c.reply(), 250, "2.1.0")
    check(c.reply(), 250, "2.1.5")
    check(c.reply(), 354)
    c.send(HDR + "two\r\n.\r\n")
    q2 = queued_id(c.reply())
    body = (HDR + "three\r\n").encode()
    c.send(b"MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\n"
           b"BDAT 5\r\n" + body[:5] + b"BDAT %d LAST\r\n" % (len(body) - 5) +
           body[5:] + b"RSET\r\nQUIT\r\n")
    check(c.reply(), 250, "2.1.0")
    check(c.reply(), 250, "2.1.5")
    check(c.reply(), 250, "2.0.0")
    q3 = queued_id(c.reply())
    check(c.reply(), 250, "2.0.0")
    check(c.reply(), 221, "2.0.0")
    mails = server.wait_mail("alice", 3)
    assert sorted(received_qid(m) for m in mails) == sorted([q1, q2, q3])
    assert "pipelining violation" not in server.run_log()


def test_trusted_client_exempt(make_server):
    """A client in trusted_networks may pipeline past EHLO."""
    srv = make_server(TRUSTED)
    c = srv.raw()
    c.send("EHLO c.test\r\nMAIL FROM:<s@remote.test>\r\nNOOP\r\nQUIT\r\n")
    check(c.reply(), 250)
    check(c.reply(), 250, "2.1.0")
    check(c.reply(), 250, "2.0.0")
    check(c.reply(), 221, "2.0.0")


def test_checks_off(make_server):
    """smtp.pipelining_checks: false serves any client as before."""
    srv = make_server({"smtp": {"pipelining_checks": False,
                                "greeting_delay": "1s"}})
    c = RawClient(srv.host, srv.port, timeout=5)
    c.send("EHLO c.test\r\nMAIL FROM:<s@remote.test>\r\nQUIT\r\n")
    check(c.reply(), 220)
    check(c.reply(), 250)
    check(c.reply(), 250, "2.1.0")
    check(c.reply(), 221, "2.0.0")
