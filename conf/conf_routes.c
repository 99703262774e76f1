/*
 * conf_routes.c - where mail goes: transports:, routes:, mailboxes.delivery
 * and the domains.relay check, plus the lookups of a loaded config
 *
 * API: conf_set_transports(), conf_set_routes(), conf_set_local_route(),
 * conf_routes_finish(), conf_routes_free() (conf_priv.h); conf_route_find()
 * and conf_transport_find() (conf.h).
 * A route value is a route spec (core/route_spec.h) or the name of a
 * transports: entry. Specs are checked as soon as they are read; names are
 * resolved by conf_routes_finish(), so transports: may come after routes:
 * in the file. Transport entries themselves must be specs (no chains).
 * Errors: 0 or -1 with "FILE:LINE:COL: what" in ld->err; a bad value is
 * reported at the value, a bad or repeated domain or name at the key.
 * Ownership: everything goes straight into ld->cf (see conf_priv.h).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_priv.h"
#include "route_spec.h"

#define QUOTE_LEN	64
#define WHAT_LEN	320		/* "routes." and a domain */
#define TNAME_MAX_LEN	32

static const char *const reserved_names[] = {
	"smtp", "lmtp", "maildir", "discard", NULL
};

static int	 valid_transport_name(const char *);
static int	 is_reserved(const char *);
static const char *route_text(struct conf_loader *, const struct ynode *,
		    const char *);
static int	 check_route(struct conf_loader *, const struct ynode *,
		    const char *, struct route_spec *);
static int	 resolve_route(struct conf_loader *, const struct ynode *,
		    const char *, struct route_spec *);
static int	 add_transport(struct conf_loader *, const struct ynode *,
		    const struct ynode *, const struct ynode *);
static char	*route_domain(struct conf_loader *, const struct ynode *);
static int	 add_route(struct conf_loader *, const struct ynode *,
		    const struct ynode *, const struct ynode *);
static int	 check_relay(struct conf_loader *);
static int	 resolve_routes(struct conf_loader *);
static int	 resolve_local_route(struct conf_loader *);

/* [a-z0-9_-]{1,32} */
static int
valid_transport_name(const char *s)
{
	size_t	 len;

	len = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-");
	return len > 0 && len <= TNAME_MAX_LEN && s[len] == '\0';
}

static int
is_reserved(const char *s)
{
	size_t	 i;

	for (i = 0; reserved_names[i] != NULL; i++)
		if (strcmp(s, reserved_names[i]) == 0)
			return 1;
	return 0;
}

/* The text of a route value; NULL (error set) if not a non-empty scalar. */
static const char *
route_text(struct conf_loader *ld, const struct ynode *val, const char *what)
{
	if (conf_expect(ld, val, YNODE_SCALAR, what) == -1)
		return NULL;
	if (val->null) {
		conf_error(ld, val, "missing value for '%s'", what);
		return NULL;
	}
	return val->value;
}

/*
 * While reading: a spec must parse (into *spec); anything else must at
 * least look like a transport name, to be resolved at the end.
 */
static int
check_route(struct conf_loader *ld, const struct ynode *val,
    const char *what, struct route_spec *spec)
{
	const char	*v, *why;
	char		 q[QUOTE_LEN];

	if ((v = route_text(ld, val, what)) == NULL)
		return -1;
	if (route_spec_parse(v, spec, &why) == 0)
		return 0;
	if (valid_transport_name(v) && !is_reserved(v))
		return 0;
	return conf_error(ld, val, "invalid value '%s' for '%s': %s",
	    conf_quote(v, q, sizeof(q)), what, why);
}

/* At the end: a value that passed check_route() as a spec or a name. */
static int
resolve_route(struct conf_loader *ld, const struct ynode *val,
    const char *what, struct route_spec *spec)
{
	const struct route_spec	*t;
	char			 q[QUOTE_LEN];

	if (route_spec_parse(val->value, spec, NULL) == 0)
		return 0;
	if ((t = conf_transport_find(ld->cf, val->value)) == NULL)
		return conf_error(ld, val, "unknown transport '%s' for '%s': "
		    "expected a route or the name of an entry of "
		    "'transports'", conf_quote(val->value, q, sizeof(q)),
		    what);
	*spec = *t;
	return 0;
}

int
conf_set_transports(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	(void)key;
	(void)obj;
	return conf_each_pair(ld, val, k->name, add_transport);
}

static int
add_transport(struct conf_loader *ld, const struct ynode *map,
    const struct ynode *key, const struct ynode *val)
{
	struct config		*cf = ld->cf;
	struct conf_transport	*p;
	struct route_spec	 spec;
	const char		*v, *why;
	char			 what[WHAT_LEN], q[QUOTE_LEN];

	(void)map;
	if (!valid_transport_name(key->value))
		return conf_error(ld, key, "invalid transport name '%s' in "
		    "'transports': expected 1 to %d of a-z, 0-9, '_' and '-'",
		    conf_quote(key->value, q, sizeof(q)), TNAME_MAX_LEN);
	if (is_reserved(key->value))
		return conf_error(ld, key, "invalid transport name '%s' in "
		    "'transports': smtp, lmtp, maildir and discard are "
		    "reserved", key->value);
	snprintf(what, sizeof(what), "transports.%s", key->value);
	if ((v = route_text(ld, val, what)) == NULL)
		return -1;
	if (route_spec_parse(v, &spec, &why) == -1)
		return conf_error(ld, val, "invalid value '%s' for '%s': %s",
		    conf_quote(v, q, sizeof(q)), what, why);
	if ((p = conf_push(ld, key, cf->transports, &cf->ntransports,
	    sizeof(*p))) == NULL)
		return -1;
	cf->transports = p;
	p = &p[cf->ntransports - 1];
	p->spec = spec;
	return (p->name = conf_strdup(ld, key, key->value)) == NULL ? -1 : 0;
}

/* "example.org", ".example.org" or "*", lower case; NULL: error set. */
static char *
route_domain(struct conf_loader *ld, const struct ynode *key)
{
	const char	*v = key->value;
	char		*d, q[QUOTE_LEN];

	if (strcmp(v, "*") != 0 && !conf_valid_domain(v + (*v == '.'))) {
		conf_error(ld, key, "invalid domain '%s' in 'routes': "
		    "expected a domain, .domain (its subdomains) or *",
		    conf_quote(v, q, sizeof(q)));
		return NULL;
	}
	if ((d = conf_strdup(ld, key, v)) == NULL)
		return NULL;
	return conf_lower(d);
}

int
conf_set_routes(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	(void)key;
	(void)obj;
	ld->routes = val;
	return conf_each_pair(ld, val, k->name, add_route);
}

/* Entry n of cf->routes comes from pair n of ld->routes. */
static int
add_route(struct conf_loader *ld, const struct ynode *map,
    const struct ynode *key, const struct ynode *val)
{
	struct config		*cf = ld->cf;
	struct conf_route	*p;
	struct route_spec	 spec;
	char			*d, what[WHAT_LEN];
	size_t			 i;

	(void)map;
	memset(&spec, 0, sizeof(spec));
	if ((d = route_domain(ld, key)) == NULL)
		return -1;
	for (i = 0; i < cf->nroutes; i++) {
		if (strcmp(cf->routes[i].domain, d) == 0) {
			conf_error(ld, key, "duplicate route for '%s' (first "
			    "at line %lu)", d, ld->routes->kids[2 * i]->line);
			free(d);
			return -1;
		}
	}
	snprintf(what, sizeof(what), "routes.%s", key->value);
	if (check_route(ld, val, what, &spec) == -1 || (p = conf_push(ld, key,
	    cf->routes, &cf->nroutes, sizeof(*p))) == NULL) {
		free(d);
		return -1;
	}
	cf->routes = p;
	p[cf->nroutes - 1].domain = d;
	p[cf->nroutes - 1].spec = spec;
	return 0;
}

/* mailboxes.delivery: maildir or lmtp, checked once names are known */
int
conf_set_local_route(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct route_spec	 spec;

	(void)key;
	(void)obj;
	if (check_route(ld, val, conf_qname(ld, k), &spec) == -1)
		return -1;
	ld->local_route = val;
	return 0;
}

/* A domain may be local or relay, not both. */
static int
check_relay(struct conf_loader *ld)
{
	const struct ynode	*item;
	char			 d[256];
	size_t			 i;

	if (ld->relay == NULL)
		return 0;
	for (i = 0; i < ld->relay->nkids; i++) {
		item = ld->relay->kids[i];
		snprintf(d, sizeof(d), "%s", item->value);
		if (conf_is_local_domain(ld->cf, conf_lower(d)))
			return conf_error(ld, item, "domain '%s' is in both "
			    "'domains.local' and 'domains.relay'", d);
	}
	return 0;
}

static int
resolve_routes(struct conf_loader *ld)
{
	struct conf_route	*r;
	char			 what[WHAT_LEN];
	size_t			 i;

	for (i = 0; i < ld->cf->nroutes; i++) {
		r = &ld->cf->routes[i];
		snprintf(what, sizeof(what), "routes.%s",
		    ld->routes->kids[2 * i]->value);
		if (resolve_route(ld, ld->routes->kids[2 * i + 1], what,
		    &r->spec) == -1)
			return -1;
	}
	return 0;
}

static int
resolve_local_route(struct conf_loader *ld)
{
	static const char	 what[] = "mailboxes.delivery";
	struct route_spec	 spec;
	const struct ynode	*val = ld->local_route;
	char			 q[QUOTE_LEN];

	if (val == NULL)
		return 0;
	if (resolve_route(ld, val, what, &spec) == -1)
		return -1;
	if (spec.kind != ROUTE_MAILDIR && spec.kind != ROUTE_LMTP)
		return conf_error(ld, val, "invalid value '%s' for '%s': "
		    "expected maildir or an lmtp: route",
		    conf_quote(val->value, q, sizeof(q)), what);
	ld->cf->local_route = spec;
	return 0;
}

int
conf_routes_finish(struct conf_loader *ld)
{
	if (check_relay(ld) == -1 || resolve_routes(ld) == -1)
		return -1;
	return resolve_local_route(ld);
}

/*
 * The routes: entry for a domain: an exact entry, else the longest
 * ".parent" entry the domain ends with (at a label boundary), else "*"
 * unless the domain is local.
 */
const struct route_spec *
conf_route_find(const struct config *cf, const char *domain, int local)
{
	const struct conf_route	*r, *best = NULL, *any = NULL;
	size_t			 i, rank, brank = 0;

	if (cf == NULL || domain == NULL)
		return NULL;
	for (i = 0; i < cf->nroutes; i++) {
		r = &cf->routes[i];
		if (strcmp(r->domain, "*") == 0)
			any = r;
		else if ((rank = conf_domain_match(r->domain, domain)) >
		    brank) {
			best = r;
			brank = rank;
		}
	}
	if (best != NULL)
		return &best->spec;
	return any != NULL && !local ? &any->spec : NULL;
}

const struct route_spec *
conf_transport_find(const struct config *cf, const char *name)
{
	size_t	 i;

	if (cf == NULL || name == NULL)
		return NULL;
	for (i = 0; i < cf->ntransports; i++)
		if (strcmp(cf->transports[i].name, name) == 0)
			return &cf->transports[i].spec;
	return NULL;
}

void
conf_routes_free(struct config *cf)
{
	size_t	 i;

	for (i = 0; i < cf->nrelay_domains; i++)
		free(cf->relay_domains[i]);
	free(cf->relay_domains);
	for (i = 0; i < cf->nroutes; i++)
		free(cf->routes[i].domain);
	free(cf->routes);
	for (i = 0; i < cf->ntransports; i++)
		free(cf->transports[i].name);
	free(cf->transports);
}
