/*
 * lua_api_ctx.c - the ctx object every hook receives: the session,
 * transaction and message facts as fields, tags and message changes as
 * methods. A ctx is only valid during its call; using one kept from an
 * earlier call raises an error rather than touching freed memory.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "envelope.h"
#include "filter.h"
#include "filter_support.h"
#include "lua_host.h"
#include "message.h"
#include "util.h"

#define CTX_MT	"sluice.ctx"

struct ctx_box {
	struct sluice_call *call;
};

static struct sluice_call *
check_ctx(lua_State *L)
{
	struct ctx_box *b = luaL_checkudata(L, 1, CTX_MT);

	if (b->call == NULL || !call_active(b->call))
		luaL_error(L, "ctx used after its hook call ended");
	return b->call;
}

static struct message *
check_msg(lua_State *L, struct sluice_call *c)
{
	struct message *m = subject_msg(c->subj);

	if (m == NULL)
		luaL_error(L, "no message at the %s stage", stage_name(c->stage));
	return m;
}

static struct message *
check_changeable(lua_State *L, struct sluice_call *c)
{
	if (!c->subj->modifiable)
		luaL_error(L, "the message can only be changed at the message "
		    "stage");
	return check_msg(L, c);
}

/* field names and the fact keys behind them (sluice_plugin.h) */
static const struct {
	const char *field, *key;
} facts[] = {
	{ "stage", "stage" }, { "session_id", "session.id" },
	{ "listener", "listener" }, { "client_addr", "client.addr" },
	{ "client_rdns", "client.rdns" }, { "helo", "helo" },
	{ "tls_version", "tls.version" }, { "tls_cipher", "tls.cipher" },
	{ "tls_bits", "tls.bits" },
	{ "auth_user", "auth.user" }, { "auth_mechanism", "auth.mechanism" },
	{ "auth_password", "auth.password" }, { "auth_result", "auth.result" }, { "qid", "qid" }, { "sender", "sender" },
	{ "rcpt", "rcpt" }, { "rcpt_notify", "rcpt.notify" },
	{ "rcpt_orcpt", "rcpt.orcpt" }, { "body_type", "mail.body" },
	{ "ret", "mail.ret" }, { "envid", "mail.envid" },
	{ "result", "delivery.result" }, { "status", "delivery.status" },
	{ "reason", "delivery.reason" }, { "remote", "delivery.remote" },
	{ "reply", "delivery.reply" },
};

static int
push_fact(lua_State *L, struct sluice_call *c, const char *key)
{
	char buf[256];
	const char *v = subject_get(c->subj, c->stage, key, buf, sizeof(buf));

	if (v == NULL)
		lua_pushnil(L);
	else
		lua_pushstring(L, v);
	return 1;
}

static int
push_rcpts(lua_State *L, struct sluice_call *c)
{
	struct envelope *e = c->subj->env;

	lua_createtable(L, e ? (int)e->nrcpts : 0, 0);
	for (size_t i = 0; e != NULL && i < e->nrcpts; i++) {
		lua_pushstring(L, e->rcpts[i].addr);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

static int
push_number_fact(lua_State *L, struct sluice_call *c, const char *key)
{
	char buf[64];
	const char *v = subject_get(c->subj, c->stage, key, buf, sizeof(buf));

	if (v == NULL)
		lua_pushnil(L);
	else
		lua_pushinteger(L, strtoll(v, NULL, 10));
	return 1;
}

static int
ctx_index(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);
	const char *k = luaL_checkstring(L, 2);

	luaL_getmetatable(L, CTX_MT);		/* methods first */
	lua_getfield(L, -1, k);
	if (!lua_isnil(L, -1) && strncmp(k, "__", 2) != 0)
		return 1;
	lua_pop(L, 2);
	for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++)
		if (strcmp(k, facts[i].field) == 0)
			return push_fact(L, c, facts[i].key);
	if (strcmp(k, "client_port") == 0)
		return push_number_fact(L, c, "client.port");
	if (strcmp(k, "attempts") == 0)
		return push_number_fact(L, c, "delivery.attempts");
	if (strcmp(k, "size") == 0)
		return push_number_fact(L, c, c->subj->msg || c->subj->msg_load ?
		    "message.size" : "mail.size");
	if (strcmp(k, "smtputf8") == 0) {
		lua_pushboolean(L, c->subj->mp && c->subj->mp->smtputf8);
		return 1;
	}
	if (strcmp(k, "rcpts") == 0)
		return push_rcpts(L, c);
	lua_pushnil(L);
	return 1;
}

/* ctx:tag(key) -> value; ctx:tag(key, value [, "session"]) */
static int
ctx_tag(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);
	const char *k = luaL_checkstring(L, 2);

	if (lua_gettop(L) == 2) {
		const char *v = tags_get(c->subj->tx_tags, k);
		if (v == NULL)
			v = tags_get(c->subj->session_tags, k);
		if (v == NULL)
			lua_pushnil(L);
		else
			lua_pushstring(L, v);
		return 1;
	}
	const char *v = luaL_tolstring(L, 3, NULL);
	const char *scope = luaL_optstring(L, 4, "transaction");
	struct tags *t = strcmp(scope, "session") == 0 ?
	    c->subj->session_tags : c->subj->tx_tags;
	if (t == NULL)
		return luaL_error(L, "no %s to tag at the %s stage", scope,
		    stage_name(c->stage));
	tags_set(t, k, v);
	return 0;
}

static int
ctx_header(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);
	struct message *m = check_msg(L, c);
	lua_Integer n = luaL_optinteger(L, 3, 1);
	const char *raw = n >= 1 ? message_get(m, luaL_checkstring(L, 2),
	    (size_t)n - 1) : NULL;

	if (raw == NULL) {
		lua_pushnil(L);
		return 1;
	}
	char *dec = filter_decode_header(raw);
	lua_pushstring(L, dec);
	free(dec);
	return 1;
}

static int
ctx_header_raw(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);
	struct message *m = check_msg(L, c);
	lua_Integer n = luaL_optinteger(L, 3, 1);
	const char *raw = n >= 1 ? message_get(m, luaL_checkstring(L, 2),
	    (size_t)n - 1) : NULL;

	if (raw == NULL)
		lua_pushnil(L);
	else
		lua_pushstring(L, raw);
	return 1;
}

/* ctx:headers() -> { {name=, value=, decoded=}, ... } in message order */
static int
ctx_headers(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);
	struct message *m = check_msg(L, c);

	lua_createtable(L, (int)m->nhdrs, 0);
	for (size_t i = 0; i < m->nhdrs; i++) {
		lua_createtable(L, 0, 3);
		lua_pushstring(L, m->hdrs[i].name);
		lua_setfield(L, -2, "name");
		lua_pushstring(L, m->hdrs[i].value);
		lua_setfield(L, -2, "value");
		char *dec = filter_decode_header(m->hdrs[i].value);
		lua_pushstring(L, dec);
		free(dec);
		lua_setfield(L, -2, "decoded");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

static int
ctx_body(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);
	size_t len;
	const char *b = message_body(check_msg(L, c), &len);

	lua_pushlstring(L, b, len);
	return 1;
}

static int
ctx_raw(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);
	struct message *m = check_msg(L, c);

	lua_pushlstring(L, m->data, m->len);
	return 1;
}

static int
result(lua_State *L, int rv, const char *what)
{
	if (rv == -1)
		return luaL_error(L, "%s: refused (bad name, value or address)",
		    what);
	return 0;
}

static int
ctx_add_header(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);

	return result(L, message_add(check_changeable(L, c),
	    luaL_checkstring(L, 2), luaL_checkstring(L, 3)), "add_header");
}

static int
ctx_insert_header(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);
	lua_Integer i = luaL_checkinteger(L, 2);

	luaL_argcheck(L, i >= 1, 2, "index from 1");
	return result(L, message_insert(check_changeable(L, c), (size_t)i - 1,
	    luaL_checkstring(L, 3), luaL_checkstring(L, 4)), "insert_header");
}

/* ctx:change_header(name, n, value) - the nth of that name (from 1) */
static int
ctx_change_header(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);
	lua_Integer n = luaL_checkinteger(L, 3);

	luaL_argcheck(L, n >= 1, 3, "index from 1");
	return result(L, message_change(check_changeable(L, c),
	    luaL_checkstring(L, 2), (size_t)n - 1, luaL_checkstring(L, 4)),
	    "change_header");
}

static int
ctx_delete_header(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);
	lua_Integer n = luaL_optinteger(L, 3, 1);

	luaL_argcheck(L, n >= 1, 3, "index from 1");
	return result(L, message_change(check_changeable(L, c),
	    luaL_checkstring(L, 2), (size_t)n - 1, NULL), "delete_header");
}

static int
ctx_replace_body(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);
	size_t len;
	const char *b = luaL_checklstring(L, 2, &len);

	return result(L, message_replace_body(check_changeable(L, c), b, len),
	    "replace_body");
}

static int
ctx_set_sender(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);

	check_changeable(L, c);
	return result(L, filter_env_sender(c->subj->env,
	    luaL_checkstring(L, 2)), "set_sender");
}

static int
ctx_add_rcpt(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);

	check_changeable(L, c);
	return result(L, filter_env_rcpt_add(c->subj->env,
	    luaL_checkstring(L, 2)), "add_rcpt");
}

static int
ctx_del_rcpt(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);

	check_changeable(L, c);
	return result(L, filter_env_rcpt_delete(c->subj->env,
	    luaL_checkstring(L, 2)), "del_rcpt");
}

static int
ctx_parts(lua_State *L)
{
	struct sluice_call *c = check_ctx(L);

	check_msg(L, c);
	return lua_api_parts(L, c);
}

static int
ctx_tostring(lua_State *L)
{
	struct ctx_box *b = luaL_checkudata(L, 1, CTX_MT);

	lua_pushfstring(L, "ctx(%s)", b->call && call_active(b->call) ?
	    stage_name(b->call->stage) : "ended");
	return 1;
}

void
lua_api_ctx_open(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "tag", ctx_tag }, { "header", ctx_header },
		{ "header_raw", ctx_header_raw }, { "headers", ctx_headers },
		{ "body", ctx_body }, { "raw", ctx_raw },
		{ "add_header", ctx_add_header },
		{ "insert_header", ctx_insert_header },
		{ "change_header", ctx_change_header },
		{ "delete_header", ctx_delete_header },
		{ "replace_body", ctx_replace_body },
		{ "set_sender", ctx_set_sender }, { "add_rcpt", ctx_add_rcpt },
		{ "del_rcpt", ctx_del_rcpt }, { "parts", ctx_parts },
		{ "__index", ctx_index }, { "__tostring", ctx_tostring },
		{ NULL, NULL },
	};

	luaL_newmetatable(L, CTX_MT);
	luaL_setfuncs(L, methods, 0);
	lua_pushliteral(L, "sluice ctx");
	lua_setfield(L, -2, "__metatable");	/* getmetatable() hides it */
	lua_pop(L, 1);
}

void
lua_api_ctx_push(lua_State *L, struct sluice_call *c)
{
	struct ctx_box *b = lua_newuserdatauv(L, sizeof(*b), 0);

	b->call = c;
	luaL_setmetatable(L, CTX_MT);
}

void
lua_api_ctx_invalidate(lua_State *L, int ref)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
	struct ctx_box *b = luaL_testudata(L, -1, CTX_MT);
	if (b != NULL)
		b->call = NULL;
	lua_pop(L, 1);
}
