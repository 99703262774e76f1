"""The Redis backend of the key/value store (kv: {backend: redis}): two
sluiced nodes against one private redis-server (tests/system/redis_server.py,
started on a free loopback port) share the ratelimit plugin's counters and
greylist.lua's triplets; Lua kv.* round trips land in Redis under the
prefix; an outage, a stalled Redis and a client leaving while its filter
waits on Redis give the configured action within the timeout, and the
nodes reconnect when Redis comes back. greylist.lua is also run on the
in-memory store.

Each test uses its own 127.0.0.x client addresses: the fixtures' readiness
probes connect from 127.0.0.1.
"""
import os
import signal
import time

import pytest

from helpers import check
from redis_server import RedisServer
from test_lua_support import check_t, entry, filter_path, no_dns
from test_plugins import connect, session_to, splugin

GREYLIST = filter_path("greylist.lua")
# a tempfail verdict at RCPT with the stage's default reply
ON_ERROR_TEMPFAIL = (450, "4.7.1 Temporarily rejected by policy, try again "
                     "later")


@pytest.fixture
def redis(tmp_path):
    d = tmp_path / "redis"
    d.mkdir()
    try:
        r = RedisServer(str(d))
    except FileNotFoundError as e:
        pytest.skip(str(e))
    yield r
    r.stop()


def kv_conf(port, **redis):
    conf = {"address": "127.0.0.1", "port": port, "prefix": "sluice:",
            "timeout": "500ms"}
    conf.update(redis)
    return {"backend": "redis", "redis": conf}


def node(make_server, tmp_path, pipeline, kv, name):
    ents = [e if "plugin" in e else entry(tmp_path, **e) for e in pipeline]
    # each node has its own spool and Maildirs, as on separate machines
    return make_server({"pipeline": ents, "kv": kv, "dns": no_dns(),
                        "spool": f"{tmp_path}/{name}/spool",
                        "mailboxes": {"maildir":
                                      f"{tmp_path}/{name}/mail/%d/%u/Maildir"}},
                       name=name)


def greylist(**args):
    return {"lua": GREYLIST, "stages": ["rcpt"], "args": args}


def rcpt_reply(srv, source, rcpt="alice@example.test",
               sender="s@remote.test"):
    c, r = session_to(srv, "rcpt", source=source, sender=sender,
                      rcpts=[rcpt])
    c.close()
    return r


def wait_until(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# -- shared state across two nodes ------------------------------------------

def test_ratelimit_shared_by_two_nodes(make_server, tmp_path, redis):
    """connections_per_ip 3: connections spread over both nodes count
    together; the fourth is refused on either node."""
    rl = {"plugin": splugin("ratelimit"),
          "args": {"window": 60, "connections_per_ip": 3}}
    kv = kv_conf(redis.port)
    a = node(make_server, tmp_path, [rl], kv, "a")
    b = node(make_server, tmp_path, [rl], kv, "b")
    for srv in (a, b, a):
        c, r = connect(srv, "127.0.0.61")
        check(r, 220)
        c.cmd("QUIT")
        c.close()
    want = (421, "4.7.0 Too many connections from 127.0.0.61, try again "
            "later")
    for srv in (b, a):
        c, r = connect(srv, "127.0.0.61")
        assert r == want, r
        c.close()
    assert int(redis.cmd("GET", "sluice:rl:60:conn:127.0.0.61")) == 5
    assert 0 < redis.cmd("TTL", "sluice:rl:60:conn:127.0.0.61") <= 60
    c, r = connect(b, "127.0.0.62")            # another client: own count
    check(r, 220)
    c.close()


def test_greylist_decision_shared_by_two_nodes(make_server, tmp_path, redis):
    """First attempt on node A: 451 4.7.1; a retry on B before the delay:
    451 again; after it, on B: accepted, and then on A too."""
    gl = greylist(delay=2, expire=60, pass_ttl=600)
    kv = kv_conf(redis.port)
    a = node(make_server, tmp_path, [gl], kv, "a")
    b = node(make_server, tmp_path, [gl], kv, "b")
    r = rcpt_reply(a, "127.0.0.71")
    assert r[0] == 451 and r[1].startswith("4.7.1 Greylisted: please try "
                                           "again in"), r
    key = "sluice:gl:t:127.0.0.0/24:s@remote.test:alice@example.test"
    first = int(redis.cmd("GET", key))
    assert abs(first - time.time()) < 5
    assert 50 < redis.cmd("TTL", key) <= 60
    r = rcpt_reply(b, "127.0.0.72")            # same /24, too early
    assert r[0] == 451, r
    time.sleep(2.2)
    check(rcpt_reply(b, "127.0.0.73"), 250)
    assert redis.cmd("GET", key) == "ok"
    assert 590 < redis.cmd("TTL", key) <= 600
    check(rcpt_reply(a, "127.0.0.71"), 250)
    # another sender is a new triplet
    r = rcpt_reply(a, "127.0.0.71", sender="other@remote.test")
    assert r[0] == 451, r


def test_lua_kv_round_trip_through_redis(make_server, tmp_path, redis):
    """kv.set/get/incr/del from a script are Redis keys under the prefix,
    with their TTLs; a value set in Redis is what kv.get returns."""
    script = r"""
local f = {}
function f.rcpt(ctx)
	if ctx.rcpt == "alice@example.test" then
		assert(kv.set("t:k", "v1", 100) == true)
		assert(kv.get("t:k") == "v1")
		assert(kv.get("t:missing") == nil)
		assert(kv.incr("t:n", 5, 100) == 5)
		assert(kv.incr("t:n", 2, 1000) == 7)   -- ttl set on creation only
		assert(kv.incr("t:plain") == 1)
		assert(kv.set("t:gone", "x") == true)
		assert(kv.del("t:gone") == true)
		assert(kv.del("t:gone") == false)
		return
	end
	return reject(550, "5.7.1", "ext=" .. tostring(kv.get("t:ext")))
end
return f
"""
    srv = node(make_server, tmp_path, [{"lua": script}],
               kv_conf(redis.port), "kv")
    check(rcpt_reply(srv, "127.0.0.81"), 250)
    assert redis.cmd("GET", "sluice:t:k") == "v1"
    assert 90 < redis.cmd("TTL", "sluice:t:k") <= 100
    assert redis.cmd("GET", "sluice:t:n") == "7"
    assert 90 < redis.cmd("TTL", "sluice:t:n") <= 100
    assert redis.cmd("TTL", "sluice:t:plain") == -1
    assert redis.cmd("EXISTS", "sluice:t:gone") == 0
    assert redis.cmd("EXISTS", "t:k") == 0          # always prefixed
    redis.cmd("SET", "sluice:t:ext", "from-redis")
    r = rcpt_reply(srv, "127.0.0.81", rcpt="bob@example.test")
    assert r == (550, "5.7.1 ext=from-redis"), r


def test_greylist_on_memory_store(make_server, tmp_path):
    """The same filter on the default in-memory store, one node."""
    srv = node(make_server, tmp_path, [greylist(delay=1, expire=30)],
               {"backend": "memory"}, "mem")
    r = rcpt_reply(srv, "127.0.0.91")
    assert r[0] == 451 and "4.7.1 Greylisted" in r[1], r
    check(rcpt_reply(srv, "127.0.0.92", rcpt="bob@example.test"), 451)
    time.sleep(1.2)
    check(rcpt_reply(srv, "127.0.0.93"), 250)
    check(rcpt_reply(srv, "127.0.0.91"), 250)


def test_greylist_auto_allow_and_exempt(make_server, tmp_path):
    """auto_allow 1: after one passed triplet the network passes
    everything; exempt networks are never greylisted."""
    srv = node(make_server, tmp_path,
               [greylist(delay=1, expire=30, auto_allow=1,
                         exempt=["127.0.5.0/24"])],
               {"backend": "memory"}, "auto")
    check(rcpt_reply(srv, "127.0.5.1"), 250)          # exempt
    check(rcpt_reply(srv, "127.0.4.1"), 451)
    time.sleep(1.2)
    check(rcpt_reply(srv, "127.0.4.1"), 250)
    check(rcpt_reply(srv, "127.0.4.2", rcpt="bob@example.test",
                     sender="new@remote.test"), 250)


@pytest.mark.parametrize("args,what", [
    ({"delay": "5x"}, "'delay' must be a duration"),
    ({"delay": 60, "expire": 30}, "'expire' must be longer than 'delay'"),
    ({"exempt": ["300.1.2.3/24"]}, "bad network in exempt"),
    ({"ipv4_prefix": 33}, "'ipv4_prefix' must be an integer"),
])
def test_greylist_bad_args_stop_the_start(tmp_path, args, what):
    rc, out = check_t(GREYLIST, tmp_path, {"args": args})
    assert rc != 0 and what in out, out


# -- outages ------------------------------------------------------------------

def test_redis_down_gives_on_error_promptly_then_reconnects(
        make_server, tmp_path, redis):
    """Redis stopped: greylist.lua's call gets kv.redis.on_error
    (tempfail, the default) within the 500 ms timeout, the ratelimit
    plugin lets connections through (its on_error: continue here), the
    server keeps serving; once Redis is back both nodes' loops reconnect
    and greylisting works again."""
    redis.stop()
    gl = greylist(delay=60, expire=120)
    srv = node(make_server, tmp_path, [gl], kv_conf(redis.port), "down")
    for _ in range(3):
        t0 = time.monotonic()
        r = rcpt_reply(srv, "127.0.0.101")
        took = time.monotonic() - t0
        assert r == ON_ERROR_TEMPFAIL, r
        assert took < 1.0, took
    log = srv.log()
    assert "event=kv-redis" in log and "state=down" in log, log[-3000:]
    assert "action=tempfail" in log and "kv.get: redis" in log, log[-3000:]

    redis.start()                  # the same port
    assert wait_until(lambda: "Greylisted" in rcpt_reply(
        srv, "127.0.0.101")[1], timeout=12, step=0.5), srv.log()[-3000:]
    assert "state=up" in srv.log()


def test_redis_down_on_error_continue(make_server, tmp_path, redis):
    """kv.redis.on_error: continue lets the mail through while Redis is
    away; the ratelimit plugin follows the same setting."""
    redis.stop()
    rl = {"plugin": splugin("ratelimit"),
          "args": {"window": 60, "connections_per_ip": 1}}
    srv = node(make_server, tmp_path, [rl, greylist(delay=60, expire=120)],
               kv_conf(redis.port, on_error="continue"), "cont")
    for _ in range(3):
        check(rcpt_reply(srv, "127.0.0.111"), 250)


def test_redis_down_ratelimit_tempfails(make_server, tmp_path, redis):
    """kv.redis.on_error tempfail (default): the ratelimit plugin refuses
    the connection it cannot count."""
    redis.stop()
    rl = {"plugin": splugin("ratelimit"),
          "args": {"window": 60, "connections_per_ip": 10}}
    srv = node(make_server, tmp_path, [rl], kv_conf(redis.port), "rlt")
    t0 = time.monotonic()
    c, r = connect(srv, "127.0.0.121")
    assert r[0] == 421 and "Rate limit state unavailable" in r[1], r
    assert time.monotonic() - t0 < 1.5
    c.close()


def test_stalled_redis_times_out_and_client_may_leave(
        make_server, tmp_path, redis):
    """A Redis that accepts but never answers (SIGSTOP): each call ends
    within the timeout with on_error; a client that disconnects while its
    filter waits does no harm; after SIGCONT the node works again."""
    gl = greylist(delay=60, expire=120)
    srv = node(make_server, tmp_path, [gl], kv_conf(redis.port), "stall")
    check(rcpt_reply(srv, "127.0.0.131"), 451)        # connected, works
    os.kill(redis.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = rcpt_reply(srv, "127.0.0.132")
        assert r == ON_ERROR_TEMPFAIL, r
        assert time.monotonic() - t0 < 1.0 + 0.5
        # leave while the filter waits on Redis
        for _ in range(3):
            c, r = session_to(srv, "mail", source="127.0.0.133")
            c.send("RCPT TO:<alice@example.test>\r\n")
            c.close()
        time.sleep(0.8)
    finally:
        os.kill(redis.pid, signal.SIGCONT)
    assert srv.alive()
    assert wait_until(lambda: "Greylisted" in rcpt_reply(
        srv, "127.0.0.134")[1], timeout=12, step=0.5), srv.log()[-3000:]
