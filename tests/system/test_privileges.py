"""Privileges: started as root with `user:` set, sluiced binds and opens
its spool as root, then runs as that user for good (supplementary groups,
gid and uid, real, effective and saved: root cannot be had back); mail
still flows. It refuses to run filters (`pipeline:`) as root unless
allow_root_filters says so, at start and at SIGHUP. Skipped unless the
tests run as root and the user `nobody` exists."""
import os
import pwd
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import SLUICED, REPO, render
from helpers import check, submit_message, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

NOOP_LUA = os.path.join(REPO, "lua", "filters", "noop.lua")
TEST_PLUGINS = os.environ.get("SLUICE_TEST_PLUGINS") or os.path.join(
    REPO, "build", "tests", "plugins")
REFUSAL = "refusing to run the filters of 'pipeline:' as root"


@pytest.fixture
def nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")


@pytest.fixture
def open_dir():
    """A directory `nobody` can reach (pytest's tmp dirs are root's, 0700):
    the spool and the Maildirs go there."""
    d = tempfile.mkdtemp(prefix="sluice-privs-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def status_ids(pid):
    """Uid, Gid (real, effective, saved, fs) and Groups of every thread."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        out.append((fields["Uid"].split(), fields["Gid"].split(),
                    fields["Groups"].split(), fields["CapEff"].strip()))
    return out


def nobody_config(srv, d, nobody, **extra):
    mail = os.path.join(d, "mail")
    os.makedirs(mail)
    os.chown(mail, nobody.pw_uid, nobody.pw_gid)
    srv.cfg.update({"user": "nobody", "spool": os.path.join(d, "spool"),
                    "mailboxes": {"maildir": f"{mail}/%d/%u/Maildir",
                                  "users": ["alice@example.test"]}})
    srv.cfg.pop("allow_root_filters", None)
    srv.cfg.update(extra)
    srv.write_config()
    return os.path.join(mail, "example.test", "alice", "Maildir", "new")


def send_one(srv):
    return submit_message(srv, "s@remote.test", ["alice@example.test"],
                          "Subject: privs\r\n\r\nas nobody\r\n.\r\n")


def delivered(new_dir):
    try:
        return [os.path.join(new_dir, n) for n in os.listdir(new_dir)]
    except FileNotFoundError:
        return []


def test_runs_as_user_and_mail_flows(make_server, open_dir, nobody):
    """Every thread runs with uid and gid of nobody (all four of each), no
    other group, no capability; the spool is nobody's; a message is
    queued and delivered into a Maildir owned by nobody."""
    srv = make_server(start=False)
    new_dir = nobody_config(srv, open_dir, nobody)
    srv.start()
    uid, gid = str(nobody.pw_uid), str(nobody.pw_gid)
    for uids, gids, groups, capeff in status_ids(srv.pid):
        assert uids == [uid] * 4, uids
        assert gids == [gid] * 4, gids
        assert groups == [gid], groups
        assert int(capeff, 16) == 0, capeff
    for sub in ("", "queue", "hold", "corrupt", "quarantine", "lock"):
        st = os.stat(os.path.join(srv.spool, sub))
        assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid), sub
    send_one(srv)
    [path] = wait_for(lambda: delivered(new_dir), timeout=10,
                      msg="delivery as nobody")
    assert os.stat(path).st_uid == nobody.pw_uid
    assert f"event=init user=nobody uid={uid} gid={gid}" in srv.run_log()


def test_filters_run_as_user(make_server, open_dir, nobody):
    """With user: set, a pipeline is fine: the filters run as that user."""
    srv = make_server(start=False)
    new_dir = nobody_config(srv, open_dir, nobody,
                            pipeline=[{"lua": NOOP_LUA}])
    srv.start()
    assert all(u == [str(nobody.pw_uid)] * 4
               for u, _, _, _ in status_ids(srv.pid))
    send_one(srv)
    wait_for(lambda: delivered(new_dir), timeout=10, msg="delivery")


def root_pipeline_config(srv, allow):
    srv.cfg["pipeline"] = [{"lua": NOOP_LUA}]
    srv.cfg.pop("user", None)
    if allow:
        srv.cfg["allow_root_filters"] = True
    else:
        srv.cfg.pop("allow_root_filters", None)
    srv.write_config()


def test_refuses_filters_as_root(make_server):
    """Root, no user:, a pipeline: sluiced does not start, and says why on
    stderr."""
    srv = make_server(start=False)
    root_pipeline_config(srv, allow=False)
    p = subprocess.run([SLUICED, "-c", srv.cfg_path], cwd=srv.tmp,
                       capture_output=True, timeout=10)
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0
    assert REFUSAL in err and "allow_root_filters" in err, err
    assert srv.cfg_path in err, err


def test_refuses_filters_as_root_user(make_server):
    """user: root is no better than no user: at all."""
    srv = make_server(start=False)
    root_pipeline_config(srv, allow=False)
    srv.cfg["user"] = "root"
    srv.write_config()
    p = subprocess.run([SLUICED, "-c", srv.cfg_path], cwd=srv.tmp,
                       capture_output=True, timeout=10)
    assert p.returncode != 0
    assert "'user:' has uid 0" in p.stderr.decode(errors="replace")


def test_allow_root_filters_override(make_server):
    """allow_root_filters: true (dangerous, documented) lets it start."""
    srv = make_server(start=False)
    root_pipeline_config(srv, allow=True)
    srv.start()
    c = srv.raw()
    check(c.cmd("EHLO c.test"), 250)


def test_check_mode_warns(make_server):
    """sluiced -t checks the file, whoever runs it: as root it warns about
    the refusal but the file is valid."""
    srv = make_server(start=False)
    root_pipeline_config(srv, allow=False)
    p = subprocess.run([SLUICED, "-t", "-c", srv.cfg_path], cwd=srv.tmp,
                       capture_output=True, timeout=10)
    assert p.returncode == 0, p.stderr
    assert "warning: " in p.stderr.decode() and REFUSAL in p.stderr.decode()


def test_reload_cannot_bring_filters_as_root(make_server):
    """Running as root without filters, a SIGHUP that adds a pipeline is
    refused and the server keeps running without it."""
    srv = make_server(start=False)
    srv.cfg.pop("allow_root_filters", None)
    srv.write_config()
    srv.start()
    root_pipeline_config(srv, allow=False)
    os.kill(srv.pid, signal.SIGHUP)
    wait_for(lambda: "event=reload status=refused" in srv.run_log(),
             timeout=5, msg="the refused reload")
    assert REFUSAL in srv.run_log()
    c = srv.raw()
    check(c.cmd("EHLO c.test"), 250)



def test_replay_runs_filters_as_user(make_server, open_dir, nobody):
    """sluicectl replay run as root reads the .eml as root, then becomes
    `user:` before it loads the filters: while a plugin takes its time,
    the process's uids are nobody's. Without user: it refuses to run
    filters as root, as sluiced does."""
    ctl = os.path.join(os.path.dirname(SLUICED), "sluicectl")
    probe = os.path.join(TEST_PLUGINS, "probe.so")
    eml = os.path.join(open_dir, "m.eml")
    with open(eml, "w") as f:
        f.write("Subject: replay\n\nbody\n")
    os.chmod(eml, 0o600)            # only root may read it
    srv = make_server(start=False)
    nobody_config(srv, open_dir, nobody, pipeline=[{
        "plugin": probe, "args": {"rules": [
            {"stage": "message", "delay": 1500}]}}])
    p = subprocess.Popen([ctl, "-c", srv.cfg_path, "replay", "--to",
                          "alice@example.test", eml],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        uid = str(nobody.pw_uid)
        seen = wait_for(lambda: [u for u, _, _, _ in status_ids(p.pid)
                                 if u == [uid] * 4], timeout=10,
                        msg="sluicectl running as nobody")
        assert seen
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, out + err
    assert "result: accepted" in out, out
    assert f"event=init user=nobody uid={uid}" in err, err
    srv.cfg.pop("user")
    srv.write_config()
    r = subprocess.run([ctl, "-c", srv.cfg_path, "replay", "--to",
                        "alice@example.test", eml], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and REFUSAL in r.stderr, r.stdout + r.stderr
