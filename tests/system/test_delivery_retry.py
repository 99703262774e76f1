"""Outbound delivery over time (issue 4): the retry schedule, per-domain
retry settings, expiry with its failure DSN, the one-time delay warning,
and durability of the delivery state across kill -9 and restarts.

Mail comes from a trusted loopback client with the local sender
alice@example.test (DSNs land in her Maildir) and is relayed by a route to
a programmable Downstream on 127.0.0.1. Helpers are shared with
test_delivery_faults.py.
"""
import json
import os
import subprocess
import time

import pytest

import conftest
from downstream import Downstream
from procs import free_port
from helpers import check, ehlo, queued_id, send_data, wait_for
from test_delivery_faults import (SENDER, assert_no_leftovers, deliveries,
                                  dsn_parts, dsn_text, events, no_dsn,
                                  rcpt_states, relay_config, status_record,
                                  submit, token_count, wait_delivery,
                                  wait_event)

SLUICECTL = os.path.join(os.path.dirname(conftest.SLUICED), "sluicectl")


def ctl(srv, *args, check_rc=True):
    """Run sluicectl against srv's control socket (bounded)."""
    p = subprocess.run([SLUICECTL, *args, "-s",
                        os.path.join(srv.spool, "control")],
                       capture_output=True, text=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    if check_rc:
        assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p


def submit_params(srv, rcpts, sender=SENDER, token="t"):
    """Queue one message; rcpts is a list of (address, RCPT parameters)."""
    c = srv.raw()
    try:
        ehlo(c)
        check(c.cmd(f"MAIL FROM:<{sender}>"), 250)
        for addr, params in rcpts:
            check(c.cmd(f"RCPT TO:<{addr}>{params}"), 250)
        msg = (f"From: <{sender or 'nobody@example.test'}>\r\n"
               f"To: <{rcpts[0][0]}>\r\nSubject: {token}\r\n\r\n"
               f"line 0 of message {token}\r\n.\r\n")
        qid = queued_id(send_data(c, msg))
        c.cmd("QUIT")
    finally:
        c.close()
    return qid


def deferred_events(srv, qid):
    return events(srv, qid, "deferred")


def mail_count(d):
    return sum(1 for c in d.commands() if c[1] == "MAIL")


def ts(e):
    """Seconds (float) of a log event's timestamp, for differences."""
    t = e["_ts"]
    return (int(t[11:13]) * 3600 + int(t[14:16]) * 60 + float(t[17:-1]))


# -- 4. retry schedule ------------------------------------------------------

def test_retry_interval_doubles_up_to_max(make_server):
    """retry first 1s, max_interval 2s, a server that always says 451: the
    deferred log lines say next_in 1, 2, 2, 2 (doubling, capped) and the
    attempts really come that far apart."""
    with Downstream(mail_reply="451 4.3.0 not now") as d:
        srv = make_server(relay_config(
            d.port, retry={"first": "1s", "max_interval": "2s"}))
        qid = submit(srv, ["x@remote.test"], token="sched")
        evs = wait_event(srv, qid, "deferred", count=4, timeout=14)[:4]
        assert [e["attempts"] for e in evs] == ["1", "2", "3", "4"], evs
        want = [1, 2, 2, 2]
        got = [int(e["next_in"].rstrip("s")) for e in evs]
        for g, w in zip(got, want):
            # whole seconds: the clock may tick between plan and log
            assert w - 1 <= g <= w, (got, want)
        assert got[1] >= 1 and max(got) <= 2, got
        tries = [ts(e) for e in deliveries(srv, qid, "deferred")][:4]
        gaps = [b - a for a, b in zip(tries, tries[1:])]
        assert gaps[0] <= 2.5, gaps
        for g in gaps[1:]:
            assert 0.9 <= g <= 3.5, gaps
        assert qid in srv.queued_ids()
        assert mail_count(d) >= 4, d.commands()
    assert no_dsn(srv, 0.1)


def test_status_record_counts_attempts(make_server):
    """The status record of a deferred message holds the attempt count,
    the next attempt time and the pending recipient's last error."""
    with Downstream(rcpt_replies={"x@remote.test": "452 4.2.2 over quota"}) \
            as d:
        srv = make_server(relay_config(
            d.port, retry={"first": "1s", "max_interval": "60s"}))
        qid = submit(srv, ["x@remote.test"], token="st")
        wait_event(srv, qid, "deferred", count=2, timeout=10)
        st = status_record(srv, qid).decode()
        rec = {l.split(" ", 1)[0]: l.split(" ", 1)[1]
               for l in st.splitlines() if not l.startswith("rcpt ")}
        assert rec["attempts"] == "2", st
        now = time.time()
        assert now - 5 <= int(rec["last"]) <= now + 1, st
        assert int(rec["next"]) >= int(rec["last"]) + 1, st
        [line] = [l for l in st.splitlines() if l.startswith("rcpt ")]
        f = line.split(" ")
        assert f[1:3] == ["0", "P"], line
        assert "452" in f[5] and "over%20quota" in f[5], line
        assert f[4] == "127.0.0.1", line


@pytest.mark.parametrize("short", ["domain", "global"])
def test_retry_domains_lifetime_override(make_server, short):
    """retry.domains gives one recipient domain its own lifetime: in a
    message to both domains, only the short-lived recipient expires (one
    DSN, for it alone); the other stays queued and is delivered later."""
    with Downstream(rcpt_replies={
            "x@fast.test": "451 4.3.0 fast busy",
            "y@slow.test": "451 4.3.0 slow busy"}) as d:
        if short == "domain":
            retry = {"lifetime": "1h",
                     "domains": {"fast.test": {"lifetime": "3s"}}}
        else:
            retry = {"lifetime": "3s",
                     "domains": {"slow.test": {"lifetime": "1h"}}}
        cfg = relay_config(d.port, retry=retry)
        cfg["routes"] = {"fast.test": f"smtp:[127.0.0.1]:{d.port}",
                         "slow.test": f"smtp:[127.0.0.1]:{d.port}"}
        srv = make_server(cfg)
        t0 = time.monotonic()
        qid = submit(srv, ["x@fast.test", "y@slow.test"], token="dom")
        [dsn] = srv.wait_mail("alice", timeout=10)
        assert time.monotonic() - t0 >= 1.9, "expired before its lifetime"
        _, _, rcpts = dsn_parts(dsn)
        assert [r["final-recipient"].lower() for r in rcpts] == \
            ["rfc822; x@fast.test"]
        assert rcpts[0]["action"] == "failed", rcpts
        exp = events(srv, qid, "expired")
        assert [e["to"].strip("<>") for e in exp] == ["x@fast.test"], exp
        # the long-lived recipient keeps being retried, not expired
        n = len(deliveries(srv, qid, "deferred", "y@slow.test"))
        wait_for(lambda: len(deliveries(srv, qid, "deferred",
                                        "y@slow.test")) > n + 1,
                 timeout=8, msg="more retries for y@slow.test")
        assert qid in srv.queued_ids()
        assert rcpt_states(status_record(srv, qid)) == {0: "F", 1: "P"}
        d.rcpt_replies = {}
        msgs = d.wait_messages(1, timeout=8, accepted=True)
        srv.wait_queue_empty()
        assert msgs[0].rcpt_tos == ["y@slow.test"]
        assert len(events(srv, qid, "expired")) == 1
        assert len(srv.maildir_files("alice")) == 1


# -- 5. expiry ---------------------------------------------------------------

def test_expiry_after_lifetime(make_server):
    """retry.lifetime 3s, the server always answers 451: after ~3 s the
    message expires with one failure DSN (Action failed, a 4.x.x status,
    the last remote reply quoted) and leaves the queue; no more tries."""
    with Downstream(mail_reply="451 4.7.1 greylisted, come back later") \
            as d:
        srv = make_server(relay_config(d.port, retry={"lifetime": "3s"}))
        t0 = time.monotonic()
        qid = submit(srv, ["x@remote.test"], token="expire")
        [dsn] = srv.wait_mail("alice", timeout=12)
        took = time.monotonic() - t0
        assert 1.9 <= took <= 9, took
        srv.wait_queue_empty(timeout=5)
        assert_no_leftovers(srv, qid)
        msg, _, [r] = dsn_parts(dsn)
        assert r["final-recipient"].lower() == "rfc822; x@remote.test"
        assert r["action"] == "failed", r
        assert r["status"].startswith("4."), r
        assert r["status"] == "4.4.7", r
        assert "greylisted" in r.get("diagnostic-code", ""), r
        assert "greylisted" in dsn_text(msg)
        assert msg["Subject"] == "Undelivered Mail Returned to Sender"
        [e] = events(srv, qid, "expired")
        assert e["to"] == "<x@remote.test>" and e["status"] == "bounced", e
        assert events(srv, qid, "removed")
        n = mail_count(d)
        time.sleep(2.0)
        assert mail_count(d) == n, "retried after expiry"
        assert len(srv.maildir_files("alice")) == 1


def test_expiry_last_try_on_time(make_server):
    """The retry interval never carries a message past its lifetime: with
    max_interval 60s and lifetime 4s, the last try (and the DSN) comes at
    ~4 s, not at the next doubled interval."""
    with Downstream(mail_reply="451 4.3.0 later") as d:
        srv = make_server(relay_config(
            d.port, retry={"first": "2s", "max_interval": "60s",
                           "lifetime": "4s"}))
        t0 = time.monotonic()
        qid = submit(srv, ["x@remote.test"], token="ontime")
        srv.wait_mail("alice", timeout=12)
        took = time.monotonic() - t0
        assert 2.9 <= took <= 7.5, took
        srv.wait_queue_empty(timeout=5)
        assert len(events(srv, qid, "expired")) == 1


def test_expiry_connection_refused(make_server):
    """Nothing listens at the next hop until the lifetime is over: a
    failure DSN saying why (the connection failed), status 4.4.x."""
    port = free_port()
    srv = make_server(relay_config(port, retry={"lifetime": "2s"}))
    qid = submit(srv, ["x@remote.test"], token="refused")
    [dsn] = srv.wait_mail("alice", timeout=12)
    srv.wait_queue_empty(timeout=5)
    msg, _, [r] = dsn_parts(dsn)
    assert r["action"] == "failed", r
    assert r["status"].startswith("4.4."), r
    assert "connect" in dsn_text(msg).lower(), dsn_text(msg)
    assert len(events(srv, qid, "expired")) == 1


def test_expiry_two_recipients_one_dsn(make_server):
    """Two recipients that keep failing temporarily expire together: one
    DSN listing both."""
    with Downstream(rcpt_replies={"a@remote.test": "450 4.2.1 a busy",
                                  "b@remote.test": "451 4.3.0 b busy"}) \
            as d:
        srv = make_server(relay_config(d.port, retry={"lifetime": "2s"}))
        qid = submit(srv, ["a@remote.test", "b@remote.test"], token="exp2")
        [dsn] = srv.wait_mail("alice", timeout=12)
        srv.wait_queue_empty(timeout=5)
        _, _, rcpts = dsn_parts(dsn)
        by = {r["final-recipient"].lower(): r for r in rcpts}
        assert set(by) == {"rfc822; a@remote.test", "rfc822; b@remote.test"}
        assert "a busy" in by["rfc822; a@remote.test"]["diagnostic-code"]
        assert "b busy" in by["rfc822; b@remote.test"]["diagnostic-code"]
        assert len(events(srv, qid, "dsn")) == 1
        time.sleep(1.0)
        assert len(srv.maildir_files("alice")) == 1


def test_expiry_notify_never_no_dsn(make_server):
    """NOTIFY=NEVER: the message expires and is removed without a DSN."""
    with Downstream(mail_reply="451 4.3.0 later") as d:
        srv = make_server(relay_config(d.port, retry={"lifetime": "2s"}))
        qid = submit_params(srv, [("x@remote.test", " NOTIFY=NEVER")],
                            token="never")
        wait_event(srv, qid, "expired", timeout=12)
        srv.wait_queue_empty(timeout=5)
        assert events(srv, qid, "dsn") == []
        assert no_dsn(srv, 1.0)


def test_expiry_null_sender_dropped(make_server):
    """A message from the null sender (a bounce) that expires produces no
    DSN: it is dropped with a bounce-dropped log line."""
    with Downstream(mail_reply="451 4.3.0 later") as d:
        srv = make_server(relay_config(d.port, retry={"lifetime": "2s"}))
        qid = submit_params(srv, [("x@remote.test", "")], sender="",
                            token="nullsender")
        wait_event(srv, qid, "bounce-dropped", timeout=12)
        srv.wait_queue_empty(timeout=5)
        assert events(srv, qid, "dsn") == []
        assert no_dsn(srv, 0.5)
        assert srv.maildir_files("bob") == []


# -- 6. delay warning ---------------------------------------------------------

def test_delay_warning_sent_once(make_server):
    """warn_after 2s, lifetime 1h, always 451: exactly one delay DSN
    (Action delayed, 4.x.x, Will-Retry-Until) however many more attempts
    follow; once delivered, nothing more is sent to the sender."""
    with Downstream(mail_reply="451 4.3.0 please wait") as d:
        srv = make_server(relay_config(
            d.port, retry={"warn_after": "2s", "lifetime": "1h"}))
        qid = submit(srv, ["x@remote.test"], token="warn")
        [dsn] = srv.wait_mail("alice", timeout=10)
        n = len(deferred_events(srv, qid))
        wait_event(srv, qid, "deferred", count=n + 3, timeout=10)
        assert len(srv.maildir_files("alice")) == 1, "second delay DSN"
        [e] = events(srv, qid, "dsn")
        assert e["kind"] == "delay", e
        msg, _, [r] = dsn_parts(dsn)
        assert r["action"] == "delayed", r
        assert r["status"].startswith("4."), r
        assert "will-retry-until" in r, r
        assert "please wait" in r.get("diagnostic-code", ""), r
        assert msg["Subject"] != "Undelivered Mail Returned to Sender"
        assert "warned 1" in status_record(srv, qid).decode()
        assert qid in srv.queued_ids()
        d.mail_reply = None
        d.wait_messages(1, timeout=8, accepted=True)
        srv.wait_queue_empty()
        assert token_count(d, "warn") == 1
        time.sleep(0.5)
        assert len(srv.maildir_files("alice")) == 1


def test_no_delay_warning_without_notify_delay(make_server):
    """NOTIFY=FAILURE (no DELAY): no delay DSN however long it waits."""
    with Downstream(mail_reply="451 4.3.0 please wait") as d:
        srv = make_server(relay_config(
            d.port, retry={"warn_after": "1s", "lifetime": "1h"}))
        qid = submit_params(srv, [("x@remote.test", " NOTIFY=FAILURE")],
                            token="nowarn")
        wait_event(srv, qid, "deferred", count=4, timeout=10)
        assert events(srv, qid, "dsn") == []
        assert srv.maildir_files("alice") == []
        d.mail_reply = None
        d.wait_messages(1, timeout=8, accepted=True)
        srv.wait_queue_empty()
    assert no_dsn(srv, 0.3)


def test_delay_warning_only_for_notify_delay_recipients(make_server):
    """Two pending recipients, one with NOTIFY=FAILURE: the one delay DSN
    lists only the other."""
    with Downstream(rcpt_replies={"a@remote.test": "451 4.3.0 a later",
                                  "b@remote.test": "451 4.3.0 b later"}) \
            as d:
        srv = make_server(relay_config(
            d.port, retry={"warn_after": "1s", "lifetime": "1h"}))
        qid = submit_params(srv, [("a@remote.test", " NOTIFY=FAILURE"),
                                  ("b@remote.test", "")], token="warn2")
        [dsn] = srv.wait_mail("alice", timeout=10)
        _, _, rcpts = dsn_parts(dsn)
        assert [r["final-recipient"].lower() for r in rcpts] == \
            ["rfc822; b@remote.test"], rcpts
        assert rcpts[0]["action"] == "delayed"
        n = len(deferred_events(srv, qid))
        wait_event(srv, qid, "deferred", count=n + 2, timeout=8)
        assert len(srv.maildir_files("alice")) == 1


# -- 7. durability ---------------------------------------------------------

def test_kill9_deferred_messages_delivered_after_restart(make_server):
    """kill -9 while three messages are deferred; after a restart each is
    retried and delivered exactly once; none is lost."""
    with Downstream(mail_reply="451 4.3.0 not yet") as d:
        srv = make_server(relay_config(d.port))
        qids = [submit(srv, ["x@remote.test"], token=f"k{i}")
                for i in range(3)]
        for q in qids:
            wait_event(srv, q, "deferred")
        srv.kill9()
        assert sorted(srv.queued_ids()) == sorted(qids)
        d.mail_reply = None
        srv.start()
        d.wait_messages(3, timeout=10, accepted=True)
        srv.wait_queue_empty()
        for i in range(3):
            assert token_count(d, f"k{i}") == 1, i
        for q in qids:
            assert deliveries(srv, q, "sent"), q
    assert no_dsn(srv, 0.3)


def test_kill9_delivered_recipient_not_resent(make_server):
    """Two recipients, one delivered and one deferred; the status record
    says so; after kill -9 and a restart only the pending one is sent."""
    with Downstream(rcpt_replies={"b@remote.test": "451 4.3.0 b later"}) \
            as d:
        srv = make_server(relay_config(
            d.port, retry={"first": "60s", "max_interval": "60s"}))
        qid = submit(srv, ["a@remote.test", "b@remote.test"],
                     token="partial")
        wait_event(srv, qid, "deferred")
        st = status_record(srv, qid)
        assert rcpt_states(st) == {0: "D", 1: "P"}, st
        assert [m.rcpt_tos for m in d.accepted] == [["a@remote.test"]]
        srv.kill9()
        d.rcpt_replies = {}
        srv.start()
        assert qid in srv.queued_ids()
        ctl(srv, "flush", qid)               # the retry is 60 s away
        msgs = d.wait_messages(2, timeout=10, accepted=True)
        srv.wait_queue_empty()
        assert_no_leftovers(srv, qid)
        assert msgs[1].rcpt_tos == ["b@remote.test"], msgs[1].rcpt_tos
        rcpts = [a for s in d.sessions for v, a in s.commands
                 if v == "RCPT"]
        assert sum("<a@remote.test>" in a for a in rcpts) == 1, rcpts
    assert no_dsn(srv, 0.3)


def test_kill9_in_flight_delivered_at_least_once(make_server):
    """kill -9 while the downstream is still answering the final dot: after
    a restart the message is delivered (a duplicate is allowed for this
    in-flight one only), and the queue empties."""
    with Downstream(slow={"EOM": 3}) as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["x@remote.test"], token="inflight")
        d.wait_commands("DATA", 1, timeout=10)
        time.sleep(0.3)
        srv.kill9()
        d.slow = None
        srv.start()
        wait_delivery(srv, qid, "sent", timeout=10)
        srv.wait_queue_empty()
        assert 1 <= token_count(d, "inflight") <= 2
    assert no_dsn(srv, 0.3)


def test_sigterm_in_flight_redelivered(make_server):
    """A clean stop (SIGTERM) during a slow delivery exits promptly, keeps
    the message, and the restarted server delivers it."""
    with Downstream(slow={"EOM": 3}) as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["x@remote.test"], token="term")
        d.wait_commands("DATA", 1, timeout=10)
        t0 = time.monotonic()
        assert srv.stop() == 0
        assert time.monotonic() - t0 < 5
        assert qid in srv.queued_ids()
        d.slow = None
        srv.start()
        wait_delivery(srv, qid, "sent", timeout=10)
        srv.wait_queue_empty()
        assert token_count(d, "term") >= 1
    assert no_dsn(srv, 0.3)


def test_delay_warning_not_repeated_after_restart(make_server):
    """The 'warned' mark is durable: after the delay DSN, kill -9 and a
    restart, no second delay DSN is sent; the attempt count goes on."""
    with Downstream(mail_reply="451 4.3.0 please wait") as d:
        srv = make_server(relay_config(
            d.port, retry={"warn_after": "1s", "lifetime": "1h"}))
        qid = submit(srv, ["x@remote.test"], token="warnkill")
        srv.wait_mail("alice", timeout=10)
        wait_for(lambda: b"warned 1" in status_record(srv, qid), timeout=5,
                 msg="warned 1 in the status record")
        # the delay DSN is in alice's Maildir a moment before its own queue
        # file goes: a kill in between would deliver it again at start
        # (at-least-once), which is not what this test is about
        wait_for(lambda: srv.queued_ids() == [qid], timeout=5,
                 msg="the delay DSN out of the queue")
        before = int(deferred_events(srv, qid)[-1]["attempts"])
        srv.kill9()
        srv.start()
        wait_for(lambda: deferred_events_since_start(srv, qid, 2),
                 timeout=10, msg="two attempts after the restart")
        evs = deferred_events_since_start(srv, qid, 2)
        assert int(evs[0]["attempts"]) > before, (before, evs)
        assert len(srv.maildir_files("alice")) == 1, "delay DSN repeated"
        assert events(srv, qid, "dsn")[1:] == []


def deferred_events_since_start(srv, qid, n):
    out = []
    for line in srv.run_log().splitlines():
        if f"qid={qid} " in line and "event=deferred " in line:
            out.append(dict(kv.split("=", 1) for kv in
                            line.split(": ", 1)[1].split(" ") if "=" in kv))
    return out if len(out) >= n else None


def test_lifetime_counts_from_arrival_across_restart(make_server):
    """The lifetime runs from the message's arrival, not from the last
    start: a message that spent its lifetime partly while sluiced was down
    expires soon after the restart."""
    with Downstream(mail_reply="451 4.3.0 later") as d:
        srv = make_server(relay_config(
            d.port, retry={"first": "1s", "lifetime": "4s"}))
        t0 = time.monotonic()
        qid = submit(srv, ["x@remote.test"], token="lifekill")
        wait_event(srv, qid, "deferred")
        srv.kill9()
        time.sleep(max(0, 3.5 - (time.monotonic() - t0)))
        srv.start()
        [dsn] = srv.wait_mail("alice", timeout=8)
        assert time.monotonic() - t0 <= 9
        srv.wait_queue_empty()
        _, _, [r] = dsn_parts(dsn)
        assert r["action"] == "failed", r
        assert len(events(srv, qid, "expired")) == 1


def test_held_message_survives_restart(make_server):
    """sluicectl hold on a deferred message: it moves to hold/, is not
    tried any more, stays held across kill -9 and a restart, and is
    delivered after sluicectl release."""
    with Downstream(mail_reply="451 4.3.0 not yet") as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["x@remote.test"], token="held")
        wait_event(srv, qid, "deferred")
        ctl(srv, "hold", qid)
        wait_event(srv, qid, "held", timeout=5)
        assert qid in srv.spool_files("hold")
        assert qid not in srv.queued_ids()
        srv.kill9()
        srv.start()
        n = mail_count(d)
        time.sleep(2.5)                      # > 2 retry periods
        assert mail_count(d) == n, "a held message was tried"
        assert qid in srv.spool_files("hold")
        out = ctl(srv, "list", "--json").stdout
        recs = [json.loads(l) for l in out.splitlines() if l.strip()]
        mine = [r for r in recs if r.get("id") == qid]
        assert mine and mine[0].get("state") == "held", recs
        d.mail_reply = None
        ctl(srv, "release", qid)
        d.wait_messages(1, timeout=8, accepted=True)
        srv.wait_queue_empty()
        assert srv.spool_files("hold") == [] or qid not in \
            srv.spool_files("hold")
        assert token_count(d, "held") == 1
    assert no_dsn(srv, 0.3)
