"""Stored messages are byte-exact whatever their size and order (queue
files may be spilled to disk or reused: no stale or missing bytes)."""
import os
import random
import re
import threading

from helpers import check, ehlo, queued_id, received_qid, send_data


def body_of(size, seed):
    """CRLF text of about `size` octets, deterministic per seed, with
    8-bit bytes and lines starting with dots."""
    rnd = random.Random(seed)
    lines, n = [], 0
    while n < size:
        k = rnd.randrange(0, 200)
        line = "".join(rnd.choice("abcdefghij .,-é") for _ in range(k))
        if rnd.random() < 0.1:
            line = "." + line
        lines.append(line)
        n += len(line.encode()) + 2
    return "\r\n".join(lines) + "\r\n"


def send(c, subject, body, rcpt="alice@example.test"):
    check(c.cmd("MAIL FROM:<s@remote.test> BODY=8BITMIME"), 250, "2.1.0")
    check(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5")
    msg = (f"Subject: {subject}\r\n\r\n" + body).encode()
    wire = msg.replace(b"\r\n.", b"\r\n..")
    if wire.startswith(b"."):
        wire = b"." + wire
    return queued_id(send_data(c, wire + b".\r\n")), msg


def delivered_by_qid(server, user):
    out = {}
    for p in server.maildir_files(user):
        with open(p, "rb") as f:
            data = f.read()
        out[received_qid(data)] = (p, data)
    return out


def stored_message(data):
    """The client's message as stored: everything after our Received."""
    lines = data.split(b"\n")
    i = 3                                   # Return-Path, Delivered-To, Rcvd
    while lines[i][:1] in (b" ", b"\t"):    # Received continuation lines
        i += 1
    return b"\n".join(lines[i:])


def test_sizes_shrinking(server):
    """Messages of 600 KB, 300 KB, 40 KB, 2 KB and 50 B in a row are each
    stored exactly (no bytes of an earlier, bigger message leak in)."""
    c = server.raw(timeout=30)
    ehlo(c)
    sent = {}
    for i, size in enumerate([600_000, 300_000, 40_000, 2_000, 50]):
        qid, msg = send(c, f"size{size}", body_of(size, i))
        sent[qid] = msg
    server.wait_mail("alice", len(sent), timeout=10)
    got = delivered_by_qid(server, "alice")
    assert set(got) == set(sent)
    for qid, msg in sent.items():
        stored = stored_message(got[qid][1])
        assert stored == msg.replace(b"\r\n", b"\n"), \
            f"{qid}: {len(stored)} octets stored, {len(msg)} sent"


def test_maildir_size_in_name(server):
    """A Maildir++ ',S=<n>' in the file name, if present, is the file's
    size (Dovecot trusts it)."""
    c = server.raw(timeout=30)
    ehlo(c)
    for i, size in enumerate([100, 5_000, 300_000]):
        send(c, f"s{i}", body_of(size, 100 + i))
    server.wait_mail("alice", 3)
    for p in server.maildir_files("alice"):
        m = re.search(r",S=(\d+)", os.path.basename(p))
        if m:
            assert int(m.group(1)) == os.path.getsize(p), p


def test_concurrent_mixed_sizes(make_server):
    """6 sessions sending interleaved big and small messages: every
    message is stored exactly under its own QID."""
    srv = make_server({"limits": {"message_size": "2M",
                                  "per_ip_sessions": 10}})
    sent, errors = {}, []
    lock = threading.Lock()

    def worker(t):
        try:
            c = srv.raw(timeout=30)
            ehlo(c)
            for i in range(5):
                size = [400_000, 30, 70_000, 5, 900_000][(i + t) % 5]
                qid, msg = send(c, f"t{t}m{i}", body_of(size, t * 10 + i),
                                rcpt="bob@example.test")
                with lock:
                    assert qid not in sent, f"duplicate QID {qid}"
                    sent[qid] = msg
            c.cmd("QUIT")
        except Exception as e:      # noqa
            errors.append(repr(e))

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors
    srv.wait_mail("bob", len(sent), timeout=20)
    got = delivered_by_qid(srv, "bob")
    assert set(got) == set(sent)
    for qid, msg in sent.items():
        assert stored_message(got[qid][1]) == msg.replace(b"\r\n", b"\n"), qid


def test_queue_file_after_big_then_small(server):
    """With delivery blocked, a small message queued after a big one has a
    queue file holding exactly its own message (no stale tail)."""
    d = os.path.join(server.tmp, "mail", "example.test")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "alice"), "w") as f:
        f.write("blocker\n")
    c = server.raw(timeout=30)
    ehlo(c)
    send(c, "big", body_of(500_000, 7))
    qid, msg = send(c, "small", "tiny body\r\n")
    data = server.queue_file(qid)
    assert msg in data
    # the message is followed directly by the envelope
    after = data.split(msg, 1)[1]
    assert after.startswith(b"v 1\n"), after[:80]
    assert len(data) < 2000, len(data)
