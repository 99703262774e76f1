/*
 * sd_notify.c - send systemd notifications (sd_notify.h)
 *
 * A failed send is logged and otherwise ignored: systemd then times the
 * start out, which says more than anything we could do here.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "sd_notify.h"

static int notify_fd = -1;

int
sd_notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	size_t n;

	if (path == NULL || *path == '\0')
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sun.sun_path)) {
		log_warnx("event=init warning=\"unusable NOTIFY_SOCKET %s\"",
		    log_q(path));
		unsetenv("NOTIFY_SOCKET");
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';		/* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	    (path[0] == '/'));
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_fd == -1 ||
	    connect(notify_fd, (struct sockaddr *)&sun, len) == -1) {
		log_warn("event=init warning=\"cannot reach NOTIFY_SOCKET %s\"",
		    log_q(path));
		sd_notify_close();
		unsetenv("NOTIFY_SOCKET");
		return -1;
	}
	unsetenv("NOTIFY_SOCKET");
	return 0;
}

void
sd_notify(const char *state)
{
	if (notify_fd == -1)
		return;
	if (send(notify_fd, state, strlen(state), MSG_NOSIGNAL) == -1)
		log_warn("event=sd-notify warning=\"send failed\" state=%s",
		    log_q(state));
	else
		log_debug("event=sd-notify state=%s", log_q(state));
}

void
sd_notify_close(void)
{
	if (notify_fd != -1)
		close(notify_fd);
	notify_fd = -1;
}
