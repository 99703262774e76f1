"""The client's name (client_rdns for filters, {client_name} for milters),
looked up at connect when the pipeline has filters: the hosts file first,
as the system resolver does, then DNS (a real dnsmasq, or a UDP socket
that never answers); dns.hosts_file: false skips the hosts file. The
banner waits for the name, so a DNS server that does not answer must cost
at most the resolver's timeout, and nothing when the hosts file knows the
address."""
import socket
import time

import pytest

import helpers
from dns_server import DnsServer
from test_lua_support import lua_server, new_message, send, mail_with, \
    header_values

SHOW_NAME = """
return { message = function(ctx)
  ctx:add_header("X-Rdns", tostring(ctx.client_rdns))
end }
"""


@pytest.fixture
def silent_dns():
    """A bound UDP socket that never answers: every query times out."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


def banner_and_name(server):
    """Seconds from connect to the 220, and the X-Rdns of a message sent
    on that session."""
    t0 = time.monotonic()
    c = server.raw()
    waited = time.monotonic() - t0
    m = new_message()
    try:
        helpers.ehlo(c, "client.example.test")
        helpers.queued_id(send(server, m, client=c))
    finally:
        c.close()
    data = mail_with(server, "alice", m["Subject"])
    return waited, header_values(data, "X-Rdns")


def test_hosts_file_answers_without_dns(make_server, tmp_path, silent_dns):
    want = helpers.hosts_name()
    if want is None:
        pytest.skip("/etc/hosts has no name for 127.0.0.1")
    s = lua_server(make_server, tmp_path, {"lua": SHOW_NAME},
                   dns={"servers": [f"127.0.0.1:{silent_dns}"],
                        "timeout": "3s", "attempts": 1})
    for _ in range(3):
        waited, names = banner_and_name(s)
        assert names == [want]
        assert waited < 1.5, f"banner after {waited:.2f} s"


def test_dns_name_when_hosts_file_is_off(make_server, tmp_path):
    with DnsServer(str(tmp_path),
                   {"PTR": {"127.0.0.1": "client.example.test"}}) as dns:
        s = lua_server(make_server, tmp_path, {"lua": SHOW_NAME},
                       dns={"servers": [f"127.0.0.1:{dns.port}"],
                            "timeout": "2s", "attempts": 1,
                            "hosts_file": False})
        _, names = banner_and_name(s)
    assert names == ["client.example.test"]


def test_silent_dns_costs_at_most_its_timeout(make_server, tmp_path,
                                              silent_dns):
    s = lua_server(make_server, tmp_path, {"lua": SHOW_NAME},
                   dns={"servers": [f"127.0.0.1:{silent_dns}"],
                        "timeout": "1s", "attempts": 1,
                        "hosts_file": False})
    for _ in range(2):          # and the server keeps serving
        waited, names = banner_and_name(s)
        assert names == ["unknown"]
        assert 0.9 <= waited < 3.0, f"banner after {waited:.2f} s"
