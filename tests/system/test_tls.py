"""Inbound TLS (issue 6): STARTTLS on mx and submission listeners
(tls.mode optional | required), implicit TLS on submissions listeners,
the plaintext-injection defence, the session reset after the handshake,
TLS 1.2 as the floor, certificates reloaded on SIGHUP, the TLS version and
cipher in Received:, for Lua filters and in milter macros.

Every test makes its own CA and server certificate (tls_certs.TestPKI);
clients are Python's smtplib/ssl, swaks and openssl s_client.
"""
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

import helpers
from helpers import check, message, queued_id, wait_for
from procs import free_port
from tls_certs import TestPKI

HOST = "mx.example.test"


@pytest.fixture
def cert(pki):
    return pki.issue(HOST, ips=["127.0.0.1"])


def tls_conf(cert, mode="optional"):
    return {"mode": mode, "cert": cert[0], "key": cert[1]}


def mx_server(make_server, cert, mode="optional", extra=None, **more):
    over = {"listeners": [{"name": "mx", "address": "127.0.0.1",
                           "port": free_port(), "role": "mx"}]}
    if mode != "none":
        over["listeners"][0]["tls"] = tls_conf(cert, mode)
    over.update(more)
    srv = make_server(over, start=False)
    srv.cfg["listeners"][0]["port"] = srv.port
    if extra:
        srv.cfg["listeners"] += extra
    srv.write_config()
    return srv.start()


def submissions_listener(cert, port, auth="none"):
    return {"name": "submissions", "address": "127.0.0.1", "port": port,
            "role": "submissions", "auth": auth,
            "tls": tls_conf(cert, "implicit")}


def client(srv, pki):
    c = smtplib.SMTP(srv.host, srv.port, timeout=10)
    c.ehlo("client.example.test")
    return c


def starttls(c, pki):
    code, text = c.starttls(context=pki.client_context())
    assert code == 220, text
    c.ehlo("client.example.test")
    return c


def send_one(c, subject="tls"):
    c.mail("sender@remote.test")
    code, _ = c.rcpt("alice@example.test")
    assert code == 250
    return c.data(message(subject).encode())


def send_one_over_tls(c, pki):
    """STARTTLS, one message, QUIT: the (version, cipher, bits) used."""
    starttls(c, pki)
    version = c.sock.version()
    cipher, _, bits = c.sock.cipher()
    send_one(c)
    c.quit()
    return version, cipher, bits


def test_starttls_advertised_and_mail_flows(make_server, pki, cert):
    srv = mx_server(make_server, cert)
    c = client(srv, pki)
    assert c.has_extn("starttls")
    starttls(c, pki)
    assert not c.has_extn("starttls")      # not offered twice
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    qid = queued_id(send_one(c))
    c.quit()
    data = srv.wait_mail("alice")[0].decode()
    assert "with ESMTPS id " + qid in data
    assert "(using TLSv1.3 with cipher " in data
    ev = helpers.log_events(srv, event="tls")
    assert ev and ev[-1]["version"].startswith("TLSv1.")


def test_received_names_version_and_cipher(make_server, pki, cert):
    srv = mx_server(make_server, cert)
    c = client(srv, pki)
    version, cipher, bits = send_one_over_tls(c, pki)
    data = srv.wait_mail("alice")[0].decode()
    assert f"(using {version} with cipher {cipher} ({bits} bits))" in data


def test_plain_session_is_esmtp_and_not_marked(make_server, pki, cert):
    srv = mx_server(make_server, cert)
    c = client(srv, pki)
    send_one(c)
    c.quit()
    data = srv.wait_mail("alice")[0].decode()
    assert "with ESMTP id" in data and "(using " not in data


def test_mode_none_does_not_offer_starttls(server):
    c = smtplib.SMTP(server.host, server.port, timeout=10)
    c.ehlo("client.example.test")
    assert not c.has_extn("starttls")
    check(c.docmd("STARTTLS"), 502, "5.5.1")
    assert send_one(c)[0] == 250             # still serving
    c.quit()


def test_required_refuses_mail_before_starttls(make_server, pki, cert):
    srv = mx_server(make_server, cert, mode="required")
    c = client(srv, pki)
    assert c.has_extn("starttls")
    check(c.docmd("MAIL", "FROM:<sender@remote.test>"), 530, "5.7.0",
          "STARTTLS")
    check(c.docmd("RCPT", "TO:<alice@example.test>"), 530, "5.7.0")
    check(c.docmd("DATA"), 530, "5.7.0")
    check(c.docmd("NOOP"), 250)
    starttls(c, pki)
    assert send_one(c)[0] == 250
    c.quit()


def test_session_state_is_reset_after_the_handshake(make_server, pki, cert):
    srv = mx_server(make_server, cert)
    c = client(srv, pki)
    c.starttls(context=pki.client_context())
    # the EHLO before STARTTLS no longer counts: RFC 3207 4.2
    check(c.docmd("MAIL", "FROM:<sender@remote.test>"), 503, "5.5.1",
          "HELO/EHLO")
    c.ehlo("again.example.test")
    assert send_one(c)[0] == 250
    c.quit()
    data = srv.wait_mail("alice")[0].decode()
    assert "from again.example.test" in data


def test_starttls_refused_in_a_transaction_and_with_arguments(
        make_server, pki, cert):
    srv = mx_server(make_server, cert)
    c = client(srv, pki)
    check(c.docmd("STARTTLS", "now"), 501, "5.5.4")
    c.mail("sender@remote.test")
    check(c.docmd("STARTTLS"), 503, "5.5.1", "transaction")
    c.rset()
    starttls(c, pki)
    check(c.docmd("STARTTLS"), 554, "5.5.1", "already")
    assert send_one(c)[0] == 250
    c.quit()


def read_reply(sock_file):
    lines = []
    while True:
        line = sock_file.readline()
        if not line:
            break
        lines.append(line)
        if line[3:4] != b"-":
            break
    return b"".join(lines)


def test_plaintext_pipelined_after_starttls_is_discarded(
        make_server, pki, cert):
    srv = mx_server(make_server, cert)
    raw = socket.create_connection((srv.host, srv.port), timeout=10)
    f = raw.makefile("rb")
    assert read_reply(f).startswith(b"220")
    raw.sendall(b"EHLO client.example.test\r\n")
    assert b"STARTTLS" in read_reply(f)
    # one packet: STARTTLS plus commands an attacker slipped in
    raw.sendall(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@remote.test>\r\n")
    assert read_reply(f).startswith(b"220 2.0.0")
    tls = pki.client_context().wrap_socket(raw, server_hostname=HOST)
    tf = tls.makefile("rb")
    # the first reply under TLS answers our EHLO, not the injected RSET
    tls.sendall(b"EHLO client.example.test\r\n")
    r = read_reply(tf)
    assert r.startswith(b"250-" + HOST.encode()), r
    tls.sendall(b"MAIL FROM:<sender@remote.test>\r\n")
    assert read_reply(tf).startswith(b"250 2.1.0")   # no nested MAIL
    tls.sendall(b"QUIT\r\n")
    read_reply(tf)
    tls.close()
    ev = wait_for(lambda: helpers.log_events(
        srv, event="starttls-pipelined"), msg="injection logged")
    assert int(ev[0]["discarded"]) == len(
        b"RSET\r\nMAIL FROM:<evil@remote.test>\r\n")


def test_implicit_tls_on_submissions(make_server, pki, cert):
    port = free_port()
    srv = mx_server(make_server, cert, mode="none",
                    extra=[submissions_listener(cert, port)])
    c = smtplib.SMTP_SSL("127.0.0.1", port, timeout=10,
                         context=pki.client_context())
    code, _ = c.ehlo("client.example.test")
    assert code == 250
    assert not c.has_extn("starttls")
    qid = queued_id(send_one(c))
    c.quit()
    data = srv.wait_mail("alice")[0].decode()
    assert "with ESMTPS id " + qid in data


def test_handshake_failures_end_only_that_session(make_server, pki, cert):
    port = free_port()
    srv = mx_server(make_server, cert,
                    extra=[submissions_listener(cert, port)])
    # plaintext SMTP to the implicit TLS port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"EHLO client.example.test\r\n")
        try:
            reply = s.recv(100)     # a TLS alert record, or nothing
        except ConnectionResetError:
            reply = b""
        assert not reply.startswith(b"2") and not reply.startswith(b"5")
    wait_for(lambda: helpers.log_events(srv, event="tls-failed"),
             msg="handshake failure logged")
    # a client that does not trust our CA hangs up during the handshake
    other = TestPKI(os.path.join(srv.tmp, "other"))
    with pytest.raises(ssl.SSLError):
        smtplib.SMTP_SSL("127.0.0.1", port, timeout=5,
                         context=other.client_context())
    # both listeners still serve
    c = smtplib.SMTP_SSL("127.0.0.1", port, timeout=10,
                         context=pki.client_context())
    c.ehlo("client.example.test")
    assert send_one(c)[0] == 250
    c.quit()
    c = client(srv, pki)
    starttls(c, pki)
    assert send_one(c)[0] == 250
    c.quit()


def test_handshake_timeout(make_server, pki, cert):
    port = free_port()
    srv = mx_server(make_server, cert,
                    extra=[submissions_listener(cert, port)],
                    limits={"idle_timeout": "1s"})
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        t0 = time.monotonic()
        assert s.recv(100) == b""       # closed without a word
        assert time.monotonic() - t0 < 4
    ev = wait_for(lambda: helpers.log_events(srv, event="tls-failed"))
    assert ev[-1]["reason"] == "handshake timeout"


def test_tls_below_1_2_is_refused(make_server, pki, cert):
    srv = mx_server(make_server, cert)
    for proto in ("-tls1", "-tls1_1"):
        r = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{srv.port}",
             "-starttls", "smtp", proto, "-cipher", "DEFAULT@SECLEVEL=0"],
            input=b"QUIT\r\n", capture_output=True, timeout=20)
        assert r.returncode != 0, r.stdout
        assert b"alert protocol version" in r.stderr, r.stderr
    # TLS 1.2 itself is fine
    r = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{srv.port}",
         "-starttls", "smtp", "-tls1_2", "-CAfile", pki.ca_cert],
        input=b"QUIT\r\n", capture_output=True, timeout=20)
    assert b"Protocol  : TLSv1.2" in r.stdout, r.stdout


def peer_cn(srv, pki):
    c = client(srv, pki)
    c.starttls(context=pki.client_context())
    cert = c.sock.getpeercert()
    c.quit()
    return dict(x[0] for x in cert["subject"])["commonName"]


def test_certificate_reloaded_on_sighup(make_server, pki, cert):
    srv = mx_server(make_server, cert)
    assert peer_cn(srv, pki) == HOST
    new = pki.issue("mx2.example.test", dns=[HOST], ips=["127.0.0.1"])
    srv.cfg["listeners"][0]["tls"] = tls_conf(new)
    srv.write_config()
    srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: helpers.log_events(srv, event="reload"))
    assert helpers.log_events(srv, event="reload")[-1]["status"] == "ok"
    assert peer_cn(srv, pki) == "mx2.example.test"
    # a key that does not match refuses the reload: the old pair stays
    srv.cfg["listeners"][0]["tls"] = {"mode": "optional", "cert": cert[0],
                                      "key": new[1]}
    srv.write_config()
    srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(helpers.log_events(srv, event="reload")) >= 2)
    last = helpers.log_events(srv, event="reload")[-1]
    assert last["status"] == "refused" and "does not match" in last["error"]
    assert peer_cn(srv, pki) == "mx2.example.test"


def test_filters_see_tls_version_and_cipher(make_server, pki, cert,
                                            tmp_path):
    script = tmp_path / "tls.lua"
    script.write_text(
        "local f = {}\n"
        "function f.mail(ctx)\n"
        "  ctx:tag('tls', (ctx.tls_version or 'none') .. ' ' ..\n"
        "      (ctx.tls_cipher or 'none') .. ' ' .. (ctx.tls_bits or 'none'))\n"
        "end\n"
        "function f.message(ctx)\n"
        "  ctx:add_header('X-TLS', ctx:tag('tls'))\n"
        "end\n"
        "return f\n")
    srv = mx_server(make_server, cert, pipeline=[{"lua": str(script)}])
    c = client(srv, pki)
    send_one(c)                                  # in clear first
    version, cipher, bits = send_one_over_tls(c, pki)
    mails = srv.wait_mail("alice", count=2)
    heads = sorted(m.decode().split("X-TLS: ")[1].split("\n")[0]
                   for m in mails)
    assert heads == sorted(["none none none", f"{version} {cipher} {bits}"])


def test_milter_macros_carry_tls(make_server, pki, cert, milters):
    m = milters.scripted({"macros": ["{tls_version}", "{cipher}",
                                     "{cipher_bits}"]})
    srv = mx_server(make_server, cert,
                    pipeline=[{"milter": m.spec, "name": "m0"}])
    c = client(srv, pki)
    version, cipher, bits = send_one_over_tls(c, pki)
    m.wait_event("close", count=2)
    conn = max(e["conn"] for e in m.events())
    helos = [e for e in m.events("helo", conn=conn)]
    # the HELO before STARTTLS has no TLS macros, the one after has them
    assert helos[0]["macros"].get("{tls_version}") is None
    assert helos[-1]["macros"]["{tls_version}"] == version
    assert helos[-1]["macros"]["{cipher}"] == cipher
    assert helos[-1]["macros"]["{cipher_bits}"] == str(bits)


def test_swaks_starttls_and_implicit(make_server, pki, cert):
    port = free_port()
    srv = mx_server(make_server, cert,
                    extra=[submissions_listener(cert, port)])
    base = ["swaks", "--server", "127.0.0.1", "--from",
            "sender@remote.test", "--to", "alice@example.test",
            "--timeout", "10", "--helo", "client.example.test"]
    r = subprocess.run(base + ["--port", str(srv.port), "--tls"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "TLS started" in r.stdout
    r = subprocess.run(base + ["--port", str(port), "--tlsc"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    mails = srv.wait_mail("alice", count=2)
    assert all(b"with ESMTPS id" in m for m in mails)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_idle_tls_session_costs_no_cpu(make_server, pki, cert):
    srv = mx_server(make_server, cert)
    c = client(srv, pki)
    starttls(c, pki)
    c.noop()
    before = cpu_seconds(srv.proc.pid)
    time.sleep(2)
    used = cpu_seconds(srv.proc.pid) - before
    assert used < 0.5, f"{used} s of CPU while a TLS session idled"
    c.quit()


def check_config(tmp_path, listener):
    path = tmp_path / "t.yaml"
    path.write_text(
        "listeners:\n  - " + listener + "\n"
        "domains: {local: [example.test]}\n"
        "mailboxes: {users: [alice@example.test]}\n")
    return subprocess.run([os.environ.get("SLUICED") or os.path.join(
        os.path.dirname(__file__), "..", "..", "build", "sluiced"),
        "-t", "-c", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("tls, error", [
    ("{mode: optional}", "needs tls.cert and tls.key"),
    ("{mode: sometimes}", "expected one of none, optional"),
    ("{mode: optional, cert: /nonexistent.pem, key: /nonexistent.key}",
     "cannot read tls.cert"),
    ("{mode: none, cert: CERT, key: KEY}", "need a tls.mode other"),
    ("{mode: optional, cert: CERT, key: KEY, ciphers: x}", "ciphers"),
    ("{mode: optional, cert: CERT, key: OTHERKEY}", "does not match"),
])
def test_config_errors(tmp_path, pki, cert, tls, error):
    other = pki.issue("other.example.test")
    tls = tls.replace("OTHERKEY", other[1]).replace("CERT", cert[0]) \
        .replace("KEY", cert[1])
    r = check_config(tmp_path, "{name: mx, address: 127.0.0.1, port: 2525, "
                     f"role: mx, tls: {tls}}}")
    assert r.returncode != 0
    assert error in r.stderr, r.stderr
    if "does not match" not in error:
        assert "t.yaml:2:" in r.stderr      # FILE:LINE:COL


def test_submissions_needs_implicit_tls(tmp_path, cert):
    r = check_config(tmp_path, "{name: s, address: 127.0.0.1, port: 2465, "
                     "role: submissions}")
    assert r.returncode != 0 and "needs tls: {mode: implicit" in r.stderr
    r = check_config(tmp_path, "{name: s, address: 127.0.0.1, port: 2465, "
                     f"role: submissions, tls: {{mode: implicit, "
                     f"cert: {cert[0]}, key: {cert[1]}}}}}")
    assert r.returncode == 0, r.stderr
