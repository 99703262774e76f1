/*
 * milter_message.c - the message stage of a milter: every header field
 * (HEADER), end of headers (EOH), the body in chunks (BODY), end of
 * message (BODYEOB), then the modifications the filter asks for and its
 * final word.
 *
 * The filter sees the message as the earlier filters left it (header
 * edits, a replaced body), without our own Received: field, as Postfix
 * and Sendmail hide theirs. Header values go as written after the colon:
 * folds as LF + blank, one leading space removed unless the filter
 * negotiated HDR_LEADSPC. Modifications are kept until the final reply
 * and applied only when it lets the message through (continue, accept),
 * in the order they came; a filter that breaks halfway changes nothing.
 * Index rules (milter-protocol.md 8.2): INSHEADER counts every field,
 * ours included, so 0 inserts above our Received:; CHGHEADER counts the
 * fields of that name the filter saw, from 1 (0 is taken as 1); an index
 * past the last adds the field. A modification the filter did not
 * negotiate is a protocol error (default action); one that does not
 * make sense (bad header name, bad address) is skipped with a warning.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "conf_filter.h"
#include "envelope.h"
#include "filter.h"
#include "filter_support.h"
#include "log.h"
#include "message.h"
#include "milter_client.h"
#include "sbuf.h"
#include "server.h"
#include "smtp_params.h"
#include "util.h"

#define QID(ms)	((ms)->call->subj->env ? (ms)->call->subj->env->id : "-")

/* is_ours - our own Received: field, which the data always starts with */
static int
is_ours(const struct message *m, size_t i)
{
	return m->hdrs[i].raw_len > 0 && m->hdrs[i].raw_off == 0 &&
	    strcasecmp(m->hdrs[i].name, "Received") == 0;
}

void
milter_message_reset(struct milter_sess *ms)
{
	for (size_t i = 0; i < ms->nmods; i++)
		free(ms->mods[i].data);
	free(ms->mods);
	ms->mods = NULL;
	ms->nmods = 0;
	ms->mods_bytes = 0;
	for (size_t i = 0; i < nitems(ms->mcache); i++) {
		free(ms->mcache[i].p);
		memset(&ms->mcache[i], 0, sizeof(ms->mcache[i]));
	}
	ms->quarantine = 0;
	free(ms->quarantine_why);
	ms->quarantine_why = NULL;
	ms->mstep = MM_DONE;
}

static void content_reply(struct milter_sess *, const struct milter_reply *);
static void eob_reply(struct milter_sess *, const struct milter_reply *);

/* send_header - 1 sent, 0 nothing left to send, -1 failed */
static int
send_header(struct milter_sess *ms, struct message *m)
{
	unsigned char *mem;
	struct milter_buf b;
	char *v;
	int rv;

	while (ms->hdr_i < m->nhdrs && is_ours(m, ms->hdr_i))
		ms->hdr_i++;
	if (ms->hdr_i >= m->nhdrs)
		return 0;
	v = message_field_milter(m, ms->hdr_i,
	    (ms->protocol & SMFIP_HDR_LEADSPC) != 0);
	size_t cap = 5 + strlen(m->hdrs[ms->hdr_i].name) + 1 + strlen(v) + 1;
	if (cap > MILTER_PACKET_MAX)
		cap = MILTER_PACKET_MAX;	/* the encoder refuses it */
	mem = xmalloc(cap);
	milter_buf_init(&b, mem, cap);
	if (milter_put_header(&b, milter_cstr(m->hdrs[ms->hdr_i].name),
	    milter_cstr(v)) == -1) {
		log_info("qid=%s event=milter-skip-header filter=%s field=%s "
		    "reason=%s", QID(ms), ms->filter->name,
		    log_q(m->hdrs[ms->hdr_i].name), log_q(b.why));
		rv = 2;			/* not sendable: the next one */
	} else
		rv = milter_send_macros(ms, SMFIC_HEADER, SMFIM_EOH) == -1 ||
		    milter_send(ms, &b) == -1 ? -1 : 1;
	ms->hdr_i++;
	free(v);
	free(mem);
	return rv;
}

static int
send_body_chunk(struct milter_sess *ms, struct message *m)
{
	size_t len, n;
	const char *body = message_body(m, &len);
	unsigned char *mem;
	struct milter_buf b;
	int rv;

	if (ms->body_off >= len)
		return 0;
	n = len - ms->body_off;
	if (n > MILTER_CHUNK_SIZE)
		n = MILTER_CHUNK_SIZE;
	mem = xmalloc(n + 5);
	milter_buf_init(&b, mem, n + 5);
	milter_put_body(&b, body + ms->body_off, n);
	ms->body_off += n;
	rv = milter_send_macros(ms, SMFIC_BODY, SMFIM_EOM) == -1 ||
	    milter_send(ms, &b) == -1 ? -1 : 1;
	free(mem);
	return rv;
}

static int
send_simple(struct milter_sess *ms, int cmd, int mstage)
{
	unsigned char mem[8];
	struct milter_buf b;

	milter_buf_init(&b, mem, sizeof(mem));
	if (cmd == SMFIC_EOH)
		milter_put_eoh(&b);
	else
		milter_put_eob(&b);
	return milter_send_macros(ms, cmd, mstage) == -1 ||
	    milter_send(ms, &b) == -1 ? -1 : 1;
}

/* step - send until an event needs its reply; the message is loaded */
static void
step(struct milter_sess *ms)
{
	struct message *m = ms->call->subj->msg;
	unsigned t = ms->def->conf->content_timeout;
	int rv;

	for (;;) {
		switch (ms->mstep) {
		case MM_HEADERS:
			if (milter_skips(ms, SMFIP_NOHDRS) ||
			    (rv = send_header(ms, m)) == 0) {
				ms->mstep = MM_EOH;
				continue;
			}
			if (rv == -1)
				return;
			if (rv == 2 || milter_no_reply(ms, SMFIP_NR_HDR))
				continue;
			milter_expect(ms, t, content_reply);
			return;
		case MM_EOH:
			ms->mstep = MM_BODY;
			if (milter_skips(ms, SMFIP_NOEOH))
				continue;
			if (send_simple(ms, SMFIC_EOH, SMFIM_EOH) == -1)
				return;
			if (milter_no_reply(ms, SMFIP_NR_EOH))
				continue;
			milter_expect(ms, t, content_reply);
			return;
		case MM_BODY:
			if (milter_skips(ms, SMFIP_NOBODY) ||
			    (rv = send_body_chunk(ms, m)) == 0) {
				ms->mstep = MM_EOB;
				continue;
			}
			if (rv == -1)
				return;
			if (milter_no_reply(ms, SMFIP_NR_BODY))
				continue;
			milter_expect(ms, t, content_reply);
			return;
		case MM_EOB:
			ms->mstep = MM_DONE;
			if (send_simple(ms, SMFIC_BODYEOB, SMFIM_EOM) == -1)
				return;
			milter_expect(ms, t, eob_reply);
			return;
		case MM_DONE:
			return;
		}
	}
}

void
milter_message_start(struct milter_sess *ms)
{
	if (subject_msg(ms->call->subj) == NULL) {
		milter_fail(ms, "cannot read the message");
		return;
	}
	milter_message_reset(ms);
	ms->mstep = MM_HEADERS;
	ms->hdr_i = 0;
	ms->body_off = 0;
	step(ms);
}

static void
set_quarantine(struct milter_sess *ms, const char *why)
{
	ms->quarantine = 1;
	free(ms->quarantine_why);
	ms->quarantine_why = xstrdup(why ? why : "");
}

/* message_over - a decision before or at the end: the message is done */
static void
message_over(struct milter_sess *ms, const struct milter_reply *r)
{
	char buf[64];

	if (!milter_decide(ms, r)) {
		snprintf(buf, sizeof(buf), "unexpected reply '%c' to "
		    "message content", r->code);
		milter_fail(ms, buf);
		return;
	}
	ms->tx_done = 1;
	milter_message_reset(ms);
	milter_call_done(ms);
}

static void
content_reply(struct milter_sess *ms, const struct milter_reply *r)
{
	if (r->code == SMFIR_CONTINUE) {
		step(ms);
		return;
	}
	if (r->code == SMFIR_SKIP && ms->mstep == MM_BODY) {
		ms->mstep = MM_EOB;	/* no more body chunks */
		step(ms);
		return;
	}
	if (r->code == SMFIR_QUARANTINE) {
		set_quarantine(ms, r->text);
		return;
	}
	message_over(ms, r);
}

/* --- end of message: modifications --- */

/* raw_value - a filter's header value as the text after the colon */
static char *
raw_value(const struct milter_sess *ms, const char *v)
{
	char *out;

	if (ms->protocol & SMFIP_HDR_LEADSPC)
		return xstrdup(v);
	xasprintf(&out, " %s", v);
	return out;
}

/* change_header - CHGHEADER: nth (from 1) field of name the filter saw */
static int
change_header(struct milter_sess *ms, struct message *m,
    const struct milter_reply *r)
{
	size_t want = r->index ? r->index - 1 : 0, seen = 0, occ = 0;
	long found = -1;
	char *v;
	int rv;

	for (size_t i = 0; i < m->nhdrs; i++) {
		if (strcasecmp(m->hdrs[i].name, r->name) != 0)
			continue;
		if (!is_ours(m, i) && seen++ == want) {
			found = (long)occ;
			break;
		}
		occ++;
	}
	if (r->value[0] == '\0')
		return found < 0 ? 0 : message_change(m, r->name,
		    (size_t)found, NULL);
	v = raw_value(ms, r->value);
	rv = found < 0 ? message_insert_raw(m, m->nhdrs, r->name, v) :
	    message_change_raw(m, r->name, (size_t)found, v);
	free(v);
	return rv;
}

static int
insert_header(struct milter_sess *ms, struct message *m, size_t index,
    const struct milter_reply *r)
{
	char *v = raw_value(ms, r->value);
	int rv = message_insert_raw(m, index, r->name, v);

	free(v);
	return rv;
}

/* strip - "<a@b>" or "a@b" as a@b in buf */
static const char *
strip(const char *addr, char *buf, size_t len)
{
	size_t n = strlen(addr);

	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>')
		snprintf(buf, len, "%.*s", (int)(n - 2), addr + 1);
	else
		snprintf(buf, len, "%s", addr);
	return buf;
}

static int
add_rcpt(struct envelope *e, const char *addr, const char *args)
{
	struct rcpt_params rp;
	char a[1024], *copy;
	const char *bad;

	memset(&rp, 0, sizeof(rp));
	if (args != NULL) {
		copy = xstrdup(args);
		bad = smtp_params_rcpt(copy, e->smtputf8, &rp);
		free(copy);
		if (bad != NULL)
			return -1;
	}
	return filter_env_rcpt_add_params(e, strip(addr, a, sizeof(a)),
	    rp.orcpt[0] ? rp.orcpt : NULL, rp.notify);
}

static int
change_from(struct envelope *e, const char *addr, const char *args)
{
	struct mail_params mp;
	char a[1024], *copy;
	const char *bad;

	memset(&mp, 0, sizeof(mp));
	if (args != NULL) {
		copy = xstrdup(args);
		bad = smtp_params_mail(copy, &mp);
		free(copy);
		if (bad != NULL)
			return -1;
	}
	if (filter_env_sender(e, strip(addr, a, sizeof(a))) == -1)
		return -1;
	if (mp.ret)
		e->ret = mp.ret;
	if (mp.envid[0]) {
		free(e->envid);
		e->envid = xstrdup(mp.envid);
	}
	return 0;
}

static int
apply_one(struct milter_sess *ms, struct message *m, struct envelope *e,
    const struct milter_reply *r, struct sbuf *body, int *body_seen)
{
	char a[1024];

	switch (r->code) {
	case SMFIR_ADDHEADER:
		return insert_header(ms, m, m->nhdrs, r);
	case SMFIR_INSHEADER:
		return insert_header(ms, m, r->index, r);
	case SMFIR_CHGHEADER:
		return change_header(ms, m, r);
	case SMFIR_ADDRCPT:
		return add_rcpt(e, r->addr, NULL);
	case SMFIR_ADDRCPT_PAR:
		return add_rcpt(e, r->addr, r->args);
	case SMFIR_DELRCPT:
		filter_env_rcpt_delete(e, strip(r->addr, a, sizeof(a)));
		return 0;		/* not there: nothing to do */
	case SMFIR_CHGFROM:
		return change_from(e, r->addr, r->args);
	case SMFIR_REPLBODY:
		*body_seen = 1;
		sb_add(body, (const char *)r->body, r->bodylen);
		return 0;
	}
	return -1;
}

static void
apply_mods(struct milter_sess *ms)
{
	struct filter_subject *s = ms->call->subj;
	struct message *m = s->msg;
	struct sbuf body = { 0 };
	int body_seen = 0;
	size_t bad = 0;

	for (size_t i = 0; i < ms->nmods; i++) {
		struct milter_reply r;
		const char *why;

		if (milter_reply_parse(ms->mods[i].cmd, ms->mods[i].data,
		    ms->mods[i].len, &r, &why) == 0 &&
		    apply_one(ms, m, s->env, &r, &body, &body_seen) == 0)
			continue;
		if (bad++ == 0)		/* the first one, then a count */
			log_warnx("qid=%s event=milter-bad-change filter=%s "
			    "request=%c name=%s addr=%s", QID(ms),
			    ms->filter->name, ms->mods[i].cmd,
			    log_q(r.name ? r.name : "-"),
			    log_q(r.addr ? r.addr : "-"));
	}
	if (bad > 1)
		log_warnx("qid=%s event=milter-bad-change filter=%s count=%zu",
		    QID(ms), ms->filter->name, bad);
	if (body_seen)
		message_replace_body(m, body.p ? body.p : "", body.len);
	free(body.p);
	if (ms->quarantine) {
		s->env->quarantine = 1;
		log_info("qid=%s event=quarantine filter=%s reason=%s",
		    QID(ms), ms->filter->name, log_q(ms->quarantine_why));
	}
}

/* keep_mod - remember a modification until the final reply */
static int
keep_mod(struct milter_sess *ms, const struct milter_reply *r)
{
	const struct milter_packet *pkt = ms->pkt;
	uint32_t need = milter_reply_action(r->code);
	uint64_t limit = server.conf->limits.message_size ?
	    server.conf->limits.message_size + 1024 * 1024 : 1ULL << 31;
	char buf[96];

	if (need == 0 || !(ms->actions & need)) {
		snprintf(buf, sizeof(buf), "modification '%c' that the milter "
		    "did not negotiate", r->code);
		milter_fail(ms, buf);
		return -1;
	}
	if (ms->mods_bytes + pkt->len > limit) {
		milter_fail(ms, "modifications larger than the message limit");
		return -1;
	}
	if ((ms->nmods & (ms->nmods - 1)) == 0)
		ms->mods = xreallocarray(ms->mods, ms->nmods ? ms->nmods * 2 :
		    1, sizeof(*ms->mods));
	ms->mods[ms->nmods].cmd = r->code;
	ms->mods[ms->nmods].len = pkt->len;
	ms->mods[ms->nmods].data = xmalloc(pkt->len ? pkt->len : 1);
	memcpy(ms->mods[ms->nmods].data, pkt->data, pkt->len);
	ms->nmods++;
	ms->mods_bytes += pkt->len;
	return 0;
}

static void
eob_reply(struct milter_sess *ms, const struct milter_reply *r)
{
	if (milter_reply_action(r->code) != 0 && r->code != SMFIR_QUARANTINE) {
		keep_mod(ms, r);
		return;
	}
	if (r->code == SMFIR_QUARANTINE) {
		set_quarantine(ms, r->text);
		return;
	}
	if (r->code == SMFIR_CONTINUE || r->code == SMFIR_ACCEPT)
		apply_mods(ms);
	message_over(ms, r);
}
