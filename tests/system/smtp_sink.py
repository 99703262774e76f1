"""Postfix's smtp-sink as a downstream server for the system tests (stdlib
only; needs /usr/sbin/smtp-sink from the Debian package postfix, which
`make deps-test` installs without starting Postfix).

SmtpSink(tmpdir, ...) starts /usr/sbin/smtp-sink on a free 127.0.0.1 port
(host=: another loopback address; or a unix socket) in the foreground,
dumps every message into tmpdir/<name>/dump/, waits (bounded) until it
listens and stops it by PID.

    with SmtpSink(str(tmp_path)) as sink:             # 127.0.0.1:sink.port
        ... deliver to 127.0.0.1:sink.port ...
        m = sink.wait_messages(1, timeout=5)[0]
        m.mail_args      # 'MAIL FROM' arguments as sent: '<a@x.test> SIZE=12'
        m.rcpt_args      # one per RCPT: ['<b@y.test> NOTIFY=NEVER']
        m.mail_from, m.rcpt_tos     # the addresses alone
        m.helo, m.proto, m.client_addr
        m.data           # the message as smtp-sink wrote it (see below)
        sink.counters()  # {'sess': 1, 'quit': 1, 'mesg': 1} (smtp-sink -c)

    SmtpSink(tmp, soft_reject=["RCPT"])     # -r: 4xx to every RCPT
    SmtpSink(tmp, hard_reject=["MAIL", "."], hard_reply="554 5.7.1 no")
    SmtpSink(tmp, disconnect=["DATA"])      # -q: hang up without a reply
    SmtpSink(tmp, disconnect_421=["RCPT"])  # -Q: 421 and hang up
    SmtpSink(tmp, lmtp=True, unix_path=...) # -L: LMTP (one reply per rcpt)

smtp-sink options used (see `man smtp-sink`):
    -u root     drop to this user: required when started as root; root keeps
                access to the 0700 pytest tmp dirs for the dumps
    -c          running counters on stdout (sess=, quit=, mesg=), parsed by
                counters()
    -d TEMPLATE dump each transaction to its own file (strftime template +
                random hex); "-R DIR" is chroot, not a dump directory
    -f CMDS     hard (5xx) reject these commands (CONNECT, HELO, EHLO, LHLO,
                MAIL, RCPT, DATA, "." = end of data, RSET, NOOP, QUIT, VRFY);
                -f and -r imply -p; -B/-b set the 5xx/4xx reply text
                (defaults "500 5.3.0 Error: command failed", "450 4.3.0 ...")
    -r CMDS     soft (4xx) reject these commands
    -q CMDS     disconnect without replying after these commands
    -Q CMDS     reply 421 and disconnect after these commands
    -A DELAY    abort with 550 DELAY seconds after the 354, not reading on
    -w DELAY    wait before answering DATA; -W CMD:DELAY[:ODDS] any command
    -p -8 -N -e -E   do not offer PIPELINING / 8BITMIME / DSN / ESMTP at all
                / ENHANCEDSTATUSCODES; -a no AUTH, -C no XCLIENT,
                -F no XFORWARD
    -L          LMTP; -h NAME greeting/EHLO host name; -M N / -n N exit after N
                messages / sessions; -t S command timeout; -v log the dialogue
    -4          IPv4 only (we listen on 127.0.0.1 anyway)

Quirks: smtp-sink's EHLO reply ends with a bare "250 " line; a dump is
written LF-terminated and dot-unstuffed (CRLF and bare LF look the same),
starts with smtp-sink's own X-Client-Addr/X-Client-Proto/X-Helo-Args/
X-Mail-Args/X-Rcpt-Args and a three-line Received: header (parsed off into
the fields above), and ends with one added empty line (removed from .data).
A message whose "." is rejected (-r . / -f .) is still dumped and counted;
a dump file is complete once smtp-sink no longer holds it open (messages()
only returns those).

Self-test: /usr/bin/python3 -m pytest -q tests/system/test_fixtures.py
"""
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass

from procs import ChildProcess, free_port, terminate, unlink_quietly

SMTP_SINK = "/usr/sbin/smtp-sink"
START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0


def tcp_listening(port, host="127.0.0.1"):
    """True if some socket LISTENs on host:port (read from /proc/net/tcp,
    so no probe connection disturbs the server's counters)."""
    addr = socket.htonl(int.from_bytes(socket.inet_aton(host), "big"))
    want = {f"{addr:08X}:{port:04X}", f"00000000:{port:04X}"}
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == "0A" and parts[1] in want:
                    return True
    except OSError:
        pass
    return False


def unix_listening(path):
    """True if a socket LISTENs at path (/proc/net/unix: the flag
    __SO_ACCEPTCON, 00010000; the file appears at bind(), before listen())."""
    try:
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                parts = line.split()
                if len(parts) >= 8 and parts[7] == path and \
                        parts[3] == "00010000":
                    return True
    except OSError:
        pass
    return False


def _cmds(v):
    if isinstance(v, str):
        v = [v]
    return ",".join(v)


@dataclass
class SinkMessage:
    path: str
    client_addr: str
    proto: str               # SMTP, ESMTP or LMTP
    helo: str                # HELO/EHLO/LHLO argument ('' if none)
    mail_args: str           # everything after "MAIL FROM:"
    rcpt_args: list          # everything after "RCPT TO:", one per RCPT
    received: str            # smtp-sink's Received: header (unfolded)
    data: bytes              # the message, LF line ends, dot-unstuffed

    @property
    def mail_from(self):
        m = re.match(r"\s*<([^>]*)>", self.mail_args)
        return m.group(1) if m else self.mail_args.split()[0]

    @property
    def rcpt_tos(self):
        out = []
        for a in self.rcpt_args:
            m = re.match(r"\s*<([^>]*)>", a)
            out.append(m.group(1) if m else a.split()[0])
        return out

    @property
    def data_crlf(self):
        """data with CRLF line ends (what a client most likely sent)."""
        return self.data.replace(b"\n", b"\r\n")


def parse_dump(path):
    """A SinkMessage from one smtp-sink -d dump file."""
    with open(path, "rb") as f:
        raw = f.read()
    fields = {"X-Client-Addr": "", "X-Client-Proto": "", "X-Helo-Args": "",
              "X-Mail-Args": ""}
    rcpts = []
    pos = 0
    received = None
    while pos < len(raw):
        end = raw.find(b"\n", pos)
        if end < 0:
            break
        line = raw[pos:end].decode("utf-8", "replace")
        pos = end + 1
        if line.startswith("Received: "):
            # three lines: "Received: from ...", "\tby ... id X;", "\tdate"
            parts = [line]
            while pos < len(raw) and raw[pos:pos + 1] == b"\t":
                end = raw.find(b"\n", pos)
                end = len(raw) if end < 0 else end
                parts.append(raw[pos:end].decode("utf-8", "replace"))
                pos = end + 1
            received = " ".join(p.strip() for p in parts)[len("Received: "):]
            break
        key, _, val = line.partition(": ")
        if key == "X-Rcpt-Args":
            rcpts.append(val)
        elif key in fields:
            fields[key] = val
    body = raw[pos:]
    if body.endswith(b"\n\n"):
        body = body[:-1]
    return SinkMessage(path=path, client_addr=fields["X-Client-Addr"],
                       proto=fields["X-Client-Proto"],
                       helo=fields["X-Helo-Args"],
                       mail_args=fields["X-Mail-Args"], rcpt_args=rcpts,
                       received=received or "", data=body)


class SmtpSink(ChildProcess):
    """smtp-sink on 127.0.0.1:.port (or unix_path) until .stop().

    SmtpSink(tmpdir, port=None, *, name="smtp-sink", lmtp=False,
             unix_path=None, host="127.0.0.1", hostname="sink.test",
             hard_reject=(), soft_reject=(), disconnect=(), disconnect_421=(),
             hard_reply=None, soft_reply=None, pipelining=True,
             eightbitmime=True, dsn=True, esmtp=True, enhanced=True,
             data_delay=None, delays=None, abort_after_data=None,
             dump=True, verbose=False, extra_args=())
    Command lists are names as smtp-sink knows them ("RCPT", "." ...).
    delays: {"RCPT": 2} -> -W RCPT:2 (a pause before that reply).
    """

    def __init__(self, tmpdir, port=None, *, name="smtp-sink", lmtp=False,
                 unix_path=None, host="127.0.0.1", hostname="sink.test",
                 hard_reject=(), soft_reject=(), disconnect=(),
                 disconnect_421=(), hard_reply=None, soft_reply=None,
                 pipelining=True, eightbitmime=True, dsn=True, esmtp=True,
                 enhanced=True, data_delay=None, delays=None,
                 abort_after_data=None, dump=True, verbose=False,
                 extra_args=()):
        if not os.access(SMTP_SINK, os.X_OK):
            raise RuntimeError(f"{SMTP_SINK} missing: make deps-test "
                               "(Debian package postfix)")
        self.dir = os.path.join(tmpdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.dump_dir = os.path.join(self.dir, "dump") if dump else None
        if self.dump_dir:
            os.makedirs(self.dump_dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "smtp-sink.log")
        self.out_path = os.path.join(self.dir, "smtp-sink.out")
        self.unix_path = unix_path
        self.host = host
        self.proc = None
        self.port = None
        args = [SMTP_SINK, "-c", "-h", hostname]
        if os.geteuid() == 0:
            args += ["-u", "root"]
        if lmtp:
            args.append("-L")
        if self.dump_dir:
            args += ["-d", self.dump_dir + "/"]
        for opt, cmds in (("-f", hard_reject), ("-r", soft_reject),
                          ("-q", disconnect), ("-Q", disconnect_421)):
            if cmds:
                args += [opt, _cmds(cmds)]
        if hard_reply:
            args += ["-B", hard_reply]
        if soft_reply:
            args += ["-b", soft_reply]
        for flag, on in (("-p", pipelining), ("-8", eightbitmime),
                         ("-N", dsn), ("-e", esmtp), ("-E", enhanced)):
            if not on:
                args.append(flag)
        if data_delay is not None:
            args += ["-w", str(data_delay)]
        for cmd, delay in (delays or {}).items():
            args += ["-W", f"{cmd}:{delay}"]
        if abort_after_data is not None:
            args += ["-A", str(abort_after_data)]
        if verbose:
            args.append("-v")
        args += list(extra_args)
        self.base_args = args
        tries = 1 if (port or unix_path) else 5
        for _ in range(tries):
            if self._start(port or (None if unix_path else free_port(host))):
                return
        raise RuntimeError(f"smtp-sink did not start; see {self.log_path}")

    def _start(self, port):
        if self.unix_path:
            try:
                os.unlink(self.unix_path)
            except FileNotFoundError:
                pass
            where = f"unix:{self.unix_path}"
        else:
            where = f"inet:{self.host}:{port}"
        self.args = self.base_args + [where, "64"]
        with open(self.log_path, "ab") as log, \
                open(self.out_path, "ab") as out:
            log.write(("+ " + " ".join(self.args) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            if (self.unix_path and unix_listening(self.unix_path)) or \
                    (port and tcp_listening(port, self.host)):
                self.port = port
                return True
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"smtp-sink on {where} did not listen within "
                           f"{START_TIMEOUT}s; see {self.log_path}")

    def counters(self):
        """The last -c counter line as a dict, e.g. {'sess': 1, 'quit': 1,
        'mesg': 2} ({} before the first update)."""
        try:
            with open(self.out_path, "rb") as f:
                text = f.read().decode("ascii", "replace")
        except FileNotFoundError:
            return {}
        lines = [x for x in re.split(r"[\r\n]+", text) if "=" in x]
        if not lines:
            return {}
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}

    def _open_files(self):
        out = set()
        if not self.alive():
            return out
        fd_dir = f"/proc/{self.proc.pid}/fd"
        try:
            for fd in os.listdir(fd_dir):
                try:
                    out.add(os.readlink(os.path.join(fd_dir, fd)))
                except OSError:
                    pass
        except OSError:
            pass
        return out

    def dump_files(self):
        """Completed dump files (smtp-sink holds none of them open), oldest
        first."""
        if not self.dump_dir:
            return []
        files = []
        for root, _, names in os.walk(self.dump_dir):
            files += [os.path.join(root, n) for n in names]
        busy = self._open_files()
        files = [f for f in files if os.path.realpath(f) not in busy]
        return sorted(files, key=lambda p: (os.stat(p).st_mtime_ns, p))

    def messages(self):
        """Every completed dumped message as a SinkMessage, oldest first."""
        return [parse_dump(p) for p in self.dump_files()]

    def wait_messages(self, n=1, timeout=5.0):
        """Bounded poll until >= n messages were dumped; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages()
            if len(msgs) >= n:
                return msgs
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {n} message(s) "
                    f"at smtp-sink (have {len(msgs)}, counters "
                    f"{self.counters()})")
            time.sleep(0.05)

    def stop(self):
        """SIGTERM by PID, bounded wait, then SIGKILL. Idempotent."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        terminate(proc, STOP_TIMEOUT)
        if self.unix_path:
            unlink_quietly(self.unix_path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
