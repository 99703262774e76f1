"""Command order, address syntax, relay policy and ESMTP parameters."""
import pytest

from helpers import check, ehlo, has_enh, message


# -- command order ----------------------------------------------------------

def test_mail_before_helo(server):
    """MAIL before HELO/EHLO gets 503 5.5.1."""
    c = server.raw()
    check(c.cmd("MAIL FROM:<s@remote.test>"), 503, "5.5.1")


def test_nested_mail(server):
    """A second MAIL inside a transaction gets 503 5.5.1."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("MAIL FROM:<t@remote.test>"), 503, "5.5.1")


def test_rcpt_before_mail(server):
    """RCPT before MAIL gets 503 5.5.1."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")


def test_data_before_mail(server):
    """DATA before MAIL gets 503 5.5.1 (and no 354)."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("DATA"), 503, "5.5.1")
    check(c.cmd("NOOP"), 250, "2.0.0")


def test_data_without_valid_rcpt(server):
    """DATA with no accepted recipient gets 554 5.5.1."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<nobody@example.test>"), 550, "5.1.1")
    check(c.cmd("DATA"), 554, "5.5.1")
    check(c.cmd("NOOP"), 250, "2.0.0")


def test_data_before_rcpt(server):
    """DATA after MAIL but before any RCPT is refused (503 or 554, 5.5.1)."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    r = c.cmd("DATA")
    assert r[0] in (503, 554), r
    check(r, r[0], "5.5.1")


def test_ehlo_resets_transaction(server):
    """EHLO in the middle of a transaction resets it (RFC 5321 4.1.4)."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    ehlo(c)
    check(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")


# -- addresses ----------------------------------------------------------------

@pytest.mark.parametrize("arg,code,enh", [
    ("<foo@>", 501, "5.1.7"),
    ("<foo>", 501, "5.1.7"),
    ("<foo@bar..test>", 501, "5.1.7"),
    ("<a b@remote.test>", 501, "5.1.7"),
    ("<foo@remote.test", 501, None),
    ("foo@remote.test", 501, "5.5.4"),
    ("<a@example.test.>", 501, None),
])
def test_bad_sender_syntax(server, arg, code, enh):
    """Malformed MAIL FROM addresses get 501 (5.1.7, or 5.5.4 without
    angle brackets)."""
    c = server.raw()
    ehlo(c)
    r = c.cmd(f"MAIL FROM:{arg}")
    check(r, code, enh)
    assert has_enh(r), r
    # the session is still usable and no transaction was started
    check(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")


@pytest.mark.parametrize("arg,code,enh", [
    ("<alice@>", 501, "5.1.3"),
    ("<.alice@example.test>", 501, "5.1.3"),
    ("<alice@example..test>", 501, "5.1.3"),
    ("alice@example.test", 501, "5.5.4"),
    ("<alice@example.test.>", 501, None),
    ("<@a.test:alice@example.test>", 553, "5.1.3"),
])
def test_bad_recipient_syntax(server, arg, code, enh):
    """Malformed RCPT TO addresses get 501 5.1.3 (5.5.4 without brackets);
    a source route gets 553 5.1.3."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    r = c.cmd(f"RCPT TO:{arg}")
    check(r, code, enh)
    assert has_enh(r), r
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")


def test_unknown_local_user(server):
    """RCPT to an unknown user of a local domain gets 550 5.1.1."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<carol@example.test>"), 550, "5.1.1")


def test_relay_denied(make_server):
    """RCPT to a non-local domain from an untrusted client gets
    554 5.7.1 Relay access denied."""
    srv = make_server({"trusted_networks": ["192.0.2.0/24"]})
    c = srv.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<victim@elsewhere.test>"), 554, "5.7.1",
          text="Relay access denied")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")


def test_relay_denied_default_config(server):
    """With the test template (no relay domains, no outbound transport)
    RCPT to a foreign domain is refused with 554 5.7.1."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<victim@elsewhere.test>"), 554, "5.7.1",
          text="Relay access denied")


def test_address_literal_rcpt(server):
    """RCPT to an address literal gets 554 5.7.1."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@[127.0.0.1]>"), 554, "5.7.1")


def test_non_ascii_sender_without_smtputf8(server):
    """A non-ASCII sender without SMTPUTF8 gets 553 5.6.7."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<jörg@remote.test>"), 553, "5.6.7")


def test_non_ascii_rcpt_without_smtputf8(server):
    """A non-ASCII recipient in a transaction without SMTPUTF8 gets
    553 5.6.7."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<jörg@example.test>"), 553, "5.6.7")


def test_utf8_sender_with_smtputf8(server):
    """With SMTPUTF8 on MAIL a UTF-8 sender is accepted and a UTF-8
    recipient is judged as an address (unknown user: 550 5.1.1)."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<jörg@bücher.test> SMTPUTF8"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<jörg@example.test>"), 550, "5.1.1")


def test_smtputf8_after_helo(server):
    """SMTPUTF8 is an ESMTP parameter: after HELO it gets 555 5.5.4."""
    c = server.raw()
    c.cmd("HELO client.example.test")
    check(c.cmd("MAIL FROM:<jörg@bücher.test> SMTPUTF8"), 555, "5.5.4")


def test_local_part_length(server):
    """A 64-octet local part is accepted; 65 octets gets 501."""
    c = server.raw()
    ehlo(c)
    check(c.cmd(f"MAIL FROM:<{'a' * 64}@remote.test>"), 250, "2.1.0")
    check(c.cmd("RSET"), 250)
    r = c.cmd(f"MAIL FROM:<{'a' * 65}@remote.test>")
    assert r[0] == 501 and has_enh(r), r
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    r = c.cmd(f"RCPT TO:<{'a' * 65}@example.test>")
    assert r[0] == 501 and has_enh(r), r


def test_path_length(server):
    """A path over 256 octets gets 501 (MAIL and RCPT); a 256-octet path
    (brackets included) is accepted."""
    domain = ".".join(["d" * 60] * 4) + ".test"         # 248 octets
    addr = "u" * 20 + "@" + domain                       # path: 271 octets
    c = server.raw()
    ehlo(c)
    check(c.cmd(f"MAIL FROM:<{'u' * 5}@{domain}>"), 250, "2.1.0")
    check(c.cmd("RSET"), 250, "2.0.0")
    r = c.cmd(f"MAIL FROM:<{addr}>")
    assert r[0] == 501 and has_enh(r), r
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    r = c.cmd(f"RCPT TO:<{addr}>")
    assert r[0] == 501 and has_enh(r), r


# -- ESMTP parameters ---------------------------------------------------------

def mail_reply(server, params, helo="EHLO"):
    c = server.raw()
    c.cmd(f"{helo} client.example.test")
    return c, c.cmd(f"MAIL FROM:<s@remote.test> {params}")


def test_size_param(server):
    """SIZE under the limit is accepted; over it gets 552 5.3.4 at MAIL."""
    c, r = mail_reply(server, "SIZE=1000")
    check(r, 250, "2.1.0")
    c, r = mail_reply(server, "SIZE=2000000")
    check(r, 552, "5.3.4")
    c, r = mail_reply(server, "SIZE=99999999999999999999999999")
    check(r, 552, "5.3.4")


@pytest.mark.parametrize("params", ["BODY=8BITMIME", "BODY=7BIT",
                                    "body=8bitmime"])
def test_body_param_ok(server, params):
    """BODY=8BITMIME and BODY=7BIT are accepted (case-insensitive)."""
    c, r = mail_reply(server, params)
    check(r, 250, "2.1.0")


@pytest.mark.parametrize("params,code,enh", [
    ("BODY=BINARYMIME", 501, "5.5.4"),
    ("BODY=FOO", 501, "5.5.4"),
    ("FOO=bar", 555, "5.5.4"),
    ("XYZZY", 555, "5.5.4"),
    ("BODY=7BIT BODY=7BIT", 501, "5.5.4"),
    ("SIZE=10 SIZE=10", 501, "5.5.4"),
    ("SIZE=abc", 501, "5.5.4"),
    ("RET=FULL RET=HDRS", 501, "5.5.4"),
    ("RET=ALL", 501, "5.5.4"),
    ("ENVID=+ZZ", 501, "5.5.4"),
    ("ENVID=" + "a" * 101, 501, "5.5.4"),
    ("ENVID=a ENVID=b", 501, "5.5.4"),
])
def test_bad_mail_params(server, params, code, enh):
    """Bad/unknown/duplicate MAIL parameters are refused with the right
    code and no transaction is started."""
    c, r = mail_reply(server, params)
    check(r, code, enh)
    check(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")


@pytest.mark.parametrize("params", [
    "RET=FULL", "RET=HDRS", "ENVID=abc+2Bdef", "ENVID=" + "a" * 100,
    "SIZE=100 BODY=8BITMIME RET=HDRS ENVID=x SMTPUTF8"])
def test_good_mail_params(server, params):
    """Valid DSN and other MAIL parameters are accepted."""
    c, r = mail_reply(server, params)
    check(r, 250, "2.1.0")


def test_params_after_helo(server):
    """ESMTP parameters after HELO (not EHLO) get 555 5.5.4."""
    c, r = mail_reply(server, "SIZE=100", helo="HELO")
    check(r, 555, "5.5.4")
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test> NOTIFY=NEVER"), 555, "5.5.4")


@pytest.mark.parametrize("params", [
    "NOTIFY=NEVER", "NOTIFY=SUCCESS", "NOTIFY=SUCCESS,FAILURE,DELAY",
    "notify=failure", "ORCPT=rfc822;alice@example.test",
    "NOTIFY=DELAY ORCPT=rfc822;alice+2Bx@example.test"])
def test_good_rcpt_params(server, params):
    """Valid NOTIFY / ORCPT parameters are accepted."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd(f"RCPT TO:<alice@example.test> {params}"), 250, "2.1.5")


@pytest.mark.parametrize("params,code,enh", [
    ("NOTIFY=NEVER,SUCCESS", 501, "5.5.4"),
    ("NOTIFY=FAILURE,NEVER", 501, "5.5.4"),
    ("NOTIFY=SOMETIMES", 501, "5.5.4"),
    ("NOTIFY=", 501, "5.5.4"),
    ("NOTIFY=SUCCESS NOTIFY=DELAY", 501, "5.5.4"),
    ("ORCPT=rfc822;a+ZZ@example.test", 501, "5.5.4"),
    ("ORCPT=alice@example.test", 501, "5.5.4"),
    ("FOO=bar", 555, "5.5.4"),
])
def test_bad_rcpt_params(server, params, code, enh):
    """Bad NOTIFY/ORCPT or unknown RCPT parameters are refused."""
    c = server.raw()
    ehlo(c)
    check(c.cmd("MAIL FROM:<s@remote.test>"), 250, "2.1.0")
    check(c.cmd(f"RCPT TO:<alice@example.test> {params}"), code, enh)
    # the transaction still works; the refused recipient was not added
    check(c.cmd("DATA"), 554, "5.5.1")


def test_every_reply_has_enhanced_code(server):
    """After EHLO every reply (other than 220/HELO/EHLO) carries an
    enhanced status code of the same class."""
    c = server.raw()
    ehlo(c)
    replies = [
        c.cmd("NOOP"), c.cmd("RSET"), c.cmd("VRFY x"), c.cmd("EXPN x"),
        c.cmd("HELP"), c.cmd("FOO"), c.cmd("DATA"),
        c.cmd("RCPT TO:<alice@example.test>"),
        c.cmd("MAIL FROM:<s@remote.test>"),
        c.cmd("RCPT TO:<nobody@example.test>"),
        c.cmd("RCPT TO:<alice@example.test>"),
        c.cmd("DATA"),
    ]
    c.send(message() + ".\r\n")
    replies.append(c.reply())
    replies.append(c.cmd("QUIT"))
    missing = [r for r in replies if r[0] != 354 and not has_enh(r)]
    assert not missing, missing
