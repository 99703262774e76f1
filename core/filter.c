/*
 * filter.c - pipelines and the chain of one stage (filter.h).
 *
 * stage_run() walks the pipeline from a cursor: each filter serving the
 * stage gets a call; a call that finishes at once lets the walk go on in
 * the same loop (no recursion however many filters), one that suspends
 * leaves the walk to be taken up by call_finish() from the loop. A call
 * that suspends gets a timer; one that outlives its filter's timeout is
 * aborted and gets the filter's on_error verdict.
 *
 * Refused recipients: when a filter refuses a recipient at the rcpt
 * stage, the walk goes on in "telling" mode over the later filters that
 * see refused recipients (ops->sees_refused_rcpts), with subj->rcpt_refusal
 * set and their verdicts ignored; the refusing call is kept for done().
 * stage_run_refused_rcpt() starts a run in that mode for a recipient the
 * server refused before the pipeline.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "conf.h"
#include "envelope.h"
#include "filter.h"
#include "log.h"
#include "metrics.h"
#include "loop.h"
#include "server.h"
#include "util.h"

enum { CALL_RUNNING, CALL_SUSPENDED, CALL_DONE };

struct stage_run {
	struct pipeline *p;
	enum sluice_stage stage;
	struct filter_subject *subj;
	size_t next;
	struct sluice_call *call;	/* the current one */
	stage_done_fn done;
	void *arg;
	int walking;			/* inside walk(): no recursion */
	int call_pending;		/* a call finished while walking */
	struct stage_run **handle;	/* the caller's; NULL when done */
	int telling;			/* telling a refused recipient */
	struct sluice_call *decided;	/* the refusal told, for done() */
	char refusal[VERDICT_TEXT_LEN + 32];	/* subj->rcpt_refusal */
};

static const char *const stage_names[SLUICE_NSTAGES + 1] = {
	"connect", "helo", "auth", "mail", "rcpt", "data", "message",
	"queue", "deliver", "delivered", "deferred", "bounced", "disconnect",
	"unknown-command",		/* STAGE_UNKNOWN_CMD: never parsed */
};

static const char *const verdict_names[] = {
	"continue", "accept", "reject", "tempfail", "discard", "quarantine",
	"disconnect",
};

const char *
stage_name(enum sluice_stage s)
{
	return (unsigned)s <= SLUICE_NSTAGES ? stage_names[s] : "?";
}

int
stage_parse(const char *name, enum sluice_stage *s)
{
	for (int i = 0; i < SLUICE_NSTAGES; i++)
		if (strcasecmp(name, stage_names[i]) == 0) {
			*s = (enum sluice_stage)i;
			return 0;
		}
	return -1;
}

const char *
verdict_name(enum sluice_verdict v)
{
	return (unsigned)v < nitems(verdict_names) ? verdict_names[v] : "?";
}

int
verdict_parse(const char *name, enum sluice_verdict *v)
{
	for (size_t i = 0; i < nitems(verdict_names); i++)
		if (strcasecmp(name, verdict_names[i]) == 0) {
			*v = (enum sluice_verdict)i;
			return 0;
		}
	return -1;
}

struct pipeline *
pipeline_ref(struct pipeline *p)
{
	if (p != NULL)
		atomic_fetch_add((atomic_int *)&p->refs, 1);
	return p;
}

void
pipeline_unref(struct pipeline *p)
{
	if (p == NULL || atomic_fetch_sub((atomic_int *)&p->refs, 1) != 1)
		return;
	for (size_t f = 0; f < p->n; f++) {
		struct filter *fl = &p->filters[f];
		for (unsigned w = 0; w < p->nworkers; w++) {
			void *inst = p->inst[w * p->n + f];
			if (inst != NULL && fl->ops->detach != NULL)
				fl->ops->detach(fl, inst);
		}
		if (fl->ops->unload != NULL)
			fl->ops->unload(fl);
		free(fl->name);
	}
	free(p->inst);
	free(p->filters);
	free(p);
}

int
pipeline_has(const struct pipeline *p, enum sluice_stage s)
{
	return p != NULL && (p->stages & SLUICE_STAGE(s)) != 0;
}

/* sees_refused - f is told of refused recipients */
static int
sees_refused(const struct filter *f)
{
	return f->ops->sees_refused_rcpts &&
	    (f->stages & SLUICE_STAGE(SLUICE_ON_RCPT));
}

int
pipeline_sees_refused_rcpts(const struct pipeline *p)
{
	for (size_t i = 0; p != NULL && i < p->n; i++)
		if (sees_refused(&p->filters[i]))
			return 1;
	return 0;
}

int
pipeline_attach(struct pipeline *p, struct worker *w, unsigned idx,
    char *err, size_t errlen)
{
	for (size_t f = 0; f < p->n; f++) {
		struct filter *fl = &p->filters[f];
		if (fl->ops->attach == NULL)
			continue;
		void *inst = fl->ops->attach(fl, w, err, errlen);
		if (inst == NULL)
			return -1;
		p->inst[idx * p->n + f] = inst;
	}
	return 0;
}

/*
 * verdict_reply - defaults per verdict and stage; a filter's own code is
 * used only when it has the verdict's class (5xx reject, 4xx tempfail).
 */
static const char *
default_text(enum sluice_verdict v, enum sluice_stage s)
{
	if (v == SLUICE_DISCONNECT)
		return "Closing connection";
	if (v == SLUICE_TEMPFAIL)
		return "Temporarily rejected by policy, try again later";
	switch (s) {
	case SLUICE_ON_CONNECT:
		return "Access denied";
	case SLUICE_ON_RCPT:
		return "Recipient address rejected by policy";
	case SLUICE_ON_MAIL:
		return "Sender address rejected by policy";
	case SLUICE_ON_MESSAGE:
	case SLUICE_ON_QUEUE:
	case SLUICE_ON_DATA:
		return "Message rejected by policy";
	default:
		return "Rejected by policy";
	}
}

static int
default_code(enum sluice_verdict v, enum sluice_stage s)
{
	if (v == SLUICE_DISCONNECT || (v == SLUICE_TEMPFAIL &&
	    s == SLUICE_ON_CONNECT))
		return 421;
	if (v == SLUICE_TEMPFAIL)
		return (s == SLUICE_ON_RCPT || s == SLUICE_ON_MAIL) ? 450 : 451;
	return (s == SLUICE_ON_CONNECT || s == SLUICE_ON_DATA ||
	    s == SLUICE_ON_MESSAGE || s == SLUICE_ON_QUEUE) ? 554 : 550;
}

static int
enhanced_ok(const char *e, int cls)
{
	unsigned a, b, c;
	char tail;

	return sscanf(e, "%u.%u.%u%c", &a, &b, &c, &tail) == 3 &&
	    (int)a == cls && b < 1000 && c < 1000;
}

void
verdict_reply(const struct verdict *v, enum sluice_stage s, char *buf,
    size_t len)
{
	int code = default_code(v->kind, s), cls = code / 100;
	const char *enh = cls == 4 ? "4.7.1" : "5.7.1", *text;
	char clean[VERDICT_TEXT_LEN];

	if (v->kind == SLUICE_DISCONNECT)
		enh = "4.7.0";
	if (v->code / 100 == cls && v->code % 100 < 60 &&
	    !(s == SLUICE_ON_CONNECT && cls == 4 && v->code != 421))
		code = v->code;
	if (v->enhanced[0] != '\0' && enhanced_ok(v->enhanced, cls))
		enh = v->enhanced;
	text = v->text[0] ? v->text : default_text(v->kind, s);
	size_t o = 0;			/* no line breaks or control bytes */
	for (; *text && o < sizeof(clean) - 1; text++)
		clean[o++] = ((unsigned char)*text < 32 || *text == 127) ?
		    ' ' : *text;
	clean[o] = '\0';
	snprintf(buf, len, "%d %s %s", code, enh, clean);
}

void
call_set_verdict(struct sluice_call *c, enum sluice_verdict kind, int code,
    const char *enhanced, const char *text)
{
	c->verdict.kind = kind;
	c->verdict.code = code;
	snprintf(c->verdict.enhanced, sizeof(c->verdict.enhanced), "%s",
	    enhanced ? enhanced : "");
	snprintf(c->verdict.text, sizeof(c->verdict.text), "%s",
	    text ? text : "");
}

const char *
call_keep(struct sluice_call *c, char *s)
{
	if (c->nstrings == nitems(c->strings)) {
		free(c->strings[0]);
		memmove(c->strings, c->strings + 1,
		    (nitems(c->strings) - 1) * sizeof(char *));
		c->nstrings--;
	}
	c->strings[c->nstrings++] = s;
	return s;
}

static void walk(struct stage_run *);

void **
call_state(struct sluice_call *c)
{
	struct pipeline *p = c->run->p;

	if (c->subj->fstate == NULL)
		c->subj->fstate = xcalloc(p->n, sizeof(void *));
	return &c->subj->fstate[c->filter - p->filters];
}

void
pipeline_tx_end(struct pipeline *p, struct filter_subject *subj)
{
	if (p == NULL || subj->fstate == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		if (subj->fstate[i] != NULL && p->filters[i].ops->tx_end)
			p->filters[i].ops->tx_end(&p->filters[i],
			    subj->fstate[i]);
}

void
pipeline_session_end(struct pipeline *p, struct filter_subject *subj)
{
	if (p == NULL || subj->fstate == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		if (subj->fstate[i] != NULL && p->filters[i].ops->session_end)
			p->filters[i].ops->session_end(&p->filters[i],
			    subj->fstate[i]);
	free(subj->fstate);
	subj->fstate = NULL;
}

int
verdict_multiline(const struct verdict *v)
{
	int want = v->kind == SLUICE_REJECT ? '5' :
	    v->kind == SLUICE_TEMPFAIL || v->kind == SLUICE_DISCONNECT ? '4' : 0;

	return v->reply != NULL && want != 0 && v->reply[0] == want;
}

int
call_active(const struct sluice_call *c)
{
	return c->state != CALL_DONE;
}

void
call_hold(struct sluice_call *c)
{
	c->refs++;
}

void
call_release(struct sluice_call *c)
{
	if (--c->refs > 0)
		return;
	if (c->timer != NULL)
		event_free(c->timer);
	for (unsigned i = 0; i < c->nstrings; i++)
		free(c->strings[i]);
	free(c);
}

static const char *
subject_qid(const struct filter_subject *s)
{
	return s->env != NULL ? s->env->id : "-";
}

filter_trace_fn filter_trace;

static void
log_call(struct sluice_call *c)
{
	uint64_t us = now_usec() - c->started_us;

	if (filter_trace != NULL)
		filter_trace(c, us);
	metrics_observe(M_FILTER_SECONDS, (double)us / 1e6, c->filter->name);
	if (c->verdict.kind == SLUICE_CONTINUE && !log_debug_enabled())
		return;
	log_info("qid=%s session=%016llx event=filter stage=%s filter=%s "
	    "verdict=%s us=%llu%s%s", subject_qid(c->subj),
	    (unsigned long long)c->subj->session_id, stage_name(c->stage),
	    c->filter->name, verdict_name(c->verdict.kind),
	    (unsigned long long)us, c->verdict.text[0] ? " text=" : "",
	    c->verdict.text[0] ? log_q(c->verdict.text) : "");
}

void
call_finish(struct sluice_call *c)
{
	struct stage_run *r = c->run;

	if (c->state == CALL_DONE)
		return;
	if (c->timer != NULL)
		evtimer_del(c->timer);
	if (c->state == CALL_RUNNING && r->walking) {
		/* finished inside ops->call(): walk() carries on */
		c->state = CALL_DONE;
		r->call_pending = 1;
		return;
	}
	c->state = CALL_DONE;
	log_call(c);
	walk(r);
}

void
call_fail(struct sluice_call *c, const char *why)
{
	call_fail_with(c, c->filter->on_error, why);
}

void
call_fail_with(struct sluice_call *c, enum sluice_verdict action,
    const char *why)
{
	log_warnx("qid=%s session=%016llx event=filter-error stage=%s "
	    "filter=%s action=%s reason=%s", subject_qid(c->subj),
	    (unsigned long long)c->subj->session_id, stage_name(c->stage),
	    c->filter->name, verdict_name(action), log_q(why));
	metrics_inc(M_FILTER_ERRORS, c->filter->name);
	call_set_verdict(c, action, 0, NULL, NULL);
	call_finish(c);
}

static void
on_call_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct sluice_call *c = arg;

	(void)fd;
	(void)what;
	if (c->state == CALL_DONE)
		return;
	if (c->filter->ops->abort != NULL)
		c->filter->ops->abort(c);
	call_fail(c, "timeout");
}

/*
 * walk - run calls until one suspends or the chain is decided. The stage
 * result is the first decisive verdict; accept ends the chain as decided.
 */
static struct sluice_call *
call_new(struct stage_run *r, struct filter *f)
{
	struct sluice_call *c = xcalloc(1, sizeof(*c));

	c->run = r;
	c->filter = f;
	c->inst = r->p->inst[r->subj->worker->idx * r->p->n +
	    (size_t)(f - r->p->filters)];
	c->stage = r->stage;
	c->subj = r->subj;
	c->started_us = now_usec();
	c->state = CALL_RUNNING;
	c->refs = 1;
	return c;
}

static void
arm_timeout(struct stage_run *r, struct sluice_call *c)
{
	struct timeval tv = { c->filter->timeout_s, 0 };

	c->state = CALL_SUSPENDED;
	c->timer = evtimer_new(loop_base(r->subj->worker->loop),
	    on_call_timeout, c);
	evtimer_add(c->timer, &tv);
}

/* serves - f gets a call in this run */
static int
serves(const struct stage_run *r, const struct filter *f)
{
	return r->telling ? sees_refused(f) :
	    (f->stages & SLUICE_STAGE(r->stage)) != 0;
}

/* next_filter - the next filter serving the stage, or NULL */
static struct filter *
next_filter(struct stage_run *r)
{
	while (r->next < r->p->n && !serves(r, &r->p->filters[r->next]))
		r->next++;
	return r->next < r->p->n ? &r->p->filters[r->next++] : NULL;
}

/*
 * tell_refusal - c refused the recipient: 1 when later filters are to be
 * told (the walk goes on, c kept as r->decided), 0 when the chain ends
 */
static int
tell_refusal(struct stage_run *r, struct sluice_call *c)
{
	const struct verdict *v = &c->verdict;
	size_t i;

	if (r->stage != SLUICE_ON_RCPT || (v->kind != SLUICE_REJECT &&
	    v->kind != SLUICE_TEMPFAIL))
		return 0;
	for (i = r->next; i < r->p->n; i++)
		if (sees_refused(&r->p->filters[i]))
			break;
	if (i == r->p->n)
		return 0;
	if (verdict_multiline(v))	/* a milter's own lines: the first */
		snprintf(r->refusal, sizeof(r->refusal), "%.*s",
		    (int)strcspn(v->reply, "\r\n"), v->reply);
	else
		verdict_reply(v, r->stage, r->refusal, sizeof(r->refusal));
	r->subj->rcpt_refusal = r->refusal;
	r->telling = 1;
	r->decided = c;
	return 1;
}

static void
finish_run(struct stage_run *r, struct sluice_call *last)
{
	struct verdict result;
	stage_done_fn done = r->done;
	void *arg = r->arg;

	memset(&result, 0, sizeof(result));
	if (r->telling)
		r->subj->rcpt_refusal = NULL;
	if (last != NULL && r->stage != SLUICE_ON_DISCONNECT) {
		result = last->verdict;
		result.filter = last->filter->name;
	}
	if (r->handle != NULL)
		*r->handle = NULL;
	pipeline_unref(r->p);
	free(r);
	done(arg, &result);
	if (last != NULL)		/* after done(): result.reply is its */
		call_release(last);
}

/*
 * walk - run calls until one suspends or the chain is decided. The stage
 * result is the first decisive verdict; accept ends the chain as decided.
 */
static void
walk(struct stage_run *r)
{
	struct sluice_call *c = r->call;
	struct filter *f;

	r->walking = 1;
	for (;;) {
		if (c != NULL) {		/* the call that just ended */
			if (r->call_pending)
				log_call(c);
			if (!r->telling && r->stage != SLUICE_ON_DISCONNECT &&
			    c->verdict.kind != SLUICE_CONTINUE) {
				if (!tell_refusal(r, c))
					break;	/* else kept in r->decided */
			} else
				call_release(c);
			c = r->call = NULL;
		}
		if ((f = next_filter(r)) == NULL)
			break;
		c = r->call = call_new(r, f);
		r->call_pending = 0;
		f->ops->call(c);
		if (!r->call_pending) {		/* suspended: resumes later */
			arm_timeout(r, c);
			r->walking = 0;
			return;
		}
	}
	r->walking = 0;
	finish_run(r, r->decided != NULL ? r->decided : c);
}

static struct stage_run *
run_new(struct pipeline *p, enum sluice_stage stage,
    struct filter_subject *subj, stage_done_fn done, void *arg,
    struct stage_run **handle)
{
	struct stage_run *r = xcalloc(1, sizeof(*r));

	r->p = pipeline_ref(p);
	r->stage = stage;
	r->subj = subj;
	r->done = done;
	r->arg = arg;
	r->handle = handle;
	if (handle != NULL)
		*handle = r;
	return r;
}

void
stage_run(struct pipeline *p, enum sluice_stage stage,
    struct filter_subject *subj, stage_done_fn done, void *arg,
    struct stage_run **handle)
{
	walk(run_new(p, stage, subj, done, arg, handle));
}

void
stage_run_refused_rcpt(struct pipeline *p, struct filter_subject *subj,
    const char *reply, stage_done_fn done, void *arg,
    struct stage_run **handle)
{
	struct stage_run *r = run_new(p, SLUICE_ON_RCPT, subj, done, arg,
	    handle);

	r->telling = 1;
	snprintf(r->refusal, sizeof(r->refusal), "%s", reply);
	subj->rcpt_refusal = r->refusal;
	walk(r);
}

/*
 * stage_cancel - abandon a run whose call is suspended (server shutdown):
 * the filter's abort/cancel drops its work; done() is not called.
 */
void
stage_cancel(struct stage_run *r)
{
	struct sluice_call *c = r->call;

	if (c != NULL) {
		if (c->state != CALL_DONE && c->filter->ops->abort != NULL)
			c->filter->ops->abort(c);
		c->state = CALL_DONE;
		call_release(c);
	}
	if (r->decided != NULL)
		call_release(r->decided);
	if (r->telling)
		r->subj->rcpt_refusal = NULL;
	if (r->handle != NULL)
		*r->handle = NULL;
	pipeline_unref(r->p);
	free(r);
}
