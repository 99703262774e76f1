"""C plugins in the filter pipeline (plugins/sluice_plugin.h, ABI 1).

The probe test plugin (tests/plugins/probe.c) drives every verdict at
every SMTP stage, async suspend/resume, timeouts with on_error, message
changes, tags and the KV store; load failures of broken plugins; and the
shipped plugins ratelimit and dnsbl (against a real dnsmasq).

Clients connect from several 127.0.0.x source addresses: Linux routes the
whole 127/8 to lo, which gives each test its own "client IP". Every server
here asks a module-wide dnsmasq (fast answers for the connect stage's
reverse lookup, and the DNSBL zones).

Needs: make all build/tests/plugins/*.so (the `system` target does it);
SLUICE_PLUGINS / SLUICE_TEST_PLUGINS point at them.
"""
import os
import re
import socket
import subprocess
import time

import pytest

import helpers
from conftest import REPO, SLUICED, render
from dns_server import DnsServer
from helpers import check, message, queued_id, split_headers

PLUGINS = os.environ.get("SLUICE_PLUGINS") or os.path.join(REPO, "build",
                                                          "plugins")
TEST_PLUGINS = os.environ.get("SLUICE_TEST_PLUGINS") or os.path.join(
    REPO, "build", "tests", "plugins")


def tplugin(name):
    path = os.path.join(TEST_PLUGINS, name + ".so")
    assert os.path.exists(path), f"{path} missing: run make system"
    return path


def splugin(name):
    path = os.path.join(PLUGINS, name + ".so")
    assert os.path.exists(path), f"{path} missing: run make"
    return path


# -- DNS: one dnsmasq for the module ----------------------------------------

NIB_1 = ".".join("1" + "0" * 31)          # ::1 reversed, nibble format
DNS_RECORDS = {
    "A": {
        "2.0.0.127.zen.test": "127.0.0.2",     # .2: zen and bl
        "2.0.0.127.bl.test": "127.0.0.2",
        "3.0.0.127.bl.test": "127.0.0.2",      # .3: bl only
        "4.0.0.127.zen.test": "127.0.0.4",     # .4: zen (code .4) and
        "4.0.0.127.bl.test": "127.255.255.254",  # an error code in bl
        f"{NIB_1}.zen.test": "127.0.0.2",       # ::1 in zen
    },
    "NXDOMAIN": ["clean.test"],
}


class BlackholeDns(DnsServer):
    """dnsmasq that forwards slow.test to a UDP socket that never answers
    (a lookup there times out); names outside the records' domains, like
    refused.invalid, are REFUSED."""

    def __init__(self, tmpdir, records, hole_port):
        self.hole_port = hole_port
        super().__init__(tmpdir, records)

    def _args(self, port):
        return super()._args(port) + [
            f"--server=/slow.test/127.0.0.1#{self.hole_port}"]


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    d = BlackholeDns(str(tmp_path_factory.mktemp("dns")), DNS_RECORDS,
                     hole.getsockname()[1])
    yield d
    d.stop()
    hole.close()


def dns_conf(dns, timeout="1s"):
    return {"servers": [f"127.0.0.1:{dns.port}"], "timeout": timeout,
            "attempts": 1, "hosts_file": False}   # client names from DNS


def start(make_server, dns, pipeline, dns_timeout="1s", **extra):
    cfg = {"pipeline": pipeline, "dns": dns_conf(dns, dns_timeout)}
    cfg.update(extra)
    return make_server(cfg)


def probe(rules, name="p", **entry):
    e = {"plugin": tplugin("probe"), "args": {"name": name, "rules": rules}}
    e.update(entry)
    return e


# -- SMTP drivers -----------------------------------------------------------

def connect(srv, source):
    c = srv.raw(greet=False, source=source)
    return c, c.reply()


STAGES = ["connect", "helo", "mail", "rcpt", "data", "message", "queue"]


def session_to(srv, stage, helo="client.test", source=None,
               sender="sender@remote.test", rcpts=("alice@example.test",),
               msg=None):
    """Open a session and walk it up to `stage`: (client, reply there)."""
    c = srv.raw(greet=False, source=source, timeout=10)
    r = c.reply()
    if stage == "connect":
        return c, r
    check(r, 220)
    r = c.cmd(f"EHLO {helo}")
    if stage == "helo":
        return c, r
    check(r, 250)
    r = c.cmd(f"MAIL FROM:<{sender}>")
    if stage == "mail":
        return c, r
    check(r, 250, "2.1.0")
    for rc in rcpts:
        r = c.cmd(f"RCPT TO:<{rc}>")
    if stage == "rcpt":
        return c, r
    check(r, 250, "2.1.5")
    r = c.cmd("DATA")
    if stage == "data":
        return c, r
    check(r, 354)
    c.send((msg or message()) + ".\r\n")
    return c, c.reply()


def deliver(srv, helo="client.test", source=None, user="alice", **kw):
    """One message through a whole session; the delivered file's text."""
    before = len(srv.maildir_files(user))
    c, r = session_to(srv, "queue", helo=helo, source=source, **kw)
    queued_id(r)
    c.cmd("QUIT")
    c.close()
    return srv.wait_mail(user, before + 1)[-1].decode("utf-8", "replace")


def header(text, name):
    """Values of the header `name` in a delivered file (unfolded)."""
    headers, _ = split_headers(text.encode())
    pre = name.lower() + ":"
    return [h.split(":", 1)[1].strip() for h in headers
            if h.lower().startswith(pre)]


class Raw6(helpers.RawClient):
    """RawClient over IPv6 to [::1]:port."""

    def __init__(self, port, timeout=10):
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(("::1", port))
        self.timeout = timeout
        self.buf = b""
        self.eof = False


def start_v6(make_server, dns, pipeline):
    """A server with a second listener on [::1]: (server, its port)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        port6 = s.getsockname()[1]
    srv = make_server({"pipeline": pipeline, "dns": dns_conf(dns)},
                      start=False)
    srv.cfg["listeners"].append({"name": "mx6", "address": "::1",
                                 "port": port6, "role": "mx"})
    srv.write_config()
    srv.start()
    return srv, port6


# -- verdicts at every stage --------------------------------------------------

DEFAULTS = {
    ("reject", "connect"): "554 5.7.1 Access denied",
    ("reject", "helo"): "550 5.7.1 Rejected by policy",
    ("reject", "mail"): "550 5.7.1 Sender address rejected by policy",
    ("reject", "rcpt"): "550 5.7.1 Recipient address rejected by policy",
    ("reject", "data"): "554 5.7.1 Message rejected by policy",
    ("reject", "message"): "554 5.7.1 Message rejected by policy",
    ("reject", "queue"): "554 5.7.1 Message rejected by policy",
}
TEMP = "4.7.1 Temporarily rejected by policy, try again later"
for _st, _code in zip(STAGES, [421, 451, 450, 450, 451, 451, 451]):
    DEFAULTS[("tempfail", _st)] = f"{_code} {TEMP}"
    DEFAULTS[("disconnect", _st)] = "421 4.7.0 Closing connection"
CONNECT_SRC = {"reject": "127.0.0.21", "tempfail": "127.0.0.22",
               "disconnect": "127.0.0.23"}


def matrix_rules():
    rules = []
    for (verdict, stage) in DEFAULTS:
        when = ({"client.addr": CONNECT_SRC[verdict]} if stage == "connect"
                else {"helo": f"{verdict}-{stage}.test"})
        rules.append({"stage": stage, "when": when, "verdict": verdict})
    return rules


def test_every_verdict_at_every_stage_default_replies(make_server, dns):
    """reject/tempfail/disconnect at connect..queue give the stage's
    default reply; 421 replies and refusals at connect close the session,
    others keep it."""
    srv = start(make_server, dns, [probe(matrix_rules())])
    errors = []
    for (verdict, stage), want in DEFAULTS.items():
        src = CONNECT_SRC[verdict] if stage == "connect" else None
        c, (code, text) = session_to(srv, stage, helo=f"{verdict}-{stage}"
                                     ".test", source=src)
        got = f"{code} {text}"
        if got != want:
            errors.append(f"{verdict}@{stage}: {got!r} != {want!r}")
        elif want.startswith("421") or stage == "connect":
            if not c.closed(timeout=3):
                errors.append(f"{verdict}@{stage}: not closed after 421")
        else:
            r = c.cmd("NOOP")
            if r[0] != 250:
                errors.append(f"{verdict}@{stage}: session dead: {r}")
        c.close()
    assert not errors, "\n".join(errors)
    assert not srv.maildir_files("alice"), "a refused message was delivered"


def test_custom_code_enhanced_text(make_server, dns):
    """A verdict's own code/enhanced/text are used when they fit its
    class; a 4xx code or 4.x.x status given to reject is not used (nor a
    5xx to tempfail, nor an x6x..x9x code, nor non-421 at connect)."""
    cases = [
        ("rcpt", "reject", 551, "5.1.6", "Gone away", "551 5.1.6 Gone away"),
        ("rcpt", "reject", 451, "4.2.0", "Wrong class",
         "550 5.7.1 Wrong class"),
        ("rcpt", "reject", 570, "5.7.1", "Odd code", "550 5.7.1 Odd code"),
        ("rcpt", "tempfail", 452, "4.2.2", "Mailbox full",
         "452 4.2.2 Mailbox full"),
        ("rcpt", "tempfail", 550, "5.1.1", "Wrong class",
         "450 4.7.1 Wrong class"),
        ("mail", "reject", 553, "5.1.8", "Bad sender domain",
         "553 5.1.8 Bad sender domain"),
        ("data", "tempfail", 452, "4.3.1", "Try later",
         "452 4.3.1 Try later"),
        ("message", "reject", 550, "5.7.0", "Spam: no thanks",
         "550 5.7.0 Spam: no thanks"),
        ("queue", "tempfail", 451, "4.3.0", "Queue busy",
         "451 4.3.0 Queue busy"),
        ("helo", "disconnect", 421, "4.7.0", "Bye now", "421 4.7.0 Bye now"),
        ("connect", "tempfail", 450, "4.7.1", "Busy",
         "421 4.7.1 Busy"),
    ]
    rules = []
    for i, (stage, verdict, code, enh, text, _) in enumerate(cases):
        when = ({"client.addr": "127.0.0.31"} if stage == "connect"
                else {"helo": f"case{i}.test"})
        rules.append({"stage": stage, "when": when, "verdict": verdict,
                      "code": code, "enhanced": enh, "text": text})
    srv = start(make_server, dns, [probe(rules)])
    errors = []
    for i, (stage, verdict, _, _, _, want) in enumerate(cases):
        c, (code, text) = session_to(srv, stage, helo=f"case{i}.test",
                                     source="127.0.0.31" if stage ==
                                     "connect" else None)
        if f"{code} {text}" != want:
            errors.append(f"case {i} {verdict}@{stage}: {code} {text!r} "
                          f"!= {want!r}")
        c.close()
    assert not errors, "\n".join(errors)


def test_accept_skips_the_rest_of_the_stage_continue_does_not(make_server,
                                                             dns):
    """accept decides the stage (the next filter is not called there);
    continue passes it on to the next filter, which rejects."""
    first = probe([
        {"stage": "rcpt", "when": {"helo": "acc.test"}, "verdict": "accept"},
        {"stage": "rcpt", "when": {"helo": "cont.test"},
         "verdict": "continue"}], name="first")
    second = probe([{"stage": "rcpt", "verdict": "reject",
                     "text": "second says no"}], name="second")
    srv = start(make_server, dns, [first, second])
    c, r = session_to(srv, "rcpt", helo="acc.test")
    check(r, 250, "2.1.5")
    c.close()
    c, r = session_to(srv, "rcpt", helo="cont.test")
    assert r == (550, "5.7.1 second says no"), r
    c.close()
    log = srv.run_log()
    assert log.count('text="probe=second stage=rcpt"') == 1, log[-3000:]
    assert log.count('text="probe=first stage=rcpt"') == 2


def test_discard_and_quarantine(make_server, dns):
    """discard (at rcpt, message, queue) answers 250 queued and delivers
    nothing; quarantine at message holds the message in quarantine/."""
    rules = [{"stage": st, "when": {"helo": f"discard-{st}.test"},
              "verdict": "discard"} for st in ("rcpt", "message", "queue")]
    rules.append({"stage": "message", "when": {"helo": "quar.test"},
                  "verdict": "quarantine"})
    srv = start(make_server, dns, [probe(rules)])
    for st in ("rcpt", "message", "queue"):
        c, r = session_to(srv, "queue", helo=f"discard-{st}.test")
        queued_id(r)
        c.close()
    c, r = session_to(srv, "queue", helo="quar.test")
    qid = queued_id(r)
    c.close()
    helpers.wait_for(lambda: qid in srv.spool_files("quarantine"),
                     timeout=5, msg="the quarantined message")
    deliver(srv, helo="plain.test", msg=message(subject="plain"))
    files = srv.read_mail("alice")
    assert len(files) == 1 and b"Subject: plain" in files[0], files
    assert srv.run_log().count("event=discarded") == 3


def test_disconnect_stage_is_called_and_verdict_ignored(make_server, dns):
    rules = [{"stage": "disconnect", "verdict": "reject"}]
    srv = start(make_server, dns, [probe(rules)])
    deliver(srv)
    helpers.wait_for(lambda: 'text="probe=p stage=disconnect"' in
                     srv.run_log(), timeout=5, msg="the disconnect hook")


def test_entry_stages_restrict_the_hooks(make_server, dns):
    """`stages: [mail]` on the entry: the plugin's rcpt rule never runs."""
    rules = [{"stage": "rcpt", "verdict": "reject"},
             {"stage": "mail", "when": {"helo": "no.test"},
              "verdict": "reject"}]
    srv = start(make_server, dns, [probe(rules, stages=["mail"])])
    c, r = session_to(srv, "rcpt")
    check(r, 250, "2.1.5")
    c.close()
    c, r = session_to(srv, "mail", helo="no.test")
    check(r, 550, "5.7.1")
    c.close()
    assert "stage=rcpt" not in srv.run_log()


# -- async ----------------------------------------------------------------------

def test_async_delay_and_early_resume(make_server, dns):
    """A timer on host->event_base() then resume(): the reply waits for
    it; resume() before returning SUSPENDED works too."""
    rules = [
        {"stage": "rcpt", "when": {"helo": "slow.test"}, "delay": 400,
         "verdict": "reject", "text": "decided later"},
        {"stage": "mail", "when": {"helo": "early.test"}, "early": True,
         "verdict": "tempfail", "text": "early bird"},
        {"stage": "message", "when": {"helo": "slowmsg.test"}, "delay": 200,
         "header_add": {"X-Async": "added after a timer"}},
    ]
    srv = start(make_server, dns, [probe(rules)])
    c, r = session_to(srv, "mail", helo="slow.test")
    t0 = time.monotonic()
    r = c.cmd("RCPT TO:<alice@example.test>")
    assert time.monotonic() - t0 >= 0.35
    assert r == (550, "5.7.1 decided later"), r
    assert c.cmd("NOOP")[0] == 250
    c.close()
    c, r = session_to(srv, "mail", helo="early.test")
    assert r == (450, "4.7.1 early bird"), r
    c.close()
    text = deliver(srv, helo="slowmsg.test")
    assert header(text, "X-Async") == ["added after a timer"]


def test_suspended_calls_do_not_block_other_sessions(make_server, dns):
    """Eight sessions each wait 600 ms at RCPT at the same time: the
    waits overlap (two workers would need 2.4 s if a wait blocked one)."""
    rules = [{"stage": "rcpt", "delay": 600}]
    srv = start(make_server, dns, [probe(rules)])
    clients = [session_to(srv, "mail", source=f"127.0.0.{60 + i}")[0]
               for i in range(8)]
    t0 = time.monotonic()
    for c in clients:
        c.send("RCPT TO:<alice@example.test>\r\n")
    for c in clients:
        check(c.reply(), 250, "2.1.5")
        c.close()
    assert time.monotonic() - t0 < 1.8


def test_pipelined_commands_wait_for_a_suspended_call(make_server, dns):
    """Commands pipelined behind a suspended RCPT stay buffered and are
    answered in order once it resumes."""
    rules = [{"stage": "rcpt", "delay": 300}]
    srv = start(make_server, dns, [probe(rules)])
    c, r = session_to(srv, "mail")
    c.send("RCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
           "DATA\r\n")
    check(c.reply(), 250, "2.1.5")
    check(c.reply(), 250, "2.1.5")
    check(c.reply(), 354)
    c.send(message() + ".\r\n")
    queued_id(c.reply())
    c.close()
    srv.wait_mail("bob")


def test_client_leaves_while_a_call_is_suspended(make_server, dns):
    """The client disconnects during a delayed and during a hanging call:
    the calls end (resume, timeout) against a dead session safely."""
    rules = [{"stage": "rcpt", "when": {"helo": "delay.test"}, "delay": 300,
              "verdict": "reject"},
             {"stage": "rcpt", "when": {"helo": "hang.test"}, "hang": True}]
    srv = start(make_server, dns, [probe(rules, timeout="1s")])
    for helo in ("delay.test", "hang.test"):
        c, r = session_to(srv, "mail", helo=helo)
        c.send("RCPT TO:<alice@example.test>\r\n")
        c.close()
    helpers.wait_for(lambda: "event=filter-error" in srv.run_log(),
                     timeout=3, msg="the hanging call's timeout")
    helpers.wait_for(lambda: srv.run_log().count("event=disconnect") >= 3,
                     timeout=3, msg="both sessions ended")
    deliver(srv)


@pytest.mark.parametrize("on_error,want", [
    ("tempfail", (450, TEMP)),
    ("reject", (550, "5.7.1 Recipient address rejected by policy")),
    ("continue", (250, "2.1.5 Ok")),
])
def test_timeout_applies_on_error(make_server, dns, on_error, want):
    """A call that never resumes (or resumes after the entry's timeout) is
    cancelled at `timeout: 1s` and gets the entry's on_error verdict; the
    plugin saw cancel() (reported in X-Probe-Cancels)."""
    rules = [{"stage": "rcpt", "when": {"helo": "hang.test"}, "hang": True},
             {"stage": "rcpt", "when": {"helo": "late.test"}, "delay": 3000,
              "verdict": "reject"},
             {"stage": "message", "cancel_header": True}]
    srv = start(make_server, dns, [probe(rules, timeout="1s",
                                         on_error=on_error)])
    for i, helo in enumerate(("hang.test", "late.test")):
        t0 = time.monotonic()
        c, r = session_to(srv, "rcpt", helo=helo)
        took = time.monotonic() - t0
        assert r == want, (helo, r)
        assert 0.9 <= took < 3.0, took
        c.close()
        helpers.wait_for(lambda: srv.run_log().count(
            "event=filter-error") == i + 1, timeout=3, msg="the error log")
    assert "reason=timeout" in srv.run_log()
    text = deliver(srv)
    assert header(text, "X-Probe-Cancels") == ["2"]


# -- message stage changes, tags, KV --------------------------------------------

def test_message_changes_reach_the_mailbox(make_server, dns):
    """Every change of the message stage is in the delivered file: headers
    added, inserted, changed, deleted; the body replaced (bare LFs made
    CRLF, a final line end added); sender and recipients changed."""
    rules = [{"stage": "message",
              "header_add": {"X-Added": "one two"},
              "header_insert": {"X-First": "at the top"},
              "header_change": {"Subject": "Changed subject"},
              "header_delete": ["X-Remove"],
              "body": "Replaced body@LF@second line",
              "sender": "new-sender@remote.test",
              "rcpt_add": ["bob@example.test"],
              "rcpt_delete": ["alice@example.test"]}]
    srv = make_server({"pipeline": [probe(rules)], "dns": dns_conf(dns)},
                      start=False)
    with open(srv.cfg_path) as f:       # conftest.render has no escapes
        text = f.read().replace("@LF@", "\\n")
    with open(srv.cfg_path, "w") as f:
        f.write(text)
    srv.start()
    c, r = session_to(srv, "queue", msg=message(
        subject="original", body="old body\r\n", extra="X-Remove: me\r\n"))
    queued_id(r)
    c.close()
    [data] = srv.wait_mail("bob")
    text = data.decode()
    headers, body = split_headers(data)
    assert header(text, "X-Added") == ["one two"]
    assert header(text, "Subject") == ["Changed subject"]
    assert header(text, "X-Remove") == []
    assert header(text, "Return-Path") == ["<new-sender@remote.test>"]
    assert body == "Replaced body\nsecond line\n", body
    names = [h.split(":", 1)[0] for h in headers]
    assert names.index("X-First") < names.index("From"), names
    assert not srv.maildir_files("alice")


def test_modifications_refused_outside_the_message_stage(make_server, dns):
    rules = [{"stage": "rcpt", "try_modify": True},
             {"stage": "message", "try_modify": True,
              "tag_headers": ["probe.rcpt.modify", "probe.message.modify"]}]
    srv = start(make_server, dns, [probe(rules)])
    text = deliver(srv)
    assert header(text, "X-Tag-probe.rcpt.modify") == ["-1"]
    assert header(text, "X-Tag-probe.message.modify") == ["0"]
    assert header(text, "X-Probe-Try") == ["1"]


def test_reading_facts_and_the_message(make_server, dns):
    """host->get(), header_count/header_at/header (RFC 2047 decoded),
    message() (CRLF), rcpt_count/rcpt_addr."""
    rules = [
        {"stage": "helo", "record": ["helo", "client.addr", "listener",
                                     "client.rdns", "qid"]},
        {"stage": "mail", "record": ["sender", "qid"]},
        {"stage": "rcpt", "record": ["rcpt"]},
        {"stage": "message", "inspect": True,
         "tag_headers": ["probe.helo.helo", "probe.helo.client.addr",
                         "probe.helo.listener", "probe.helo.client.rdns",
                         "probe.helo.qid", "probe.mail.sender",
                         "probe.rcpt.rcpt"]},
    ]
    srv = start(make_server, dns, [probe(rules)])
    msg = ("From: <sender@remote.test>\r\nTo: <alice@example.test>\r\n"
           "Subject: =?UTF-8?Q?hello_world?=\r\n\r\nbody\r\n")
    text = deliver(srv, helo="facts.test", msg=msg,
                   rcpts=("alice@example.test", "bob@example.test"))
    tag = lambda k: header(text, "X-Tag-" + k)  # noqa: E731
    assert tag("probe.helo.helo") == ["facts.test"]
    assert tag("probe.helo.client.addr") == ["127.0.0.1"]
    assert tag("probe.helo.listener") == ["mx"]
    assert tag("probe.helo.client.rdns") == ["unknown"]
    assert tag("probe.helo.qid") == ["(null)"]
    assert tag("probe.mail.sender") == ["sender@remote.test"]
    assert tag("probe.rcpt.rcpt") == ["bob@example.test"]
    [insp] = header(text, "X-Probe-Inspect")
    m = re.fullmatch(r"headers=(\d+) first=(\S+) subject=hello world "
                     r"len=(\d+) crlf=1 rcpts=alice@example.test,"
                     r"bob@example.test sender=sender@remote.test "
                     r"size=(\d+)", insp)
    assert m, insp
    assert m.group(3) == m.group(4) and int(m.group(3)) >= len(msg), insp
    assert int(m.group(1)) >= 3


def test_tags_across_stages_filters_and_transactions(make_server, dns):
    """Session tags live for the connection; transaction tags until the
    message is done; a later filter sees an earlier one's tags."""
    p1 = probe([
        {"stage": "connect", "tags": {"seen.connect": "yes"}},
        {"stage": "mail", "when": {"sender": "first@remote.test"},
         "tags": {"tx.only": "first tx"}},
        {"stage": "rcpt", "scope": "session", "tags": {"from.p1": "rcpt"}},
    ], name="p1")
    p2 = probe([{"stage": "message", "tag_headers": [
        "seen.connect", "tx.only", "from.p1"]}], name="p2")
    srv = start(make_server, dns, [p1, p2])
    c, r = session_to(srv, "queue", sender="first@remote.test")
    queued_id(r)
    check(c.cmd("MAIL FROM:<second@remote.test>"), 250)
    check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    check(c.cmd("DATA"), 354)
    c.send(message(subject="second") + ".\r\n")
    queued_id(c.reply())
    c.close()
    mails = [m.decode() for m in srv.wait_mail("alice", 2)]
    first = [m for m in mails if "Subject: test" in m][0]
    second = [m for m in mails if "Subject: second" in m][0]
    assert header(first, "X-Tag-seen.connect") == ["yes"]
    assert header(first, "X-Tag-tx.only") == ["first tx"]
    assert header(first, "X-Tag-from.p1") == ["rcpt"]
    assert header(second, "X-Tag-seen.connect") == ["yes"]
    assert header(second, "X-Tag-tx.only") == ["(none)"]


def test_kv_store_shared_between_sessions(make_server, dns):
    rules = [{"stage": "mail", "kv_set": {"color": "blue"}},
             {"stage": "message", "kv_incr": ["hits"], "kv_get": ["color",
                                                                 "nokey"],
              "tag_headers": ["kv.hits", "kv.color", "kv.nokey"]}]
    srv = start(make_server, dns, [probe(rules)])
    one = deliver(srv)
    two = deliver(srv, source="127.0.0.9")
    assert header(one, "X-Tag-kv.hits") == ["1"]
    assert header(two, "X-Tag-kv.hits") == ["2"]
    assert header(two, "X-Tag-kv.color") == ["blue"]
    assert header(two, "X-Tag-kv.nokey") == ["(null)"]


# -- load failures ----------------------------------------------------------------

def block_config(srv, entry_lines):
    """Write srv's config with a block-style pipeline of one entry; the
    (line, col) where the entry starts."""
    cfg = dict(srv.cfg)
    cfg.pop("pipeline", None)
    text = render(cfg)
    line = text.count("\n") + 2
    text += "pipeline:\n  - " + "\n    ".join(entry_lines) + "\n"
    with open(srv.cfg_path, "w") as f:
        f.write(text)
    return line, 5


def check_config(srv):
    p = subprocess.run([SLUICED, "-t", "-c", srv.cfg_path],
                       capture_output=True, text=True, timeout=10)
    return p.returncode, p.stdout + p.stderr


def start_fails(srv):
    """Start: it must exit non-zero within 5 s; its log."""
    srv.start(wait=False)
    try:
        rc = srv.proc.wait(5)
    except subprocess.TimeoutExpired:
        srv.stop()
        raise AssertionError("sluiced started despite a broken plugin")
    srv.expect_dead = True
    assert rc != 0
    return srv.run_log()


LOAD_FAILURES = [
    ("bad_abi", lambda: tplugin("bad_abi"), [],
     "built for plugin ABI 999, this sluiced has ABI 1"),
    ("no_symbol", lambda: tplugin("no_symbol"), [],
     "no 'sluice_plugin' descriptor: not a sluice plugin"),
    ("missing", lambda: "/nonexistent/dir/gone.so", [],
     "cannot load: /nonexistent/dir/gone.so"),
    ("init_fail", lambda: tplugin("init_fail"),
     ["args: {reason: disk on fire}"],
     "init failed: init_fail: refusing to start (disk on fire)"),
]


@pytest.mark.parametrize("kind,path,extra,reason", LOAD_FAILURES,
                         ids=[f[0] for f in LOAD_FAILURES])
def test_plugin_load_failure_stops_start(make_server, kind, path, extra,
                                         reason):
    srv = make_server(start=False)
    p = path()
    line, col = block_config(srv, [f"plugin: {p}"] + extra)
    want = f"{srv.cfg_path}:{line}:{col}: plugin {p}: {reason}"
    rc, out = check_config(srv)
    assert rc == 1 and want in out, (want, out)
    log = start_fails(srv)
    assert want in log, (want, log)
    assert "fini called" not in log + out


def test_plugin_found_in_plugin_dir(make_server, dns):
    """A name without '/' is <plugin_dir>/<name>.so; a missing one is
    reported with the path tried."""
    srv = start(make_server, dns, [{"plugin": "probe", "args": {"rules": [
        {"stage": "helo", "verdict": "reject", "text": "by name"}]}}],
        plugin_dir=TEST_PLUGINS)
    c, r = session_to(srv, "helo")
    assert r == (550, "5.7.1 by name")
    c.close()
    bad = make_server({"pipeline": [{"plugin": "nosuchplugin"}],
                       "plugin_dir": TEST_PLUGINS}, start=False)
    rc, out = check_config(bad)
    assert rc == 1 and f"plugin {TEST_PLUGINS}/nosuchplugin.so: cannot " \
        "load" in out, out


BAD_ARGS = [
    ("ratelimit", "{window: 0, connections_per_ip: 1}",
     "ratelimit: 'window' must be a positive duration"),
    ("ratelimit", "{window: 5x, connections_per_ip: 1}",
     "ratelimit: 'window' must be a positive duration"),
    ("ratelimit", "{window: 60}", "ratelimit: no limit set"),
    ("ratelimit", "{connections_per_ip: -3}",
     "ratelimit: 'connections_per_ip' must be a positive integer"),
    ("ratelimit", "{connections_per_ip: 3, exempt: [10.0.0.0/33]}",
     "ratelimit: 'exempt': '10.0.0.0/33' is not a network"),
    ("ratelimit", "{conections_per_ip: 3}",
     "ratelimit: unknown argument 'conections_per_ip'"),
    ("dnsbl", "{reject_score: 1}", "dnsbl: 'zones' must be a non-empty list"),
    ("dnsbl", "{zones: [bad..zone]}", "dnsbl: each of 'zones' needs a zone"),
    ("dnsbl", "{zones: [{zone: a.test, weight: heavy}]}",
     "dnsbl: zone a.test: 'weight' must be an integer"),
    ("dnsbl", "{zones: [{zone: a.test, codes: [127.0.0.256]}]}",
     "dnsbl: zone a.test: code '127.0.0.256' is not an IPv4 address"),
    ("dnsbl", "{zones: [a.test], stage: data}",
     "dnsbl: 'stage' must be connect or rcpt"),
]


def test_bad_plugin_args_are_reported(make_server):
    srv = make_server(start=False)
    errors = []
    for name, args, want in BAD_ARGS:
        line, col = block_config(srv, [f"plugin: {splugin(name)}",
                                       f"args: {args}"])
        rc, out = check_config(srv)
        full = f":{line}:{col}: plugin {splugin(name)}: init failed: {want}"
        if rc != 1 or full not in out:
            errors.append(f"{args}: {out.strip()!r}, want {full!r}")
    assert not errors, "\n".join(errors)


def test_stages_the_plugin_does_not_serve(make_server):
    srv = make_server({"pipeline": [{"plugin": splugin("ratelimit"),
                                     "args": {"connections_per_ip": 5},
                                     "stages": ["helo"]}]}, start=False)
    rc, out = check_config(srv)
    assert rc == 1 and "'stages' asks for stages the plugin does not " \
        "serve" in out, out


def test_good_plugin_args_pass_the_check(make_server):
    srv = make_server({"pipeline": [
        {"plugin": splugin("ratelimit"), "args": {
            "window": "1h", "messages_per_sender": 5, "ipv6_prefix": 48,
            "exempt": ["10.0.0.0/8", "2001:db8::/32", "::ffff:192.0.2.0/120",
                       "192.0.2.7"], "prefix": "mx1"}},
        {"plugin": splugin("dnsbl"), "args": {
            "zones": [{"zone": "zen.example", "weight": 2,
                       "codes": ["127.0.0.2", "127.0.0.3"]},
                      "bl.example", {"zone": "wl.example", "weight": -5}],
            "reject_score": 2, "tag_score": 1, "stage": "rcpt"}}]},
        start=False)
    rc, out = check_config(srv)
    assert rc == 0 and "configuration ok" in out, out


def test_stop_with_a_call_suspended(make_server, dns):
    """SIGTERM while a plugin call hangs: the server still exits 0 within
    5 s (the fixture checks; under ASan, without leaks)."""
    rules = [{"stage": "rcpt", "when": {"helo": "hang.test"}, "hang": True},
             {"stage": "rcpt", "when": {"helo": "late.test"}, "delay": 20000}]
    srv = start(make_server, dns, [probe(rules, timeout="30s")])
    clients = []
    for helo in ("hang.test", "late.test"):
        c, r = session_to(srv, "mail", helo=helo)
        c.send("RCPT TO:<alice@example.test>\r\n")
        clients.append(c)
    helpers.wait_for(lambda: srv.run_log().count("stage=rcpt") == 2,
                     timeout=3, msg="both calls suspended")
    assert srv.stop() == 0, srv.run_log()[-3000:]
