"""Bare CR/LF policy and SMTP smuggling: only <CR><LF>.<CR><LF> ends DATA."""
import time

import pytest

from helpers import check, queued_id, split_headers, start_tx

HDR = b"From: <s@remote.test>\r\nTo: <alice@example.test>\r\nSubject: s\r\n\r\n"

# (name, bytes after the header) -- each contains a fake end of data
SMUGGLE = [
    ("lf-dot-lf", b"hello\n.\n"),
    ("crlf-dot-lf", b"hello\r\n.\n"),
    ("lf-dot-crlf", b"hello\n.\r\n"),
    ("cr-dot-cr", b"hello\r.\r"),
    ("crlf-dot-cr", b"hello\r\n.\r"),
]
INJECTED = (b"MAIL FROM:<x@y.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nsmuggled body\r\n")


def reply_to_data(c, payload):
    check(c.cmd("DATA"), 354)
    c.send(payload)
    return c.reply()


def assert_in_sync(c):
    """The next reply belongs to the next command: no stray replies from
    smuggled commands are pending."""
    extra = c.pending(0.3)
    assert extra == b"", f"unexpected extra replies: {extra!r}"
    check(c.cmd("NOOP"), 250, "2.0.0")


@pytest.mark.parametrize("name,fake", SMUGGLE, ids=[s[0] for s in SMUGGLE])
def test_smuggling_reject(server, name, fake):
    """Policy reject: a message with a fake end of data and smuggled
    commands is one message, refused with 550 5.6.11 after the real end;
    nothing is delivered; the session continues."""
    c = server.raw()
    start_tx(c)
    r = reply_to_data(c, HDR + fake + INJECTED + b".\r\n")
    check(r, 550, "5.6.11")
    assert_in_sync(c)
    # the next transaction works
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    queued_id(reply_to_data(c, HDR + b"clean\r\n.\r\n"))
    server.wait_mail("alice")
    server.wait_queue_empty()
    assert len(server.maildir_files("alice")) == 1
    assert server.maildir_files("bob") == []


@pytest.mark.parametrize("name,fake", SMUGGLE, ids=[s[0] for s in SMUGGLE])
def test_smuggling_normalize(make_server, name, fake):
    """Policy normalize: the fake end of data is content; exactly one
    message is delivered (to alice), containing the smuggled text."""
    srv = make_server({"smtp": {"bare_newline": "normalize"}})
    c = srv.raw()
    start_tx(c)
    qid = queued_id(reply_to_data(c, HDR + fake + INJECTED + b".\r\n"))
    assert_in_sync(c)
    [data] = srv.wait_mail("alice")
    srv.wait_queue_empty()
    assert len(srv.maildir_files("alice")) == 1
    assert srv.maildir_files("bob") == [], "smuggled message delivered"
    assert b"MAIL FROM:<x@y.test>\n" in data, data
    assert b"smuggled body\n" in data
    assert qid.encode() in data
    assert b"\r" not in data


def test_bare_lf_reject(server):
    """Policy reject: a bare LF gets 550 5.6.11; nothing is delivered."""
    c = server.raw()
    start_tx(c)
    check(reply_to_data(c, HDR + b"line1\nline2\r\n.\r\n"), 550, "5.6.11")
    assert_in_sync(c)
    time.sleep(0.3)
    assert server.maildir_files("alice") == []
    assert server.queued_ids() == []


def test_bare_cr_reject(server):
    """Policy reject: a bare CR gets 550 5.6.11."""
    c = server.raw()
    start_tx(c)
    check(reply_to_data(c, HDR + b"line1\rline2\r\n.\r\n"), 550, "5.6.11")
    assert_in_sync(c)


def test_bare_lf_in_header_reject(server):
    """Policy reject: a bare LF in the header section is refused too."""
    c = server.raw()
    start_tx(c)
    check(reply_to_data(c, b"Subject: a\nX-B: c\r\n\r\nbody\r\n.\r\n"),
          550, "5.6.11")


def test_bare_lf_normalize(make_server):
    """Policy normalize: bare LF and bare CR are stored as line breaks and
    the message is delivered."""
    srv = make_server({"smtp": {"bare_newline": "normalize"}})
    c = srv.raw()
    start_tx(c)
    queued_id(reply_to_data(c, HDR + b"one\ntwo\rthree\r\nfour\r\n.\r\n"))
    [data] = srv.wait_mail("alice")
    _, body = split_headers(data)
    assert body == "one\ntwo\nthree\nfour\n", body


def test_split_end_of_data(server):
    """CRLF.CRLF split across several TCP writes still ends the data."""
    c = server.raw()
    start_tx(c)
    check(c.cmd("DATA"), 354)
    for part in (HDR + b"body\r", b"\n", b".", b"\r", b"\n"):
        c.send(part)
        time.sleep(0.05)
    queued_id(c.reply())
    [data] = server.wait_mail("alice")
    assert data.endswith(b"\nbody\n")


def test_dot_line_without_crlf_before(server):
    """'.\\r\\n' right after the DATA 354 (empty message) ends the data."""
    c = server.raw()
    start_tx(c)
    r = reply_to_data(c, b".\r\n")
    queued_id(r)
    [data] = server.wait_mail("alice")
    assert data.startswith(b"Return-Path: ")


def test_data_text_without_final_crlf_is_not_end(server):
    """'body.\\r\\n' (dot at the end of a line) is not the end of data."""
    c = server.raw()
    start_tx(c)
    check(c.cmd("DATA"), 354)
    c.send(HDR + b"body.\r\n")
    assert c.pending(0.5) == b"", "server ended DATA early"
    c.send(b".\r\n")
    queued_id(c.reply())
