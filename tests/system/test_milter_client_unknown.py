"""Unknown SMTP commands offered to milters (the UNKNOWN event, protocol
version 3 and later), as Postfix does: the whole command line, no macros;
a refusal from the milter replaces sluiced's "500 5.5.2", anything else
leaves it; a milter that asked for NOUNKNOWN, or speaks version 2, gets
nothing. Unknown commands count as client errors either way."""
import pytest

import helpers
from test_lua_support import wait_log


def server(make_server, m, **entry):
    e = {"milter": m.spec, "name": "m"}
    e.update(entry)
    return make_server({"pipeline": [e],
                        "limits": {"errors": 3}})


def greeted(srv):
    """A raw session after EHLO."""
    c = srv.raw()
    helpers.ehlo(c)
    return c


def replying(code, xcode, text):
    """A scenario: the milter answers UNKNOWN with this reply."""
    return {"callbacks": {"unknown": {"reply": {
        "code": code, "xcode": xcode, "text": text}}}}


def unknown_events(m):
    conn = max(e["conn"] for e in m.events())
    return m.events("unknown", conn=conn)


def test_the_whole_line_is_offered_and_500_stays(make_server, milters):
    m = milters.scripted({})
    srv = server(make_server, m)
    c = greeted(srv)
    code, text = c.cmd("XFOO  bar baz")
    assert code == 500 and "5.5.2" in text, (code, text)
    assert c.cmd("NOOP")[0] == 250
    ev, = unknown_events(m)
    assert ev["args"]["cmd"] == "XFOO  bar baz"


@pytest.mark.parametrize("action", ["continue", "accept", "discard"])
def test_answers_that_do_not_refuse_leave_the_500(make_server, milters,
                                                  action):
    m = milters.scripted({"callbacks": {"unknown": {"action": action}}})
    srv = server(make_server, m)
    c = greeted(srv)
    assert c.cmd("XFOO")[0] == 500
    assert c.cmd("NOOP")[0] == 250
    assert len(unknown_events(m)) == 1


def test_custom_reply_replaces_the_500(make_server, milters):
    m = milters.scripted(replying("550", "5.7.1", "no XFOO here"))
    srv = server(make_server, m)
    c = greeted(srv)
    code, text = c.cmd("XFOO")
    assert code == 550 and "5.7.1 no XFOO here" in text, (code, text)
    assert c.cmd("NOOP")[0] == 250
    wait_log(srv, "event=reject stage=unknown-command filter=m")


def test_tempfail_gives_451(make_server, milters):
    m = milters.scripted({"callbacks": {"unknown": {"action": "tempfail"}}})
    srv = server(make_server, m)
    c = greeted(srv)
    code, text = c.cmd("XFOO")
    assert code == 451 and text.startswith("4.7.1"), (code, text)


def test_421_closes_the_session(make_server, milters):
    m = milters.scripted(replying("421", "4.7.0", "go away"))
    srv = server(make_server, m)
    c = greeted(srv)
    code, text = c.cmd("XFOO")
    assert code == 421 and "go away" in text
    assert c.closed(timeout=3)


def test_unknown_commands_still_count_as_errors(make_server, milters):
    m = milters.scripted(replying("550", "5.7.1", "no"))
    srv = server(make_server, m)             # limits.errors: 3
    c = greeted(srv)
    assert c.cmd("XONE")[0] == 550
    assert c.cmd("XTWO")[0] == 550
    assert c.cmd("XTHREE")[0] == 550
    helpers.check(c.reply(), 421, "4.7.0", "too many errors")
    assert c.closed(timeout=3)


@pytest.mark.parametrize("scenario,entry", [
    ({"protocol": ["NOUNKNOWN"]}, {}),       # the milter asked not to
    ({}, {"protocol": 2}),                   # no UNKNOWN in version 2
])
def test_milters_that_cannot_take_it_get_nothing(make_server, milters,
                                                 scenario, entry):
    m = milters.scripted(dict(scenario, callbacks={
        "unknown": {"action": "reject"}}))
    srv = server(make_server, m, **entry)
    c = greeted(srv)
    assert c.cmd("XFOO")[0] == 500
    assert c.cmd("NOOP")[0] == 250
    assert unknown_events(m) == []


def test_broken_answer_gets_the_default_action(make_server, milters):
    bad = milters.bad(on="U", do="unknown")
    srv = server(make_server, bad, default_action="tempfail")
    c = greeted(srv)
    code, text = c.cmd("XFOO")
    assert code == 451, (code, text)
    wait_log(srv, "event=filter-error stage=unknown-command filter=m")
    assert c.cmd("NOOP")[0] == 250
    with srv.smtp() as s2:                   # a new session, served
        assert s2.ehlo("client.example.test")[0] == 250
