"""Self-tests of the milter fixtures (milter_fixtures.py): the scripted
python milter, the misbehaving bad_milter and opendkim, driven by
miltertest (a Lua-scripted fake MTA) or a raw socket. No sluiced
involved, so they prove the fixtures independently of the milter client."""
import shutil
import socket
import struct
import subprocess
import time

import pytest

from milter_fixtures import dkim_verify

MILTERTEST = shutil.which("miltertest", path="/usr/bin:/usr/sbin")
needs_miltertest = pytest.mark.skipif(MILTERTEST is None,
                                      reason="miltertest is not installed")


def miltertest(tmp_path, spec, body, name="case.lua", timeout=30):
    """Run a miltertest script (`body` uses the connection `conn`, already
    connected to `spec`). Returns (rc, stdout, reply letters read)."""
    script = tmp_path / name
    script.write_text(
        'conn = mt.connect(SOCK, 50, 0.1)\n'
        'if conn == nil then error("connect failed") end\n'
        'mt.set_timeout(10)\n' + body)
    r = subprocess.run([MILTERTEST, "-v", "-v", "-D", "SOCK=" + spec, "-s",
                        str(script)], capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    letters = []
    for line in (out + err).splitlines():
        if "mt_milter_read(" in line and ": cmd " in line:
            letters.append(line.split(": cmd ", 1)[1][0])
    return r.returncode, out + err, letters


def check(cond, msg):
    """A Lua line failing the script with `msg` unless `cond` holds."""
    return f'if not ({cond}) then error("{msg}") end\n'


# -- the scripted milter ------------------------------------------------------

FULL_SCENARIO = {
    "protocol": ["HDR_LEADSPC"],
    "symlist": {"connect": "j {daemon_name} _"},
    "callbacks": {
        "envrcpt": [{"match": "bad@", "reply": {
            "code": "550", "xcode": "5.1.1",
            "text": ["no such", "user here"]}}],
        "eom": {"progress": 2, "progress_interval": 0.1, "action": "accept",
                "mods": [
                    {"op": "addheader", "name": "X-Added", "value": " yes"},
                    {"op": "insheader", "idx": 0, "name": "X-Ins",
                     "value": " top"},
                    {"op": "chgheader", "name": "Subject", "idx": 1,
                     "value": " changed"},
                    {"op": "chgheader", "name": "X-Gone", "idx": 1,
                     "value": ""},
                    {"op": "replacebody", "chunks": ["new\r", "\nbody\r\n"]},
                    {"op": "addrcpt", "addr": "<plain@example.test>"},
                    {"op": "addrcpt_par", "addr": "<x@example.test>",
                     "args": "NOTIFY=NEVER"},
                    {"op": "delrcpt", "addr": "<bob@example.test>"},
                    {"op": "chgfrom", "addr": "<new@example.test>",
                     "args": "BODY=8BITMIME"},
                    {"op": "quarantine", "reason": "held by test"}]}}}


@needs_miltertest
def test_scripted_full_transaction(tmp_path, milters):  # noqa: F811
    m = milters.scripted(FULL_SCENARIO)
    rc, out, letters = miltertest(tmp_path, m.spec, (
        'mt.macro(conn, SMFIC_CONNECT, "j", "mx.example.test",'
        ' "{daemon_name}", "sluice", "_", "c.example [192.0.2.7]")\n'
        'mt.conninfo(conn, "c.example", "192.0.2.7")\n'
        + check("mt.getreply(conn) == SMFIR_CONTINUE", "connect") +
        'mt.helo(conn, "c.example")\n'
        'mt.macro(conn, SMFIC_MAIL, "{mail_addr}", "s@example.org",'
        ' "i", "QID1")\n'
        'mt.mailfrom(conn, "<s@example.org>", "BODY=8BITMIME", "SIZE=10")\n'
        + check("mt.getreply(conn) == SMFIR_CONTINUE", "mail") +
        'mt.macro(conn, SMFIC_RCPT, "{rcpt_addr}", "bad@example.test")\n'
        'mt.rcptto(conn, "<bad@example.test>")\n'
        + check("mt.getreply(conn) == SMFIR_REPLYCODE", "rcpt bad") +
        'mt.macro(conn, SMFIC_RCPT, "{rcpt_addr}", "bob@example.test")\n'
        'mt.rcptto(conn, "<bob@example.test>")\n'
        + check("mt.getreply(conn) == SMFIR_CONTINUE", "rcpt ok") +
        'mt.data(conn)\n'
        'mt.header(conn, "Subject", "hello")\n'
        'mt.header(conn, "X-Gone", "x")\n'
        'mt.header(conn, "X-Folded", "a\\n\\tb")\n'
        'mt.eoh(conn)\n'
        'mt.bodystring(conn, "body\\r\\n")\n'
        'mt.eom(conn)\n'
        + check("mt.getreply(conn) == SMFIR_ACCEPT", "eom")
        + check('mt.eom_check(conn, MT_HDRADD, "X-Added", " yes")', "add")
        + check('mt.eom_check(conn, MT_HDRINSERT, "X-Ins")', "ins")
        + check('mt.eom_check(conn, MT_HDRCHANGE, "Subject", " changed")',
                "chg")
        + check('mt.eom_check(conn, MT_HDRDELETE, "X-Gone")', "del")
        # (miltertest compares a replaced body only with its last chunk
        # and does not count ADDRCPT_PAR: the wire check below does)
        + check('mt.eom_check(conn, MT_BODYCHANGE)', "body")
        + check('mt.eom_check(conn, MT_RCPTADD, "<plain@example.test>")',
                "addrcpt")
        + check('mt.eom_check(conn, MT_RCPTDELETE, "<bob@example.test>")',
                "delrcpt")
        + check('mt.eom_check(conn, MT_QUARANTINE, "held by test")', "quar")
        + 'mt.disconnect(conn)\n'))
    assert rc == 0, out
    # on the wire: O, connect c, helo c, mail c, rcpt y, rcpt c, data c,
    # 3 headers c, eoh c, body c, then p p, the modifications in order, a
    assert letters == ["O", "c", "c", "c", "y", "c", "c", "c", "c", "c",
                       "c", "c", "p", "p", "h", "i", "m", "m", "b", "b",
                       "+", "2", "-", "e", "q", "a"], out
    # payload lengths of the two body chunks: "new\r" and "\nbody\r\n"
    assert [ln.rsplit(" ", 1)[1] for ln in out.splitlines()
            if "read(" in ln and ": cmd b," in ln] == ["4", "7"], out
    m.wait_event("close")
    assert m.sequence() == ["connect", "helo", "mail", "rcpt", "rcpt",
                            "data", "header", "header", "header", "eoh",
                            "body", "eom", "close"]
    neg = m.events("negotiate")[0]["args"]
    assert neg["protocol"] & 0x100000          # HDR_LEADSPC requested
    assert neg["symlist"] == {"connect": "j {daemon_name} _"}
    # ... sent in the 'O' answer: 12 bytes + stage word + "j {daemon_name} _"
    assert "mt_milter_read(3): cmd O, len 34" in out, out
    conn = m.events("connect")[0]
    assert conn["args"] == {"hostname": "c.example", "family": "inet",
                            "addr": "192.0.2.7", "port": 12345}
    assert conn["macros"]["j"] == "mx.example.test"
    assert conn["macros"]["{daemon_name}"] == "sluice"
    assert conn["macros"]["_"] == "c.example [192.0.2.7]"
    assert conn["macros"]["{mail_addr}"] is None
    mail = m.events("mail")[0]
    assert mail["args"] == {"addr": "<s@example.org>",
                            "params": ["BODY=8BITMIME", "SIZE=10"]}
    assert mail["macros"]["{mail_addr}"] == "s@example.org"
    assert mail["macros"]["i"] == "QID1"
    rcpts = m.events("rcpt")
    assert [(r["args"]["addr"], r["answer"]) for r in rcpts] == \
        [("<bad@example.test>", "reject"), ("<bob@example.test>", "continue")]
    assert rcpts[1]["macros"]["{rcpt_addr}"] == "bob@example.test"
    # HDR_LEADSPC: the value exactly as sent (miltertest puts the space of
    # "Name: value" in front), folds kept
    assert m.headers_seen() == [("Subject", " hello"), ("X-Gone", " x"),
                                ("X-Folded", " a\n\tb")]
    assert m.events("body")[0]["args"] == {"len": 6, "data": "body\r\n"}
    mods = m.events("mod")
    assert [x["op"] for x in mods] == [
        "addheader", "insheader", "chgheader", "chgheader", "replacebody",
        "addrcpt", "addrcpt_par", "delrcpt", "chgfrom", "quarantine"]
    assert all(x["ok"] for x in mods), mods
    assert len(m.events("progress")) == 2


@needs_miltertest
def test_scripted_without_leadspc_nr_hdr_skip_nth_msg(tmp_path, milters):  # noqa: F811,E501
    m = milters.scripted({
        "protocol": ["NR_HDR"],
        "callbacks": {
            "body": {"action": "skip"},
            "data": [{"msg": 2, "reply": {"code": "451", "xcode": "4.7.1",
                                          "text": "second message"}}],
            "mail": [{"nth": [3], "action": "reject"}]}})
    one_msg = (
        'mt.mailfrom(conn, "<s@example.org>")\n'
        'mt.rcptto(conn, "<a@example.test>")\n'
        'mt.data(conn)\n')
    rc, out, letters = miltertest(tmp_path, m.spec, (
        'mt.conninfo(conn, "c.example", "192.0.2.7")\n'
        + check("mt.test_option(conn, SMFIP_NR_HDR)", "nr_hdr")
        + check("not mt.test_option(conn, SMFIP_HDR_LEADSPC)", "leadspc")
        + one_msg
        + 'mt.header(conn, "Subject", "hi")\n'
        'mt.eoh(conn)\n'
        'mt.bodystring(conn, "a\\r\\n")\n'
        + check("mt.getreply(conn) == SMFIR_SKIP", "skip") +
        'mt.eom(conn)\n'
        + check("mt.getreply(conn) == SMFIR_CONTINUE", "eom") +
        'mt.abort(conn)\n'
        + one_msg
        + check("mt.getreply(conn) == SMFIR_REPLYCODE", "data 2") +
        'mt.abort(conn)\n'
        'mt.mailfrom(conn, "<s@example.org>")\n'
        + check("mt.getreply(conn) == SMFIR_REJECT", "mail 3") +
        'mt.disconnect(conn)\n'))
    assert rc == 0, out
    # no reply to the header (NR_HDR); 's' to the body chunk
    assert letters == ["O", "c", "c", "c", "c", "c", "c", "s", "c",
                       "c", "c", "y", "r"], out
    m.wait_event("close")
    assert m.headers_seen() == [("Subject", "hi")]    # no leading space
    assert m.events("header")[0]["answer"] == "noreply"
    assert [e["msg"] for e in m.events("data")] == [1, 2]
    assert m.conn_ids() == [1] and m.last_conn() == 1
    assert m.sequence("last") == m.sequence()
    # the abort after a finished message is not a callback (libmilter)
    assert m.sequence() == ["connect", "helo", "mail", "rcpt", "data",
                            "header", "eoh", "body", "eom",
                            "mail", "rcpt", "data", "mail", "close"]


@needs_miltertest
def test_scripted_abort_sleep_and_unnegotiated_mods(tmp_path, milters):  # noqa: F811,E501
    m = milters.scripted({
        "actions": ["ADDHDRS"],
        "callbacks": {
            "rcpt": {"sleep": 1.0},
            "eom": {"mods": [{"op": "chgheader", "name": "Subject",
                              "idx": 1, "value": "x"},
                             {"op": "addheader", "name": "X-Ok",
                              "value": "1"}]}}})
    t0 = time.monotonic()
    rc, out, letters = miltertest(tmp_path, m.spec, (
        'mt.conninfo(conn, "c.example", "192.0.2.7")\n'
        + check("mt.test_action(conn, SMFIF_ADDHDRS)", "addhdrs")
        + check("not mt.test_action(conn, SMFIF_CHGHDRS)", "chghdrs") +
        'mt.mailfrom(conn, "<s@example.org>")\n'
        'mt.rcptto(conn, "<a@example.test>")\n'
        'mt.abort(conn)\n'
        'mt.rcptto(conn, "<b@example.test>")\n'
        'mt.eom(conn)\n'
        + check('mt.eom_check(conn, MT_HDRADD, "X-Ok")', "x-ok")
        + check('not mt.eom_check(conn, MT_HDRCHANGE)', "chg") +
        'mt.disconnect(conn)\n'))
    assert rc == 0, out
    assert time.monotonic() - t0 >= 2.0        # two RCPTs, 1 s each
    m.wait_event("close")
    seq = m.sequence()
    assert seq[:5] == ["connect", "helo", "mail", "rcpt", "abort"], seq
    assert seq[-2:] == ["eom", "close"], seq
    mods = m.events("mod")
    assert [(x["op"], x["ok"]) for x in mods] == [("chgheader", False),
                                                  ("addheader", True)]
    assert "CHGHDRS" in mods[0]["error"]


@needs_miltertest
def test_scripted_crash_kills_the_milter(tmp_path, milters):  # noqa: F811
    m = milters.scripted({"callbacks": {"mail": {"crash": True}}})
    rc, out, _ = miltertest(tmp_path, m.spec, (
        'mt.conninfo(conn, "c.example", "192.0.2.7")\n'
        'local r = mt.mailfrom(conn, "<s@example.org>")\n'
        'mt.echo("MAILRESULT " .. tostring(r))\n'))
    assert m.events("mail")
    deadline = time.monotonic() + 5
    while m.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not m.alive() and m.proc.returncode == 3


def test_scripted_stops_fast_and_removes_its_socket(tmp_path):
    from milter_fixtures import start_scripted_milter
    m = start_scripted_milter(tmp_path, {})
    assert m.alive()
    t0 = time.monotonic()
    m.stop()
    assert time.monotonic() - t0 < 2.0
    assert not m.alive()
    assert not (tmp_path / "milter" / "milter.sock").exists()


def test_scripted_rejects_unknown_flag_names(tmp_path):
    from milter_fixtures import start_scripted_milter
    with pytest.raises(AssertionError, match="exited"):
        start_scripted_milter(tmp_path, {"protocol": ["NO_SUCH_BIT"]})


# -- the bad milter: raw wire checks -----------------------------------------

class MiniMTA:
    """Just enough of an MTA to poke bad_milter.py."""

    def __init__(self, path, timeout=3):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)

    def send(self, cmd, payload=b""):
        self.s.sendall(struct.pack(">I", 1 + len(payload)) + cmd + payload)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            d = self.s.recv(n - len(buf))
            if not d:
                raise EOFError(buf)
            buf += d
        return buf

    def packet(self):
        (n,) = struct.unpack(">I", self.recv_exact(4))
        d = self.recv_exact(n)
        return d[:1], d[1:]

    def negotiate(self, version=6, actions=0x1FF, protocol=0x1FFFFF):
        self.send(b"O", struct.pack(">III", version, actions, protocol))
        cmd, p = self.packet()
        assert cmd == b"O"
        return p

    def connect_event(self):
        self.send(b"D", b"Cj\0mx.example.test\0")
        self.send(b"C", b"c.example\x004" + struct.pack(">H", 25)
                  + b"192.0.2.7\0")

    def closed(self, timeout=2):
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except socket.timeout:
            return False
        except OSError:
            return True

    def nothing(self, timeout=0.5):
        self.s.settimeout(timeout)
        try:
            d = self.s.recv(1)
        except socket.timeout:
            return True
        return d is None

    def close(self):
        self.s.close()


def test_bad_milter_behaves_until_told(milters):  # noqa: F811
    m = milters.bad(on="R", do="close")
    c = MiniMTA(m.sock)
    ver, act, proto = struct.unpack(">III", c.negotiate()[:12])
    assert (ver, act, proto) == (6, 0, 0)
    c.connect_event()
    assert c.packet() == (b"c", b"")
    c.send(b"H", b"c.example\0")
    assert c.packet() == (b"c", b"")
    c.send(b"M", b"<s@example.org>\0")
    assert c.packet() == (b"c", b"")
    c.send(b"R", b"<a@example.test>\0")
    assert c.closed()
    c.close()
    ev = m.wait_event("close")
    assert [e["cmd"] for e in m.events("cmd")] == ["O", "D", "C", "H", "M",
                                                   "R"]
    assert m.events("misbehave")[0]["do"] == "close"
    assert ev[0]["conn"] == 1       # the readiness probe is not counted


@pytest.mark.parametrize("do,expect", [
    ("hugelen", b"\xff\xff\xff\xff"),
    ("zerolen", b"\0\0\0\0"),
    ("garbage", b"garb"),
])
def test_bad_milter_broken_lengths(milters, do, expect):  # noqa: F811
    m = milters.bad(on="C", do=do)
    c = MiniMTA(m.sock)
    c.negotiate()
    c.connect_event()
    assert c.recv_exact(4) == expect
    c.close()


@pytest.mark.parametrize("do,opts,expect", [
    ("unknown", {}, [(b"Z", b"")]),
    ("unknown", {"text": "X"}, [(b"X", b"")]),
    ("mod", {}, [(b"h", b"X-Bad-Milter\0yes\0"), (b"c", b"")]),
    ("payload", {}, [(b"c", b"unexpected payload")]),
    ("reply", {}, [(b"y", b"hello world\0")]),
    ("reply", {"text": "550-5.7.1 a\r\n550 5.7.1 b"},
     [(b"y", b"550-5.7.1 a\r\n550 5.7.1 b\0")]),
    ("double", {}, [(b"c", b""), (b"c", b"")]),
    ("shutdown", {}, [(b"4", b"")]),
    ("connfail", {}, [(b"f", b"")]),
    ("progress", {"count": 3, "interval": 0.05},
     [(b"p", b""), (b"p", b""), (b"p", b""), (b"c", b"")]),
    ("big", {"size": 100000}, [(b"y", b"550 5.7.1 " + b"x" * 100000 + b"\0")]),
])
def test_bad_milter_bad_replies_at_eom(milters, do, opts, expect):  # noqa: F811,E501
    m = milters.bad(on="E", do=do, **opts)
    c = MiniMTA(m.sock)
    c.negotiate()
    for cmd, p in [(b"C", b"h\x004\0\x19127.0.0.1\0"), (b"H", b"h\0"),
                   (b"M", b"<a@b>\0"), (b"R", b"<c@d>\0"), (b"T", b""),
                   (b"L", b"Subject\0x\0"), (b"N", b""), (b"B", b"x\r\n")]:
        c.send(cmd, p)
        assert c.packet() == (b"c", b"")
    c.send(b"E")
    assert [c.packet() for _ in expect] == expect
    assert c.nothing()
    c.close()


def test_bad_milter_negotiation_answers(milters):  # noqa: F811
    m = milters.bad(on="O", do="version99")
    c = MiniMTA(m.sock)
    assert struct.unpack(">III", c.negotiate()) == (99, 0, 0)
    c.close()
    m = milters.bad(on="O", do="shortopt", actions=0x21)
    c = MiniMTA(m.sock)
    assert c.negotiate() == struct.pack(">II", 6, 0x21)
    c.close()
    m = milters.bad(on="O", do="none", version=2, actions="0x3",
                    protocol="0x80", optneg_extra="00000000" + "6a00".upper())
    c = MiniMTA(m.sock)
    p = c.negotiate()
    assert p == struct.pack(">III", 2, 3, 0x80) + b"\0\0\0\0j\0"
    # NR_HDR negotiated: no answer to a header, an answer to EOH
    c.send(b"L", b"Subject\0x\0")
    assert c.nothing()
    c.send(b"N")
    assert c.packet() == (b"c", b"")
    c.close()
    m = milters.bad(on="O", do="partial")
    c = MiniMTA(m.sock)
    c.send(b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF))
    with pytest.raises(EOFError) as e:
        c.recv_exact(4)
    assert e.value.args[0] == b"\0\0"
    c.close()


def test_bad_milter_hang_nth_and_conn(milters):  # noqa: F811
    m = milters.bad(on="R", do="hang", nth=2, conn=2)
    for conn in (1, 2):
        c = MiniMTA(m.sock)
        c.negotiate()
        c.send(b"R", b"<a@b>\0")
        assert c.packet() == (b"c", b"")
        c.send(b"R", b"<b@b>\0")
        if conn == 1:
            assert c.packet() == (b"c", b"")
        else:
            assert c.nothing(1.0)         # hangs, socket stays open
            assert not c.closed(0.3)
        c.close()
    assert [e["conn"] for e in m.events("misbehave")] == [2]


def test_bad_milter_slow_and_exit(milters):  # noqa: F811
    m = milters.bad(on="M", do="slow", sleep=0.7)
    c = MiniMTA(m.sock)
    c.negotiate()
    t0 = time.monotonic()
    c.send(b"M", b"<a@b>\0")
    assert c.packet() == (b"c", b"")
    assert time.monotonic() - t0 >= 0.6
    c.close()
    m = milters.bad(on="H", do="exit")
    c = MiniMTA(m.sock)
    c.negotiate()
    c.send(b"H", b"x\0")
    assert c.closed()
    m.proc.wait(5)
    assert m.proc.returncode == 3
    c.close()


@needs_miltertest
def test_bad_milter_default_speaks_the_protocol(tmp_path, milters):  # noqa: F811,E501
    m = milters.bad(on="E", do="none")
    rc, out, letters = miltertest(tmp_path, m.spec, (
        'mt.conninfo(conn, "c.example", "192.0.2.7")\n'
        'mt.mailfrom(conn, "<s@example.org>")\n'
        'mt.rcptto(conn, "<a@example.test>")\n'
        'mt.data(conn)\n'
        'mt.header(conn, "Subject", "x")\n'
        'mt.eoh(conn)\n'
        'mt.bodystring(conn, "a\\r\\n")\n'
        'mt.eom(conn)\n'
        + check("mt.getreply(conn) == SMFIR_CONTINUE", "eom") +
        'mt.disconnect(conn)\n'))
    assert rc == 0, out
    assert letters == ["O"] + ["c"] * 9, out


# -- opendkim ---------------------------------------------------------------

HEADERS = [("From", "User <user@example.test>"), ("To", "rcpt@example.org"),
           ("Subject", "dkim test"),
           ("Date", "Tue, 22 Dec 2009 13:04:12 -0800"),
           ("Message-ID", "<t1@example.test>")]
BODY = "Hello.\r\nSecond line.\r\n"


@needs_miltertest
def test_opendkim_signs_and_signature_verifies(tmp_path, milters):  # noqa: F811,E501
    d = milters.opendkim()
    assert d.txt_record().startswith(b"v=DKIM1;")
    lua_headers = "".join(
        f'mt.header(conn, "{n}", "{v}")\n' for n, v in HEADERS)
    rc, out, letters = miltertest(tmp_path, d.spec, (
        'mt.macro(conn, SMFIC_CONNECT, "j", "mx.example.test",'
        ' "{daemon_name}", "sluice")\n'
        'mt.conninfo(conn, "localhost", "127.0.0.1")\n'
        'mt.macro(conn, SMFIC_MAIL, "i", "TESTQID")\n'
        'mt.mailfrom(conn, "<user@example.test>")\n'
        'mt.rcptto(conn, "<rcpt@example.org>")\n'
        + lua_headers +
        'mt.eoh(conn)\n'
        f'mt.bodystring(conn, "{BODY.encode("unicode_escape").decode()}")\n'
        'mt.eom(conn)\n'
        + check('mt.eom_check(conn, MT_HDRINSERT, "DKIM-Signature")',
                "no DKIM-Signature") +
        'mt.echo("SIG<" .. mt.getheader(conn, "DKIM-Signature", 0)'
        ' .. ">SIG")\n'
        'mt.disconnect(conn)\n'))
    assert rc == 0, out
    assert "i" in letters, out                    # an insert, not an add
    sig = out.split("SIG<", 1)[1].split(">SIG", 1)[0]
    assert sig.startswith(" v=1;"), sig           # HDR_LEADSPC: own space
    assert "d=example.test;" in sig and "s=test;" in sig
    head = "".join(f"{n}: {v}\r\n" for n, v in HEADERS)
    signed = ("DKIM-Signature:" + sig.replace("\n", "\r\n") + "\r\n" + head
              + "\r\n" + BODY).encode()
    assert dkim_verify(signed, d.txt)
    assert d.verify(signed)
    assert not d.verify(signed.replace(b"Hello.", b"Hallo."))
    assert not d.verify(signed.replace(b"dkim test", b"dkim best"))
    # LF-only files (as in a Maildir) are accepted too
    assert d.verify(signed.replace(b"\r\n", b"\n"))


def test_opendkim_fixture_stops(tmp_path, milters):  # noqa: F811
    d = milters.opendkim(name="dk")
    assert d.alive() and d.spec == f"unix:{tmp_path}/dk/opendkim.sock"
    t0 = time.monotonic()
    d.stop()
    assert not d.alive() and time.monotonic() - t0 < 3
