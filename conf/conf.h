/*
 * conf.h - the server configuration: one YAML file turned into struct config
 *
 * API: conf_load() reads and validates a file; conf_free() releases it.
 * Parsing helpers for the value types (durations, sizes, CIDR networks) are
 * exported for the unit tests and for other modules that parse the same
 * notations.
 * Errors: conf_load() returns NULL and fills err with "FILE:LINE:COL: what";
 * it never logs and never exits.
 * Ownership: the caller owns the returned struct config; everything hanging
 * from it is freed by conf_free(). A loaded config is read-only and is shared
 * by every thread.
 */
#ifndef SLUICE_CONF_H
#define SLUICE_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "conf_filter.h"
#include "route_spec.h"

#define CONF_ERR_LEN 512

enum listener_role {
	ROLE_MX,
	ROLE_SUBMISSION,
	ROLE_SUBMISSIONS,
	ROLE_LOCAL,		/* never configured: the maildrop pickup's
				   sessions (pickup.c), trusted to relay */
};

enum tls_mode {			/* listeners: tls.mode */
	TLS_MODE_NONE,			/* no TLS */
	TLS_MODE_OPTIONAL,		/* STARTTLS offered */
	TLS_MODE_REQUIRED,		/* STARTTLS before MAIL (530 5.7.0) */
	TLS_MODE_IMPLICIT,		/* TLS from the first byte (port 465) */
};

struct conf_tls_server {		/* listeners: tls: {...} */
	enum tls_mode mode;
	char *cert;			/* PEM chain, absolute path */
	char *key;			/* PEM private key, absolute path */
};

enum auth_mode {			/* listeners: auth */
	AUTH_MODE_NONE,			/* AUTH not offered */
	AUTH_MODE_OPTIONAL,		/* offered under TLS */
	AUTH_MODE_REQUIRED,		/* and needed before MAIL (530 5.7.0) */
};

struct conf_listener {
	char *name;
	char *address;		/* textual, as configured ("127.0.0.1", "::1") */
	uint16_t port;
	enum listener_role role;
	struct conf_tls_server tls;
	enum auth_mode auth;
	int auth_set;		/* auth: given (else by role) */
	/* proxy_protocol: {from, timeout}: clients in these networks (load
	   balancers) start with a PROXY header naming the real client */
	struct conf_network *proxy_from;
	size_t nproxy_from;
	unsigned proxy_timeout;	/* seconds to send it, default 5 */
};

struct conf_auth {			/* auth: {...} */
	char *users_file;		/* "user:crypt-hash" lines, or NULL */
	unsigned max_failures;		/* per client IP in failure_window */
	unsigned failure_window;	/* seconds */
	unsigned failure_delay;		/* seconds added per failure, capped */
};

struct conf_network {		/* a CIDR block, IPv4 or IPv6 */
	int family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16];	/* network address, host bits cleared */
	unsigned prefix;	/* 0..32 or 0..128 */
};

enum bare_newline_policy {
	BARE_NL_REJECT,		/* reject the message after end of data */
	BARE_NL_NORMALIZE,	/* store bare LF / bare CR as CRLF */
};

struct conf_limits {
	uint64_t message_size;		/* bytes, 0 = no limit */
	unsigned recipients;		/* per message */
	unsigned line_length;		/* text line in DATA, with CRLF */
	unsigned command_line_length;	/* command line, with CRLF */
	unsigned sessions;		/* concurrent, all listeners */
	unsigned per_ip_sessions;	/* concurrent, per client address */
	unsigned errors;		/* client errors before 421 */
	unsigned junk_commands;		/* NOOP/RSET/VRFY/HELP before each
					   counts as an error */
	unsigned idle_timeout;		/* seconds without any input */
	unsigned command_timeout;	/* seconds to complete one command line */
	unsigned hops;			/* Received: fields before 554 5.4.6 */
	unsigned data_timeout;		/* seconds for a whole DATA/BDAT
					   content, 0 = none */
	uint64_t min_data_rate;		/* bytes/s over the content, 0 = none */
	unsigned data_rate_grace;	/* seconds before the rate counts */
};

struct conf_retry {			/* all in seconds */
	unsigned first;
	unsigned max_interval;
	unsigned lifetime;
	unsigned warn_after;
};

/* retry: domains: {DOMAIN: {...}} - overrides for one recipient domain;
   a key not given there keeps the global value */
struct conf_retry_domain {
	char *domain;			/* lower case */
	struct conf_retry retry;
};

/* routes: {DOMAIN: ROUTE} - DOMAIN is "example.org" (exactly that
   domain), ".example.org" (its subdomains) or "*" (any domain that is not
   local); ROUTE is a route spec (route_spec.h) or the name of an entry of
   transports: (stored resolved). */
struct conf_route {
	char *domain;			/* lower case, as written */
	struct route_spec spec;
};

struct conf_transport {			/* transports: {NAME: ROUTE} */
	char *name;
	struct route_spec spec;
};

/* delivery.tls and delivery.tls_policy: outbound STARTTLS, weakest
   first (the order of the words in the file) */
enum tls_client_policy {
	TLS_CLIENT_NONE,		/* never */
	TLS_CLIENT_MAY,			/* when offered, unchecked (default);
					   plaintext when the handshake fails */
	TLS_CLIENT_ENCRYPT,		/* required, certificate unchecked */
	TLS_CLIENT_VERIFY,		/* required, chain and host name checked */
};

/* delivery.tls_policy: {DEST: POLICY} - DEST is "example.org" (exactly
   that next-hop domain or host), ".example.org" (its subdomains) or
   "[192.0.2.1]" (an address literal next hop) */
struct conf_tls_policy {
	char *dest;			/* lower case; literals canonical */
	enum tls_client_policy policy;
};

struct conf_delivery {
	unsigned concurrency;		/* deliveries at once, all kinds */
	unsigned local_concurrency;	/* Maildir writers (threads) */
	unsigned per_destination;	/* connections to one next hop */
	unsigned recipients_per_transaction;	/* RCPTs per MAIL (SMTP) */
	unsigned messages_per_connection;	/* then QUIT, reconnect */
	unsigned connection_cache;	/* seconds an idle connection stays */
	unsigned connect_timeout;	/* seconds */
	unsigned greeting_timeout;
	unsigned command_timeout;	/* each command's reply */
	unsigned data_timeout;		/* the reply after the final dot */
	unsigned port;			/* TCP port of MX hosts, default 25 */
	char *helo_name;		/* NULL: hostname */
	enum tls_client_policy tls;	/* the default policy */
	char *tls_ca_file;		/* absolute; NULL: the system store */
	struct conf_tls_policy *tls_policies;	/* in file order */
	size_t ntls_policies;
};

struct conf_bounce {
	uint64_t return_limit;		/* RET=FULL: bytes of the original */
};

enum log_target {
	LOG_TARGET_STDERR,
	LOG_TARGET_SYSLOG,
	LOG_TARGET_FILE,
};

struct conf_dns_server {	/* one name server: address and port */
	int family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16];	/* network byte order */
	uint16_t port;		/* 53 unless configured */
};

struct conf_dns {
	struct conf_dns_server *servers;	/* none: use /etc/resolv.conf */
	size_t nservers;
	unsigned timeout;		/* seconds per try, default 5 */
	unsigned attempts;		/* tries per server, 1..10, default 2 */
	int hosts_file;			/* a client's name: the hosts file
					   before DNS (default 1) */
};

enum kv_backend {			/* kv.backend */
	KV_BACKEND_MEMORY,		/* in this process (kvstore.h) */
	KV_BACKEND_REDIS,		/* shared: kv.redis */
};

struct conf_kv_redis {			/* kv: {redis: {...}} */
	char *address;			/* IP literal, default 127.0.0.1 */
	uint16_t port;			/* default 6379 */
	char *unix_path;		/* unix: socket path, instead */
	char *password;			/* AUTH, or NULL */
	unsigned db;			/* SELECT, default 0 */
	char *prefix;			/* before every key, "sluice:" */
	unsigned timeout_ms;		/* connect and each command, 1000 */
	enum sluice_verdict on_error;	/* a filter call the store failed
					   under; default tempfail */
};

struct conf_kv {
	enum kv_backend backend;
	struct conf_kv_redis redis;
};

struct conf_log {
	enum log_target target;
	int debug;			/* level: debug */
	char *facility;			/* syslog facility name, default "mail" */
	char *file;			/* target file: its path (absolute) */
};

struct conf_metrics {			/* metrics: {address, port} */
	char *address;			/* default 127.0.0.1 */
	uint16_t port;			/* 0: no metrics endpoint */
};

struct config {
	char *path;			/* the file it came from */
	char *hostname;
	char *spool;			/* absolute path */
	char *user;			/* NULL: do not change user */
	unsigned workers;		/* 0 = one per core */
	unsigned shutdown_timeout;	/* seconds sessions get at SIGTERM */

	struct conf_listener *listeners;
	size_t nlisteners;

	struct conf_network *trusted_networks;
	size_t ntrusted_networks;

	char **local_domains;		/* lower case */
	size_t nlocal_domains;
	char **relay_domains;		/* lower case: accepted from anyone,
					   delivered by routes: or MX */
	size_t nrelay_domains;

	struct conf_route *routes;	/* routes:, in file order */
	size_t nroutes;
	struct conf_transport *transports;
	size_t ntransports;
	struct route_spec local_route;	/* mailboxes.delivery (maildir) */

	char *maildir;			/* template with %d %u, absolute */
	char **mailbox_users;		/* "local@domain", lower case */
	size_t nmailbox_users;
	char *mailbox_users_file;	/* absolute, or NULL */
	char *postmaster;		/* mailbox for <postmaster>, or NULL */

	struct conf_auth auth;
	struct conf_limits limits;
	struct conf_retry retry;
	struct conf_retry_domain *retry_domains;
	size_t nretry_domains;
	struct conf_delivery delivery;
	struct conf_bounce bounce;
	char *control_socket;		/* absolute; default SPOOL/control */
	struct conf_dns dns;
	struct conf_kv kv;

	struct conf_filter *filters;	/* pipeline:, in order */
	size_t nfilters;
	char *plugin_dir;		/* NULL: the built-in default */
	enum bare_newline_policy bare_newline;
	unsigned greeting_delay;	/* seconds before the 220 (untrusted) */
	int pipelining_checks;		/* RFC 2920 order for untrusted */
	int allow_root_filters;		/* run pipeline: as root (unsafe) */
	struct conf_log log;
	struct conf_metrics metrics;
};

struct config	*conf_load(const char *path, char *err, size_t errlen);
void		 conf_free(struct config *);

/* Value parsers: 0 on success, -1 on a malformed or out-of-range value. */
int	conf_parse_duration(const char *, unsigned *seconds);
int	conf_parse_size(const char *, uint64_t *bytes);
int	conf_parse_bool(const char *, int *on);
/* conf_parse_msec - "250ms", "2s", "1m", or seconds as a plain number */
int	conf_parse_msec(const char *, unsigned *msec);
int	conf_parse_network(const char *, struct conf_network *);
int	conf_network_match(const struct conf_network *,
	    const struct sockaddr *);

/* conf_route_find - the routes: entry for a domain (exact, then the
   closest ".parent", then "*" when !local); NULL when none applies */
const struct route_spec *conf_route_find(const struct config *,
	    const char *domain, int local);
/* conf_is_local_domain - domain is one of domains.local (any case) */
int	conf_is_local_domain(const struct config *, const char *domain);
/* conf_transport_find - transports: NAME, or NULL */
const struct route_spec *conf_transport_find(const struct config *,
	    const char *name);
/* conf_tls_policy_find - the TLS policy of an SMTP next hop: host is the
   next-hop domain (the recipient domain for MX delivery, the domain of an
   "smtp:domain" route, the host of "smtp:[host]") or, with literal, an
   address; the best delivery.tls_policy entry (exact, then the longest
   ".parent"), else delivery.tls */
enum tls_client_policy conf_tls_policy_find(const struct config *,
	    const char *host, int literal);
/* conf_retry_for - the retry settings for a recipient domain */
const struct conf_retry *conf_retry_for(const struct config *,
	    const char *domain);

#endif
