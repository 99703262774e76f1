"""sluiced as a milter client: the events a real libmilter filter
(python3-milter, milters/scripted_milter.py) receives, in order and with
their arguments and macros, and every decision reply acted on at every
stage. Modifications are in test_milter_client_mods.py, failures in
test_milter_client_faults.py."""
import os

import pytest

import helpers


def milter_server(make_server, *ms, **entry):
    pipe = []
    for i, m in enumerate(ms):
        e = {"milter": m.spec, "name": f"m{i}"}
        e.update(entry)
        pipe.append(e)
    return make_server({"pipeline": pipe})


def msg(subject="hello", body="line one\r\nline two\r\n", extra=""):
    return (f"From: Sender <sender@remote.test>\r\n"
            f"To: alice@example.test\r\nSubject: {subject}\r\n{extra}"
            f"\r\n{body}")


def last_conn(m):
    """The MTA connection of the test (the server's readiness probe made
    one before it, which the milter also saw)."""
    return max(e["conn"] for e in m.events())


def seq(m):
    return m.sequence(conn=last_conn(m))


def evs(m, ev=None):
    return m.events(ev, conn=last_conn(m))


def send(srv, rcpts=("alice@example.test",), data=None, sender=
         "sender@remote.test", mail_options=(), rcpt_options=()):
    with srv.smtp() as c:
        c.ehlo("client.example.test")
        code, text = c.mail(sender, list(mail_options))
        assert code == 250, (code, text)
        for r in rcpts:
            c.rcpt(r, list(rcpt_options))
        return c.data((data or msg()).encode())


# -- what the filter receives -------------------------------------------

def test_event_order_and_arguments(make_server, milters):
    m = milters.scripted({})
    srv = milter_server(make_server, m)
    qid = helpers.queued_id(send(
        srv, rcpts=("alice@example.test", "bob@example.test"),
        mail_options=("BODY=8BITMIME", "SIZE=100"),
        rcpt_options=("NOTIFY=SUCCESS,FAILURE",
                      "ORCPT=rfc822;alice@example.test")))
    m.wait_event("close", count=2)
    assert seq(m) == ["connect", "helo", "mail", "rcpt", "rcpt",
                            "data", "header", "header", "header", "eoh",
                            "body", "eom", "close"]
    ev = {e["ev"]: e for e in evs(m)}
    assert ev["connect"]["args"]["addr"] == "127.0.0.1"
    # the client's name: /etc/hosts first (dns.hosts_file)
    assert ev["connect"]["args"]["hostname"] == \
        (helpers.hosts_name() or "[127.0.0.1]")
    assert ev["helo"]["args"]["name"] == "client.example.test"
    assert ev["mail"]["args"]["addr"] == "<sender@remote.test>"
    assert sorted(ev["mail"]["args"]["params"]) == ["BODY=8BITMIME",
                                                     "SIZE=100"]
    rc = evs(m, "rcpt")
    assert [r["args"]["addr"] for r in rc] == ["<alice@example.test>",
                                               "<bob@example.test>"]
    assert rc[0]["args"]["params"] == ["NOTIFY=SUCCESS,FAILURE",
                                       "ORCPT=rfc822;alice@example.test"]
    # our own Received: is hidden, values lose one leading space
    assert m.headers_seen(conn=last_conn(m)) == [("From", "Sender <sender@remote.test>"),
                                ("To", "alice@example.test"),
                                ("Subject", "hello")]
    assert ev["body"]["args"]["data"] == "line one\r\nline two\r\n"
    # the message itself is unchanged by a milter that changes nothing
    data = srv.wait_mail("alice")[0]
    assert data.endswith(b"Subject: hello\n\nline one\nline two\n")
    assert qid in data.decode()


def test_macros_by_stage(make_server, milters):
    m = milters.scripted({})
    srv = milter_server(make_server, m)
    qid = helpers.queued_id(send(srv))
    m.wait_event("close", count=2)
    ev = {e["ev"]: e["macros"] for e in evs(m) if "macros" in e}
    c = ev["connect"]
    assert c["j"] == "mx.example.test"
    assert c["{daemon_name}"] == "mx"
    assert c["{daemon_addr}"] == "127.0.0.1"
    assert c["{client_addr}"] == "127.0.0.1"
    assert c["_"] == f"{helpers.hosts_name() or 'unknown'} [127.0.0.1]"
    assert c["v"].startswith("sluice")
    assert c["i"] is None                    # no queue ID before MAIL
    assert ev["mail"]["i"] == qid
    assert ev["mail"]["{mail_addr}"] == "sender@remote.test"
    assert ev["rcpt"]["{rcpt_addr}"] == "alice@example.test"
    assert ev["rcpt"]["{rcpt_mailer}"] == "local"
    assert ev["eom"]["i"] == qid
    assert ev["mail"]["{auth_authen}"] is None   # no AUTH: not sent


def test_configured_macros_replace_the_defaults(make_server, milters):
    m = milters.scripted({})
    srv = milter_server(make_server, m,
                        macros={"connect": "j {client_port}", "mail": ""})
    helpers.queued_id(send(srv))
    m.wait_event("close", count=2)
    c = evs(m, "connect")[0]["macros"]
    assert c["j"] == "mx.example.test"
    assert c["{client_port}"].isdigit()
    assert c["{daemon_name}"] is None
    assert evs(m, "mail")[0]["macros"]["{mail_addr}"] is None


def test_filter_asks_for_its_own_macros(make_server, milters):
    m = milters.scripted({"symlist": {"connect": "{daemon_port}",
                                      "rcpt": "{rcpt_host}"},
                          "macros": ["j", "{daemon_port}", "{rcpt_host}",
                                     "{rcpt_addr}"]})
    srv = milter_server(make_server, m)
    helpers.queued_id(send(srv))
    m.wait_event("close", count=2)
    c = evs(m, "connect")[0]["macros"]
    assert c["{daemon_port}"] == str(srv.port)
    assert c["j"] is None                     # its list replaced ours
    r = evs(m, "rcpt")[0]["macros"]
    assert r["{rcpt_host}"] == "example.test"
    assert r["{rcpt_addr}"] is None


def test_header_values_exact_with_leadspc(make_server, milters):
    m = milters.scripted({"protocol": ["HDR_LEADSPC"]})
    srv = milter_server(make_server, m)
    extra = "X-Folded: first\r\n\tsecond\r\nX-Two:  two spaces\r\nX-Tab:\tt\r\n"
    helpers.queued_id(send(srv, data=msg(extra=extra)))
    m.wait_event("close", count=2)
    seen = dict(m.headers_seen(conn=last_conn(m)))
    assert seen["Subject"] == " hello"
    assert seen["X-Folded"] == " first\n\tsecond"  # folds as LF + blank
    assert seen["X-Two"] == "  two spaces"
    assert seen["X-Tab"] == "\tt"


def test_header_values_without_leadspc(make_server, milters):
    m = milters.scripted({})
    srv = milter_server(make_server, m)
    extra = "X-Folded: first\r\n\tsecond\r\nX-Two:  two spaces\r\nX-Tab:\tt\r\n"
    helpers.queued_id(send(srv, data=msg(extra=extra)))
    m.wait_event("close", count=2)
    seen = dict(m.headers_seen(conn=last_conn(m)))
    assert seen["X-Folded"] == "first\n\tsecond"
    assert seen["X-Two"] == " two spaces"       # exactly one space eaten
    assert seen["X-Tab"] == "\tt"               # a tab is not


def test_body_in_chunks_of_at_most_65535(make_server, milters):
    m = milters.scripted({"log_body": False})
    srv = milter_server(make_server, m)
    body = ("x" * 98 + "\r\n") * 1500            # 150000 bytes
    helpers.queued_id(send(srv, data=msg(body=body)))
    m.wait_event("close", count=2)
    sizes = [e["args"]["len"] for e in evs(m, "body")]
    assert sizes == [65535, 65535, 150000 - 2 * 65535]


def test_skip_ends_the_body_early(make_server, milters):
    m = milters.scripted({"log_body": False, "protocol": ["SKIP"],
                          "callbacks": {"body": {"action": "skip"}}})
    srv = milter_server(make_server, m)
    body = ("y" * 98 + "\r\n") * 1500
    helpers.queued_id(send(srv, data=msg(body=body)))
    m.wait_event("close", count=2)
    assert len(evs(m, "body")) == 1
    assert seq(m)[-2:] == ["eom", "close"]
    assert srv.wait_mail("alice")[0].endswith(b"y" * 98 + b"\n")


def test_no_reply_steps_are_not_waited_for(make_server, milters):
    nr = ["NR_CONN", "NR_HELO", "NR_MAIL", "NR_RCPT", "NR_DATA", "NR_HDR",
          "NR_EOH", "NR_BODY"]
    m = milters.scripted({"protocol": nr, "callbacks": {
        cb: {"action": "noreply"} for cb in
        ("connect", "hello", "envfrom", "envrcpt", "data", "header", "eoh",
         "body")}})
    srv = milter_server(make_server, m)
    helpers.queued_id(send(srv))
    m.wait_event("close", count=2)
    assert seq(m) == ["connect", "helo", "mail", "rcpt", "data",
                            "header", "header", "header", "eoh", "body",
                            "eom", "close"]
    srv.wait_mail("alice")


def test_steps_the_filter_does_not_want_are_not_sent(make_server, milters):
    m = milters.scripted({"protocol": ["NOHELO", "NODATA", "NOHDRS",
                                       "NOBODY"]})
    srv = milter_server(make_server, m)
    helpers.queued_id(send(srv))
    m.wait_event("close", count=2)
    assert seq(m) == ["connect", "mail", "rcpt", "eoh", "eom", "close"]


def test_protocol_version_2(make_server, milters):
    m = milters.scripted({})
    srv = milter_server(make_server, m, protocol=2)
    helpers.queued_id(send(srv))
    m.wait_event("close", count=2)
    assert "data" not in seq(m)           # no DATA event in v2
    assert seq(m)[-3:] == ["body", "eom", "close"]


def test_abort_after_rset_and_two_transactions(make_server, milters):
    m = milters.scripted({})
    srv = milter_server(make_server, m)
    with srv.smtp() as c:
        c.ehlo("client.example.test")
        c.mail("one@remote.test")
        c.rcpt("alice@example.test")
        c.rset()
        c.mail("two@remote.test")
        c.rcpt("bob@example.test")
        helpers.queued_id(c.data(msg().encode()))
    m.wait_event("close", count=2)
    order = seq(m)
    assert order[:5] == ["connect", "helo", "mail", "rcpt", "abort"]
    assert [e["args"]["addr"] for e in evs(m, "mail")] == [
        "<one@remote.test>", "<two@remote.test>"]
    srv.wait_mail("bob")


# -- decisions ----------------------------------------------------------

def test_rcpt_reject_with_custom_text_concerns_one_recipient(
        make_server, milters):
    m = milters.scripted({"callbacks": {"envrcpt": [
        {"match": "bob@", "reply": {"code": "550", "xcode": "5.7.1",
                                     "text": "bob is not here today"}}]}})
    srv = milter_server(make_server, m)
    with srv.smtp() as c:
        c.ehlo("client.example.test")
        c.mail("sender@remote.test")
        helpers.check(c.rcpt("bob@example.test"), 550, "5.7.1",
                      "bob is not here today")
        helpers.check(c.rcpt("alice@example.test"), 250)
        helpers.queued_id(c.data(msg().encode()))
    srv.wait_mail("alice")
    assert srv.read_mail("bob") == []


def test_multiline_reply(make_server, milters):
    m = milters.scripted({"callbacks": {"envfrom": {"reply": {
        "code": "550", "xcode": "5.7.0",
        "text": ["first line", "second line", "100%% sure"]}}}})
    srv = milter_server(make_server, m)
    c = srv.raw()
    helpers.ehlo(c)
    c.send(b"MAIL FROM:<sender@remote.test>\r\n")
    lines = [c.readline() for _ in range(3)]
    assert lines == ["550-5.7.0 first line", "550-5.7.0 second line",
                     "550 5.7.0 100% sure"]
    helpers.check(c.cmd("NOOP"), 250)
    c.close()


@pytest.mark.parametrize("cb,at", [("envfrom", "mail"), ("data", "data"),
                                   ("eoh", "data-end"), ("eom", "data-end")])
def test_tempfail_at_each_step(make_server, milters, cb, at):
    m = milters.scripted({"callbacks": {cb: {"action": "tempfail"}}})
    srv = milter_server(make_server, m)
    with srv.smtp() as c:
        c.ehlo("client.example.test")
        r = c.mail("sender@remote.test")
        if at == "mail":
            assert r[0] // 100 == 4, r
            return
        c.rcpt("alice@example.test")
        if at == "data":
            assert c.docmd("DATA")[0] // 100 == 4
            return
        assert c.data(msg().encode())[0] // 100 == 4
    assert srv.read_mail("alice") == []


def test_reject_at_eom_default_text(make_server, milters):
    m = milters.scripted({"callbacks": {"eom": {"action": "reject"}}})
    srv = milter_server(make_server, m)
    with srv.smtp() as c:
        c.ehlo("client.example.test")
        c.mail("sender@remote.test")
        c.rcpt("alice@example.test")
        assert c.data(msg().encode())[0] == 554
        # the session goes on, and the milter sees the next message
        c.rset()
        c.mail("sender@remote.test")
    m.wait_event("mail", count=2)


def test_discard_at_rcpt_drops_the_message(make_server, milters):
    m = milters.scripted({"callbacks": {"envrcpt": {"action": "discard"}}})
    srv = milter_server(make_server, m)
    qid = helpers.queued_id(send(srv))
    helpers.wait_for(lambda: f"qid={qid} session" in srv.log() and
                     "event=discarded" in srv.log(), timeout=5)
    assert qid not in srv.queued_ids()
    assert srv.read_mail("alice") == []


def test_accept_at_connect_ends_the_conversation(make_server, milters):
    m = milters.scripted({"callbacks": {"connect": {"action": "accept"}}})
    srv = milter_server(make_server, m)
    helpers.queued_id(send(srv))
    srv.wait_mail("alice")
    assert seq(m) in (["connect"], ["connect", "close"])


def test_accept_at_mail_skips_the_rest_of_the_message(make_server, milters):
    m = milters.scripted({"callbacks": {"envfrom": [
        {"msg": 1, "action": "accept"}]}})
    srv = milter_server(make_server, m)
    with srv.smtp() as c:
        c.ehlo("client.example.test")
        for _ in range(2):
            c.mail("sender@remote.test")
            c.rcpt("alice@example.test")
            helpers.queued_id(c.data(msg().encode()))
    srv.wait_mail("alice", count=2)
    m.wait_event("close", count=2)
    order = seq(m)
    # first message: accepted at MAIL, nothing more; second: all of it
    assert order[:4] == ["connect", "helo", "mail", "mail"]
    assert "eom" in order


def test_milter_accept_lets_later_filters_run(make_server, milters):
    a = milters.scripted({"callbacks": {"eom": {"action": "accept"}}},
                         name="first")
    b = milters.scripted({"callbacks": {"eom": {"action": "reject"}}},
                         name="second")
    srv = milter_server(make_server, a, b)
    with srv.smtp() as c:
        c.ehlo("client.example.test")
        c.mail("sender@remote.test")
        c.rcpt("alice@example.test")
        assert c.data(msg().encode())[0] == 554
    assert "filter=m1" in srv.log()


def test_reject_at_connect(make_server, milters):
    m = milters.scripted({"callbacks": {"connect": {"reply": {
        "code": "554", "xcode": "5.7.1", "text": "go away"}}}})
    srv = milter_server(make_server, m)
    c = srv.raw(greet=False)
    code, text = c.reply()
    assert code == 554 and "go away" in text, (code, text)
    c.close()


def test_reject_at_helo_holds_for_the_session(make_server, milters):
    m = milters.scripted({"callbacks": {"hello": {"action": "reject"}}})
    srv = milter_server(make_server, m)
    c = srv.raw()
    code, _ = c.cmd("EHLO client.example.test")
    assert code // 100 == 5
    code, _ = c.cmd("HELO again.example.test")   # no way around it
    assert code == 250
    code, _ = c.cmd("MAIL FROM:<sender@remote.test>")
    assert code // 100 == 5, code
    c.close()


def test_quarantine_at_eom(make_server, milters):
    m = milters.scripted({"callbacks": {"eom": {
        "mods": [{"op": "quarantine", "reason": "looks odd"}],
        "action": "continue"}}})
    srv = milter_server(make_server, m)
    qid = helpers.queued_id(send(srv))
    helpers.wait_for(lambda: qid in srv.spool_files("quarantine"),
                     timeout=5)
    assert 'reason="looks odd"' in srv.log() or "reason=looks" in srv.log()
    assert srv.read_mail("alice") == []


def test_421_reply_code_closes_the_session(make_server, milters):
    m = milters.scripted({"callbacks": {"envfrom": {"reply": {
        "code": "421", "xcode": "4.7.0", "text": "closing now"}}}})
    srv = milter_server(make_server, m)
    c = srv.raw()
    helpers.ehlo(c)
    code, text = c.cmd("MAIL FROM:<sender@remote.test>")
    assert code == 421 and "closing now" in text
    assert c.closed(timeout=3)


def test_milters_get_events_in_pipeline_order(make_server, milters):
    a = milters.scripted({}, name="a")
    b = milters.scripted({"callbacks": {"envrcpt": {"action": "reject"}}},
                         name="b")
    srv = milter_server(make_server, a, b)
    with srv.smtp() as c:
        c.ehlo("client.example.test")
        c.mail("sender@remote.test")
        assert c.rcpt("alice@example.test")[0] == 550
    a.wait_event("close", count=2)
    b.wait_event("close", count=2)
    ta = a.events("rcpt")[0]["t"]
    tb = b.events("rcpt")[0]["t"]
    assert ta <= tb
    assert os.path.exists(srv.maildir("alice")) is False or \
        srv.read_mail("alice") == []


def test_replay_runs_milters_too(make_server, milters, tmp_path):
    """sluicectl replay drives the configured milters like a session."""
    import subprocess
    from conftest import SLUICED
    m = milters.scripted({"callbacks": {"eom": {"mods": [
        {"op": "addheader", "name": "X-Replayed", "value": "yes"}]}}})
    srv = milter_server(make_server, m)
    eml = tmp_path / "t.eml"
    eml.write_bytes(msg().encode())
    ctl = os.path.join(os.path.dirname(SLUICED), "sluicectl")
    r = subprocess.run([ctl, "-c", srv.cfg_path, "replay", "--to",
                        "alice@example.test", "--from", "s@remote.test",
                        str(eml)], capture_output=True, timeout=20)
    out = r.stdout.decode()
    assert r.returncode == 0, (out, r.stderr)
    assert "X-Replayed: yes" in out
    assert "message    m0" in out


def test_bdat_message_goes_through_the_milter(make_server, milters):
    """CHUNKING: the DATA event comes at the first BDAT, the content once
    the LAST chunk is in, and the milter's change is delivered."""
    m = milters.scripted({"callbacks": {"eom": {"mods": [
        {"op": "addheader", "name": "X-Bdat", "value": "seen"}]}}})
    srv = milter_server(make_server, m)
    c = srv.raw()
    helpers.start_tx(c)
    body = msg().encode()
    half = len(body) // 2
    c.send(b"BDAT %d\r\n" % half + body[:half])
    helpers.check(c.reply(), 250)
    c.send(b"BDAT %d LAST\r\n" % (len(body) - half) + body[half:])
    helpers.queued_id(c.reply())
    c.close()
    data = srv.wait_mail("alice")[0]
    assert b"X-Bdat: seen" in data
    m.wait_event("close", count=2)
    order = seq(m)
    assert order.index("data") < order.index("header") < order.index("eom")
