"""Lua filters that wait: sleep() and dns.query()/dns.rbl() yield the
hook's coroutine, the worker serves other sessions meanwhile; DNS answers
come from a real dnsmasq."""
import threading
import time

import pytest

import helpers
from dns_server import DnsServer
from test_lua_support import (lua_server, new_message, send, mail_with,
                              header_values, dot_stuffed, as_bytes, wait_log)

SLEEPER = """
return { message = function(ctx)
  local t0 = time()
  sleep(1)
  ctx:add_header("X-Slept", string.format("%.2f", time() - t0))
end }
"""


def test_sleep_does_not_block_the_worker(make_server, tmp_path):
    # one worker: if sleep() blocked it, two sessions would take 2 s
    s = lua_server(make_server, tmp_path, {"lua": SLEEPER}, workers=1)
    msgs = [new_message(), new_message()]
    replies = [None, None]

    def one(i):
        replies[i] = send(s, msgs[i])
    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - t0
    for r in replies:
        helpers.queued_id(r)
    assert 0.95 <= elapsed < 1.8, f"two 1 s sleeps took {elapsed:.2f} s"
    for m in msgs:
        data = mail_with(s, "alice", m["Subject"])
        assert 0.95 <= float(header_values(data, "X-Slept")[0]) < 1.5


def test_other_sessions_are_served_while_a_hook_sleeps(make_server,
                                                       tmp_path):
    script = """
    return { rcpt = function(ctx)
      if ctx.sender == "slow@remote.test" then sleep(2) end
    end }
    """
    s = lua_server(make_server, tmp_path, {"lua": script}, workers=1)
    with s.raw() as slow:
        helpers.ehlo(slow)
        helpers.check(slow.cmd("MAIL FROM:<slow@remote.test>"), 250)
        slow.send("RCPT TO:<alice@example.test>\r\n")
        t0 = time.monotonic()
        with s.raw() as fast:              # banner, EHLO, a whole message
            helpers.ehlo(fast)
            helpers.queued_id(send(s, new_message(), client=fast,
                                   sender="fast@remote.test"))
        assert time.monotonic() - t0 < 1.0
        helpers.check(slow.reply(timeout=5), 250)
        assert time.monotonic() - t0 >= 1.9


DNS_SCRIPT = r"""
local function show(v, err)
  if v == nil then return "nil:" .. tostring(err) end
  if type(v) ~= "table" then return tostring(v) end
  local out = {}
  for _, x in ipairs(v) do
    if type(x) == "table" then
      out[#out + 1] = x.pref .. "/" .. x.host
    else
      out[#out + 1] = x
    end
  end
  table.sort(out)
  return "{" .. table.concat(out, ",") .. "}"
end
return { message = function(ctx)
  ctx:add_header("X-A", show(dns.query("multi.example.test", "A")))
  ctx:add_header("X-Default", show(dns.query("host.example.test")))
  ctx:add_header("X-MX", show(dns.query("example.test", "MX")))
  ctx:add_header("X-TXT", show(dns.query("example.test", "TXT")))
  ctx:add_header("X-TXT-Multi", show(dns.query("multi.example.test", "TXT")))
  ctx:add_header("X-NX", show(dns.query("nothing.example.test", "A")))
  ctx:add_header("X-NODATA", show(dns.query("host.example.test", "MX")))
  ctx:add_header("X-RBL-Listed", show(dns.rbl(ctx.client_addr, "bl.example.test")))
  ctx:add_header("X-RBL-Clean", show(dns.rbl(ctx.client_addr, "clean.example.test")))
  ctx:add_header("X-RBL-Other", show(dns.rbl("192.0.2.7", "bl.example.test")))
  ctx:add_header("X-RBL-Not-IP", show(dns.rbl("not-an-ip", "bl.example.test")))
  ctx:add_header("X-Rdns", tostring(ctx.client_rdns))
  local ok, err = pcall(dns.query, "example.test", "BOGUS")
  ctx:add_header("X-Bad-Type", tostring(ok) .. " " .. tostring(err):match("unknown type %w+"))
end }
"""

RECORDS = {
    "A": {"multi.example.test": ["192.0.2.1", "192.0.2.2"],
          "host.example.test": "192.0.2.10",
          "1.0.0.127.bl.example.test": "127.0.0.2",
          "7.2.0.192.bl.example.test": "127.0.0.4"},
    "MX": {"example.test": [(10, "mx1.example.test"),
                            (20, "mx2.example.test")]},
    "TXT": {"example.test": "v=spf1 -all",
            "multi.example.test": [["part 1,", " part 2"]]},
    "PTR": {"127.0.0.1": "client.example.test"},
    "NXDOMAIN": ["clean.example.test"],
}


def test_dns_query_and_rbl(make_server, tmp_path):
    with DnsServer(str(tmp_path), RECORDS) as dns:
        s = lua_server(make_server, tmp_path, {"lua": DNS_SCRIPT},
                       dns={"servers": [f"127.0.0.1:{dns.port}"],
                            "timeout": "2s", "attempts": 1,
                            "hosts_file": False})   # X-Rdns from DNS
        m = new_message()
        helpers.queued_id(send(s, m))
        data = mail_with(s, "alice", m["Subject"])

    def h(name):
        return header_values(data, name)[0]
    assert h("X-A") == "{192.0.2.1,192.0.2.2}"
    assert h("X-Default") == "{192.0.2.10}"
    assert h("X-MX") == "{10/mx1.example.test,20/mx2.example.test}"
    assert h("X-TXT") == "{v=spf1 -all}"
    assert h("X-TXT-Multi") == "{part 1, part 2}"   # strings joined
    assert h("X-NX") == "nil:NXDOMAIN"
    assert h("X-NODATA") == "{}"
    assert h("X-RBL-Listed") == "127.0.0.2"
    assert h("X-RBL-Clean") == "nil:NXDOMAIN"     # not listed
    assert h("X-RBL-Other") == "127.0.0.4"
    assert h("X-RBL-Not-IP") == "nil:nil"
    assert h("X-Rdns") == "client.example.test"
    assert h("X-Bad-Type") == "false unknown type BOGUS"


def test_dns_failure_is_an_answer_not_an_error(make_server, tmp_path):
    # a server that never answers: the resolver's timeout bounds the wait
    # and the script gets nil plus a reason
    script = """
    return { message = function(ctx)
      local v, err = dns.query("example.test", "A")
      ctx:add_header("X-Result", tostring(v) .. " " .. tostring(err))
    end }
    """
    import socket
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    try:
        s = lua_server(make_server, tmp_path, {"lua": script},
                       dns={"servers": [f"127.0.0.1:{sink.getsockname()[1]}"],
                            "timeout": "1s", "attempts": 1})
        m = new_message()
        t0 = time.monotonic()
        helpers.queued_id(send(s, m))
        assert time.monotonic() - t0 < 8
        data = mail_with(s, "alice", m["Subject"])
        v = header_values(data, "X-Result")[0]
        assert v.startswith("nil ") and v != "nil nil", v
    finally:
        sink.close()


DROPPED = """
local f = {}
function f.rcpt(ctx)
  if ctx.sender == "dns@remote.test" then dns.query("slow.invalid", "A") end
end
function f.message(ctx)
  sleep(ctx:header("Subject") == "long" and 10 or 0.5)
end
function f.disconnect(ctx)
  sleep(0.2)
  log.info("disconnect hook done", ctx.session_id)
end
return f
"""


@pytest.mark.parametrize("case", ["sleeping", "timed-out", "dns"])
def test_client_gone_while_a_hook_waits(make_server, tmp_path, case):
    """The client closes the connection while its hook is suspended (in
    sleep, past its timeout, or in a DNS query): the call ends quietly,
    the disconnect hook still runs, the server goes on."""
    import socket
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # never answers
    sink.bind(("127.0.0.1", 0))
    try:
        over = {}
        if case == "dns":     # a server that never answers (each
            over["dns"] = {   # connection's rDNS waits 1 s too)
                "servers": [f"127.0.0.1:{sink.getsockname()[1]}"],
                "timeout": "1s", "attempts": 1}
        s = lua_server(make_server, tmp_path, {"lua": DROPPED,
                                               "timeout": "1s"}, **over)
        before = s.run_log().count("disconnect hook done")
        c = s.raw()
        helpers.ehlo(c)
        if case == "dns":
            helpers.check(c.cmd("MAIL FROM:<dns@remote.test>"), 250)
            c.send("RCPT TO:<alice@example.test>\r\n")
        else:
            m = new_message(subject="long" if case == "timed-out" else "x")
            helpers.check(c.cmd("MAIL FROM:<a@remote.test>"), 250)
            helpers.check(c.cmd("RCPT TO:<alice@example.test>"), 250)
            helpers.check(c.cmd("DATA"), 354)
            c.send(dot_stuffed(as_bytes(m)))
        time.sleep(0.1)
        c.close()
        helpers.wait_for(lambda: s.run_log().count("disconnect hook done")
                         > before, timeout=8,
                         msg="the disconnect hook after the client left")
        if case == "timed-out":
            wait_log(s, "reason=timeout")
        m = new_message()
        helpers.queued_id(send(s, m, sender="ok@remote.test"))
        mail_with(s, "alice", m["Subject"])
        assert s.alive()
    finally:
        sink.close()
