"""The PROXY protocol on listeners (issue 7, multi-node deployments): a
load balancer in proxy_protocol.from sends a v1 or v2 header naming the
real client, and the session becomes that client's (log, Received:,
trusted_networks, per-IP limit, filters); from any other address a
"PROXY" line is an unknown command and the connection's own address
stays. Malformed headers and silent balancers are dropped without a
word; LOCAL/UNKNOWN headers (health checks) keep the balancer's address.
Implicit TLS works behind the header.
"""
import socket
import struct
import ipaddress

import pytest

import helpers
from helpers import message, wait_for
from conftest import SLUICED
from procs import free_port

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, dst=None, sport=40000, dport=25):
    fam = "TCP6" if ":" in src else "TCP4"
    dst = dst or ("::1" if fam == "TCP6" else "127.0.0.1")
    return f"PROXY {fam} {src} {dst} {sport} {dport}\r\n".encode()


def v2(src=None, dst="127.0.0.1", sport=40000, dport=25, local=False,
       tlv=b""):
    if local:
        return V2_SIG + bytes([0x20, 0x00]) + struct.pack("!H", len(tlv)) \
            + tlv
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if s.version == 4:
        body = s.packed + d.packed + struct.pack("!HH", sport, dport)
        fam = 0x11
    else:
        body = s.packed + ipaddress.ip_address(
            "::ffff:" + dst if d.version == 4 else dst).packed + \
            struct.pack("!HH", sport, dport)
        fam = 0x21
    body += tlv
    return V2_SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def proxied_server(make_server, nets=("127.0.0.0/8",), **over):
    srv = make_server(over, start=False)
    srv.cfg["listeners"][0]["proxy_protocol"] = {"from": list(nets),
                                                 "timeout": "1s"}
    srv.write_config()
    # the readiness probe is a proxied connection too: send a LOCAL header
    srv.start(wait=False)
    wait_for(lambda: _probe(srv), timeout=5, msg="server up")
    return srv


def _probe(srv):
    try:
        with socket.create_connection((srv.host, srv.port), timeout=1) as s:
            s.sendall(v2(local=True))
            return s.recv(100).startswith(b"220")
    except OSError:
        return False


class Client:
    def __init__(self, srv, header=b""):
        self.s = socket.create_connection((srv.host, srv.port), timeout=5)
        if header:
            self.s.sendall(header)
        self.f = self.s.makefile("rb")

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                break
            lines.append(line.decode())
            if line[3:4] != b"-":
                break
        return "".join(lines)

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\r\n")
        return self.reply()

    def close(self):
        self.s.close()


def transaction(c, rcpt="alice@example.test"):
    assert c.cmd("EHLO client.example.test").startswith("250")
    assert c.cmd("MAIL FROM:<sender@remote.test>").startswith("250")
    r = c.cmd(f"RCPT TO:<{rcpt}>")
    if not r.startswith("250"):
        return r
    assert c.cmd("DATA").startswith("354")
    c.s.sendall(message().encode() + b".\r\n")
    return c.reply()


@pytest.mark.parametrize("header,client", [
    (v1("203.0.113.7"), "203.0.113.7"),
    (v1("2001:db8::7"), "2001:db8::7"),
    (v2("203.0.113.8"), "203.0.113.8"),
    (v2("2001:db8::8"), "2001:db8::8"),
    (v2("203.0.113.9", tlv=b"\x01\x00\x02h2"), "203.0.113.9"),
], ids=["v1-tcp4", "v1-tcp6", "v2-tcp4", "v2-tcp6", "v2-tlv"])
def test_header_names_the_client(make_server, header, client):
    srv = proxied_server(make_server)
    c = Client(srv, header)
    assert c.reply().startswith("220")
    r = transaction(c)
    assert r.startswith("250"), r
    qid = r.split()[-1]
    c.cmd("QUIT")
    c.close()
    data = srv.wait_mail("alice")[0].decode()
    assert f"[{client}]" in data.split("\n\n")[0]
    ev = helpers.log_events(srv, event="proxy")[-1]
    assert ev["client"] == client and ev["proxy"] == "127.0.0.1"
    assert any(e.get("qid") == qid for e in helpers.log_events(srv))


def test_header_split_across_packets(make_server):
    srv = proxied_server(make_server)
    h = v2("203.0.113.10")
    s = socket.create_connection((srv.host, srv.port), timeout=5)
    for part in (h[:5], h[5:14], h[14:20], h[20:]):
        s.sendall(part)
        import time
        time.sleep(0.05)
    assert s.recv(100).startswith(b"220")
    s.close()
    wait_for(lambda: helpers.log_events(srv, event="proxy"))
    assert helpers.log_events(srv, event="proxy")[-1]["client"] == \
        "203.0.113.10"


def test_smtp_right_after_the_header_is_kept(make_server):
    # the balancer forwards the client's first bytes with the header
    srv = proxied_server(make_server, smtp={"pipelining_checks": False})
    c = Client(srv, v1("203.0.113.11") + b"EHLO early.example.test\r\n")
    assert c.reply().startswith("220")
    assert c.reply().startswith("250-")
    c.close()


def test_real_client_decides_relaying(make_server):
    # trusted_networks (192.0.2.0/24 in tests) applies to the real client
    srv = proxied_server(make_server,
                         routes={'"*"': "discard"})
    c = Client(srv, v1("192.0.2.50"))
    c.reply()
    assert transaction(c, "far@elsewhere.test").startswith("250")
    c.close()
    c = Client(srv, v1("203.0.113.12"))
    c.reply()
    assert transaction(c, "far@elsewhere.test").startswith("554 5.7.1")
    c.close()


def test_local_and_unknown_keep_the_balancer_address(make_server):
    srv = proxied_server(make_server)
    for h in (v2(local=True), b"PROXY UNKNOWN\r\n",
              b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"):
        c = Client(srv, h)
        assert c.reply().startswith("220")
        c.close()
    evs = helpers.log_events(srv, event="proxy")
    assert all(e["client"] == "127.0.0.1" for e in evs[-3:])


@pytest.mark.parametrize("header", [
    b"GET / HTTP/1.0\r\n\r\n",
    b"PROXY TCP4 203.0.113.1 127.0.0.1 1 2\n",          # LF only
    b"PROXY TCP4 203.0.113.1  127.0.0.1 1 2\r\n",        # two spaces
    b"PROXY TCP4 203.0.113.1 127.0.0.1 1 65536\r\n",     # port
    b"PROXY TCP4 203.0.113.01 127.0.0.1 1 2\r\n",        # not canonical
    b"PROXY TCP4 2001:db8::1 127.0.0.1 1 2\r\n",         # wrong family
    b"PROXY UDP4 203.0.113.1 127.0.0.1 1 2\r\n",
    b"PROXY TCP4 203.0.113.1 127.0.0.1 1 2 3\r\n",
    b"PROXY TCP4 " + b"1" * 120 + b"\r\n",               # too long
    V2_SIG + bytes([0x31, 0x11, 0, 12]) + bytes(12),     # version 3
    V2_SIG + bytes([0x22, 0x11, 0, 12]) + bytes(12),     # command 2
    V2_SIG + bytes([0x21, 0x12, 0, 12]) + bytes(12),     # UDP
    V2_SIG + bytes([0x21, 0x11, 0, 4]) + bytes(4),       # short block
    V2_SIG + bytes([0x21, 0x11, 0x10, 0]),               # 4 KB of TLV
    V2_SIG[:8] + b"XXXX",                                # bad signature
], ids=["http", "lf-only", "two-spaces", "port", "not-canonical",
        "wrong-family", "udp4", "extra-field", "too-long", "v2-version",
        "v2-command", "v2-udp", "v2-short", "v2-huge-tlv", "v2-signature"])
def test_bad_headers_are_dropped_silently(make_server, header):
    srv = proxied_server(make_server)
    s = socket.create_connection((srv.host, srv.port), timeout=5)
    s.sendall(header)
    try:
        got = s.recv(100)
    except ConnectionResetError:
        got = b""
    s.close()
    assert got == b""
    wait_for(lambda: helpers.log_events(srv, event="proxy-error"))
    c = Client(srv, v1("203.0.113.13"))          # still serving
    assert c.reply().startswith("220")
    c.close()


def test_truncated_or_missing_header_times_out(make_server):
    import time
    srv = proxied_server(make_server)
    for h in (b"", b"PROXY TCP4 203.0", V2_SIG + b"\x21"):
        s = socket.create_connection((srv.host, srv.port), timeout=5)
        s.sendall(h)
        t0 = time.monotonic()
        assert s.recv(100) == b""
        assert time.monotonic() - t0 < 3       # timeout is 1s
        s.close()
    evs = helpers.log_events(srv, event="proxy-error")
    assert sum(e["reason"] == "no PROXY header in time" for e in evs) == 3


def test_not_honoured_from_other_addresses(make_server):
    srv = make_server({})
    srv.cfg["listeners"][0]["proxy_protocol"] = {"from": ["192.0.2.0/24"]}
    srv.write_config()
    srv.restart()
    c = Client(srv, b"")
    assert c.reply().startswith("220")
    r = c.cmd("PROXY TCP4 192.0.2.99 127.0.0.1 1 2")
    assert r.startswith("500 5.5.2"), r
    assert transaction(c, "far@elsewhere.test").startswith("554 5.7.1")
    c.close()
    assert not helpers.log_events(srv, event="proxy")


def test_per_ip_limit_counts_the_real_client(make_server):
    srv = proxied_server(make_server, limits={"per_ip_sessions": 2})
    same = [Client(srv, v1("203.0.113.20")) for _ in range(2)]
    for c in same:
        assert c.reply().startswith("220")
    third = Client(srv, v1("203.0.113.20"))
    assert third.reply().startswith("421 4.7.0")
    # others behind the same balancer are not affected
    other = [Client(srv, v1(f"203.0.113.{30 + i}")) for i in range(3)]
    for c in other:
        assert c.reply().startswith("220")
    for c in same + other + [third]:
        c.close()


def test_implicit_tls_behind_the_balancer(make_server, tmp_path):
    from tls_certs import TestPKI
    pki = TestPKI(tmp_path)
    cert = pki.issue("mx.example.test", ips=["127.0.0.1"])
    port = free_port()
    srv = proxied_server(make_server)
    srv.cfg["listeners"].append(
        {"name": "submissions", "address": "127.0.0.1", "port": port,
         "role": "submissions", "auth": "none",
         "tls": {"mode": "implicit", "cert": cert[0], "key": cert[1]},
         "proxy_protocol": {"from": ["127.0.0.0/8"]}})
    srv.write_config()
    srv.stop()
    srv.start(wait=False)
    wait_for(lambda: _probe(srv), timeout=5)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    raw.sendall(v1("203.0.113.40"))
    tls = pki.client_context().wrap_socket(raw,
                                           server_hostname="mx.example.test")
    f = tls.makefile("rb")
    assert f.readline().startswith(b"220")
    tls.close()
    wait_for(lambda: helpers.log_events(srv, event="tls"))
    assert helpers.log_events(srv, event="proxy")[-1]["client"] == \
        "203.0.113.40"


def test_config_needs_from(make_server):
    import subprocess
    srv = make_server({}, start=False)
    srv.cfg["listeners"][0]["proxy_protocol"] = {"timeout": "2s"}
    srv.write_config()
    r = subprocess.run([SLUICED, "-t", "-c", srv.cfg_path],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "proxy_protocol needs 'from'" in r.stderr
