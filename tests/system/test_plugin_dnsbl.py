"""The dnsbl plugin (plugins/dnsbl.c) against the module's dnsmasq (see
test_plugins.py, DNS_RECORDS): listed, unlisted, NXDOMAIN, timing-out and
refused zones, weights and thresholds, `codes`, error codes, tags seen by
a later filter, stage rcpt, IPv6 clients, and the entry's timeout.
"""
import time

import helpers
from helpers import check
from test_plugins import (TEMP, Raw6, connect, deliver, dns, header,  # noqa
                          probe, session_to, splugin, start, start_v6)


def dnsbl(args, **entry):
    e = {"plugin": splugin("dnsbl"), "args": args}
    e.update(entry)
    return e


TAGS_TO_HEADERS = probe([{"stage": "message", "tag_headers": [
    "dnsbl.score", "dnsbl.listed"]}], name="tags")


def test_dnsbl_reject_score_and_tags(make_server, dns):
    srv = start(make_server, dns, [
        dnsbl({"zones": [{"zone": "zen.test", "weight": 2}, "bl.test",
                         "clean.test"], "reject_score": 3}),
        TAGS_TO_HEADERS])
    c, r = connect(srv, "127.0.0.2")
    assert r == (554, "5.7.1 Service unavailable; client [127.0.0.2] blocked "
                 "using zen.test, bl.test"), r
    assert c.closed(timeout=3)
    text = deliver(srv, source="127.0.0.3")       # bl only: score 1
    assert header(text, "X-Tag-dnsbl.score") == ["1"]
    assert header(text, "X-Tag-dnsbl.listed") == ["bl.test"]
    text = deliver(srv, source="127.0.0.5")       # listed nowhere
    assert header(text, "X-Tag-dnsbl.score") == ["(none)"]
    assert header(text, "X-Tag-dnsbl.listed") == ["(none)"]


def test_dnsbl_thresholds_codes_and_error_answers(make_server, dns):
    """reject_score 2 and tag_score 2: bl alone (1) neither rejects nor
    tags; zen with `codes` lists only on those answers; a 127.255.255.x
    answer is an error code: not listed, warned about."""
    srv = start(make_server, dns, [
        dnsbl({"zones": [{"zone": "zen.test", "weight": 2,
                          "codes": ["127.0.0.4"]}, "bl.test"],
               "reject_score": 2, "tag_score": 2}),
        TAGS_TO_HEADERS])
    text = deliver(srv, source="127.0.0.3")
    assert header(text, "X-Tag-dnsbl.score") == ["(none)"]
    text = deliver(srv, source="127.0.0.2")       # zen answers .2: no code
    assert header(text, "X-Tag-dnsbl.score") == ["(none)"]
    c, r = connect(srv, "127.0.0.4")              # zen .4; bl error code
    assert r == (554, "5.7.1 Service unavailable; client [127.0.0.4] blocked "
                 "using zen.test"), r
    c.close()
    helpers.wait_for(lambda: "bl.test answered error code 127.255.255.254 "
                     "for 127.0.0.4" in srv.run_log(), timeout=3,
                     msg="the error-code warning")


def test_dnsbl_failing_zones_count_as_not_listed(make_server, dns):
    """A zone that times out (1 s) and one that is refused do not list;
    the others still decide; both failures are logged."""
    srv = start(make_server, dns, [dnsbl({
        "zones": ["slow.test", "refused.invalid", "bl.test"],
        "reject_score": 1})])
    t0 = time.monotonic()
    c, r = connect(srv, "127.0.0.3")
    took = time.monotonic() - t0
    assert r == (554, "5.7.1 Service unavailable; client [127.0.0.3] blocked "
                 "using bl.test"), r
    assert 0.8 <= took < 5, took
    c.close()
    c, r = connect(srv, "127.0.0.5")
    check(r, 220)
    c.close()
    log = srv.run_log()
    for zone in ("slow.test", "refused.invalid"):
        assert f"dnsbl: lookup of 127.0.0.3 in {zone} failed" in log, log


def test_dnsbl_entry_timeout_cancels_lookups(make_server, dns):
    """DNS slower (3 s) than the entry's timeout (1 s): the call is
    cancelled, on_error tempfail answers 421 at connect, and the late
    answers are dropped (the server keeps working)."""
    srv = start(make_server, dns, [dnsbl({"zones": ["slow.test", "bl.test"],
                                          "reject_score": 1},
                                         timeout="1s")], dns_timeout="3s")
    c, r = connect(srv, "127.0.0.3")
    assert r == (421, TEMP), r
    c.close()
    time.sleep(2.5)                 # the late answers come and are dropped
    assert srv.alive()
    assert "reason=timeout" in srv.run_log()


def test_dnsbl_stage_rcpt(make_server, dns):
    """stage: rcpt: the banner comes, each RCPT is refused with 550 5.7.1;
    the lookup is done once per session."""
    srv = start(make_server, dns, [dnsbl({"zones": ["bl.test"],
                                          "reject_score": 1,
                                          "stage": "rcpt"})])
    c, r = session_to(srv, "rcpt", source="127.0.0.3")
    want = (550, "5.7.1 Service unavailable; client [127.0.0.3] blocked "
            "using bl.test")
    assert r == want, r
    assert c.cmd("RCPT TO:<bob@example.test>") == want
    c.close()
    assert srv.run_log().count("dnsbl: 127.0.0.3 listed by bl.test") == 1
    deliver(srv, source="127.0.0.5")


def test_dnsbl_ipv6_client(make_server, dns):
    """IPv6 clients are looked up in nibble format (RFC 5782)."""
    srv, port6 = start_v6(make_server, dns, [dnsbl({"zones": ["zen.test"],
                                                    "reject_score": 1})])
    c = Raw6(port6)
    assert c.reply() == (554, "5.7.1 Service unavailable; client [::1] "
                         "blocked using zen.test")
    c.close()
