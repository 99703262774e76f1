"""The queue contract (design.md section 4): nothing acknowledged is lost,
a restart resumes every committed message, half-received files are cleaned
up, disk full answers 452 4.3.1, delivery is retried."""
import collections
import os
import subprocess
import threading
import time

import pytest

from helpers import (QUEUED_RE, RawClient, check, ehlo, message, queued_id,
                     received_qid, send_data, split_headers, start_tx,
                     wait_for)


def block_mailbox(server, user="alice", domain="example.test"):
    """Put a regular file where the user's Maildir parent should be, so
    delivery fails temporarily."""
    d = os.path.join(server.tmp, "mail", domain)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, user)
    with open(path, "w") as f:
        f.write("blocker\n")
    return path


def logged(server, qid, what):
    return any(f"qid={qid}" in l and what in l for l in server.log_lines())


# -- crash test ---------------------------------------------------------------

TOTAL = 300
KILL_AFTER = 150
THREADS = 5
MAX_DUPLICATES = 16


def crash_body(token):
    filler = "".join(f"filler line {i:02d} for {token} xxxxxxxxxxxxxxxxxxxx\r\n"
                     for i in range(16))
    return (f"From: <load@remote.test>\r\nTo: <alice@example.test>\r\n"
            f"Subject: crash {token}\r\n\r\nTOKEN {token}\r\n{filler}"
            f"END-OF-MESSAGE {token}\r\n")


def collect(server, user, snapshot):
    """Counter qid -> delivered files for `user`; asserts every file is
    complete and matches the token acknowledged for its QID."""
    delivered = collections.Counter()
    bad = []
    for path in server.maildir_files(user):
        with open(path, "rb") as f:
            data = f.read()
        qid = received_qid(data)
        _, body = split_headers(data)
        tok = body.split("\n", 1)[0].replace("TOKEN ", "")
        expect = crash_body(tok).split("\r\n\r\n", 1)[1].replace("\r\n", "\n")
        if qid is None or body != expect:
            bad.append(path)
            continue
        if qid in snapshot and snapshot[qid] != tok:
            bad.append(path)
            continue
        delivered[qid] += 1
    assert not bad, f"incomplete or mismatched deliveries: {bad[:5]}"
    return delivered


@pytest.mark.parametrize("bob_blocked", [False, True],
                         ids=["delivering", "queued"])
def test_crash_durability(server, bob_blocked):
    """300 messages over 5 sessions, SIGKILL after ~150 acks, restart:
    every acknowledged QID is delivered (at least once), complete;
    duplicates are bounded by the in-flight deliveries; partial files are
    cleaned up and the queue drains.  In the 'queued' variant every message
    also goes to bob, whose mailbox is blocked until after the restart, so
    every acknowledged message must be recovered from queue/ (and alice's
    finished deliveries must not be repeated)."""
    lock = threading.Lock()
    acked = {}                  # qid -> token
    sent = [0]
    stop = threading.Event()
    errors = []
    rcpts = ["alice@example.test"]
    if bob_blocked:
        blocker = block_mailbox(server, "bob")
        rcpts.append("bob@example.test")

    # a half-received big message, to leave a partial file
    partial = server.raw(timeout=30)
    start_tx(partial)
    check(partial.cmd("DATA"), 354)
    partial.send(message(body=("p" * 98 + "\r\n") * 6000))   # ~600 KB
    wait_for(lambda: server.partial_files(), timeout=5,
             msg="a spilled partial file (precondition)")

    def sender(t):
        try:
            c = RawClient(server.host, server.port, timeout=10)
            c.reply()
            ehlo(c)
            while not stop.is_set():
                with lock:
                    if sent[0] >= TOTAL:
                        return
                    sent[0] += 1
                    n = sent[0]
                token = f"t{t}-n{n:04d}"
                c.cmd("MAIL FROM:<load@remote.test>")
                for r in rcpts:
                    c.cmd(f"RCPT TO:<{r}>")
                c.cmd("DATA")
                c.send(crash_body(token) + ".\r\n")
                code, text = c.reply()
                m = QUEUED_RE.search(text)
                if code == 250 and m:
                    with lock:
                        acked[m.group(1)] = token
        except (OSError, EOFError, AssertionError):
            return                  # the server was killed under us
        except Exception as e:      # noqa
            errors.append(repr(e))

    threads = [threading.Thread(target=sender, args=(i,), daemon=True)
               for i in range(THREADS)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) >= KILL_AFTER, timeout=60, interval=0.005,
             msg=f"{KILL_AFTER} acks")
    server.kill9()
    with lock:
        acked_at_kill = dict(acked)
    stop.set()
    for t in threads:
        t.join(15)
    partial.close()
    assert not errors, errors
    assert len(acked_at_kill) >= KILL_AFTER
    snapshot = dict(acked)      # acks that raced with the kill count too
    queued_at_kill = set(server.queued_ids())
    if bob_blocked:
        missing = sorted(set(snapshot) - queued_at_kill)
        assert not missing, f"acked but not in queue/: {missing[:10]}"

    server.start()
    wait_for(lambda: server.partial_files() == [], timeout=5,
             msg="partial file cleaned up after the restart")
    if bob_blocked:
        assert set(server.queued_ids()) == queued_at_kill
        os.unlink(blocker)
    wait_for(lambda: server.spool_count("queue") == 0, timeout=30,
             msg="queue/ empty after the restart; left: "
                 + str(server.spool_files("queue")[:10]))

    alice = collect(server, "alice", snapshot)
    lost = sorted(q for q in snapshot if alice[q] == 0)
    assert not lost, f"{len(lost)} acknowledged messages lost: {lost[:10]}"
    dups = sum(n - 1 for n in alice.values() if n > 1)
    print(f"acked at kill {len(acked_at_kill)}, acked {len(snapshot)}, "
          f"queued at kill {len(queued_at_kill)}, delivered "
          f"{sum(alice.values())} files for {len(alice)} ids, {dups} dups")
    assert dups <= MAX_DUPLICATES, f"{dups} duplicate deliveries"
    if bob_blocked:
        bob = collect(server, "bob", snapshot)
        lost = sorted(q for q in snapshot if bob[q] == 0)
        assert not lost, f"{len(lost)} acked messages lost for bob: {lost[:10]}"
        assert sum(n - 1 for n in bob.values()) <= MAX_DUPLICATES
        assert set(bob) <= queued_at_kill | set(snapshot)
    assert server.partial_files() == []


# -- restart recovery ---------------------------------------------------------

def test_restart_recovers_queue(server):
    """Messages queued but undeliverable survive a SIGKILL and restart, and
    are delivered once the mailbox works again."""
    blocker = block_mailbox(server)
    c = server.raw()
    ehlo(c)
    qids = []
    for i in range(3):
        check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
        check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
        qids.append(queued_id(send_data(c, message(f"r{i}") + ".\r\n")))
    c.close()
    for q in qids:
        wait_for(lambda: logged(server, q, "status=deferred"), timeout=5,
                 msg=f"{q} deferred")
    assert sorted(server.queued_ids()) == sorted(qids)
    server.kill9()
    server.start()
    assert sorted(server.queued_ids()) == sorted(qids), \
        "queued messages missing after restart"
    os.unlink(blocker)
    files = server.wait_mail("alice", 3, timeout=15)
    assert sorted(received_qid(f) for f in files) == sorted(qids)
    server.wait_queue_empty()
    assert server.spool_count("queue") == 0


def test_deferred_then_sent(server):
    """A temporary delivery failure logs status=deferred, and the retry
    after the mailbox is fixed logs status=sent."""
    blocker = block_mailbox(server)
    c = server.raw()
    start_tx(c)
    qid = queued_id(send_data(c, message() + ".\r\n"))
    wait_for(lambda: logged(server, qid, "status=deferred"), timeout=5,
             msg="status=deferred")
    assert not logged(server, qid, "status=sent")
    os.unlink(blocker)
    wait_for(lambda: logged(server, qid, "status=sent"), timeout=10,
             msg="status=sent after the retry")
    lines = [l for l in server.log_lines() if f"qid={qid}" in l]
    first_def = next(i for i, l in enumerate(lines) if "status=deferred" in l)
    first_sent = next(i for i, l in enumerate(lines) if "status=sent" in l)
    assert first_def < first_sent
    [data] = server.wait_mail("alice")
    assert received_qid(data) == qid


def test_partial_delivery_not_repeated(server):
    """With two recipients, one deliverable and one blocked, the good one
    is delivered once; after the fix, the other is delivered and the first
    is not delivered again (per-recipient status)."""
    blocker = block_mailbox(server, "bob")
    c = server.raw()
    start_tx(c, rcpts=("alice@example.test", "bob@example.test"))
    qid = queued_id(send_data(c, message() + ".\r\n"))
    server.wait_mail("alice")
    wait_for(lambda: logged(server, qid, "status=deferred"), timeout=5,
             msg="bob deferred")
    time.sleep(2.5)                     # at least one retry happens
    os.unlink(blocker)
    server.wait_mail("bob", timeout=10)
    server.wait_queue_empty()
    assert len(server.maildir_files("alice")) == 1
    assert len(server.maildir_files("bob")) == 1


def test_restart_with_sigterm_keeps_queue(server):
    """A clean stop (SIGTERM) keeps deferred messages; they are delivered
    after the restart."""
    blocker = block_mailbox(server)
    c = server.raw()
    start_tx(c)
    qid = queued_id(send_data(c, message() + ".\r\n"))
    c.cmd("QUIT")
    wait_for(lambda: logged(server, qid, "status=deferred"), timeout=5,
             msg="deferred")
    assert server.stop() == 0
    assert server.queued_ids() == [qid]
    os.unlink(blocker)
    server.start()
    [data] = server.wait_mail("alice", timeout=10)
    assert received_qid(data) == qid


def test_partial_cleaned_after_crash(server):
    """A half-received message (a queue/<qid>.in file) is removed at the next
    start and never delivered."""
    c = server.raw(timeout=30)
    start_tx(c)
    check(c.cmd("DATA"), 354)
    c.send(message(body=("h" * 98 + "\r\n") * 5000))   # ~500 KB, no end
    wait_for(lambda: server.partial_files(), timeout=5,
             msg="a partial file (precondition)")
    server.kill9()
    c.close()
    server.start()
    wait_for(lambda: server.partial_files() == [], timeout=5,
             msg="partial file cleaned")
    time.sleep(1)
    assert server.queued_ids() == []
    assert server.maildir_files("alice") == []


# -- disk full ----------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    d = tmp_path / "spoolfs"
    d.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs",
                        str(d)], capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {p.stderr.decode().strip()}")
    yield str(d)
    r = subprocess.run(["umount", str(d)], capture_output=True)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def fill(directory):
    path = os.path.join(directory, "filler")
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    # leave the file system completely full, also for small writes
    n = 0
    while True:
        try:
            with open(os.path.join(directory, f"f{n}"), "wb", 0) as f:
                f.write(b"x")
            n += 1
            if n > 2000:
                break
        except OSError:
            break
    return path


def test_disk_full(small_tmpfs, make_server):
    """With the spool's file system full, the end of DATA gets 452 4.3.1
    (or 451 4.3.0), the server keeps running, and after space is freed
    the next message is accepted and delivered."""
    srv = make_server({"spool": small_tmpfs + "/spool"})
    fill(small_tmpfs)
    c = srv.raw()
    start_tx(c)
    r = send_data(c, message(body="full disk\r\n" * 50) + ".\r\n")
    assert (r[0], r[1][:5]) in ((452, "4.3.1"), (451, "4.3.0")), r
    check(c.cmd("NOOP"), 250, "2.0.0")
    assert srv.alive()
    for n in os.listdir(small_tmpfs):
        if n != "spool":
            os.unlink(os.path.join(small_tmpfs, n))
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
    qid = queued_id(send_data(c, message(body="space again\r\n") + ".\r\n"))
    [data] = srv.wait_mail("alice")
    assert received_qid(data) == qid
    assert srv.partial_files() == []


def test_disk_full_bdat_big(small_tmpfs, make_server):
    """A message that spills to disk (> 256 KB) on a full spool is refused
    with 452 4.3.1 (or 451 4.3.0), and the session stays usable."""
    srv = make_server({"spool": small_tmpfs + "/spool"})
    fill(small_tmpfs)
    c = srv.raw(timeout=30)
    start_tx(c)
    data = (b"w" * 98 + b"\r\n") * 4000          # 400 KB
    c.send(b"BDAT %d LAST\r\n" % len(data) + data)
    r = c.reply(timeout=30)
    assert (r[0], r[1][:5]) in ((452, "4.3.1"), (451, "4.3.0")), r
    check(c.cmd("NOOP"), 250, "2.0.0")
    assert srv.partial_files() == []
