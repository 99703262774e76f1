"""Helpers shared by the sluice system tests: a raw SMTP client, bounded
waits, reply checks and parsers for delivered mail and queue files."""
import re
import select
import socket
import time

QID_RE = re.compile(r"[0-9a-v]{14}")
QUEUED_RE = re.compile(r"2\.0\.0 Ok: queued as ([0-9a-v]{14})$")
ENH_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")


def wait_for(pred, timeout=5.0, interval=0.05, msg="condition", fail=True):
    """Poll pred() until true or `timeout` seconds passed (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            if fail:
                raise AssertionError(f"timed out after {timeout}s waiting for "
                                     f"{msg}")
            return v
        time.sleep(interval)


class RawClient:
    """A line-level SMTP client on a plain socket (for malformed input,
    pipelining and timing tests)."""

    def __init__(self, host, port, timeout=10, source=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source:
            self.sock.bind((source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line):
        """Send one command line (CRLF added) and read its reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply()

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            raise EOFError("connection closed by server")
        self.buf += d

    def readline(self, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete reply line")
            self._fill(left)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self, timeout=None):
        """One (possibly multi-line) reply: (code, text) with the lines of a
        multi-line reply joined by '\\n'."""
        lines = []
        while True:
            line = self.readline(timeout)
            m = re.match(r"^(\d{3})([ -])(.*)$", line)
            assert m, f"malformed reply line {line!r}"
            lines.append((int(m.group(1)), m.group(3)))
            if m.group(2) == " ":
                break
        codes = {c for c, _ in lines}
        assert len(codes) == 1, f"mixed codes in multi-line reply {lines!r}"
        return lines[0][0], "\n".join(t for _, t in lines)

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def closed(self, timeout=3.0):
        """True if the server closes the connection within `timeout` s
        (any further data is discarded)."""
        deadline = time.monotonic() + timeout
        self.buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self._fill(left)
            except EOFError:
                return True
            except socket.timeout:
                return False
            except OSError:
                return True
            self.buf = b""

    def pending(self, timeout=0.3):
        """Whatever arrives within `timeout` s without blocking longer."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                break
            try:
                d = self.sock.recv(65536)
            except OSError:
                break
            if not d:
                self.eof = True
                break
            self.buf += d
        out, self.buf = self.buf, b""
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def check(reply, code, enh=None, text=None):
    """Assert an SMTP reply (code, text) has `code`, and (if given) the
    enhanced status code `enh` right after it."""
    c, t = reply
    if isinstance(t, bytes):
        t = t.decode("utf-8", "replace")
    assert c == code, f"expected {code} {enh or ''}, got {c} {t!r}"
    if enh is not None:
        first = t.split("\n")[0]
        assert first.startswith(enh + " ") or first == enh, \
            f"expected enhanced code {enh} in {c} {t!r}"
    if text is not None:
        assert text.lower() in t.lower(), f"expected {text!r} in {c} {t!r}"
    return t


def has_enh(reply):
    """True when the reply text starts with an enhanced status code whose
    class matches the reply code's class."""
    c, t = reply
    if isinstance(t, bytes):
        t = t.decode("utf-8", "replace")
    m = ENH_RE.match(t)
    return bool(m) and m.group(1) == str(c)[0]


def queued_id(reply):
    c, t = reply
    if isinstance(t, bytes):
        t = t.decode()
    assert c == 250, f"message not accepted: {c} {t!r}"
    m = QUEUED_RE.search(t)
    assert m, f"250 reply without 'Ok: queued as <QID>': {t!r}"
    return m.group(1)


def ehlo(c, name="client.example.test"):
    code, text = c.cmd(f"EHLO {name}")
    assert code == 250, (code, text)
    return text


def start_tx(c, sender="sender@remote.test", rcpts=("alice@example.test",),
             mail_params="", do_ehlo=True):
    """EHLO, MAIL, RCPT... each checked to be 250."""
    if do_ehlo:
        ehlo(c)
    check(c.cmd(f"MAIL FROM:<{sender}>{mail_params}"), 250, "2.1.0")
    for r in rcpts:
        check(c.cmd(f"RCPT TO:<{r}>"), 250, "2.1.5")


def send_data(c, body):
    """DATA, the raw body bytes (must include the final CRLF.CRLF), reply."""
    check(c.cmd("DATA"), 354)
    c.send(body)
    return c.reply()


def message(subject="test", body="hello\r\n", extra=""):
    return (f"From: <sender@remote.test>\r\nTo: <alice@example.test>\r\n"
            f"Subject: {subject}\r\n{extra}\r\n{body}")


# -- delivered messages ---------------------------------------------------

def split_headers(data):
    """(list of unfolded header lines, body) of a Maildir file (LF lines)."""
    text = data.decode("utf-8", "replace")
    head, sep, body = text.partition("\n\n")
    headers = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and headers:
            headers[-1] += " " + line.strip()
        else:
            headers.append(line)
    return headers, body


RECEIVED_ID_RE = re.compile(
    r"^Received: from .* by mx\.example\.test \(sluice\) with [A-Z0-9]+ "
    r"id ([0-9a-v]{14})\b", re.S)
RECEIVED_WITH_RE = re.compile(
    r"^Received: from .* by mx\.example\.test \(sluice\) with ([A-Z0-9]+) "
    r"id [0-9a-v]{14}\b", re.S)


def received_with(data):
    """The 'with' protocol of our Received: header."""
    headers, _ = split_headers(data)
    for h in headers:
        m = RECEIVED_WITH_RE.match(h)
        if m:
            return m.group(1)
    return None


def received_qid(data):
    """The queue id in our Received: header of a delivered file."""
    headers, _ = split_headers(data)
    for h in headers:
        m = RECEIVED_ID_RE.match(h)
        if m:
            return m.group(1)
    return None


# -- queue files ----------------------------------------------------------

def envelope_lines(data):
    """The envelope records (list of str lines) at the end of a queue file:
    from the last 'v 1' line up to 'end'."""
    text = data.decode("latin-1")
    i = text.rfind("\nv 1\n")
    assert i >= 0, "no envelope ('v 1' record) found in the queue file"
    lines = text[i + 1:].split("\n")
    for n, line in enumerate(lines):
        if line == "end" or line.startswith("end "):
            return lines[:n + 1]
    raise AssertionError("envelope without an 'end' record")


def envelope_records(data):
    """{key: [value-lists]} of the envelope of a queue file."""
    recs = {}
    for line in envelope_lines(data):
        parts = line.split(" ")
        recs.setdefault(parts[0], []).append(parts[1:])
    return recs


def pct_decode(s):
    out = bytearray()
    i = 0
    b = s.encode("latin-1")
    while i < len(b):
        if b[i:i + 1] == b"%":
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


LOG_LINE_RE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) sluiced\[(\d+)\]: "
    r"([a-z]+): (.*)$")
KV_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_.-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)')


def parse_kv(rest):
    """List of (key, value) pairs of a log line's payload, or None if the
    payload is not purely key=value pairs separated by single spaces."""
    pairs = []
    pos = 0
    while pos < len(rest):
        m = KV_RE.match(rest, pos)
        if not m:
            return None
        pairs.append((m.group(1), m.group(2)))
        pos = m.end()
        if pos < len(rest):
            if rest[pos] != " ":
                return None
            pos += 1
    return pairs


def log_events(srv, qid=None, event=None):
    """sluiced's log lines as dicts of their key=value fields (quotes
    removed; '_ts' the timestamp), only those of one queue id and/or one
    event kind."""
    out = []
    for line in srv.log_lines():
        m = LOG_LINE_RE.match(line)
        if not m:
            continue
        kv = parse_kv(m.group(4))
        if kv is None:
            continue
        d = {k: (v[1:-1] if v.startswith('"') else v) for k, v in kv}
        if qid is not None and d.get("qid") != qid:
            continue
        if event is not None and d.get("event") != event:
            continue
        d["_ts"] = m.group(1)
        out.append(d)
    return out


def submit_message(srv, sender, rcpts, data, mail_params="",
                   rcpt_params=None, c=None):
    """One message over a raw session: EHLO, MAIL, each RCPT (all must be
    taken), DATA with `data` (str or bytes, ending in CRLF.CRLF); returns
    the queue id. rcpt_params: a string for every RCPT, or {rcpt: string}.
    A session c given by the caller is used and left open."""
    own = c is None
    if own:
        c = srv.raw()
        ehlo(c)
    try:
        check(c.cmd(f"MAIL FROM:<{sender}>{mail_params}"), 250, "2.1.0")
        for r in rcpts:
            p = rcpt_params if isinstance(rcpt_params, str) else \
                (rcpt_params or {}).get(r, "")
            check(c.cmd(f"RCPT TO:<{r}>{p}"), 250, "2.1.5")
        return queued_id(send_data(c, data))
    finally:
        if own:
            try:
                c.cmd("QUIT")
            except (OSError, EOFError):
                pass
            c.close()


def log_deliveries(srv, qid, status=None):
    """The event=delivery lines of qid (status= sent, deferred, bounced)."""
    return [e for e in log_events(srv, qid, "delivery")
            if status is None or e.get("status") == status]


def wait_log_events(srv, qid, event, count=1, timeout=10.0):
    """Bounded wait until `count` event=... lines of qid are logged;
    returns them."""
    return wait_for(
        lambda: (lambda e: e if len(e) >= count else None)(
            log_events(srv, qid, event)), timeout=timeout,
        msg=f"{count} event={event} for {qid}; log:\n" + srv.log()[-3000:])


def wait_deliveries(srv, qid, count, timeout=10.0):
    """{recipient: delivery log fields} once `count` delivery lines of qid
    are logged."""
    evs = wait_log_events(srv, qid, "delivery", count, timeout)
    return {e["to"].strip("<>"): e for e in evs}


def wait_log_event(srv, qid, event, timeout=10.0):
    """Bounded wait for an event=... line of qid; returns those lines."""
    return wait_for(lambda: log_events(srv, qid, event), timeout=timeout,
                    msg=f"{qid} event={event}; log:\n" + srv.log()[-3000:])


def hosts_name(addr="127.0.0.1"):
    """The first name /etc/hosts gives addr, as c-ares answers it (the
    client's name at connect, dns.hosts_file), or None."""
    try:
        with open("/etc/hosts") as f:
            for line in f:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 2 and fields[0] == addr:
                    return fields[1]
    except OSError:
        pass
    return None
