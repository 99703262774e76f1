"""Queue control: sluicectl list/show/flush/hold/release/delete/bounce
against a running sluiced, and the control socket's handling of bad
requests.

Mail from the local sender alice@example.test to bob@remote.test is relayed
(the loopback client is trusted here) to a Downstream on 127.0.0.1 that
first answers RCPT with 451 and then accepts; retry.first is 1h, so after
the first attempt only an operator's flush can cause the next one. A bounce
to alice lands in her Maildir."""
import json
import os
import socket
import subprocess
import time

import pytest

from conftest import SLUICED
from downstream import Downstream
from helpers import split_headers, submit_message, wait_for

SLUICECTL = os.path.join(os.path.dirname(SLUICED), "sluicectl")
BOB = "bob@remote.test"
BAD = "bad@remote.test"
TRY_LATER = "451 4.3.0 try later"


# -- helpers ---------------------------------------------------------------

def ctl(srv, *args, sock=None, timeout=15):
    """Run sluicectl ARGS -s SOCKET (the server's default socket)."""
    sock = sock or os.path.join(srv.spool, "control")
    return subprocess.run([SLUICECTL, *args, "-s", sock],
                          capture_output=True, text=True, timeout=timeout)


def ctl_ok(srv, *args, **kw):
    r = ctl(srv, *args, **kw)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r.stdout


def jlines(text):
    """JSON lines output -> list of dicts (each line must parse)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def ds():
    """A downstream that says 451 to the first RCPT for bob, then 250."""
    with Downstream(rcpt_replies={BOB: [TRY_LATER, None]}) as d:
        yield d


def relay_server(make_server, d, extra=None):
    cfg = {"trusted_networks": ["127.0.0.0/8"],
           "routes": {"remote.test": f"smtp:[127.0.0.1]:{d.port}"},
           "retry": {"first": "1h", "max_interval": "1h"}}
    cfg.update(extra or {})
    return make_server(cfg)


def send(srv, rcpts=(BOB,), sender="alice@example.test", subject="ctl test",
         body=b"hello\r\n", mail_params="", headers=b""):
    data = (b"From: <" + sender.encode() + b">\r\nTo: <" +
            rcpts[0].encode() + b">\r\nSubject: " + subject.encode() +
            b"\r\n" + headers + b"\r\n" + body + b".\r\n")
    return submit_message(srv, sender, rcpts, data, mail_params)


def lines_with(srv, *parts):
    return [l for l in srv.log_lines() if all(p in l for p in parts)]


def log_has(srv, *parts):
    return any(all(p in line for p in parts) for line in srv.log_lines())


def wait_log(srv, *parts, timeout=10):
    wait_for(lambda: log_has(srv, *parts), timeout=timeout,
             msg=" ".join(parts) + " in the log:\n" + srv.log()[-3000:])


def deferred_message(srv, **kw):
    """Queue a message for bob and wait until its first attempt deferred."""
    qid = send(srv, **kw)
    wait_log(srv, f"qid={qid} event=deferred")
    return qid


def rcpt_count(d, addr=BOB):
    return sum(1 for _, v, a in d.commands()
               if v == "RCPT" and addr in (a or ""))


def msg_record(recs, qid):
    [m] = [r for r in recs if r["kind"] == "msg" and r["id"] == qid]
    return m


# -- list and show -----------------------------------------------------------

def test_list_empty_queue(make_server, ds):
    """An empty queue: 'Mail queue is empty', nothing with --json, exit 0."""
    srv = relay_server(make_server, ds)
    assert ctl_ok(srv, "list").strip() == "Mail queue is empty"
    assert ctl_ok(srv, "list", "--json").strip() == ""
    assert log_has(srv, "event=control command=list")


def test_list_shows_deferred_message(make_server, ds):
    """list: queue ID, size, arrival, sender, the pending recipient and the
    last error (the downstream's reply), like mailq; --json the same as
    one JSON object per line."""
    srv = relay_server(make_server, ds)
    t0 = time.time()
    qid = deferred_message(srv, rcpts=(BOB, "carl@remote.test"))
    out = ctl_ok(srv, "list")
    lines = out.splitlines()
    first = lines[0].split()
    assert first[0] == qid, out
    size = int(first[1])
    assert 100 < size < 1000, out
    assert first[-1] == "alice@example.test", out
    assert "deferred, 1 of 2 recipients pending, 1 attempts" in out, out
    assert "next in" in out, out
    assert "last error:" in out and TRY_LATER in out, out
    assert f"pending   {BOB}" in out, out
    assert "carl@remote.test" not in out, out      # delivered: not listed
    assert lines[-1] == "-- 1 message", out

    recs = jlines(ctl_ok(srv, "list", "--json"))
    m = msg_record(recs, qid)
    assert m["queue"] == "queue" and m["state"] == "deferred", m
    assert m["sender"] == "alice@example.test", m
    assert (m["recipients"], m["pending"], m["attempts"]) == ("2", "1", "1")
    assert int(m["size"]) == size
    assert t0 - 2 <= int(m["arrival"]) <= time.time() + 1, m
    assert 3500 < int(m["next"]) - time.time() <= 3600, m
    assert TRY_LATER in m["error"], m
    rc = {r["addr"]: r for r in recs if r["kind"] == "rcpt"}
    assert rc[BOB]["state"] == "pending"
    assert rc[BOB]["reply"] == TRY_LATER
    assert rc[BOB]["remote"], rc
    assert rc["carl@remote.test"]["state"] == "delivered"
    assert rc["carl@remote.test"]["reply"].startswith("250 ")


def test_show_message_details(make_server, ds, tmp_path):
    """show ID: the message line, the envelope (client, helo, listener,
    protocol, ENVID, RET), its transaction tags, every recipient with its
    state and reason, and the header section."""
    script = tmp_path / "tag.lua"
    script.write_text('local f = {}\n'
                      'function f.message(ctx) ctx:tag("ctl.test", "v 1%") '
                      'end\nreturn f\n')
    srv = relay_server(make_server, ds,
                       {"pipeline": [{"lua": str(script)}]})
    qid = deferred_message(srv, mail_params=" RET=HDRS ENVID=env+2B1",
                           headers=b"X-Probe: show me\r\n")
    recs = jlines(ctl_ok(srv, "show", qid, "--json"))
    kinds = [r["kind"] for r in recs]
    assert kinds[0] == "msg" and "env" in kinds and "rcpt" in kinds, kinds
    m = recs[0]
    assert m["id"] == qid and m["state"] == "deferred", m
    [env] = [r for r in recs if r["kind"] == "env"]
    assert env["client"] == "127.0.0.1" and env["listener"] == "mx", env
    assert env["helo"] == "client.example.test", env
    assert env["protocol"] == "ESMTP", env
    assert env["ret"] == "HDRS" and env["envid"] == "env+2B1", env
    tags = {r["key"]: r["value"] for r in recs if r["kind"] == "tag"}
    assert tags.get("ctl.test") == "v 1%", recs
    [rc] = [r for r in recs if r["kind"] == "rcpt"]
    assert rc["addr"] == BOB and rc["state"] == "pending", rc
    assert TRY_LATER in rc["reason"], rc
    hdrs = [r["line"] for r in recs if r["kind"] == "header"]
    assert hdrs[0].startswith("Received: from "), hdrs
    assert "Subject: ctl test" in hdrs and "X-Probe: show me" in hdrs, hdrs
    assert not any(h.startswith("hello") for h in hdrs), hdrs   # no body

    out = ctl_ok(srv, "show", qid)
    assert out.startswith(qid), out
    assert "client [127.0.0.1] helo client.example.test, listener mx" in out
    assert "tag ctl.test = v 1%" in out, out
    assert f"pending   {BOB}  (4.3.0 " in out, out
    assert "  | Subject: ctl test" in out and "  | X-Probe: show me" in out
    assert "hello" not in out.split("  | X-Probe")[1], out


def test_json_is_valid_with_8bit_headers(make_server, ds):
    """show --json prints valid JSON (UTF-8) even when a header of the
    message holds raw 8-bit bytes (accepted with BODY=8BITMIME): UTF-8
    text comes through, other bytes are escaped or replaced, never emitted
    raw."""
    srv = relay_server(make_server, ds)
    qid = deferred_message(
        srv, mail_params=" BODY=8BITMIME",
        headers=b"X-Utf8: Gr\xc3\xbc\xc3\x9fe\r\nX-Latin1: caf\xe9\r\n")
    r = subprocess.run([SLUICECTL, "show", qid, "--json", "-s",
                        os.path.join(srv.spool, "control")],
                       capture_output=True, timeout=15)
    assert r.returncode == 0, r
    text = r.stdout.decode("utf-8")         # must be UTF-8
    recs = jlines(text)
    hdrs = [x["line"] for x in recs if x["kind"] == "header"]
    assert "X-Utf8: Grüße" in hdrs, hdrs
    [lat] = [h for h in hdrs if h.startswith("X-Latin1: caf")]
    assert len(lat) == len("X-Latin1: caf") + 1 or "\\" in lat, lat
    jlines(ctl_ok(srv, "list", "--json"))


def test_show_large_header_section(make_server, ds):
    """A header section larger than what show returns (64 KiB): complete
    lines only, in order, and an answer larger than sluicectl's first read
    buffer arrives whole (every line is valid JSON)."""
    srv = relay_server(make_server, ds)
    big = b"".join(b"X-Big-%03d: %s\r\n" % (i, b"%" * 900)
                   for i in range(100))
    qid = deferred_message(srv, headers=big)
    recs = jlines(ctl_ok(srv, "show", qid, "--json"))
    hdrs = [r["line"] for r in recs if r["kind"] == "header"]
    bigs = [h for h in hdrs if h.startswith("X-Big-")]
    assert 60 <= len(bigs) < 100, len(bigs)
    for i, h in enumerate(bigs):
        assert h == "X-Big-%03d: %s" % (i, "%" * 900), h[:40]
    out = ctl_ok(srv, "show", qid)
    assert out.count("  | X-Big-") == len(bigs)


def test_list_counts_several_messages(make_server, ds):
    """Several deferred messages are all listed, sorted by queue ID, with
    a count line."""
    srv = relay_server(make_server, ds)
    ds.rcpt_replies = {BOB: TRY_LATER}
    qids = [deferred_message(srv) for _ in range(3)]
    out = ctl_ok(srv, "list")
    listed = [l.split()[0] for l in out.splitlines()
              if l and not l.startswith((" ", "--"))]
    assert listed == sorted(qids), out
    assert out.splitlines()[-1] == "-- 3 messages", out
    recs = jlines(ctl_ok(srv, "list", "--json"))
    assert sorted(r["id"] for r in recs if r["kind"] == "msg") == \
        sorted(qids)


# -- flush -------------------------------------------------------------------

def test_flush_one_then_all(make_server, ds):
    """flush ID retries that message now (and only it); flush without an
    ID retries every deferred message. Without flush nothing is retried
    (retry.first is 1h)."""
    srv = relay_server(make_server, ds)
    ds.rcpt_replies = {BOB: [TRY_LATER, TRY_LATER, None],
                       "carl@remote.test": [TRY_LATER, None]}
    a = deferred_message(srv)
    b = deferred_message(srv)
    c = deferred_message(srv, rcpts=("carl@remote.test",))
    time.sleep(1.0)
    assert rcpt_count(ds) == 2 and len(ds.messages) == 0   # no retry
    assert ctl_ok(srv, "flush", b) == ""
    wait_log(srv, f"qid={b} event=removed")
    [m] = ds.wait_messages(1)
    assert b in m.data.decode(), "flushed message delivered"
    assert not log_has(srv, f"qid={a} event=removed")
    assert set(srv.queued_ids()) == {a, c}
    assert ctl_ok(srv, "flush") == ""
    wait_log(srv, f"qid={a} event=removed")
    wait_log(srv, f"qid={c} event=removed")
    srv.wait_queue_empty()
    assert len(ds.wait_messages(3)) == 3
    assert ctl_ok(srv, "list").strip() == "Mail queue is empty"
    assert not srv.maildir_files("alice")        # no bounce, no warning


# -- hold and release ----------------------------------------------------------

def test_hold_is_not_delivered_even_on_flush_then_release(make_server, ds):
    """hold ID moves the message to hold/: list shows it held, neither
    flush nor flush ID delivers it; release ID delivers it at once."""
    srv = relay_server(make_server, ds)
    qid = deferred_message(srv)
    assert ctl_ok(srv, "hold", qid) == ""
    wait_log(srv, f"qid={qid} event=held")
    assert os.path.exists(os.path.join(srv.spool, "hold", qid))
    assert qid not in srv.queued_ids()
    m = msg_record(jlines(ctl_ok(srv, "list", "--json")), qid)
    assert m["queue"] == "hold" and m["state"] == "held", m
    assert "held, 1 of 1 recipients pending" in ctl_ok(srv, "list")
    assert msg_record(jlines(ctl_ok(srv, "show", qid, "--json")),
                      qid)["state"] == "held"
    ctl_ok(srv, "flush")
    ctl(srv, "flush", qid)               # refused or a no-op: not delivered
    time.sleep(1.5)
    assert rcpt_count(ds) == 1 and not ds.messages, ds.commands()
    assert os.path.exists(os.path.join(srv.spool, "hold", qid))

    assert ctl_ok(srv, "release", qid) == ""
    wait_log(srv, f"qid={qid} event=released")
    wait_log(srv, f"qid={qid} event=removed")
    [m] = ds.wait_messages(1)
    assert m.rcpt_tos == [BOB]
    assert not os.path.exists(os.path.join(srv.spool, "hold", qid))
    assert ctl_ok(srv, "list").strip() == "Mail queue is empty"
    r = ctl(srv, "release", qid)             # not held any more
    assert r.returncode == 1 and "no such message" in r.stderr, r


def test_held_message_stays_held_across_restart(make_server, ds):
    """A held message is not picked up by the recovery at start; it can
    be released after the restart."""
    srv = relay_server(make_server, ds)
    qid = deferred_message(srv)
    ctl_ok(srv, "hold", qid)
    wait_log(srv, f"qid={qid} event=held")
    srv.restart()
    time.sleep(1.0)
    assert rcpt_count(ds) == 1 and not ds.messages
    assert msg_record(jlines(ctl_ok(srv, "list", "--json")),
                      qid)["state"] == "held"
    ctl_ok(srv, "release", qid)
    ds.wait_messages(1, timeout=10)
    wait_log(srv, f"qid={qid} event=removed")


def test_hold_during_running_attempt_applies_after_it(make_server, ds):
    """A message whose attempt is running is listed as active; hold and
    the attempt ends deferred: the message is then held, not rescheduled."""
    srv = relay_server(make_server, ds)
    qid = deferred_message(srv)
    ds.configure(rcpt_replies={BOB: TRY_LATER}, slow={"RCPT": 3})
    ctl_ok(srv, "flush", qid)
    ds.wait_commands("RCPT", 2, timeout=10)
    m = msg_record(jlines(ctl_ok(srv, "list", "--json")), qid)
    assert m["state"] == "active", m
    assert ctl_ok(srv, "hold", qid) == ""
    wait_log(srv, f"qid={qid} event=held", timeout=15)
    assert log_has(srv, f"qid={qid} event=deferred attempts=2")
    assert os.path.exists(os.path.join(srv.spool, "hold", qid))
    assert qid not in srv.queued_ids()


@pytest.mark.parametrize("op", ["delete", "bounce"])
def test_delete_or_bounce_during_running_attempt(make_server, ds, op):
    """delete / bounce of a message whose attempt is running: accepted at
    once, carried out when the attempt ends deferred (delete: gone without
    a DSN; bounce: one failure DSN), never both."""
    srv = relay_server(make_server, ds)
    qid = deferred_message(srv)
    ds.configure(rcpt_replies={BOB: TRY_LATER}, slow={"RCPT": 2})
    ctl_ok(srv, "flush", qid)
    ds.wait_commands("RCPT", 2, timeout=10)
    assert ctl_ok(srv, op, qid) == ""
    wait_log(srv, f"qid={qid} event=deferred attempts=2", timeout=15)
    if op == "delete":
        wait_log(srv, f"qid={qid} event=deleted")
        time.sleep(0.5)
        assert not srv.maildir_files("alice")
    else:
        wait_log(srv, f"qid={qid} event=removed")
        [dsn] = srv.wait_mail("alice")
        assert BOB.encode() in dsn
        assert len(lines_with(srv, f"qid={qid} event=dsn")) == 1
    srv.wait_queue_empty(timeout=10)    # the DSN, if any, delivered too
    assert not ds.messages
    assert rcpt_count(ds) == 2


def test_list_shows_null_sender(make_server, ds):
    """A DSN waiting in the queue (its own delivery deferred) is listed
    with the null sender as <>."""
    ds.rcpt_replies = {BAD: "550 5.1.1 no such user",
                       "x@remote.test": TRY_LATER}
    srv = relay_server(make_server, ds)
    qid = send(srv, rcpts=(BAD,), sender="x@remote.test")
    [dsn] = wait_for(lambda: lines_with(srv, f"qid={qid} event=dsn"),
                     timeout=10, msg="a DSN")
    dsn_qid = dsn.split("dsn_qid=")[1].split()[0]
    wait_log(srv, f"qid={dsn_qid} event=deferred")
    m = msg_record(jlines(ctl_ok(srv, "list", "--json")), dsn_qid)
    assert m["sender"] == "<>", m
    out = ctl_ok(srv, "list")
    assert [l for l in out.splitlines()
            if l.startswith(dsn_qid)][0].endswith("  <>"), out


# -- delete and bounce -------------------------------------------------------

def test_delete_removes_without_bounce(make_server, ds):
    """delete ID removes a deferred message (and a held one) for good: no
    bounce to the sender, no delivery, gone from list and show."""
    srv = relay_server(make_server, ds)
    ds.rcpt_replies = {BOB: TRY_LATER}
    a = deferred_message(srv)
    b = deferred_message(srv)
    ctl_ok(srv, "hold", b)
    wait_log(srv, f"qid={b} event=held")
    assert ctl_ok(srv, "delete", a) == ""
    assert ctl_ok(srv, "delete", b) == ""
    wait_log(srv, f"qid={a} event=deleted")
    wait_log(srv, f"qid={b} event=deleted")
    assert srv.queued_ids() == [] and not os.listdir(
        os.path.join(srv.spool, "hold"))
    assert ctl_ok(srv, "list").strip() == "Mail queue is empty"
    r = ctl(srv, "show", a)
    assert r.returncode == 1 and "no such message" in r.stderr, r
    ctl_ok(srv, "flush")
    time.sleep(1.0)
    assert not srv.maildir_files("alice"), "no bounce after delete"
    assert not log_has(srv, "event=dsn")
    assert not ds.messages and rcpt_count(ds) == 2


def test_bounce_sends_failure_dsn(make_server, ds):
    """bounce ID fails the pending recipients now: one failure DSN to the
    (local) sender naming the recipient, the message is removed, nothing
    is delivered."""
    srv = relay_server(make_server, ds)
    qid = deferred_message(srv, subject="bounce me")
    assert ctl_ok(srv, "bounce", qid) == ""
    wait_log(srv, f"qid={qid} event=dsn kind=failure")
    wait_log(srv, f"qid={qid} event=removed")
    assert log_has(srv, f"qid={qid} event=delivery", f"<{BOB}>",
                   "status=bounced")
    [dsn] = srv.wait_mail("alice", timeout=10)
    headers, body = split_headers(dsn)
    assert any(h.lower().startswith("content-type: multipart/report")
               for h in headers), headers
    assert f"Final-Recipient: rfc822; {BOB}" in body.replace("\r", ""), body
    assert "Action: failed" in body, body
    assert "Subject: bounce me" in body, body        # original headers
    assert not ds.messages and rcpt_count(ds) == 1
    srv.wait_queue_empty(timeout=10)    # the DSN leaves after its delivery
    time.sleep(0.5)
    assert len(srv.maildir_files("alice")) == 1      # exactly one


def test_bounce_held_message(make_server, ds):
    """A held message can be bounced: the operator's decision, the message
    exists (show finds it), so bounce must not say 'no such message'."""
    srv = relay_server(make_server, ds)
    qid = deferred_message(srv)
    ctl_ok(srv, "hold", qid)
    wait_log(srv, f"qid={qid} event=held")
    r = ctl(srv, "bounce", qid)
    assert r.returncode == 0, (r.stdout, r.stderr)
    [dsn] = srv.wait_mail("alice", timeout=10)
    assert BOB.encode() in dsn
    wait_for(lambda: not os.listdir(os.path.join(srv.spool, "hold")),
             timeout=10, msg="hold/ empty")
    assert not ds.messages


# -- errors ------------------------------------------------------------------

def test_unknown_and_malformed_ids_are_errors(make_server, ds):
    """Every command with a queue ID that is not queued: a message on
    stderr and exit status 1; an ID of the wrong form: likewise."""
    srv = relay_server(make_server, ds)
    unknown = "1j1b000000000a"
    for cmd in ("show", "flush", "hold", "release", "delete", "bounce"):
        r = ctl(srv, cmd, unknown)
        assert r.returncode == 1, (cmd, r)
        assert "no such message" in r.stderr, (cmd, r.stderr)
        assert r.stdout == "", (cmd, r.stdout)
        r = ctl(srv, cmd, "not-a-qid")
        assert r.returncode == 1, (cmd, r)
        assert "not a queue ID" in r.stderr, (cmd, r.stderr)


def test_usage_errors(make_server, ds):
    """Missing or extra arguments and unknown commands: exit status 2 and
    a message, without talking to the server."""
    srv = relay_server(make_server, ds)
    for args, text in ((("hold",), "queue ID is needed"),
                       (("show",), "queue ID is needed"),
                       (("list", "1j1b000000000a"), "takes no queue ID"),
                       (("list", "--bogus"), "unexpected"),
                       (("frobnicate",), "unknown command")):
        r = ctl(srv, *args)
        assert r.returncode == 2, (args, r)
        assert text in r.stderr, (args, r.stderr)
    r = subprocess.run([SLUICECTL], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2 and "usage" in r.stderr
    assert not log_has(srv, "event=control")


def test_server_not_running(make_server, ds, tmp_path):
    """No sluiced behind the socket (never started, or stopped): a clear
    error naming the socket and exit status 2, for every command."""
    sock = str(tmp_path / "nothing.sock")
    for args in (("list",), ("list", "--json"), ("flush",),
                 ("show", "1j1b000000000a"), ("hold", "1j1b000000000a")):
        r = subprocess.run([SLUICECTL, *args, "-s", sock],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, (args, r)
        assert "cannot reach sluiced" in r.stderr and sock in r.stderr, r
        assert r.stdout == ""
    srv = relay_server(make_server, ds)
    ctl_ok(srv, "list")
    srv.stop()
    r = ctl(srv, "list")
    assert r.returncode == 2 and "cannot reach sluiced" in r.stderr, r
    r = subprocess.run([SLUICECTL, "-c", srv.cfg_path, "list"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "cannot reach sluiced" in r.stderr, r


def test_socket_from_config(make_server, ds, tmp_path):
    """-c CONFIG takes the socket from control.socket (and without it,
    SPOOL/control); a bad config is an error with exit status 2."""
    sock = str(tmp_path / "ctl.sock")
    srv = relay_server(make_server, ds, {"control": {"socket": sock}})
    qid = deferred_message(srv)
    assert os.path.exists(sock)
    assert not os.path.exists(os.path.join(srv.spool, "control"))
    r = subprocess.run([SLUICECTL, "-c", srv.cfg_path, "list"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and qid in r.stdout, r
    r = subprocess.run([SLUICECTL, "-c", srv.cfg_path, "flush", qid],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r
    ds.wait_messages(1)
    bad = tmp_path / "bad.yaml"
    bad.write_text("listeners: [\n")
    r = subprocess.run([SLUICECTL, "-c", str(bad), "list"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "bad.yaml" in r.stderr, r


def test_default_socket_with_config(make_server, ds):
    """Without control.socket, -c CONFIG finds SPOOL/control."""
    srv = relay_server(make_server, ds)
    qid = deferred_message(srv)
    r = subprocess.run([SLUICECTL, "-c", srv.cfg_path, "list", "--json"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r
    assert msg_record(jlines(r.stdout), qid)["state"] == "deferred"


# -- the control socket, raw -------------------------------------------------

def raw_request(srv, data, close_write=False, timeout=12):
    """Send bytes to the control socket, return everything it answers
    until it closes (b'' if it closes silently)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(os.path.join(srv.spool, "control"))
    try:
        try:
            if data:
                s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass                        # it answered and closed early
        if close_write:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                break
            if not d:
                break
            out += d
        return out
    finally:
        s.close()


def still_serving(srv):
    out = raw_request(srv, b"list\n")
    assert out.startswith(b"ok\n"), out
    return out


@pytest.mark.parametrize("data, reply", [
    (b"\x00\xff\xfe garbage \x01\x02\n", b"error "),
    (b"x" * 100_000 + b"\n", b"error "),
    (b"list " + b"y" * 600 + b"\n", b"error "),
    (b"frobnicate\n", b"error unknown command"),
    (b"\n", b"error "),
    (b"hold\n", b"error this command needs a queue ID"),
    (b"list 1j1b000000000a\n", b"error "),
    (b"show ../../etc/pass\n", b"error not a queue ID"),
    (b"delete 1j1b000000000a extra\n", b"error not a queue ID"),
    (b"show 1j1b000000000a\n", b"error no such message"),
    (b"LIST\n", b"error unknown command"),
    (b"list\r\n", b"ok\n"),
])
def test_control_socket_bad_requests(make_server, ds, data, reply):
    """Each malformed request gets an 'error ...' line (or an answer for a
    good one) and the connection is closed; the server keeps serving."""
    srv = relay_server(make_server, ds)
    out = raw_request(srv, data)
    assert out.startswith(reply), out[:200]
    assert out.endswith(b"\n") and out.count(b"\n") == 1 or \
        reply == b"ok\n", out[:200]
    still_serving(srv)
    assert srv.alive()


def test_control_socket_half_request_and_hangups(make_server, ds):
    """A half request then close, connections closed at once or with a
    partial line: no answer, no harm; several requests on one connection:
    only the first is answered; the server keeps serving (SMTP too)."""
    srv = relay_server(make_server, ds)
    qid = deferred_message(srv)
    assert raw_request(srv, b"sho", close_write=True) == b""
    for data in (b"", b"flu", b"list", b"x" * 400) * 8:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(os.path.join(srv.spool, "control"))
        try:
            if data:
                s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass        # over CONTROL_CLIENTS: closed at once, fine too
        s.close()
    wait_for(lambda: raw_request(srv, b"list\n").startswith(b"ok\n"),
             timeout=5, interval=0.2, msg="the control socket serving")
    out = raw_request(srv, b"list\nflush\nfrobnicate\n")
    assert out.startswith(b"ok\n") and qid.encode() in out, out
    assert b"\nerror " not in out, out
    assert not log_has(srv, "command=flush")
    ds.rcpt_replies = {}
    send(srv, rcpts=("alice@example.test",))
    srv.wait_mail("alice")


@pytest.mark.parametrize("request_line", [b"list\n", b"show QID\n",
                                          b"frobnicate\n"])
def test_control_socket_client_gone_before_answer(make_server, ds,
                                                  request_line):
    """Clients that send a request and go away before reading the answer
    (sluicectl killed, `sluicectl list | head -1`) must not use up the
    control socket's connection slots: after many of them, requests are
    still served (100 of them: an immediate answer may be written before
    the client is gone)."""
    srv = relay_server(make_server, ds)
    qid = deferred_message(srv)
    line = request_line.replace(b"QID", qid.encode())
    path = os.path.join(srv.spool, "control")
    for _ in range(100):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            s.sendall(line)
        except OSError:
            pass                    # 'error busy' and closed: fine here
        s.close()

    def served():
        try:
            return raw_request(srv, b"list\n").startswith(b"ok\n")
        except BlockingIOError:     # listen backlog still full of the 100
            return False
    wait_for(served, timeout=5, interval=0.2,
             msg="the control socket serving again (not 'error busy')")
    r = ctl(srv, "list")
    assert r.returncode == 0 and qid in r.stdout, r


def test_control_socket_client_limit_and_timeout(make_server, ds):
    """More idle control connections than the server takes at once: the
    extra one is told 'error busy'; the silent ones are told 'error
    timeout' after 10 s and closed, and requests are served again."""
    srv = relay_server(make_server, ds)
    path = os.path.join(srv.spool, "control")
    idle = []
    try:
        for _ in range(16):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(15)
            s.connect(path)
            idle.append(s)
        time.sleep(0.3)
        out = raw_request(srv, b"list\n")
        assert out.startswith(b"error busy"), out
        t0 = time.monotonic()
        for s in idle:
            out = b""
            while True:
                d = s.recv(4096)
                if not d:
                    break
                out += d
            assert out == b"error timeout\n", out
        assert 8 < time.monotonic() - t0 < 15
    finally:
        for s in idle:
            s.close()
    wait_for(lambda: raw_request(srv, b"list\n").startswith(b"ok\n"),
             timeout=5, interval=0.2, msg="served again")


def test_socket_is_private(make_server, ds):
    """The control socket is a socket that only its owner can use."""
    import stat
    srv = relay_server(make_server, ds)
    st = os.stat(os.path.join(srv.spool, "control"))
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) & 0o077 == 0, oct(st.st_mode)
