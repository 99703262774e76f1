"""Metrics (issue 7): the Prometheus endpoint on metrics: {address, port},
scraped over HTTP and checked against the traffic each test sent:
sessions by listener, messages accepted and refused by stage and reason,
deliveries by transport and result with their latency histogram, filter
latency per filter (Lua and milter), filter errors, Lua errors and budget
hits, TLS handshakes, AUTH results, and the queue by state.
"""
import re
import smtplib
import time
import urllib.error
import urllib.request

import pytest

from helpers import message, wait_for
from procs import free_port

LINE = re.compile(r'^([a-z_]+)(\{([^}]*)\})? (\S+)$')


def scrape(srv):
    url = f"http://127.0.0.1:{srv.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(r.read().decode())


def parse(text):
    """{(name, frozenset(labels)): value}; every line must be well-formed."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith(
                "# TYPE "):
            continue
        m = LINE.match(line)
        assert m, f"malformed exposition line {line!r}"
        labels = frozenset()
        if m.group(3):
            labels = frozenset(tuple(kv.split("=", 1)) for kv in
                               re.findall(r'[a-z_]+="(?:[^"\\]|\\.)*"',
                                          m.group(3)))
            labels = frozenset((k, v.strip('"')) for k, v in labels)
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())), 0.0)


def scrape_until(srv, ok, name, timeout=5.0, **labels):
    """Scrape until ok(value of name{labels}) holds (bounded); the last
    scrape."""
    last = {}

    def check():
        last["m"] = scrape(srv)
        return ok(value(last["m"], name, **labels))
    wait_for(check, timeout=timeout, msg=f"{name} {labels}")
    return last["m"]


def metrics_server(make_server, **over):
    port = free_port()
    over.setdefault("metrics", {"address": "127.0.0.1", "port": port})
    srv = make_server(over)
    srv.metrics_port = port
    return srv


def send(srv, rcpts=("alice@example.test",), n=1):
    with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
        c.ehlo("client.example.test")
        for _ in range(n):
            c.mail("sender@remote.test")
            ok = [r for r in rcpts if c.rcpt(r)[0] == 250]
            if ok:
                c.data(message().encode())
            else:
                c.rset()


def test_sessions_messages_and_deliveries(make_server):
    srv = metrics_server(make_server)
    before = scrape(srv)
    send(srv, n=3)
    send(srv, rcpts=("nobody@example.test",))          # 550 unknown
    send(srv, rcpts=("far@elsewhere.test",))           # 554 relay
    srv.wait_mail("alice", count=3)
    m = scrape_until(srv, lambda v: v >= 3, "sluice_deliveries_total",
                     transport="maildir", result="sent")
    started = value(before, "sluice_smtp_sessions_total", listener="mx")
    assert value(m, "sluice_smtp_sessions_total", listener="mx") - \
        started == 3
    assert value(m, "sluice_smtp_sessions", listener="mx") == 0
    assert value(m, "sluice_messages_accepted_total", listener="mx") == 3
    assert value(m, "sluice_messages_rejected_total", stage="rcpt",
                 reason="unknown_user") == 1
    assert value(m, "sluice_messages_rejected_total", stage="rcpt",
                 reason="relay_denied") == 1
    assert value(m, "sluice_delivery_duration_seconds_count",
                 transport="maildir") == 3
    assert value(m, "sluice_delivery_duration_seconds_bucket",
                 transport="maildir", le="+Inf") == 3
    assert value(m, "sluice_queue_messages", state="active") == 0


def test_open_sessions_are_a_gauge(make_server):
    srv = metrics_server(make_server)
    c1 = smtplib.SMTP(srv.host, srv.port, timeout=10)
    c2 = smtplib.SMTP(srv.host, srv.port, timeout=10)
    assert value(scrape(srv), "sluice_smtp_sessions", listener="mx") == 2
    c1.quit()
    c2.quit()
    wait_for(lambda: value(scrape(srv), "sluice_smtp_sessions",
                           listener="mx") == 0)


def test_histogram_buckets_are_cumulative(make_server):
    srv = metrics_server(make_server)
    send(srv, n=2)
    srv.wait_mail("alice", count=2)
    m = scrape_until(srv, lambda v: v >= 2,
                     "sluice_delivery_duration_seconds_count",
                     transport="maildir")
    buckets = sorted(
        (float("inf") if dict(k[1])["le"] == "+Inf" else
         float(dict(k[1])["le"]), v) for k, v in m.items()
        if k[0] == "sluice_delivery_duration_seconds_bucket")
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] == 2


def test_queue_gauges_for_deferred_and_hold(make_server):
    srv = metrics_server(make_server, retry={"first": "1h"},
                         routes={'"*"': "smtp:[127.0.0.1]:9"},
                         trusted_networks=["127.0.0.0/8"])
    send(srv, rcpts=("far@elsewhere.test",), n=2)
    m = scrape_until(srv, lambda v: v == 2, "sluice_queue_messages",
                     timeout=15, state="deferred")
    assert value(m, "sluice_deliveries_total", transport="smtp",
                 result="deferred") == 2
    time.sleep(1.1)
    m = scrape(srv)
    assert value(m, "sluice_queue_oldest_seconds", state="deferred") >= 1
    assert value(m, "sluice_queue_messages", state="hold") == 0


LUA = """
local f = {}
function f.rcpt(ctx)
  if ctx.rcpt == "bob@example.test" then
    return reject(550, "5.7.1", "not bob")
  end
  if ctx.rcpt == "alice@example.test" and ctx.sender == "err@remote.test"
  then error("boom") end
  if ctx.sender == "loop@remote.test" then while true do end end
end
return f
"""


def test_filters_latency_errors_and_budget(make_server, tmp_path):
    script = tmp_path / "f.lua"
    script.write_text(LUA)
    srv = metrics_server(make_server, pipeline=[
        {"lua": str(script), "name": "policy", "budget": 100000,
         "on_error": "tempfail"}])
    send(srv, rcpts=("alice@example.test", "bob@example.test"))
    with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
        c.ehlo("client.example.test")
        c.mail("err@remote.test")
        assert c.rcpt("alice@example.test")[0] // 100 == 4
        c.rset()
        c.mail("loop@remote.test")
        assert c.rcpt("alice@example.test")[0] // 100 == 4
    m = scrape(srv)
    assert value(m, "sluice_messages_rejected_total", stage="rcpt",
                 reason="policy") == 1
    assert value(m, "sluice_messages_tempfailed_total", stage="rcpt",
                 reason="policy") == 2
    assert value(m, "sluice_filter_duration_seconds_count",
                 filter="policy") == 4
    assert value(m, "sluice_filter_errors_total", filter="policy") == 2
    assert value(m, "sluice_lua_errors_total", filter="policy") == 1
    assert value(m, "sluice_lua_budget_exceeded_total",
                 filter="policy") == 1


def test_milter_latency_by_name(make_server, milters):
    mt = milters.scripted({})
    srv = metrics_server(make_server, pipeline=[
        {"milter": mt.spec, "name": "scripted"}])
    send(srv)
    m = scrape(srv)
    # connect, helo, mail, rcpt, data, message: one call each at least
    assert value(m, "sluice_filter_duration_seconds_count",
                 filter="scripted") >= 6


def test_tls_and_auth_counts(make_server, tmp_path):
    from test_auth import USERS, crypt_hash, plain
    from tls_certs import TestPKI
    pki = TestPKI(tmp_path)
    cert = pki.issue("mx.example.test", ips=["127.0.0.1"])
    users = tmp_path / "users"
    users.write_text("".join(f"{u}:{crypt_hash(p, h)}\n"
                             for u, (p, h) in USERS.items()))
    srv = metrics_server(make_server, auth={"users_file": str(users),
                                            "failure_delay": "0s"})
    srv.cfg["listeners"][0].update(
        {"auth": "optional",
         "tls": {"mode": "optional", "cert": cert[0], "key": cert[1]}})
    srv.write_config()
    srv.restart()
    c = smtplib.SMTP(srv.host, srv.port, timeout=10)
    c.ehlo("c.test")
    c.starttls(context=pki.client_context())
    c.ehlo("c.test")
    assert c.docmd("AUTH", "PLAIN " + plain("sha@example.test", "x"))[0] \
        == 535
    u, (p, _) = "sha@example.test", USERS["sha@example.test"]
    assert c.docmd("AUTH", "PLAIN " + plain(u, p))[0] == 235
    c.quit()
    bad = smtplib.SMTP(srv.host, srv.port, timeout=10)
    bad.ehlo("c.test")
    bad.docmd("STARTTLS")
    bad.sock.sendall(b"this is not a TLS record\r\n" * 4)
    bad.close()
    m = scrape_until(srv, lambda v: v == 1, "sluice_tls_handshakes_total",
                     direction="inbound", result="failed")
    assert value(m, "sluice_tls_handshakes_total", direction="inbound",
                 result="ok") == 1
    assert value(m, "sluice_auth_total", result="ok") == 1
    assert value(m, "sluice_auth_total", result="failed") == 1


def test_only_metrics_path_and_get(make_server):
    srv = metrics_server(make_server)
    base = f"http://127.0.0.1:{srv.metrics_port}"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(base + "/", timeout=5)
    assert e.value.code == 404
    req = urllib.request.Request(base + "/metrics", data=b"x",
                                 method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 405
    assert scrape(srv)                        # still serving
    send(srv)                                 # and mail still flows
    srv.wait_mail("alice")
