"""Outbound TLS policies (issue 6): delivery.tls none | may | encrypt |
verify, delivery.tls_ca_file, per next hop delivery.tls_policy, SNI, and
the TLS version and cipher in the log.

The downstream is a real STARTTLS server (aiosmtpd through Downstream)
with certificates from a private CA made for each test (tls_certs.TestPKI):
good ones, an expired one, a self-signed one, one from another CA. Host
names come from a private dnsmasq (MX and A records pointing at
127.0.0.1; delivery.port is the downstream's port), address literals from
routes "smtp:[127.0.0.1]:PORT". The client is trusted (127.0.0.0/8);
bounces go to the local sender alice@example.test."""
import os
import re
import ssl
import subprocess
import warnings

import pytest

from conftest import SLUICED
from dns_server import DnsServer
from downstream import Downstream
from helpers import log_events as events
from helpers import submit_message
from helpers import wait_deliveries as deliveries
from tls_certs import TestPKI

STAR = '"*"'
TRUSTED = ["127.0.0.0/8"]
WAIT = 10.0                     # bound on every wait (loaded machine)
MX_NAME = "mx.tls.test"         # the name the good certificates carry
RECORDS = {
    "A": {MX_NAME: "127.0.0.1", "other.tls.test": "127.0.0.1"},
    "MX": {"dest.test": [(10, MX_NAME)],
           "wrong.test": [(10, "other.tls.test")],
           "plain.test": [(10, MX_NAME)]},
}


@pytest.fixture
def dns(tmp_path):
    d = tmp_path / "dns"
    d.mkdir()
    with DnsServer(str(d), RECORDS) as server:
        yield server


def literal_route(d, **delivery):
    """Every remote domain to Downstream d by address literal."""
    return {"trusted_networks": TRUSTED,
            "routes": {STAR: f"smtp:[127.0.0.1]:{d.port}"},
            "delivery": delivery}


def mx_route(d, dns, **delivery):
    """Remote domains by MX (the private DNS) to Downstream d's port."""
    return {"trusted_networks": TRUSTED,
            "dns": {"servers": [f"127.0.0.1:{dns.port}"], "timeout": "1s",
                    "attempts": 1},
            "delivery": dict(delivery, port=d.port)}


def send(srv, rcpts, subject="tls test"):
    text = (f"From: <alice@example.test>\r\nTo: <{rcpts[0]}>\r\n"
            f"Subject: {subject}\r\n\r\nbody of {subject}\r\n.\r\n")
    return submit_message(srv, "alice@example.test", rcpts, text)


def tls_server(d_kw, ctx):
    """A Downstream offering STARTTLS with ssl context ctx."""
    return Downstream(tls_context=ctx, **d_kw)


def verbs(d):
    return [v for _, v, _ in d.commands()]


def deferred(srv, qid, rcpt):
    """The first event=delivery line of rcpt: it must be a deferral."""
    e = deliveries(srv, qid, 1)[rcpt]
    assert e["status"] == "deferred", e
    return e


def connect_failures(srv):
    return [e["reason"] for e in events(srv, None, "connect-failed")]


def old_tls_only(ctx):
    """Make ctx speak TLS 1.1 at most: our client (1.2+) cannot agree."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


def assert_nothing_sent(d):
    """Not a single transaction command reached the downstream."""
    assert d.messages == [] and d.incomplete == [], d.messages
    assert not {"MAIL", "RCPT", "DATA", "BDAT"} & set(verbs(d)), verbs(d)


# -- may ---------------------------------------------------------------------

def test_may_uses_starttls_and_logs_version_and_cipher(make_server, pki):
    """The default policy (may): STARTTLS when offered, no certificate
    check (a self-signed certificate is fine); the connection and the
    delivery are logged with the TLS version and cipher."""
    cert, key = pki.self_signed("whatever.test")
    with tls_server({}, pki.server_context(cert, key)) as d:
        srv = make_server(literal_route(d))
        qid = send(srv, ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.tls
        s = d.sessions[m.conn - 1]
        e = deliveries(srv, qid, 1)["x@remote.test"]
        assert e["status"] == "sent"
        assert e["tls"] == s.tls_version and e["cipher"] == s.tls_cipher, e
        [c] = events(srv, None, "connected")
        assert c["policy"] == "may" and c["verified"] == "no", c
        assert c["tls"] in ("TLSv1.2", "TLSv1.3") and c["cipher"], c


def test_may_without_starttls_goes_in_clear(make_server):
    """may, and the server does not offer STARTTLS: plaintext, logged as
    tls=none."""
    with Downstream() as d:
        srv = make_server(literal_route(d))
        qid = send(srv, ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert not m.tls
        assert "STARTTLS" not in verbs(d)
        assert deliveries(srv, qid, 1)["x@remote.test"]["tls"] == "none"
        [c] = events(srv, None, "connected")
        assert c["tls"] == "none" and c["policy"] == "may", c


def test_may_falls_back_after_broken_handshake(make_server, pki):
    """may, STARTTLS accepted but no common TLS version: the client
    reconnects and delivers in plaintext."""
    cert, key = pki.issue(MX_NAME, ips=["127.0.0.1"])
    with tls_server({}, old_tls_only(pki.server_context(cert, key))) as d:
        srv = make_server(literal_route(d, tls="may"))
        qid = send(srv, ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert not m.tls
        assert "STARTTLS" in [v for v, _ in d.sessions[0].commands]
        assert d.connections == 2
        assert any("TLS handshake failed" in r
                   for r in connect_failures(srv)), connect_failures(srv)
        assert deliveries(srv, qid, 1)["x@remote.test"]["status"] == "sent"


def test_none_never_starts_tls(make_server, pki):
    cert, key = pki.issue(MX_NAME, ips=["127.0.0.1"])
    with tls_server({}, pki.server_context(cert, key)) as d:
        srv = make_server(literal_route(d, tls="none"))
        send(srv, ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert not m.tls and "STARTTLS" not in verbs(d)
        assert d.server_names == []


# -- encrypt -----------------------------------------------------------------

def test_encrypt_without_starttls_is_deferred(make_server):
    """encrypt, and the server does not offer STARTTLS: a 4.7.4 deferral,
    and the downstream never sees a transaction in the clear."""
    with Downstream() as d:
        srv = make_server(literal_route(d, tls="encrypt"))
        qid = send(srv, ["x@remote.test"])
        e = deferred(srv, qid, "x@remote.test")
        assert e["dsn"] == "4.7.4", e
        assert "did not offer STARTTLS" in e["text"], e
        assert any("4.7.4 TLS is required" in r
                   for r in connect_failures(srv))
        assert_nothing_sent(d)


def test_encrypt_refused_starttls_is_deferred(make_server, pki):
    """encrypt, and STARTTLS answered 454: deferred, nothing in clear."""
    cert, key = pki.issue(MX_NAME, ips=["127.0.0.1"])
    with tls_server({"command_replies": {"STARTTLS": "454 4.7.0 not now"}},
                    pki.server_context(cert, key)) as d:
        srv = make_server(literal_route(d, tls="encrypt"))
        qid = send(srv, ["x@remote.test"])
        e = deferred(srv, qid, "x@remote.test")
        assert "STARTTLS" in e["text"] and "454" in e["text"], e
        assert_nothing_sent(d)


def test_encrypt_handshake_failure_no_plaintext_fallback(make_server, pki):
    """encrypt, STARTTLS offered but the handshake fails: 4.7.5, deferred,
    and no second connection in the clear."""
    cert, key = pki.issue(MX_NAME, ips=["127.0.0.1"])
    with tls_server({}, old_tls_only(pki.server_context(cert, key))) as d:
        srv = make_server(literal_route(d, tls="encrypt"))
        qid = send(srv, ["x@remote.test"])
        e = deferred(srv, qid, "x@remote.test")
        assert e["dsn"] == "4.7.5" and "TLS handshake failed" in e["text"]
        assert_nothing_sent(d)
        assert d.connections == 1


def test_encrypt_delivers_without_checking_the_certificate(make_server,
                                                           pki):
    """encrypt does not check the certificate: self-signed is fine."""
    cert, key = pki.self_signed("nobody.test")
    with tls_server({}, pki.server_context(cert, key)) as d:
        srv = make_server(literal_route(d, tls="encrypt"))
        qid = send(srv, ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.tls
        assert deliveries(srv, qid, 1)["x@remote.test"]["status"] == "sent"
        [c] = events(srv, None, "connected")
        assert c["policy"] == "encrypt" and c["verified"] == "no", c


# -- verify ------------------------------------------------------------------

def test_verify_mx_host_name_and_sni(make_server, pki, dns):
    """verify by MX: chain and name (the MX host) check out, the message is
    delivered under TLS and the server got the MX name as SNI."""
    cert, key = pki.issue(MX_NAME)
    with tls_server({}, pki.server_context(cert, key)) as d:
        srv = make_server(mx_route(d, dns, tls="verify",
                                   tls_ca_file=pki.ca_cert))
        qid = send(srv, ["x@dest.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.tls
        assert d.sessions[m.conn - 1].tls_version in ("TLSv1.2", "TLSv1.3")
        assert d.server_names == [MX_NAME]
        e = deliveries(srv, qid, 1)["x@dest.test"]
        assert e["status"] == "sent" and e["tls"] != "none", e
        [c] = events(srv, None, "connected")
        assert c["policy"] == "verify" and c["verified"] == "yes", c


def test_verify_address_literal(make_server, pki):
    """verify to "smtp:[127.0.0.1]:PORT": the certificate must name the
    address (IP subjectAltName); no SNI is sent for an address."""
    cert, key = pki.issue("some.name.test", ips=["127.0.0.1"])
    with tls_server({}, pki.server_context(cert, key)) as d:
        srv = make_server(literal_route(d, tls="verify",
                                        tls_ca_file=pki.ca_cert))
        qid = send(srv, ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.tls
        assert d.server_names == [None]
        assert deliveries(srv, qid, 1)["x@remote.test"]["status"] == "sent"


def test_verify_relative_ca_file(make_server, pki, tmp_path):
    """tls_ca_file relative to the working directory (sluiced runs in
    tmp_path), like other paths."""
    cert, key = pki.issue("some.name.test", ips=["127.0.0.1"])
    rel = os.path.relpath(pki.ca_cert, str(tmp_path))
    assert not rel.startswith("/")
    with tls_server({}, pki.server_context(cert, key)) as d:
        srv = make_server(literal_route(d, tls="verify", tls_ca_file=rel))
        send(srv, ["x@remote.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.tls


def bad_cert(pki, tmp_path, kind):
    if kind == "expired":
        return pki.issue(MX_NAME, ips=["127.0.0.1"], expired=True)
    if kind == "self-signed":
        return pki.self_signed(MX_NAME)
    if kind == "unknown CA":
        other = TestPKI(tmp_path / "other", name="another CA")
        return other.issue(MX_NAME, ips=["127.0.0.1"])
    if kind == "wrong address":
        return pki.issue(MX_NAME, ips=["127.0.0.2"])
    raise ValueError(kind)


REASONS = {
    "expired": "certificate has expired",
    "self-signed": "self-signed certificate",
    "unknown CA": "unable to get local issuer certificate",
    "wrong address": "IP address mismatch",
}


@pytest.mark.parametrize("kind", list(REASONS))
def test_verify_bad_certificate_is_deferred(make_server, pki, tmp_path,
                                            kind):
    """verify against a certificate that does not pass: deferred with
    4.7.5 and the verifier's reason, logged; nothing sent, no plaintext
    retry."""
    cert, key = bad_cert(pki, tmp_path, kind)
    with tls_server({}, pki.server_context(cert, key)) as d:
        srv = make_server(literal_route(d, tls="verify",
                                        tls_ca_file=pki.ca_cert))
        qid = send(srv, ["x@remote.test"])
        e = deferred(srv, qid, "x@remote.test")
        assert e["dsn"] == "4.7.5", e
        assert "certificate verification failed" in e["text"], e
        assert REASONS[kind] in e["text"], e
        assert any(REASONS[kind] in r for r in connect_failures(srv))
        assert_nothing_sent(d)
        assert d.connections == 1


def test_verify_wrong_host_name_bounces_with_reason(make_server, pki, dns):
    """verify by MX where the MX host (other.tls.test) is not the name on
    the certificate: deferred, and when the lifetime is over the bounce
    names the reason (its status is the expiry's 4.4.7)."""
    cert, key = pki.issue(MX_NAME)
    with tls_server({}, pki.server_context(cert, key)) as d:
        over = mx_route(d, dns, tls="verify", tls_ca_file=pki.ca_cert)
        over["retry"] = {"first": "1s", "max_interval": "1s",
                         "lifetime": "2s"}
        srv = make_server(over)
        qid = send(srv, ["x@wrong.test"])
        e = deferred(srv, qid, "x@wrong.test")
        assert "hostname mismatch" in e["text"], e
        assert d.server_names[:1] == ["other.tls.test"]
        [bounce] = srv.wait_mail("alice", 1, timeout=WAIT)
        text = re.sub(r"\s+", " ", bounce.decode("utf-8", "replace"))
        assert ("TLS certificate verification failed for "
                "other.tls.test[127.0.0.1]") in text, text[:3000]
        assert "hostname mismatch" in text
        assert_nothing_sent(d)


def test_verify_system_store_does_not_trust_the_test_ca(make_server, pki):
    """verify without tls_ca_file trusts the system store: a private CA's
    certificate fails."""
    cert, key = pki.issue("x.test", ips=["127.0.0.1"])
    with tls_server({}, pki.server_context(cert, key)) as d:
        srv = make_server(literal_route(d, tls="verify"))
        qid = send(srv, ["x@remote.test"])
        e = deferred(srv, qid, "x@remote.test")
        assert "unable to get local issuer certificate" in e["text"], e
        assert_nothing_sent(d)


# -- per destination ---------------------------------------------------------

def test_policy_per_destination_overrides_default(make_server, dns):
    """Default encrypt, plain.test: may. Both domains' MX is the same
    server without STARTTLS: plain.test is delivered in the clear,
    dest.test is deferred (4.7.4)."""
    with Downstream() as d:
        srv = make_server(mx_route(d, dns, tls="encrypt",
                                   tls_policy={"plain.test": "may"}))
        q1 = send(srv, ["x@plain.test"])
        q2 = send(srv, ["y@dest.test"])
        [m] = d.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["x@plain.test"] and not m.tls
        assert deliveries(srv, q1, 1)["x@plain.test"]["status"] == "sent"
        assert deferred(srv, q2, "y@dest.test")["dsn"] == "4.7.4"
        assert len(d.messages) == 1


def test_policy_matches_the_next_hop_of_a_route(make_server):
    """With an explicit next hop, the next hop is matched, not the
    recipient domain: an entry for [127.0.0.1] applies, one for the
    recipient domain does not."""
    with Downstream() as d:
        over = literal_route(d, tls="may",
                             tls_policy={"remote.test": "verify",
                                         '"[127.0.0.1]"': "encrypt"})
        srv = make_server(over)
        qid = send(srv, ["x@remote.test"])
        e = deferred(srv, qid, "x@remote.test")
        assert e["dsn"] == "4.7.4" and "policy encrypt" in e["text"], e
        assert_nothing_sent(d)


def test_policy_for_recipient_domain_ignored_with_next_hop(make_server):
    with Downstream() as d:
        over = literal_route(d, tls="may",
                             tls_policy={"remote.test": "verify"})
        srv = make_server(over)
        qid = send(srv, ["x@remote.test"])
        d.wait_messages(1, timeout=WAIT)
        assert deliveries(srv, qid, 1)["x@remote.test"]["status"] == "sent"


# -- configuration errors ----------------------------------------------------

def check_config(tmp_path, delivery):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "listeners: [{name: mx, address: 127.0.0.1, port: 2525}]\n"
        "domains: {local: [example.test]}\n"
        f"spool: {tmp_path}/spool\n"
        "delivery:\n" + delivery)
    p = subprocess.run([SLUICED, "-t", "-c", str(cfg)], capture_output=True,
                       timeout=10, cwd=str(tmp_path))
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace"), cfg


@pytest.mark.parametrize("delivery,where,what", [
    ("  tls: required\n", "5:8", "invalid value 'required' for "
     "'delivery.tls': expected one of none, may, encrypt, verify"),
    ("  tls_policy:\n    example.org: strict\n", "6:18",
     "invalid value 'strict' for 'delivery.tls_policy.example.org'"),
    ("  tls_policy: {\"bad domain\": verify}\n", "5:16",
     "invalid destination 'bad domain' in 'delivery.tls_policy'"),
    ("  tls_ca_file: missing/ca.pem\n", "5:16",
     "for 'delivery.tls_ca_file': No such file or directory"),
])
def test_config_errors(tmp_path, delivery, where, what):
    rc, out, cfg = check_config(tmp_path, delivery)
    assert rc != 0, out
    assert f"{cfg}:{where}: " in out and what in out, out


def test_config_ok(tmp_path, pki):
    rc, out, _ = check_config(
        tmp_path, f"  tls: verify\n  tls_ca_file: {pki.ca_cert}\n"
        "  tls_policy: {.example.org: encrypt, \"[192.0.2.1]\": none}\n")
    assert rc == 0, out


def test_ca_file_without_certificates_fails_at_start(make_server, tmp_path):
    """A CA file that holds no certificate: sluiced refuses to start."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    srv = make_server({"delivery": {"tls_ca_file": str(junk)}}, start=False)
    srv.expect_dead = True
    p = subprocess.run([SLUICED, "-c", srv.cfg_path], capture_output=True,
                       timeout=10)
    assert p.returncode != 0
    assert "cannot load the CA file" in p.stderr.decode(errors="replace")
