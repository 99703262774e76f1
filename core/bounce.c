/*
 * bounce.c - turning status records into a queued DSN (bounce.h).
 *
 * The original is read back from its queue file: the header section only,
 * or the whole message when the sender asked for RET=FULL and it is not
 * bigger than bounce.return_limit. The DSN goes into the queue through the
 * same writer as received mail, from <> to the original sender, with
 * NOTIFY=NEVER, so it can never cause another DSN.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounce.h"
#include "conf.h"
#include "queue.h"
#include "queue_status.h"
#include "server.h"
#include "smtp_params.h"
#include "util.h"

#define HEADER_READ_MAX	(1024 * 1024)

/* read_original - the bytes to return: the whole message, or as much of
   the start as holds the header section */
static char *
read_original(const struct qmsg *m, int full, size_t *len)
{
	uint64_t want = m->msg_len;
	char *buf, *end;
	ssize_t k;

	if (!full && want > HEADER_READ_MAX)
		want = HEADER_READ_MAX;
	buf = xmalloc((size_t)want + 1);
	k = pread(m->fd, buf, (size_t)want, 0);
	if (k < 0 || (uint64_t)k != want) {
		free(buf);
		return NULL;
	}
	buf[k] = '\0';
	*len = (size_t)k;
	if (!full && (end = strstr(buf, "\r\n\r\n")) != NULL)
		*len = (size_t)(end - buf) + 4;
	return buf;
}

/* status_of - the "x.y.z" a reason starts with, or NULL */
static const char *
status_of(const char *reason, char *buf, size_t len)
{
	size_t n;

	if (reason == NULL)
		return NULL;
	n = strcspn(reason, " ");
	if (n == 0 || n >= len)
		return NULL;
	memcpy(buf, reason, n);
	buf[n] = '\0';
	return buf;
}

static void
fill_rcpts(const struct qmsg *m, const struct qstatus *st,
    const struct bounce_rcpt *b, size_t n, struct dsn_rcpt *out,
    char (*status)[16])
{
	for (size_t k = 0; k < n; k++) {
		const struct rcpt_status *rs = &st->rcpts[b[k].idx];
		const char *reason = rs->reason ? rs->reason : "";
		size_t sp = strcspn(reason, " ");
		struct dsn_rcpt *r = &out[k];

		r->addr = m->env.rcpts[b[k].idx].addr;
		r->orcpt = m->env.rcpts[b[k].idx].orcpt;
		r->action = b[k].action;
		r->status = status_of(rs->reason, status[k], sizeof(status[k]));
		r->remote_mta = rs->remote;
		r->diagnostic_is_smtp = rs->diag != NULL;
		r->diagnostic = rs->diag ? rs->diag :
		    reason[sp] ? reason + sp + 1 : NULL;
		r->last_attempt = st->last_attempt;
		r->retry_until = b[k].retry_until;
	}
}

static int
commit(const char *id, const char *text, size_t len,
    const struct envelope *orig)
{
	struct envelope env;
	struct qwriter *w;
	int rv = -1;

	envelope_init(&env);
	strlcpy_s(env.id, id, sizeof(env.id));
	env.arrival = now_usec();
	env.sender = xstrdup("");
	env.helo = xstrdup(server.conf->hostname);
	env.client_addr = xstrdup("127.0.0.1");
	env.listener = xstrdup("dsn");
	env.protocol = xstrdup("local");
	env.body = mem_has_8bit(text, len) ? BODY_8BITMIME : BODY_7BIT;
	env.smtputf8 = !str_is_ascii(orig->sender);
	env.size = len;
	envelope_add_rcpt(&env, orig->sender, NULL, NOTIFY_NEVER);
	tags_set(&env.tags, "dsn", orig->id);
	if ((w = qwriter_new(id)) != NULL &&
	    qwriter_append(w, text, len) == 0 && qwriter_commit(w, &env) == 0)
		rv = 0;
	if (w != NULL)
		qwriter_free(w);
	envelope_clear(&env);
	return rv;
}

int
bounce_queue(const struct qmsg *m, const struct qstatus *st,
    const struct bounce_rcpt *b, size_t n, char newid[QID_LEN + 1])
{
	const struct config *cf = server.conf;
	int full = m->env.ret == RET_FULL &&
	    m->msg_len <= cf->bounce.return_limit;
	struct dsn_params p;
	struct dsn_rcpt *rcpts;
	char (*status)[16], from[300], msgid[400], boundary[300], rfrom[600];
	char *orig, *text;
	size_t olen, len;
	int rv;

	if ((orig = read_original(m, full, &olen)) == NULL)
		return -1;
	qid_new(newid);
	snprintf(from, sizeof(from), "MAILER-DAEMON@%s", cf->hostname);
	snprintf(msgid, sizeof(msgid), "<%s.dsn@%s>", newid, cf->hostname);
	snprintf(boundary, sizeof(boundary), "%s/%s", newid, cf->hostname);
	snprintf(rfrom, sizeof(rfrom), "%s [%s]", m->env.helo ? m->env.helo :
	    "unknown", m->env.client_addr ? m->env.client_addr : "unknown");
	memset(&p, 0, sizeof(p));
	p.reporting_mta = cf->hostname;
	p.from = from;
	p.to = m->env.sender;
	p.orig_qid = m->env.id;
	p.envid = m->env.envid;
	p.received_from = rfrom;
	p.arrival = m->env.arrival / 1000000;
	p.now = (uint64_t)(now_usec() / 1000000);
	p.message_id = msgid;
	p.boundary = boundary;
	p.full = m->env.ret == RET_FULL;
	p.smtputf8 = m->env.smtputf8;
	p.msg = orig;
	p.msg_len = olen;
	p.full_limit = full ? SIZE_MAX : 0;	/* too big: headers only */
	rcpts = xcalloc(n, sizeof(*rcpts));
	status = xcalloc(n, sizeof(*status));
	fill_rcpts(m, st, b, n, rcpts, status);
	text = dsn_build(&p, rcpts, n, &len);
	rv = commit(newid, text, len, &m->env);
	free(text);
	free(status);
	free(rcpts);
	free(orig);
	return rv;
}
