/*
 * attempt.c - a delivery attempt, first half: read the message and its
 * status, route every pending recipient, hand out one job per next hop
 * (split at delivery.recipients_per_transaction), collect and log each
 * recipient's result (attempt.h). attempt_finish.c takes it from there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attempt_int.h"
#include "delays.h"
#include "dest.h"
#include "iopool.h"
#include "local.h"
#include "log.h"
#include "metrics.h"
#include "loop.h"
#include "route.h"
#include "server.h"
#include "smtp_addr.h"
#include "util.h"

int attempt_is_stopping;

/* a group of recipients with the same next hop */
struct group {
	struct route_spec spec;
	char domain[ROUTE_HOST_LEN];	/* the MX domain ("" unless MX) */
	size_t *idx;
	size_t n;
};

unsigned
retry_delay(unsigned first, unsigned max_interval, unsigned n)
{
	uint64_t d = first ? first : 1;

	for (unsigned i = 1; i < n && d < max_interval; i++)
		d *= 2;
	return d > max_interval ? max_interval : (unsigned)d;
}

void
attempt_stopping(void)
{
	attempt_is_stopping = 1;
}

static const char *
status_word(enum deliver_result r)
{
	return r == DELIVER_OK ? "sent" : r == DELIVER_TEMP ? "deferred" :
	    "bounced";
}

/*
 * log_result - the recipient's event=delivery line, in Postfix's shape:
 * delay= and delays=a/b/c/d (delays.h), dsn=, status=sent|deferred|
 * bounced, reply= the remote server's reply when one decided it, text=
 * what happened in our words
 */
static void
log_result(const struct attempt *a, size_t i, const char *relay,
    const struct djob *job, const char *transport)
{
	const struct rcpt_result *r = &a->res[i];
	char to[ADDR_PATH_MAX + 3], dsn[16], tls[100] = "", delays[64];
	uint64_t now = now_usec();
	size_t n = strcspn(r->text, " ");
	struct delay_marks dm = { .arrival = a->m.env.arrival,
	    .picked = a->started_us, .done = now };

	if (job != NULL) {
		dm.setup_start = job->setup_start;
		dm.setup_end = job->setup_end;
		dm.xmit = job->xmit_start;
	}
	delays_format(&dm, delays, sizeof(delays));
	snprintf(to, sizeof(to), "<%s>", a->m.env.rcpts[i].addr);
	snprintf(dsn, sizeof(dsn), "%.*s", (int)(n < 15 ? n : 15), r->text);
	if (job != NULL && job->tls[0] != '\0')
		snprintf(tls, sizeof(tls), " tls=%s%s%s", job->tls,
		    job->cipher[0] ? " cipher=" : "", job->cipher);
	metrics_inc(M_DELIVERIES, transport, status_word(r->result));
	metrics_observe(M_DELIVERY_SECONDS, (double)(now - a->started_us) /
	    1e6, transport);
	log_info("qid=%s event=delivery to=%s relay=%s delay=%.2f delays=%s "
	    "attempt_ms=%llu dsn=%s status=%s%s%s%s text=%s", a->id, log_q(to),
	    log_q(relay), (double)(now - a->m.env.arrival) / 1e6, delays,
	    (unsigned long long)((now - a->started_us) / 1000), dsn,
	    status_word(r->result), r->diag ? " reply=" : "",
	    r->diag ? log_q(r->diag) : "", tls,
	    log_q(r->text[n] ? r->text + n + 1 : r->text));
}

/* job_done - a job's results become the attempt's (qmgr loop) */
static void
job_done(struct djob *job)
{
	struct attempt *a = job->arg;

	for (size_t k = 0; k < job->nrcpts; k++) {
		size_t i = job->rcpts[k];
		rcpt_result_clear(&a->res[i]);
		a->res[i] = job->res[k];	/* takes remote and diag */
		log_result(a, i, job->relay, job, job->transport);
	}
	free(job->res);
	free(job->rcpts);
	free(job);
	if (--a->jobs == 0)
		attempt_results(a);
}

static void
local_work(void *arg)
{
	struct djob *job = arg;

	job->xmit_start = now_usec();
	local_deliver(job);
}

static void
local_done(void *arg)
{
	struct djob *job = arg;

	job->done(job);
}

static struct djob *
job_new(struct attempt *a, const size_t *idx, size_t n,
    enum route_kind kind)
{
	struct djob *job = xcalloc(1, sizeof(*job));

	job->transport = kind == ROUTE_MAILDIR ? "maildir" :
	    kind == ROUTE_LMTP ? "lmtp" : "smtp";

	job->msg = &a->m;
	job->nrcpts = n;
	job->rcpts = xreallocarray(NULL, n, sizeof(*job->rcpts));
	memcpy(job->rcpts, idx, n * sizeof(*idx));
	job->res = xcalloc(n, sizeof(*job->res));
	for (size_t k = 0; k < n; k++)
		rcpt_result_set(&job->res[k], DELIVER_TEMP, "4.3.0 not tried");
	job->done = job_done;
	job->arg = a;
	a->jobs++;
	return job;
}

static void
submit_group(struct attempt *a, struct group *g)
{
	size_t per = server.conf->delivery.recipients_per_transaction;

	switch (g->spec.kind) {
	case ROUTE_DISCARD:
		for (size_t k = 0; k < g->n; k++) {
			rcpt_result_set(&a->res[g->idx[k]], DELIVER_OK,
			    "2.0.0 discarded by route");
			log_result(a, g->idx[k], "discard", NULL, "discard");
		}
		break;
	case ROUTE_MAILDIR:
		iopool_submit(server.delivery_pool, local_work, server.qmgr,
		    local_done, job_new(a, g->idx, g->n, g->spec.kind));
		break;
	case ROUTE_SMTP:
	case ROUTE_LMTP:
		for (size_t k = 0; k < g->n; k += per)
			dest_submit(&g->spec, g->domain, job_new(a, g->idx + k,
			    g->n - k < per ? g->n - k : per, g->spec.kind));
		break;
	}
}

/* group_for - the group of this next hop, made on first use */
static struct group *
group_for(struct group **gs, size_t *ng, const struct route_spec *spec,
    const char *domain)
{
	const char *d = spec->kind == ROUTE_SMTP && spec->mx &&
	    spec->host[0] == '\0' ? domain : "";

	for (size_t k = 0; k < *ng; k++)
		if (memcmp(&(*gs)[k].spec, spec, sizeof(*spec)) == 0 &&
		    strcmp((*gs)[k].domain, d) == 0)
			return &(*gs)[k];
	*gs = xreallocarray(*gs, *ng + 1, sizeof(**gs));
	struct group *g = &(*gs)[(*ng)++];
	memset(g, 0, sizeof(*g));
	g->spec = *spec;
	strlcpy_s(g->domain, d, sizeof(g->domain));
	return g;
}

/* route_all - results for what cannot go anywhere, groups for the rest */
static void
route_all(struct attempt *a)
{
	struct group *gs = NULL;
	size_t ng = 0;
	char domain[ROUTE_HOST_LEN];

	if (a->quarantine && !a->bounce_now) {	/* the deliver stage said so */
		attempt_results(a);
		return;
	}
	for (size_t i = 0; i < a->n; i++) {
		struct route_spec spec;
		if (a->st.rcpts[i].state != RCPT_PENDING)
			continue;
		a->tried[i] = 1;
		if (a->bounce_now) {	/* the operator's word is final */
			rcpt_result_set(&a->res[i], DELIVER_PERM, "5.0.0 "
			    "returned to the sender by the mail administrator");
			log_result(a, i, "none", NULL, "none");
			continue;
		}
		if (a->decided) {	/* by the deliver stage */
			log_result(a, i, "filter", NULL, "none");
			continue;
		}
		domain[0] = '\0';
		if (route_for(server.conf, server.mailboxes, &a->m.env, i,
		    &spec, domain, sizeof(domain), &a->res[i]) == -1) {
			log_result(a, i, "none", NULL, "none");
			continue;
		}
		a->retry[i] = conf_retry_for(server.conf, domain);
		a->kind[i] = (unsigned char)spec.kind;
		struct group *g = group_for(&gs, &ng, &spec, domain);
		if ((g->n & (g->n - 1)) == 0)	/* grow at powers of two */
			g->idx = xreallocarray(g->idx, g->n ? g->n * 2 : 1,
			    sizeof(*g->idx));
		g->idx[g->n++] = i;
	}
	a->jobs++;			/* none may finish the attempt early */
	for (size_t k = 0; k < ng; k++) {
		submit_group(a, &gs[k]);
		free(gs[k].idx);
	}
	free(gs);
	if (--a->jobs == 0)
		attempt_results(a);
}

static void
start_on_loop(void *arg)
{
	attempt_filter_deliver(arg, route_all);
}

static void
gone_on_loop(void *arg)
{
	struct attempt *a = arg;

	a->rep.outcome = ATTEMPT_GONE;
	a->done(a->arg, &a->rep);
	attempt_free(a);
}

void
attempt_start(const char *id, unsigned flags, attempt_done_fn done,
    void *arg)
{
	struct attempt *a = xcalloc(1, sizeof(*a));
	char err[512];

	strlcpy_s(a->id, id, sizeof(a->id));
	a->bounce_now = (flags & ATTEMPT_BOUNCE_NOW) != 0;
	a->first = (flags & ATTEMPT_FIRST) != 0;
	a->done = done;
	a->arg = arg;
	a->m.fd = -1;
	a->started_us = now_usec();
	if (qmsg_open(id, &a->m, err, sizeof(err)) == -1) {
		log_warnx("qid=%s event=unreadable error=%s", id, log_q(err));
		if (queue_move(id, "corrupt") == 0)
			log_warnx("qid=%s event=quarantined dir=corrupt", id);
		loop_call(server.qmgr, gone_on_loop, a);
		return;
	}
	a->n = a->m.env.nrcpts;
	if (a->first)		/* nothing on disk yet: not even a failed open */
		qstatus_init(&a->st, a->n);
	else if (qstatus_load(id, a->n, &a->st) == -1) {
		log_warn("qid=%s event=status-unreadable", id);
		qstatus_clear(&a->st);
		qstatus_init(&a->st, a->n);
	}
	a->st.attempts++;
	a->res = xcalloc(a->n, sizeof(*a->res));
	a->tried = xcalloc(a->n, 1);
	a->kind = xcalloc(a->n, 1);
	a->retry = xcalloc(a->n, sizeof(*a->retry));
	a->no_dsn = xcalloc(a->n, 1);
	for (size_t i = 0; i < a->n; i++)
		a->retry[i] = &server.conf->retry;
	loop_call(server.qmgr, start_on_loop, a);
}
