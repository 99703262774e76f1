"""Basic SMTP conversation, delivery format, queue ids and logs."""

from helpers import (QID_RE, check, ehlo, has_enh, message, parse_kv,
                     queued_id, received_qid, send_data, split_headers,
                     start_tx, LOG_LINE_RE)


def test_greeting(server):
    """The banner is '220 mx.example.test ESMTP sluice'."""
    c = server.raw(greet=False)
    assert c.reply() == (220, "mx.example.test ESMTP sluice")


def test_ehlo_extensions(server):
    """EHLO lists PIPELINING, SIZE <limit>, 8BITMIME, ENHANCEDSTATUSCODES,
    SMTPUTF8, CHUNKING and DSN, after our host name."""
    c = server.raw()
    code, text = c.cmd("EHLO client.example.test")
    assert code == 250
    lines = text.split("\n")
    assert lines[0].startswith("mx.example.test"), lines
    kws = {l.split(" ")[0].upper(): l for l in lines[1:]}
    for k in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8",
              "CHUNKING", "DSN"):
        assert k in kws, f"{k} missing from EHLO reply {lines}"
    assert kws.get("SIZE") == "SIZE 1048576", lines


def test_helo(server):
    """HELO gets '250 mx.example.test' (no enhanced code: RFC 2034)."""
    c = server.raw()
    code, text = c.cmd("HELO client.example.test")
    assert code == 250
    assert text.split(" ")[0] == "mx.example.test", text


def test_helo_ehlo_without_argument(server):
    """EHLO and HELO without a domain argument get 501."""
    c = server.raw()
    assert c.cmd("EHLO")[0] == 501
    assert c.cmd("HELO")[0] == 501
    # still usable afterwards
    check(c.cmd("NOOP"), 250, "2.0.0")


def test_quit(server):
    """QUIT gets 221 2.0.0 and the server closes the connection."""
    c = server.raw()
    check(c.cmd("QUIT"), 221, "2.0.0")
    assert c.closed(3)


def test_simple_message_delivered(server):
    """A message is queued with a 14-char [0-9a-v] QID and delivered to the
    Maildir with Return-Path, Delivered-To and Received (with the QID) on
    top, LF line ends, and the original message after them."""
    c = server.raw()
    start_tx(c, sender="sender@remote.test")
    msg = message(subject="basic", body="line one\r\nline two\r\n")
    qid = queued_id(send_data(c, msg + ".\r\n"))
    assert QID_RE.fullmatch(qid)
    check(c.cmd("QUIT"), 221)
    [data] = server.wait_mail("alice")
    assert b"\r" not in data, "Maildir file must use LF line ends"
    lines = data.split(b"\n")
    assert lines[0] == b"Return-Path: <sender@remote.test>", lines[:3]
    assert lines[1] == b"Delivered-To: alice@example.test", lines[:3]
    assert lines[2].startswith(b"Received: from "), lines[:3]
    assert received_qid(data) == qid, data[:400]
    assert data.endswith(msg.replace("\r\n", "\n").encode()), data


def test_qid_in_log(server):
    """The queue id appears in the log lines about the message."""
    c = server.raw()
    start_tx(c)
    qid = queued_id(send_data(c, message() + ".\r\n"))
    server.wait_mail("alice")
    lines = [l for l in server.log_lines() if f"qid={qid}" in l]
    assert len(lines) >= 2, server.log()
    assert any("status=sent" in l for l in lines) or \
        any("deliver" in l for l in lines), lines


def test_log_format(server):
    """Every log line is a timestamped key=value line; message lines carry
    qid= first after the level prefix."""
    c = server.raw()
    start_tx(c, rcpts=("alice@example.test", "bob@example.test"))
    qid = queued_id(send_data(c, message() + ".\r\n"))
    c.cmd("NOSUCHCOMMAND")
    c.cmd("QUIT")
    server.wait_mail("bob")
    lines = server.log_lines()
    assert lines
    bad = []
    for l in lines:
        m = LOG_LINE_RE.match(l)
        if not m or parse_kv(m.group(4)) is None:
            bad.append(l)
            continue
        pairs = parse_kv(m.group(4))
        if any(k == "qid" for k, _ in pairs) and pairs[0][0] != "qid":
            bad.append(l)
    assert not bad, "malformed log lines:\n" + "\n".join(bad)
    msg_lines = [l for l in lines if f"qid={qid}" in l]
    assert msg_lines and all(
        LOG_LINE_RE.match(l).group(4).startswith(f"qid={qid} ")
        for l in msg_lines), msg_lines


def test_null_sender(server):
    """MAIL FROM:<> is accepted; Return-Path: <> in the delivered file."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    queued_id(send_data(c, message() + ".\r\n"))
    [data] = server.wait_mail("alice")
    assert data.startswith(b"Return-Path: <>\n"), data[:100]


def test_dot_unstuffing(server):
    """Dot-stuffed lines ('..x') are stored unstuffed ('.x'); a lone '.'
    inside a longer line does not end the data."""
    c = server.raw()
    start_tx(c)
    body = "..x\r\n...\r\na.b\r\n. not the end\r\n"
    queued_id(send_data(c, message(body=body) + ".\r\n"))
    [data] = server.wait_mail("alice")
    _, stored = split_headers(data)
    assert stored == ".x\n..\na.b\n not the end\n", stored


def test_two_recipients(server):
    """Two recipients get one file each, same QID."""
    c = server.raw()
    start_tx(c, rcpts=("alice@example.test", "bob@example.test"))
    qid = queued_id(send_data(c, message() + ".\r\n"))
    [a] = server.wait_mail("alice")
    [b] = server.wait_mail("bob")
    assert received_qid(a) == qid and received_qid(b) == qid
    assert a.split(b"\n")[1] == b"Delivered-To: alice@example.test"
    assert b.split(b"\n")[1] == b"Delivered-To: bob@example.test"


def test_duplicate_rcpt_delivered_once(server):
    """The same recipient given twice is delivered once."""
    c = server.raw()
    start_tx(c, rcpts=("alice@example.test",), do_ehlo=True)
    r = c.cmd("RCPT TO:<alice@example.test>")
    assert r[0] == 250 and has_enh(r), r
    queued_id(send_data(c, message() + ".\r\n"))
    server.wait_mail("alice")
    server.wait_queue_empty()
    assert len(server.maildir_files("alice")) == 1


def test_case_insensitive_local_part(server):
    """ALICE@Example.TEST reaches alice's mailbox."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<ALICE@Example.TEST>"), 250, "2.1.5")
    queued_id(send_data(c, message() + ".\r\n"))
    server.wait_mail("alice")


def test_several_messages_one_session(server):
    """Several transactions in one session each get their own QID."""
    c = server.raw()
    ehlo(c)
    qids = []
    for i in range(3):
        check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
        check(c.cmd("RCPT TO:<bob@example.test>"), 250, "2.1.5")
        qids.append(queued_id(send_data(c, message(f"m{i}") + ".\r\n")))
    assert len(set(qids)) == 3
    assert qids == sorted(qids), "QIDs must sort by time"
    files = server.wait_mail("bob", 3)
    assert sorted(received_qid(f) for f in files) == sorted(qids)


def test_smtplib_sendmail(server):
    """Python's smtplib can send a message end to end."""
    with server.smtp() as s:
        s.ehlo()
        assert s.has_extn("pipelining") and s.has_extn("size")
        refused = s.sendmail("s@remote.test", ["alice@example.test"],
                             message(subject="smtplib"))
        assert refused == {}
    [data] = server.wait_mail("alice")
    assert b"Subject: smtplib" in data


def test_noop_rset_vrfy_expn_help(server):
    """NOOP 250 2.0.0, RSET 250 2.0.0, VRFY 252, EXPN 502, HELP 214."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("NOOP"), 250, "2.0.0")
    check(c.cmd("RSET"), 250, "2.0.0")
    r = c.cmd("VRFY alice")
    assert r[0] == 252 and has_enh(r), r
    r = c.cmd("EXPN staff")
    assert r[0] == 502 and has_enh(r), r
    r = c.cmd("HELP")
    assert r[0] == 214 and has_enh(r), r


def test_rset_clears_transaction(server):
    """RSET clears the transaction: RCPT afterwards gets 503 5.5.1 and
    nothing is queued."""
    c = server.raw()
    start_tx(c)
    check(c.cmd("RSET"), 250, "2.0.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")
    check(c.cmd("DATA"), 503, "5.5.1")
    # a new transaction works after RSET
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")


def test_starttls_auth_not_offered(server):
    """STARTTLS and AUTH get 502 5.5.1 (not offered yet)."""
    c = server.raw()
    ehlo_text = ehlo(c)
    assert "STARTTLS" not in ehlo_text and "AUTH" not in ehlo_text
    check(c.cmd("STARTTLS"), 502, "5.5.1")
    check(c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), 502, "5.5.1")
    check(c.cmd("NOOP"), 250, "2.0.0")


def test_8bit_and_utf8_message(server):
    """An 8-bit body with BODY=8BITMIME and a UTF-8 sender with SMTPUTF8
    are accepted and stored byte-exact."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<jörg@bücher.test> BODY=8BITMIME SMTPUTF8"),
          250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    body = "Grüße – ✓\r\n"
    queued_id(send_data(c, message(body=body).encode() + b".\r\n"))
    [data] = server.wait_mail("alice")
    assert data.startswith("Return-Path: <jörg@bücher.test>\n".encode()), \
        data[:80]
    assert data.endswith("Grüße – ✓\n".encode())
