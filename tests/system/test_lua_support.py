"""Shared helpers of the Lua filter system tests (test_lua_*.py), plus a
check that every shipped filter in lua/filters/ loads (`sluiced -t`).

lua_server(make_server, tmp_path, entries...) starts a server whose pipeline
is made of Lua entries: each entry is a dict like the YAML one, where `lua`
may be script source text (written to a file in tmp_path) or a path.
"""
import email.policy
import os
import subprocess
import uuid
from email.message import EmailMessage

import pytest

import helpers
from conftest import REPO, SLUICED, Server

FILTERS = os.path.join(REPO, "lua", "filters")


def script_file(tmp_path, source, name=None):
    """Write Lua source to tmp_path and return its path."""
    name = name or f"f{uuid.uuid4().hex[:8]}.lua"
    path = os.path.join(str(tmp_path), name)
    with open(path, "w") as f:
        f.write(source)
    return path


def entry(tmp_path, lua, **kw):
    """A pipeline entry; `lua` is a path (existing file) or source text."""
    if not (lua.endswith(".lua") and "\n" not in lua):
        lua = script_file(tmp_path, lua)
    e = {"lua": lua}
    e.update(kw)
    return e


def filter_path(name):
    return os.path.join(FILTERS, name)


def lua_overrides(tmp_path, entries, **over):
    cfg = {"pipeline": [entry(tmp_path, **e) for e in entries]}
    cfg.update(over)
    return cfg


# With filters, every connection first looks up the client's name. Tests
# that do not bring their own DNS server share one dnsmasq (started on
# first use, stopped when pytest exits) that knows 127.0.0.1: the host's
# resolver may take its whole timeout, and a closed port makes c-ares wait
# for the timeout when two queries are in flight.
_DNS = []


def no_dns():
    """The `dns:` configuration of the shared local dnsmasq."""
    if not _DNS:
        import atexit
        import tempfile
        from dns_server import DnsServer
        tmp = tempfile.mkdtemp(prefix="lua-dns-")
        d = DnsServer(tmp, {"PTR": {"127.0.0.1": "localhost.example.test"},
                            "A": {"localhost.example.test": "127.0.0.1"}})
        atexit.register(d.stop)
        _DNS.append(d)
    return {"servers": [f"127.0.0.1:{_DNS[0].port}"], "timeout": "2s",
            "attempts": 1, "hosts_file": False}   # client names from DNS


def lua_server(make_server, tmp_path, *entries, start=True, **over):
    """make_server with a pipeline of the given entries (dicts; `lua` may
    be source text)."""
    ents = [entry(tmp_path, **e) for e in entries]
    over.setdefault("dns", no_dns())
    return make_server(dict({"pipeline": ents}, **over), start=start)


class ModuleServer:
    """A server shared by a module's tests (started once), with the same
    teardown checks as make_server: it must be alive at the end and exit
    0 on SIGTERM."""

    def __init__(self, tmp_path_factory, entries, name="mod", **over):
        tmp = tmp_path_factory.mktemp(name)
        ents = [entry(tmp, **e) for e in entries]
        over.setdefault("dns", no_dns())
        self.server = Server(tmp, dict({"pipeline": ents}, **over), name=name)
        self.server.start()

    def close(self):
        s = self.server
        alive = s.alive()
        log = s.log()[-4000:]
        rc = s.stop()
        assert alive, f"server died during the tests; log:\n{log}"
        assert rc == 0, f"server exit {rc} on SIGTERM; log:\n{log}"


# -- messages ---------------------------------------------------------------

def new_message(subject=None, body="hello\n", sender="sender@remote.test",
                to="alice@example.test", date=True, msgid=True, **headers):
    """A simple EmailMessage with a unique Subject (returned as .tag)."""
    m = EmailMessage(policy=email.policy.SMTP)
    tag = uuid.uuid4().hex[:12]
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject if subject is not None else f"test {tag}"
    if date:
        m["Date"] = "Mon, 02 Mar 2026 10:00:00 +0000"
    if msgid:
        m["Message-ID"] = f"<{tag}@remote.test>"
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(body)
    return m


def as_bytes(m):
    """CRLF bytes of a message (str, bytes or EmailMessage)."""
    if isinstance(m, EmailMessage):
        data = m.as_bytes(policy=email.policy.SMTP)
    elif isinstance(m, str):
        data = m.encode()
    else:
        data = m
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return data


def dot_stuffed(data):
    """DATA payload: dot-stuffed, ending in CRLF.CRLF."""
    lines = data.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = b"\r\n".join((b"." + l if l.startswith(b".") else l)
                       for l in lines)
    return out + b"\r\n.\r\n"


def send(server, msg, sender="sender@remote.test",
         rcpts=("alice@example.test",), client=None, helo="client.example.test"):
    """One transaction on a raw client (a new one unless given): returns
    the reply to the end of data, (code, text). Every earlier step must be
    accepted."""
    own = client is None
    c = client or server.raw()
    try:
        if own:
            helpers.ehlo(c, helo)
        helpers.check(c.cmd(f"MAIL FROM:<{sender}>"), 250)
        for r in rcpts:
            helpers.check(c.cmd(f"RCPT TO:<{r}>"), 250)
        helpers.check(c.cmd("DATA"), 354)
        c.send(dot_stuffed(as_bytes(msg)))
        return c.reply()
    finally:
        if own:
            try:
                c.cmd("QUIT")
            except (OSError, EOFError, AssertionError):
                pass
            c.close()


def mail_with(server, user, needle, timeout=5.0):
    """The delivered message of `user` containing `needle` (bytes),
    waiting (bounded) for it."""
    if isinstance(needle, str):
        needle = needle.encode()
    found = []

    def look():
        found[:] = [m for m in server.read_mail(user) if needle in m]
        return found
    helpers.wait_for(look, timeout=timeout,
                     msg=f"a message with {needle!r} for {user}; log:\n"
                         + server.log()[-3000:])
    return found[0]


def delivered(server, user, needle):
    if isinstance(needle, str):
        needle = needle.encode()
    return [m for m in server.read_mail(user) if needle in m]


def sentinel(server, client=None, user="alice@example.test", lands=None):
    """Send a harmless message (on `client` if given) and wait until it is
    delivered (to `lands`, default `user`): everything committed before it
    has been delivered too."""
    m = new_message(subject=f"sentinel {uuid.uuid4().hex}")
    helpers.queued_id(send(server, m, rcpts=(user,), client=client))
    mail_with(server, (lands or user).split("@")[0], m["Subject"])


def header_values(data, name):
    hdrs, _ = helpers.split_headers(data)
    pre = name.lower() + ":"
    return [h.split(":", 1)[1].strip() for h in hdrs
            if h.lower().startswith(pre)]


def check_t(path_or_text, tmp_path, extra=None):
    """Run `sluiced -t` on a config with one Lua entry: (rc, output)."""
    srv = Server(tmp_path, lua_overrides(tmp_path, [dict(
        {"lua": path_or_text}, **(extra or {}))]), name="check")
    p = subprocess.run([SLUICED, "-t", "-c", srv.cfg_path],
                       capture_output=True, timeout=10, cwd=str(tmp_path))
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def wait_log(server, needle, timeout=5.0, count=1):
    """Bounded wait until `needle` is in the log (since the start) at
    least `count` times."""
    return helpers.wait_for(lambda: server.run_log().count(needle) >= count,
                            timeout=timeout,
                            msg=f"{count} x {needle!r} in the log:\n"
                                + server.run_log()[-3000:])


# -- a self-check of the shipped filters --------------------------------------

@pytest.mark.parametrize("name", ["attachments.lua", "spam.lua",
                                  "recipients.lua", "noop.lua",
                                  "greylist.lua"])
def test_shipped_filter_loads(tmp_path, name):
    rc, out = check_t(filter_path(name), tmp_path)
    assert rc == 0, out
    assert "configuration ok" in out


def test_bad_filter_args_stop_the_start(tmp_path):
    rc, out = check_t(filter_path("attachments.lua"), tmp_path,
                      {"args": {"action": "bounce"}})
    assert rc != 0
    assert "attachments.lua" in out and "action" in out, out
