"""Relay control against the address tricks that have made open relays
(issue 6): the percent hack, bang paths, source routes, quoted local parts
holding an "@", address literals, trailing dots, a second "@", subdomains.

From a client outside trusted_networks (the tests connect from 127.0.0.1;
the default trusted_networks is 192.0.2.0/24) every trick is refused at
RCPT, nothing reaches a next hop (a "*" route points at a Downstream that
must see no connection) and the server keeps serving: the same session
then delivers a message to a real local mailbox, and only there.

What sluice does with each (no address rewriting, ever):
  * "%" and "!" are ordinary characters of a local part: the percent hack
    and bang paths are not routes, so user%remote.test@example.test is the
    local mailbox "user%remote.test" of example.test; there is none, so
    550 5.1.1, for trusted clients as well.
  * a quoted local part is one local part, "@" or not: 550 5.1.1 likewise.
  * source routes are refused outright (RFC 5321 4.1.1.3 lets a server
    decline the relaying they imply): 553 5.1.3.
  * an address literal is never local: 554 5.7.1 relay access denied.
  * a trailing dot, a second "@" or text glued after the ">" are syntax
    errors: 501 (5.1.3, 5.5.4 for text after the path), never a lookalike of
    the local domain.
  * domain case does not matter; subdomains of a local domain are not local.
"""
import pytest

from downstream import Downstream
from helpers import check, ehlo, log_events, message, queued_id, send_data
from helpers import wait_for

STAR = '"*"'            # a YAML key: a bare * would be an alias
WAIT = 10.0

DENIED = (554, "5.7.1", "relay access denied")
UNKNOWN = (550, "5.1.1", "user unknown")
ROUTE = (553, "5.1.3", "source routes are not accepted")
SYNTAX = (501, "5.1.3", "bad recipient address syntax")
GLUED = (501, "5.5.4", "RCPT TO:<address>")

TRICKS = [
    # percent hack: a literal local part of a local domain, not a route
    ("<user%remote.test@example.test>", UNKNOWN),
    ("<alice%remote.test@example.test>", UNKNOWN),
    ("<user%remote.test>", SYNTAX),
    ("<user@remote.test%example.test>", SYNTAX),
    # bang paths (UUCP): likewise only a local part
    ("<remote.test!user@example.test>", UNKNOWN),
    ("<remote.test!user>", SYNTAX),
    # source routes, through us or through the remote end
    ("<@example.test:user@remote.test>", ROUTE),
    ("<@remote.test:alice@example.test>", ROUTE),
    ("<@example.test,@relay.test:user@remote.test>", ROUTE),
    # a quoted local part holding an "@" is one local part
    ('<"user@remote.test"@example.test>', UNKNOWN),
    ('<"user@remote.test">', SYNTAX),
    ('<"user@remote.test\\"@example.test>', SYNTAX),   # escaped close quote
    # address literals are never local
    ("<user@[192.0.2.99]>", DENIED),
    ("<user@[127.0.0.1]>", DENIED),
    ("<user@[IPv6:2001:db8::1]>", DENIED),
    ("<user@[ipv6:::1]>", DENIED),
    ("<user@[remote.test]>", SYNTAX),
    # trailing dots: no lookalike of the local domain, no relay either
    ("<user@remote.test.>", SYNTAX),
    ("<user@example.test.>", SYNTAX),
    ("<alice@example.test.>", SYNTAX),
    # a second "@", or text after the path
    ("<user@example.test@remote.test>", SYNTAX),
    ("<user@remote.test@example.test>", SYNTAX),
    ("<user@remote.test>@example.test", GLUED),
    # case: still the local domain; a subdomain is not local
    ("<user@EXAMPLE.TEST>", UNKNOWN),
    ("<user@sub.example.test>", DENIED),
    ("<user@remote.test>", DENIED),
]


def check_reply(reply, want):
    code, enh, text = want
    check(reply, code, enh, text)


@pytest.mark.parametrize("rcpt,want", TRICKS, ids=[t[0] for t in TRICKS])
def test_untrusted_trick_refused(make_server, rcpt, want):
    """The trick is refused at RCPT with the expected reply; the session
    goes on, a real local recipient is then taken, and the message reaches
    only that mailbox: no connection to any next hop."""
    with Downstream() as d:
        srv = make_server({"routes": {STAR: f"smtp:[127.0.0.1]:{d.port}"}})
        c = srv.raw()
        ehlo(c)
        check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
        check_reply(c.cmd(f"RCPT TO:{rcpt}"), want)
        check(c.cmd("NOOP"), 250, "2.0.0")
        check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
        qid = queued_id(send_data(c, message() + ".\r\n"))
        c.cmd("QUIT")
        c.close()
        srv.wait_mail("alice", timeout=WAIT)
        dl = wait_for(lambda: log_events(srv, qid, "delivery") or None,
                      timeout=WAIT, msg="a delivery line")
        assert [e["to"] for e in dl] == ["<alice@example.test>"], dl
        srv.wait_queue_empty()
        assert d.connections == 0
        assert srv.alive()


def test_untrusted_all_tricks_one_session_then_nothing_queued(make_server):
    """All the tricks in one session (few enough per session to stay under
    limits.errors): no recipient is taken, DATA is refused, no message is
    queued and the server still greets the next client."""
    with Downstream() as d:
        srv = make_server({"routes": {STAR: f"smtp:[127.0.0.1]:{d.port}"},
                           "limits": {"errors": 100}})
        c = srv.raw()
        ehlo(c)
        check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
        for rcpt, want in TRICKS:
            check_reply(c.cmd(f"RCPT TO:{rcpt}"), want)
        code, _ = c.cmd("DATA")
        assert code in (503, 554), code
        c.cmd("QUIT")
        c.close()
        assert srv.queued_ids() == []
        assert not log_events(srv, event="queued")
        assert d.connections == 0
        c2 = srv.raw()
        ehlo(c2)
        check(c2.cmd("QUIT"), 221)
        c2.close()


def test_local_domain_case_insensitive(server):
    """The domain's case does not matter: ALICE@EXAMPLE.TEST is alice."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<ALICE@EXAMPLE.TEST>"), 250, "2.1.5")
    check(c.cmd("RCPT TO:<alice@Example.Test>"), 250, "2.1.5")
    queued_id(send_data(c, message() + ".\r\n"))
    c.cmd("QUIT")
    c.close()
    server.wait_mail("alice", timeout=WAIT)


def test_percent_local_part_is_a_mailbox_name(make_server):
    """A "%" is part of the mailbox name, never a route: when the
    administrator lists user%remote.test@example.test it is delivered into
    that local Maildir, and nothing goes to remote.test's next hop."""
    with Downstream() as d:
        srv = make_server({
            "routes": {STAR: f"smtp:[127.0.0.1]:{d.port}"},
            "mailboxes": {"users": ["alice@example.test",
                                    "user%remote.test@example.test"]}})
        c = srv.raw()
        ehlo(c)
        check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
        check(c.cmd("RCPT TO:<user%remote.test@example.test>"), 250, "2.1.5")
        queued_id(send_data(c, message() + ".\r\n"))
        c.cmd("QUIT")
        c.close()
        srv.wait_mail("user%remote.test", timeout=WAIT)
        srv.wait_queue_empty()
        assert d.connections == 0


def test_relay_domain_percent_hack_stays_with_the_relay_domain(make_server):
    """For a relay domain (taken from anyone) the local part is passed on as
    it is, to that domain's route: user%remote.test@partner.test goes to
    partner.test, never to remote.test (the "*" route sees nothing)."""
    with Downstream() as part, Downstream() as other:
        srv = make_server({
            "domains": {"relay": ["partner.test"]},
            "routes": {"partner.test": f"smtp:[127.0.0.1]:{part.port}",
                       STAR: f"smtp:[127.0.0.1]:{other.port}"}})
        c = srv.raw()
        ehlo(c)
        check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
        check(c.cmd("RCPT TO:<user%remote.test@partner.test>"), 250,
              "2.1.5")
        check(c.cmd("RCPT TO:<@partner.test:user@remote.test>"), *ROUTE)
        check(c.cmd("RCPT TO:<user@partner.test.>"), *SYNTAX)
        check(c.cmd("RCPT TO:<user@partner.test@remote.test>"), *SYNTAX)
        queued_id(send_data(c, message() + ".\r\n"))
        c.cmd("QUIT")
        c.close()
        [m] = part.wait_messages(1, timeout=WAIT)
        assert m.rcpt_tos == ["user%remote.test@partner.test"]
        srv.wait_queue_empty()
        assert other.connections == 0


# -- trusted clients ---------------------------------------------------------

def test_trusted_client_may_relay(make_server):
    """From trusted_networks, remote domains and address literals are
    relayed (here to a Downstream through the "*" route, and a discard
    route), while the percent hack, bang paths and quoted "@" still name
    local mailboxes, and source routes and trailing dots are still
    refused."""
    with Downstream() as d:
        srv = make_server({
            "trusted_networks": ["127.0.0.0/8"],
            "routes": {"void.test": "discard",
                       STAR: f"smtp:[127.0.0.1]:{d.port}"}})
        c = srv.raw()
        ehlo(c)
        check(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0")
        check(c.cmd("RCPT TO:<user@remote.test>"), 250, "2.1.5")
        check(c.cmd("RCPT TO:<user@[192.0.2.99]>"), 250, "2.1.5")
        check(c.cmd("RCPT TO:<user@void.test>"), 250, "2.1.5")
        check(c.cmd("RCPT TO:<user%other.test@example.test>"), *UNKNOWN)
        check(c.cmd("RCPT TO:<other.test!user@example.test>"), *UNKNOWN)
        check(c.cmd('RCPT TO:<"user@other.test"@example.test>'), *UNKNOWN)
        check(c.cmd("RCPT TO:<@example.test:user@other.test>"), *ROUTE)
        check(c.cmd("RCPT TO:<user@other.test.>"), *SYNTAX)
        qid = queued_id(send_data(c, message() + ".\r\n"))
        c.cmd("QUIT")
        c.close()
        [m] = d.wait_messages(1, timeout=WAIT)
        assert sorted(m.rcpt_tos) == ["user@[192.0.2.99]",
                                      "user@remote.test"]
        dl = wait_for(lambda: (lambda e: e if len(e) >= 3 else None)(
            log_events(srv, qid, "delivery")), timeout=WAIT,
            msg="3 delivery lines")
        res = {e["to"]: e for e in dl}
        assert set(res) == {"<user@remote.test>", "<user@[192.0.2.99]>",
                            "<user@void.test>"}, res
        assert all(e["status"] == "sent" for e in dl), dl
        assert res["<user@void.test>"]["relay"] == "discard", res
        srv.wait_queue_empty()
