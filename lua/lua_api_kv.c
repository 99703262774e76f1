/*
 * lua_api_kv.c - kv.get/set/incr/del for scripts, on the store the
 * configuration chose (kv.backend):
 *
 *   kv.get(key) -> string or nil
 *   kv.set(key, value [, ttl]) -> true (memory store: false if refused)
 *   kv.incr(key [, by [, ttl]]) -> the new integer; ttl set on creation
 *   kv.del(key) -> true if the key existed
 *
 * memory: answered at once from kvstore.h. redis: the coroutine yields
 * while the worker's Redis connection (core/kv_redis.h) works, like
 * dns.query; a failure (Redis down, timeout, refused command) raises an
 * error, and a call ended by that error gets kv.redis.on_error instead of
 * the entry's on_error (a script may pcall() to decide for itself). With
 * Redis, kv works only inside hooks, not at load time, and not from a
 * coroutine the script made.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "filter.h"
#include "kv_redis.h"
#include "kvstore.h"
#include "lua_host.h"
#include "server.h"
#include "util.h"

static const char *const op_names[] = { "get", "set", "incr", "del" };

struct lua_kv {
	struct lua_call *lc;
	struct kv_req *req;
	enum kv_op op;
};

/* -- Redis: yield, answer from the loop ----------------------------------- */

static void
on_result(const struct kv_result *res, void *arg)
{
	struct lua_kv *k = arg;
	struct lua_call *lc = k->lc;
	lua_State *co = lc->co;
	enum kv_op op = k->op;

	free(k);
	if (!res->ok) {
		free(lc->store_err);
		lc->store_err = NULL;		/* set by after_wait() */
		lua_pushfstring(co, "kv.%s: redis: %s", op_names[op],
		    res->error ? res->error : "failed");
		lua_pushboolean(co, 0);
		lua_wake(lc, 2);
		return;
	}
	switch (op) {
	case KV_OP_GET:
		if (res->value == NULL)
			lua_pushnil(co);
		else
			lua_pushstring(co, res->value);
		break;
	case KV_OP_SET:
		lua_pushboolean(co, 1);
		break;
	case KV_OP_INCR:
		lua_pushinteger(co, res->number);
		break;
	case KV_OP_DEL:
		lua_pushboolean(co, res->number > 0);
		break;
	}
	lua_pushboolean(co, 1);
	lua_wake(lc, 2);
}

/* after_wait - resumed with (result, true) or (message, false) */
static int
after_wait(lua_State *L, int status, lua_KContext ctx)
{
	struct sluice_call *c = lua_current_call(L);
	struct lua_call *lc = c->data;

	(void)status;
	(void)ctx;
	if (lua_toboolean(L, -1)) {
		lua_pop(L, 1);
		return 1;
	}
	lua_pop(L, 1);
	luaL_where(L, 1);
	lua_insert(L, -2);
	lua_concat(L, 2);
	free(lc->store_err);
	lc->store_err = xstrdup(lua_tostring(L, -1));
	return lua_error(L);
}

static void
cancel(struct lua_call *lc)
{
	struct lua_kv *k = lc->pending;

	kv_redis_cancel(k->req);
	free(k);
}

static int
redis_start(lua_State *L, struct kv_redis *r, enum kv_op op, const char *key,
    const char *value, long long delta, unsigned ttl)
{
	struct sluice_call *c = lua_current_call(L);
	struct lua_kv *k;

	if (c == NULL)
		return luaL_error(L, "kv.%s: the redis store answers only "
		    "inside a hook", op_names[op]);
	k = xcalloc(1, sizeof(*k));
	k->lc = c->data;
	k->op = op;
	if (L != k->lc->co) {
		free(k);
		return luaL_error(L, "kv.%s: with the redis store, only from "
		    "the hook itself, not from a nested coroutine",
		    op_names[op]);
	}
	k->req = kv_redis_cmd(r, op, key, value, delta, ttl, on_result, k);
	if (k->req == NULL) {
		free(k);
		return luaL_error(L, "kv.%s: key or value empty or too long",
		    op_names[op]);
	}
	return lua_wait_k(L, cancel, k, after_wait);
}

static struct kv_redis *
redis_of(lua_State *L)
{
	struct worker *w = lua_current_worker(L);

	return w != NULL ? w->kv : NULL;
}

/* -- the functions -------------------------------------------------------- */

static int
l_kv_get(lua_State *L)
{
	const char *key = luaL_checkstring(L, 1);
	struct kv_redis *r = redis_of(L);
	char *v;

	if (r != NULL)
		return redis_start(L, r, KV_OP_GET, key, NULL, 0, 0);
	v = kv_get(key);
	if (v == NULL)
		lua_pushnil(L);
	else
		lua_pushstring(L, v);
	free(v);
	return 1;
}

static int
l_kv_set(lua_State *L)
{
	const char *k = luaL_checkstring(L, 1), *v = luaL_checkstring(L, 2);
	lua_Integer ttl = luaL_optinteger(L, 3, 0);
	struct kv_redis *r = redis_of(L);

	luaL_argcheck(L, ttl >= 0 && ttl <= 0x7fffffff, 3,
	    "ttl must be >= 0");
	if (r != NULL)
		return redis_start(L, r, KV_OP_SET, k, v, 0, (unsigned)ttl);
	lua_pushboolean(L, kv_set(k, v, (unsigned)ttl) == 0);
	return 1;
}

static int
l_kv_incr(lua_State *L)
{
	const char *k = luaL_checkstring(L, 1);
	lua_Integer by = luaL_optinteger(L, 2, 1), ttl = luaL_optinteger(L, 3, 0);
	struct kv_redis *r = redis_of(L);
	int ok;

	luaL_argcheck(L, ttl >= 0 && ttl <= 0x7fffffff, 3,
	    "ttl must be >= 0");
	if (r != NULL)
		return redis_start(L, r, KV_OP_INCR, k, NULL, by,
		    (unsigned)ttl);
	long long v = kv_incr(k, by, (unsigned)ttl, &ok);
	if (!ok)
		return luaL_error(L, "kv.incr: the store refused %s", k);
	lua_pushinteger(L, v);
	return 1;
}

static int
l_kv_del(lua_State *L)
{
	const char *k = luaL_checkstring(L, 1);
	struct kv_redis *r = redis_of(L);

	if (r != NULL)
		return redis_start(L, r, KV_OP_DEL, k, NULL, 0, 0);
	lua_pushboolean(L, kv_del(k));
	return 1;
}

void
lua_api_kv_open(lua_State *L)
{
	static const luaL_Reg f[] = {
		{ "get", l_kv_get }, { "set", l_kv_set }, { "incr", l_kv_incr },
		{ "del", l_kv_del }, { NULL, NULL },
	};

	luaL_newlib(L, f);
	lua_setglobal(L, "kv");
}
