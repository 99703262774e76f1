"""CHUNKING (RFC 3030): BDAT transactions."""
import time

from helpers import (check, ehlo, has_enh, queued_id, split_headers, start_tx,
                     wait_for)

HDR = b"From: <s@remote.test>\r\nTo: <alice@example.test>\r\nSubject: b\r\n\r\n"


def bdat(c, data, last=False):
    c.send(b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data)
    return c.reply()


def test_bdat_chunks(server):
    """Several BDAT chunks then 'BDAT n LAST' queue one message with the
    chunks concatenated."""
    c = server.raw()
    start_tx(c)
    check(bdat(c, HDR), 250)
    check(bdat(c, b"hello "), 250)
    check(bdat(c, b"world\r\n"), 250)
    qid = queued_id(bdat(c, b"bye\r\n", last=True))
    [data] = server.wait_mail("alice")
    _, body = split_headers(data)
    assert body == "hello world\nbye\n", body
    assert qid.encode() in data


def test_bdat_chunk_replies_have_enh(server):
    """Intermediate BDAT replies are 250 with an enhanced status code."""
    c = server.raw()
    start_tx(c)
    r = bdat(c, HDR)
    assert r[0] == 250 and has_enh(r), r
    queued_id(bdat(c, b"x\r\n", last=True))


def test_bdat_dot_is_content(server):
    """Chunk data is raw: a '.' line inside BDAT is content, and '..' is
    not unstuffed."""
    c = server.raw()
    start_tx(c)
    queued_id(bdat(c, HDR + b"a\r\n.\r\n..b\r\nc\r\n", last=True))
    [data] = server.wait_mail("alice")
    _, body = split_headers(data)
    assert body == "a\n.\n..b\nc\n", body


def test_bdat_zero_last(server):
    """'BDAT 0 LAST' ends a message."""
    c = server.raw()
    start_tx(c)
    check(bdat(c, HDR + b"body\r\n"), 250)
    queued_id(bdat(c, b"", last=True))
    [data] = server.wait_mail("alice")
    assert data.endswith(b"\nbody\n")


def test_bdat_zero_then_zero_last(server):
    """'BDAT 0' without LAST gets 250; 'BDAT 0 LAST' then finishes."""
    c = server.raw()
    start_tx(c)
    check(bdat(c, HDR + b"z\r\n"), 250)
    check(bdat(c, b""), 250)
    queued_id(bdat(c, b"", last=True))
    server.wait_mail("alice")


def test_bdat_chunk_in_pieces(server):
    """A chunk arriving in small TCP pieces is assembled; a command in the
    same write right after the chunk is executed."""
    c = server.raw()
    start_tx(c)
    payload = HDR + b"piecewise\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(payload))
    for i in range(0, len(payload), 7):
        c.send(payload[i:i + 7])
        time.sleep(0.01)
    queued_id(c.reply())
    c.send(b"BDAT 3 LAST\r\nabcNOOP\r\n")
    check(c.reply(), 503, "5.5.1")
    check(c.reply(), 250, "2.0.0")


def test_data_after_bdat(server):
    """DATA after BDAT gets 503 5.5.1 and the transaction is discarded:
    nothing queued, and a following BDAT needs a new MAIL."""
    c = server.raw()
    start_tx(c)
    check(bdat(c, HDR + b"part\r\n"), 250)
    check(c.cmd("DATA"), 503, "5.5.1")
    check(bdat(c, b"more\r\n", last=True), 503, "5.5.1")
    check(c.cmd("NOOP"), 250, "2.0.0")
    time.sleep(0.5)
    assert server.queued_ids() == []
    assert server.maildir_files("alice") == []
    # a new transaction works
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    queued_id(bdat(c, HDR + b"ok\r\n", last=True))


def test_bdat_without_valid_rcpt(server):
    """BDAT with no accepted recipient: the chunk is consumed and 554 5.5.1
    is returned; the session stays in sync."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<nobody@example.test>"), 550, "5.1.1")
    check(bdat(c, b"NOOP\r\nRSET\r\n"), 554, "5.5.1")
    check(c.cmd("NOOP"), 250, "2.0.0")
    assert c.pending(0.3) == b""


def test_bdat_before_mail(server):
    """BDAT before MAIL: the chunk is consumed and 503 returned."""
    c = server.raw()
    ehlo(c)
    check(bdat(c, b"QUIT\r\n", last=True), 503, "5.5.1")
    check(c.cmd("NOOP"), 250, "2.0.0")
    assert c.pending(0.3) == b""


def test_mail_rcpt_during_bdat(server):
    """MAIL and RCPT in the middle of a BDAT transaction get 503."""
    c = server.raw()
    start_tx(c)
    check(bdat(c, HDR), 250)
    check(c.cmd("MAIL FROM:<t@remote.test>"), 503, "5.5.1")
    check(c.cmd("RCPT TO:<bob@example.test>"), 503, "5.5.1")
    check(c.cmd("RSET"), 250, "2.0.0")
    time.sleep(0.3)
    assert server.queued_ids() == []
    assert server.maildir_files("bob") == []


def test_bdat_short_chunk_then_close(server):
    """A short chunk followed by the client closing: nothing queued,
    nothing delivered, and no partial file is left afterwards."""
    c = server.raw()
    start_tx(c)
    c.send(b"BDAT 10000\r\n" + b"x" * 100)
    time.sleep(0.2)
    c.close()
    time.sleep(0.5)
    assert server.queued_ids() == []
    assert server.maildir_files("alice") == []
    wait_for(lambda: server.partial_files() == [], timeout=3,
             msg="no partial file")


def test_bdat_bad_size(server):
    """'BDAT abc' gets 501, then 421 and the connection closes (framing is
    lost)."""
    c = server.raw()
    start_tx(c)
    c.send(b"BDAT abc\r\n")
    r = c.reply()
    assert r[0] == 501 and has_enh(r), r
    r = c.reply()
    assert r[0] == 421 and has_enh(r), r
    assert c.closed(3)


def test_bdat_size_limit(make_server):
    """The size limit applies across chunks: 552 5.3.4 after LAST, nothing
    delivered, the session continues."""
    srv = make_server({"limits": {"message_size": "10K"}})
    c = srv.raw()
    start_tx(c)
    line = b"y" * 98 + b"\r\n"
    check(bdat(c, HDR + line * 60), 250)
    check(bdat(c, line * 60, last=True), 552, "5.3.4")
    check(c.cmd("NOOP"), 250, "2.0.0")
    time.sleep(0.3)
    assert srv.queued_ids() == [] and srv.maildir_files("alice") == []
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")


def test_bdat_huge_chunk_survived(server):
    """A 5 MB BDAT chunk against a 1M limit gets 552 5.3.4 and the session
    stays in sync."""
    c = server.raw(timeout=30)
    start_tx(c)
    data = (b"q" * 98 + b"\r\n") * 50000
    c.send(b"BDAT %d LAST\r\n" % len(data))
    for i in range(0, len(data), 1 << 20):
        c.send(data[i:i + (1 << 20)])
    check(c.reply(timeout=30), 552, "5.3.4")
    check(c.cmd("NOOP"), 250, "2.0.0")


def test_bdat_bare_lf_reject(server):
    """BDAT content (no BINARYMIME) is still CRLF text: the bare-LF policy
    applies (reject => 550 5.6.11 after LAST)."""
    c = server.raw()
    start_tx(c)
    check(bdat(c, HDR + b"a\nb\r\n", last=True), 550, "5.6.11")
    check(c.cmd("NOOP"), 250, "2.0.0")


def test_bdat_several_messages(server):
    """Two BDAT messages in one session, then a DATA one, are all queued."""
    c = server.raw()
    ehlo(c)
    qids = []
    for i in range(2):
        check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
        check(c.cmd("RCPT TO:<bob@example.test>"), 250, "2.1.5")
        qids.append(queued_id(bdat(c, HDR + b"m%d\r\n" % i, last=True)))
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<bob@example.test>"), 250, "2.1.5")
    check(c.cmd("DATA"), 354)
    c.send(HDR + b"m2\r\n.\r\n")
    qids.append(queued_id(c.reply()))
    assert len(set(qids)) == 3
    server.wait_mail("bob", 3)
