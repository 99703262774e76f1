-- verdicts.lua - test filter: returns the verdict the client asks for.
-- The instruction is in the envelope sender (mail stage on) or the HELO
-- name (helo stage): "v-<stage>-<verdict>-<form>", e.g.
-- MAIL FROM:<v-rcpt-reject-c@remote.test>. args.connect does the same
-- for the connect stage ("<verdict>-<form>").
-- Forms: d verdict(), t verdict(text), c verdict(code, enhanced, text),
-- x verdict{code=, enhanced=, text=}, w a code of the wrong class,
-- z a code out of range (x60-x99), s the verdict's name as a string.
local CODES = {
	reject = { 553, "5.7.26" }, tempfail = { 452, "4.2.2" },
	disconnect = { 421, "4.3.2" }, accept = { 250, "2.0.0" },
	discard = { 250, "2.0.0" }, quarantine = { 250, "2.0.0" },
}
local WRONG = { reject = { 451, "4.7.1" }, tempfail = { 550, "5.1.1" },
	disconnect = { 554, "5.0.0" } }
local ctors = { reject = reject, tempfail = tempfail, accept = accept,
	discard = discard, quarantine = quarantine, disconnect = disconnect,
	continue = continue }

local function verdict(kind, form)
	local ctor = ctors[kind]
	if form == "d" then return ctor() end
	if form == "t" then return ctor(kind .. " by text form") end
	if form == "c" then
		local c = CODES[kind]
		return ctor(c[1], c[2], kind .. " by code form")
	end
	if form == "x" then
		local c = CODES[kind]
		return ctor{ code = c[1], enhanced = c[2], text = kind .. " by table form" }
	end
	if form == "w" then
		local c = WRONG[kind]
		return ctor(c[1], c[2], kind .. " with a wrong class")
	end
	if form == "z" then
		return ctor(kind == "reject" and 599 or 499,
		    kind == "reject" and "5.7.1" or "4.7.1", kind .. " out of range")
	end
	if form == "s" then return kind end
	error("bad form " .. tostring(form))
end

local function want(ctx, stage)
	local s = stage == "helo" and ctx.helo or ctx.sender
	if not s then return nil end
	local st, kind, form = s:match("^v%-(%a+)%-(%a+)%-(%a)")
	if st == stage then return verdict(kind, form) end
	return nil
end

local f = {}
function f.connect(ctx)
	if args.connect then
		local kind, form = args.connect:match("^(%a+)%-(%a)$")
		return verdict(kind, form)
	end
end
for _, st in ipairs({ "helo", "mail", "rcpt", "data", "message", "queue" }) do
	f[st] = function(ctx) return want(ctx, st) end
end
return f
