"""Programmable downstream SMTP/LMTP servers for the outbound-delivery tests
(stdlib + python3-aiosmtpd; `openssl` CLI for certificates).

Downstream: an aiosmtpd server in a background thread, on 127.0.0.1 and a
port it picks (or a unix socket), that records everything it receives and
answers as told. Knobs are set at construction and can be changed while it
runs with d.configure(...) or plain assignment (d.data_reply = "451 ...").

    with Downstream() as d:                          # SMTP on 127.0.0.1:d.port
        ... point sluiced's route at 127.0.0.1:d.port, send it mail ...
        msgs = d.wait_messages(1, timeout=5)         # bounded wait
        m = msgs[0]
        m.mail_from, m.mail_options    # 'a@x.test', ['SIZE=9', 'BODY=7BIT']
        m.rcpt_tos, m.rcpt_options     # ['b@y.test'], [['NOTIFY=NEVER']]
        m.rcpts                        # every RCPT: [(addr, options, reply)]
        m.data, m.raw                  # content as received (dot-unstuffed /
                                       # BDAT chunks joined) and the wire bytes
        m.helo, m.tls, m.peer, m.via, m.reply, m.conn
        d.connections                  # TCP connections accepted so far
        d.sessions[0].commands         # [('EHLO', 'c.test'), ('MAIL', ...)]

    Downstream(lmtp=True)                            # LMTP (LHLO, per-rcpt
                                                     # replies after DATA)
    Downstream(tls_cert=make_cert(str(tmp_path), "mx.test"))   # STARTTLS
    Downstream(tls_context=pki.server_context(cert, key))      # own context
    d.server_names                 # SNI of each TLS handshake (None: none)
    Downstream(
        rcpt_replies={"bad@x.test": "550 5.1.1 no such user",
                      "full@x.test": "452 4.2.2 mailbox full",
                      "flaky@x.test": ["451 4.3.0 later", None]},  # then OK
        mail_reply="451 4.3.0 try later",       # MAIL (None: 250)
        data_reply="554 5.7.1 rejected",        # after the message (SMTP)
        lmtp_data_replies={"b@x.test": "452 4.2.2 full"},   # LMTP, per rcpt
        command_replies={"EHLO": "502 5.5.1 no EHLO"},  # any command: this
                                                # reply instead of processing
        extensions=["PIPELINING", "SIZE 1000", "8BITMIME"],   # what EHLO says
        greeting="421 4.3.2 busy",              # or "554 no", "220 custom"
        never_greet=True,                       # accept TCP, say nothing
        drop_mid_data=100,                      # close after >= 100 DATA bytes
        malformed={"EHLO": "endless"},          # see MALFORMED
        slow=2.0,                               # or {"EOM": 30}: pause first
    )

Replies: a string (several lines joined by "\\n" make a multi-line reply), or
a list used one item per use, the last one repeating; None in a list means
the normal reply. A reply starting with 421 closes the connection after it.
Stages (keys of malformed, slow, command_replies): "greeting", the command
verbs (EHLO, HELO, LHLO, MAIL, RCPT, DATA = the 354 reply, BDAT, RSET, NOOP,
QUIT, STARTTLS, VRFY, AUTH) and "EOM" (the reply after the message).
Extensions the session did not advertise are refused (MAIL/RCPT parameters:
555, BDAT/STARTTLS: 502); SIZE n is enforced; STARTTLS is only offered with
tls_cert. A non-2xx greeting answers 503 to everything but QUIT (421: closes).

RawServer(script): a plain-socket server that plays a scripted conversation to
every connection, for byte-exact misbehaviour (replies split across writes, a
TCP reset, ...); see its docstring.

make_cert(tmpdir, cn) -> (certfile, keyfile): a self-signed certificate made
by the openssl CLI (CN and subjectAltName DNS:cn, IP:127.0.0.1); it lives
in tls_certs.py with the test CA and is imported here for older tests.

Self-test: /usr/bin/python3 -m pytest -q tests/system/test_fixtures.py
"""
import asyncio
import collections
import os
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from procs import unlink_quietly
from tls_certs import make_cert  # noqa: F401 (part of this module's API)

START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0
ENDLESS_LIMIT = 60.0    # an "endless" reply stops after this many seconds
IDLE_TIMEOUT = 60.0     # a silent client is disconnected after this

DEFAULT_EXTENSIONS = ("PIPELINING", "SIZE 10485760", "8BITMIME",
                      "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN", "CHUNKING",
                      "STARTTLS")

# Malformed replies by name; bytes are also accepted as a malformed reply.
MALFORMED = {
    "bad_code": b"2x0 ok\r\n",                   # not a 3-digit code
    "mixed_codes": b"250-first\r\n550 second\r\n",  # codes differ in a reply
    "no_crlf": b"250 ok",                        # no line end at all
    "bare_lf": b"250 ok\n",                      # LF instead of CRLF
    "long_line": b"250 " + b"x" * 100_000 + b"\r\n",   # one 100 KB line
    "empty": b"\r\n",                            # an empty line
    "endless": None,      # "250-x" lines until the client goes (ENDLESS_LIMIT)
}

STAGES = ("greeting", "HELO", "EHLO", "LHLO", "MAIL", "RCPT", "DATA", "BDAT",
          "EOM", "RSET", "NOOP", "QUIT", "STARTTLS", "VRFY", "AUTH")

KNOBS = ("greeting", "never_greet", "mail_reply", "rcpt_replies",
         "data_reply", "lmtp_data_replies", "command_replies", "extensions",
         "drop_mid_data", "malformed", "slow")

_ADDR_RE = re.compile(r"^(FROM|TO):\s*<(.*?)>(?=\s|$)\s*(.*)$",
                      re.I | re.S)


def _wait(cond, pred, timeout, what):
    """Wait on threading.Condition `cond` (held) until pred(); bounded."""
    deadline = time.monotonic() + timeout
    while not pred():
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what}")
        cond.wait(min(left, 0.5))


class _Seq:
    """A reply list handed out one item per use; the last one repeats."""

    def __init__(self, items):
        if not items:
            raise ValueError("empty reply list")
        self.items, self.used = list(items), 0

    def next(self):
        item = self.items[min(self.used, len(self.items) - 1)]
        self.used += 1
        return item


def _norm_reply(v):
    if v is None or isinstance(v, _Seq):
        return v
    if isinstance(v, (list, tuple)):
        return _Seq([_check_reply(x) for x in v])
    return _check_reply(v)


def _check_reply(v):
    if v is None:
        return None
    if not isinstance(v, str) or not re.match(r"^[2-5]\d\d([ -]|$)", v):
        raise ValueError(f"not an SMTP reply: {v!r}")
    return v


def _take(v):
    return v.next() if isinstance(v, _Seq) else v


def _reply_lines(text):
    """Wire lines of a reply: "250-a\n250 b" or "250 a\nb" alike."""
    lines = text.split("\n") if text else []
    out = []
    for i, line in enumerate(lines):
        code = lines[0][:3]
        rest = line[4:] if re.match(r"^\d\d\d([ -]|$)", line) else line
        out.append(f"{code}{'-' if i < len(lines) - 1 else ' '}{rest}")
    return out


def _ext_map(extensions):
    """{KEYWORD: rest} of a list of EHLO extension lines."""
    out = {}
    for e in extensions:
        k, _, rest = e.strip().partition(" ")
        out[k.upper()] = rest.strip()
    return out


@dataclass
class Message:
    """One transaction that reached the end of its message data."""
    conn: int                 # connection number (1-based, d.sessions[conn-1])
    peer: tuple               # client (ip, port) ('' for a unix socket)
    helo: Optional[str]       # EHLO/HELO/LHLO argument
    protocol: str             # "SMTP", "ESMTP" or "LMTP"
    tls: bool                 # under TLS (STARTTLS or implicit)
    auth_user: Optional[str]  # AUTH login, if any
    mail_from: str            # reverse path as sent, without <> ('' = null)
    mail_options: list        # MAIL parameters, verbatim
    rcpt_tos: list            # accepted recipients, verbatim
    rcpt_options: list        # their parameters: one list per recipient
    rcpts: list               # every RCPT: (address, options, reply)
    data: bytes               # message as received (dot-unstuffed/chunks)
    raw: bytes                # wire bytes (DATA: dot-stuffed, no final .)
    via: str                  # "DATA" or "BDAT"
    reply: object             # reply sent (LMTP: list, one per rcpt_tos)
    complete: bool = True     # False: connection ended inside the data

    @property
    def accepted(self):
        """True when the reply (any LMTP reply) was 2xx."""
        replies = self.reply if isinstance(self.reply, list) else [self.reply]
        return any(isinstance(r, str) and r.startswith("2") for r in replies)


@dataclass
class Session:
    """One client connection."""
    number: int
    peer: tuple
    helo: Optional[str] = None
    tls: bool = False
    tls_version: Optional[str] = None
    tls_cipher: Optional[str] = None
    commands: list = field(default_factory=list)   # (VERB, argument)
    received: int = 0          # bytes swallowed while never greeting
    messages: int = 0          # completed message transactions
    closed: bool = False


class _Handler:
    """aiosmtpd hook object: our EHLO/LHLO reply."""

    def __init__(self, ds):
        self.ds = ds

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        lines = [server.hostname] + server._advertised()
        return [f"250-{x}" for x in lines[:-1]] + [f"250 {lines[-1]}"]


class _ProtoMixin:
    """What Downstream adds to aiosmtpd's SMTP/LMTP protocol classes."""
    command_size_limit = 4096
    command_size_limits = collections.defaultdict(lambda: 4096)
    line_length_limit = 1 << 26        # StreamReader limit (one data line)

    def __init__(self, ds, **kw):
        self._ds = ds
        self._rec = None
        self._first_push = None
        super().__init__(ds._handler, **kw)
        self._smtp_methods = {verb: self._wrap(verb, method)
                              for verb, method in self._smtp_methods.items()}

    # -- connection bookkeeping ----------------------------------------------
    def connection_made(self, transport):
        super().connection_made(transport)
        ssl_obj = transport.get_extra_info("ssl_object")
        if self._rec is None:
            self._rec = self._ds._opened(self, self.session.peer)
        if ssl_obj is not None:
            self._rec.tls = True
            self._rec.tls_version = ssl_obj.version()
            self._rec.tls_cipher = (ssl_obj.cipher() or (None,))[0]

    def connection_lost(self, error):
        try:
            super().connection_lost(error)
        finally:
            if self._rec is not None:
                self._ds._closed(self)

    def _transport_close(self):
        t = self.transport
        if t is not None:
            t.close()

    # -- replies -------------------------------------------------------------
    async def push(self, status):
        if self._first_push is not None:    # aiosmtpd's greeting
            greeting, self._first_push = self._first_push, None
            for line in _reply_lines(greeting):
                await super().push(line)
            return
        await super().push(status)

    async def _reply(self, text):
        """Send a configured reply (multi-line if it holds newlines); a 421
        closes the connection."""
        for line in _reply_lines(text):
            await self.push(line)
        if text.startswith("421"):
            self._transport_close()

    async def _garbage(self, kind):
        """Send a malformed reply (a MALFORMED name or raw bytes)."""
        if isinstance(kind, (bytes, bytearray)):
            data = bytes(kind)
        elif kind in MALFORMED:
            data = MALFORMED[kind]
        else:
            raise ValueError(f"unknown malformed reply {kind!r}")
        w = self._writer
        if data is not None:
            w.write(data)
            await w.drain()
            return
        deadline = time.monotonic() + ENDLESS_LIMIT
        chunk = b"250-x\r\n" * 256
        while self.transport is not None and not w.is_closing() and \
                time.monotonic() < deadline:
            w.write(chunk)
            await w.drain()
            await asyncio.sleep(0)
        self._transport_close()

    async def _pause(self, stage):
        delay = self._ds._delay(stage)
        if delay:
            await asyncio.sleep(delay)

    # -- dispatch ------------------------------------------------------------
    def _wrap(self, verb, method):
        async def run(arg):
            ds = self._ds
            ds._command(self._rec, verb, arg)
            if verb in ("EHLO", "HELO", "LHLO"):
                self._rec.helo = arg
            await self._pause(verb)
            if verb == "BDAT":            # BDAT reads its chunk first
                return await method(arg)
            bad = ds.malformed.get(verb)
            if bad is not None:
                return await self._garbage(bad)
            reply = _take(ds.command_replies.get(verb))
            if reply is not None:
                if verb in ("EHLO", "HELO", "LHLO") and reply[0] == "2":
                    self.session.host_name = arg or "unknown"
                    self.session.extended_smtp = verb != "HELO"
                await self._reply(reply)
                if verb == "QUIT":
                    self._transport_close()
                return
            if verb in ("STARTTLS", "AUTH") and \
                    verb not in self._advertised_keys():
                return await self.push("502 5.5.1 Error: command not "
                                       "implemented")
            return await method(arg)
        return run

    async def _handle_client(self):
        try:
            if await self._greet():
                await super()._handle_client()
        except asyncio.CancelledError:      # client gone (EOF) or stop()
            self._transport_close()
            raise

    async def _greet(self):
        """Greeting stage; False when the session ends here."""
        ds = self._ds
        if ds.never_greet:
            await self._swallow()
            return False
        await self._pause("greeting")
        bad = ds.malformed.get("greeting")
        if bad is not None:
            await self._garbage(bad)
            self._first_push = ""           # aiosmtpd's 220: not sent
            return True
        greeting = _take(ds.greeting) or \
            f"220 {self.hostname} {ds.protocol_name} downstream ready"
        if not greeting.startswith("2"):
            await self._refuse(greeting)
            return False
        self._first_push = greeting
        return True

    async def _swallow(self):
        """never_greet: read (and count) until the client goes."""
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                self._ds._count_received(self._rec, len(data))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        self._transport_close()

    async def _refuse(self, greeting):
        """A non-2xx greeting; then 503 to everything but QUIT (RFC 5321
        3.1), or close at once for 421."""
        await self._reply(greeting)
        while self.transport is not None:
            try:
                line = await self._reader.readuntil(b"\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ConnectionError):
                break
            verb, _, arg = line.strip().decode("utf-8", "replace") \
                .partition(" ")
            self._ds._command(self._rec, verb.upper(), arg or None)
            if verb.upper() == "QUIT":
                await self.push("221 2.0.0 Bye")
                break
            await self.push("503 5.5.1 Error: bad sequence of commands")
        self._transport_close()

    # -- extensions ----------------------------------------------------------
    def _advertised(self):
        out = []
        for ext in self._ds.extensions:
            key = ext.split()[0].upper()
            if key == "STARTTLS" and (self.tls_context is None or
                                      self._tls_protocol is not None or
                                      self._rec.tls):
                continue
            out.append(ext)
        if self._ds.auth and (self._rec.tls or not self._auth_require_tls):
            out.append("AUTH PLAIN LOGIN")
        return out

    def _advertised_keys(self):
        if not self.session.extended_smtp:
            return {}
        return _ext_map(self._advertised())

    def _size_limit(self):
        v = self._advertised_keys().get("SIZE", "")
        return int(v) if v.isdigit() and int(v) > 0 else None

    def _check_params(self, verb, params):
        """None, or the error reply for unsupported MAIL/RCPT parameters."""
        if params and not self.session.extended_smtp:
            return "501 5.5.4 Error: parameters need EHLO"
        ext = self._advertised_keys()
        for p in params:
            key, eq, val = p.partition("=")
            key = key.upper()
            ok = False
            if verb == "MAIL":
                if key == "SIZE" and "SIZE" in ext:
                    if not val.isdigit():
                        return "501 5.5.4 Error: bad SIZE"
                    limit = self._size_limit()
                    if limit and int(val) > limit:
                        return ("552 5.3.4 Error: message size exceeds "
                                "fixed maximum message size")
                    ok = True
                elif key == "BODY" and "8BITMIME" in ext:
                    ok = val.upper() in ("7BIT", "8BITMIME") or (
                        val.upper() == "BINARYMIME" and "BINARYMIME" in ext)
                elif key == "SMTPUTF8" and "SMTPUTF8" in ext:
                    ok = not eq
                elif key in ("RET", "ENVID") and "DSN" in ext:
                    ok = bool(val) and (key == "ENVID" or
                                        val.upper() in ("FULL", "HDRS"))
                elif key == "AUTH" and "AUTH" in ext:
                    ok = True
            else:
                if key in ("NOTIFY", "ORCPT") and "DSN" in ext:
                    ok = bool(val)
            if not ok:
                return f"555 5.5.4 Error: unsupported parameter {p}"
        return None

    # -- commands ------------------------------------------------------------
    async def smtp_MAIL(self, arg):
        if await self.check_helo_needed() or \
                await self.check_auth_needed("MAIL"):
            return
        m = _ADDR_RE.match(arg or "")
        if not m or m.group(1).upper() != "FROM":
            return await self.push("501 5.5.4 Syntax: MAIL FROM:<address>")
        if self.envelope.mail_from is not None:
            return await self.push("503 5.5.1 Error: nested MAIL command")
        params = m.group(3).split()
        err = self._check_params("MAIL", params)
        if err:
            return await self.push(err)
        reply = _take(self._ds.mail_reply) or "250 2.1.0 Ok"
        if reply.startswith("2"):
            self.envelope.mail_from = m.group(2)
            self.envelope.mail_options = params
            self.envelope.rcpts = []
        await self._reply(reply)

    async def smtp_RCPT(self, arg):
        if await self.check_helo_needed() or \
                await self.check_auth_needed("RCPT"):
            return
        if self.envelope.mail_from is None:
            return await self.push("503 5.5.1 Error: need MAIL command")
        m = _ADDR_RE.match(arg or "")
        if not m or m.group(1).upper() != "TO" or not m.group(2):
            return await self.push("501 5.5.4 Syntax: RCPT TO:<address>")
        addr, params = m.group(2), m.group(3).split()
        reply = self._check_params("RCPT", params)
        if reply is None:
            reply = _take(self._ds._rcpt_reply(addr)) or "250 2.1.5 Ok"
        self.envelope.rcpts.append((addr, params, reply))
        if reply.startswith("2"):
            self.envelope.rcpt_tos.append(addr)
            self.envelope.rcpt_options.append(params)
        await self._reply(reply)

    async def _tx_ready(self, verb):
        """None, or the reason (a reply) why DATA/BDAT can't start."""
        if not self.session.host_name:
            return "503 5.5.1 Error: send EHLO first"
        if self._auth_required and not self.session.authenticated:
            return "530 5.7.0 Authentication required"
        if self.envelope.mail_from is None:
            return "503 5.5.1 Error: need MAIL command"
        if not self.envelope.rcpt_tos:
            return "554 5.5.1 Error: no valid recipients"
        return None

    async def smtp_DATA(self, arg):
        err = await self._tx_ready("DATA")
        if err is None and arg:
            err = "501 5.5.4 Syntax: DATA"
        if err:
            return await self.push(err)
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        raw, data = bytearray(), bytearray()
        drop = self._ds.drop_mid_data
        while True:
            if drop is not None and len(raw) >= drop:
                return self._abort(data, raw, "DATA")
            try:
                line = await self._reader.readuntil(b"\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ConnectionError) as e:
                part = getattr(e, "partial", b"")
                return self._abort(data + part, raw + part, "DATA")
            if line == b".\r\n":
                break
            raw += line
            data += line[1:] if line.startswith(b".") else line
        await self._finish(bytes(data), bytes(raw), "DATA")

    async def smtp_BDAT(self, arg):
        ds = self._ds
        if "CHUNKING" not in self._advertised_keys():
            return await self.push("502 5.5.1 Error: command not "
                                   "implemented")
        m = re.fullmatch(r"(\d+)(?:\s+(LAST))?", (arg or "").strip(), re.I)
        if not m:
            await self.push("501 5.5.4 Syntax: BDAT size [LAST]")
            return self._transport_close()     # can't find the next command
        size, last = int(m.group(1)), bool(m.group(2))
        env = self.envelope
        buf = getattr(env, "bdat", None)
        if buf is None:
            buf = env.bdat = bytearray()
        drop = ds.drop_mid_data
        left = size
        while left:
            if drop is not None and len(buf) >= drop:
                return self._abort(buf, buf, "BDAT")
            n = left if drop is None else max(1, min(left, drop - len(buf)))
            try:
                piece = await self._reader.readexactly(min(n, 65536))
            except (asyncio.IncompleteReadError, ConnectionError) as e:
                buf += getattr(e, "partial", b"")
                return self._abort(buf, buf, "BDAT")
            buf += piece
            left -= len(piece)
        if drop is not None and len(buf) >= drop and (size or last):
            return self._abort(buf, buf, "BDAT")
        err = await self._tx_ready("BDAT")
        if err:
            env.bdat = None
            return await self.push(err)
        if last:
            return await self._finish(bytes(buf), bytes(buf), "BDAT")
        bad = ds.malformed.get("BDAT")
        if bad is not None:
            return await self._garbage(bad)
        reply = _take(ds.command_replies.get("BDAT"))
        if reply is not None and not reply.startswith("2"):
            env.bdat = None
        await self._reply(reply or f"250 2.0.0 {size} octets received")

    def _message(self, data, raw, via, reply, complete=True):
        env, s = self.envelope, self.session
        return Message(
            conn=self._rec.number, peer=self._rec.peer, helo=self._rec.helo,
            protocol=self._ds.protocol_name if s.extended_smtp else "SMTP",
            tls=self._rec.tls,
            auth_user=(s.auth_data.login.decode("utf-8", "replace")
                       if isinstance(s.auth_data, LoginPassword) else None),
            mail_from=env.mail_from, mail_options=list(env.mail_options),
            rcpt_tos=list(env.rcpt_tos),
            rcpt_options=[list(o) for o in env.rcpt_options],
            rcpts=list(getattr(env, "rcpts", [])), data=bytes(data),
            raw=bytes(raw), via=via, reply=reply, complete=complete)

    def _abort(self, data, raw, via):
        self._ds._record(self._rec, self._message(data, raw, via, None,
                                                  complete=False))
        self._set_post_data_state()
        self._transport_close()

    async def _finish(self, data, raw, via):
        ds = self._ds
        await self._pause("EOM")
        env = self.envelope
        limit = self._size_limit()
        bad = ds.malformed.get("EOM")
        if bad is not None:
            replies = [f"<malformed {bad!r}>"]
        elif limit and len(data) > limit:
            replies = ["552 5.3.4 Error: message size exceeds fixed "
                       "maximum message size"] * \
                (len(env.rcpt_tos) if ds.lmtp else 1)
        elif ds.lmtp:
            replies = [_take(ds._lmtp_reply(r)) or _take(ds.data_reply) or
                       f"250 2.0.0 <{r}> delivered" for r in env.rcpt_tos]
        else:
            replies = [_take(ds.data_reply) or
                       f"250 2.0.0 Ok: queued as {ds._next_id()}"]
        reply = replies if ds.lmtp else replies[0]
        ds._record(self._rec, self._message(data, raw, via, reply))
        self._set_post_data_state()
        if bad is not None:
            return await self._garbage(bad)
        for r in replies:
            if self.transport is None:
                break
            await self._reply(r)


class _SmtpProto(_ProtoMixin, SMTP):
    pass


class _LmtpProto(_ProtoMixin, LMTP):
    pass


class _Controller(Controller):
    """aiosmtpd's threaded Controller on a socket we bound ourselves (no
    port race), without its probe connection (it would be counted)."""

    def __init__(self, ds, sock, ssl_context, **kw):
        self._ds = ds
        self._sock = sock
        super().__init__(ds._handler, hostname="127.0.0.1", port=0,
                         ssl_context=ssl_context, ready_timeout=START_TIMEOUT,
                         **kw)

    def factory(self):
        cls = _LmtpProto if self._ds.lmtp else _SmtpProto
        return cls(self._ds, loop=self.loop, **self.SMTP_kwargs)

    def _create_server(self):
        if self._sock.family == socket.AF_UNIX:
            return self.loop.create_unix_server(
                self._factory_invoker, sock=self._sock, ssl=self.ssl_context)
        return self.loop.create_server(self._factory_invoker, sock=self._sock,
                                       ssl=self.ssl_context)

    def _trigger_server(self):
        self.smtpd = "lazy"             # factory() runs per connection
        self._factory_invoked.set()


class Downstream:
    """A recording, programmable SMTP/LMTP server (see the module doc).

    Downstream(port=None, lmtp=False, tls_cert=None, *, unix_path=None,
               host="127.0.0.1", hostname="downstream.test",
               implicit_tls=False, require_starttls=False, auth=None,
               auth_require_tls=True, idle_timeout=IDLE_TIMEOUT, **knobs)
    port None: a free port on `host` (another loopback address such as
    127.0.0.2 for MX tests); unix_path: listen there instead. hostname:
    what the greeting and EHLO say. knobs: see KNOBS and the module doc.
    tls_cert: (certfile, keyfile) from make_cert(); offers STARTTLS, or
    TLS from the first byte with implicit_tls=True. tls_context: a server
    ssl.SSLContext to use instead of tls_cert (its sni_callback is wrapped
    to record each client's SNI in d.server_names). auth: {user: password}
    offers AUTH PLAIN LOGIN (after STARTTLS unless auth_require_tls=False).
    """

    def __init__(self, port=None, lmtp=False, tls_cert=None, *,
                 tls_context=None, unix_path=None, host="127.0.0.1",
                 hostname="downstream.test", implicit_tls=False,
                 require_starttls=False, auth=None, auth_require_tls=True,
                 idle_timeout=IDLE_TIMEOUT, **knobs):
        self.lmtp = bool(lmtp)
        self.protocol_name = "LMTP" if self.lmtp else "ESMTP"
        self.hostname = hostname
        self.auth = dict(auth) if auth else None
        self.unix_path = unix_path
        self.host = None if unix_path else host
        self._lock = threading.Condition()
        self._protos = set()
        self._ids = 0
        self.sessions = []
        self.messages = []          # completed transactions
        self.incomplete = []        # connection ended inside DATA/BDAT
        self.server_names = []      # SNI per TLS handshake (None: no SNI)
        # knob defaults
        self.greeting = None
        self.never_greet = False
        self.mail_reply = None
        self.rcpt_replies = {}
        self.data_reply = None
        self.lmtp_data_replies = {}
        self.command_replies = {}
        self.extensions = list(DEFAULT_EXTENSIONS)
        self.drop_mid_data = None
        self.malformed = {}
        self.slow = None
        self.configure(**knobs)

        self._handler = _Handler(self)
        tls_ctx = tls_context
        if tls_ctx is None and tls_cert:
            tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            if isinstance(tls_cert, (str, os.PathLike)):
                tls_ctx.load_cert_chain(tls_cert)
            else:
                tls_ctx.load_cert_chain(*tls_cert)
        if implicit_tls and not tls_ctx:
            raise ValueError("implicit_tls needs tls_cert")
        if tls_ctx is not None:
            self._record_sni(tls_ctx)
        sock = self._listen(port)
        kw = dict(server_hostname=hostname, enable_SMTPUTF8=True,
                  decode_data=False, data_size_limit=None,
                  timeout=idle_timeout,
                  tls_context=None if implicit_tls else tls_ctx,
                  require_starttls=require_starttls,
                  auth_require_tls=auth_require_tls)
        if self.auth:
            kw["authenticator"] = self._authenticate
        self._ctl = _Controller(self, sock, tls_ctx if implicit_tls else None,
                                **kw)
        try:
            self._ctl.start()
        except BaseException:
            sock.close()
            self._ctl = None
            raise

    def _listen(self, port):
        if self.unix_path:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                os.unlink(self.unix_path)
            except FileNotFoundError:
                pass
            s.bind(self.unix_path)
            self.port = None
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((self.host, port or 0))
            self.port = s.getsockname()[1]
        s.listen(128)
        s.setblocking(False)
        return s

    def _record_sni(self, ctx):
        """Wrap ctx's sni_callback: note the name the client sent."""
        prev = ctx.sni_callback

        def note(sslobj, name, c):
            with self._lock:
                self.server_names.append(name)
            return prev(sslobj, name, c) if prev else None
        ctx.sni_callback = note

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and self.auth.get(
            auth_data.login.decode("utf-8", "replace")) == \
            auth_data.password.decode("utf-8", "replace")
        return AuthResult(success=ok, auth_data=auth_data if ok else None)

    # -- knobs ---------------------------------------------------------------
    def configure(self, **knobs):
        """Change behaviour knobs (the KNOBS names) while running; the same
        as assigning the attributes one by one."""
        for k, v in knobs.items():
            if k not in KNOBS:
                raise TypeError(f"unknown Downstream knob {k!r}")
            setattr(self, k, v)

    def __setattr__(self, k, v):
        if k in KNOBS:
            v = self._normalize(k, v)
        object.__setattr__(self, k, v)

    @staticmethod
    def _normalize(k, v):
        """Check a knob value; reply lists become _Seq, addresses and verbs
        are matched case-insensitively."""
        if k in ("greeting", "mail_reply", "data_reply"):
            return _norm_reply(v)
        if k in ("rcpt_replies", "lmtp_data_replies"):
            return {a.lower(): _norm_reply(r) for a, r in (v or {}).items()}
        if k == "command_replies":
            return {c.upper(): _norm_reply(r) for c, r in (v or {}).items()}
        if k == "malformed":
            v = dict(v or {})
            for stage, kind in v.items():
                if stage not in STAGES:
                    raise ValueError(f"unknown stage {stage!r}")
                if not isinstance(kind, (bytes, bytearray)) and \
                        kind not in MALFORMED:
                    raise ValueError(f"unknown malformed reply {kind!r}")
            return v
        if k == "slow" and isinstance(v, dict):
            for stage in v:
                if stage not in STAGES:
                    raise ValueError(f"unknown stage {stage!r}")
            return dict(v)
        if k == "extensions":
            return list(DEFAULT_EXTENSIONS if v is None else v)
        if k == "drop_mid_data" and v is not None and int(v) < 0:
            raise ValueError("drop_mid_data must be >= 0")
        return v

    def _delay(self, stage):
        s = self.slow
        if isinstance(s, dict):
            return s.get(stage)
        return s

    def _rcpt_reply(self, addr):
        return self.rcpt_replies.get(addr.lower())

    def _lmtp_reply(self, addr):
        return self.lmtp_data_replies.get(addr.lower())

    # -- records (called in the server thread) -------------------------------
    def _opened(self, proto, peer):
        with self._lock:
            self._protos.add(proto)
            rec = Session(number=len(self.sessions) + 1,
                          peer=peer if isinstance(peer, tuple) else ("", 0))
            self.sessions.append(rec)
            self._lock.notify_all()
            return rec

    def _closed(self, proto):
        with self._lock:
            self._protos.discard(proto)
            proto._rec.closed = True
            self._lock.notify_all()

    def _command(self, rec, verb, arg):
        with self._lock:
            rec.commands.append((verb, arg))
            self._lock.notify_all()

    def _count_received(self, rec, n):
        with self._lock:
            rec.received += n

    def _record(self, rec, msg):
        with self._lock:
            if msg.complete:
                self.messages.append(msg)
                rec.messages += 1
            else:
                self.incomplete.append(msg)
            self._lock.notify_all()

    def _next_id(self):
        with self._lock:
            self._ids += 1
            return f"DS{self._ids:06d}"

    # -- observation ---------------------------------------------------------
    @property
    def connections(self):
        """Number of connections accepted so far."""
        with self._lock:
            return len(self.sessions)

    @property
    def accepted(self):
        """Messages whose final reply was 2xx (any recipient for LMTP)."""
        with self._lock:
            return [m for m in self.messages if m.accepted]

    def wait_messages(self, n=1, timeout=5.0, accepted=False):
        """Block until >= n messages (accepted ones only if asked) were
        received; returns them all. Bounded: AssertionError on timeout."""
        def have():
            msgs = [m for m in self.messages if m.accepted or not accepted]
            return len(msgs) >= n
        with self._lock:
            try:
                _wait(self._lock, have, timeout, f"{n} message(s) at "
                      f"{self.where}")
            except AssertionError as e:
                raise AssertionError(f"{e}; {self._summary()}") from None
            return [m for m in self.messages if m.accepted or not accepted]

    def wait_connections(self, n=1, timeout=5.0):
        """Block until >= n connections were accepted (bounded)."""
        with self._lock:
            _wait(self._lock, lambda: len(self.sessions) >= n, timeout,
                  f"{n} connection(s) at {self.where}")
            return list(self.sessions)

    def wait_idle(self, timeout=5.0):
        """Block until no connection is open (bounded)."""
        with self._lock:
            _wait(self._lock, lambda: all(s.closed for s in self.sessions),
                  timeout, f"all connections closed at {self.where}")

    def wait_commands(self, verb, n=1, timeout=5.0):
        """Block until `verb` was received >= n times (bounded)."""
        verb = verb.upper()

        def count():
            return sum(1 for s in self.sessions for c in s.commands
                       if c[0] == verb)
        with self._lock:
            _wait(self._lock, lambda: count() >= n, timeout,
                  f"{n} {verb} command(s) at {self.where}")

    def commands(self):
        """Every (connection number, VERB, argument) received, in order per
        connection."""
        with self._lock:
            return [(s.number, v, a) for s in self.sessions
                    for v, a in s.commands]

    def clear(self):
        """Forget the messages and sessions recorded so far."""
        with self._lock:
            self.messages.clear()
            self.incomplete.clear()
            self.sessions.clear()

    def _summary(self):
        return "sessions: " + "; ".join(
            f"#{s.number} {' '.join(v for v, _ in s.commands) or '-'}"
            f"{' (closed)' if s.closed else ''}" for s in self.sessions) \
            if self.sessions else "no connection"

    @property
    def where(self):
        return self.unix_path or f"{self.host}:{self.port}"

    # -- lifecycle -----------------------------------------------------------
    async def _shutdown(self, ctl):
        ctl.server.close()
        for p in list(self._protos):
            t = p._original_transport or p.transport
            if t is not None:
                t.abort()
        await asyncio.sleep(0)

    def stop(self):
        """Close the listener and every connection, end the thread
        (bounded). Idempotent."""
        ctl, self._ctl = self._ctl, None
        if ctl is None:
            return
        thread = ctl._thread
        if thread is not None and thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(ctl),
                                                 ctl.loop).result(STOP_TIMEOUT)
            except Exception:
                pass
            ctl.loop.call_soon_threadsafe(ctl.cancel_tasks)
            thread.join(STOP_TIMEOUT)
            if thread.is_alive():
                raise RuntimeError("Downstream thread did not stop within "
                                   f"{STOP_TIMEOUT}s")
        ctl._thread = None
        if self.unix_path:
            unlink_quietly(self.unix_path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


# ---------------------------------------------------------------------------
class RawServer:
    """Plays a scripted conversation, byte for byte, to every connection.

        script = [("send", "220 hi\\r\\n"),   # bytes or str, sent as-is
                  ("line",),                   # read one line (to LF), record
                  ("send", b"250-a\\r\\n"), ("sleep", 0.5),
                  ("send", b"250 b\\r\\n"),
                  ("data",),                   # read to CRLF.CRLF, record
                  ("read", 10),                # read exactly 10 bytes
                  ("drain",),                  # read until the client closes
                  ("reset",)]                  # TCP RST (else "close": FIN)
        with RawServer(script) as r:
            ... 127.0.0.1:r.port ...
            r.wait_done(1)                     # scripts played to the end
            r.received[0]                      # [b"EHLO x\\r\\n", ...]

    A script that runs out ends with a close. Every read is bounded by
    `timeout` seconds; on timeout or EOF the script ends there (recorded in
    .errors). Plain threads and sockets: no asyncio, no aiosmtpd.
    """

    def __init__(self, script, port=None, host="127.0.0.1", timeout=10.0):
        self.script = list(script)
        for step in self.script:
            if step[0] not in ("send", "line", "data", "read", "sleep",
                               "drain", "close", "reset"):
                raise ValueError(f"unknown script step {step!r}")
        self.timeout = timeout
        self.host = host
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._socks = []
        self._threads = []
        self.received = []      # per connection: list of bytes records
        self.errors = []        # per connection: None or why it ended early
        self.done = 0           # connections whose script ran to the end
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port or 0))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop,
                                          daemon=True)
        self._acceptor.start()

    @property
    def connections(self):
        with self._lock:
            return len(self.received)

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self._lock:
                idx = len(self.received)
                self.received.append([])
                self.errors.append(None)
                self._socks.append(conn)
                self._lock.notify_all()
            t = threading.Thread(target=self._play, args=(conn, idx),
                                 daemon=True)
            self._threads.append(t)
            t.start()

    def _recv(self, conn, buf, until=None, count=None):
        """Read into buf until `until` is in it or it holds `count` bytes;
        returns (record, rest)."""
        deadline = time.monotonic() + self.timeout
        while True:
            if until is not None:
                i = buf.find(until)
                if i >= 0:
                    i += len(until)
                    return bytes(buf[:i]), buf[i:]
            elif len(buf) >= count:
                return bytes(buf[:count]), buf[count:]
            left = deadline - time.monotonic()
            if left <= 0 or self._stopping.is_set():
                raise TimeoutError("read timed out")
            conn.settimeout(min(left, 0.2))
            try:
                d = conn.recv(65536)
            except socket.timeout:
                continue
            if not d:
                raise EOFError("client closed")
            buf += d

    def _play(self, conn, idx):
        buf = bytearray()
        rec = self.received[idx]
        how = "close"
        try:
            for step in self.script:
                op = step[0]
                if op == "send":
                    d = step[1]
                    conn.sendall(d.encode() if isinstance(d, str) else d)
                elif op == "line":
                    r, buf = self._recv(conn, buf, until=b"\n")
                    rec.append(r)
                elif op == "data":
                    if buf.startswith(b".\r\n"):
                        r, buf = b".\r\n", buf[3:]
                    else:
                        r, buf = self._recv(conn, buf, until=b"\r\n.\r\n")
                    rec.append(r)
                elif op == "read":
                    r, buf = self._recv(conn, buf, count=step[1])
                    rec.append(r)
                elif op == "sleep":
                    self._stopping.wait(step[1])
                elif op == "drain":
                    try:
                        r, buf = self._recv(conn, buf, until=b"\0never\0")
                    except EOFError:
                        rec.append(bytes(buf))
                elif op in ("close", "reset"):
                    how = op
                    break
            with self._lock:
                self.done += 1
        except (OSError, EOFError, TimeoutError) as e:
            with self._lock:
                self.errors[idx] = f"{type(e).__name__}: {e}"
        finally:
            if how == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                b"\1\0\0\0\0\0\0\0")
            try:
                conn.close()
            except OSError:
                pass
            with self._lock:
                self._lock.notify_all()

    def wait_connections(self, n=1, timeout=5.0):
        with self._lock:
            _wait(self._lock, lambda: len(self.received) >= n, timeout,
                  f"{n} connection(s) at 127.0.0.1:{self.port}")

    def wait_done(self, n=1, timeout=5.0):
        """Block until n connections played the whole script (bounded)."""
        with self._lock:
            _wait(self._lock, lambda: self.done >= n, timeout,
                  f"{n} finished script(s) at 127.0.0.1:{self.port} "
                  f"(errors: {self.errors})")

    def stop(self):
        """Stop accepting, close every connection, join threads (bounded).
        Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        try:
            self.listener.close()
        except OSError:
            pass
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in [self._acceptor] + self._threads:
            t.join(STOP_TIMEOUT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
