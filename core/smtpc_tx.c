/*
 * smtpc_tx.c - one outbound transaction on a ready connection: MAIL,
 * RCPT for each recipient of the job, DATA, the dot-stuffed body, and the
 * final reply (one for SMTP, one per accepted recipient for LMTP).
 *
 * Every command expects one reply, in order: cmds[] lists what each reply
 * answers. With PIPELINING the envelope commands go out in one write
 * (RFC 2920); without it, one at a time. A refused MAIL decides every
 * recipient; a refused RCPT decides its own; a refused DATA decides the
 * accepted ones. After a transaction that did not end with the message
 * sent, RSET puts the connection back into a known state for reuse.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "server.h"
#include "smtp_data.h"
#include "smtpc_int.h"
#include "mime_7bit.h"
#include "util.h"

#define BODY_CHUNK	(64 * 1024)
#define BODY_QUEUED	(256 * 1024)	/* output buffered at most */

void
txn_free(struct tx *t)
{
	free(t->final);
	free(t->accepted);
	free(t->cmds);
	free(t->cmd_rcpt);
	free(t->conv);
	memset(t, 0, sizeof(*t));
}

/* addrs_need_smtputf8 - the envelope cannot be sent without SMTPUTF8 */
static int
addrs_need_smtputf8(const struct djob *job)
{
	const struct envelope *e = &job->msg->env;

	if (!str_is_ascii(e->sender))
		return 1;
	for (size_t i = 0; i < job->nrcpts; i++)
		if (!str_is_ascii(e->rcpts[job->rcpts[i]].addr))
			return 1;
	return 0;
}

/* header_8bit - the message's header section has a byte >= 0x80 */
static int
header_8bit(const struct qmsg *m)
{
	char buf[8192];
	uint64_t off = 0;
	int bol = 1;
	ssize_t k;

	while (off < m->msg_len) {
		size_t want = m->msg_len - off < sizeof(buf) ?
		    (size_t)(m->msg_len - off) : sizeof(buf);
		if ((k = pread(m->fd, buf, want, (off_t)off)) <= 0)
			return 0;
		for (ssize_t i = 0; i < k; i++) {
			unsigned char ch = (unsigned char)buf[i];
			if (ch >= 0x80)
				return 1;
			if (ch == '\n') {
				if (bol)
					return 0;	/* the empty line */
				bol = 1;
			} else if (ch != '\r')
				bol = 0;
		}
		off += (uint64_t)k;
	}
	return 0;
}

/*
 * smtputf8_check - whether MAIL FROM says SMTPUTF8 (the addresses need it,
 * or the client sent the message with it), or why the message cannot go
 * to this server at all (RFC 6531 3.2: UTF-8 addresses or header fields
 * to a server without SMTPUTF8); NULL when it can go
 */
static const char *
smtputf8_check(struct smtpc *c, const struct djob *job, int *say)
{
	int offered = (c->caps.flags & CAP_SMTPUTF8) != 0;
	int addrs = addrs_need_smtputf8(job);

	*say = offered && (addrs || job->msg->env.smtputf8);
	if (offered || (!addrs && !job->msg->env.smtputf8))
		return NULL;
	if (addrs)
		return "addresses";
	return header_8bit(job->msg) ? "header fields" : NULL;
}

/* body_len - the octets DATA sends (before dot-stuffing) */
static uint64_t
body_len(const struct tx *t)
{
	return t->conv != NULL ? t->conv_len : t->job->msg->msg_len;
}

/*
 * downgrade - an 8BITMIME message for a server without 8BITMIME goes as
 * 7 bit (RFC 6152 3): 8-bit bodies re-encoded quoted-printable; -1 when
 * the queue file cannot be read
 */
static int
downgrade(struct smtpc *c, const struct qmsg *m)
{
	size_t len = (size_t)m->msg_len;
	char *raw = xmalloc(len + 1);

	if (pread(m->fd, raw, len, 0) != (ssize_t)len) {
		free(raw);
		return -1;
	}
	c->tx.conv = mime_to_7bit(raw, len, &c->tx.conv_len);
	free(raw);
	return 0;
}

static void
push(struct tx *t, enum tx_cmd cmd, size_t rcpt)
{
	t->cmds[t->ncmds] = cmd;
	t->cmd_rcpt[t->ncmds++] = rcpt;
}

static void
send_mail(struct smtpc *c, int utf8)
{
	const struct envelope *e = &c->tx.job->msg->env;
	unsigned f = c->caps.flags;

	smtpc_send(c, "MAIL FROM:<%s>", e->sender);
	if (f & CAP_SIZE)
		smtpc_send(c, " SIZE=%llu",
		    (unsigned long long)body_len(&c->tx));
	if ((f & CAP_8BITMIME) && e->body == BODY_8BITMIME)
		smtpc_send(c, " BODY=8BITMIME");
	if (utf8 && (f & CAP_SMTPUTF8))
		smtpc_send(c, " SMTPUTF8");
	if (f & CAP_DSN) {
		if (e->ret != RET_UNSPEC)
			smtpc_send(c, " RET=%s", smtp_ret_name(e->ret));
		if (e->envid != NULL && e->envid[0])
			smtpc_send(c, " ENVID=%s", e->envid);
	}
	smtpc_send(c, "\r\n");
}

static void
send_rcpt(struct smtpc *c, size_t i)
{
	const struct envelope_rcpt *r =
	    &c->tx.job->msg->env.rcpts[c->tx.job->rcpts[i]];
	char buf[64];

	smtpc_send(c, "RCPT TO:<%s>", r->addr);
	if (c->caps.flags & CAP_DSN) {
		if (r->notify)
			smtpc_send(c, " NOTIFY=%s",
			    smtp_notify_text(r->notify, buf, sizeof(buf)));
		if (r->orcpt != NULL)
			smtpc_send(c, " ORCPT=%s", r->orcpt);
	}
	smtpc_send(c, "\r\n");
}

static void
send_cmd(struct smtpc *c, size_t k, int utf8)
{
	switch (c->tx.cmds[k]) {
	case T_MAIL:
		send_mail(c, utf8);
		break;
	case T_RCPT:
		send_rcpt(c, c->tx.cmd_rcpt[k]);
		break;
	case T_DATA:
		smtpc_send(c, "DATA\r\n");
		break;
	default:
		break;
	}
	c->tx.nsent = k + 1;
}

/* decide - recipient i of the job gets this result, once */
static void
decide(struct smtpc *c, size_t i, const struct smtp_reply *r,
    const char *phase)
{
	if (c->tx.final[i])
		return;
	c->tx.final[i] = 1;
	smtpc_reply_result(c, r, phase, &c->tx.job->res[i]);
	if (r->code / 100 == 2 && (c->caps.flags & CAP_DSN) &&
	    c->tx.job->msg->env.rcpts[c->tx.job->rcpts[i]].notify != 0)
		c->tx.job->res[i].dsn_passed = 1;
}

static void
decide_all(struct smtpc *c, const struct smtp_reply *r, const char *phase,
    int only_accepted)
{
	for (size_t i = 0; i < c->tx.job->nrcpts; i++)
		if (!only_accepted || c->tx.accepted[i])
			decide(c, i, r, phase);
}

/* finish - the job is done; RSET first when the transaction failed */
static void
finish(struct smtpc *c)
{
	struct djob *job = c->tx.job;
	int rset = c->tx.need_rset;

	for (size_t i = 0; i < job->nrcpts; i++)
		if (!c->tx.final[i]) {
			rcpt_result_set(&job->res[i], DELIVER_TEMP, "4.4.2 "
			    "host %s gave no result for this recipient",
			    c->peer);
			rcpt_result_remote(&job->res[i], c->host, NULL);
		}
	txn_free(&c->tx);
	job->done(job);
	if (rset) {
		smtpc_send(c, "RSET\r\n");
		c->state = C_RSET;
		smtpc_timeout(c, server.conf->delivery.command_timeout);
	} else {
		evtimer_del(c->timer);
		smtpc_ready_later(c);
	}
}

/* fail_all - a precondition fails: every recipient, no command sent */
static void
fail_all(struct smtpc *c, const char *text)
{
	for (size_t i = 0; i < c->tx.job->nrcpts; i++) {
		rcpt_result_set(&c->tx.job->res[i], DELIVER_PERM, "%s", text);
		rcpt_result_remote(&c->tx.job->res[i], c->host, NULL);
		c->tx.final[i] = 1;
	}
	finish(c);
}

void
txn_begin(struct smtpc *c, struct djob *job)
{
	struct tx *t = &c->tx;
	size_t n = job->nrcpts;
	const char *utf8_needed;
	char text[RESULT_TEXT_LEN];
	int utf8;

	memset(t, 0, sizeof(*t));
	t->job = job;
	t->final = xcalloc(n, 1);
	t->accepted = xcalloc(n, 1);
	t->cmds = xcalloc(2 * n + 4, sizeof(*t->cmds));
	t->cmd_rcpt = xcalloc(2 * n + 4, sizeof(*t->cmd_rcpt));
	t->phase = "MAIL FROM";
	snprintf(job->relay, sizeof(job->relay), "%s", c->peer);
	strlcpy_s(job->tls, c->tls ? c->tls_version : "none",
	    sizeof(job->tls));
	strlcpy_s(job->cipher, c->tls ? c->tls_cipher : "",
	    sizeof(job->cipher));
	if ((c->caps.flags & CAP_SIZE) && c->caps.size > 0 &&
	    job->msg->msg_len > c->caps.size) {
		snprintf(text, sizeof(text), "5.3.4 message too big for host "
		    "%s (limit %llu bytes)", c->peer,
		    (unsigned long long)c->caps.size);
		fail_all(c, text);
		return;
	}
	if ((utf8_needed = smtputf8_check(c, job, &utf8)) != NULL) {
		snprintf(text, sizeof(text), "5.6.7 host %s does not support "
		    "SMTPUTF8, which this message's %s need", c->peer,
		    utf8_needed);
		fail_all(c, text);
		return;
	}
	t->smtputf8 = utf8;
	if (job->msg->env.body == BODY_8BITMIME &&
	    !(c->caps.flags & CAP_8BITMIME) && downgrade(c, job->msg) == -1) {
		smtpc_fail(c, "queue file read error (%s)", strerror(errno));
		return;
	}
	push(t, T_MAIL, 0);
	for (size_t i = 0; i < n; i++)
		push(t, T_RCPT, i);
	push(t, T_DATA, 0);
	if (c->caps.flags & CAP_PIPELINING)
		for (size_t k = 0; k < t->ncmds; k++)
			send_cmd(c, k, utf8);
	else
		send_cmd(c, 0, utf8);
	smtpc_timeout(c, server.conf->delivery.command_timeout);
}

static void
emit_out(void *ctx, const char *p, size_t n)
{
	evbuffer_add(ctx, p, n);
}

void
txn_fill_body(struct smtpc *c)
{
	struct tx *t = &c->tx;
	const struct qmsg *m = t->job->msg;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char buf[BODY_CHUNK];

	uint64_t total = body_len(t);

	while (t->body && evbuffer_get_length(out) < BODY_QUEUED) {
		size_t want = total - t->off > sizeof(buf) ? sizeof(buf) :
		    (size_t)(total - t->off);
		const char *src = buf;
		ssize_t k = (ssize_t)want;
		if (t->conv != NULL)
			src = t->conv + t->off;
		else if (want > 0 &&
		    (k = pread(m->fd, buf, want, (off_t)t->off)) <= 0) {
			smtpc_fail(c, "queue file read error (%s)",
			    k == 0 ? "short file" : strerror(errno));
			return;
		}
		dotstuff(src, (size_t)k, &t->bol, emit_out, out);
		t->off += (uint64_t)k;
		if (t->off == total) {
			dotstuff_end(t->bol, emit_out, out);
			t->body = 0;
			t->phase = "end of DATA";
			t->dot_replies = c->lmtp ? t->naccepted : 1;
			for (size_t i = 0; i < t->dot_replies; i++)
				push(t, T_DOT, 0);
			t->nsent = t->ncmds;
			smtpc_timeout(c, server.conf->delivery.data_timeout);
			return;
		}
	}
	smtpc_timeout(c, server.conf->delivery.command_timeout);
}

static void
start_body(struct smtpc *c)
{
	c->tx.body = 1;
	c->tx.bol = 1;
	c->tx.off = 0;
	c->tx.phase = "sending the message body";
	txn_fill_body(c);
}

/* next_lockstep - without PIPELINING: the next command, if any */
static void
next_lockstep(struct smtpc *c)
{
	struct tx *t = &c->tx;

	if ((c->caps.flags & CAP_PIPELINING) || t->nsent >= t->ncmds)
		return;
	if (t->mail_failed || (t->cmds[t->nsent] == T_DATA &&
	    t->naccepted == 0)) {
		t->need_rset = 1;
		finish(c);
		return;
	}
	send_cmd(c, t->nsent, t->smtputf8);
	smtpc_timeout(c, server.conf->delivery.command_timeout);
}

static void
dataphase_reply(struct smtpc *c, const struct smtp_reply *r)
{
	struct tx *t = &c->tx;

	t->phase = "DATA";
	if (r->code == 354 && !t->mail_failed && t->naccepted > 0) {
		start_body(c);
		return;
	}
	if (r->code == 354) {		/* nothing to send: empty message */
		smtpc_send(c, ".\r\n");
		push(t, T_ABORT_DOT, 0);
		t->nsent = t->ncmds;
		t->need_rset = 1;
		return;
	}
	if (!t->mail_failed)
		decide_all(c, r, "DATA", 1);
	t->need_rset = 1;
	finish(c);
}

static void
dot_reply(struct smtpc *c, const struct smtp_reply *r)
{
	struct tx *t = &c->tx;

	if (!c->lmtp)
		decide_all(c, r, "end of DATA", 1);
	else {
		while (t->lmtp_next < t->job->nrcpts &&
		    !t->accepted[t->lmtp_next])
			t->lmtp_next++;
		if (t->lmtp_next < t->job->nrcpts)
			decide(c, t->lmtp_next++, r, "end of DATA");
	}
	if (--t->dot_replies == 0)
		finish(c);
}

void
txn_reply(struct smtpc *c, const struct smtp_reply *r)
{
	struct tx *t = &c->tx;
	int ok = r->code / 100 == 2;

	if (t->nreplied >= t->nsent) {
		smtpc_fail(c, "unexpected reply %d", r->code);
		return;
	}
	size_t k = t->nreplied++;
	switch (t->cmds[k]) {
	case T_MAIL:
		if (!ok) {
			t->mail_failed = 1;
			decide_all(c, r, "MAIL FROM", 0);
		}
		t->phase = "RCPT TO";
		next_lockstep(c);
		return;
	case T_RCPT:
		if (!t->mail_failed) {
			size_t i = t->cmd_rcpt[k];
			if (ok) {
				t->accepted[i] = 1;
				t->naccepted++;
			} else
				decide(c, i, r, "RCPT TO");
		}
		next_lockstep(c);
		return;
	case T_DATA:
		dataphase_reply(c, r);
		return;
	case T_DOT:
		dot_reply(c, r);
		return;
	case T_ABORT_DOT:
		finish(c);
		return;
	}
}

void
txn_abort(struct smtpc *c, const char *why)
{
	struct djob *job = c->tx.job;

	if (job == NULL)
		return;
	for (size_t i = 0; i < job->nrcpts; i++)
		if (!c->tx.final[i]) {
			rcpt_result_set(&job->res[i], DELIVER_TEMP, "%s", why);
			rcpt_result_remote(&job->res[i], c->host, NULL);
		}
	txn_free(&c->tx);
	job->done(job);
}
