/*
 * metrics_http.c - the Prometheus scrape endpoint (metrics_http.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "conf.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "metrics_http.h"
#include "util.h"

#define HTTP_TIMEOUT	10	/* seconds for a scraper's request */

static struct {
	int fd;
	struct loop *loop;
	struct evhttp *http;
} mh = { -1, NULL, NULL };

static void
on_request(struct evhttp_request *req, void *arg)
{
	const char *path = evhttp_uri_get_path(
	    evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *out;

	(void)arg;
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, 405, "GET only");
		return;
	}
	out = evbuffer_new();
	metrics_render(out);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", out);
	evbuffer_free(out);
}

int
metrics_http_bind(const struct config *c, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	unsigned sl;
	int on = 1;

	if (c->metrics.port == 0)
		return 0;
	if (sockaddr_numeric(c->metrics.address, c->metrics.port, &ss,
	    &sl) == -1) {
		snprintf(err, errlen, "metrics: bad address %s",
		    c->metrics.address);
		return -1;
	}
	mh.fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (mh.fd == -1)
		goto fail;
	setsockopt(mh.fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(mh.fd, (struct sockaddr *)&ss, sl) == -1 ||
	    listen(mh.fd, 64) == -1)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "metrics: cannot listen on %s port %u: %s",
	    c->metrics.address, c->metrics.port, strerror(errno));
	if (mh.fd != -1)
		close(mh.fd);
	mh.fd = -1;
	return -1;
}

void
metrics_http_start(void)
{
	if (mh.fd == -1)
		return;
	mh.loop = loop_new("metrics");
	mh.http = evhttp_new(loop_base(mh.loop));
	evhttp_set_timeout(mh.http, HTTP_TIMEOUT);
	evhttp_set_allowed_methods(mh.http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
	evhttp_set_gencb(mh.http, on_request, NULL);
	if (evhttp_accept_socket(mh.http, mh.fd) == -1 ||
	    loop_start(mh.loop) == -1)
		fatalx("event=init error=\"cannot start the metrics server\"");
}

void
metrics_http_stop(void)
{
	if (mh.loop == NULL) {
		if (mh.fd != -1)
			close(mh.fd);
		mh.fd = -1;
		return;
	}
	loop_exit(mh.loop);
	loop_join(mh.loop);
	evhttp_free(mh.http);		/* closes the socket */
	loop_free(mh.loop);
	mh.loop = NULL;
	mh.http = NULL;
	mh.fd = -1;
}
