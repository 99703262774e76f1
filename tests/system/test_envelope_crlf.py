"""No client input can put a CR or LF into a stored envelope field
(issue 6): xtext-encoded +0D+0A in ENVID and ORCPT, \\x{000D} in a UTF-8
ORCPT, an AUTH= parameter, a CR inside the HELO name or a quoted local
part. Each is refused, or stored encoded: the queue file on disk has no CR
in its envelope, every line is one known record, and nothing the client
wrote became a record of its own. (test_dsn_params.py checks spaces and
8-bit bytes the same way.)"""
import pytest

from helpers import check, ehlo, envelope_lines, message, queued_id, send_data
from test_dsn_params import block_mailbox

RECORDS = {"v", "id", "sender", "helo", "envid", "ret", "rcpt", "body",
           "smtputf8", "size", "arrival", "client", "listener", "proto",
           "protocol", "tag", "end", "quarantine", "client_addr",
           "client_port"}

CASES = [
    # (EHLO name, MAIL arguments, RCPT arguments)
    ("c.test", "<s@remote.test> ENVID=a+0D+0Aid+20x", "<alice@example.test>"),
    ("c.test", "<s@remote.test> ENVID=+0A+0D", "<alice@example.test>"),
    ("c.test", "<s@remote.test>",
     "<alice@example.test> ORCPT=rfc822;a+0D+0Arcpt+20x@example.test"),
    ("c.test", "<s@remote.test> SMTPUTF8",
     "<alice@example.test> ORCPT=utf-8;a\\x{000D}\\x{000A}b@example.test"),
    ("c.test", "<s@remote.test> AUTH=a+0D+0Aid@remote.test",
     "<alice@example.test>"),
    ("evil\rid x", "<s@remote.test>", "<alice@example.test>"),
    ("c.test", '<"a\\\rid"@remote.test>', "<alice@example.test>"),
]


@pytest.mark.parametrize("helo,mail,rcpt", CASES, ids=[
    "envid", "envid-lfcr", "orcpt-xtext", "orcpt-utf8", "auth", "helo",
    "quoted-local-part"])
def test_no_line_break_in_envelope(server, helo, mail, rcpt):
    block_mailbox(server, "alice")      # the message stays in queue/
    c = server.raw()
    code, _ = c.cmd("EHLO " + helo)
    if code != 250:
        assert 500 <= code < 600, code
        ehlo(c)
    code, text = c.cmd("MAIL FROM:" + mail)
    if code != 250:
        assert 500 <= code < 600, (code, text)
        return                          # refused: nothing stored
    code, text = c.cmd("RCPT TO:" + rcpt)
    if code != 250:
        assert 500 <= code < 600, (code, text)
        return
    qid = queued_id(send_data(c, message() + ".\r\n"))
    for line in envelope_lines(server.queue_file(qid)):
        assert "\r" not in line, line
        key = line.split(" ")[0]
        assert key in RECORDS, f"unexpected record {line!r}"
        assert "id x" not in line and "rcpt x" not in line, line
