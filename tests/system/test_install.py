"""make install: where the files land, and the installed binaries run
from there (configuration check, a real SMTP session, the pickup)."""
import os
import subprocess

import pytest

import helpers
import conftest
from conftest import REPO, SLUICED
from sendmail_helpers import maildrop_files


def make_install(tmp_path, *args):
    """`make install ARGS` with the objects of this build (BUILD from
    $SLUICED, sanitizers when it has them) and a private object directory
    for the installed-paths files, so that parallel tests do not share it.
    """
    build = os.path.relpath(os.path.dirname(SLUICED), REPO)
    cmd = ["make", "-s", "-C", REPO, "-j2", f"BUILD={build}",
           f"INST={tmp_path}/obj", "install"] + list(args)
    with open(SLUICED, "rb") as f:
        if b"__asan_init" in f.read():
            cmd += ["SAN=address,undefined", "CFLAGS=-O1 -g"]
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)
    env.pop("MFLAGS", None)
    r = subprocess.run(cmd, capture_output=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    return r


@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    make_install(tmp, f"DESTDIR={tmp}/root", "PREFIX=/usr")
    return tmp


EXPECTED = [
    "usr/sbin/sluiced", "usr/sbin/sluicectl", "usr/sbin/sluice-sendmail",
    "usr/lib/sluice/plugins/dnsbl.so", "usr/lib/sluice/plugins/ratelimit.so",
    "usr/share/sluice/lua/filters/spam.lua",
    "usr/share/sluice/lua/filters/attachments.lua",
    "usr/share/sluice/lua/README.md",
    "usr/include/sluice/sluice_plugin.h",
    "etc/sluice/sluice.yaml",
    "usr/share/man/man8/sluiced.8", "usr/share/man/man8/sluicectl.8",
    "usr/share/man/man8/sluice-sendmail.8",
    "usr/share/man/man5/sluice.yaml.5",
    "usr/lib/systemd/system/sluice.service",
]


def test_files_in_place(destdir):
    root = destdir / "root"
    for rel in EXPECTED:
        assert (root / rel).is_file(), rel
    for b in ("sluiced", "sluicectl", "sluice-sendmail"):
        assert os.access(root / "usr/sbin" / b, os.X_OK)
    assert not (root / "usr/sbin/sendmail").exists()   # only on request
    conf = (root / "etc/sluice/sluice.yaml").read_text()
    assert "spool: /var/spool/sluice" in conf
    assert "/usr/share/sluice/lua/filters/" in conf
    assert "user: sluice" in conf
    unit = (root / "usr/lib/systemd/system/sluice.service").read_text()
    for line in ("Type=notify", "ExecStart=/usr/sbin/sluiced -c "
                 "/etc/sluice/sluice.yaml", "ExecReload=/bin/kill -HUP "
                 "$MAINPID", "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "ReadWritePaths=/var/spool/sluice /var/mail",
                 "SystemCallFilter=@system-service"):
        assert line in unit.splitlines(), line
    assert "@" not in "".join(l for l in unit.splitlines()
                              if l.startswith("Exec"))
    man = (root / "usr/share/man/man8/sluiced.8").read_text()
    assert "/etc/sluice/sluice.yaml" in man and "@SYSCONFDIR@" not in man


def test_installed_paths_compiled_in(destdir):
    data = (destdir / "root/usr/sbin/sluiced").read_bytes()
    assert b"/etc/sluice/sluice.yaml" in data
    assert b"/usr/lib/sluice/plugins" in data
    assert (destdir / "root/usr/sbin/sluice-sendmail").read_bytes().find(
        b"/etc/sluice/sluice.yaml") >= 0


def test_installed_default_config_checks(destdir):
    root = destdir / "root"
    r = subprocess.run([str(root / "usr/sbin/sluiced"), "-t", "-c",
                        str(root / "etc/sluice/sluice.yaml")],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert b"configuration ok" in r.stdout


def test_installed_binaries_serve(destdir, make_server, monkeypatch):
    """The installed sluiced on a test configuration: a real session, then
    the installed sluice-sendmail through the maildrop."""
    root = destdir / "root"
    monkeypatch.setattr(conftest, "SLUICED", str(root / "usr/sbin/sluiced"))
    srv = make_server()
    with srv.smtp() as s:
        s.sendmail("x@remote.test", ["alice@example.test"],
                   "Subject: installed\r\n\r\nhi\r\n")
    srv.wait_mail("alice")
    r = subprocess.run([str(root / "usr/sbin/sluice-sendmail"), "-C",
                        srv.cfg_path, "bob@example.test"],
                       input=b"Subject: local\n\nx\n", capture_output=True,
                       timeout=10)
    assert r.returncode == 0, r.stderr
    srv.wait_mail("bob")
    ctl = subprocess.run([str(root / "usr/sbin/sluicectl"), "-c",
                          srv.cfg_path, "list"], capture_output=True,
                         timeout=10)
    assert ctl.returncode == 0, ctl.stderr


def test_config_kept_on_reinstall(destdir):
    conf = destdir / "root/etc/sluice/sluice.yaml"
    conf.write_text(conf.read_text() + "# local change\n")
    make_install(destdir, f"DESTDIR={destdir}/root", "PREFIX=/usr")
    assert conf.read_text().endswith("# local change\n")
    assert (destdir / "root/etc/sluice/sluice.yaml.default").is_file()


def test_prefix_install_finds_its_plugins_and_config(tmp_path):
    """Without DESTDIR the compiled-in paths are real: a plugin named
    without a path and the default configuration are found there."""
    prefix = tmp_path / "pfx"
    make_install(tmp_path, f"PREFIX={prefix}", "SENDMAIL_LINK=1")
    assert os.readlink(prefix / "sbin/sendmail") == "sluice-sendmail"
    conf = prefix / "etc/sluice/sluice.yaml"
    assert conf.is_file()
    port = conftest.free_port()
    cfg = conftest.default_config(str(tmp_path), port)
    cfg["pipeline"] = [
        {"plugin": "ratelimit", "args": {"window": "60s", "connections_per_ip": 30}},
        {"lua": str(prefix / "share/sluice/lua/filters/noop.lua")}]
    conf.write_text(conftest.render(cfg))
    r = subprocess.run([str(prefix / "sbin/sluiced"), "-t"],
                       capture_output=True, timeout=30, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert str(conf).encode() in r.stdout
