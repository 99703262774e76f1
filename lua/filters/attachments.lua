--[[
attachments.lua - refuse (or quarantine) messages carrying dangerous
attachments. Runs at the message stage on ctx:parts().

A part is blocked when
  * its file name's LAST extension is in `block` (case-insensitive, so
    "invoice.pdf.exe" counts as .exe and "Report.EXE" too; trailing dots and
    blanks are ignored the way Windows ignores them; RFC 2047/2231 encoded
    names arrive decoded from the host);
  * its content, sniffed by libmagic, has a type in `block_types` (a
    renamed executable: "invoice.pdf" that is really application/x-dosexec);
  * it is an archive (zip, tar, 7z, rar, gz ...) and, with check_archives,
    a member's name has a blocked extension (nested archives included:
    the host lists "inner.zip/evil.exe");
  * it is an archive with encrypted entries and block_encrypted is true
    (its members cannot be checked);
  * its archive listing was cut at a host limit and block_truncated is true;
  * its name holds Unicode direction controls (U+202E ...: "invoice\u{202E}fdp.exe"
    shows as "invoiceexe.pdf") and block_bidi is true.

args (all optional) and their defaults:
  block           = DEFAULT_BLOCK below (executables, scripts, installers,
                    shortcuts, macro-enabled Office documents)
  extra_block     = {}      extensions added to `block` (keep the defaults)
  block_types     = DEFAULT_TYPES below (executables of Windows, Linux, macOS)
  check_archives  = true
  block_encrypted = false
  block_truncated = false
  block_bidi      = true
  action          = "reject"  -- or "quarantine"
  code            = 550       -- reply code and enhanced code of a reject
  enhanced        = "5.7.1"

The reject text names the file and why:
  550 5.7.1 Attachment invoice.pdf.exe is not allowed (executable)
  550 5.7.1 Attachment report.pdf is not allowed (executable content: application/x-dosexec)
  550 5.7.1 Attachment files.zip is not allowed (contains setup.exe: executable)
  550 5.7.1 Attachment secret.zip is not allowed (encrypted archive)
Every decision is logged and tagged (ctx:tag("attachments.blocked")).

Pipeline entry:
  - {lua: lua/filters/attachments.lua, stages: [message],
     args: {block: [exe, js, vbs, scr], check_archives: true, action: reject}}
]]

local DEFAULT_BLOCK = {
	-- Windows executables and libraries
	"exe", "com", "scr", "pif", "cpl", "dll", "sys", "drv", "ocx", "msi",
	"msp", "mst", "msc", "gadget", "application", "appx", "appxbundle",
	"msix", "msixbundle", "xbap",
	-- scripts and interpreters
	"bat", "cmd", "js", "jse", "vbs", "vbe", "vb", "wsf", "wsh", "wsc",
	"ws", "sct", "hta", "ps1", "ps1xml", "ps2", "ps2xml", "psc1", "psc2",
	"psm1", "psd1", "jar", "reg", "inf", "scf", "chm", "hlp", "mde", "ade",
	"adp", "mda", "mdb", "accde", "shb", "shs",
	-- shortcuts and disk images that bypass "mark of the web"
	"lnk", "url", "iso", "img", "vhd", "vhdx",
	-- macro-enabled Office documents
	"docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppam", "ppsm",
	"sldm",
	-- Unix / macOS installers
	"sh", "command", "app", "dmg", "pkg", "deb", "rpm", "apk",
}

local DEFAULT_TYPES = {
	"application/x-dosexec",		-- MZ / PE
	"application/x-msdownload",
	"application/vnd.microsoft.portable-executable",
	"application/x-ms-ne-executable",
	"application/x-executable",		-- ELF
	"application/x-pie-executable",
	"application/x-sharedlib",
	"application/x-mach-binary",		-- Mach-O
	"application/x-mach-o-executable",
	"application/x-ms-shortcut",		-- .lnk
	"application/x-msi",
	"application/x-ole-storage+msi",
	"application/hta",
}

-- why an extension is dangerous, for the reply text
local CATEGORY = {
	executable = { "exe", "com", "scr", "pif", "cpl", "dll", "sys", "drv",
	    "ocx", "msc", "jar", "chm", "hlp" },
	script = { "bat", "cmd", "js", "jse", "vbs", "vbe", "vb", "wsf", "wsh",
	    "wsc", "ws", "sct", "hta", "ps1", "ps1xml", "ps2", "ps2xml", "psc1",
	    "psc2", "psm1", "psd1", "sh", "command", "reg", "inf", "scf" },
	["macro document"] = { "docm", "dotm", "xlsm", "xltm", "xlam", "pptm",
	    "potm", "ppam", "ppsm", "sldm", "mde", "ade", "adp", "mda", "mdb",
	    "accde" },
	shortcut = { "lnk", "url", "shb", "shs" },
	["disk image"] = { "iso", "img", "vhd", "vhdx", "dmg" },
	installer = { "msi", "msp", "mst", "appx", "appxbundle", "msix",
	    "msixbundle", "pkg", "deb", "rpm", "apk", "application", "xbap",
	    "gadget" },
}

-- a YAML scalar may arrive as a number ("7" -> 7): back to text
local function str(v)
	if type(v) == "number" and math.type(v) == "float" and v == math.floor(v) then
		return string.format("%d", v)
	end
	return tostring(v)
end

local function set_of(list, lower)
	local s = {}
	if type(list) == "table" then
		for _, v in ipairs(list) do
			v = str(v)
			if lower then v = v:lower() end
			s[(v:gsub("^%.", ""))] = true
		end
	elseif list ~= nil then		-- a single word instead of a list
		local v = str(list)
		if lower then v = v:lower() end
		s[(v:gsub("^%.", ""))] = true
	end
	return s
end

local function opt(name, default)
	local v = args[name]
	if v == nil then return default end
	return v
end

local BLOCK = set_of(opt("block", DEFAULT_BLOCK), true)
for ext in pairs(set_of(opt("extra_block", {}), true)) do BLOCK[ext] = true end
local TYPES = set_of(opt("block_types", DEFAULT_TYPES), true)
local CHECK_ARCHIVES = opt("check_archives", true) ~= false
local BLOCK_ENCRYPTED = opt("block_encrypted", false) == true
local BLOCK_TRUNCATED = opt("block_truncated", false) == true
local BLOCK_BIDI = opt("block_bidi", true) ~= false
local ACTION = str(opt("action", "reject")):lower()
local CODE = tonumber(opt("code", 550)) or 550
local ENHANCED = str(opt("enhanced", "5.7.1"))

if ACTION ~= "reject" and ACTION ~= "quarantine" then
	error("attachments.lua: action must be reject or quarantine, not " .. ACTION)
end

local CATEGORY_OF = {}
for cat, exts in pairs(CATEGORY) do
	for _, e in ipairs(exts) do CATEGORY_OF[e] = cat end
end

-- basename: the last component of a path ("C:\x\a.exe", "dir/a.exe")
local function basename(name)
	name = name:gsub("/+$", "")
	return name:match("([^/\\]*)$") or name
end

-- extension: the last one, lower case; nil when none. Windows drops
-- trailing dots and blanks, so "evil.exe. " is evil.exe.
local function extension(name)
	local base = basename(name):gsub("[%s%.]+$", "")
	local ext = base:match("%.([^%.]+)$")
	return ext and ext:lower()
end

-- shown: a name safe for an SMTP reply line: printable ASCII only, short
local function shown(name)
	local out = {}
	local ok = pcall(function()
		for _, cp in utf8.codes(name) do
			out[#out + 1] = (cp >= 32 and cp < 127) and utf8.char(cp) or "?"
		end
	end)
	if not ok then
		out = { (name:gsub("[^\32-\126]", "?")) }
	end
	local s = table.concat(out)
	if #s > 100 then s = s:sub(1, 97) .. "..." end
	return s
end

local function ext_reason(ext)
	return CATEGORY_OF[ext] or ("." .. ext .. " files are blocked")
end

-- check_part: nil, or the reason the part is not allowed
-- bidi controls (U+202A..U+202E, U+2066..U+2069) make "invoice<RLO>fdp.exe"
-- look like "invoiceexe.pdf": a name carrying them is never honest
local function has_bidi(name)
	return name:find("\226\128[\170-\174]") or name:find("\226\129[\166-\169]")
end

local function check_part(p)
	if p.filename then
		local ext = extension(p.filename)
		if ext and BLOCK[ext] then return ext_reason(ext) end
		if BLOCK_BIDI and has_bidi(p.filename) then
			return "misleading name"
		end
	end
	-- libmagic may append words ("application/x-executable, no program
	-- header"): the type is what comes before them
	local sniffed = p.sniffed_type and p.sniffed_type:match("^%s*([^%s,;]+)")
	sniffed = sniffed and sniffed:lower()
	if sniffed and TYPES[sniffed] then
		return "executable content: " .. sniffed
	end
	if p.archive_members and CHECK_ARCHIVES then
		for _, m in ipairs(p.archive_members) do
			local ext = extension(m)
			if ext and BLOCK[ext] then
				return "contains " .. shown(basename(m)) .. ": " ..
				    ext_reason(ext)
			end
		end
	end
	if p.archive_encrypted and BLOCK_ENCRYPTED then
		return "encrypted archive"
	end
	if p.archive_truncated and CHECK_ARCHIVES and BLOCK_TRUNCATED then
		return "archive too large to check"
	end
	return nil
end

local f = {}

function f.message(ctx)
	local parts, problems = ctx:parts()
	if problems then
		log.debug("attachments: MIME problems:", problems)
	end
	for _, p in ipairs(parts) do
		if not p.is_multipart then
			local why = check_part(p)
			if why then
				local name = p.filename and shown(p.filename) or
				    ("(unnamed part " .. p.index .. ")")
				local text = "Attachment " .. name ..
				    " is not allowed (" .. why .. ")"
				ctx:tag("attachments.blocked", name)
				log.info("attachments:", ACTION, text)
				if ACTION == "quarantine" then
					return quarantine(text)
				end
				return reject(CODE, ENHANCED, text)
			end
		end
	end
	return nil
end

return f
