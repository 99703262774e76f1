/*
 * qmgr.c - delivery scheduling (qmgr.h).
 *
 * Every queued message has a struct qentry here. Entries wait either in
 * the ready FIFO (due now) or on their own timer (deferred); at most
 * delivery_concurrency attempts run at once on the delivery iopool.
 * Only ids are kept in memory: an attempt reads the envelope and status
 * from disk, so a large deferred queue costs little RAM.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "conf.h"
#include "deliver.h"
#include "iopool.h"
#include "log.h"
#include "loop.h"
#include "qmgr.h"
#include "queue.h"
#include "queue_status.h"
#include "server.h"
#include "util.h"

struct qentry {
	char id[QID_LEN + 1];
	struct event *timer;
	enum attempt_outcome outcome;
	uint64_t next;
	struct qentry *next_ready;
	struct qentry *prev, *next_all;
};

static struct {
	struct qentry *ready_head, *ready_tail;
	struct qentry *all;		/* every entry, for shutdown */
	unsigned in_flight;
	unsigned count;
	int stopping;
} qm;

static void dispatch(void);

static void
ready_push(struct qentry *e)
{
	e->next_ready = NULL;
	if (qm.ready_tail != NULL)
		qm.ready_tail->next_ready = e;
	else
		qm.ready_head = e;
	qm.ready_tail = e;
}

static struct qentry *
ready_pop(void)
{
	struct qentry *e = qm.ready_head;

	if (e != NULL && (qm.ready_head = e->next_ready) == NULL)
		qm.ready_tail = NULL;
	return e;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ready_push(arg);
	dispatch();
}

static struct qentry *
entry_new(const char *id)
{
	struct qentry *e = xcalloc(1, sizeof(*e));

	strlcpy_s(e->id, id, sizeof(e->id));
	e->timer = evtimer_new(loop_base(server.qmgr), on_timer, e);
	e->next_all = qm.all;
	if (qm.all != NULL)
		qm.all->prev = e;
	qm.all = e;
	qm.count++;
	return e;
}

static void
entry_free(struct qentry *e)
{
	if (e->prev != NULL)
		e->prev->next_all = e->next_all;
	else
		qm.all = e->next_all;
	if (e->next_all != NULL)
		e->next_all->prev = e->prev;
	event_free(e->timer);
	free(e);
	qm.count--;
}

static void
attempt_work(void *arg)
{
	struct qentry *e = arg;

	e->outcome = deliver_attempt(e->id, &e->next);
}

static void
schedule_at(struct qentry *e, uint64_t when)
{
	uint64_t now = (uint64_t)time(NULL);
	struct timeval tv = { when > now ? (time_t)(when - now) : 0, 0 };

	evtimer_add(e->timer, &tv);
}

static void
attempt_done(void *arg)
{
	struct qentry *e = arg;

	qm.in_flight--;
	if (e->outcome == ATTEMPT_DEFERRED && !qm.stopping)
		schedule_at(e, e->next);
	else if (e->outcome != ATTEMPT_DEFERRED)
		entry_free(e);
	dispatch();
}

static void
dispatch(void)
{
	struct qentry *e;

	while (!qm.stopping &&
	    qm.in_flight < server.conf->delivery.local_concurrency &&
	    (e = ready_pop()) != NULL) {
		qm.in_flight++;
		iopool_submit(server.delivery_pool, attempt_work, server.qmgr,
		    attempt_done, e);
	}
}

static void
submit_on_loop(void *arg)
{
	char *id = arg;

	ready_push(entry_new(id));
	free(id);
	dispatch();
}

void
qmgr_submit(const char *id)
{
	loop_call(server.qmgr, submit_on_loop, xstrdup(id));
}

void
qmgr_init(void)
{
	memset(&qm, 0, sizeof(qm));
}

/* recover_one - a message found at start: due now, or when its status says */
static void
recover_one(const char *id, void *arg)
{
	struct qentry *e = entry_new(id);
	uint64_t next;
	unsigned *n = arg;

	(*n)++;
	if (qstatus_next_attempt(id, &next) == 0 && next > (uint64_t)time(NULL))
		schedule_at(e, next);
	else
		ready_push(e);
}

void
qmgr_recover(void)
{
	unsigned n = 0;

	if (queue_scan(recover_one, &n) == -1)
		log_warn("event=recovery error=\"cannot scan queue\"");
	log_info("event=recovery queued=%u", n);
	dispatch();
}

static void
stop_on_loop(void *arg)
{
	(void)arg;
	qm.stopping = 1;
}

void
qmgr_stop(void)
{
	loop_call(server.qmgr, stop_on_loop, NULL);
}

void
qmgr_free(void)
{
	while (qm.all != NULL)
		entry_free(qm.all);
	qm.ready_head = qm.ready_tail = NULL;
}
