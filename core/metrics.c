/*
 * metrics.c - metric families, their series and the text exposition
 * (metrics.h).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "metrics.h"
#include "util.h"

#define MAX_LABELS	2
#define HASH_SIZE	64
#define MAX_SERIES	5000	/* per family; then label values "other" */

enum kind { COUNTER, GAUGE, HISTOGRAM };

struct family_def {
	const char *name;
	const char *help;
	enum kind kind;
	unsigned nlabels;
	const char *labels[MAX_LABELS];
};

static const struct family_def defs[M_NMETRICS] = {
	[M_SESSIONS_TOTAL] = { "sluice_smtp_sessions_total",
	    "SMTP sessions accepted", COUNTER, 1, { "listener" } },
	[M_SESSIONS_CURRENT] = { "sluice_smtp_sessions",
	    "SMTP sessions open now", GAUGE, 1, { "listener" } },
	[M_MESSAGES_ACCEPTED] = { "sluice_messages_accepted_total",
	    "messages queued (250 after the data)", COUNTER, 1,
	    { "listener" } },
	[M_MESSAGES_REJECTED] = { "sluice_messages_rejected_total",
	    "SMTP commands refused with a 5xx reply, by stage and reason "
	    "(a filter's name, or what the server itself checked)", COUNTER,
	    2, { "stage", "reason" } },
	[M_MESSAGES_TEMPFAILED] = { "sluice_messages_tempfailed_total",
	    "SMTP commands refused with a 4xx reply, by stage and reason",
	    COUNTER, 2, { "stage", "reason" } },
	[M_DELIVERIES] = { "sluice_deliveries_total",
	    "delivery results per recipient", COUNTER, 2,
	    { "transport", "result" } },
	[M_DELIVERY_SECONDS] = { "sluice_delivery_duration_seconds",
	    "time of one delivery attempt, per recipient", HISTOGRAM, 1,
	    { "transport" } },
	[M_FILTER_SECONDS] = { "sluice_filter_duration_seconds",
	    "time of one filter call (plugins, Lua scripts, milters)",
	    HISTOGRAM, 1, { "filter" } },
	[M_FILTER_ERRORS] = { "sluice_filter_errors_total",
	    "filter calls that failed or timed out", COUNTER, 1,
	    { "filter" } },
	[M_TLS_HANDSHAKES] = { "sluice_tls_handshakes_total",
	    "TLS handshakes, inbound (STARTTLS, implicit) and outbound",
	    COUNTER, 2, { "direction", "result" } },
	[M_AUTH] = { "sluice_auth_total", "SMTP AUTH attempts by result",
	    COUNTER, 1, { "result" } },
	[M_LUA_ERRORS] = { "sluice_lua_errors_total",
	    "Lua filter calls that raised an error", COUNTER, 1,
	    { "filter" } },
	[M_LUA_BUDGET] = { "sluice_lua_budget_exceeded_total",
	    "Lua filter calls stopped by their instruction budget or memory "
	    "cap", COUNTER, 1, { "filter" } },
};

static const double buckets[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
	10, 30, 60, 300,
};
#define NBUCKETS	(sizeof(buckets) / sizeof(buckets[0]))

struct series {
	struct series *next;
	char *values[MAX_LABELS];
	double value;			/* counter, gauge; histogram: sum */
	uint64_t count;			/* histogram */
	uint64_t bucket[NBUCKETS];	/* histogram, not cumulative */
};

struct family {
	pthread_mutex_t mu;
	struct series *hash[HASH_SIZE];
	unsigned n;
};

static struct family families[M_NMETRICS];

void
metrics_init(void)
{
	for (size_t i = 0; i < M_NMETRICS; i++)
		pthread_mutex_init(&families[i].mu, NULL);
}

void
metrics_free(void)
{
	for (size_t i = 0; i < M_NMETRICS; i++) {
		struct family *f = &families[i];
		for (size_t h = 0; h < HASH_SIZE; h++)
			while (f->hash[h] != NULL) {
				struct series *s = f->hash[h];
				f->hash[h] = s->next;
				for (size_t k = 0; k < MAX_LABELS; k++)
					free(s->values[k]);
				free(s);
			}
		f->n = 0;
	}
}

static unsigned
hash_values(const char *const *v, unsigned n)
{
	unsigned h = 2166136261u;

	for (unsigned k = 0; k < n; k++) {
		for (const char *p = v[k]; *p; p++)
			h = (h ^ (unsigned char)*p) * 16777619u;
		h = (h ^ 0x1f) * 16777619u;
	}
	return h % HASH_SIZE;
}

/*
 * find - the series of these label values, made on first use (mu held);
 * past MAX_SERIES, new combinations all count as "other"
 */
static struct series *
find(struct family *f, const struct family_def *d, const char **v)
{
	unsigned h = hash_values(v, d->nlabels);
	struct series *s;

	for (s = f->hash[h]; s != NULL; s = s->next) {
		unsigned k;
		for (k = 0; k < d->nlabels && strcmp(s->values[k], v[k]) == 0;
		    k++)
			;
		if (k == d->nlabels)
			return s;
	}
	if (f->n >= MAX_SERIES && d->nlabels > 0 &&
	    strcmp(v[0], "other") != 0) {
		for (unsigned k = 0; k < d->nlabels; k++)
			v[k] = "other";
		return find(f, d, v);
	}
	s = xcalloc(1, sizeof(*s));
	for (unsigned k = 0; k < d->nlabels; k++)
		s->values[k] = xstrdup(v[k]);
	s->next = f->hash[h];
	f->hash[h] = s;
	f->n++;
	return s;
}

static void
labels_from(const struct family_def *d, va_list ap, const char **v)
{
	for (unsigned k = 0; k < d->nlabels; k++) {
		v[k] = va_arg(ap, const char *);
		if (v[k] == NULL || v[k][0] == '\0')
			v[k] = "none";
	}
}

void
metrics_add(enum metric m, double value, ...)
{
	const struct family_def *d = &defs[m];
	struct family *f = &families[m];
	const char *v[MAX_LABELS];
	va_list ap;

	va_start(ap, value);
	labels_from(d, ap, v);
	va_end(ap);
	pthread_mutex_lock(&f->mu);
	find(f, d, v)->value += value;
	pthread_mutex_unlock(&f->mu);
}

void
metrics_observe(enum metric m, double value, ...)
{
	const struct family_def *d = &defs[m];
	struct family *f = &families[m];
	const char *v[MAX_LABELS];
	struct series *s;
	size_t b;
	va_list ap;

	va_start(ap, value);
	labels_from(d, ap, v);
	va_end(ap);
	for (b = 0; b < NBUCKETS && value > buckets[b]; b++)
		;
	pthread_mutex_lock(&f->mu);
	s = find(f, d, v);
	s->value += value;
	s->count++;
	if (b < NBUCKETS)
		s->bucket[b]++;
	pthread_mutex_unlock(&f->mu);
}

void
metrics_refusal(const char *stage, const char *reason, const char *reply)
{
	if (reply[0] == '5')
		metrics_inc(M_MESSAGES_REJECTED, stage, reason);
	else if (reply[0] == '4')
		metrics_inc(M_MESSAGES_TEMPFAILED, stage, reason);
}

/* metrics_escape - a label value as the text format wants: \\ \" \n */
void
metrics_escape(struct evbuffer *out, const char *v)
{
	for (const char *p = v; *p; p++) {
		if (*p == '\\' || *p == '"')
			evbuffer_add_printf(out, "\\%c", *p);
		else if (*p == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, p, 1);
	}
}

static void
put_labels(struct evbuffer *out, const struct family_def *d,
    const struct series *s, const char *le)
{
	if (d->nlabels == 0 && le == NULL)
		return;
	evbuffer_add(out, "{", 1);
	for (unsigned k = 0; k < d->nlabels; k++) {
		evbuffer_add_printf(out, "%s%s=\"", k ? "," : "", d->labels[k]);
		metrics_escape(out, s->values[k]);
		evbuffer_add(out, "\"", 1);
	}
	if (le != NULL)
		evbuffer_add_printf(out, "%sle=\"%s\"", d->nlabels ? "," : "",
		    le);
	evbuffer_add(out, "}", 1);
}

static void
render_histogram(struct evbuffer *out, const struct family_def *d,
    const struct series *s)
{
	uint64_t cum = 0;
	char le[32];

	for (size_t b = 0; b < NBUCKETS; b++) {
		cum += s->bucket[b];
		snprintf(le, sizeof(le), "%g", buckets[b]);
		evbuffer_add_printf(out, "%s_bucket", d->name);
		put_labels(out, d, s, le);
		evbuffer_add_printf(out, " %llu\n", (unsigned long long)cum);
	}
	evbuffer_add_printf(out, "%s_bucket", d->name);
	put_labels(out, d, s, "+Inf");
	evbuffer_add_printf(out, " %llu\n", (unsigned long long)s->count);
	evbuffer_add_printf(out, "%s_sum", d->name);
	put_labels(out, d, s, NULL);
	evbuffer_add_printf(out, " %.6f\n", s->value);
	evbuffer_add_printf(out, "%s_count", d->name);
	put_labels(out, d, s, NULL);
	evbuffer_add_printf(out, " %llu\n", (unsigned long long)s->count);
}

void
metrics_render(struct evbuffer *out)
{
	metrics_render_families(out);
	metrics_render_queue(out);
}

void
metrics_render_families(struct evbuffer *out)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };

	for (size_t i = 0; i < M_NMETRICS; i++) {
		const struct family_def *d = &defs[i];
		struct family *f = &families[i];

		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n",
		    d->name, d->help, d->name, types[d->kind]);
		pthread_mutex_lock(&f->mu);
		for (size_t h = 0; h < HASH_SIZE; h++)
			for (struct series *s = f->hash[h]; s; s = s->next) {
				if (d->kind == HISTOGRAM) {
					render_histogram(out, d, s);
					continue;
				}
				evbuffer_add(out, d->name, strlen(d->name));
				put_labels(out, d, s, NULL);
				evbuffer_add_printf(out, " %.17g\n", s->value);
			}
		pthread_mutex_unlock(&f->mu);
	}
}
