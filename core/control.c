/*
 * control.c - the control socket server (control.h), on the qmgr loop.
 *
 * One request per connection, at most CONTROL_CLIENTS at once, a request
 * line of at most CONTROL_LINE_MAX bytes within CONTROL_TIMEOUT seconds.
 * Queue changes call the queue manager directly; list and show read the
 * spool on the delivery iopool and answer when that is done. metrics takes
 * the queue manager's snapshot here, on its loop, and renders the
 * exposition on the iopool too (metrics_render_queue() would wait for this
 * very loop). metrics is not logged: sluicectl top asks every second.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "control.h"
#include "iopool.h"
#include "log.h"
#include "metrics.h"
#include "qid.h"
#include "qmgr.h"
#include "server.h"
#include "util.h"

#define CONTROL_CLIENTS		16
#define CONTROL_LINE_MAX	512
#define CONTROL_TIMEOUT		10
#define CONTROL_ACCEPTS		32	/* accepted per wakeup */
#define CONTROL_BACKLOG		64

struct client {
	struct client *prev, *next;	/* every client */
	int busy;			/* a read job holds it */
	struct bufferevent *bev;
	struct evbuffer *answer;	/* built off the loop */
	char cmd[16];
	char id[QID_LEN + 1];
	char state[16];
	char **active;
	size_t nactive;
	struct metrics_snapshot *snap;	/* metrics */
	int status;
};

static struct {
	int fd;
	struct event *ev;
	struct event_base *base;
	char *path;
	unsigned clients;
	struct client *all;
	int closing;
} ctl = { -1, NULL, NULL, NULL, 0, NULL, 0 };

static void
client_free(struct client *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		ctl.all = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	bufferevent_free(c->bev);
	if (c->answer != NULL)
		evbuffer_free(c->answer);
	for (size_t i = 0; i < c->nactive; i++)
		free(c->active[i]);
	free(c->active);
	if (c->snap != NULL)
		metrics_snapshot_clear(c->snap);
	free(c->snap);
	free(c);
	ctl.clients--;
}

static void	on_event(struct bufferevent *, short, void *);
static void	client_new(int);

static void
on_flushed(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		client_free(c);
}

/* answer - send what is in the output, then close */
static void
answer(struct client *c)
{
	/* a client gone before it read the answer: freed by on_event */
	bufferevent_setcb(c->bev, NULL, on_flushed, on_event, c);
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
	on_flushed(c->bev, c);
}

static void
say(struct client *c, const char *line)
{
	evbuffer_add_printf(bufferevent_get_output(c->bev), "%s\n", line);
	answer(c);
}

static void
read_work(void *arg)
{
	struct client *c = arg;

	c->answer = evbuffer_new();
	if (strcmp(c->cmd, "metrics") == 0) {
		metrics_render_families(c->answer);
		metrics_render_snapshot(c->answer, c->snap);
	} else if (strcmp(c->cmd, "list") == 0)
		control_list(c->answer, c->active, c->nactive);
	else
		c->status = control_show(c->answer, c->id,
		    c->state[0] ? c->state : NULL);
}

static void
read_done(void *arg)
{
	struct client *c = arg;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	c->busy = 0;
	if (ctl.closing) {
		client_free(c);
		return;
	}
	if (c->status == -1) {
		say(c, "error no such message");
		return;
	}
	evbuffer_add_printf(out, "ok\n");
	evbuffer_add_buffer(out, c->answer);
	answer(c);
}

/* run - one request; "cmd" or "cmd ID" */
static void
run(struct client *c, char *line)
{
	static const struct {
		const char *name;
		int (*fn)(const char *);
	} ops[] = {
		{ "flush", qmgr_flush }, { "hold", qmgr_hold },
		{ "release", qmgr_release }, { "delete", qmgr_delete },
		{ "bounce", qmgr_bounce },
	};
	char *arg = strchr(line, ' ');

	if (arg != NULL)
		*arg++ = '\0';
	if (arg != NULL && !qid_valid(arg)) {
		say(c, "error not a queue ID");
		return;
	}
	strlcpy_s(c->cmd, line, sizeof(c->cmd));
	if (strcmp(line, "metrics") == 0 && arg == NULL) {
		c->snap = xcalloc(1, sizeof(*c->snap));
		metrics_snapshot_take(c->snap);
		c->busy = 1;
		iopool_submit(server.delivery_pool, read_work, server.qmgr,
		    read_done, c);
		return;
	}
	log_info("event=control command=%s id=%s", log_q(line),
	    arg ? arg : "-");
	if (strcmp(line, "list") == 0 && arg == NULL) {
		c->nactive = qmgr_active_ids(&c->active);
		c->busy = 1;
		iopool_submit(server.delivery_pool, read_work, server.qmgr,
		    read_done, c);
		return;
	}
	if (strcmp(line, "show") == 0 && arg != NULL) {
		const char *st = qmgr_state(arg);
		strlcpy_s(c->id, arg, sizeof(c->id));
		strlcpy_s(c->state, st && strcmp(st, "active") == 0 ?
		    st : "", sizeof(c->state));
		c->busy = 1;
		iopool_submit(server.delivery_pool, read_work, server.qmgr,
		    read_done, c);
		return;
	}
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strcmp(line, ops[i].name) != 0)
			continue;
		if (arg == NULL && ops[i].fn != qmgr_flush) {
			say(c, "error this command needs a queue ID");
			return;
		}
		say(c, ops[i].fn(arg) == 0 ? "ok" : "error no such message");
		return;
	}
	say(c, "error unknown command");
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);

	if (line == NULL) {
		if (evbuffer_get_length(in) > CONTROL_LINE_MAX)
			say(c, "error request too long");
		return;
	}
	bufferevent_disable(bev, EV_READ);
	if (n > CONTROL_LINE_MAX || str_has_ctl(line))
		say(c, "error malformed request");
	else
		run(c, line);
	free(line);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;

	(void)bev;
	if (c->answer == NULL && (what & BEV_EVENT_TIMEOUT) &&
	    (what & BEV_EVENT_READING))
		say(c, "error timeout");
	else
		client_free(c);
}

static void
on_accept(evutil_socket_t fd, short what, void *arg)
{
	int s;

	(void)what;
	(void)arg;
	for (int i = 0; i < CONTROL_ACCEPTS; i++) {
		s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s == -1)
			return;
		if (ctl.clients >= CONTROL_CLIENTS) {
			(void)!write(s, "error busy\n", 11);
			close(s);
			continue;
		}
		client_new(s);
	}
}

static void
client_new(int s)
{
	struct timeval tv = { CONTROL_TIMEOUT, 0 };
	struct client *c = xcalloc(1, sizeof(*c));

	c->bev = bufferevent_socket_new(ctl.base, s, BEV_OPT_CLOSE_ON_FREE);
	ctl.clients++;
	c->next = ctl.all;
	if (ctl.all != NULL)
		ctl.all->prev = c;
	ctl.all = c;
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ);
}

int
control_open(struct event_base *base, const char *path, char *err,
    size_t errlen)
{
	struct sockaddr_un sun;
	mode_t old;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control socket path too long: %s", path);
		return -1;
	}
	strlcpy_s(sun.sun_path, path, sizeof(sun.sun_path));
	ctl.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	(void)unlink(path);		/* the spool lock says it is ours */
	old = umask(0177);
	if (ctl.fd == -1 || bind(ctl.fd, (struct sockaddr *)&sun,
	    sizeof(sun)) == -1 || listen(ctl.fd, CONTROL_BACKLOG) == -1) {
		umask(old);
		snprintf(err, errlen, "control socket %s: %s", path,
		    strerror(errno));
		if (ctl.fd != -1)
			close(ctl.fd);
		ctl.fd = -1;
		return -1;
	}
	umask(old);
	ctl.base = base;
	ctl.path = xstrdup(path);
	ctl.ev = event_new(base, ctl.fd, EV_READ | EV_PERSIST, on_accept,
	    NULL);
	event_add(ctl.ev, NULL);
	return 0;
}

void
control_close(void)
{
	struct client *c, *next;

	ctl.closing = 1;
	for (c = ctl.all; c != NULL; c = next) {
		next = c->next;
		if (!c->busy)
			client_free(c);
	}
	if (ctl.ev != NULL)
		event_free(ctl.ev);
	if (ctl.fd != -1) {
		close(ctl.fd);
		unlink(ctl.path);
	}
	free(ctl.path);
	ctl.ev = NULL;
	ctl.fd = -1;
	ctl.path = NULL;
}
