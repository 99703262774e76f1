"""Finer RFC 5321 / 1870 / 3030 / 3848 / 6531 points."""
import time

import pytest

from helpers import (check, ehlo, message, queued_id, received_qid,
                     received_with, send_data, split_headers, start_tx)


@pytest.mark.parametrize("helo,params,expect", [
    ("HELO", "", "SMTP"),
    ("EHLO", "", "ESMTP"),
    ("EHLO", " SMTPUTF8", "UTF8SMTP"),
])
def test_received_with_protocol(server, helo, params, expect):
    """The Received: header's 'with' names the protocol (RFC 3848/6531):
    SMTP after HELO, ESMTP after EHLO, UTF8SMTP with SMTPUTF8."""
    c = server.raw()
    check(c.cmd(f"{helo} client.example.test"), 250)
    check(c.cmd(f"MAIL FROM:<s@remote.test>{params}"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    qid = queued_id(send_data(c, message() + ".\r\n"))
    [data] = server.wait_mail("alice")
    assert received_with(data) == expect, split_headers(data)[0][:4]
    assert received_qid(data) == qid


def test_lowercase_commands(server):
    """Commands and keywords are case-insensitive."""
    c = server.raw()
    check(c.cmd("ehlo client.example.test"), 250)
    check(c.cmd("mail from:<s@remote.test> size=100 body=8bitmime"),
          250, "2.1.0")
    check(c.cmd("rcpt to:<alice@example.test> notify=never"), 250, "2.1.5")
    check(c.cmd("data"), 354)
    c.send(message() + ".\r\n")
    queued_id(c.reply())
    check(c.cmd("noop"), 250, "2.0.0")
    check(c.cmd("quit"), 221)


def test_bdat_last_keyword_case(server):
    """'bdat N last' in lower case works like BDAT N LAST."""
    c = server.raw()
    start_tx(c)
    body = message().encode()
    c.send(b"bdat %d last\r\n" % len(body) + body)
    queued_id(c.reply())


@pytest.mark.parametrize("sender", [
    '"john doe"@remote.test',
    "a!#$%&'*+-/=?^_`{|}~@remote.test",
    "user@[192.0.2.1]",
    "user@[IPv6:2001:db8::1]",
    "first.last@sub.remote-host.test",
])
def test_valid_sender_syntax(server, sender):
    """RFC 5321 mailbox forms (quoted local part, all atext specials,
    address literals) are accepted as senders and kept in Return-Path."""
    c = server.raw()
    ehlo(c)
    check(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    queued_id(send_data(c, message() + ".\r\n"))
    [data] = server.wait_mail("alice")
    line = data.split(b"\n")[0].decode()
    local, _, domain = sender.rpartition("@")
    # the local part is kept exactly; the domain may be case-folded
    assert line.startswith(f"Return-Path: <{local}@"), line
    assert line.lower() == f"Return-Path: <{local}@{domain}>".lower(), line


def test_quit_mid_transaction(server):
    """QUIT during a transaction gets 221 and nothing is queued."""
    c = server.raw()
    start_tx(c)
    check(c.cmd("QUIT"), 221, "2.0.0")
    assert c.closed(3)
    time.sleep(0.3)
    assert server.queued_ids() == [] and server.maildir_files("alice") == []


def test_size_exactly_at_limit(make_server):
    """RFC 1870: a message of exactly the advertised SIZE (CRLFs counted,
    stuffing dots not) is accepted; one octet more is refused 552 5.3.4."""
    srv = make_server({"limits": {"message_size": "10K"}})
    limit = 10240
    c = srv.raw()
    text = ehlo(c)
    assert "SIZE 10240" in text.split("\n")
    head = ("From: <s@remote.test>\r\nTo: <alice@example.test>\r\n"
            "Subject: size\r\n\r\n")
    # lines starting with '.' are stuffed on the wire, not counted
    filler = ".a" + "x" * 96 + "\r\n"                  # 100 octets
    n, rest = divmod(limit - len(head), len(filler))
    body = head + filler * n + "y" * (rest - 2) + "\r\n"
    assert len(body) == limit
    wire = body.replace("\r\n.", "\r\n..")
    check(c.cmd(f"MAIL FROM:<s@remote.test> SIZE={limit}"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    queued_id(send_data(c, wire + ".\r\n"))
    check(c.cmd(f"MAIL FROM:<s@remote.test> SIZE={limit + 1}"), 552, "5.3.4")
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    wire2 = wire[:-2] + "y\r\n"
    check(send_data(c, wire2 + ".\r\n"), 552, "5.3.4")
    [data] = srv.wait_mail("alice")
    _, stored = split_headers(data)
    assert stored.count(".a" + "x" * 96 + "\n") == n


@pytest.mark.parametrize("inject", [b"\n", b"\r"])
def test_no_header_injection_via_helo(make_server, inject):
    """A bare LF/CR inside the EHLO argument cannot inject a header into
    the Received: line (the command is refused, or the value sanitised).
    With the RFC 2920 checks on, a bare LF ending the EHLO line with more
    after it closes the session (test_hardening_pipelining.py); they are
    off here to test what reaches the message."""
    server = make_server({"smtp": {"pipelining_checks": False}})
    c = server.raw()
    c.send(b"EHLO evil.test" + inject + b"X-Injected: yes\r\n")
    code, text = c.reply()
    c.pending(0.5)          # an extra reply if the LF ended the EHLO line
    if code != 250:
        assert 500 <= code < 600, (code, text)
        ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    queued_id(send_data(c, message() + ".\r\n"))
    [data] = server.wait_mail("alice")
    headers, _ = split_headers(data)
    assert not any(h.startswith("X-Injected") for h in headers), headers
    assert b"\r" not in data


def test_bare_cr_in_command_not_a_terminator(server):
    """A bare CR does not end a command line: 'NOOP' <CR> 'QUIT' is one
    (bad) line, not a NOOP followed by a QUIT.  (A bare LF is tolerated as
    a command terminator by design, like Postfix's default.)"""
    c = server.raw()
    ehlo(c)
    c.send(b"NOOP\rQUIT\r\n")
    code, text = c.reply()
    assert code != 221, (code, text)
    assert c.pending(0.3) == b""
    check(c.cmd("NOOP"), 250, "2.0.0")


def test_bdat_huge_size_argument(server):
    """A BDAT size that cannot be honoured (overflowing number) is refused
    with a 5xx reply and the server stays up."""
    c = server.raw()
    start_tx(c)
    c.send(b"BDAT 99999999999999999999999999 LAST\r\n")
    code, text = c.reply()
    assert 500 <= code < 600, (code, text)


def test_rcpt_postmaster_domain_case(server):
    """Domain matching is case-insensitive for the local domain list."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<bob@EXAMPLE.test>"), 250, "2.1.5")
    queued_id(send_data(c, message() + ".\r\n"))
    server.wait_mail("bob")


@pytest.mark.parametrize("rcpt", ["<postmaster>", "<PostMaster>",
                                  "<postmaster@example.test>",
                                  "<POSTMASTER@Example.Test>"])
def test_postmaster_is_accepted(make_server, rcpt):
    """RFC 5321 4.1.1.3: mail for <postmaster> (no domain) and for
    postmaster@ a local domain is accepted and lands in the mailbox named
    by mailboxes.postmaster."""
    srv = make_server({"mailboxes": {"postmaster": "bob@example.test"}})
    c = srv.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd(f"RCPT TO:{rcpt}"), 250, "2.1.5")
    qid = queued_id(send_data(c, message() + ".\r\n"))
    [data] = srv.wait_mail("bob")
    assert b"Delivered-To: bob@example.test\n" in data
    assert received_qid(data) == qid


def test_postmaster_unset_is_refused(server):
    """Without mailboxes.postmaster there is no such mailbox: 550 5.1.1."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<postmaster>"), 550, "5.1.1")
    check(c.cmd("RCPT TO:<postmaster@example.test>"), 550, "5.1.1")


def test_postmaster_mailbox_wins(make_server):
    """A real postmaster@ mailbox is delivered to as itself."""
    srv = make_server({"mailboxes": {
        "users": ["alice@example.test", "postmaster@example.test"],
        "postmaster": "alice@example.test"}})
    c = srv.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<postmaster@example.test>"), 250, "2.1.5")
    queued_id(send_data(c, message() + ".\r\n"))
    srv.wait_mail("postmaster")
    assert srv.maildir_files("alice") == []
