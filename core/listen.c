/*
 * listen.c - listen sockets (listen.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "listen.h"
#include "server.h"
#include "util.h"

#define BACKLOG	1024

static int
listen_one(const struct conf_listener *l, char *err, unsigned errlen)
{
	struct sockaddr_storage ss;
	unsigned sl;
	int fd, on = 1;

	if (sockaddr_numeric(l->address, l->port, &ss, &sl) == -1) {
		snprintf(err, errlen, "listener %s: bad address %s", l->name,
		    l->address);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	sock_nodelay(fd);	/* accepted sockets inherit it: small replies
				   go at once, no Nagle delay */
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, sl) == -1 ||
	    listen(fd, BACKLOG) == -1)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "listener %s: cannot listen on %s port %u: %s",
	    l->name, l->address, l->port, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

int
listen_all(const struct config *c, struct listen_socket **out, unsigned *n,
    char *err, unsigned errlen)
{
	struct listen_socket *ls = xcalloc(c->nlisteners, sizeof(*ls));

	for (size_t i = 0; i < c->nlisteners; i++) {
		ls[i].conf = &c->listeners[i];
		if ((ls[i].fd = listen_one(&c->listeners[i], err, errlen)) == -1) {
			while (i-- > 0)
				close(ls[i].fd);
			free(ls);
			return -1;
		}
	}
	*out = ls;
	*n = (unsigned)c->nlisteners;
	return 0;
}
