"""Outbound delivery against Postfix's smtp-sink (issue 4's named fault
server): a real, independent SMTP implementation with pipelining, its soft
(-r, 4xx) and hard (-f, 5xx) rejects per command and after the data, and
its hang-ups (-q, -Q). Each fault has its outcome: deferred and delivered
once the sink behaves, or exactly one bounce.

The sender is the local alice@example.test, so DSNs land in her Maildir;
helpers come from test_delivery_faults.py.
"""
import email
import email.policy

import pytest

from helpers import check, ehlo, queued_id, send_data
from smtp_sink import SmtpSink
from test_delivery_faults import (dsn_parts, relay_config, submit,
                                  wait_delivery, deliveries)

WAIT = 15


def test_delivers_to_smtp_sink_with_reuse(make_server, tmp_path):
    """Five messages with two recipients each reach smtp-sink intact, one
    transaction per message, over fewer connections than messages."""
    with SmtpSink(str(tmp_path)) as sink:
        srv = make_server(relay_config(sink.port))
        qids = [submit(srv, ["a@remote.test", "b@remote.test"], token=f"m{i}")
                for i in range(5)]
        msgs = sink.wait_messages(5, timeout=WAIT)
        for q in qids:
            wait_delivery(srv, q, "sent", count=2)
        assert sorted(tuple(m.rcpt_tos) for m in msgs) == \
            [("a@remote.test", "b@remote.test")] * 5
        assert all(m.mail_from == "alice@example.test" for m in msgs)
        assert all(b"line 2 of message m" in m.data for m in msgs)
        assert sink.counters()["sess"] < 5, sink.counters()
        srv.wait_queue_empty(timeout=WAIT)


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA", "."])
def test_soft_reject_defers_then_delivers(make_server, tmp_path, stage):
    """smtp-sink -r STAGE (450 4.3.0): deferred, never bounced; once a
    sink without -r listens on that port, the next retry delivers."""
    port = None
    with SmtpSink(str(tmp_path), name="soft", soft_reject=[stage]) as sink:
        port = sink.port
        srv = make_server(relay_config(port))
        qid = submit(srv, ["x@remote.test"])
        # the first deferral: retries are planned in whole seconds, so
        # with retry.first 1s a second attempt can follow at once when the
        # first ended just before a second boundary
        [e] = wait_delivery(srv, qid, "deferred", timeout=WAIT)[:1]
        assert e["dsn"].startswith("4."), e
    with SmtpSink(str(tmp_path), port, name="good") as sink:
        [m] = sink.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["x@remote.test"]
        wait_delivery(srv, qid, "sent", timeout=WAIT)
    assert not deliveries(srv, qid, "bounced")
    assert srv.maildir_files("alice") == []       # no DSN of any kind


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA", "."])
def test_hard_reject_bounces_once(make_server, tmp_path, stage):
    """smtp-sink -f STAGE with a 5xx: exactly one failure DSN to the
    sender, naming the recipients and quoting smtp-sink's reply; the
    message leaves the queue and is not retried."""
    reply = "554 5.7.1 sink says no"
    with SmtpSink(str(tmp_path), hard_reject=[stage],
                  hard_reply=reply) as sink:
        srv = make_server(relay_config(sink.port))
        qid = submit(srv, ["x@remote.test", "y@remote.test"])
        wait_delivery(srv, qid, "bounced", count=2, timeout=WAIT)
        [raw] = srv.wait_mail("alice", 1, timeout=WAIT)
        msg, per_msg, rcpts = dsn_parts(raw)
        assert msg["From"].startswith("MAILER-DAEMON") or \
            "mailer-daemon" in msg["From"].lower(), msg["From"]
        assert sorted(r["final-recipient"] for r in rcpts) == \
            ["rfc822; x@remote.test", "rfc822; y@remote.test"]
        for r in rcpts:
            assert r["action"] == "failed" and r["status"].startswith("5."), r
            assert "sink says no" in r["diagnostic-code"], r
        srv.wait_queue_empty(timeout=WAIT)
    assert len(srv.maildir_files("alice")) == 1     # one DSN, no more
    assert len(deliveries(srv, qid)) == 2           # one attempt, two lines


@pytest.mark.parametrize("kind", ["disconnect", "disconnect_421"])
@pytest.mark.parametrize("stage", ["RCPT", "DATA", "."])
def test_hangup_defers(make_server, tmp_path, kind, stage):
    """smtp-sink hangs up (-q: silently, -Q: after a 421) at RCPT, DATA or
    the end of data: a temporary failure; a well-behaved sink later gets
    the message once."""
    with SmtpSink(str(tmp_path), name="bad", **{kind: [stage]}) as sink:
        port = sink.port
        srv = make_server(relay_config(port))
        qid = submit(srv, ["x@remote.test"])
        # the first deferral: retries are planned in whole seconds, so
        # with retry.first 1s a second attempt can follow at once when the
        # first ended just before a second boundary
        [e] = wait_delivery(srv, qid, "deferred", timeout=WAIT)[:1]
        assert e["dsn"].startswith("4."), e
    with SmtpSink(str(tmp_path), port, name="good") as sink:
        msgs = sink.wait_messages(1, timeout=WAIT)
        wait_delivery(srv, qid, "sent", timeout=WAIT)
        srv.wait_queue_empty(timeout=WAIT)
        assert len(msgs) == 1 and msgs[0].rcpt_tos == ["x@remote.test"]
    assert not deliveries(srv, qid, "bounced")


def _submit_ret(srv, ret, body):
    c = srv.raw()
    try:
        ehlo(c)
        check(c.cmd(f"MAIL FROM:<alice@example.test>{ret}"), 250)
        check(c.cmd("RCPT TO:<x@remote.test>"), 250)
        qid = queued_id(send_data(
            c, f"Subject: returned\r\nFrom: <alice@example.test>\r\n\r\n"
               f"{body}.\r\n"))
        c.cmd("QUIT")
    finally:
        c.close()
    return qid


@pytest.mark.parametrize("ret, limit, full", [
    ("", None, False),                  # default: the headers only
    (" RET=HDRS", None, False),
    (" RET=FULL", None, True),
    (" RET=FULL", "100", False),        # over bounce.return_limit
])
def test_bounce_returns_what_ret_asks(make_server, tmp_path, ret, limit,
                                      full):
    """The bounce's third part: the whole message (message/rfc822) for
    RET=FULL within bounce.return_limit, else its header section
    (text/rfc822-headers)."""
    body = "".join(f"body line {i} of the returned message\r\n"
                   for i in range(20))
    with SmtpSink(str(tmp_path), hard_reject=["RCPT"]) as sink:
        cfg = relay_config(sink.port)
        if limit:
            cfg["bounce"] = {"return_limit": limit}
        srv = make_server(cfg)
        _submit_ret(srv, ret, body)
        [raw] = srv.wait_mail("alice", 1, timeout=WAIT)
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    parts = msg.get_payload()
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    third = parts[2]
    if full:
        assert third.get_content_type() == "message/rfc822"
        inner = third.get_payload()[0]
        assert inner["Subject"] == "returned"
        assert "body line 19 of the returned message" in \
            inner.get_payload()
    else:
        assert third.get_content_type() == "text/rfc822-headers"
        text = third.get_payload()
        assert "Subject: returned" in text and "body line" not in text
