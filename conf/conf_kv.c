/*
 * conf_kv.c - the kv: section: which store filters share (the in-memory
 * one of this process, or Redis) and how to reach Redis
 *
 *   kv:
 *     backend: redis            # memory (default) | redis
 *     redis: {address: 127.0.0.1, port: 6379, password: x, db: 0,
 *             prefix: "sluice:", timeout: 500ms, on_error: tempfail}
 *     # or redis: {unix: /run/redis/redis.sock, ...}
 *
 * API: conf_set_kv() for the top-level table of conf_schema.c,
 * conf_kv_defaults(), conf_kv_free().
 * The address must be an IP literal: hiredis would resolve a host name
 * with a blocking getaddrinfo() on an event loop.
 * Errors: 0 or -1 with "FILE:LINE:COL: what" in ld->err.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_priv.h"

#define QUOTE_LEN	64
#define PREFIX_MAX	64
#define TIMEOUT_MAX_MS	(60u * 1000)

static int	 set_backend(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 set_redis(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 set_ip(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 set_prefix(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);

#define RD(f)	offsetof(struct conf_kv_redis, f)
static const struct conf_key redis_keys[] = {
	{ "address",	set_ip,		RD(address),	0, 0,	  NULL },
	{ "port",	conf_set_uint16, RD(port),	1, 65535, NULL },
	{ "unix",	conf_set_path,	RD(unix_path),	0, 0,	  NULL },
	{ "password",	conf_set_string, RD(password),	0, 0,	  NULL },
	{ "db",		conf_set_uint,	RD(db),		0, 65535, NULL },
	{ "prefix",	set_prefix,	RD(prefix),	0, 0,	  NULL },
	{ "timeout",	conf_set_msec,	RD(timeout_ms),	10, TIMEOUT_MAX_MS,
	    NULL },
	{ "on_error",	conf_set_verdict, RD(on_error),	0, 0,	  NULL },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

#define KV(f)	offsetof(struct conf_kv, f)
static const struct conf_key kv_keys[] = {
	{ "backend",	set_backend,	KV(backend),	0, 0,	  NULL },
	{ "redis",	set_redis,	KV(redis),	0, 0,	  NULL },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

void
conf_kv_defaults(struct config *cf)
{
	cf->kv.backend = KV_BACKEND_MEMORY;
	cf->kv.redis.port = 6379;
	cf->kv.redis.timeout_ms = 1000;
	cf->kv.redis.on_error = SLUICE_TEMPFAIL;
}

void
conf_kv_free(struct config *cf)
{
	free(cf->kv.redis.address);
	free(cf->kv.redis.unix_path);
	free(cf->kv.redis.password);
	free(cf->kv.redis.prefix);
}

int
conf_set_kv(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct config	*cf = obj;

	(void)key;
	if (conf_walk(ld, val, k->name, kv_keys, &cf->kv) == -1)
		return -1;
	if (cf->kv.redis.prefix == NULL &&
	    (cf->kv.redis.prefix = conf_strdup(ld, val, "sluice:")) == NULL)
		return -1;
	return 0;
}

static int
set_backend(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	static const char *const	 words[] = { "memory", "redis", NULL };
	struct conf_kv			*kv = obj;
	size_t				 i;

	(void)key;
	if (conf_word(ld, k, val, words, &i) == -1)
		return -1;
	kv->backend = i == 0 ? KV_BACKEND_MEMORY : KV_BACKEND_REDIS;
	return 0;
}

/* set_redis - the mapping, then: address/port or unix, not both */
static int
set_redis(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct conf_kv_redis	*r = (struct conf_kv_redis *)((char *)obj +
				    k->off);
	int			 tcp;

	(void)key;
	if (conf_walk(ld, val, "kv.redis", redis_keys, r) == -1)
		return -1;
	tcp = r->address != NULL || r->port != 6379;
	if (r->unix_path != NULL && tcp)
		return conf_error(ld, val, "'kv.redis': give either 'address' "
		    "and 'port' or 'unix', not both");
	return 0;
}

static int
set_ip(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	unsigned char	 buf[16];
	const char	*v;
	char		 q[QUOTE_LEN];

	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	if (inet_pton(AF_INET, v, buf) != 1 && inet_pton(AF_INET6, v, buf) != 1)
		return conf_error(ld, val, "invalid value '%s' for '%s': "
		    "expected an IP address (a host name would need a "
		    "blocking lookup)", conf_quote(v, q, sizeof(q)),
		    conf_qname(ld, k));
	return conf_set_string(ld, k, key, val, obj);
}

static int
set_prefix(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	char		**field = (char **)((char *)obj + k->off);
	const char	 *v;

	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	if (strlen(v) > PREFIX_MAX)
		return conf_error(ld, val, "'%s' is longer than %d characters",
		    conf_qname(ld, k), PREFIX_MAX);
	if (*v != '\0')
		return conf_set_string(ld, k, key, val, obj);
	free(*field);			/* "": no prefix */
	*field = conf_strdup(ld, val, "");
	return *field != NULL ? 0 : -1;
}
