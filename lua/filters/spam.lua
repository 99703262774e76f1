--[[
spam.lua - a small rule-based spam score, SpamAssassin style. Runs at the
message stage: adds X-Spam-Score and X-Spam-Status, then rejects or
quarantines above the thresholds.

  X-Spam-Score: 7.2
  X-Spam-Status: Yes, score=7.2 required=5.0 tests=MISSING_DATE,RBL_ZEN_EXAMPLE

The score is the sum of the weights of the tests that hit:

  DNSBL
    RBL_<ZONE>          the client's IPv4 address is listed in a zone of
                        `rbl_zones` (dns.rbl lookups, in order, one at a time)
    DNSBL_TAG           the dnsbl C plugin (or any earlier filter) tagged
                        the session or transaction "dnsbl.score": that number
                        times `dnsbl_tag_weight` is added
  headers
    MISSING_DATE MISSING_MESSAGE_ID MISSING_FROM MISSING_SUBJECT MISSING_TO
    INVALID_MESSAGE_ID  Message-ID without <local@domain>
    FROM_NAME_MISMATCH  the From display name holds an address whose domain
                        is not the From address's ("service@bank.test"
                        <x@elsewhere.test>)
    SUBJECT_ALL_CAPS    at least 10 letters and no lower-case one
    RECEIVED_MANY       more than `max_received` Received fields (a loop or
                        a forged trail)
  content (text/plain and text/html parts, decoded, up to max_scan bytes)
    PHRASE_<WORDS>      each phrase of `phrases` found (case-insensitive)
    UPPERCASE_RATIO     more than `uppercase_ratio` of the letters are
                        capitals (at least 40 ASCII letters)
    HTML_ONLY           HTML text without a text/plain alternative

args (all optional) and their defaults:
  required_score   = 5.0    "Yes" in X-Spam-Status from this score on
  quarantine_score = nil    quarantine from this score on (nil/false: never)
  reject_score     = 15.0   reject from this score on (nil/false: never)
  reject_text      = "Message rejected as spam (score %s)"   (%s = score)
  reject_code      = 550, reject_enhanced = "5.7.1"
  rbl_zones        = {}     list of zones, or {zone = weight} map, or list
                            of {zone = "zen.example", weight = 3.0}
  rbl_weight       = 3.0    weight of a zone given without one
  dnsbl_tag_weight = 1.0    0 ignores the dnsbl plugin's "dnsbl.score" tag
  weights          = {}     overrides of the test weights below, by name
  phrases          = DEFAULT_PHRASES below: list of phrases (weight
                     phrase_weight) or {phrase = weight} map
  phrase_weight    = 1.0
  max_received     = 20
  uppercase_ratio  = 0.6
  max_scan         = 262144 bytes of text read for the content tests
  strip_headers    = true   delete X-Spam-* fields the message came with
  skip_authenticated = true no score for AUTHenticated sessions
  add_headers      = true

Also tagged for later filters: ctx:tag("spam.score"), ctx:tag("spam.tests").

Pipeline entry:
  - {lua: lua/filters/spam.lua, stages: [message],
     args: {rbl_zones: {zen.example: 4.0}, quarantine_score: 8, reject_score: 12}}
]]

local WEIGHTS = {
	MISSING_DATE = 1.0,
	MISSING_MESSAGE_ID = 1.0,
	MISSING_FROM = 1.5,
	MISSING_SUBJECT = 0.5,
	MISSING_TO = 0.5,
	INVALID_MESSAGE_ID = 0.5,
	FROM_NAME_MISMATCH = 2.0,
	SUBJECT_ALL_CAPS = 1.5,
	RECEIVED_MANY = 1.0,
	UPPERCASE_RATIO = 1.5,
	HTML_ONLY = 1.0,
}

local DEFAULT_PHRASES = {
	["viagra"] = 2.5,
	["cialis"] = 2.5,
	["lottery winner"] = 2.0,
	["you have won"] = 2.0,
	["wire transfer"] = 1.0,
	["western union"] = 1.5,
	["100% free"] = 1.5,
	["act now"] = 1.0,
	["click here"] = 0.5,
	["risk-free"] = 1.0,
	["verify your account"] = 2.0,
	["urgent reply"] = 1.5,
	["nigerian prince"] = 3.0,
	["bitcoin wallet"] = 1.0,
}

local function opt(name, default)
	local v = args[name]
	if v == nil then return default end
	return v
end

local function num(v, default)
	if v == nil or v == false then return default end
	return tonumber(v) or error("spam.lua: not a number: " .. tostring(v))
end

for k, v in pairs(opt("weights", {})) do
	WEIGHTS[k] = num(v)
end

local REQUIRED = num(opt("required_score", 5.0))
local QUARANTINE = num(opt("quarantine_score", nil), nil)
local REJECT = num(opt("reject_score", 15.0), nil)
local REJECT_TEXT = tostring(opt("reject_text",
    "Message rejected as spam (score %s)"))
local REJECT_CODE = num(opt("reject_code", 550))
local REJECT_ENH = tostring(opt("reject_enhanced", "5.7.1"))
local RBL_WEIGHT = num(opt("rbl_weight", 3.0))
local TAG_WEIGHT = num(opt("dnsbl_tag_weight", 1.0))
local PHRASE_WEIGHT = num(opt("phrase_weight", 1.0))
local MAX_RECEIVED = num(opt("max_received", 20))
local UPPER_RATIO = num(opt("uppercase_ratio", 0.6))
local MAX_SCAN = num(opt("max_scan", 262144))
local STRIP = opt("strip_headers", true) ~= false
local SKIP_AUTH = opt("skip_authenticated", true) ~= false
local ADD_HEADERS = opt("add_headers", true) ~= false

-- test name of a zone or phrase: RBL_ZEN_EXAMPLE, PHRASE_CLICK_HERE
local function test_name(prefix, s)
	s = s:upper():gsub("[^%w]+", "_"):gsub("^_+", ""):gsub("_+$", "")
	return prefix .. s:sub(1, 24)
end

-- zones: list of names, {zone = weight} map, or list of {zone=, weight=}
local ZONES = {}
do
	local z = opt("rbl_zones", {})
	if type(z) == "string" then z = { z } end
	for k, v in pairs(z) do
		if type(k) == "number" and type(v) == "table" then
			ZONES[#ZONES + 1] = { zone = tostring(v.zone),
			    weight = num(v.weight, RBL_WEIGHT) }
		elseif type(k) == "number" then
			ZONES[#ZONES + 1] = { zone = tostring(v), weight = RBL_WEIGHT }
		else
			ZONES[#ZONES + 1] = { zone = tostring(k), weight = num(v) }
		end
	end
	table.sort(ZONES, function(a, b) return a.zone < b.zone end)
	for _, e in ipairs(ZONES) do e.test = test_name("RBL_", e.zone) end
end

local PHRASES = {}
do
	local p = opt("phrases", DEFAULT_PHRASES)
	for k, v in pairs(p) do
		if type(k) == "number" then
			PHRASES[#PHRASES + 1] = { text = tostring(v):lower(),
			    weight = PHRASE_WEIGHT }
		else
			PHRASES[#PHRASES + 1] = { text = tostring(k):lower(),
			    weight = num(v) }
		end
	end
	table.sort(PHRASES, function(a, b) return a.text < b.text end)
	for _, e in ipairs(PHRASES) do e.test = test_name("PHRASE_", e.text) end
end

local function fmt(x)
	return string.format("%.1f", x)
end

-- the checks add {name, weight} to hits
local function hit(hits, name, weight)
	weight = weight or WEIGHTS[name] or 0
	if weight ~= 0 then
		hits[#hits + 1] = { name = name, weight = weight }
	end
end

local function check_rbl(ctx, hits)
	local ip = ctx.client_addr
	if not ip or not ip:match("^%d+%.%d+%.%d+%.%d+$") then return end
	for _, z in ipairs(ZONES) do
		local answer, err = dns.rbl(ip, z.zone)
		if answer then
			hit(hits, z.test, z.weight)
			log.debug("spam:", ip, "listed in", z.zone, answer)
		elseif err and err ~= "NXDOMAIN" then
			log.debug("spam:", z.zone, "lookup failed:", err)
		end
	end
end

local function check_dnsbl_tag(ctx, hits)
	local v = tonumber(ctx:tag("dnsbl.score"))
	if v and v ~= 0 and TAG_WEIGHT ~= 0 then
		hit(hits, "DNSBL_TAG", v * TAG_WEIGHT)
	end
end

local function addr_domain(s)
	local d = s and s:match("@([%w%.%-]+)")
	return d and d:lower()
end

local function check_headers(ctx, hits)
	if not ctx:header("Date") then hit(hits, "MISSING_DATE") end
	local mid = ctx:header_raw("Message-ID")
	if not mid then
		hit(hits, "MISSING_MESSAGE_ID")
	elseif not mid:match("^%s*<[^<>@%s]+@[^<>@%s]+>%s*$") then
		hit(hits, "INVALID_MESSAGE_ID")
	end
	if not ctx:header("To") and not ctx:header("Cc") then
		hit(hits, "MISSING_TO")
	end
	local from = ctx:header("From")
	if not from then
		hit(hits, "MISSING_FROM")
	else
		-- "Display Name" <addr> or Display Name <addr>
		local name, addr = from:match('^%s*"?(.-)"?%s*<([^<>]*)>%s*$')
		if name and name ~= "" then
			local nd, ad = addr_domain(name), addr_domain(addr)
			if nd and ad and nd ~= ad and
			    ad:sub(-#nd - 1) ~= "." .. nd then
				hit(hits, "FROM_NAME_MISMATCH")
			end
		end
	end
	local subject = ctx:header("Subject")
	if not subject or subject:match("^%s*$") then
		hit(hits, "MISSING_SUBJECT")
	else
		local _, upper = subject:gsub("%u", "")
		local _, lower = subject:gsub("%l", "")
		if upper >= 10 and lower == 0 then hit(hits, "SUBJECT_ALL_CAPS") end
	end
	local received = 0	-- header_raw needs no RFC 2047 decoding
	while ctx:header_raw("Received", received + 1) do
		received = received + 1
	end
	if received > MAX_RECEIVED then hit(hits, "RECEIVED_MANY") end
end

local function check_content(ctx, hits)
	local texts, have_plain, have_html, total = {}, false, false, 0
	for _, p in ipairs(ctx:parts()) do
		local ct = p.content_type or ""
		if not p.is_multipart and (ct == "text/plain" or ct == "text/html")
		    and not (p.is_attachment and p.disposition == "attachment")
		    and total < MAX_SCAN then
			local c = p.content()
			if #c > MAX_SCAN - total then c = c:sub(1, MAX_SCAN - total) end
			total = total + #c
			if ct == "text/html" then
				have_html = true
				c = c:gsub("<[^>]*>", " "):gsub("&nbsp;", " ")
			else
				have_plain = true
			end
			texts[#texts + 1] = c
		end
	end
	if have_html and not have_plain then hit(hits, "HTML_ONLY") end
	local text = table.concat(texts, "\n")
	local lower = text:lower()
	for _, ph in ipairs(PHRASES) do
		if lower:find(ph.text, 1, true) then
			hit(hits, ph.test, ph.weight)
		end
	end
	local up, low = sluice.letters(text)	-- counted in C
	if up + low >= 40 and up / (up + low) > UPPER_RATIO then
		hit(hits, "UPPERCASE_RATIO")
	end
end

local function strip(ctx)
	for _, name in ipairs({ "X-Spam-Score", "X-Spam-Status", "X-Spam-Flag" }) do
		local n = 0
		while ctx:header_raw(name) and n < 100 do
			ctx:delete_header(name, 1)
			n = n + 1
		end
	end
end

local f = {}

function f.message(ctx)
	if SKIP_AUTH and ctx.auth_user then return nil end
	local hits = {}
	check_rbl(ctx, hits)
	check_dnsbl_tag(ctx, hits)
	check_headers(ctx, hits)
	check_content(ctx, hits)

	local score, names = 0, {}
	for _, h in ipairs(hits) do
		score = score + h.weight
		names[#names + 1] = h.name
	end
	table.sort(names)
	score = math.floor(score * 10 + 0.5) / 10
	local tests = #names > 0 and table.concat(names, ",") or "none"
	local spam = score >= REQUIRED

	ctx:tag("spam.score", fmt(score))
	ctx:tag("spam.tests", tests)
	if STRIP then strip(ctx) end
	if ADD_HEADERS then
		ctx:add_header("X-Spam-Score", fmt(score))
		ctx:add_header("X-Spam-Status", string.format(
		    "%s, score=%s required=%s tests=%s", spam and "Yes" or "No",
		    fmt(score), fmt(REQUIRED), tests))
	end
	log.info("spam: score=" .. fmt(score), "tests=" .. tests)
	if REJECT and score >= REJECT then
		return reject(REJECT_CODE, REJECT_ENH,
		    (REJECT_TEXT:gsub("%%s", fmt(score))))
	end
	if QUARANTINE and score >= QUARANTINE then
		return quarantine("spam score " .. fmt(score))
	end
	return nil
end

return f
