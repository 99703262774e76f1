"""sluicectl replay (the filter author's test bench) and SIGHUP reload of
the configuration and the Lua scripts without dropping sessions."""
import os
import signal
import subprocess

from conftest import SLUICED, render, default_config, free_port
from helpers import check, ehlo, message, queued_id, send_data, wait_for

SLUICECTL = os.path.join(os.path.dirname(SLUICED), "sluicectl")

SCRIPT = """
local f = {}
function f.rcpt(ctx)
  if ctx.rcpt == "bob@example.test" then
    return reject{code=550, enhanced="5.1.1", text="no bob here"}
  end
end
function f.message(ctx)
  ctx:add_header("X-Replay", "seen " .. (ctx:header("Subject") or "?"))
  if (ctx:header("Subject") or ""):find("forbidden") then
    return reject("forbidden subject")
  end
end
return f
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def replay_config(tmp_path, script_text=SCRIPT):
    script = write(tmp_path / "f.lua", script_text)
    cfg = default_config(str(tmp_path), free_port())
    cfg["pipeline"] = [{"lua": script}]
    return write(tmp_path / "sluiced.yaml", render(cfg)), script


def replay(conf, eml, *args):
    return subprocess.run([SLUICECTL, "-c", conf, "replay", *args, eml],
                          capture_output=True, text=True, timeout=30)


def test_replay_accepts_and_shows_changes(tmp_path):
    """An accepted message: every call is listed with its verdict and time,
    the message stage's changes are shown, exit status 0."""
    conf, _ = replay_config(tmp_path)
    eml = write(tmp_path / "m.eml", "Subject: hello\nFrom: a@b.test\n\nbody\n")
    r = replay(conf, eml, "--to", "alice@example.test", "--ip", "192.0.2.7",
               "--helo", "c.example", "--from", "s@remote.test")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "client [192.0.2.7]:40000 helo c.example, from <s@remote.test>" \
        in r.stdout
    lines = [l.split() for l in r.stdout.splitlines() if l.startswith("  ")]
    assert ["rcpt", "lua:f", "continue"] == lines[0][:3], r.stdout
    assert ["message", "lua:f", "continue"] == lines[1][:3], r.stdout
    assert lines[0][4] == "us"
    assert "X-Replay: seen hello" in r.stdout
    assert "envelope: from=<s@remote.test> to=<alice@example.test>" \
        in r.stdout
    assert r.stdout.rstrip().endswith("result: accepted")


def test_replay_reject_exits_nonzero(tmp_path):
    """A reject prints the SMTP reply the client would get, exit 1; a
    refused recipient is reported and the others go on."""
    conf, _ = replay_config(tmp_path)
    eml = write(tmp_path / "m.eml", "Subject: forbidden\n\nbody\n")
    r = replay(conf, eml, "--to", "bob@example.test", "--to",
               "alice@example.test")
    assert r.returncode == 1, r.stdout + r.stderr
    assert ("recipient <bob@example.test> refused by lua:f: "
            "550 5.1.1 no bob here") in r.stdout
    assert ("result: refused at message by lua:f: 554 5.7.1 forbidden "
            "subject") in r.stdout


def test_replay_bad_script_exits_2(tmp_path):
    """A script that does not compile: exit 2 with the file named."""
    conf, script = replay_config(tmp_path, "return {rcpt = function( end}")
    eml = write(tmp_path / "m.eml", "Subject: x\n\nbody\n")
    r = replay(conf, eml, "--to", "alice@example.test")
    assert r.returncode == 2
    assert script in r.stderr


def test_reload_picks_up_script_change(make_server, tmp_path):
    """SIGHUP re-reads the Lua script: a session open across the reload is
    not dropped and keeps working; a new session sees the new script."""
    script = write(tmp_path / "r.lua", SCRIPT)
    srv = make_server({"pipeline": [{"lua": script}]})
    old = srv.raw()
    ehlo(old)
    check(old.cmd("MAIL FROM:<s@remote.test>"), 250)
    check(old.cmd("RCPT TO:<bob@example.test>"), 550, "5.1.1")
    write(script, SCRIPT.replace("no bob here", "bob moved away"))
    os.kill(srv.pid, signal.SIGHUP)
    wait_for(lambda: "event=reload status=ok" in srv.log(), timeout=5,
             msg="reload logged")
    new = srv.raw()
    ehlo(new)
    check(new.cmd("MAIL FROM:<s@remote.test>"), 250)
    code, text = new.cmd("RCPT TO:<bob@example.test>")
    assert (code, text) == (550, "5.1.1 bob moved away")
    # the old session is still alive and still serves
    check(old.cmd("RCPT TO:<alice@example.test>"), 250)
    qid = queued_id(send_data(old, message() + ".\r\n"))
    assert srv.wait_mail("alice") and qid


def test_reload_refuses_broken_script(make_server, tmp_path):
    """A broken script on reload is refused with a log line naming it; the
    old script keeps running."""
    script = write(tmp_path / "r.lua", SCRIPT)
    srv = make_server({"pipeline": [{"lua": script}]})
    write(script, "this is not lua (")
    os.kill(srv.pid, signal.SIGHUP)
    wait_for(lambda: "event=reload status=refused" in srv.log(), timeout=5,
             msg="refused reload logged")
    line = [l for l in srv.log_lines() if "status=refused" in l][0]
    assert script in line
    c = srv.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250)
    check(c.cmd("RCPT TO:<bob@example.test>"), 550, "5.1.1")
    assert srv.alive()
