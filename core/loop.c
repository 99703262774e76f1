/*
 * loop.c - event loop threads and cross-thread calls (see loop.h).
 *
 * Queued calls sit in a mutex-protected FIFO; the first call queued into an
 * empty FIFO writes the loop's own eventfd, whose read event drains the
 * FIFO. A caller never touches the loop's event_base, so it never waits on
 * libevent's base lock (held by the loop for most of each turn); libevent's
 * pthread locking (evthread_use_pthreads) stays on for loop_exit() and for
 * bufferevents shared between threads.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "log.h"
#include "loop.h"
#include "util.h"

struct loop_call {
	loop_fn fn;
	void *arg;
	struct loop_call *next;
};

struct loop {
	char *name;
	struct event_base *base;
	struct event *wake;
	int wakefd;		/* eventfd: written when the FIFO fills */
	pthread_mutex_t mu;
	struct loop_call *head, *tail;
	pthread_t thread;
	int started;
};

void
loop_global_init(void)
{
	if (evthread_use_pthreads() == -1)
		fatalx("event=init error=\"libevent without pthread support\"");
}

static void
loop_drain(evutil_socket_t fd, short what, void *arg)
{
	struct loop *l = arg;
	struct loop_call *c, *next;
	uint64_t n;

	(void)what;
	if (fd != -1)		/* before taking the FIFO: no wake-up lost */
		while (read(fd, &n, sizeof(n)) == -1 && errno == EINTR)
			;
	pthread_mutex_lock(&l->mu);
	c = l->head;
	l->head = l->tail = NULL;
	pthread_mutex_unlock(&l->mu);
	for (; c != NULL; c = next) {
		next = c->next;
		c->fn(c->arg);
		free(c);
	}
}

struct loop *
loop_new(const char *name)
{
	struct loop *l = xcalloc(1, sizeof(*l));

	l->name = xstrdup(name);
	if ((l->base = event_base_new()) == NULL)
		fatalx("event=init loop=%s error=\"event_base_new failed\"", name);
	if ((l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("event=init loop=%s eventfd", name);
	l->wake = event_new(l->base, l->wakefd, EV_READ | EV_PERSIST,
	    loop_drain, l);
	if (l->wake == NULL || event_add(l->wake, NULL) == -1)
		fatalx("event=init loop=%s error=\"event_add failed\"", name);
	pthread_mutex_init(&l->mu, NULL);
	return l;
}

struct event_base *
loop_base(struct loop *l)
{
	return l->base;
}

const char *
loop_name(struct loop *l)
{
	return l->name;
}

void
loop_call(struct loop *l, loop_fn fn, void *arg)
{
	struct loop_call *c = xmalloc(sizeof(*c));
	int was_empty;

	c->fn = fn;
	c->arg = arg;
	c->next = NULL;
	pthread_mutex_lock(&l->mu);
	was_empty = (l->head == NULL);
	if (l->tail != NULL)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
	pthread_mutex_unlock(&l->mu);
	if (was_empty) {
		uint64_t one = 1;
		while (write(l->wakefd, &one, sizeof(one)) == -1 &&
		    errno == EINTR)
			;
	}
}

static void *
loop_thread(void *arg)
{
	loop_run(arg);
	return NULL;
}

void
loop_run(struct loop *l)
{
	event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
	loop_drain(-1, 0, l);		/* calls queued at the very end */
}

int
loop_start(struct loop *l)
{
	if (pthread_create(&l->thread, NULL, loop_thread, l) != 0)
		return -1;
	l->started = 1;
	return 0;
}

void
loop_exit(struct loop *l)
{
	event_base_loopexit(l->base, NULL);
}

void
loop_join(struct loop *l)
{
	if (l->started)
		pthread_join(l->thread, NULL);
	l->started = 0;
}

void
loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	event_free(l->wake);
	close(l->wakefd);
	event_base_free(l->base);
	pthread_mutex_destroy(&l->mu);
	free(l->name);
	free(l);
}

void
bev_write_now(struct bufferevent *bev)
{
	struct evbuffer *out = bufferevent_get_output(bev);

	if (evbuffer_get_length(out) == 0)
		return;
	evbuffer_unfreeze(out, 1);
	evbuffer_write(out, bufferevent_getfd(bev));
	evbuffer_freeze(out, 1);
}
