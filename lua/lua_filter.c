/*
 * lua_filter.c - Lua scripts as filters (lua_host.h): loading, the
 * per-worker states, and running each hook call in its own coroutine.
 *
 * load() compiles and runs the script once in a scratch state to find
 * syntax errors and the stage functions it defines before anything is
 * served; attach() gives every worker its own state; call() starts a
 * coroutine, which may yield inside host functions (DNS, sleep) and is
 * resumed from the loop by lua_wake(). Errors, the instruction budget and
 * the memory cap all end in call_fail(): the filter's on_error verdict.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "metrics.h"
#include "conf.h"
#include "conf_filter.h"
#include "filter_plugin.h"
#include "kv_redis.h"
#include "log.h"
#include "lua_host.h"
#include "server.h"
#include "util.h"

#define SCRIPT_MAX	(4u << 20)

struct lua_script {
	char *path;
	char *source;
	size_t len;
	uint64_t budget;
	uint64_t memory;
};

static int
read_file(const char *path, char **out, size_t *len, char *err,
    size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "lua %s: %s", path, strerror(errno));
		return -1;
	}
	buf = xmalloc(SCRIPT_MAX + 1);
	n = fread(buf, 1, SCRIPT_MAX + 1, f);
	fclose(f);
	if (n > SCRIPT_MAX) {
		free(buf);
		snprintf(err, errlen, "lua %s: larger than %u bytes", path,
		    SCRIPT_MAX);
		return -1;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/*
 * instantiate - a new sandboxed state running the script: the module
 * table it returns is kept in the registry. The chunk runs with the
 * budget and memory cap of one call.
 */
static struct lua_inst *
instantiate(struct filter *f, struct worker *w, char *err, size_t errlen)
{
	struct lua_script *sc = f->data;
	struct lua_inst *in = xcalloc(1, sizeof(*in));
	char chunkname[512];

	in->filter = f;
	in->worker = w;
	in->mem_limit = sc->memory;
	if ((in->L = lua_sandbox_new(in)) == NULL) {
		snprintf(err, errlen, "lua %s: cannot create a state", sc->path);
		free(in);
		return NULL;
	}
	lua_api_open(in->L, f->conf->args);
	lua_api_ctx_open(in->L);
	snprintf(chunkname, sizeof(chunkname), "@%s", sc->path);
	in->in_call = 1;
	in->mem_load = 0;
	in->mem_call = &in->mem_load;
	in->budget_left = sc->budget;
	in->budget_out = 0;
	/* the chunk runs in a coroutine, so the budget can stop it for good */
	lua_State *co = in->load_co = lua_newthread(in->L);
	int nres = 0, st = luaL_loadbufferx(co, sc->source, sc->len, chunkname,
	    "t");
	if (st == LUA_OK) {
		lua_sandbox_budget(co);
		st = lua_resume(co, in->L, 0, &nres);
	}
	in->in_call = 0;
	in->load_co = NULL;
	if (st != LUA_OK) {
		snprintf(err, errlen, "lua %s: %s", sc->path, st == LUA_YIELD ?
		    (in->budget_out ? "instruction budget exceeded while "
		    "loading" : "the script yielded while loading") :
		    lua_tostring(co, -1) ? lua_tostring(co, -1) : "error");
		goto fail;
	}
	if (nres < 1)
		lua_pushnil(co);
	lua_xmove(co, in->L, 1);	/* the module table, onto the state */
	lua_remove(in->L, -2);		/* drop the coroutine */
	if (!lua_istable(in->L, -1)) {
		snprintf(err, errlen, "lua %s: the script must return a table "
		    "of stage functions (got %s)", sc->path,
		    luaL_typename(in->L, -1));
		goto fail;
	}
	in->module_ref = luaL_ref(in->L, LUA_REGISTRYINDEX);
	return in;
fail:
	lua_close(in->L);
	free(in);
	return NULL;
}

/* script_stages - the stages the module table has functions for */
static unsigned
script_stages(struct lua_inst *in, char *err, size_t errlen,
    const char *path)
{
	unsigned stages = 0;
	lua_State *L = in->L;

	lua_rawgeti(L, LUA_REGISTRYINDEX, in->module_ref);
	lua_pushnil(L);
	while (lua_next(L, -2) != 0) {
		enum sluice_stage s;
		if (lua_type(L, -2) != LUA_TSTRING ||
		    stage_parse(lua_tostring(L, -2), &s) == -1) {
			if (lua_type(L, -2) == LUA_TSTRING &&
			    lua_isfunction(L, -1))
				snprintf(err, errlen, "lua %s: '%s' is not a "
				    "stage name", path, lua_tostring(L, -2));
		} else if (lua_isfunction(L, -1))
			stages |= SLUICE_STAGE(s);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return stages;
}

static int
lua_load_filter(struct filter *f, char *err, size_t errlen)
{
	const struct conf_filter *cf = f->conf;
	struct lua_script *sc = xcalloc(1, sizeof(*sc));
	struct lua_inst *in;

	sc->path = xstrdup(cf->target);
	sc->budget = cf->budget ? cf->budget : LUA_DEFAULT_BUDGET;
	sc->memory = cf->memory ? cf->memory : LUA_DEFAULT_MEMORY;
	f->data = sc;
	if (read_file(sc->path, &sc->source, &sc->len, err, errlen) == -1)
		goto fail;
	if ((in = instantiate(f, NULL, err, errlen)) == NULL)
		goto fail;
	err[0] = '\0';
	unsigned stages = script_stages(in, err, errlen, sc->path);
	lua_close(in->L);
	free(in);
	if (err[0] != '\0')
		goto fail;
	if (stages == 0) {
		snprintf(err, errlen, "lua %s: the returned table has no stage "
		    "functions (connect, helo, mail, rcpt, data, message, ...)",
		    sc->path);
		goto fail;
	}
	if (cf->stages & ~stages) {
		snprintf(err, errlen, "lua %s: 'stages' names a stage the "
		    "script has no function for", sc->path);
		goto fail;
	}
	f->stages = cf->stages ? cf->stages : stages;
	return 0;
fail:
	free(sc->source);
	free(sc->path);
	free(sc);
	f->data = NULL;
	return -1;
}

static void
lua_unload_filter(struct filter *f)
{
	struct lua_script *sc = f->data;

	if (sc == NULL)
		return;
	free(sc->source);
	free(sc->path);
	free(sc);
	f->data = NULL;
}

static void *
lua_attach(struct filter *f, struct worker *w, char *err, size_t errlen)
{
	return instantiate(f, w, err, errlen);
}

static void
lua_detach(struct filter *f, void *inst)
{
	struct lua_inst *in = inst;

	(void)f;
	lua_close(in->L);
	free(in);
}

struct sluice_call *
lua_current_call(lua_State *L)
{
	void *ud;

	lua_getallocf(L, &ud);
	return ((struct lua_inst *)ud)->current;
}

struct worker *
lua_current_worker(lua_State *L)
{
	void *ud;

	lua_getallocf(L, &ud);
	return ((struct lua_inst *)ud)->worker;
}

/*
 * call_end - release the ctx object of a call, and its coroutine: one
 * that finished normally is kept for the next call (a new thread per call
 * is most of what a trivial hook costs)
 */
static void
call_end(struct sluice_call *c, int reusable)
{
	struct lua_call *lc = c->data;
	struct lua_inst *in = lc->inst;
	lua_State *L = in->L;

	free(lc->store_err);
	lua_api_ctx_invalidate(L, lc->ctx_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, lc->ctx_ref);
	if (reusable && lua_status(lc->co) == LUA_OK &&
	    in->nidle < (int)(sizeof(in->idle) / sizeof(in->idle[0]))) {
		lua_settop(lc->co, 0);
		in->idle[in->nidle++] = lc->co_ref;
	} else
		luaL_unref(L, LUA_REGISTRYINDEX, lc->co_ref);
	free(lc);
	c->data = NULL;
}

static void
resume(struct lua_call *lc, struct sluice_call *c, int nargs)
{
	struct lua_inst *in = lc->inst;
	int nres = 0, st, store = 0;
	char why[512];

	in->current = c;
	in->in_call = 1;
	in->mem_call = &lc->mem;
	in->budget_left = lc->budget_left;
	in->budget_out = lc->budget_left == 0;
	st = lua_resume(lc->co, NULL, nargs, &nres);
	lc->budget_left = in->budget_left;
	in->in_call = 0;
	in->mem_call = NULL;
	in->current = NULL;
	if (st == LUA_YIELD && lc->waiting)
		return;				/* host work pending */
	if (st == LUA_YIELD && in->budget_out)
		snprintf(why, sizeof(why), "instruction budget exceeded");
	else if (st == LUA_YIELD)
		snprintf(why, sizeof(why), "the hook yielded outside a host "
		    "call (coroutine.yield at the top level)");
	else if (st != LUA_OK) {
		const char *e = lua_tostring(lc->co, -1);
		store = lc->store_err != NULL && e != NULL &&
		    strcmp(e, lc->store_err) == 0;
		luaL_traceback(in->L, lc->co, e, 0);
		snprintf(why, sizeof(why), "%s", lua_tostring(in->L, -1));
		lua_pop(in->L, 1);
	} else if (lua_api_verdict(lc->co, nres ? -nres : 0, &c->verdict)
	    == -1)
		snprintf(why, sizeof(why), "the hook returned %s, not a "
		    "verdict", luaL_typename(lc->co, -nres));
	else {
		call_end(c, 1);
		call_finish(c);
		return;
	}
	call_end(c, 0);
	metrics_inc(in->budget_out || st == LUA_ERRMEM ?
	    M_LUA_BUDGET : M_LUA_ERRORS, c->filter->name);
	if (store && c->subj->worker->kv != NULL)
		call_fail_with(c, kv_redis_on_error(c->subj->worker->kv), why);
	else
		call_fail(c, why);
}

static void
lua_call_filter(struct sluice_call *c)
{
	struct lua_inst *in = c->inst;
	struct lua_script *sc = c->filter->data;
	struct lua_call *lc = xcalloc(1, sizeof(*lc));
	lua_State *L = in->L;

	lc->inst = in;
	lc->call = c;
	c->data = lc;
	if (in->nidle > 0) {
		lc->co_ref = in->idle[--in->nidle];
		lua_rawgeti(L, LUA_REGISTRYINDEX, lc->co_ref);
		lc->co = lua_tothread(L, -1);
		lua_pop(L, 1);
	} else {
		lc->co = lua_newthread(L);
		lc->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	lua_rawgeti(lc->co, LUA_REGISTRYINDEX, in->module_ref);
	lua_getfield(lc->co, -1, stage_name(c->stage));
	lua_remove(lc->co, -2);
	lua_api_ctx_push(lc->co, c);
	lua_pushvalue(lc->co, -1);
	lc->ctx_ref = luaL_ref(lc->co, LUA_REGISTRYINDEX);
	lc->budget_left = sc->budget;
	lua_sandbox_budget(lc->co);
	resume(lc, c, 1);
}

/* lua_abort - the call timed out: drop its host work and its coroutine */
static void
lua_abort(struct sluice_call *c)
{
	struct lua_call *lc = c->data;

	if (lc == NULL)
		return;
	if (lc->waiting && lc->cancel != NULL)
		lc->cancel(lc);
	lua_resetthread(lc->co);
	call_end(c, 0);
}

int
lua_wait(lua_State *L, void (*cancel)(struct lua_call *), void *op)
{
	return lua_wait_k(L, cancel, op, NULL);
}

int
lua_wait_k(lua_State *L, void (*cancel)(struct lua_call *), void *op,
    lua_KFunction k)
{
	struct sluice_call *c = lua_current_call(L);
	struct lua_call *lc = c ? c->data : NULL;

	if (lc == NULL || L != lc->co)
		return luaL_error(L, "this function can only be called from "
		    "the hook itself, not from a nested coroutine");
	lc->waiting = 1;
	lc->cancel = cancel;
	lc->pending = op;
	return lua_yieldk(L, 0, 0, k);
}

void
lua_wake(struct lua_call *lc, int nresults)
{
	struct sluice_call *c;

	lc->waiting = 0;
	lc->cancel = NULL;
	lc->pending = NULL;
	c = lc->call;
	resume(lc, c, nresults);
}

const struct filter_ops filter_lua_ops = {
	.kind = "lua",
	.load = lua_load_filter,
	.unload = lua_unload_filter,
	.attach = lua_attach,
	.detach = lua_detach,
	.call = lua_call_filter,
	.abort = lua_abort,
};
