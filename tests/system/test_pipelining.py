"""PIPELINING (RFC 2920): replies come back in order, nothing is lost.

The clients here follow RFC 2920 section 3.1 (EHLO, DATA and NOOP end a
group: the client waits for their replies), since clients outside
trusted_networks that do not are refused (test_hardening_pipelining.py);
the one test that pipelines message text past DATA is a trusted client."""
from helpers import check, queued_id, received_qid

HDR = "From: <s@remote.test>\r\nTo: <alice@example.test>\r\nSubject: p{}\r\n\r\n"


def test_pipelined_envelope(server):
    """After EHLO, MAIL, 3 RCPT and DATA in one write get their replies in
    order; then the body completes the message."""
    c = server.raw()
    c.send("EHLO client.example.test\r\n")
    code, text = c.reply()
    assert code == 250 and "PIPELINING" in text, (code, text)
    c.send("MAIL FROM:<s@remote.test>\r\n"
           "RCPT TO:<alice@example.test>\r\n"
           "RCPT TO:<nobody@example.test>\r\n"
           "RCPT TO:<bob@example.test>\r\n"
           "DATA\r\n")
    check(c.reply(), 250, "2.1.0")
    check(c.reply(), 250, "2.1.5")
    check(c.reply(), 550, "5.1.1")
    check(c.reply(), 250, "2.1.5")
    check(c.reply(), 354)
    c.send(HDR.format(0) + "body\r\n.\r\n")
    qid = queued_id(c.reply())
    [a] = server.wait_mail("alice")
    [b] = server.wait_mail("bob")
    assert received_qid(a) == qid == received_qid(b)


def test_pipelined_transactions_after_body(make_server):
    """Several whole transactions pipelined after the end of data each get
    their replies in order; a pipelined QUIT gets 250 then 221. The client
    sends message text without waiting for the 354, which only a trusted
    client may do."""
    server = make_server({"trusted_networks": ["127.0.0.0/8"]})
    c = server.raw()
    c.send("EHLO client.example.test\r\n")
    assert c.reply()[0] == 250
    c.send("MAIL FROM:<s@remote.test>\r\n"
           "RCPT TO:<bob@example.test>\r\nDATA\r\n")
    check(c.reply(), 250, "2.1.0")
    check(c.reply(), 250, "2.1.5")
    check(c.reply(), 354)
    n = 5
    batch = HDR.format(0) + "m0\r\n.\r\n"
    for i in range(1, n):
        batch += ("MAIL FROM:<s@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
                  "DATA\r\n" + HDR.format(i) + f"m{i}\r\n.\r\n")
    batch += "QUIT\r\n"
    c.send(batch)
    qids = [queued_id(c.reply())]
    for i in range(1, n):
        check(c.reply(), 250, "2.1.0")
        check(c.reply(), 250, "2.1.5")
        check(c.reply(), 354)
        qids.append(queued_id(c.reply()))
    check(c.reply(), 221, "2.0.0")
    assert c.closed(3)
    assert len(set(qids)) == n
    files = server.wait_mail("bob", n)
    assert sorted(received_qid(f) for f in files) == sorted(qids)


def test_pipelined_quit_after_data(server):
    """A QUIT in the same write as the end of data gets 250 then 221 -- the
    message is committed before the session closes."""
    c = server.raw()
    c.send("EHLO c.test\r\n")
    c.reply()
    c.send("MAIL FROM:<s@remote.test>\r\n"
           "RCPT TO:<alice@example.test>\r\nDATA\r\n")
    c.replies(2)
    check(c.reply(), 354)
    c.send(HDR.format(1) + "x\r\n.\r\nQUIT\r\n")
    qid = queued_id(c.reply())
    check(c.reply(), 221, "2.0.0")
    [data] = server.wait_mail("alice")
    assert received_qid(data) == qid


def test_pipelined_rset_and_errors(server):
    """Errors inside a pipelined group do not desynchronise the replies."""
    c = server.raw()
    c.send("EHLO c.test\r\n")
    assert c.reply()[0] == 250
    c.send("MAIL FROM:<s@remote.test>\r\nBOGUS\r\n"
           "RCPT TO:<nobody@example.test>\r\nRSET\r\n"
           "RCPT TO:<alice@example.test>\r\nMAIL FROM:<bad\r\nNOOP\r\n")
    check(c.reply(), 250, "2.1.0")
    check(c.reply(), 500, "5.5.2")
    check(c.reply(), 550, "5.1.1")
    check(c.reply(), 250, "2.0.0")
    check(c.reply(), 503, "5.5.1")
    assert c.reply()[0] == 501
    check(c.reply(), 250, "2.0.0")
    assert c.pending(0.3) == b""


def test_many_pipelined_commands(make_server):
    """5000 pipelined RSETs sent before reading any reply all get 250, in
    order (the server copes with a client that reads late). RSET, not NOOP:
    a NOOP must end its group (RFC 2920). junk_commands is raised: by
    default the 101st RSET without a message counts as an error
    (test_limits.py::test_junk_command_limit)."""
    server = make_server({"limits": {"junk_commands": 10000}})
    c = server.raw(timeout=20)
    c.send(b"EHLO c.test\r\n")
    c.reply()
    n = 5000
    c.send(b"RSET\r\n" * n + b"QUIT\r\n")
    for _ in range(n):
        check(c.reply(), 250, "2.0.0")
    check(c.reply(), 221, "2.0.0")


def test_pipelined_bdat(server):
    """MAIL, RCPT, BDAT LAST and the next MAIL in one write."""
    c = server.raw()
    payload = (HDR.format(9) + "chunky\r\n").encode()
    c.send(b"EHLO c.test\r\n")
    assert c.reply()[0] == 250
    c.send(b"MAIL FROM:<s@remote.test>\r\n"
           b"RCPT TO:<alice@example.test>\r\n"
           b"BDAT %d LAST\r\n" % len(payload) + payload +
           b"MAIL FROM:<s@remote.test>\r\nQUIT\r\n")
    check(c.reply(), 250, "2.1.0")
    check(c.reply(), 250, "2.1.5")
    qid = queued_id(c.reply())
    check(c.reply(), 250, "2.1.0")
    check(c.reply(), 221, "2.0.0")
    [data] = server.wait_mail("alice")
    assert received_qid(data) == qid
