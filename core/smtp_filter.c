/*
 * smtp_filter.c - a session's side of the filter pipeline: what filters
 * see of it (its struct filter_subject), running a stage and going on
 * with the verdict, and the connect (with reverse DNS) and disconnect
 * stages.
 *
 * A stage with no filter costs nothing: the continuation runs at once.
 * Otherwise the session waits (input stays buffered) until the chain is
 * decided, then the continuation replies; several waits may nest (the
 * message stage leads to the queue commit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>

#include "conf.h"
#include "dns.h"
#include "filter.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "loop.h"
#include "server.h"
#include "smtp_session.h"
#include "util.h"

#define SID(s)	((unsigned long long)(s)->id)

struct stage_ctx {
	struct smtp_session *s;
	session_stage_fn next;
};

void
smtp_filter_subject_init(struct smtp_session *s)
{
	struct filter_subject *f = &s->subj;

	memset(f, 0, sizeof(*f));
	f->worker = s->worker;
	f->session_id = s->id;
	f->listener = s->listener->name;
	f->daemon_addr = s->listener->address;
	f->daemon_port = s->listener->port;
	f->client_addr = s->addr;
	f->client_port = s->port;
	f->session_tags = &s->tags;
}

/* load_message - what filters read of the message, read when they ask */
static int
load_message(struct filter_subject *f)
{
	struct smtp_session *s = f->msg_owner;
	struct smtp_tx *tx = s->tx;
	char *data;
	size_t len;

	if (tx == NULL || qwriter_read_all(tx->msg, &data, &len) == -1)
		return -1;
	message_init(&tx->message, data, len);
	tx->have_message = 1;
	f->msg = &tx->message;
	return 0;
}

/* subject_refresh - the subject follows the session's current state */
static void
subject_refresh(struct smtp_session *s)
{
	struct filter_subject *f = &s->subj;
	struct smtp_tx *tx = s->tx;

	f->client_rdns = s->rdns;
	f->helo = s->helo;
	f->unknown_cmd = s->unknown_cmd;
	f->env = tx ? &tx->env : NULL;
	f->mp = tx ? &tx->mp : NULL;
	f->rcpt = tx ? tx->rcpt : NULL;
	f->rp = tx && tx->rcpt ? &tx->rp : NULL;
	f->msg = tx && tx->have_message ? &tx->message : NULL;
	f->msg_load = tx && tx->content_done && !tx->have_message ?
	    load_message : NULL;
	f->msg_owner = s;
	f->msg_size = tx && tx->msg ? (size_t)qwriter_size(tx->msg) : 0;
	f->tx_tags = tx ? &tx->env.tags : NULL;
}

static void
stage_done(void *arg, const struct verdict *v)
{
	struct stage_ctx *ctx = arg;
	struct smtp_session *s = ctx->s;
	session_stage_fn next = ctx->next;

	free(ctx);
	s->run_ctx = NULL;
	s->subj.modifiable = 0;
	if (!(s->flags & SS_DEAD))
		next(s, v);
	session_resume(s);
}

/*
 * stage_start - the continuation, and the session waits for it; NULL
 * when no filter runs (next() has been told continue)
 */
static struct stage_ctx *
stage_start(struct smtp_session *s, enum sluice_stage st, int runs,
    session_stage_fn next)
{
	static const struct verdict cont;
	struct stage_ctx *ctx;

	if (!runs) {
		next(s, &cont);
		return NULL;
	}
	subject_refresh(s);
	s->subj.modifiable = (st == SLUICE_ON_MESSAGE);
	ctx = xmalloc(sizeof(*ctx));
	ctx->s = s;
	ctx->next = next;
	session_wait(s);
	s->run_ctx = ctx;
	return ctx;
}

void
session_stage(struct smtp_session *s, enum sluice_stage st,
    session_stage_fn next)
{
	struct stage_ctx *ctx = stage_start(s, st, pipeline_has(s->pipeline,
	    st), next);

	if (ctx != NULL)
		stage_run(s->pipeline, st, &s->subj, stage_done, ctx, &s->run);
}

void
session_stage_refused_rcpt(struct smtp_session *s, const char *reply,
    session_stage_fn next)
{
	struct stage_ctx *ctx = stage_start(s, SLUICE_ON_RCPT,
	    pipeline_sees_refused_rcpts(s->pipeline), next);

	if (ctx != NULL)
		stage_run_refused_rcpt(s->pipeline, &s->subj, reply,
		    stage_done, ctx, &s->run);
}

int
session_refuse(struct smtp_session *s, enum sluice_stage st,
    const struct verdict *v)
{
	char reply[VERDICT_TEXT_LEN + 32];

	switch (v->kind) {
	case SLUICE_CONTINUE:
	case SLUICE_ACCEPT:
		return 0;
	case SLUICE_DISCARD:
	case SLUICE_QUARANTINE:
		/* before MAIL: for every transaction of the session */
		if (s->tx == NULL)
			s->hold = v->kind;
		else if (v->kind == SLUICE_DISCARD)
			s->tx->discard = 1;
		else
			s->tx->env.quarantine = 1;
		log_info("qid=%s session=%016llx event=%s stage=%s filter=%s",
		    s->tx ? s->tx->env.id : "-", SID(s), verdict_name(v->kind),
		    stage_name(st), v->filter ? v->filter : "-");
		return 0;
	default:
		break;
	}
	if (verdict_multiline(v)) {	/* a milter's own lines, checked */
		session_reply_raw(s, v->reply, strlen(v->reply));
		session_reply_raw(s, "\r\n", 2);
		snprintf(reply, sizeof(reply), "%s", v->reply);
	} else {
		verdict_reply(v, st, reply, sizeof(reply));
		session_reply(s, "%s", reply);
	}
	metrics_refusal(stage_name(st), v->filter ? v->filter : "filter",
	    reply);
	log_info("qid=%s session=%016llx event=reject stage=%s filter=%s "
	    "reply=%s", s->tx ? s->tx->env.id : "-", SID(s), stage_name(st),
	    v->filter ? v->filter : "-", log_q(reply));
	if (v->kind == SLUICE_DISCONNECT || strncmp(reply, "421", 3) == 0)
		session_close(s, "closed by filter");
	return 1;
}

static void
connect_done(struct smtp_session *s, const struct verdict *v)
{
	if (session_refuse(s, SLUICE_ON_CONNECT, v)) {
		session_close(s, "refused at connect by filter");
		return;
	}
	smtp_greet(s);
}

static void
rdns_done(const struct dns_result *r, void *arg)
{
	struct smtp_session *s = arg;

	s->rdns_query = NULL;
	s->rdns = xstrdup(r->status == DNS_OK && r->nrrs > 0 ?
	    r->rrs[0].text : "unknown");
	if (!(s->flags & SS_DEAD))
		session_stage(s, SLUICE_ON_CONNECT, connect_done);
	session_resume(s);
}

/*
 * smtp_filter_connect - with filters, look the client's name up first (the
 * hosts file, then DNS: the resolver's timeout bounds the wait), then the
 * connect stage; the banner comes when they let it.
 */
void
smtp_filter_connect(struct smtp_session *s)
{
	if (s->pipeline == NULL || s->pipeline->n == 0) {
		smtp_greet(s);
		return;
	}
	if (s->worker->dns == NULL) {
		s->rdns = xstrdup("unknown");
		session_stage(s, SLUICE_ON_CONNECT, connect_done);
		return;
	}
	session_wait(s);		/* not an IP client: "unknown" */
	s->rdns_query = dns_query_addr(s->worker->dns,
	    (const struct sockaddr *)&s->peer, rdns_done, s);
}

static void
disconnect_done(void *arg, const struct verdict *v)
{
	(void)v;
	session_resume(arg);
}

/*
 * smtp_filter_disconnect - from session_destroy(): 1 when the disconnect
 * stage started and holds the session; it is destroyed when the stage is
 * done. At server teardown (session_abort) the stage is skipped.
 */
int
smtp_filter_disconnect(struct smtp_session *s)
{
	if (s->rdns_query != NULL) {
		dns_cancel(s->rdns_query);
		s->rdns_query = NULL;
	}
	if (s->disconnect_done || !pipeline_has(s->pipeline,
	    SLUICE_ON_DISCONNECT))
		return 0;
	s->disconnect_done = 1;
	subject_refresh(s);
	session_wait(s);
	stage_run(s->pipeline, SLUICE_ON_DISCONNECT, &s->subj, disconnect_done,
	    s, &s->run);
	return 1;
}

/*
 * smtp_filter_cancel - the server stops: a suspended stage is abandoned
 * (its filters' cancel/abort run), an rDNS lookup is dropped, and the
 * holds they had on the session are given back.
 */
void
smtp_filter_cancel(struct smtp_session *s)
{
	if (s->run != NULL) {
		stage_cancel(s->run);		/* sets s->run to NULL */
		free(s->run_ctx);
		s->run_ctx = NULL;
		if (--s->jobs == 0)
			s->flags &= ~SS_WAITING;
	}
	if (s->rdns_query != NULL) {
		dns_cancel(s->rdns_query);
		s->rdns_query = NULL;
		if (--s->jobs == 0)
			s->flags &= ~SS_WAITING;
	}
}
