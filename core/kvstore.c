/*
 * kvstore.c - in-memory key/value store with TTLs (kvstore.h).
 *
 * A chained hash table of 65536 buckets guarded by one mutex: every
 * operation is a few hundred nanoseconds, far below what a filter call
 * costs anyway. Expiry is checked on access; each write also sweeps a few
 * buckets so that keys nobody reads again are reclaimed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvstore.h"
#include "util.h"

#define BUCKETS		65536
#define SWEEP_PER_WRITE	4

struct kv_entry {
	char *key;
	char *value;
	time_t expires;		/* 0 = never */
	struct kv_entry *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct kv_entry **table;
static size_t count, sweep_pos;

static uint32_t
hash(const char *s)
{
	return fnv1a(s, strlen(s)) % BUCKETS;
}

static time_t
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + 1;	/* never 0: 0 means "no expiry" */
}

void
kv_init(void)
{
	pthread_mutex_lock(&mu);
	if (table == NULL)
		table = xcalloc(BUCKETS, sizeof(*table));
	pthread_mutex_unlock(&mu);
}

static void
entry_free(struct kv_entry *e)
{
	free(e->key);
	free(e->value);
	free(e);
	count--;
}

void
kv_shutdown(void)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; table != NULL && i < BUCKETS; i++)
		while (table[i] != NULL) {
			struct kv_entry *e = table[i];
			table[i] = e->next;
			entry_free(e);
		}
	free(table);
	table = NULL;
	pthread_mutex_unlock(&mu);
}

static int
expired(const struct kv_entry *e, time_t now)
{
	return e->expires != 0 && e->expires <= now;
}

/* find - the live entry for key (expired ones are dropped on the way) */
static struct kv_entry **
find(const char *key, time_t now)
{
	struct kv_entry **pp = &table[hash(key)];

	while (*pp != NULL) {
		if (expired(*pp, now)) {
			struct kv_entry *e = *pp;
			*pp = e->next;
			entry_free(e);
			continue;
		}
		if (strcmp((*pp)->key, key) == 0)
			break;
		pp = &(*pp)->next;
	}
	return pp;
}

static void
sweep(time_t now)
{
	for (int i = 0; i < SWEEP_PER_WRITE; i++) {
		struct kv_entry **pp = &table[sweep_pos];
		sweep_pos = (sweep_pos + 1) % BUCKETS;
		while (*pp != NULL) {
			if (expired(*pp, now)) {
				struct kv_entry *e = *pp;
				*pp = e->next;
				entry_free(e);
			} else
				pp = &(*pp)->next;
		}
	}
}

char *
kv_get(const char *key)
{
	char *v = NULL;

	pthread_mutex_lock(&mu);
	struct kv_entry **pp = find(key, now_s());
	if (*pp != NULL)
		v = xstrdup((*pp)->value);
	pthread_mutex_unlock(&mu);
	return v;
}

/* put - set under the lock; -1 when the store is full */
static int
put(const char *key, const char *value, unsigned ttl, time_t now)
{
	struct kv_entry **pp = find(key, now), *e = *pp;

	if (e == NULL) {
		if (count >= KV_MAX_KEYS)
			return -1;
		e = *pp = xcalloc(1, sizeof(*e));
		e->key = xstrdup(key);
		count++;
	} else
		free(e->value);
	e->value = xstrdup(value);
	e->expires = ttl ? now + (time_t)ttl : 0;
	return 0;
}

int
kv_set(const char *key, const char *value, unsigned ttl)
{
	time_t now = now_s();
	int rv;

	if (strlen(key) > KV_KEY_MAX || strlen(value) > KV_VALUE_MAX)
		return -1;
	pthread_mutex_lock(&mu);
	sweep(now);
	rv = put(key, value, ttl, now);
	pthread_mutex_unlock(&mu);
	return rv;
}

long long
kv_incr(const char *key, long long delta, unsigned ttl, int *ok)
{
	time_t now = now_s();
	long long v = 0;
	char buf[32];

	*ok = 0;
	if (strlen(key) > KV_KEY_MAX)
		return 0;
	pthread_mutex_lock(&mu);
	sweep(now);
	struct kv_entry **pp = find(key, now);
	if (*pp != NULL) {
		char *end;
		errno = 0;
		v = strtoll((*pp)->value, &end, 10);
		if (errno != 0 || *end != '\0')
			v = 0;
		v += delta;
		snprintf(buf, sizeof(buf), "%lld", v);
		free((*pp)->value);
		(*pp)->value = xstrdup(buf);	/* the TTL keeps running */
		*ok = 1;
	} else {
		v = delta;
		snprintf(buf, sizeof(buf), "%lld", v);
		*ok = put(key, buf, ttl, now) == 0;
	}
	pthread_mutex_unlock(&mu);
	return v;
}

int
kv_del(const char *key)
{
	int found = 0;

	pthread_mutex_lock(&mu);
	struct kv_entry **pp = find(key, now_s());
	if (*pp != NULL) {
		struct kv_entry *e = *pp;
		*pp = e->next;
		entry_free(e);
		found = 1;
	}
	pthread_mutex_unlock(&mu);
	return found;
}

size_t
kv_count(void)
{
	size_t n;

	pthread_mutex_lock(&mu);
	n = count;
	pthread_mutex_unlock(&mu);
	return n;
}
