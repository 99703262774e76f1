/*
 * dns.c - the resolver: a c-ares channel driven by a libevent loop
 *
 * API: dns_global_init(), dns_resolver_new(), dns_resolver_free(),
 * dns_query(), dns_query_addr(), dns_cancel(); see dns.h.
 * c-ares tells us which sockets to watch through its socket-state callback
 * (one persistent event per socket) and when to wake up through
 * ares_timeout() (one timer); both feed ares_process_fd(). When c-ares hands
 * back an answer we parse it at once but only activate the query's own
 * event: user callbacks therefore never run inside c-ares (or inside
 * dns_query()), and are free to query, cancel, or free the resolver.
 * c-ares 1.18 cannot cancel one query, so dns_cancel() of a query still in
 * flight only forgets its callback; the query is freed when c-ares is done.
 * Ownership: the resolver owns its queries; a query is freed after its
 * callback returns, by dns_cancel(), or by dns_resolver_free().
 * Threads: everything runs on the thread of the resolver's event_base.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <event2/event.h>

#include "conf.h"
#include "dns.h"
#include "log.h"
#include "util.h"

#define DEFAULT_TIMEOUT		5	/* seconds per try */
#define DEFAULT_ATTEMPTS	2
#define DNS_PORT		53
#define CLASS_IN		1

struct dns_sock {			/* a socket c-ares wants watched */
	struct dns_sock		*next;
	struct dns_resolver	*r;
	ares_socket_t		 fd;
	struct event		*ev;
};

struct dns_query {
	struct dns_query	*prev, *next;	/* the resolver's list */
	struct dns_resolver	*r;
	enum dns_type		 type;
	dns_cb			 cb;		/* NULL once cancelled */
	void			*arg;
	struct event		*done;		/* activated with the result */
	struct dns_result	 res;
	int			 in_ares;	/* c-ares still holds it */
	int			 delivering;	/* its callback is running */
};

struct dns_resolver {
	struct event_base	*base;
	ares_channel		 channel;
	struct event		*timer;
	struct dns_sock		*socks;
	struct dns_query	*queries;	/* every live query */
	int			 closing;
};

static enum dns_status	 status_from_ares(int);
static void		 update_timer(struct dns_resolver *);
static void		 timer_fired(evutil_socket_t, short, void *);
static void		 sock_ready(evutil_socket_t, short, void *);
static struct dns_sock	*sock_find(struct dns_resolver *, ares_socket_t);
static void		 sock_free(struct dns_resolver *, struct dns_sock *);
static void		 sock_state(void *, ares_socket_t, int, int);
static int		 set_servers(struct dns_resolver *,
			    const struct conf_dns *, char *, size_t);
static void		 query_unlink(struct dns_query *);
static void		 query_destroy(struct dns_query *);
static void		 query_free(struct dns_query *);
static void		 query_answered(void *, int, int, unsigned char *,
			    int);
static void		 host_answered(void *, int, int, struct hostent *);
static void		 query_deliver(evutil_socket_t, short, void *);

int
dns_global_init(void)
{
	return ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS ? 0 : -1;
}

void
dns_global_cleanup(void)
{
	ares_library_cleanup();
}

static enum dns_status
status_from_ares(int st)
{
	switch (st) {
	case ARES_SUCCESS:
		return DNS_OK;
	case ARES_ENOTFOUND:
		return DNS_NXDOMAIN;
	case ARES_ENODATA:
		return DNS_NODATA;
	case ARES_ESERVFAIL:
	case ARES_ECONNREFUSED:
		return DNS_SERVFAIL;
	case ARES_ETIMEOUT:
		return DNS_TIMEOUT;
	case ARES_EREFUSED:
		return DNS_REFUSED;
	case ARES_EBADRESP:
		return DNS_BADRESP;
	default:
		return DNS_ERROR;
	}
}

/* After every call into c-ares: wake up when it next needs to. */
static void
update_timer(struct dns_resolver *r)
{
	struct timeval	 tv, *tvp;

	if ((tvp = ares_timeout(r->channel, NULL, &tv)) == NULL)
		evtimer_del(r->timer);
	else
		evtimer_add(r->timer, tvp);
}

static void
timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver	*r = arg;

	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	update_timer(r);
}

/* s may be freed inside ares_process_fd(): keep only r. */
static void
sock_ready(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver	*r = ((struct dns_sock *)arg)->r;

	ares_process_fd(r->channel,
	    (what & EV_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD);
	update_timer(r);
}

static struct dns_sock *
sock_find(struct dns_resolver *r, ares_socket_t fd)
{
	struct dns_sock	*s;

	for (s = r->socks; s != NULL; s = s->next)
		if (s->fd == fd)
			return s;
	return NULL;
}

static void
sock_free(struct dns_resolver *r, struct dns_sock *s)
{
	struct dns_sock	**pp;

	for (pp = &r->socks; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	event_free(s->ev);
	free(s);
}

/*
 * sock_state - c-ares' ARES_OPT_SOCK_STATE_CB: watch fd for reading and/or
 * writing, or (0, 0) forget it, as it is about to be closed
 */
static void
sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_resolver	*r = data;
	struct dns_sock		*s = sock_find(r, fd);
	short			 what = EV_PERSIST;

	if (!readable && !writable) {
		if (s != NULL)
			sock_free(r, s);
		return;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->r = r;
		s->fd = fd;
		s->next = r->socks;
		r->socks = s;
	} else
		event_free(s->ev);
	what |= (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	if ((s->ev = event_new(r->base, fd, what, sock_ready, s)) == NULL ||
	    event_add(s->ev, NULL) == -1)
		abort();	/* out of memory, or a broken event base */
}

static int
set_servers(struct dns_resolver *r, const struct conf_dns *cf, char *err,
    size_t errlen)
{
	struct ares_addr_port_node	*nodes;
	size_t				 i;
	int				 st;

	nodes = xcalloc(cf->nservers, sizeof(*nodes));
	for (i = 0; i < cf->nservers; i++) {
		nodes[i].next = i + 1 < cf->nservers ? &nodes[i + 1] : NULL;
		nodes[i].family = cf->servers[i].family;
		memcpy(&nodes[i].addr, cf->servers[i].addr,
		    cf->servers[i].family == AF_INET ? 4 : 16);
		nodes[i].udp_port = nodes[i].tcp_port =
		    cf->servers[i].port ? cf->servers[i].port : DNS_PORT;
	}
	st = ares_set_servers_ports(r->channel, nodes);
	free(nodes);
	if (st == ARES_SUCCESS)
		return 0;
	snprintf(err, errlen, "cannot set DNS servers: %s", ares_strerror(st));
	return -1;
}

struct dns_resolver *
dns_resolver_new(struct event_base *base, const struct conf_dns *cf,
    char *err, size_t errlen)
{
	struct dns_resolver	*r;
	struct ares_options	 opts;
	unsigned		 timeout = DEFAULT_TIMEOUT;
	int			 st;

	r = xcalloc(1, sizeof(*r));
	r->base = base;
	if ((r->timer = evtimer_new(base, timer_fired, r)) == NULL) {
		snprintf(err, errlen, "cannot create the DNS timer");
		free(r);
		return NULL;
	}
	memset(&opts, 0, sizeof(opts));
	if (cf != NULL && cf->timeout > 0)
		timeout = cf->timeout;
	opts.timeout = (int)(timeout * 1000);
	opts.tries = cf != NULL && cf->attempts > 0 ? (int)cf->attempts :
	    DEFAULT_ATTEMPTS;
	opts.sock_state_cb = sock_state;
	opts.sock_state_cb_data = r;
	/* addresses' names (dns_query_addr): f = hosts file, b = DNS */
	opts.lookups = (char *)(cf == NULL || cf->hosts_file ? "fb" : "b");
	if ((st = ares_init_options(&r->channel, &opts, ARES_OPT_TIMEOUTMS |
	    ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS)) !=
	    ARES_SUCCESS) {
		snprintf(err, errlen, "cannot start the DNS resolver: %s",
		    ares_strerror(st));
		event_free(r->timer);
		free(r);
		return NULL;
	}
	if (cf != NULL && cf->nservers > 0 &&
	    set_servers(r, cf, err, errlen) == -1) {
		dns_resolver_free(r);
		return NULL;
	}
	return r;
}

/*
 * dns_resolver_free - ares_destroy() hands every query in flight back with
 * ARES_EDESTRUCTION (query_answered frees it, as closing is set) and reports
 * its sockets closed; what is left are answered, undelivered queries.
 */
void
dns_resolver_free(struct dns_resolver *r)
{
	if (r == NULL)
		return;
	r->closing = 1;
	ares_destroy(r->channel);
	while (r->queries != NULL)
		query_free(r->queries);
	while (r->socks != NULL)
		sock_free(r, r->socks);
	event_free(r->timer);
	free(r);
}

static void
query_unlink(struct dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else if (q->r->queries == q)
		q->r->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

static void
query_destroy(struct dns_query *q)
{
	dns_result_clear(&q->res);
	event_free(q->done);
	free(q);
}

static void
query_free(struct dns_query *q)
{
	query_unlink(q);
	query_destroy(q);
}

/* query_new - on the resolver's list, its result event ready */
static struct dns_query *
query_new(struct dns_resolver *r, enum dns_type type, dns_cb cb, void *arg)
{
	struct dns_query	*q;

	q = xcalloc(1, sizeof(*q));
	q->r = r;
	q->type = type;
	q->cb = cb;
	q->arg = arg;
	if ((q->done = event_new(r->base, -1, 0, query_deliver, q)) == NULL)
		abort();	/* out of memory */
	q->next = r->queries;
	if (r->queries != NULL)
		r->queries->prev = q;
	r->queries = q;
	return q;
}

/* query_error - the callback gets DNS_ERROR, later, on the loop */
static struct dns_query *
query_error(struct dns_query *q)
{
	q->res.status = DNS_ERROR;
	event_active(q->done, EV_TIMEOUT, 1);
	return q;
}

struct dns_query *
dns_query(struct dns_resolver *r, const char *name, enum dns_type type,
    dns_cb cb, void *arg)
{
	struct dns_query	*q = query_new(r, type, cb, arg);

	if (dns_type_code(type) < 0 || !dns_name_valid(name))
		return query_error(q);
	q->in_ares = 1;		/* c-ares may answer inside ares_query() */
	ares_query(r->channel, name, CLASS_IN, dns_type_code(type),
	    query_answered, q);
	update_timer(r);
	return q;
}

struct dns_query *
dns_query_addr(struct dns_resolver *r, const struct sockaddr *sa,
    dns_cb cb, void *arg)
{
	struct dns_query	*q = query_new(r, DNS_PTR, cb, arg);
	unsigned char		 addr[16];
	int			 len, family;

	if ((len = dns_addr_bytes(sa, addr, &family)) == -1)
		return query_error(q);
	q->in_ares = 1;		/* the hosts file answers inside the call */
	ares_gethostbyaddr(r->channel, addr, len, family, host_answered, q);
	update_timer(r);
	return q;
}

/* answer_wanted - c-ares is done with q: 0 (q freed) when nobody waits */
static int
answer_wanted(struct dns_query *q)
{
	q->in_ares = 0;
	if (q->cb == NULL || q->r->closing) {
		query_free(q);
		return 0;
	}
	return 1;
}

/* answer_ready - the result is in q: on to the loop */
static void
answer_ready(struct dns_query *q, int timeouts)
{
	if (log_debug_enabled())
		log_debug("event=dns_answer type=%s status=%s records=%zu "
		    "timeouts=%d", dns_type_name(q->type),
		    dns_status_name(q->res.status), q->res.nrrs, timeouts);
	event_active(q->done, EV_TIMEOUT, 1);
}

/* c-ares' callback (cb NULL: cancelled): keep the result for the loop. */
static void
query_answered(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_query	*q = arg;

	if (!answer_wanted(q))
		return;
	if (status == ARES_SUCCESS)
		dns_parse_answer(q->type, abuf, alen, &q->res);
	else
		q->res.status = status_from_ares(status);
	answer_ready(q, timeouts);
}

/* c-ares' callback of dns_query_addr(), as query_answered() */
static void
host_answered(void *arg, int status, int timeouts, struct hostent *he)
{
	struct dns_query	*q = arg;

	if (!answer_wanted(q))
		return;
	if (status == ARES_SUCCESS)
		dns_result_host_names(&q->res, he);
	else
		q->res.status = status_from_ares(status);
	answer_ready(q, timeouts);
}

/* The callback may free the resolver: q is off its list by then. */
static void
query_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query	*q = arg;

	q->delivering = 1;
	query_unlink(q);
	if (q->cb != NULL)
		q->cb(&q->res, q->arg);
	query_destroy(q);
}

void
dns_cancel(struct dns_query *q)
{
	if (q == NULL || q->delivering)
		return;
	q->cb = NULL;
	if (!q->in_ares)
		query_free(q);
}
