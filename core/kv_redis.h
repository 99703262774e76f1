/*
 * kv_redis.h - the Redis backend of the filters' key/value store
 * (kv.backend: redis): one asynchronous hiredis connection per event loop
 *
 * Same operations and meaning as kvstore.h (get, set with a TTL, incr
 * with the TTL set when the key is created, del), every key prefixed with
 * kv.redis.prefix, so that several sluiced nodes share counters and
 * greylisting state. A request always answers later, from the loop, never
 * before the function that started it returns: with the value, or with
 * ok = 0 when Redis is down, refuses the command or does not answer
 * within kv.redis.timeout. Down means down: requests fail at once while
 * the connection is being re-established (backoff from 200 ms to 5 s);
 * a timeout drops the connection, which fails every request on it.
 * Ownership: the caller owns struct kv_redis; a request belongs to this
 * module, and kv_redis_cancel() guarantees its callback never runs.
 * Threads: kv_redis_new() and kv_redis_free() on the main thread (the
 * loop not running yet / any more); everything else on the loop's thread.
 */
#ifndef SLUICE_KV_REDIS_H
#define SLUICE_KV_REDIS_H

#include "sluice_plugin.h"

struct conf_kv_redis;
struct event_base;
struct kv_redis;
struct kv_req;

enum kv_op {
	KV_OP_GET,
	KV_OP_SET,
	KV_OP_INCR,
	KV_OP_DEL,
};

struct kv_result {
	int ok;
	const char *value;	/* get: NULL when missing; set: the value;
				   incr: the new value as text */
	long long number;	/* value as a number; del: keys removed */
	const char *error;	/* when !ok: why, for logs */
};

typedef void (*kv_redis_cb)(const struct kv_result *, void *arg);

/* kv_redis_new - connects soon, from the loop; name is for logs */
struct kv_redis *kv_redis_new(struct event_base *,
	    const struct conf_kv_redis *, const char *name);
/* kv_redis_free - pending requests answer ok = 0 first; NULL is a no-op */
void	kv_redis_free(struct kv_redis *);
/* kv_redis_on_error - kv.redis.on_error */
enum sluice_verdict kv_redis_on_error(const struct kv_redis *);

/*
 * kv_redis_cmd - start one operation: value for set, delta for incr,
 * ttl (seconds, 0 = none) for set and incr. NULL when the key or value
 * is too long (kvstore.h limits) or empty: no callback then.
 */
struct kv_req *kv_redis_cmd(struct kv_redis *, enum kv_op, const char *key,
	    const char *value, long long delta, unsigned ttl, kv_redis_cb,
	    void *arg);
void	kv_redis_cancel(struct kv_req *);

#endif
