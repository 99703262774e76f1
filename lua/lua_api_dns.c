/*
 * lua_api_dns.c - dns.query(name, type) and dns.rbl(ip, zone) for
 * scripts: the coroutine yields while the worker's resolver (core/dns.h)
 * works, and gets the answer as return values.
 *
 *   dns.query(name, "MX") -> { {pref=10, host="mx.example"}, ... }
 *   dns.query(name, "A")  -> { "192.0.2.1", ... }   ({} when no data)
 *   on NXDOMAIN or failure: nil, "NXDOMAIN" / "TIMEOUT" / "SERVFAIL" ...
 *   dns.rbl("192.0.2.1", "zen.example") -> "127.0.0.2" (listed), or nil
 *   and the status ("NXDOMAIN" when not listed, "TIMEOUT", ...)
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "dns.h"
#include "filter.h"
#include "lua_host.h"
#include "server.h"

struct lua_dns {
	struct lua_call *lc;
	struct dns_query *q;
	enum dns_type type;
	int rbl;		/* answer with the first address or nil */
};

static int
push_answer(lua_State *L, const struct lua_dns *d, const struct dns_result *r)
{
	if (r->status != DNS_OK && r->status != DNS_NODATA) {
		lua_pushnil(L);
		lua_pushstring(L, dns_status_name(r->status));
		return 2;
	}
	if (d->rbl) {
		if (r->nrrs == 0)
			lua_pushnil(L);
		else
			lua_pushstring(L, r->rrs[0].text);
		return 1;
	}
	lua_createtable(L, (int)r->nrrs, 0);
	for (size_t i = 0; i < r->nrrs; i++) {
		const struct dns_rr *rr = &r->rrs[i];
		if (rr->type == DNS_MX) {
			lua_createtable(L, 0, 2);
			lua_pushinteger(L, rr->pref);
			lua_setfield(L, -2, "pref");
			lua_pushstring(L, rr->text);
			lua_setfield(L, -2, "host");
		} else if (rr->type == DNS_SRV) {
			lua_createtable(L, 0, 4);
			lua_pushinteger(L, rr->pref);
			lua_setfield(L, -2, "priority");
			lua_pushinteger(L, rr->weight);
			lua_setfield(L, -2, "weight");
			lua_pushinteger(L, rr->port);
			lua_setfield(L, -2, "port");
			lua_pushstring(L, rr->text);
			lua_setfield(L, -2, "target");
		} else
			lua_pushlstring(L, rr->text, rr->len);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

static void
on_answer(const struct dns_result *r, void *arg)
{
	struct lua_dns *d = arg;
	struct lua_call *lc = d->lc;
	int n = push_answer(lc->co, d, r);

	free(d);
	lua_wake(lc, n);
}

static void
cancel(struct lua_call *lc)
{
	struct lua_dns *d = lc->pending;

	dns_cancel(d->q);
	free(d);
}

static int
start(lua_State *L, const char *name, enum dns_type type, int rbl)
{
	struct sluice_call *c = lua_current_call(L);
	struct lua_dns *d;

	if (c == NULL)
		return luaL_error(L, "dns: only inside a hook");
	if (c->subj->worker->dns == NULL)
		return luaL_error(L, "dns: no resolver");
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return luaL_error(L, "out of memory");
	d->lc = c->data;
	d->type = type;
	d->rbl = rbl;
	d->q = dns_query(c->subj->worker->dns, name, type, on_answer, d);
	return lua_wait(L, cancel, d);
}

static int
l_query(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const char *tname = luaL_optstring(L, 2, "A");
	enum dns_type t;

	if (dns_type_parse(tname, &t) == -1)
		return luaL_error(L, "dns.query: unknown type %s", tname);
	return start(L, name, t, 0);
}

static int
l_rbl(lua_State *L)
{
	char name[300];

	if (dns_reverse_ipv4_label(luaL_checkstring(L, 1),
	    luaL_checkstring(L, 2), name, sizeof(name)) == -1) {
		lua_pushnil(L);			/* not an IPv4 address */
		return 1;
	}
	return start(L, name, DNS_A, 1);
}

void
lua_api_dns_open(lua_State *L)
{
	static const luaL_Reg f[] = {
		{ "query", l_query }, { "rbl", l_rbl }, { NULL, NULL },
	};

	luaL_newlib(L, f);
	lua_setglobal(L, "dns");
}
