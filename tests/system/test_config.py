"""Configuration checking (sluiced -t) and start-up rules."""
import os
import subprocess

import pytest

from conftest import SLUICED, Server, render, default_config, free_port


def check_config(path, cwd):
    p = subprocess.run([SLUICED, "-t", "-c", path], cwd=cwd,
                       capture_output=True, timeout=10)
    return p.returncode, p.stdout.decode(errors="replace"), \
        p.stderr.decode(errors="replace")


def write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_valid_config(tmp_path):
    """sluiced -t on the valid test configuration exits 0 and prints
    'configuration ok'."""
    path = write(tmp_path, render(default_config(str(tmp_path), free_port())))
    rc, out, err = check_config(path, str(tmp_path))
    assert rc == 0, (out, err)
    assert "configuration ok" in out + err, (out, err)


def test_shipped_config_is_valid(tmp_path):
    """The repository's conf/sluice.yaml passes sluiced -t."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    rc, out, err = check_config(os.path.join(repo, "conf", "sluice.yaml"),
                                str(tmp_path))
    assert rc == 0, (out, err)


def base_lines(tmp_path):
    return render(default_config(str(tmp_path), free_port())).splitlines()


def test_unknown_top_level_key(tmp_path):
    """An unknown key fails with FILE:LINE:COL: unknown key."""
    lines = base_lines(tmp_path)
    lines.insert(3, "colour: blue")
    path = write(tmp_path, "\n".join(lines) + "\n")
    rc, out, err = check_config(path, str(tmp_path))
    assert rc != 0
    assert f"{path}:4:1: unknown key" in err, err


def test_unknown_nested_key(tmp_path):
    """An unknown key inside a block mapping names its own line and
    column."""
    text = ("hostname: mx.example.test\n"
            "listeners:\n"
            f"  - {{name: mx, address: 127.0.0.1, port: {free_port()}, "
            "role: mx}\n"
            "domains: {local: [example.test]}\n"
            "limits:\n"
            "  sessions: 10\n"
            "  nonsense_limit: 5\n")
    path = write(tmp_path, text)
    rc, out, err = check_config(path, str(tmp_path))
    assert rc != 0
    assert f"{path}:7:3: unknown key" in err, err


def test_unknown_key_in_flow_mapping(tmp_path):
    """An unknown key in a flow mapping is reported at its column."""
    text = ("hostname: mx.example.test\n"
            "listeners:\n"
            f"  - {{name: mx, address: 127.0.0.1, port: {free_port()}, "
            "role: mx, colour: red}\n"
            "domains: {local: [example.test]}\n")
    path = write(tmp_path, text)
    col = text.splitlines()[2].index("colour") + 1
    rc, out, err = check_config(path, str(tmp_path))
    assert rc != 0
    assert f"{path}:3:{col}: unknown key" in err, err


@pytest.mark.parametrize("key,value", [
    ("retry", "{first: 5x}"),
    ("retry", "{first: -1s}"),
    ("limits", "{idle_timeout: soon}"),
    ("limits", "{message_size: 12Q}"),
    ("limits", "{message_size: 1.5.3M}"),
    ("limits", "{recipients: many}"),
    ("limits", "{junk_commands: 0}"),
])
def test_bad_values(tmp_path, key, value):
    """Bad duration/size/number values fail with FILE:LINE:COL."""
    text = ("hostname: mx.example.test\n"
            "listeners:\n"
            f"  - {{name: mx, address: 127.0.0.1, port: {free_port()}, "
            "role: mx}\n"
            "domains: {local: [example.test]}\n"
            f"{key}: {value}\n")
    path = write(tmp_path, text)
    rc, out, err = check_config(path, str(tmp_path))
    assert rc != 0, (out, err)
    col = len(key) + 2 + value.index(":") + 3
    assert f"{path}:5:{col}:" in err, err


def test_bad_yaml_syntax(tmp_path):
    """A YAML syntax error is reported with FILE:LINE:COL and exit != 0."""
    path = write(tmp_path, "hostname: [unclosed\nlisteners: x\n")
    rc, out, err = check_config(path, str(tmp_path))
    assert rc != 0
    assert f"{path}:" in err, err


def test_missing_file(tmp_path):
    """A missing configuration file fails with a message naming it."""
    path = str(tmp_path / "nope.yaml")
    rc, out, err = check_config(path, str(tmp_path))
    assert rc != 0
    assert "nope.yaml" in err, err


def test_server_refuses_bad_config(tmp_path):
    """The server itself (not only -t) refuses to start on a bad config."""
    lines = base_lines(tmp_path)
    lines.append("bogus: 1")
    path = write(tmp_path, "\n".join(lines) + "\n")
    p = subprocess.run([SLUICED, "-c", path], cwd=str(tmp_path),
                       capture_output=True, timeout=10)
    assert p.returncode != 0
    assert b"unknown key" in p.stderr


def test_two_servers_one_spool(make_server, tmp_path):
    """A second sluiced on the same spool fails (exit != 0, 'in use');
    the first keeps serving."""
    first = make_server()
    second = Server(tmp_path, {"spool": first.spool}, name="second")
    p = subprocess.run([SLUICED, "-c", second.cfg_path], cwd=str(tmp_path),
                       capture_output=True, timeout=10)
    assert p.returncode != 0, p
    assert b"in use" in p.stdout + p.stderr, p
    c = first.raw()
    assert c.cmd("NOOP")[0] == 250


def test_postmaster_must_be_a_mailbox(tmp_path):
    """mailboxes.postmaster naming no mailbox fails with FILE:LINE:COL."""
    text = ("hostname: mx.example.test\n"
            "listeners:\n"
            f"  - {{name: mx, address: 127.0.0.1, port: {free_port()}, "
            "role: mx}\n"
            "domains: {local: [example.test]}\n"
            "mailboxes:\n"
            "  users: [alice@example.test]\n"
            "  postmaster: carol@example.test\n")
    path = write(tmp_path, text)
    rc, out, err = check_config(path, str(tmp_path))
    assert rc != 0, (out, err)
    assert f"{path}:7:15:" in err and "not one of the mailboxes" in err, err


MILTER_BASE = ("hostname: mx.example.test\n"
               "listeners:\n"
               "  - {name: mx, address: 127.0.0.1, port: 2525, role: mx}\n"
               "domains: {local: [example.test]}\n"
               "pipeline:\n")


@pytest.mark.parametrize("entry,what", [
    ('  - {milter: "inet:localhost:8891"}',
     "with a numeric address"),
    ('  - {milter: "unix:relative.sock"}', "absolute path"),
    ('  - {milter: "unix:/x.sock", default_action: maybe}', None),
    ('  - {milter: "unix:/x.sock", protocol: 5}', "2, 3, 4 or 6"),
    ('  - {milter: "unix:/x.sock", macros: {later: "j"}}',
     "unknown macro stage"),
    ('  - {milter: "unix:/x.sock", timeouts: {connect: 0s}}', None),
    ('  - {milter: "unix:/x.sock", timeouts: {reply: 5s}}',
     "unknown key"),
    ('  - {milter: "unix:/x.sock", on_error: accept}',
     "default_action"),
    ('  - {lua: lua/filters/noop.lua, default_action: accept}',
     "does not apply"),
])
def test_bad_milter_entries(tmp_path, entry, what):
    """Milter entries are checked like the rest: FILE:LINE:COL and why
    (the socket address when the pipeline is built, still with the
    entry's place)."""
    path = write(tmp_path, MILTER_BASE + entry + "\n")
    rc, out, err = check_config(path, str(tmp_path))
    assert rc != 0, (out, err)
    assert f"{path}:6:" in err, err
    if what:
        assert what in err, err


def test_good_milter_entry(tmp_path):
    path = write(tmp_path, MILTER_BASE +
                 '  - milter: "inet:8891@127.0.0.1"\n'
                 '    name: dkim\n'
                 '    default_action: quarantine\n'
                 '    timeouts: {connect: 5s, command: 10s, content: 1m}\n'
                 '    macros: {connect: "j {daemon_name}", mail: [i]}\n'
                 '    protocol: 2\n')
    rc, out, err = check_config(path, str(tmp_path))
    assert rc == 0, (out, err)
