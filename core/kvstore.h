/*
 * kvstore.h - the shared key/value store of filters, with TTLs
 *
 * Process-wide, in memory (a Redis backend comes later: design.md section
 * 8), used by Lua scripts (kv.get/kv.set/kv.incr) and C plugins
 * (host->kv_*; ratelimit counts with it). Keys and values are strings;
 * incr treats a missing or non-numeric value as 0. A TTL of 0 keeps the
 * key until it is overwritten. Expired keys are dropped lazily and by a
 * bounded sweep on writes. Thread-safe (one mutex, sharded buckets).
 */
#ifndef SLUICE_KVSTORE_H
#define SLUICE_KVSTORE_H

#include <stddef.h>

#define KV_KEY_MAX	1024
#define KV_VALUE_MAX	(64 * 1024)
#define KV_MAX_KEYS	1000000	/* beyond this, sets fail */

void	kv_init(void);
void	kv_shutdown(void);
/* kv_get - a malloc'ed copy of the value, or NULL */
char	*kv_get(const char *key);
/* kv_set - 0, or -1 (key/value too long, store full) */
int	kv_set(const char *key, const char *value, unsigned ttl);
/* kv_incr - the new value; *ok 0 on failure. ttl is set when created */
long long kv_incr(const char *key, long long delta, unsigned ttl, int *ok);
int	kv_del(const char *key);
size_t	kv_count(void);

#endif
