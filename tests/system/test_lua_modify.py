"""Lua filters changing the message at the message stage (headers, body,
sender, recipients), seen in the delivered Maildir files and their
envelope (Return-Path, Delivered-To); tags carried from the rcpt stage to
the message stage; ctx fields."""
import re

import pytest

import helpers
from test_lua_support import (lua_server, new_message, send, mail_with,
                              delivered, sentinel, header_values,
                              wait_log)

MODIFY = r"""
local f = {}
function f.message(ctx)
  ctx:add_header("X-Added", "at the end")
  ctx:insert_header(1, "X-Inserted", "first of all")
  ctx:change_header("Subject", 1, "[changed] " .. ctx:header("Subject"))
  ctx:delete_header("X-Remove-Me")
  ctx:change_header("X-Twice", 2, "second changed")
  ctx:replace_body("replaced body\r\nline two\r\n")
  ctx:set_sender("changed@remote.test")
  ctx:add_rcpt("bob@example.test")
  ctx:del_rcpt("alice@example.test")
end
return f
"""


def test_message_modifications(make_server, tmp_path):
    s = lua_server(make_server, tmp_path, {"lua": MODIFY})
    m = new_message(body="original body\n", X_Remove_Me="secret",
                    X_Keep="kept")
    m["X-Twice"] = "one"
    m["X-Twice"] = "two"
    helpers.queued_id(send(s, m))
    data = mail_with(s, "bob", m["Subject"])
    hdrs, body = helpers.split_headers(data)
    # envelope: new sender, new recipient
    assert hdrs[0] == "Return-Path: <changed@remote.test>"
    assert hdrs[1] == "Delivered-To: bob@example.test"
    # inserted before everything the message had (our Received included)
    assert hdrs[2] == "X-Inserted: first of all"
    assert hdrs[3].startswith("Received: from client.example.test")
    assert hdrs[-1] == "X-Added: at the end"
    assert header_values(data, "Subject") == ["[changed] " + m["Subject"]]
    assert header_values(data, "X-Remove-Me") == []
    assert header_values(data, "X-Keep") == ["kept"]
    assert header_values(data, "X-Twice") == ["one", "second changed"]
    assert body == "replaced body\nline two\n"
    # the deleted recipient gets nothing
    sentinel(s, lands="bob")
    assert not delivered(s, "alice", m["Subject"])


def test_null_sender(make_server, tmp_path):
    script = 'return { message = function(ctx) ctx:set_sender("") end }'
    s = lua_server(make_server, tmp_path, {"lua": script})
    m = new_message()
    helpers.queued_id(send(s, m))
    data = mail_with(s, "alice", m["Subject"])
    assert helpers.split_headers(data)[0][0] == "Return-Path: <>"


def test_recipient_removal_of_all_discards(make_server, tmp_path):
    script = """
    return { message = function(ctx)
      for _, r in ipairs(ctx.rcpts) do ctx:del_rcpt(r) end
    end }
    """
    s = lua_server(make_server, tmp_path, {"lua": script})
    m = new_message()
    qid = helpers.queued_id(send(s, m))
    assert f"qid={qid} " in s.run_log()
    assert "every recipient" in s.run_log()
    assert s.queued_ids() == [] and s.read_mail("alice") == []


@pytest.mark.parametrize("call", [
    'ctx:add_header("Bad Name", "x")',
    'ctx:add_header("X-Ok", "line\\r\\nInjected: yes")',
    'ctx:set_sender("not an address")',
    'ctx:add_rcpt("<broken")',
])
def test_refused_changes_are_filter_errors(make_server, tmp_path, call):
    script = "return { message = function(ctx) %s end }" % call
    s = lua_server(make_server, tmp_path, {"lua": script})
    with s.raw() as c:
        helpers.ehlo(c)
        r = send(s, new_message(), client=c)
        assert r == (451, "4.7.1 Temporarily rejected by policy, try again "
                          "later")
    assert "event=filter-error stage=message" in s.run_log()
    assert "refused" in s.run_log()


def test_changes_only_at_message_stage(make_server, tmp_path):
    script = """
    local f = {}
    function f.rcpt(ctx)
      if ctx.sender:match("^early") then ctx:add_header("X-Too-Early", "1") end
    end
    function f.queue(ctx) ctx:add_header("X-Too-Late", "1") end
    return f
    """
    s = lua_server(make_server, tmp_path, {"lua": script})
    with s.raw() as c:
        helpers.ehlo(c)
        helpers.check(c.cmd("MAIL FROM:<early@remote.test>"), 250)
        # changes before the message stage: a filter error, tempfail 450
        assert c.cmd("RCPT TO:<alice@example.test>") == (
            450, "4.7.1 Temporarily rejected by policy, try again later")
        wait_log(s, "can only be changed at the message stage")
        helpers.check(c.cmd("RSET"), 250)
        # the queue stage sees the message but may not change it
        assert send(s, new_message(), client=c) == (
            451, "4.7.1 Temporarily rejected by policy, try again later")
        wait_log(s, "can only be changed at the message stage", count=2)
    assert "stage=queue filter=" in s.run_log()
    assert s.queued_ids() == []


TAGS = r"""
local f = {}
function f.helo(ctx)
  ctx:tag("client.kind", "friendly " .. ctx.helo, "session")
end
function f.rcpt(ctx)
  ctx:tag("seen:" .. ctx.rcpt, tostring(#ctx.rcpts + 1))
end
function f.message(ctx)
  for _, r in ipairs(ctx.rcpts) do
    ctx:add_header("X-Tag-" .. r:match("^[^@]+"), ctx:tag("seen:" .. r) or "none")
  end
  ctx:add_header("X-Session-Tag", ctx:tag("client.kind") or "none")
  ctx:add_header("X-Stale-Tag", ctx:tag("stale") or "none")
  ctx:tag("stale", "from an earlier transaction")
end
return f
"""


def test_tags_from_rcpt_and_session_reach_message_stage(make_server,
                                                         tmp_path):
    s = lua_server(make_server, tmp_path, {"lua": TAGS})
    m1, m2 = new_message(), new_message()
    with s.raw() as c:
        helpers.ehlo(c, "helper.example.test")
        helpers.queued_id(send(s, m1, rcpts=("alice@example.test",
                                             "bob@example.test"), client=c))
        helpers.queued_id(send(s, m2, rcpts=("bob@example.test",), client=c))
    d1 = mail_with(s, "alice", m1["Subject"])
    assert header_values(d1, "X-Tag-alice") == ["1"]
    assert header_values(d1, "X-Tag-bob") == ["2"]
    assert header_values(d1, "X-Session-Tag") == ["friendly helper.example.test"]
    assert header_values(d1, "X-Stale-Tag") == ["none"]
    d2 = mail_with(s, "bob", m2["Subject"])
    # transaction tags end with their transaction, session tags stay
    assert header_values(d2, "X-Tag-bob") == ["1"]
    assert header_values(d2, "X-Stale-Tag") == ["none"]
    assert header_values(d2, "X-Session-Tag") == \
        ["friendly helper.example.test"]


FIELDS = r"""
local f = {}
local function dump(ctx)
  local keys = { "stage", "session_id", "listener", "client_addr",
    "client_port", "client_rdns", "helo", "qid", "sender", "rcpt", "size",
    "smtputf8", "body_type", "ret", "envid", "rcpt_notify", "rcpt_orcpt",
    "tls_version", "auth_user" }
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = k .. "=" .. tostring(ctx[k]) end
  out[#out + 1] = "rcpts=" .. table.concat(ctx.rcpts, ",")
  return table.concat(out, " ")
end
function f.rcpt(ctx) ctx:tag("at_rcpt", dump(ctx)) end
function f.message(ctx)
  ctx:add_header("X-At-Rcpt", ctx:tag("at_rcpt"))
  ctx:add_header("X-At-Message", dump(ctx))
  ctx:add_header("X-Ctx", tostring(ctx))
end
return f
"""


def test_ctx_fields(make_server, tmp_path):
    s = lua_server(make_server, tmp_path, {"lua": FIELDS})
    m = new_message()
    with s.raw() as c:
        helpers.ehlo(c, "fields.example.test")
        helpers.check(c.cmd("MAIL FROM:<f@remote.test> SIZE=1000 "
                            "BODY=8BITMIME RET=HDRS ENVID=env42"), 250)
        helpers.check(c.cmd("RCPT TO:<alice@example.test> NOTIFY=SUCCESS,"
                            "FAILURE ORCPT=rfc822;alice@example.test"), 250)
        helpers.check(c.cmd("DATA"), 354)
        from test_lua_support import dot_stuffed, as_bytes
        c.send(dot_stuffed(as_bytes(m)))
        qid = helpers.queued_id(c.reply())
        port = c.sock.getsockname()[1]
    data = mail_with(s, "alice", m["Subject"])
    r = dict(kv.split("=", 1) for kv in
             header_values(data, "X-At-Rcpt")[0].split(" "))
    assert r["stage"] == "rcpt"
    assert re.fullmatch(r"[0-9a-f]{16}", r["session_id"])
    assert r["listener"] == "mx"
    assert r["client_addr"] == "127.0.0.1"
    assert r["client_port"] == str(port)
    assert r["client_rdns"] == "localhost.example.test"
    assert r["helo"] == "fields.example.test"
    assert r["qid"] == qid
    assert r["sender"] == "f@remote.test"
    assert r["rcpt"] == "alice@example.test"
    assert r["size"] == "1000"
    assert r["smtputf8"] == "false"
    assert r["body_type"] == "8BITMIME"
    assert r["ret"] == "HDRS"
    assert r["envid"] == "env42"
    assert r["rcpt_notify"] == "SUCCESS,FAILURE"
    assert r["rcpt_orcpt"] == "rfc822;alice@example.test"
    assert r["tls_version"] == "nil" and r["auth_user"] == "nil"
    assert r["rcpts"] == ""            # the candidate is not in it yet
    msg = dict(kv.split("=", 1) for kv in
               header_values(data, "X-At-Message")[0].split(" "))
    assert msg["stage"] == "message"
    assert msg["rcpts"] == "alice@example.test"
    assert msg["rcpt"] == "nil"
    assert int(msg["size"]) > len(m["Subject"])   # the message's size now
    assert header_values(data, "X-Ctx") == ["ctx(message)"]
