"""Milters for the tests of sluiced's milter client: the scripted python
milter (milters/scripted_milter.py), the misbehaving one
(milters/bad_milter.py) and a real opendkim signer, each on a unix socket
under the test's tmp dir, waited for until the socket accepts, stopped by
PID at teardown. Plus dkim_verify(): checks a DKIM-Signature against the
generated key without DNS (python3-dkim).

conftest.py makes the fixture known to every test module:

    def test_x(make_server, milters):
        m = milters.scripted({"callbacks": {"envrcpt": [
                {"match": "bad@", "action": "reject"}]}})
        srv = make_server({"pipeline": [{"milter": m.spec, "name": "t"}]})
        ...
        assert [e["ev"] for e in m.events()] == [...]

`milters` is a factory object: milters.scripted(scenario, name=...),
milters.bad(on, do, name=..., **options), milters.opendkim(name=...,
mode="s"); everything it started is stopped at teardown. The functions
start_scripted_milter(tmp, ...), start_bad_milter(tmp, ...) and
start_opendkim(tmp, ...) do the same without pytest; call .stop().
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

import helpers
from procs import ChildProcess, terminate, unlink_quietly

HERE = os.path.dirname(os.path.abspath(__file__))
MILTERS = os.path.join(HERE, "milters")
PYTHON = "/usr/bin/python3"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

# the order of the per-message events in the scripted milter's log
CALLBACK_EVENTS = ("connect", "helo", "mail", "rcpt", "data", "header", "eoh",
                   "body", "eom", "abort", "close", "unknown")


def socket_accepts(path, timeout=0.5):
    """True if a unix socket at `path` accepts a connection now."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class MilterProc(ChildProcess):
    """A milter process we started, listening on unix:`sock`.

    .spec        "unix:/path" (the pipeline entry's value; Postfix syntax too)
    .sock        the socket path
    .log_path    JSON-lines log (scripted and bad milter)
    .out_path    the process's stdout/stderr
    """

    def __init__(self, name, sock, argv, log_path, out_path, cwd,
                 env=None, stdin_pipe=False):
        self.name = name
        self.sock = sock
        self.spec = f"unix:{sock}"
        self.argv = argv
        self.log_path = log_path
        self.out_path = out_path
        self.cwd = cwd
        self.env = env
        self.stdin_pipe = stdin_pipe
        self.term_grace = STOP_TIMEOUT     # SIGTERM to SIGKILL
        self.proc = None

    def start(self, timeout=START_TIMEOUT):
        unlink_quietly(self.sock)
        out = open(self.out_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=out,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE if self.stdin_pipe
                                     else subprocess.DEVNULL, cwd=self.cwd,
                                     env=self.env)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"milter {self.name} exited with {self.proc.returncode}"
                    f" at start; output:\n{self.output()}")
            if os.path.exists(self.sock) and socket_accepts(self.sock):
                return self
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"milter {self.name} not accepting on "
                             f"{self.sock} after {timeout}s; output:\n"
                             f"{self.output()}")

    def stop(self):
        """SIGTERM by PID, bounded wait, SIGKILL. Returns the exit code.
        A milter started with stdin_pipe (the scripted one: libmilter
        takes up to 5 s to notice SIGTERM) is first told to exit at once
        by closing its stdin."""
        if self.proc is None:
            return None
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(STOP_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.term_grace >= STOP_TIMEOUT:
            terminate(self.proc, STOP_TIMEOUT)
        elif self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(self.term_grace)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
        unlink_quietly(self.sock)
        return self.proc.returncode

    def kill9(self):
        if self.alive():
            os.kill(self.proc.pid, 9)
            self.proc.wait(STOP_TIMEOUT)

    def output(self):
        try:
            with open(self.out_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # -- the JSON log ------------------------------------------------------
    def events(self, ev=None, conn=None):
        """The log's JSON objects, optionally only of event(s) `ev` (a name
        or a tuple) and/or MTA connection number `conn`."""
        out = []
        try:
            with open(self.log_path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return out
        for line in lines:
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except ValueError:
                continue            # a line being written
            if ev is not None and e.get("ev") not in (
                    (ev,) if isinstance(ev, str) else ev):
                continue
            if conn is not None and e.get("conn") != conn:
                continue
            out.append(e)
        return out

    def sequence(self, conn=None):
        """The callback event names in arrival order (negotiate, mod,
        progress lines left out). conn="last": only the last connection's.
        (The Server fixture's readiness probe is an SMTP session too, so
        with sluiced the milter's first connection is usually just
        connect + close.)"""
        if conn == "last":
            conn = self.last_conn()
        return [e["ev"] for e in self.events(CALLBACK_EVENTS, conn)]

    def conn_ids(self):
        """The MTA connection numbers seen, in order."""
        out = []
        for e in self.events():
            if "conn" in e and e["conn"] not in out:
                out.append(e["conn"])
        return out

    def last_conn(self):
        ids = self.conn_ids()
        return ids[-1] if ids else None

    def wait_event(self, ev, count=1, timeout=5.0, conn=None):
        """Bounded wait until `count` events `ev` are logged; returns them."""
        return helpers.wait_for(
            lambda: (lambda es: es if len(es) >= count else None)(
                self.events(ev, conn)),
            timeout=timeout,
            msg=f"{count} '{ev}' event(s) from milter {self.name}; log:\n"
                + self.log_text()[-3000:])

    def log_text(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def headers_seen(self, conn=None):
        """[(name, value)] of the header events, values exactly as sent."""
        return [(e["args"]["name"], e["args"]["value"])
                for e in self.events("header", conn)]

    def clear_log(self):
        open(self.log_path, "w").close()


def _dir(tmp, name):
    d = os.path.join(str(tmp), name)
    os.makedirs(d, exist_ok=True)
    return d


def start_scripted_milter(tmp, scenario=None, name="milter"):
    """scripted_milter.py on unix:TMP/NAME/milter.sock with `scenario` (a
    dict, written to TMP/NAME/scenario.json); log TMP/NAME/events.jsonl."""
    d = _dir(tmp, name)
    scen = os.path.join(d, "scenario.json")
    with open(scen, "w") as f:
        json.dump(scenario or {}, f, indent=1)
    sock = os.path.join(d, "milter.sock")
    log = os.path.join(d, "events.jsonl")
    m = MilterProc(name, sock,
                   [PYTHON, os.path.join(MILTERS, "scripted_milter.py"),
                    f"unix:{sock}", scen, log],
                   log, os.path.join(d, "output.log"), d,
                   env=dict(os.environ, MILTER_EXIT_ON_STDIN_EOF="1"),
                   stdin_pipe=True)
    m.scenario = scenario or {}
    return m.start()


def start_bad_milter(tmp, on="E", do="close", name="bad", **opts):
    """bad_milter.py on unix:TMP/NAME/milter.sock, misbehaving with `do` at
    command letter `on` (see bad_milter.py). opts become options:
    nth=2 -> --nth 2, version=99, actions=0, protocol=0x80, sleep=3,
    text="..." ."""
    d = _dir(tmp, name)
    sock = os.path.join(d, "milter.sock")
    log = os.path.join(d, "events.jsonl")
    argv = [PYTHON, os.path.join(MILTERS, "bad_milter.py"), f"unix:{sock}",
            "--on", on, "--do", do, "--log", log]
    for k, v in opts.items():
        argv += ["--" + k.replace("_", "-"), str(v)]
    m = MilterProc(name, sock, argv, log, os.path.join(d, "output.log"), d)
    return m.start()


# -- opendkim ---------------------------------------------------------------

class OpenDKIM(MilterProc):
    """opendkim signing for `domain` with selector `selector`.
    .keydir/.private/.txt  the generated key; .txt_record() the TXT data;
    .verify(msg) checks a signed message against it (no DNS)."""

    def txt_record(self):
        return dkim_txt_record(self.txt)

    def verify(self, message):
        return dkim_verify(message, self.txt)


def start_opendkim(tmp, name="opendkim", domain="example.test",
                   selector="test", mode="s", extra=""):
    """opendkim-genkey into TMP/NAME/keys, TMP/NAME/opendkim.conf, then
    `opendkim -f -x CONF` on local:TMP/NAME/opendkim.sock. Signs mail whose
    From: is in `domain` from clients in InternalHosts 127.0.0.1 (the
    connect address the MTA reports)."""
    for tool in ("opendkim", "opendkim-genkey"):
        if not shutil.which(tool, path="/usr/sbin:/usr/bin"):
            pytest.skip(f"{tool} is not installed")
    d = _dir(tmp, name)
    keys = os.path.join(d, "keys")
    os.makedirs(keys, exist_ok=True)
    subprocess.run(["/usr/sbin/opendkim-genkey", "-D", keys, "-d", domain,
                    "-s", selector], check=True, timeout=60,
                   stdin=subprocess.DEVNULL)
    private = os.path.join(keys, f"{selector}.private")
    os.chmod(private, 0o600)
    sock = os.path.join(d, "opendkim.sock")
    conf = os.path.join(d, "opendkim.conf")
    with open(conf, "w") as f:
        f.write(f"""Syslog           no
Background       no
Mode             {mode}
Domain           {domain}
Selector         {selector}
KeyFile          {private}
Socket           local:{sock}
Canonicalization relaxed/simple
PidFile          {d}/opendkim.pid
RequireSafeKeys  false
InternalHosts    127.0.0.1
UMask            002
{extra}""")
    m = OpenDKIM(name, sock, ["/usr/sbin/opendkim", "-f", "-x", conf],
                 None, os.path.join(d, "output.log"), d)
    # libmilter notices SIGTERM only within 5 s: do not wait that long
    m.term_grace = 1.0
    m.keydir, m.private, m.conf = keys, private, conf
    m.txt = os.path.join(keys, f"{selector}.txt")
    m.domain, m.selector = domain, selector
    return m.start()


def dkim_txt_record(txt_path):
    """The TXT record data (bytes) in an opendkim-genkey .txt file: all its
    quoted strings joined."""
    with open(txt_path) as f:
        text = f.read()
    return "".join(re.findall(r'"([^"]*)"', text)).encode()


def dkim_verify(message, txt_path):
    """True if the first DKIM-Signature of `message` (bytes, CRLF or LF
    lines) verifies with the key in `txt_path`, looked up without DNS."""
    import dkim
    record = dkim_txt_record(txt_path)
    if b"\r\n" not in message:
        message = message.replace(b"\n", b"\r\n")

    def dnsfunc(name, timeout=5):
        return record

    return bool(dkim.verify(message, dnsfunc=dnsfunc))


# -- the pytest fixture -----------------------------------------------------

class Milters:
    """Factory for the `milters` fixture; remembers what to stop."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.started = []

    def _add(self, m):
        self.started.append(m)
        return m

    def scripted(self, scenario=None, name=None):
        return self._add(start_scripted_milter(
            self.tmp, scenario, name or f"milter{len(self.started)}"))

    def bad(self, on="E", do="close", name=None, **opts):
        return self._add(start_bad_milter(
            self.tmp, on, do, name or f"bad{len(self.started)}", **opts))

    def opendkim(self, name=None, **kw):
        return self._add(start_opendkim(
            self.tmp, name or f"opendkim{len(self.started)}", **kw))

    def stop_all(self):
        for m in self.started:
            m.stop()


@pytest.fixture
def milters(tmp_path):
    """milters.scripted(scenario) / .bad(on, do, **opts) / .opendkim()"""
    f = Milters(tmp_path)
    yield f
    f.stop_all()
