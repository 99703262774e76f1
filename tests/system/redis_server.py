"""A throwaway redis-server for the system tests (stdlib only).

RedisServer(tmpdir) starts Debian's /usr/bin/redis-server on a free
127.0.0.1 port with no persistence (--save "" --appendonly no), its
working directory and log in tmpdir, waits until it answers PING
(bounded), and stops it by its PID (never any other redis). stop() and
start() again keep the port, so a test can take Redis away and bring it
back. cmd(*args) speaks RESP over a raw socket:

    with RedisServer(str(tmp_path)) as r:
        r.cmd("SET", "k", "v")      # "OK"
        r.cmd("GET", "k")           # "v"; None for a missing key
        r.cmd("TTL", "k")           # -1

Self-test: /usr/bin/python3 tests/system/redis_server.py
"""
import os
import socket
import subprocess
import time

from procs import ChildProcess, free_port, terminate

REDIS = "/usr/bin/redis-server"
START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0


class RedisError(Exception):
    pass


def _read_line(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("redis: connection closed")
    return line[:-2]


def _read_reply(f):
    line = _read_line(f)
    kind, rest = line[:1], line[1:].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RedisError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2].decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise RedisError(f"unknown reply {line!r}")


def command(port, *args, timeout=2.0):
    """One command on a new connection; the decoded reply."""
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"".join(out))
        with s.makefile("rb") as f:
            return _read_reply(f)


class RedisServer(ChildProcess):
    def __init__(self, tmpdir, port=None):
        if not os.access(REDIS, os.X_OK):
            raise FileNotFoundError(f"{REDIS} is not installed "
                                    "(Debian package redis-server)")
        self.dir = tmpdir
        self.port = port or free_port()
        self.log_path = os.path.join(tmpdir, "redis.log")
        self.start()

    def start(self):
        args = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--daemonize", "no", "--logfile", self.log_path,
                "--protected-mode", "yes"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited: " + self.log())
            try:
                if command(self.port, "PING", timeout=0.5) == "PONG":
                    return
            except (OSError, ConnectionError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer PING: " + self.log())

    def stop(self):
        if self.proc is not None:
            terminate(self.proc, STOP_TIMEOUT)

    def cmd(self, *args):
        return command(self.port, *args)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as d, RedisServer(d) as r:
        assert r.cmd("SET", "k", "v") == "OK"
        assert r.cmd("GET", "k") == "v"
        assert r.cmd("GET", "missing") is None
        assert r.cmd("INCRBY", "n", 5) == 5
        r.stop()
        r.start()
        assert r.cmd("GET", "k") is None        # no persistence
        print("ok")
