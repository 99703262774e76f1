"""Outbound LMTP: routes to a Downstream(lmtp=True) over TCP and a unix
socket, per-recipient replies after the data, and the full path into a real
Dovecot (LMTP over a unix socket and TCP, read back over IMAP).

Bounces go to a local sender (alice@example.test) so that they can be read
from her Maildir; the client is trusted (127.0.0.0/8) where it relays."""
import email

import pytest

from downstream import Downstream
from procs import free_port
from dovecot import Dovecot
from helpers import log_events as events
from helpers import (check, ehlo, log_deliveries, queued_id, send_data,
                     split_headers, submit_message, wait_for, wait_log_event)

TRUSTED = ["127.0.0.0/8"]
WAIT = 10           # generous bound on waits (loaded machine)
STAR = "\"*\""       # the route key "*", quoted for YAML


def msg_text(subject="lmtp test", body="hello over lmtp\r\n",
             to="someone@relay.test"):
    return (f"From: <alice@example.test>\r\nTo: <{to}>\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '.')}"
            f"@client.test>\r\n\r\n{body}")


def send(server, sender, rcpts, text=None, subject="lmtp test"):
    """One message over SMTP (raw client); returns its queue id."""
    return submit_message(server, sender, rcpts,
                          (text or msg_text(subject)) + ".\r\n")




def deliveries(server, qid, status=None):
    return log_deliveries(server, qid, status)


def wait_removed(server, qid, timeout=WAIT):
    wait_log_event(server, qid, "removed", timeout)


def dsn_parts(raw):
    """(human text, {rcpt: {field: value}}) of a DSN (RFC 3464)."""
    m = email.message_from_bytes(raw)
    assert m.get_content_type() == "multipart/report", m.get_content_type()
    parts = list(m.walk())
    human = parts[1].get_payload(decode=True).decode("utf-8", "replace")
    status = [p for p in parts
              if p.get_content_type() == "message/delivery-status"]
    assert status, "no message/delivery-status part"
    per = {}
    sp = status[0].get_payload()
    for block in sp[1:] if isinstance(sp, list) else []:
        fields = {k.lower(): v for k, v in block.items()}
        rc = fields.get("final-recipient", "").split(";", 1)[-1].strip()
        per[rc.lower()] = fields
    return human, per


# -- LMTP to a Downstream ----------------------------------------------------

def test_lmtp_route_for_relay_domain_uses_lhlo(make_server):
    """A relay domain routed to "lmtp:[127.0.0.1]:PORT" is delivered over
    LMTP: LHLO (never EHLO or HELO), MAIL, RCPT, DATA, one reply per
    recipient; the message carries our Received: header."""
    with Downstream(lmtp=True) as d:
        srv = make_server({
            "domains": {"relay": ["relay.test"]},
            "routes": {"relay.test": f"lmtp:[127.0.0.1]:{d.port}"}})
        qid = send(srv, "sender@remote.test",
                   ["a@relay.test", "b@relay.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.protocol == "LMTP"
        assert m.mail_from == "sender@remote.test"
        assert sorted(m.rcpt_tos) == ["a@relay.test", "b@relay.test"]
        assert len(m.reply) == 2 and all(r.startswith("250")
                                          for r in m.reply), m.reply
        verbs = [v for _, v, _ in d.commands()]
        assert "LHLO" in verbs, verbs
        assert "EHLO" not in verbs and "HELO" not in verbs, verbs
        assert m.helo == "mx.example.test"
        assert m.data.endswith(b"\r\n\r\nhello over lmtp\r\n"), m.data
        headers, _ = split_headers(m.data.replace(b"\r\n", b"\n"))
        ours = [h for h in headers if h.startswith("Received:")
                and "by mx.example.test (sluice)" in h]
        assert len(ours) == 1 and f"id {qid}" in ours[0], headers
        wait_removed(srv, qid)
        sent = deliveries(srv, qid, "sent")
        assert sorted(e["to"] for e in sent) == ["<a@relay.test>",
                                                 "<b@relay.test>"], sent
        assert all(str(d.port) in e["relay"] for e in sent), sent


def test_lmtp_per_recipient_data_replies(make_server):
    """After the data an LMTP server answers once per recipient: 250 is
    delivered, 452 is retried later alone, 550 is bounced alone (one DSN
    to the sender naming only that recipient)."""
    with Downstream(lmtp=True, lmtp_data_replies={
            "full@relay.test": "452 4.2.2 mailbox full",
            "bad@relay.test": "550 5.1.1 no such user here"}) as d:
        srv = make_server({
            "domains": {"relay": ["relay.test"]},
            "routes": {"relay.test": f"lmtp:[127.0.0.1]:{d.port}"}})
        qid = send(srv, "alice@example.test",
                   ["ok@relay.test", "full@relay.test", "bad@relay.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert sorted(m.rcpt_tos) == ["bad@relay.test", "full@relay.test",
                                      "ok@relay.test"]
        # the failure DSN for bad@ alone
        [dsn] = srv.wait_mail("alice", 1, timeout=WAIT)
        human, per = dsn_parts(dsn)
        assert list(per) == ["bad@relay.test"], per
        assert per["bad@relay.test"]["action"].lower() == "failed"
        assert per["bad@relay.test"]["status"] == "5.1.1"
        assert "550" in per["bad@relay.test"].get("diagnostic-code", ""), per
        # full@ is retried alone, and delivered once the mailbox has room
        d.configure(lmtp_data_replies={})
        msgs = d.wait_messages(2, timeout=WAIT)
        assert msgs[1].rcpt_tos == ["full@relay.test"], \
            [x.rcpt_tos for x in msgs]
        wait_removed(srv, qid)
        assert [x.rcpt_tos for x in d.messages[1:]] == [["full@relay.test"]]
        assert len(deliveries(srv, qid, "bounced")) == 1
        assert [e["to"] for e in deliveries(srv, qid, "sent")] == \
            ["<ok@relay.test>", "<full@relay.test>"]
        assert deliveries(srv, qid, "deferred")[0]["dsn"] == "4.2.2"
        assert len(srv.read_mail("alice")) == 1      # no second DSN


def test_lmtp_rcpt_refused_others_delivered(make_server):
    """A recipient refused at RCPT is bounced; the others get the data and
    one reply each (the client counts only accepted recipients: a count
    out of step would hang or misattribute the replies)."""
    with Downstream(lmtp=True, rcpt_replies={
            "x@relay.test": "550 5.1.1 unknown"},
            lmtp_data_replies={"b@relay.test": "452 4.2.2 full"}) as d:
        srv = make_server({
            "domains": {"relay": ["relay.test"]},
            "routes": {"relay.test": f"lmtp:[127.0.0.1]:{d.port}"}})
        qid = send(srv, "alice@example.test",
                   ["a@relay.test", "x@relay.test", "b@relay.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["a@relay.test", "b@relay.test"]
        wait_for(lambda: len(deliveries(srv, qid)) >= 3, timeout=WAIT,
                 msg="3 delivery results")
        res = {e["to"]: e for e in deliveries(srv, qid)[:3]}
        assert res["<a@relay.test>"]["status"] == "sent"
        assert res["<x@relay.test>"]["status"] == "bounced"
        assert res["<x@relay.test>"]["dsn"] == "5.1.1"
        assert res["<b@relay.test>"]["status"] == "deferred"
        assert res["<b@relay.test>"]["dsn"] == "4.2.2"
        d.configure(lmtp_data_replies={})
        wait_removed(srv, qid)
        assert [x.rcpt_tos for x in d.messages] == \
            [["a@relay.test", "b@relay.test"], ["b@relay.test"]]


def test_lmtp_connection_lost_among_data_replies(make_server):
    """The LMTP server answers the first recipient, then 421 for the second
    and closes before the third reply: the first is delivered, the second
    and third are deferred (never counted as delivered) and sent again."""
    with Downstream(lmtp=True, lmtp_data_replies={
            "b@relay.test": ["421 4.3.2 going down", None]}) as d:
        srv = make_server({
            "domains": {"relay": ["relay.test"]},
            "routes": {"relay.test": f"lmtp:[127.0.0.1]:{d.port}"}})
        qid = send(srv, "alice@example.test",
                   ["a@relay.test", "b@relay.test", "c@relay.test"])
        msgs = d.wait_messages(2, timeout=WAIT)
        assert msgs[0].rcpt_tos == ["a@relay.test", "b@relay.test",
                                    "c@relay.test"]
        assert msgs[1].rcpt_tos == ["b@relay.test", "c@relay.test"], \
            [m.rcpt_tos for m in msgs]
        wait_removed(srv, qid)
        first = deliveries(srv, qid)[:3]
        res = {e["to"]: e["status"] for e in first}
        assert res == {"<a@relay.test>": "sent",
                       "<b@relay.test>": "deferred",
                       "<c@relay.test>": "deferred"}, first
        assert len(d.messages) == 2
        assert srv.read_mail("alice") == []


@pytest.mark.parametrize("dsn_ext", [False, True], ids=["no-DSN", "DSN"])
def test_lmtp_notify_success(make_server, dsn_ext):
    """NOTIFY=SUCCESS over LMTP. An LMTP server without DSN is the final
    delivery: we send a success DSN (Action: delivered). One that offers
    DSN gets NOTIFY (and ORCPT) passed on and sends its own: none from us."""
    exts = ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"] + \
        (["DSN"] if dsn_ext else [])
    with Downstream(lmtp=True, extensions=exts) as d:
        srv = make_server({
            "domains": {"relay": ["relay.test"]},
            "routes": {"relay.test": f"lmtp:[127.0.0.1]:{d.port}"}})
        c = srv.raw()
        ehlo(c)
        check(c.cmd("MAIL FROM:<alice@example.test> ENVID=e1"), 250)
        check(c.cmd("RCPT TO:<n@relay.test> NOTIFY=SUCCESS "
                    "ORCPT=rfc822;n@relay.test"), 250)
        qid = queued_id(send_data(c, msg_text() + ".\r\n"))
        c.cmd("QUIT")
        [m] = d.wait_messages(1, timeout=WAIT)
        wait_removed(srv, qid)
        opts = [o.upper() for o in m.rcpt_options[0]]
        if dsn_ext:
            assert "NOTIFY=SUCCESS" in opts, m.rcpt_options
            assert "ENVID=e1" in [o.upper() for o in m.mail_options] or \
                "ENVID=E1" in [o.upper() for o in m.mail_options], \
                m.mail_options
            wait_for(lambda: events(srv, qid, "removed"), timeout=WAIT)
            assert not events(srv, qid, "dsn")
            assert srv.read_mail("alice") == []
        else:
            assert opts == [], m.rcpt_options
            [dsn] = srv.wait_mail("alice", 1, timeout=WAIT)
            human, per = dsn_parts(dsn)
            assert per["n@relay.test"]["action"].lower() == "delivered", per
            assert per["n@relay.test"]["status"].startswith("2."), per


@pytest.mark.parametrize("reply,outcome", [
    ("554 5.3.0 no data today", "bounced"),
    ("451 4.3.0 no data now", "deferred"),
])
def test_lmtp_data_command_refused(make_server, reply, outcome):
    """DATA itself refused (no 354): every accepted recipient gets that
    result (bounced for 5xx, deferred for 4xx); nothing is delivered."""
    with Downstream(lmtp=True, command_replies={"DATA": reply}) as d:
        srv = make_server({
            "domains": {"relay": ["relay.test"]},
            "routes": {"relay.test": f"lmtp:[127.0.0.1]:{d.port}"}})
        qid = send(srv, "alice@example.test", ["a@relay.test",
                                               "b@relay.test"])
        wait_for(lambda: len(deliveries(srv, qid)) >= 2, timeout=WAIT,
                 msg="2 delivery results")
        first = deliveries(srv, qid)[:2]
        assert {e["status"] for e in first} == {outcome}, first
        assert {e["dsn"] for e in first} == {reply[4:9]}, first
        assert d.messages == []
        if outcome == "bounced":
            [dsn] = srv.wait_mail("alice", 1, timeout=WAIT)
            assert sorted(dsn_parts(dsn)[1]) == ["a@relay.test",
                                                 "b@relay.test"]
            wait_removed(srv, qid)
        else:
            assert qid in srv.queued_ids()


@pytest.mark.parametrize("kind", ["bad_code", "no_crlf"])
def test_lmtp_malformed_data_reply_defers(make_server, kind):
    """A malformed reply after the data: a temporary failure for every
    recipient (never delivered, never bounced, no crash); delivered once
    the server behaves."""
    with Downstream(lmtp=True, malformed={"EOM": kind}) as d:
        srv = make_server({
            "domains": {"relay": ["relay.test"]},
            "routes": {"relay.test": f"lmtp:[127.0.0.1]:{d.port}"},
            "delivery": {"data_timeout": "1s"}})
        qid = send(srv, "alice@example.test", ["a@relay.test",
                                               "b@relay.test"])
        wait_for(lambda: len(deliveries(srv, qid)) >= 2, timeout=WAIT,
                 msg="2 delivery results")
        first = deliveries(srv, qid)[:2]
        assert {e["status"] for e in first} == {"deferred"}, first
        d.configure(malformed={})
        wait_removed(srv, qid)
        assert [e["status"] for e in deliveries(srv, qid)[2:]] == \
            ["sent", "sent"]
        assert srv.read_mail("alice") == []


def test_lmtp_data_timeout_defers(make_server):
    """An LMTP server that takes longer than data_timeout to answer after
    the data: deferred, and delivered on a later try."""
    with Downstream(lmtp=True, slow={"EOM": 3}) as d:
        srv = make_server({
            "domains": {"relay": ["relay.test"]},
            "routes": {"relay.test": f"lmtp:[127.0.0.1]:{d.port}"},
            "delivery": {"data_timeout": "1s"}})
        qid = send(srv, "alice@example.test", ["a@relay.test"])
        wait_for(lambda: deliveries(srv, qid), timeout=WAIT,
                 msg="a delivery result")
        [e] = deliveries(srv, qid)
        assert e["status"] == "deferred" and e["dsn"].startswith("4."), e
        d.configure(slow=None)
        wait_removed(srv, qid)
        assert srv.read_mail("alice") == []


def test_lmtp_all_refused_at_rcpt(make_server):
    """Every recipient refused at RCPT: no message data is sent (DATA may
    be pipelined, RFC 2920, and refused), all are bounced in one DSN."""
    with Downstream(lmtp=True, rcpt_replies={
            "a@relay.test": "550 5.1.1 no a",
            "b@relay.test": "553 5.1.3 no b"}) as d:
        srv = make_server({
            "domains": {"relay": ["relay.test"]},
            "routes": {"relay.test": f"lmtp:[127.0.0.1]:{d.port}"}})
        qid = send(srv, "alice@example.test", ["a@relay.test",
                                               "b@relay.test"])
        [dsn] = srv.wait_mail("alice", 1, timeout=WAIT)
        per = dsn_parts(dsn)[1]
        assert {k: v["status"] for k, v in per.items()} == \
            {"a@relay.test": "5.1.1", "b@relay.test": "5.1.3"}, per
        wait_removed(srv, qid)
        assert d.messages == [] and d.incomplete == []


def test_lmtp_connection_reused_replies_in_step(make_server):
    """An LMTP connection is kept and reused after a transaction with mixed
    per-recipient replies: the next transactions' replies are matched to
    the right recipients (a reply count out of step would show here)."""
    with Downstream(lmtp=True, lmtp_data_replies={
            "b@relay.test": ["452 4.2.2 full", None],
            "c@relay.test": "550 5.1.1 gone"}) as d:
        srv = make_server({
            "domains": {"relay": ["relay.test"]},
            "routes": {"relay.test": f"lmtp:[127.0.0.1]:{d.port}"},
            "delivery": {"connection_cache": "10s"}})
        q1 = send(srv, "alice@example.test",
                  ["a@relay.test", "b@relay.test", "c@relay.test"])
        d.wait_messages(1, timeout=WAIT)
        wait_for(lambda: len(deliveries(srv, q1)) >= 3, timeout=WAIT,
                 msg="3 results")
        q2 = send(srv, "alice@example.test", ["d@relay.test",
                                              "e@relay.test"])
        wait_removed(srv, q1)
        wait_removed(srv, q2)
        assert d.connections == 1, d._summary()
        assert {e["to"]: e["status"] for e in deliveries(srv, q2)} == \
            {"<d@relay.test>": "sent", "<e@relay.test>": "sent"}
        assert [e["status"] for e in deliveries(srv, q1)] == \
            ["sent", "deferred", "bounced", "sent"]
        assert sorted(tuple(m.rcpt_tos) for m in d.messages) == sorted([
            ("a@relay.test", "b@relay.test", "c@relay.test"),
            ("d@relay.test", "e@relay.test"), ("b@relay.test",)])


def test_lmtp_star_route_for_trusted_relay(make_server):
    """"*": lmtp route sends mail for any non-local domain there; local
    mail still goes to the Maildir."""
    with Downstream(lmtp=True) as d:
        srv = make_server({
            "trusted_networks": TRUSTED,
            "routes": {STAR: f"lmtp:[127.0.0.1]:{d.port}"}})
        qid = send(srv, "sender@remote.test",
                   ["r@anywhere.test", "bob@example.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["r@anywhere.test"]
        srv.wait_mail("bob", 1, timeout=WAIT)
        wait_removed(srv, qid)


def test_lmtp_mailboxes_delivery(make_server):
    """mailboxes.delivery: an lmtp route hands local mailboxes to the LMTP
    server instead of writing the Maildir; unknown users are still refused
    at RCPT."""
    with Downstream(lmtp=True) as d:
        srv = make_server({
            "mailboxes": {"delivery": f"lmtp:[127.0.0.1]:{d.port}"}})
        c = srv.raw()
        ehlo(c)
        check(c.cmd("MAIL FROM:<sender@remote.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("RCPT TO:<Bob@Example.Test>"), 250)
        assert c.cmd("RCPT TO:<carol@example.test>")[0] == 550
        qid = queued_id(send_data(c, msg_text(to="alice@example.test")
                                  + ".\r\n"))
        c.cmd("QUIT")
        [m] = d.wait_messages(1, timeout=WAIT)
        assert [r.lower() for r in m.rcpt_tos] == ["alice@example.test",
                                                   "bob@example.test"]
        wait_removed(srv, qid)
        assert srv.read_mail("alice") == [] and srv.read_mail("bob") == []


def test_lmtp_transport_name_and_default_port(make_server):
    """mailboxes.delivery may name a transports: entry; "lmtp:[host]"
    without a port uses port 24."""
    host = "127.0.0.6"
    try:
        d = Downstream(port=24, host=host, lmtp=True)
    except OSError as e:
        pytest.skip(f"cannot listen on {host}:24: {e}")
    with d:
        srv = make_server({
            "transports": {"dovecot": f"lmtp:[{host}]"},
            "mailboxes": {"delivery": "dovecot"}})
        qid = send(srv, "sender@remote.test", ["bob@example.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["bob@example.test"]
        wait_removed(srv, qid)
        [e] = deliveries(srv, qid, "sent")
        assert f"{host}]:24" in e["relay"], e
        assert srv.read_mail("bob") == []


def test_lmtp_recipients_per_transaction(make_server):
    """recipients_per_transaction 2 with 5 recipients: three LMTP
    transactions, each with its own per-recipient replies; one 550 in the
    second transaction bounces only that recipient."""
    rcpts = [f"r{i}@relay.test" for i in range(5)]
    with Downstream(lmtp=True, lmtp_data_replies={
            "r2@relay.test": "550 5.2.1 disabled"}) as d:
        srv = make_server({
            "domains": {"relay": ["relay.test"]},
            "routes": {"relay.test": f"lmtp:[127.0.0.1]:{d.port}"},
            "delivery": {"recipients_per_transaction": 2}})
        qid = send(srv, "alice@example.test", rcpts)
        d.wait_messages(3, timeout=WAIT)
        wait_removed(srv, qid)
        got = sorted(r for m in d.messages for r in m.rcpt_tos)
        assert got == rcpts and len(d.messages) == 3, \
            [m.rcpt_tos for m in d.messages]
        assert all(len(m.rcpt_tos) <= 2 for m in d.messages)
        res = {e["to"]: e["status"] for e in deliveries(srv, qid)}
        assert res == {f"<{r}>": ("bounced" if r.startswith("r2@")
                                  else "sent") for r in rcpts}, res
        [dsn] = srv.wait_mail("alice", 1, timeout=WAIT)
        assert list(dsn_parts(dsn)[1]) == ["r2@relay.test"]


def test_lmtp_unix_socket_route(make_server, tmp_path):
    """"lmtp:unix:/path" delivers over a unix-domain socket."""
    sock = str(tmp_path / "lmtp.sock")
    with Downstream(lmtp=True, unix_path=sock) as d:
        srv = make_server({
            "domains": {"relay": ["relay.test"]},
            "routes": {"relay.test": f"lmtp:unix:{sock}"}})
        qid = send(srv, "sender@remote.test", ["u@relay.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.protocol == "LMTP" and m.rcpt_tos == ["u@relay.test"]
        assert "LHLO" in [v for _, v, _ in d.commands()]
        wait_removed(srv, qid)
        [e] = deliveries(srv, qid, "sent")
        assert sock in e["relay"], e


def test_lmtp_unix_socket_missing_defers(make_server, tmp_path):
    """A unix socket that does not exist (the LMTP server is down) defers
    the mail, never bounces it; once it listens the mail is delivered."""
    sock = str(tmp_path / "later.sock")
    srv = make_server({
        "domains": {"relay": ["relay.test"]},
        "routes": {"relay.test": f"lmtp:unix:{sock}"}})
    qid = send(srv, "alice@example.test", ["u@relay.test"])
    wait_for(lambda: deliveries(srv, qid, "deferred"), timeout=WAIT,
             msg="a deferred delivery")
    assert not deliveries(srv, qid, "bounced")
    assert qid in srv.queued_ids()
    with Downstream(lmtp=True, unix_path=sock) as d:
        d.wait_messages(1, timeout=WAIT)
        wait_removed(srv, qid)
    assert srv.read_mail("alice") == []         # no bounce, no delay DSN


def test_lmtp_tcp_refused_defers(make_server):
    """An LMTP server that refuses connections: deferred, then delivered
    when it comes up on that port."""
    port = free_port()
    srv = make_server({
        "domains": {"relay": ["relay.test"]},
        "routes": {"relay.test": f"lmtp:[127.0.0.1]:{port}"}})
    qid = send(srv, "alice@example.test", ["t@relay.test"])
    wait_for(lambda: deliveries(srv, qid, "deferred"), timeout=WAIT,
             msg="a deferred delivery")
    assert deliveries(srv, qid, "deferred")[0]["dsn"].startswith("4.")
    with Downstream(port=port, lmtp=True) as d:
        d.wait_messages(1, timeout=WAIT)
        wait_removed(srv, qid)
    assert not deliveries(srv, qid, "bounced")


def test_lmtp_all_recipients_tempfail_then_ok(make_server):
    """Every recipient 452 after the data: all stay queued and are sent
    again together in one transaction."""
    with Downstream(lmtp=True, lmtp_data_replies={
            "a@relay.test": ["452 4.2.2 full", None],
            "b@relay.test": ["451 4.3.0 later", None]}) as d:
        srv = make_server({
            "domains": {"relay": ["relay.test"]},
            "routes": {"relay.test": f"lmtp:[127.0.0.1]:{d.port}"}})
        qid = send(srv, "alice@example.test", ["a@relay.test",
                                               "b@relay.test"])
        msgs = d.wait_messages(2, timeout=WAIT)
        assert msgs[1].rcpt_tos == ["a@relay.test", "b@relay.test"]
        wait_removed(srv, qid)
        assert len(d.messages) == 2
        assert srv.read_mail("alice") == []


# -- a real Dovecot ------------------------------------------------------------

def dovecot_server(make_server, dc, how="unix", extra=None):
    route = (f"lmtp:unix:{dc.lmtp_socket}" if how == "unix"
             else f"lmtp:[127.0.0.1]:{dc.lmtp_port}")
    over = dict(extra or {})
    over["mailboxes"] = dict(over.get("mailboxes", {}), delivery=route)
    return make_server(over)


def smtplib_send(srv, sender, rcpts, subject, body):
    msg = (f"From: Alice <{sender}>\r\nTo: {', '.join(rcpts)}\r\n"
           f"Subject: {subject}\r\nMessage-ID: <{subject}@client.test>\r\n"
           f"\r\n{body}")
    with srv.smtp() as s:
        s.ehlo("client.example.test")
        refused = s.sendmail(sender, rcpts, msg.encode())
        assert refused == {}, refused


def check_dovecot_copy(raw, subject, body, sender, qid=None):
    assert raw.startswith(b"Return-Path: <" + sender.encode() + b">\r\n"), \
        raw[:200]
    headers, text = split_headers(raw.replace(b"\r\n", b"\n"))
    assert f"Subject: {subject}" in headers, headers
    ours = [h for h in headers if h.startswith("Received:")
            and "by mx.example.test (sluice)" in h]
    assert len(ours) == 1, headers
    if qid:
        assert f"id {qid}" in ours[0], ours
    # Dovecot adds its own Received: above ours (it received it from us)
    dove = [i for i, h in enumerate(headers) if h.startswith("Received:")
            and "dovecot.test" in h]
    assert dove and dove[0] < headers.index(ours[0]), headers
    assert text == body.replace("\r\n", "\n"), text


@pytest.mark.parametrize("how", ["unix", "tcp"])
def test_dovecot_full_path(make_server, tmp_path, how):
    """SMTP in, LMTP out into Dovecot (unix socket or TCP), read back over
    IMAP: both mailboxes get the message with its subject, body, our
    Received: header and the envelope sender as Return-Path."""
    with Dovecot(str(tmp_path)) as dc:
        srv = dovecot_server(make_server, dc, how)
        body = "line one\r\n.leading dot\r\nlast line\r\n"
        smtplib_send(srv, "sender@remote.test",
                     ["alice@example.test", "bob@example.test"],
                     f"via-{how}", body)
        [a] = dc.wait_messages("alice", 1, timeout=WAIT)
        [b] = dc.wait_messages("bob", 1, timeout=WAIT)
        for raw in (a, b):
            check_dovecot_copy(raw, f"via-{how}", body, "sender@remote.test")
        srv.wait_queue_empty(timeout=WAIT)
        assert srv.read_mail("alice") == [] and srv.read_mail("bob") == []
        assert "lmtp(" in dc.log() or "saved mail to INBOX" in dc.log()


def test_dovecot_unknown_user_bounces(make_server, tmp_path):
    """A mailbox sluice knows but Dovecot does not (carol): Dovecot's 550
    at RCPT bounces carol to the local sender; alice is delivered."""
    with Dovecot(str(tmp_path)) as dc:
        srv = dovecot_server(make_server, dc, "unix", {
            "mailboxes": {"users": ["alice@example.test", "bob@example.test",
                                    "carol@example.test"]}})
        # every local mailbox goes to Dovecot: the bounce to alice too
        smtplib_send(srv, "alice@example.test",
                     ["bob@example.test", "carol@example.test"],
                     "unknown-user", "for bob and carol\r\n")
        [b] = dc.wait_messages("bob", 1, timeout=WAIT)
        assert b"for bob and carol" in b
        [bounce] = dc.wait_messages("alice", 1, timeout=WAIT)
        human, per = dsn_parts(bounce)
        assert list(per) == ["carol@example.test"], per
        assert per["carol@example.test"]["status"].startswith("5.1.1"), per
        assert per["carol@example.test"]["action"].lower() == "failed"
        assert b"Return-Path: <>" in bounce, bounce[:300]
        srv.wait_queue_empty(timeout=WAIT)
        assert len(dc.fetch_all("bob")) == 1          # no duplicate
        assert len(dc.fetch_all("alice")) == 1        # one bounce


def test_dovecot_stopped_defers_then_delivers(make_server, tmp_path):
    """Dovecot down: the message is deferred (not bounced); after Dovecot
    is started again on the same socket and port it is delivered."""
    dc = Dovecot(str(tmp_path))
    try:
        lmtp_port, imap_port = dc.lmtp_port, dc.imap_port
        srv = dovecot_server(make_server, dc, "tcp")
        dc.stop()
        smtplib_send(srv, "sender@remote.test", ["alice@example.test"],
                     "while-down", "queued while down\r\n")
        [qid] = srv.queued_ids()
        wait_for(lambda: deliveries(srv, qid, "deferred"), timeout=WAIT,
                 msg="a deferred delivery")
        assert not deliveries(srv, qid, "bounced")
        dc = Dovecot(str(tmp_path), lmtp_port=lmtp_port, imap_port=imap_port)
        [a] = dc.wait_messages("alice", 1, timeout=WAIT)
        check_dovecot_copy(a, "while-down", "queued while down\r\n",
                           "sender@remote.test", qid)
        wait_removed(srv, qid)
        assert len(deliveries(srv, qid, "sent")) == 1
    finally:
        dc.stop()


def test_dovecot_large_message_intact(make_server, tmp_path):
    """A 400 KB message (many lines, some starting with a dot) reaches
    Dovecot over LMTP byte for byte."""
    lines = [(f".{i:06d} " if i % 7 == 0 else f"{i:06d} ") + "x" * 70
             for i in range(5000)]
    body = "\r\n".join(lines) + "\r\n"
    with Dovecot(str(tmp_path)) as dc:
        srv = dovecot_server(make_server, dc, "unix")
        smtplib_send(srv, "sender@remote.test", ["bob@example.test"],
                     "large", body)
        [b] = dc.wait_messages("bob", 1, timeout=WAIT)
        assert b.endswith(b"\r\n\r\n" + body.encode()), len(b)
        srv.wait_queue_empty(timeout=WAIT)


def test_dovecot_notify_success(make_server, tmp_path):
    """NOTIFY=SUCCESS for a mailbox delivered by LMTP (final delivery):
    one success DSN to the sender with Action: delivered."""
    with Dovecot(str(tmp_path)) as dc:
        srv = dovecot_server(make_server, dc, "unix")
        c = srv.raw()
        ehlo(c)
        check(c.cmd("MAIL FROM:<alice@example.test>"), 250)
        check(c.cmd("RCPT TO:<bob@example.test> NOTIFY=SUCCESS"), 250)
        qid = queued_id(send_data(c, msg_text(to="bob@example.test")
                                  + ".\r\n"))
        c.cmd("QUIT")
        dc.wait_messages("bob", 1, timeout=WAIT)
        [dsn] = dc.wait_messages("alice", 1, timeout=WAIT)
        human, per = dsn_parts(dsn)
        assert list(per) == ["bob@example.test"], per
        assert per["bob@example.test"]["action"].lower() == "delivered", per
        assert per["bob@example.test"]["status"].startswith("2."), per
        wait_removed(srv, qid)
        assert len(dc.fetch_all("bob")) == 1
        assert len(dc.fetch_all("alice")) == 1
