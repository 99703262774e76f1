/*
 * dest.c - next hops, their job queues and connection slots (dest.h).
 *
 * A next hop lives while it has jobs, connections or a lookup running; a
 * hash table finds it by its key (the canonical route, with the
 * recipient's domain filled in for plain MX routes). kick() is the one
 * place that hands jobs to connections: an idle connection first, then a
 * new connection when the per-next-hop and global limits allow and the
 * addresses are known, else a DNS lookup. A next hop that needs a
 * connection while the global limit is reached waits in a FIFO for a slot.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "dest.h"
#include "log.h"
#include "mx.h"
#include "server.h"
#include "smtpc.h"
#include "util.h"

#define DEST_BUCKETS	1024

struct dconn {
	struct smtpc *c;
	int ready;			/* greeted: not starting any more */
	int idle;			/* ready and without a job */
	TAILQ_ENTRY(dconn) link;
};

struct dest {
	char key[ROUTE_SPEC_LEN];
	struct route_spec spec;
	TAILQ_HEAD(, djob) jobs;
	unsigned njobs;
	TAILQ_HEAD(, dconn) conns;
	unsigned nconns, nstarting;
	struct mx_addrs *addrs;
	uint64_t addrs_until;		/* mono_msec() */
	struct mx_lookup *lookup;
	int waiting;			/* in the global slot FIFO */
	uint64_t setup_since;		/* now_usec(): a lookup or connection
					   began and none got ready since */
	TAILQ_ENTRY(dest) wait_link;
	struct dest *hnext;
};

static struct {
	struct event_base *base;
	struct dns_resolver *dns;
	struct dest *hash[DEST_BUCKETS];
	unsigned nconns;
	TAILQ_HEAD(, dest) waiters;
	int shutting;
} D;

static void	kick(struct dest *);

/* is_local_address - an address of this machine (it can be bound) */
static int
is_local_address(const struct sockaddr *sa)
{
	struct sockaddr_storage ss;
	socklen_t len = sa->sa_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int fd, ok;

	memcpy(&ss, sa, len);
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	if ((fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	ok = bind(fd, (struct sockaddr *)&ss, len) == 0;
	close(fd);
	return ok;
}

/* is_listener - sa is where one of our SMTP listeners takes connections */
static int
is_listener(const struct sockaddr *sa)
{
	const struct config *cf = server.conf;
	unsigned char want[16], any[16] = { 0 };
	const void *have;
	uint16_t port;
	size_t alen;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;
		have = &s4->sin_addr, alen = 4, port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		have = &s6->sin6_addr, alen = 16, port = ntohs(s6->sin6_port);
	} else
		return 0;
	for (size_t i = 0; i < cf->nlisteners; i++) {
		const struct conf_listener *l = &cf->listeners[i];
		if (l->port != port ||
		    inet_pton(sa->sa_family, l->address, want) != 1)
			continue;
		if (memcmp(want, have, alen) == 0)
			return 1;
		if (memcmp(want, any, alen) == 0 && is_local_address(sa))
			return 1;
	}
	return 0;
}

void
dest_init(struct event_base *base, struct dns_resolver *dns)
{
	memset(&D, 0, sizeof(D));
	D.base = base;
	D.dns = dns;
	TAILQ_INIT(&D.waiters);
	mx_set_self(is_listener);
}

unsigned
dest_connections(void)
{
	return D.nconns;
}

const struct route_spec *
dest_route(const struct dest *d)
{
	return &d->spec;
}

const char *
dest_name(const struct dest *d)
{
	return d->key;
}

static unsigned
bucket(const char *key)
{
	return fnv1a(key, strlen(key)) % DEST_BUCKETS;
}

static struct dest *
dest_find(const char *key)
{
	struct dest *d = D.hash[bucket(key)];

	while (d != NULL && strcmp(d->key, key) != 0)
		d = d->hnext;
	return d;
}

static struct dest *
dest_new(const struct route_spec *spec, const char *key)
{
	struct dest *d = xcalloc(1, sizeof(*d));
	unsigned b = bucket(key);

	strlcpy_s(d->key, key, sizeof(d->key));
	d->spec = *spec;
	TAILQ_INIT(&d->jobs);
	TAILQ_INIT(&d->conns);
	d->hnext = D.hash[b];
	D.hash[b] = d;
	return d;
}

static void
dest_unlink(struct dest *d)
{
	struct dest **p = &D.hash[bucket(d->key)];

	while (*p != d)
		p = &(*p)->hnext;
	*p = d->hnext;
	if (d->waiting)
		TAILQ_REMOVE(&D.waiters, d, wait_link);
	mx_cancel(d->lookup);
	mx_addrs_unref(d->addrs);
	free(d);
}

static void
maybe_free(struct dest *d)
{
	if (!D.shutting && d->njobs == 0 && d->nconns == 0 &&
	    d->lookup == NULL)
		dest_unlink(d);
}

/* fail_jobs - every queued job gets this result for all its recipients */
static void
fail_jobs(struct dest *d, enum deliver_result kind, const char *why)
{
	TAILQ_HEAD(, djob) list = TAILQ_HEAD_INITIALIZER(list);
	struct djob *job;

	TAILQ_CONCAT(&list, &d->jobs, link);
	d->njobs = 0;
	if (!TAILQ_EMPTY(&list))
		log_info("event=next-hop-failed relay=%s reason=%s",
		    log_q(d->key), log_q(why));
	while ((job = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, job, link);
		snprintf(job->relay, sizeof(job->relay), "%s", d->key);
		job->setup_start = d->setup_since;
		job->setup_end = now_usec();
		for (size_t i = 0; i < job->nrcpts; i++)
			rcpt_result_set(&job->res[i], kind, "%s", why);
		job->done(job);
	}
	d->setup_since = 0;
}

static struct djob *
take_job(struct dest *d)
{
	struct djob *job = TAILQ_FIRST(&d->jobs);

	if (job != NULL) {
		TAILQ_REMOVE(&d->jobs, job, link);
		d->njobs--;
	}
	return job;
}

static void
on_resolved(enum mx_status st, struct mx_addrs *a, const char *why,
    void *arg)
{
	struct dest *d = arg;

	d->lookup = NULL;
	if (st != MX_OK) {
		fail_jobs(d, st == MX_PERM ? DELIVER_PERM : DELIVER_TEMP, why);
		maybe_free(d);
		return;
	}
	mx_addrs_unref(d->addrs);
	d->addrs = mx_addrs_ref(a);
	d->addrs_until = mono_msec() + (uint64_t)(a->ttl ? a->ttl : 1) * 1000;
	kick(d);
}

/* setup_begins - for the delays= of jobs that fail before any
   connection gets ready (fail_jobs) */
static void
setup_begins(struct dest *d)
{
	if (d->setup_since == 0)
		d->setup_since = now_usec();
}

/* addresses_known - 1 when usable now; else a lookup runs (or starts) */
static int
addresses_known(struct dest *d)
{
	if (d->addrs != NULL && mono_msec() < d->addrs_until)
		return 1;
	if (d->lookup != NULL)
		return 0;
	struct mx_addrs *a = mx_static(&d->spec);
	if (a != NULL) {
		mx_addrs_unref(d->addrs);
		d->addrs = a;
		d->addrs_until = UINT64_MAX;
		return 1;
	}
	setup_begins(d);
	d->lookup = mx_resolve(D.dns, &d->spec, d->spec.host, on_resolved, d);
	return 0;
}

static void
open_conn(struct dest *d)
{
	struct dconn *dc = xcalloc(1, sizeof(*dc));
	/* equal MX preferences share the load: a new order per connection */
	struct mx_addrs *order = mx_shuffled(d->addrs, mx_random_below);

	setup_begins(d);
	dc->c = smtpc_new(D.base, d, order, d->spec.kind == ROUTE_LMTP);
	mx_addrs_unref(order);
	TAILQ_INSERT_TAIL(&d->conns, dc, link);
	d->nconns++;
	d->nstarting++;
	D.nconns++;
}

static void
kick(struct dest *d)
{
	const struct conf_delivery *cf = &server.conf->delivery;
	struct dconn *dc;

	while (d->njobs > 0 && !D.shutting) {
		TAILQ_FOREACH(dc, &d->conns, link)
			if (dc->idle && smtpc_usable(dc->c))	/* not quitting */
				break;
		if (dc != NULL) {
			dc->idle = 0;
			smtpc_start(dc->c, take_job(d));
			continue;
		}
		if (d->njobs <= d->nstarting || d->nconns >= cf->per_destination)
			break;
		if (D.nconns >= cf->concurrency) {
			if (!d->waiting) {
				d->waiting = 1;
				TAILQ_INSERT_TAIL(&D.waiters, d, wait_link);
			}
			break;
		}
		if (!addresses_known(d))
			break;
		open_conn(d);
	}
}

static void
wake_waiters(void)
{
	struct dest *d;

	while (!D.shutting && D.nconns < server.conf->delivery.concurrency &&
	    (d = TAILQ_FIRST(&D.waiters)) != NULL) {
		TAILQ_REMOVE(&D.waiters, d, wait_link);
		d->waiting = 0;
		kick(d);
		maybe_free(d);
	}
}

void
dest_submit(const struct route_spec *spec, const char *rcpt_domain,
    struct djob *job)
{
	struct route_spec s = *spec;
	char key[ROUTE_SPEC_LEN];
	struct dest *d;

	if (s.kind == ROUTE_SMTP && s.mx && s.host[0] == '\0') {
		strlcpy_s(s.host, rcpt_domain, sizeof(s.host));
		str_lower(s.host);
	}
	route_spec_format(&s, key, sizeof(key));
	if ((d = dest_find(key)) == NULL)
		d = dest_new(&s, key);
	TAILQ_INSERT_TAIL(&d->jobs, job, link);
	d->njobs++;
	kick(d);
}

static struct dconn *
find_conn(struct dest *d, struct smtpc *c)
{
	struct dconn *dc;

	TAILQ_FOREACH(dc, &d->conns, link)
		if (dc->c == c)
			return dc;
	fatalx("dest %s: unknown connection", d->key);
}

void
dest_conn_ready(struct dest *d, struct smtpc *c)
{
	const struct conf_delivery *cf = &server.conf->delivery;
	struct dconn *dc = find_conn(d, c);
	struct djob *job;

	if (!dc->ready) {
		dc->ready = 1;
		d->nstarting--;
		d->setup_since = 0;
	}
	if (smtpc_transactions(c) >= cf->messages_per_connection) {
		smtpc_close(c);
		return;
	}
	if ((job = take_job(d)) != NULL) {
		smtpc_start(c, job);
		return;
	}
	if (cf->connection_cache > 0 && TAILQ_EMPTY(&D.waiters)) {
		dc->idle = 1;
		smtpc_idle(c, cf->connection_cache);
	} else
		smtpc_close(c);
}

void
dest_conn_gone(struct dest *d, struct smtpc *c, int never_ready,
    enum deliver_result kind, const char *why)
{
	struct dconn *dc = find_conn(d, c);

	TAILQ_REMOVE(&d->conns, dc, link);
	if (!dc->ready)
		d->nstarting--;
	free(dc);
	d->nconns--;
	D.nconns--;
	if (D.shutting)
		return;
	if (never_ready) {
		/* every address failed: do not trust them any longer */
		mx_addrs_unref(d->addrs);
		d->addrs = NULL;
		if (d->nconns == 0)
			fail_jobs(d, kind, why);
	}
	kick(d);
	wake_waiters();
	maybe_free(d);
}

static unsigned
load(const struct dest *d)
{
	return d->nconns + d->njobs;
}

size_t
dest_busiest(struct dest_stat *out, size_t max)
{
	const struct dest *top[DEST_BUSIEST_MAX];
	size_t n = 0, k;

	if (max > DEST_BUSIEST_MAX)
		max = DEST_BUSIEST_MAX;
	for (unsigned b = 0; b < DEST_BUCKETS && max > 0; b++)
		for (const struct dest *d = D.hash[b]; d; d = d->hnext) {
			if (load(d) == 0 || (n == max &&
			    load(d) <= load(top[n - 1])))
				continue;
			if (n < max)
				n++;
			for (k = n - 1; k > 0 && load(top[k - 1]) < load(d);
			    k--)
				top[k] = top[k - 1];
			top[k] = d;
		}
	for (k = 0; k < n; k++) {
		out[k].name = xstrdup(top[k]->key);
		out[k].conns = top[k]->nconns;
		out[k].jobs = top[k]->njobs;
	}
	return n;
}

void
dest_stats_free(struct dest_stat *s, size_t n)
{
	for (size_t k = 0; k < n; k++)
		free(s[k].name);
}

void
dest_shutdown(void)
{
	D.shutting = 1;
	for (unsigned b = 0; b < DEST_BUCKETS; b++) {
		struct dest *d;
		while ((d = D.hash[b]) != NULL) {
			struct dconn *dc;
			mx_cancel(d->lookup);
			d->lookup = NULL;
			while ((dc = TAILQ_FIRST(&d->conns)) != NULL)
				smtpc_abort(dc->c);
			D.shutting = 0;		/* fail_jobs logs normally */
			fail_jobs(d, DELIVER_TEMP, "4.3.2 not delivered: "
			    "the server is shutting down");
			D.shutting = 1;
			dest_unlink(d);
		}
	}
}
