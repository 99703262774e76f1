/*
 * worker.c - SMTP worker threads: each runs a loop that accepts on every
 * listen socket (shared by all workers; the kernel wakes one or more and
 * the others see EAGAIN) and serves the sessions it accepted.
 *
 * A connection over the session limits gets "421" and is closed at once,
 * without a session. Running out of file descriptors answers the waiting
 * clients 421 with the spare descriptor (accept_reserve.c); when even that
 * cannot help, accepting pauses on this worker for a second instead of
 * spinning.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>


#include "accept_reserve.h"
#include "conf.h"
#include "conn_limits.h"
#include "dns.h"
#include "kv_redis.h"
#include "filter.h"
#include "log.h"
#include "loop.h"
#include "server.h"
#include "smtp_session.h"
#include "util.h"

#define ACCEPTS_PER_WAKEUP	32

struct accept_ctx {
	struct worker *worker;
	const struct listen_socket *ls;
};

static void accept_enable(struct worker *, int on);

/* refuse - answer a connection we will not serve, without blocking */
static void
refuse(int fd, const char *why)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "421 4.7.0 %s Error: %s\r\n",
	    server.conf->hostname, why);

	(void)!send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct accept_ctx *ctx = arg;
	struct sockaddr_storage ss;
	socklen_t sl;
	char addr[64];

	(void)what;
	for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
		sl = sizeof(ss);
		int fd = accept_reserve_accept(lfd, (struct sockaddr *)&ss,
		    &sl);
		if (fd == -1 && (errno == EMFILE || errno == ENFILE)) {
			int r = accept_reserve_refuse(lfd, ctx->ls->conf->name);
			if (r == 1)
				continue;	/* others may be waiting */
			if (r == 0)
				return;
			errno = EMFILE;
		}
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				log_warn("event=accept-paused listener=%s",
				    ctx->ls->conf->name);
				accept_enable(ctx->worker, 0);
			}
			return;		/* EAGAIN: another worker took it */
		}
		switch (smtp_proxy_expected(ctx->ls->conf,
		    (struct sockaddr *)&ss) ?
		    conn_limits_acquire_proxy((struct sockaddr *)&ss) :
		    conn_limits_acquire((struct sockaddr *)&ss)) {
		case CONN_OK:
			session_accept(ctx->worker, ctx->ls->conf, fd,
			    (struct sockaddr *)&ss, sl);
			break;
		case CONN_TOO_MANY:
			log_info("event=refused reason=\"too many sessions\"");
			refuse(fd, "too many sessions, try again later");
			break;
		case CONN_TOO_MANY_FROM_IP:
			evutil_inet_ntop(ss.ss_family, ss.ss_family == AF_INET ?
			    (void *)&((struct sockaddr_in *)&ss)->sin_addr :
			    (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr,
			    addr, sizeof(addr));
			log_info("event=refused client=%s reason=\"too many "
			    "sessions from this address\"", addr);
			refuse(fd, "too many sessions from your address");
			break;
		}
	}
}

static void
accept_enable(struct worker *w, int on)
{
	struct timeval one = { 1, 0 };

	for (unsigned i = 0; i < server.nlisteners; i++) {
		if (on)
			event_add(w->accept_ev[i], NULL);
		else
			event_del(w->accept_ev[i]);
	}
	if (!on && !w->stopping)
		evtimer_add(w->accept_pause, &one);
}

static void
on_accept_pause_end(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (!w->stopping)
		accept_enable(w, 1);
}

static void
worker_setup(struct worker *w, unsigned idx)
{
	char name[32], err[512];

	w->idx = idx;
	snprintf(name, sizeof(name), "smtp-%u", idx);
	w->loop = loop_new(name);
	w->linecap = server.conf->limits.command_line_length + 1;
	w->linebuf = xmalloc(w->linecap);
	w->accept_ev = xcalloc(server.nlisteners, sizeof(*w->accept_ev));
	for (unsigned i = 0; i < server.nlisteners; i++) {
		struct accept_ctx *ctx = xmalloc(sizeof(*ctx));
		ctx->worker = w;
		ctx->ls = &server.listeners[i];
		w->accept_ev[i] = event_new(loop_base(w->loop),
		    server.listeners[i].fd, EV_READ | EV_PERSIST, on_accept, ctx);
	}
	w->accept_pause = evtimer_new(loop_base(w->loop), on_accept_pause_end, w);
	if ((w->dns = dns_resolver_new(loop_base(w->loop), &server.conf->dns,
	    err, sizeof(err))) == NULL)
		log_warnx("event=init worker=%u warning=\"no DNS resolver: %s\"",
		    idx, err);
	if (server.conf->kv.backend == KV_BACKEND_REDIS)
		w->kv = kv_redis_new(loop_base(w->loop), &server.conf->kv.redis,
		    name);
	if (server.pipeline != NULL && pipeline_attach(server.pipeline, w, idx,
	    err, sizeof(err)) == -1)
		fatalx("event=init error=%s", log_q(err));
	accept_enable(w, 1);
}

void
workers_start(void)
{
	if (accept_reserve_init() == -1)
		log_warn("event=init warning=\"no spare file descriptor\"");
	server.workers = xcalloc(server.nworkers, sizeof(*server.workers));
	for (unsigned i = 0; i < server.nworkers; i++) {
		worker_setup(&server.workers[i], i);
		if (loop_start(server.workers[i].loop) == -1)
			fatal("event=init error=\"cannot start worker thread\"");
	}
}

/*
 * stop_on_loop - runs on the worker: stop accepting, end idle sessions;
 * once server.stopping is 2 (the shutdown deadline passed), every session.
 * Called again by the shutdown sweep (shutdown.c).
 */
static void
stop_on_loop(void *arg)
{
	struct worker *w = arg;
	struct smtp_session *s, *next;

	w->stopping = atomic_load(&server.stopping);
	for (unsigned i = 0; i < server.nlisteners; i++)
		event_del(w->accept_ev[i]);
	evtimer_del(w->accept_pause);
	for (s = w->sessions; s != NULL; s = next) {
		next = s->next;
		session_shutdown(s);
	}
}

void
workers_stop(void)
{
	for (unsigned i = 0; i < server.nworkers; i++)
		loop_call(server.workers[i].loop, stop_on_loop,
		    &server.workers[i]);
}

static void
exit_on_loop(void *arg)
{
	loop_exit(((struct worker *)arg)->loop);
}

/* workers_drain - give sessions up to `seconds` to end by themselves */
void
workers_drain(unsigned seconds)
{
	uint64_t deadline = mono_msec() + seconds * 1000ull;

	for (unsigned i = 0; i < server.nworkers; i++) {
		struct worker *w = &server.workers[i];
		while (__atomic_load_n(&w->nsessions, __ATOMIC_RELAXED) > 0 &&
		    mono_msec() < deadline)
			usleep(50 * 1000);
	}
}

/*
 * workers_exit - stop the loops and free what is left. Call only once no
 * job can come back to a session (the commit pool has been freed).
 */
void
workers_exit(void)
{
	for (unsigned i = 0; i < server.nworkers; i++) {
		struct worker *w = &server.workers[i];
		loop_call(w->loop, exit_on_loop, w);
		loop_join(w->loop);
		while (w->sessions != NULL)
			session_abort(w->sessions);
		for (unsigned k = 0; k < server.nlisteners; k++) {
			free(event_get_callback_arg(w->accept_ev[k]));
			event_free(w->accept_ev[k]);
		}
		event_free(w->accept_pause);
		kv_redis_free(w->kv);
		dns_resolver_free(w->dns);
		free(w->accept_ev);
		free(w->linebuf);
		loop_free(w->loop);
	}
	free(server.workers);
	server.workers = NULL;
	accept_reserve_free();
}
