"""sluiced's milter client against milters that fail: unreachable or
refusing sockets, timeouts (connect/negotiation, command, content), EOF
mid-command, broken framing (length 0xFFFFFFFF, 0, a partial length),
bad replies (unknown letter, payload after 'c', a malformed 'y'),
modifications at the wrong time or not negotiated, a bad 'O' answer and a
huge packet. Each gets the entry's default_action (tempfail -> 4xx at that
stage, 421 at connect; reject -> 5xx; accept -> delivered unfiltered;
quarantine -> 250 and into the spool's quarantine/), is logged as
event=filter-error with the filter's name, sticks for the rest of the
session without reconnecting, and the next session connects again.
Plus: progress replies keep a slow milter alive, shutdown/connfail close
the session with 421, and a command timeout answers in time.

The milters are tests/system/milters/bad_milter.py (misbehaving with
--do at the --nth occurrence of command letter --on, only in connection
--conn) and scripted_milter.py, all on unix sockets under tmp_path.
"""
import os
import socket
import time

import pytest

import helpers
from test_lua_support import (as_bytes, dot_stuffed, new_message, no_dns,
                              mail_with, delivered)

FILTER = "badone"

# bad_milter command letter -> the SMTP step whose reply carries the verdict
STEP_OF = {"O": "connect", "C": "connect", "H": "helo", "M": "mail",
           "R": "rcpt", "T": "data", "L": "dot", "N": "dot", "B": "dot",
           "E": "dot"}
# tempfail / reject reply codes per step (core/filter.c verdict_reply)
TEMPFAIL = {"connect": 421, "helo": 451, "mail": 450, "rcpt": 450,
            "data": 451, "dot": 451}
REJECT = {"connect": 554, "helo": 550, "mail": 550, "rcpt": 550,
          "data": 554, "dot": 554}


# -- helpers -------------------------------------------------------------------

def milter_entry(spec, action="tempfail", name=FILTER, **kw):
    e = {"milter": spec, "name": name, "default_action": action,
         "timeouts": {"connect": "2s", "command": "2s", "content": "2s"}}
    e.update(kw)
    return e


def start_server(make_server, *entries, **over):
    """A server with the given pipeline, started without the readiness
    probe of Server.start (the probe would be the milter's first
    connection, and a refusing milter gives it no 220)."""
    cfg = {"pipeline": list(entries), "dns": no_dns()}
    cfg.update(over)
    s = make_server(cfg, start=False)
    s.start(wait=False)
    helpers.wait_for(lambda: "event=listening" in s.run_log(), timeout=5,
                     msg="event=listening; log:\n" + s.log()[-2000:])
    return s


def run_tx(srv, msg=None, rcpts=("alice@example.test",), c=None,
           timeout=10):
    """One session (or one more transaction on c): greeting, EHLO, MAIL,
    RCPTs, DATA, the message. Returns (step, reply, client) where step is
    the first step not answered as usual (connect helo mail rcpt data
    dot), or "done" with the final 250. The client is left open."""
    if c is None:
        c = srv.raw(greet=False, timeout=timeout)
        r = c.reply()
        if r[0] != 220:
            return "connect", r, c
        r = c.cmd("EHLO client.example.test")
        if r[0] != 250:
            return "helo", r, c
    r = c.cmd("MAIL FROM:<sender@remote.test>")
    if r[0] != 250:
        return "mail", r, c
    for rc in rcpts:
        r = c.cmd(f"RCPT TO:<{rc}>")
        if r[0] != 250:
            return "rcpt", r, c
    r = c.cmd("DATA")
    if r[0] != 354:
        return "data", r, c
    msg = msg if msg is not None else new_message()
    c.send(dot_stuffed(as_bytes(msg)))
    r = c.reply()
    if r[0] != 250:
        return "dot", r, c
    return "done", r, c


def quit(c):
    try:
        c.cmd("QUIT")
    except (OSError, EOFError, AssertionError):
        pass
    c.close()


def filter_errors(srv, name=FILTER):
    """The failures logged for filter `name`: event=filter-error (during a
    stage call, core/filter.c call_fail) or event=milter-error (between
    calls, core/milter_conn.c milter_fail)."""
    return [e for e in helpers.log_events(srv)
            if e.get("event") in ("filter-error", "milter-error")
            and e.get("filter") == name]


def wait_filter_error(srv, count=1, name=FILTER):
    return helpers.wait_for(
        lambda: (lambda es: es if len(es) >= count else None)(
            filter_errors(srv, name)),
        timeout=5, msg=f"{count} event=filter-error filter={name}; log:\n"
        + srv.log()[-3000:])


def conns(m):
    """The MTA connections the bad milter saw (numbers, in order)."""
    return [e["conn"] for e in m.events("accept")]


def cmds(m, conn):
    return [e["cmd"] for e in m.events("cmd", conn=conn)]


def good_session(srv, user="alice"):
    """A whole normal session that must deliver."""
    m = new_message()
    step, r, c = run_tx(srv, m, rcpts=(f"{user}@example.test",))
    quit(c)
    assert step == "done", (step, r, srv.log()[-3000:])
    helpers.queued_id(r)
    mail_with(srv, user, m["Subject"])


# -- every failure mode gets the default action (tempfail) ---------------------

FAULTS = [
    # (id, on, do, options, reason substring in the log). The framing
    # errors (garbage, zerolen, hugelen, big) have their reason checked in
    # test_framing_error_reason_logged.
    ("optneg-eof", "O", "close", {}, "closed the connection"),
    ("optneg-hang", "O", "hang", {}, "negotiation timed out after 1s"),
    ("optneg-version99", "O", "version99", {}, "version"),
    ("optneg-short", "O", "shortopt", {}, "too short"),
    ("connect-eof", "C", "close", {}, "closed the connection"),
    ("connect-garbage", "C", "garbage", {}, ""),
    # the second 'c' comes when no reply is due: broken between events,
    # the default action at the next one (EHLO)
    ("connect-double-c", "C", "double", {"step": "helo"},
     "when no reply was due"),
    ("helo-zerolen", "H", "zerolen", {}, ""),
    ("helo-eof", "H", "close", {}, "closed the connection"),
    ("mail-partial", "M", "partial", {}, "closed the connection"),
    ("mail-bad-y", "M", "reply", {}, "malformed"),
    ("mail-hang", "M", "hang", {}, "reply timed out after 1s"),
    ("rcpt-hugelen", "R", "hugelen", {}, ""),
    ("rcpt-unknown", "R", "unknown", {}, "unknown reply"),
    # an 'h' at RCPT, even negotiated, is not a reply to RCPT
    ("rcpt-mod", "R", "mod", {"actions": 1}, "unexpected reply 'h'"),
    ("data-payload", "T", "payload", {}, "payload"),
    ("data-eof", "T", "close", {}, "closed the connection"),
    ("header-hang", "L", "hang", {}, "reply timed out after 1s"),
    ("eoh-eof", "N", "close", {}, "closed the connection"),
    ("body-unknown", "B", "unknown", {}, "unknown reply"),
    # a negotiated modification, but during the body instead of at EOM
    ("body-mod", "B", "mod", {"actions": 1}, "'h'"),
    ("eom-hang", "E", "hang", {}, "reply timed out after 1s"),
    ("eom-mod-not-negotiated", "E", "mod", {"actions": 0},
     "did not negotiate"),
    ("eom-big", "E", "big", {}, ""),
    ("eom-unknown", "E", "unknown", {"text": "X"}, "unknown reply"),
]


@pytest.mark.parametrize("on,do,opts,why", [f[1:] for f in FAULTS],
                         ids=[f[0] for f in FAULTS])
def test_fault_gets_tempfail(make_server, milters, on, do, opts, why):
    opts = dict(opts)
    want = opts.pop("step", STEP_OF[on])
    m = milters.bad(on=on, do=do, conn=1, **opts)
    srv = start_server(make_server, milter_entry(
        m.spec, timeouts={"connect": "1s", "command": "1s",
                          "content": "1s"}))
    step, r, c = run_tx(srv)
    assert step == want, (step, r, srv.log()[-2000:])
    assert r[0] == TEMPFAIL[want], r
    if want == "connect":
        assert c.closed(timeout=3)
        c.close()
    else:
        # the session goes on; the failed milter is not asked again and
        # its default action holds: a new transaction fails the same way
        # (at MAIL at the latest), no new milter connection is made
        if want != "helo":
            helpers.check(c.cmd("RSET"), 250)
            r2 = c.cmd("MAIL FROM:<sender@remote.test>")
            assert r2[0] == 450, r2
        quit(c)
    errs = wait_filter_error(srv)
    assert len(errs) == 1, errs
    assert errs[0].get("action", "tempfail") == "tempfail"
    assert why in errs[0].get("reason", ""), errs[0]
    # the next session connects again (the milter behaves in conn 2)
    good_session(srv)
    assert conns(m) == [1, 2], m.log_text()
    assert "E" in cmds(m, 2)
    assert srv.alive()


@pytest.mark.parametrize("on,do,why", [
    ("C", "garbage", "over the limit"),
    ("H", "zerolen", "length 0"),
    ("R", "hugelen", "length 4294967295 over the limit"),
    ("E", "big", "over the limit"),
])
def test_framing_error_reason_logged(make_server, milters, on, do, why):
    """A broken length word is logged with its reason, not an empty one."""
    m = milters.bad(on=on, do=do)
    srv = start_server(make_server, milter_entry(m.spec))
    step, r, c = run_tx(srv)
    quit(c)
    assert step == STEP_OF[on] and r[0] == TEMPFAIL[step], (step, r)
    err = wait_filter_error(srv)[0]
    assert why in err["reason"], err


def test_milter_crash_then_refused(make_server, milters):
    """The milter process dies mid-command (at HELO): 451 to EHLO; it is
    gone for the next session too (socket file left, nobody listening):
    421 at connect, logged as a connect failure; the server lives on."""
    m = milters.bad(on="H", do="exit")
    srv = start_server(make_server, milter_entry(m.spec))
    step, r, c = run_tx(srv)
    quit(c)
    assert step == "helo" and r[0] == 451, (step, r)
    helpers.wait_for(lambda: not m.alive(), timeout=3)
    c = srv.raw(greet=False)
    r = c.reply()
    assert r[0] == 421, r
    assert c.closed(timeout=3)
    c.close()
    errs = wait_filter_error(srv, 2)
    assert "closed the connection" in errs[0]["reason"], errs
    assert errs[1]["stage"] == "connect"
    assert "refused" in errs[1]["reason"].lower(), errs


# -- the other default actions ------------------------------------------------

@pytest.mark.parametrize("on,do", [("C", "close"), ("R", "unknown"),
                                   ("E", "hang")])
def test_default_reject(make_server, milters, on, do):
    m = milters.bad(on=on, do=do, conn=1)
    srv = start_server(make_server, milter_entry(
        m.spec, "reject", timeouts={"content": "1s"}))
    step, r, c = run_tx(srv)
    want = STEP_OF[on]
    assert step == want, (step, r)
    assert r[0] == REJECT[want], r
    if want == "connect":
        assert c.closed(timeout=3)
    quit(c)
    assert wait_filter_error(srv)[0]["action"] == "reject"
    good_session(srv)


@pytest.mark.parametrize("on,do", [("O", "version99"), ("C", "close"),
                                   ("R", "unknown"), ("T", "payload"),
                                   ("E", "hang"),
                                   ("E", "mod")])
def test_default_accept_delivers_unfiltered(make_server, milters, on, do):
    m = milters.bad(on=on, do=do)
    srv = start_server(make_server, milter_entry(
        m.spec, "accept", timeouts={"content": "1s"}))
    msg = new_message()
    step, r, c = run_tx(srv, msg, rcpts=("alice@example.test",
                                         "bob@example.test"))
    quit(c)
    assert step == "done", (step, r)
    helpers.queued_id(r)
    for user in ("alice", "bob"):
        data = mail_with(srv, user, msg["Subject"])
        assert b"X-Bad-Milter" not in data
    assert wait_filter_error(srv)[0]["action"] == "continue"
    # one connection only, and nothing sent to it after the failure
    seen = cmds(m, 1)
    assert conns(m) == [1]
    assert seen[-1] == on, seen
    assert seen.count(on) == 1


def test_default_accept_second_rcpt_not_sent(make_server, milters):
    """After the failure at the first RCPT, the second RCPT and the message
    are not sent to the milter (default action, no reconnect)."""
    m = milters.bad(on="R", do="payload")
    srv = start_server(make_server, milter_entry(m.spec, "accept"))
    msg = new_message()
    step, r, c = run_tx(srv, msg, rcpts=("alice@example.test",
                                         "bob@example.test"))
    quit(c)
    assert step == "done", (step, r)
    mail_with(srv, "bob", msg["Subject"])
    helpers.wait_for(lambda: m.events("close"), timeout=3)
    assert cmds(m, 1).count("R") == 1
    assert "E" not in cmds(m, 1)
    assert conns(m) == [1]


@pytest.mark.parametrize("on,do", [("C", "close"), ("M", "unknown"),
                                   ("E", "hang"), ("E", "big")])
def test_default_quarantine(make_server, milters, on, do):
    m = milters.bad(on=on, do=do)
    srv = start_server(make_server, milter_entry(
        m.spec, "quarantine", timeouts={"content": "1s"}))
    msg = new_message()
    step, r, c = run_tx(srv, msg)
    quit(c)
    assert step == "done", (step, r, srv.log()[-2000:])
    qid = helpers.queued_id(r)
    helpers.wait_for(lambda: qid in srv.spool_files("quarantine"),
                     timeout=5, msg=f"{qid} in quarantine/; log:\n"
                     + srv.log()[-2000:])
    with open(os.path.join(srv.spool, "quarantine", qid), "rb") as f:
        assert msg["Subject"].encode() in f.read()
    assert wait_filter_error(srv)[0]["action"] == "quarantine"
    time.sleep(0.3)
    assert not delivered(srv, "alice", msg["Subject"])
    assert srv.alive()


# -- unreachable / refusing sockets -------------------------------------------

def test_unreachable_socket_then_milter_appears(make_server, milters,
                                                tmp_path):
    """No socket file: 421 at connect and logged; once the milter listens
    there, the next session uses it (a new connection per session)."""
    sock_dir = tmp_path / "later"
    path = str(sock_dir / "milter.sock")
    srv = start_server(make_server, milter_entry(f"unix:{path}"))
    c = srv.raw(greet=False)
    r = c.reply()
    assert r[0] == 421, r
    assert c.closed(timeout=3)
    c.close()
    err = wait_filter_error(srv)[0]
    assert err["stage"] == "connect" and err["action"] == "tempfail"
    assert "connect" in err["reason"], err
    m = milters.bad(on="E", do="none", name="later")
    assert m.sock == path
    good_session(srv)
    assert conns(m) == [1]


@pytest.mark.parametrize("action,code", [("tempfail", 421), ("reject", 554)])
def test_connection_refused(make_server, tmp_path, action, code):
    """A socket file nobody listens on: connection refused."""
    path = str(tmp_path / "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)            # bound, never listening: ECONNREFUSED
    try:
        srv = start_server(make_server, milter_entry(f"unix:{path}",
                                                     action))
        for _ in range(2):          # the server goes on serving
            c = srv.raw(greet=False)
            r = c.reply()
            assert r[0] == code, r
            assert c.closed(timeout=3)
            c.close()
        errs = wait_filter_error(srv, 2)
        assert all(e["stage"] == "connect" for e in errs)
        assert all(e["action"] == action for e in errs)
        assert all("refused" in e["reason"].lower() for e in errs), errs
    finally:
        s.close()


def test_connection_refused_accept(make_server, tmp_path):
    path = str(tmp_path / "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    try:
        srv = start_server(make_server, milter_entry(f"unix:{path}",
                                                     "accept"))
        good_session(srv)
        # default_action accept is logged as action=continue
        assert wait_filter_error(srv)[0]["action"] == "continue"
    finally:
        s.close()


# -- stickiness within a session ----------------------------------------------

def test_failure_sticks_for_the_session_without_reconnect(make_server,
                                                          milters):
    """Broken at the first MAIL (EOF): every later MAIL of the session is
    tempfailed again without a new connection or a new log line per try;
    the next session connects again and works."""
    m = milters.bad(on="M", do="close", conn=1)
    srv = start_server(make_server, milter_entry(m.spec))
    c = srv.raw()
    helpers.ehlo(c)
    for _ in range(3):
        r = c.cmd("MAIL FROM:<sender@remote.test>")
        assert r[0] == 450, r
        helpers.check(c.cmd("RSET"), 250)
    # a repeated EHLO gets the default action too, without reconnecting
    assert c.cmd("EHLO client.example.test")[0] == 451
    quit(c)
    assert conns(m) == [1]
    assert [x for x in cmds(m, 1) if x != "D"] == ["O", "C", "H", "M"], \
        cmds(m, 1)
    wait_filter_error(srv)
    assert len(filter_errors(srv)) == 1, filter_errors(srv)
    good_session(srv)
    assert conns(m) == [1, 2]


def test_accept_default_later_stages_skip_milter(make_server, milters):
    """default accept, broken at MAIL: the whole transaction and a second
    one in the same session go through without the milter."""
    m = milters.bad(on="M", do="hang", conn=1)
    srv = start_server(make_server, milter_entry(
        m.spec, "accept", timeouts={"command": "1s"}))
    m1, m2 = new_message(), new_message()
    step, r, c = run_tx(srv, m1)
    assert step == "done", (step, r)
    step, r, c = run_tx(srv, m2, c=c)
    assert step == "done", (step, r)
    quit(c)
    mail_with(srv, "alice", m1["Subject"])
    mail_with(srv, "alice", m2["Subject"])
    assert len(filter_errors(srv)) == 1
    assert conns(m) == [1]


# -- huge packet ----------------------------------------------------------------

def vm_hwm_kb(pid):
    """Peak RSS of the process (and it is a single process) in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def test_huge_packet_refused_without_allocation(make_server, milters):
    """A 64 MiB 'y' reply (valid framing): refused by its length word,
    the default action applies, and the server's peak memory does not
    grow by the packet's size."""
    size = 64 * 1024 * 1024
    m = milters.bad(on="R", do="big", size=size, conn=1)
    srv = start_server(make_server, milter_entry(m.spec))
    before = vm_hwm_kb(srv.pid)
    step, r, c = run_tx(srv)
    quit(c)
    assert step == "rcpt" and r[0] == 450, (step, r)
    wait_filter_error(srv)      # reason: test_framing_error_reason_logged
    after = vm_hwm_kb(srv.pid)
    assert after - before < size // 1024 // 4, (before, after)
    good_session(srv)


# -- progress, shutdown, connfail ---------------------------------------------

def test_progress_keeps_slow_milter_alive(make_server, milters):
    """'p' every 0.5 s for 3 s at end of message, content timeout 1 s: the
    message is accepted and delivered."""
    m = milters.bad(on="E", do="progress", count=7, interval=0.5)
    srv = start_server(make_server, milter_entry(
        m.spec, timeouts={"content": "1s", "command": "1s"}))
    msg = new_message()
    t0 = time.monotonic()
    step, r, c = run_tx(srv, msg)
    took = time.monotonic() - t0
    quit(c)
    assert step == "done", (step, r, srv.log()[-2000:])
    assert took >= 2.5, took        # it did wait for the milter
    mail_with(srv, "alice", msg["Subject"])
    assert filter_errors(srv) == []


def test_progress_at_rcpt_restarts_command_timer(make_server, milters):
    """'p' works at a command event too: 4 of them 0.5 s apart at RCPT with
    a command timeout of 1 s, then 'c': RCPT is taken."""
    m = milters.bad(on="R", do="progress", count=4, interval=0.5)
    srv = start_server(make_server, milter_entry(
        m.spec, timeouts={"command": "1s"}))
    msg = new_message()
    step, r, c = run_tx(srv, msg)
    quit(c)
    assert step == "done", (step, r, srv.log()[-2000:])
    mail_with(srv, "alice", msg["Subject"])
    assert filter_errors(srv) == []


def test_slow_without_progress_times_out(make_server, milters):
    """The control of the test above: the same 3 s at end of message
    without 'p' replies times out after the 1 s content timeout."""
    m = milters.bad(on="E", do="slow", sleep=3)
    srv = start_server(make_server, milter_entry(
        m.spec, timeouts={"content": "1s"}))
    t0 = time.monotonic()
    step, r, c = run_tx(srv)
    took = time.monotonic() - t0
    quit(c)
    assert step == "dot" and r[0] == 451, (step, r)
    assert took < 2.8, took
    assert "timed out" in wait_filter_error(srv)[0]["reason"]


@pytest.mark.parametrize("on", ["C", "H", "M", "R", "T", "E"])
@pytest.mark.parametrize("do", ["shutdown", "connfail"])
def test_shutdown_and_connfail_close_with_421(make_server, milters, on, do):
    m = milters.bad(on=on, do=do, conn=1)
    srv = start_server(make_server, milter_entry(m.spec, "accept"))
    step, r, c = run_tx(srv)
    assert step == STEP_OF[on], (step, r)
    assert r[0] == 421, r
    assert c.closed(timeout=3)
    c.close()
    # not a failure of the milter: its default action (accept) was not used
    assert filter_errors(srv) == []
    good_session(srv)
    assert conns(m) == [1, 2]


# -- timeouts -------------------------------------------------------------------

def test_command_timeout_at_rcpt(make_server, milters):
    """command timeout 1 s, the milter sleeps 3 s at RCPT: 450 after about
    1 s, well before the sleep would end."""
    m = milters.bad(on="R", do="slow", sleep=3, conn=1)
    srv = start_server(make_server, milter_entry(
        m.spec, timeouts={"command": "1s", "connect": "5s",
                          "content": "5s"}))
    c = srv.raw()
    helpers.ehlo(c)
    helpers.check(c.cmd("MAIL FROM:<sender@remote.test>"), 250)
    t0 = time.monotonic()
    r = c.cmd("RCPT TO:<alice@example.test>")
    took = time.monotonic() - t0
    assert r[0] == 450, r
    assert 0.8 <= took < 2.2, took
    # the session goes on: the next RCPT gets the default action at once
    t0 = time.monotonic()
    assert c.cmd("RCPT TO:<bob@example.test>")[0] == 450
    assert time.monotonic() - t0 < 0.5
    quit(c)
    err = wait_filter_error(srv)[0]
    assert err["stage"] == "rcpt"
    assert "timed out after 1s" in err["reason"], err
    good_session(srv)


def test_waiting_milter_does_not_block_other_sessions(make_server,
                                                      milters):
    """While one session waits for a milter that hangs at RCPT (command
    timeout 3 s), other sessions (on a single worker) run to delivery."""
    m = milters.bad(on="R", do="hang", conn=1)
    srv = start_server(make_server, milter_entry(
        m.spec, timeouts={"command": "3s"}), workers=1)
    c = srv.raw()
    helpers.ehlo(c)
    helpers.check(c.cmd("MAIL FROM:<sender@remote.test>"), 250)
    c.send(b"RCPT TO:<alice@example.test>\r\n")
    m.wait_event("misbehave", timeout=3)
    other = new_message()
    t0 = time.monotonic()
    step, r, c2 = run_tx(srv, other, rcpts=("bob@example.test",))
    took = time.monotonic() - t0
    quit(c2)
    assert step == "done", (step, r)
    assert took < 2, took           # not behind the 3 s wait
    r = c.reply(timeout=5)
    assert r[0] == 450, r
    quit(c)
    mail_with(srv, "bob", other["Subject"])


def test_connect_timeout_covers_negotiation(make_server, milters):
    """connect timeout 1 s, the milter never answers 'O': 421 after about
    1 s, while the command/content timeouts are long."""
    m = milters.bad(on="O", do="hang", conn=1)
    srv = start_server(make_server, milter_entry(
        m.spec, timeouts={"connect": "1s", "command": "30s",
                          "content": "30s"}))
    t0 = time.monotonic()
    c = srv.raw(greet=False)
    r = c.reply()
    took = time.monotonic() - t0
    assert r[0] == 421, r
    assert 0.8 <= took < 2.5, took
    assert c.closed(timeout=3)
    c.close()
    good_session(srv)


def test_content_timeout_at_body(make_server, milters):
    """content timeout 1 s applies to body chunks (command timeout long)."""
    m = milters.bad(on="B", do="hang", conn=1)
    srv = start_server(make_server, milter_entry(
        m.spec, timeouts={"command": "30s", "content": "1s"}))
    t0 = time.monotonic()
    step, r, c = run_tx(srv)
    took = time.monotonic() - t0
    quit(c)
    assert step == "dot" and r[0] == 451, (step, r)
    assert took < 3, took
    good_session(srv)


def test_command_timeout_not_content(make_server, milters):
    """A milter taking 2 s at end of message is fine with command 1 s and
    content 5 s: the end of message waits by the content timeout."""
    m = milters.bad(on="E", do="slow", sleep=2)
    srv = start_server(make_server, milter_entry(
        m.spec, timeouts={"command": "1s", "content": "5s"}))
    msg = new_message()
    step, r, c = run_tx(srv, msg)
    quit(c)
    assert step == "done", (step, r)
    mail_with(srv, "alice", msg["Subject"])
    assert filter_errors(srv) == []
