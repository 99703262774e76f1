/*
 * dnsbl.c - DNS blocklist checks of the client address (a sluice C
 * plugin, ABI 1; RFC 5782)
 *
 *   - plugin: dnsbl
 *     args: {zones: [{zone: zen.example, weight: 2}, bl.example],
 *            reject_score: 2, tag_score: 1, stage: connect}
 *
 * Every zone is asked in parallel through host->dns_query() (A records of
 * the reversed address under the zone: "4.3.2.1.zone" for 1.2.3.4, the
 * 32 reversed nibbles for IPv6). An answer in 127.0.0.0/8 lists the
 * client (only the `codes` given, if any), except 127.255.255.0/24, the
 * operators' error codes (e.g. "query refused via public resolver"),
 * which count as not listed with a warning. NXDOMAIN or NODATA: not
 * listed. A failed lookup (timeout, SERVFAIL): not listed for that zone,
 * with a warning. The weights of the listing zones add up to the score:
 * score >= tag_score sets the session tags <tag_prefix>.score and
 * <tag_prefix>.listed (zones, comma-separated); score >= reject_score
 * rejects: 554 5.7.1 at connect, or 550 5.7.1 for each RCPT with
 * `stage: rcpt` (looked up at the first RCPT; the result is remembered
 * in the session tag <tag_prefix>.result as "<score> <zones>").
 * Threads: the context is read-only after init, except the list of
 * suspended calls (for cancel), under a mutex. A call's own state is only
 * touched from its loop.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice_plugin.h"

#define DNSBL_NAME_MAX		253
#define DNSBL_REV_MAX		72	/* 32 nibbles "x." + NUL, or IPv4 */
#define DNSBL_ZONE_MAX		(DNSBL_NAME_MAX - DNSBL_REV_MAX)
#define DNSBL_PREFIX_MAX	64
#define DNSBL_LISTED_MAX	400
#define DNSBL_SCORE_MAX		1000000

struct zone {
	char *name;
	long weight;
	struct in_addr *codes;		/* NULL: any 127/8 answer lists */
	size_t ncodes;
};

struct dcall;

struct dnsbl {
	const struct sluice_host *host;
	struct zone *zones;
	size_t nzones;
	long reject_score;
	int has_reject;
	long tag_score;
	enum sluice_stage stage;	/* connect or rcpt */
	char prefix[DNSBL_PREFIX_MAX + 1];
	pthread_mutex_t mu;		/* guards pending */
	struct dcall *pending;		/* suspended calls */
};

struct dquery {
	struct dcall *owner;
	size_t zone;
	int answered, listed;
};

struct dcall {
	struct dcall *prev, *next;
	struct dnsbl *d;
	struct sluice_call *call;
	enum sluice_stage stage;
	int pending;			/* queries not answered, + 1 in hook */
	int registered;
	char addr[64];
	struct dquery q[];		/* one per zone */
};

/* -- arguments ------------------------------------------------------------ */

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int o = snprintf(err, errlen, "dnsbl: ");

	va_start(ap, fmt);
	if (o > 0 && (size_t)o < errlen)
		vsnprintf(err + o, errlen - (size_t)o, fmt, ap);
	va_end(ap);
	return -1;
}

static const struct sluice_value *
map_get(const struct sluice_value *m, const char *key)
{
	if (m->type != SLUICE_MAP)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->keys[i], key) == 0)
			return &m->items[i];
	return NULL;
}

/* parse_int - a decimal integer within [min, max] */
static int
parse_int(const struct sluice_value *v, long min, long max, long *out)
{
	const char *s;
	char *end;
	long n;

	if (v == NULL || v->type != SLUICE_STRING)
		return -1;
	s = v->string;
	if (!isdigit((unsigned char)(*s == '-' ? s[1] : s[0])))
		return -1;
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

/* zone_name_ok - letters, digits, '-', '_' and dots; no empty label */
static int
zone_name_ok(const char *z)
{
	size_t len = strlen(z);

	if (len == 0 || len > DNSBL_ZONE_MAX || z[0] == '.' ||
	    z[len - 1] == '.' || strstr(z, "..") != NULL)
		return 0;
	for (; *z; z++)
		if (!isalnum((unsigned char)*z) && strchr("-_.", *z) == NULL)
			return 0;
	return 1;
}

static int
parse_codes(struct zone *z, const struct sluice_value *v, char *err,
    size_t errlen)
{
	if (v->type != SLUICE_LIST || v->n == 0)
		return fail(err, errlen, "zone %s: 'codes' must be a non-empty "
		    "list of addresses", z->name);
	if ((z->codes = calloc(v->n, sizeof(*z->codes))) == NULL)
		return fail(err, errlen, "out of memory");
	for (size_t i = 0; i < v->n; i++) {
		if (v->items[i].type != SLUICE_STRING || inet_pton(AF_INET,
		    v->items[i].string, &z->codes[i]) != 1)
			return fail(err, errlen, "zone %s: code '%s' is not an "
			    "IPv4 address", z->name,
			    v->items[i].type == SLUICE_STRING ?
			    v->items[i].string : "(not a string)");
		z->ncodes = i + 1;
	}
	return 0;
}

/* parse_zone - "zone" or {zone: NAME, weight: N, codes: [...]} */
static int
parse_zone(struct zone *z, const struct sluice_value *v, char *err,
    size_t errlen)
{
	const struct sluice_value *name = v, *w, *codes;

	z->weight = 1;
	if (v->type == SLUICE_MAP) {
		for (size_t i = 0; i < v->n; i++)
			if (strcmp(v->keys[i], "zone") != 0 &&
			    strcmp(v->keys[i], "weight") != 0 &&
			    strcmp(v->keys[i], "codes") != 0)
				return fail(err, errlen, "unknown zone key '%s' "
				    "(expected zone, weight, codes)", v->keys[i]);
		name = map_get(v, "zone");
	}
	if (name == NULL || name->type != SLUICE_STRING ||
	    !zone_name_ok(name->string))
		return fail(err, errlen, "each of 'zones' needs a zone: a DNS "
		    "name of at most %d characters", DNSBL_ZONE_MAX);
	if ((z->name = strdup(name->string)) == NULL)
		return fail(err, errlen, "out of memory");
	for (char *p = z->name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if ((w = map_get(v, "weight")) != NULL && parse_int(w,
	    -DNSBL_SCORE_MAX, DNSBL_SCORE_MAX, &z->weight) == -1)
		return fail(err, errlen, "zone %s: 'weight' must be an integer "
		    "from %d to %d", z->name, -DNSBL_SCORE_MAX, DNSBL_SCORE_MAX);
	if ((codes = map_get(v, "codes")) != NULL)
		return parse_codes(z, codes, err, errlen);
	return 0;
}

static int
parse_zones(struct dnsbl *d, const struct sluice_value *v, char *err,
    size_t errlen)
{
	if (v == NULL || v->type != SLUICE_LIST || v->n == 0)
		return fail(err, errlen, "'zones' must be a non-empty list of "
		    "zones");
	if ((d->zones = calloc(v->n, sizeof(*d->zones))) == NULL)
		return fail(err, errlen, "out of memory");
	for (size_t i = 0; i < v->n; i++) {
		d->nzones = i + 1;
		if (parse_zone(&d->zones[i], &v->items[i], err, errlen) == -1)
			return -1;
	}
	return 0;
}

static int
parse_stage(struct dnsbl *d, const struct sluice_value *v, char *err,
    size_t errlen)
{
	if (v == NULL)
		return 0;
	if (v->type == SLUICE_STRING && strcmp(v->string, "connect") == 0)
		d->stage = SLUICE_ON_CONNECT;
	else if (v->type == SLUICE_STRING && strcmp(v->string, "rcpt") == 0)
		d->stage = SLUICE_ON_RCPT;
	else
		return fail(err, errlen, "'stage' must be connect or rcpt");
	return 0;
}

static int
parse_prefix(struct dnsbl *d, const struct sluice_value *v, char *err,
    size_t errlen)
{
	if (v == NULL)
		return 0;
	if (v->type != SLUICE_STRING || v->string[0] == '\0' ||
	    strlen(v->string) > DNSBL_PREFIX_MAX)
		return fail(err, errlen, "'tag_prefix' must be a name of at most "
		    "%d characters", DNSBL_PREFIX_MAX);
	snprintf(d->prefix, sizeof(d->prefix), "%s", v->string);
	return 0;
}

static int
parse_args(struct dnsbl *d, const struct sluice_value *args, char *err,
    size_t errlen)
{
	static const char *const known[] = { "zones", "reject_score",
	    "tag_score", "stage", "tag_prefix", NULL };
	const struct sluice_value *v;

	if (args->type != SLUICE_MAP)
		return fail(err, errlen, "'args' must be a mapping with 'zones'");
	for (size_t i = 0; i < args->n; i++) {
		size_t k = 0;
		while (known[k] != NULL && strcmp(known[k], args->keys[i]) != 0)
			k++;
		if (known[k] == NULL)
			return fail(err, errlen, "unknown argument '%s' (expected "
			    "zones, reject_score, tag_score, stage, tag_prefix)",
			    args->keys[i]);
	}
	if (parse_zones(d, map_get(args, "zones"), err, errlen) == -1)
		return -1;
	if ((v = map_get(args, "reject_score")) != NULL) {
		if (parse_int(v, 1, DNSBL_SCORE_MAX, &d->reject_score) == -1)
			return fail(err, errlen, "'reject_score' must be a "
			    "positive integer");
		d->has_reject = 1;
	}
	if ((v = map_get(args, "tag_score")) != NULL &&
	    parse_int(v, 1, DNSBL_SCORE_MAX, &d->tag_score) == -1)
		return fail(err, errlen, "'tag_score' must be a positive integer");
	if (parse_stage(d, map_get(args, "stage"), err, errlen) == -1)
		return -1;
	return parse_prefix(d, map_get(args, "tag_prefix"), err, errlen);
}

static void
dnsbl_free(struct dnsbl *d)
{
	if (d == NULL)
		return;
	while (d->pending != NULL) {	/* none once sessions are gone */
		struct dcall *dc = d->pending;
		d->pending = dc->next;
		free(dc);
	}
	for (size_t i = 0; i < d->nzones; i++) {
		free(d->zones[i].name);
		free(d->zones[i].codes);
	}
	free(d->zones);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

static int
dnsbl_init(const struct sluice_host *host, const struct sluice_value *args,
    void **ctx, char *err, size_t errlen)
{
	struct dnsbl *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return fail(err, errlen, "out of memory");
	if (pthread_mutex_init(&d->mu, NULL) != 0) {
		free(d);
		return fail(err, errlen, "cannot create a mutex");
	}
	d->host = host;
	d->tag_score = 1;
	d->stage = SLUICE_ON_CONNECT;
	snprintf(d->prefix, sizeof(d->prefix), "dnsbl");
	if (parse_args(d, args, err, errlen) == -1) {
		dnsbl_free(d);
		return -1;
	}
	*ctx = d;
	return 0;
}

static void
dnsbl_fini(void *ctx)
{
	dnsbl_free(ctx);
}

/* -- lookups -------------------------------------------------------------- */

/* reverse_name - "4.3.2.1" or 32 reversed nibbles; -1 if not an address */
static int
reverse_name(const char *addr, char *out, size_t len)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0xff, 0xff };
	unsigned char a[16];
	size_t o = 0;

	if (addr == NULL)
		return -1;
	if (inet_pton(AF_INET, addr, a) == 1) {
		snprintf(out, len, "%u.%u.%u.%u", a[3], a[2], a[1], a[0]);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, a) != 1)
		return -1;
	if (memcmp(a, mapped, sizeof(mapped)) == 0) {
		snprintf(out, len, "%u.%u.%u.%u", a[15], a[14], a[13], a[12]);
		return 0;
	}
	if (len < 64)
		return -1;
	for (int i = 15; i >= 0; i--) {
		static const char hex[] = "0123456789abcdef";
		out[o++] = hex[a[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[a[i] >> 4];
		out[o++] = i ? '.' : '\0';
	}
	return 0;
}

/* listed_by - one A answer: 1 listed, 0 not, -1 an error code */
static int
listed_by(const struct zone *z, const char *value)
{
	struct in_addr a;
	uint32_t h;

	if (inet_pton(AF_INET, value, &a) != 1)
		return 0;
	h = ntohl(a.s_addr);
	if ((h >> 24) != 127)
		return 0;
	if ((h >> 8) == 0x7fffff)	/* 127.255.255.0/24 */
		return -1;
	if (z->ncodes == 0)
		return 1;
	for (size_t i = 0; i < z->ncodes; i++)
		if (z->codes[i].s_addr == a.s_addr)
			return 1;
	return 0;
}

static int
answer_lists(struct dcall *dc, const struct zone *z,
    const struct sluice_dns_answer *a)
{
	const struct sluice_host *h = dc->d->host;
	int listed = 0;

	switch (a->status) {
	case SLUICE_DNS_OK:
		break;
	case SLUICE_DNS_NXDOMAIN:
	case SLUICE_DNS_NODATA:
		return 0;
	default:
		h->log(dc->call, SLUICE_LOG_WARN, "dnsbl: lookup of %s in %s "
		    "failed: treated as not listed", dc->addr, z->name);
		return 0;
	}
	for (size_t i = 0; i < a->n; i++) {
		int r = listed_by(z, a->values[i]);
		if (r == -1)
			h->log(dc->call, SLUICE_LOG_WARN, "dnsbl: %s answered "
			    "error code %s for %s: treated as not listed",
			    z->name, a->values[i], dc->addr);
		listed |= r == 1;
	}
	return listed;
}

static void
unregister(struct dcall *dc)
{
	struct dnsbl *d = dc->d;

	pthread_mutex_lock(&d->mu);
	if (dc->registered) {
		if (dc->prev != NULL)
			dc->prev->next = dc->next;
		else
			d->pending = dc->next;
		if (dc->next != NULL)
			dc->next->prev = dc->prev;
		dc->registered = 0;
	}
	pthread_mutex_unlock(&d->mu);
}

static void
register_call(struct dcall *dc)
{
	struct dnsbl *d = dc->d;

	pthread_mutex_lock(&d->mu);
	dc->prev = NULL;
	dc->next = d->pending;
	if (d->pending != NULL)
		d->pending->prev = dc;
	d->pending = dc;
	dc->registered = 1;
	pthread_mutex_unlock(&d->mu);
}

/* -- verdicts ------------------------------------------------------------- */

static void
tag_key(const struct dnsbl *d, const char *what, char *out, size_t len)
{
	snprintf(out, len, "%s.%s", d->prefix, what);
}

/* judge - tags and verdict from a score and the listing zones */
static void
judge(struct dnsbl *d, struct sluice_call *c, enum sluice_stage stage,
    const char *addr, long score, const char *listed)
{
	const struct sluice_host *h = d->host;
	char key[DNSBL_PREFIX_MAX + 16], num[32], text[DNSBL_LISTED_MAX + 128];

	snprintf(num, sizeof(num), "%ld", score);
	if (listed[0] != '\0' && score >= d->tag_score) {
		tag_key(d, "score", key, sizeof(key));
		h->tag_set(c, SLUICE_SESSION, key, num);
		tag_key(d, "listed", key, sizeof(key));
		h->tag_set(c, SLUICE_SESSION, key, listed);
	}
	if (!d->has_reject || score < d->reject_score || stage != d->stage)
		return;
	size_t o = (size_t)snprintf(text, sizeof(text), "Service unavailable; "
	    "client [%s] blocked using ", addr);
	for (const char *z = listed; *z && o + 3 < sizeof(text); z++) {
		text[o++] = *z;			/* "a,b" -> "a, b" */
		if (*z == ',')
			text[o++] = ' ';
	}
	text[o] = '\0';
	h->verdict(c, SLUICE_REJECT, stage == SLUICE_ON_CONNECT ? 554 : 550,
	    "5.7.1", text);
}

/* finish - every answer is in: score, remember, judge */
static void
finish(struct dcall *dc)
{
	struct dnsbl *d = dc->d;
	char listed[DNSBL_LISTED_MAX], memo[DNSBL_LISTED_MAX + 32];
	char key[DNSBL_PREFIX_MAX + 16];
	long score = 0;
	size_t o = 0;

	listed[0] = '\0';
	for (size_t i = 0; i < d->nzones; i++) {
		if (!dc->q[i].listed)
			continue;
		score += d->zones[i].weight;
		int n = snprintf(listed + o, sizeof(listed) - o, "%s%s",
		    o ? "," : "", d->zones[i].name);
		if (n > 0 && (size_t)n < sizeof(listed) - o)
			o += (size_t)n;
	}
	if (listed[0] != '\0')
		d->host->log(dc->call, SLUICE_LOG_INFO, "dnsbl: %s listed by "
		    "%s, score %ld", dc->addr, listed, score);
	snprintf(memo, sizeof(memo), "%ld %s", score, listed);
	tag_key(d, "result", key, sizeof(key));
	d->host->tag_set(dc->call, SLUICE_SESSION, key, memo);
	judge(d, dc->call, dc->stage, dc->addr, score, listed);
}

static void
on_answer(struct sluice_call *c, const struct sluice_dns_answer *a,
    void *arg)
{
	struct dquery *q = arg;
	struct dcall *dc = q->owner;

	(void)c;
	if (q->answered)
		return;
	q->answered = 1;
	q->listed = answer_lists(dc, &dc->d->zones[q->zone], a);
	if (--dc->pending > 0 || !dc->registered)
		return;
	unregister(dc);
	finish(dc);
	dc->d->host->resume(dc->call);
	free(dc);
}

/* from_memo - rcpt stage, looked up already in this session */
static int
from_memo(struct dnsbl *d, struct sluice_call *c, const char *addr)
{
	char key[DNSBL_PREFIX_MAX + 16], listed[DNSBL_LISTED_MAX];
	const char *memo;
	long score;
	int n = 0;

	tag_key(d, "result", key, sizeof(key));
	if ((memo = d->host->tag_get(c, key)) == NULL ||
	    sscanf(memo, "%ld %n", &score, &n) != 1)
		return 0;
	snprintf(listed, sizeof(listed), "%s", memo + n);
	judge(d, c, SLUICE_ON_RCPT, addr, score, listed);
	return 1;
}

static struct dcall *
dcall_new(struct dnsbl *d, struct sluice_call *c, enum sluice_stage stage,
    const char *addr)
{
	struct dcall *dc = calloc(1, sizeof(*dc) + d->nzones * sizeof(dc->q[0]));

	if (dc == NULL)
		return NULL;
	dc->d = d;
	dc->call = c;
	dc->stage = stage;
	snprintf(dc->addr, sizeof(dc->addr), "%s", addr);
	for (size_t i = 0; i < d->nzones; i++) {
		dc->q[i].owner = dc;
		dc->q[i].zone = i;
	}
	return dc;
}

static void
start_queries(struct dcall *dc, const char *rev)
{
	struct dnsbl *d = dc->d;
	char name[DNSBL_NAME_MAX + 2];

	for (size_t i = 0; i < d->nzones; i++) {
		struct dquery *q = &dc->q[i];
		snprintf(name, sizeof(name), "%s.%s", rev, d->zones[i].name);
		if (d->host->dns_query(dc->call, name, "A", on_answer, q) == 0 ||
		    q->answered)
			continue;
		d->host->log(dc->call, SLUICE_LOG_WARN, "dnsbl: cannot look %s "
		    "up: treated as not listed", name);
		q->answered = 1;
		dc->pending--;
	}
}

static enum sluice_status
dnsbl_hook(void *ctx, enum sluice_stage stage, struct sluice_call *c)
{
	struct dnsbl *d = ctx;
	const char *addr;
	char rev[DNSBL_REV_MAX];
	struct dcall *dc;

	if (stage != d->stage)
		return SLUICE_DONE;
	addr = d->host->get(c, "client.addr");
	if (reverse_name(addr, rev, sizeof(rev)) == -1)
		return SLUICE_DONE;	/* not an IP client */
	if (stage == SLUICE_ON_RCPT && from_memo(d, c, addr))
		return SLUICE_DONE;
	if ((dc = dcall_new(d, c, stage, addr)) == NULL) {
		d->host->log(c, SLUICE_LOG_WARN, "dnsbl: out of memory: not "
		    "checked");
		return SLUICE_DONE;
	}
	dc->pending = (int)d->nzones + 1;	/* + 1: the hook itself */
	start_queries(dc, rev);
	if (--dc->pending == 0) {		/* no query could start */
		finish(dc);
		free(dc);
		return SLUICE_DONE;
	}
	register_call(dc);
	return SLUICE_SUSPENDED;
}

/* dnsbl_cancel - timed out: the host drops the answers still to come */
static void
dnsbl_cancel(void *ctx, struct sluice_call *c)
{
	struct dnsbl *d = ctx;
	struct dcall *dc;

	pthread_mutex_lock(&d->mu);
	for (dc = d->pending; dc != NULL && dc->call != c; dc = dc->next)
		;
	pthread_mutex_unlock(&d->mu);
	if (dc == NULL)
		return;
	unregister(dc);
	free(dc);
}

const struct sluice_plugin sluice_plugin = {
	.abi = SLUICE_PLUGIN_ABI,
	.name = "dnsbl",
	.stages = SLUICE_STAGE(SLUICE_ON_CONNECT) | SLUICE_STAGE(SLUICE_ON_RCPT),
	.init = dnsbl_init,
	.fini = dnsbl_fini,
	.hook = dnsbl_hook,
	.cancel = dnsbl_cancel,
};
