"""lua/filters/recipients.lua: deny and allow patterns (550 5.1.1), routing
tags per recipient read back at the message stage and kept in the queue
envelope, and the recipient limits (452 4.5.3)."""
import os

import helpers
from test_lua_support import (filter_path, lua_server, new_message, send,
                              mail_with, header_values, dot_stuffed,
                              as_bytes)

RCPTS = filter_path("recipients.lua")
USERS = ["alice@example.test", "bob@example.test", "carol@example.test",
         "noreply@example.test", "no-reply@example.test"]

# shows the routing tags of every recipient at the message stage
SHOW_ROUTES = """
return { message = function(ctx)
  for _, r in ipairs(ctx.rcpts) do
    ctx:add_header("X-Route", r .. "=" .. (ctx:tag("route:" .. r) or "none"))
  end
end }
"""


# the route names the filter tags with: transports the delivery knows
TRANSPORTS = {name: "maildir" for name in
              ("local", "vip", "archive", "none-matched")}


def rcpt_server(make_server, tmp_path, args, show=False):
    entries = [{"lua": RCPTS, "args": args, "stages": ["rcpt"]}]
    if show:
        entries.append({"lua": SHOW_ROUTES})
    return lua_server(make_server, tmp_path, *entries,
                      mailboxes={"users": USERS}, transports=TRANSPORTS)


def test_deny_and_allow(make_server, tmp_path):
    s = rcpt_server(make_server, tmp_path, {
        "allow": ["alice@example.test", "bob@*", "no*@example.test"],
        "deny": ["noreply@*", "NO-REPLY@EXAMPLE.TEST"]})
    with s.raw() as c:
        helpers.ehlo(c)
        helpers.check(c.cmd("MAIL FROM:<s@remote.test>"), 250)
        assert c.cmd("RCPT TO:<noreply@example.test>") == (
            550, "5.1.1 <noreply@example.test>: Recipient address rejected: "
                 "Access denied")
        assert c.cmd("RCPT TO:<no-reply@example.test>") == (
            550, "5.1.1 <no-reply@example.test>: Recipient address rejected: "
                 "Access denied")
        assert c.cmd("RCPT TO:<carol@example.test>") == (
            550, "5.1.1 <carol@example.test>: Recipient address rejected: "
                 "User unknown")
        helpers.check(c.cmd("RCPT TO:<Alice@Example.Test>"), 250, "2.1.5")
        helpers.check(c.cmd("RCPT TO:<bob@example.test>"), 250, "2.1.5")
        helpers.check(c.cmd("DATA"), 354)
        m = new_message()
        c.send(dot_stuffed(as_bytes(m)))
        helpers.queued_id(c.reply())
    mail_with(s, "alice", m["Subject"])
    mail_with(s, "bob", m["Subject"])
    assert s.read_mail("carol") == []


def test_route_tags(make_server, tmp_path):
    s = rcpt_server(make_server, tmp_path, {
        # keys with glob characters must be quoted in YAML
        "routes": {'"*@example.test"': "local", "bob@example.test": "vip",
                   '"caro?@example.test"': "archive"},
        "default_route": "none-matched"}, show=True)
    m = new_message()
    helpers.queued_id(send(s, m, rcpts=("alice@example.test",
                                        "bob@example.test",
                                        "carol@example.test")))
    data = mail_with(s, "alice", m["Subject"])
    # the exact address beats the globs; the glob with more literal
    # characters beats the other
    assert header_values(data, "X-Route") == [
        "alice@example.test=local", "bob@example.test=vip",
        "carol@example.test=archive"]


def test_route_list_keeps_order_and_tags_reach_the_queue(make_server,
                                                         tmp_path):
    quarantine_all = "return { message = function() return quarantine() end }"
    s = lua_server(make_server, tmp_path,
                   {"lua": RCPTS, "args": {"routes": [
                       {"match": "*@example.test", "route": "first"},
                       {"match": "bob@example.test", "route": "never"}]}},
                   {"lua": quarantine_all}, mailboxes={"users": USERS})
    qid = helpers.queued_id(send(s, new_message(),
                                 rcpts=("alice@example.test",
                                        "bob@example.test")))
    with open(os.path.join(s.spool, "quarantine", qid), "rb") as f:
        tags = helpers.envelope_records(f.read())["tag"]
    assert ["route:alice@example.test", "first"] in tags
    assert ["route:bob@example.test", "first"] in tags


def test_max_rcpts_per_message(make_server, tmp_path):
    s = rcpt_server(make_server, tmp_path, {"max_rcpts_per_message": 2})
    with s.raw() as c:
        helpers.ehlo(c)
        helpers.check(c.cmd("MAIL FROM:<s@remote.test>"), 250)
        helpers.check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        helpers.check(c.cmd("RCPT TO:<bob@example.test>"), 250)
        assert c.cmd("RCPT TO:<carol@example.test>") == (
            452, "4.5.3 Too many recipients for this message, send the rest "
                 "in another one")
        helpers.check(c.cmd("RSET"), 250)      # a new transaction: fine
        helpers.check(c.cmd("MAIL FROM:<s@remote.test>"), 250)
        helpers.check(c.cmd("RCPT TO:<carol@example.test>"), 250)


def test_max_rcpts_per_sender_across_sessions(make_server, tmp_path):
    s = rcpt_server(make_server, tmp_path, {"max_rcpts_per_sender": 3,
                                            "sender_window": 60})
    with s.raw() as c:
        helpers.ehlo(c)
        helpers.check(c.cmd("MAIL FROM:<Busy@remote.test>"), 250)
        helpers.check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        helpers.check(c.cmd("RCPT TO:<bob@example.test>"), 250)
    with s.raw() as c:
        helpers.ehlo(c)
        helpers.check(c.cmd("MAIL FROM:<busy@remote.test>"), 250)
        helpers.check(c.cmd("RCPT TO:<carol@example.test>"), 250)
        assert c.cmd("RCPT TO:<alice@example.test>") == (
            452, "4.5.3 Too many recipients from this sender, try again "
                 "later")
        helpers.check(c.cmd("RSET"), 250)
        # another sender has its own count
        helpers.check(c.cmd("MAIL FROM:<other@remote.test>"), 250)
        helpers.check(c.cmd("RCPT TO:<alice@example.test>"), 250)
