"""MX routing with a private dnsmasq: preference order, fallback to the next
MX host, random choice among equal preferences, the implicit MX (A record),
null MX (RFC 7505), NXDOMAIN, a DNS server that does not answer, MX hosts
without an address, and a route "smtp:other.test:PORT" (MX of another
domain).

The MX hosts are Downstreams on 127.0.0.2 and 127.0.0.3 listening on the
SAME port, which sluiced uses for every MX host (delivery.port), so the
host reached tells which MX was chosen. The client is trusted (127.0.0.0/8)
and there are no routes unless a test says so. Bounces go to the local
sender alice@example.test."""
import email
import socket
import threading
import time

import pytest

from dns_server import DnsServer, free_port as free_udp_tcp_port
from downstream import Downstream
from helpers import log_deliveries, submit_message, wait_for, wait_log_event
from helpers import log_events as events

TRUSTED = ["127.0.0.0/8"]
WAIT = 10           # generous bound on waits (loaded machine)
MX1, MX2, MX3 = "127.0.0.2", "127.0.0.3", "127.0.0.4"


def shared_port(hosts=(MX1, MX2, MX3)):
    """A TCP port free on every one of `hosts` (at the time asked)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        ok = True
        for h in hosts:
            with socket.socket() as s:
                try:
                    s.bind((h, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no port free on all MX addresses")


def base_records(extra_mx=None, extra_a=None, nx=()):
    records = {
        "A": {"mx1.mx.test": MX1, "mx2.mx.test": MX2, "mx3.mx.test": MX3},
        "MX": {"dest.test": [(20, "mx2.mx.test"), (10, "mx1.mx.test")]},
        "NXDOMAIN": list(nx),
    }
    records["MX"].update(extra_mx or {})
    records["A"].update(extra_a or {})
    return records


def mx_server(make_server, dns_port, port, extra=None):
    over = {
        "trusted_networks": TRUSTED,
        "dns": {"servers": [f"127.0.0.1:{dns_port}"], "timeout": "1s",
                "attempts": 1},
        "delivery": {"port": port, "tls": "none"},
    }
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(over.get(k), dict):
            over[k] = dict(over[k], **v)
        else:
            over[k] = v
    return make_server(over)


def send(server, rcpts, sender="alice@example.test", subject="mx test"):
    text = (f"From: <{sender}>\r\nTo: <{rcpts[0]}>\r\nSubject: {subject}\r\n"
            f"\r\nbody of {subject}\r\n")
    return submit_message(server, sender, rcpts, text + ".\r\n")




def deliveries(server, qid, status=None):
    return log_deliveries(server, qid, status)


def wait_removed(server, qid, timeout=WAIT):
    wait_log_event(server, qid, "removed", timeout)


def dsn_status(raw):
    """{final recipient: (action, status, diagnostic)} of a DSN."""
    m = email.message_from_bytes(raw)
    assert m.get_content_type() == "multipart/report"
    out = {}
    for p in m.walk():
        if p.get_content_type() != "message/delivery-status":
            continue
        for block in p.get_payload()[1:]:
            rc = block.get("Final-Recipient", "").split(";", 1)[-1].strip()
            out[rc.lower()] = (block.get("Action", "").lower(),
                               block.get("Status", ""),
                               block.get("Diagnostic-Code", ""))
    return out


class TinySmtp6:
    """A minimal SMTP server on [::1] (Downstream is IPv4 only): accepts
    everything, records each message's RCPT addresses."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("::1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.rcpts = []
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    self._session(conn.makefile("rwb"))
                except OSError:
                    pass

    def _session(self, f):
        def say(line):
            f.write(line.encode() + b"\r\n")
            f.flush()
        say("220 v6.test ESMTP")
        rcpts = []
        while True:
            line = f.readline(4096)
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                say("250-v6.test\r\n250 8BITMIME")
            elif verb == b"RCPT":
                rcpts.append(line.decode().split(":", 1)[1].strip()
                             .strip("<>"))
                say("250 2.1.5 ok")
            elif verb == b"DATA":
                say("354 go")
                while f.readline(65536) not in (b".\r\n", b""):
                    pass
                self.rcpts.append(rcpts)
                rcpts = []
                say("250 2.0.0 queued")
            elif verb == b"QUIT":
                say("221 bye")
                return
            else:
                say("250 ok")

    def stop(self):
        self.stop_ev.set()
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def port():
    return shared_port()


# -- preference and fallback ---------------------------------------------------

def test_mx_lowest_preference_first(make_server, tmp_path, port):
    """The MX host with the lowest preference gets the mail while it
    works; the other is never contacted."""
    with DnsServer(str(tmp_path), base_records()) as dns, \
            Downstream(port=port, host=MX1) as d1, \
            Downstream(port=port, host=MX2) as d2:
        srv = mx_server(make_server, dns.port, port)
        qids = [send(srv, [f"u{i}@dest.test"], subject=f"m{i}")
                for i in range(3)]
        d1.wait_messages(3, timeout=WAIT)
        for q in qids:
            wait_removed(srv, q)
        assert d2.connections == 0
        assert sorted(r for m in d1.messages for r in m.rcpt_tos) == \
            ["u0@dest.test", "u1@dest.test", "u2@dest.test"]
        for q in qids:
            [e] = deliveries(srv, q, "sent")
            assert f"mx1.mx.test[{MX1}]:{port}" in e["relay"], e


def test_mx_fallback_when_first_refuses_connections(make_server, tmp_path,
                                                    port):
    """Nothing listens on the first MX host: the second one gets the mail
    in the same attempt (no deferral)."""
    with DnsServer(str(tmp_path), base_records()) as dns, \
            Downstream(port=port, host=MX2) as d2:
        srv = mx_server(make_server, dns.port, port)
        qid = send(srv, ["r@dest.test"])
        [m] = d2.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["r@dest.test"]
        wait_removed(srv, qid)
        assert not deliveries(srv, qid, "deferred")
        [e] = deliveries(srv, qid, "sent")
        assert f"mx2.mx.test[{MX2}]" in e["relay"], e
        assert any(MX1 in c.get("relay", "")
                   for c in events(srv, event="connect-failed"))


@pytest.mark.parametrize("knobs", [
    {"greeting": "421 4.3.2 mx1 busy"},
    {"greeting": "450 4.3.2 mx1 not now"},
    {"command_replies": {"EHLO": "421 4.3.2 shutting down"}},
], ids=["greeting-421", "greeting-450", "ehlo-421"])
def test_mx_fallback_on_temporary_refusal(make_server, tmp_path, port,
                                          knobs):
    """The first MX host answers 421/4xx before any transaction: the next
    MX host is tried at once and gets the mail."""
    with DnsServer(str(tmp_path), base_records()) as dns, \
            Downstream(port=port, host=MX1, **knobs) as d1, \
            Downstream(port=port, host=MX2) as d2:
        srv = mx_server(make_server, dns.port, port)
        qid = send(srv, ["r@dest.test"])
        [m] = d2.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["r@dest.test"]
        wait_removed(srv, qid)
        assert d1.connections >= 1 and d1.messages == []
        assert not deliveries(srv, qid, "deferred")


def test_mx_fallback_when_first_never_greets(make_server, tmp_path, port):
    """The first MX host accepts the connection but never greets: after
    delivery.greeting_timeout the next MX host gets the mail."""
    with DnsServer(str(tmp_path), base_records()) as dns, \
            Downstream(port=port, host=MX1, never_greet=True) as d1, \
            Downstream(port=port, host=MX2) as d2:
        srv = mx_server(make_server, dns.port, port, {
            "delivery": {"greeting_timeout": "1s"}})
        qid = send(srv, ["r@dest.test"])
        [m] = d2.wait_messages(1, timeout=WAIT)
        wait_removed(srv, qid)
        assert d1.connections >= 1
        assert not deliveries(srv, qid, "deferred")


def test_mx_three_hosts_third_one_works(make_server, tmp_path, port):
    """MX 10 refuses connections, MX 20 greets with 421, MX 30 works: the
    message reaches MX 30 in the first attempt."""
    records = base_records(extra_mx={"three.test": [
        (30, "mx3.mx.test"), (10, "mx1.mx.test"), (20, "mx2.mx.test")]})
    with DnsServer(str(tmp_path), records) as dns, \
            Downstream(port=port, host=MX2, greeting="421 4.3.2 busy") as d2, \
            Downstream(port=port, host=MX3) as d3:
        srv = mx_server(make_server, dns.port, port)
        qid = send(srv, ["r@three.test"])
        [m] = d3.wait_messages(1, timeout=WAIT)
        wait_removed(srv, qid)
        assert d2.connections >= 1 and d2.messages == []
        assert not deliveries(srv, qid, "deferred")
        [e] = deliveries(srv, qid, "sent")
        assert f"mx3.mx.test[{MX3}]" in e["relay"], e


def test_mx_all_hosts_down_defers_then_delivers(make_server, tmp_path,
                                                port):
    """Every MX host down: deferred (4.x), not bounced; when the backup
    host comes up the retry delivers there."""
    with DnsServer(str(tmp_path), base_records()) as dns:
        srv = mx_server(make_server, dns.port, port)
        qid = send(srv, ["r@dest.test"])
        wait_for(lambda: deliveries(srv, qid, "deferred"), timeout=WAIT,
                 msg="a deferral")
        [e] = deliveries(srv, qid, "deferred")[:1]
        assert e["dsn"].startswith("4."), e
        with Downstream(port=port, host=MX2) as d2:
            d2.wait_messages(1, timeout=WAIT)
            wait_removed(srv, qid)
        assert not deliveries(srv, qid, "bounced")
        assert srv.read_mail("alice") == []


def test_mx_equal_preference_randomised(make_server, tmp_path, port):
    """Two MX hosts of equal preference: over 20 messages (one per
    connection, no connection reuse) both get some (RFC 5321 5.1: pick one
    at random to spread the load)."""
    records = base_records(
        extra_mx={"even.test": [(10, "mx1.mx.test"), (10, "mx2.mx.test")]})
    with DnsServer(str(tmp_path), records) as dns, \
            Downstream(port=port, host=MX1) as d1, \
            Downstream(port=port, host=MX2) as d2:
        srv = mx_server(make_server, dns.port, port, {
            "delivery": {"messages_per_connection": 1,
                         "connection_cache": 0}})
        qids = [send(srv, [f"u{i}@even.test"], subject=f"m{i}")
                for i in range(20)]
        wait_for(lambda: len(d1.messages) + len(d2.messages) >= 20,
                 timeout=WAIT * 2, msg="20 messages at the MX hosts")
        for q in qids:
            wait_removed(srv, q)
        n1, n2 = len(d1.messages), len(d2.messages)
        assert n1 + n2 == 20
        assert n1 > 0 and n2 > 0, f"mx1 got {n1}, mx2 got {n2}"


def test_mx_host_ipv6_after_ipv4(make_server, tmp_path):
    """An MX host with an A record (nothing listening there) and an AAAA
    record ::1: the IPv6 address is tried next and gets the mail."""
    v6 = TinySmtp6()
    try:
        records = base_records(
            extra_mx={"six.test": [(10, "dual.mx.test")]},
            extra_a={"dual.mx.test": MX3})
        records["AAAA"] = {"dual.mx.test": "::1"}
        with DnsServer(str(tmp_path), records) as dns:
            srv = mx_server(make_server, dns.port, v6.port)
            qid = send(srv, ["r@six.test"])
            wait_removed(srv, qid)
            assert v6.rcpts == [["r@six.test"]]
            [e] = deliveries(srv, qid, "sent")
            assert "[::1]" in e["relay"], e
    finally:
        v6.stop()


def test_mx_large_answer_over_tcp(make_server, tmp_path, port):
    """40 MX records with long names (an answer too big for UDP, so the
    resolver must retry over TCP): the lowest preference still wins."""
    mxs = [(100 + i, f"filler-{i:02d}-" + "x" * 40 + ".mx.test")
           for i in range(40)]
    mxs.insert(17, (7, "mx1.mx.test"))
    records = base_records(extra_mx={"big.test": mxs})
    with DnsServer(str(tmp_path), records) as dns, \
            Downstream(port=port, host=MX1) as d1:
        srv = mx_server(make_server, dns.port, port)
        qid = send(srv, ["r@big.test"])
        [m] = d1.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["r@big.test"]
        wait_removed(srv, qid)


def test_second_dns_server_used(make_server, tmp_path, port):
    """dns.servers lists a server that never answers first: the second one
    answers and the mail is delivered."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        with DnsServer(str(tmp_path), base_records()) as dns, \
                Downstream(port=port, host=MX1) as d1:
            srv = mx_server(make_server, dns.port, port, {"dns": {
                "servers": [f"127.0.0.1:{silent.getsockname()[1]}",
                            f"127.0.0.1:{dns.port}"]}})
            qid = send(srv, ["r@dest.test"])
            d1.wait_messages(1, timeout=WAIT)
            wait_removed(srv, qid)
    finally:
        silent.close()


# -- no MX, null MX, NXDOMAIN, DNS trouble -----------------------------------------

def test_no_mx_uses_the_domains_address(make_server, tmp_path, port):
    """A domain without MX records but with an A record is its own mail
    host (RFC 5321 5.1, implicit MX)."""
    records = base_records(extra_a={"plain.test": MX3})
    with DnsServer(str(tmp_path), records) as dns, \
            Downstream(port=port, host=MX3) as d3:
        srv = mx_server(make_server, dns.port, port)
        qid = send(srv, ["r@plain.test"])
        [m] = d3.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["r@plain.test"]
        wait_removed(srv, qid)
        [e] = deliveries(srv, qid, "sent")
        assert f"plain.test[{MX3}]" in e["relay"], e


def test_null_mx_bounces_at_once(make_server, tmp_path, port):
    """RFC 7505 null MX ("MX 0 ."): a permanent failure 5.1.10, bounced at
    the first attempt without retry and without any connection."""
    records = base_records(extra_mx={"null.test": [(0, ".")]},
                           extra_a={"null.test": MX1})
    with DnsServer(str(tmp_path), records) as dns, \
            Downstream(port=port, host=MX1) as d1:
        srv = mx_server(make_server, dns.port, port)
        qid = send(srv, ["nobody@null.test"])
        [bounce] = srv.wait_mail("alice", 1, timeout=WAIT)
        st = dsn_status(bounce)
        assert st["nobody@null.test"][:2] == ("failed", "5.1.10"), st
        wait_removed(srv, qid)
        [e] = deliveries(srv, qid)
        assert e["status"] == "bounced" and e["dsn"] == "5.1.10", e
        assert d1.connections == 0
        time.sleep(1.5)                 # longer than retry.first
        assert len(deliveries(srv, qid)) == 1
        assert len(srv.read_mail("alice")) == 1


def test_nxdomain_bounces(make_server, tmp_path, port):
    """A recipient domain that does not exist (NXDOMAIN for MX) bounces at
    once with a 5.x.x status; nothing is retried."""
    records = base_records(nx=["gone.test"])
    with DnsServer(str(tmp_path), records) as dns:
        srv = mx_server(make_server, dns.port, port)
        qid = send(srv, ["x@gone.test"])
        [bounce] = srv.wait_mail("alice", 1, timeout=WAIT)
        action, status, _ = dsn_status(bounce)["x@gone.test"]
        assert action == "failed" and status in ("5.1.2", "5.4.4"), status
        wait_removed(srv, qid)
        assert not deliveries(srv, qid, "deferred")


@pytest.mark.parametrize("kind", ["closed-port", "silent"])
def test_dns_not_answering_defers(make_server, tmp_path, port, kind):
    """A DNS server that does not answer (nothing on its UDP port, or a
    socket that never replies): deferred with 4.4.3 and retried, never
    bounced."""
    silent = None
    if kind == "silent":
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        dns_port = silent.getsockname()[1]
    else:
        dns_port = free_udp_tcp_port()
    try:
        with Downstream(port=port, host=MX1) as d1:
            srv = mx_server(make_server, dns_port, port)
            qid = send(srv, ["r@dest.test"])
            wait_for(lambda: len(deliveries(srv, qid, "deferred")) >= 2,
                     timeout=WAIT, msg="two deferrals; log:\n"
                     + srv.log()[-2000:])
            for e in deliveries(srv, qid):
                assert e["status"] == "deferred", e
                assert e["dsn"] == "4.4.3", e
            assert qid in srv.queued_ids()
            assert d1.connections == 0
            assert srv.read_mail("alice") == []
            if kind == "closed-port":
                # the DNS server comes up: the next retry resolves and
                # delivers
                with DnsServer(str(tmp_path), base_records(),
                               port=dns_port):
                    d1.wait_messages(1, timeout=WAIT)
                    wait_removed(srv, qid)
    finally:
        if silent is not None:
            silent.close()


def test_mx_host_without_address_skipped(make_server, tmp_path, port):
    """The preferred MX host has no address (NXDOMAIN for its A/AAAA): the
    next one gets the mail."""
    records = base_records(extra_mx={
        "dangle.test": [(10, "noaddr.mx.test"), (20, "mx2.mx.test")]})
    with DnsServer(str(tmp_path), records) as dns, \
            Downstream(port=port, host=MX2) as d2:
        srv = mx_server(make_server, dns.port, port)
        qid = send(srv, ["r@dangle.test"])
        [m] = d2.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["r@dangle.test"]
        wait_removed(srv, qid)
        assert not deliveries(srv, qid, "deferred")


def test_mx_host_lookup_failing_defers(make_server, tmp_path, port):
    """The only MX host's address lookup fails temporarily (the DNS server
    refuses that zone): deferred, not bounced."""
    records = base_records(extra_mx={
        "refused.test": [(10, "mx.elsewhere.invalid")]})
    with DnsServer(str(tmp_path), records) as dns:
        srv = mx_server(make_server, dns.port, port)
        qid = send(srv, ["r@refused.test"])
        wait_for(lambda: deliveries(srv, qid, "deferred"), timeout=WAIT,
                 msg="a deferral")
        e = deliveries(srv, qid, "deferred")[0]
        assert e["dsn"].startswith("4."), e
        assert not deliveries(srv, qid, "bounced")
        assert qid in srv.queued_ids()


def test_mx_hosts_all_without_address_bounce(make_server, tmp_path, port):
    """No MX host has an address (every one NXDOMAIN): a permanent failure
    (5.4.4, as Postfix by default), one bounce, no retry."""
    records = base_records(extra_mx={
        "void.test": [(10, "none1.mx.test"), (20, "none2.mx.test")]})
    with DnsServer(str(tmp_path), records) as dns:
        srv = mx_server(make_server, dns.port, port)
        qid = send(srv, ["r@void.test"])
        [bounce] = srv.wait_mail("alice", 1, timeout=WAIT)
        action, status, _ = dsn_status(bounce)["r@void.test"]
        assert (action, status) == ("failed", "5.4.4")
        wait_removed(srv, qid)
        assert not deliveries(srv, qid, "deferred")


# -- routes to the MX of another domain --------------------------------------------

def test_route_to_mx_of_other_domain(make_server, tmp_path, port):
    """routes: relay.test: "smtp:other.test:PORT" looks up other.test's MX
    hosts and uses PORT (not delivery.port) for them."""
    records = base_records(extra_mx={"other.test": [(5, "mx3.mx.test")]})
    with DnsServer(str(tmp_path), records) as dns, \
            Downstream(port=port, host=MX3) as d3, \
            Downstream(port=port, host=MX1) as d1:
        wrong = shared_port()
        srv = mx_server(make_server, dns.port, wrong, {
            "domains": {"relay": ["relay.test"]},
            "routes": {"relay.test": f"smtp:other.test:{port}"}})
        qid = send(srv, ["r@relay.test"])
        [m] = d3.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["r@relay.test"]
        wait_removed(srv, qid)
        [e] = deliveries(srv, qid, "sent")
        assert f"mx3.mx.test[{MX3}]:{port}" in e["relay"], e
        assert d1.connections == 0


def test_mx_pointing_at_ourselves_does_not_loop(make_server, tmp_path, port):
    """A domain whose MX host is this very server (same address and port):
    the mail must not circle for ever. Either the client sees that the MX
    is itself (Postfix: "mail for X loops back to myself", 5.4.6) or the
    server refuses a message with too many Received: headers (RFC 5321
    6.3, 5.4.6); in both cases the sender gets one bounce soon."""
    records = base_records(extra_mx={"loop.test": [(10, "self.mx.test")]},
                           extra_a={"self.mx.test": "127.0.0.1"})
    with DnsServer(str(tmp_path), records) as dns:
        srv = mx_server(make_server, dns.port, port, {"retry": {
            "first": "1s", "max_interval": "1s"}})
        srv.stop()
        srv.cfg["delivery"]["port"] = srv.port
        srv.write_config()
        srv.start()
        send(srv, ["r@loop.test"])
        try:
            [bounce] = srv.wait_mail("alice", 1, timeout=12)
        finally:
            hops = srv.log().count("event=queued")
        # sluiced sees that the best MX is itself: one copy, no relay
        assert hops == 1, f"{hops} copies queued"
        action, status, _ = dsn_status(bounce)["r@loop.test"]
        assert action == "failed" and status == "5.4.6", status
        assert "loops back to myself" in srv.log()
