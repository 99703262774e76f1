--[[
noop.lua - a filter that does nothing at every stage: each hook returns
nil (continue). The pipeline benchmark runs it to measure what a Lua
filter costs per stage (a coroutine, a ctx object, one call).

  - {lua: lua/filters/noop.lua}
]]

local function noop(ctx)
	return nil
end

return {
	connect = noop,
	helo = noop,
	auth = noop,
	mail = noop,
	rcpt = noop,
	data = noop,
	message = noop,
	queue = noop,
	deliver = noop,
	delivered = noop,
	deferred = noop,
	bounced = noop,
	disconnect = noop,
}
