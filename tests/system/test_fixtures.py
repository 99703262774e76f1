"""Self-tests of the downstream fixtures used by the outbound-delivery tests:
downstream.Downstream/RawServer (aiosmtpd), smtp_sink.SmtpSink (Postfix's
smtp-sink) and dovecot.Dovecot (LMTP + IMAP). No sluiced involved."""
import os
import smtplib
import ssl
import stat
import time

import pytest

from downstream import MALFORMED, Downstream, RawServer, make_cert
from dovecot import Dovecot, lmtp_send
from helpers import RawClient, check
from smtp_sink import SmtpSink

MSG = (b"From: <a@x.test>\r\nTo: <b@y.test>\r\nSubject: t\r\n\r\n"
       b"line\r\n.leading dot\r\nbare\nlf\r\n")


def raw(d, greet=True, timeout=5):
    c = RawClient("127.0.0.1", d.port, timeout=timeout)
    if greet:
        check(c.reply(), 220)
    return c


# -- Downstream: recording --------------------------------------------------

def test_downstream_records_transactions_and_reuse():
    with Downstream() as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=5) as s:
            s.sendmail("a@x.test", ["b@y.test", "C@y.test"], MSG,
                       mail_options=["BODY=8BITMIME", "RET=HDRS",
                                     "ENVID=Q+2Bx"],
                       rcpt_options=["NOTIFY=SUCCESS,FAILURE",
                                     "ORCPT=rfc822;B@y.test"])
            s.sendmail("", ["b@y.test"], b"Subject: 2\r\n\r\nx\r\n")
        m1, m2 = d.wait_messages(2)
        d.wait_idle()
        assert d.connections == 1 and len(d.sessions) == 1
        assert m1.conn == m2.conn == 1 and m1.via == "DATA"
        assert m1.mail_from == "a@x.test" and m2.mail_from == ""
        assert m1.mail_options[1:] == ["BODY=8BITMIME", "RET=HDRS",
                                       "ENVID=Q+2Bx"]
        assert m1.mail_options[0].upper().startswith("SIZE=")
        assert m1.rcpt_tos == ["b@y.test", "C@y.test"]
        assert m1.rcpt_options[1] == ["NOTIFY=SUCCESS,FAILURE",
                                      "ORCPT=rfc822;B@y.test"]
        assert m1.data == MSG                       # exact, incl. bare LF
        assert m1.raw == MSG.replace(b"\r\n.lead", b"\r\n..lead")
        assert m1.protocol == "ESMTP" and not m1.tls and m1.accepted
        assert m1.peer[0] == "127.0.0.1" and m1.helo
        verbs = [v for _, v, _ in d.commands()]
        assert verbs == ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "MAIL",
                         "RCPT", "DATA", "QUIT"]


def test_downstream_replies_and_runtime_changes():
    with Downstream(rcpt_replies={"bad@x.test": "550 5.1.1 no such user",
                                  "full@x.test": "452 4.2.2 mailbox full",
                                  "flaky@x.test": ["451 4.3.0 later", None]},
                    data_reply="554 5.7.1 rejected") as d:
        c = raw(d)
        check(c.cmd("EHLO c.test"), 250)
        check(c.cmd("MAIL FROM:<a@x.test>"), 250, "2.1.0")
        check(c.cmd("RCPT TO:<Bad@X.test>"), 550, "5.1.1")
        check(c.cmd("RCPT TO:<full@x.test>"), 452, "4.2.2")
        check(c.cmd("RCPT TO:<flaky@x.test>"), 451)
        check(c.cmd("RCPT TO:<flaky@x.test>"), 250)       # second use
        check(c.cmd("DATA"), 354)
        c.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
        check(c.reply(), 554, "5.7.1")
        [m] = d.wait_messages(1)
        assert not m.accepted and m.rcpt_tos == ["flaky@x.test"]
        assert [r[2][:3] for r in m.rcpts] == ["550", "452", "451", "250"]
        d.configure(mail_reply="451 4.3.0 try later", data_reply=None)
        check(c.cmd("MAIL FROM:<a@x.test>"), 451, "4.3.0")
        d.mail_reply = None
        check(c.cmd("MAIL FROM:<a@x.test>"), 250)
        check(c.cmd("RCPT TO:<ok@x.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(b"x\r\n.\r\n")
        check(c.reply(), 250, "2.0.0")
        d.configure(command_replies={"RSET": "421 4.3.2 going away"})
        check(c.cmd("RSET"), 421)
        assert c.closed(2)
        assert len(d.accepted) == 1


def test_downstream_lmtp_per_recipient_data_replies(tmp_path):
    with Downstream(lmtp=True, rcpt_replies={"x@y.test": "550 5.1.1 no"},
                    lmtp_data_replies={"b@y.test": "452 4.2.2 full"}) as d:
        c = raw(d)
        check(c.cmd("EHLO c.test"), 500)                 # LMTP: LHLO only
        code, text = c.cmd("LHLO c.test")
        assert code == 250 and "PIPELINING" in text
        check(c.cmd("MAIL FROM:<a@x.test>"), 250)
        for r, code in (("a@y.test", 250), ("x@y.test", 550),
                        ("b@y.test", 250)):
            check(c.cmd(f"RCPT TO:<{r}>"), code)
        check(c.cmd("DATA"), 354)
        c.send(b"Subject: l\r\n\r\nbody\r\n.\r\n")
        check(c.reply(), 250, "2.0.0", "a@y.test")
        check(c.reply(), 452, "4.2.2")
        [m] = d.wait_messages(1)
        assert m.protocol == "LMTP" and m.reply[1].startswith("452")
    sock = str(tmp_path / "lmtp.sock")
    with Downstream(lmtp=True, unix_path=sock) as d:
        with smtplib.LMTP(sock, timeout=5) as s:
            s.sendmail("a@x.test", ["b@y.test"], MSG)
        assert d.wait_messages(1)[0].data == MSG
    assert not os.path.exists(sock)


def test_downstream_extensions_size_and_bdat():
    with Downstream(extensions=["PIPELINING", "SIZE 100", "CHUNKING"]) as d:
        c = raw(d)
        code, text = c.cmd("EHLO c.test")
        assert text.split("\n")[1:] == ["PIPELINING", "SIZE 100", "CHUNKING"]
        check(c.cmd("MAIL FROM:<a@x.test> BODY=8BITMIME"), 555)  # no 8BITMIME
        check(c.cmd("MAIL FROM:<a@x.test> SIZE=101"), 552, "5.3.4")
        check(c.cmd("MAIL FROM:<a@x.test> SIZE=50"), 250)
        check(c.cmd("RCPT TO:<b@y.test> NOTIFY=NEVER"), 555)      # no DSN
        check(c.cmd("RCPT TO:<b@y.test>"), 250)
        check(c.cmd("STARTTLS"), 502)                      # not offered
        c.send(b"BDAT 5\r\nhello")
        check(c.reply(), 250)
        c.send(b"BDAT 7 LAST\r\n .\r\nx\r\n")
        check(c.reply(), 250)
        [m] = d.wait_messages(1)
        assert m.via == "BDAT" and m.data == m.raw == b"hello .\r\nx\r\n"
        check(c.cmd("MAIL FROM:<a@x.test>"), 250)
        check(c.cmd("RCPT TO:<b@y.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(b"x" * 120 + b"\r\n.\r\n")
        check(c.reply(), 552, "5.3.4")                     # over SIZE
    with Downstream(extensions=[]) as d:
        c = raw(d)
        code, text = c.cmd("EHLO c.test")
        assert text == "downstream.test"
        check(c.cmd("BDAT 0 LAST"), 502)


def test_downstream_pipelining():
    with Downstream() as d:
        c = raw(d)
        c.send("EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
               "RCPT TO:<c@y.test>\r\nDATA\r\n")
        assert "PIPELINING" in c.reply()[1]
        for code in (250, 250, 250, 354):
            check(c.reply(), code)
        c.send(b"x\r\n.\r\nRSET\r\nQUIT\r\n")
        for code in (250, 250, 221):
            check(c.reply(), code)


def test_downstream_starttls_and_auth(tmp_path):
    cert = make_cert(str(tmp_path), "mx.example.test")
    ctx = ssl.create_default_context(cafile=cert[0])
    with Downstream(tls_cert=cert, auth={"user": "pw"}) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=5) as s:
            s.ehlo("c.test")
            assert s.has_extn("starttls") and not s.has_extn("auth")
            s.starttls(context=ctx)         # verifies IP SAN 127.0.0.1
            s.ehlo("c.test")
            assert not s.has_extn("starttls") and s.has_extn("auth")
            s.login("user", "pw")
            s.sendmail("a@x.test", ["b@y.test"], MSG)
        [m] = d.wait_messages(1)
        assert m.tls and m.auth_user == "user" and m.data == MSG
        assert d.sessions[0].tls_version.startswith("TLS")
    with Downstream(tls_cert=cert, implicit_tls=True) as d:
        with smtplib.SMTP_SSL("127.0.0.1", d.port, timeout=5,
                              context=ctx) as s:
            s.sendmail("a@x.test", ["b@y.test"], MSG)
        assert d.wait_messages(1)[0].tls


# -- Downstream: failure modes ----------------------------------------------

def test_downstream_greeting_override():
    with Downstream(greeting="421 4.3.2 busy") as d:
        c = raw(d, greet=False)
        check(c.reply(), 421, "4.3.2")
        assert c.closed(2)
        d.configure(greeting="554 5.3.2 no")
        c = raw(d, greet=False)
        check(c.reply(), 554)
        check(c.cmd("EHLO c.test"), 503)
        check(c.cmd("QUIT"), 221)
        assert c.closed(2)
        d.configure(greeting="220-first\n220 second")
        c = raw(d, greet=False)
        assert c.reply() == (220, "first\nsecond")
        assert d.connections == 3


def test_downstream_never_greet():
    with Downstream(never_greet=True) as d:
        c = raw(d, greet=False)
        assert c.pending(0.3) == b""
        c.send("EHLO c.test\r\n")
        assert c.pending(0.2) == b""
        d.wait_connections(1)
        c.close()
        d.wait_idle()
        assert d.sessions[0].received == len("EHLO c.test\r\n")


def test_downstream_drop_mid_data():
    with Downstream(drop_mid_data=1000) as d:
        c = raw(d)
        check(c.cmd("EHLO c.test"), 250)
        check(c.cmd("MAIL FROM:<a@x.test>"), 250)
        check(c.cmd("RCPT TO:<b@y.test>"), 250)
        check(c.cmd("DATA"), 354)
        try:
            for _ in range(100):
                c.send(b"y" * 98 + b"\r\n")
        except OSError:
            pass                     # the server may be gone already
        assert c.closed(3)
        d.wait_idle()
        assert not d.messages
        [m] = d.incomplete
        assert 1000 <= len(m.raw) < 1200 and not m.complete


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_downstream_malformed(kind):
    """Each malformed reply is seen as such by a raw socket client."""
    with Downstream(malformed={"EHLO": kind}) as d:
        c = raw(d)
        c.send("EHLO c.test\r\n")
        if kind == "endless":
            got = b""
            deadline = time.monotonic() + 5
            while len(got) < 300_000 and time.monotonic() < deadline:
                got += c.sock.recv(65536)
            assert set(got.split(b"\r\n")[:-1]) == {b"250-x"}
            c.close()
            d.wait_idle()
            return
        want = MALFORMED[kind]
        got = b""
        deadline = time.monotonic() + 3
        while len(got) < len(want) and time.monotonic() < deadline:
            got += c.pending(0.2)
        assert got == want
        assert c.pending(0.2) == b""          # nothing more, still open
        check(c.cmd("NOOP"), 250)             # and it goes on normally


def test_downstream_malformed_after_data_and_slow():
    with Downstream(malformed={"EOM": "bad_code"},
                    slow={"MAIL": 0.5}) as d:
        c = raw(d)
        check(c.cmd("EHLO c.test"), 250)
        t0 = time.monotonic()
        check(c.cmd("MAIL FROM:<a@x.test>"), 250)
        assert time.monotonic() - t0 >= 0.5
        t0 = time.monotonic()
        check(c.cmd("RCPT TO:<b@y.test>"), 250)
        assert time.monotonic() - t0 < 0.4
        check(c.cmd("DATA"), 354)
        c.send(b"x\r\n.\r\n")
        assert c.readline() == "2x0 ok"
        assert d.wait_messages(1)[0].reply.startswith("<malformed")


def test_raw_server_script():
    script = [("send", "220 raw\r\n"), ("line",),
              ("send", b"250-a\r\n250"), ("sleep", 0.2),
              ("send", b" b\r\n"), ("line",), ("send", "354 go\r\n"),
              ("data",), ("send", "250 ok\r\n"), ("reset",)]
    with RawServer(script) as r:
        c = RawClient("127.0.0.1", r.port, timeout=5)
        check(c.reply(), 220)
        assert c.cmd("EHLO c.test") == (250, "a\nb")
        check(c.cmd("DATA"), 354)
        c.send(b"hi\r\n.\r\n")
        check(c.reply(), 250)
        r.wait_done(1)
        with pytest.raises((EOFError, ConnectionResetError)):
            c.sock.settimeout(2)
            if not c.sock.recv(10):
                raise EOFError
        assert r.received[0] == [b"EHLO c.test\r\n", b"DATA\r\n",
                                 b"hi\r\n.\r\n"]
        assert r.connections == 1


# -- smtp-sink --------------------------------------------------------------

def test_smtp_sink_receives_and_dumps(tmp_path):
    with SmtpSink(str(tmp_path)) as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as s:
            s.ehlo("c.test")
            assert s.has_extn("dsn") and s.has_extn("pipelining")
            s.sendmail("a@x.test", ["b@y.test", "c@y.test"], MSG,
                       mail_options=["BODY=8BITMIME"],
                       rcpt_options=["NOTIFY=NEVER"])
        [m] = sink.wait_messages(1)
        assert m.mail_args == "<a@x.test> BODY=8BITMIME"
        assert m.rcpt_args == ["<b@y.test> NOTIFY=NEVER",
                               "<c@y.test> NOTIFY=NEVER"]
        assert m.mail_from == "a@x.test" and m.rcpt_tos == ["b@y.test",
                                                            "c@y.test"]
        assert m.helo == "c.test" and m.proto == "ESMTP"
        assert m.data == MSG.replace(b"\r\n", b"\n")   # LF, unstuffed
        deadline = time.monotonic() + 3
        while sink.counters().get("quit") != 1 and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.counters() == {"sess": 1, "quit": 1, "mesg": 1}
        pid = sink.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_smtp_sink_rejects_and_disconnects(tmp_path):
    with SmtpSink(str(tmp_path), name="soft", soft_reject=["RCPT"],
                  soft_reply="452 4.2.2 full", dsn=False) as sink:
        c = RawClient("127.0.0.1", sink.port, timeout=5)
        check(c.reply(), 220)
        code, text = c.cmd("EHLO c.test")
        assert "DSN" not in text and "PIPELINING" not in text   # -r => -p
        check(c.cmd("MAIL FROM:<a@x.test>"), 250)
        check(c.cmd("RCPT TO:<b@y.test>"), 452, "4.2.2")
    with SmtpSink(str(tmp_path), name="hard", hard_reject=["."],
                  hard_reply="554 5.7.1 rejected") as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as s:
            with pytest.raises(smtplib.SMTPDataError) as e:
                s.sendmail("a@x.test", ["b@y.test"], MSG)
            assert e.value.smtp_code == 554
        assert len(sink.wait_messages(1)) == 1     # dumped all the same
    with SmtpSink(str(tmp_path), name="drop", disconnect=["MAIL"]) as sink:
        c = RawClient("127.0.0.1", sink.port, timeout=5)
        check(c.reply(), 220)
        check(c.cmd("EHLO c.test"), 250)
        c.send("MAIL FROM:<a@x.test>\r\n")
        assert c.closed(3)
    with SmtpSink(str(tmp_path), name="q421", disconnect_421=["RCPT"]) as sink:
        c = RawClient("127.0.0.1", sink.port, timeout=5)
        check(c.reply(), 220)
        check(c.cmd("HELO c.test"), 250)
        check(c.cmd("MAIL FROM:<a@x.test>"), 250)
        check(c.cmd("RCPT TO:<b@y.test>"), 421)
        assert c.closed(3)


def test_smtp_sink_lmtp_unix_socket(tmp_path):
    sock = str(tmp_path / "sink.sock")
    with SmtpSink(str(tmp_path), lmtp=True, unix_path=sock) as sink:
        with smtplib.LMTP(sock, timeout=5) as s:
            s.sendmail("a@x.test", ["b@y.test"], MSG)
        [m] = sink.wait_messages(1)
        assert m.proto == "LMTP" and m.rcpt_tos == ["b@y.test"]


# -- Dovecot ----------------------------------------------------------------
# Dovecot stores LF lines and IMAP serves CRLF: a bare LF comes back as CRLF.
DMSG = MSG.replace(b"bare\nlf", b"bare lf")


def _modes(path):
    out, p = [], os.path.realpath(path)
    while True:
        out.append((p, stat.S_IMODE(os.stat(p).st_mode)))
        if p == "/":
            return out
        p = os.path.dirname(p)


def test_dovecot_lmtp_tcp_and_unix_then_imap(tmp_path):
    before = _modes(tmp_path)
    with Dovecot(str(tmp_path)) as dc:
        rcpt, data = lmtp_send(("127.0.0.1", dc.lmtp_port), "a@x.test",
                               ["alice@example.test", "nobody@example.test",
                                "bob"], b"Subject: one\r\n\r\nvia tcp\r\n")
        assert [c for c, _ in rcpt] == [250, 550, 250]
        assert [c for c, _ in data] == [250, 250]
        with smtplib.LMTP(dc.lmtp_socket, timeout=5) as s:   # 1 rcpt: fine
            s.sendmail("a@x.test", ["alice"], DMSG)
        one, two = dc.wait_messages("alice", 2)
        assert one.endswith(b"Subject: one\r\n\r\nvia tcp\r\n")
        assert two.endswith(DMSG) and b"Return-Path: <a@x.test>" in two
        [b] = dc.fetch_all("bob")
        assert b.endswith(b"via tcp\r\n")
        assert len(dc.maildir_files("alice")) == 2
        pid = dc.pid
    assert not Dovecot._group_alive(pid)
    # search bits given back, except on pytest's own scratch directories
    # (pytest-of-USER, pytest-N), which other workers may be using
    def outside_scratch(modes):
        return [(p, m) for p, m in modes
                if not os.path.basename(p).startswith("pytest-")]
    assert outside_scratch(_modes(tmp_path)) == outside_scratch(before)


def test_dovecot_full_address_users(tmp_path):
    with Dovecot(str(tmp_path), users=["carol@example.test"]) as dc:
        rcpt, data = lmtp_send(dc.lmtp_socket, "a@x.test",
                               ["Carol@Example.test", "carol@other.test"],
                               DMSG)
        assert [c for c, _ in rcpt] == [250, 550] and data[0][0] == 250
        [m] = dc.wait_messages("carol@example.test", 1)
        assert m.endswith(DMSG)
        assert dc.maildir("carol@example.test").endswith(
            "mail/example.test/carol/Maildir")
