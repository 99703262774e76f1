"""DSN parameters (RFC 3461) are stored with the queued message.

Delivery to alice is blocked (a regular file sits where her Maildir's parent
directory should be), so the message stays in queue/ and its envelope can
be read from the queue file."""
import os

from helpers import (check, ehlo, envelope_lines, envelope_records, message,
                     pct_decode, queued_id, send_data, wait_for)


def block_mailbox(server, user="alice", domain="example.test"):
    d = os.path.join(server.tmp, "mail", domain)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, user)
    with open(path, "w") as f:
        f.write("not a directory\n")
    return path


def queue_one(server, mail_args, rcpt_lines, helo="client.example.test"):
    c = server.raw()
    ehlo(c, helo)
    check(c.cmd("MAIL FROM:" + mail_args), 250, "2.1.0")
    for r in rcpt_lines:
        check(c.cmd("RCPT TO:" + r), 250, "2.1.5")
    qid = queued_id(send_data(c, message() + ".\r\n"))
    c.cmd("QUIT")
    wait_for(lambda: qid in server.queued_ids(), timeout=2,
             msg=f"{qid} in queue/")
    return qid


def test_dsn_params_stored(server):
    """RET, ENVID, NOTIFY and ORCPT given on MAIL/RCPT are recorded in the
    queue file's envelope (notify bits NEVER=1 SUCCESS=2 FAILURE=4
    DELAY=8)."""
    block_mailbox(server, "alice")
    block_mailbox(server, "bob")
    qid = queue_one(
        server, "<s@remote.test> RET=FULL ENVID=abc+2Bdef",
        ["<alice@example.test> NOTIFY=SUCCESS,FAILURE,DELAY "
         "ORCPT=rfc822;alice@example.test",
         "<bob@example.test> NOTIFY=NEVER ORCPT=rfc822;bob+2B1@example.test"])
    recs = envelope_records(server.queue_file(qid))
    assert recs["ret"] == [["FULL"]], recs
    assert recs["envid"] == [["abc+2Bdef"]], recs
    assert ["alice@example.test", "14", "rfc822;alice@example.test"] \
        in recs["rcpt"], recs["rcpt"]
    assert ["bob@example.test", "1", "rfc822;bob+2B1@example.test"] \
        in recs["rcpt"], recs["rcpt"]


def test_dsn_ret_hdrs_and_defaults(server):
    """RET=HDRS is stored; recipients without NOTIFY/ORCPT are stored with
    no notify bits."""
    block_mailbox(server, "alice")
    qid = queue_one(server, "<s@remote.test> RET=HDRS",
                    ["<alice@example.test>"])
    recs = envelope_records(server.queue_file(qid))
    assert recs["ret"] == [["HDRS"]], recs
    [rc] = recs["rcpt"]
    assert rc[0] == "alice@example.test" and rc[1] == "0", rc


def test_stored_fields_are_encoded(server):
    """No stored envelope field contains a raw space, CR, LF or non-ASCII
    byte, whatever the client sent: values are %-encoded."""
    block_mailbox(server, "alice")
    sender = "jörg%x@bücher.test"
    qid = queue_one(server, f"<{sender}> SMTPUTF8 ENVID=a+20b",
                    ["<alice@example.test> ORCPT=utf-8;j\\x{00F6}rg"],
                    helo="[127.0.0.1]")
    data = server.queue_file(qid)
    lines = envelope_lines(data)
    for line in lines:
        assert "\r" not in line and "\t" not in line, line
        assert all(0x21 <= ord(ch) <= 0x7e or ch == " " for ch in line), \
            f"raw non-printable byte in envelope line {line!r}"
        assert "  " not in line and not line.endswith(" "), line
    recs = envelope_records(data)
    for key in ("sender", "helo", "envid", "ret", "id"):
        assert key in recs, (key, lines)
        assert all(len(v) == 1 for v in recs[key]), (key, recs[key])
    assert pct_decode(recs["sender"][0][0]) == sender.encode(), recs["sender"]
    assert recs["id"] == [[qid]]
    [rc] = recs["rcpt"]
    assert len(rc) == 3, rc


def test_deferred_queue_file_has_message(server):
    """The queue file holds the received message (with our Received:
    header) while delivery is deferred, and the log says status=deferred."""
    block_mailbox(server, "alice")
    qid = queue_one(server, "<s@remote.test>", ["<alice@example.test>"])
    data = server.queue_file(qid)
    assert b"Subject: test\r\n" in data
    assert f"id {qid}".encode() in data
    wait_for(lambda: any(f"qid={qid}" in l and "status=deferred" in l
                         for l in server.log_lines()), timeout=5,
             msg="status=deferred in the log")


def test_odd_helo_stored_encoded(server):
    """A HELO argument with '%' and 8-bit bytes is accepted and stored
    %-encoded as one field; one with a space is refused with 501."""
    block_mailbox(server, "alice")
    c = server.raw()
    assert c.cmd("EHLO odd name")[0] == 501
    helo = "odd%name\xe9x"
    check(c.cmd("EHLO " + helo), 250)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    qid = queued_id(send_data(c, message() + ".\r\n"))
    recs = envelope_records(server.queue_file(qid))
    [h] = recs["helo"]
    assert len(h) == 1, recs["helo"]
    assert all(0x21 <= ord(ch) <= 0x7e for ch in h[0]), h
    assert pct_decode(h[0]) == helo.encode(), h
