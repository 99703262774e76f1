"""A throwaway dnsmasq for the system tests (stdlib only).

DnsServer(tmpdir, records) writes a dnsmasq configuration from a small
dict, starts /usr/sbin/dnsmasq on a free 127.0.0.1 port (UDP and TCP), waits
until it answers a real DNS query (bounded), and stops it by its PID.

    records = {
        "A":    {"mx1.example.test": "127.0.0.1",
                 "multi.example.test": ["192.0.2.1", "192.0.2.2"]},
        "AAAA": {"mx1.example.test": "::1"},
        "MX":   {"example.test": [(10, "mx1.example.test"),
                                  (20, "mx2.example.test")]},
        "TXT":  {"example.test": "v=spf1 -all",           # one record
                 "multi.example.test": [["part 1", "part 2"],  # 2 strings
                                        "second record"]},
        "PTR":  {"127.0.0.2": "client.example.test",     # IP or *.arpa
                 "3.2.0.192.in-addr.arpa": "other.example.test"},
        "NXDOMAIN": ["blocked.example.test"],   # it and below: NXDOMAIN
    }
    with DnsServer(str(tmp_path), records) as dns:
        cfg["dns"] = {"servers": [f"127.0.0.1:{dns.port}"]}
        rcode, answers = query(dns.port, "example.test", "MX")
        # rcode 0, answers [(10, "mx1.example.test"), (20, ...)]

Names under every domain that holds a record (the records' names minus their
first label, and the names themselves) are answered locally: an unknown name
there is NXDOMAIN, a known name without the type asked is NODATA. Anything
else is REFUSED (no upstream). A names also get a PTR record (dnsmasq's
host-record). Strings may not contain '"', '\\' or control characters.

Self-test: /usr/bin/python3 tests/system/dns_server.py
"""
import ipaddress
import os
import random
import socket
import struct
import subprocess
import time

from procs import terminate

DNSMASQ = "/usr/sbin/dnsmasq"
START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "PTR": 12, "MX": 15, "TXT": 16,
         "AAAA": 28, "SRV": 33}


def free_port():
    """A port free on 127.0.0.1 for both UDP and TCP (at the time asked)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port for UDP and TCP")


def _check_text(s):
    if not isinstance(s, str) or any(c in s for c in '"\\') or \
            any(ord(c) < 0x20 or ord(c) == 0x7f for c in s):
        raise ValueError(f"unsupported string in DNS records: {s!r}")
    return s


def _ptr_name(key):
    try:
        return ipaddress.ip_address(key).reverse_pointer
    except ValueError:
        return _check_text(key)


def _as_list(v):
    return v if isinstance(v, (list, tuple)) else [v]


def config_lines(records):
    """dnsmasq configuration lines for a records dict (see the module)."""
    lines = []
    for name, addrs in records.get("A", {}).items():
        lines += [f"host-record={_check_text(name)},{ipaddress.IPv4Address(a)}"
                  for a in _as_list(addrs)]
    for name, addrs in records.get("AAAA", {}).items():
        lines += [f"host-record={_check_text(name)},{ipaddress.IPv6Address(a)}"
                  for a in _as_list(addrs)]
    for name, mxs in records.get("MX", {}).items():
        lines += [f"mx-host={_check_text(name)},{_check_text(host)},"
                  f"{int(pref)}" for pref, host in mxs]
    for name, recs in records.get("TXT", {}).items():
        for rec in ([recs] if isinstance(recs, str) else recs):
            strings = ",".join(f'"{_check_text(s)}"' for s in _as_list(rec))
            lines.append(f"txt-record={_check_text(name)},{strings}")
    for key, target in records.get("PTR", {}).items():
        lines.append(f"ptr-record={_ptr_name(key)},{_check_text(target)}")
    for name in records.get("NXDOMAIN", []):
        lines.append(f"address=/{_check_text(name)}/")
    for domain in sorted(_local_domains(records)):
        lines.append(f"local=/{domain}/")
    return lines


def _local_domains(records):
    """Every record name and its parent: answered here, never REFUSED."""
    names = set()
    for kind in ("A", "AAAA", "MX", "TXT", "NXDOMAIN"):
        entries = records.get(kind, {})
        names.update(n.rstrip(".").lower() for n in entries)
    out = set()
    for n in names:
        out.add(n)
        if "." in n:
            out.add(n.split(".", 1)[1])
    return out


def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def _read_name(msg, off):
    """(name, offset after it) for a possibly compressed name."""
    labels, end, jumps = [], None, 0
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            if jumps > 64:
                raise ValueError("name compression loop")
            continue
        if n == 0:
            return ".".join(labels), (end if end is not None else off + 1)
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


def _rdata(msg, rtype, off, rdlen):
    data = msg[off:off + rdlen]
    if rtype == 1:
        return str(ipaddress.IPv4Address(data))
    if rtype == 28:
        return str(ipaddress.IPv6Address(data))
    if rtype == 15:
        return (struct.unpack("!H", data[:2])[0], _read_name(msg, off + 2)[0])
    if rtype in (2, 5, 12):
        return _read_name(msg, off)[0]
    if rtype == 16:
        strings, i = [], 0
        while i < len(data):
            strings.append(data[i + 1:i + 1 + data[i]].decode("utf-8",
                                                              "replace"))
            i += 1 + data[i]
        return strings
    return data


def query(port, name, qtype="A", timeout=1.0, host="127.0.0.1"):
    """One UDP query: (rcode, [answer of the type asked, decoded])."""
    qid = random.randrange(65536)
    code = TYPES[qtype]
    pkt = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + \
        _encode_name(name) + struct.pack("!HH", code, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(pkt, (host, port))
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            msg = s.recv(65535)
            if len(msg) >= 12 and struct.unpack("!H", msg[:2])[0] == qid:
                break
    _, flags, qd, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        off = _read_name(msg, off)[1] + 4
    answers = []
    for _ in range(an):
        off = _read_name(msg, off)[1]
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        if rtype == code:
            answers.append(_rdata(msg, rtype, off, rdlen))
        off += rdlen
    return flags & 0xF, answers


class DnsServer:
    """dnsmasq serving `records` on 127.0.0.1:.port until .stop()."""

    def __init__(self, tmpdir, records, port=None):
        if not os.access(DNSMASQ, os.X_OK):
            raise RuntimeError(f"{DNSMASQ} missing: apt-get install "
                               "dnsmasq-base")
        self.tmpdir = tmpdir
        self.records = records
        self.conf = os.path.join(tmpdir, "dnsmasq.conf")
        self.log = os.path.join(tmpdir, "dnsmasq.log")
        self.proc = None
        self.port = None
        with open(self.conf, "w") as f:
            f.write("\n".join(config_lines(records)) + "\n")
        tries = 1 if port else 5
        for _ in range(tries):
            if self._start(port or free_port()):
                return
        raise RuntimeError(f"dnsmasq did not start; see {self.log}")

    def _args(self, port):
        args = [DNSMASQ, "--no-resolv", "--no-hosts", "--keep-in-foreground",
                f"--port={port}", "--listen-address=127.0.0.1",
                "--bind-interfaces", f"--conf-file={self.conf}",
                f"--pid-file={os.path.join(self.tmpdir, 'dnsmasq.pid')}",
                f"--log-facility={self.log}"]
        if os.geteuid() == 0:
            args.append("--user=root")  # keep access to tmpdir
        return args

    def _start(self, port):
        """Start on port; True once it answers, False if it died (port
        taken); raises if it neither dies nor answers in time."""
        self.proc = subprocess.Popen(self._args(port), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            try:
                query(port, "ready.invalid", "A", timeout=0.2)
                self.port = port
                return True
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dnsmasq on port {port} did not answer within "
                           f"{START_TIMEOUT}s; see {self.log}")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stop(self):
        """SIGTERM by PID, bounded wait, then SIGKILL. Idempotent."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        terminate(proc, STOP_TIMEOUT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def self_test():
    """Start a server with one record of each kind and check the answers."""
    import tempfile
    records = {
        "A": {"mx1.example.test": "127.0.0.1",
              "multi.example.test": ["192.0.2.1", "192.0.2.2"]},
        "AAAA": {"mx1.example.test": "::1"},
        "MX": {"example.test": [(10, "mx1.example.test"),
                                (20, "mx2.example.test")]},
        "TXT": {"example.test": "v=spf1 -all",
                "multi.example.test": [["part 1", "part 2"], "second"]},
        "PTR": {"127.0.0.2": "client.example.test"},
        "NXDOMAIN": ["blocked.example.test"],
    }
    with tempfile.TemporaryDirectory() as tmp, DnsServer(tmp, records) as d:
        assert query(d.port, "mx1.example.test") == (0, ["127.0.0.1"])
        assert sorted(query(d.port, "multi.example.test")[1]) == \
            ["192.0.2.1", "192.0.2.2"]
        assert query(d.port, "mx1.example.test", "AAAA") == (0, ["::1"])
        rcode, mx = query(d.port, "example.test", "MX")
        assert rcode == 0 and sorted(mx) == [(10, "mx1.example.test"),
                                             (20, "mx2.example.test")], mx
        assert query(d.port, "example.test", "TXT") == (0, [["v=spf1 -all"]])
        assert sorted(query(d.port, "multi.example.test", "TXT")[1]) == \
            [["part 1", "part 2"], ["second"]]
        assert query(d.port, "2.0.0.127.in-addr.arpa", "PTR") == \
            (0, ["client.example.test"])
        assert query(d.port, "blocked.example.test")[0] == 3
        assert query(d.port, "nothing.example.test")[0] == 3
        assert query(d.port, "mx1.example.test", "MX") == (0, [])
        assert query(d.port, "elsewhere.invalid")[0] == 5
        pid = d.pid
    try:
        os.kill(pid, 0)
        raise AssertionError("dnsmasq still running after stop()")
    except ProcessLookupError:
        pass
    print("dns_server.py: self-test passed")


if __name__ == "__main__":
    self_test()
