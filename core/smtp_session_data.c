/*
 * smtp_session_data.c - message content: DATA and BDAT reception, the
 * Received: header, and the queue commit that precedes "250 queued".
 *
 * Content is decoded by smtp_data.c and appended to a qwriter. At the end
 * the session waits (SS_WAITING) while an iopool thread commits the message
 * (queue.h); the reply is sent from commit_done(), on the worker loop, only
 * when the message and its envelope are durable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "conf.h"
#include "iopool.h"
#include "log.h"
#include "metrics.h"
#include "mime.h"
#include "loop.h"
#include "qmgr.h"
#include "queue.h"
#include "filter.h"
#include "server.h"
#include "smtp_addr.h"
#include "smtp_session.h"
#include "util.h"

#define SID(s)	((unsigned long long)(s)->id)
#define BDAT_DIGITS_MAX	19	/* up to 10^19 - 1 fits in 64 bits */

struct commit_job {
	struct smtp_session *session;
	struct smtp_tx *tx;		/* taken from the session */
	int rv, err;
};

static void
emit_to_queue(void *ctx, const char *p, size_t n)
{
	struct smtp_tx *tx = ctx;

	hops_feed(&tx->hops, p, n);
	qwriter_append(tx->msg, p, n);
}

/* protocol_name - the "with" of Received: (RFC 3848, RFC 6531) */
static const char *
protocol_name(const struct smtp_session *s, const struct smtp_tx *tx)
{
	static const char *const names[2][4] = {
		{ "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA" },
		{ "UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA" },
	};

	if (!s->esmtp)
		return "SMTP";
	return names[tx->mp.smtputf8 != 0][(s->tls ? 1 : 0) +
	    (s->subj.auth_user != NULL ? 2 : 0)];
}

/* helo_clean - the HELO name as shown in Received:, no comment breakers */
static void
helo_clean(const char *helo, char *buf, size_t len)
{
	size_t o = 0;

	for (; *helo && o + 1 < len; helo++)
		buf[o++] = (*helo == '(' || *helo == ')' || *helo == '\\' ||
		    (unsigned char)*helo >= 0x80) ? '?' : *helo;
	buf[o] = '\0';
}

/* start_content - first DATA or BDAT of the transaction */
static void
start_content(struct smtp_session *s, enum data_mode mode)
{
	const struct config *c = server.conf;
	struct smtp_tx *tx = s->tx;
	char date[64], helo[256], *hdr, forpart[ADDR_PATH_MAX + 16] = "";
	char tls[160];
	int n;

	tx->msg = qwriter_new(tx->env.id);
	hops_init(&tx->hops);
	data_decoder_init(&tx->dec, mode, c->bare_newline == BARE_NL_NORMALIZE,
	    c->limits.line_length, c->limits.message_size);
	tx->env.protocol = xstrdup(protocol_name(s, tx));
	rfc5322_date(date, sizeof(date), time(NULL));
	helo_clean(s->helo, helo, sizeof(helo));
	if (tx->env.nrcpts == 1)
		snprintf(forpart, sizeof(forpart), "\r\n\tfor <%s>",
		    tx->env.rcpts[0].addr);
	smtp_tls_received(s, tls, sizeof(tls));
	n = xasprintf(&hdr, "Received: from %s ([%s])%s\r\n\tby %s (sluice) "
	    "with %s id %s%s;\r\n\t%s\r\n", helo, s->addr, tls, c->hostname,
	    tx->env.protocol, tx->env.id, forpart, date);
	qwriter_append(tx->msg, hdr, (size_t)n);
	free(hdr);
	smtp_deadline_start(s);		/* data_timeout, min_data_rate */
}

static void commit_start(struct smtp_session *);
static void queue_stage(struct smtp_session *);

/* tx_drop - the transaction ends without a commit */
static void
tx_drop(struct smtp_session *s)
{
	session_tx_free(s);
	if (s->state != SMTP_QUIT)
		session_enter(s, SMTP_READY);
}

/* discarded - a filter said discard: the client hears "queued" anyway */
static void
discarded(struct smtp_session *s, const char *why)
{
	log_info("qid=%s session=%016llx event=discarded reason=%s",
	    s->tx->env.id, SID(s), log_q(why));
	session_reply(s, "250 2.0.0 Ok: queued as %s", s->tx->env.id);
	s->messages++;
	s->junk = 0;			/* accepted, as far as the client knows */
	tx_drop(s);
}

static void
queue_done(struct smtp_session *s, const struct verdict *v)
{
	if (session_refuse(s, SLUICE_ON_QUEUE, v)) {
		tx_drop(s);
		return;
	}
	if (s->tx->discard) {
		discarded(s, "filter verdict");
		return;
	}
	commit_start(s);
}

static void
queue_stage(struct smtp_session *s)
{
	session_stage(s, SLUICE_ON_QUEUE, queue_done);
}

/*
 * apply_changes - what message-stage filters changed goes into the
 * message to be queued; the envelope was changed in place. When only
 * header fields changed, the body is referenced from the message filters
 * read (tx->message lives until the commit is done), not copied.
 */
static int
apply_changes(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	size_t len;
	char *data;
	int rv;

	if (!tx->have_message || !tx->message.changed)
		return 0;
	if (tx->message.body == NULL) {	/* headers only: keep the body */
		size_t blen;
		const char *body = message_body(&tx->message, &blen);
		data = message_render_head(&tx->message, &len);
		rv = qwriter_replace_ref(tx->msg, data, len, body, blen);
		free(data);
		return rv;
	}
	data = message_render(&tx->message, &len);
	rv = qwriter_replace(tx->msg, data, len);
	free(data);
	return rv;
}

static void
message_done(struct smtp_session *s, const struct verdict *v)
{
	struct smtp_tx *tx = s->tx;

	if (session_refuse(s, SLUICE_ON_MESSAGE, v)) {
		tx_drop(s);
		return;
	}
	if (tx->discard) {
		discarded(s, "filter verdict");
		return;
	}
	if (tx->env.nrcpts == 0) {
		discarded(s, "filters removed every recipient");
		return;
	}
	if (apply_changes(s) == -1) {
		session_reply(s, "451 4.3.0 Error: queue file write error");
		tx_drop(s);
		return;
	}
	queue_stage(s);
}

/* content_reason - the metrics' reason for refusing a message's content */
static const char *
content_reason(const char *reply)
{
	if (strncmp(reply, "552", 3) == 0)
		return "message_size";
	if (strncmp(reply, "554 5.4.6", 9) == 0)
		return "loop";
	if (reply[0] == '4')
		return "queue_error";
	return "content";		/* bare newline, line length, ... */
}

/* end_of_content - the whole message is in: refuse, filter, commit */
static void
end_of_content(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	const char *reply = data_reply(&tx->dec);
	int err = qwriter_error(tx->msg);

	if (reply == NULL && err != 0)
		reply = (err == ENOSPC || err == EDQUOT) ?
		    "452 4.3.1 Insufficient system storage" :
		    "451 4.3.0 Error: queue file write error";
	if (reply == NULL && tx->hops.count > server.conf->limits.hops)
		reply = "554 5.4.6 Too many hops: the message is looping "
		    "(too many Received: header fields)";
	if (reply != NULL) {
		metrics_refusal("message", content_reason(reply), reply);
		log_info("qid=%s session=%016llx event=reject stage=data "
		    "size=%llu reply=%s", tx->env.id, SID(s),
		    (unsigned long long)tx->dec.size, log_q(reply));
		session_reply(s, "%s", reply);
		tx_drop(s);
		return;
	}
	session_enter(s, SMTP_RCPT);	/* content done, commit pending */
	tx->content_done = 1;		/* filters may read it from now on */
	session_stage(s, SLUICE_ON_MESSAGE, message_done);
}

static void
data_done(struct smtp_session *s, const struct verdict *v)
{
	if (session_refuse(s, SLUICE_ON_DATA, v))
		return;
	start_content(s, DATA_MODE_DOT);
	session_enter(s, SMTP_DATA);
	session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

void
smtp_cmd_data(struct smtp_session *s, char *args)
{
	if (*args != '\0') {
		session_reply(s, "501 5.5.4 Syntax: DATA");
		session_client_error(s);
		return;
	}
	if (s->tx == NULL) {
		session_reply(s, "503 5.5.1 Error: need MAIL command");
		session_client_error(s);
		return;
	}
	if (s->state == SMTP_BDAT) {	/* RFC 3030 3: no DATA after BDAT */
		session_reply(s, "503 5.5.1 Error: DATA after BDAT, "
		    "transaction discarded");
		session_tx_free(s);
		session_enter(s, SMTP_READY);
		session_client_error(s);
		return;
	}
	if (s->tx->env.nrcpts == 0) {
		session_reply(s, "554 5.5.1 Error: no valid recipients");
		session_client_error(s);
		return;
	}
	session_stage(s, SLUICE_ON_DATA, data_done);
}

/* smtp_data_feed - decode buffered DATA input; 1 when something moved */
int
smtp_data_feed(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct smtp_tx *tx = s->tx;
	struct evbuffer_iovec v;

	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
		return 0;
	size_t used = data_decode(&tx->dec, v.iov_base, v.iov_len,
	    emit_to_queue, tx);
	evbuffer_drain(in, used);
	if (tx->dec.done)
		end_of_content(s);
	return 1;
}

/* parse_bdat - "size [LAST]"; -1 on bad syntax */
static int
parse_bdat(char *args, uint64_t *size, int *last)
{
	char *p = args;
	uint64_t n = 0;
	int digits = 0;

	for (; *p >= '0' && *p <= '9'; p++, digits++)
		n = n * 10 + (uint64_t)(*p - '0');
	if (digits == 0 || digits > BDAT_DIGITS_MAX)
		return -1;
	*last = 0;
	if (*p == '\0')
		goto ok;
	if (*p != ' ')
		return -1;
	while (*p == ' ')
		p++;
	if (strcasecmp(p, "LAST") != 0)
		return -1;
	*last = 1;
ok:
	*size = n;
	return 0;
}

/* bdat_refuse - read and drop the chunk, then give this reply */
static void
bdat_refuse(struct smtp_session *s, uint64_t size, const char *reply)
{
	session_client_error(s);
	if (s->flags & SS_CLOSE)
		return;
	s->discard_reply = reply;
	s->discard_left = size;
	if (size == 0) {
		session_reply(s, "%s", reply);
		s->discard_reply = NULL;
	}
}

/* bdat_first_done - the DATA stage of the first chunk has decided */
static void
bdat_first_done(struct smtp_session *s, const struct verdict *v)
{
	struct smtp_tx *tx = s->tx;

	if (session_refuse(s, SLUICE_ON_DATA, v)) {
		s->discard_reply = NULL;	/* replied already: just skip */
		s->discard_left = tx->bdat_chunk;
		tx->bdat_chunk = 0;
		return;
	}
	start_content(s, DATA_MODE_RAW);
	tx->bdat = 1;
	session_enter(s, SMTP_BDAT);
	if (tx->bdat_chunk == 0)
		smtp_bdat_feed(s);
}

void
smtp_cmd_bdat(struct smtp_session *s, char *args)
{
	uint64_t size;
	int last;

	if (parse_bdat(args, &size, &last) == -1) {
		/* the chunk's length is unknown: the stream cannot be resynced */
		session_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		session_reply(s, "421 4.5.4 %s Error: lost BDAT framing, "
		    "closing", server.conf->hostname);
		session_close(s, "bad BDAT syntax");
		return;
	}
	if (s->tx == NULL) {
		bdat_refuse(s, size, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->tx->env.nrcpts == 0) {
		bdat_refuse(s, size, "554 5.5.1 Error: no valid recipients");
		return;
	}
	s->tx->bdat_chunk = size;
	s->tx->bdat_last = last;
	if (s->state != SMTP_BDAT) {
		session_stage(s, SLUICE_ON_DATA, bdat_first_done);
		return;
	}
	if (size == 0)
		smtp_bdat_feed(s);
}

/* smtp_bdat_feed - take chunk octets; at the chunk's end, answer it */
int
smtp_bdat_feed(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct smtp_tx *tx = s->tx;
	struct evbuffer_iovec v;
	uint64_t chunk = tx->bdat_chunk;

	if (chunk > 0) {
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return 0;
		size_t n = v.iov_len < chunk ? v.iov_len : (size_t)chunk;
		data_decode(&tx->dec, v.iov_base, n, emit_to_queue, tx);
		evbuffer_drain(in, n);
		tx->bdat_chunk -= n;
		if (tx->bdat_chunk > 0)
			return 1;
	}
	if (tx->bdat_last) {
		data_decoder_finish(&tx->dec, emit_to_queue, tx);
		end_of_content(s);
	} else
		session_reply(s, "250 2.0.0 Ok: chunk received");
	return 1;
}

static void
commit_work(void *arg)
{
	struct commit_job *j = arg;

	j->rv = qwriter_commit(j->tx->msg, &j->tx->env);
	j->err = errno;
}

static void
commit_done(void *arg)
{
	struct commit_job *j = arg;
	struct smtp_session *s = j->session;
	struct smtp_tx *tx = j->tx;
	uint64_t ms = mono_msec() - tx->started;

	if (j->rv == 0) {
		log_info("qid=%s session=%016llx event=%s from=%s nrcpt=%zu "
		    "size=%llu proto=%s ms=%llu", tx->env.id, SID(s),
		    tx->env.quarantine ? "quarantined" : "queued",
		    log_q(tx->env.sender), tx->env.nrcpts,
		    (unsigned long long)tx->env.size, tx->env.protocol,
		    (unsigned long long)ms);
		if (!tx->env.quarantine)
			qmgr_submit(tx->env.id);
		metrics_inc(M_MESSAGES_ACCEPTED, s->listener->name);
		session_reply(s, "250 2.0.0 Ok: queued as %s", tx->env.id);
		s->messages++;
		s->junk = 0;
	} else {
		errno = j->err;
		log_warn("qid=%s session=%016llx event=commit-failed",
		    tx->env.id, SID(s));
		metrics_inc(M_MESSAGES_TEMPFAILED, "queue", "queue_error");
		session_reply(s, "%s", (j->err == ENOSPC || j->err == EDQUOT) ?
		    "452 4.3.1 Insufficient system storage" :
		    "451 4.3.0 Error: queue file write error");
	}
	tx_free(tx);
	free(j);
	pipeline_tx_end(s->pipeline, &s->subj);
	if (!(s->flags & SS_DEAD))
		session_enter(s, SMTP_READY);
	session_resume(s);
}

static void
commit_start(struct smtp_session *s)
{
	struct commit_job *j = xcalloc(1, sizeof(*j));

	j->session = s;
	j->tx = s->tx;
	s->tx = NULL;			/* the job owns it now */
	mime_tree_free(s->subj.mime);
	s->subj.mime = NULL;
	j->tx->env.arrival = now_usec();
	j->tx->env.size = qwriter_size(j->tx->msg);
	j->tx->env.helo = xstrdup(s->helo);
	j->tx->env.client_addr = xstrdup(s->addr);
	j->tx->env.client_port = s->port;
	j->tx->env.listener = xstrdup(s->listener->name);
	session_wait(s);
	iopool_submit(server.commit_pool, commit_work, s->worker->loop,
	    commit_done, j);
}
