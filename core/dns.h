/*
 * dns.h - asynchronous DNS lookups on a libevent loop, built on c-ares
 *
 * API: dns_global_init() once per process, before any resolver and before
 * threads start; one struct dns_resolver per loop thread
 * (dns_resolver_new/_free); dns_query() starts a lookup of one name and
 * type, and its callback runs later on that loop, exactly once, unless
 * dns_cancel() came first. It never runs from inside dns_query(). Pure
 * helpers: type and status names, the query name check, reverse names for
 * PTR and DNSBL lookups, and the answer parser (dns_parse.c).
 * Threads: a resolver, its queries and their callbacks belong to the thread
 * that runs its event_base; call nothing here on them from another thread
 * (hand the work over with loop_call()). Resolvers are independent.
 * Callbacks may start new queries, cancel other queries, and free the
 * resolver (which cancels the rest).
 * Ownership: the result handed to a callback, and every string in it, lives
 * only during the call; copy what you keep. A struct dns_query is valid until
 * its callback starts or dns_cancel() returns. Answers are bounded: at most
 * DNS_MAX_RRS records, a TXT text at most DNS_MAX_TXT bytes (cut beyond).
 * Errors: a failed lookup is a status in the result, never a return value;
 * dns_resolver_new() returns NULL with a message in err.
 */
#ifndef SLUICE_DNS_H
#define SLUICE_DNS_H

#include <stddef.h>
#include <sys/socket.h>

#define DNS_MAX_RRS	100		/* records kept per answer */
#define DNS_MAX_TXT	65536		/* bytes kept per TXT record */
#define DNS_NAME_LEN	256		/* buffer for any valid name + NUL */

struct event_base;
struct conf_dns;
struct dns_resolver;
struct dns_query;

enum dns_type {
	DNS_A, DNS_AAAA, DNS_MX, DNS_TXT, DNS_PTR, DNS_CNAME, DNS_NS, DNS_SRV
};

enum dns_status {
	DNS_OK,
	DNS_NXDOMAIN,		/* the name does not exist */
	DNS_NODATA,		/* it exists, without records of this type */
	DNS_SERVFAIL,		/* server failure, or no server reachable;
				   c-ares 1.18 also reports REFUSED answers
				   (from every server) as this */
	DNS_TIMEOUT,		/* no answer after every try */
	DNS_REFUSED,		/* only from c-ares versions that tell it */
	DNS_BADRESP,		/* malformed answer */
	DNS_ERROR,		/* invalid query name or type, or other error */
};

struct dns_rr {
	enum dns_type type;
	unsigned ttl;		/* A/AAAA: per record; others: the RRset's */
	char *text;	/* A/AAAA: address literal; MX: exchange; TXT: the
			   strings of one record concatenated; PTR/CNAME/NS:
			   name; SRV: target. Always NUL-terminated. */
	size_t len;		/* strlen(text), except TXT holding NULs */
	unsigned pref;		/* MX preference, SRV priority */
	unsigned weight, port;	/* SRV */
};

struct dns_result {
	enum dns_status status;
	struct dns_rr *rrs;	/* in answer order; NULL unless DNS_OK */
	size_t nrrs;		/* >= 1 when DNS_OK */
};

typedef void (*dns_cb)(const struct dns_result *, void *arg);

int	dns_global_init(void);		/* 0, or -1 if c-ares cannot start */
void	dns_global_cleanup(void);

/*
 * conf NULL, or a field 0: /etc/resolv.conf, 5 s per try, 2 tries per
 * server. A try's timeout doubles each round through the server list.
 */
struct dns_resolver *dns_resolver_new(struct event_base *,
	    const struct conf_dns *, char *err, size_t errlen);
void	dns_resolver_free(struct dns_resolver *);	/* pending queries are
							   cancelled (callbacks
							   not called) */
struct dns_query *dns_query(struct dns_resolver *, const char *name,
	    enum dns_type, dns_cb, void *arg);
/* the name of an address, as PTR records: the hosts file first, unless
   dns.hosts_file is off, then DNS (what the system resolver does); c-ares
   1.18 reports every failure of the DNS step, a timeout too, as
   DNS_NXDOMAIN; a socket address that is not IP gets DNS_ERROR */
struct dns_query *dns_query_addr(struct dns_resolver *,
	    const struct sockaddr *, dns_cb, void *arg);
void	dns_cancel(struct dns_query *);		/* NULL: no-op */

int	 dns_type_parse(const char *, enum dns_type *);	/* "MX", "txt" */
const char *dns_type_name(enum dns_type);		/* "MX" */
const char *dns_status_name(enum dns_status);		/* "NXDOMAIN" */
int	 dns_name_valid(const char *);	/* 1: fit for a query, 0: not */
/* an IP socket address's bytes: 4 (AF_INET, also for ::ffff:a.b.c.d) or
   16 (AF_INET6) with *family set, -1 for other families */
int	 dns_addr_bytes(const struct sockaddr *, unsigned char out[16],
	    int *family);
/* 1.2.0.192.in-addr.arpa, nibbles.ip6.arpa (::ffff:a.b.c.d as IPv4) */
int	 dns_reverse_name(const struct sockaddr *, char *buf, size_t len);
/* "192.0.2.1", "zen.example" -> "1.2.0.192.zen.example" (DNSBL) */
int	 dns_reverse_ipv4_label(const char *ipv4, const char *zone,
	    char *buf, size_t len);

/* dns_parse.c: a raw answer of the given type into res (fills all of it). */
void	dns_parse_answer(enum dns_type, const unsigned char *abuf, int alen,
	    struct dns_result *res);
void	dns_result_clear(struct dns_result *);
/* an address's names from ares_gethostbyaddr(): h_name first, then the
   other aliases, as PTR records with TTL 0 (names unfit for a query are
   left out; none left is DNS_NXDOMAIN) */
struct hostent;
void	dns_result_host_names(struct dns_result *, const struct hostent *);
int	dns_type_code(enum dns_type);	/* RR type number, -1 if unknown */

#endif
