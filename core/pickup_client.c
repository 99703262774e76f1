/*
 * pickup_client.c - the pickup's side of its SMTP sessions (pickup_int.h)
 *
 * A socketpair stands in for a TCP connection: the worker gets one end as
 * if accepted from 127.0.0.1 on the internal listener "pickup", so the
 * message takes the normal path (every filter stage, the queue commit,
 * the 250 after fsync). The pickup thread speaks plain SMTP on the other
 * end, one command at a time, and waits at most PK_TIMEOUT_S for each
 * reply (filters at the message stage may take minutes).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "conn_limits.h"
#include "log.h"
#include "loop.h"
#include "pickup_int.h"
#include "server.h"
#include "smtp_session.h"
#include "util.h"

#define PK_TIMEOUT_S	600
#define PK_CHUNK	65536

static const struct conf_listener pickup_listener = {
	.name = "pickup", .address = "127.0.0.1", .port = 0,
	.role = ROLE_LOCAL,
};

struct pk_accept {
	struct worker *w;
	int fd;
	struct sockaddr_in sin;
};

static unsigned next_worker;

static void
accept_on_loop(void *arg)
{
	struct pk_accept *a = arg;

	session_accept(a->w, &pickup_listener, a->fd,
	    (struct sockaddr *)&a->sin, sizeof(a->sin));
	free(a);
}

/* read_line - one reply line into line (CRLF removed); -1 when gone */
static int
read_line(struct pk_conn *c, char *line, size_t len)
{
	for (;;) {
		char *nl = memchr(c->in, '\n', c->inlen);
		if (nl != NULL) {
			size_t n = (size_t)(nl - c->in) + 1, k = n - 1;
			if (k > 0 && c->in[k - 1] == '\r')
				k--;
			if (k >= len)
				k = len - 1;
			memcpy(line, c->in, k);
			line[k] = '\0';
			memmove(c->in, c->in + n, c->inlen - n);
			c->inlen -= n;
			return 0;
		}
		if (c->inlen == sizeof(c->in))
			c->inlen = 0;		/* overlong: drop it */
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int r = poll(&p, 1, PK_TIMEOUT_S * 1000);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t got = read(c->fd, c->in + c->inlen,
		    sizeof(c->in) - c->inlen);
		if (got == -1 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		c->inlen += (size_t)got;
	}
}

/* read_reply - the code of a (multi-line) reply, or -1 */
static int
read_reply(struct pk_conn *c)
{
	char line[PK_REPLY_MAX];

	for (;;) {
		if (read_line(c, line, sizeof(line)) == -1) {
			snprintf(c->reply, sizeof(c->reply), "connection lost");
			return -1;
		}
		if (strlen(line) < 3 || line[0] < '2' || line[0] > '5')
			continue;
		if (line[3] != '-') {
			snprintf(c->reply, sizeof(c->reply), "%s", line);
			return atoi(line);
		}
	}
}

static int
send_all(struct pk_conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
pk_open(struct pk_conn *c)
{
	struct pk_accept *a;
	int sv[2];

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("event=pickup error=\"socketpair\"");
		return -1;
	}
	if (fcntl(sv[1], F_SETFL, O_NONBLOCK) == -1) {
		log_warn("event=pickup error=\"fcntl\"");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	a = xcalloc(1, sizeof(*a));
	a->sin.sin_family = AF_INET;
	a->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->fd = sv[1];
	if (conn_limits_acquire((struct sockaddr *)&a->sin) != CONN_OK) {
		log_info("event=pickup status=deferred reason=\"too many "
		    "sessions\"");
		close(sv[0]);
		close(sv[1]);
		free(a);
		return -1;
	}
	a->w = &server.workers[next_worker++ % server.nworkers];
	loop_call(a->w->loop, accept_on_loop, a);
	c->fd = sv[0];
	if (read_reply(c) != 220 || pk_cmd(c, "EHLO localhost") != 250) {
		log_warnx("event=pickup status=deferred reply=%s",
		    log_q(c->reply));
		pk_close(c);
		return -1;
	}
	return 0;
}

int
pk_cmd(struct pk_conn *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2) {
		snprintf(c->reply, sizeof(c->reply), "command too long");
		return 500;
	}
	memcpy(line + n, "\r\n", 2);
	if (send_all(c, line, (size_t)n + 2) == -1) {
		snprintf(c->reply, sizeof(c->reply), "connection lost");
		return -1;
	}
	return read_reply(c);
}

int
pk_data(struct pk_conn *c, const char *msg, size_t len)
{
	char *out = xmalloc(PK_CHUNK + 2);
	size_t o = 0;
	int bol = 1;

	for (size_t i = 0; i < len; i++) {
		if (bol && msg[i] == '.')
			out[o++] = '.';
		out[o++] = msg[i];
		bol = msg[i] == '\n';
		if (o >= PK_CHUNK) {
			if (send_all(c, out, o) == -1)
				goto lost;
			o = 0;
		}
	}
	if (!bol) {			/* sendmail ends every line; still */
		memcpy(out + o, "\r\n", 2);
		o += 2;
	}
	if (send_all(c, out, o) == -1 || send_all(c, ".\r\n", 3) == -1)
		goto lost;
	free(out);
	return read_reply(c);
lost:
	free(out);
	snprintf(c->reply, sizeof(c->reply), "connection lost");
	return -1;
}

const char *
pk_queued_as(const char *reply)
{
	const char *p = strstr(reply, "queued as ");

	return p != NULL ? p + 10 : "?";
}

void
pk_close(struct pk_conn *c)
{
	if (c->fd == -1)
		return;
	(void)send_all(c, "QUIT\r\n", 6);
	close(c->fd);
	c->fd = -1;
}
