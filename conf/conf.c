/*
 * conf.c - conf_load(): defaults, then the YAML file walked by schema tables
 *
 * API: conf_load(), conf_free() (see conf.h); the walker, generic setters
 * and error helpers used by the other files of conf/ (conf_priv.h).
 * A load fills struct config with defaults, parses the file into a node
 * tree (conf_yaml.c), walks every mapping against its table of struct
 * conf_key (conf_schema.c), then runs the checks that need the whole file
 * (listeners present, transport names resolved, retry.domains and
 * control.socket completed, mailbox domains local, users_file read).
 * Errors: NULL and "FILE:LINE:COL: what" in err; the first error stops the
 * load. Nothing is logged, nothing exits.
 * Ownership: the caller owns the config; conf_free() releases all of it.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "conf_priv.h"

#define QUOTE_LEN	64

static int	 conf_verror(struct conf_loader *, const char *,
		    unsigned long, unsigned long, const char *, va_list)
		    __attribute__((format(printf, 5, 0)));
static int	 parse_uint_value(struct conf_loader *,
		    const struct conf_key *, const struct ynode *,
		    unsigned long long *);
static char	*get_cwd(struct conf_loader *);
static int	 default_networks(struct conf_loader *);
static int	 set_defaults(struct conf_loader *);
static void	 free_strings(char **, size_t);

static int
conf_verror(struct conf_loader *ld, const char *file, unsigned long line,
    unsigned long col, const char *fmt, va_list ap)
{
	int	 n;

	if (line > 0)
		n = snprintf(ld->err, ld->errlen, "%s:%lu:%lu: ", file, line,
		    col);
	else
		n = snprintf(ld->err, ld->errlen, "%s: ", file);
	if (n >= 0 && (size_t)n < ld->errlen)
		vsnprintf(ld->err + n, ld->errlen - n, fmt, ap);
	return -1;
}

/* Error at a node of the file being loaded; n == NULL: no position. */
int
conf_error(struct conf_loader *ld, const struct ynode *n, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	conf_verror(ld, ld->path, n ? n->line : 0, n ? n->col : 0, fmt, ap);
	va_end(ap);
	return -1;
}

/* Error in another file (users_file), at a position of its own. */
int
conf_error_at(struct conf_loader *ld, const char *file, unsigned long line,
    unsigned long col, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	conf_verror(ld, file, line, col, fmt, ap);
	va_end(ap);
	return -1;
}

/* A value made safe to show: control bytes as '?', long ones cut. */
const char *
conf_quote(const char *s, char *buf, size_t len)
{
	size_t	 i;

	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ?
		    '?' : s[i];
	buf[i] = '\0';
	if (s[i] != '\0' && len > 4)
		memcpy(buf + len - 4, "...", 4);
	return buf;
}

const char *
conf_qname(struct conf_loader *ld, const struct conf_key *k)
{
	if (ld->section == NULL)
		return k->name;
	snprintf(ld->qname, sizeof(ld->qname), "%s.%s", ld->section, k->name);
	return ld->qname;
}

int
conf_each_pair(struct conf_loader *ld, const struct ynode *map,
    const char *what, conf_pair_fn fn)
{
	if (conf_expect(ld, map, YNODE_MAPPING, what) == -1)
		return -1;
	for (size_t i = 0; i + 1 < map->nkids; i += 2)
		if (fn(ld, map, map->kids[i], map->kids[i + 1]) == -1)
			return -1;
	return 0;
}

int
conf_expect(struct conf_loader *ld, const struct ynode *n,
    enum ynode_type type, const char *what)
{
	static const char *const	 kinds[] = {
		[YNODE_SCALAR] = "scalar",
		[YNODE_SEQUENCE] = "list",
		[YNODE_MAPPING] = "mapping",
	};
	const char			*found;

	if (n->type == type)
		return 0;
	found = n->null ? "an empty value" : n->type == YNODE_SCALAR ?
	    "a scalar" : n->type == YNODE_SEQUENCE ? "a list" : "a mapping";
	if (what == NULL)
		return conf_error(ld, n, "expected a %s at the top level, "
		    "found %s", kinds[type], found);
	return conf_error(ld, n, "expected a %s for '%s', found %s",
	    kinds[type], what, found);
}

/* The text of a scalar value; NULL (error set) if absent or not a scalar. */
const char *
conf_scalar(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *val)
{
	if (conf_expect(ld, val, YNODE_SCALAR, conf_qname(ld, k)) == -1)
		return NULL;
	if (val->null) {
		conf_error(ld, val, "missing value for '%s'",
		    conf_qname(ld, k));
		return NULL;
	}
	return val->value;
}

char *
conf_strdup(struct conf_loader *ld, const struct ynode *n, const char *s)
{
	char	*d;

	if ((d = strdup(s)) == NULL)
		conf_error(ld, n, "out of memory");
	return d;
}

/* Relative paths are taken from the working directory at load time. */
char *
conf_abspath(struct conf_loader *ld, const struct ynode *n, const char *p)
{
	char	*d;
	size_t	 len;

	if (*p == '/')
		return conf_strdup(ld, n, p);
	while (p[0] == '.' && p[1] == '/')
		for (p += 2; *p == '/'; p++)
			;
	if (*p == '\0')
		return conf_strdup(ld, n, ld->cwd);
	len = strlen(ld->cwd) + 1 + strlen(p) + 1;
	if ((d = malloc(len)) == NULL) {
		conf_error(ld, n, "out of memory");
		return NULL;
	}
	snprintf(d, len, "%s%s%s", ld->cwd,
	    ld->cwd[strlen(ld->cwd) - 1] == '/' ? "" : "/", p);
	return d;
}

/*
 * Append one zeroed element to an array that only ever grows through here:
 * the capacity is the next power of two, so it is implied by *n.
 */
void *
conf_push(struct conf_loader *ld, const struct ynode *n, void *arr,
    size_t *nelem, size_t size)
{
	size_t	 cap = *nelem;

	if (cap == 0 || (cap & (cap - 1)) == 0) {
		cap = cap ? cap * 2 : 1;
		if (cap > SIZE_MAX / size || (arr = realloc(arr,
		    cap * size)) == NULL) {
			conf_error(ld, n, "out of memory");
			return NULL;
		}
	}
	memset((char *)arr + *nelem * size, 0, size);
	(*nelem)++;
	return arr;
}

/* One of a fixed list of words; *idx is its index in words. */
int
conf_word(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *val, const char *const *words, size_t *idx)
{
	const char	*v;
	char		 list[256], q[QUOTE_LEN];
	size_t		 i, len = 0;

	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	for (i = 0; words[i] != NULL; i++) {
		if (strcmp(v, words[i]) == 0) {
			*idx = i;
			return 0;
		}
	}
	list[0] = '\0';
	for (i = 0; words[i] != NULL && len < sizeof(list); i++)
		len += snprintf(list + len, sizeof(list) - len, "%s%s",
		    i ? ", " : "", words[i]);
	return conf_error(ld, val, "invalid value '%s' for '%s': expected "
	    "one of %s", conf_quote(v, q, sizeof(q)), conf_qname(ld, k), list);
}

/* Apply a mapping to obj through the table keys; unknown keys are errors. */
int
conf_walk(struct conf_loader *ld, const struct ynode *map,
    const char *section, const struct conf_key *keys, void *obj)
{
	const struct conf_key	*k;
	const struct ynode	*key, *val;
	const char		*saved = ld->section;
	char			 q[QUOTE_LEN];
	size_t			 i;
	int			 rc = 0;

	if (conf_expect(ld, map, YNODE_MAPPING, section) == -1)
		return -1;
	ld->section = section;
	for (i = 0; rc == 0 && i + 1 < map->nkids; i += 2) {
		key = map->kids[i];
		val = map->kids[i + 1];
		for (k = keys; k->name != NULL; k++)
			if (strcmp(k->name, key->value) == 0)
				break;
		if (k->name != NULL)
			rc = k->set(ld, k, key, val, obj);
		else if (section != NULL)
			rc = conf_error(ld, key, "unknown key '%s' in '%s'",
			    conf_quote(key->value, q, sizeof(q)), section);
		else
			rc = conf_error(ld, key, "unknown key '%s'",
			    conf_quote(key->value, q, sizeof(q)));
	}
	ld->section = saved;
	return rc;
}

int
conf_set_string(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	char		**field = (char **)((char *)obj + k->off);
	const char	 *v;
	char		 *d;

	(void)key;
	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	if (*v == '\0')
		return conf_error(ld, val, "empty value for '%s'",
		    conf_qname(ld, k));
	if ((d = conf_strdup(ld, val, v)) == NULL)
		return -1;
	free(*field);
	*field = d;
	return 0;
}

int
conf_set_path(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	char	**field = (char **)((char *)obj + k->off);
	char	 *d;

	if (conf_set_string(ld, k, key, val, obj) == -1)
		return -1;
	if ((d = conf_abspath(ld, val, *field)) == NULL)
		return -1;
	free(*field);
	*field = d;
	return 0;
}

static int
parse_uint_value(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *val, unsigned long long *n)
{
	const char	*v;
	char		 q[QUOTE_LEN];

	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	if (conf_parse_uint(v, k->max, n) == -1 || *n < k->min)
		return conf_error(ld, val, "invalid value '%s' for '%s': "
		    "expected an integer from %llu to %llu",
		    conf_quote(v, q, sizeof(q)), conf_qname(ld, k), k->min,
		    k->max);
	return 0;
}

int
conf_set_uint(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	unsigned long long	 n;

	(void)key;
	if (parse_uint_value(ld, k, val, &n) == -1)
		return -1;
	*(unsigned *)((char *)obj + k->off) = (unsigned)n;
	return 0;
}

int
conf_set_uint16(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	unsigned long long	 n;

	(void)key;
	if (parse_uint_value(ld, k, val, &n) == -1)
		return -1;
	*(uint16_t *)((char *)obj + k->off) = (uint16_t)n;
	return 0;
}

/*
 * set_duration_as - a duration through parse(), in the unit the range
 * is given in; hint says what parse() takes
 */
static int
set_duration_as(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *val, void *obj, int (*parse)(const char *,
    unsigned *), const char *unit, const char *hint)
{
	const char		*v;
	unsigned		 n;
	unsigned long long	 max = k->max ? k->max : UINT_MAX;
	char			 q[QUOTE_LEN];

	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	if (parse(v, &n) == -1)
		return conf_error(ld, val, "invalid duration '%s' for '%s': "
		    "expected %s", conf_quote(v, q, sizeof(q)),
		    conf_qname(ld, k), hint);
	if (n < k->min || n > max)
		return conf_error(ld, val, "duration '%s' for '%s' is out of "
		    "range: from %llu%s to %llu%s", conf_quote(v, q, sizeof(q)),
		    conf_qname(ld, k), k->min, unit, max, unit);
	*(unsigned *)((char *)obj + k->off) = n;
	return 0;
}

int
conf_set_duration(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	(void)key;
	return set_duration_as(ld, k, val, obj, conf_parse_duration, "s",
	    "a number of seconds or units like 30s, 5m, 2h, 5d, 1w");
}

int
conf_set_msec(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	(void)key;
	return set_duration_as(ld, k, val, obj, conf_parse_msec, "ms",
	    "milliseconds like 250ms or units like 1s, 2m");
}

int
conf_set_size(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	const char	*v;
	uint64_t	 n;
	char		 q[QUOTE_LEN];

	(void)key;
	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	if (conf_parse_size(v, &n) == -1)
		return conf_error(ld, val, "invalid size '%s' for '%s': "
		    "expected bytes or units like 512K, 35M, 1G",
		    conf_quote(v, q, sizeof(q)), conf_qname(ld, k));
	*(uint64_t *)((char *)obj + k->off) = n;
	return 0;
}

int
conf_set_bool(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	const char	*v;
	char		 q[QUOTE_LEN];

	(void)key;
	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	if (conf_parse_bool(v, (int *)((char *)obj + k->off)) == -1)
		return conf_error(ld, val, "invalid value '%s' for '%s': "
		    "expected true or false", conf_quote(v, q, sizeof(q)),
		    conf_qname(ld, k));
	return 0;
}

int
conf_set_section(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	(void)key;
	return conf_walk(ld, val, k->name, k->sub, (char *)obj + k->off);
}

int
conf_set_unsupported(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	(void)k;
	(void)val;
	(void)obj;
	return conf_error(ld, key, "'%s' is not supported yet", key->value);
}

static char *
get_cwd(struct conf_loader *ld)
{
	char	*buf = NULL, *nbuf;
	size_t	 len;

	for (len = 256; len <= 65536; len *= 2) {
		if ((nbuf = realloc(buf, len)) == NULL)
			break;
		buf = nbuf;
		if (getcwd(buf, len) != NULL)
			return buf;
		if (errno != ERANGE) {
			conf_error(ld, NULL, "cannot get the current "
			    "directory: %s", strerror(errno));
			free(buf);
			return NULL;
		}
	}
	free(buf);
	conf_error(ld, NULL, "cannot get the current directory");
	return NULL;
}

static int
default_networks(struct conf_loader *ld)
{
	static const char *const	 nets[] = { "127.0.0.0/8", "::1/128" };
	struct config			*cf = ld->cf;
	struct conf_network		*p;
	size_t				 i;

	for (i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
		if ((p = conf_push(ld, NULL, cf->trusted_networks,
		    &cf->ntrusted_networks, sizeof(*p))) == NULL)
			return -1;
		cf->trusted_networks = p;
		conf_parse_network(nets[i], &p[cf->ntrusted_networks - 1]);
	}
	return 0;
}

static int
set_defaults(struct conf_loader *ld)
{
	struct config	*cf = ld->cf;
	char		 host[256];

	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	if ((cf->path = conf_strdup(ld, NULL, ld->path)) == NULL ||
	    (cf->hostname = conf_strdup(ld, NULL, host)) == NULL ||
	    (cf->spool = conf_abspath(ld, NULL, "var/spool")) == NULL ||
	    (cf->maildir = conf_abspath(ld, NULL,
	    "var/mail/%d/%u/Maildir")) == NULL ||
	    (cf->log.facility = conf_strdup(ld, NULL, "mail")) == NULL)
		return -1;
	if (default_networks(ld) == -1)
		return -1;
	cf->workers = 0;
	cf->delivery.concurrency = 100;
	cf->delivery.local_concurrency = 8;
	cf->delivery.per_destination = 20;
	cf->delivery.recipients_per_transaction = 100;
	cf->delivery.messages_per_connection = 1000;
	cf->delivery.connection_cache = 2;
	cf->delivery.connect_timeout = 30;
	cf->delivery.greeting_timeout = 5 * 60;
	cf->delivery.command_timeout = 5 * 60;
	cf->delivery.data_timeout = 10 * 60;
	cf->delivery.tls = TLS_CLIENT_MAY;
	cf->delivery.port = 25;
	cf->local_route.kind = ROUTE_MAILDIR;
	cf->bounce.return_limit = 10 * 1024 * 1024;
	cf->retry.first = 5 * 60;
	cf->retry.max_interval = 60 * 60;
	cf->retry.lifetime = 5 * 24 * 60 * 60;
	cf->retry.warn_after = 4 * 60 * 60;
	conf_auth_defaults(cf);
	cf->shutdown_timeout = 30;
	conf_kv_defaults(cf);
	cf->limits.message_size = 35 * 1024 * 1024;
	cf->limits.recipients = 1000;
	cf->limits.line_length = 1000;
	cf->limits.command_line_length = 2048;
	cf->limits.sessions = 10000;
	cf->limits.per_ip_sessions = 50;
	cf->limits.errors = 10;
	cf->limits.junk_commands = 100;
	cf->limits.hops = 100;
	cf->limits.idle_timeout = 5 * 60;
	cf->limits.command_timeout = 5 * 60;
	cf->limits.data_timeout = 10 * 60;
	cf->limits.min_data_rate = 1024;
	cf->limits.data_rate_grace = 30;
	cf->pipelining_checks = 1;
	cf->dns.timeout = 5;
	cf->dns.attempts = 2;
	cf->dns.hosts_file = 1;
	cf->bare_newline = BARE_NL_REJECT;
	cf->log.target = LOG_TARGET_STDERR;
	cf->log.debug = 0;
	return 0;
}

struct config *
conf_load(const char *path, char *err, size_t errlen)
{
	struct conf_loader	 ld;
	struct ynode		*root = NULL;
	char			 dummy[CONF_ERR_LEN];

	memset(&ld, 0, sizeof(ld));
	ld.path = path;
	ld.err = err != NULL && errlen > 0 ? err : dummy;
	ld.errlen = err != NULL && errlen > 0 ? errlen : sizeof(dummy);
	ld.err[0] = '\0';
	if (conf_yaml_load(path, &root, ld.err, ld.errlen) == -1)
		return NULL;
	if ((ld.cf = calloc(1, sizeof(*ld.cf))) == NULL) {
		conf_error(&ld, NULL, "out of memory");
		goto fail;
	}
	if ((ld.cwd = get_cwd(&ld)) == NULL || set_defaults(&ld) == -1)
		goto fail;
	if (root == NULL) {
		conf_error_at(&ld, path, 1, 1, "empty configuration: "
		    "expected a mapping at the top level");
		goto fail;
	}
	ld.root = root;
	if (conf_walk(&ld, root, NULL, conf_top_keys, ld.cf) == -1 ||
	    conf_schema_finish(&ld) == -1 || conf_users_finish(&ld) == -1)
		goto fail;
	conf_yaml_free(root);
	free(ld.cwd);
	return ld.cf;
fail:
	conf_free(ld.cf);
	conf_yaml_free(root);
	free(ld.cwd);
	return NULL;
}

static void
free_strings(char **v, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
conf_free(struct config *cf)
{
	size_t	 i;

	if (cf == NULL)
		return;
	conf_tls_auth_free(cf);
	for (i = 0; i < cf->nlisteners; i++) {
		free(cf->listeners[i].name);
		free(cf->listeners[i].proxy_from);
		free(cf->listeners[i].address);
	}
	free(cf->listeners);
	free(cf->trusted_networks);
	free(cf->dns.servers);
	free_strings(cf->local_domains, cf->nlocal_domains);
	free_strings(cf->mailbox_users, cf->nmailbox_users);
	free(cf->path);
	free(cf->hostname);
	free(cf->spool);
	free(cf->user);
	free(cf->maildir);
	free(cf->mailbox_users_file);
	free(cf->postmaster);
	conf_pipeline_free(cf);
	conf_routes_free(cf);
	conf_delivery_free(cf);
	conf_kv_free(cf);
	free(cf->log.facility);
	free(cf->log.file);
	free(cf->metrics.address);
	free(cf);
}
