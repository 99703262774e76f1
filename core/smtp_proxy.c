/*
 * smtp_proxy.c - sessions behind a TCP load balancer: the PROXY protocol
 * header (proxy_proto.h) read before anything else, from the networks a
 * listener's proxy_protocol.from names, and only from them.
 *
 * The header is read straight from the socket while the session's
 * bufferevent does not read, peeking first and taking only bytes that
 * belong to it, so not one byte after it is taken: the SMTP dialogue, or the
 * TLS handshake of an implicit TLS listener, starts on a clean socket.
 * Once the real client is known the session takes its address (log,
 * Received:, trusted_networks, per-IP session limit, filters, milters)
 * and goes on as if it had connected directly. A malformed header, or
 * none within proxy_protocol.timeout, ends the connection without a word
 * (the other side is a load balancer, not an SMTP client); LOCAL and
 * UNKNOWN headers (health checks) keep the balancer's own address.
 * Connections from other addresses never get here: for them "PROXY ..."
 * is just an unknown command.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "conn_limits.h"
#include "log.h"
#include "loop.h"
#include "proxy_proto.h"
#include "server.h"
#include "smtp_session.h"
#include "util.h"

#define SID(s)	((unsigned long long)(s)->id)

int
smtp_proxy_expected(const struct conf_listener *l, const struct sockaddr *sa)
{
	for (size_t i = 0; i < l->nproxy_from; i++)
		if (conf_network_match(&l->proxy_from[i], sa))
			return 1;
	return 0;
}

struct proxy_wait {
	struct event *ev;		/* the socket is readable */
	struct event *timer;		/* proxy_protocol.timeout */
	size_t len;			/* header bytes taken so far */
	unsigned char buf[PROXY_MAX];
};

static void
proxy_failed(struct smtp_session *s, const char *why)
{
	log_info("session=%016llx event=proxy-error client=%s reason=%s",
	    SID(s), s->addr, log_q(why));
	smtp_proxy_done(s);
	session_close(s, "bad PROXY header");
}

/* got - the header is in: become the real client's session */
static void
got(struct smtp_session *s, const struct proxy_hdr *h)
{
	char proxy[INET6_ADDRSTRLEN];

	snprintf(proxy, sizeof(proxy), "%s", s->addr);
	smtp_proxy_done(s);
	if (!h->local) {
		if (conn_limits_move((struct sockaddr *)&s->peer,
		    (const struct sockaddr *)&h->src) != CONN_OK) {
			char real[INET6_ADDRSTRLEN];
			unsigned port;

			sockaddr_text((const struct sockaddr *)&h->src, real,
			    sizeof(real), &port);
			log_info("event=refused client=%s proxy=%s reason=\"too "
			    "many sessions from this address\"", real, proxy);
			session_reply(s, "421 4.7.0 %s Error: too many sessions "
			    "from your address", server.conf->hostname);
			session_close(s, "too many sessions from this address");
			return;
		}
		session_set_client(s, (const struct sockaddr *)&h->src);
	}
	log_info("session=%016llx event=proxy client=%s port=%u proxy=%s "
	    "version=%d%s", SID(s), s->addr, s->port, proxy, h->version,
	    h->local ? " local=1" : "");
	bufferevent_enable(s->bev, EV_READ);
	session_start(s);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	proxy_failed(arg, "no PROXY header in time");
}

/*
 * on_readable - look at what came (peeked after the bytes already taken);
 * take what is surely header (all of it while the header is incomplete:
 * a v1 line ends at its LF, a v2 header is as long as it says) and never
 * a byte more
 */
static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	struct proxy_wait *w = s->proxy;
	unsigned char peek[PROXY_MAX];
	struct proxy_hdr h;
	const char *why;
	ssize_t n;
	size_t take;

	(void)what;
	n = recv(fd, peek, sizeof(w->buf) - w->len, MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		proxy_failed(s, n == 0 ? "closed before the PROXY header" :
		    strerror(errno));
		return;
	}
	memcpy(w->buf + w->len, peek, (size_t)n);
	switch (proxy_parse(w->buf, w->len + (size_t)n, &h, &why)) {
	case PROXY_MORE:
		if (w->len + (size_t)n == sizeof(w->buf)) {
			proxy_failed(s, "PROXY header too long");
			return;
		}
		take = (size_t)n;
		break;
	case PROXY_BAD:
		proxy_failed(s, why);
		return;
	default:
		take = h.len - w->len;
		break;
	}
	if (recv(fd, peek, take, 0) != (ssize_t)take) {
		proxy_failed(s, "cannot read the PROXY header");
		return;
	}
	w->len += take;
	if (w->len == h.len && h.len > 0)
		got(s, &h);
}

void
smtp_proxy_wait(struct smtp_session *s, int fd)
{
	struct timeval tv = { s->listener->proxy_timeout, 0 };
	struct proxy_wait *w = xcalloc(1, sizeof(*w));

	s->proxy = w;
	bufferevent_disable(s->bev, EV_READ);
	w->ev = event_new(loop_base(s->worker->loop), fd, EV_READ | EV_PERSIST,
	    on_readable, s);
	w->timer = evtimer_new(loop_base(s->worker->loop), on_timeout, s);
	event_add(w->ev, NULL);
	evtimer_add(w->timer, &tv);
}

void
smtp_proxy_done(struct smtp_session *s)
{
	if (s->proxy == NULL)
		return;
	event_free(s->proxy->ev);
	event_free(s->proxy->timer);
	free(s->proxy);
	s->proxy = NULL;
}
