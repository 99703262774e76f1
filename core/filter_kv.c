/*
 * filter_kv.c - the key/value functions of the plugin API (host->kv_get,
 * kv_set, kv_incr) on the store the configuration chose: the in-memory
 * one (kvstore.h: the callback runs before kv_*() returns) or the call's
 * loop's Redis connection (kv_redis.h: the callback runs later, from the
 * loop, with ok = 0 on an outage or a timeout).
 *
 * A Redis request holds the call (call_hold) until it answers; an answer
 * for a call that has ended meanwhile (filter timeout, session gone) is
 * dropped, never delivered. The fact "kv.on_error" tells plugins the
 * configured action for a store failure (NULL with the memory store).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "filter_support.h"
#include "kv_redis.h"
#include "kvstore.h"
#include "server.h"
#include "util.h"

struct plugin_kv {
	struct sluice_call *call;
	sluice_kv_cb cb;
	void *arg;
};

static struct kv_redis *
redis_of(struct sluice_call *c)
{
	return c->subj->worker != NULL ? c->subj->worker->kv : NULL;
}

static void
on_redis(const struct kv_result *res, void *arg)
{
	struct plugin_kv *pk = arg;

	if (pk->cb != NULL && call_active(pk->call))
		pk->cb(pk->call, res->ok, res->value, res->number, pk->arg);
	call_release(pk->call);
	free(pk);
}

static int
redis_op(struct sluice_call *c, enum kv_op op, const char *key,
    const char *value, long long delta, unsigned ttl, sluice_kv_cb cb,
    void *arg)
{
	struct plugin_kv *pk = xcalloc(1, sizeof(*pk));

	pk->call = c;
	pk->cb = cb;
	pk->arg = arg;
	call_hold(c);
	if (kv_redis_cmd(redis_of(c), op, key, value, delta, ttl, on_redis,
	    pk) == NULL) {
		call_release(c);
		free(pk);
		return -1;
	}
	return 0;
}

int
filter_kv_get(struct sluice_call *c, const char *key, sluice_kv_cb cb,
    void *arg)
{
	char *v;

	if (!call_active(c) || key == NULL || cb == NULL)
		return -1;
	if (redis_of(c) != NULL)
		return redis_op(c, KV_OP_GET, key, NULL, 0, 0, cb, arg);
	v = kv_get(key);
	cb(c, 1, v, v ? strtoll(v, NULL, 10) : 0, arg);
	free(v);
	return 0;
}

int
filter_kv_set(struct sluice_call *c, const char *key, const char *value,
    unsigned ttl, sluice_kv_cb cb, void *arg)
{
	int ok;

	if (!call_active(c) || key == NULL || value == NULL)
		return -1;
	if (redis_of(c) != NULL)
		return redis_op(c, KV_OP_SET, key, value, 0, ttl, cb, arg);
	ok = kv_set(key, value, ttl) == 0;
	if (cb == NULL)
		return ok ? 0 : -1;
	cb(c, ok, value, strtoll(value, NULL, 10), arg);
	return 0;
}

int
filter_kv_incr(struct sluice_call *c, const char *key, long long delta,
    unsigned ttl, sluice_kv_cb cb, void *arg)
{
	int ok;
	long long v;
	char buf[32];

	if (!call_active(c) || key == NULL)
		return -1;
	if (redis_of(c) != NULL)
		return redis_op(c, KV_OP_INCR, key, NULL, delta, ttl, cb, arg);
	v = kv_incr(key, delta, ttl, &ok);
	snprintf(buf, sizeof(buf), "%lld", v);
	if (cb == NULL)
		return ok ? 0 : -1;
	cb(c, ok, buf, v, arg);		/* the callback reports the failure */
	return 0;
}

const char *
filter_kv_on_error(struct sluice_call *c)
{
	struct kv_redis *r = redis_of(c);

	return r != NULL ? verdict_name(kv_redis_on_error(r)) : NULL;
}
