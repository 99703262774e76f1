"""Lua filters: every verdict at every SMTP stage, with the exact replies
(core/filter.c verdict_reply: the stage's defaults, a filter's own code
and enhanced code only when they have the verdict's class), the three
calling forms of the verdict constructors, and the pipeline order (the
first decisive verdict wins, accept ends the chain)."""
import os

import pytest

import helpers
from test_lua_support import (ModuleServer, delivered, lua_server,
                              new_message, as_bytes, dot_stuffed, sentinel,
                              mail_with, header_values, no_dns)
from conftest import REPO

VERDICTS = os.path.join(REPO, "tests", "data", "lua", "verdicts.lua")
TEMP = "Temporarily rejected by policy, try again later"

# default replies per stage (reject, tempfail)
DEFAULTS = {
    "helo": ("550 5.7.1 Rejected by policy", f"451 4.7.1 {TEMP}"),
    "mail": ("550 5.7.1 Sender address rejected by policy",
             f"450 4.7.1 {TEMP}"),
    "rcpt": ("550 5.7.1 Recipient address rejected by policy",
             f"450 4.7.1 {TEMP}"),
    "data": ("554 5.7.1 Message rejected by policy", f"451 4.7.1 {TEMP}"),
    "message": ("554 5.7.1 Message rejected by policy", f"451 4.7.1 {TEMP}"),
    "queue": ("554 5.7.1 Message rejected by policy", f"451 4.7.1 {TEMP}"),
}
STAGES = list(DEFAULTS)
# the step whose reply carries the stage's verdict
STEP = {"helo": "helo", "mail": "mail", "rcpt": "rcpt", "data": "data",
        "message": "dot", "queue": "dot"}


def expected(stage, kind, form):
    rej, tmp = DEFAULTS[stage]
    if kind == "disconnect":
        return ("421 4.3.2 disconnect by code form" if form == "c"
                else "421 4.7.0 Closing connection")
    base = rej if kind == "reject" else tmp
    code, enh, text = base.split(" ", 2)
    if form in ("d", "s"):
        return base
    if form == "t":
        return f"{code} {enh} {kind} by text form"
    if form == "c":
        return ("553 5.7.26 reject by code form" if kind == "reject"
                else "452 4.2.2 tempfail by code form")
    if form == "x":
        return ("553 5.7.26 reject by table form" if kind == "reject"
                else "452 4.2.2 tempfail by table form")
    if form == "w":
        return f"{code} {enh} {kind} with a wrong class"
    if form == "z":
        return f"{code} {enh} {kind} out of range"
    raise AssertionError(form)


@pytest.fixture(scope="module")
def vserver(tmp_path_factory):
    ms = ModuleServer(tmp_path_factory, [{"lua": VERDICTS}], name="verdicts")
    yield ms.server
    ms.close()


def fmt(reply):
    return f"{reply[0]} {reply[1]}"


def run_tx(c, sender, helo="client.example.test", msg=None):
    """EHLO, MAIL, RCPT, DATA, message: (step, reply) of the first reply
    that is not the usual success, or ("done", final reply)."""
    r = c.cmd(f"EHLO {helo}")
    if r[0] != 250:
        return "helo", r
    r = c.cmd(f"MAIL FROM:<{sender}>")
    if r[0] != 250:
        return "mail", r
    r = c.cmd("RCPT TO:<alice@example.test>")
    if r[0] != 250:
        return "rcpt", r
    r = c.cmd("DATA")
    if r[0] != 354:
        return "data", r
    msg = msg or new_message()
    c.send(dot_stuffed(as_bytes(msg)))
    r = c.reply()
    if r[0] != 250:
        return "dot", r
    return "done", r


def instruction(stage, kind, form):
    return f"v-{stage}-{kind}-{form}"


def sender_helo(stage, kind, form):
    ins = instruction(stage, kind, form)
    if stage == "helo":
        return "sender@remote.test", ins + ".test"
    return ins + "@remote.test", "client.example.test"


def still_serves(server, c, after_helo_refused=False):
    """The same session runs a normal transaction afterwards."""
    helpers.check(c.cmd("RSET"), 250)
    if after_helo_refused:
        helpers.check(c.cmd("MAIL FROM:<sender@remote.test>"), 503)
    step, r = run_tx(c, "sender@remote.test")
    assert step == "done", (step, r)
    helpers.queued_id(r)


REFUSALS = [("reject", f) for f in "dtcxwzs"] + \
    [("tempfail", f) for f in "dtcxwz"]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("kind,form", REFUSALS)
def test_refusal_reply_and_session_goes_on(vserver, stage, kind, form):
    sender, helo = sender_helo(stage, kind, form)
    with vserver.raw() as c:
        step, r = run_tx(c, sender, helo)
        assert step == STEP[stage], (step, r)
        assert fmt(r) == expected(stage, kind, form)
        still_serves(vserver, c, after_helo_refused=(stage == "helo"))


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("form", "dc")
def test_disconnect_closes(vserver, stage, form):
    sender, helo = sender_helo(stage, "disconnect", form)
    with vserver.raw() as c:
        step, r = run_tx(c, sender, helo)
        assert step == STEP[stage], (step, r)
        assert fmt(r) == expected(stage, "disconnect", form)
        assert c.closed(timeout=3)


@pytest.mark.parametrize("stage", STAGES)
def test_accept_delivers(vserver, stage):
    sender, helo = sender_helo(stage, "accept", "d")
    m = new_message()
    with vserver.raw() as c:
        step, r = run_tx(c, sender, helo, msg=m)
        assert step == "done", (step, r)
        helpers.queued_id(r)
    mail_with(vserver, "alice", m["Subject"])


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data", "message",
                                   "queue"])
@pytest.mark.parametrize("kind", ["discard", "quarantine"])
def test_discard_and_quarantine_say_250(vserver, stage, kind):
    sender, helo = sender_helo(stage, kind, "d")
    m = new_message()
    with vserver.raw() as c:
        step, r = run_tx(c, sender, helo, msg=m)
        assert step == "done", (step, r)
        qid = helpers.queued_id(r)
        helpers.check(c.cmd("RSET"), 250)
        sentinel(vserver, client=c)      # later mail is delivered ...
    assert not delivered(vserver, "alice", m["Subject"])   # ... not this
    log = vserver.run_log()
    if kind == "discard":
        assert f"qid={qid} " in log and "event=discarded" in log
        assert qid not in vserver.spool_files("quarantine")
    else:
        assert qid in vserver.spool_files("quarantine")
        with open(os.path.join(vserver.spool, "quarantine", qid), "rb") as f:
            assert m["Subject"].encode() in f.read()


@pytest.mark.parametrize("kind,form,banner", [
    ("reject", "d", "554 5.7.1 Access denied"),
    ("reject", "c", "553 5.7.26 reject by code form"),
    ("tempfail", "d", f"421 4.7.1 {TEMP}"),
    # a 4xx at connect can only be 421: the code is forced, the rest kept
    ("tempfail", "c", "421 4.2.2 tempfail by code form"),
    ("disconnect", "d", "421 4.7.0 Closing connection"),
])
def test_connect_refusal(make_server, tmp_path, kind, form, banner):
    s = make_server({"pipeline": [{"lua": VERDICTS,
                                   "args": {"connect": f"{kind}-{form}"}}],
                     "dns": no_dns()}, start=False)
    s.start(wait=False)
    # the readiness probe of Server.start expects a banner: poll ourselves
    helpers.wait_for(lambda: "event=listening" in s.run_log(), timeout=5)
    with s.raw(greet=False) as c:
        assert fmt(c.reply()) == banner
        assert c.closed(timeout=3)
    assert s.alive()


def test_connect_accept_greets(make_server):
    s = make_server({"pipeline": [{"lua": VERDICTS,
                                   "args": {"connect": "accept-d"}}],
                     "dns": no_dns()})
    with s.raw() as c:
        step, r = run_tx(c, "sender@remote.test")
        assert step == "done", (step, r)


# -- the pipeline: order, first decisive verdict, accept -----------------

FIRST = """
local f = {}
function f.rcpt(ctx)
  local l = ctx.sender:match("^(%w+)@")
  if l == "acc" then return accept() end
  if l == "rej" then return reject(550, "5.7.1", "first says no") end
end
function f.message(ctx)
  ctx:add_header("X-First", "was here")
end
return f
"""
SECOND = """
local f = {}
function f.rcpt(ctx)
  return reject(550, "5.7.1", "second says no")
end
function f.message(ctx)
  -- sees what the first filter changed
  ctx:add_header("X-Second-Saw", ctx:header("X-First") or "nothing")
end
return f
"""


def test_pipeline_order_first_decisive_wins(make_server, tmp_path):
    s = lua_server(make_server, tmp_path, {"lua": FIRST}, {"lua": SECOND})
    with s.raw() as c:
        helpers.ehlo(c)
        # first continues: the second decides
        helpers.check(c.cmd("MAIL FROM:<other@remote.test>"), 250)
        assert fmt(c.cmd("RCPT TO:<alice@example.test>")) == \
            "550 5.7.1 second says no"
        helpers.check(c.cmd("RSET"), 250)
        # first rejects: the second is not asked
        helpers.check(c.cmd("MAIL FROM:<rej@remote.test>"), 250)
        assert fmt(c.cmd("RCPT TO:<alice@example.test>")) == \
            "550 5.7.1 first says no"
        helpers.check(c.cmd("RSET"), 250)
        # first accepts: the stage is decided, the second is skipped
        m = new_message()
        helpers.check(c.cmd("MAIL FROM:<acc@remote.test>"), 250)
        helpers.check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        helpers.check(c.cmd("DATA"), 354)
        c.send(dot_stuffed(as_bytes(m)))
        helpers.queued_id(c.reply())
    data = mail_with(s, "alice", m["Subject"])
    assert header_values(data, "X-First") == ["was here"]
    assert header_values(data, "X-Second-Saw") == ["was here"]
    assert "filter=lua:f" in s.run_log()   # decisions logged by name


def test_disconnect_stage_runs_and_its_verdict_is_ignored(make_server,
                                                          tmp_path):
    script = """
    return { disconnect = function(ctx)
      log.info("bye from", ctx.session_id, ctx.stage)
      return reject("ignored")
    end }
    """
    s = lua_server(make_server, tmp_path, {"lua": script})
    before = s.run_log().count("bye from")
    with s.raw() as c:
        helpers.ehlo(c)
        helpers.check(c.cmd("QUIT"), 221)
    helpers.wait_for(lambda: s.run_log().count("bye from") > before,
                     timeout=5, msg="the disconnect hook's log line")
    line = [l for l in s.run_log().splitlines() if "bye from" in l][-1]
    assert line.rstrip().endswith(' disconnect"'), line
