"""SMTP AUTH (issue 6): PLAIN and LOGIN offered only under TLS (538 5.7.11
before), checked against auth.users_file (yescrypt, SHA-512-crypt and
bcrypt hashes made here with libcrypt) and against the auth filter stage
(a Lua script that vouches for or vetoes credentials), the failure brake
per client IP (slower 535s, then 421, then 454 until the window ends),
relaying for authenticated users only, ESMTPSA in Received:, the milter
macros {auth_authen}/{auth_type}, listeners with auth: required, reload of
the users file and its errors.
"""
import base64
import ctypes
import os
import signal
import smtplib
import subprocess
import time

import pytest

import helpers
from downstream import Downstream
from helpers import check, message, queued_id, wait_for

HOST = "mx.example.test"
_crypt = ctypes.CDLL("libcrypt.so.1")
_crypt.crypt_gensalt.restype = ctypes.c_char_p
_crypt.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong,
                                 ctypes.c_char_p, ctypes.c_int]
_crypt.crypt.restype = ctypes.c_char_p
_crypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]

USERS = {            # user: (password, hash method)
    "yes@example.test": ("yes-secret", b"$y$"),
    "sha@example.test": ("sha-secret", b"$6$"),
    "bf@example.test": ("bf-secret", b"$2b$"),
}


def crypt_hash(password, prefix):
    salt = _crypt.crypt_gensalt(prefix, 0, None, 0)
    return _crypt.crypt(password.encode(), salt).decode()


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def plain(user, password, authz=""):
    return b64(f"{authz}\0{user}\0{password}")


@pytest.fixture
def users_file(tmp_path):
    path = tmp_path / "users"
    path.write_text("# test users\n\n" + "".join(
        f"{u}:{crypt_hash(p, m)}\n" for u, (p, m) in USERS.items()))
    return str(path)


def auth_server(make_server, pki, users_file, auth="optional", auth_conf=None,
                **more):
    cert = pki.issue(HOST, ips=["127.0.0.1"])
    over = {"listeners": [{"name": "mx", "address": "127.0.0.1",
                           "port": 0, "role": "mx", "auth": auth,
                           "tls": {"mode": "optional", "cert": cert[0],
                                   "key": cert[1]}}],
            "auth": dict({"users_file": users_file}, **(auth_conf or {}))}
    over.update(more)
    srv = make_server(over, start=False)
    srv.cfg["listeners"][0]["port"] = srv.port
    srv.write_config()
    return srv.start()


def tls_client(srv, pki):
    c = smtplib.SMTP(srv.host, srv.port, timeout=20)
    c.ehlo("client.example.test")
    c.starttls(context=pki.client_context())
    c.ehlo("client.example.test")
    return c


def test_not_offered_before_tls(make_server, pki, users_file):
    srv = auth_server(make_server, pki, users_file)
    c = smtplib.SMTP(srv.host, srv.port, timeout=10)
    c.ehlo("client.example.test")
    assert not c.has_extn("auth")
    u, (p, _) = next(iter(USERS.items()))
    check(c.docmd("AUTH", "PLAIN " + plain(u, p)), 538, "5.7.11")
    c.starttls(context=pki.client_context())
    c.ehlo("client.example.test")
    assert c.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
    c.quit()


@pytest.mark.parametrize("user", sorted(USERS))
def test_plain_with_each_hash_kind(make_server, pki, users_file, user):
    srv = auth_server(make_server, pki, users_file)
    c = tls_client(srv, pki)
    check(c.docmd("AUTH", "PLAIN " + plain(user, USERS[user][0])), 235,
          "2.7.0")
    c.ehlo("client.example.test")
    assert "auth" not in c.esmtp_features     # not again once done
    c.quit()
    ev = helpers.log_events(srv, event="auth")[-1]
    assert ev["status"] == "ok" and ev["user"] == user
    assert ev["mechanism"] == "PLAIN" and ev["by"] == "users_file"


def test_login_and_plain_without_initial_response(make_server, pki,
                                                  users_file):
    srv = auth_server(make_server, pki, users_file)
    u, (p, _) = "sha@example.test", USERS["sha@example.test"]
    c = tls_client(srv, pki)
    check(c.docmd("AUTH", "LOGIN"), 334, text="VXNlcm5hbWU6")
    check(c.docmd(b64(u)), 334, text="UGFzc3dvcmQ6")
    check(c.docmd(b64(p)), 235, "2.7.0")
    c.quit()
    c = tls_client(srv, pki)
    check(c.docmd("AUTH", "LOGIN " + b64(u)), 334, text="UGFzc3dvcmQ6")
    check(c.docmd(b64(p)), 235)
    c.quit()
    c = tls_client(srv, pki)
    code, text = c.docmd("AUTH", "PLAIN")
    assert code == 334 and text == b""
    check(c.docmd(plain(u, p, authz=u)), 235)
    c.quit()
    # smtplib's own login() (it picks PLAIN or LOGIN)
    c = tls_client(srv, pki)
    assert c.login(u, p)[0] == 235
    c.quit()


def test_authenticated_user_may_relay_and_is_recorded(
        make_server, pki, users_file, tmp_path):
    with Downstream() as down:
        srv = auth_server(make_server, pki, users_file,
                          routes={'"*"': f"smtp:[127.0.0.1]:{down.port}"})
        c = tls_client(srv, pki)
        c.mail("sender@remote.test")
        check(c.docmd("RCPT", "TO:<far@elsewhere.test>"), 554, "5.7.1")
        c.rset()
        c.login("yes@example.test", USERS["yes@example.test"][0])
        c.mail("yes@example.test")
        assert c.rcpt("far@elsewhere.test")[0] == 250
        qid = queued_id(c.data(message("relay").encode()))
        c.quit()
        got = down.wait_messages(1, timeout=10)
        assert got[0].rcpt_tos == ["far@elsewhere.test"]
        assert f"with ESMTPSA id {qid}" in got[0].data.decode()


def test_failures_and_malformed_exchanges(make_server, pki, users_file):
    srv = auth_server(make_server, pki, users_file,
                      auth_conf={"failure_delay": "0s",
                                 "max_failures": 50},
                      limits={"errors": 50})
    c = tls_client(srv, pki)
    check(c.docmd("AUTH", "PLAIN " + plain("sha@example.test", "wrong")),
          535, "5.7.8")
    check(c.docmd("AUTH", "PLAIN " + plain("nobody@example.test", "x")),
          535, "5.7.8")
    check(c.docmd("AUTH", "PLAIN " + plain("sha@example.test",
                                           USERS["sha@example.test"][0],
                                           authz="bf@example.test")),
          535, "5.7.8")
    check(c.docmd("AUTH", "CRAM-MD5"), 504, "5.5.4")
    check(c.docmd("AUTH", "PLAIN not*base64"), 501, "5.5.2")
    check(c.docmd("AUTH", "PLAIN"), 334)
    check(c.docmd("*"), 501, "5.7.0", "aborted")
    check(c.docmd("AUTH", "LOGIN"), 334)
    check(c.docmd("%%%%"), 501, "5.5.2")
    check(c.docmd("AUTH", "PLAIN " + b64("no-separators")), 535, "5.7.8")
    check(c.docmd("AUTH", "PLAIN ="), 535, "5.7.8")
    check(c.docmd("AUTH", "PLAIN " + b64("\0\0pw")), 535)   # empty user
    # the session still works, and authenticates
    check(c.docmd("AUTH", "PLAIN " + plain("sha@example.test",
                                           USERS["sha@example.test"][0])),
          235)
    check(c.docmd("AUTH", "PLAIN " + plain("sha@example.test", "x")), 503,
          "5.5.1", "already")
    c.mail("sha@example.test")
    assert c.rcpt("alice@example.test")[0] == 250
    assert c.data(message().encode())[0] == 250
    c.quit()
    log = srv.run_log()
    assert "wrong" not in log and "sha-secret" not in log  # no passwords
    fails = [e for e in helpers.log_events(srv, event="auth")
             if e["status"] == "failed"]
    assert {"bad password", "unknown user"} <= {e["reason"] for e in fails}


def test_auth_out_of_order(make_server, pki, users_file):
    srv = auth_server(make_server, pki, users_file)
    u, p = "bf@example.test", USERS["bf@example.test"][0]
    c = smtplib.SMTP(srv.host, srv.port, timeout=10)
    c.ehlo("client.example.test")
    c.starttls(context=pki.client_context())
    # the handshake reset the session: EHLO again first
    check(c.docmd("AUTH", "PLAIN " + plain(u, p)), 503, "5.5.1", "EHLO")
    c.ehlo("client.example.test")
    c.mail("sender@remote.test")
    check(c.docmd("AUTH", "PLAIN " + plain(u, p)), 503, "5.5.1",
          "transaction")
    c.rset()
    check(c.docmd("AUTH", "PLAIN " + plain(u, p)), 235)
    check(c.docmd("MAIL", "FROM:<bf@example.test> AUTH=<>"), 250)
    c.quit()


def test_auth_none_listener_refuses_auth(make_server, pki, users_file):
    srv = auth_server(make_server, pki, users_file, auth="none")
    c = tls_client(srv, pki)
    assert "auth" not in c.esmtp_features
    check(c.docmd("AUTH", "PLAIN " + plain("bf@example.test", "x")), 502,
          "5.5.1")
    c.quit()


def test_required_auth_before_mail(make_server, pki, users_file):
    srv = auth_server(make_server, pki, users_file, auth="required")
    c = tls_client(srv, pki)
    check(c.docmd("MAIL", "FROM:<bf@example.test>"), 530, "5.7.0",
          "Authentication required")
    check(c.docmd("RCPT", "TO:<alice@example.test>"), 530, "5.7.0")
    c.login("bf@example.test", USERS["bf@example.test"][0])
    c.mail("bf@example.test")
    assert c.rcpt("alice@example.test")[0] == 250
    c.quit()


def test_failures_slow_down_then_refuse(make_server, pki, users_file):
    srv = auth_server(make_server, pki, users_file,
                      auth_conf={"failure_delay": "1s", "max_failures": 3,
                                 "failure_window": "5s"})
    u, p = "sha@example.test", USERS["sha@example.test"][0]
    c = tls_client(srv, pki)
    first = time.monotonic()
    times = []
    for _ in range(2):
        t0 = time.monotonic()
        check(c.docmd("AUTH", "PLAIN " + plain(u, "bad")), 535, "5.7.8")
        times.append(time.monotonic() - t0)
    assert times[0] >= 0.9 and times[1] >= 1.9, times
    check(c.docmd("AUTH", "PLAIN " + plain(u, "bad")), 421, "4.7.0")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        c.noop()
    # a new session from the same address is refused, even with the
    # right password, until the window is over
    c = tls_client(srv, pki)
    check(c.docmd("AUTH", "PLAIN " + plain(u, p)), 454, "4.7.0")
    c.quit()
    time.sleep(max(0, first + 5.5 - time.monotonic()))
    c = tls_client(srv, pki)
    check(c.docmd("AUTH", "PLAIN " + plain(u, p)), 235)
    c.quit()


AUTH_LUA = """
local f = {}
function f.auth(ctx)
  ctx:tag("seen", ctx.auth_user .. " " .. ctx.auth_mechanism .. " " ..
      ctx.auth_result .. " " .. #ctx.auth_password, "session")
  if ctx.auth_user == "lua-user" and ctx.auth_password == "from-lua" then
    return accept()
  end
  if ctx.auth_user == "bf@example.test" then
    return reject(535, "5.7.8", "blocked by policy")
  end
  if ctx.auth_user == "later" then
    return tempfail()
  end
end
function f.mail(ctx)
  ctx:tag("who", (ctx.auth_user or "none") .. "/" ..
      (ctx.auth_mechanism or "none") .. "/" .. (ctx.auth_password or "nil"))
end
function f.message(ctx)
  ctx:add_header("X-Auth", ctx:tag("who") .. " " .. ctx:tag("seen"))
end
return f
"""


def test_auth_stage_filter_vouches_and_vetoes(make_server, pki, users_file,
                                              tmp_path):
    script = tmp_path / "auth.lua"
    script.write_text(AUTH_LUA)
    srv = auth_server(make_server, pki, users_file,
                      auth_conf={"failure_delay": "0s"},
                      pipeline=[{"lua": str(script)}])
    c = tls_client(srv, pki)
    # a good password, vetoed by the filter
    check(c.docmd("AUTH", "PLAIN " + plain("bf@example.test",
                                           USERS["bf@example.test"][0])),
          535, "5.7.8")
    check(c.docmd("AUTH", "PLAIN " + plain("later", "x")), 454, "4.7.0")
    # not in the users file, vouched for by the filter
    check(c.docmd("AUTH", "LOGIN " + b64("lua-user")), 334)
    check(c.docmd(b64("from-lua")), 235, "2.7.0")
    c.mail("lua-user@example.test")
    c.rcpt("alice@example.test")
    c.data(message().encode())
    c.quit()
    data = srv.wait_mail("alice")[0].decode()
    # mail stage: user and mechanism, no password; auth stage saw it all
    assert "X-Auth: lua-user/LOGIN/nil lua-user LOGIN unknown 8" in data
    ev = helpers.log_events(srv, event="auth")
    assert ev[-1]["status"] == "ok" and ev[-1]["by"] != "users_file"


def test_milter_sees_auth_macros(make_server, pki, users_file, milters):
    m = milters.scripted({})
    srv = auth_server(make_server, pki, users_file,
                      pipeline=[{"milter": m.spec, "name": "m0"}])
    c = tls_client(srv, pki)
    c.login("yes@example.test", USERS["yes@example.test"][0])
    c.mail("yes@example.test")
    c.rcpt("alice@example.test")
    c.data(message().encode())
    c.quit()
    m.wait_event("close", count=2)
    conn = max(e["conn"] for e in m.events())
    mac = m.events("mail", conn=conn)[0]["macros"]
    assert mac["{auth_authen}"] == "yes@example.test"
    assert mac["{auth_type}"] == "PLAIN"


def test_swaks_auth_plain_and_login(make_server, pki, users_file):
    srv = auth_server(make_server, pki, users_file, auth="required")
    for mech, user in (("PLAIN", "yes@example.test"),
                       ("LOGIN", "sha@example.test")):
        r = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(srv.port),
             "--tls", "--auth", mech, "--auth-user", user,
             "--auth-password", USERS[user][0], "--from", user,
             "--to", "alice@example.test", "--timeout", "20",
             "--helo", "client.example.test"],
            capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "235 2.7.0" in r.stdout
    assert len(srv.wait_mail("alice", count=2)) == 2


def test_users_file_reloaded_on_sighup(make_server, pki, users_file):
    srv = auth_server(make_server, pki, users_file)
    c = tls_client(srv, pki)
    check(c.docmd("AUTH", "PLAIN " + plain("new@example.test", "n3w")), 535)
    c.quit()
    with open(users_file, "a") as f:
        f.write(f"new@example.test:{crypt_hash('n3w', b'$y$')}\n")
    srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: helpers.log_events(srv, event="reload"))
    assert helpers.log_events(srv, event="reload")[-1]["status"] == "ok"
    c = tls_client(srv, pki)
    check(c.docmd("AUTH", "PLAIN " + plain("new@example.test", "n3w")), 235)
    c.quit()


def sluiced_check(tmp_path, users_text):
    users = tmp_path / "bad-users"
    users.write_text(users_text)
    conf = tmp_path / "t.yaml"
    conf.write_text(
        "listeners: [{name: mx, address: 127.0.0.1, port: 2525, role: mx}]\n"
        "domains: {local: [example.test]}\n"
        "mailboxes: {users: [alice@example.test]}\n"
        f"auth: {{users_file: {users}}}\n")
    sluiced = os.environ.get("SLUICED") or os.path.join(
        os.path.dirname(__file__), "..", "..", "build", "sluiced")
    return subprocess.run([sluiced, "-t", "-c", str(conf)],
                          capture_output=True, text=True)


@pytest.mark.parametrize("text, error", [
    ("alice\n", "bad-users:1: expected user:hash"),
    ("# c\nalice:$1$abc$0123456789abcdef\n", "bad-users:2: not a yescrypt"),
    ("alice:plaintext\n", "bad-users:1: not a yescrypt"),
    ("a:$6$saltsalt$" + "x" * 86 + "\na:$6$saltsalt$" + "y" * 86 + "\n",
     "user a is listed twice"),
    ("a b:$6$saltsalt$" + "x" * 86 + "\n", "bad user name"),
    ("a:" + "x" * 2000 + "\n", "line too long"),
])
def test_users_file_errors(tmp_path, text, error):
    r = sluiced_check(tmp_path, text)
    assert r.returncode != 0 and error in r.stderr, r.stderr


def test_auth_config_errors(tmp_path):
    conf = tmp_path / "t.yaml"
    conf.write_text(
        "listeners: [{name: mx, address: 127.0.0.1, port: 2525, role: mx,"
        " auth: always}]\n"
        "domains: {local: [example.test]}\n"
        "mailboxes: {users: [alice@example.test]}\n"
        "auth: {max_failures: 0}\n")
    sluiced = os.environ.get("SLUICED") or os.path.join(
        os.path.dirname(__file__), "..", "..", "build", "sluiced")
    r = subprocess.run([sluiced, "-t", "-c", str(conf)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "t.yaml:1:" in r.stderr
    assert "none, optional, required" in r.stderr
