"""Lua filters that fail: a runtime error, a runaway loop (instruction
budget), unbounded allocation (memory cap), a hook that outlives its
timeout, a bad return value. Each gets the entry's on_error verdict
(default tempfail) for that transaction only; the session and the server
go on. Scripts that cannot load stop the start (and `sluiced -t`) with a
message naming the file. The sandbox hides io, os, debug, package,
require, dofile, loadfile and string.dump; load() takes text only."""
import os
import time

import pytest

import helpers
from test_lua_support import (lua_server, new_message, send, mail_with,
                              header_values, check_t, script_file, wait_log)

TEMPFAIL = (451, "4.7.1 Temporarily rejected by policy, try again later")

# each hook misbehaves only for messages whose subject asks for it
FAILING = r"""
local keep = {}
local f = {}
function f.message(ctx)
  local s = ctx:header("Subject")
  if s == "error" then
    error("boom from the script")
  elseif s == "loop" then
    while true do end
  elseif s == "alloc" then
    local t = {}
    for i = 1, 1e9 do t[i] = string.rep("x", 1024) .. i end
  elseif s == "sleep" then
    sleep(30)
  elseif s == "badreturn" then
    return 42
  elseif s == "plaintable" then
    return { verdict = "reject" }      -- not from a constructor
  elseif s == "yield" then
    coroutine.yield()
  elseif s == "oldctx" then
    return keep.ctx:header("Subject")  -- a ctx from an earlier call
  end
  keep.ctx = ctx
  ctx:add_header("X-Survived", s)
end
return f
"""

FAILURES = {
    "error": "boom from the script",
    "loop": "instruction budget exceeded",
    "alloc": "not enough memory",
    "sleep": "reason=timeout",
    "badreturn": "the hook returned number, not a verdict",
    "plaintable": "the hook returned table, not a verdict",
    "yield": "yielded outside a host call",
    "oldctx": "ctx used after its hook call ended",
}


@pytest.fixture
def failing(make_server, tmp_path):
    return lua_server(make_server, tmp_path,
                      {"lua": FAILING, "budget": 200000, "memory": "2M",
                       "timeout": "1s", "name": "failing"})


@pytest.mark.parametrize("what", list(FAILURES))
def test_failure_tempfails_that_transaction_only(failing, what):
    s = failing
    with s.raw() as c:
        helpers.ehlo(c)
        if what == "oldctx":        # leave a ctx behind first
            helpers.queued_id(send(s, new_message(subject="first"),
                                   client=c))
        t0 = time.monotonic()
        assert send(s, new_message(subject=what), client=c) == TEMPFAIL
        elapsed = time.monotonic() - t0
        assert elapsed < (3.0 if what == "sleep" else 1.5), elapsed
        if what == "sleep":
            assert elapsed >= 0.9           # timeout: 1s
        # the next transaction on the same session works
        ok = new_message(subject="fine")
        helpers.queued_id(send(s, ok, client=c))
    data = mail_with(s, "alice", ok["Message-ID"])
    assert header_values(data, "X-Survived") == ["fine"]
    wait_log(s, "event=filter-error stage=message filter=failing")
    line = [l for l in s.run_log().splitlines()
            if "event=filter-error" in l][-1]
    assert FAILURES[what] in line, line
    assert "action=tempfail" in line and "qid=" in line
    assert "qid=- " not in line


def test_memory_of_failed_calls_is_given_back(failing):
    """Many failed allocations in a row: each call starts with its full
    memory allowance (the cap is per call, not cumulative)."""
    s = failing
    with s.raw() as c:
        helpers.ehlo(c)
        for _ in range(5):
            assert send(s, new_message(subject="alloc"), client=c) == TEMPFAIL
        helpers.queued_id(send(s, new_message(subject="fine"), client=c))


@pytest.mark.parametrize("on_error,reply", [
    ("reject", (554, "5.7.1 Message rejected by policy")),
    ("continue", None),
    ("discard", None),
])
def test_on_error_choice(make_server, tmp_path, on_error, reply):
    s = lua_server(make_server, tmp_path,
                   {"lua": FAILING, "on_error": on_error})
    m = new_message(subject="error")
    r = send(s, m)
    if reply:
        assert r == reply
        return
    helpers.queued_id(r)
    if on_error == "continue":
        mail_with(s, "alice", m["Message-ID"])
    else:
        wait_log(s, "event=discarded")
        assert s.read_mail("alice") == []


def test_error_at_rcpt_stage_is_450(make_server, tmp_path):
    script = """
    return { rcpt = function(ctx)
      if ctx.rcpt:match("^bob") then error("no bob today") end
    end }
    """
    s = lua_server(make_server, tmp_path, {"lua": script})
    with s.raw() as c:
        helpers.ehlo(c)
        helpers.check(c.cmd("MAIL FROM:<a@remote.test>"), 250)
        assert c.cmd("RCPT TO:<bob@example.test>") == (
            450, "4.7.1 Temporarily rejected by policy, try again later")
        helpers.check(c.cmd("RCPT TO:<alice@example.test>"), 250)


# -- scripts that cannot start -------------------------------------------

BAD_SCRIPTS = {
    "syntax": ("local f = {\nfunction f.message(ctx) end\nreturn f\n",
               "expected"),
    "no-table": ("return 42\n", "must return a table of stage functions "
                                "(got number)"),
    "nothing": ("local x = 1\n", "must return a table of stage functions "
                                 "(got nil)"),
    "empty-table": ("return {}\n", "has no stage functions"),
    "bad-stage": ("return { mesage = function() end }\n",
                  "'mesage' is not a stage name"),
    "load-error": ("error('cannot start like this')\n",
                   "cannot start like this"),
    "load-loop": ("while true do end\n", "instruction budget exceeded"),
}


@pytest.mark.parametrize("what", list(BAD_SCRIPTS))
def test_bad_script_stops_start_and_check(make_server, tmp_path, what):
    source, why = BAD_SCRIPTS[what]
    path = script_file(tmp_path, source, name=f"bad-{what}.lua")
    rc, out = check_t(path, tmp_path)
    assert rc != 0 and "configuration ok" not in out
    assert path in out and why in out, out
    s = make_server({"pipeline": [{"lua": path, "budget": 100000}]},
                    start=False)
    s.start(wait=False)
    s.expect_dead = True
    s.proc.wait(5)
    assert s.proc.returncode != 0
    assert path in s.log() and why in s.log(), s.log()


def test_stages_naming_a_missing_function(tmp_path):
    path = script_file(tmp_path, "return { rcpt = function() end }\n",
                       name="rcpt-only.lua")
    rc, out = check_t(path, tmp_path, {"stages": ["message"]})
    assert rc != 0 and path in out and "stages" in out, out


def test_missing_script_file(tmp_path):
    path = os.path.join(str(tmp_path), "does-not-exist.lua")
    rc, out = check_t(path, tmp_path)
    assert rc != 0 and path in out, out


# -- sandbox ----------------------------------------------------------------

SANDBOX = r"""
local function probe()
  local out = {}
  for _, name in ipairs({ "io", "os", "debug", "package", "require",
      "dofile", "loadfile", "collectgarbage" }) do
    out[#out + 1] = name .. "=" .. type(_G[name])
  end
  out[#out + 1] = "string.dump=" .. type(string.dump)
  -- load: text yes, binary no (whatever the mode asked)
  local fn = load("return 6 * 7")
  out[#out + 1] = "text=" .. tostring(fn and fn())
  local bin = "\27Lua\84\0\25\147\13\10\26\10\4\8\8\120\86\0\0\0\0\0\0\0\0\0\0\0\40\119\64\1"
  local ok, err = pcall(load, bin, "x", "b")
  out[#out + 1] = "mode_b=" .. tostring(ok) .. ":" .. tostring(err):gsub(" ", "_")
  ok, err = pcall(load, bin, "x", "bt")
  out[#out + 1] = "mode_bt=" .. tostring(ok)
  local f2, err2 = load(bin)
  out[#out + 1] = "default=" .. tostring(f2) .. ":" .. tostring(err2):match("binary") 
  local env = { x = 5 }
  local f3 = load("return x", "env", "t", env)
  out[#out + 1] = "env=" .. tostring(f3 and f3())
  return table.concat(out, " ")
end
return { message = function(ctx) ctx:add_header("X-Sandbox", probe()) end }
"""


def test_sandbox(make_server, tmp_path):
    s = lua_server(make_server, tmp_path, {"lua": SANDBOX})
    m = new_message()
    helpers.queued_id(send(s, m))
    data = mail_with(s, "alice", m["Subject"])
    got = dict(kv.split("=", 1) for kv in
               header_values(data, "X-Sandbox")[0].split(" "))
    for name in ("io", "os", "debug", "package", "require", "dofile",
                 "loadfile", "string.dump"):
        assert got[name] == "nil", (name, got)
    assert got["text"] == "42"
    assert got["mode_b"].startswith("false:") and "text" in got["mode_b"]
    assert got["mode_bt"] == "false"
    assert got["default"] == "nil:binary"
    assert got["env"] == "5"


# -- runaway scripts ----------------------------------------------------------

HANGS = {
    # the budget error is an ordinary error: pcall catches it every time
    "pcall": "while true do pcall(function() while true do end end) end",
    # __gc metamethods run with hooks off (lgc.c GCTM): no budget at all
    "gc": "setmetatable({}, { __gc = function() while true do end end }) "
          "collectgarbage()",
    # C functions are not counted: a backtracking pattern runs for ages
    "pattern": "string.rep('a', 3000):find('.-.-.-.-x')",
}


@pytest.mark.parametrize("what", [
    "pcall", "gc",
    pytest.param("pattern", marks=pytest.mark.xfail(strict=True, reason=
                 "known limit: C library functions (string.find with a "
                 "backtracking pattern) are not metered by the budget; "
                 "documented in lua/README.md")),
])
def test_runaway_script_cannot_hang_the_worker(make_server, tmp_path, what):
    script = "return { message = function(ctx) %s end }" % HANGS[what]
    s = lua_server(make_server, tmp_path,
                   {"lua": script, "budget": 100000, "timeout": "1s"},
                   workers=1)
    try:
        with s.raw(timeout=3) as c:
            helpers.ehlo(c)
            r = send(s, new_message(), client=c)
        assert r == TEMPFAIL
    finally:
        if not s.alive() or "event=filter-error" not in s.run_log():
            s.kill9()      # a hung worker: SIGTERM would not end it


MEMORY_SHARED = r"""
-- nothing is ever garbage (all kept), so no collection changes the counts
local keep = {}
local function fill(n)
  local t = {}
  for i = 1, n do t[i] = i end      -- array part: 65536 slots, 1 MiB
  return t
end
return { message = function(ctx)
  local a = fill(40000)
  sleep(0.3)
  local b = fill(40000)             -- ~2 MiB held by this call
  keep[#keep + 1] = { a, b }
end }
"""


def test_memory_cap_is_per_call(make_server, tmp_path):
    import threading
    s = lua_server(make_server, tmp_path,
                   {"lua": MEMORY_SHARED, "memory": "3M"}, workers=1)
    # alone, one call fits
    helpers.queued_id(send(s, new_message()))
    replies = [None] * 3

    def one(i):
        replies[i] = send(s, new_message())
    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for r in replies:
        helpers.queued_id(r)


def test_discard_at_helo_applies_to_the_session(make_server, tmp_path):
    script = """
    return { helo = function(ctx)
      if ctx.helo == "drop.example.test" then return discard() end
    end }
    """
    s = lua_server(make_server, tmp_path, {"lua": script})
    m = new_message()
    with s.raw() as c:
        helpers.ehlo(c, "drop.example.test")
        helpers.queued_id(send(s, m, client=c))
    from test_lua_support import sentinel, delivered
    sentinel(s)
    assert not delivered(s, "alice", m["Subject"])
