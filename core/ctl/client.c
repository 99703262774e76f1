/*
 * client.c - talking to the running sluiced over its control socket
 * (control.h): where the socket is, and one request with its whole answer.
 * Used by the queue commands (queue.c) and top (top.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"
#include "ctl.h"
#include "util.h"

#define ANSWER_MAX	(256u << 20)

int
ctl_socket_path(const char *conf, const char *given, char *buf, size_t len)
{
	char err[CONF_ERR_LEN];
	struct config *cf;

	if (given != NULL) {
		snprintf(buf, len, "%s", given);
		return 0;
	}
	if ((cf = conf_load(conf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "sluicectl: %s\n", err);
		return -1;
	}
	snprintf(buf, len, "%s", cf->control_socket);
	conf_free(cf);
	return 0;
}

char *
ctl_request(const char *path, const char *line)
{
	struct sockaddr_un sun;
	size_t len = 0, cap = 65536;
	char *buf;
	ssize_t k;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "sluicectl: cannot reach sluiced at %s: %s "
		    "(is it running?)\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return NULL;
	}
	if (write_all(fd, line, strlen(line)) == -1 ||
	    write_all(fd, "\n", 1) == -1) {
		fprintf(stderr, "sluicectl: %s: %s\n", path, strerror(errno));
		close(fd);
		return NULL;
	}
	buf = xmalloc(cap);
	while ((k = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)k;
		if (len + 1 == cap && cap < ANSWER_MAX)
			buf = xrealloc(buf, cap *= 2);
		else if (len + 1 == cap)
			break;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}
