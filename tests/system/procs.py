"""Small process and file chores the test fixtures share (stdlib only)."""
import os
import signal
import subprocess


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
