"""Outbound delivery faults (issue 4): temporary failures and recovery,
permanent failures and their DSNs, broken and malformed downstream servers,
per-destination and global connection limits.

Mail comes from a trusted loopback client with the local sender
alice@example.test, so every DSN lands in alice's Maildir; it is relayed by
a route to a programmable Downstream (downstream.py) on 127.0.0.1.
"""
import email
import email.policy
import os
import re
import time

import pytest

from downstream import DEFAULT_EXTENSIONS, MALFORMED, Downstream, RawServer
from procs import free_port
from helpers import log_events as events
from helpers import wait_log_events as wait_event
from helpers import check, submit_message, wait_for

SENDER = "alice@example.test"


# -- helpers ----------------------------------------------------------------

def relay_config(port, retry=None, delivery=None, **extra):
    """Overrides: loopback trusted, remote.test routed to 127.0.0.1:port,
    short timeouts, quick retries."""
    cfg = {
        "trusted_networks": ["127.0.0.0/8"],
        "routes": {"remote.test": f"smtp:[127.0.0.1]:{port}"},
        "retry": {"first": "1s", "max_interval": "1s", "lifetime": "5d",
                  "warn_after": "4h"},
        "delivery": {"connect_timeout": "5s", "greeting_timeout": "5s",
                     "command_timeout": "5s", "data_timeout": "5s"},
    }
    cfg["retry"].update(retry or {})
    cfg["delivery"].update(delivery or {})
    cfg.update(extra)
    return cfg


def submit(srv, rcpts, sender=SENDER, token="t", rcpt_params="",
           body_lines=3):
    """Queue one message through SMTP; returns its queue id. The token is
    in the Subject and the body, to tell deliveries apart."""
    body = "".join(f"line {i} of message {token}\r\n"
                   for i in range(body_lines))
    msg = (f"From: <{sender}>\r\nTo: <{rcpts[0]}>\r\n"
           f"Subject: {token}\r\nMessage-ID: <{token}@example.test>\r\n"
           f"\r\n{body}.\r\n")
    return submit_message(srv, sender, rcpts, msg, rcpt_params=rcpt_params)


def deliveries(srv, qid, status=None, to=None):
    out = events(srv, qid, "delivery")
    if status is not None:
        out = [e for e in out if e.get("status") == status]
    if to is not None:
        out = [e for e in out if e.get("to") == f"<{to}>"]
    return out


def wait_delivery(srv, qid, status, to=None, count=1, timeout=10):
    return wait_for(lambda: len(deliveries(srv, qid, status, to)) >= count
                    and deliveries(srv, qid, status, to),
                    timeout=timeout,
                    msg=f"{count} delivery line(s) status={status} "
                        f"to={to} for {qid}; log:\n{srv.log()[-3000:]}")


def dsn_parts(raw):
    """(message, per-message fields, [per-recipient fields]) of a DSN as
    stored in a Maildir file."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report", \
        msg.get_content_type()
    report = [p for p in msg.get_payload()
              if p.get_content_type() == "message/delivery-status"]
    assert len(report) == 1, [p.get_content_type()
                              for p in msg.get_payload()]
    blocks = report[0].get_payload()
    fields = [{k.lower(): " ".join(v.split()) for k, v in b.items()}
              for b in blocks]
    return msg, fields[0], fields[1:]


def dsn_text(msg):
    """The human-readable first part of a DSN."""
    return msg.get_payload()[0].get_payload(decode=True).decode()


def status_files(srv):
    d = os.path.join(srv.spool, "queue")
    try:
        return {n: open(os.path.join(d, n), "rb").read()
                for n in os.listdir(d) if n.endswith(".st")}
    except FileNotFoundError:
        return {}


def status_record(srv, qid):
    path = os.path.join(srv.spool, "queue", qid + ".st")
    with open(path, "rb") as f:
        return f.read()


def rcpt_states(st):
    """{index: state letter} of a status file's rcpt lines."""
    out = {}
    for line in st.decode("ascii").splitlines():
        if line.startswith("rcpt "):
            f = line.split(" ")
            out[int(f[1])] = f[2]
    return out


def assert_clean_status(st):
    """A status record: printable ASCII lines, no CR, no control bytes,
    every line of a known kind with the right number of fields."""
    assert st.startswith(b"v 1\n"), st[:200]
    assert st.endswith(b"\n"), st[-200:]
    for b in st:
        assert b == 0x0a or 0x20 <= b <= 0x7e, \
            f"raw byte {b:#04x} in status file: {st[:600]!r}"
    for line in st.decode("ascii").split("\n")[:-1]:
        f = line.split(" ")
        assert f[0] in ("v", "attempts", "next", "last", "warned",
                        "rcpt"), line
        if f[0] == "rcpt":
            assert len(f) in (4, 6), f"rcpt line with {len(f)} fields: " \
                                     f"{line!r}"
            assert f[2] in "PDF" and len(f[2]) == 1, line
        else:
            assert len(f) == 2 and f[1].isdigit(), line


def assert_no_leftovers(srv, qid, timeout=2.0):
    """Nothing of a finished message is left in queue/ (no message file,
    no status record, no temporary file). The removal is two steps (the
    message, then its status record), so a caller that saw the message go
    may look between them: wait, bounded, for the rest."""
    def left():
        return [n for n in os.listdir(os.path.join(srv.spool, "queue"))
                if n.startswith(qid)]
    wait_for(lambda: left() == [], timeout=timeout, fail=False)
    assert left() == [], left()


def no_dsn(srv, settle=0.5):
    time.sleep(settle)
    return srv.maildir_files("alice") == []


def token_count(d, token, accepted=True):
    msgs = d.accepted if accepted else d.messages
    return sum(1 for m in msgs if f"message {token}".encode() in m.data)


# -- 1. temporary failures and recovery ------------------------------------

def test_port_closed_then_listener_appears(make_server):
    """Nobody listens on the next hop's port: deferred (4.4.1), the message
    stays queued; once a server listens there, a retry delivers it."""
    port = free_port()
    srv = make_server(relay_config(port))
    qid = submit(srv, ["x@remote.test"], token="late-listener")
    [e] = wait_delivery(srv, qid, "deferred")[:1]
    assert e["dsn"].startswith("4."), e
    wait_event(srv, qid, "deferred")
    assert qid in srv.queued_ids()
    with Downstream(port=port) as d:
        d.wait_messages(1, timeout=10, accepted=True)
        wait_delivery(srv, qid, "sent")
        srv.wait_queue_empty(timeout=5)
        assert token_count(d, "late-listener") == 1
    assert no_dsn(srv, 0.3), "a DSN was sent for a delivered message"


def test_mail_4xx_then_ok(make_server):
    """451 to MAIL FROM: deferred with the remote reply in the log; the
    next attempt (MAIL accepted) delivers it, once."""
    with Downstream(mail_reply=["451 4.3.0 try again later", None]) as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["x@remote.test"], token="mail451")
        [e] = wait_delivery(srv, qid, "deferred")
        assert e["dsn"] == "4.3.0", e
        assert "451 4.3.0 try again later" in e["text"], e
        assert "MAIL" in e["text"], e
        d.wait_messages(1, timeout=10, accepted=True)
        wait_delivery(srv, qid, "sent")
        srv.wait_queue_empty()
        assert token_count(d, "mail451") == 1
        assert len(deliveries(srv, qid, "deferred")) == 1
    assert no_dsn(srv, 0.3)


def test_rcpt_4xx_one_of_two(make_server):
    """One recipient of two gets 451 at RCPT: the other is delivered at
    once, the deferred one on the retry; nobody gets the message twice."""
    with Downstream(rcpt_replies={
            "b@remote.test": ["451 4.2.1 mailbox busy", None]}) as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["a@remote.test", "b@remote.test"], token="rc451")
        wait_delivery(srv, qid, "sent", to="a@remote.test")
        [e] = wait_delivery(srv, qid, "deferred", to="b@remote.test")
        assert e["dsn"] == "4.2.1" and "mailbox busy" in e["text"], e
        msgs = d.wait_messages(2, timeout=10, accepted=True)
        wait_delivery(srv, qid, "sent", to="b@remote.test")
        srv.wait_queue_empty()
        assert_no_leftovers(srv, qid)
        assert [m.rcpt_tos for m in msgs] == [["a@remote.test"],
                                              ["b@remote.test"]]
        rcpts = [a for s in d.sessions for v, a in s.commands
                 if v == "RCPT"]
        assert sum("<a@remote.test>" in a for a in rcpts) == 1, rcpts
        assert sum("<b@remote.test>" in a for a in rcpts) == 2, rcpts
        assert len(deliveries(srv, qid, "sent", "a@remote.test")) == 1
    assert no_dsn(srv, 0.3)


def test_data_4xx_then_ok(make_server):
    """451 after the message data: both recipients deferred, then both
    delivered in one transaction on the retry."""
    with Downstream(data_reply=["451 4.3.0 queue full", None]) as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["a@remote.test", "b@remote.test"],
                     token="data451")
        wait_delivery(srv, qid, "deferred", count=2)
        for e in deliveries(srv, qid, "deferred"):
            assert "451 4.3.0 queue full" in e["text"], e
            assert "end of DATA" in e["text"], e
        msgs = d.wait_messages(2, timeout=10)
        srv.wait_queue_empty()
        assert len(msgs) == 2 and not msgs[0].accepted and msgs[1].accepted
        assert sorted(msgs[1].rcpt_tos) == ["a@remote.test",
                                            "b@remote.test"]
        assert token_count(d, "data451") == 1
    assert no_dsn(srv, 0.3)


def test_mail_4xx_then_rcpt_4xx_then_ok(make_server):
    """Failures at different stages on successive attempts: each attempt
    defers, the third delivers; a single copy is accepted."""
    with Downstream(mail_reply=["452 4.3.1 no space", None],
                    rcpt_replies={"x@remote.test": [
                        "450 4.2.0 try later", None]}) as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["x@remote.test"], token="stages")
        d.wait_messages(1, timeout=12, accepted=True)
        srv.wait_queue_empty()
        texts = [e["text"] for e in deliveries(srv, qid, "deferred")]
        assert len(texts) == 2, texts
        assert "452 4.3.1" in texts[0] and "450 4.2.0" in texts[1], texts
        assert token_count(d, "stages") == 1
    assert no_dsn(srv, 0.3)


def test_lmtp_per_recipient_4xx_retried_alone(make_server):
    """LMTP answers per recipient after the data: the 452 one is retried
    alone, the accepted one is not sent again."""
    with Downstream(lmtp=True, lmtp_data_replies={
            "b@remote.test": ["452 4.2.2 mailbox full", None]}) as d:
        cfg = relay_config(d.port)
        cfg["routes"] = {"remote.test": f"lmtp:[127.0.0.1]:{d.port}"}
        srv = make_server(cfg)
        qid = submit(srv, ["a@remote.test", "b@remote.test"], token="lmtp")
        [e] = wait_delivery(srv, qid, "deferred", to="b@remote.test")
        assert "452 4.2.2 mailbox full" in e["text"], e
        msgs = d.wait_messages(2, timeout=10)
        srv.wait_queue_empty()
        assert sorted(msgs[0].rcpt_tos) == ["a@remote.test",
                                            "b@remote.test"]
        assert msgs[1].rcpt_tos == ["b@remote.test"], msgs[1].rcpt_tos
        assert len(deliveries(srv, qid, "sent", "a@remote.test")) == 1
        assert len(deliveries(srv, qid, "sent", "b@remote.test")) == 1
    assert no_dsn(srv, 0.3)


def test_split_transactions_retry_only_failed_part(make_server):
    """recipients_per_transaction 2 splits 4 recipients into two
    transactions; one of them gets 451 at MAIL: only its two recipients
    are retried, every recipient is accepted exactly once."""
    with Downstream(mail_reply=[None, "451 4.3.0 one at a time", None]) \
            as d:
        srv = make_server(relay_config(
            d.port, delivery={"recipients_per_transaction": 2}))
        rcpts = [f"r{i}@remote.test" for i in range(4)]
        qid = submit(srv, rcpts, token="split")
        msgs = d.wait_messages(2, timeout=10, accepted=True)
        srv.wait_queue_empty()
        assert len(deliveries(srv, qid, "deferred")) == 2
        got = sorted(r for m in msgs for r in m.rcpt_tos)
        assert got == rcpts, got
        assert all(len(m.rcpt_tos) == 2 for m in msgs), msgs
        time.sleep(0.5)
        assert len(d.accepted) == 2
    assert no_dsn(srv, 0.3)


def test_421_at_rcpt_closes_and_retries(make_server):
    """A 421 reply to one RCPT (the server closes): every recipient of the
    transaction is deferred, then all are delivered in one retry."""
    with Downstream(rcpt_replies={
            "a@remote.test": ["421 4.7.0 closing now", None]}) as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["a@remote.test", "b@remote.test"], token="r421")
        wait_delivery(srv, qid, "deferred", count=2)
        msgs = d.wait_messages(1, timeout=10, accepted=True)
        srv.wait_queue_empty()
        assert sorted(msgs[0].rcpt_tos) == ["a@remote.test",
                                            "b@remote.test"]
        assert token_count(d, "r421") == 1
    assert no_dsn(srv, 0.3)


@pytest.mark.parametrize("pipelining", [True, False],
                         ids=["pipelining", "lockstep"])
@pytest.mark.parametrize("stage", ["EHLO", "MAIL", "RCPT", "DATA", "EOM"])
def test_421_at_any_stage(make_server, stage, pipelining):
    """421 (the server closes the connection) at any command: deferred,
    then delivered exactly once on the retry."""
    ext = [e for e in DEFAULT_EXTENSIONS
           if pipelining or e != "PIPELINING"]
    bye = ["421 4.3.2 service shutting down", None]
    knobs = {"data_reply": bye} if stage == "EOM" else \
        {"command_replies": {stage: bye}}
    with Downstream(extensions=ext, **knobs) as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["a@remote.test", "b@remote.test"],
                     token=f"bye{stage}")
        wait_delivery(srv, qid, "deferred", count=2)
        assert deliveries(srv, qid, "bounced") == []
        msgs = d.wait_messages(1, timeout=10, accepted=True)
        srv.wait_queue_empty()
        assert sorted(msgs[-1].rcpt_tos) == ["a@remote.test",
                                             "b@remote.test"]
        assert token_count(d, f"bye{stage}") == 1
        assert len(deliveries(srv, qid, "sent")) == 2
    assert no_dsn(srv, 0.3)


def test_cached_connection_closed_by_server(make_server):
    """The server drops an idle cached connection (its idle timeout): the
    next message opens a new connection and goes out at once, without a
    deferral."""
    with Downstream(idle_timeout=0.5) as d:
        srv = make_server(relay_config(
            d.port, delivery={"connection_cache": "30s"}))
        q1 = submit(srv, ["x@remote.test"], token="cache1")
        d.wait_messages(1, timeout=10, accepted=True)
        wait_for(lambda: d.sessions and all(s.closed for s in d.sessions),
                 timeout=5, msg="the downstream closed the idle connection")
        time.sleep(0.2)
        q2 = submit(srv, ["x@remote.test"], token="cache2")
        d.wait_messages(2, timeout=10, accepted=True)
        srv.wait_queue_empty()
        assert deliveries(srv, q2, "deferred") == [], \
            deliveries(srv, q2, "deferred")
        assert d.connections == 2
        assert deliveries(srv, q1, "sent") and deliveries(srv, q2, "sent")
    assert no_dsn(srv, 0.3)


# -- 2. permanent failures -------------------------------------------------

def test_rcpt_5xx_one_of_two_bounces(make_server):
    """550 at RCPT for one of two recipients: that one bounces in exactly
    one DSN (Final-Recipient, Action failed, Status 5.1.1, Remote-MTA,
    Diagnostic-Code with the remote reply); the other is delivered once."""
    with Downstream(rcpt_replies={
            "bad@remote.test": "550 5.1.1 <bad@remote.test>: no such user"
    }) as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["good@remote.test", "bad@remote.test"],
                     token="rc550")
        [dsn] = srv.wait_mail("alice", timeout=10)
        msgs = d.wait_messages(1, timeout=5, accepted=True)
        srv.wait_queue_empty()
        assert msgs[0].rcpt_tos == ["good@remote.test"]
        msg, per_msg, rcpts = dsn_parts(dsn)
        assert msg["To"] and SENDER in msg["To"]
        assert per_msg["reporting-mta"] == "dns; mx.example.test"
        [r] = rcpts
        assert r["final-recipient"].lower() == "rfc822; bad@remote.test"
        assert r["action"] == "failed"
        assert r["status"] == "5.1.1"
        assert "remote-mta" in r and "127.0.0.1" in r["remote-mta"], r
        assert r["diagnostic-code"].startswith("smtp; 550"), r
        assert "no such user" in r["diagnostic-code"], r
        assert "good@remote.test" not in dsn_text(msg)
        assert "bad@remote.test" in dsn_text(msg)
        assert len(events(srv, qid, "dsn")) == 1
        time.sleep(1.5)                     # one more retry period
        assert len(srv.maildir_files("alice")) == 1
        assert token_count(d, "rc550") == 1


def test_data_5xx_bounces_all_in_one_dsn(make_server):
    """554 after the message data: both recipients bounce, in one DSN."""
    with Downstream(data_reply="554 5.7.1 message rejected by policy") as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["a@remote.test", "b@remote.test"],
                     token="data554")
        [dsn] = srv.wait_mail("alice", timeout=10)
        srv.wait_queue_empty()
        assert_no_leftovers(srv, qid)
        _, _, rcpts = dsn_parts(dsn)
        assert sorted(r["final-recipient"].lower() for r in rcpts) == \
            ["rfc822; a@remote.test", "rfc822; b@remote.test"]
        for r in rcpts:
            assert r["action"] == "failed" and r["status"] == "5.7.1", r
            assert "554 5.7.1 message rejected by policy" in \
                r["diagnostic-code"], r
        [ev] = events(srv, qid, "dsn")
        assert ev["kind"] == "failure" and ev["recipients"] == "2", ev
        assert len(deliveries(srv, qid, "bounced")) == 2
        time.sleep(1.5)
        assert len(srv.maildir_files("alice")) == 1
        assert len(d.messages) == 1, "retried after a permanent failure"


def test_two_rcpt_failures_one_dsn(make_server):
    """Two recipients refused with different 5xx replies: one DSN that
    lists both, each with its own status and diagnostic."""
    with Downstream(rcpt_replies={
            "a@remote.test": "550 5.1.1 user unknown a",
            "b@remote.test": "552 5.2.2 mailbox full b"}) as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["a@remote.test", "b@remote.test"],
                     token="two550")
        [dsn] = srv.wait_mail("alice", timeout=10)
        srv.wait_queue_empty()
        _, _, rcpts = dsn_parts(dsn)
        by = {r["final-recipient"].lower(): r for r in rcpts}
        assert set(by) == {"rfc822; a@remote.test", "rfc822; b@remote.test"}
        a, b = by["rfc822; a@remote.test"], by["rfc822; b@remote.test"]
        assert a["status"] == "5.1.1" and "user unknown a" in \
            a["diagnostic-code"], a
        assert b["status"] == "5.2.2" and "mailbox full b" in \
            b["diagnostic-code"], b
        assert len(events(srv, qid, "dsn")) == 1
        assert d.accepted == [], "DATA sent with no accepted recipient"
        time.sleep(1.0)
        assert len(srv.maildir_files("alice")) == 1


def test_mixed_temp_and_perm_in_one_transaction(make_server):
    """One recipient 550, one 451, one accepted: the 550 bounces at once,
    the 451 one is retried and delivered; exactly one DSN (failure) and
    each recipient accepted exactly once."""
    with Downstream(rcpt_replies={
            "perm@remote.test": "550 5.1.1 gone",
            "temp@remote.test": ["451 4.3.0 later", None]}) as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["ok@remote.test", "perm@remote.test",
                           "temp@remote.test"], token="mixed")
        msgs = d.wait_messages(2, timeout=10, accepted=True)
        srv.wait_queue_empty()
        [dsn] = srv.wait_mail("alice")
        _, _, rcpts = dsn_parts(dsn)
        assert [r["final-recipient"].lower() for r in rcpts] == \
            ["rfc822; perm@remote.test"]
        got = [r for m in msgs for r in m.rcpt_tos]
        assert sorted(got) == ["ok@remote.test", "temp@remote.test"], got
        assert len(events(srv, qid, "dsn")) == 1
        time.sleep(1.0)
        assert len(srv.maildir_files("alice")) == 1


def test_dsn_to_remote_sender_bounce_dropped(make_server):
    """A bounce for a remote sender goes out from <> with NOTIFY=NEVER; when
    that DSN is refused too, it is dropped (event=bounce-dropped), with no
    bounce loop and nothing left in the queue."""
    with Downstream(rcpt_replies={
            "bad@remote.test": "550 5.1.1 no such user",
            "bob@remote.test": "550 5.1.1 sender gone too"}) as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["bad@remote.test"], sender="bob@remote.test",
                     token="loop")
        [ev] = wait_event(srv, qid, "dsn")
        dsn_qid = ev["dsn_qid"]
        wait_event(srv, dsn_qid, "bounce-dropped")
        srv.wait_queue_empty()
        mails = [(n, a) for n, v, a in d.commands() if v == "MAIL"]
        assert any(a.startswith("FROM:<>") for _, a in mails), mails
        rc = [r for s in d.sessions for v, r in s.commands if v == "RCPT"]
        assert any(r.startswith("TO:<bob@remote.test>") and
                   "NOTIFY=NEVER" in r for r in rc), rc
        n = len(mails)
        time.sleep(1.5)
        assert sum(v == "MAIL" for _, v, _ in d.commands()) == n, \
            "still sending after the drop"
        assert events(srv, dsn_qid, "dsn") == []
    assert no_dsn(srv, 0.1)


# -- 3. broken servers ------------------------------------------------------

def test_greeting_never_sent(make_server):
    """A server that accepts TCP but never greets: greeting_timeout (1s)
    defers the message; when it starts greeting, the retry delivers."""
    with Downstream(never_greet=True) as d:
        srv = make_server(relay_config(d.port,
                                       delivery={"greeting_timeout": "1s"}))
        t0 = time.monotonic()
        qid = submit(srv, ["x@remote.test"], token="nogreet")
        [e] = wait_delivery(srv, qid, "deferred", timeout=10)[:1]
        assert time.monotonic() - t0 < 8, "greeting_timeout not applied"
        assert e["dsn"].startswith("4."), e
        assert "timeout" in e["text"] or "greeting" in e["text"], e
        d.never_greet = False
        d.wait_messages(1, timeout=10, accepted=True)
        srv.wait_queue_empty()
        assert token_count(d, "nogreet") == 1
    assert no_dsn(srv, 0.3)


def test_greeting_421(make_server):
    """421 greeting: deferred with the server's text; then delivered."""
    with Downstream(greeting="421 4.3.2 too busy, come back later") as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["x@remote.test"], token="g421")
        [e] = wait_delivery(srv, qid, "deferred")[:1]
        assert e["dsn"].startswith("4."), e
        assert "too busy" in e["text"], e
        d.greeting = None
        d.wait_messages(1, timeout=10, accepted=True)
        srv.wait_queue_empty()
        assert token_count(d, "g421") == 1
    assert no_dsn(srv, 0.3)


def test_greeting_554_is_temporary(make_server):
    """A 554 greeting refuses the session, not the recipient (RFC 5321
    3.1): the message is deferred, not bounced."""
    with Downstream(greeting="554 5.7.1 no service for you") as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["x@remote.test"], token="g554")
        [e] = wait_delivery(srv, qid, "deferred")[:1]
        assert "no service for you" in e["text"], e
        d.greeting = None
        d.wait_messages(1, timeout=10, accepted=True)
        srv.wait_queue_empty()
    assert no_dsn(srv, 0.3)


def test_connection_dropped_mid_data(make_server):
    """The server closes the connection in the middle of the message data:
    deferred; the retry delivers the whole message exactly once."""
    with Downstream(drop_mid_data=100) as d:
        srv = make_server(relay_config(d.port))
        qid = submit(srv, ["a@remote.test", "b@remote.test"],
                     token="dropdata", body_lines=50)
        wait_delivery(srv, qid, "deferred", count=2)
        assert d.incomplete, "the drop did not happen"
        assert deliveries(srv, qid, "sent") == []
        d.drop_mid_data = None
        msgs = d.wait_messages(1, timeout=10, accepted=True)
        srv.wait_queue_empty()
        assert token_count(d, "dropdata") == 1
        m = msgs[0]
        assert sorted(m.rcpt_tos) == ["a@remote.test", "b@remote.test"]
        assert m.data.count(b"line ") == 50, m.data[-200:]
        assert b"line 49 of message dropdata\r\n" in m.data
    assert no_dsn(srv, 0.3)


def test_reset_after_rcpt(make_server):
    """A TCP reset right after the RCPT replies (RawServer): deferred, the
    server survives."""
    script = [("send", "220 raw.test ESMTP\r\n"), ("line",),
              ("send", "250-raw.test\r\n250 PIPELINING\r\n"), ("line",),
              ("line",), ("line",),
              ("send", "250 2.1.0 ok\r\n250 2.1.5 ok\r\n"), ("reset",)]
    with RawServer(script) as r:
        srv = make_server(relay_config(r.port, retry={"first": "30s"}))
        qid = submit(srv, ["x@remote.test"], token="reset")
        [e] = wait_delivery(srv, qid, "deferred")
        assert e["dsn"].startswith("4."), e
        wait_event(srv, qid, "deferred")
        assert qid in srv.queued_ids()
        assert_clean_status(status_record(srv, qid))
    assert no_dsn(srv, 0.2)


def test_stalled_reader_during_data(make_server):
    """A server that says 354 and then stops reading while a big message
    is sent: the write stalls, the timeout gives up, deferred (no hang,
    no bounce)."""
    script = [("send", "220 raw.test ESMTP\r\n"), ("line",),
              ("send", "250 raw.test\r\n"), ("line",),
              ("send", "250 2.1.0 ok\r\n"), ("line",),
              ("send", "250 2.1.5 ok\r\n"), ("line",),
              ("send", "354 go ahead\r\n"), ("sleep", 12)]
    with RawServer(script, timeout=15) as r:
        srv = make_server(relay_config(
            r.port, retry={"first": "60s", "max_interval": "60s"},
            delivery={"command_timeout": "1s", "data_timeout": "1s"},
            limits={"message_size": "20M", "recipients": 100,
                    "line_length": 1000, "command_line_length": 512,
                    "sessions": 20, "per_ip_sessions": 5, "errors": 10,
                    "idle_timeout": "30s", "command_timeout": "30s"}))
        qid = submit(srv, ["x@remote.test"], token="stall",
                     body_lines=160_000)
        t0 = time.monotonic()
        [e] = wait_delivery(srv, qid, "deferred", timeout=10)
        assert time.monotonic() - t0 < 8
        assert "timeout" in e["text"], e
        assert qid in srv.queued_ids()
    assert no_dsn(srv, 0.2)


MALFORMED_STAGES = ("greeting", "EHLO", "MAIL", "RCPT", "EOM")


MALFORMED_CASES = [
    pytest.param(kind, stage, id=f"{kind}-{stage}")
    for kind in sorted(MALFORMED) for stage in MALFORMED_STAGES]


@pytest.mark.parametrize("kind,stage", MALFORMED_CASES)
def test_malformed_reply(make_server, stage, kind):
    """A malformed reply at any stage is a temporary failure: deferred,
    never bounced nor delivered, the status record stays clean (no raw
    CR/LF/control bytes from the reply) and sluiced keeps running.

    no_crlf is played without PIPELINING: with pipelined commands the
    unterminated "250 ok" runs into the next (well-formed) reply, which no
    client can tell from one valid line."""
    ext = [e for e in DEFAULT_EXTENSIONS
           if not (kind == "no_crlf" and e == "PIPELINING")]
    with Downstream(malformed={stage: kind}, extensions=ext) as d:
        srv = make_server(relay_config(
            d.port, retry={"first": "60s", "max_interval": "60s"},
            delivery={"greeting_timeout": "1s", "command_timeout": "1s",
                      "data_timeout": "1s"}))
        qid = submit(srv, ["x@remote.test"], token=f"bad-{kind}")
        wait_for(lambda: deliveries(srv, qid), timeout=12,
                 msg=f"a delivery result for {qid}; log:\n"
                     + srv.log()[-3000:])
        res = deliveries(srv, qid)
        assert [e["status"] for e in res] == ["deferred"], res
        assert res[0]["dsn"].startswith("4."), res
        wait_event(srv, qid, "deferred")
        assert qid in srv.queued_ids()
        st = status_record(srv, qid)
        assert_clean_status(st)
        assert rcpt_states(st) == {0: "P"}, st
        for line in srv.log_lines():
            assert "\r" not in line, repr(line)
        # the connection is given up; sluiced still answers
        c = srv.raw()
        check(c.cmd("NOOP"), 250)
        c.close()
    assert srv.alive()
    assert no_dsn(srv, 0.3)


@pytest.mark.parametrize("code", ["451 4.3.0", "550 5.1.1"])
def test_reply_with_control_bytes_kept_printable(make_server, code):
    """A RCPT reply holding ESC, DEL, other control bytes and a bare CR:
    the status record, the log and the DSN carry no raw control byte, but
    the reply's printable text is kept."""
    junk = code.encode() + b" bad\x1b[31m red\x7f\x01\x08 and\rCR here\r\n"
    with Downstream(malformed={"RCPT": junk}) as d:
        srv = make_server(relay_config(
            d.port, retry={"first": "60s", "max_interval": "60s"}))
        qid = submit(srv, ["x@remote.test"], token="ctl")
        if code.startswith("4"):
            [e] = wait_delivery(srv, qid, "deferred")
            wait_event(srv, qid, "deferred")
            st = status_record(srv, qid)
            assert_clean_status(st)
            assert b"CR%20here" in st and b"red" in st, st
            assert no_dsn(srv, 0.2)
        else:
            [e] = wait_delivery(srv, qid, "bounced")
            [dsn] = srv.wait_mail("alice")
            msg, _, [r] = dsn_parts(dsn)
            for text in (dsn_text(msg), r["diagnostic-code"]):
                assert "CR here" in text, text
                assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]",
                                     text.replace("\r\n", "\n")), repr(text)
            head = dsn.split(b"--" + msg.get_boundary().encode())[2]
            assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]",
                                 head), head
        assert e["dsn"] == code.split()[1], e
        for line in srv.log_lines():
            assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", line), \
                repr(line)


def test_endless_reply_line(make_server):
    """A greeting line that never ends (bytes without CRLF, far over the
    line limit): the connection is given up without waiting for the
    greeting timeout; deferred."""
    script = [("send", b"220 " + b"x" * 300_000), ("sleep", 20)]
    with RawServer(script) as r:
        srv = make_server(relay_config(
            r.port, retry={"first": "60s", "max_interval": "60s"},
            delivery={"greeting_timeout": "30s"}))
        t0 = time.monotonic()
        qid = submit(srv, ["x@remote.test"], token="endless")
        [e] = wait_delivery(srv, qid, "deferred", timeout=15)
        assert time.monotonic() - t0 < 15
        assert "long" in e["text"], e
        wait_event(srv, qid, "deferred")
        assert_clean_status(status_record(srv, qid))
    assert no_dsn(srv, 0.2)


def test_endless_multiline_reply(make_server):
    """An EHLO reply of endless continuation lines: given up (line count
    limit) well before any timeout; deferred; sluiced survives."""
    with Downstream(malformed={"EHLO": "endless"}) as d:
        srv = make_server(relay_config(
            d.port, retry={"first": "60s", "max_interval": "60s"},
            delivery={"command_timeout": "30s"}))
        t0 = time.monotonic()
        qid = submit(srv, ["x@remote.test"], token="endlessml")
        [e] = wait_delivery(srv, qid, "deferred", timeout=15)
        assert time.monotonic() - t0 < 15
        assert e["dsn"].startswith("4."), e
    assert no_dsn(srv, 0.2)


@pytest.mark.parametrize("stage,knob", [("MAIL", "command_timeout"),
                                        ("RCPT", "command_timeout"),
                                        ("DATA", "command_timeout"),
                                        ("EOM", "data_timeout")])
def test_slow_reply_times_out(make_server, stage, knob):
    """A reply slower than delivery.command_timeout (data_timeout after the
    final dot): deferred with a timeout; once the server is quick, the
    retry delivers."""
    with Downstream(slow={stage: 4}) as d:
        srv = make_server(relay_config(d.port, delivery={knob: "1s"}))
        t0 = time.monotonic()
        qid = submit(srv, ["x@remote.test"], token=f"slow{stage}")
        [e] = wait_delivery(srv, qid, "deferred", timeout=10)[:1]
        assert time.monotonic() - t0 < 3.9, "the timeout did not apply"
        assert "timeout" in e["text"], e
        d.slow = None
        wait_delivery(srv, qid, "sent", timeout=12)
        srv.wait_queue_empty()
        # at-least-once: the timed-out EOM may have been accepted late
        assert token_count(d, f"slow{stage}") >= 1
        if stage != "EOM":
            assert token_count(d, f"slow{stage}") == 1
    assert no_dsn(srv, 0.3)


# -- 8. concurrency ---------------------------------------------------------

class TimedDownstream(Downstream):
    """A Downstream that timestamps every command it receives. A session's
    span, from its first command (EHLO) to its last (QUIT), lies inside
    the client's connection, so overlapping spans prove connections that
    were open at the same time (while closing races of the TCP teardown
    cannot fake one)."""

    def __init__(self, *a, **kw):
        self.stamps = {}
        super().__init__(*a, **kw)

    def _command(self, rec, verb, arg):
        with self._lock:
            self.stamps.setdefault(rec.number, []).append(time.monotonic())
        super()._command(rec, verb, arg)

    def spans(self):
        with self._lock:
            return [(t[0], t[-1]) for t in self.stamps.values()]


def max_overlap(spans):
    """The largest number of spans that share a moment."""
    points = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans],
                    key=lambda p: (p[0], p[1]))
    now = best = 0
    for _, step in points:
        now += step
        best = max(best, now)
    return best


def submit_many(srv, n, rcpt="x@remote.test", prefix="m"):
    return [submit(srv, [rcpt], token=f"{prefix}{i}") for i in range(n)]


@pytest.mark.parametrize("per_dest,expect_max", [(1, 1), (4, 4)])
def test_per_destination_limit(make_server, per_dest, expect_max):
    """delivery.per_destination: 1 with a slow server and 4 messages: never
    more than one connection at a time (with 4 allowed, all 4 messages go
    in parallel, which shows the measurement works)."""
    with TimedDownstream(slow={"EOM": 1.0}) as d:
        srv = make_server(relay_config(d.port, delivery={
            "per_destination": per_dest, "connection_cache": 0}))
        qids = submit_many(srv, 4)
        d.wait_messages(4, timeout=14, accepted=True)
        srv.wait_queue_empty(timeout=5)
        for i in range(4):
            assert token_count(d, f"m{i}") == 1
        assert all(deliveries(srv, q, "sent") for q in qids)
        most = max_overlap(d.spans())
        if per_dest == 1:
            assert most == 1, d.spans()
        else:
            assert most > 1, "no parallel connections: the limit " \
                             "measurement cannot be trusted"
            assert most <= expect_max, d.spans()


def test_global_concurrency_limit(make_server):
    """delivery.concurrency: 1 with two next hops: never more than one
    outbound connection at a time, over both; all mail delivered."""
    with TimedDownstream(slow={"EOM": 0.7}) as d1, \
            TimedDownstream(slow={"EOM": 0.7}) as d2:
        cfg = relay_config(d1.port, delivery={"concurrency": 1,
                                              "connection_cache": 0})
        cfg["routes"]["other.test"] = f"smtp:[127.0.0.1]:{d2.port}"
        srv = make_server(cfg)
        submit_many(srv, 2, "x@remote.test", "r")
        submit_many(srv, 2, "y@other.test", "o")
        d1.wait_messages(2, timeout=14, accepted=True)
        d2.wait_messages(2, timeout=14, accepted=True)
        srv.wait_queue_empty(timeout=5)
        spans = d1.spans() + d2.spans()
        assert len(spans) >= 2, spans
        assert max_overlap(spans) == 1, spans
