--[[
recipients.lua - recipient validation and per-recipient routing tags, at
the rcpt stage (the core has already refused recipients that are not
local mailboxes or relay domains; this narrows that down further).

For each RCPT TO, in this order:
  1. deny:  a recipient matching a `deny` pattern is refused
            550 5.1.1 <noreply@example.test>: Recipient address rejected: Access denied
  2. allow: when `allow` is given, a recipient matching none of it is refused
            550 5.1.1 <x@example.test>: Recipient address rejected: User unknown
  3. limits: more than `max_rcpts_per_message` recipients in this
            transaction, or more than `max_rcpts_per_sender` recipients
            for the same envelope sender within `sender_window` seconds
            (counted in the shared kv store, so across sessions and
            workers) is answered
            452 4.5.3 Too many recipients ...
  4. routes: the first matching route tags the transaction
            ctx:tag("route:" .. rcpt, route)   e.g. route:carol@partner.test = relay
            (or `default_route` when none matches and it is set). The tag
            travels with the message to the queue and delivery stages.

Patterns are globs matched against the whole address, case-insensitively:
"*" any run of characters, "?" one character. Shorthands: "@domain" and
"domain" both mean "*@domain".

args (all optional) and their defaults:
  allow                 = nil  (every recipient the core accepts)
  deny                  = {}
  routes                = {}   {pattern = route} map (more specific patterns
                               win: exact addresses, then longer patterns)
                               or a list of {match = pattern, route = name}
                               (first match wins)
  default_route         = nil
  max_rcpts_per_message = nil  (no limit beyond the core's limits.recipients)
  max_rcpts_per_sender  = nil
  sender_window         = 3600 seconds

Pipeline entry:
  - {lua: lua/filters/recipients.lua, stages: [rcpt],
     args: {allow: ["*@example.test"], deny: ["noreply@*"],
            routes: {"*@partner.test": relay}, max_rcpts_per_sender: 500}}
]]

local function opt(name, default)
	local v = args[name]
	if v == nil then return default end
	return v
end

local function as_list(v)
	if v == nil then return nil end
	if type(v) ~= "table" then return { v } end
	return v
end

-- glob -> anchored Lua pattern, lower case
local function compile(glob)
	glob = tostring(glob):lower()
	if glob:sub(1, 1) == "@" then
		glob = "*" .. glob
	elseif not glob:find("@", 1, true) then
		glob = "*@" .. glob
	end
	local p = glob:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0")
	    :gsub("%*", ".*"):gsub("%?", ".")
	return { glob = glob, pat = "^" .. p .. "$" }
end

local function compile_all(list)
	local out = {}
	for _, g in ipairs(as_list(list) or {}) do out[#out + 1] = compile(g) end
	return out
end

local function first_match(list, addr)
	for _, e in ipairs(list) do
		if addr:match(e.pat) then return e end
	end
	return nil
end

-- specificity: literal characters count, an exact address beats any glob
local function literal_len(glob)
	local _, wild = glob:gsub("[%*%?]", "")
	return (wild == 0 and 10000 or 0) + #glob - wild
end

local ALLOW = opt("allow", nil) ~= nil and compile_all(opt("allow")) or nil
local DENY = compile_all(opt("deny", {}))
local DEFAULT_ROUTE = opt("default_route", nil)
local MAX_MSG = tonumber(opt("max_rcpts_per_message", nil))
local MAX_SENDER = tonumber(opt("max_rcpts_per_sender", nil))
local WINDOW = math.tointeger(tonumber(opt("sender_window", 3600))) or 3600

local ROUTES = {}
do
	local r = opt("routes", {})
	if #r > 0 then				-- list: config order
		for _, e in ipairs(r) do
			local c = compile(e.match or e.pattern)
			c.route = tostring(e.route)
			ROUTES[#ROUTES + 1] = c
		end
	else					-- map: most specific first
		for k, v in pairs(r) do
			local c = compile(k)
			c.route = tostring(v)
			ROUTES[#ROUTES + 1] = c
		end
		table.sort(ROUTES, function(a, b)
			local la, lb = literal_len(a.glob), literal_len(b.glob)
			if la ~= lb then return la > lb end
			return a.glob < b.glob
		end)
	end
end

local f = {}

function f.rcpt(ctx)
	local rcpt = ctx.rcpt
	if rcpt == nil then return nil end
	local addr = rcpt:lower()

	if first_match(DENY, addr) then
		log.info("recipients: denied", rcpt)
		return reject(550, "5.1.1", "<" .. rcpt ..
		    ">: Recipient address rejected: Access denied")
	end
	if ALLOW and not first_match(ALLOW, addr) then
		log.info("recipients: not allowed", rcpt)
		return reject(550, "5.1.1", "<" .. rcpt ..
		    ">: Recipient address rejected: User unknown")
	end
	if MAX_MSG and #ctx.rcpts >= MAX_MSG then
		return tempfail(452, "4.5.3", "Too many recipients for this "
		    .. "message, send the rest in another one")
	end
	if MAX_SENDER then
		local sender = ctx.sender
		local who = (sender == nil or sender == "") and "<>" or
		    sender:lower()
		local key = "recipients.lua:rcpts:" .. who
		local n = kv.incr(key, 1, WINDOW)
		if n > MAX_SENDER then
			kv.incr(key, -1, WINDOW)
			log.info("recipients: rate limit for", sender, n - 1)
			return tempfail(452, "4.5.3", "Too many recipients from "
			    .. "this sender, try again later")
		end
	end
	local r = first_match(ROUTES, addr)
	local route = r and r.route or DEFAULT_ROUTE
	if route ~= nil then
		ctx:tag("route:" .. rcpt, tostring(route))
	end
	return nil
end

return f
