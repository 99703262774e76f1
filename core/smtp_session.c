/*
 * smtp_session.c - session lifecycle, socket I/O, input loop and replies
 * (see smtp_session.h for the model).
 *
 * Input is processed one command at a time from the bufferevent's input
 * buffer; replies are appended to its output buffer and leave together on
 * the next loop turn, which is what PIPELINING wants. Nothing is read while
 * the session waits for an answer (SS_WAITING) or while the client is not
 * reading its replies (SS_OUTFULL), so neither buffer grows without bound.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "conn_limits.h"
#include "log.h"
#include "metrics.h"
#include "mime.h"
#include "loop.h"
#include "queue.h"
#include "server.h"
#include "smtp_session.h"
#include "filter.h"
#include "util.h"

#define OUTPUT_HIGH	(256 * 1024)	/* stop reading above this */
#define OUTPUT_LOW	(16 * 1024)	/* resume below this */
#define INPUT_HIGH	(256 * 1024)	/* socket reads pause above this */

static const char *const state_names[] = {
	"connected", "greeted", "ready", "mail", "rcpt", "data", "bdat", "quit"
};

static void session_process(struct smtp_session *);
static void session_destroy(struct smtp_session *);
static void on_read(struct bufferevent *, void *);
static void on_flushed(struct bufferevent *, void *);
static void on_written(struct bufferevent *, void *);
static void on_event(struct bufferevent *, short, void *);

/*
 * Replies are written straight to the socket: session_reply_raw() queues
 * them and activates flush_ev, which runs once the current callback is
 * done (so pipelined replies leave in one write) and writes what the
 * socket takes. Only when it does not take everything does the
 * bufferevent's write side take over (EV_WRITE enabled) until the output
 * is empty again. This spares two epoll_ctl calls and a loop turn per
 * reply.
 */
static void
session_flush(struct smtp_session *s)
{
	struct evbuffer *out;

	if (s->bev == NULL || (s->flags & SS_DEAD))
		return;
	out = bufferevent_get_output(s->bev);
	if (bufferevent_get_enabled(s->bev) & EV_WRITE)
		return;			/* the bufferevent is writing */
	if (!s->direct_write) {		/* e.g. TLS: only it may write */
		bufferevent_enable(s->bev, EV_WRITE);
		return;
	}
	bev_write_now(s->bev);
	if (evbuffer_get_length(out) > 0)	/* partial, EAGAIN or error: */
		bufferevent_enable(s->bev, EV_WRITE);	/* libevent goes on */
}

static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_flush(arg);
}

/* watch_output - be called back once the output drains to low */
static void
watch_output(struct smtp_session *s, size_t low)
{
	bufferevent_setwatermark(s->bev, EV_WRITE, low, 0);
	bufferevent_setcb(s->bev, on_read, on_flushed, on_event, s);
	bufferevent_enable(s->bev, EV_WRITE);
}

void
session_enter(struct smtp_session *s, enum smtp_state st)
{
	if (log_debug_enabled())
		log_debug("session=%016llx event=state from=%s to=%s",
		    (unsigned long long)s->id, state_names[s->state],
		    state_names[st]);
	s->state = st;
}

void
session_reply_raw(struct smtp_session *s, const char *p, size_t n)
{
	if (s->bev == NULL || (s->flags & SS_DEAD))
		return;
	evbuffer_add(bufferevent_get_output(s->bev), p, n);
	if (!(bufferevent_get_enabled(s->bev) & EV_WRITE))
		event_active(s->flush_ev, EV_TIMEOUT, 0);
}

void
session_reply(struct smtp_session *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 3)
		n = (int)sizeof(buf) - 3;
	buf[n++] = '\r';
	buf[n++] = '\n';
	session_reply_raw(s, buf, (size_t)n);
	if (log_debug_enabled())
		log_debug("session=%016llx event=reply reply=%s",
		    (unsigned long long)s->id, log_q(buf));
}

/* session_client_error - count a client mistake; too many end the session */
void
session_client_error(struct smtp_session *s)
{
	if (++s->errors < server.conf->limits.errors)
		return;
	session_reply(s, "421 4.7.0 %s Error: too many errors",
	    server.conf->hostname);
	session_close(s, "too many errors");
}

void
session_junk_command(struct smtp_session *s)
{
	if (s->listener->role == ROLE_LOCAL)	/* our own pickup */
		return;
	if (++s->junk > server.conf->limits.junk_commands)
		session_client_error(s);
}

void
tx_free(struct smtp_tx *tx)
{
	if (tx == NULL)
		return;
	qwriter_free(tx->msg);
	envelope_clear(&tx->env);
	free(tx->rcpt);
	free(tx->refusal);
	if (tx->have_message)
		message_clear(&tx->message);
	free(tx);
}

void
session_tx_free(struct smtp_session *s)
{
	if (s->tx != NULL)
		pipeline_tx_end(s->pipeline, &s->subj);
	tx_free(s->tx);
	s->tx = NULL;
	mime_tree_free(s->subj.mime);	/* parsed for this transaction's filters */
	s->subj.mime = NULL;
}

static void
cmd_timer_disarm(struct smtp_session *s)
{
	if (s->cmd_timer_armed)
		evtimer_del(s->cmd_timer);
	s->cmd_timer_armed = 0;
}

static void
on_flushed(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (s->flags & SS_CLOSE) {
		session_destroy(s);
		return;
	}
	if (s->flags & SS_OUTFULL) {	/* the client caught up */
		s->flags &= ~SS_OUTFULL;
		bufferevent_setcb(s->bev, on_read, on_written, on_event, s);
		session_continue(s);
	}
}

/* on_written - the bufferevent emptied the output: write directly again */
static void
on_written(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 &&
	    s->direct_write && !(s->flags & (SS_CLOSE | SS_OUTFULL)))
		bufferevent_disable(bev, EV_WRITE);
}

/*
 * session_close - say nothing more, flush what is said, then go. The
 * caller has already sent the final reply, if any.
 */
void
session_close(struct smtp_session *s, const char *reason)
{
	if (s->flags & SS_CLOSE)
		return;
	s->flags |= SS_CLOSE;
	session_enter(s, SMTP_QUIT);
	cmd_timer_disarm(s);
	log_info("session=%016llx event=close reason=%s",
	    (unsigned long long)s->id, log_q(reason));
	if (s->flags & SS_DEAD)
		return;
	bufferevent_disable(s->bev, EV_READ);
	if (s->flags & SS_INPROC)
		return;			/* session_process() finishes it */
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0 ||
	    (s->flags & SS_HANDSHAKE))	/* no way to say anything */
		session_destroy(s);
	else
		watch_output(s, 0);
}

/* session_wait - an answer is coming from elsewhere: stop reading */
void
session_wait(struct smtp_session *s)
{
	s->flags |= SS_WAITING;	/* input now stays in the buffer */
	s->jobs++;
}

/* session_continue - read and process input again, unless closing */
void
session_continue(struct smtp_session *s)
{
	if (s->flags & (SS_CLOSE | SS_DEAD))
		return;
	if (s->worker->stopping) {
		session_shutdown(s);	/* spares a transaction in progress */
		if (s->flags & (SS_CLOSE | SS_DEAD))
			return;
	}
	if (!(bufferevent_get_enabled(s->bev) & EV_READ))
		bufferevent_enable(s->bev, EV_READ);
	session_process(s);
}

/*
 * session_resume - the answer came: give back the hold taken by
 * session_wait(); a session whose client left meanwhile is freed here.
 */
void
session_resume(struct smtp_session *s)
{
	if (--s->jobs == 0)
		s->flags &= ~SS_WAITING;
	if (s->flags & SS_DEAD) {
		if (s->jobs == 0)
			session_destroy(s);
		return;
	}
	if (s->jobs == 0)
		session_continue(s);
}

static void
unlink_session(struct smtp_session *s)
{
	struct worker *w = s->worker;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	w->nsessions--;
}

/*
 * session_destroy - release the socket now; the session itself once no job
 * holds it any more (a commit in flight comes back to a dead session).
 */
static void
session_destroy(struct smtp_session *s)
{
	if (!(s->flags & SS_DEAD)) {
		s->flags |= SS_DEAD;
		log_info("session=%016llx event=disconnect client=%s "
		    "messages=%u errors=%u", (unsigned long long)s->id,
		    s->addr, s->messages, s->errors);
		smtp_proxy_done(s);
		bufferevent_free(s->bev);
		s->bev = NULL;
		cmd_timer_disarm(s);
		conn_limits_release((struct sockaddr *)&s->peer);
		metrics_add(M_SESSIONS_CURRENT, -1.0, s->listener->name);
	}
	if (s->jobs > 0 || (s->flags & SS_INPROC))
		return;
	if (smtp_filter_disconnect(s))
		return;			/* comes back when the stage is done */
	unlink_session(s);
	session_tx_free(s);
	pipeline_session_end(s->pipeline, &s->subj);
	event_free(s->cmd_timer);
	event_free(s->flush_ev);
	smtp_guard_clear(&s->guard);
	free(s->helo);
	free(s->rdns);
	free(s->unknown_cmd);
	smtp_auth_clear(s);
	tags_clear(&s->tags);
	pipeline_unref(s->pipeline);
	free(s);
}

static void
on_cmd_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	s->cmd_timer_armed = 0;
	session_reply(s, "421 4.4.2 %s Error: command timeout exceeded",
	    server.conf->hostname);
	session_close(s, "command timeout");
}

static void
cmd_timer_arm(struct smtp_session *s)
{
	struct timeval tv = { server.conf->limits.command_timeout, 0 };

	if (s->cmd_timer_armed)
		return;
	evtimer_add(s->cmd_timer, &tv);
	s->cmd_timer_armed = 1;
}

/*
 * read_command - take one command line off the input; 0 when no complete
 * line is there yet. Lines end with LF (a CR before it is removed by the
 * parser); over-long lines are refused and skipped up to their end.
 */
static int
read_command(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t avail = evbuffer_get_length(in), max, eol_len;
	struct evbuffer_ptr eol;

	if (avail == 0)
		return 0;
	max = s->worker->linecap - 1;	/* the buffer fixed at start */
	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
	if (eol.pos == -1) {
		if (avail >= max) {
			if (!(s->flags & SS_SKIPLINE)) {
				session_reply(s, "500 5.5.2 Error: line too long");
				s->flags |= SS_SKIPLINE;
				session_client_error(s);
			}
			evbuffer_drain(in, avail);
		}
		cmd_timer_arm(s);
		return 0;
	}
	size_t len = (size_t)eol.pos;
	cmd_timer_disarm(s);
	if (s->flags & SS_SKIPLINE) {
		evbuffer_drain(in, len + 1);
		s->flags &= ~SS_SKIPLINE;
		return 1;
	}
	if (len + 1 > max) {
		evbuffer_drain(in, len + 1);
		session_reply(s, "500 5.5.2 Error: line too long");
		session_client_error(s);
		return 1;
	}
	evbuffer_remove(in, s->worker->linebuf, len + 1);
	s->worker->linebuf[len] = '\0';
	smtp_dispatch(s, s->worker->linebuf, len);
	return 1;
}

/* discard_feed - skip the octets of a refused BDAT chunk, then reply */
static int
discard_feed(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t avail = evbuffer_get_length(in);
	size_t n = avail < s->discard_left ? avail : (size_t)s->discard_left;

	if (n == 0)
		return 0;
	evbuffer_drain(in, n);
	s->discard_left -= n;
	if (s->discard_left == 0 && s->discard_reply != NULL) {
		session_reply(s, "%s", s->discard_reply);
		s->discard_reply = NULL;
	}
	return 1;
}

static int
output_full(struct smtp_session *s)
{
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) < OUTPUT_HIGH)
		return 0;
	s->flags |= SS_OUTFULL;
	bufferevent_disable(s->bev, EV_READ);
	watch_output(s, OUTPUT_LOW);
	return 1;
}

static void
session_process(struct smtp_session *s)
{
	int progress;

	if (s->flags & (SS_INPROC | SS_DEAD))
		return;
	s->flags |= SS_INPROC;
	do {
		if (s->flags & (SS_WAITING | SS_CLOSE | SS_OUTFULL |
		    SS_HANDSHAKE))
			break;
		if (output_full(s))
			break;
		if (s->discard_left > 0)
			progress = discard_feed(s);
		else if (s->state == SMTP_DATA)
			progress = smtp_data_feed(s);
		else if (s->state == SMTP_BDAT && s->tx != NULL &&
		    s->tx->bdat_chunk > 0)
			progress = smtp_bdat_feed(s);
		else
			progress = read_command(s);
	} while (progress);
	s->flags &= ~SS_INPROC;
	if (s->flags & SS_DEAD)
		session_destroy(s);
	else if ((s->flags & SS_CLOSE) &&
	    (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0 ||
	    (s->flags & SS_HANDSHAKE)))
		session_destroy(s);
	else if (s->flags & SS_CLOSE)
		watch_output(s, 0);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_process(arg);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {	/* the TLS handshake is done */
		smtp_tls_established(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->flags & SS_HANDSHAKE) {	/* nothing to say in clear */
			metrics_inc(M_TLS_HANDSHAKES, "inbound", "failed");
			log_info("session=%016llx event=tls-failed client=%s "
			    "reason=\"handshake timeout\"",
			    (unsigned long long)s->id, s->addr);
			session_destroy(s);
			return;
		}
		if (s->flags & SS_CLOSE) {	/* client never read */
			session_destroy(s);
			return;
		}
		if (s->flags & SS_WAITING) {	/* our delay, not the client's */
			bufferevent_enable(s->bev, what & BEV_EVENT_READING ?
			    EV_READ : EV_WRITE);
			return;
		}
		session_reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    server.conf->hostname);
		session_close(s, "idle timeout");
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (s->flags & SS_HANDSHAKE)
			smtp_tls_failed(s, what);
		if (s->tx != NULL && (s->state == SMTP_DATA ||
		    s->state == SMTP_BDAT))
			log_info("qid=%s session=%016llx event=abort "
			    "reason=\"lost connection in %s\"", s->tx->env.id,
			    (unsigned long long)s->id, state_names[s->state]);
		session_destroy(s);
	}
}

void
session_accept(struct worker *w, const struct conf_listener *l, int fd,
    const struct sockaddr *sa, socklen_t salen)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->id = atomic_fetch_add(&server.next_session_id, 1);
	s->worker = w;
	s->listener = l;
	(void)salen;
	session_set_client(s, sa);
	s->cmd_timer = evtimer_new(loop_base(w->loop), on_cmd_timeout, s);
	s->flush_ev = event_new(loop_base(w->loop), -1, 0, on_flush, s);
	session_use_bev(s, bufferevent_socket_new(loop_base(w->loop), fd,
	    BEV_OPT_CLOSE_ON_FREE), 1);
	s->next = w->sessions;
	if (w->sessions != NULL)
		w->sessions->prev = s;
	w->sessions = s;
	w->nsessions++;
	metrics_inc(M_SESSIONS_TOTAL, l->name);
	metrics_add(M_SESSIONS_CURRENT, 1.0, l->name);
	log_info("session=%016llx event=connect client=%s port=%u listener=%s",
	    (unsigned long long)s->id, s->addr, s->port, l->name);
	s->pipeline = pipeline_current();
	smtp_filter_subject_init(s);
	if (smtp_proxy_expected(l, sa))
		smtp_proxy_wait(s, fd);	/* session_start() once it is in */
	else
		session_start(s);
}

void
session_set_client(struct smtp_session *s, const struct sockaddr *sa)
{
	memcpy(&s->peer, sa, sa->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	sockaddr_text(sa, s->addr, sizeof(s->addr), &s->port);
	s->trusted = s->listener->role == ROLE_LOCAL;	/* sendmail */
	for (size_t i = 0; i < server.conf->ntrusted_networks; i++)
		if (conf_network_match(&server.conf->trusted_networks[i], sa))
			s->trusted = 1;
	s->subj.client_port = s->port;
}

void
session_start(struct smtp_session *s)
{
	if (s->listener->tls.mode != TLS_MODE_IMPLICIT)
		smtp_filter_connect(s);
	else if (smtp_tls_implicit(s) == -1)
		session_close(s, "cannot set up TLS");
	/* else the connect stage runs once the handshake is done */
}

void
session_use_bev(struct smtp_session *s, struct bufferevent *bev, int direct)
{
	struct timeval idle = { server.conf->limits.idle_timeout, 0 };

	s->bev = bev;
	s->direct_write = direct;
	bufferevent_setcb(bev, on_read, on_written, on_event, s);
	bufferevent_setwatermark(bev, EV_READ, 0, INPUT_HIGH);
	bufferevent_set_timeouts(bev, &idle, &idle);
	if (direct)
		bufferevent_disable(bev, EV_WRITE);	/* see session_flush() */
	bufferevent_enable(bev, EV_READ);
}

/*
 * session_shutdown - the server stops: end sessions that are not busy. A
 * transaction may finish until the deadline (worker->stopping 2).
 */
void
session_shutdown(struct smtp_session *s)
{
	if (s->flags & (SS_CLOSE | SS_DEAD) || s->bev == NULL)
		return;
	if (s->tx != NULL && s->worker->stopping < 2)
		return;
	smtp_filter_cancel(s);
	if (s->flags & SS_WAITING)
		return;		/* a commit: answered first, then closed */
	session_reply(s, "421 4.3.2 %s Service shutting down",
	    server.conf->hostname);
	session_close(s, "shutdown");
}

/* session_abort - free a session whatever its state (server teardown) */
void
session_abort(struct smtp_session *s)
{
	s->disconnect_done = 1;		/* no filters at teardown */
	smtp_filter_cancel(s);
	s->jobs = 0;
	s->flags &= ~SS_INPROC;
	session_destroy(s);
}
