"""System-test fixtures for sluiced.

A `Server` writes a YAML configuration into the test's tmp dir, starts
$SLUICED -c CONFIG on a free loopback port (stdout/stderr to a log file in
the tmp dir), waits until the port accepts and stops the process by its PID
at teardown.  After each test the server must still be alive (it must
survive bad input), unless the test killed it on purpose.

Run:  SLUICED=/work/main/build/sluiced /usr/bin/python3 -m pytest -q tests/system
"""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import helpers
# the `milters` fixture (test milters and opendkim), for every test module
from milter_fixtures import milters  # noqa: F401
from procs import ChildProcess, free_port
from tls_certs import TestPKI

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SLUICED = os.environ.get("SLUICED") or os.path.join(REPO, "build", "sluiced")

START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0


def default_config(tmp, port):
    """The default test configuration as a dict (see Server.render)."""
    cfg = {
        "hostname": "mx.example.test",
        "spool": f"{tmp}/spool",
        "workers": 2,
        # below STOP_TIMEOUT: a session a test left inside a transaction
        # must not hold up the teardown's SIGTERM (test_shutdown.py)
        "shutdown_timeout": "2s",
        "listeners": [{"name": "mx", "address": "127.0.0.1", "port": port,
                       "role": "mx"}],
        # not loopback: a test client is a stranger unless a test says so
        "trusted_networks": ["192.0.2.0/24"],
        "domains": {"local": ["example.test"]},
        "mailboxes": {"maildir": f"{tmp}/mail/%d/%u/Maildir",
                      "users": ["alice@example.test", "bob@example.test"]},
        "retry": {"first": "1s", "max_interval": "2s", "lifetime": "5d",
                  "warn_after": "4h"},
        "limits": {"message_size": "1M", "recipients": 100,
                   "line_length": 1000, "command_line_length": 512,
                   "sessions": 20, "per_ip_sessions": 5, "errors": 10,
                   "idle_timeout": "30s", "command_timeout": "30s"},
        "smtp": {"bare_newline": "reject"},
        "log": {"target": "stderr", "level": "info"},
    }
    if os.geteuid() == 0:
        # the tests run as root in CI containers, and sluiced refuses to run
        # filters as root; test_privileges.py checks that refusal itself
        cfg["allow_root_filters"] = True
    return cfg


def _merge(base, over):
    """Deep-merge `over` into `base`; a value None deletes the key."""
    for k, v in over.items():
        if v is None:
            base.pop(k, None)
        elif isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if re.fullmatch(r"[A-Za-z0-9_./@-]+", s) and not s.startswith("-"):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _flow(v):
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _scalar(v)


def render(cfg):
    """YAML text: top-level keys in block style, values in flow style."""
    out = []
    for k, v in cfg.items():
        if k == "listeners":
            out.append("listeners:")
            for item in v:
                out.append(f"  - {_flow(item)}")
        else:
            out.append(f"{k}: {_flow(v)}")
    return "\n".join(out) + "\n"


class Server(ChildProcess):
    """One sluiced process under test."""

    def __init__(self, tmp_path, overrides=None, name="srv"):
        self.tmp = str(tmp_path)
        self.name = name
        self.port = free_port()
        self.host = "127.0.0.1"
        self.cfg = _merge(default_config(self.tmp, self.port), overrides or {})
        self.cfg_path = os.path.join(self.tmp, f"{name}.yaml")
        self.log_path = os.path.join(self.tmp, f"{name}.log")
        self.proc = None
        self.log_start = 0
        self.expect_dead = False
        self.stopped = False
        self.preexec_fn = None      # run in the child before exec
        self.write_config()

    # -- configuration ----------------------------------------------------
    @property
    def spool(self):
        return self.cfg["spool"]

    def write_config(self):
        with open(self.cfg_path, "w") as f:
            f.write(render(self.cfg))

    # -- process ----------------------------------------------------------
    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None
        logf = open(self.log_path, "ab")
        self.log_start = logf.tell()
        self.proc = subprocess.Popen([SLUICED, "-c", self.cfg_path],
                                     stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.tmp,
                                     preexec_fn=self.preexec_fn)
        logf.close()
        self.expect_dead = False
        self.stopped = False
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        """Bounded wait until the listener accepts a connection."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"sluiced exited with {self.proc.returncode} at start;"
                    f" log:\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port),
                                              timeout=0.5) as s:
                    s.settimeout(2)
                    try:
                        s.recv(512)     # the greeting, then close politely
                        s.sendall(b"QUIT\r\n")
                        s.recv(512)
                    except OSError:
                        pass
                # let the server account for the probe's disconnect
                helpers.wait_for(lambda: self.run_log().count(
                                     "event=disconnect") >= 1,
                                 timeout=2, fail=False)
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"sluiced not accepting on {self.port} after "
                             f"{timeout}s; log:\n{self.log()}")

    def stop(self):
        """SIGTERM, wait up to 5 s, then SIGKILL.  Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.stopped = True
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
        return self.proc.returncode

    def kill9(self):
        """SIGKILL the server on purpose (teardown won't require it alive)."""
        self.expect_dead = True
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT)

    def restart(self, wait=True):
        self.stop()
        return self.start(wait=wait)

    # -- observation ------------------------------------------------------
    def run_log(self):
        """The log written since the last start."""
        with open(self.log_path, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        return self.log().splitlines()

    def maildir(self, user, domain="example.test"):
        return os.path.join(self.tmp, "mail", domain, user, "Maildir")

    def maildir_files(self, user, domain="example.test", sub=("new", "cur")):
        out = []
        for s in sub:
            d = os.path.join(self.maildir(user, domain), s)
            try:
                out += [os.path.join(d, n) for n in sorted(os.listdir(d))
                        if not n.startswith(".")]
            except FileNotFoundError:
                pass
        return out

    def read_mail(self, user, domain="example.test"):
        res = []
        for p in self.maildir_files(user, domain):
            with open(p, "rb") as f:
                res.append(f.read())
        return res

    def wait_mail(self, user, count=1, timeout=5.0, domain="example.test"):
        """Bounded poll until `user` has at least `count` messages."""
        helpers.wait_for(lambda: len(self.maildir_files(user, domain)) >= count,
                         timeout=timeout,
                         msg=f"{count} message(s) for {user}; log:\n"
                             + self.log()[-3000:])
        return self.read_mail(user, domain)

    def spool_files(self, sub="queue"):
        """Files in a spool subdirectory; in queue/ the spent files kept
        for reuse (free.N) are left out: they hold no message."""
        d = os.path.join(self.spool, sub)
        try:
            return sorted(n for n in os.listdir(d)
                          if os.path.isfile(os.path.join(d, n))
                          and not (sub == "queue" and n.startswith("free.")))
        except FileNotFoundError:
            return []

    def partial_files(self):
        """Messages being received (queue/<qid>.in)."""
        return [n for n in self.spool_files("queue") if n.endswith(".in")]

    def spool_count(self, sub="queue"):
        return len(self.spool_files(sub))

    def queued_ids(self):
        """Committed message ids in queue/ (status files excluded)."""
        return [n for n in self.spool_files("queue")
                if helpers.QID_RE.fullmatch(n)]

    def wait_queue_empty(self, timeout=10.0):
        """Bounded poll until queue/ holds no committed message."""
        helpers.wait_for(lambda: not self.queued_ids(), timeout=timeout,
                         msg="an empty queue; left: "
                             + " ".join(self.queued_ids()))

    def queue_file(self, qid):
        with open(os.path.join(self.spool, "queue", qid), "rb") as f:
            return f.read()

    # -- clients ----------------------------------------------------------
    def smtp(self, timeout=10, **kw):
        import smtplib
        return smtplib.SMTP(self.host, self.port, timeout=timeout, **kw)

    def raw(self, timeout=10, source=None, greet=True):
        c = helpers.RawClient(self.host, self.port, timeout=timeout,
                              source=source)
        if greet:
            code, text = c.reply()
            assert code == 220, (code, text)
        return c


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(overrides=None, start=True, name=...) -> Server."""
    servers = []

    def factory(overrides=None, start=True, name=None):
        s = Server(tmp_path, overrides,
                   name=name or f"srv{len(servers)}")
        servers.append(s)
        if start:
            s.start()
        return s

    yield factory

    dead, unclean = [], []
    for s in servers:
        if s.proc is None:
            continue
        if not s.expect_dead and not s.stopped and not s.alive():
            dead.append((s.name, s.proc.returncode, s.log()[-4000:]))
        was_running = s.alive()
        t0 = time.monotonic()
        rc = s.stop()
        if was_running and (rc != 0 or time.monotonic() - t0 > STOP_TIMEOUT):
            unclean.append((s.name, rc, s.log()[-4000:]))
    if dead:
        pytest.fail("server died during the test (must survive bad input): "
                    + "; ".join(f"{n} exit={rc}\n{log}" for n, rc, log in dead))
    if unclean:
        pytest.fail("server did not exit 0 within 5 s of SIGTERM: "
                    + "; ".join(f"{n} exit={rc}\n{log}"
                                for n, rc, log in unclean))


@pytest.fixture
def server(make_server):
    """A running server with the default test configuration."""
    return make_server()


@pytest.fixture
def pki(tmp_path):
    """A private CA for the TLS tests (tls_certs.TestPKI)."""
    return TestPKI(tmp_path)
