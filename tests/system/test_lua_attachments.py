"""lua/filters/attachments.lua with real MIME messages built by Python's
email package: double extensions, renamed executables (sniffed by
libmagic), RFC 2231 / RFC 2047 encoded names, executables inside (nested)
zip archives, encrypted archives, the quarantine action."""
import io
import os
import struct
import zipfile

import pytest

import helpers
from test_lua_support import (ModuleServer, filter_path, lua_server,
                              new_message, send, mail_with, delivered,
                              sentinel, as_bytes)

ATTACH = filter_path("attachments.lua")


def mz_only():
    """A DOS executable header: libmagic says application/x-dosexec."""
    return b"MZ" + b"\x00" * 200


def pe32():
    """A minimal PE32 image: application/vnd.microsoft.portable-executable
    (newer libmagic) or application/x-dosexec (older)."""
    mz = bytearray(b"MZ\x90\x00" + b"\x00" * 60)
    struct.pack_into("<I", mz, 0x3C, 0x40)
    pe = b"PE\0\0" + struct.pack("<HHIIIHH", 0x14C, 1, 0, 0, 0, 0xE0, 0x102)
    opt = struct.pack("<H", 0x10B) + b"\x00" * (0xE0 - 2)
    return bytes(mz) + pe + opt + b"\x00" * 512


def elf():
    return (b"\x7fELF\x02\x01\x01" + b"\x00" * 9 +
            struct.pack("<HHI", 2, 0x3E, 1) + b"\x00" * 200)


def pdf():
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n"


def zip_of(members, encrypt=False):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    data = bytearray(b.getvalue())
    if encrypt:     # mark every entry encrypted (general purpose bit 0)
        for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            i = data.find(sig)
            while i >= 0:
                data[i + off] |= 1
                i = data.find(sig, i + 4)
    return bytes(data)


def with_attachment(data, filename, ctype="application/octet-stream",
                    **kw):
    m = new_message(body="see the attachment\n")
    maintype, subtype = ctype.split("/")
    m.add_attachment(data, maintype=maintype, subtype=subtype,
                     filename=filename, **kw)
    return m


def reply_text(r):
    return f"{r[0]} {r[1]}"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    ms = ModuleServer(tmp_path_factory, [{"lua": ATTACH,
                                          "stages": ["message"]}],
                      name="attach")
    yield ms.server
    ms.close()


@pytest.mark.parametrize("filename,data,why", [
    ("invoice.pdf.exe", mz_only(), "executable"),
    ("INVOICE.PDF.EXE", b"just text\n", "executable"),   # by name alone
    ("payroll.JS", b"WScript.Echo(1)\n", "script"),
    ("evil.exe. ", b"text\n", "executable"),     # Windows drops the dots
    ("C:\\Users\\x\\run.scr", b"text\n", "executable"),
    ("order.docm", b"PK\x03\x04", "macro document"),
])
def test_blocked_by_extension(srv, filename, data, why):
    r = send(srv, with_attachment(data, filename))
    # the name is shown as the message gave it
    assert reply_text(r) == \
        f"550 5.7.1 Attachment {filename} is not allowed ({why})"


@pytest.mark.parametrize("content,filename,ctype", [
    (mz_only(), "report.pdf", "application/pdf"),
    (pe32(), "report.pdf", "application/pdf"),
    (elf(), "notes.txt", "text/plain"),
    (mz_only(), None, "application/octet-stream"),     # no name at all
])
def test_renamed_executable_blocked_by_sniffed_type(srv, content, filename,
                                                    ctype, tmp_path):
    # what libmagic says of these bytes (the host uses the same library)
    p = tmp_path / "sample"
    p.write_bytes(content)
    import subprocess
    sniffed = subprocess.run(["file", "-b", "--mime-type", str(p)],
                             capture_output=True, text=True).stdout.strip()
    # libmagic may add words after the type ("..., no program header")
    sniffed = sniffed.split(",")[0].strip()
    assert sniffed in ("application/x-dosexec",
                       "application/vnd.microsoft.portable-executable",
                       "application/x-executable"), sniffed
    if filename is None:
        m = new_message(body="see below\n")
        m.add_attachment(content, maintype="application",
                         subtype="octet-stream")
        del m.get_payload()[1]["Content-Disposition"]
        shown = "(unnamed part 2)"
    else:
        m = with_attachment(content, filename, ctype)
        shown = filename
    r = send(srv, m)
    assert reply_text(r) == (f"550 5.7.1 Attachment {shown} is not allowed "
                             f"(executable content: {sniffed})")


def test_rfc2231_encoded_filename(srv):
    m = with_attachment(b"text\n", "relevé-été.exe")
    raw = as_bytes(m)
    assert b"filename*=utf-8''relev%C3%A9-%C3%A9t%C3%A9.exe" in raw, raw
    r = send(srv, m)
    # the decoded name, made safe for the reply line
    assert reply_text(r) == \
        "550 5.7.1 Attachment relev?-?t?.exe is not allowed (executable)"


def test_rfc2231_encoded_harmless_name_passes(srv):
    m = with_attachment(pdf(), "relevé.pdf", "application/pdf")
    assert b"filename*=utf-8''" in as_bytes(m)
    helpers.queued_id(send(srv, m))
    mail_with(srv, "alice", m["Subject"])


def test_right_to_left_override_in_name(srv):
    m = with_attachment(pdf(), "invoice\u202efdp.exe", "application/pdf")
    r = send(srv, m)
    # ends in ".exe" as bytes: caught by its extension first
    assert reply_text(r) == \
        "550 5.7.1 Attachment invoice?fdp.exe is not allowed (executable)"
    m = with_attachment(pdf(), "report\u202excod.pdf", "application/pdf")
    r = send(srv, m)
    assert reply_text(r) == \
        "550 5.7.1 Attachment report?xcod.pdf is not allowed (misleading name)"


def test_rfc2047_encoded_content_type_name(srv):
    body = ("From: <s@remote.test>\r\nTo: <alice@example.test>\r\n"
            "Subject: rfc2047 name\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
            "--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
            "--b1\r\nContent-Type: application/octet-stream;\r\n"
            " name=\"=?utf-8?B?ZmFjdHVyYS5wZGYuZXhl?=\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
            "dGV4dAo=\r\n--b1--\r\n")
    r = send(srv, body)
    assert reply_text(r) == \
        "550 5.7.1 Attachment factura.pdf.exe is not allowed (executable)"


def test_executable_inside_zip(srv):
    z = zip_of({"docs/readme.txt": "read me", "docs/setup.exe": mz_only()})
    r = send(srv, with_attachment(z, "files.zip", "application/zip"))
    assert reply_text(r) == ("550 5.7.1 Attachment files.zip is not allowed "
                             "(contains setup.exe: executable)")


def test_script_inside_nested_zip(srv):
    inner = zip_of({"payload.js": "WScript.Echo(1)"})
    outer = zip_of({"readme.txt": "hello", "inner.zip": inner})
    r = send(srv, with_attachment(outer, "outer.zip", "application/zip"))
    assert reply_text(r) == ("550 5.7.1 Attachment outer.zip is not allowed "
                             "(contains payload.js: script)")


def test_harmless_attachments_pass(srv):
    m = with_attachment(pdf(), "invoice.exe.pdf", "application/pdf")
    m.add_attachment(zip_of({"a.txt": "a", "b.csv": "1,2"}),
                     maintype="application", subtype="zip",
                     filename="data.zip")
    m.add_attachment(b"plain words\n", maintype="text", subtype="plain",
                     filename="notes.txt")
    helpers.queued_id(send(srv, m))
    mail_with(srv, "alice", m["Subject"])


def test_encrypted_zip_passes_by_default(srv):
    z = zip_of({"secret.txt": "x" * 100}, encrypt=True)
    m = with_attachment(z, "secret.zip", "application/zip")
    helpers.queued_id(send(srv, m))
    mail_with(srv, "alice", m["Subject"])


def test_encrypted_zip_blocked_when_asked(make_server, tmp_path):
    s = lua_server(make_server, tmp_path,
                   {"lua": ATTACH, "args": {"block_encrypted": True}})
    z = zip_of({"secret.txt": "x" * 100}, encrypt=True)
    r = send(s, with_attachment(z, "secret.zip", "application/zip"))
    assert reply_text(r) == ("550 5.7.1 Attachment secret.zip is not allowed "
                             "(encrypted archive)")
    # not encrypted: fine
    m = with_attachment(zip_of({"open.txt": "x"}), "open.zip",
                        "application/zip")
    helpers.queued_id(send(s, m))


def test_quarantine_action(make_server, tmp_path):
    s = lua_server(make_server, tmp_path,
                   {"lua": ATTACH, "args": {"action": "quarantine"}})
    m = with_attachment(mz_only(), "invoice.pdf.exe")
    with s.raw() as c:
        helpers.ehlo(c)
        qid = helpers.queued_id(send(s, m, client=c))
        sentinel(s, client=c)
    assert not delivered(s, "alice", m["Subject"])
    assert s.spool_files("quarantine") == [qid]
    with open(os.path.join(s.spool, "quarantine", qid), "rb") as f:
        q = f.read()
    assert m["Subject"].encode() in q
    recs = helpers.envelope_records(q)
    assert recs["quarantine"] == [["1"]]
    assert ["attachments.blocked", "invoice.pdf.exe"] in recs.get("tag", [])


def test_custom_block_list_replaces_defaults(make_server, tmp_path):
    s = lua_server(make_server, tmp_path,
                   {"lua": ATTACH, "args": {"block": ["txt", ".CSV"],
                                            "check_archives": False}})
    r = send(s, with_attachment(b"a,b\n", "table.csv", "text/csv"))
    assert reply_text(r) == \
        "550 5.7.1 Attachment table.csv is not allowed (.csv files are blocked)"
    # .exe is no longer in the list (text content: no sniffed match)
    m = with_attachment(b"only text\n", "tool.exe")
    helpers.queued_id(send(s, m))
    # archives are not looked into
    m = with_attachment(zip_of({"x.txt": "x"}), "x.zip", "application/zip")
    helpers.queued_id(send(s, m))
