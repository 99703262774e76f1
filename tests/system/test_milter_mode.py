"""`sluiced --milter SOCKET`: the Lua pipeline offered as a milter.

Part 1 drives it with miltertest (the fake MTA of the `miltertest`
package): one sluiced per module, one miltertest script per scenario;
a script fails with error() and a non-zero exit. Part 2 puts a real
Postfix (a private instance on loopback, postfix_instance.py) in front of
it and checks what an SMTP client and the next hop see.
"""
import os
import re
import signal
import smtplib
import socket
import subprocess
import time

import pytest

import postfix_instance
from conftest import SLUICED, default_config, free_port, render
from downstream import Downstream
from procs import ChildProcess, terminate

MILTERTEST = "/usr/bin/miltertest"
START_TIMEOUT = 10.0
# libmilter's listener looks at its stop flag every 5 s
STOP_TIMEOUT = 15.0

MAIN = r"""
local f = {}
function f.rcpt(ctx)
  if ctx.rcpt == "nobody@example.test" then
    return reject(550, "5.1.1", "nobody lives here")
  end
  if ctx.rcpt == "busy@example.test" then
    return tempfail(452, "4.2.2", "mailbox busy")
  end
end
function f.message(ctx)
  local s = ctx:header("Subject") or ""
  if s == "add" then
    ctx:add_header("X-Sluice-Test", "added by lua")
  elseif s == "insert" then
    ctx:insert_header(1, "X-First", "on top")
  elseif s == "insert2" then
    ctx:insert_header(2, "X-Second", "after the first field")
  elseif s == "change" then
    ctx:change_header("X-Keep", 1, "changed value")
    ctx:delete_header("X-Drop")
  elseif s == "body" then
    ctx:replace_body("new body\r\nsecond line\r\n")
  elseif s == "tempfail" then
    return tempfail(452, "4.3.1", "try again later please")
  elseif s == "reject" then
    return reject(554, "5.7.1", "message refused by lua")
  elseif s == "discard" then
    return discard()
  elseif s == "disconnect" then
    return disconnect()
  elseif s == "quarantine" then
    return quarantine("held for review")
  elseif s == "rcpts" then
    ctx:add_rcpt("bob@example.test")
    ctx:del_rcpt("alice@example.test")
  elseif s == "auth" then
    ctx:add_header("X-Auth", (ctx.auth_user or "none") .. "|" ..
      (ctx.auth_mechanism or "none"))
  elseif s == "tls" then
    ctx:add_header("X-TLS", table.concat({ctx.tls_version or "none",
      ctx.tls_cipher or "none", ctx.tls_bits or "none"}, "|"))
  elseif s == "facts" then
    ctx:add_header("X-Facts", table.concat({ctx.client_addr,
      ctx.client_rdns, ctx.helo, ctx.sender, ctx.qid, #ctx.rcpts,
      #ctx:body()}, "|"))
  end
end
return f
"""

# a second filter whose Lua error must give its on_error verdict
BOOM = r"""
return { message = function(ctx)
  if ctx:header("Subject") == "error" then error("boom") end
end }
"""


def pipeline(tmp):
    entries = []
    for name, src, extra in (("main", MAIN, {}),
                             ("boom", BOOM, {"on_error": "reject"})):
        path = os.path.join(str(tmp), f"{name}.lua")
        with open(path, "w") as f:
            f.write(src)
        entries.append(dict({"lua": path, "name": name}, **extra))
    return entries


class MilterSluice(ChildProcess):
    """sluiced --milter unix:SOCK -c CONFIG, stopped by PID."""

    def __init__(self, tmp, sock=None):
        self.tmp = str(tmp)
        self.smtp_port = free_port()
        cfg = default_config(self.tmp, self.smtp_port)
        cfg["pipeline"] = pipeline(tmp)
        self.cfg_path = os.path.join(self.tmp, "milter.yaml")
        with open(self.cfg_path, "w") as f:
            f.write(render(cfg))
        self.sock = sock or os.path.join(self.tmp, "sluice.sock")
        self.log_path = os.path.join(self.tmp, "milter.log")
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                [os.path.abspath(SLUICED), "--milter", "unix:" + self.sock,
                 "-c", self.cfg_path], stdout=logf,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.tmp)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"sluiced --milter exited with "
                                     f"{self.proc.returncode}:\n{self.log()}")
            if ("event=ready mode=milter" in self.log()
                    and os.path.exists(self.sock)):
                return self
            time.sleep(0.05)
        raise AssertionError(f"sluiced --milter not ready:\n{self.log()}")

    def stop(self):
        """SIGTERM and a bounded wait; the exit code (SIGKILL: -9)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                terminate(self.proc, 5)
        return self.proc.returncode


@pytest.fixture(scope="module")
def msluice(tmp_path_factory):
    m = MilterSluice(tmp_path_factory.mktemp("milter"))
    m.start()
    yield m
    alive = m.proc.poll() is None
    rc = m.stop()
    assert alive, f"sluiced --milter died during the tests:\n{m.log()}"
    assert rc == 0, f"exit {rc} on SIGTERM:\n{m.log()[-4000:]}"
    assert "Sanitizer" not in m.log(), m.log()[-4000:]


# -- miltertest ---------------------------------------------------------------

PRELUDE = r"""
-- miltertest prints nothing for error(): say it first
function check(cond, what)
  if not cond then mt.echo("FAILED: " .. what); error(what) end
end
function expect(got, want, what)
  check(got == want, string.format("%s: reply %s, want %s", what,
    tostring(got), tostring(want)))
end
function eom_check(op, ...)
  local ok, r = pcall(mt.eom_check, conn, op, ...)
  check(ok, "mt.eom_check(" .. tostring(op) .. "): " .. tostring(r))
  return r
end
conn = mt.connect(sock, 40, 0.25)
check(conn ~= nil, "connect to " .. sock)
check(mt.conninfo(conn, "client.example.net", "192.0.2.7") == nil, "conninfo")
expect(mt.getreply(conn), SMFIR_CONTINUE, "connect")
check(mt.helo(conn, "helo.example.net") == nil, "helo")
expect(mt.getreply(conn), SMFIR_CONTINUE, "helo")

function mail(from, qid)
  if qid then mt.macro(conn, SMFIC_MAIL, "i", qid) end
  check(mt.mailfrom(conn, from) == nil, "mail")
  return mt.getreply(conn)
end
function rcpt(to)
  check(mt.rcptto(conn, to) == nil, "rcpt")
  return mt.getreply(conn)
end
-- headers: { {name, value}, ... } (values with their leading blank:
-- sluice negotiates SMFIP_HDR_LEADSPC); returns the EOM reply
function message(headers, body)
  check(mt.data(conn) == nil, "data")
  expect(mt.getreply(conn), SMFIR_CONTINUE, "data")
  for _, h in ipairs(headers) do
    check(mt.header(conn, h[1], h[2]) == nil, "header " .. h[1])
    expect(mt.getreply(conn), SMFIR_CONTINUE, "header " .. h[1])
  end
  check(mt.eoh(conn) == nil, "eoh")
  expect(mt.getreply(conn), SMFIR_CONTINUE, "eoh")
  check(mt.bodystring(conn, body) == nil, "body")
  expect(mt.getreply(conn), SMFIR_CONTINUE, "body")
  check(mt.eom(conn) == nil, "eom")
  return mt.getreply(conn)
end
-- a transaction from sender@example.org to alice with this Subject
function simple(subject, extra)
  expect(mail("<sender@example.org>"), SMFIR_CONTINUE, "mail")
  expect(rcpt("<alice@example.test>"), SMFIR_CONTINUE, "rcpt")
  local hs = { {"From", " sender@example.org"}, {"Subject", " " .. subject} }
  for _, h in ipairs(extra or {}) do table.insert(hs, h) end
  return message(hs, "hello\r\n")
end
function nothing_else(except)
  -- MT_RCPTADD and MT_RCPTDELETE need an address: the ones of the tests
  for name, chk in pairs({hdradd = {MT_HDRADD}, hdrchange = {MT_HDRCHANGE},
      hdrdelete = {MT_HDRDELETE}, hdrinsert = {MT_HDRINSERT},
      body = {MT_BODYCHANGE}, quarantine = {MT_QUARANTINE},
      rcptadd = {MT_RCPTADD, "<bob@example.test>"},
      rcptdel = {MT_RCPTDELETE, "<alice@example.test>"}}) do
    if not except[name] then
      check(not eom_check(table.unpack(chk)),
        "unexpected change " .. name)
    end
  end
end
"""

EPILOGUE = r"""
mt.disconnect(conn)
print("SCRIPT-OK")
"""


def miltertest(m, tmp_path, body):
    path = os.path.join(str(tmp_path), "case.lua")
    with open(path, "w") as f:
        f.write(PRELUDE + body + EPILOGUE)
    r = subprocess.run([MILTERTEST, "-D", "sock=unix:" + m.sock, "-s", path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0 and "SCRIPT-OK" in out, (
        f"miltertest exit {r.returncode}:\n{out}\nsluiced log:\n"
        f"{m.log()[-3000:]}")
    return out


pytestmark = pytest.mark.skipif(not os.access(MILTERTEST, os.X_OK),
                                reason="miltertest is not installed")


def test_no_smtp_listener(msluice):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", msluice.smtp_port),
                                 timeout=2).close()


def test_rcpt_reject_and_tempfail(msluice, tmp_path):
    miltertest(msluice, tmp_path, r"""
expect(mail("<sender@example.org>", "RCPTQID1"), SMFIR_CONTINUE, "mail")
expect(rcpt("<nobody@example.test>"), SMFIR_REPLYCODE, "rcpt nobody")
expect(rcpt("<busy@example.test>"), SMFIR_REPLYCODE, "rcpt busy")
expect(rcpt("<alice@example.test>"), SMFIR_CONTINUE, "rcpt alice")
expect(message({ {"Subject", " facts"} }, "hi\r\n"), SMFIR_CONTINUE, "eom")
-- only alice made it into the envelope the filters see
check(eom_check(MT_HDRADD, "X-Facts",
  " 192.0.2.7|client.example.net|helo.example.net|sender@example.org|" ..
  "RCPTQID1|1|4"), "X-Facts: " .. tostring(mt.getheader(conn, "X-Facts", 0)))
""")
    log = msluice.log()
    assert ('qid=RCPTQID1 ' in log and 'event=reject stage=rcpt filter=main '
            'reply="550 5.1.1 nobody lives here"' in log), log[-3000:]
    assert 'reply="452 4.2.2 mailbox busy"' in log


def test_tls_macros_reach_the_filters(msluice, tmp_path):
    """The MTA's {tls_version}, {cipher} and {cipher_bits} (sent with
    HELO) become the filters' tls_version, tls_cipher and tls_bits; a
    HELO without them (a plaintext session) leaves them unset."""
    miltertest(msluice, tmp_path, r"""
expect(simple("tls"), SMFIR_CONTINUE, "eom plain")
check(eom_check(MT_HDRADD, "X-TLS", " none|none|none"),
  "X-TLS plain: " .. tostring(mt.getheader(conn, "X-TLS", 0)))
mt.macro(conn, SMFIC_HELO, "{tls_version}", "TLSv1.3",
  "{cipher}", "TLS_AES_256_GCM_SHA384", "{cipher_bits}", "256")
check(mt.helo(conn, "helo.example.net") == nil, "helo with TLS")
expect(mt.getreply(conn), SMFIR_CONTINUE, "helo with TLS")
expect(simple("tls"), SMFIR_CONTINUE, "eom tls")
check(eom_check(MT_HDRADD, "X-TLS", " TLSv1.3|TLS_AES_256_GCM_SHA384|256"),
  "X-TLS: " .. tostring(mt.getheader(conn, "X-TLS", 0)))
""")


def test_auth_macros_reach_the_filters(msluice, tmp_path):
    """{auth_authen} and {auth_type}, which Postfix sends with MAIL once
    the client has authenticated, become auth_user and auth_mechanism; the
    next transaction without them has none."""
    miltertest(msluice, tmp_path, r"""
mt.macro(conn, SMFIC_MAIL, "{auth_authen}", "joe", "{auth_type}", "PLAIN")
expect(simple("auth"), SMFIR_CONTINUE, "eom auth")
check(eom_check(MT_HDRADD, "X-Auth", " joe|PLAIN"),
  "X-Auth: " .. tostring(mt.getheader(conn, "X-Auth", 0)))
mt.macro(conn, SMFIC_MAIL, "i", "NOAUTH1")
expect(simple("auth"), SMFIR_CONTINUE, "eom plain")
check(eom_check(MT_HDRADD, "X-Auth", " none|none"),
  "X-Auth plain: " .. tostring(mt.getheader(conn, "X-Auth", 0)))
""")


def test_header_add(msluice, tmp_path):
    miltertest(msluice, tmp_path, r"""
expect(simple("add"), SMFIR_CONTINUE, "eom")
check(eom_check(MT_HDRADD, "X-Sluice-Test", " added by lua"),
  "X-Sluice-Test added")
nothing_else({hdradd = true})
""")


def test_header_insert(msluice, tmp_path):
    miltertest(msluice, tmp_path, r"""
expect(simple("insert"), SMFIR_CONTINUE, "eom")
check(eom_check(MT_HDRINSERT, "X-First", " on top", 0),
  "X-First inserted at 0")
nothing_else({hdrinsert = true})
""")


def test_header_change_and_delete(msluice, tmp_path):
    miltertest(msluice, tmp_path, r"""
expect(simple("change", { {"X-Drop", " secret"}, {"X-Keep", " old"} }),
  SMFIR_CONTINUE, "eom")
check(eom_check(MT_HDRCHANGE, "X-Keep", " changed value"),
  "X-Keep changed")
check(eom_check(MT_HDRDELETE, "X-Drop"), "X-Drop deleted")
check(not eom_check(MT_HDRDELETE, "Subject"), "Subject kept")
nothing_else({hdrchange = true, hdrdelete = true})
""")


def test_body_replaced(msluice, tmp_path):
    miltertest(msluice, tmp_path, r"""
expect(simple("body"), SMFIR_CONTINUE, "eom")
check(eom_check(MT_BODYCHANGE, "new body\r\nsecond line\r\n"),
  "body replaced")
nothing_else({body = true})
""")


def test_message_tempfail(msluice, tmp_path):
    miltertest(msluice, tmp_path, r"""
expect(simple("tempfail"), SMFIR_REPLYCODE, "eom")
check(eom_check(MT_SMTPREPLY, "452", "4.3.1", "try again later please"),
  "452 4.3.1 reply")
nothing_else({})
""")


def test_message_reject_text(msluice, tmp_path):
    miltertest(msluice, tmp_path, r"""
expect(simple("reject"), SMFIR_REPLYCODE, "eom")
check(eom_check(MT_SMTPREPLY, "554", "5.7.1", "message refused by lua"),
  "554 5.7.1 reply")
""")
    assert 'reply="554 5.7.1 message refused by lua"' in msluice.log()


def test_discard(msluice, tmp_path):
    miltertest(msluice, tmp_path, r"""
expect(simple("discard"), SMFIR_DISCARD, "eom")
nothing_else({})
""")


def test_disconnect_is_421(msluice, tmp_path):
    miltertest(msluice, tmp_path, r"""
expect(simple("disconnect"), SMFIR_REPLYCODE, "eom")
check(eom_check(MT_SMTPREPLY, "421", "4.7.0", "Closing connection"),
  "421 4.7.0 reply")
""")


def test_quarantine(msluice, tmp_path):
    miltertest(msluice, tmp_path, r"""
expect(simple("quarantine"), SMFIR_CONTINUE, "eom")
check(eom_check(MT_QUARANTINE, "held for review"), "quarantined")
nothing_else({quarantine = true})
""")


def test_recipients_added_and_deleted(msluice, tmp_path):
    miltertest(msluice, tmp_path, r"""
expect(simple("rcpts"), SMFIR_CONTINUE, "eom")
check(eom_check(MT_RCPTADD, "<bob@example.test>"), "bob added")
check(eom_check(MT_RCPTDELETE, "<alice@example.test>"),
  "alice deleted")
nothing_else({rcptadd = true, rcptdel = true})
""")


def test_lua_error_gives_on_error(msluice, tmp_path):
    miltertest(msluice, tmp_path, r"""
expect(simple("error"), SMFIR_REPLYCODE, "eom")
check(eom_check(MT_SMTPREPLY, "554", "5.7.1", "Message rejected by policy"),
  "on_error reject")
""")
    log = msluice.log()
    assert re.search(r"event=filter-error stage=message filter=boom "
                     r"action=reject reason=.*boom", log), log[-3000:]


def test_two_transactions_and_abort(msluice, tmp_path):
    """An aborted transaction leaves nothing behind for the next one."""
    miltertest(msluice, tmp_path, r"""
expect(mail("<sender@example.org>"), SMFIR_CONTINUE, "mail 1")
expect(rcpt("<alice@example.test>"), SMFIR_CONTINUE, "rcpt 1")
check(mt.abort(conn) == nil, "abort")
expect(mail("<other@example.org>", "SECONDQID"), SMFIR_CONTINUE, "mail 2")
expect(rcpt("<bob@example.test>"), SMFIR_CONTINUE, "rcpt 2")
expect(message({ {"Subject", " facts"} }, "x\r\n"), SMFIR_CONTINUE, "eom")
check(eom_check(MT_HDRADD, "X-Facts",
  " 192.0.2.7|client.example.net|helo.example.net|other@example.org|" ..
  "SECONDQID|1|3"), "X-Facts: " .. tostring(mt.getheader(conn, "X-Facts", 0)))
""")


# -- a real Postfix in front ---------------------------------------------------

def _mail(subject, to="alice@example.test"):
    return (f"From: sender@example.org\r\nTo: {to}\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject}.{time.time()}"
            f"@example.org>\r\n\r\nhello from the test\r\n").encode()


@pytest.mark.skipif(not postfix_instance.available(),
                    reason="needs root and the Debian postfix package")
def test_postfix_in_front(tmp_path):
    with Downstream() as sink:
        pf = postfix_instance.PostfixInstance(
            relay_to=("127.0.0.1", sink.port),
            relay_domains=["example.test"])
        ms = MilterSluice(tmp_path, sock=pf.socket_path("sluice.sock"))
        try:
            ms.start()
            os.chmod(ms.sock, 0o666)    # Postfix's smtpd runs as postfix
            with open(os.path.join(pf.conf, "main.cf"), "a") as f:
                f.write(f"smtpd_milters = unix:{ms.sock}\n"
                        "milter_default_action = tempfail\n"
                        "milter_protocol = 6\n")
            pf.start()
            with smtplib.SMTP("127.0.0.1", pf.port, timeout=60) as c:
                c.ehlo("client.example.net")
                code, _ = c.mail("sender@example.org")
                assert code == 250
                # the Lua filter's rcpt reject reaches the client
                code, msg = c.rcpt("nobody@example.test")
                assert (code, msg) == (550, b"5.1.1 nobody lives here"), (
                    code, msg, pf.log()[-2000:], ms.log()[-2000:])
                code, msg = c.rcpt("alice@example.test")
                assert code == 250, msg
                code, msg = c.data(_mail("add"))
                assert code == 250, (msg, pf.log()[-2000:])
                qid = re.search(rb"queued as (\w+)", msg).group(1).decode()
                # an insert below the first field: Postfix counts its
                # hidden Received: field, sluice makes up for it
                c.rset()
                assert c.mail("sender@example.org")[0] == 250
                assert c.rcpt("bob@example.test")[0] == 250
                assert c.data(_mail("insert2"))[0] == 250
                # a message-stage reject with the filter's text
                c.rset()
                assert c.mail("sender@example.org")[0] == 250
                assert c.rcpt("alice@example.test")[0] == 250
                code, msg = c.data(_mail("reject"))
                assert (code, msg) == (554, b"5.7.1 message refused by lua")
            got = sink.wait_messages(2, timeout=30)
            by_rcpt = {m.rcpt_tos[0]: m.data.decode("utf-8", "replace")
                       for m in got}
            assert sorted(by_rcpt) == ["alice@example.test",
                                       "bob@example.test"]
            hdrs = by_rcpt["alice@example.test"].split("\r\n\r\n", 1)[0]
            assert "\r\nX-Sluice-Test: added by lua\r\n" in hdrs + "\r\n", hdrs
            names = [ln.split(":", 1)[0] for ln in
                     by_rcpt["bob@example.test"].split("\r\n\r\n")[0]
                     .split("\r\n") if ln[:1] not in (" ", "\t")]
            assert names[:4] == ["Received", "From", "X-Second", "To"], names
            time.sleep(0.5)
            assert len(sink.messages) == 2      # the rejected one stayed
            # sluice's log lines carry Postfix's queue ID
            assert f"qid={qid} " in ms.log(), ms.log()[-3000:]
        finally:
            pf.cleanup()
            rc = ms.stop()
        assert rc == 0, ms.log()[-3000:]
