/*
 * attempt_filter.c - the filter pipeline's delivery stages for one
 * attempt (attempt_int.h): deliver once before routing, then delivered,
 * deferred or bounced for each recipient that got a result, one after the
 * other (a filter may suspend: the chain goes on from its callback).
 * What each verdict means is in plugins/sluice_plugin.h.
 * Threads: the queue manager's loop, which has its own filter instances
 * (server.qmgr_worker).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attempt_int.h"
#include "filter.h"
#include "log.h"
#include "message.h"
#include "server.h"
#include "util.h"

/* load_message - the message for filters that read it, from the queue */
static int
load_message(struct filter_subject *subj)
{
	struct attempt *a = subj->msg_owner;
	size_t len = (size_t)a->m.msg_len;
	char *data = xmalloc(len + 1);

	if (pread(a->m.fd, data, len, 0) != (ssize_t)len) {
		free(data);
		return -1;
	}
	data[len] = '\0';
	message_init(&a->msg, data, len);
	a->have_msg = 1;
	subj->msg = &a->msg;
	return 0;
}

static void
subject_init(struct attempt *a)
{
	struct filter_subject *f = &a->subj;
	const struct envelope *e = &a->m.env;

	memset(f, 0, sizeof(*f));
	f->worker = &server.qmgr_worker;
	f->listener = e->listener;
	f->client_addr = e->client_addr;
	f->client_port = e->client_port;
	f->helo = e->helo;
	f->env = &a->m.env;
	f->msg_load = load_message;
	f->msg_owner = a;
	f->msg_size = (size_t)a->m.msg_len;
	f->session_tags = &a->stags;
	f->tx_tags = &a->m.env.tags;
	f->dl_attempts = a->st.attempts;
}

static void
verdict_text(const struct verdict *v, enum sluice_stage st, const char *what,
    char *buf, size_t len)
{
	char reply[VERDICT_TEXT_LEN + 32];
	const char *p = reply;

	verdict_reply(v, st, reply, sizeof(reply));
	p += strcspn(p, " ");			/* drop the reply code */
	p += *p == ' ';
	snprintf(buf, len, "%.*s %s by filter %s: %s",
	    (int)strcspn(p, " "), p, what, v->filter ? v->filter : "?",
	    p[strcspn(p, " ")] ? p + strcspn(p, " ") + 1 : "");
}

/* deliver_done - the deliver stage decided for every pending recipient */
static void
deliver_done(void *arg, const struct verdict *v)
{
	struct attempt *a = arg;
	char text[RESULT_TEXT_LEN];
	enum deliver_result r;

	switch (v->kind) {
	case SLUICE_REJECT:
		verdict_text(v, SLUICE_ON_DELIVER, "rejected", text,
		    sizeof(text));
		r = DELIVER_PERM;
		break;
	case SLUICE_TEMPFAIL:
		verdict_text(v, SLUICE_ON_DELIVER, "deferred", text,
		    sizeof(text));
		r = DELIVER_TEMP;
		break;
	case SLUICE_DISCARD:
		snprintf(text, sizeof(text), "2.0.0 discarded by filter %s",
		    v->filter ? v->filter : "?");
		r = DELIVER_OK;
		break;
	case SLUICE_QUARANTINE:
		a->quarantine = 1;
		log_info("qid=%s event=quarantine stage=deliver filter=%s",
		    a->id, log_q(v->filter ? v->filter : "?"));
		a->next(a);
		return;
	default:
		a->next(a);
		return;
	}
	a->decided = 1;
	for (size_t i = 0; i < a->n; i++)
		if (a->st.rcpts[i].state == RCPT_PENDING) {
			rcpt_result_set(&a->res[i], r, "%s", text);
			/* dropped on purpose: not even a success DSN */
			a->no_dsn[i] = v->kind == SLUICE_DISCARD;
		}
	a->next(a);
}

void
attempt_filter_deliver(struct attempt *a, void (*next)(struct attempt *))
{
	a->next = next;
	a->pipe = pipeline_current();
	if (!pipeline_has(a->pipe, SLUICE_ON_DELIVER)) {
		next(a);
		return;
	}
	subject_init(a);
	stage_run(a->pipe, SLUICE_ON_DELIVER, &a->subj, deliver_done, a,
	    NULL);
}

static void	result_next(struct attempt *);

static enum sluice_stage
stage_of(const struct rcpt_result *r)
{
	return r->result == DELIVER_OK ? SLUICE_ON_DELIVERED :
	    r->result == DELIVER_TEMP ? SLUICE_ON_DEFERRED : SLUICE_ON_BOUNCED;
}

static void
result_done(void *arg, const struct verdict *v)
{
	struct attempt *a = arg;
	size_t i = a->cur;
	struct rcpt_result *r = &a->res[i];
	char text[RESULT_TEXT_LEN];
	const char *t;

	if (stage_of(r) == SLUICE_ON_DEFERRED) {
		if ((t = tags_get(&a->m.env.tags, "retry_in")) != NULL) {
			unsigned long s = strtoul(t, NULL, 10);
			if (s > 0 && s < 366UL * 86400 && (a->retry_in == 0 ||
			    s < a->retry_in))
				a->retry_in = (unsigned)s;
		}
		if (v->kind == SLUICE_REJECT) {
			verdict_text(v, SLUICE_ON_DEFERRED, "failed", text,
			    sizeof(text));
			rcpt_result_set(r, DELIVER_PERM, "%s", text);
			rcpt_result_remote(r, r->remote, NULL);
			a->subj.dl_result = "bounced";
			a->subj.dl_reason = r->text;	/* the new strings */
			a->subj.dl_remote = r->remote;
			a->subj.dl_reply = r->diag;
			stage_run(a->pipe, SLUICE_ON_BOUNCED, &a->subj,
			    result_done, a, NULL);
			return;
		}
	} else if (stage_of(r) == SLUICE_ON_BOUNCED) {
		if (v->kind == SLUICE_DISCARD)
			a->no_dsn[i] = 1;
		if ((t = tags_get(&a->m.env.tags, "dsn_text")) != NULL) {
			snprintf(text, sizeof(text), "%.*s %s",
			    (int)strcspn(r->text, " "), r->text, t);
			rcpt_result_set(r, DELIVER_PERM, "%s", text);
			rcpt_result_remote(r, r->remote, NULL);
		}
	}
	a->cur++;
	result_next(a);
}

/* result_next - the stage of the next recipient with a result */
static void
result_next(struct attempt *a)
{
	static const char *const names[] = { "delivered", "deferred",
	    "bounced" };

	for (; a->cur < a->n; a->cur++) {
		struct rcpt_result *r = &a->res[a->cur];
		enum sluice_stage st;
		if (!a->tried[a->cur])
			continue;
		st = stage_of(r);
		if (!pipeline_has(a->pipe, st))
			continue;
		tags_del(&a->m.env.tags, "retry_in");
		tags_del(&a->m.env.tags, "dsn_text");
		a->subj.rcpt = a->m.env.rcpts[a->cur].addr;
		a->subj.dl_result = names[r->result];
		a->subj.dl_reason = r->text;
		a->subj.dl_remote = r->remote;
		a->subj.dl_reply = r->diag;
		stage_run(a->pipe, st, &a->subj, result_done, a, NULL);
		return;
	}
	a->next(a);
}

void
attempt_filter_results(struct attempt *a, void (*next)(struct attempt *))
{
	a->next = next;
	a->cur = 0;
	if (!pipeline_has(a->pipe, SLUICE_ON_DELIVERED) &&
	    !pipeline_has(a->pipe, SLUICE_ON_DEFERRED) &&
	    !pipeline_has(a->pipe, SLUICE_ON_BOUNCED)) {
		next(a);
		return;
	}
	if (a->subj.worker == NULL)
		subject_init(a);
	result_next(a);
}
