"""sluice-sendmail: the sendmail command line into the maildrop, picked
up by sluiced (running, or at its next start), and its refusals."""
import os
import subprocess

import pytest

import helpers
from sendmail_helpers import SENDMAIL, lf, maildrop_files, sendmail


def header_block(msg):
    return lf(msg).split(b"\n\n", 1)[0]


def test_delivered_with_sluiced_up(server):
    r = sendmail(server, ["alice@example.test"],
                 "Subject: up\n\nhello from cron\n")
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    [msg] = server.wait_mail("alice")
    head = header_block(msg)
    assert b"Subject: up" in head
    # added when missing: From (user@hostname), Date, Message-ID
    import pwd
    user = pwd.getpwuid(os.getuid()).pw_name.encode()
    assert b"From: " + user + b"@mx.example.test" in head
    assert b"\nDate: " in head and b"\nMessage-ID: <" in head
    assert b"Return-Path: <" + user + b"@mx.example.test>" in head
    assert b"hello from cron" in msg
    ev = helpers.wait_for(lambda: helpers.log_events(server, event="pickup"),
                          msg="event=pickup")
    assert "uid=%d" % os.getuid() in server.log()
    assert maildrop_files(server) == []


def test_queued_while_down_then_delivered_at_start(make_server):
    srv = make_server(start=False)
    r = sendmail(srv, ["bob@example.test"], "Subject: later\n\nwhile down\n")
    assert r.returncode == 0, r.stderr
    [name] = maildrop_files(srv)
    with open(os.path.join(srv.spool, "maildrop", name), "rb") as f:
        assert f.read().startswith(b"SLUICE-MAILDROP 1\n")
    assert srv.maildir_files("bob") == []
    srv.start()
    [msg] = srv.wait_mail("bob")
    assert b"while down" in msg
    helpers.wait_for(lambda: maildrop_files(srv) == [],
                     msg="maildrop emptied")


def test_dropped_while_running_is_picked_up_at_once(server):
    """inotify: no waiting for the periodic scan (30 s)."""
    for i in range(3):
        r = sendmail(server, ["bob@example.test"], f"Subject: n{i}\n\nx\n")
        assert r.returncode == 0, r.stderr
    msgs = server.wait_mail("bob", count=3, timeout=5)
    assert len(msgs) == 3


def test_t_takes_recipients_and_removes_bcc(server):
    data = ("To: Alice Example <alice@example.test>\n"
            "Cc: (a comment) nobody-here:;\n"
            "Bcc: bob@example.test\n"
            "Subject: bcc test\n\nbody\n")
    r = sendmail(server, ["-t"], data)
    assert r.returncode == 0, r.stderr
    [a] = server.wait_mail("alice")
    [b] = server.wait_mail("bob")
    for m in (a, b):
        assert b"Bcc" not in header_block(m)
        assert b"Subject: bcc test" in m
    assert b"To: Alice Example <alice@example.test>" in a


def test_t_adds_to_operands(server):
    r = sendmail(server, ["-t", "bob@example.test"],
                 "To: alice@example.test\nSubject: both\n\nx\n")
    assert r.returncode == 0, r.stderr
    server.wait_mail("alice")
    server.wait_mail("bob")


def test_f_and_F(server):
    r = sendmail(server, ["-f", "sender@remote.test", "-F", "Jo Q. Public",
                          "alice@example.test"], "Subject: f\n\nx\n")
    assert r.returncode == 0, r.stderr
    [msg] = server.wait_mail("alice")
    head = header_block(msg)
    assert b"Return-Path: <sender@remote.test>" in head
    assert b'From: "Jo Q. Public" <sender@remote.test>' in head


def test_F_does_not_replace_a_from(server):
    r = sendmail(server, ["-fsender@remote.test", "-FSomebody",
                          "alice@example.test"],
                 "From: Real <real@remote.test>\nSubject: f\n\nx\n")
    assert r.returncode == 0, r.stderr
    [msg] = server.wait_mail("alice")
    head = header_block(msg)
    assert b"From: Real <real@remote.test>" in head
    assert b"Somebody" not in head


@pytest.mark.parametrize("flag", [None, "-i", "-oi"])
def test_lone_dot(server, flag):
    args = ([flag] if flag else []) + ["alice@example.test"]
    r = sendmail(server, args, "Subject: dot\n\nbefore\n.\nafter\n")
    assert r.returncode == 0, r.stderr
    [msg] = server.wait_mail("alice")
    body = lf(msg).split(b"\n\n", 1)[1]
    if flag is None:
        assert body == b"before\n"           # the dot ended the input
    else:
        assert body == b"before\n.\nafter\n"


def test_ignored_options_php_and_cron_pass(server):
    r = sendmail(server, ["-odi", "-oem", "-v", "-N", "never", "-i", "--",
                          "alice@example.test"], "Subject: php\n\nx\n")
    assert r.returncode == 0, r.stderr
    server.wait_mail("alice")



def test_dsn_options_reach_the_envelope(server):
    """-N, -R and -V become NOTIFY=, RET= and ENVID= of the pickup's
    submission: with -N success the sender gets a success notice carrying
    the envelope id (xtext) and, with -R hdrs, only the header back."""
    r = sendmail(server, ["-f", "bob@example.test", "-N", "success",
                          "-R", "hdrs", "-V", "job+42", "alice@example.test"],
                 "Subject: dsn\n\nbody text not returned\n")
    assert r.returncode == 0, r.stderr
    server.wait_mail("alice")
    [dsn] = server.wait_mail("bob")
    text = lf(dsn).decode()
    assert "Original-Envelope-Id: job+2B42" in text, text
    assert "Action: delivered" in text, text
    assert "text/rfc822-headers" in text and "Subject: dsn" in text, text
    assert "body text not returned" not in text, text


def test_dsn_options_stored_with_the_message(server):
    """-N never -R full -V id are recorded in the queued envelope (alice's
    Maildir is blocked so the message stays in queue/; notify bit
    NEVER=1)."""
    d = os.path.join(server.tmp, "mail", "example.test")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "alice"), "w") as f:
        f.write("not a directory\n")
    r = sendmail(server, ["-N", "never", "-R", "full", "-V", "id=7",
                          "alice@example.test"], "Subject: n\n\nx\n")
    assert r.returncode == 0, r.stderr
    [qid] = helpers.wait_for(lambda: server.queued_ids(), timeout=5,
                             msg="the message in queue/")
    recs = helpers.envelope_records(server.queue_file(qid))
    assert recs["ret"] == [["FULL"]], recs
    assert recs["envid"] == [["id+3D7"]], recs
    assert recs["rcpt"][0][:2] == ["alice@example.test", "1"], recs

def test_line_ends_and_dots_survive(server):
    """CRLF, bare LF and a line starting with a dot, with -i: the pickup
    dot-stuffs, the session unstuffs."""
    r = sendmail(server, ["-i", "alice@example.test"],
                 b"Subject: ends\r\n\r\n.leading dot\r\nlf only\n..two\n")
    assert r.returncode == 0, r.stderr
    [msg] = server.wait_mail("alice")
    assert lf(msg).endswith(b"\n\n.leading dot\nlf only\n..two\n")


def bs(server, *lines):
    """sendmail -bs with these lines (CRLF added); the reply codes."""
    r = sendmail(server, ["-bs"], b"".join(l + b"\r\n" for l in lines))
    assert r.returncode == 0, r.stderr
    return r, [l[:3].decode() for l in r.stdout.split(b"\r\n")
               if l[3:4] == b" "]


def test_bs_smtp_session(server):
    r, codes = bs(server, b"EHLO client", b"MAIL FROM:<php@example.org>",
                  b"RCPT TO:<alice@example.test>", b"DATA",
                  b"Subject: bs\r\n\r\n..stuffed\r\nbody\r\n.", b"QUIT")
    assert codes == ["220", "250", "250", "250", "354", "250", "221"]
    assert b"queued in the maildrop" in r.stdout
    [msg] = server.wait_mail("alice")
    assert b"Return-Path: <php@example.org>" in msg
    assert lf(msg).endswith(b"\n\n.stuffed\nbody\n")


def test_bs_refuses_bad_commands(server):
    _, codes = bs(server, b"RCPT TO:<alice@example.test>",
                  b"MAIL FROM:<bad@@x>", b"MAIL FROM:<>", b"DATA",
                  b"RCPT TO:<a b@example.test>", b"QUIT")
    assert codes == ["220", "503", "501", "250", "503", "501", "221"]
    assert maildrop_files(server) == []


@pytest.mark.parametrize("args,data,code,text", [
    ([], "Subject: x\n\nx\n", 64, "no recipients given"),
    (["bad@@x.test"], "Subject: x\n\nx\n", 65, "malformed address: bad@@x"),
    (["-t"], "Subject: no rcpt\n\nx\n", 65, "no recipients"),
    (["-t"], "To: <broken\n\nx\n", 65, "malformed address"),
    (["alice@example.test"], "Subject: x\n\na\0b\n", 65, "NUL byte in line 3"),
    (["alice@example.test"], "Subject: x\n\n" + "y" * 1200 + "\n", 65,
     "line 3 is longer than 998"),
    (["alice@example.test"], "Subject: x\n\n" + ("y" * 900 + "\n") * 1300,
     65, "message larger than 1048576 bytes"),
    (["-Z", "alice@example.test"], "", 64, "unknown option -Z"),
    (["-f"], "", 64, "option -f needs a value"),
    (["-N", "sometimes", "alice@example.test"], "x\n", 64,
     "bad -N value 'sometimes'"),
    (["-R", "body", "alice@example.test"], "x\n", 64, "hdrs or full"),
    (["-V", "a b", "alice@example.test"], "x\n", 64, "bad -V value"),
    (["-f", "no spaces@x.test", "alice@example.test"], "x\n", 65,
     "malformed address"),
    (["-bp"], "", 64, "sluicectl list"),
    (["-q"], "", 64, "not supported"),
], ids=["no-rcpt", "bad-addr", "t-no-rcpt", "t-bad-addr", "nul",
        "long-line", "too-big", "unknown-opt", "f-no-value", "N-bad",
        "R-bad", "V-bad", "bad-sender",
        "bp", "q"])
def test_bad_input_refused(server, args, data, code, text):
    r = sendmail(server, args, data)
    assert r.returncode == code, (r.returncode, r.stderr)
    err = r.stderr.decode()
    assert err.startswith("sluice-sendmail: ") and text in err, err
    assert err.count("\n") == 1
    assert maildrop_files(server) == []


def test_bad_config(server, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("hostname: [\n")
    r = sendmail(server, ["alice@example.test"], "x\n", config=str(bad))
    assert r.returncode == 78
    assert b"bad.yaml" in r.stderr


def test_refused_by_sluiced_goes_to_failed(server):
    """sendmail cannot know local mailboxes: the pickup gets 550 at RCPT,
    moves the file aside, says so in the log and tells the sender."""
    r = sendmail(server, ["-f", "bob@example.test", "nobody@example.test"],
                 "Subject: lost\n\nx\n")
    assert r.returncode == 0, r.stderr
    helpers.wait_for(lambda: maildrop_files(server, "failed"),
                     msg="file in maildrop/failed")
    assert maildrop_files(server) == []
    log = server.log()
    assert "event=pickup-refused" in log and "nobody@example.test" in log
    assert "event=pickup-failed" in log
    [notice] = server.wait_mail("bob")
    notice = lf(notice)
    assert b"Return-Path: <>" in notice
    assert b"Subject: Undelivered Mail Returned to Sender" in notice
    assert b"<nobody@example.test>: 550 5.1.1" in notice
    assert b"Subject: lost" in notice.split(b"header of your message")[1]


def test_some_recipients_refused(server):
    """Delivered to the mailbox that exists; the sender hears of the
    other."""
    r = sendmail(server, ["-f", "bob@example.test", "alice@example.test",
                          "ghost@example.test"], "Subject: half\n\nx\n")
    assert r.returncode == 0, r.stderr
    [msg] = server.wait_mail("alice")
    assert b"Subject: half" in msg
    [notice] = server.wait_mail("bob")
    assert b"<ghost@example.test>: 550" in notice
    assert b"alice@example.test>: " not in notice
    assert maildrop_files(server) == [] and \
        maildrop_files(server, "failed") == []


def test_no_notice_to_the_null_sender(server):
    r = sendmail(server, ["-f", "", "nobody@example.test"], "x\n")
    assert r.returncode == 0, r.stderr
    helpers.wait_for(lambda: maildrop_files(server, "failed"),
                     msg="file in maildrop/failed")
    import time
    time.sleep(0.5)
    assert "event=pickup-notice" not in server.log()


def test_unqualified_recipient_gets_hostname(make_server):
    srv = make_server({"hostname": "example.test"})
    r = sendmail(srv, ["alice"], "Subject: local\n\nx\n")
    assert r.returncode == 0, r.stderr
    srv.wait_mail("alice")


def test_newaliases_is_a_noop(server):
    r = subprocess.run([SENDMAIL, "-bi"], capture_output=True, timeout=10)
    assert r.returncode == 0


def test_stale_tmp_file_removed_fresh_one_kept(make_server):
    """A .tmp.* file left by a sendmail that died: gone once a day old."""
    srv = make_server(start=False)
    r = sendmail(srv, ["alice@example.test"], "Subject: s\n\nx\n")
    assert r.returncode == 0
    d = os.path.join(srv.spool, "maildrop")
    old, fresh = os.path.join(d, ".tmp.old"), os.path.join(d, ".tmp.fresh")
    for p in (old, fresh):
        with open(p, "w") as f:
            f.write("SLUICE-MAILDROP 1\nS a@b.test\n")
    os.utime(old, (1, 1))
    srv.start()
    srv.wait_mail("alice")
    helpers.wait_for(lambda: not os.path.exists(old), msg="stale removed")
    assert os.path.exists(fresh)
    assert "event=pickup-stale file=.tmp.old" in srv.log()
