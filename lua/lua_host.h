/*
 * lua_host.h - Lua 5.4 filters: one sandboxed lua_State per script and
 * worker, one coroutine per hook call
 *
 * The script is a chunk that returns a table of stage functions:
 *
 *	local f = {}
 *	function f.rcpt(ctx) if ctx.rcpt == "x@y" then return reject("no") end end
 *	return f
 *
 * lua_filter.c is the filter kind (load, attach, call, abort), this
 * header's internals are shared with lua_api*.c (the functions and
 * objects scripts see; the full API is in lua/README.md).
 * Limits per call: an instruction budget (count hook) and a memory cap
 * (the state's allocator counts what the call allocates); breaking either,
 * or any error, is a filter failure: on_error applies and the worker
 * carries on. Scripts never see io, os, debug, package or require, and
 * load() compiles text only.
 * Threads: a state is used only by its worker's loop thread.
 */
#ifndef SLUICE_LUA_HOST_H
#define SLUICE_LUA_HOST_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "filter.h"

#define LUA_DEFAULT_BUDGET	10000000ULL	/* instructions per call */
#define LUA_DEFAULT_MEMORY	(32ULL << 20)	/* bytes per call */
#define LUA_STATE_MEMORY_MAX	(512ULL << 20)	/* a state's total */
#define LUA_HOOK_STEP		1000		/* instructions per hook */

/* One script in one worker. */
struct lua_inst {
	lua_State *L;
	struct filter *filter;
	struct worker *worker;
	int module_ref;			/* the table the chunk returned */
	size_t mem_total;		/* all live allocations */
	long long *mem_call;		/* net bytes of what runs now */
	long long mem_load;		/* ... when that is the chunk at load */
	uint64_t mem_limit;		/* per call */
	int in_call;
	struct sluice_call *current;	/* the call being run, or NULL */
	uint64_t budget_left;		/* of what runs now (call or load) */
	int budget_out;			/* it ran out: stop at the next chance */
	lua_State *load_co;		/* the chunk's coroutine while loading */
	int idle[16];			/* finished coroutines, for reuse */
	int nidle;
};

/* Per-call state (sluice_call->data). */
struct lua_call {
	struct lua_inst *inst;
	struct sluice_call *call;
	lua_State *co;			/* the call's coroutine */
	int co_ref;			/* keeps it from the GC */
	uint64_t budget_left;		/* instructions */
	long long mem;			/* net bytes this call allocated */
	int waiting;			/* yielded for async work */
	void (*cancel)(struct lua_call *);	/* drops that work */
	void *pending;			/* the async operation */
	int ctx_ref;			/* the ctx userdata */
	char *store_err;		/* the error a kv.* call raised when
					   the Redis store failed */
};

/* lua_sandbox.c */
lua_State *lua_sandbox_new(struct lua_inst *);
void	lua_sandbox_budget(lua_State *);

/* lua_api.c: globals (verdicts, log, kv, dns, sleep, args) */
void	lua_api_open(lua_State *, const struct sluice_value *args);
/* lua_api_dns.c: the dns table */
void	lua_api_dns_open(lua_State *);
/* lua_api_kv.c: the kv table */
void	lua_api_kv_open(lua_State *);
/* lua_api_ctx.c: the ctx object of a call */
void	lua_api_ctx_open(lua_State *);
void	lua_api_ctx_push(lua_State *, struct sluice_call *);
void	lua_api_ctx_invalidate(lua_State *, int ref);
/* lua_api_mime.c: ctx:parts() */
int	lua_api_parts(lua_State *, struct sluice_call *);

/* lua_filter.c: for the API: the call of a coroutine, and resuming it */
struct sluice_call *lua_current_call(lua_State *);
/* lua_wait - from a C function: yield until lua_wake() */
int	lua_wait(lua_State *, void (*cancel)(struct lua_call *), void *op);
/* lua_wait_k - the same; k runs on the results when resumed */
int	lua_wait_k(lua_State *, void (*cancel)(struct lua_call *), void *op,
	    lua_KFunction k);
/* lua_current_worker - the worker of the state (NULL: sluicectl replay) */
struct worker *lua_current_worker(lua_State *);
/* lua_wake - results already pushed on the coroutine: resume it */
void	lua_wake(struct lua_call *, int nresults);

/* the verdict a hook returned (nil = continue); -1 if malformed */
int	lua_api_verdict(lua_State *, int idx, struct verdict *);

#endif
