"""The filter pipeline's delivery stages, with Lua scripts: deliver (once
per attempt, before routing), delivered, deferred and bounced (once per
recipient outcome), their ctx fields, their verdicts and the tags they
read (route / route:<rcpt>, retry_in, dsn_text).

Mail from the local sender alice@example.test is relayed (the loopback
client is trusted here) to Downstreams on 127.0.0.1; bounces to alice land
in her Maildir. Scripts log what they see with log.info(), which the tests
read back from the server log (event=filter-log ... text="...")."""
import os
import re
import subprocess
import time

import pytest

from conftest import SLUICED
from downstream import Downstream
from helpers import submit_message, wait_for

SLUICECTL = os.path.join(os.path.dirname(SLUICED), "sluicectl")
BOB = "bob@remote.test"
CARL = "carl@remote.test"
BAD = "bad@remote.test"
TRY_LATER = "451 4.3.0 try later"
NO_USER = "550 5.1.1 no such user"

# logs every ctx field a delivery stage offers, as k=v words
DUMP = r"""
local function v(x) return x == nil and "nil" or tostring(x) end
function dump(ctx)
  log.info("stage=" .. v(ctx.stage), "qid=" .. v(ctx.qid),
    "sender=" .. v(ctx.sender), "rcpt=" .. v(ctx.rcpt),
    "rcpts=" .. table.concat(ctx.rcpts, ","), "attempts=" .. v(ctx.attempts),
    "result=" .. v(ctx.result), "status=" .. v(ctx.status),
    "remote=" .. v(ctx.remote), "reply=[" .. v(ctx.reply) .. "]",
    "reason=[" .. v(ctx.reason) .. "]", "client=" .. v(ctx.client_addr),
    "helo=" .. v(ctx.helo), "listener=" .. v(ctx.listener),
    "size=" .. v(ctx.size), "sizetype=" .. math.type(ctx.size or 0.5),
    "body=[" .. ctx:body() .. "]", "parts=" .. #ctx:parts(),
    "subject=[" .. v(ctx:header("Subject")) .. "]")
end
"""


# -- helpers -------------------------------------------------------------------

@pytest.fixture
def ds():
    with Downstream(rcpt_replies={BAD: NO_USER}) as d:
        yield d


def start(make_server, tmp_path, d, script, extra=None, entry=None,
          retry_first="1h"):
    """A relaying server whose pipeline is `script` (Lua text; DUMP is
    prepended) with remote.test routed to downstream d."""
    path = tmp_path / "dl.lua"
    path.write_text(DUMP + script)
    cfg = {"trusted_networks": ["127.0.0.0/8"],
           "routes": {"remote.test": f"smtp:[127.0.0.1]:{d.port}"},
           "retry": {"first": retry_first, "max_interval": retry_first},
           "pipeline": [dict({"lua": str(path)}, **(entry or {}))],
           # no reuse of connections: a cached connection timing out just
           # as a retry comes is a separate bug (see the last test)
           "delivery": {"connection_cache": "0"}}
    cfg.update(extra or {})
    return make_server(cfg)


def send(srv, rcpts=(BOB,), sender="alice@example.test",
         subject="delivery stages", mail_params=""):
    data = (f"From: <{sender}>\r\nTo: <{rcpts[0]}>\r\nSubject: {subject}"
            f"\r\n\r\nthe body\r\n.\r\n").encode()
    return submit_message(srv, sender, rcpts, data, mail_params)


def lines(srv, *parts):
    return [l for l in srv.log_lines() if all(p in l for p in parts)]


def wait_log(srv, *parts, n=1, timeout=10):
    wait_for(lambda: len(lines(srv, *parts)) >= n, timeout=timeout,
             msg=f"{n}x {' '.join(parts)} in the log:\n"
                 + srv.log()[-3000:])
    return lines(srv, *parts)


def seen(srv, qid, stage):
    """The dump() records of `stage` for qid: list of {field: value}."""
    out = []
    for l in lines(srv, f"qid={qid} event=filter-log", f"stage={stage} "):
        text = re.search(r'text="(.*)"$', l).group(1)
        rec = dict(re.findall(r'(\w+)=\[(.*?)\](?= \w+=|$)', text))
        for k, val in re.findall(r'(\w+)=([^\[\s]\S*|)(?= |$)', text):
            rec.setdefault(k, val)
        out.append(rec)
    return out


def dsn_report(srv, n=1):
    """alice's n-th bounce: (whole text, the message/delivery-status
    part)."""
    msgs = srv.wait_mail("alice", count=n, timeout=10)
    text = msgs[n - 1].decode("utf-8", "replace")
    m = re.search(r"Content-Type: message/delivery-status.*?\n\n(.*?)\n--",
                  text, re.S)
    assert m, text
    return text, m.group(1)


# -- deliver ---------------------------------------------------------------------

def test_deliver_stage_ctx_fields(make_server, tmp_path, ds):
    """deliver is called once per attempt, before routing, with the
    envelope (qid, sender, every recipient; no single rcpt), the attempt
    number, the original client's facts and the message (read only);
    the result fields are nil there."""
    ds.rcpt_replies = {BOB: [TRY_LATER, None]}
    srv = start(make_server, tmp_path, ds,
                "return {deliver = function(ctx) dump(ctx) end}",
                retry_first="1s")
    qid = send(srv, rcpts=(BOB, CARL))
    wait_log(srv, f"qid={qid} event=removed", timeout=15)
    first, second = seen(srv, qid, "deliver")
    assert first["qid"] == qid and first["sender"] == "alice@example.test"
    assert first["rcpts"] == f"{BOB},{CARL}" and first["rcpt"] == "nil"
    assert (first["attempts"], second["attempts"]) == ("1", "2")
    assert second["rcpts"] == f"{BOB},{CARL}"    # all, delivered ones too
    for k in ("result", "status", "remote", "reply", "reason"):
        assert first[k] == "nil", (k, first)
    assert first["client"] == "127.0.0.1" and first["listener"] == "mx"
    assert first["helo"] == "client.example.test"
    assert first["sizetype"] == "integer" and int(first["size"]) > 100
    assert first["subject"] == "delivery stages"
    assert first["body"] == "the body\\x0d\\x0a" and first["parts"] == "1", first
    assert len(ds.messages) == 2          # carl, then bob on the retry


def test_deliver_reject_fails_every_pending_recipient(make_server, tmp_path,
                                                      ds):
    """reject at deliver: every pending recipient (remote and local) fails
    at once with the verdict's status and text, nothing is sent, one DSN
    to the sender; the DSN itself (null sender) is not rejected here."""
    script = """
return {deliver = function(ctx)
  if ctx.sender ~= "" then
    return reject(550, "5.7.26", "no delivery for " .. #ctx.rcpts)
  end
end}
"""
    srv = start(make_server, tmp_path, ds, script)
    qid = send(srv, rcpts=(BOB, "bob@example.test"))
    wait_log(srv, f"qid={qid} event=removed")
    for r in (BOB, "bob@example.test"):
        [l] = lines(srv, f"qid={qid} event=delivery", f"to=<{r}>")
        assert "relay=filter" in l and "status=bounced" in l, l
        assert "dsn=5.7.26" in l and "no delivery for 2" in l, l
    text, report = dsn_report(srv)
    assert "Status: 5.7.26" in report and "Action: failed" in report
    assert f"Final-Recipient: rfc822; {BOB}" in report, report
    assert "no delivery for 2" in text, text
    assert ds.connections == 0
    assert not srv.maildir_files("bob")
    assert len(lines(srv, "event=dsn kind=failure")) == 1


def test_deliver_reject_everything_never_loops(make_server, tmp_path, ds):
    """A deliver filter rejecting every message rejects the DSN too; a DSN
    is never bounced (null sender): dropped with a log line, no loop."""
    srv = start(make_server, tmp_path, ds,
                "return {deliver = function(ctx) return reject() end}")
    qid = send(srv)
    wait_log(srv, "event=bounce-dropped")
    [dsn] = lines(srv, f"qid={qid} event=dsn kind=failure")
    dsn_qid = re.search(r"dsn_qid=(\S+)", dsn).group(1)
    wait_log(srv, f"qid={dsn_qid} event=removed")
    time.sleep(1.0)
    assert len(lines(srv, "event=dsn ")) == 1
    assert len(lines(srv, "event=delivery")) == 2
    assert "5.7.1" in lines(srv, f"qid={qid} event=delivery")[0]
    assert srv.queued_ids() == [] and not srv.maildir_files("alice")


def test_deliver_tempfail_defers_and_retries(make_server, tmp_path, ds):
    """tempfail at deliver: every pending recipient waits for the next
    retry (nothing is sent); the next attempt goes through."""
    script = """
return {deliver = function(ctx)
  dump(ctx)
  if ctx.attempts == 1 then return tempfail("not now") end
end}
"""
    srv = start(make_server, tmp_path, ds, script, retry_first="1s")
    qid = send(srv, rcpts=(BOB, CARL))
    [l, _] = wait_log(srv, f"qid={qid} event=delivery", "relay=filter",
                      n=2)
    assert "status=deferred" in l and "dsn=4.7.1" in l and "not now" in l
    assert ds.connections == 0 or len(seen(srv, qid, "deliver")) == 2
    wait_log(srv, f"qid={qid} event=deferred attempts=1")
    wait_log(srv, f"qid={qid} event=removed", timeout=15)
    [m] = ds.wait_messages(1)
    assert sorted(m.rcpt_tos) == [BOB, CARL]
    assert len(seen(srv, qid, "deliver")) == 2
    assert not srv.maildir_files("alice")


def test_deliver_discard_drops_silently(make_server, tmp_path, ds):
    """discard at deliver: the recipients count as delivered and nothing
    is sent; no DSN; the message leaves the queue."""
    srv = start(make_server, tmp_path, ds,
                "return {deliver = function(ctx) return discard() end}")
    qid = send(srv, rcpts=(BOB, "alice@example.test"))
    wait_log(srv, f"qid={qid} event=removed")
    for l in lines(srv, f"qid={qid} event=delivery"):
        assert "status=sent" in l and "relay=filter" in l, l
        assert "discarded by filter" in l, l
    assert len(lines(srv, f"qid={qid} event=delivery")) == 2
    time.sleep(0.5)
    assert ds.connections == 0 and not srv.maildir_files("alice")
    assert not lines(srv, "event=dsn")


def test_deliver_quarantine_moves_message(make_server, tmp_path, ds):
    """quarantine at deliver: the message moves to spool/quarantine/<qid>
    and is neither delivered nor bounced."""
    srv = start(make_server, tmp_path, ds,
                "return {deliver = function(ctx) return quarantine() end}")
    qid = send(srv)
    wait_log(srv, f"qid={qid} event=quarantined dir=quarantine")
    assert os.path.exists(os.path.join(srv.spool, "quarantine", qid))
    assert qid not in srv.queued_ids()
    time.sleep(0.5)
    assert ds.connections == 0 and not srv.maildir_files("alice")
    assert not lines(srv, f"qid={qid} event=delivery")


def test_deliver_route_tags(make_server, tmp_path, ds):
    """Transaction tags set at deliver choose the route: route:<rcpt> for
    one recipient (a route, or a transports: name, also for a local
    mailbox), route for all the others; untagged mail follows routes:."""
    with Downstream() as other:
        script = """
return {deliver = function(ctx)
  ctx:tag("route:bob@remote.test", "smtp:[127.0.0.1]:" .. string.format("%d", args.port))
  ctx:tag("route:alice@example.test", "elsewhere")
  if ctx:tag("route:bob@remote.test") == nil then error("tag lost") end
end}
"""
        srv = start(make_server, tmp_path, ds, script,
                    extra={"transports": {
                        "elsewhere": f"smtp:[127.0.0.1]:{other.port}"}},
                    entry={"args": {"port": other.port}})
        qid = send(srv, rcpts=(BOB, CARL, "alice@example.test"),
                   sender="bob@example.test")
        wait_log(srv, f"qid={qid} event=removed")
        got = sorted(r for m in other.wait_messages(1) for r in m.rcpt_tos)
        assert got == sorted([BOB, "alice@example.test"])
        [m] = ds.wait_messages(1)
        assert m.rcpt_tos == [CARL]
        assert not srv.maildir_files("alice")
        # "route" for every recipient without its own tag
        path = tmp_path / "dl.lua"
        path.write_text(DUMP + """
return {deliver = function(ctx) ctx:tag("route", "elsewhere") end}
""")
        srv.restart()
        qid = send(srv, rcpts=(CARL, "alice@example.test"))
        wait_log(srv, f"qid={qid} event=removed")
        assert sorted(other.wait_messages(2)[1].rcpt_tos) == \
            sorted([CARL, "alice@example.test"])
        assert len(ds.messages) == 1


def test_deliver_unusable_route_tag_defers(make_server, tmp_path, ds):
    """A route tag that is neither a route nor a transport name: the
    recipient is deferred (4.3.5) with a reason naming the value, not
    bounced and not sent anywhere."""
    srv = start(make_server, tmp_path, ds, """
return {deliver = function(ctx) ctx:tag("route:" .. ctx.rcpts[1], "nowhere:x") end}
""")
    qid = send(srv)
    [l] = wait_log(srv, f"qid={qid} event=delivery")
    assert "status=deferred" in l and "dsn=4.3.5" in l, l
    assert "nowhere:x" in l and "neither a transport nor a route" in l, l
    wait_log(srv, f"qid={qid} event=deferred")
    assert ds.connections == 0 and qid in srv.queued_ids()


@pytest.mark.parametrize("on_error, delivered", [("tempfail", False),
                                                 ("continue", True)])
def test_deliver_stage_cannot_change_message(make_server, tmp_path, ds,
                                             on_error, delivered):
    """Changing the message is refused at deliver: a filter failure (logged
    with stage=deliver); the entry's on_error decides (tempfail: deferred,
    continue: delivered)."""
    srv = start(make_server, tmp_path, ds, """
return {deliver = function(ctx) ctx:add_header("X-Late", "no") end}
""", entry={"on_error": on_error})
    qid = send(srv)
    [err] = wait_log(srv, f"qid={qid}", "event=filter-error",
                     "stage=deliver")
    assert "message stage" in err, err
    if delivered:
        [m] = ds.wait_messages(1)
        assert b"X-Late" not in m.data
        wait_log(srv, f"qid={qid} event=removed")
    else:
        wait_log(srv, f"qid={qid} event=deferred")
        assert ds.connections == 0


# -- delivered, deferred, bounced ---------------------------------------------

RESULTS = """
return {
  delivered = function(ctx) dump(ctx); return reject() end,
  deferred = function(ctx) dump(ctx) end,
  bounced = function(ctx) dump(ctx) end,
}
"""


def test_result_stages_once_per_recipient_with_fields(make_server, tmp_path,
                                                      ds):
    """Each recipient's outcome calls its stage once, with rcpt, result,
    status, reason, remote, reply and attempts; a verdict at delivered is
    ignored (a reject there changes nothing)."""
    ds.rcpt_replies = {BOB: TRY_LATER, BAD: NO_USER}
    srv = start(make_server, tmp_path, ds, RESULTS)
    qid = send(srv, rcpts=(BOB, CARL, BAD))
    wait_log(srv, f"qid={qid} event=deferred")
    [ok] = seen(srv, qid, "delivered")
    [later] = seen(srv, qid, "deferred")
    [fail] = seen(srv, qid, "bounced")
    assert ok["rcpt"] == CARL and ok["result"] == "delivered"
    assert ok["status"] == "2.0.0" and ok["reply"].startswith("250 2.0.0")
    assert later["rcpt"] == BOB and later["result"] == "deferred"
    assert later["status"] == "4.3.0" and later["reply"] == TRY_LATER
    assert fail["rcpt"] == BAD and fail["result"] == "bounced"
    assert fail["status"] == "5.1.1" and fail["reply"] == NO_USER
    for rec in (ok, later, fail):
        assert rec["remote"] == "127.0.0.1", rec
        assert rec["attempts"] == "1" and rec["qid"] == qid, rec
        assert rec["reason"].startswith(rec["status"] + " "), rec
        assert rec["rcpts"] == f"{BOB},{CARL},{BAD}", rec
        assert rec["subject"] == "delivery stages", rec
    assert "said: 451 4.3.0 try later" in later["reason"]
    [m] = ds.wait_messages(1)
    assert m.rcpt_tos == [CARL]                # reject at delivered: no-op
    text, report = dsn_report(srv)
    assert f"Final-Recipient: rfc822; {BAD}" in report
    assert CARL not in report and BOB not in report


def test_result_stages_for_local_delivery(make_server, tmp_path, ds):
    """Local (Maildir) deliveries go through delivered too: remote and
    reply are nil, the reason names the maildir file."""
    srv = start(make_server, tmp_path, ds, RESULTS)
    qid = send(srv, rcpts=("bob@example.test",))
    wait_log(srv, f"qid={qid} event=removed")
    [ok] = seen(srv, qid, "delivered")
    assert ok["rcpt"] == "bob@example.test" and ok["status"] == "2.0.0"
    assert ok["remote"] == "nil" and ok["reply"] == "nil"
    assert "maildir" in ok["reason"], ok
    assert len(srv.maildir_files("bob")) == 1


def test_deferred_retry_in_brings_the_next_attempt_forward(make_server,
                                                            tmp_path, ds):
    """Tag retry_in (seconds) at deferred sets the next attempt: 1 s
    although retry.first is 1 h."""
    ds.rcpt_replies = {BOB: [TRY_LATER, None]}
    srv = start(make_server, tmp_path, ds, """
return {deferred = function(ctx) dump(ctx); ctx:tag("retry_in", "1") end}
""")
    qid = send(srv)
    [d] = wait_log(srv, f"qid={qid} event=deferred attempts=1")
    assert re.search(r"next_in=[01]s", d), d
    wait_log(srv, f"qid={qid} event=removed", timeout=8)
    [m] = ds.wait_messages(1)
    assert m.rcpt_tos == [BOB]


@pytest.mark.parametrize("value, next_in", [("3600", 3600), ("abc", 2),
                                            ("0", 2), ("-5", 2)])
def test_deferred_retry_in_later_or_invalid(make_server, tmp_path, ds,
                                            value, next_in):
    """retry_in can also push the next attempt back (retry.first 2 s here,
    retry_in 3600: no retry soon); a value that is not a positive number
    of seconds is ignored."""
    ds.rcpt_replies = {BOB: [TRY_LATER, None]}
    srv = start(make_server, tmp_path, ds, f"""
return {{deferred = function(ctx) ctx:tag("retry_in", "{value}") end}}
""", retry_first="2s")
    qid = send(srv)
    [d] = wait_log(srv, f"qid={qid} event=deferred attempts=1")
    got = int(re.search(r"next_in=(\d+)s", d).group(1))
    assert next_in - 1 <= got <= next_in, d
    if next_in > 100:
        time.sleep(3.0)
        assert not ds.messages and rcpt_count(ds) == 1
    else:
        ds.wait_messages(1, timeout=10)


def rcpt_count(d):
    return sum(1 for _, v, _ in d.commands() if v == "RCPT")


def test_deferred_reject_bounces_now(make_server, tmp_path, ds):
    """reject at deferred: the recipient fails now instead of waiting
    (the bounced stage follows for it), one DSN to the sender naming the
    filter's text; the remote server's identity is kept in the DSN."""
    ds.rcpt_replies = {BOB: TRY_LATER}
    srv = start(make_server, tmp_path, ds, """
return {
  deferred = function(ctx) return reject(550, "5.4.7", "gave up early") end,
  bounced = function(ctx) dump(ctx) end,
}""")
    qid = send(srv, rcpts=(BOB, CARL))
    wait_log(srv, f"qid={qid} event=removed")
    [b] = seen(srv, qid, "bounced")
    assert b["rcpt"] == BOB and b["result"] == "bounced", b
    assert b["status"] == "5.4.7" and "gave up early" in b["reason"], b
    text, report = dsn_report(srv)
    assert f"Final-Recipient: rfc822; {BOB}" in report
    assert "Status: 5.4.7" in report and CARL not in report
    assert "gave up early" in text
    assert re.findall(r"^Remote-MTA:.*$", report, re.M) == \
        ["Remote-MTA: dns; 127.0.0.1"], report
    assert rcpt_count(ds) == 2 and len(ds.messages) == 1   # carl only


def test_bounced_dsn_text_replaces_the_explanation(make_server, tmp_path,
                                                   ds):
    """Tag dsn_text at bounced: the DSN gives that text for the recipient
    (the status stays the remote's 5.1.1, the Remote-MTA stays right);
    the other failed recipient keeps the remote's reply."""
    srv = start(make_server, tmp_path, ds, """
return {bounced = function(ctx)
  dump(ctx)
  if ctx.rcpt == "bad@remote.test" then
    ctx:tag("dsn_text", "this mailbox was retired, write to help@remote.test")
  end
end}""")
    ds.rcpt_replies = {BAD: NO_USER, "worse@remote.test": "550 5.2.1 disabled"}
    qid = send(srv, rcpts=(BAD, "worse@remote.test"))
    wait_log(srv, f"qid={qid} event=removed")
    assert len(seen(srv, qid, "bounced")) == 2
    text, report = dsn_report(srv)
    assert "this mailbox was retired, write to help@remote.test" in text
    blocks = report.split("\n\n")
    [bad] = [b for b in blocks if f"rfc822; {BAD}" in b]
    [worse] = [b for b in blocks if "rfc822; worse@remote.test" in b]
    assert "Status: 5.1.1" in bad, bad
    assert "retired" in bad and "no such user" not in bad, bad
    assert "550 5.2.1 disabled" in worse and "retired" not in worse, worse
    for block in (worse, bad):
        assert "Remote-MTA: dns; 127.0.0.1" in block, block


def test_bounced_discard_suppresses_the_dsn(make_server, tmp_path, ds):
    """discard at bounced: no DSN for that recipient (logged as
    bounce-suppressed); another failed recipient still gets its DSN;
    with all discarded, no DSN at all."""
    srv = start(make_server, tmp_path, ds, """
return {bounced = function(ctx)
  if ctx.rcpt ~= "worse@remote.test" then return discard() end
end}""")
    ds.rcpt_replies = {BAD: NO_USER, "worse@remote.test": "550 5.2.1 disabled"}
    qid = send(srv, rcpts=(BAD, "worse@remote.test"))
    wait_log(srv, f"qid={qid} event=removed")
    assert lines(srv, f"qid={qid} event=bounce-suppressed", f"to={BAD}",
                 "by=filter")
    text, report = dsn_report(srv)
    assert "worse@remote.test" in report and BAD not in report, report
    qid2 = send(srv, rcpts=(BAD,))
    wait_log(srv, f"qid={qid2} event=removed")
    time.sleep(0.5)
    assert len(srv.maildir_files("alice")) == 1
    assert not lines(srv, f"qid={qid2} event=dsn")


def test_deferred_stage_error_keeps_normal_retry(make_server, tmp_path, ds):
    """A failing deferred-stage filter (on_error tempfail) changes nothing:
    the recipient stays deferred with the normal schedule."""
    ds.rcpt_replies = {BOB: TRY_LATER}
    srv = start(make_server, tmp_path, ds, """
return {deferred = function(ctx) error("boom") end}""", retry_first="1h")
    qid = send(srv)
    [d] = wait_log(srv, f"qid={qid} event=deferred attempts=1")
    assert "next_in=3600s" in d or "next_in=3599s" in d, d
    assert lines(srv, f"qid={qid}", "event=filter-error", "stage=deferred")
    assert qid in srv.queued_ids() and not srv.maildir_files("alice")


# -- with the operator ----------------------------------------------------------

def test_operator_bounce_beats_deliver_tempfail(make_server, tmp_path, ds):
    """sluicectl bounce ID fails the message now even when a deliver filter
    keeps saying tempfail: the operator's decision is final."""
    srv = start(make_server, tmp_path, ds, """
return {deliver = function(ctx)
  if ctx.sender ~= "" then return tempfail("hold on") end
end}""")
    qid = send(srv)
    wait_log(srv, f"qid={qid} event=deferred attempts=1")
    r = subprocess.run([SLUICECTL, "bounce", qid, "-s",
                        os.path.join(srv.spool, "control")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r
    wait_log(srv, f"qid={qid} event=delivery", "status=bounced", timeout=6)
    text, report = dsn_report(srv)
    assert f"rfc822; {BOB}" in report
    wait_log(srv, f"qid={qid} event=removed")


def test_retry_in_matching_connection_cache(make_server, tmp_path, ds):
    """A retry that comes just as the cached connection to the same
    next hop times out (retry_in = connection_cache = 2 s; the downstream
    is slow to answer QUIT) must use a fresh connection, not the one being
    closed: the retry delivers."""
    ds.rcpt_replies = {BOB: [TRY_LATER, None]}
    ds.slow = {"QUIT": 1.5}
    srv = start(make_server, tmp_path, ds, """
return {deferred = function(ctx) ctx:tag("retry_in", "2") end}""",
                extra={"delivery": {"connection_cache": "2s"}})
    qid = send(srv)
    wait_log(srv, f"qid={qid} event=deferred attempts=1")
    [l] = wait_log(srv, f"qid={qid} event=delivery", n=2, timeout=10)[1:]
    assert "status=sent" in l, (l, ds.commands())
    wait_log(srv, f"qid={qid} event=removed")
