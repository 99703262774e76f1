"""A private Postfix instance for tests (the Debian `postfix` package, as
root): its own config_directory and queue_directory under a fresh
directory in /tmp, smtpd only on 127.0.0.1:<port the caller picks or a
free one>, mail for `relay_domains` sent to a fixed next hop (an aiosmtpd
Downstream), the log in <dir>/postfix.log. Started with `postfix -c DIR
start`, stopped with `postfix -c DIR stop` and, if its master is still
alive after a bounded wait, SIGKILL by the master's PID. The system
Postfix (port 25, /etc/postfix) is never touched.

    with PostfixInstance(relay_to=("127.0.0.1", d.port),
                         relay_domains=["example.test"],
                         extra={"smtpd_milters": "unix:/x/sluice.sock",
                                "milter_default_action": "tempfail"}) as pf:
        smtplib.SMTP("127.0.0.1", pf.port) ...

The directory is made with mode 0755 (not under pytest's 0700 tmp dir):
Postfix daemons run as user postfix and must reach it, and so must a
milter socket placed in `pf.dir` (PostfixInstance.socket_path(name)).
available() says whether the Debian Postfix binaries are installed.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from procs import ChildProcess, free_port

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:{port} inet n - n - - smtpd
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
smtp       unix  -       -       n       -       -       smtp
relay      unix  -       -       n       -       -       smtp
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
local      unix  -       n       n       -       -       local
virtual    unix  -       n       n       -       -       virtual
lmtp       unix  -       -       n       -       -       lmtp
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
"""


def available():
    return (os.geteuid() == 0 and os.access(POSTFIX, os.X_OK)
            and os.access(POSTCONF, os.X_OK))


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


class PostfixInstance(ChildProcess):
    def __init__(self, relay_to, relay_domains=("example.test",),
                 port=None, extra=None, keep=False):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="sluice-pf-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "conf")
        self.queue = os.path.join(self.dir, "queue")
        self.log_path = os.path.join(self.dir, "postfix.log")
        self.keep = keep
        self.started = False
        self.master_pid = None
        os.makedirs(self.conf)
        os.makedirs(self.queue)
        host, rport = relay_to
        domains = list(relay_domains)
        transport = os.path.join(self.conf, "transport")
        with open(transport, "w") as f:
            for d in domains:
                f.write(f"{d} smtp:[{host}]:{rport}\n")
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": os.path.join(self.dir, "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "syslog_name": f"postfix-test-{self.port}",
            "maillog_file": self.log_path,
            "maillog_file_prefixes": self.dir,
            "myhostname": "postfix-test.example.test",
            "mydomain": "example.test",
            "myorigin": "$myhostname",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "mydestination": "",
            "local_recipient_maps": "",
            "local_transport": "error:local delivery is disabled",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "relay_domains": " ".join(domains),
            "relay_recipient_maps": "",
            "transport_maps": "texthash:" + transport,
            "smtpd_relay_restrictions":
                "permit_mynetworks, reject_unauth_destination",
            "smtpd_recipient_restrictions":
                "permit_mynetworks, reject_unauth_destination",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "smtp_dns_support_level": "disabled",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
        }
        main.update(extra or {})
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            for k, v in main.items():
                f.write(f"{k} = {v}\n")
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(port=self.port))

    def socket_path(self, name):
        """A path for a unix socket that Postfix's smtpd can reach."""
        return os.path.join(self.dir, name)

    def _postfix(self, *args, timeout=60):
        return subprocess.run([POSTFIX, "-c", self.conf, *args],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=timeout)

    def _read_master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().strip() or 0) or None
        except (FileNotFoundError, ValueError):
            return None

    def start(self):
        r = self._postfix("check")
        if r.returncode != 0:
            raise AssertionError("postfix check failed:\n"
                                 + r.stdout.decode(errors="replace"))
        self.started = True
        r = self._postfix("start")
        if r.returncode != 0:
            raise AssertionError("postfix start failed:\n"
                                 + r.stdout.decode(errors="replace")
                                 + self.log()[-3000:])
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self.master_pid = self.master_pid or self._read_master_pid()
            if self.master_pid:
                try:
                    with socket.create_connection(("127.0.0.1", self.port),
                                                  timeout=1) as s:
                        s.settimeout(5)
                        s.recv(512)          # the banner
                        s.sendall(b"QUIT\r\n")
                        s.recv(512)
                    return self
                except OSError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"private Postfix not serving 127.0.0.1:"
                             f"{self.port}; log:\n{self.log()[-3000:]}")

    def stop(self):
        if not self.started:
            return
        self.started = False
        pid = self.master_pid or self._read_master_pid()
        try:
            self._postfix("stop", timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        if pid:
            deadline = time.monotonic() + STOP_TIMEOUT
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)

    def cleanup(self):
        self.stop()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
