/*
 * mx.c - resolving a next hop into addresses to try (mx.h).
 *
 * An MX route asks for the MX records first, then the A and AAAA records
 * of every MX host in parallel; a fixed host skips the MX step. The list
 * is built when every answer is in: hosts in MX order, each host's IPv4
 * addresses before its IPv6 ones.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "dns.h"
#include "mx.h"
#include "util.h"

#define MX_TTL_MAX	300

struct mx_host {
	char name[DNS_NAME_LEN];
	unsigned pref;
	struct mx_lookup *l;
	struct dns_query *q[2];		/* A, AAAA */
	struct dns_result res[2];	/* copied answers */
	enum dns_status st[2];
};

struct mx_lookup {
	struct dns_resolver *r;
	struct route_spec spec;
	char domain[DNS_NAME_LEN];	/* what the MX query asks for */
	mx_cb cb;
	void *arg;
	struct dns_query *mxq;
	struct mx_host hosts[MX_HOSTS_MAX];
	size_t nhosts;
	int implicit;			/* no MX: the domain is its own host */
	unsigned pending;
	unsigned ttl;
};

struct mx_addrs *
mx_addrs_ref(struct mx_addrs *a)
{
	a->refs++;
	return a;
}

void
mx_addrs_unref(struct mx_addrs *a)
{
	if (a != NULL && --a->refs == 0)
		free(a);
}

int
mx_order(struct dns_rr *rr, size_t n, unsigned (*rnd)(unsigned))
{
	size_t kept = 0;

	if (n == 1 && (rr[0].text[0] == '\0' || strcmp(rr[0].text, ".") == 0))
		return -1;		/* RFC 7505 null MX */
	/* insertion sort by preference (n is small: at most DNS_MAX_RRS) */
	for (size_t i = 1; i < n; i++) {
		struct dns_rr t = rr[i];
		size_t j = i;
		for (; j > 0 && rr[j - 1].pref > t.pref; j--)
			rr[j] = rr[j - 1];
		rr[j] = t;
	}
	/* shuffle each run of equal preference (Fisher-Yates) */
	for (size_t s = 0, e; s < n; s = e) {
		for (e = s + 1; e < n && rr[e].pref == rr[s].pref; e++)
			;
		for (size_t i = e - 1; i > s; i--) {
			size_t j = s + rnd((unsigned)(i - s + 1));
			struct dns_rr t = rr[i];
			rr[i] = rr[j];
			rr[j] = t;
		}
	}
	/* drop empty names, keep the first MX_HOSTS_MAX */
	for (size_t i = 0; i < n && kept < MX_HOSTS_MAX; i++)
		if (rr[i].text[0] != '\0' && strcmp(rr[i].text, ".") != 0)
			rr[kept++] = rr[i];
	return (int)kept;
}

unsigned
mx_random_below(unsigned n)
{
	return n ? (unsigned)arc4random_uniform(n) : 0;
}

static struct mx_addrs *
addrs_new(void)
{
	struct mx_addrs *a = xcalloc(1, sizeof(*a));

	a->refs = 1;
	a->ttl = MX_TTL_MAX;
	return a;
}

static int (*self_fn)(const struct sockaddr *);

void
mx_set_self(int (*is_self)(const struct sockaddr *))
{
	self_fn = is_self;
}

size_t
mx_drop_self(struct mx_addrs *a, int (*is_self)(const struct sockaddr *))
{
	size_t keep = a->n;

	for (size_t i = 0; i < a->n; i++)
		if (is_self((const struct sockaddr *)&a->a[i].sa)) {
			unsigned worst = a->a[i].pref;
			/* the list is in preference order: the first
			   address with this preference ends the usable ones */
			for (keep = 0; keep < a->n && a->a[keep].pref < worst;
			    keep++)
				;
			break;
		}
	a->n = keep;
	return keep;
}

struct mx_addrs *
mx_shuffled(const struct mx_addrs *a, unsigned (*rnd)(unsigned))
{
	struct mx_addrs *b = addrs_new();
	struct { size_t start, end; } host[MX_ADDRS_MAX], t;
	size_t nh = 0;

	b->ttl = a->ttl;
	/* a host's addresses are next to each other in the list */
	for (size_t i = 0; i < a->n; i++) {
		if (i == 0 || strcmp(a->a[i].host, a->a[i - 1].host) != 0)
			host[nh++].start = i;
		host[nh - 1].end = i + 1;
	}
	for (size_t s = 0, e; s < nh; s = e) {
		unsigned pref = a->a[host[s].start].pref;
		for (e = s + 1; e < nh && a->a[host[e].start].pref == pref; e++)
			;
		for (size_t i = e - 1; i > s; i--) {	/* Fisher-Yates */
			size_t j = s + rnd((unsigned)(i - s + 1));
			t = host[i];
			host[i] = host[j];
			host[j] = t;
		}
	}
	for (size_t k = 0; k < nh; k++)
		for (size_t i = host[k].start; i < host[k].end; i++)
			b->a[b->n++] = a->a[i];
	return b;
}

static void
finish(struct mx_lookup *l, enum mx_status st, struct mx_addrs *a,
    const char *why)
{
	l->cb(st, a, why, l->arg);
	mx_cancel(l);
}

static void
add_addr(struct mx_addrs *a, const char *host, unsigned pref,
    const char *text, uint16_t port)
{
	struct mx_addr *m;
	unsigned salen;

	if (a->n >= MX_ADDRS_MAX)
		return;
	m = &a->a[a->n];
	memset(m, 0, sizeof(*m));
	strlcpy_s(m->host, host, sizeof(m->host));
	m->pref = pref;
	if (sockaddr_numeric(text, port, &m->sa, &salen) == -1)
		return;
	m->salen = salen;
	a->n++;
}


/* all answers in: build the list, or say why there is none */
static void
build(struct mx_lookup *l)
{
	struct mx_addrs *a = addrs_new();
	int temp = 0;
	char why[512];

	for (size_t h = 0; h < l->nhosts; h++) {
		struct mx_host *mh = &l->hosts[h];
		for (int k = 0; k < 2; k++) {
			if (mh->st[k] != DNS_OK) {
				temp |= mh->st[k] != DNS_NXDOMAIN &&
				    mh->st[k] != DNS_NODATA;
				continue;
			}
			for (size_t i = 0; i < mh->res[k].nrrs; i++) {
				add_addr(a, mh->name, mh->pref,
				    mh->res[k].rrs[i].text, l->spec.port);
				if (mh->res[k].rrs[i].ttl < a->ttl)
					a->ttl = mh->res[k].rrs[i].ttl;
			}
		}
	}
	if (a->n > 0 && l->spec.mx && self_fn != NULL &&
	    mx_drop_self(a, self_fn) == 0) {
		mx_addrs_unref(a);
		snprintf(why, sizeof(why), "5.4.6 mail for %s loops back to "
		    "myself (this server is its best MX host)", l->domain);
		finish(l, MX_PERM, NULL, why);
		return;
	}
	if (a->n > 0) {
		if (l->ttl < a->ttl)
			a->ttl = l->ttl;
		finish(l, MX_OK, a, NULL);
		mx_addrs_unref(a);
		return;
	}
	mx_addrs_unref(a);
	if (temp || !l->spec.mx) {
		/* DNS trouble, or a configured host without address: an
		   operator's problem, never a reason to bounce */
		snprintf(why, sizeof(why), "4.4.3 no address for %s%s",
		    l->nhosts == 1 ? l->hosts[0].name : "the MX hosts of ",
		    l->nhosts == 1 ? "" : l->domain);
		finish(l, MX_TEMP, NULL, why);
	} else {
		snprintf(why, sizeof(why), "5.4.4 host or domain name not "
		    "found: %s%s has no address", l->implicit ? "" :
		    "the MX hosts of ", l->domain);
		finish(l, MX_PERM, NULL, why);
	}
}

static void
host_answer(struct mx_host *mh, int k, const struct dns_result *res)
{
	struct mx_lookup *l = mh->l;

	mh->q[k] = NULL;
	mh->st[k] = res->status;
	if (res->status == DNS_OK) {
		mh->res[k].status = DNS_OK;
		mh->res[k].nrrs = res->nrrs;
		mh->res[k].rrs = xcalloc(res->nrrs, sizeof(struct dns_rr));
		for (size_t i = 0; i < res->nrrs; i++) {
			mh->res[k].rrs[i] = res->rrs[i];
			mh->res[k].rrs[i].text = xstrdup(res->rrs[i].text);
		}
	}
	if (--l->pending == 0)
		build(l);
}

static void
on_a(const struct dns_result *res, void *arg)
{
	host_answer(arg, 0, res);
}

static void
on_aaaa(const struct dns_result *res, void *arg)
{
	host_answer(arg, 1, res);
}

static void
query_hosts(struct mx_lookup *l)
{
	l->pending = (unsigned)l->nhosts * 2;
	for (size_t h = 0; h < l->nhosts; h++) {
		struct mx_host *mh = &l->hosts[h];
		mh->l = l;
		mh->q[0] = dns_query(l->r, mh->name, DNS_A, on_a, mh);
		mh->q[1] = dns_query(l->r, mh->name, DNS_AAAA, on_aaaa, mh);
	}
}

static void
add_host(struct mx_lookup *l, const char *name, unsigned pref)
{
	l->hosts[l->nhosts].pref = pref;
	strlcpy_s(l->hosts[l->nhosts++].name, name, DNS_NAME_LEN);
}

static void
on_mx(const struct dns_result *res, void *arg)
{
	struct mx_lookup *l = arg;
	char why[512];
	int n;

	l->mxq = NULL;
	switch (res->status) {
	case DNS_OK:
		n = mx_order(res->rrs, res->nrrs, mx_random_below);
		if (n == -1) {
			snprintf(why, sizeof(why), "5.1.10 %s does not accept "
			    "mail (null MX, RFC 7505)", l->domain);
			finish(l, MX_PERM, NULL, why);
			return;
		}
		for (int i = 0; i < n; i++)
			add_host(l, res->rrs[i].text, res->rrs[i].pref);
		l->ttl = res->rrs[0].ttl;
		break;
	case DNS_NODATA:
		l->implicit = 1;		/* RFC 5321 5.1: implicit MX */
		add_host(l, l->domain, 0);
		break;
	case DNS_NXDOMAIN:
		snprintf(why, sizeof(why), "5.4.4 host or domain name not "
		    "found: %s (NXDOMAIN)", l->domain);
		finish(l, MX_PERM, NULL, why);
		return;
	default:
		snprintf(why, sizeof(why), "4.4.3 DNS lookup of %s MX failed: "
		    "%s", l->domain, dns_status_name(res->status));
		finish(l, MX_TEMP, NULL, why);
		return;
	}
	if (l->nhosts == 0) {
		snprintf(why, sizeof(why), "4.4.3 MX records of %s name no "
		    "host", l->domain);
		finish(l, MX_TEMP, NULL, why);
		return;
	}
	query_hosts(l);
}

struct mx_lookup *
mx_resolve(struct dns_resolver *r, const struct route_spec *spec,
    const char *domain, mx_cb cb, void *arg)
{
	struct mx_lookup *l = xcalloc(1, sizeof(*l));

	l->r = r;
	l->spec = *spec;
	l->cb = cb;
	l->arg = arg;
	l->ttl = MX_TTL_MAX;
	strlcpy_s(l->domain, spec->host[0] ? spec->host : domain,
	    sizeof(l->domain));
	str_lower(l->domain);
	if (spec->mx)
		l->mxq = dns_query(r, l->domain, DNS_MX, on_mx, l);
	else {
		add_host(l, l->domain, 0);
		query_hosts(l);
	}
	return l;
}

void
mx_cancel(struct mx_lookup *l)
{
	if (l == NULL)
		return;
	dns_cancel(l->mxq);
	for (size_t h = 0; h < l->nhosts; h++)
		for (int k = 0; k < 2; k++) {
			dns_cancel(l->hosts[h].q[k]);
			struct dns_result *res = &l->hosts[h].res[k];
			for (size_t i = 0; i < res->nrrs; i++)
				free(res->rrs[i].text);
			free(res->rrs);
		}
	free(l);
}

struct mx_addrs *
mx_static(const struct route_spec *spec)
{
	struct mx_addrs *a;

	if (spec->unix_socket) {
		struct sockaddr_un *su;
		a = addrs_new();
		su = (struct sockaddr_un *)&a->a[0].sa;
		su->sun_family = AF_UNIX;
		strlcpy_s(su->sun_path, spec->path, sizeof(su->sun_path));
		strlcpy_s(a->a[0].host, spec->path, sizeof(a->a[0].host));
		a->a[0].salen = sizeof(*su);
		a->n = 1;
		a->ttl = ~0u;
		return a;
	}
	if (!spec->literal)
		return NULL;
	a = addrs_new();
	add_addr(a, spec->host, 0, spec->host, spec->port);
	a->ttl = ~0u;
	if (a->n == 0) {
		mx_addrs_unref(a);
		return NULL;
	}
	return a;
}
