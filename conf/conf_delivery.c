/*
 * conf_delivery.c - outbound delivery settings: delivery:, bounce:,
 * control: and retry: (with its per-domain overrides); the TLS keys of
 * delivery: are in conf_tls_client.c
 *
 * API: conf_retry_keys[], conf_bounce_keys[], conf_control_keys[],
 * conf_set_delivery(), conf_delivery_finish(), conf_delivery_free()
 * (conf_priv.h); conf_retry_for() (conf.h).
 * retry.domains entries are read as they come but every key they leave
 * out takes the global retry value, which is only known at the end: the
 * global keys have a minimum of 1s, so 0 marks "not given" until then.
 * control.socket defaults to SPOOL/control, also filled in at the end.
 * Errors: 0 or -1 with "FILE:LINE:COL: what" in ld->err.
 * Ownership: everything goes straight into ld->cf (see conf_priv.h).
 */
#define _POSIX_C_SOURCE 200809L

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "conf.h"
#include "conf_priv.h"

#define QUOTE_LEN	64
#define SECTION_LEN	300		/* "retry.domains." and a domain */
#define SUN_PATH_LEN	sizeof(((struct sockaddr_un *)0)->sun_path)

static int	 set_helo_name(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 check_per_destination(struct conf_loader *,
		    const struct ynode *);
static int	 set_control_socket(struct conf_loader *,
		    const struct conf_key *, const struct ynode *,
		    const struct ynode *, void *);
static int	 set_retry_domains(struct conf_loader *,
		    const struct conf_key *, const struct ynode *,
		    const struct ynode *, void *);
static int	 add_retry_domain(struct conf_loader *, const struct ynode *,
		    const struct ynode *, const struct ynode *);
static void	 inherit_retry(struct conf_retry *, const struct conf_retry *);
static int	 default_control_socket(struct conf_loader *);

#define DLV(f)	offsetof(struct conf_delivery, f)
static const struct conf_key delivery_keys[] = {
	{ "concurrency", conf_set_uint, DLV(concurrency), 1, 10000, NULL },
	{ "local_concurrency", conf_set_uint, DLV(local_concurrency), 1, 256,
	    NULL },
	{ "per_destination", conf_set_uint, DLV(per_destination), 1, 1000,
	    NULL },
	{ "recipients_per_transaction", conf_set_uint,
	    DLV(recipients_per_transaction), 1, 10000, NULL },
	{ "messages_per_connection", conf_set_uint,
	    DLV(messages_per_connection), 1, 100000, NULL },
	{ "connection_cache", conf_set_duration, DLV(connection_cache), 0,
	    3600, NULL },
	{ "connect_timeout", conf_set_duration, DLV(connect_timeout), 1, 0,
	    NULL },
	{ "greeting_timeout", conf_set_duration, DLV(greeting_timeout), 1, 0,
	    NULL },
	{ "command_timeout", conf_set_duration, DLV(command_timeout), 1, 0,
	    NULL },
	{ "data_timeout", conf_set_duration, DLV(data_timeout), 1, 0, NULL },
	{ "port",	conf_set_uint,	DLV(port),	1, 65535, NULL },
	{ "helo_name",	set_helo_name,	DLV(helo_name),	0, 0,	  NULL },
	{ "tls",	conf_set_tls,	DLV(tls),	0, 0,	  NULL },
	{ "tls_ca_file", conf_set_tls_ca_file, DLV(tls_ca_file), 0, 0, NULL },
	{ "tls_policy",	conf_set_tls_policy, 0,		0, 0,	  NULL },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

const struct conf_key conf_bounce_keys[] = {
	{ "return_limit", conf_set_size, offsetof(struct conf_bounce,
	    return_limit), 0, 0, NULL },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

const struct conf_key conf_control_keys[] = {
	{ "socket",	set_control_socket, offsetof(struct config,
	    control_socket), 0, 0, NULL },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

#define RT(f)	offsetof(struct conf_retry, f)
const struct conf_key conf_retry_keys[] = {
	{ "first",	  conf_set_duration, RT(first),	       1, 0, NULL },
	{ "max_interval", conf_set_duration, RT(max_interval), 1, 0, NULL },
	{ "lifetime",	  conf_set_duration, RT(lifetime),     1, 0, NULL },
	{ "warn_after",	  conf_set_duration, RT(warn_after),   1, 0, NULL },
	{ "domains",	  set_retry_domains, 0,		       0, 0, NULL },
	{ NULL,		  NULL,		     0,		       0, 0, NULL },
};

/* the same keys without domains, for one domain's overrides */
static const struct conf_key retry_domain_keys[] = {
	{ "first",	  conf_set_duration, RT(first),	       1, 0, NULL },
	{ "max_interval", conf_set_duration, RT(max_interval), 1, 0, NULL },
	{ "lifetime",	  conf_set_duration, RT(lifetime),     1, 0, NULL },
	{ "warn_after",	  conf_set_duration, RT(warn_after),   1, 0, NULL },
	{ NULL,		  NULL,		     0,		       0, 0, NULL },
};

static int
set_helo_name(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	const char	*v;
	char		 q[QUOTE_LEN];

	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	if (!conf_valid_domain(v))
		return conf_error(ld, val, "invalid value '%s' for '%s': "
		    "expected a domain name like mx.example.org",
		    conf_quote(v, q, sizeof(q)), conf_qname(ld, k));
	return conf_set_string(ld, k, key, val, obj);
}

int
conf_set_delivery(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct config	*cf = obj;

	(void)key;
	if (conf_walk(ld, val, k->name, delivery_keys, &cf->delivery) == -1)
		return -1;
	return check_per_destination(ld, val);
}

/*
 * per_destination may not exceed concurrency. When only concurrency is
 * given, the default per_destination shrinks to fit instead of failing.
 */
static int
check_per_destination(struct conf_loader *ld, const struct ynode *map)
{
	struct conf_delivery	*d = &ld->cf->delivery;
	const struct ynode	*pd;

	if (d->per_destination <= d->concurrency)
		return 0;
	if ((pd = conf_yaml_get(map, "per_destination")) == NULL) {
		d->per_destination = d->concurrency;
		return 0;
	}
	return conf_error(ld, pd, "'delivery.per_destination' (%u) may not "
	    "exceed 'delivery.concurrency' (%u)", d->per_destination,
	    d->concurrency);
}

static int
set_control_socket(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct config	*cf = obj;
	char		 q[QUOTE_LEN];

	if (conf_set_path(ld, k, key, val, obj) == -1)
		return -1;
	if (strlen(cf->control_socket) >= SUN_PATH_LEN)
		return conf_error(ld, val, "invalid value '%s' for '%s': "
		    "a unix socket path has at most %zu bytes",
		    conf_quote(cf->control_socket, q, sizeof(q)),
		    conf_qname(ld, k), SUN_PATH_LEN - 1);
	return 0;
}

static int
set_retry_domains(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	(void)key;
	(void)obj;
	return conf_each_pair(ld, val, conf_qname(ld, k), add_retry_domain);
}

/* Entry n of cf->retry_domains comes from pair n of map. */
static int
add_retry_domain(struct conf_loader *ld, const struct ynode *map,
    const struct ynode *key, const struct ynode *val)
{
	struct config			*cf = ld->cf;
	struct conf_retry_domain	*p;
	char				*d, q[QUOTE_LEN];
	char				 section[SECTION_LEN];
	size_t				 i;

	if (!conf_valid_domain(key->value))
		return conf_error(ld, key, "invalid domain '%s' in "
		    "'retry.domains'", conf_quote(key->value, q, sizeof(q)));
	if ((d = conf_strdup(ld, key, key->value)) == NULL)
		return -1;
	conf_lower(d);
	for (i = 0; i < cf->nretry_domains; i++) {
		if (strcmp(cf->retry_domains[i].domain, d) == 0) {
			conf_error(ld, key, "duplicate domain '%s' in "
			    "'retry.domains' (first at line %lu)", d,
			    map->kids[2 * i]->line);
			free(d);
			return -1;
		}
	}
	if ((p = conf_push(ld, key, cf->retry_domains, &cf->nretry_domains,
	    sizeof(*p))) == NULL) {
		free(d);
		return -1;
	}
	cf->retry_domains = p;
	p = &p[cf->nretry_domains - 1];
	p->domain = d;
	snprintf(section, sizeof(section), "retry.domains.%s", key->value);
	return conf_walk(ld, val, section, retry_domain_keys, &p->retry);
}

/* Keys left at 0 (not given) take the global value. */
static void
inherit_retry(struct conf_retry *r, const struct conf_retry *global)
{
	if (r->first == 0)
		r->first = global->first;
	if (r->max_interval == 0)
		r->max_interval = global->max_interval;
	if (r->lifetime == 0)
		r->lifetime = global->lifetime;
	if (r->warn_after == 0)
		r->warn_after = global->warn_after;
}

/* SPOOL/control, which must fit in sun_path */
static int
default_control_socket(struct conf_loader *ld)
{
	struct config		*cf = ld->cf;
	const struct ynode	*spool;
	size_t			 len = strlen(cf->spool);
	const char		*sep = len > 0 && cf->spool[len - 1] == '/' ? "" : "/";
	char			*p, q[QUOTE_LEN];

	len += strlen(sep) + sizeof("control");
	if ((p = malloc(len)) == NULL)
		return conf_error(ld, NULL, "out of memory");
	snprintf(p, len, "%s%scontrol", cf->spool, sep);
	cf->control_socket = p;
	if (len - 1 < SUN_PATH_LEN)
		return 0;
	if ((spool = conf_yaml_get(ld->root, "spool")) == NULL)
		spool = ld->root;
	return conf_error(ld, spool, "the default "
	    "'control.socket' %s is longer than %zu bytes: set "
	    "'control.socket' or a shorter 'spool'",
	    conf_quote(p, q, sizeof(q)), SUN_PATH_LEN - 1);
}

int
conf_delivery_finish(struct conf_loader *ld)
{
	struct config	*cf = ld->cf;
	size_t		 i;

	for (i = 0; i < cf->nretry_domains; i++)
		inherit_retry(&cf->retry_domains[i].retry, &cf->retry);
	if (cf->control_socket == NULL)
		return default_control_socket(ld);
	return 0;
}

const struct conf_retry *
conf_retry_for(const struct config *cf, const char *domain)
{
	size_t	 i;

	if (domain != NULL)
		for (i = 0; i < cf->nretry_domains; i++)
			if (strcasecmp(cf->retry_domains[i].domain,
			    domain) == 0)
				return &cf->retry_domains[i].retry;
	return &cf->retry;
}

void
conf_delivery_free(struct config *cf)
{
	size_t	 i;

	for (i = 0; i < cf->nretry_domains; i++)
		free(cf->retry_domains[i].domain);
	free(cf->retry_domains);
	free(cf->delivery.helo_name);
	conf_tls_free(&cf->delivery);
	free(cf->control_socket);
}
