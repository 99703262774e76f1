"""The outbound SMTP client (issue 4), against a programmable Downstream
(or a scripted socket server): message fidelity (dot-stuffing, Received:,
8BITMIME, SMTPUTF8), several recipients per transaction, connection reuse,
PIPELINING, EHLO/HELO fallback, SIZE, STARTTLS, DSN parameters and the
DSNs (success, failure, none) that follow from the downstream's replies."""
import email
import email.policy
import re
import socket
import ssl
import threading
import time
import warnings

from downstream import Downstream, RawServer, make_cert
from helpers import log_events as events
from helpers import wait_deliveries as deliveries
from helpers import wait_log_events as wait_event
from helpers import check, ehlo, message, queued_id, submit_message, wait_for

STAR = '"*"'            # a YAML key: a bare * would be an alias
TRUSTED = ["127.0.0.0/8"]
WAIT = 10.0             # generous bounds for a loaded machine
NO_EXT = ["ENHANCEDSTATUSCODES"]


def relay(d, **extra):
    """Overrides: loopback trusted, every remote domain to Downstream d."""
    cfg = {"trusted_networks": TRUSTED,
           "routes": {STAR: f"smtp:[127.0.0.1]:{d.port}"}}
    cfg.update(extra)
    return cfg


def submit(srv, sender, rcpts, data=None, mail_params="", rcpt_params=None,
           c=None):
    """One message; every RCPT must be taken. -> qid (a given session c is
    left open)."""
    return submit_message(srv, sender, rcpts, data or (message() + ".\r\n"),
                          mail_params, rcpt_params, c)


def verbs(session):
    return [v for v, _ in session.commands]


def all_verbs(d):
    return [v for _, v, _ in d.commands()]


def strip_received(data):
    """(our Received: field, the rest) of a relayed message."""
    assert data.startswith(b"Received: "), data[:200]
    m = re.match(rb"Received: [^\r]*\r\n(?:[ \t][^\r]*\r\n)*", data)
    return m.group(0), data[m.end():]


def _fields(block):
    """{name: unfolded value} of a header-like block of text lines."""
    out, last = {}, None
    for line in block.split("\n"):
        if line[:1] in (" ", "\t") and last:
            out[last] += " " + line.strip()
        elif ":" in line:
            last, _, v = line.partition(":")
            last = last.strip()
            out[last] = v.strip()
    return out


def parse_dsn(raw):
    """(top-level header fields, [per-recipient field dicts]) of a
    delivered DSN (a Maildir file: LF line ends)."""
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    top = _fields(head)
    assert top["Content-Type"].startswith("multipart/report"), top
    assert "report-type=delivery-status" in top["Content-Type"], top
    m = re.search(r'boundary="([^"]+)"', top["Content-Type"])
    assert m, top
    parts = body.split("--" + m.group(1))
    status = []
    for part in parts[1:]:
        phead, _, pbody = part.lstrip("\n").partition("\n\n")
        ctype = _fields(phead).get("Content-Type", "")
        if ctype.split(";")[0].strip().lower() in (
                "message/delivery-status", "message/global-delivery-status"):
            status.append(pbody)
    assert len(status) == 1, f"{len(status)} delivery-status parts"
    blocks = [_fields(b) for b in re.split(r"\n\s*\n", status[0].strip())]
    assert "Reporting-MTA" in blocks[0], blocks[0]
    return top, blocks[1:]


def addr_field(v):
    """'rfc822; X@y' -> 'rfc822;x@y'"""
    t, _, a = v.partition(";")
    return t.strip().lower() + ";" + a.strip().lower()


def find_rcpt(blocks, addr):
    for b in blocks:
        if addr_field(b.get("Final-Recipient", "")).endswith(
                ";" + addr.lower()):
            return b
    raise AssertionError(f"no DSN block for {addr}: {blocks}")


# -- message fidelity --------------------------------------------------------

DOTTY = (b"Subject: dots\r\nFrom: <alice@example.test>\r\n\r\n"
         b".\r\n..\r\n...leading dots\r\n. space\r\nmid.dle.\r\n"
         b"\r\n\r\ntrailing space  \r\n\ttab\r\n" + b"x" * 990 + b"\r\n"
         b".\r\n.last line\r\n")


def dot_stuff(b):
    return re.sub(rb"(^|\r\n)\.", rb"\1..", b)


def test_body_byte_exact_with_dot_stuffing(make_server):
    """Lines starting with '.' survive both ways: the client unstuffs what
    it receives and stuffs what it sends; after our Received: field the
    downstream gets the exact bytes the client meant."""
    with Downstream() as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test", ["x@remote.test"],
                     data=dot_stuff(DOTTY) + b".\r\n")
        [m] = d.wait_messages(1, timeout=WAIT)
        received, rest = strip_received(m.data)
        assert rest == DOTTY
        # on the wire: every line starting with '.' was doubled
        _, raw_rest = strip_received(m.raw)
        assert raw_rest == dot_stuff(DOTTY)
        text = received.decode()
        assert "by mx.example.test (sluice)" in text, text
        assert f"id {qid}" in text, text
        assert "<x@remote.test>" in text, text
        assert m.data.count(b"\r\nReceived: ") == 0   # added once, at top
        wait_event(srv, qid, "removed")


def bdat_submit(srv, sender, rcpts, chunks):
    """One message sent with BDAT chunks (the last one with LAST)."""
    c = srv.raw()
    try:
        ehlo(c)
        check(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0")
        for r in rcpts:
            check(c.cmd(f"RCPT TO:<{r}>"), 250, "2.1.5")
        for i, ch in enumerate(chunks):
            last = i == len(chunks) - 1
            c.send(b"BDAT %d%s\r\n" % (len(ch), b" LAST" if last else b"")
                   + ch)
            if last:
                qid = queued_id(c.reply())
            else:
                check(c.reply(), 250)
        c.cmd("QUIT")
    finally:
        c.close()
    return qid


def test_bdat_message_relayed_with_dot_stuffing(make_server):
    """A message received with BDAT (raw, unstuffed '.' lines) is relayed
    with DATA: its '.' lines are stuffed on the wire and arrive intact."""
    content = (b"Subject: bdat\r\n\r\n.\r\n..two\r\n.one\r\nx\r\n"
               b".\r\n")
    with Downstream() as d:
        srv = make_server(relay(d))
        qid = bdat_submit(srv, "alice@example.test", ["x@remote.test"],
                          [content[:20], content[20:]])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert strip_received(m.data)[1] == content
        assert strip_received(m.raw)[1] == dot_stuff(content)
        wait_event(srv, qid, "removed")


def test_bdat_message_without_final_crlf(make_server):
    """BDAT lets a message end without CRLF; relayed with DATA, the client
    must still end the data with CRLF.CRLF on a line of its own (the last
    line is not glued to the terminating dot)."""
    content = b"Subject: open end\r\n\r\nline one\r\nno newline"
    with Downstream() as d:
        srv = make_server(relay(d))
        qid = bdat_submit(srv, "alice@example.test", ["x@remote.test"],
                          [content])
        [m] = d.wait_messages(1, timeout=WAIT)
        rest = strip_received(m.data)[1]
        assert rest in (content, content + b"\r\n"), rest
        assert deliveries(srv, qid, 1)["x@remote.test"]["status"] == "sent"


def test_large_body_dot_stuffing_across_chunks(make_server):
    """An ~800 KB message made of 11-byte blocks ".\r\n.abcde\r\n": the
    client reads the queue file in 64 KB pieces (65536 = 9 mod 11), so the
    piece boundaries fall at every position of a block, including between
    CR, LF and '.'; the downstream still gets every byte exactly."""
    block = b".\r\n.abcde\r\n"
    body = block * (800 * 1024 // len(block))
    content = b"Subject: big\r\n\r\n" + body
    with Downstream() as d:
        srv = make_server(relay(d, limits={"message_size": "2M"}))
        qid = submit(srv, "alice@example.test", ["x@remote.test"],
                     data=dot_stuff(content) + b".\r\n")
        [m] = d.wait_messages(1, timeout=20)
        rest = strip_received(m.data)[1]
        assert len(rest) == len(content)
        assert rest == content
        sizes = [o for o in m.mail_options if o.startswith("SIZE=")]
        assert sizes == [f"SIZE={len(m.data)}"], sizes
        wait_event(srv, qid, "removed", timeout=20)


def test_local_part_case_preserved(make_server):
    """The local part is case-sensitive for the receiving system: it is
    relayed exactly as given (sender and recipient)."""
    with Downstream() as d:
        srv = make_server(relay(d))
        submit(srv, "Alice.Sender@Example.Test", ["John.DOE@Remote.Test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.mail_from.split("@")[0] == "Alice.Sender", m.mail_from
        assert m.rcpt_tos[0].split("@")[0] == "John.DOE", m.rcpt_tos


def test_8bit_body_to_server_without_8bitmime(make_server):
    """An 8-bit message (BODY=8BITMIME) must not be sent as is to a server
    that does not offer 8BITMIME (RFC 6152 3): converted to 7 bit, or
    returned, but never raw 8-bit octets in a plain transaction."""
    msg = b"Subject: 8bit\r\nMIME-Version: 1.0\r\n" \
        b"Content-Type: text/plain; charset=utf-8\r\n" \
        b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9\r\n"
    with Downstream(extensions=["PIPELINING", "ENHANCEDSTATUSCODES"]) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test", ["x@remote.test"],
                     mail_params=" BODY=8BITMIME", data=msg + b".\r\n")
        deliveries(srv, qid, 1)
        [m] = d.messages
        assert all(b < 0x80 for b in m.data), \
            "8-bit octets sent to a server without 8BITMIME"
        assert not any(o.upper().startswith("BODY=") for o in m.mail_options)
        # converted, not mangled: quoted-printable with the same text
        parsed = email.message_from_bytes(m.data, policy=email.policy.default)
        assert parsed["Content-Transfer-Encoding"] == "quoted-printable"
        assert parsed.get_content().replace("\r\n", "\n") == "caf\u00e9\n"
        assert parsed["Subject"] == "8bit"


def test_size_parameter_is_the_message_size(make_server):
    """With SIZE offered, MAIL carries SIZE= the octets actually sent
    (our Received: included)."""
    with Downstream() as d:
        srv = make_server(relay(d))
        submit(srv, "alice@example.test", ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        sizes = [o for o in m.mail_options if o.upper().startswith("SIZE=")]
        assert sizes == [f"SIZE={len(m.data)}"], (m.mail_options,
                                                   len(m.data))


def test_no_parameters_when_not_offered(make_server):
    """A downstream offering nothing gets no MAIL/RCPT parameters at all,
    whatever the client gave (SIZE, BODY, RET, ENVID, NOTIFY, ORCPT)."""
    with Downstream(extensions=NO_EXT) as d:
        srv = make_server(relay(d))
        submit(srv, "alice@example.test", ["x@remote.test"],
               mail_params=" BODY=8BITMIME RET=HDRS ENVID=e1",
               rcpt_params={"x@remote.test":
                            " NOTIFY=FAILURE ORCPT=rfc822;x@remote.test"},
               data=b"Subject: 8bit\r\n\r\ncaf\xc3\xa9\r\n.\r\n")
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.mail_options == []
        assert m.rcpt_options == [[]]
        assert m.accepted


def test_8bitmime_passed_on(make_server):
    """An 8-bit body sent with BODY=8BITMIME is relayed with BODY=8BITMIME,
    byte for byte."""
    body = "Grüße, ça va? \u00e9\u00e8 \u4e2d\u6587\r\n".encode()
    msg = b"Subject: 8bit\r\nMIME-Version: 1.0\r\n" \
        b"Content-Type: text/plain; charset=utf-8\r\n" \
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\xff\x80\r\n"
    with Downstream() as d:
        srv = make_server(relay(d))
        submit(srv, "alice@example.test", ["x@remote.test"],
               mail_params=" BODY=8BITMIME", data=msg + b".\r\n")
        [m] = d.wait_messages(1, timeout=WAIT)
        assert "BODY=8BITMIME" in [o.upper() for o in m.mail_options]
        assert strip_received(m.data)[1] == msg


def test_7bit_message_has_no_body_8bitmime(make_server):
    """A message received without BODY=8BITMIME (or with BODY=7BIT) is not
    relayed as 8BITMIME."""
    with Downstream() as d:
        srv = make_server(relay(d))
        submit(srv, "alice@example.test", ["x@remote.test"],
               mail_params=" BODY=7BIT")
        submit(srv, "alice@example.test", ["y@remote.test"])
        msgs = d.wait_messages(2, timeout=WAIT)
        for m in msgs:
            assert not [o for o in m.mail_options
                        if o.upper().startswith("BODY=8")], m.mail_options


def test_smtputf8_address_passed_on(make_server):
    """A UTF-8 envelope is relayed with SMTPUTF8 and unchanged
    addresses."""
    sender, rcpt = "jörg@bücher.test", "müller@straße.test"
    with Downstream() as d:
        srv = make_server(relay(d))
        submit(srv, sender, [rcpt], mail_params=" SMTPUTF8")
        [m] = d.wait_messages(1, timeout=WAIT)
        assert "SMTPUTF8" in [o.upper() for o in m.mail_options]
        assert m.mail_from == sender
        assert m.rcpt_tos == [rcpt]


def test_smtputf8_headers_only_passed_on(make_server):
    """A message received with SMTPUTF8 may have UTF-8 header fields even
    when its addresses are ASCII (RFC 6532); such fields may only travel in
    an SMTPUTF8 transaction (RFC 6531 3.2), so relayed to a server
    offering SMTPUTF8 the parameter must be kept."""
    msg = "Subject: Grüße aus Köln\r\nFrom: Jörg <a@example.test>\r\n" \
          "\r\nhallo\r\n".encode()
    with Downstream() as d:
        srv = make_server(relay(d))
        submit(srv, "alice@example.test", ["x@remote.test"],
               mail_params=" SMTPUTF8 BODY=8BITMIME", data=msg + b".\r\n")
        [m] = d.wait_messages(1, timeout=WAIT)
        assert strip_received(m.data)[1] == msg
        assert "SMTPUTF8" in [o.upper() for o in m.mail_options], \
            m.mail_options


def test_utf8_headers_not_sent_to_server_without_smtputf8(make_server):
    """A message received with SMTPUTF8 and UTF-8 header fields (ASCII
    addresses) must not be sent to a server that does not offer SMTPUTF8
    (RFC 6531 3.2: the client MUST NOT transmit internationalized headers
    there): without a downgrade, a permanent failure 5.6.x and a bounce."""
    msg = "Subject: Grüße aus Köln\r\n\r\nhallo\r\n".encode()
    with Downstream(extensions=["PIPELINING", "8BITMIME",
                                "ENHANCEDSTATUSCODES"]) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test", ["x@remote.test"],
                     mail_params=" SMTPUTF8 BODY=8BITMIME",
                     data=msg + b".\r\n")
        [r] = deliveries(srv, qid, 1).values()
        assert d.messages == [], "UTF-8 headers sent without SMTPUTF8"
        assert r["status"] == "bounced" and r["dsn"].startswith("5.6."), r


def test_smtputf8_needed_but_not_offered_bounces(make_server):
    """A UTF-8 recipient address cannot go to a server without SMTPUTF8:
    a permanent failure 5.6.7, a bounce to the (ASCII, local) sender, and
    no MAIL is ever sent."""
    with Downstream(extensions=["PIPELINING", "8BITMIME",
                                "ENHANCEDSTATUSCODES"]) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test", ["müller@straße.test"],
                     mail_params=" SMTPUTF8")
        [r] = deliveries(srv, qid, 1).values()
        assert r["status"] == "bounced" and r["dsn"] == "5.6.7", r
        [raw] = srv.wait_mail("alice", timeout=WAIT)
        _, blocks = parse_dsn(raw)
        assert len(blocks) == 1
        assert blocks[0]["Action"] == "failed"
        assert blocks[0]["Status"] == "5.6.7"
        assert "MAIL" not in all_verbs(d)
        assert d.messages == []


# -- recipients and transactions ---------------------------------------------

def test_several_recipients_one_transaction(make_server):
    """Recipients with the same next hop share one transaction: one MAIL,
    one RCPT each (in the order given), one DATA."""
    rcpts = ["a@remote.test", "b@remote.test", "c@other.test",
             "d@remote.test"]
    with Downstream() as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test", rcpts)
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == rcpts
        res = deliveries(srv, qid, 4)
        assert all(r["status"] == "sent" for r in res.values()), res
        v = all_verbs(d)
        assert v.count("MAIL") == 1 and v.count("RCPT") == 4 and \
            v.count("DATA") == 1, v
        assert d.connections == 1


def test_recipients_per_transaction(make_server):
    """recipients_per_transaction: 2 with 5 recipients: 3 transactions of
    2, 2 and 1 recipients, each recipient exactly once."""
    rcpts = [f"r{i}@remote.test" for i in range(5)]
    with Downstream() as d:
        srv = make_server(relay(d, delivery={
            "recipients_per_transaction": 2}))
        qid = submit(srv, "alice@example.test", rcpts)
        msgs = d.wait_messages(3, timeout=WAIT)
        deliveries(srv, qid, 5)
        wait_event(srv, qid, "removed")
        assert len(d.messages) == 3
        assert sorted(len(m.rcpt_tos) for m in msgs) == [1, 2, 2]
        assert sorted(r for m in msgs for r in m.rcpt_tos) == rcpts
        for m in msgs:
            assert m.mail_from == "alice@example.test"
            assert strip_received(m.data)[1] == \
                strip_received(msgs[0].data)[1]


def test_one_bounce_for_failures_in_several_transactions(make_server):
    """recipients_per_transaction: 1 splits the recipients over three
    transactions; the two refused ones still end up in one DSN."""
    with Downstream(rcpt_replies={"a@remote.test": "550 5.1.1 no a",
                                  "c@remote.test": "550 5.1.1 no c"}) as d:
        srv = make_server(relay(d, delivery={
            "recipients_per_transaction": 1}))
        qid = submit(srv, "alice@example.test",
                     ["a@remote.test", "b@remote.test", "c@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["b@remote.test"]
        wait_event(srv, qid, "removed")
        assert all_verbs(d).count("MAIL") == 3
        [ev] = events(srv, qid, "dsn")
        assert ev["kind"] == "failure" and ev["recipients"] == "2", ev
        [raw] = srv.wait_mail("alice", timeout=WAIT)
        _, blocks = parse_dsn(raw)
        assert sorted(addr_field(b["Final-Recipient"]) for b in blocks) == \
            ["rfc822;a@remote.test", "rfc822;c@remote.test"]


def test_mixed_local_and_remote_recipients(make_server):
    """Local recipients go to Maildir and remote ones to the downstream in
    one transaction, from the same queued message."""
    with Downstream() as d:
        srv = make_server(relay(d))
        qid = submit(srv, "s@remote.test",
                     ["x@remote.test", "alice@example.test",
                      "y@remote.test", "bob@example.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["x@remote.test", "y@remote.test"]
        [a] = srv.wait_mail("alice", timeout=WAIT)
        [b] = srv.wait_mail("bob", timeout=WAIT)
        res = deliveries(srv, qid, 4)
        assert all(r["status"] == "sent" for r in res.values()), res
        assert b"Subject: test" in a and b"Subject: test" in b
        assert f"id {qid}".encode() in m.data
        srv.wait_queue_empty()


def test_per_recipient_results_and_bounce(make_server):
    """One RCPT refused with 550, one with 452, one taken: the taken one is
    delivered, the 550 one bounced (one DSN naming only it, with the
    remote reply), the 452 one stays queued."""
    with Downstream(rcpt_replies={
            "bad@remote.test": "550 5.1.1 no such user here",
            "full@remote.test": "452 4.2.2 mailbox full"}) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test",
                     ["good@remote.test", "bad@remote.test",
                      "full@remote.test"], mail_params=" ENVID=env-77")
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["good@remote.test"]
        res = deliveries(srv, qid, 3)
        assert res["good@remote.test"]["status"] == "sent"
        assert res["bad@remote.test"]["status"] == "bounced"
        assert res["bad@remote.test"]["dsn"] == "5.1.1"
        assert res["full@remote.test"]["status"] == "deferred"
        assert res["full@remote.test"]["dsn"] == "4.2.2"
        [raw] = srv.wait_mail("alice", timeout=WAIT)
        msg, blocks = parse_dsn(raw)
        assert "MAILER-DAEMON@" in msg["From"], msg
        assert len(blocks) == 1, blocks
        b = find_rcpt(blocks, "bad@remote.test")
        assert b["Action"] == "failed" and b["Status"] == "5.1.1", b
        assert "550 5.1.1 no such user here" in b["Diagnostic-Code"], b
        assert b["Diagnostic-Code"].lower().startswith("smtp;"), b
        assert "Remote-MTA" in b, b
        assert qid in srv.queued_ids()       # full@ is still pending
        assert "Original-Envelope-Id: env-77" in raw.decode("utf-8",
                                                             "replace")


def test_mail_refused_permanently_bounces_all(make_server):
    """MAIL FROM refused with 550 (pipelined: the RCPT and DATA replies are
    errors too): every recipient fails with the MAIL reply, one DSN."""
    with Downstream(mail_reply="550 5.7.1 sender not welcome") as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test",
                     ["a@remote.test", "b@remote.test"])
        res = deliveries(srv, qid, 2)
        assert {r["status"] for r in res.values()} == {"bounced"}, res
        assert {r["dsn"] for r in res.values()} == {"5.7.1"}, res
        assert all("MAIL FROM" in r["text"] for r in res.values()), res
        [raw] = srv.wait_mail("alice", timeout=WAIT)
        _, blocks = parse_dsn(raw)
        assert len(blocks) == 2
        assert all("sender not welcome" in b["Diagnostic-Code"]
                   for b in blocks), blocks
        assert d.messages == []
        wait_event(srv, qid, "removed")


def test_mail_refused_temporarily_defers_then_delivers(make_server):
    """MAIL answered 451 once: deferred (4.3.0), retried after retry.first
    and delivered; no bounce."""
    with Downstream(mail_reply=["451 4.3.0 try later", None]) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test", ["a@remote.test"])
        wait_event(srv, qid, "deferred")
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["a@remote.test"]
        evs = wait_event(srv, qid, "delivery", 2)
        assert [e["status"] for e in evs] == ["deferred", "sent"], evs
        assert evs[0]["dsn"] == "4.3.0"
        wait_event(srv, qid, "removed")
        assert srv.read_mail("alice") == []


def test_multiline_rcpt_reply_in_bounce(make_server):
    """A multi-line 550 to RCPT: the recipient fails, and the DSN's
    Diagnostic-Code carries the reply text."""
    with Downstream(rcpt_replies={
            "x@remote.test": "550-5.1.1 first line\n550 5.1.1 second line"
    }) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test", ["x@remote.test"])
        [r] = deliveries(srv, qid, 1).values()
        assert r["status"] == "bounced" and r["dsn"] == "5.1.1", r
        [raw] = srv.wait_mail("alice", timeout=WAIT)
        _, [b] = parse_dsn(raw)
        assert "first line" in b["Diagnostic-Code"], b
        assert "second line" in b["Diagnostic-Code"], b


def test_all_recipients_refused_then_connection_reused(make_server):
    """Every RCPT refused (pipelined, so DATA is refused too): both
    recipients bounce in one DSN, the transaction is reset, and the same
    connection then carries the next message."""
    with Downstream(rcpt_replies={"a@remote.test": "550 5.1.1 no a",
                                  "b@remote.test": "553 5.1.3 no b"}) as d:
        srv = make_server(relay(d, delivery={"connection_cache": "10s"}))
        qid = submit(srv, "alice@example.test",
                     ["a@remote.test", "b@remote.test"])
        res = deliveries(srv, qid, 2)
        assert {r["status"] for r in res.values()} == {"bounced"}, res
        assert res["a@remote.test"]["dsn"] == "5.1.1"
        assert res["b@remote.test"]["dsn"] == "5.1.3"
        [raw] = srv.wait_mail("alice", timeout=WAIT)
        _, blocks = parse_dsn(raw)
        assert len(blocks) == 2
        assert d.messages == []           # no message body was accepted
        qid2 = submit(srv, "alice@example.test", ["c@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["c@remote.test"]
        assert deliveries(srv, qid2, 1)["c@remote.test"]["status"] == "sent"
        assert d.connections == 1, d.commands()
        v = verbs(d.sessions[0])
        assert "RSET" in v[:v.index("MAIL", v.index("MAIL") + 1)], v


def test_data_refused_after_dot_bounces_all(make_server):
    """A 554 after the final dot fails every accepted recipient of that
    transaction: one DSN naming both."""
    with Downstream(data_reply="554 5.7.1 content rejected") as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test",
                     ["a@remote.test", "b@remote.test"])
        res = deliveries(srv, qid, 2)
        assert {r["status"] for r in res.values()} == {"bounced"}, res
        assert {r["dsn"] for r in res.values()} == {"5.7.1"}
        [raw] = srv.wait_mail("alice", timeout=WAIT)
        _, blocks = parse_dsn(raw)
        assert sorted(addr_field(b["Final-Recipient"]) for b in blocks) == \
            ["rfc822;a@remote.test", "rfc822;b@remote.test"]
        assert all("content rejected" in b["Diagnostic-Code"]
                   for b in blocks)
        wait_event(srv, qid, "removed")


# -- connection reuse --------------------------------------------------------

def test_connection_reused_for_sequential_messages(make_server):
    """Messages to the same next hop, each sent after the previous one was
    delivered, go over one cached connection."""
    with Downstream() as d:
        srv = make_server(relay(d, delivery={"connection_cache": "10s"}))
        for i in range(4):
            qid = submit(srv, "alice@example.test", [f"r{i}@remote.test"])
            d.wait_messages(i + 1, timeout=WAIT)
            deliveries(srv, qid, 1)
        assert d.connections == 1, d.commands()
        assert verbs(d.sessions[0]).count("MAIL") == 4
        assert verbs(d.sessions[0]).count("EHLO") == 1


def test_connection_reused_for_a_burst(make_server):
    """Messages sent back to back queue up behind the per_destination
    limit and are carried by the open connections: 6 messages, at most 2
    connections, several transactions on one of them."""
    n = 6
    with Downstream() as d:
        srv = make_server(relay(d, delivery={"connection_cache": "10s",
                                             "per_destination": 2}))
        c = srv.raw()
        ehlo(c)
        for i in range(n):
            submit(srv, "alice@example.test", [f"r{i}@remote.test"], c=c)
        c.cmd("QUIT")
        c.close()
        d.wait_messages(n, timeout=WAIT)
        assert d.connections <= 2, d.commands()
        counts = [verbs(s).count("MAIL") for s in d.sessions]
        assert sum(counts) == n and max(counts) >= 3, counts
        assert all(verbs(s).count("EHLO") == 1 for s in d.sessions)


def test_cached_connection_closed_by_server(make_server):
    """The downstream drops an idle cached connection (421 on its idle
    timeout): the next message opens a new connection and is delivered at
    the first attempt, not deferred."""
    with Downstream(idle_timeout=1) as d:
        srv = make_server(relay(d, delivery={"connection_cache": "30s"}))
        q1 = submit(srv, "alice@example.test", ["a@remote.test"])
        d.wait_messages(1, timeout=WAIT)
        deliveries(srv, q1, 1)
        d.wait_idle(timeout=WAIT)           # the downstream hung up
        time.sleep(0.5)
        q2 = submit(srv, "alice@example.test", ["b@remote.test"])
        d.wait_messages(2, timeout=WAIT)
        [r] = deliveries(srv, q2, 1).values()
        assert r["status"] == "sent", r
        assert d.connections == 2
        assert events(srv, q2, "deferred") == []


def test_messages_per_connection_one(make_server):
    """messages_per_connection: 1: one connection per message, each closed
    with QUIT after its one transaction."""
    with Downstream() as d:
        srv = make_server(relay(d, delivery={"messages_per_connection": 1,
                                             "connection_cache": "10s"}))
        for i in range(3):
            qid = submit(srv, "alice@example.test", [f"r{i}@remote.test"])
            d.wait_messages(i + 1, timeout=WAIT)
            deliveries(srv, qid, 1)
        d.wait_idle(timeout=WAIT)
        assert d.connections == 3, d.commands()
        for s in d.sessions:
            assert verbs(s).count("MAIL") == 1, verbs(s)
            assert verbs(s)[-1] == "QUIT", verbs(s)


def test_connection_cache_zero(make_server):
    """connection_cache: 0: a connection is closed (QUIT) as soon as it
    has no job, so every message opens a new one."""
    with Downstream() as d:
        srv = make_server(relay(d, delivery={"connection_cache": 0}))
        for i in range(3):
            qid = submit(srv, "alice@example.test", [f"r{i}@remote.test"])
            d.wait_messages(i + 1, timeout=WAIT)
            deliveries(srv, qid, 1)
            d.wait_idle(timeout=WAIT)
            assert verbs(d.sessions[-1])[-1] == "QUIT"
        assert d.connections == 3


def test_idle_connection_closed_after_cache_time(make_server):
    """An idle cached connection is closed with QUIT after
    connection_cache, not kept for ever."""
    with Downstream() as d:
        srv = make_server(relay(d, delivery={"connection_cache": "2s"}))
        qid = submit(srv, "alice@example.test", ["x@remote.test"])
        d.wait_messages(1, timeout=WAIT)
        t0 = time.monotonic()
        deliveries(srv, qid, 1)
        d.wait_idle(timeout=WAIT)
        assert time.monotonic() - t0 >= 0.5     # it was cached a while
        assert verbs(d.sessions[0])[-1] == "QUIT"


# -- PIPELINING and the greeting ---------------------------------------------

def ehlo_reply(exts):
    lines = ["downstream.test"] + exts
    return "".join(f"250{'-' if i < len(lines) - 1 else ' '}{x}\r\n"
                   for i, x in enumerate(lines))


def test_pipelining_used_when_offered(make_server):
    """With PIPELINING, MAIL, every RCPT and DATA are sent without waiting
    for replies: the scripted server reads all four lines before it
    answers any."""
    script = [("send", "220 raw.test ESMTP\r\n"), ("line",),
              ("send", ehlo_reply(["PIPELINING", "8BITMIME"])),
              ("line",), ("line",), ("line",), ("line",),   # no reply yet
              ("send", "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n"
                       "354 go ahead\r\n"),
              ("data",), ("send", "250 2.0.0 queued as R1\r\n"),
              ("line",), ("send", "221 2.0.0 bye\r\n")]
    with RawServer(script, timeout=8) as r:
        srv = make_server(relay(r, delivery={"connection_cache": 0}))
        qid = submit(srv, "alice@example.test",
                     ["a@remote.test", "b@remote.test"])
        r.wait_done(1, timeout=WAIT)
        rec = r.received[0]
        assert rec[1].startswith(b"MAIL FROM:<alice@example.test>"), rec
        assert rec[2] == b"RCPT TO:<a@remote.test>\r\n", rec
        assert rec[3] == b"RCPT TO:<b@remote.test>\r\n", rec
        assert rec[4] == b"DATA\r\n", rec
        res = deliveries(srv, qid, 2)
        assert {x["status"] for x in res.values()} == {"sent"}, res


def test_data_accepted_without_recipients_sends_empty_message(make_server):
    """Pipelined, every RCPT refused but DATA answered 354 anyway (an odd
    server): the client ends the data at once with a lone '.', sends no
    message content, resets the transaction, and the recipient bounces
    with the RCPT reply."""
    script = [("send", "220 raw.test ESMTP\r\n"), ("line",),
              ("send", ehlo_reply(["PIPELINING", "ENHANCEDSTATUSCODES"])),
              ("line",), ("line",), ("line",),
              ("send", "250 2.1.0 ok\r\n550 5.1.1 no such user\r\n"
                       "354 go ahead anyway\r\n"),
              ("line",), ("send", "554 5.5.1 no valid recipients\r\n"),
              ("line",), ("send", "250 2.0.0 reset\r\n"),
              ("line",), ("send", "221 2.0.0 bye\r\n")]
    with RawServer(script, timeout=8) as r:
        srv = make_server(relay(r, delivery={"connection_cache": 0}))
        qid = submit(srv, "alice@example.test", ["gone@remote.test"])
        r.wait_done(1, timeout=WAIT)
        rec = r.received[0]
        assert rec[1].startswith(b"MAIL FROM:<alice@example.test>"), rec
        assert rec[2] == b"RCPT TO:<gone@remote.test>\r\n", rec
        assert rec[3] == b"DATA\r\n", rec
        assert rec[4] == b".\r\n", rec
        assert rec[5] == b"RSET\r\n", rec
        assert rec[6] == b"QUIT\r\n", rec
        [res] = deliveries(srv, qid, 1).values()
        assert res["status"] == "bounced" and res["dsn"] == "5.1.1", res
        [raw] = srv.wait_mail("alice", timeout=WAIT)
        _, [b] = parse_dsn(raw)
        assert "no such user" in b["Diagnostic-Code"], b


class LockstepServer:
    """A server without PIPELINING that answers each command only after a
    pause, and records whether anything else arrived before its reply
    (which a lockstep client must not send)."""

    def __init__(self, pause=0.3, timeout=8.0):
        self.pause, self.timeout = pause, timeout
        self.lines, self.early, self.done, self.error = [], [], False, None
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            self.sock.settimeout(self.timeout)
            conn, _ = self.sock.accept()
        except OSError as e:
            self.error = repr(e)
            return
        with conn:
            conn.settimeout(self.timeout)
            buf = b""

            def line():
                nonlocal buf
                while b"\r\n" not in buf:
                    d = conn.recv(4096)
                    if not d:
                        raise EOFError("client closed")
                    buf += d
                ln, buf = buf.split(b"\r\n", 1)
                self.lines.append(ln)
                return ln

            try:
                conn.sendall(b"220 lock.test ESMTP\r\n")
                line()
                conn.sendall(ehlo_reply(["8BITMIME", "SIZE 100000"])
                             .encode())
                while True:
                    ln = line()
                    time.sleep(self.pause)
                    conn.setblocking(False)
                    try:
                        extra = conn.recv(4096)
                    except BlockingIOError:
                        extra = b""
                    conn.settimeout(self.timeout)
                    if extra or buf:
                        self.early.append((ln, buf + extra))
                    buf += extra
                    verb = ln.split(b" ")[0].upper()
                    if verb == b"DATA":
                        conn.sendall(b"354 go\r\n")
                        while b"\r\n.\r\n" not in buf:
                            d = conn.recv(65536)
                            if not d:
                                raise EOFError("closed in DATA")
                            buf += d
                        buf = buf.split(b"\r\n.\r\n", 1)[1]
                        conn.sendall(b"250 2.0.0 queued\r\n")
                    elif verb == b"QUIT":
                        conn.sendall(b"221 2.0.0 bye\r\n")
                        self.done = True
                        return
                    else:
                        conn.sendall(b"250 2.0.0 ok\r\n")
            except (OSError, EOFError) as e:
                self.error = repr(e)

    def stop(self):
        self.sock.close()
        self.thread.join(self.timeout + 2)


def test_lockstep_without_pipelining(make_server):
    """Without PIPELINING the client waits for each reply before the next
    command, and the message is delivered."""
    s = LockstepServer()
    try:
        srv = make_server(relay(s, delivery={"connection_cache": 0}))
        qid = submit(srv, "alice@example.test",
                     ["a@remote.test", "b@remote.test"])
        res = deliveries(srv, qid, 2)
        assert {x["status"] for x in res.values()} == {"sent"}, res
        wait_for(lambda: s.done or s.error, timeout=WAIT, msg="QUIT")
        verbs_seen = [ln.split(b" ")[0].upper() for ln in s.lines]
        assert verbs_seen[:5] == [b"EHLO", b"MAIL", b"RCPT", b"RCPT",
                                  b"DATA"], s.lines
        assert s.early == [], f"commands sent before a reply: {s.early}"
    finally:
        s.stop()


def test_lockstep_downstream_delivers(make_server):
    """A Downstream without PIPELINING (or anything else) still gets the
    whole envelope, recipient replies handled one by one."""
    with Downstream(extensions=NO_EXT,
                    rcpt_replies={"b@remote.test": "550 5.1.1 no b"}) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test",
                     ["a@remote.test", "b@remote.test", "c@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["a@remote.test", "c@remote.test"]
        res = deliveries(srv, qid, 3)
        assert res["b@remote.test"]["status"] == "bounced"
        assert res["a@remote.test"]["status"] == "sent"


def test_ehlo_refused_falls_back_to_helo(make_server):
    """EHLO answered 502: the client says HELO and delivers, without any
    ESMTP parameter."""
    with Downstream(command_replies={"EHLO": "502 5.5.1 no EHLO"}) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test", ["x@remote.test"],
                     mail_params=" RET=HDRS",
                     rcpt_params={"x@remote.test": " NOTIFY=FAILURE"})
        [m] = d.wait_messages(1, timeout=WAIT)
        v = verbs(d.sessions[0])
        assert v[:3] == ["EHLO", "HELO", "MAIL"], v
        assert d.sessions[0].commands[1][1] == "mx.example.test"
        assert m.protocol == "SMTP"
        assert m.mail_options == [] and m.rcpt_options == [[]]
        assert deliveries(srv, qid, 1)["x@remote.test"]["status"] == "sent"


def test_helo_name_setting(make_server):
    """delivery.helo_name is what EHLO says."""
    with Downstream() as d:
        srv = make_server(relay(d, delivery={"helo_name": "out.example.test"}))
        submit(srv, "alice@example.test", ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.helo == "out.example.test"


# -- SIZE --------------------------------------------------------------------

def test_size_limit_exceeded_bounces_without_data(make_server):
    """The downstream says SIZE 1000 and the message is bigger: a permanent
    failure 5.3.4 and a bounce to the local sender; no MAIL or DATA ever
    reached the downstream."""
    big = message(body="x" * 70 + "\r\n") + ("y" * 70 + "\r\n") * 40
    with Downstream(extensions=["PIPELINING", "SIZE 1000", "8BITMIME",
                                "ENHANCEDSTATUSCODES"]) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test", ["x@remote.test"],
                     data=big.encode() + b".\r\n")
        [r] = deliveries(srv, qid, 1).values()
        assert r["status"] == "bounced" and r["dsn"] == "5.3.4", r
        [raw] = srv.wait_mail("alice", timeout=WAIT)
        _, blocks = parse_dsn(raw)
        b = find_rcpt(blocks, "x@remote.test")
        assert b["Action"] == "failed" and b["Status"] == "5.3.4", b
        wait_event(srv, qid, "removed")
        v = all_verbs(d)
        assert "MAIL" not in v and "DATA" not in v, v
        assert d.messages == [] and d.incomplete == []


def test_size_limit_not_exceeded_delivers(make_server):
    """Below the advertised SIZE the message goes, with SIZE=."""
    with Downstream(extensions=["PIPELINING", "SIZE 5000"]) as d:
        srv = make_server(relay(d))
        submit(srv, "alice@example.test", ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.mail_options == [f"SIZE={len(m.data)}"]


# -- STARTTLS ----------------------------------------------------------------

def test_starttls_used_when_offered(make_server, tmp_path):
    """A downstream offering STARTTLS: the message goes encrypted; EHLO is
    said again after the handshake."""
    cert = make_cert(str(tmp_path), "downstream.test")
    with Downstream(tls_cert=cert) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test", ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.tls
        v = verbs(d.sessions[0])
        assert v[:3] == ["EHLO", "STARTTLS", "EHLO"], v
        assert d.sessions[0].tls_version in ("TLSv1.2", "TLSv1.3")
        assert deliveries(srv, qid, 1)["x@remote.test"]["status"] == "sent"


def test_tls_none_not_used(make_server, tmp_path):
    """delivery.tls: none: STARTTLS is never sent."""
    cert = make_cert(str(tmp_path), "downstream.test")
    with Downstream(tls_cert=cert) as d:
        srv = make_server(relay(d, delivery={"tls": "none"}))
        submit(srv, "alice@example.test", ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert not m.tls
        assert "STARTTLS" not in all_verbs(d)


def test_starttls_refused_continues_in_clear(make_server, tmp_path):
    """STARTTLS answered 454: the message goes in plaintext on the same
    connection."""
    cert = make_cert(str(tmp_path), "downstream.test")
    with Downstream(tls_cert=cert,
                    command_replies={"STARTTLS": "454 4.7.0 no TLS now"}) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test", ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert not m.tls
        assert d.connections == 1
        assert verbs(d.sessions[0])[:3] == ["EHLO", "STARTTLS", "MAIL"]
        assert deliveries(srv, qid, 1)["x@remote.test"]["status"] == "sent"


def test_tls_handshake_failure_retried_in_clear(make_server, tmp_path):
    """STARTTLS accepted but the handshake fails (the server only speaks
    TLS 1.1, the client wants 1.2+): the client reconnects and delivers in
    plaintext rather than not at all."""
    cert = make_cert(str(tmp_path), "downstream.test")
    with Downstream(tls_cert=cert) as d:
        ctx = d._ctl.SMTP_kwargs["tls_context"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test", ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert not m.tls
        assert "STARTTLS" in verbs(d.sessions[0])
        assert "STARTTLS" not in verbs(d.sessions[m.conn - 1])
        assert d.connections == 2
        fails = events(srv, None, "connect-failed")
        assert fails and "TLS handshake failed" in fails[0]["reason"], fails
        assert deliveries(srv, qid, 1)["x@remote.test"]["status"] == "sent"


# -- DSN parameters and notifications ----------------------------------------

def test_dsn_parameters_passed_on(make_server):
    """To a DSN-capable downstream: RET and ENVID on MAIL, NOTIFY and ORCPT
    on RCPT, as the client gave them; the duty to report success passes
    on with them, so no success DSN is made here."""
    with Downstream() as d:
        srv = make_server(relay(d))
        qid = submit(
            srv, "alice@example.test",
            ["x@remote.test", "y@remote.test", "z@remote.test"],
            mail_params=" RET=HDRS ENVID=QQ+2Bx.1",
            rcpt_params={
                "x@remote.test": " NOTIFY=SUCCESS,FAILURE "
                                 "ORCPT=rfc822;X+2Bfoo@Remote.test",
                "y@remote.test": " NOTIFY=NEVER"})
        [m] = d.wait_messages(1, timeout=WAIT)
        opts = m.mail_options
        assert "RET=HDRS" in opts and "ENVID=QQ+2Bx.1" in opts, opts
        assert m.rcpt_tos == ["x@remote.test", "y@remote.test",
                              "z@remote.test"]
        assert sorted(m.rcpt_options[0]) == [
            "NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;X+2Bfoo@Remote.test"]
        assert m.rcpt_options[1] == ["NOTIFY=NEVER"]
        assert [o for o in m.rcpt_options[2]
                if o.startswith("NOTIFY")] == []
        wait_event(srv, qid, "removed")
        assert events(srv, qid, "dsn") == []
        assert srv.read_mail("alice") == []


def test_ret_full_passed_on(make_server):
    with Downstream() as d:
        srv = make_server(relay(d))
        submit(srv, "alice@example.test", ["x@remote.test"],
               mail_params=" RET=FULL",
               rcpt_params={"x@remote.test": " NOTIFY=DELAY,FAILURE"})
        [m] = d.wait_messages(1, timeout=WAIT)
        assert "RET=FULL" in m.mail_options
        assert m.rcpt_options == [["NOTIFY=FAILURE,DELAY"]] or \
            m.rcpt_options == [["NOTIFY=DELAY,FAILURE"]]


def test_success_dsn_relayed_when_downstream_lacks_dsn(make_server):
    """NOTIFY=SUCCESS to a downstream without DSN: the sender gets a
    success DSN here, Action: relayed, with ENVID and ORCPT; recipients
    that did not ask get none."""
    with Downstream(extensions=["PIPELINING", "8BITMIME",
                                "ENHANCEDSTATUSCODES"]) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test",
                     ["x@remote.test", "y@remote.test"],
                     mail_params=" ENVID=track-1",
                     rcpt_params={"x@remote.test": " NOTIFY=SUCCESS "
                                  "ORCPT=rfc822;x@remote.test"})
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_options == [[], []]
        [ev] = wait_event(srv, qid, "dsn")
        assert ev["kind"] == "success", ev
        [raw] = srv.wait_mail("alice", timeout=WAIT)
        msg, blocks = parse_dsn(raw)
        assert len(blocks) == 1, blocks
        b = blocks[0]
        assert b["Action"] == "relayed", b
        assert b["Status"].startswith("2."), b
        assert addr_field(b["Final-Recipient"]) == "rfc822;x@remote.test", b
        assert addr_field(b["Original-Recipient"]) == \
            "rfc822;x@remote.test", b
        text = raw.decode("utf-8", "replace")
        assert "Original-Envelope-Id: track-1" in text
        wait_event(srv, qid, "removed")


def test_notify_never_no_bounce(make_server):
    """NOTIFY=NEVER and a 550: bounced in the log, no DSN, removed."""
    with Downstream(rcpt_replies={"x@remote.test": "550 5.1.1 gone"}) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test", ["x@remote.test"],
                     rcpt_params={"x@remote.test": " NOTIFY=NEVER"})
        [r] = deliveries(srv, qid, 1).values()
        assert r["status"] == "bounced" and r["dsn"] == "5.1.1", r
        wait_event(srv, qid, "removed")
        assert events(srv, qid, "dsn") == []
        srv.wait_queue_empty()
        assert srv.read_mail("alice") == []
        assert [c for c in d.commands() if c[1] == "RCPT"] == \
            [(1, "RCPT", "TO:<x@remote.test> NOTIFY=NEVER")]


def test_notify_success_only_no_failure_bounce(make_server):
    """NOTIFY=SUCCESS without FAILURE and a 550: no failure DSN."""
    with Downstream(extensions=["PIPELINING", "ENHANCEDSTATUSCODES"],
                    rcpt_replies={"x@remote.test": "550 5.1.1 gone"}) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "alice@example.test", ["x@remote.test"],
                     rcpt_params={"x@remote.test": " NOTIFY=SUCCESS"})
        wait_event(srv, qid, "removed")
        assert events(srv, qid, "dsn") == []
        assert srv.read_mail("alice") == []
        assert d.connections == 1


def test_null_sender_failure_not_bounced(make_server):
    """MAIL FROM:<> relayed as <>; its permanent failure makes no DSN
    (event=bounce-dropped) and the message is removed."""
    with Downstream(rcpt_replies={"x@remote.test": "550 5.1.1 gone"}) as d:
        srv = make_server(relay(d))
        qid = submit(srv, "", ["x@remote.test", "y@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.mail_from == ""
        assert m.rcpt_tos == ["y@remote.test"]
        res = deliveries(srv, qid, 2)
        assert res["x@remote.test"]["status"] == "bounced"
        [drop] = wait_event(srv, qid, "bounce-dropped")
        assert drop["to"].strip("<>") == "x@remote.test", drop
        wait_event(srv, qid, "removed")
        assert events(srv, qid, "dsn") == []
        srv.wait_queue_empty()
        assert srv.read_mail("alice") == [] and srv.read_mail("bob") == []
