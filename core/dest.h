/*
 * dest.h - next hops: their queues of jobs and their connections
 *
 * Every SMTP or LMTP next hop ("smtp:example.org:25", "lmtp:unix:/x") is a
 * struct dest with a FIFO of jobs and up to delivery.per_destination open
 * connections (delivery.concurrency over all next hops). A connection that
 * finishes a job takes the next one from its next hop's queue (connection
 * reuse); an idle connection stays open delivery.connection_cache seconds.
 * A next hop is resolved (mx.h) when a connection is needed and the last
 * answer is older than its TTL. When every connection attempt to a next
 * hop fails, the jobs waiting for it fail with the same reason (a
 * temporary one, unless DNS said the domain cannot receive mail).
 * Threads: everything runs on the queue manager's loop.
 */
#ifndef SLUICE_DEST_H
#define SLUICE_DEST_H

#include "transport.h"

struct dest;
struct smtpc;
struct event_base;
struct dns_resolver;

void	dest_init(struct event_base *, struct dns_resolver *);
/* dest_submit - queue a job; its done() runs later, exactly once */
void	dest_submit(const struct route_spec *, const char *rcpt_domain,
	    struct djob *);
/* dest_shutdown - close all connections; queued jobs finish (temporary
   failure) before it returns */
void	dest_shutdown(void);
unsigned dest_connections(void);	/* open now, all next hops */

/* dest_busiest - the next hops with the most connections plus queued
   jobs, most first, at most max; names are malloc'ed (dest_stats_free) */
struct dest_stat {
	char *name;			/* "smtp:[192.0.2.1]:25", ... */
	unsigned conns, jobs;		/* open connections; jobs waiting */
};
#define DEST_BUSIEST_MAX	64
size_t	dest_busiest(struct dest_stat *, size_t max);
void	dest_stats_free(struct dest_stat *, size_t n);

/* for connections (smtpc.c) */
void	dest_conn_ready(struct dest *, struct smtpc *);	/* wants a job */
/* dest_conn_gone - closed; if it never got ready, why (the result kind
   and text every waiting job would get) */
void	dest_conn_gone(struct dest *, struct smtpc *, int never_ready,
	    enum deliver_result, const char *why);
const struct route_spec *dest_route(const struct dest *);
const char *dest_name(const struct dest *);

#endif
