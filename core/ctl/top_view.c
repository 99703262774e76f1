/*
 * top_view.c - one frame of sluicectl top (top.h):
 *
 *   sluice top  2026-11-28 21:44:30  over 1.0s
 *   sessions    open 3  new 1.00/s (120)
 *   messages    accepted 2.00/s (97)  rejected 0.00/s (4)  tempfailed ...
 *   deliveries  sent 2.00/s (90)  deferred 0.00/s (3)  bounced ...
 *   queue       active 1 (oldest 3s)  deferred 4 (oldest 2m10s)  hold 0 ...
 *
 *   DESTINATION                      CONNS  QUEUED
 *   FILTER             CALLS/s  MEAN ms  P95 ms  ERRORS  OVER
 *
 * A rate is the counter's increase over the interval (0 after a restart
 * made it go down); the number in parentheses is the total since start.
 * Filters are sorted slowest first by p95 over the interval, or since
 * start for a filter not called in the interval (OVER says which).
 */
#include <stdlib.h>
#include <string.h>

#include "top.h"

#define MAX_ROWS	64	/* destinations or filters listed at most */
#define NAME_W		40

struct filter_row {
	const char *name;
	double calls, mean, p95, errors;
	int recent;			/* mean and p95 over the interval */
};

static double
rate(const struct top_frame *f, const char *name, const char *key,
    const char *value)
{
	double d;

	if (f->prev == NULL || f->dt <= 0)
		return 0;
	d = expo_sum(f->cur, name, key, value) -
	    expo_sum(f->prev, name, key, value);
	return d > 0 ? d / f->dt : 0;
}

/* counter - " WORD RATE/s (TOTAL)" */
static void
counter(FILE *out, const struct top_frame *f, const char *word,
    const char *name, const char *key, const char *value)
{
	fprintf(out, "  %s %.2f/s (%.0f)", word, rate(f, name, key, value),
	    expo_sum(f->cur, name, key, value));
}

void
top_duration(double s, char *buf, size_t len)
{
	unsigned long long t = s > 0 ? (unsigned long long)(s + 0.5) : 0;

	if (t < 60)
		snprintf(buf, len, "%llus", t);
	else if (t < 3600)
		snprintf(buf, len, "%llum%02llus", t / 60, t % 60);
	else if (t < 86400)
		snprintf(buf, len, "%lluh%02llum", t / 3600, t / 60 % 60);
	else
		snprintf(buf, len, "%llud%02lluh", t / 86400, t / 3600 % 24);
}

static void
summary(FILE *out, const struct top_frame *f)
{
	static const char *const states[] = {
		"active", "deferred", "hold", "quarantine"
	};
	static const char *const results[] = { "sent", "deferred", "bounced" };
	char age[32];

	fprintf(out, "%-10s  open %.0f", "sessions",
	    expo_sum(f->cur, "sluice_smtp_sessions", NULL, NULL));
	counter(out, f, "new", "sluice_smtp_sessions_total", NULL, NULL);
	fprintf(out, "\n%-10s", "messages");
	counter(out, f, "accepted", "sluice_messages_accepted_total", NULL,
	    NULL);
	counter(out, f, "rejected", "sluice_messages_rejected_total", NULL,
	    NULL);
	counter(out, f, "tempfailed", "sluice_messages_tempfailed_total",
	    NULL, NULL);
	fprintf(out, "\n%-10s", "deliveries");
	for (size_t i = 0; i < 3; i++)
		counter(out, f, results[i], "sluice_deliveries_total",
		    "result", results[i]);
	fprintf(out, "\n%-10s", "queue");
	for (size_t i = 0; i < 4; i++) {
		double n = expo_sum(f->cur, "sluice_queue_messages", "state",
		    states[i]);
		fprintf(out, "  %s %.0f", states[i], n);
		if (n > 0) {
			top_duration(expo_sum(f->cur,
			    "sluice_queue_oldest_seconds", "state", states[i]),
			    age, sizeof(age));
			fprintf(out, " (oldest %s)", age);
		}
	}
	fprintf(out, "\n");
}

/* destinations - the server sends them busiest first */
static unsigned
destinations(FILE *out, const struct top_frame *f, unsigned room)
{
	const char *names[MAX_ROWS];
	size_t n = expo_values(f->cur, "sluice_destination_connections",
	    "destination", names, MAX_ROWS);
	unsigned used = 2;

	fprintf(out, "\n%-*s %6s %7s\n", NAME_W, "DESTINATION", "CONNS",
	    "QUEUED");
	if (n == 0) {
		fprintf(out, "(no connections, nothing waiting)\n");
		return used + 1;
	}
	for (size_t i = 0; i < n && (room == 0 || used < room); i++, used++)
		fprintf(out, "%-*.*s %6.0f %7.0f\n", NAME_W, NAME_W, names[i],
		    expo_sum(f->cur, "sluice_destination_connections",
		    "destination", names[i]),
		    expo_sum(f->cur, "sluice_destination_queued",
		    "destination", names[i]));
	return used;
}

static void
filter_row(const struct top_frame *f, const char *name,
    struct filter_row *r)
{
	static const char *const h = "sluice_filter_duration_seconds";
	struct expo_hist hist;
	double n, sum;

	memset(r, 0, sizeof(*r));
	r->name = name;
	r->calls = rate(f, "sluice_filter_duration_seconds_count", "filter",
	    name);
	r->errors = expo_sum(f->cur, "sluice_filter_errors_total", "filter",
	    name);
	r->recent = r->calls > 0;
	n = expo_sum(f->cur, "sluice_filter_duration_seconds_count",
	    "filter", name);
	sum = expo_sum(f->cur, "sluice_filter_duration_seconds_sum",
	    "filter", name);
	if (r->recent) {
		n -= expo_sum(f->prev, "sluice_filter_duration_seconds_count",
		    "filter", name);
		sum -= expo_sum(f->prev, "sluice_filter_duration_seconds_sum",
		    "filter", name);
	}
	r->mean = n > 0 ? sum / n : -1;
	expo_hist(f->cur, r->recent ? f->prev : NULL, h, "filter", name,
	    &hist);
	r->p95 = expo_quantile(&hist, 0.95);
}

static int
slower_first(const void *a, const void *b)
{
	const struct filter_row *x = a, *y = b;

	if (x->p95 != y->p95)
		return x->p95 < y->p95 ? 1 : -1;
	if (x->mean != y->mean)
		return x->mean < y->mean ? 1 : -1;
	return strcmp(x->name, y->name);
}

static void
filters(FILE *out, const struct top_frame *f, unsigned room)
{
	const char *names[MAX_ROWS];
	struct filter_row rows[MAX_ROWS];
	size_t n = expo_values(f->cur, "sluice_filter_duration_seconds_count",
	    "filter", names, MAX_ROWS);
	unsigned used = 2;

	fprintf(out, "\n%-*s %8s %8s %8s %7s  %s\n", NAME_W - 10, "FILTER",
	    "CALLS/s", "MEAN ms", "P95 ms", "ERRORS", "OVER");
	if (n == 0) {
		fprintf(out, "(no filter called yet)\n");
		return;
	}
	for (size_t i = 0; i < n; i++)
		filter_row(f, names[i], &rows[i]);
	qsort(rows, n, sizeof(rows[0]), slower_first);
	for (size_t i = 0; i < n && (room == 0 || used < room); i++, used++)
		fprintf(out, "%-*.*s %8.2f %8.2f %8.2f %7.0f  %s\n",
		    NAME_W - 10, NAME_W - 10, rows[i].name, rows[i].calls,
		    rows[i].mean < 0 ? 0 : rows[i].mean * 1000,
		    rows[i].p95 < 0 ? 0 : rows[i].p95 * 1000, rows[i].errors,
		    rows[i].recent ? "interval" : "all");
}

void
top_render(FILE *out, const struct top_frame *f)
{
	char when[64];
	struct tm tm;
	unsigned left = 0, used;

	localtime_r(&f->now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	if (f->prev != NULL)
		fprintf(out, "sluice top  %s  over %.1fs\n", when, f->dt);
	else
		fprintf(out, "sluice top  %s\n", when);
	summary(out, f);
	if (f->rows > 0)		/* title, summary: 5 lines */
		left = f->rows > 8 ? f->rows - 6 : 2;
	used = destinations(out, f, left ? (left + 1) / 2 : 0);
	filters(out, f, left ? (left > used ? left - used : 2) : 0);
}
