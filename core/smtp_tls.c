/*
 * smtp_tls.c - TLS in an SMTP session: STARTTLS (RFC 3207), implicit TLS
 * on submissions listeners (RFC 8314), and what the session learns from
 * the handshake.
 *
 * STARTTLS: the 220 reply is written to the socket at once, whatever the
 * client pipelined after the command is thrown away (plaintext injection,
 * CVE-2011-0411 style), and the plain bufferevent is replaced by an
 * OpenSSL one on a duplicate of the same socket. Until the handshake is
 * done the session reads no command (SS_HANDSHAKE). Once it is, the
 * session forgets HELO and starts again from "greeted", as RFC 3207 4.2
 * wants: the client must say EHLO again, and is told of AUTH then.
 * Implicit TLS: the session switches to OpenSSL before its first byte
 * (after a PROXY header, when a load balancer sends one); the connect
 * stage and the greeting wait for the handshake, so filters at connect
 * already see the TLS version and cipher.
 * A failed handshake is logged with OpenSSL's reason and ends the session.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "conf.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "server.h"
#include "smtp_session.h"
#include "tls_server.h"
#include "util.h"

#define SID(s)	((unsigned long long)(s)->id)

/* the listener's index among those bound at start (tls_server_ssl()) */
static size_t
listener_index(const struct smtp_session *s)
{
	for (unsigned i = 0; i < server.nlisteners; i++)
		if (server.listeners[i].conf == s->listener)
			return i;
	return (size_t)-1;
}

static struct bufferevent *
ssl_bufferevent(struct smtp_session *s, int fd, SSL *ssl)
{
	return bufferevent_openssl_socket_new(loop_base(s->worker->loop), fd,
	    ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

int
smtp_tls_offered(const struct smtp_session *s)
{
	return !s->tls && (s->listener->tls.mode == TLS_MODE_OPTIONAL ||
	    s->listener->tls.mode == TLS_MODE_REQUIRED);
}

/*
 * tls_switch - from the plain bufferevent to an OpenSSL one on a duplicate
 * of the same socket (freeing the plain one closes only the original
 * descriptor); what the plain one still had to send is written first
 */
static int
tls_switch(struct smtp_session *s, SSL *ssl)
{
	struct bufferevent *plain = s->bev, *bev;
	int fd;

	bev_write_now(plain);
	fd = fcntl(bufferevent_getfd(plain), F_DUPFD_CLOEXEC, 0);
	if (evbuffer_get_length(bufferevent_get_output(plain)) > 0 ||
	    fd == -1 || (bev = ssl_bufferevent(s, fd, ssl)) == NULL) {
		log_warnx("session=%016llx event=tls-error reason=\"cannot "
		    "start TLS\"", SID(s));
		if (fd != -1)
			close(fd);
		SSL_free(ssl);
		return -1;
	}
	bufferevent_free(plain);
	s->flags |= SS_HANDSHAKE;
	session_use_bev(s, bev, 0);
	return 0;
}

int
smtp_tls_implicit(struct smtp_session *s)
{
	SSL *ssl = tls_server_ssl(listener_index(s));

	if (ssl == NULL) {
		log_warnx("session=%016llx event=tls-error reason=\"no TLS "
		    "context\"", SID(s));
		return -1;
	}
	return tls_switch(s, ssl);
}

void
smtp_cmd_starttls(struct smtp_session *s, char *args)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t pipelined;
	SSL *ssl;

	if (s->tls) {
		session_reply(s, "554 5.5.1 Error: TLS already active");
		session_client_error(s);
		return;
	}
	if (!smtp_tls_offered(s)) {
		session_reply(s, "502 5.5.1 Error: command not implemented");
		session_client_error(s);
		return;
	}
	if (*args != '\0') {
		session_reply(s, "501 5.5.4 Syntax: STARTTLS");
		session_client_error(s);
		return;
	}
	if (s->tx != NULL) {
		session_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		session_client_error(s);
		return;
	}
	if ((ssl = tls_server_ssl(listener_index(s))) == NULL) {
		session_reply(s, "454 4.7.0 TLS not available due to local "
		    "problem");
		return;
	}
	session_reply(s, "220 2.0.0 Ready to start TLS");
	if ((pipelined = evbuffer_get_length(in)) > 0) {
		log_warnx("session=%016llx event=starttls-pipelined client=%s "
		    "discarded=%zu", SID(s), s->addr, pipelined);
		evbuffer_drain(in, pipelined);
	}
	if (tls_switch(s, ssl) == -1)
		session_close(s, "starttls failed");
}

/* the handshake is done: note what it gave, and start (again) */
void
smtp_tls_established(struct smtp_session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int alg = 0;

	s->flags &= ~SS_HANDSHAKE;
	s->tls = 1;
	snprintf(s->tls_version, sizeof(s->tls_version), "%s",
	    SSL_get_version(ssl));
	snprintf(s->tls_cipher, sizeof(s->tls_cipher), "%s",
	    c != NULL ? SSL_CIPHER_get_name(c) : "unknown");
	s->tls_bits = c != NULL ? SSL_CIPHER_get_bits(c, &alg) : 0;
	s->subj.tls_version = s->tls_version;
	s->subj.tls_cipher = s->tls_cipher;
	s->subj.tls_bits = (unsigned)s->tls_bits;
	metrics_inc(M_TLS_HANDSHAKES, "inbound", "ok");
	log_info("session=%016llx event=tls version=%s cipher=%s bits=%d",
	    SID(s), s->tls_version, s->tls_cipher, s->tls_bits);
	if (s->state == SMTP_CONNECTED) {	/* implicit TLS */
		smtp_filter_connect(s);
		return;
	}
	/* RFC 3207 4.2: nothing said before the handshake counts */
	session_tx_free(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	session_enter(s, SMTP_GREETED);
	session_continue(s);
}

/* the handshake failed (or the client left during it): say why */
void
smtp_tls_failed(struct smtp_session *s, short what)
{
	char why[256] = "connection closed";
	unsigned long e;

	if (s->bev != NULL &&
	    (e = bufferevent_get_openssl_error(s->bev)) != 0)
		ERR_error_string_n(e, why, sizeof(why));
	else if ((what & BEV_EVENT_ERROR) && errno != 0)
		snprintf(why, sizeof(why), "%s", strerror(errno));
	while (s->bev != NULL && bufferevent_get_openssl_error(s->bev) != 0)
		;
	metrics_inc(M_TLS_HANDSHAKES, "inbound", "failed");
	log_info("session=%016llx event=tls-failed client=%s reason=%s",
	    SID(s), s->addr, log_q(why));
}

/* smtp_tls_received - the Received: comment for the TLS layer, or "" */
void
smtp_tls_received(const struct smtp_session *s, char *buf, size_t len)
{
	if (!s->tls) {
		if (len > 0)
			buf[0] = '\0';
		return;
	}
	snprintf(buf, len, "\r\n\t(using %s with cipher %s (%d bits))",
	    s->tls_version, s->tls_cipher, s->tls_bits);
}
