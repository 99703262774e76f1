"""Recipients refused before a milter, told to the milters that asked for
them (SMFIP_RCPT_REJ), as Postfix does: an RCPT event with
{rcpt_mailer} "error", {rcpt_host} the enhanced status code and
{rcpt_addr} the reply text; the milter's answer is ignored (the recipient
stays refused with the server's reply) and a milter that did not ask sees
nothing. Refusals by the server itself (unknown user, relaying denied)
and by an earlier filter of the pipeline (a Lua script) are told."""
import pytest

import helpers
from test_lua_support import script_file, wait_log

RCPT_MACROS = ["i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"]
UNKNOWN = ("550 5.1.1 <nobody@example.test>: Recipient address rejected: "
           "User unknown in local recipient table")


def refusing(action="continue", **scenario):
    """A scripted milter that asks for refused recipients and answers
    `action` to every RCPT."""
    s = {"protocol": ["RCPT_REJ"], "macros": RCPT_MACROS,
         "callbacks": {"envrcpt": {"action": action}}}
    s.update(scenario)
    return s


def rcpt_events(m):
    conn = max(e["conn"] for e in m.events())
    return m.events("rcpt", conn=conn)


def session(srv, rcpts, ok_rcpt=None):
    """MAIL, the RCPTs (their replies returned), then DATA if ok_rcpt."""
    with srv.smtp() as c:
        c.ehlo("client.example.test")
        assert c.mail("sender@remote.test")[0] == 250
        replies = [c.rcpt(r) for r in rcpts]
        if ok_rcpt is not None:
            helpers.queued_id(c.data(
                b"Subject: refused\r\n\r\nbody\r\n"))
    return replies


@pytest.mark.parametrize("action", ["continue", "accept", "reject",
                                    "tempfail", "discard"])
def test_unknown_user_is_told_and_stays_refused(make_server, milters,
                                                action):
    m = milters.scripted(refusing(action))
    srv = make_server({"pipeline": [{"milter": m.spec, "name": "m"}]})
    refused, = session(srv, ["nobody@example.test"])
    assert refused == (550, UNKNOWN[4:].encode())
    ev, = rcpt_events(m)
    assert ev["args"]["addr"] == "<nobody@example.test>"
    assert ev["macros"]["{rcpt_mailer}"] == "error"
    assert ev["macros"]["{rcpt_host}"] == "5.1.1"
    assert ev["macros"]["{rcpt_addr}"] == (
        "<nobody@example.test>: Recipient address rejected: User unknown "
        "in local recipient table")
    assert ev["macros"]["i"]                 # the transaction's queue ID


def test_relay_denied_is_told(make_server, milters):
    m = milters.scripted(refusing())
    srv = make_server({"pipeline": [{"milter": m.spec, "name": "m"}]})
    refused, = session(srv, ["someone@elsewhere.test"])
    helpers.check(refused, 554, "5.7.1", "Relay access denied")
    ev, = rcpt_events(m)
    assert ev["args"]["addr"] == "<someone@elsewhere.test>"
    assert ev["macros"]["{rcpt_host}"] == "5.7.1"
    assert ev["macros"]["{rcpt_mailer}"] == "error"


def test_good_recipients_keep_their_usual_macros_and_mail_flows(
        make_server, milters):
    m = milters.scripted(refusing())
    srv = make_server({"pipeline": [{"milter": m.spec, "name": "m"}]})
    r = session(srv, ["nobody@example.test", "alice@example.test"],
                ok_rcpt="alice@example.test")
    assert [code for code, _ in r] == [550, 250]
    refused, good = rcpt_events(m)
    assert refused["macros"]["{rcpt_mailer}"] == "error"
    assert good["args"]["addr"] == "<alice@example.test>"
    assert good["macros"]["{rcpt_mailer}"] == "local"
    assert good["macros"]["{rcpt_addr}"] == "alice@example.test"
    srv.wait_mail("alice")


def test_milter_that_did_not_ask_sees_nothing(make_server, milters):
    m = milters.scripted({"macros": RCPT_MACROS})
    srv = make_server({"pipeline": [{"milter": m.spec, "name": "m"}]})
    r = session(srv, ["nobody@example.test", "alice@example.test"],
                ok_rcpt="alice@example.test")
    assert [code for code, _ in r] == [550, 250]
    assert [e["args"]["addr"] for e in rcpt_events(m)] == [
        "<alice@example.test>"]


def test_refusal_by_an_earlier_lua_filter_is_told_to_later_milters(
        make_server, milters, tmp_path):
    before = milters.scripted(refusing(), name="before")
    after = milters.scripted(refusing(), name="after")
    lua = script_file(tmp_path, """
    return { rcpt = function(ctx)
      if ctx.rcpt:match("^bob@") then
        return reject(550, "5.7.1", "bob is away")
      end
    end }
    """)
    srv = make_server({"pipeline": [
        {"milter": before.spec, "name": "before"}, {"lua": lua},
        {"milter": after.spec, "name": "after"}]})
    r = session(srv, ["bob@example.test", "alice@example.test"],
                ok_rcpt="alice@example.test")
    helpers.check(r[0], 550, "5.7.1", "bob is away")
    assert r[1][0] == 250
    # the milter before the script saw bob as a normal recipient, once
    b = rcpt_events(before)
    assert [e["args"]["addr"] for e in b] == ["<bob@example.test>",
                                      "<alice@example.test>"]
    assert b[0]["macros"]["{rcpt_mailer}"] == "local"
    # the milter after it was told of the refusal
    a = rcpt_events(after)
    assert [e["args"]["addr"] for e in a] == ["<bob@example.test>",
                                      "<alice@example.test>"]
    assert a[0]["macros"]["{rcpt_mailer}"] == "error"
    assert a[0]["macros"]["{rcpt_host}"] == "5.7.1"
    assert a[0]["macros"]["{rcpt_addr}"] == "bob is away"
    assert a[1]["macros"]["{rcpt_mailer}"] == "local"
    srv.wait_mail("alice")


@pytest.mark.parametrize("text", ["try bob later",
                                  ["try bob later", "second line"]])
def test_refusal_by_a_milter_is_told_to_the_next_milter(make_server,
                                                          milters, text):
    """A multi-line refusal is told by its first line."""
    first = milters.scripted({"callbacks": {"envrcpt": {
        "match": "bob@", "reply": {"code": "450", "xcode": "4.7.1",
                                   "text": text}}}}, name="first")
    second = milters.scripted(refusing(), name="second")
    srv = make_server({"pipeline": [
        {"milter": first.spec, "name": "first"},
        {"milter": second.spec, "name": "second"}]})
    refused, = session(srv, ["bob@example.test"])
    assert refused[0] == 450
    assert refused[1].startswith(b"4.7.1 try bob later"), refused
    ev, = rcpt_events(second)
    assert ev["macros"]["{rcpt_mailer}"] == "error"
    assert ev["macros"]["{rcpt_host}"] == "4.7.1"
    assert ev["macros"]["{rcpt_addr}"] == "try bob later"


def test_broken_answer_about_a_refused_recipient(make_server, milters):
    """A milter that answers garbage about a refused recipient gets its
    default action for the rest of the session (here tempfail: the next,
    good recipient gets 450) and the server keeps serving."""
    bad = milters.bad(on="R", do="unknown", protocol="0x800")
    srv = make_server({"pipeline": [{"milter": bad.spec, "name": "bad",
                                     "default_action": "tempfail"}]})
    r = session(srv, ["nobody@example.test", "alice@example.test"])
    assert r[0] == (550, UNKNOWN[4:].encode())
    helpers.check(r[1], 450, "4.7.1")
    wait_log(srv, "event=filter-error stage=rcpt filter=bad")
    with srv.smtp() as c:                    # a new session, served
        assert c.ehlo("client.example.test")[0] == 250


def test_pipelined_refusals_and_unknown_commands_answer_in_order(
        make_server, milters):
    """One PIPELINING batch mixing refused and good recipients and an
    unknown command, with a milter that takes both kinds of event: every
    reply comes back in order and the message is delivered."""
    m = milters.scripted(refusing())
    srv = make_server({"pipeline": [{"milter": m.spec, "name": "m"}]})
    c = srv.raw()
    helpers.ehlo(c)
    c.send(b"MAIL FROM:<sender@remote.test>\r\n"
           b"RCPT TO:<nobody@example.test>\r\n"
           b"XFOO bar\r\n"
           b"RCPT TO:<alice@example.test>\r\n"
           b"RCPT TO:<someone@elsewhere.test>\r\n"
           b"DATA\r\n")
    codes = [code for code, _ in c.replies(6)]
    assert codes == [250, 550, 500, 250, 554, 354]
    code, text = c.cmd("Subject: pipelined\r\n\r\nbody\r\n.")
    assert code == 250, text
    srv.wait_mail("alice")
    ev = [(e["ev"], e["args"].get("addr") or e["args"].get("cmd"))
          for e in m.events(conn=max(e["conn"] for e in m.events()))
          if e["ev"] in ("rcpt", "unknown")]
    assert ev == [("rcpt", "<nobody@example.test>"), ("unknown", "XFOO bar"),
                  ("rcpt", "<alice@example.test>"),
                  ("rcpt", "<someone@elsewhere.test>")]
