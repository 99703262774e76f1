"""End-of-message modifications asked by a real libmilter filter
(milters/scripted_milter.py) and what sluiced delivers: add, insert,
change and delete header fields with the milter index rules, body
replacement, recipients added (also with ESMTP arguments) and deleted,
sender changed; changes dropped when the final answer refuses the
message; a modification the filter did not negotiate."""
import helpers
from test_milter_client import milter_server, msg, send


def eom(mods, action="continue", **scen):
    scen.setdefault("callbacks", {})["eom"] = {"mods": mods,
                                               "action": action}
    return scen


def delivered(srv, user="alice"):
    return srv.wait_mail(user)[0]


def headers(data):
    return helpers.split_headers(data)[0]


def test_add_insert_change_delete(make_server, milters):
    m = milters.scripted(eom([
        {"op": "addheader", "name": "X-Added", "value": "at the end"},
        {"op": "insheader", "idx": 1, "name": "X-Second",
         "value": "below our Received"},
        {"op": "insheader", "idx": 0, "name": "X-Top", "value": "above all"},
        {"op": "chgheader", "name": "X-Twice", "idx": 2, "value": "two!"},
        {"op": "chgheader", "name": "X-Gone", "idx": 1, "value": ""},
        {"op": "chgheader", "name": "Subject", "idx": 0, "value": "new"},
        {"op": "chgheader", "name": "X-Missing", "idx": 3, "value": "made"},
    ]))
    srv = milter_server(make_server, m)
    helpers.queued_id(send(srv, data=msg(
        extra="X-Twice: one\r\nX-Twice: two\r\nX-Gone: bye\r\n")))
    h = headers(delivered(srv))
    assert h[0].startswith("Return-Path:") and h[1].startswith("Delivered-To")
    assert h[2] == "X-Top: above all"              # index 0: above ours
    assert h[3].startswith("Received: from client.example.test")
    assert h[4] == "X-Second: below our Received"
    assert "X-Twice: one" in h and "X-Twice: two!" in h
    assert not any(x.startswith("X-Gone") for x in h)
    assert "Subject: new" in h                     # index 0 counts as 1
    assert h[-2:] == ["X-Added: at the end", "X-Missing: made"]


def test_change_counts_only_fields_the_filter_saw(make_server, milters):
    # our own Received: is hidden, so Received #1 is the client's
    m = milters.scripted(eom([{"op": "chgheader", "name": "Received",
                               "idx": 1, "value": "changed"}]))
    srv = milter_server(make_server, m)
    helpers.queued_id(send(srv, data=msg(
        extra="Received: from earlier.example by relay\r\n")))
    h = headers(delivered(srv))
    rec = [x for x in h if x.startswith("Received:")]
    assert rec[0].startswith("Received: from client.example.test")
    assert rec[1] == "Received: changed"


def test_leadspc_header_text_kept_exactly(make_server, milters):
    m = milters.scripted(eom([
        {"op": "addheader", "name": "X-Exact", "value": "  two\n\tfolded"},
        {"op": "addheader", "name": "X-Tight", "value": "nospace"}],
        protocol=["HDR_LEADSPC"]))
    srv = milter_server(make_server, m)
    helpers.queued_id(send(srv))
    data = delivered(srv)
    assert b"\nX-Exact:  two\n\tfolded\n" in data
    assert b"\nX-Tight:nospace\n" in data


def test_replace_body_in_chunks_split_inside_crlf(make_server, milters):
    m = milters.scripted(eom([{"op": "replacebody", "chunks": [
        "new first line\r", "\nsecond", " line\r\nthird\nfourth\r\n"]}]))
    srv = milter_server(make_server, m)
    helpers.queued_id(send(srv))
    data = delivered(srv)
    assert data.endswith(b"\n\nnew first line\nsecond line\nthird\n"
                         b"fourth\n")
    # stored with CRLF everywhere, as SMTP wants it
    qdata = srv.read_mail("alice")[0]
    assert b"\r" not in qdata                      # Maildir: LF lines


def test_envelope_changes(make_server, milters):
    m = milters.scripted(eom([
        {"op": "addrcpt", "addr": "<bob@example.test>"},
        {"op": "delrcpt", "addr": "<alice@example.test>"},
        {"op": "chgfrom", "addr": "<new-sender@remote.test>"},
    ]))
    srv = milter_server(make_server, m)
    helpers.queued_id(send(srv))
    data = delivered(srv, "bob")
    assert headers(data)[0] == "Return-Path: <new-sender@remote.test>"
    assert headers(data)[1] == "Delivered-To: bob@example.test"
    srv.wait_queue_empty()
    assert srv.read_mail("alice") == []


def test_add_recipient_with_esmtp_args(make_server, milters):
    m = milters.scripted(eom([
        {"op": "addrcpt_par", "addr": "<bob@example.test>",
         "args": "NOTIFY=NEVER ORCPT=rfc822;bob+2Borig@example.test"},
        {"op": "chgfrom", "addr": "<>", "args": "RET=HDRS"}]))
    # a next hop that refuses: the message stays queued to be looked at
    srv = make_server({"pipeline": [{"milter": m.spec, "name": "t"}],
                       "routes": {"example.test": "smtp:[127.0.0.1]:1"}})
    qid = helpers.queued_id(send(srv))
    recs = helpers.envelope_records(srv.queue_file(qid))
    assert ["bob@example.test", "1", "rfc822;bob+2Borig@example.test"] \
        in recs["rcpt"], recs["rcpt"]
    assert recs["ret"] == [["HDRS"]], recs
    assert recs["sender"] == [["-"]], recs          # the null sender


def test_changes_dropped_when_the_message_is_refused(make_server, milters):
    m = milters.scripted(eom([{"op": "addrcpt", "addr": "<bob@example.test>"},
                              {"op": "addheader", "name": "X-A", "value": "1"}],
                             action="reject"))
    srv = milter_server(make_server, m)
    assert send(srv)[0] == 554
    assert srv.read_mail("bob") == [] and srv.read_mail("alice") == []


def test_senseless_change_is_skipped_not_fatal(make_server, milters):
    m = milters.scripted(eom([
        {"op": "addheader", "name": "X-Ok", "value": "fine"},
        {"op": "addrcpt", "addr": "<not an address>"},
        {"op": "addheader", "name": "X-Also", "value": "fine too"}]))
    srv = milter_server(make_server, m)
    helpers.queued_id(send(srv))
    data = delivered(srv)
    assert b"X-Ok: fine" in data and b"X-Also: fine too" in data
    assert "event=milter-bad-change" in srv.log()


def test_malformed_header_value_is_a_protocol_error(make_server, milters):
    # a line break without a blank after it could start a new field
    m = milters.scripted(eom([{"op": "addheader", "name": "X-Broken",
                               "value": "a\nInjected: yes"}]))
    srv = make_server({"pipeline": [{"milter": m.spec, "name": "t",
                                     "default_action": "accept"}]})
    helpers.queued_id(send(srv))
    data = delivered(srv)
    assert b"Injected" not in data and b"X-Broken" not in data
    assert 'reason="invalid header value"' in srv.log()


def test_unnegotiated_change_is_a_protocol_error(make_server, milters):
    # the filter asks only for ADDHDRS, then changes the sender anyway;
    # libmilter itself refuses to send it, so use the raw bad milter
    bad = milters.bad(on="E", do="mod", actions=0)
    srv = make_server({"pipeline": [{"milter": bad.spec, "name": "bad",
                                     "default_action": "reject"}]})
    r = send(srv)
    assert r[0] // 100 == 5, r
    assert "did not negotiate" in srv.log()
    assert srv.read_mail("alice") == []


def test_later_milter_sees_earlier_changes(make_server, milters):
    a = milters.scripted(eom([
        {"op": "addheader", "name": "X-From-A", "value": "a"},
        {"op": "chgheader", "name": "Subject", "idx": 1, "value": "by A"},
        {"op": "replacebody", "text": "body by A\r\n"}]), name="a")
    b = milters.scripted({}, name="b")
    srv = milter_server(make_server, a, b)
    helpers.queued_id(send(srv))
    b.wait_event("eom", count=1)
    seen = b.headers_seen(conn=max(e["conn"] for e in b.events()))
    assert ("X-From-A", "a") in seen and ("Subject", "by A") in seen
    body = [e for e in b.events("body")][-1]["args"]["data"]
    assert body == "body by A\r\n"
    delivered(srv)
