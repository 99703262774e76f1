/*
 * mx.h - where to connect for a next hop: MX lookup and address records
 *
 * mx_resolve() turns a route (route_spec.h) into an ordered list of
 * addresses to try: for an MX route, the domain's MX hosts by preference
 * (randomised among equal preferences), each host's A and AAAA records;
 * without MX records the domain's own A/AAAA (RFC 5321 5.1); for a fixed
 * host its A/AAAA; an address literal or a unix socket as it is. A null MX
 * (RFC 7505) and a domain that does not exist are permanent failures;
 * DNS trouble is a temporary one. At most MX_ADDRS_MAX addresses.
 * MX hosts that are this server (mx_set_self) are dropped with every host
 * of the same or a worse preference (RFC 5321 5.1); when that leaves none,
 * the mail loops back to us: a permanent failure (5.4.6).
 * Threads: runs on the loop of the resolver passed in; the callback runs
 * later on that loop, exactly once, unless mx_cancel() came first.
 * Ownership: the callback gets a referenced struct mx_addrs (or NULL on
 * failure, with an "x.y.z text" reason); mx_addrs_unref() releases it.
 */
#ifndef SLUICE_MX_H
#define SLUICE_MX_H

#include <stddef.h>
#include <sys/socket.h>

#include "route_spec.h"

#define MX_ADDRS_MAX	10
#define MX_HOSTS_MAX	10

struct dns_resolver;
struct dns_rr;

struct mx_addr {
	char host[ROUTE_HOST_LEN];	/* the MX host name, or the literal */
	unsigned pref;			/* its MX preference (0 without MX) */
	struct sockaddr_storage sa;
	socklen_t salen;
};

struct mx_addrs {
	int refs;
	size_t n;
	unsigned ttl;			/* seconds the answer may be reused */
	struct mx_addr a[MX_ADDRS_MAX];
};

enum mx_status { MX_OK, MX_TEMP, MX_PERM };

typedef void (*mx_cb)(enum mx_status, struct mx_addrs *, const char *why,
	    void *arg);

struct mx_lookup;

/* mx_static - the address of a literal or unix-socket route; NULL when
   the route needs DNS */
struct mx_addrs *mx_static(const struct route_spec *);
/* mx_resolve - domain is the recipient domain for "smtp" routes; the
   lookup is freed after its callback returns */
struct mx_lookup *mx_resolve(struct dns_resolver *, const struct route_spec *,
	    const char *domain, mx_cb, void *arg);
void	mx_cancel(struct mx_lookup *);

/* mx_set_self - how to tell this server's own addresses (for MX loops) */
void	mx_set_self(int (*is_self)(const struct sockaddr *));
/* mx_drop_self - drop self and what is not better than it; pure, for the
   unit tests. Returns the number of addresses left. */
size_t	mx_drop_self(struct mx_addrs *, int (*is_self)(const struct sockaddr *));
/* mx_shuffled - a copy with the hosts of equal preference in a new random
   order (the addresses of one host stay together), for one connection */
struct mx_addrs *mx_shuffled(const struct mx_addrs *,
	    unsigned (*rnd)(unsigned));
unsigned mx_random_below(unsigned);

struct mx_addrs *mx_addrs_ref(struct mx_addrs *);
void	mx_addrs_unref(struct mx_addrs *);

/*
 * mx_order - sort MX records by preference, shuffling equal ones with
 * rnd(n) (a random number below n); pure, for the unit tests. Returns the
 * number kept (at most MX_HOSTS_MAX), or -1 for a null MX.
 */
int	mx_order(struct dns_rr *, size_t n, unsigned (*rnd)(unsigned));

#endif
