/*
 * conf_schema.c - the accepted keys: one table of struct conf_key per mapping
 *
 * API: conf_top_keys[] (walked by conf_load()), conf_schema_finish() for the
 * checks that need the whole file; see conf_priv.h.
 * Each row names a key, its setter and where the value goes. Keys of
 * features not written yet would have a row whose setter
 * (conf_set_unsupported) says so, rather than being silently ignored. The tables of delivery:,
 * bounce:, control: and retry: are in conf_delivery.c, the routing keys in
 * conf_routes.c.
 * Errors: 0 or -1 with "FILE:LINE:COL: what" in ld->err.
 * Ownership: setters store straight into ld->cf (see conf_priv.h).
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_priv.h"

#define QUOTE_LEN	64
#define NAME_MAX_LEN	64

static int	 set_hostname(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 set_listeners(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 set_listener_name(struct conf_loader *,
		    const struct conf_key *, const struct ynode *,
		    const struct ynode *, void *);
static int	 set_address(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 set_role(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 set_networks(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 in_list(char *const *, size_t, const char *);
static int	 add_domains(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, char ***, size_t *);
static int	 set_local_domains(struct conf_loader *,
		    const struct conf_key *, const struct ynode *,
		    const struct ynode *, void *);
static int	 set_relay_domains(struct conf_loader *,
		    const struct conf_key *, const struct ynode *,
		    const struct ynode *, void *);
static int	 set_maildir(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 set_users(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 set_users_file(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 set_postmaster(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 set_bare_newline(struct conf_loader *,
		    const struct conf_key *, const struct ynode *,
		    const struct ynode *, void *);
static int	 set_log_target(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 set_log_level(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 set_facility(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);
static int	 set_dns_servers(struct conf_loader *,
		    const struct conf_key *, const struct ynode *,
		    const struct ynode *, void *);
static int	 dns_server_error(struct conf_loader *, const struct ynode *,
		    const char *, const char *);
static int	 parse_dns_server(const char *, struct conf_dns_server *,
		    const char **);
static int	 address_bytes(const char *, unsigned char *);
static int	 check_listener(struct conf_loader *, const struct ynode *,
		    size_t);

static int	 set_proxy_from(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);

#define LST(f)	offsetof(struct conf_listener, f)
static const struct conf_key proxy_keys[] = {
	{ "from",	set_proxy_from,	0,		0, 0,	  NULL },
	{ "timeout",	conf_set_duration, LST(proxy_timeout), 1, 3600, NULL },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

static const struct conf_key listener_keys[] = {
	{ "name",	set_listener_name, LST(name),	0, 0,	  NULL },
	{ "address",	set_address,	LST(address),	0, 0,	  NULL },
	{ "port",	conf_set_uint16, LST(port),	1, 65535, NULL },
	{ "role",	set_role,	LST(role),	0, 0,	  NULL },
	{ "tls",	conf_set_section, LST(tls),	0, 0,
	    conf_listener_tls_keys },
	{ "auth",	conf_set_listener_auth, 0,	0, 0,	  NULL },
	{ "proxy_protocol", conf_set_section, 0,	0, 0,	  proxy_keys },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

static const struct conf_key domain_keys[] = {
	{ "local",	set_local_domains, 0,		0, 0,	  NULL },
	{ "relay",	set_relay_domains, 0,		0, 0,	  NULL },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

#define CF(f)	offsetof(struct config, f)
static const struct conf_key mailbox_keys[] = {
	{ "maildir",	set_maildir,	CF(maildir),	0, 0,	  NULL },
	{ "users",	set_users,	0,		0, 0,	  NULL },
	{ "users_file",	set_users_file,	CF(mailbox_users_file), 0, 0, NULL },
	{ "postmaster",	set_postmaster,	CF(postmaster),	0, 0,	  NULL },
	{ "delivery",	conf_set_local_route, 0,	0, 0,	  NULL },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

#define LIM(f)	offsetof(struct conf_limits, f)
static const struct conf_key limit_keys[] = {
	{ "message_size", conf_set_size,  LIM(message_size),	0, 0, NULL },
	{ "recipients",	  conf_set_uint,  LIM(recipients),	1, 100000,
	    NULL },
	{ "line_length",  conf_set_uint,  LIM(line_length),	80, 1000000,
	    NULL },
	{ "command_line_length", conf_set_uint, LIM(command_line_length),
	    512, 65536, NULL },
	{ "sessions",	  conf_set_uint,  LIM(sessions),	1, 1000000,
	    NULL },
	{ "per_ip_sessions", conf_set_uint, LIM(per_ip_sessions), 1, 1000000,
	    NULL },
	{ "errors",	  conf_set_uint,  LIM(errors),		1, 1000, NULL },
	{ "junk_commands", conf_set_uint, LIM(junk_commands),	1, 100000,
	    NULL },
	{ "hops",	  conf_set_uint,  LIM(hops),		1, 1000, NULL },
	{ "idle_timeout", conf_set_duration, LIM(idle_timeout),	1, 0, NULL },
	{ "command_timeout", conf_set_duration, LIM(command_timeout), 1, 0,
	    NULL },
	{ "data_timeout", conf_set_duration, LIM(data_timeout),	0, 0, NULL },
	{ "min_data_rate", conf_set_size, LIM(min_data_rate),	0, 0, NULL },
	{ "data_rate_grace", conf_set_duration, LIM(data_rate_grace), 1,
	    86400, NULL },
	{ NULL,		  NULL,		  0,			0, 0, NULL },
};

static const struct conf_key smtp_keys[] = {
	{ "bare_newline", set_bare_newline, 0,		0, 0,	  NULL },
	{ "greeting_delay", conf_set_duration, CF(greeting_delay), 0, 300,
	    NULL },
	{ "pipelining_checks", conf_set_bool, CF(pipelining_checks), 0, 0,
	    NULL },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

#define DNS(f)	offsetof(struct conf_dns, f)
static const struct conf_key dns_keys[] = {
	{ "servers",	set_dns_servers, 0,		0, 0,	  NULL },
	{ "timeout",	conf_set_duration, DNS(timeout), 1, 300,  NULL },
	{ "attempts",	conf_set_uint,	DNS(attempts),	1, 10,	  NULL },
	{ "hosts_file",	conf_set_bool,	DNS(hosts_file), 0, 0,	  NULL },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

#define LOGK(f)	offsetof(struct conf_log, f)
static const struct conf_key log_keys[] = {
	{ "target",	set_log_target,	0,		0, 0,	  NULL },
	{ "file",	conf_set_path,	LOGK(file),	0, 0,	  NULL },
	{ "level",	set_log_level,	0,		0, 0,	  NULL },
	{ "facility",	set_facility,	0,		0, 0,	  NULL },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

#define MET(f)	offsetof(struct conf_metrics, f)
static const struct conf_key metrics_keys[] = {
	{ "address",	set_address,	MET(address),	0, 0,	  NULL },
	{ "port",	conf_set_uint16, MET(port),	1, 65535, NULL },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

const struct conf_key conf_top_keys[] = {
	{ "hostname",	set_hostname,	0,		0, 0,	  NULL },
	{ "spool",	conf_set_path,	CF(spool),	0, 0,	  NULL },
	{ "user",	conf_set_string, CF(user),	0, 0,	  NULL },
	{ "allow_root_filters", conf_set_bool, CF(allow_root_filters), 0, 0,
	    NULL },
	{ "workers",	conf_set_uint,	CF(workers),	0, 64,	  NULL },
	{ "shutdown_timeout", conf_set_duration, CF(shutdown_timeout), 0, 3600,
	    NULL },
	{ "listeners",	set_listeners,	0,		0, 0,	  NULL },
	{ "trusted_networks", set_networks, 0,		0, 0,	  NULL },
	{ "domains",	conf_set_section, 0,		0, 0, domain_keys },
	{ "mailboxes",	conf_set_section, 0,		0, 0, mailbox_keys },
	{ "retry",	conf_set_section, CF(retry),	0, 0, conf_retry_keys },
	{ "limits",	conf_set_section, CF(limits),	0, 0, limit_keys },
	{ "smtp",	conf_set_section, 0,		0, 0, smtp_keys },
	{ "log",	conf_set_section, CF(log),	0, 0, log_keys },
	{ "routes",	conf_set_routes, 0,		0, 0,	  NULL },
	{ "transports",	conf_set_transports, 0,		0, 0,	  NULL },
	{ "delivery",	conf_set_delivery, 0,		0, 0,	  NULL },
	{ "bounce",	conf_set_section, CF(bounce),	0, 0, conf_bounce_keys },
	{ "dns",	conf_set_section, CF(dns),	0, 0,	  dns_keys },
	{ "auth",	conf_set_section, CF(auth),	0, 0, conf_auth_keys },
	{ "pipeline",	conf_set_pipeline, 0,		0, 0,	  NULL },
	{ "kv",		conf_set_kv,	0,		0, 0,	  NULL },
	{ "plugin_dir",	conf_set_path,	CF(plugin_dir),	0, 0,	  NULL },
	{ "metrics",	conf_set_section, CF(metrics), 0, 0,	  metrics_keys },
	{ "control",	conf_set_section, 0,		0, 0, conf_control_keys },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

static int
set_hostname(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct config	*cf = obj;
	const char	*v;
	char		*d, q[QUOTE_LEN];

	(void)key;
	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	if (!conf_valid_domain(v))
		return conf_error(ld, val, "invalid value '%s' for 'hostname': "
		    "expected a domain name like mx.example.org",
		    conf_quote(v, q, sizeof(q)));
	if ((d = conf_strdup(ld, val, v)) == NULL)
		return -1;
	free(cf->hostname);
	cf->hostname = d;
	return 0;
}

static int
set_listeners(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct config		*cf = obj;
	struct conf_listener	*p;
	const struct ynode	*item;
	size_t			 i;

	(void)k;
	(void)key;
	if (conf_expect(ld, val, YNODE_SEQUENCE, "listeners") == -1)
		return -1;
	if (val->nkids == 0)
		return conf_error(ld, val, "'listeners' needs at least one "
		    "listener");
	for (i = 0; i < val->nkids; i++) {
		item = val->kids[i];
		if (item->type != YNODE_MAPPING)
			return conf_error(ld, item, "expected a mapping for "
			    "each item of 'listeners', found a %s",
			    conf_yaml_kind(item));
		if ((p = conf_push(ld, item, cf->listeners, &cf->nlisteners,
		    sizeof(*p))) == NULL)
			return -1;
		cf->listeners = p;
		p[i].role = ROLE_MX;
		if (conf_walk(ld, item, "listeners", listener_keys,
		    &p[i]) == -1 || check_listener(ld, val, i) == -1)
			return -1;
	}
	return 0;
}

static int
set_listener_name(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	const char	*v;
	char		 q[QUOTE_LEN];
	size_t		 len;

	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	len = strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-_.");
	if (len == 0 || v[len] != '\0' || len > NAME_MAX_LEN)
		return conf_error(ld, val, "invalid value '%s' for '%s': "
		    "expected letters, digits, '-', '_' or '.' (at most %d)",
		    conf_quote(v, q, sizeof(q)), conf_qname(ld, k),
		    NAME_MAX_LEN);
	return conf_set_string(ld, k, key, val, obj);
}

/* AF_INET or AF_INET6 for an address literal, 0 if it is not one. */
static int
address_bytes(const char *s, unsigned char *buf)
{
	memset(buf, 0, 16);
	if (inet_pton(AF_INET, s, buf) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, buf) == 1)
		return AF_INET6;
	return 0;
}

static int
set_address(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	const char	*v;
	unsigned char	 buf[16];
	char		 q[QUOTE_LEN];

	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	if (address_bytes(v, buf) == 0)
		return conf_error(ld, val, "invalid value '%s' for '%s': "
		    "expected an IPv4 or IPv6 address",
		    conf_quote(v, q, sizeof(q)), conf_qname(ld, k));
	return conf_set_string(ld, k, key, val, obj);
}

static int
set_role(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	static const char *const	 words[] = {
		"mx", "submission", "submissions", NULL
	};
	static const enum listener_role	 roles[] = {
		ROLE_MX, ROLE_SUBMISSION, ROLE_SUBMISSIONS
	};
	struct conf_listener		*l = obj;
	size_t				 i;

	(void)key;
	if (conf_word(ld, k, val, words, &i) == -1)
		return -1;
	l->role = roles[i];
	return 0;
}

/* Listener i is complete and differs from those before it. */
static int
check_listener(struct conf_loader *ld, const struct ynode *list, size_t i)
{
	struct conf_listener		*l = &ld->cf->listeners[i];
	const struct conf_listener	*o;
	const struct ynode		*item = list->kids[i];
	unsigned char			 a[16], b[16];
	size_t				 j;
	int				 fa;

	if (l->name == NULL)
		return conf_error(ld, item, "listener without 'name'");
	if (l->proxy_timeout == 0)
		l->proxy_timeout = 5;
	if (conf_yaml_get(item, "proxy_protocol") != NULL &&
	    l->nproxy_from == 0)
		return conf_error(ld, conf_yaml_get(item, "proxy_protocol"),
		    "listener '%s': proxy_protocol needs 'from', the "
		    "networks of the load balancers", l->name);
	if (l->address == NULL)
		return conf_error(ld, item, "listener '%s' has no 'address'",
		    l->name);
	if (l->port == 0)
		return conf_error(ld, item, "listener '%s' has no 'port'",
		    l->name);
	if (conf_check_listener_tls(ld, item, l) == -1)
		return -1;
	fa = address_bytes(l->address, a);
	for (j = 0; j < i; j++) {
		o = &ld->cf->listeners[j];
		if (strcmp(o->name, l->name) == 0)
			return conf_error(ld, conf_yaml_get(item, "name"),
			    "duplicate listener name '%s' (first at line %lu)",
			    l->name, list->kids[j]->line);
		if (o->port == l->port && address_bytes(o->address, b) == fa &&
		    memcmp(a, b, sizeof(a)) == 0)
			return conf_error(ld, conf_yaml_get(item, "address"),
			    "listener '%s' has the same address and port as "
			    "listener '%s'", l->name, o->name);
	}
	return 0;
}

/* network_list - a YAML list of addresses or CIDR blocks into *nets */
static int
network_list(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *val, struct conf_network **nets, size_t *n)
{
	struct conf_network	*p;
	const char		*v;
	char			 q[QUOTE_LEN];
	size_t			 i;

	if (conf_expect(ld, val, YNODE_SEQUENCE, k->name) == -1)
		return -1;
	free(*nets);
	*nets = NULL;
	*n = 0;
	for (i = 0; i < val->nkids; i++) {
		if ((v = conf_scalar(ld, k, val->kids[i])) == NULL)
			return -1;
		if ((p = conf_push(ld, val->kids[i], *nets, n,
		    sizeof(*p))) == NULL)
			return -1;
		*nets = p;
		if (conf_parse_network(v, &p[i]) == -1)
			return conf_error(ld, val->kids[i], "invalid network "
			    "'%s' in '%s': expected an address or a CIDR "
			    "block like 192.0.2.0/24",
			    conf_quote(v, q, sizeof(q)), k->name);
	}
	return 0;
}

static int
set_networks(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct config	*cf = obj;

	(void)key;
	return network_list(ld, k, val, &cf->trusted_networks,
	    &cf->ntrusted_networks);
}

static int
set_proxy_from(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct conf_listener	*l = obj;

	(void)key;
	return network_list(ld, k, val, &l->proxy_from, &l->nproxy_from);
}

static int
in_list(char *const *list, size_t n, const char *d)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], d) == 0)
			return 1;
	return 0;
}

/* The domains of a list into *list: checked, lower case, repeats dropped. */
static int
add_domains(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *val, char ***list, size_t *n)
{
	const char	*v;
	char		*d, **p, q[QUOTE_LEN];
	size_t		 i;

	for (i = 0; i < val->nkids; i++) {
		if ((v = conf_scalar(ld, k, val->kids[i])) == NULL)
			return -1;
		if (!conf_valid_domain(v))
			return conf_error(ld, val->kids[i], "invalid domain "
			    "'%s' in '%s'", conf_quote(v, q, sizeof(q)),
			    conf_qname(ld, k));
		if ((d = conf_strdup(ld, val->kids[i], v)) == NULL)
			return -1;
		if (in_list(*list, *n, conf_lower(d))) {
			free(d);
			continue;
		}
		if ((p = conf_push(ld, val->kids[i], *list, n,
		    sizeof(*p))) == NULL) {
			free(d);
			return -1;
		}
		*list = p;
		p[*n - 1] = d;
	}
	return 0;
}

static int
set_local_domains(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct config	*cf = obj;

	(void)key;
	if (conf_expect(ld, val, YNODE_SEQUENCE, conf_qname(ld, k)) == -1)
		return -1;
	if (val->nkids == 0)
		return conf_error(ld, val, "'%s' needs at least one domain",
		    conf_qname(ld, k));
	return add_domains(ld, k, val, &cf->local_domains,
	    &cf->nlocal_domains);
}

/* An empty list is fine; conf_routes_finish() checks against local. */
static int
set_relay_domains(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct config	*cf = obj;

	(void)key;
	if (conf_expect(ld, val, YNODE_SEQUENCE, conf_qname(ld, k)) == -1)
		return -1;
	ld->relay = val;
	return add_domains(ld, k, val, &cf->relay_domains,
	    &cf->nrelay_domains);
}

/* A path template: only %d (domain) and %u (local part), %u required. */
static int
set_maildir(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	const char	*v, *p;
	int		 has_u = 0;

	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	for (p = v; (p = strchr(p, '%')) != NULL; p += 2) {
		if (p[1] != 'd' && p[1] != 'u')
			return conf_error(ld, val, "'%s' may only contain "
			    "%%d (domain) and %%u (local part) after '%%'",
			    conf_qname(ld, k));
		has_u |= p[1] == 'u';
	}
	if (!has_u)
		return conf_error(ld, val, "'%s' must contain %%u (the local "
		    "part)", conf_qname(ld, k));
	return conf_set_path(ld, k, key, val, obj);
}

/* Checked by conf_users_finish(), once domains.local is known. */
static int
set_users(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	(void)key;
	(void)obj;
	if (conf_expect(ld, val, YNODE_SEQUENCE, conf_qname(ld, k)) == -1)
		return -1;
	ld->users = val;
	return 0;
}

/* set_postmaster - stored lower case; checked against the mailboxes later */
static int
set_postmaster(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	if (conf_set_string(ld, k, key, val, obj) == -1)
		return -1;
	conf_lower(ld->cf->postmaster);
	ld->postmaster = val;
	return 0;
}

static int
set_users_file(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	if (conf_set_path(ld, k, key, val, obj) == -1)
		return -1;
	ld->users_file = val;
	return 0;
}

static int
set_bare_newline(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	static const char *const	 words[] = {
		"reject", "normalize", NULL
	};
	struct config			*cf = obj;
	size_t				 i;

	(void)key;
	if (conf_word(ld, k, val, words, &i) == -1)
		return -1;
	cf->bare_newline = i == 0 ? BARE_NL_REJECT : BARE_NL_NORMALIZE;
	return 0;
}

static int
set_log_target(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	static const char *const	 words[] = { "stderr", "syslog", "file",
	    NULL };
	static const enum log_target	 targets[] = { LOG_TARGET_STDERR,
	    LOG_TARGET_SYSLOG, LOG_TARGET_FILE };
	struct conf_log			*log = obj;
	size_t				 i;

	(void)key;
	if (conf_word(ld, k, val, words, &i) == -1)
		return -1;
	log->target = targets[i];
	return 0;
}

static int
set_log_level(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	static const char *const	 words[] = { "info", "debug", NULL };
	struct conf_log			*log = obj;
	size_t				 i;

	(void)key;
	if (conf_word(ld, k, val, words, &i) == -1)
		return -1;
	log->debug = i == 1;
	return 0;
}

static int
set_facility(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	static const char *const	 words[] = {
		"mail", "daemon", "user", "local0", "local1", "local2",
		"local3", "local4", "local5", "local6", "local7", NULL
	};
	struct conf_log			*log = obj;
	char				*d;
	size_t				 i;

	(void)key;
	if (conf_word(ld, k, val, words, &i) == -1)
		return -1;
	if ((d = conf_strdup(ld, val, words[i])) == NULL)
		return -1;
	free(log->facility);
	log->facility = d;
	return 0;
}

/*
 * set_dns_servers - "192.0.2.53", "192.0.2.53:5353", "2001:db8::53",
 * "[2001:db8::53]:5353"; addresses only, since nothing resolves the resolver
 */
static int
set_dns_servers(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct conf_dns		*dns = obj;
	struct conf_dns_server	*p;
	const char		*v, *bad;
	size_t			 i;

	(void)key;
	if (conf_expect(ld, val, YNODE_SEQUENCE, conf_qname(ld, k)) == -1)
		return -1;
	free(dns->servers);
	dns->servers = NULL;
	dns->nservers = 0;
	for (i = 0; i < val->nkids; i++) {
		if ((v = conf_scalar(ld, k, val->kids[i])) == NULL)
			return -1;
		if ((p = conf_push(ld, val->kids[i], dns->servers,
		    &dns->nservers, sizeof(*p))) == NULL)
			return -1;
		dns->servers = p;
		if (parse_dns_server(v, &p[i], &bad) == -1)
			return dns_server_error(ld, val->kids[i], v, bad);
	}
	return 0;
}

/* bad: NULL for a bad address, else the port text that is wrong. */
static int
dns_server_error(struct conf_loader *ld, const struct ynode *n,
    const char *v, const char *bad)
{
	char	 q[QUOTE_LEN], qp[QUOTE_LEN];

	if (bad != NULL)
		return conf_error(ld, n, "invalid port '%s' in 'dns.servers' "
		    "entry '%s': expected 1 to 65535",
		    conf_quote(bad, qp, sizeof(qp)),
		    conf_quote(v, q, sizeof(q)));
	return conf_error(ld, n, "invalid server '%s' in 'dns.servers': "
	    "expected an IP address with an optional port, like "
	    "192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53",
	    conf_quote(v, q, sizeof(q)));
}

/* 0, or -1 with *bad NULL (address) or pointing at the bad port text. */
static int
parse_dns_server(const char *s, struct conf_dns_server *srv,
    const char **bad)
{
	char			 host[64];
	const char		*end, *port = NULL;
	size_t			 len;
	unsigned long long	 n = 53;
	int			 bracket = *s == '[';

	*bad = NULL;
	if (bracket) {
		if ((end = strchr(++s, ']')) == NULL ||
		    (end[1] != '\0' && end[1] != ':'))
			return -1;
		port = end[1] == ':' ? end + 2 : NULL;
	} else if ((end = strchr(s, ':')) != NULL &&
	    strchr(end + 1, ':') == NULL)
		port = end + 1;		/* one colon: IPv4 with a port */
	else
		end = s + strlen(s);	/* bare IPv4 or IPv6 */
	len = (size_t)(end - s);
	if (len == 0 || len >= sizeof(host))
		return -1;
	memcpy(host, s, len);
	host[len] = '\0';
	srv->family = address_bytes(host, srv->addr);
	if (srv->family == 0 || (bracket && srv->family != AF_INET6))
		return -1;
	if (port != NULL && (conf_parse_uint(port, 65535, &n) == -1 ||
	    n == 0)) {
		*bad = port;
		return -1;
	}
	srv->port = (uint16_t)n;
	return 0;
}

/*
 * What only the whole file can tell: at least one listener and domain,
 * then the routing and delivery checks that depend on other keys.
 */
int
conf_schema_finish(struct conf_loader *ld)
{
	if (ld->cf->nlisteners == 0)
		return conf_error(ld, ld->root, "no listener: 'listeners' "
		    "needs at least one entry");
	if (ld->cf->nlocal_domains == 0)
		return conf_error(ld, ld->root, "no local domain: "
		    "'domains.local' needs at least one domain");
	if (conf_routes_finish(ld) == -1)
		return -1;
	if (ld->cf->log.target == LOG_TARGET_FILE && ld->cf->log.file == NULL)
		return conf_error(ld, conf_yaml_get(ld->root, "log"),
		    "log: target file needs 'file: PATH'");
	if (ld->cf->metrics.address != NULL && ld->cf->metrics.port == 0)
		return conf_error(ld, conf_yaml_get(ld->root, "metrics"),
		    "metrics: has an address but no port");
	if (ld->cf->metrics.port != 0 && ld->cf->metrics.address == NULL &&
	    (ld->cf->metrics.address = conf_strdup(ld, NULL,
	    "127.0.0.1")) == NULL)
		return -1;
	return conf_delivery_finish(ld);
}
