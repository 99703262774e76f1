"""Protection limits: line lengths, sizes, recipients, sessions, timeouts,
error counts, and hostile input (NUL, HTTP)."""
import socket
import threading
import time

from helpers import (RawClient, check, ehlo, has_enh, message, queued_id,
                     send_data, start_tx)


# -- command line length -----------------------------------------------------

def test_command_line_too_long(server):
    """A command line longer than command_line_length (512) gets
    500 5.5.2 and the session continues."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("NOOP " + "x" * 600), 500, "5.5.2")
    check(c.cmd("NOOP"), 250, "2.0.0")
    # a long MAIL is not half-executed: no transaction was started
    check(c.cmd("MAIL FROM:<" + "a" * 600 + "@remote.test>"), 500, "5.5.2")
    check(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")


def test_command_line_length_boundary(server):
    """A 512-octet command line (CRLF included) is accepted; 513 is not."""
    c = server.raw()
    ehlo(c)
    line = "NOOP " + "x" * (512 - 2 - 5)
    assert len(line) + 2 == 512
    check(c.cmd(line), 250, "2.0.0")
    check(c.cmd(line + "x"), 500, "5.5.2")
    check(c.cmd("NOOP"), 250, "2.0.0")


def test_very_long_command_line(server):
    """A 100 KB line without CRLF followed by CRLF gets one 500 5.5.2 and
    the session keeps working."""
    c = server.raw()
    ehlo(c)
    c.send(b"NOOP " + b"y" * 100000 + b"\r\n")
    check(c.reply(), 500, "5.5.2")
    check(c.cmd("NOOP"), 250, "2.0.0")


# -- DATA line length and size ------------------------------------------------

def test_data_line_too_long(server):
    """A DATA text line longer than line_length (1000, CRLF included) makes
    the message refused with 550 5.6.0 after the dot."""
    c = server.raw()
    start_tx(c)
    body = "a" * 1001 + "\r\n"
    check(send_data(c, message(body=body) + ".\r\n"), 550, "5.6.0")
    # the next transaction works
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    qid = queued_id(send_data(c, message(body="short\r\n") + ".\r\n"))
    [data] = server.wait_mail("alice")
    assert qid.encode() in data


def _received(n):
    return "".join(f"Received: from hop{i}.test by hop{i + 1}.test; "
                   f"Sat, 28 Nov 2026 12:00:00 +0000\r\n" for i in range(n))


def test_too_many_hops(make_server):
    """More than limits.hops Received: fields (a mail loop) is refused with
    554 5.4.6 after the dot; exactly the limit passes; folded lines and
    Received: text in the body do not count; the session goes on."""
    srv = make_server({"limits": {"hops": 5}})
    c = srv.raw()
    start_tx(c)
    check(send_data(c, message(extra=_received(6)) + ".\r\n"), 554, "5.4.6")
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    body = "Received: in the body\r\n" * 10
    extra = _received(5) + "Comment: x\r\n Received: folded\r\n"
    qid = queued_id(send_data(c, message(extra=extra, body=body) + ".\r\n"))
    [data] = srv.wait_mail("alice")
    assert qid.encode() in data
    assert "event=reject stage=data" in srv.log()


def test_hops_default_is_100(server):
    """The default limit: 100 Received: fields pass, 101 are a loop (BDAT
    counts the same way)."""
    c = server.raw()
    start_tx(c)
    queued_id(send_data(c, message(extra=_received(100)) + ".\r\n"))
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    data = message(extra=_received(101)).encode()
    c.send(f"BDAT {len(data)} LAST\r\n".encode() + data)
    check(c.reply(), 554, "5.4.6")
    server.wait_mail("alice")


def test_data_line_length_boundary(server):
    """A 1000-octet line (998 + CRLF) is accepted."""
    c = server.raw()
    start_tx(c)
    body = "b" * 998 + "\r\n"
    queued_id(send_data(c, message(body=body) + ".\r\n"))
    [data] = server.wait_mail("alice")
    assert b"b" * 998 + b"\n" in data


def test_message_too_big(server):
    """A message bigger than message_size (1M) gets 552 5.3.4 after the
    dot; nothing is delivered; the session continues."""
    c = server.raw()
    start_tx(c)
    body = ("x" * 98 + "\r\n") * 12000          # 1.2 MB
    check(send_data(c, message(body=body) + ".\r\n"), 552, "5.3.4")
    check(c.cmd("NOOP"), 250, "2.0.0")
    time.sleep(0.5)
    assert server.maildir_files("alice") == []
    assert server.queued_ids() == []


def test_huge_message_survived(server):
    """A 5 MB message against a 1M limit gets 552 5.3.4 and the server
    survives (the partial file is cleaned up)."""
    c = server.raw(timeout=30)
    start_tx(c)
    check(c.cmd("DATA"), 354)
    chunk = (("z" * 98 + "\r\n") * 1000).encode()      # 100 KB
    for _ in range(50):
        c.send(chunk)
    c.send(b".\r\n")
    check(c.reply(timeout=30), 552, "5.3.4")
    check(c.cmd("NOOP"), 250, "2.0.0")
    assert server.partial_files() == []


def test_message_size_boundary(make_server):
    """With message_size 10K, a message well under the limit is accepted
    and one just over it is refused."""
    srv = make_server({"limits": {"message_size": "10K"}})
    c = srv.raw()
    start_tx(c)
    queued_id(send_data(c, message(body=("x" * 500 + "\r\n") * 14) + ".\r\n"))
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    check(send_data(c, message(body=("x" * 500 + "\r\n") * 21) + ".\r\n"),
          552, "5.3.4")


# -- recipients -----------------------------------------------------------------

def test_recipient_limit(make_server):
    """With recipients: 100, the first 100 RCPTs are accepted and the
    101st gets 452 4.5.3; the message goes to the first 100 only."""
    users = [f"u{i}@example.test" for i in range(101)]
    srv = make_server({"mailboxes": {"users": users}})
    c = srv.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    for u in users[:100]:
        check(c.cmd(f"RCPT TO:<{u}>"), 250, "2.1.5")
    check(c.cmd(f"RCPT TO:<{users[100]}>"), 452, "4.5.3")
    queued_id(send_data(c, message() + ".\r\n"))
    srv.wait_queue_empty(timeout=20)
    for i in (0, 50, 99):
        assert len(srv.maildir_files(f"u{i}")) == 1
    assert srv.maildir_files("u100") == []


# -- sessions -------------------------------------------------------------------

def test_session_limit(make_server):
    """With sessions: 3, the 4th concurrent connection gets a 421 greeting
    and is closed; after one closes a new one is served again."""
    srv = make_server({"limits": {"sessions": 3, "per_ip_sessions": 10}})
    conns = [srv.raw() for _ in range(3)]
    c4 = RawClient(srv.host, srv.port, timeout=5)
    code, text = c4.reply()
    assert code == 421, (code, text)
    assert c4.closed(3)
    conns[0].cmd("QUIT")
    conns[0].close()
    # the slot is released (bounded wait, the release is asynchronous)
    deadline = time.monotonic() + 3
    while True:
        c5 = RawClient(srv.host, srv.port, timeout=5)
        code, text = c5.reply()
        if code == 220 or time.monotonic() > deadline:
            break
        c5.close()
        time.sleep(0.1)
    assert code == 220, (code, text)
    check(conns[1].cmd("NOOP"), 250, "2.0.0")


def test_per_ip_session_limit(make_server):
    """With per_ip_sessions: 2 the third connection from 127.0.0.1 gets
    421; a connection from 127.0.0.2 is not counted against 127.0.0.1."""
    srv = make_server({"limits": {"sessions": 20, "per_ip_sessions": 2}})
    conns = [srv.raw() for _ in range(2)]
    c3 = RawClient(srv.host, srv.port, timeout=5)
    code, text = c3.reply()
    assert code == 421, (code, text)
    assert c3.closed(3)
    other = RawClient(srv.host, srv.port, timeout=5, source="127.0.0.2")
    code, text = other.reply()
    assert code == 220, (code, text)
    check(other.cmd("NOOP"), 250, "2.0.0")
    for c in conns:
        check(c.cmd("NOOP"), 250, "2.0.0")


# -- timeouts -------------------------------------------------------------------

def test_idle_timeout(make_server):
    """With idle_timeout: 1s, a silent client gets 421 4.4.2 after about
    a second and the connection is closed."""
    srv = make_server({"limits": {"idle_timeout": "1s"}})
    c = srv.raw()
    ehlo(c)
    t0 = time.monotonic()
    check(c.reply(timeout=5), 421, "4.4.2")
    elapsed = time.monotonic() - t0
    assert 0.7 <= elapsed <= 3.5, elapsed
    assert c.closed(3)


def test_idle_timeout_reset_by_activity(make_server):
    """Commands reset the idle timer: a client that sends NOOP every 0.5 s
    for 2.5 s is not disconnected with idle_timeout: 1s."""
    srv = make_server({"limits": {"idle_timeout": "1s"}})
    c = srv.raw()
    for _ in range(5):
        time.sleep(0.5)
        check(c.cmd("NOOP"), 250, "2.0.0")


def test_command_timeout(make_server):
    """With command_timeout: 2s (idle 30s), a command dribbled one byte
    every 0.5 s gets 421 4.4.2 after about 2 s."""
    srv = make_server({"limits": {"command_timeout": "2s",
                                  "idle_timeout": "30s"}})
    c = srv.raw()
    cmd = b"EHLO slow.client.example.test\r\n"
    t0 = time.monotonic()
    got = None
    for i in range(len(cmd)):
        try:
            c.send(cmd[i:i + 1])
        except OSError:
            break
        data = c.pending(0.5)
        if data:
            got = data
            break
    elapsed = time.monotonic() - t0
    assert got is not None, "no reply to a dribbled command"
    assert got.startswith(b"421 4.4.2"), got
    assert 1.5 <= elapsed <= 4.0, elapsed
    assert c.closed(3)


def test_idle_timeout_in_data(make_server):
    """A client that stops sending in the middle of DATA gets 421 4.4.2
    and nothing is queued."""
    srv = make_server({"limits": {"idle_timeout": "1s"}})
    c = srv.raw()
    start_tx(c)
    check(c.cmd("DATA"), 354)
    c.send(message())
    check(c.reply(timeout=5), 421, "4.4.2")
    assert c.closed(3)
    time.sleep(0.3)
    assert srv.queued_ids() == [] and srv.maildir_files("alice") == []
    assert srv.partial_files() == []


# -- errors and hostile input ---------------------------------------------------

def test_unknown_command(server):
    """An unknown command gets 500 5.5.2."""
    c = server.raw()
    check(c.cmd("FROBNICATE"), 500, "5.5.2")
    check(c.cmd("NOOP"), 250, "2.0.0")


def test_error_limit(make_server):
    """With errors: 3, after 3 unknown commands the server says
    421 4.7.0 and closes the connection."""
    srv = make_server({"limits": {"errors": 3}})
    c = srv.raw()
    c.send(b"FOO1\r\n")
    check(c.reply(), 500, "5.5.2")
    c.send(b"FOO2\r\n")
    check(c.reply(), 500, "5.5.2")
    c.send(b"FOO3\r\n")
    r = c.reply()
    if r[0] == 500:
        r = c.reply()
    check(r, 421, "4.7.0")
    assert c.closed(3)


def test_junk_command_limit(make_server):
    """NOOP, RSET, VRFY and HELP are free up to junk_commands since the
    last accepted message; past it each one counts as an error, so a
    session kept open with NOOPs ends with 421 4.7.0 once errors is
    reached. An accepted message starts the count again."""
    srv = make_server({"limits": {"junk_commands": 4, "errors": 3}})
    c = srv.raw()
    ehlo(c)
    for cmd in ("NOOP", "RSET", "VRFY alice", "HELP"):
        assert c.cmd(cmd)[0] in (250, 252, 214)
    start_tx(c, do_ehlo=False)          # MAIL and RCPT are not junk
    queued_id(send_data(c, (message() + ".\r\n").encode()))
    for _ in range(4):                  # the count starts again
        check(c.cmd("NOOP"), 250, "2.0.0")
    check(c.cmd("NOOP"), 250, "2.0.0")  # 5th: error 1
    check(c.cmd("NOOP"), 250, "2.0.0")  # error 2
    c.send(b"NOOP\r\n")                # error 3: its reply, then 421
    check(c.reply(), 250, "2.0.0")
    check(c.reply(), 421, "4.7.0")
    assert c.closed(3)
    d = srv.raw()                       # the server keeps serving
    ehlo(d)
    check(d.cmd("NOOP"), 250, "2.0.0")


def test_nul_in_command(server):
    """A NUL byte in a command line gets 500 5.5.2; the session continues."""
    c = server.raw()
    ehlo(c)
    c.send(b"NOOP\x00x\r\n")
    check(c.reply(), 500, "5.5.2")
    c.send(b"MAIL FROM:<s@remote.test>\x00\r\n")
    check(c.reply(), 500, "5.5.2")
    check(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")
    check(c.cmd("NOOP"), 250, "2.0.0")


def test_nul_in_data(server):
    """A NUL byte in DATA makes the message refused with 550 5.6.0."""
    c = server.raw()
    start_tx(c)
    check(send_data(c, message(body="a\x00b\r\n").encode() + b".\r\n"),
          550, "5.6.0")
    check(c.cmd("NOOP"), 250, "2.0.0")
    time.sleep(0.3)
    assert server.maildir_files("alice") == []


def test_http_request(server):
    """An HTTP request ('GET / HTTP/1.0') gets 421 and the connection is
    closed."""
    c = server.raw()
    c.send(b"GET / HTTP/1.0\r\nHost: mx.example.test\r\n\r\n")
    r = c.reply()
    assert r[0] == 421 and has_enh(r), r
    assert c.closed(3)


def test_http_post_before_greeting(server):
    """A POST sent before reading the greeting still gets 421 and close
    (or 554 5.5.0 when it came before the greeting went out: an early
    talker, test_hardening_pipelining.py)."""
    c = server.raw(greet=False)
    c.send(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
    codes = []
    try:
        while True:
            codes.append(c.reply(timeout=3)[0])
    except (EOFError, socket.timeout):
        pass
    assert 421 in codes or 554 in codes, codes
    assert c.closed(3)


def test_garbage_binary_input(server):
    """Random binary junk does not kill the server (errors or close)."""
    import random
    rnd = random.Random(1234)
    for _ in range(5):
        c = server.raw()
        try:
            c.send(bytes(rnd.randrange(256) for _ in range(4000)) + b"\r\n")
            c.closed(1)
        except OSError:
            pass
        c.close()
    c = server.raw()
    check(c.cmd("NOOP"), 250, "2.0.0")


def test_client_disconnect_mid_data(server):
    """A client vanishing in the middle of DATA: nothing queued, nothing
    delivered, no partial file left."""
    c = server.raw()
    start_tx(c)
    check(c.cmd("DATA"), 354)
    c.send(message(body="x" * 500 + "\r\n") * 2)
    c.close()
    time.sleep(0.5)
    assert server.queued_ids() == []
    assert server.maildir_files("alice") == []
    from helpers import wait_for
    wait_for(lambda: server.partial_files() == [], timeout=3,
             msg="no partial file")


def test_many_concurrent_sessions(make_server):
    """20 concurrent sessions each deliver a message."""
    srv = make_server({"limits": {"sessions": 40, "per_ip_sessions": 40}})
    errors = []

    def worker(i):
        try:
            c = srv.raw()
            start_tx(c, rcpts=("bob@example.test",))
            queued_id(send_data(c, message(subject=f"c{i}") + ".\r\n"))
            c.cmd("QUIT")
        except Exception as e:      # noqa
            errors.append(repr(e))

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not errors, errors
    srv.wait_mail("bob", 20, timeout=10)
