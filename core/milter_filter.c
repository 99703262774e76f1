/*
 * milter_filter.c - `milter:` pipeline entries: the filter kind, and the
 * events of the stages before the message (connect, helo, mail, rcpt,
 * data), the end of a transaction and of the session.
 *
 * Stage to event: connect opens the connection (connect, negotiate) and
 * sends CONNECT; helo HELO (after ABORT when a transaction is open);
 * mail MAIL; rcpt RCPT; data DATA; message the headers, body and end of
 * message (milter_message.c); disconnect QUIT. Each is preceded by its
 * macros, skipped when the filter asked (NO* steps) or its version lacks
 * it, and not waited for when it asked for no reply (NR_*).
 *
 * Replies to verdicts: continue -> continue; accept -> continue, and this
 * milter hears nothing more of the session (at connect, helo) or of the
 * message (later) - a milter's accept speaks for itself only, so the
 * filters after it still run; reject, tempfail, a reply code (421 means
 * disconnect), discard -> the same verdict; shutdown and conn-fail ->
 * disconnect. At rcpt a refusal concerns that recipient only. A milter
 * that fails (unreachable, timeout, broken packet, an action it did not
 * negotiate) gets its default_action now and for the rest of the session.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf.h"
#include "conf_filter.h"
#include "envelope.h"
#include "filter.h"
#include "log.h"
#include "loop.h"
#include "milter_client.h"
#include "server.h"
#include "smtp_params.h"
#include "smtp_reply.h"
#include "util.h"

/* The whole of one call may not outlast this; each wait has its own. */
#define MILTER_CALL_LIMIT	3600

static int
milter_load(struct filter *f, char *err, size_t errlen)
{
	const struct conf_filter *cf = f->conf;
	struct milter_def *d = xcalloc(1, sizeof(*d));

	if (milter_addr_parse(cf->target, &d->addr, &d->addrlen, err,
	    errlen) == -1) {
		free(d);
		return -1;
	}
	d->conf = &cf->milter;
	for (int i = 0; i < MILTER_STAGES; i++)
		d->macros[i] = cf->milter.macros[i] ? cf->milter.macros[i] :
		    milter_default_macros(i);
	f->data = d;
	f->stages = SLUICE_STAGE(SLUICE_ON_CONNECT) |
	    SLUICE_STAGE(SLUICE_ON_HELO) | SLUICE_STAGE(SLUICE_ON_MAIL) |
	    SLUICE_STAGE(SLUICE_ON_RCPT) | SLUICE_STAGE(SLUICE_ON_DATA) |
	    SLUICE_STAGE(SLUICE_ON_MESSAGE) |
	    SLUICE_STAGE(SLUICE_ON_DISCONNECT) |
	    SLUICE_STAGE(STAGE_UNKNOWN_CMD);
	f->timeout_s = MILTER_CALL_LIMIT;
	return 0;
}

static void
milter_unload(struct filter *f)
{
	free(f->data);
	f->data = NULL;
}

int
milter_skips(const struct milter_sess *ms, uint32_t no_flag)
{
	return (ms->protocol & no_flag) != 0;
}

int
milter_no_reply(const struct milter_sess *ms, uint32_t nr_flag)
{
	return (ms->protocol & nr_flag) != 0;
}

void
milter_call_done(struct milter_sess *ms)
{
	struct sluice_call *c = ms->call;

	ms->call = NULL;
	if (c != NULL)
		call_finish(c);
}

/* scope_closed - the filter decided the session or the message */
static void
scope_closed(struct milter_sess *ms, enum sluice_stage st)
{
	const struct verdict *v = &ms->call->verdict;

	if (st == SLUICE_ON_CONNECT || st == SLUICE_ON_HELO) {
		ms->done = 1;
		milter_close(ms);	/* it wants nothing more */
		if (v->kind == SLUICE_CONTINUE)
			return;
		/* a refusal holds for every later command (as Postfix):
		   saying HELO again does not get around it */
		ms->refused = *v;
		ms->refused.reply = NULL;	/* the call's, freed with it */
	} else if (st != SLUICE_ON_RCPT && st != STAGE_UNKNOWN_CMD)
		ms->tx_done = 1;
}

/*
 * reply_code - a REPLYCODE packet as a verdict: the class gives reject or
 * tempfail (421: disconnect); "%%" becomes "%" as in Postfix; one line
 * goes into code/enhanced/text, several are kept whole in reply.
 */
static void
reply_code(struct sluice_call *c, const struct milter_reply *r)
{
	enum sluice_verdict v = r->rcode / 100 == 5 ? SLUICE_REJECT :
	    r->rcode == 421 ? SLUICE_DISCONNECT : SLUICE_TEMPFAIL;
	char *t = xstrdup(r->text), *o = t;
	struct smtp_reply one;
	const char *why;

	for (const char *p = r->text; *p; p++) {
		*o++ = *p;
		if (p[0] == '%' && p[1] == '%')
			p++;
	}
	*o = '\0';
	if (strstr(t, "\r\n") != NULL) {	/* several lines */
		call_set_verdict(c, v, r->rcode, NULL, NULL);
		c->verdict.reply = call_keep(c, t);
		snprintf(c->verdict.text, sizeof(c->verdict.text), "%s",
		    t + 4);
		return;
	}
	smtp_reply_init(&one, 0);	/* code, enhanced code, text */
	if (smtp_reply_feed(&one, t, strlen(t), &why) == REPLY_DONE)
		call_set_verdict(c, v, r->rcode, one.enhanced, one.text);
	else				/* checked by milter_reply_parse */
		call_set_verdict(c, v, r->rcode, NULL, NULL);
	smtp_reply_clear(&one);
	free(t);
}

int
milter_decide(struct milter_sess *ms, const struct milter_reply *r)
{
	struct sluice_call *c = ms->call;
	enum sluice_stage st = c->stage;

	switch (r->code) {
	case SMFIR_CONTINUE:
		return 1;		/* the verdict stays continue */
	case SMFIR_ACCEPT:
		scope_closed(ms, st);
		return 1;
	case SMFIR_REJECT:
		call_set_verdict(c, SLUICE_REJECT, 0, NULL, NULL);
		break;
	case SMFIR_TEMPFAIL:
		call_set_verdict(c, SLUICE_TEMPFAIL, 0, NULL, NULL);
		break;
	case SMFIR_REPLYCODE:
		reply_code(c, r);
		break;
	case SMFIR_DISCARD:
		if (st == SLUICE_ON_CONNECT || st == SLUICE_ON_HELO ||
		    st == STAGE_UNKNOWN_CMD) {
			log_warnx("qid=- session=%016llx event=milter-ignored "
			    "filter=%s reason=\"discard at %s\"",
			    (unsigned long long)c->subj->session_id,
			    ms->filter->name, stage_name(st));
			return 1;
		}
		call_set_verdict(c, SLUICE_DISCARD, 0, NULL, NULL);
		break;
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		call_set_verdict(c, SLUICE_DISCONNECT, 0, NULL, NULL);
		ms->done = 1;
		milter_close(ms);
		return 1;
	default:
		return 0;
	}
	scope_closed(ms, st);
	return 1;
}

/* event_reply - the reply to a connect .. data event */
static void
event_reply(struct milter_sess *ms, const struct milter_reply *r)
{
	char buf[64];

	if (r->code == SMFIR_QUARANTINE) {	/* Postfix takes it anywhere */
		if (ms->call->subj->env != NULL)
			ms->call->subj->env->quarantine = 1;
		return;				/* not final: keep reading */
	}
	if (!milter_decide(ms, r)) {
		snprintf(buf, sizeof(buf), "unexpected reply '%c' to a "
		    "%s event", r->code, stage_name(ms->call->stage));
		milter_fail(ms, buf);
		return;
	}
	milter_call_done(ms);
}

/*
 * refused_reply - the answer about a recipient refused before this milter
 * (SMFIP_RCPT_REJ): checked, then ignored, as Postfix does: the recipient
 * stays refused whatever the milter says
 */
static void
refused_reply(struct milter_sess *ms, const struct milter_reply *r)
{
	char buf[80];

	switch (r->code) {
	case SMFIR_QUARANTINE:
		return;				/* not final: keep reading */
	case SMFIR_CONTINUE:
	case SMFIR_ACCEPT:
	case SMFIR_REJECT:
	case SMFIR_TEMPFAIL:
	case SMFIR_REPLYCODE:
	case SMFIR_DISCARD:
		break;
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		ms->done = 1;
		milter_close(ms);
		break;
	default:
		snprintf(buf, sizeof(buf), "unexpected reply '%c' to a "
		    "refused recipient", r->code);
		milter_fail(ms, buf);
		return;
	}
	milter_call_done(ms);
}

/* send_event_then - macros, then the event; wait for its reply with fn
   unless NR */
static void
send_event_then(struct milter_sess *ms, int cmd, int mstage,
    const struct milter_buf *b, uint32_t nr_flag, milter_reply_fn fn)
{
	if (milter_send_macros(ms, cmd, mstage) == -1 ||
	    milter_send(ms, b) == -1)
		return;			/* failed: the call is finished */
	if (milter_no_reply(ms, nr_flag))
		milter_call_done(ms);
	else
		milter_expect(ms, ms->def->conf->command_timeout, fn);
}

/* send_event - macros, then the event; wait for its reply unless NR */
static void
send_event(struct milter_sess *ms, int cmd, int mstage,
    const struct milter_buf *b, uint32_t nr_flag)
{
	send_event_then(ms, cmd, mstage, b, nr_flag, event_reply);
}

static int
family_of(const char *addr)
{
	if (addr == NULL || addr[0] == '\0')
		return MILTER_FAMILY_UNKNOWN;
	return strchr(addr, ':') != NULL ? MILTER_FAMILY_INET6 :
	    MILTER_FAMILY_INET;
}

static void
ev_connect(struct milter_sess *ms)
{
	struct filter_subject *s = ms->call->subj;
	unsigned char mem[1024];
	struct milter_buf b;
	char host[300];

	milter_buf_init(&b, mem, sizeof(mem));
	if (s->client_rdns != NULL && strcmp(s->client_rdns, "unknown") != 0)
		snprintf(host, sizeof(host), "%s", s->client_rdns);
	else
		snprintf(host, sizeof(host), "[%s]", s->client_addr);
	if (milter_skips(ms, SMFIP_NOCONNECT)) {
		milter_send_macros(ms, SMFIC_CONNECT, SMFIM_CONNECT);
		milter_call_done(ms);
		return;
	}
	milter_put_connect(&b, milter_cstr(host), family_of(s->client_addr),
	    (uint16_t)s->client_port, milter_cstr(s->client_addr));
	send_event(ms, SMFIC_CONNECT, SMFIM_CONNECT, &b, SMFIP_NR_CONN);
}

static void
send_abort(struct milter_sess *ms)
{
	unsigned char mem[8];
	struct milter_buf b;

	milter_message_reset(ms);
	if (ms->in_tx && ms->state == MS_OPEN) {
		milter_buf_init(&b, mem, sizeof(mem));
		milter_put_abort(&b);
		milter_hold(ms, &b);	/* goes out with the next packet */
	}
	ms->in_tx = 0;
	ms->tx_done = 0;
}

static void
ev_helo(struct milter_sess *ms)
{
	struct filter_subject *s = ms->call->subj;
	unsigned char mem[1200];
	struct milter_buf b;

	if (ms->helo_sent)
		send_abort(ms);		/* a repeated HELO resets, as Postfix */
	ms->helo_sent = 1;
	milter_buf_init(&b, mem, sizeof(mem));
	if (milter_skips(ms, SMFIP_NOHELO) || s->helo == NULL ||
	    milter_put_helo(&b, milter_cstr(s->helo)) == -1) {
		milter_send_macros(ms, SMFIC_HELO, SMFIM_HELO);
		milter_call_done(ms);
		return;
	}
	send_event(ms, SMFIC_HELO, SMFIM_HELO, &b, SMFIP_NR_HELO);
}

/*
 * mail_args, rcpt_args - the address as given ("<a@b>", "<>") and the
 * ESMTP parameters, one string each, as MAIL and RCPT carry them
 */
#define ARG_MAX	600

static size_t
mail_args(const struct filter_subject *s, char bufs[][ARG_MAX],
    struct milter_str *argv)
{
	const struct mail_params *mp = s->mp;
	size_t n = 0;

	snprintf(bufs[n++], ARG_MAX, "<%s>", s->env->sender);
	if (mp != NULL) {
		if (mp->has_size)
			snprintf(bufs[n++], ARG_MAX, "SIZE=%llu",
			    (unsigned long long)mp->size);
		if (smtp_body_name(mp->body) != NULL)
			snprintf(bufs[n++], ARG_MAX, "BODY=%s",
			    smtp_body_name(mp->body));
		if (mp->smtputf8)
			snprintf(bufs[n++], ARG_MAX, "SMTPUTF8");
		if (smtp_ret_name(mp->ret) != NULL)
			snprintf(bufs[n++], ARG_MAX, "RET=%s",
			    smtp_ret_name(mp->ret));
		if (mp->envid[0])
			snprintf(bufs[n++], ARG_MAX, "ENVID=%s", mp->envid);
	}
	for (size_t i = 0; i < n; i++)
		argv[i] = milter_cstr(bufs[i]);
	return n;
}

static size_t
rcpt_args(const struct filter_subject *s, char bufs[][ARG_MAX],
    struct milter_str *argv)
{
	const struct rcpt_params *rp = s->rp;
	char notify[64];
	size_t n = 0;

	snprintf(bufs[n++], ARG_MAX, "<%s>", s->rcpt);
	if (rp != NULL && rp->notify)
		snprintf(bufs[n++], ARG_MAX, "NOTIFY=%s",
		    smtp_notify_text(rp->notify, notify, sizeof(notify)));
	if (rp != NULL && rp->orcpt[0])
		snprintf(bufs[n++], ARG_MAX, "ORCPT=%s", rp->orcpt);
	for (size_t i = 0; i < n; i++)
		argv[i] = milter_cstr(bufs[i]);
	return n;
}

static void
ev_mail(struct milter_sess *ms)
{
	unsigned char mem[4096];
	char bufs[8][ARG_MAX];
	struct milter_str argv[8];
	struct milter_buf b;
	size_t n;

	send_abort(ms);			/* a stale transaction, if any */
	ms->in_tx = 1;
	milter_buf_init(&b, mem, sizeof(mem));
	n = mail_args(ms->call->subj, bufs, argv);
	if (milter_skips(ms, SMFIP_NOMAIL) ||
	    milter_put_mail(&b, argv, n) == -1) {
		milter_send_macros(ms, SMFIC_MAIL, SMFIM_ENVFROM);
		milter_call_done(ms);
		return;
	}
	send_event(ms, SMFIC_MAIL, SMFIM_ENVFROM, &b, SMFIP_NR_MAIL);
}

/*
 * ev_rcpt - RCPT; for a recipient refused before this milter
 * (subj->rcpt_refusal) only when it asked for those (SMFIP_RCPT_REJ), with
 * the refusal in the macros and its answer ignored
 */
static void
ev_rcpt(struct milter_sess *ms)
{
	unsigned char mem[4096];
	char bufs[8][ARG_MAX];
	struct milter_str argv[8];
	struct milter_buf b;
	size_t n;
	int refused = ms->call->subj->rcpt_refusal != NULL;

	if (refused && !(ms->protocol & SMFIP_RCPT_REJ)) {
		milter_call_done(ms);
		return;
	}
	milter_buf_init(&b, mem, sizeof(mem));
	n = rcpt_args(ms->call->subj, bufs, argv);
	if (milter_skips(ms, SMFIP_NORCPT) ||
	    milter_put_rcpt(&b, argv, n) == -1) {
		if (!refused)
			milter_send_macros(ms, SMFIC_RCPT, SMFIM_ENVRCPT);
		milter_call_done(ms);
		return;
	}
	send_event_then(ms, SMFIC_RCPT, SMFIM_ENVRCPT, &b, SMFIP_NR_RCPT,
	    refused ? refused_reply : event_reply);
}

static void
ev_data(struct milter_sess *ms)
{
	unsigned char mem[8];
	struct milter_buf b;

	if (ms->version < 4 || milter_skips(ms, SMFIP_NODATA)) {
		if (ms->version >= 4)
			milter_send_macros(ms, SMFIC_DATA, SMFIM_DATA);
		milter_call_done(ms);
		return;
	}
	milter_buf_init(&b, mem, sizeof(mem));
	milter_put_data(&b);
	send_event(ms, SMFIC_DATA, SMFIM_DATA, &b, SMFIP_NR_DATA);
}

/*
 * ev_unknown - an SMTP command sluiced does not know (v3 and later, unless
 * the filter asked for NOUNKNOWN), the whole line; no macros, as with
 * Postfix's empty milter_unknown_command_macros
 */
static void
ev_unknown(struct milter_sess *ms)
{
	const char *line = ms->call->subj->unknown_cmd;
	size_t cap = strlen(line) + 8;
	unsigned char *mem;
	struct milter_buf b;

	if (ms->version < 3 || milter_skips(ms, SMFIP_NOUNKNOWN)) {
		milter_call_done(ms);
		return;
	}
	mem = xmalloc(cap);
	milter_buf_init(&b, mem, cap);
	if (milter_put_unknown(&b, milter_cstr(line)) == -1)
		milter_call_done(ms);		/* not sendable */
	else
		send_event(ms, SMFIC_UNKNOWN, SMFIM_NONE, &b, SMFIP_NR_UNKN);
	free(mem);
}

/* failed_before - the default action again, quietly, for a broken one */
static void
failed_before(struct sluice_call *c)
{
	enum sluice_verdict v = c->filter->on_error;

	if (v == SLUICE_QUARANTINE && c->subj->env == NULL)
		v = SLUICE_CONTINUE;	/* said once at connect: s->hold */
	call_set_verdict(c, v, 0, NULL, NULL);
	call_finish(c);
}

static void
milter_call(struct sluice_call *c)
{
	void **slot = call_state(c);
	struct milter_sess *ms = *slot;

	if (c->stage == SLUICE_ON_DISCONNECT) {
		if (ms != NULL) {
			send_abort(ms);
			milter_close(ms);
		}
		call_finish(c);
		return;
	}
	if (ms == NULL) {
		if (c->stage != SLUICE_ON_CONNECT) {
			call_finish(c);	/* not there at connect: not now */
			return;
		}
		ms = *slot = xcalloc(1, sizeof(*ms));
		ms->filter = c->filter;
		ms->def = c->filter->data;
		ms->base = loop_base(c->subj->worker->loop);
		ms->session_id = c->subj->session_id;
		ms->call = c;
		milter_open(ms, ev_connect);
		return;
	}
	if (ms->failed) {
		failed_before(c);
		return;
	}
	if (ms->refused.kind != SLUICE_CONTINUE) {
		if (c->stage != SLUICE_ON_HELO)
			c->verdict = ms->refused;
		call_finish(c);
		return;
	}
	if (ms->done || ms->state != MS_OPEN ||
	    (ms->tx_done && c->stage != SLUICE_ON_HELO &&
	    c->stage != SLUICE_ON_MAIL)) {
		call_finish(c);
		return;
	}
	ms->call = c;
	switch (c->stage) {
	case SLUICE_ON_HELO:
		ev_helo(ms);
		break;
	case SLUICE_ON_MAIL:
		ev_mail(ms);
		break;
	case SLUICE_ON_RCPT:
		ev_rcpt(ms);
		break;
	case SLUICE_ON_DATA:
		ev_data(ms);
		break;
	case SLUICE_ON_MESSAGE:
		milter_message_start(ms);
		break;
	case STAGE_UNKNOWN_CMD:
		ev_unknown(ms);
		break;
	default:
		milter_call_done(ms);
	}
}

/* milter_abort - the call is abandoned: the exchange cannot be resumed */
static void
milter_abort_call(struct sluice_call *c)
{
	struct milter_sess *ms = *call_state(c);

	if (ms == NULL || ms->call != c)
		return;
	ms->call = NULL;
	ms->failed = 1;
	milter_close(ms);
	milter_message_reset(ms);
}

static void
milter_tx_end(struct filter *f, void *state)
{
	struct milter_sess *ms = state;

	(void)f;
	if (!ms->failed && !ms->done)
		send_abort(ms);
	else {
		ms->in_tx = 0;
		ms->tx_done = 0;
	}
}

static void
milter_session_end(struct filter *f, void *state)
{
	(void)f;
	milter_sess_free(state);
}

const struct filter_ops filter_milter_ops = {
	.kind = "milter",
	.load = milter_load,
	.unload = milter_unload,
	.call = milter_call,
	.abort = milter_abort_call,
	.tx_end = milter_tx_end,
	.session_end = milter_session_end,
	.sees_refused_rcpts = 1,
};
