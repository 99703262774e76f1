#!/usr/bin/python3
"""A misbehaving milter on plain sockets (no libmilter), for the error paths
of sluiced's milter client.

    /usr/bin/python3 bad_milter.py SOCKETSPEC [--on X] [--do WHAT] [options]

SOCKETSPEC: unix:/path (or local:/path) or inet:PORT@127.0.0.1.

It behaves like a minimal correct milter -- answers the 'O' negotiation,
answers 'c' to every event (none when the event's NR_ bit was negotiated),
'c' to 'E', nothing to 'D' and 'A', closes on 'Q' -- until the --nth
occurrence (per connection) of command letter --on arrives; then it does
WHAT instead of the normal answer:

  close       close the socket without answering
  hang        never answer; read and ignore everything until the MTA closes
  hugelen     send the length 0xFFFFFFFF (+ 'c' and a few bytes), then hang
  zerolen     send a packet of length 0 (4 zero bytes), then hang
  partial     send 2 of the 4 length bytes, then close
  unknown     answer with an unknown reply letter (--text, default 'Z')
  mod         send an 'h' (add header X-Bad-Milter: yes) -- not negotiated
              unless --actions has 0x01, and illegal outside 'E' -- then 'c'
  payload     answer 'c' followed by payload bytes (illegal for 'c')
  reply       answer 'y' with --text (default a malformed "hello world")
  double      answer 'c' twice (the second one desynchronises the stream)
  slow        sleep --sleep seconds (default 3), then answer normally
  progress    send 'p' --count times (default 1000) --interval s apart
              (default 0.5), then answer normally
  garbage     send 16 bytes of ASCII ("garbage!garbage!"), then hang
  big         answer 'y' with a --size byte text (default 2 MiB), valid
              framing, absurd size
  shutdown    answer '4' (SMFIR_SHUTDOWN)
  connfail    answer 'f' (SMFIR_CONN_FAIL)
  exit        the whole process exits at once (os._exit), like a crash
  version99   (for --on O) answer the negotiation with version 99
  shortopt    (for --on O) answer 'O' with only 8 payload bytes
  none        nothing special (a well-behaved milter; the default)

Options:
  --on X         command letter: O C H M R T L N B E A U Q (default E)
  --nth N        which occurrence per connection (default 1; 0 = every one)
  --conn N       only in the Nth connection accepted (default 0 = every one)
  --version V    version in the 'O' answer (default: the MTA's, at most 6)
  --actions N    action flags requested (default 0); decimal or 0x hex
  --protocol N   protocol flags requested (default 0: every event sent and
                 answered), e.g. 0x80 for NR_HDR
  --optneg-extra HEX  raw bytes appended to the 'O' answer (macro lists)
  --text T, --sleep S, --count N, --interval S, --size N  (see above)
  --log FILE     JSON lines: {"ev": "accept"|"cmd"|"misbehave"|"eof",
                 "conn": N, "cmd": "R", "len": 12, "payload": "..."}

SIGTERM ends it at once (the default action; no handler).
"""
import argparse
import json
import os
import socket
import struct
import sys
import threading
import time

NR_BITS = {"C": 0x1000, "H": 0x2000, "M": 0x4000, "R": 0x8000,
           "T": 0x10000, "U": 0x20000, "N": 0x40000, "B": 0x80000,
           "L": 0x80}
EVENTS = set("CHMRTLNBU")

ARGS = None
LOGF = None
LOCK = threading.Lock()
CONN_SEQ = [0]      # connections that sent at least one packet


def num(s):
    return int(s, 0)


def log(**kw):
    if LOGF is None:
        return
    kw["t"] = time.time()
    with LOCK:
        LOGF.write(json.dumps(kw, sort_keys=True) + "\n")
        LOGF.flush()


def packet(cmd, payload=b""):
    return struct.pack(">I", 1 + len(payload)) + cmd + payload


class Conn:
    def __init__(self, sock, n):
        self.s = sock
        self.n = n
        self.buf = b""
        self.counts = {}
        self.protocol = 0

    def read_exact(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_packet(self):
        (ln,) = struct.unpack(">I", self.read_exact(4))
        if ln == 0 or ln > 16 * 1024 * 1024:
            raise ValueError(f"bad length {ln}")
        data = self.read_exact(ln)
        return data[:1], data[1:]

    def send(self, data):
        self.s.sendall(data)

    def drain(self):
        """Read and ignore everything until the MTA closes."""
        try:
            while self.s.recv(65536):
                pass
        except OSError:
            pass

    def normal(self, cmd, payload):
        """The well-behaved answer; False when the connection ends."""
        c = cmd.decode("latin-1")
        if c == "O":
            ver, act, proto = struct.unpack(">III", payload[:12])
            v = ARGS.version if ARGS.version is not None else min(ver, 6)
            self.protocol = ARGS.protocol
            self.send(packet(b"O", struct.pack(">III", v, ARGS.actions,
                                               ARGS.protocol)
                             + bytes.fromhex(ARGS.optneg_extra)))
        elif c in EVENTS:
            if not self.protocol & NR_BITS[c]:
                self.send(packet(b"c"))
        elif c == "E":
            self.send(packet(b"c"))
        elif c == "Q":
            return False
        # D, A, K: no answer
        return True

    def misbehave(self, cmd, payload):
        """Returns False when the connection ends, True to go on."""
        do = ARGS.do
        log(ev="misbehave", conn=self.n, cmd=cmd.decode("latin-1"), do=do)
        if do == "close":
            return False
        if do == "hang":
            self.drain()
            return False
        if do == "hugelen":
            self.send(b"\xff\xff\xff\xffc" + b"x" * 16)
            self.drain()
            return False
        if do == "zerolen":
            self.send(b"\0\0\0\0")
            self.drain()
            return False
        if do == "partial":
            self.send(b"\0\0")
            return False
        if do == "unknown":
            self.send(packet((ARGS.text or "Z").encode()[:1]))
            return True
        if do == "mod":
            self.send(packet(b"h", b"X-Bad-Milter\0yes\0"))
            self.send(packet(b"c"))
            return True
        if do == "payload":
            self.send(packet(b"c", b"unexpected payload"))
            return True
        if do == "reply":
            text = ARGS.text if ARGS.text is not None else "hello world"
            self.send(packet(b"y", text.encode() + b"\0"))
            return True
        if do == "double":
            self.send(packet(b"c") + packet(b"c"))
            return True
        if do == "slow":
            time.sleep(ARGS.sleep)
            return self.normal(cmd, payload)
        if do == "progress":
            for i in range(ARGS.count):
                if i:
                    time.sleep(ARGS.interval)
                self.send(packet(b"p"))
            return self.normal(cmd, payload)
        if do == "garbage":
            self.send(b"garbage!garbage!")
            self.drain()
            return False
        if do == "big":
            self.send(packet(b"y", b"550 5.7.1 " + b"x" * ARGS.size + b"\0"))
            return True
        if do == "shutdown":
            self.send(packet(b"4"))
            return True
        if do == "connfail":
            self.send(packet(b"f"))
            return True
        if do == "exit":
            os._exit(3)
        if do == "version99":
            self.send(packet(b"O", struct.pack(">III", 99, ARGS.actions,
                                               ARGS.protocol)))
            return True
        if do == "shortopt":
            self.send(packet(b"O", struct.pack(">II", 6, ARGS.actions)))
            return True
        return self.normal(cmd, payload)

    def run(self):
        try:
            while True:
                cmd, payload = self.read_packet()
                if self.n is None:
                    # numbered at the first packet, so a bare connect (the
                    # fixture's readiness probe) is not a connection
                    with LOCK:
                        CONN_SEQ[0] += 1
                        self.n = CONN_SEQ[0]
                    log(ev="accept", conn=self.n)
                c = cmd.decode("latin-1")
                log(ev="cmd", conn=self.n, cmd=c, len=len(payload) + 1,
                    payload=payload[:200].decode("latin-1"))
                k = self.counts[c] = self.counts.get(c, 0) + 1
                hit = (c == ARGS.on and (ARGS.nth == 0 or ARGS.nth == k)
                       and (ARGS.conn == 0 or ARGS.conn == self.n))
                go = self.misbehave(cmd, payload) if hit else \
                    self.normal(cmd, payload)
                if not go:
                    break
        except (EOFError, OSError, ValueError, struct.error) as e:
            if self.n is not None:
                log(ev="eof", conn=self.n, why=repr(e))
        finally:
            if self.n is not None:
                log(ev="close", conn=self.n)
            try:
                self.s.close()
            except OSError:
                pass


def listen(spec):
    if spec.startswith(("unix:", "local:")):
        path = spec.split(":", 1)[1]
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
    elif spec.startswith("inet:"):
        port, _, host = spec[5:].partition("@")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host or "127.0.0.1", int(port)))
    else:
        raise SystemExit(f"bad socket spec {spec!r}")
    s.listen(64)
    return s


def main():
    global ARGS, LOGF
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spec")
    ap.add_argument("--on", default="E")
    ap.add_argument("--do", default="none")
    ap.add_argument("--nth", type=int, default=1)
    ap.add_argument("--conn", type=int, default=0)
    ap.add_argument("--version", type=num, default=None)
    ap.add_argument("--actions", type=num, default=0)
    ap.add_argument("--protocol", type=num, default=0)
    ap.add_argument("--optneg-extra", default="")
    ap.add_argument("--text", default=None)
    ap.add_argument("--sleep", type=float, default=3.0)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--size", type=int, default=2 * 1024 * 1024)
    ap.add_argument("--log", default=None)
    ARGS = ap.parse_args()
    if ARGS.log:
        LOGF = open(ARGS.log, "a")
    srv = listen(ARGS.spec)
    sys.stdout.write(f"bad_milter: pid {os.getpid()} on {ARGS.spec}, "
                     f"--on {ARGS.on} --do {ARGS.do}\n")
    sys.stdout.flush()
    while True:
        c, _ = srv.accept()
        threading.Thread(target=Conn(c, None).run,
                         daemon=True).start()


if __name__ == "__main__":
    main()
