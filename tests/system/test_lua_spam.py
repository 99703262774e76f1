"""lua/filters/spam.lua: the score headers, the thresholds (reject,
quarantine), header and content heuristics, and DNSBL contributions from a
real dnsmasq (dns.rbl) and from the dnsbl tag of an earlier filter."""
import os

import helpers
from dns_server import DnsServer
from test_lua_support import (filter_path, lua_server, new_message, send,
                              mail_with, delivered, sentinel, header_values)

SPAM = filter_path("spam.lua")


def status(data):
    return header_values(data, "X-Spam-Status")


def score(data):
    return header_values(data, "X-Spam-Score")


def spammy():
    """MISSING_DATE 1.0 + MISSING_MESSAGE_ID 1.0 + SUBJECT_ALL_CAPS 1.5 +
    FROM_NAME_MISMATCH 2.0 + PHRASE_VIAGRA 2.5 = 8.0"""
    m = new_message(subject="CHEAP MEDS FOR YOU TODAY",
                    sender='"service@bank.test" <promo@elsewhere.test>',
                    body="Buy Viagra at the best price.\n",
                    date=False, msgid=False)
    return m


SPAMMY_TESTS = ("FROM_NAME_MISMATCH,MISSING_DATE,MISSING_MESSAGE_ID,"
                "PHRASE_VIAGRA,SUBJECT_ALL_CAPS")


def test_clean_message_scores_zero(make_server, tmp_path):
    s = lua_server(make_server, tmp_path, {"lua": SPAM})
    m = new_message(body="Dear Alice,\nthe minutes of Monday's meeting.\n")
    m["X-Spam-Status"] = "No, score=-100 forged"      # stripped
    helpers.queued_id(send(s, m))
    data = mail_with(s, "alice", m["Subject"])
    assert score(data) == ["0.0"]
    assert status(data) == ["No, score=0.0 required=5.0 tests=none"]


def test_heuristics_mark_but_deliver(make_server, tmp_path):
    s = lua_server(make_server, tmp_path, {"lua": SPAM})
    m = spammy()
    helpers.queued_id(send(s, m))
    data = mail_with(s, "alice", m["Subject"])
    assert score(data) == ["8.0"]
    assert status(data) == [f"Yes, score=8.0 required=5.0 "
                            f"tests={SPAMMY_TESTS}"]


def test_content_heuristics(make_server, tmp_path):
    s = lua_server(make_server, tmp_path, {"lua": SPAM, "args": {
        "phrases": {"free money": 3.5, "act now": 1},
        "weights": {"UPPERCASE_RATIO": 2.0}, "required_score": 4}})
    m = new_message(body="YOU GET FREE MONEY IF YOU ACT NOW, DO NOT WAIT "
                         "ANY LONGER FOR THIS OFFER\n")
    helpers.queued_id(send(s, m))
    data = mail_with(s, "alice", m["Subject"])
    assert status(data) == ["Yes, score=6.5 required=4.0 tests="
                            "PHRASE_ACT_NOW,PHRASE_FREE_MONEY,"
                            "UPPERCASE_RATIO"]
    # html only, the phrase hidden in markup still found
    m = new_message()
    m.set_content("<p>hello <b>act</b> now</p>", subtype="html")
    helpers.queued_id(send(s, m))
    data = mail_with(s, "alice", m["Subject"])
    assert status(data) == ["No, score=1.0 required=4.0 tests=HTML_ONLY"]


def test_reject_above_threshold(make_server, tmp_path):
    s = lua_server(make_server, tmp_path,
                   {"lua": SPAM, "args": {"reject_score": 7.5}})
    with s.raw() as c:
        helpers.ehlo(c)
        r = send(s, spammy(), client=c)
        assert r == (550, "5.7.1 Message rejected as spam (score 8.0)")
        # below: accepted on the same session
        m = new_message()
        helpers.queued_id(send(s, m, client=c))
    mail_with(s, "alice", m["Subject"])


def test_quarantine_above_threshold(make_server, tmp_path):
    s = lua_server(make_server, tmp_path,
                   {"lua": SPAM, "args": {"quarantine_score": 6,
                                          "reject_score": 20}})
    m = spammy()
    with s.raw() as c:
        helpers.ehlo(c)
        qid = helpers.queued_id(send(s, m, client=c))
        sentinel(s, client=c)
    assert not delivered(s, "alice", m["Subject"])
    assert s.spool_files("quarantine") == [qid]
    with open(os.path.join(s.spool, "quarantine", qid), "rb") as f:
        q = f.read()
    # the quarantined copy carries the verdict's headers and tags
    assert (b"X-Spam-Status: Yes, score=8.0 required=5.0 tests=" +
            SPAMMY_TESTS.encode()) in q
    assert ["spam.score", "8.0"] in helpers.envelope_records(q)["tag"]


def test_dnsbl_lookups_via_dnsmasq(make_server, tmp_path):
    records = {
        "A": {"1.0.0.127.bl.example.test": "127.0.0.2",
              "1.0.0.127.weak.example.test": "127.0.0.3"},
        "NXDOMAIN": ["clean.example.test"],
    }
    with DnsServer(str(tmp_path), records) as dns:
        s = lua_server(make_server, tmp_path, {"lua": SPAM, "args": {
            "rbl_zones": {"bl.example.test": 4.0, "weak.example.test": 0.5,
                          "clean.example.test": 9}}},
            dns={"servers": [f"127.0.0.1:{dns.port}"], "timeout": "2s",
                 "attempts": 1})
        m = new_message()
        helpers.queued_id(send(s, m))
        data = mail_with(s, "alice", m["Subject"])
    assert status(data) == ["No, score=4.5 required=5.0 "
                            "tests=RBL_BL_EXAMPLE_TEST,RBL_WEAK_EXAMPLE_TEST"]


def test_dnsbl_zone_pushes_over_reject(make_server, tmp_path):
    records = {"A": {"1.0.0.127.bl.example.test": "127.0.0.2"}}
    with DnsServer(str(tmp_path), records) as dns:
        s = lua_server(make_server, tmp_path, {"lua": SPAM, "args": {
            "rbl_zones": [{"zone": "bl.example.test", "weight": 5}],
            "reject_score": 5}},
            dns={"servers": [f"127.0.0.1:{dns.port}"], "timeout": "2s",
                 "attempts": 1})
        r = send(s, new_message())
    assert r == (550, "5.7.1 Message rejected as spam (score 5.0)")


# stands in for the dnsbl C plugin: it tags the session at connect
DNSBL_TAGGER = """
return { connect = function(ctx) ctx:tag("dnsbl.score", "3.5", "session") end }
"""


def test_dnsbl_plugin_tag_counts(make_server, tmp_path):
    s = lua_server(make_server, tmp_path, {"lua": DNSBL_TAGGER},
                   {"lua": SPAM, "args": {"dnsbl_tag_weight": 2}})
    m = new_message()
    helpers.queued_id(send(s, m))
    data = mail_with(s, "alice", m["Subject"])
    assert status(data) == ["Yes, score=7.0 required=5.0 tests=DNSBL_TAG"]


def test_dnsbl_plugin_and_spam_lua(make_server, tmp_path):
    """The real dnsbl C plugin tags the session (dnsbl.score), spam.lua
    adds it to its score."""
    from conftest import SLUICED
    plugin = os.path.join(os.path.dirname(SLUICED), "plugins", "dnsbl.so")
    if not os.path.exists(plugin):
        import pytest
        pytest.skip(f"{plugin} not built")
    records = {"A": {"1.0.0.127.bl.example.test": "127.0.0.2"},
               "NXDOMAIN": ["clean.example.test"]}
    with DnsServer(str(tmp_path), records) as dns:
        s = make_server({
            "dns": {"servers": [f"127.0.0.1:{dns.port}"], "timeout": "2s",
                    "attempts": 1},
            "pipeline": [
                {"plugin": "dnsbl", "args": {
                    "zones": [{"zone": "bl.example.test", "weight": 3},
                              "clean.example.test"],
                    "reject_score": 10, "tag_score": 1}},
                {"lua": SPAM}]})
        m = new_message()
        helpers.queued_id(send(s, m))
        data = mail_with(s, "alice", m["Subject"])
    assert status(data) == ["No, score=3.0 required=5.0 tests=DNSBL_TAG"]
