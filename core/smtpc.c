/*
 * smtpc.c - an outbound SMTP/LMTP connection: connecting (address after
 * address), the greeting, EHLO/HELO/LHLO, STARTTLS, idling between jobs,
 * QUIT, timeouts and every way a connection can break (smtpc.h). The
 * transaction itself is in smtpc_tx.c.
 *
 * Before the connection is ready, any failure (refused, timed out, no
 * greeting, a 4xx/5xx greeting, a broken reply) moves on to the next
 * address; when none is left the next hop learns why (dest_conn_gone).
 * STARTTLS follows the next hop's policy (smtpc_tls.c): with may, a
 * failed TLS handshake is retried once on the same address without TLS
 * (opportunistic TLS must not make mail undeliverable); with encrypt and
 * verify, a server without STARTTLS, a refused STARTTLS, a failed
 * handshake or certificate check is a 4.7.x failure of that address and
 * nothing is ever sent in the clear.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "conf.h"
#include "dest.h"
#include "log.h"
#include "server.h"
#include "smtpc.h"
#include "smtpc_int.h"
#include "util.h"

#define QUIT_TIMEOUT	10

static void	try_address(struct smtpc *);
static void	conn_free(struct smtpc *, int never_ready);

void
smtpc_send(struct smtpc *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

void
smtpc_timeout(struct smtpc *c, unsigned seconds)
{
	struct timeval tv = { seconds, 0 };

	evtimer_add(c->timer, &tv);
}

void
smtpc_ready_later(struct smtpc *c)
{
	c->state = C_READY;
	event_active(c->kick, 0, 0);
}

void
smtpc_reply_result(struct smtpc *c, const struct smtp_reply *r,
    const char *phase, struct rcpt_result *res)
{
	char reply[REPLY_TEXT_MAX + 32], enh[16];
	int cls = r->code / 100;

	smtp_reply_format(r, reply, sizeof(reply));
	if (r->enhanced[0])
		strlcpy_s(enh, r->enhanced, sizeof(enh));
	else
		snprintf(enh, sizeof(enh), "%d.0.0", cls);
	rcpt_result_set(res, cls == 2 ? DELIVER_OK : cls == 4 ? DELIVER_TEMP :
	    DELIVER_PERM, "%s host %s said: %s (in reply to %s)", enh,
	    c->peer, reply, phase);
	rcpt_result_remote(res, c->host, reply);
}

/* describe the current address for texts and logs */
static void
set_peer(struct smtpc *c)
{
	const struct mx_addr *a = &c->addrs->a[c->ai];
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	strlcpy_s(c->host, a->host, sizeof(c->host));
	if (a->sa.ss_family == AF_UNIX) {
		snprintf(c->peer, sizeof(c->peer), "unix:%s", a->host);
		return;
	}
	if (a->sa.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)&a->sa;
		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		port = ntohs(s->sin_port);
	} else {
		const struct sockaddr_in6 *s = (const void *)&a->sa;
		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		port = ntohs(s->sin6_port);
	}
	snprintf(c->peer, sizeof(c->peer), "%s[%s]:%u", a->host, ip, port);
}

static const char *
phase_name(const struct smtpc *c)
{
	switch (c->state) {
	case C_CONNECTING:	return "connecting";
	case C_GREETING:	return "waiting for the greeting";
	case C_EHLO:		return c->lmtp ? "LHLO" : "EHLO";
	case C_HELO:		return "HELO";
	case C_STARTTLS:	return "STARTTLS";
	case C_HANDSHAKE:	return "the TLS handshake";
	case C_TX:		return c->tx.phase ? c->tx.phase : "MAIL FROM";
	case C_RSET:		return "RSET";
	default:		return "idle";
	}
}

static void
drop_bev(struct smtpc *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	evtimer_del(c->timer);
	smtp_reply_clear(&c->reply);
}

/*
 * setup_failed - this address did not work out before the connection was
 * ready: remember why, then the next address (or the same one without TLS)
 */
static void
setup_failed(struct smtpc *c, const char *why)
{
	int tls_broke = c->state == C_HANDSHAKE;

	snprintf(c->why, sizeof(c->why), "%s", why);
	c->why_kind = DELIVER_TEMP;
	log_info("event=connect-failed relay=%s reason=%s", log_q(c->peer),
	    log_q(why));
	drop_bev(c);
	c->tls = 0;
	if (tls_broke && !c->plain_retry && c->policy == TLS_CLIENT_MAY)
		c->plain_retry = 1;
	else {
		c->plain_retry = 0;
		c->ai++;
	}
	try_address(c);
}

/* broken - the connection failed: where it was decides what follows */
static void
broken(struct smtpc *c, const char *what)
{
	char why[512];

	snprintf(why, sizeof(why), "4.4.2 %s with %s while %s", what, c->peer,
	    phase_name(c));
	switch (c->state) {
	case C_CONNECTING:
		snprintf(why, sizeof(why), "4.4.1 connect to %s: %s", c->peer,
		    what);
		/* FALLTHROUGH */
	case C_GREETING: case C_EHLO: case C_HELO: case C_STARTTLS:
	case C_HANDSHAKE:
		setup_failed(c, why);
		return;
	case C_TX:
		txn_abort(c, why);
		break;
	default:
		break;
	}
	conn_free(c, 0);
}

void
smtpc_fail(struct smtpc *c, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	broken(c, what);
}

static void
send_hello(struct smtpc *c)
{
	const char *name = server.conf->delivery.helo_name ?
	    server.conf->delivery.helo_name : server.conf->hostname;

	smtp_reply_init(&c->reply, 1);
	smtpc_send(c, "%s %s\r\n", c->lmtp ? "LHLO" : "EHLO", name);
	c->state = C_EHLO;
	smtpc_timeout(c, server.conf->delivery.command_timeout);
}

static void	on_read(struct bufferevent *, void *);
static void	on_write(struct bufferevent *, void *);
static void	on_event(struct bufferevent *, short, void *);

static void
start_tls(struct smtpc *c)
{
	struct bufferevent *tb;
	char why[512];
	SSL *ssl;

	if ((ssl = smtpc_tls_new(c, why, sizeof(why))) == NULL) {
		setup_failed(c, why);		/* the next address */
		return;
	}
	tb = bufferevent_openssl_filter_new(c->base, c->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tb == NULL) {
		SSL_free(ssl);
		setup_failed(c, "4.7.0 cannot start TLS");
		return;
	}
	c->bev = tb;
	bufferevent_setcb(tb, on_read, on_write, on_event, c);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	c->state = C_HANDSHAKE;
	smtpc_timeout(c, server.conf->delivery.greeting_timeout);
}

static void
became_ready(struct smtpc *c)
{
	evtimer_del(c->timer);
	if (!c->was_ready && c->tls)
		log_info("event=connected relay=%s policy=%s tls=%s cipher=%s "
		    "verified=%s", log_q(c->peer),
		    smtpc_tls_policy_name(c->policy), log_q(c->tls_version),
		    log_q(c->tls_cipher), c->verified ? "yes" : "no");
	else if (!c->was_ready)
		log_info("event=connected relay=%s policy=%s tls=none",
		    log_q(c->peer), smtpc_tls_policy_name(c->policy));
	if (!c->was_ready)
		c->ready_us = now_usec();
	c->was_ready = 1;
	smtpc_ready_later(c);
}

static void
hello_done(struct smtpc *c, const struct smtp_reply *r)
{
	if (c->state == C_EHLO)
		smtp_caps_parse(r, &c->caps);
	else
		memset(&c->caps, 0, sizeof(c->caps));
	smtp_reply_clear(&c->reply);
	smtp_reply_init(&c->reply, 0);
	if (!c->tls && !c->plain_retry && (c->caps.flags & CAP_STARTTLS) &&
	    c->policy != TLS_CLIENT_NONE) {
		smtpc_send(c, "STARTTLS\r\n");
		c->state = C_STARTTLS;
		smtpc_timeout(c, server.conf->delivery.command_timeout);
		return;
	}
	if (!c->tls && c->policy >= TLS_CLIENT_ENCRYPT) {
		char why[512];
		snprintf(why, sizeof(why), "4.7.4 TLS is required (policy %s), "
		    "but host %s did not offer STARTTLS",
		    smtpc_tls_policy_name(c->policy), c->peer);
		setup_failed(c, why);
		return;
	}
	became_ready(c);
}

static void
setup_refused(struct smtpc *c, const struct smtp_reply *r, const char *what)
{
	char reply[REPLY_TEXT_MAX + 32], why[REPLY_TEXT_MAX + 300];

	smtp_reply_format(r, reply, sizeof(reply));
	snprintf(why, sizeof(why), "4.4.2 host %s refused %s: %s", c->peer,
	    what, reply);
	setup_failed(c, why);
}

static void
handle_reply(struct smtpc *c, const struct smtp_reply *r)
{
	int ok = r->code / 100 == 2;

	switch (c->state) {
	case C_GREETING:
		if (!ok)
			setup_refused(c, r, "to talk to us");
		else
			send_hello(c);
		return;
	case C_EHLO:
		if (ok)
			hello_done(c, r);
		else if (c->lmtp)
			setup_refused(c, r, "LHLO");
		else {
			smtp_reply_clear(&c->reply);
			smtp_reply_init(&c->reply, 0);
			smtpc_send(c, "HELO %s\r\n",
			    server.conf->delivery.helo_name ?
			    server.conf->delivery.helo_name :
			    server.conf->hostname);
			c->state = C_HELO;
			smtpc_timeout(c, server.conf->delivery.command_timeout);
		}
		return;
	case C_HELO:
		if (ok)
			hello_done(c, r);
		else
			setup_refused(c, r, "HELO");
		return;
	case C_STARTTLS:
		if (r->code == 220)
			start_tls(c);
		else if (c->policy >= TLS_CLIENT_ENCRYPT)
			setup_refused(c, r, "STARTTLS, which the TLS policy "
			    "requires");
		else			/* carry on in the clear */
			became_ready(c);
		return;
	case C_TX:
		txn_reply(c, r);
		return;
	case C_RSET:
		if (ok) {
			evtimer_del(c->timer);
			smtpc_ready_later(c);
		} else
			conn_free(c, 0);
		return;
	case C_QUIT:
		conn_free(c, 0);
		return;
	default:			/* unasked: a 421 while idle, say */
		conn_free(c, 0);
		return;
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	const char *why;
	char *line;
	size_t n;

	c->in_read = 1;
	while (!c->dead && c->bev == bev && c->state != C_HANDSHAKE) {
		/* replies end in CRLF; a bare LF is a broken server */
		line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
		if (line == NULL) {
			if (evbuffer_get_length(in) > REPLY_LINE_MAX)
				smtpc_fail(c, "reply line too long");
			break;
		}
		if (memchr(line, '\n', n) != NULL) {
			free(line);
			smtpc_fail(c, "broken reply (bare LF)");
			break;
		}
		enum reply_feed f = smtp_reply_feed(&c->reply, line, n, &why);
		free(line);
		if (f == REPLY_BAD) {
			smtpc_fail(c, "broken reply (%s)", why);
			break;
		}
		if (f == REPLY_MORE)
			continue;
		struct smtp_reply r = c->reply;
		smtp_reply_init(&c->reply, 0);
		handle_reply(c, &r);
		smtp_reply_clear(&r);
	}
	c->in_read = 0;
	if (c->dead)
		free(c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;

	if (c->state == C_TX && c->tx.body)
		txn_fill_body(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc *c = arg;
	char buf[512];

	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == C_CONNECTING) {
			c->state = C_GREETING;
			smtp_reply_init(&c->reply, 0);
			smtpc_timeout(c, server.conf->delivery.greeting_timeout);
		} else if (c->state == C_HANDSHAKE) {
			if (smtpc_tls_established(c, bev, buf,
			    sizeof(buf)) == -1) {
				setup_failed(c, buf);
				return;
			}
			c->tls = 1;
			send_hello(c);
		}
		return;
	}
	if (c->state == C_HANDSHAKE) {
		smtpc_tls_failed(c, bev, buf, sizeof(buf));
		setup_failed(c, buf);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		smtpc_fail(c, "lost connection");
		return;
	}
	int err = EVUTIL_SOCKET_ERROR();
	smtpc_fail(c, "%s", err ? strerror(err) : "connection error");
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case C_READY:			/* idle long enough */
		smtpc_close(c);
		return;
	case C_QUIT:
		conn_free(c, 0);
		return;
	default:
		smtpc_fail(c, "timeout");
		return;
	}
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;

	(void)fd;
	(void)what;
	if (c->state == C_CONNECTING && c->bev == NULL)
		try_address(c);
	else if (c->state == C_READY)
		dest_conn_ready(c->dest, c);
}

static void
try_address(struct smtpc *c)
{
	for (; c->ai < c->addrs->n; c->ai++, c->plain_retry = 0) {
		const struct mx_addr *a = &c->addrs->a[c->ai];
		set_peer(c);
		c->state = C_CONNECTING;
		c->bev = bufferevent_socket_new(c->base, -1,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (c->bev == NULL)
			break;
		bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
		bufferevent_setwatermark(c->bev, EV_WRITE, 64 * 1024, 0);
		if (bufferevent_socket_connect(c->bev,
		    (struct sockaddr *)&a->sa, (int)a->salen) == 0) {
			if (a->sa.ss_family != AF_UNIX)
				sock_nodelay(bufferevent_getfd(c->bev));
			bufferevent_enable(c->bev, EV_READ | EV_WRITE);
			smtpc_timeout(c, server.conf->delivery.connect_timeout);
			return;
		}
		snprintf(c->why, sizeof(c->why), "4.4.1 connect to %s: %s",
		    c->peer, strerror(errno ? errno : ECONNREFUSED));
		c->why_kind = DELIVER_TEMP;
		drop_bev(c);
	}
	if (c->why[0] == '\0')
		snprintf(c->why, sizeof(c->why), "4.4.1 no address to "
		    "connect to");
	conn_free(c, 1);
}

struct smtpc *
smtpc_new(struct event_base *base, struct dest *d, struct mx_addrs *addrs,
    int lmtp)
{
	struct smtpc *c = xcalloc(1, sizeof(*c));

	c->base = base;
	c->dest = d;
	c->addrs = mx_addrs_ref(addrs);
	c->lmtp = lmtp;
	c->policy = smtpc_tls_policy(dest_route(d));
	c->why_kind = DELIVER_TEMP;
	c->timer = evtimer_new(base, on_timer, c);
	c->kick = event_new(base, -1, 0, on_kick, c);
	c->state = C_CONNECTING;
	c->created_us = now_usec();
	event_active(c->kick, 0, 0);	/* never calls back synchronously */
	return c;
}

void
smtpc_start(struct smtpc *c, struct djob *job)
{
	c->ntx++;
	c->state = C_TX;
	job->setup_start = c->created_us;
	job->setup_end = c->ready_us;
	job->xmit_start = now_usec();
	txn_begin(c, job);
}

void
smtpc_idle(struct smtpc *c, unsigned seconds)
{
	smtpc_timeout(c, seconds);
}

void
smtpc_close(struct smtpc *c)
{
	if (c->state != C_READY || c->bev == NULL) {
		smtpc_abort(c);
		return;
	}
	smtpc_send(c, "QUIT\r\n");
	c->state = C_QUIT;
	smtpc_timeout(c, QUIT_TIMEOUT);
}

int
smtpc_usable(const struct smtpc *c)
{
	return c->state == C_READY && c->bev != NULL;
}

void
smtpc_abort(struct smtpc *c)
{
	if (c->state == C_TX)
		txn_abort(c, "4.4.2 delivery interrupted: shutting down");
	conn_free(c, !c->was_ready);
}

static void
conn_free(struct smtpc *c, int never_ready)
{
	struct dest *d = c->dest;

	drop_bev(c);
	event_free(c->timer);
	event_free(c->kick);
	mx_addrs_unref(c->addrs);
	txn_free(&c->tx);
	dest_conn_gone(d, c, never_ready, c->why_kind, c->why);
	if (c->in_read)
		c->dead = 1;		/* on_read frees it on its way out */
	else
		free(c);
}

unsigned
smtpc_transactions(const struct smtpc *c)
{
	return c->ntx;
}
