"""Small process and file chores the test fixtures share (stdlib only)."""
import os
import signal
import socket
import subprocess


def free_port(host="127.0.0.1"):
    """A TCP port free on `host` at the time asked."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def terminate(proc, timeout):
    """Stop a child we started: SIGTERM by its PID, a bounded wait, then
    SIGKILL and another bounded wait. Nothing if it has already exited."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


def unlink_quietly(path):
    """Remove a file (a unix socket) that may already be gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def read_text(path):
    """A log file as text ("" while it does not exist yet)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


class ChildProcess:
    """What the fixtures that start one process have in common: .proc (a
    Popen or None) and .log_path."""
    proc = None
    log_path = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        return read_text(self.log_path)
