"""Malformed MIME through ctx:parts(): deep nesting, a multipart without a
boundary, broken base64, a huge header, too many parts. The host's limits
(core/mime.h: depth 20, 500 parts) bound the tree, problems are reported
as the second result, and the server answers and keeps serving."""
import base64

import pytest

import helpers
from test_lua_support import (ModuleServer, new_message, send, mail_with,
                              header_values)

INSPECT = r"""
return { message = function(ctx)
  local parts, problems = ctx:parts()
  local depth, decode_errors, truncated, bytes = 0, 0, 0, 0
  for _, p in ipairs(parts) do
    if p.depth > depth then depth = p.depth end
    if p.decode_error then decode_errors = decode_errors + 1 end
    if p.truncated then truncated = truncated + 1 end
    bytes = bytes + #p.content()
  end
  ctx:add_header("X-Parts", tostring(#parts))
  ctx:add_header("X-Depth", tostring(depth))
  ctx:add_header("X-Decode-Errors", tostring(decode_errors))
  ctx:add_header("X-Content-Bytes", tostring(bytes))
  ctx:add_header("X-Problems", problems and problems:sub(1, 300):gsub("[^\32-\126]", "?") or "none")
  ctx:add_header("X-Headers", tostring(#ctx:headers()))
  local subj = ctx:header("Subject")
  ctx:add_header("X-Subject-Len", tostring(subj and #subj or 0))
  -- a second call gives the same tree (parsed once per message)
  ctx:add_header("X-Parts-Again", tostring(#ctx:parts()))
end }
"""

HEAD = ("From: <s@remote.test>\r\nTo: <alice@example.test>\r\n"
        "Subject: {subject}\r\nMIME-Version: 1.0\r\n")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    ms = ModuleServer(tmp_path_factory, [{"lua": INSPECT}], name="mime",
                      limits={"message_size": "4M"})
    yield ms.server
    ms.close()


def deliver(srv, raw, subject):
    with srv.raw() as c:
        helpers.ehlo(c)
        helpers.queued_id(send(srv, raw, client=c))
        # the same session still works
        ok = new_message()
        helpers.queued_id(send(srv, ok, client=c))
    data = mail_with(srv, "alice", subject)
    mail_with(srv, "alice", ok["Subject"])

    def h(name):
        return header_values(data, name)[0]
    return h


def test_deeply_nested_multipart(srv):
    n = 100
    raw = HEAD.format(subject="nested") + \
        'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
    for i in range(1, n):
        raw += f'--b{i - 1}\r\nContent-Type: multipart/mixed; ' \
               f'boundary="b{i}"\r\n\r\n'
    raw += f"--b{n - 1}\r\nContent-Type: text/plain\r\n\r\ndeep inside\r\n"
    for i in reversed(range(n)):
        raw += f"--b{i}--\r\n"
    h = deliver(srv, raw, "nested")
    assert int(h("X-Depth")) <= 20            # max_depth
    assert 10 <= int(h("X-Parts")) <= 500
    assert h("X-Problems") != "none"
    assert h("X-Parts-Again") == h("X-Parts")


def test_multipart_without_boundary(srv):
    raw = HEAD.format(subject="noboundary") + \
        "Content-Type: multipart/mixed\r\n\r\n" \
        "--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n--x--\r\n"
    h = deliver(srv, raw, "noboundary")
    assert int(h("X-Parts")) >= 1
    assert "boundary" in h("X-Problems").lower()


def test_bad_base64(srv):
    good = base64.b64encode(b"fine content\n").decode()
    raw = HEAD.format(subject="badb64") + \
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' \
        "--b\r\nContent-Type: text/plain\r\n" \
        "Content-Transfer-Encoding: base64\r\n\r\n" + good + "\r\n" \
        "--b\r\nContent-Type: application/octet-stream; name=\"x.bin\"\r\n" \
        "Content-Transfer-Encoding: base64\r\n\r\n" \
        "!!!!not*base64@@@@\r\n====AAAA=A=\r\n--b--\r\n"
    h = deliver(srv, raw, "badb64")
    assert h("X-Parts") == "3"
    assert h("X-Decode-Errors") == "1"


def test_huge_header(srv):
    # a Subject folded over 800 lines (~57 KB) and 9000 more fields; under
    # 256 KiB in all, see test_large_message_reaches_message_stage
    subject = "huge" + "".join(f"\r\n word{i:05d} " + "x" * 60
                               for i in range(800))
    raw = HEAD.format(subject=subject)
    raw += "".join(f"X-F{i}: {i}\r\n" for i in range(9000))
    raw += "Content-Type: text/plain\r\n\r\nbody\r\n"
    assert 150000 < len(raw) < 250000
    h = deliver(srv, raw, "word00799")
    assert int(h("X-Subject-Len")) > 55000
    # 9000 + 5 of the message + our Received + 5 the script added before
    assert h("X-Headers") == "9011"


def test_more_header_fields_than_the_host_parses(srv):
    """Beyond MESSAGE_MAX_HEADERS (10000) fields the host refuses to add
    one more (add_header fails, so this filter tempfails): the server must
    answer and go on."""
    raw = HEAD.format(subject="fields") + \
        "".join(f"X-F{i}: {i}\r\n" for i in range(10500)) + \
        "\r\nbody\r\n"
    with srv.raw() as c:
        helpers.ehlo(c)
        r = send(srv, raw, client=c)
        assert r[0] in (250, 451), r
        ok = new_message()
        helpers.queued_id(send(srv, ok, client=c))
    mail_with(srv, "alice", ok["Subject"])


def test_large_message_reaches_message_stage(srv):
    m = new_message(body=("x" * 70 + "\n") * 4500)      # ~320 KB
    h = deliver(srv, m, m["Subject"])
    assert h("X-Parts") == "1"


def test_too_many_parts(srv):
    raw = HEAD.format(subject="manyparts") + \
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    raw += "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n"
                   for i in range(800))
    raw += "--b--\r\n"
    h = deliver(srv, raw, "manyparts")
    assert int(h("X-Parts")) <= 500           # max_parts
    assert h("X-Problems") != "none"
