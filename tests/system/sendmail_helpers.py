"""Running sluice-sendmail against a test server's configuration."""
import os
import subprocess

from conftest import REPO

SENDMAIL = os.environ.get("SLUICE_SENDMAIL") or \
    os.path.join(os.path.dirname(os.environ.get("SLUICED") or
                                 os.path.join(REPO, "build", "sluiced")),
                 "sluice-sendmail")


def sendmail(srv, args, data=b"", timeout=10, config=None):
    """Run sluice-sendmail -C <srv's config> ARGS with DATA on stdin;
    returns the CompletedProcess (stdout, stderr as bytes)."""
    if isinstance(data, str):
        data = data.encode()
    return subprocess.run([SENDMAIL, "-C", config or srv.cfg_path] +
                          list(args), input=data, capture_output=True,
                          timeout=timeout, cwd=srv.tmp)


def maildrop_files(srv, sub=None):
    d = os.path.join(srv.spool, "maildrop", *( [sub] if sub else []))
    try:
        return sorted(n for n in os.listdir(d)
                      if os.path.isfile(os.path.join(d, n)))
    except FileNotFoundError:
        return []


def lf(data):
    """A delivered message with LF line ends, for easy matching."""
    return data.replace(b"\r\n", b"\n")
