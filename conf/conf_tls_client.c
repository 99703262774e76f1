/*
 * conf_tls_client.c - the outbound TLS keys of delivery: tls (the default
 * policy), tls_ca_file (what verify trusts) and tls_policy (a policy per
 * next hop), and the lookup of a next hop's policy
 *
 * API: conf_set_tls(), conf_set_tls_ca_file(), conf_set_tls_policy(),
 * conf_tls_free() (conf_priv.h); conf_tls_policy_find() (conf.h).
 * A policy is one of none, may, encrypt, verify. tls_policy keys are
 * matched like routes: keys ("example.org" exactly, ".example.org" its
 * subdomains; no "*", delivery.tls is the default) or, for next hops
 * that are address literals, "[192.0.2.1]" / "[2001:db8::1]" exactly.
 * tls_ca_file must name a readable file when the file is loaded; whether
 * it holds certificates is seen when the delivery client loads it.
 * Errors: 0 or -1 with "FILE:LINE:COL: what" in ld->err.
 * Ownership: everything goes straight into ld->cf (see conf_priv.h).
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "conf_priv.h"

#define QUOTE_LEN	64
#define SECTION		"delivery.tls_policy"

static const char *const policy_words[] = {	/* enum tls_client_policy */
	"none", "may", "encrypt", "verify", NULL
};

static char	*policy_dest(struct conf_loader *, const struct ynode *);
static char	*literal_dest(const char *);
static int	 add_policy(struct conf_loader *, const struct ynode *,
		    const struct ynode *, const struct ynode *);

int
conf_set_tls(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct conf_delivery	*d = obj;
	size_t			 i;

	(void)key;
	if (conf_word(ld, k, val, policy_words, &i) == -1)
		return -1;
	d->tls = (enum tls_client_policy)i;
	return 0;
}

/* a path like every other (relative to the working directory), readable */
int
conf_set_tls_ca_file(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct conf_delivery	*d = obj;
	struct stat		 st;
	char			 q[QUOTE_LEN];
	const char		*why = NULL;

	if (conf_set_path(ld, k, key, val, obj) == -1)
		return -1;
	if (stat(d->tls_ca_file, &st) == -1 ||
	    access(d->tls_ca_file, R_OK) == -1)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	if (why == NULL)
		return 0;
	return conf_error(ld, val, "cannot read '%s' for '%s': %s",
	    conf_quote(d->tls_ca_file, q, sizeof(q)), conf_qname(ld, k), why);
}

int
conf_set_tls_policy(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	(void)key;
	(void)obj;
	return conf_each_pair(ld, val, conf_qname(ld, k), add_policy);
}

/* "[address]" in canonical form (inet_ntop, lower case), or NULL */
static char *
literal_dest(const char *v)
{
	char		 buf[INET6_ADDRSTRLEN + 2], *out;
	unsigned char	 addr[16];
	size_t		 len = strlen(v);
	int		 af;

	if (len < 3 || v[len - 1] != ']' || len - 2 >= sizeof(buf))
		return NULL;
	memcpy(buf, v + 1, len - 2);
	buf[len - 2] = '\0';
	af = strchr(buf, ':') != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(af, buf, addr) != 1 ||
	    inet_ntop(af, addr, buf, sizeof(buf)) == NULL)
		return NULL;
	if ((out = malloc(strlen(buf) + 3)) != NULL)
		snprintf(out, strlen(buf) + 3, "[%s]", buf);
	return out;
}

/* the key of a tls_policy entry, normalised; NULL: error set */
static char *
policy_dest(struct conf_loader *ld, const struct ynode *key)
{
	const char	*v = key->value;
	char		*d, q[QUOTE_LEN];

	if (v[0] == '[' && (d = literal_dest(v)) != NULL)
		return d;
	if (v[0] != '[' && conf_valid_domain(v + (v[0] == '.')))
		return (d = conf_strdup(ld, key, v)) ? conf_lower(d) : NULL;
	conf_error(ld, key, "invalid destination '%s' in '" SECTION "': "
	    "expected a domain, .domain (its subdomains) or [address]",
	    conf_quote(v, q, sizeof(q)));
	return NULL;
}

/* Entry n of delivery.tls_policies comes from pair n of map. */
static int
add_policy(struct conf_loader *ld, const struct ynode *map,
    const struct ynode *key, const struct ynode *val)
{
	struct conf_delivery	*dl = &ld->cf->delivery;
	struct conf_tls_policy	*p;
	struct conf_key		 k = { key->value, NULL, 0, 0, 0, NULL };
	const char		*saved = ld->section;
	char			*d;
	size_t			 i, w;
	int			 rc;

	if ((d = policy_dest(ld, key)) == NULL)
		return -1;
	for (i = 0; i < dl->ntls_policies; i++) {
		if (strcmp(dl->tls_policies[i].dest, d) == 0) {
			conf_error(ld, key, "duplicate destination '%s' in '"
			    SECTION "' (first at line %lu)", d,
			    map->kids[2 * i]->line);
			free(d);
			return -1;
		}
	}
	ld->section = SECTION;
	rc = conf_word(ld, &k, val, policy_words, &w);
	ld->section = saved;
	if (rc == -1 || (p = conf_push(ld, key, dl->tls_policies,
	    &dl->ntls_policies, sizeof(*p))) == NULL) {
		free(d);
		return -1;
	}
	dl->tls_policies = p;
	p[dl->ntls_policies - 1].dest = d;
	p[dl->ntls_policies - 1].policy = (enum tls_client_policy)w;
	return 0;
}

enum tls_client_policy
conf_tls_policy_find(const struct config *cf, const char *host, int literal)
{
	const struct conf_delivery	*dl = &cf->delivery;
	const struct conf_tls_policy	*p, *best = NULL;
	char				 lit[ROUTE_HOST_LEN + 2];
	size_t				 i, rank, brank = 0;

	if (literal)
		snprintf(lit, sizeof(lit), "[%s]", host);
	for (i = 0; i < dl->ntls_policies; i++) {
		p = &dl->tls_policies[i];
		if (literal)
			rank = strcmp(p->dest, lit) == 0;
		else if (p->dest[0] == '[')
			rank = 0;
		else
			rank = conf_domain_match(p->dest, host);
		if (rank > brank) {
			best = p;
			brank = rank;
		}
	}
	return best != NULL ? best->policy : dl->tls;
}

void
conf_tls_free(struct conf_delivery *dl)
{
	size_t	 i;

	for (i = 0; i < dl->ntls_policies; i++)
		free(dl->tls_policies[i].dest);
	free(dl->tls_policies);
	free(dl->tls_ca_file);
}
