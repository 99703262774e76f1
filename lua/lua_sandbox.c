/*
 * lua_sandbox.c - a Lua state fit for untrusted filter code: counted
 * allocator with a per-call cap, only the harmless standard libraries,
 * load() for text chunks only, and the instruction budget hook.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua_host.h"

/*
 * lua_alloc - realloc that counts. During a call, growth beyond the call's
 * cap fails: Lua then runs an emergency collection and retries, and raises
 * "not enough memory" if the script really holds that much. Shrinking and
 * freeing never fail.
 */
static void *
lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct lua_inst *in = ud;
	size_t old = ptr ? osize : 0;	/* without ptr, osize is a type tag */
	long long *mine = in->in_call ? in->mem_call : NULL;

	if (nsize == 0) {
		free(ptr);
		in->mem_total -= old;
		if (mine != NULL)
			*mine -= (long long)old;
		return NULL;
	}
	if (nsize > old) {
		size_t grow = nsize - old;
		if (in->mem_total + grow > LUA_STATE_MEMORY_MAX)
			return NULL;
		if (mine != NULL &&
		    *mine + (long long)grow > (long long)in->mem_limit)
			return NULL;
	}
	void *p = realloc(ptr, nsize);
	if (p == NULL)
		return NULL;
	in->mem_total += nsize - old;
	if (mine != NULL)
		*mine += (long long)nsize - (long long)old;
	return p;
}

/*
 * safe_load - load(chunk [, name [, mode [, env]]]) with the mode forced
 * to "t": the real load is this closure's upvalue, out of scripts' reach.
 */
static int
safe_load(lua_State *L)
{
	int top = lua_gettop(L);

	if (top >= 3 && !lua_isnil(L, 3)) {
		const char *mode = luaL_checkstring(L, 3);
		if (strcmp(mode, "t") != 0)
			return luaL_error(L, "load: only text chunks (mode \"t\")");
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 1);
	if (top >= 2)
		lua_pushvalue(L, 2);
	else
		lua_pushnil(L);
	lua_pushliteral(L, "t");
	if (top >= 4)
		lua_pushvalue(L, 4);
	lua_call(L, top >= 4 ? 4 : 3, LUA_MULTRET);
	return lua_gettop(L) - top;
}

/* safe_setmetatable - setmetatable, but metatables with __gc refused */
static int
safe_setmetatable(lua_State *L)
{
	if (lua_istable(L, 2)) {
		lua_getfield(L, 2, "__gc");
		int gc = !lua_isnil(L, -1);
		lua_pop(L, 1);
		if (gc)
			return luaL_error(L, "setmetatable: __gc finalizers are "
			    "not allowed in filters");
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

static void
open_safe_libs(lua_State *L)
{
	static const luaL_Reg libs[] = {
		{ LUA_GNAME, luaopen_base },
		{ LUA_COLIBNAME, luaopen_coroutine },
		{ LUA_TABLIBNAME, luaopen_table },
		{ LUA_STRLIBNAME, luaopen_string },
		{ LUA_MATHLIBNAME, luaopen_math },
		{ LUA_UTF8LIBNAME, luaopen_utf8 },
		{ NULL, NULL },
	};

	for (const luaL_Reg *l = libs; l->func; l++) {
		luaL_requiref(L, l->name, l->func, 1);
		lua_pop(L, 1);
	}
	/* no files, no bytecode: drop dofile/loadfile, keep load for text */
	lua_pushnil(L);
	lua_setglobal(L, "dofile");
	lua_pushnil(L);
	lua_setglobal(L, "loadfile");
	lua_getglobal(L, "load");
	lua_pushcclosure(L, safe_load, 1);
	lua_setglobal(L, "load");
	/* string.dump gives bytecode, which load would refuse anyway */
	lua_getglobal(L, LUA_STRLIBNAME);
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	lua_pop(L, 1);
	/* finalizers run with hooks off, out of the budget's reach */
	lua_getglobal(L, "setmetatable");
	lua_pushcclosure(L, safe_setmetatable, 1);
	lua_setglobal(L, "setmetatable");
	/* print would write to the server's stdout: make it log.info */
	lua_pushnil(L);
	lua_setglobal(L, "print");
}

lua_State *
lua_sandbox_new(struct lua_inst *in)
{
	lua_State *L = lua_newstate(lua_alloc, in);

	if (L == NULL)
		return NULL;
	open_safe_libs(L);
	return L;
}

/*
 * budget_hook - every LUA_HOOK_STEP instructions of the running code.
 * Running out raises an error; since pcall() can catch errors, the hook
 * then fires at every instruction and, in the call's own coroutine,
 * yields: nothing in the script can catch that, and the call fails.
 */
static void
budget_hook(lua_State *L, lua_Debug *ar)
{
	void *ud;
	struct lua_inst *in;

	(void)ar;
	lua_getallocf(L, &ud);
	in = ud;
	if (in->budget_out) {
		struct sluice_call *c = in->current;
		struct lua_call *lc = c ? c->data : NULL;
		lua_State *top = lc ? lc->co : in->load_co;
		if (L == top) {
			lua_yield(L, 0);	/* from a hook: must return now */
			return;
		}
		luaL_error(L, "instruction budget exceeded");
	}
	if (in->budget_left <= LUA_HOOK_STEP) {
		in->budget_left = 0;
		in->budget_out = 1;
		lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
		luaL_error(L, "instruction budget exceeded");
	}
	in->budget_left -= LUA_HOOK_STEP;
}

/* lua_sandbox_budget - count L's instructions (its coroutines inherit it) */
void
lua_sandbox_budget(lua_State *L)
{
	lua_sethook(L, budget_hook, LUA_MASKCOUNT, LUA_HOOK_STEP);
}
