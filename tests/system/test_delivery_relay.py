"""Routing and relay control of outbound delivery (issue 4): who may relay,
which next hop each recipient goes to (routes: exact > .domain > "*",
transports: names, discard, local domains, address literals, a Lua
filter's route:<rcpt> tag), checked on what a programmable Downstream
received and on the delivery log lines."""
import os
import random
import re
import socket

import pytest

from dns_server import DnsServer
from downstream import Downstream
from helpers import log_events as events
from helpers import wait_deliveries as deliveries
from helpers import wait_log_events as wait_event
from helpers import (check, ehlo, message, queued_id, send_data,
                     submit_message, wait_for)

STAR = '"*"'            # a YAML key: a bare * would be an alias
TRUSTED = ["127.0.0.0/8"]
WAIT = 10.0             # generous bounds for a loaded machine


def smtp_route(d):
    return f"smtp:[127.0.0.1]:{d.port}"


def submit(srv, sender, rcpts, data=None, mail_params="", rcpt_params=None):
    """One message over a raw session; every RCPT must be taken. -> qid"""
    return submit_message(srv, sender, rcpts, data or (message() + ".\r\n"),
                          mail_params, rcpt_params)


def all_rcpts(d):
    return sorted(r for m in d.messages for r in m.rcpt_tos)


def commands(d, verb):
    return [a for _, v, a in d.commands() if v == verb]


# -- relay control -----------------------------------------------------------

def test_trusted_client_relays_through_star_route(make_server):
    """A trusted client may relay to any domain; "*" sends it to the
    smarthost with the envelope as given."""
    with Downstream() as d:
        srv = make_server({"trusted_networks": TRUSTED,
                           "routes": {STAR: smtp_route(d)}})
        qid = submit(srv, "alice@example.test",
                     ["x@remote.test", "y@other.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.mail_from == "alice@example.test"
        assert sorted(m.rcpt_tos) == ["x@remote.test", "y@other.test"]
        assert m.reply.startswith("250")
        res = deliveries(srv, qid, 2)
        for r in ("x@remote.test", "y@other.test"):
            assert res[r]["status"] == "sent", res[r]
            assert res[r]["dsn"] == "2.0.0", res[r]
            assert f":{d.port}" in res[r]["relay"], res[r]
        wait_event(srv, qid, "removed")
        srv.wait_queue_empty()


def test_untrusted_client_is_no_open_relay(make_server):
    """A stranger gets 554 5.7.1 for a remote domain (and an address
    literal), even with a "*" smarthost route; nothing is queued and no
    connection is made downstream."""
    with Downstream() as d:
        srv = make_server({"routes": {STAR: smtp_route(d)}})
        c = srv.raw()
        ehlo(c)
        check(c.cmd("MAIL FROM:<spammer@remote.test>"), 250, "2.1.0")
        check(c.cmd("RCPT TO:<victim@remote.test>"), 554, "5.7.1",
              "relay access denied")
        check(c.cmd("RCPT TO:<victim@[127.0.0.1]>"), 554, "5.7.1")
        check(c.cmd("RCPT TO:<victim@Sub.Example.Test>"), 554, "5.7.1")
        code, _ = c.cmd("DATA")
        assert code in (503, 554), code
        c.cmd("QUIT")
        c.close()
        assert srv.queued_ids() == []
        assert not events(srv, event="queued")
        assert d.connections == 0


def test_untrusted_mixed_local_and_remote(make_server):
    """From a stranger, the local recipient is taken and the remote one
    refused: only alice gets the message, nothing goes downstream."""
    with Downstream() as d:
        srv = make_server({"routes": {STAR: smtp_route(d)}})
        c = srv.raw()
        ehlo(c)
        check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
        check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
        check(c.cmd("RCPT TO:<x@remote.test>"), 554, "5.7.1")
        qid = queued_id(send_data(c, message() + ".\r\n"))
        c.cmd("QUIT")
        c.close()
        srv.wait_mail("alice", timeout=WAIT)
        res = deliveries(srv, qid, 1)
        assert list(res) == ["alice@example.test"]
        srv.wait_queue_empty()
        assert d.connections == 0


def test_relay_domain_accepted_from_anyone(make_server):
    """domains.relay is taken from an untrusted client and goes to its
    route (not to the "*" one); its subdomains are not relay domains."""
    with Downstream() as part, Downstream() as other:
        srv = make_server({"domains": {"relay": ["partner.test"]},
                           "routes": {"partner.test": smtp_route(part),
                                      STAR: smtp_route(other)}})
        c = srv.raw()
        ehlo(c)
        check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
        check(c.cmd("RCPT TO:<bob@partner.test>"), 250, "2.1.5")
        check(c.cmd("RCPT TO:<x@sub.partner.test>"), 554, "5.7.1")
        qid = queued_id(send_data(c, message() + ".\r\n"))
        c.cmd("QUIT")
        c.close()
        [m] = part.wait_messages(1, timeout=WAIT)
        assert m.mail_from == "s@remote.test"
        assert m.rcpt_tos == ["bob@partner.test"]
        assert deliveries(srv, qid, 1)["bob@partner.test"]["status"] == \
            "sent"
        srv.wait_queue_empty()
        assert other.connections == 0


def test_relay_domain_is_case_insensitive(make_server):
    """Domains are case-insensitive: RCPT TO:<Bob@PARTNER.Test> from a
    stranger is a relay domain recipient like bob@partner.test."""
    with Downstream() as part:
        srv = make_server({"domains": {"relay": ["partner.test"]},
                           "routes": {"partner.test": smtp_route(part)}})
        qid = submit(srv, "s@remote.test", ["Bob@PARTNER.Test"])
        [m] = part.wait_messages(1, timeout=WAIT)
        assert [r.lower() for r in m.rcpt_tos] == ["bob@partner.test"]
        wait_event(srv, qid, "removed")


def test_relay_domain_from_trusted_client(make_server):
    """A relay domain from a trusted client: the same route."""
    with Downstream() as part:
        srv = make_server({"trusted_networks": TRUSTED,
                           "domains": {"relay": ["partner.test"]},
                           "routes": {"partner.test": smtp_route(part)}})
        qid = submit(srv, "alice@example.test", ["carol@partner.test"])
        [m] = part.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["carol@partner.test"]
        wait_event(srv, qid, "removed")


# -- route selection ---------------------------------------------------------

def test_route_precedence(make_server):
    """exact domain > longest .domain > shorter .domain > "*"; ".corp.test"
    covers subdomains only, not corp.test itself."""
    with Downstream() as exact, Downstream() as deep, \
            Downstream() as sub, Downstream() as star:
        srv = make_server({"trusted_networks": TRUSTED, "routes": {
            STAR: smtp_route(star),
            ".corp.test": smtp_route(sub),
            "exact.corp.test": smtp_route(exact),
            ".deep.corp.test": smtp_route(deep)}})
        rcpts = ["a@exact.corp.test", "b@x.corp.test", "c@y.deep.corp.test",
                 "d@corp.test", "e@elsewhere.test", "f@x.exact.corp.test",
                 "g@deep.corp.test"]
        qid = submit(srv, "alice@example.test", rcpts)
        res = deliveries(srv, qid, len(rcpts))
        assert all(r["status"] == "sent" for r in res.values()), res
        assert all_rcpts(exact) == ["a@exact.corp.test"]
        assert all_rcpts(deep) == ["c@y.deep.corp.test"]
        # the exact entry does not cover subdomains: .corp.test does;
        # deep.corp.test itself is a subdomain of corp.test only
        assert all_rcpts(sub) == ["b@x.corp.test", "f@x.exact.corp.test",
                                  "g@deep.corp.test"]
        assert all_rcpts(star) == ["d@corp.test", "e@elsewhere.test"]
        # one transaction per next hop
        for d in (exact, deep, sub, star):
            assert len(d.messages) == 1, d.commands()


def test_route_domain_case_insensitive(make_server):
    """A recipient domain in capitals still matches its routes: entry."""
    with Downstream() as exact, Downstream() as star:
        srv = make_server({"trusted_networks": TRUSTED, "routes": {
            STAR: smtp_route(star), "exact.test": smtp_route(exact)}})
        qid = submit(srv, "alice@example.test", ["Joe@EXACT.Test"])
        [m] = exact.wait_messages(1, timeout=WAIT)
        assert [r.lower() for r in m.rcpt_tos] == ["joe@exact.test"]
        wait_event(srv, qid, "removed")
        assert star.connections == 0


def test_transport_names(make_server):
    """routes: values may name transports: entries; two domains sharing a
    transport go to the same next hop, in one transaction."""
    with Downstream() as hub, Downstream() as star:
        srv = make_server({
            "trusted_networks": TRUSTED,
            "transports": {"hub": smtp_route(hub),
                           "fallback": smtp_route(star)},
            "routes": {"one.test": "hub", "two.test": "hub",
                       STAR: "fallback"}})
        qid = submit(srv, "alice@example.test",
                     ["a@one.test", "b@two.test", "c@three.test"])
        deliveries(srv, qid, 3)
        assert all_rcpts(hub) == ["a@one.test", "b@two.test"]
        assert len(hub.messages) == 1
        assert all_rcpts(star) == ["c@three.test"]


def test_route_discard(make_server):
    """A discard route accepts and drops: logged as sent with relay
    discard, nothing goes to any next hop, the message is removed."""
    with Downstream() as star:
        srv = make_server({"trusted_networks": TRUSTED,
                           "routes": {"void.test": "discard",
                                      STAR: smtp_route(star)}})
        qid = submit(srv, "alice@example.test", ["x@void.test"])
        [r] = deliveries(srv, qid, 1).values()
        assert r["status"] == "sent" and r["relay"] == "discard", r
        wait_event(srv, qid, "removed")
        srv.wait_queue_empty()
        assert star.connections == 0
        assert srv.read_mail("alice") == []      # no DSN either


def test_discard_route_for_local_domain(make_server):
    """routes: can override a local domain too: alice's mail is dropped,
    not written to her Maildir."""
    srv = make_server({"routes": {"example.test": "discard"}})
    qid = submit(srv, "s@remote.test", ["alice@example.test"])
    [r] = deliveries(srv, qid, 1).values()
    assert r["status"] == "sent" and r["relay"] == "discard", r
    wait_event(srv, qid, "removed")
    assert srv.read_mail("alice") == []


def test_local_domain_stays_local_with_star_route(make_server):
    """"*" is for non-local domains: local recipients of the same message
    still go to their Maildir, the remote one to the smarthost."""
    with Downstream() as star:
        srv = make_server({"trusted_networks": TRUSTED,
                           "routes": {STAR: smtp_route(star)}})
        qid = submit(srv, "s@remote.test",
                     ["alice@example.test", "x@remote.test",
                      "bob@example.test"])
        [m] = star.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["x@remote.test"]
        srv.wait_mail("alice", timeout=WAIT)
        srv.wait_mail("bob", timeout=WAIT)
        res = deliveries(srv, qid, 3)
        assert all(r["status"] == "sent" for r in res.values()), res
        srv.wait_queue_empty()
        assert len(star.messages) == 1


def test_unreachable_route_defers_not_bounces(make_server):
    """A route to a closed port: a temporary failure (4.4.1), the message
    stays queued, and no bounce is sent."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                  # nothing listens there now
    srv = make_server({"trusted_networks": TRUSTED,
                       "routes": {STAR: f"smtp:[127.0.0.1]:{port}"}})
    qid = submit(srv, "alice@example.test", ["x@remote.test"])
    [r] = deliveries(srv, qid, 1).values()
    assert r["status"] == "deferred", r
    assert r["dsn"].startswith("4."), r
    wait_event(srv, qid, "deferred")
    assert qid in srv.queued_ids()
    assert srv.read_mail("alice") == []


# -- address literals --------------------------------------------------------

def _loopback_downstream_on_25():
    """A Downstream on port 25 of a random 127.x.y.z address (literals are
    delivered to port 25), or None if that cannot be bound here."""
    for _ in range(5):
        host = "127.%d.%d.%d" % (random.randint(1, 254),
                                 random.randint(0, 254),
                                 random.randint(2, 254))
        try:
            return Downstream(host=host, port=25)
        except OSError:
            continue
    return None


def test_address_literal_recipient(make_server):
    """user@[a.b.c.d] from a trusted client is delivered to that address
    (port 25), bypassing MX lookups; the literal stays in RCPT TO."""
    d = _loopback_downstream_on_25()
    if d is None:
        pytest.skip("cannot listen on port 25 of a loopback address")
    with d:
        srv = make_server({"trusted_networks": TRUSTED})
        rcpt = f"user@[{d.host}]"
        qid = submit(srv, "alice@example.test", [rcpt])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == [rcpt]
        assert m.mail_from == "alice@example.test"
        r = deliveries(srv, qid, 1)[rcpt]
        assert r["status"] == "sent", r
        assert f"{d.host}]:25" in r["relay"], r
        wait_event(srv, qid, "removed")


def test_address_literal_follows_star_route(make_server):
    """With a "*" route (a smarthost), address literals go to it too, like
    every other remote domain, not straight to the literal's port 25."""
    with Downstream() as d:
        srv = make_server({"trusted_networks": TRUSTED,
                           "routes": {'"*"': smtp_route(d)}})
        rcpt = "user@[192.0.2.77]"
        qid = submit(srv, "alice@example.test", [rcpt])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == [rcpt]
        r = deliveries(srv, qid, 1)[rcpt]
        assert r["status"] == "sent", r
        assert f":{d.port}" in r["relay"], r


# -- routes set by a Lua filter ----------------------------------------------

def lua_file(tmp_path, text, name="route.lua"):
    path = os.path.join(str(tmp_path), name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_lua_rcpt_tag_routes_per_recipient(make_server, tmp_path):
    """A Lua filter at the rcpt stage tags route:<rcpt>: one recipient goes
    to downstream A (a route spec), another to B (a transports: name), a
    third, untagged, follows routes: ("*")."""
    with Downstream() as a, Downstream() as b, Downstream() as star:
        script = lua_file(tmp_path, f"""
local f = {{}}
function f.rcpt(ctx)
  if ctx.rcpt == "one@remote.test" then
    ctx:tag("route:" .. ctx.rcpt, "smtp:[127.0.0.1]:{a.port}")
  elseif ctx.rcpt == "two@remote.test" then
    ctx:tag("route:" .. ctx.rcpt, "to_b")
  end
end
return f
""")
        srv = make_server({"trusted_networks": TRUSTED,
                           "transports": {"to_b": smtp_route(b)},
                           "routes": {STAR: smtp_route(star)},
                           "pipeline": [{"lua": script}]})
        qid = submit(srv, "alice@example.test",
                     ["one@remote.test", "two@remote.test",
                      "three@remote.test"])
        res = deliveries(srv, qid, 3)
        assert all(r["status"] == "sent" for r in res.values()), res
        assert all_rcpts(a) == ["one@remote.test"]
        assert all_rcpts(b) == ["two@remote.test"]
        assert all_rcpts(star) == ["three@remote.test"]


def test_lua_tag_routes_local_recipient_away(make_server, tmp_path):
    """A filter's route beats the local delivery: alice's copy goes to the
    downstream, bob's to his Maildir."""
    with Downstream() as a:
        script = lua_file(tmp_path, f"""
return {{ rcpt = function(ctx)
  if ctx.rcpt == "alice@example.test" then
    ctx:tag("route:" .. ctx.rcpt, "smtp:[127.0.0.1]:{a.port}")
  end
end }}
""")
        srv = make_server({"pipeline": [{"lua": script}]})
        qid = submit(srv, "s@remote.test",
                     ["alice@example.test", "bob@example.test"])
        [m] = a.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["alice@example.test"]
        srv.wait_mail("bob", timeout=WAIT)
        deliveries(srv, qid, 2)
        srv.wait_queue_empty()
        assert srv.read_mail("alice") == []


def test_lua_message_route_tag_for_all(make_server, tmp_path):
    """The plain "route" tag routes every recipient of the message."""
    with Downstream() as a, Downstream() as star:
        script = lua_file(tmp_path, f"""
return {{ mail = function(ctx)
  ctx:tag("route", "smtp:[127.0.0.1]:{a.port}")
end }}
""")
        srv = make_server({"trusted_networks": TRUSTED,
                           "routes": {STAR: smtp_route(star)},
                           "pipeline": [{"lua": script}]})
        qid = submit(srv, "alice@example.test",
                     ["x@remote.test", "y@other.test"])
        deliveries(srv, qid, 2)
        assert all_rcpts(a) == ["x@remote.test", "y@other.test"]
        assert star.connections == 0


def test_lua_bad_route_tag_defers(make_server, tmp_path):
    """A route tag that is neither a route nor a transport: a temporary
    failure 4.3.5 (the operator can fix it), not a bounce."""
    script = lua_file(tmp_path, """
return { rcpt = function(ctx)
  ctx:tag("route:" .. ctx.rcpt, "nowhere")
end }
""")
    srv = make_server({"pipeline": [{"lua": script}]})
    qid = submit(srv, "s@remote.test", ["alice@example.test"])
    [r] = deliveries(srv, qid, 1).values()
    assert r["status"] == "deferred" and r["dsn"] == "4.3.5", r
    assert "nowhere" in r["text"], r
    assert qid in srv.queued_ids()
    assert srv.read_mail("alice") == []


# -- mail loops --------------------------------------------------------------

def test_mail_loop_is_stopped(make_server):
    """A "*" route that points back at this server (a classic
    misconfiguration, like an MX that names us) must not circulate a
    message for ever: after a bounded number of hops (RFC 5321 6.3: count
    the Received: fields, threshold at least 100) the message fails with
    5.4.x and the sender gets one bounce."""
    srv = make_server({"trusted_networks": TRUSTED}, start=False)
    srv.cfg["routes"] = {STAR: f"smtp:[127.0.0.1]:{srv.port}"}
    srv.write_config()
    srv.start()
    submit(srv, "alice@example.test", ["x@remote.test"])
    bounced = wait_for(lambda: srv.maildir_files("alice"), timeout=12,
                       fail=False)
    hops = len(events(srv, event="queued"))
    assert bounced, f"no bounce after 12 s: still looping, {hops} hops"
    [raw] = srv.wait_mail("alice", timeout=WAIT)
    assert re.search(rb"Status: 5\.4\.\d", raw), raw[:3000]
    assert len(events(srv, event="queued")) <= 300
    srv.wait_queue_empty(timeout=WAIT)


def test_bracketed_host_route_uses_address_not_mx(make_server, tmp_path):
    """A route "smtp:[name]:port" connects to name's address (A record),
    without an MX lookup: here name's MX points at a host where nothing
    listens, so following it would defer."""
    records = {"A": {"smarthost.test": "127.0.0.1",
                     "wrong.smarthost.test": "127.0.0.3"},
               "MX": {"smarthost.test": [(10, "wrong.smarthost.test")]}}
    with Downstream() as d, DnsServer(str(tmp_path), records) as dns:
        srv = make_server({
            "trusted_networks": TRUSTED,
            "dns": {"servers": [f"127.0.0.1:{dns.port}"]},
            "routes": {STAR: f"smtp:[smarthost.test]:{d.port}"}})
        qid = submit(srv, "alice@example.test", ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["x@remote.test"]
        r = deliveries(srv, qid, 1)["x@remote.test"]
        assert r["status"] == "sent", r
        assert r["relay"].startswith("smarthost.test[127.0.0.1]"), r
