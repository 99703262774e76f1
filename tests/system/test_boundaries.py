"""Content split at awkward places (TCP segments, BDAT chunk edges),
command syntax details, timer and session-count bookkeeping."""
import socket
import time

from helpers import (RawClient, check, ehlo, message, queued_id,
                     split_headers, start_tx)

HDR = b"From: <s@remote.test>\r\nTo: <alice@example.test>\r\nSubject: x\r\n\r\n"


def bdat(c, data, last=False):
    c.send(b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data)
    return c.reply()


# -- content at boundaries ------------------------------------------------

def test_data_byte_by_byte(server):
    """A dot-stuffed body sent one byte per TCP write is decoded exactly
    as if sent at once."""
    c = server.raw()
    start_tx(c)
    check(c.cmd("DATA"), 354)
    wire = HDR + b"..one\r\n..\r\nx\r\n...y\r\nlast\r\n.\r\n"
    for i in range(len(wire)):
        c.send(wire[i:i + 1])
    queued_id(c.reply())
    [data] = server.wait_mail("alice")
    _, body = split_headers(data)
    assert body == ".one\n.\nx\n..y\nlast\n", body


def test_bdat_crlf_across_chunks(server):
    """A CRLF split across two BDAT chunks is a normal line end, not a
    bare CR + bare LF (policy reject must accept it)."""
    c = server.raw()
    start_tx(c)
    check(bdat(c, HDR + b"first line\r"), 250)
    queued_id(bdat(c, b"\nsecond line\r\n", last=True))
    [data] = server.wait_mail("alice")
    _, body = split_headers(data)
    assert body == "first line\nsecond line\n", body


def test_bdat_bare_cr_at_chunk_end(server):
    """A CR ending the last chunk (no LF ever follows) is a bare CR:
    550 5.6.11 under policy reject."""
    c = server.raw()
    start_tx(c)
    check(bdat(c, HDR + b"text\r\n"), 250)
    check(bdat(c, b"dangling\r", last=True), 550, "5.6.11")


def test_bdat_long_line_across_chunks(server):
    """Line length is counted across chunk boundaries: a 1001-octet line
    split over two chunks is refused (550 5.6.0); a 1000-octet one is
    accepted."""
    c = server.raw()
    start_tx(c)
    check(bdat(c, HDR + b"a" * 600), 250)
    check(bdat(c, b"a" * 401 + b"\r\n", last=True), 550, "5.6.0")
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    check(bdat(c, HDR + b"a" * 600), 250)
    queued_id(bdat(c, b"a" * 398 + b"\r\n", last=True))


def test_data_long_line_across_segments(server):
    """In DATA, a line over the limit sent in many small writes is still
    refused with 550 5.6.0."""
    c = server.raw()
    start_tx(c)
    check(c.cmd("DATA"), 354)
    c.send(HDR)
    for _ in range(11):
        c.send(b"b" * 100)
        time.sleep(0.01)
    c.send(b"\r\n.\r\n")
    check(c.reply(), 550, "5.6.0")


def test_nul_in_bdat(server):
    """A NUL byte in BDAT content is refused with 550 5.6.0."""
    c = server.raw()
    start_tx(c)
    check(bdat(c, HDR + b"a\x00b\r\n", last=True), 550, "5.6.0")
    check(c.cmd("NOOP"), 250, "2.0.0")


# -- command syntax ---------------------------------------------------------

def test_commands_without_arguments(server):
    """DATA and RSET take no arguments (RFC 5321 4.1.1): with one they get
    501 5.5.4; NOOP may have one.  (QUIT with junk may still say 221,
    like Postfix.)"""
    c = server.raw()
    start_tx(c)
    check(c.cmd("DATA now"), 501, "5.5.4")
    check(c.cmd("RSET please"), 501, "5.5.4")
    check(c.cmd("NOOP anything at all"), 250, "2.0.0")
    # the transaction survived the refused commands
    check(c.cmd("DATA"), 354)
    c.send(message() + ".\r\n")
    queued_id(c.reply())


def test_mail_from_space_variants(server):
    """'MAIL FROM:' without the colon, or with garbage after the path,
    is a syntax error (501), not an accepted sender."""
    c = server.raw()
    ehlo(c)
    r = c.cmd("MAIL FROM <s@remote.test>")
    assert r[0] == 501, r
    r = c.cmd("MAIL FROM:<s@remote.test>garbage")
    assert r[0] in (501, 555), r
    check(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")


# -- timers -----------------------------------------------------------------

def test_slow_data_not_cut_by_command_timeout(make_server):
    """command_timeout limits a command line, not the message: a DATA body
    sent slowly over ~2.5 s with command_timeout 1s is accepted."""
    srv = make_server({"limits": {"command_timeout": "1s",
                                  "idle_timeout": "30s"}})
    c = srv.raw()
    start_tx(c)
    check(c.cmd("DATA"), 354)
    c.send(HDR)
    for i in range(5):
        time.sleep(0.5)
        c.send(b"slow line %d\r\n" % i)
    c.send(b".\r\n")
    queued_id(c.reply())


def test_slow_bdat_not_cut_by_command_timeout(make_server):
    """A BDAT chunk arriving slowly over ~2.5 s is not cut by a 1 s
    command_timeout."""
    srv = make_server({"limits": {"command_timeout": "1s",
                                  "idle_timeout": "30s"}})
    c = srv.raw()
    start_tx(c)
    payload = HDR + b"".join(b"slow line %d\r\n" % i for i in range(5))
    c.send(b"BDAT %d LAST\r\n" % len(payload))
    step = len(payload) // 5 + 1
    for i in range(0, len(payload), step):
        time.sleep(0.5)
        c.send(payload[i:i + step])
    queued_id(c.reply())


def test_partial_pipelined_command_times_out(make_server):
    """A complete command followed by a partial one: the partial one is
    subject to command_timeout (421 4.4.2). (RSET, not NOOP: nothing may
    follow a NOOP before its reply, RFC 2920.)"""
    srv = make_server({"limits": {"command_timeout": "1s",
                                  "idle_timeout": "30s"}})
    c = srv.raw()
    c.send(b"RSET\r\nNOO")
    check(c.reply(), 250, "2.0.0")
    t0 = time.monotonic()
    check(c.reply(timeout=5), 421, "4.4.2")
    assert time.monotonic() - t0 < 3.5
    assert c.closed(3)


# -- session accounting -------------------------------------------------------

def test_refused_connections_do_not_free_slots(make_server):
    """Connections refused with 421 for the session limit do not release
    slots they never held: with 2 sessions open and sessions: 2, every
    further connection is refused."""
    srv = make_server({"limits": {"sessions": 2, "per_ip_sessions": 10}})
    held = [srv.raw() for _ in range(2)]
    for _ in range(4):
        c = RawClient(srv.host, srv.port, timeout=5)
        code, text = c.reply()
        assert code == 421, (code, text)
        c.close()
    time.sleep(0.3)
    c = RawClient(srv.host, srv.port, timeout=5)
    code, text = c.reply()
    assert code == 421, (code, text)
    for h in held:
        check(h.cmd("NOOP"), 250, "2.0.0")


def test_session_slots_released_on_every_exit(make_server):
    """Sessions ending by QUIT, abrupt close, error limit, HTTP 421, idle
    timeout, BDAT framing error or bad input all give their slot back:
    afterwards per_ip_sessions (2) sessions can still be opened."""
    srv = make_server({"limits": {"sessions": 2, "per_ip_sessions": 2,
                                  "errors": 2, "idle_timeout": "1s"}})

    def open_():
        deadline = time.monotonic() + 3
        while True:
            c = RawClient(srv.host, srv.port, timeout=5)
            code, text = c.reply()
            if code == 220:
                return c
            c.close()
            assert time.monotonic() < deadline, \
                f"slot not released: {code} {text}"
            time.sleep(0.1)

    c = open_(); c.cmd("QUIT"); c.close()
    c = open_(); c.close()
    c = open_(); c.cmd("X1"); c.cmd("X2"); c.closed(2); c.close()
    c = open_(); c.send(b"GET / HTTP/1.0\r\n\r\n"); c.closed(2); c.close()
    c = open_(); c.closed(4); c.close()                       # idle timeout
    c = open_(); ehlo(c); c.send(b"BDAT x\r\n"); c.closed(2); c.close()
    c = open_(); start_tx(c); c.send(b"DATA\r\n" + HDR); c.close()
    c = open_()
    start_tx(c)
    c.send(b"BDAT 100\r\nabc")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                      b"\x01\x00\x00\x00\x00\x00\x00\x00")   # RST
    c.close()
    a = open_()
    b = open_()
    check(a.cmd("NOOP"), 250, "2.0.0")
    check(b.cmd("NOOP"), 250, "2.0.0")


def test_sigterm_with_open_session(server):
    """SIGTERM with an idle session open: the server stops within 5 s and
    exits 0."""
    c = server.raw()
    ehlo(c)
    t0 = time.monotonic()
    rc = server.stop()
    assert rc == 0, rc
    assert time.monotonic() - t0 < 5, "stop took too long"
    c.close()
