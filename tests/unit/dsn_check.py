#!/usr/bin/python3
"""dsn_check.py - checks a DSN made by core/dsn.c with Python's own mail
parser (the stdlib email package, policy.default), for tests/unit/test_dsn.c.

usage: dsn_check.py FILE [EXPECTATION ...]

Always checked: CRLF line ends only and no line over 998 octets; one each
of Date (parseable), From, To, Subject, Message-ID, Auto-Submitted
(auto-replied), MIME-Version (1.0); multipart/report with
report-type=delivery-status and 2 or 3 parts; no parser defects anywhere;
a delivery-status part (message/delivery-status or, RFC 6533,
message/global-delivery-status) whose first block has Reporting-MTA and
whose recipient blocks each have Final-Recipient, an Action and a Status
x.y.z whose class fits the action; no control characters in any field.

EXPECTATION is one of (field values compare with white space runs,
folding included, taken as one space):
  subject=TEXT          the Subject
  parts=T1,T2[,T3]      the report's part types, in order
  charset=CS            the text part's charset
  text~SUBSTR           the text part contains SUBSTR
  text!~SUBSTR          ... does not
  rcpts=N               number of recipient blocks
  msg.FIELD=VALUE       a per-message field of the report
  msg.FIELD!            ... is absent
  rcptN.FIELD=VALUE     field of recipient block N (from 0)
  rcptN.FIELD!          ... is absent
  orig.FIELD=VALUE      a header field of the returned original (part 3)
  orig.FIELD!           ... is absent
  origbody~SUBSTR       the returned message's body contains SUBSTR
  header.FIELD!         the DSN's own header has no such field

Exit status 0 when everything holds, else 1 with the reasons on stderr.
"""
import email
import email.parser
import email.policy
import email.utils
import re
import sys

POLICY = email.policy.default
STATUS_RE = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}$")
CLASSES = {"failed": "45", "delayed": "4", "delivered": "2", "relayed": "2"}
CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class Failed(Exception):
    pass


def norm(value):
    return " ".join(str(value).split())


def check(cond, why):
    if not cond:
        raise Failed(why)


def check_lines(raw):
    for n, line in enumerate(raw.split(b"\r\n")[:-1], 1):
        check(b"\n" not in line and b"\r" not in line,
              "line %d: bare CR or LF" % n)
        check(len(line) <= 998, "line %d: %d octets" % (n, len(line)))
    check(raw.endswith(b"\r\n"), "does not end in CRLF")


def parse(raw):
    """As text when it is UTF-8 (keeps UTF-8 header fields readable)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return email.message_from_bytes(raw, policy=POLICY)
    return email.parser.Parser(policy=POLICY).parsestr(text)


def check_defects(msg):
    for part in msg.walk():
        check(not part.defects, "defects in %s: %r" %
              (part.get_content_type(), part.defects))


def check_header(msg):
    for name in ("Date", "From", "To", "Subject", "Message-ID",
                 "Auto-Submitted", "MIME-Version"):
        check(len(msg.get_all(name, [])) == 1, "need one %s field" % name)
    email.utils.parsedate_to_datetime(str(msg["Date"]))
    check(str(msg["Auto-Submitted"]) == "auto-replied", "Auto-Submitted")
    check(str(msg["MIME-Version"]) == "1.0", "MIME-Version")
    check(msg.get_content_type() == "multipart/report",
          "type %s" % msg.get_content_type())
    check(msg.get_param("report-type") == "delivery-status", "report-type")
    for name, value in msg.items():
        check(not CONTROL_RE.search(str(value)), "control in " + name)


def fields_of(block):
    """A header block as {lower name: [values]}."""
    out = {}
    for name, value in block.items():
        check(not CONTROL_RE.search(str(value)), "control in " + name)
        out.setdefault(name.lower(), []).append(norm(value))
    return out


def status_blocks(part):
    """The delivery-status part's blocks, each a dict of its fields."""
    if part.get_content_type() == "message/delivery-status":
        return [fields_of(b) for b in part.get_payload()]
    # message/global-delivery-status: Python reads it as one message whose
    # header is the per-message block and whose body holds the rest
    sub = part.get_payload(0)
    blocks = [fields_of(sub)]
    body = sub.get_payload()
    check(isinstance(body, str), "global delivery-status body")
    for chunk in re.split(r"\r?\n\r?\n", body.strip("\r\n")):
        if chunk.strip():
            blocks.append(fields_of(email.parser.Parser(
                policy=POLICY).parsestr(chunk + "\r\n", headersonly=True)))
    return blocks


def check_blocks(blocks):
    check(len(blocks) >= 2, "no recipient blocks")
    check("reporting-mta" in blocks[0], "no Reporting-MTA")
    for i, b in enumerate(blocks[1:]):
        for name in ("final-recipient", "action", "status"):
            check(len(b.get(name, [])) == 1, "rcpt%d: need one %s" %
                  (i, name))
        action, status = b["action"][0], b["status"][0]
        check(action in CLASSES, "rcpt%d: action %s" % (i, action))
        m = STATUS_RE.match(status)
        check(m and m.group(1) in CLASSES[action],
              "rcpt%d: status %s for %s" % (i, status, action))


def original_of(part):
    """(header fields, body text) of the returned original."""
    if part.get_content_type() in ("message/rfc822", "message/global",
                                   "message/global-headers"):
        sub = part.get_payload(0)
        body = sub.get_payload()
        return sub, body if isinstance(body, str) else ""
    text = part.get_payload()
    return email.parser.Parser(policy=POLICY).parsestr(
        text, headersonly=True), ""


def expect(exp, msg, parts, blocks):
    if exp.startswith("subject="):
        check(norm(msg["Subject"]) == exp[8:], "subject %s" % msg["Subject"])
    elif exp.startswith("parts="):
        got = ",".join(p.get_content_type() for p in parts)
        check(got == exp[6:], "parts %s" % got)
    elif exp.startswith("charset="):
        got = parts[0].get_content_charset()
        check(got == exp[8:], "charset %s" % got)
    elif exp.startswith("text~") or exp.startswith("text!~"):
        want = exp.split("~", 1)[1]
        found = norm(want) in norm(parts[0].get_content())
        check(found == exp.startswith("text~"), "text and %r" % want)
    elif exp.startswith("rcpts="):
        check(len(blocks) - 1 == int(exp[6:]),
              "%d recipient blocks" % (len(blocks) - 1))
    elif exp.startswith("origbody~"):
        check(len(parts) == 3, "no original")
        check(exp[9:] in original_of(parts[2])[1], "original body")
    elif exp.startswith("header."):
        name = exp[7:].rstrip("!")
        check(msg.get(name) is None, "header has %s" % name)
    else:
        expect_field(exp, parts, blocks)


def expect_field(exp, parts, blocks):
    m = re.match(r"^(msg|rcpt(\d+)|orig)\.([A-Za-z0-9-]+)(!|=(.*))$", exp,
                 re.S)
    check(m, "bad expectation %r" % exp)
    where, n, name, absent, value = m.groups()
    if where == "orig":
        check(len(parts) == 3, "no original")
        got = original_of(parts[2])[0].get_all(name, [])
        got = [norm(v) for v in got]
    else:
        i = 0 if where == "msg" else int(n) + 1
        check(i < len(blocks), "no block for %s" % where)
        got = blocks[i].get(name.lower(), [])
    if absent == "!":
        check(not got, "%s.%s present: %r" % (where, name, got))
    else:
        check(got == [norm(value)], "%s.%s: %r" % (where, name, got))


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], "rb") as f:
        raw = f.read()
    try:
        check_lines(raw)
        msg = parse(raw)
        check_defects(msg)
        check_header(msg)
        parts = msg.get_payload()
        check(isinstance(parts, list) and len(parts) in (2, 3),
              "need 2 or 3 parts")
        check(parts[0].get_content_type() == "text/plain", "part 1 type")
        parts[0].get_content()
        check(parts[1].get_content_type() in (
            "message/delivery-status", "message/global-delivery-status"),
            "part 2 type")
        blocks = status_blocks(parts[1])
        check_blocks(blocks)
        for exp in argv[2:]:
            expect(exp, msg, parts, blocks)
    except Failed as e:
        sys.stderr.write("dsn_check: %s: %s\n" % (argv[1], e))
        return 1
    except Exception as e:  # a parser crash is a failure too
        sys.stderr.write("dsn_check: %s: %s: %s\n" %
                         (argv[1], type(e).__name__, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
