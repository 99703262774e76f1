/*
 * milter_conn.c - the socket to one milter for one SMTP session: connect,
 * option negotiation, packets out, replies in (framed and decoded by
 * milter_proto.h), the timer of every wait, and failure.
 *
 * A wait (milter_expect) arms the timer and hands every reply packet to
 * its handler; PROGRESS restarts the timer. A packet that comes when no
 * reply is expected, a reply that does not decode, a timeout, EOF or a
 * socket error is a failure: the socket is shut down at once (late
 * replies could never be matched again) and the call gets the entry's
 * default action (milter_fail). The next session connects again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "conf_filter.h"
#include "envelope.h"
#include "filter.h"
#include "log.h"
#include "loop.h"
#include "milter_client.h"
#include "util.h"

#define QID(ms)	((ms)->call && (ms)->call->subj->env ? \
		    (ms)->call->subj->env->id : "-")

static void really_free(struct milter_sess *);

/*
 * enter/leave - around each libevent callback: what a reply handler sets
 * off (the stage finishing, the session ending) may free the session's
 * state; that waits until the callback is out.
 */
static void
enter(struct milter_sess *ms)
{
	ms->busy++;
}

static int
leave(struct milter_sess *ms)
{
	if (--ms->busy > 0 || !ms->dead)
		return 0;
	really_free(ms);
	return 1;
}

static void
arm(struct milter_sess *ms, unsigned secs)
{
	struct timeval tv = { secs, 0 };

	ms->wait_s = secs;
	evtimer_add(ms->timer, &tv);
}

/* shut - close the socket now; nothing more is sent or read */
static void
shut(struct milter_sess *ms)
{
	if (ms->bev != NULL) {
		evutil_socket_t fd = bufferevent_getfd(ms->bev);
		if (fd >= 0)
			shutdown(fd, SHUT_RDWR);
		bufferevent_free(ms->bev);
		ms->bev = NULL;
	}
	if (ms->timer != NULL)
		evtimer_del(ms->timer);
	ms->on_reply = NULL;
	ms->state = MS_CLOSED;
	milter_reader_clear(&ms->rd);
	if (ms->held != NULL)
		evbuffer_drain(ms->held, evbuffer_get_length(ms->held));
}

void
milter_fail(struct milter_sess *ms, const char *why)
{
	struct sluice_call *c = ms->call;
	char reason[160];

	if (ms->failed)
		return;
	ms->failed = 1;
	snprintf(reason, sizeof(reason), "%s", why);	/* may be the reader's */
	why = reason;
	shut(ms);
	milter_message_reset(ms);
	if (c == NULL) {
		log_warnx("qid=- session=%016llx event=milter-error filter=%s "
		    "action=%s reason=%s", (unsigned long long)ms->session_id,
		    ms->filter->name, verdict_name(ms->filter->on_error),
		    log_q(why));
		return;
	}
	ms->call = NULL;
	call_fail(c, why);		/* logs with qid and filter name */
}

void
milter_hold(struct milter_sess *ms, const struct milter_buf *b)
{
	if (ms->bev != NULL)
		evbuffer_add(ms->held, b->data, b->len);
}

/*
 * milter_send - straight to the socket when nothing is queued before it
 * (no extra trip through the loop for the usual small packet), else
 * behind what the bufferevent still has to write.
 */
int
milter_send(struct milter_sess *ms, const struct milter_buf *b)
{
	struct evbuffer *out;

	if (ms->bev == NULL)
		return -1;
	out = bufferevent_get_output(ms->bev);
	if (evbuffer_add(ms->held, b->data, b->len) == -1)
		goto fail;
	if (evbuffer_get_length(out) == 0 && ms->state != MS_CONNECTING &&
	    evbuffer_write(ms->held, bufferevent_getfd(ms->bev)) == -1 &&
	    errno != EAGAIN && errno != EINTR) {
		char buf[160];
		snprintf(buf, sizeof(buf), "write: %s", strerror(errno));
		milter_fail(ms, buf);
		return -1;
	}
	if (evbuffer_get_length(ms->held) > 0 &&
	    bufferevent_write_buffer(ms->bev, ms->held) == -1)
		goto fail;
	return 0;
fail:
	milter_fail(ms, "cannot queue data for the milter");
	return -1;
}

void
milter_expect(struct milter_sess *ms, unsigned timeout_s, milter_reply_fn fn)
{
	ms->on_reply = fn;
	arm(ms, timeout_s);
}

/* one_packet - decode and hand to the waiting handler; 0 to go on */
static int
one_packet(struct milter_sess *ms, const struct milter_packet *pkt)
{
	struct milter_reply r;
	const char *why;
	milter_reply_fn fn = ms->on_reply;
	char buf[96];

	if (fn == NULL) {
		snprintf(buf, sizeof(buf), "unexpected packet '%c' when no "
		    "reply was due", pkt->cmd > 32 && pkt->cmd < 127 ?
		    pkt->cmd : '?');
		milter_fail(ms, buf);
		return -1;
	}
	if (milter_reply_parse(pkt->cmd, pkt->data, pkt->len, &r, &why) == -1) {
		milter_fail(ms, why);
		return -1;
	}
	if (r.code == SMFIR_PROGRESS) {
		arm(ms, ms->wait_s);
		return 0;
	}
	if (milter_reply_final(r.code) || r.code == SMFIC_OPTNEG) {
		ms->on_reply = NULL;
		evtimer_del(ms->timer);
	}
	ms->pkt = pkt;
	fn(ms, &r);
	return 0;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct milter_sess *ms = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	enter(ms);
	while (ms->bev != NULL && !ms->dead && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		struct milter_packet pkt;
		const char *why;
		size_t used;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		enum milter_read rr = milter_reader_feed(&ms->rd, v.iov_base,
		    v.iov_len, &used, &pkt, &why);
		if (rr == MILTER_READ_ERROR) {
			milter_fail(ms, why);
			break;
		}
		if (rr == MILTER_READ_PACKET) {
			/* the packet lives in the reader; drain after use */
			if (one_packet(ms, &pkt) == -1)
				break;
			if (ms->bev != NULL)
				evbuffer_drain(in, used);
			continue;
		}
		evbuffer_drain(in, used);
	}
	leave(ms);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct milter_sess *ms = arg;
	char buf[160];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	enter(ms);
	if (what & BEV_EVENT_EOF)
		milter_fail(ms, ms->state == MS_CONNECTING ?
		    "connection refused" : "the milter closed the connection");
	else {
		snprintf(buf, sizeof(buf), "%s: %s", ms->state ==
		    MS_CONNECTING ? "cannot connect" : "socket error",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		milter_fail(ms, buf);
	}
	leave(ms);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct milter_sess *ms = arg;
	char buf[96];

	(void)fd;
	(void)what;
	snprintf(buf, sizeof(buf), "%s timed out after %us",
	    ms->state == MS_CONNECTING ? "connect" : ms->state ==
	    MS_NEGOTIATING ? "negotiation" : "reply", ms->wait_s);
	enter(ms);
	milter_fail(ms, buf);
	leave(ms);
}

/*
 * What we offer: every action, and the protocol bits of the version we
 * speak (v2: the steps only; v3 adds NOUNKNOWN; v4 NODATA; v6 the rest).
 */
static uint32_t
offered_protocol(unsigned version)
{
	if (version >= 6)
		return SMFIP_ALL;
	if (version >= 4)
		return SMFIP_V2_ALL | SMFIP_NOUNKNOWN | SMFIP_NODATA;
	if (version == 3)
		return SMFIP_V2_ALL | SMFIP_NOUNKNOWN;
	return SMFIP_V2_ALL;
}

static uint32_t
offered_actions(unsigned version)
{
	return version >= 6 ? SMFIF_ALL : 0x3f;
}

static void
negotiated(struct milter_sess *ms, const struct milter_reply *r)
{
	const struct milter_optneg *o = &r->optneg;
	unsigned ours = ms->def->conf->protocol;
	void (*opened)(struct milter_sess *) = ms->after_open;
	char buf[128];

	if (r->code != SMFIC_OPTNEG) {
		snprintf(buf, sizeof(buf), "negotiation answered with '%c'",
		    r->code);
		milter_fail(ms, buf);
		return;
	}
	if (o->version < MILTER_VERSION_MIN || o->version > ours) {
		snprintf(buf, sizeof(buf), "milter speaks protocol version "
		    "%u, we offered %u", o->version, ours);
		milter_fail(ms, buf);
		return;
	}
	if (o->actions & ~offered_actions(ours)) {
		snprintf(buf, sizeof(buf), "milter asks for actions 0x%x "
		    "beyond the offered 0x%x", o->actions,
		    offered_actions(ours));
		milter_fail(ms, buf);
		return;
	}
	/* MDS size bits (internal to sendmail) are ignored, as advised */
	uint32_t proto = o->protocol & ~0x70000000U;
	if (proto & ~offered_protocol(ours)) {
		snprintf(buf, sizeof(buf), "milter asks for protocol steps "
		    "0x%x beyond the offered 0x%x", proto,
		    offered_protocol(ours));
		milter_fail(ms, buf);
		return;
	}
	ms->version = o->version == 5 ? 4 : o->version;
	ms->actions = o->actions;
	ms->protocol = proto;
	for (int i = 0; i < MILTER_STAGES; i++)
		if (o->macros[i] != NULL)
			ms->lists[i] = xstrdup(o->macros[i]);
	ms->state = MS_OPEN;
	log_debug("event=milter-open filter=%s version=%u actions=0x%x "
	    "protocol=0x%x", ms->filter->name, ms->version, ms->actions,
	    ms->protocol);
	opened(ms);
}

static void
send_optneg(struct milter_sess *ms)
{
	unsigned char mem[32];
	struct milter_buf b;
	unsigned v = ms->def->conf->protocol;

	milter_buf_init(&b, mem, sizeof(mem));
	milter_put_optneg(&b, v, offered_actions(v), offered_protocol(v));
	ms->state = MS_NEGOTIATING;
	if (milter_send(ms, &b) == 0)
		milter_expect(ms, ms->def->conf->connect_timeout, negotiated);
}

static void
on_connected(struct bufferevent *bev, short what, void *arg)
{
	struct milter_sess *ms = arg;

	if (!(what & BEV_EVENT_CONNECTED)) {
		on_event(bev, what, arg);
		return;
	}
	evtimer_del(ms->timer);
	bufferevent_setcb(ms->bev, on_read, NULL, on_event, ms);
	bufferevent_enable(ms->bev, EV_READ);
	enter(ms);
	send_optneg(ms);
	leave(ms);
}

/* milter_open - connect and negotiate; opened() runs when it is done */
void
milter_open(struct milter_sess *ms, void (*opened)(struct milter_sess *))
{
	const struct milter_def *d = ms->def;

	milter_reader_init(&ms->rd);
	ms->held = evbuffer_new();
	ms->after_open = opened;
	ms->timer = evtimer_new(ms->base, on_timeout, ms);
	ms->state = MS_CONNECTING;
	ms->bev = bufferevent_socket_new(ms->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (ms->bev == NULL) {
		milter_fail(ms, "cannot create a socket");
		return;
	}
	bufferevent_setcb(ms->bev, NULL, NULL, on_connected, ms);
	arm(ms, d->conf->connect_timeout);
	if (bufferevent_socket_connect(ms->bev, (struct sockaddr *)&d->addr,
	    (int)d->addrlen) == -1 && ms->bev != NULL) {
		char buf[160];
		snprintf(buf, sizeof(buf), "cannot connect: %s",
		    strerror(errno));
		milter_fail(ms, buf);
	}
}

/*
 * milter_close - the session is over: QUIT, written straight to the
 * socket (best effort: the filter learns the same from EOF), and close.
 */
void
milter_close(struct milter_sess *ms)
{
	if (ms->state == MS_OPEN && ms->bev != NULL) {
		unsigned char mem[8];
		struct milter_buf b;
		struct evbuffer *out = bufferevent_get_output(ms->bev);

		milter_buf_init(&b, mem, sizeof(mem));
		milter_put_quit(&b);
		evbuffer_add_buffer(out, ms->held);
		evbuffer_add(out, b.data, b.len);
		bev_write_now(ms->bev);
	}
	shut(ms);
}

static void
really_free(struct milter_sess *ms)
{
	if (ms->timer != NULL)
		event_free(ms->timer);
	if (ms->held != NULL)
		evbuffer_free(ms->held);
	for (int i = 0; i < MILTER_STAGES; i++)
		free(ms->lists[i]);
	free(ms);
}

/* milter_sess_free - at the end of the session (maybe from a callback) */
void
milter_sess_free(struct milter_sess *ms)
{
	milter_close(ms);
	milter_message_reset(ms);
	ms->call = NULL;
	ms->dead = 1;
	if (ms->busy == 0)
		really_free(ms);
}
