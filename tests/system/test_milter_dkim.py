"""sluiced's milter client with a real milter (opendkim signing) and in a
chain with Lua filters: each filter sees the message as the earlier ones
left it, and the delivered message has every change, in order. The DKIM
signatures are checked with python3-dkim against the generated key, no
DNS (milter_fixtures.dkim_verify)."""
import re

import helpers
from test_lua_support import (script_file, new_message, send, mail_with,
                              header_values, no_dns)


def start(make_server, pipeline):
    return make_server({"pipeline": pipeline, "dns": no_dns()})


def milter_entry(m, name, **kw):
    e = {"milter": m.spec, "name": name, "default_action": "tempfail",
         "timeouts": {"connect": "5s", "command": "5s", "content": "5s"}}
    e.update(kw)
    return e


def header_names(data):
    hdrs, _ = helpers.split_headers(data)
    return [h.split(":", 1)[0] for h in hdrs]


def dkim_tags(data):
    """{tag: value} of the first DKIM-Signature field."""
    vals = header_values(data, "DKIM-Signature")
    assert vals, data[:2000]
    sig = re.sub(r"\s+", "", vals[0])
    return dict(t.split("=", 1) for t in sig.split(";") if "=" in t)


def signed_message(subject=None, **extra):
    return new_message(subject=subject, sender="sender@example.test",
                       body="Signed body line one.\nline two\n", **extra)


# -- opendkim alone ---------------------------------------------------------------

def test_opendkim_signs_and_signature_verifies(make_server, milters):
    dk = milters.opendkim()
    srv = start(make_server, [milter_entry(dk, "dkim")])
    msg = signed_message()
    r = send(srv, msg)
    helpers.queued_id(r)
    data = mail_with(srv, "alice", msg["Subject"])
    tags = dkim_tags(data)
    assert tags["d"] == "example.test" and tags["s"] == dk.selector
    assert "from" in tags["h"].lower().split(":")
    assert dk.verify(data), data.decode("utf-8", "replace")[:3000]
    # the check can fail: a changed body does not verify
    assert not dk.verify(data.replace(b"line two", b"line 2"))
    assert "event=filter-error" not in srv.run_log()


def test_opendkim_does_not_sign_foreign_from(make_server, milters):
    """Control: a From: outside the signing domain is delivered unsigned."""
    dk = milters.opendkim()
    srv = start(make_server, [milter_entry(dk, "dkim")])
    msg = new_message(sender="sender@remote.test")
    helpers.queued_id(send(srv, msg))
    data = mail_with(srv, "alice", msg["Subject"])
    assert header_values(data, "DKIM-Signature") == []


# -- a chain: milter A, Lua, milter B --------------------------------------------

LUA_COPY = r"""
local f = {}
function f.message(ctx)
  local a = ctx:header("X-A")
  ctx:add_header("X-Lua", "saw X-A=" .. tostring(a) .. " subject="
                 .. tostring(ctx:header("Subject")))
end
return f
"""

SCENARIO_A = {"callbacks": {"eom": {"mods": [
    {"op": "addheader", "name": "X-A", "value": "added by A"},
    {"op": "chgheader", "name": "Subject", "idx": 1,
     "value": "changed by A"}]}}}


def test_chain_later_filters_see_earlier_changes(make_server, milters,
                                                 tmp_path):
    a = milters.scripted(SCENARIO_A, name="milter_a")
    b = milters.scripted({}, name="milter_b")
    lua = script_file(tmp_path, LUA_COPY, "copy_xa.lua")
    srv = start(make_server, [milter_entry(a, "A"), {"lua": lua},
                              milter_entry(b, "B")])
    msg = new_message(X_Orig="kept")
    tag = msg["Message-ID"]
    helpers.queued_id(send(srv, msg))
    data = mail_with(srv, "alice", tag)

    # A saw the original, B what A and the Lua filter made of it
    seen_a = dict(a.headers_seen())
    assert seen_a["Subject"].strip() == msg["Subject"]
    assert "X-A" not in seen_a and "X-Lua" not in seen_a
    seen_b = b.headers_seen()
    names_b = [n for n, _ in seen_b]
    vals_b = {n: v.strip() for n, v in seen_b}
    assert vals_b["Subject"] == "changed by A", seen_b
    assert vals_b["X-A"] == "added by A", seen_b
    assert vals_b["X-Lua"] == "saw X-A=added by A subject=changed by A", \
        seen_b
    assert names_b.index("X-A") < names_b.index("X-Lua")
    assert vals_b["X-Orig"] == "kept"
    # B is not shown our Received: field
    assert "Received" not in names_b

    # the delivered message: everything, in order
    assert header_values(data, "Subject") == ["changed by A"]
    assert header_values(data, "X-A") == ["added by A"]
    assert header_values(data, "X-Lua") == [
        "saw X-A=added by A subject=changed by A"]
    names = header_names(data)
    assert names.count("Subject") == 1
    assert names.index("Received") < names.index("Subject")
    assert names.index("X-Orig") < names.index("X-A") < names.index("X-Lua")
    assert names[-2:] == ["X-A", "X-Lua"], names
    _, body = helpers.split_headers(data)
    assert body == "hello\n"


def test_chain_opendkim_last_signs_changed_message(make_server, milters):
    """opendkim after a milter that adds a header and changes Subject: it
    signs what the first milter made (the signature verifies against the
    delivered message, whose Subject is the changed one)."""
    a = milters.scripted({"callbacks": {"eom": {"mods": [
        {"op": "addheader", "name": "X-A", "value": "added by A"},
        {"op": "chgheader", "name": "Subject", "idx": 1,
         "value": "changed before signing"}]}}}, name="milter_a")
    dk = milters.opendkim(extra="SignHeaders From,To,Subject,Date,"
                                "Message-ID,X-A\n")
    srv = start(make_server, [milter_entry(a, "A"), milter_entry(dk, "dkim")])
    msg = signed_message()
    helpers.queued_id(send(srv, msg))
    data = mail_with(srv, "alice", msg["Message-ID"])
    assert header_values(data, "Subject") == ["changed before signing"]
    assert header_values(data, "X-A") == ["added by A"]
    signed = dkim_tags(data)["h"].lower().split(":")
    assert "subject" in signed and "x-a" in signed, signed
    assert dk.verify(data), data.decode("utf-8", "replace")[:3000]
    # the signature covers A's changes: undoing one breaks it
    assert not dk.verify(data.replace(b"changed before signing",
                                      msg["Subject"].encode()))
    assert not dk.verify(data.replace(b"X-A: added by A", b"X-A: other"))


def test_chain_opendkim_then_lua_change_breaks_nothing_signed(make_server,
                                                              milters,
                                                              tmp_path):
    """A Lua filter after opendkim adds an unsigned header at the end: the
    signature still verifies."""
    dk = milters.opendkim()
    lua = script_file(tmp_path, 'return { message = function(ctx) '
                      'ctx:add_header("X-After", "yes") end }', "after.lua")
    srv = start(make_server, [milter_entry(dk, "dkim"), {"lua": lua}])
    msg = signed_message()
    helpers.queued_id(send(srv, msg))
    data = mail_with(srv, "alice", msg["Message-ID"])
    assert header_values(data, "X-After") == ["yes"]
    assert "x-after" not in dkim_tags(data)["h"].lower().split(":")
    assert dk.verify(data)
