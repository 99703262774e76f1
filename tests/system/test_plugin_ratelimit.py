"""The ratelimit plugin (plugins/ratelimit.c): connections, messages and
recipients per client IP and per sender in a window, exempt networks,
IPv6 prefixes. Each test uses its own 127.0.0.x client addresses (the
fixture's readiness probe connects from 127.0.0.1 and is counted too).
"""
import time

from helpers import check
from test_plugins import (Raw6, connect, deliver, dns, session_to,  # noqa
                          splugin, start, start_v6)


def rl(args, **entry):
    e = {"plugin": splugin("ratelimit"), "args": args}
    e.update(entry)
    return e


def test_ratelimit_connections_per_ip(make_server, dns):
    srv = start(make_server, dns, [rl({"window": 60,
                                       "connections_per_ip": 2})])
    for _ in range(2):
        c, r = connect(srv, "127.0.0.41")
        check(r, 220)
        c.cmd("QUIT")
        c.close()
    c, r = connect(srv, "127.0.0.41")
    assert r == (421, "4.7.0 Too many connections from 127.0.0.41, try "
                 "again later"), r
    assert c.closed(timeout=3)
    c, r = connect(srv, "127.0.0.42")       # another client: its own count
    check(r, 220)
    c.close()


def test_ratelimit_recipients_per_ip(make_server, dns):
    srv = start(make_server, dns, [rl({"recipients_per_ip": 3})])
    c, r = session_to(srv, "rcpt", source="127.0.0.43",
                      rcpts=["alice@example.test", "bob@example.test"])
    check(r, 250)
    check(c.cmd("RSET"), 250)
    check(c.cmd("MAIL FROM:<x@remote.test>"), 250)
    check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    r = c.cmd("RCPT TO:<bob@example.test>")
    assert r == (450, "4.7.1 Too many recipients from 127.0.0.43, try again "
                 "later"), r
    c.close()
    c, r = session_to(srv, "rcpt", source="127.0.0.44")
    check(r, 250)
    c.close()


def test_ratelimit_messages_per_ip(make_server, dns):
    """Messages count at DATA (or the first BDAT): the third gets 451."""
    srv = start(make_server, dns, [rl({"messages_per_ip": 2})])
    for _ in range(2):
        deliver(srv, source="127.0.0.45")
    want = (451, "4.7.1 Too many messages from 127.0.0.45, try again later")
    c, r = session_to(srv, "data", source="127.0.0.45")
    assert r == want, r
    check(c.cmd("RSET"), 250)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250)
    check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    c.send("BDAT 6 LAST\r\nhello\n")          # BDAT: the same data stage
    assert c.reply() == want
    assert c.cmd("NOOP")[0] == 250
    c.close()
    deliver(srv, source="127.0.0.46")


def test_ratelimit_per_sender(make_server, dns):
    """Per sender: any client, sender case folded; <> is never limited."""
    srv = start(make_server, dns, [rl({"messages_per_sender": 1,
                                       "recipients_per_sender": 3})])
    deliver(srv, source="127.0.0.47", sender="Bulk@Remote.test")
    c, r = session_to(srv, "data", source="127.0.0.48",
                      sender="bulk@remote.TEST")
    assert r == (451, "4.7.1 Too many messages from <bulk@remote.test>, try "
                 "again later"), r
    c.close()
    c, r = session_to(srv, "rcpt", sender="bulk@remote.test",
                      rcpts=["alice@example.test", "bob@example.test"])
    assert r == (450, "4.7.1 Too many recipients from <bulk@remote.test>, "
                 "try again later"), r
    c.close()
    for _ in range(3):
        deliver(srv, sender="")
    deliver(srv, sender="other@remote.test")


def test_ratelimit_exempt_networks(make_server, dns):
    srv = start(make_server, dns, [rl({
        "connections_per_ip": 1,
        "exempt": ["127.0.0.48/29", "2001:db8::/32"]})])
    for _ in range(3):
        c, r = connect(srv, "127.0.0.50")        # in 127.0.0.48/29
        check(r, 220)
        c.close()
    c, r = connect(srv, "127.0.0.56")
    check(r, 220)
    c.close()
    c, r = connect(srv, "127.0.0.56")
    check(r, 421, "4.7.0")
    c.close()


def test_ratelimit_window_expires(make_server, dns):
    srv = start(make_server, dns, [rl({"window": 2,
                                       "connections_per_ip": 1})])
    t0 = time.monotonic()
    c, r = connect(srv, "127.0.0.57")
    check(r, 220)
    c.close()
    c, r = connect(srv, "127.0.0.57")
    check(r, 421, "4.7.0", "Too many connections")
    c.close()
    assert time.monotonic() - t0 < 1.0, "too slow to test a 2 s window"
    time.sleep(max(0, t0 + 2.2 - time.monotonic()))
    c, r = connect(srv, "127.0.0.57")
    check(r, 220)
    c.close()


def test_ratelimit_ipv6_counts_per_prefix(make_server, dns):
    """IPv6 clients count per /ipv6_prefix (default 64): the reply names
    the network."""
    srv, port6 = start_v6(make_server, dns, [rl({"connections_per_ip": 1})])
    replies = []
    for _ in range(2):
        c = Raw6(port6)
        replies.append(c.reply())
        c.close()
    check(replies[0], 220)
    assert replies[1] == (421, "4.7.0 Too many connections from ::/64, try "
                          "again later"), replies
