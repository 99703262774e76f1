/*
 * conn_limits.c - session counters (conn_limits.h): a hash table of client
 * addresses with their session counts; entries vanish at count zero.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conn_limits.h"
#include "util.h"

#define BUCKETS	4096

struct ip_count {
	unsigned char addr[16];
	unsigned count;
	struct ip_count *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct ip_count *table[BUCKETS];
static unsigned total, max_total, max_per_ip;

void
conn_limits_init(unsigned mt, unsigned mp)
{
	max_total = mt;
	max_per_ip = mp;
}

/* key - 16 bytes; IPv4 (and IPv4-mapped IPv6) as ::ffff:a.b.c.d */
static void
key(const struct sockaddr *sa, unsigned char out[16])
{
	memset(out, 0, 16);
	if (sa->sa_family == AF_INET) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6)
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
}

static unsigned
hash(const unsigned char k[16])
{
	return fnv1a(k, 16) % BUCKETS;
}

static struct ip_count **
find(const unsigned char k[16])
{
	struct ip_count **pp = &table[hash(k)];

	while (*pp != NULL && memcmp((*pp)->addr, k, 16) != 0)
		pp = &(*pp)->next;
	return pp;
}

static enum conn_verdict
acquire(const struct sockaddr *sa, int per_ip)
{
	unsigned char k[16];
	struct ip_count **pp, *e;
	enum conn_verdict v = CONN_OK;

	key(sa, k);
	pthread_mutex_lock(&mu);
	pp = find(k);
	if (max_total && total >= max_total)
		v = CONN_TOO_MANY;
	else if (per_ip && max_per_ip && *pp != NULL &&
	    (*pp)->count >= max_per_ip)
		v = CONN_TOO_MANY_FROM_IP;
	else {
		if ((e = *pp) == NULL) {
			e = *pp = xcalloc(1, sizeof(*e));
			memcpy(e->addr, k, 16);
		}
		e->count++;
		total++;
	}
	pthread_mutex_unlock(&mu);
	return v;
}

enum conn_verdict
conn_limits_acquire(const struct sockaddr *sa)
{
	return acquire(sa, 1);
}

enum conn_verdict
conn_limits_acquire_proxy(const struct sockaddr *sa)
{
	return acquire(sa, 0);
}

enum conn_verdict
conn_limits_move(const struct sockaddr *from, const struct sockaddr *to)
{
	unsigned char kf[16], kt[16];
	struct ip_count **pp, *e;

	key(from, kf);
	key(to, kt);
	pthread_mutex_lock(&mu);
	pp = find(kt);
	if (max_per_ip && *pp != NULL && (*pp)->count >= max_per_ip) {
		pthread_mutex_unlock(&mu);
		return CONN_TOO_MANY_FROM_IP;
	}
	pp = find(kf);			/* the total stays as it is */
	if ((e = *pp) != NULL && --e->count == 0) {
		*pp = e->next;
		free(e);
	}
	pp = find(kt);
	if ((e = *pp) == NULL) {
		e = *pp = xcalloc(1, sizeof(*e));
		memcpy(e->addr, kt, 16);
	}
	e->count++;
	pthread_mutex_unlock(&mu);
	return CONN_OK;
}

void
conn_limits_release(const struct sockaddr *sa)
{
	unsigned char k[16];
	struct ip_count **pp, *e;

	key(sa, k);
	pthread_mutex_lock(&mu);
	pp = find(k);
	if ((e = *pp) != NULL) {
		total--;
		if (--e->count == 0) {
			*pp = e->next;
			free(e);
		}
	}
	pthread_mutex_unlock(&mu);
}

unsigned
conn_limits_total(void)
{
	unsigned n;

	pthread_mutex_lock(&mu);
	n = total;
	pthread_mutex_unlock(&mu);
	return n;
}
