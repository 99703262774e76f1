--[[
greylist.lua - greylisting (RFC 6647) at the rcpt stage.

A delivery attempt from an unknown triplet (client network, envelope
sender, recipient) is refused with

    451 4.7.1 Greylisted: please try again in N seconds

and the triplet is remembered as pending for `expire` seconds. A retry
of the same triplet once `delay` seconds have passed (and before the
pending entry expires) is let through, and the triplet is then known
good for `pass_ttl` seconds (every later pass renews it). Real MTAs
retry; most spam engines do not. A retry that comes too early is
refused again, with the time left, and does not restart the clock.

With `auto_allow = N`, a client network that has passed N distinct
triplets is let through without checks for `pass_ttl` seconds.
Authenticated clients are never greylisted, nor clients in `exempt`.

The state lives in the shared kv store: with `kv: {backend: redis}` in
the configuration every sluiced node sees the same triplets, so a retry
may land on any node behind the MX records or the load balancer. Keys
(after kv.redis.prefix):
    <key_prefix>:t:<net>:<sender>:<rcpt>   first attempt time, or "ok"
    <key_prefix>:n:<net>                   passed triplets (auto_allow)
    <key_prefix>:a:<net>                   "1": auto-allowed
When the store fails (Redis down or slow), kv.* raises an error and the
call gets kv.redis.on_error (default tempfail; continue lets mail in
ungreylisted while Redis is away).

args (all optional) and their defaults; durations are seconds or
"30s", "5m", "4h", "35d":
  delay        = 300      seconds a triplet must wait before its retry
  expire       = 86400    how long a pending triplet waits for that retry
  pass_ttl     = 3024000  (35 days) how long a passed triplet stays good
  ipv4_prefix  = 24       client networks (32: the address itself)
  ipv6_prefix  = 64
  auto_allow   = 0        passed triplets before a network is allowed; 0: off
  exempt       = {}       client networks never greylisted,
                          e.g. {"192.0.2.0/24", "2001:db8::/32"}
  key_prefix   = "gl"
  text         = "Greylisted: please try again in %d seconds"
                          (%d: the seconds left before a retry passes)

Pipeline entry:
  - {lua: lua/filters/greylist.lua, stages: [rcpt],
     args: {delay: 5m, expire: 1d, pass_ttl: 35d, auto_allow: 5}}
]]

local function opt(name, default)
	local v = args[name]
	if v == nil then return default end
	return v
end

local UNITS = { s = 1, m = 60, h = 3600, d = 86400 }

local function duration(name, default)
	local v = opt(name, default)
	local n = math.tointeger(tonumber(v))
	if n == nil and type(v) == "string" then
		local num, unit = v:match("^(%d+)([smhd])$")
		if num then n = math.tointeger(tonumber(num)) * UNITS[unit] end
	end
	if n == nil or n < 0 then
		error("greylist: '" .. name .. "' must be a duration, not "
		    .. tostring(v))
	end
	return n
end

local function count(name, default, max)
	local n = math.tointeger(tonumber(opt(name, default)))
	if n == nil or n < 0 or n > max then
		error("greylist: '" .. name .. "' must be an integer from 0 to "
		    .. max)
	end
	return n
end

-- addresses -------------------------------------------------------------

-- ipv4 - the four octets of a dotted quad, or nil
local function ipv4(s)
	local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
	if not a then return nil end
	local o = { tonumber(a), tonumber(b), tonumber(c), tonumber(d) }
	for _, x in ipairs(o) do
		if x > 255 then return nil end
	end
	return o
end

-- ipv6 - eight 16-bit groups, or nil (an embedded IPv4 tail is allowed)
local function ipv6(s)
	if not s:find(":", 1, true) then return nil end
	local tail = s:match(":(%d+%.%d+%.%d+%.%d+)$")
	if tail then
		local o = ipv4(tail)
		if not o then return nil end
		s = s:sub(1, #s - #tail) .. string.format("%x:%x",
		    o[1] * 256 + o[2], o[3] * 256 + o[4])
	end
	local head, rest = s:match("^(.-)::(.*)$")
	local function groups(part)
		local g = {}
		if part == "" then return g end
		for x in (part .. ":"):gmatch("([^:]*):") do
			if not x:match("^%x%x?%x?%x?$") then return nil end
			g[#g + 1] = tonumber(x, 16)
		end
		return g
	end
	local out
	if head then
		local h, r = groups(head), groups(rest)
		if not h or not r or #h + #r > 7 then return nil end
		out = h
		for _ = 1, 8 - #h - #r do out[#out + 1] = 0 end
		for _, x in ipairs(r) do out[#out + 1] = x end
	else
		out = groups(s)
		if not out or #out ~= 8 then return nil end
	end
	return out
end

-- parse_addr - family (4 or 6) and a list of bits-per-item numbers
local function parse_addr(s)
	local o = ipv4(s)
	if o then return 4, o, 8 end
	local g = ipv6(s)
	if not g then return nil end
	if g[1] == 0 and g[2] == 0 and g[3] == 0 and g[4] == 0 and g[5] == 0
	    and g[6] == 0xffff then		-- ::ffff:a.b.c.d
		return 4, { g[7] >> 8, g[7] & 255, g[8] >> 8, g[8] & 255 }, 8
	end
	return 6, g, 16
end

-- masked - the items with everything after `bits` bits cleared
local function masked(items, width, bits)
	local out = {}
	for i, x in ipairs(items) do
		local keep = math.max(0, math.min(width, bits - (i - 1) * width))
		local mask = ((1 << keep) - 1) << (width - keep)
		out[i] = x & mask
	end
	return out
end

local function net_text(family, items, bits)
	if family == 4 then
		return table.concat(items, ".") .. (bits < 32 and "/" .. bits or "")
	end
	local hex = {}
	for i, x in ipairs(items) do hex[i] = string.format("%x", x) end
	return table.concat(hex, ":") .. (bits < 128 and "/" .. bits or "")
end

local function parse_net(s)
	local addr, bits = tostring(s):match("^([^/]+)/(%d+)$")
	addr = addr or tostring(s)
	local family, items, width = parse_addr(addr)
	if not family then error("greylist: bad network in exempt: " .. s) end
	local max = family == 4 and 32 or 128
	bits = math.tointeger(tonumber(bits or max))
	if bits > max then error("greylist: bad prefix in exempt: " .. s) end
	return { family = family, bits = bits,
	    items = masked(items, width, bits), width = width }
end

-- settings --------------------------------------------------------------

local DELAY = duration("delay", 300)
local EXPIRE = duration("expire", 86400)
local PASS_TTL = duration("pass_ttl", 35 * 86400)
local V4_BITS = count("ipv4_prefix", 24, 32)
local V6_BITS = count("ipv6_prefix", 64, 128)
local AUTO_ALLOW = count("auto_allow", 0, 1000000)
local PREFIX = tostring(opt("key_prefix", "gl"))
local TEXT = tostring(opt("text", "Greylisted: please try again in %d "
    .. "seconds"))
if EXPIRE <= DELAY then
	error("greylist: 'expire' must be longer than 'delay'")
end
if V4_BITS == 0 or V6_BITS == 0 then
	error("greylist: prefixes must be at least 1")
end

local EXEMPT = {}
do
	local e = opt("exempt", {})
	if type(e) ~= "table" then e = { e } end
	for _, s in ipairs(e) do EXEMPT[#EXEMPT + 1] = parse_net(s) end
end

local function exempt(family, items)
	for _, n in ipairs(EXEMPT) do
		if n.family == family then
			local m = masked(items, n.width, n.bits)
			local same = true
			for i = 1, #m do same = same and m[i] == n.items[i] end
			if same then return true end
		end
	end
	return false
end

-- the filter ------------------------------------------------------------

local f = {}

local function refuse(left)
	local text = TEXT:find("%d", 1, true) and TEXT:format(left) or TEXT
	return tempfail(451, "4.7.1", text)
end

function f.rcpt(ctx)
	if ctx.auth_user ~= nil or ctx.client_addr == nil then return end
	local family, items, width = parse_addr(ctx.client_addr)
	if not family then return end
	if exempt(family, items) then return end
	local bits = family == 4 and V4_BITS or V6_BITS
	local net = net_text(family, masked(items, width, bits), bits)
	if AUTO_ALLOW > 0 and kv.get(PREFIX .. ":a:" .. net) then return end

	local sender = ctx.sender == "" and "<>" or ctx.sender:lower()
	local key = PREFIX .. ":t:" .. net .. ":" .. sender .. ":" ..
	    ctx.rcpt:lower()
	local seen = kv.get(key)
	if seen == "ok" then
		kv.set(key, "ok", PASS_TTL)		-- still in use: renew
		return
	end
	local now = math.floor(time())
	local first = math.tointeger(tonumber(seen))
	if first == nil then			-- new (or garbage)
		kv.set(key, tostring(now), EXPIRE)
		log.info("greylist: new triplet", net, sender, ctx.rcpt)
		return refuse(DELAY)
	end
	if now - first < DELAY then
		return refuse(DELAY - (now - first))
	end
	kv.set(key, "ok", PASS_TTL)
	log.info("greylist: passed after", now - first, "s:", net, sender,
	    ctx.rcpt)
	if AUTO_ALLOW > 0 then
		local n = kv.incr(PREFIX .. ":n:" .. net, 1, PASS_TTL)
		if n >= AUTO_ALLOW then
			kv.set(PREFIX .. ":a:" .. net, "1", PASS_TTL)
			log.info("greylist: auto-allowed", net, "after", n,
			    "passed triplets")
		end
	end
end

return f
