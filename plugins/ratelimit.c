/*
 * ratelimit.c - connections, messages and recipients per client IP and
 * per envelope sender in a time window (a sluice C plugin, ABI 1)
 *
 *   - plugin: ratelimit
 *     args: {window: 60s, connections_per_ip: 30, messages_per_ip: 100,
 *            recipients_per_ip: 500, messages_per_sender: 50,
 *            recipients_per_sender: 500, exempt: [127.0.0.0/8]}
 *
 * Counting: one host->kv_incr() per limit and event, on a key
 * "<prefix>:<window>:<kind>:<who>" created with TTL = window. The window
 * is fixed and starts with the first event counted (the TTL is set when
 * the key is created and keeps running), the INCR+EXPIRE pattern, so the
 * counts are shared by every worker now and by every node once the KV
 * store has a Redis backend. Connections are counted at connect (over:
 * 421 4.7.0 and close), recipients at each RCPT that reaches the plugin
 * (over: 450 4.7.1), messages at DATA / the first BDAT (over: 451 4.7.1).
 * Refused attempts count too. IPv6 clients are counted per /ipv6_prefix
 * (default 64). The null sender is never limited per sender.
 * Errors: a KV failure gets the action the host's fact "kv.on_error"
 * names (kv.redis.on_error with the Redis store: tempfail by default);
 * without one (the in-memory store), or when it is continue, the event
 * goes through (fail open) with a warning.
 * Threads: the context is read-only after init, except the list of
 * suspended calls (only used when KV answers later), under a mutex.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice_plugin.h"

#define RL_KEY_MAX	600
#define RL_WHO_MAX	300
#define RL_PREFIX_MAX	64
#define RL_WINDOW_MAX	(30u * 86400)	/* 30 days */
#define RL_CHECKS_MAX	2

enum rl_kind {
	RL_CONN_IP, RL_MSG_IP, RL_RCPT_IP, RL_MSG_SENDER, RL_RCPT_SENDER,
	RL_NKINDS
};

static const struct rl_kind_info {
	const char *arg;		/* the args key */
	const char *key;		/* in the KV key */
	const char *what;		/* in the reply text */
	int code;
	const char *enhanced;
} kinds[RL_NKINDS] = {
	{ "connections_per_ip", "conn", "connections", 421, "4.7.0" },
	{ "messages_per_ip", "msg", "messages", 451, "4.7.1" },
	{ "recipients_per_ip", "rcpt", "recipients", 450, "4.7.1" },
	{ "messages_per_sender", "msg-from", "messages", 451, "4.7.1" },
	{ "recipients_per_sender", "rcpt-from", "recipients", 450, "4.7.1" },
};

struct net {
	int family;			/* AF_INET, AF_INET6 */
	unsigned char addr[16];
	unsigned bits;
};

struct rl_call;

struct rl {
	const struct sluice_host *host;
	unsigned window;		/* seconds */
	long long limit[RL_NKINDS];	/* 0: no limit of that kind */
	struct net *exempt;
	size_t nexempt;
	unsigned v6_bits;
	char prefix[RL_PREFIX_MAX + 1];
	pthread_mutex_t mu;		/* guards pending */
	struct rl_call *pending;	/* calls waiting for KV answers */
};

struct rl_check {
	struct rl_call *owner;
	enum rl_kind kind;
	char key[RL_KEY_MAX];
	char who[RL_WHO_MAX];
	int answered, ok;
	long long count;
};

struct rl_call {
	struct rl_call *prev, *next;
	struct rl *rl;
	struct sluice_call *call;
	int pending;			/* checks not answered, + 1 in hook */
	int registered;			/* on rl->pending */
	size_t n;
	struct rl_check checks[RL_CHECKS_MAX];
};

/* -- addresses and networks ----------------------------------------------- */

/* addr_parse - an address literal (IPv4-mapped IPv6 becomes IPv4) */
static int
addr_parse(const char *s, int *family, unsigned char out[16])
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0xff, 0xff };

	if (inet_pton(AF_INET, s, out) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) != 1)
		return -1;
	*family = AF_INET6;
	if (memcmp(out, mapped, sizeof(mapped)) == 0) {
		memmove(out, out + 12, 4);
		*family = AF_INET;
	}
	return 0;
}

static void
mask_bits(unsigned char *a, size_t len, unsigned bits)
{
	for (size_t i = 0; i < len; i++) {
		unsigned keep = bits >= 8 ? 8 : bits;
		a[i] &= (unsigned char)(0xff00u >> keep);
		bits -= keep;
	}
}

/* net_parse - "192.0.2.0/24", "2001:db8::/32", or one address */
static int
net_parse(const char *s, struct net *n)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned long bits;
	int mapped;

	if (strlen(s) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", s);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	mapped = strchr(buf, ':') != NULL;
	if (addr_parse(buf, &n->family, n->addr) == -1)
		return -1;
	mapped = mapped && n->family == AF_INET;	/* ::ffff:a.b.c.d */
	n->bits = n->family == AF_INET ? 32 : 128;
	if (slash != NULL) {
		errno = 0;
		bits = strtoul(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || errno != 0 ||
		    !isdigit((unsigned char)*slash))
			return -1;
		if (mapped && (bits < 96 || bits > 128))
			return -1;
		bits -= mapped ? 96 : 0;
		if (bits > n->bits)
			return -1;
		n->bits = (unsigned)bits;
	}
	mask_bits(n->addr, n->family == AF_INET ? 4 : 16, n->bits);
	return 0;
}

static int
net_match(const struct net *n, int family, const unsigned char *a)
{
	unsigned char m[16];
	size_t len = family == AF_INET ? 4 : 16;

	if (family != n->family)
		return 0;
	memcpy(m, a, len);
	mask_bits(m, len, n->bits);
	return memcmp(m, n->addr, len) == 0;
}

/* -- arguments ------------------------------------------------------------ */

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int o = snprintf(err, errlen, "ratelimit: ");

	va_start(ap, fmt);
	if (o > 0 && (size_t)o < errlen)
		vsnprintf(err + o, errlen - (size_t)o, fmt, ap);
	va_end(ap);
	return -1;
}

/* parse_count - a positive integer */
static int
parse_count(const struct sluice_value *v, long long max, long long *out)
{
	char *end;
	long long n;

	if (v->type != SLUICE_STRING || !isdigit((unsigned char)v->string[0]))
		return -1;
	errno = 0;
	n = strtoll(v->string, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > max)
		return -1;
	*out = n;
	return 0;
}

/* parse_duration - "90", "90s", "5m", "1h", "1d" in seconds */
static int
parse_duration(const struct sluice_value *v, unsigned *out)
{
	char *end;
	unsigned long long n, mul = 1;

	if (v->type != SLUICE_STRING || !isdigit((unsigned char)v->string[0]))
		return -1;
	errno = 0;
	n = strtoull(v->string, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		const char *units = "smhd";
		const unsigned long long muls[] = { 1, 60, 3600, 86400 };
		const char *u = strchr(units, *end);
		if (u == NULL || end[1] != '\0')
			return -1;
		mul = muls[u - units];
	}
	if (n == 0 || n > RL_WINDOW_MAX / mul)
		return -1;
	*out = (unsigned)(n * mul);
	return 0;
}

static int
parse_exempt(struct rl *rl, const struct sluice_value *v, char *err,
    size_t errlen)
{
	const struct sluice_value *items = v;
	size_t n = 1;

	if (v->type == SLUICE_LIST) {
		items = v->items;
		n = v->n;
	} else if (v->type != SLUICE_STRING)
		return fail(err, errlen, "'exempt' must be a list of networks");
	if (n == 0)
		return 0;
	if ((rl->exempt = calloc(n, sizeof(*rl->exempt))) == NULL)
		return fail(err, errlen, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (items[i].type != SLUICE_STRING ||
		    net_parse(items[i].string, &rl->exempt[i]) == -1)
			return fail(err, errlen, "'exempt': '%s' is not a network "
			    "(expected an address or address/prefix-length)",
			    items[i].type == SLUICE_STRING ? items[i].string :
			    "(not a string)");
		rl->nexempt = i + 1;
	}
	return 0;
}

static int
parse_prefix(struct rl *rl, const struct sluice_value *v, char *err,
    size_t errlen)
{
	if (v->type != SLUICE_STRING || v->string[0] == '\0' ||
	    strlen(v->string) > RL_PREFIX_MAX ||
	    strpbrk(v->string, " \t\r\n") != NULL)
		return fail(err, errlen, "'prefix' must be a word of at most "
		    "%d characters", RL_PREFIX_MAX);
	snprintf(rl->prefix, sizeof(rl->prefix), "%s", v->string);
	return 0;
}

/* parse_arg - one key of args */
static int
parse_arg(struct rl *rl, const char *key, const struct sluice_value *v,
    char *err, size_t errlen)
{
	long long n;

	for (int k = 0; k < RL_NKINDS; k++) {
		if (strcmp(key, kinds[k].arg) != 0)
			continue;
		if (parse_count(v, LLONG_MAX / 2, &rl->limit[k]) == -1)
			return fail(err, errlen, "'%s' must be a positive "
			    "integer", key);
		return 0;
	}
	if (strcmp(key, "window") == 0) {
		if (parse_duration(v, &rl->window) == -1)
			return fail(err, errlen, "'window' must be a positive "
			    "duration of at most 30 days (60, 60s, 5m, 1h, 1d)");
		return 0;
	}
	if (strcmp(key, "exempt") == 0)
		return parse_exempt(rl, v, err, errlen);
	if (strcmp(key, "prefix") == 0)
		return parse_prefix(rl, v, err, errlen);
	if (strcmp(key, "ipv6_prefix") == 0) {
		if (parse_count(v, 128, &n) == -1)
			return fail(err, errlen, "'ipv6_prefix' must be a prefix "
			    "length from 1 to 128");
		rl->v6_bits = (unsigned)n;
		return 0;
	}
	return fail(err, errlen, "unknown argument '%s' (expected window, "
	    "connections_per_ip, messages_per_ip, recipients_per_ip, "
	    "messages_per_sender, recipients_per_sender, exempt, ipv6_prefix "
	    "or prefix)", key);
}

static void
rl_free(struct rl *rl)
{
	if (rl == NULL)
		return;
	while (rl->pending != NULL) {	/* none once sessions are gone */
		struct rl_call *rc = rl->pending;
		rl->pending = rc->next;
		free(rc);
	}
	pthread_mutex_destroy(&rl->mu);
	free(rl->exempt);
	free(rl);
}

static int
rl_init(const struct sluice_host *host, const struct sluice_value *args,
    void **ctx, char *err, size_t errlen)
{
	struct rl *rl;
	int any = 0;

	if (args->type != SLUICE_MAP && args->type != SLUICE_NULL)
		return fail(err, errlen, "'args' must be a mapping");
	if ((rl = calloc(1, sizeof(*rl))) == NULL)
		return fail(err, errlen, "out of memory");
	if (pthread_mutex_init(&rl->mu, NULL) != 0) {
		free(rl);
		return fail(err, errlen, "cannot create a mutex");
	}
	rl->host = host;
	rl->window = 60;
	rl->v6_bits = 64;
	snprintf(rl->prefix, sizeof(rl->prefix), "rl");
	for (size_t i = 0; args->type == SLUICE_MAP && i < args->n; i++)
		if (parse_arg(rl, args->keys[i], &args->items[i], err,
		    errlen) == -1) {
			rl_free(rl);
			return -1;
		}
	for (int k = 0; k < RL_NKINDS; k++)
		any |= rl->limit[k] != 0;
	if (!any) {
		rl_free(rl);
		return fail(err, errlen, "no limit set: give at least one of "
		    "connections_per_ip, messages_per_ip, recipients_per_ip, "
		    "messages_per_sender, recipients_per_sender");
	}
	*ctx = rl;
	return 0;
}

static void
rl_fini(void *ctx)
{
	rl_free(ctx);
}

/* -- counting ------------------------------------------------------------- */

/* client_who - the counted unit of the client: its address or network */
static int
client_who(const struct rl *rl, const char *addr, char *who, size_t len,
    int *exempt)
{
	unsigned char a[16];
	char text[INET6_ADDRSTRLEN];
	int family;

	*exempt = 0;
	if (addr == NULL || addr_parse(addr, &family, a) == -1)
		return -1;
	for (size_t i = 0; i < rl->nexempt; i++)
		if (net_match(&rl->exempt[i], family, a))
			*exempt = 1;
	if (family == AF_INET6 && rl->v6_bits < 128) {
		mask_bits(a, 16, rl->v6_bits);
		inet_ntop(AF_INET6, a, text, sizeof(text));
		snprintf(who, len, "%s/%u", text, rl->v6_bits);
	} else
		inet_ntop(family, a, who, (socklen_t)len);
	return 0;
}

/* sender_who - the lower-cased sender, or -1 for <> and unknown */
static int
sender_who(const char *sender, char *who, size_t len)
{
	size_t i;

	if (sender == NULL || sender[0] == '\0' || strlen(sender) >= len)
		return -1;
	for (i = 0; sender[i] != '\0'; i++)
		who[i] = (char)tolower((unsigned char)sender[i]);
	who[i] = '\0';
	return 0;
}

static void
add_check(struct rl_call *rc, enum rl_kind k, const char *who)
{
	struct rl_check *ch = &rc->checks[rc->n++];

	ch->owner = rc;
	ch->kind = k;
	snprintf(ch->who, sizeof(ch->who), "%s", who);
	snprintf(ch->key, sizeof(ch->key), "%s:%u:%s:%s", rc->rl->prefix,
	    rc->rl->window, kinds[k].key, who);
}

/* plan - the checks of this stage into rc; 0 when there is none */
static size_t
plan(struct rl_call *rc, enum sluice_stage stage, struct sluice_call *c)
{
	const struct sluice_host *h = rc->rl->host;
	enum rl_kind ipk, sk;
	char ip[RL_WHO_MAX], from[RL_WHO_MAX];
	int exempt, have_ip;

	switch (stage) {
	case SLUICE_ON_CONNECT:
		ipk = RL_CONN_IP;
		sk = RL_NKINDS;
		break;
	case SLUICE_ON_RCPT:
		ipk = RL_RCPT_IP;
		sk = RL_RCPT_SENDER;
		break;
	case SLUICE_ON_DATA:
		ipk = RL_MSG_IP;
		sk = RL_MSG_SENDER;
		break;
	default:
		return 0;
	}
	have_ip = client_who(rc->rl, h->get(c, "client.addr"), ip, sizeof(ip),
	    &exempt) == 0;
	if (exempt)
		return 0;
	if (have_ip && rc->rl->limit[ipk] != 0)
		add_check(rc, ipk, ip);
	if (sk != RL_NKINDS && rc->rl->limit[sk] != 0 &&
	    sender_who(h->get(c, "sender"), from, sizeof(from)) == 0)
		add_check(rc, sk, from);
	return rc->n;
}

/* store_failure - the configured action when the store fails, if any */
static int
store_failure(struct rl_call *rc, enum sluice_verdict *v)
{
	static const char *const names[] = { "continue", "accept", "reject",
	    "tempfail", "discard", "quarantine", "disconnect" };
	const char *act = rc->rl->host->get(rc->call, "kv.on_error");

	for (size_t i = 0; act != NULL && i < sizeof(names) / sizeof(*names);
	    i++)
		if (strcmp(act, names[i]) == 0) {
			*v = (enum sluice_verdict)i;
			return *v != SLUICE_CONTINUE;
		}
	return 0;
}

/* decide - the verdict once every count is known */
static void
decide(struct rl_call *rc)
{
	const struct sluice_host *h = rc->rl->host;
	char text[512];
	enum sluice_verdict v;

	for (size_t i = 0; i < rc->n; i++) {
		const struct rl_check *ch = &rc->checks[i];
		const struct rl_kind_info *k = &kinds[ch->kind];
		long long limit = rc->rl->limit[ch->kind];

		if (!ch->ok && store_failure(rc, &v)) {
			h->log(rc->call, SLUICE_LOG_WARN, "ratelimit: cannot "
			    "count %s (key %s): store unavailable", k->arg,
			    ch->key);
			h->verdict(rc->call, v, 0, NULL, v == SLUICE_TEMPFAIL ?
			    "Rate limit state unavailable, try again later" :
			    "Rate limit state unavailable");
			return;
		}
		if (!ch->ok) {
			h->log(rc->call, SLUICE_LOG_WARN, "ratelimit: cannot "
			    "count %s (key %s): not limited", k->arg, ch->key);
			continue;
		}
		if (ch->count <= limit)
			continue;
		h->log(rc->call, SLUICE_LOG_INFO, "ratelimit: %s over the limit "
		    "for %s: %lld > %lld in %us", k->arg, ch->who, ch->count,
		    limit, rc->rl->window);
		snprintf(text, sizeof(text), "Too many %s from %s%s%s, try "
		    "again later", k->what, ch->kind >= RL_MSG_SENDER ? "<" : "",
		    ch->who, ch->kind >= RL_MSG_SENDER ? ">" : "");
		h->verdict(rc->call, SLUICE_TEMPFAIL, k->code, k->enhanced, text);
		return;
	}
}

static void
unregister(struct rl_call *rc)
{
	struct rl *rl = rc->rl;

	pthread_mutex_lock(&rl->mu);
	if (rc->registered) {
		if (rc->prev != NULL)
			rc->prev->next = rc->next;
		else
			rl->pending = rc->next;
		if (rc->next != NULL)
			rc->next->prev = rc->prev;
		rc->registered = 0;
	}
	pthread_mutex_unlock(&rl->mu);
}

static void
register_call(struct rl_call *rc)
{
	struct rl *rl = rc->rl;

	pthread_mutex_lock(&rl->mu);
	rc->prev = NULL;
	rc->next = rl->pending;
	if (rl->pending != NULL)
		rl->pending->prev = rc;
	rl->pending = rc;
	rc->registered = 1;
	pthread_mutex_unlock(&rl->mu);
}

/* on_count - a KV answer; the last one of a suspended call resumes it */
static void
on_count(struct sluice_call *c, int ok, const char *value, long long number,
    void *arg)
{
	struct rl_check *ch = arg;
	struct rl_call *rc = ch->owner;

	(void)c;
	(void)value;
	if (ch->answered)
		return;
	ch->answered = 1;
	ch->ok = ok;
	ch->count = number;
	if (--rc->pending > 0 || !rc->registered)
		return;			/* more to come, or the hook decides */
	unregister(rc);
	decide(rc);
	rc->rl->host->resume(rc->call);
	free(rc);
}

static enum sluice_status
rl_hook(void *ctx, enum sluice_stage stage, struct sluice_call *c)
{
	struct rl *rl = ctx;
	struct rl_call *rc;

	if ((rc = calloc(1, sizeof(*rc))) == NULL) {
		rl->host->log(c, SLUICE_LOG_WARN, "ratelimit: out of memory: "
		    "not limited");
		return SLUICE_DONE;
	}
	rc->rl = rl;
	rc->call = c;
	if (plan(rc, stage, c) == 0) {
		free(rc);
		return SLUICE_DONE;
	}
	rc->pending = (int)rc->n + 1;	/* + 1: the hook itself */
	for (size_t i = 0; i < rc->n; i++) {
		struct rl_check *ch = &rc->checks[i];
		if (rl->host->kv_incr(c, ch->key, 1, rl->window, on_count,
		    ch) == -1 && !ch->answered) {
			ch->answered = 1;	/* no callback will come */
			rc->pending--;
		}
	}
	if (--rc->pending == 0) {	/* the in-memory store: all answered */
		decide(rc);
		free(rc);
		return SLUICE_DONE;
	}
	register_call(rc);
	return SLUICE_SUSPENDED;
}

/* rl_cancel - the call timed out: no KV callback comes for it any more */
static void
rl_cancel(void *ctx, struct sluice_call *c)
{
	struct rl *rl = ctx;
	struct rl_call *rc;

	pthread_mutex_lock(&rl->mu);
	for (rc = rl->pending; rc != NULL && rc->call != c; rc = rc->next)
		;
	pthread_mutex_unlock(&rl->mu);
	if (rc == NULL)
		return;
	unregister(rc);
	free(rc);
}

const struct sluice_plugin sluice_plugin = {
	.abi = SLUICE_PLUGIN_ABI,
	.name = "ratelimit",
	.stages = SLUICE_STAGE(SLUICE_ON_CONNECT) | SLUICE_STAGE(SLUICE_ON_RCPT) |
	    SLUICE_STAGE(SLUICE_ON_DATA),
	.init = rl_init,
	.fini = rl_fini,
	.hook = rl_hook,
	.cancel = rl_cancel,
};
