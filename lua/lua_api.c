/*
 * lua_api.c - the globals a filter script sees besides the standard
 * libraries: verdict constructors, log, sleep, time, args, sluice, and
 * dns (lua_api_dns.c) and kv (lua_api_kv.c). The whole API is documented
 * in lua/README.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <lauxlib.h>
#include <lua.h>

#include "envelope.h"
#include "filter.h"
#include "log.h"
#include "loop.h"
#include "lua_host.h"
#include "server.h"
#include "util.h"

#define VERDICT_MT	"sluice.verdict"

/*
 * make_verdict - verdict([text]) / verdict(code, enhanced, text) /
 * verdict{code=, enhanced=, text=}: a table with a private metatable.
 */
static int
make_verdict(lua_State *L, const char *kind)
{
	int n = lua_gettop(L);

	lua_createtable(L, 0, 4);
	lua_pushstring(L, kind);
	lua_setfield(L, -2, "verdict");
	if (n >= 1 && lua_istable(L, 1)) {
		lua_getfield(L, 1, "code");
		lua_setfield(L, -2, "code");
		lua_getfield(L, 1, "enhanced");
		lua_setfield(L, -2, "enhanced");
		lua_getfield(L, 1, "text");
		lua_setfield(L, -2, "text");
	} else if (n >= 2) {
		lua_pushinteger(L, luaL_checkinteger(L, 1));
		lua_setfield(L, -2, "code");
		lua_pushstring(L, luaL_checkstring(L, 2));
		lua_setfield(L, -2, "enhanced");
		if (n >= 3) {
			lua_pushstring(L, luaL_checkstring(L, 3));
			lua_setfield(L, -2, "text");
		}
	} else if (n == 1 && !lua_isnil(L, 1)) {
		lua_pushstring(L, luaL_checkstring(L, 1));
		lua_setfield(L, -2, "text");
	}
	luaL_setmetatable(L, VERDICT_MT);
	return 1;
}

#define VERDICT_FN(fn, kind) \
static int fn(lua_State *L) { return make_verdict(L, kind); }
VERDICT_FN(v_continue, "continue")
VERDICT_FN(v_accept, "accept")
VERDICT_FN(v_reject, "reject")
VERDICT_FN(v_tempfail, "tempfail")
VERDICT_FN(v_discard, "discard")
VERDICT_FN(v_quarantine, "quarantine")
VERDICT_FN(v_disconnect, "disconnect")

int
lua_api_verdict(lua_State *L, int idx, struct verdict *v)
{
	enum sluice_verdict kind;
	const char *s;

	memset(v, 0, sizeof(*v));
	if (idx == 0 || lua_isnoneornil(L, idx))
		return 0;			/* continue */
	idx = lua_absindex(L, idx);
	if (lua_type(L, idx) == LUA_TSTRING)	/* return "accept" */
		return verdict_parse(lua_tostring(L, idx), &v->kind);
	if (!lua_istable(L, idx))
		return -1;
	if (!lua_getmetatable(L, idx))
		return -1;
	luaL_getmetatable(L, VERDICT_MT);
	int ours = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	if (!ours)
		return -1;
	lua_getfield(L, idx, "verdict");
	s = lua_tostring(L, -1);
	int bad = s == NULL || verdict_parse(s, &kind) == -1;
	lua_pop(L, 1);
	if (bad)
		return -1;
	v->kind = kind;
	lua_getfield(L, idx, "code");
	v->code = (int)lua_tointeger(L, -1);
	lua_getfield(L, idx, "enhanced");
	if ((s = lua_tostring(L, -1)) != NULL)
		snprintf(v->enhanced, sizeof(v->enhanced), "%s", s);
	lua_getfield(L, idx, "text");
	if ((s = lua_tostring(L, -1)) != NULL)
		snprintf(v->text, sizeof(v->text), "%s", s);
	lua_pop(L, 3);
	return 0;
}

/* log.info(...) etc.: arguments joined with spaces, tostring()ed */
static int
do_log(lua_State *L, int level)
{
	struct sluice_call *c = lua_current_call(L);
	luaL_Buffer b;
	int n = lua_gettop(L);

	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
		if (i < n)
			luaL_addchar(&b, ' ');
	}
	luaL_pushresult(&b);
	const char *text = lua_tostring(L, -1);
	const char *qid = c && c->subj->env ? c->subj->env->id : "-";
	const char *name = c ? c->filter->name : "lua";
	if (level == 2)
		log_warnx("qid=%s event=filter-log filter=%s text=%s", qid, name,
		    log_q(text));
	else if (level == 1)
		log_info("qid=%s event=filter-log filter=%s text=%s", qid, name,
		    log_q(text));
	else
		log_debug("qid=%s event=filter-log filter=%s text=%s", qid,
		    name, log_q(text));
	return 0;
}

static int l_log_debug(lua_State *L) { return do_log(L, 0); }
static int l_log_info(lua_State *L) { return do_log(L, 1); }
static int l_log_warn(lua_State *L) { return do_log(L, 2); }

static int
l_time(lua_State *L)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec / 1e9);
	return 1;
}

/* sleep(seconds): yields; the worker serves others meanwhile */
static void
sleep_fired(evutil_socket_t fd, short what, void *arg)
{
	struct lua_call *lc = arg;

	(void)fd;
	(void)what;
	event_free(lc->pending);
	lua_wake(lc, 0);
}

static void
sleep_cancel(struct lua_call *lc)
{
	event_free(lc->pending);
}

static int
l_sleep(lua_State *L)
{
	lua_Number s = luaL_checknumber(L, 1);
	struct sluice_call *c = lua_current_call(L);
	struct timeval tv;

	luaL_argcheck(L, s >= 0 && s <= 3600, 1, "0 to 3600 seconds");
	if (c == NULL)
		return luaL_error(L, "sleep: only inside a hook");
	tv.tv_sec = (time_t)s;
	tv.tv_usec = (suseconds_t)((s - (lua_Number)tv.tv_sec) * 1e6);
	struct event *ev = evtimer_new(loop_base(c->subj->worker->loop),
	    sleep_fired, c->data);
	evtimer_add(ev, &tv);
	return lua_wait(L, sleep_cancel, ev);
}

/*
 * sluice.letters(s) -> upper, lower: ASCII capitals and small letters in
 * s, counted in C (a pattern-matching gsub costs ~15 ns a character)
 */
static int
l_letters(lua_State *L)
{
	size_t n;
	const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1,
	    &n);
	lua_Integer up = 0, low = 0;

	for (size_t i = 0; i < n; i++) {
		up += p[i] >= 'A' && p[i] <= 'Z';
		low += p[i] >= 'a' && p[i] <= 'z';
	}
	lua_pushinteger(L, up);
	lua_pushinteger(L, low);
	return 2;
}

/* push_value - a configuration value (args:) as Lua data */
static void
push_value(lua_State *L, const struct sluice_value *v, int depth)
{
	if (v == NULL || v->type == SLUICE_NULL || depth > 32) {
		lua_pushnil(L);
		return;
	}
	if (v->type == SLUICE_STRING) {
		const char *p = v->string + (v->string[0] == '-');
		/* numbers become numbers: integers (25) stay integers */
		if (*p >= '0' && *p <= '9' &&
		    strpbrk(v->string, "xX") == NULL &&
		    lua_stringtonumber(L, v->string) != 0)
			return;
		if (strcmp(v->string, "true") == 0 ||
		    strcmp(v->string, "false") == 0)
			lua_pushboolean(L, v->string[0] == 't');
		else
			lua_pushstring(L, v->string);
		return;
	}
	lua_createtable(L, (int)(v->type == SLUICE_LIST ? v->n : 0),
	    (int)(v->type == SLUICE_MAP ? v->n : 0));
	for (size_t i = 0; i < v->n; i++) {
		push_value(L, &v->items[i], depth + 1);
		if (v->type == SLUICE_LIST)
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		else
			lua_setfield(L, -2, v->keys[i]);
	}
}

void
lua_api_open(lua_State *L, const struct sluice_value *args)
{
	static const luaL_Reg verdicts[] = {
		{ "continue", v_continue }, { "accept", v_accept },
		{ "reject", v_reject }, { "tempfail", v_tempfail },
		{ "discard", v_discard }, { "quarantine", v_quarantine },
		{ "disconnect", v_disconnect }, { NULL, NULL },
	};
	static const luaL_Reg logf[] = {
		{ "debug", l_log_debug }, { "info", l_log_info },
		{ "warn", l_log_warn }, { NULL, NULL },
	};

	luaL_newmetatable(L, VERDICT_MT);
	lua_pop(L, 1);
	lua_pushglobaltable(L);
	luaL_setfuncs(L, verdicts, 0);
	lua_pop(L, 1);
	luaL_newlib(L, logf);
	lua_setglobal(L, "log");
	lua_api_kv_open(L);
	lua_register(L, "sleep", l_sleep);
	lua_register(L, "time", l_time);
	lua_api_dns_open(L);
	push_value(L, args, 0);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_newtable(L);
	}
	lua_setglobal(L, "args");
	lua_createtable(L, 0, 2);
	lua_pushliteral(L, "0.1");
	lua_setfield(L, -2, "version");
	lua_pushcfunction(L, l_letters);
	lua_setfield(L, -2, "letters");
	lua_setglobal(L, "sluice");
}
