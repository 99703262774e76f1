"""A private Dovecot (LMTP + IMAP) for the system tests (stdlib only; needs
the Debian packages dovecot-core, dovecot-lmtpd and dovecot-imapd, which
`make deps-test` installs without starting the system Dovecot).

Dovecot(tmpdir) writes a configuration into tmpdir/dovecot/ (never reads
/etc/dovecot), starts `dovecot -F -c CONF` in the foreground, waits (bounded)
until LMTP on a free 127.0.0.1 port, LMTP on a unix socket and IMAP on a free
port all listen, and stops it by PID (SIGTERM, then SIGKILL of its own
process group).

    with Dovecot(str(tmp_path)) as dc:
        dc.lmtp_port, dc.lmtp_socket, dc.imap_port
        lmtp_send(("127.0.0.1", dc.lmtp_port), "s@x.test",
                  ["alice@example.test", "bob"], msg)
        # -> ([(250, '2.1.5 OK')] * 2, [(250, '2.0.0 <alice..> Saved'), ...])
        lmtp_send(dc.lmtp_socket, ...)                 # the unix socket
        dc.wait_messages("alice", 1)    # bounded; -> [bytes] over IMAP
        dc.fetch_all("bob")             # every INBOX message, oldest first
        dc.maildir_files("alice")       # the Maildir files themselves
        dc.log()                        # tmpdir/dovecot/dovecot.log

Users: alice and bob (users=...), password PASSWORD ("secret"), from a
passwd-file. Recipient domains are ignored (alice@any.test is alice) unless a
user name given contains "@"; then full addresses are users and mail lives in
mail/<domain>/<user>. Unknown users get "550 5.1.1 ... User doesn't exist".
Mail: Maildir in tmpdir/dovecot/mail/<user>/Maildir.

smtplib.LMTP reads ONE reply after the data, so with several accepted
recipients the connection goes out of step: use lmtp_send() (a minimal LMTP
client reading one reply per accepted recipient) or one recipient per
smtplib transaction.

Dovecot 2.3 quirks met (Debian 12):
  - mail may not be read or written as root: a userdb uid 0 is refused
    ("userdb returned 0 as uid") and so is mail_uid=root ("Mail access not
    allowed for root"), whatever first_valid_uid says. Mail is stored as
    nobody:nogroup (they exist on every Debian system).
  - so that uid must be able to reach the tmp dir, but pytest makes its
    tmp dirs (and /tmp/pytest-of-root) mode 0700. While a Dovecot runs,
    the directories from / down to tmpdir that lack them get g+x and o+x
    (search only, no listing; 0700 -> 0711), and their modes are put back
    on stop. g+x too because LMTP only seteuid()s and keeps root's
    supplementary group 0, so the group bits of root:root directories are
    the ones the kernel checks. mail_chroot doesn't help: LMTP ignores it.
  - imap-login refuses to run as root: default_login_user stays dovenull
    (created by dovecot-core); it chroots into base_dir/login as root first,
    so it needs no access to the tmp dir. The other internal services run
    as root (default_internal_user = root) and read the tmp dir as root.
  - unix socket paths are limited to 107 bytes: base_dir (tmpdir/dovecot/
    run) must stay short enough; a clear error is raised otherwise.

Self-test: /usr/bin/python3 -m pytest -q tests/system/test_fixtures.py
"""
import imaplib
import os
import pwd
import grp
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import tempfile
import time

from smtp_sink import tcp_listening, unix_listening
from procs import ChildProcess, free_port

DOVECOT = "/usr/sbin/dovecot"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
PASSWORD = "secret"
MAIL_USER = "nobody"
MAIL_GROUP = "nogroup"
SUN_PATH_MAX = 107
# longest socket name Dovecot 2.3 creates under base_dir
LONGEST_SOCKET = "/token-login/imap-urlauth"


def lmtp_send(where, sender, rcpts, data, helo="client.test", timeout=5.0):
    """Deliver `data` (bytes, CRLF lines) over LMTP to `where` (a unix
    socket path or a (host, port)). Returns (rcpt replies, data replies):
    (code, text) pairs, one data reply per accepted recipient."""
    fam = socket.AF_UNIX if isinstance(where, str) else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(where)
        f = s.makefile("rb")

        def reply():
            lines = []
            while True:
                line = f.readline(65536)
                if not line.endswith(b"\n"):
                    raise EOFError(f"LMTP connection closed: {line!r}")
                line = line.rstrip(b"\r\n").decode("utf-8", "replace")
                lines.append(line[4:])
                if line[3:4] != "-":
                    return int(line[:3]), "\n".join(lines)

        def cmd(line):
            s.sendall(line.encode() + b"\r\n")
            return reply()

        for want, got in ((220, reply()), (250, cmd(f"LHLO {helo}")),
                          (250, cmd(f"MAIL FROM:<{sender}>"))):
            if got[0] != want:
                raise AssertionError(f"LMTP: expected {want}, got {got}")
        rcpt_replies = [cmd(f"RCPT TO:<{r}>") for r in rcpts]
        accepted = sum(1 for c, _ in rcpt_replies if c // 100 == 2)
        data_replies = []
        if accepted:
            code, text = cmd("DATA")
            if code != 354:
                raise AssertionError(f"LMTP DATA: {code} {text}")
            body = re.sub(rb"(?m)^\.", b"..", data)
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            s.sendall(body + b".\r\n")
            data_replies = [reply() for _ in range(accepted)]
        else:
            cmd("RSET")
        cmd("QUIT")
        return rcpt_replies, data_replies


# -- search permission on the tmp dir's ancestors ---------------------------
_grant_lock = threading.Lock()
_granted = {}       # path -> [mode before, mode we set, users]


SEARCH = stat.S_IXGRP | stat.S_IXOTH


def grant_search(path, uid):
    """Add g+x and o+x to every directory from / to `path` that is not
    owned by uid and lacks one of them; returns the directories changed
    (for release_search). Both bits: LMTP only switches its effective uid
    and gid, and keeps root's supplementary group 0, so for root-group
    directories the group bits are the ones checked."""
    path = os.path.realpath(path)
    parts = path.split(os.sep)
    changed = []
    with _grant_lock:
        for i in range(1, len(parts) + 1):
            d = os.sep.join(parts[:i]) or os.sep
            if d in _granted:
                _granted[d][2] += 1
                changed.append(d)
                continue
            st = os.stat(d)
            mode = stat.S_IMODE(st.st_mode)
            if st.st_uid == uid or mode & SEARCH == SEARCH:
                continue
            os.chmod(d, mode | SEARCH)
            _granted[d] = [mode, mode | SEARCH, 1]
            changed.append(d)
    return changed


def release_search(dirs):
    """Undo grant_search: restore each mode when its last user is gone (and
    only if nobody else changed it meanwhile)."""
    with _grant_lock:
        for d in dirs:
            entry = _granted.get(d)
            if entry is None:
                continue
            entry[2] -= 1
            if entry[2] > 0:
                continue
            del _granted[d]
            try:
                if stat.S_IMODE(os.stat(d).st_mode) == entry[1]:
                    os.chmod(d, entry[0])
            except FileNotFoundError:
                pass


class Dovecot(ChildProcess):
    """Dovecot with LMTP (TCP + unix socket) and IMAP until .stop().

    Dovecot(tmpdir, users=("alice", "bob"), password=PASSWORD,
            lmtp_port=None, imap_port=None, debug=False, extra_conf="")
    """

    def __init__(self, tmpdir, users=("alice", "bob"), password=PASSWORD,
                 lmtp_port=None, imap_port=None, debug=False, extra_conf=""):
        if not os.access(DOVECOT, os.X_OK) or \
                not os.path.exists("/usr/lib/dovecot/lmtp") or \
                not os.path.exists("/usr/lib/dovecot/imap"):
            raise RuntimeError("Dovecot missing: make deps-test (Debian "
                               "dovecot-core dovecot-lmtpd dovecot-imapd)")
        if os.geteuid() != 0:
            raise RuntimeError("the Dovecot fixture must run as root")
        self.users = list(users)
        self.password = password
        self.full_addresses = any("@" in u for u in self.users)
        self.dir = os.path.realpath(os.path.join(tmpdir, "dovecot"))
        self.base_dir = os.path.join(self.dir, "run")
        self.state_dir = os.path.join(self.dir, "state")
        self.mail_dir = os.path.join(self.dir, "mail")
        self.temp_dir = os.path.join(self.dir, "tmp")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.passwd = os.path.join(self.dir, "passwd")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.lmtp_socket = os.path.join(self.dir, "lmtp")
        self._short = None
        if len(self.base_dir + LONGEST_SOCKET) > SUN_PATH_MAX:
            # deep tmp dirs (pytest-xdist adds popen-gwN/): the sockets go
            # to a short private directory, removed again by stop()
            self._short = tempfile.mkdtemp(prefix="sluice-dc-", dir="/tmp")
            os.chmod(self._short, 0o755)
            self.base_dir = os.path.join(self._short, "run")
        pw = pwd.getpwnam(MAIL_USER)
        self.uid, self.gid = pw.pw_uid, grp.getgrnam(MAIL_GROUP).gr_gid
        self.debug = debug
        self.extra_conf = extra_conf
        self.proc = None
        self.lmtp_port = self.imap_port = None
        for d in (self.dir, self.base_dir, self.state_dir, self.mail_dir,
                  self.temp_dir):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.dir, 0o755)
        os.chmod(self.temp_dir, 0o1777)     # mail_temp_dir, used as the user
        os.chmod(self.mail_dir, 0o755)
        for u in self.users:
            home = self.home(u)
            os.makedirs(home, exist_ok=True)
            os.chown(home, self.uid, self.gid)
            parent = os.path.dirname(home)
            if parent != self.mail_dir:          # mail/<domain>
                os.chmod(parent, 0o755)
        with open(self.passwd, "w") as f:
            for u in self.users:
                f.write(f"{u}:{{PLAIN}}{password}::::::\n")
        os.chmod(self.passwd, 0o600)
        self._granted = grant_search(self.dir, self.uid)
        try:
            fixed = lmtp_port and imap_port
            for _ in range(1 if fixed else 5):
                if self._start(lmtp_port or free_port(),
                               imap_port or free_port()):
                    return
            raise RuntimeError(f"dovecot did not start; see {self.log_path}")
        except BaseException:
            self.stop()
            raise

    def home(self, user):
        if self.full_addresses and "@" in user:
            local, _, domain = user.partition("@")
            return os.path.join(self.mail_dir, domain.lower(), local.lower())
        return os.path.join(self.mail_dir, user.split("@")[0].lower())

    def maildir(self, user):
        return os.path.join(self.home(user), "Maildir")

    def config_text(self, lmtp_port, imap_port):
        fmt = "%Lu" if self.full_addresses else "%Ln"
        home = (f"{self.mail_dir}/%Ld/%Ln" if self.full_addresses
                else f"{self.mail_dir}/%Ln")
        debug = "auth_debug = yes\nmail_debug = yes\nverbose_ssl = no\n" \
            if self.debug else ""
        return f"""\
# written by tests/system/dovecot.py: a private test instance
protocols = imap lmtp
listen = 127.0.0.1
hostname = dovecot.test
base_dir = {self.base_dir}
state_dir = {self.state_dir}
instance_name = sluice-test-{os.getpid()}-{id(self):x}
log_path = {self.log_path}
default_internal_user = root
default_internal_group = root
default_login_user = dovenull
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = {fmt}
mail_location = maildir:~/Maildir
mail_temp_dir = {self.temp_dir}
{debug}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format={fmt} {self.passwd}
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={home}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
  unix_listener {self.lmtp_socket} {{
    mode = 0666
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
{self.extra_conf}
"""

    def _start(self, lmtp_port, imap_port):
        with open(self.conf, "w") as f:
            f.write(self.config_text(lmtp_port, imap_port))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [DOVECOT, "-F", "-c", self.conf], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False        # most likely a port was taken
            if tcp_listening(lmtp_port) and tcp_listening(imap_port) and \
                    unix_listening(self.lmtp_socket):
                self.lmtp_port, self.imap_port = lmtp_port, imap_port
                return True
            time.sleep(0.02)
        raise RuntimeError(f"dovecot did not listen within {START_TIMEOUT}s"
                           f"; see {self.log_path}")

    # -- mail ----------------------------------------------------------------
    def maildir_files(self, user):
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.maildir(user), sub)
            try:
                out += [os.path.join(d, n) for n in os.listdir(d)
                        if not n.startswith(".")]
            except FileNotFoundError:
                pass
        return sorted(out)

    def imap(self, user, password=None, timeout=5.0):
        """A logged-in imaplib.IMAP4 for `user` (caller logs out)."""
        m = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=timeout)
        try:
            m.login(user, password or self.password)
        except BaseException:
            m.shutdown()
            raise
        return m

    def fetch_all(self, user, password=None, mailbox="INBOX", timeout=5.0):
        """Every message in `mailbox` of `user` over IMAP, oldest (lowest
        UID) first, as the exact bytes Dovecot stored (not marked seen)."""
        m = self.imap(user, password, timeout)
        try:
            typ, _ = m.select(mailbox, readonly=True)
            assert typ == "OK", f"SELECT {mailbox} failed for {user}"
            typ, data = m.uid("SEARCH", None, "ALL")
            assert typ == "OK", data
            out = []
            for uid in data[0].split():
                typ, resp = m.uid("FETCH", uid, "(BODY.PEEK[])")
                assert typ == "OK", resp
                out += [part[1] for part in resp if isinstance(part, tuple)]
            return out
        finally:
            try:
                m.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def wait_messages(self, user, n=1, timeout=5.0):
        """Bounded poll until `user` has >= n messages in the Maildir; then
        returns fetch_all(user)."""
        deadline = time.monotonic() + timeout
        while len(self.maildir_files(user)) < n:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {n} message(s) "
                    f"for {user} in Dovecot; log:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        return self.fetch_all(user)

    # -- lifecycle -----------------------------------------------------------
    def stop(self):
        """SIGTERM to the master by PID, bounded wait; then SIGKILL to its
        process group (only processes it started). Restores the directory
        modes changed at start. Idempotent."""
        proc, self.proc = self.proc, None
        try:
            if proc is not None:
                pgid = proc.pid          # start_new_session: pgid == pid
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGTERM)
                    try:
                        proc.wait(STOP_TIMEOUT)
                    except subprocess.TimeoutExpired:
                        pass
                deadline = time.monotonic() + STOP_TIMEOUT
                while self._group_alive(pgid) and \
                        time.monotonic() < deadline:
                    time.sleep(0.05)
                if self._group_alive(pgid):
                    try:
                        os.killpg(pgid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                if proc.poll() is None:
                    proc.wait(STOP_TIMEOUT)
        finally:
            if getattr(self, "_short", None):
                shutil.rmtree(self._short, ignore_errors=True)
                self._short = None
            granted, self._granted = getattr(self, "_granted", []), []
            # Only directories inside pytest's scratch area (e.g.
            # /tmp/pytest-of-root) keep their search bits: another pytest
            # process may run a Dovecot below them right now, and the
            # counts above are per process. Anything else is restored.
            release_search([d for d in granted
                            if not os.path.basename(d).startswith("pytest-")])

    @staticmethod
    def _group_alive(pgid):
        """True while a live (non-zombie) process is in process group pgid:
        children the master leaves behind are reparented and their zombies
        may stay until init reaps them."""
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            fields = st[st.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
        return False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
