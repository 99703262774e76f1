/*
 * qmgr.c - delivery scheduling (qmgr.h).
 *
 * Every queued message has a struct qentry here, found by id in a hash
 * table. An entry waits either in the ready FIFO (due now) or on its own
 * timer (deferred), or has an attempt running. Only ids are kept in
 * memory: an attempt reads the envelope and status from disk, so a large
 * deferred queue costs little RAM. Operator requests for a message whose
 * attempt is running (hold, delete, bounce) wait for the attempt's end.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "attempt.h"
#include "conf.h"
#include "control.h"
#include "dest.h"
#include "dns.h"
#include "kv_redis.h"
#include "filter.h"
#include "log.h"
#include "loop.h"
#include "qid.h"
#include "qmgr.h"
#include "queue.h"
#include "queue_status.h"
#include "server.h"
#include "smtpc.h"
#include "util.h"

#define ENTRY_BUCKETS	4096
#define QMGR_STOP_WAIT	10	/* s for attempts in flight at shutdown */

enum after { AFTER_NOTHING, AFTER_HOLD, AFTER_DELETE, AFTER_BOUNCE };

struct qentry {
	char id[QID_LEN + 1];
	struct event *timer;
	int ready;			/* in the ready FIFO */
	int running;			/* an attempt runs */
	int bounce_now;			/* the next attempt bounces */
	int first;			/* just queued: never attempted */
	enum after after;		/* what the operator asked meanwhile */
	struct qentry *next_ready;
	struct qentry *prev, *next_all;
	struct qentry *hnext;
};

static struct {
	struct qentry *ready_head, *ready_tail;
	struct qentry *all;		/* every entry, for shutdown */
	struct qentry *hash[ENTRY_BUCKETS];
	unsigned in_flight;
	unsigned count;
	int stopping;
	struct dns_resolver *dns;
	pthread_mutex_t mu;		/* qmgr_stop() waits for the loop */
	pthread_cond_t cv;
	int stopped;
} qm;

static void dispatch(void);
static void maybe_stopped(void);

static unsigned
bucket(const char *id)
{
	return fnv1a(id, strlen(id)) % ENTRY_BUCKETS;
}

static struct qentry *
entry_find(const char *id)
{
	struct qentry *e = qm.hash[bucket(id)];

	while (e != NULL && strcmp(e->id, id) != 0)
		e = e->hnext;
	return e;
}

static void
ready_push(struct qentry *e)
{
	if (e->ready || e->running)
		return;
	evtimer_del(e->timer);
	e->ready = 1;
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
	if (e != NULL)
		e->ready = 0;
	return e;
}

static void
ready_remove(struct qentry *e)
{
	struct qentry **p = &qm.ready_head, *prev = NULL;

	if (!e->ready)
		return;
	while (*p != e) {
		prev = *p;
		p = &(*p)->next_ready;
	}
	*p = e->next_ready;
	if (qm.ready_tail == e)
		qm.ready_tail = prev;
	e->ready = 0;
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
	struct qentry *e;
	unsigned b = bucket(id);

	if ((e = entry_find(id)) != NULL)
		return e;
	e = xcalloc(1, sizeof(*e));
	strlcpy_s(e->id, id, sizeof(e->id));
	e->timer = evtimer_new(loop_base(server.qmgr), on_timer, e);
	e->next_all = qm.all;
	if (qm.all != NULL)
		qm.all->prev = e;
	qm.all = e;
	e->hnext = qm.hash[b];
	qm.hash[b] = e;
	qm.count++;
	return e;
}

static void
entry_free(struct qentry *e)
{
	struct qentry **h = &qm.hash[bucket(e->id)];

	ready_remove(e);
	while (*h != e)
		h = &(*h)->hnext;
	*h = e->hnext;
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
schedule_at(struct qentry *e, uint64_t when)
{
	uint64_t now = (uint64_t)time(NULL);
	struct timeval tv = { when > now ? (time_t)(when - now) : 0, 0 };

	evtimer_add(e->timer, &tv);
}

static void
hold_now(struct qentry *e)
{
	if (queue_move(e->id, "hold") == -1) {
		log_warn("qid=%s event=hold-failed", e->id);
		return;
	}
	log_info("qid=%s event=held", e->id);
	entry_free(e);
}

static void
delete_now(struct qentry *e)
{
	if (queue_remove(e->id) == -1) {
		log_warn("qid=%s event=delete-failed", e->id);
		return;
	}
	log_info("qid=%s event=deleted by=operator", e->id);
	entry_free(e);
}

static void
attempt_done(void *arg, const struct attempt_report *rep)
{
	struct qentry *e = arg;

	qm.in_flight--;
	e->running = 0;
	for (unsigned i = 0; i < rep->nnew && !qm.stopping; i++)
		ready_push(entry_new(rep->new_ids[i]));
	if (rep->outcome != ATTEMPT_DEFERRED)
		entry_free(e);
	else if (e->after == AFTER_HOLD)
		hold_now(e);
	else if (e->after == AFTER_DELETE)
		delete_now(e);
	else if (e->after == AFTER_BOUNCE) {
		e->after = AFTER_NOTHING;
		e->bounce_now = 1;
		ready_push(e);
	} else if (!qm.stopping)
		schedule_at(e, rep->next);
	dispatch();
	maybe_stopped();
}

static void
dispatch(void)
{
	struct qentry *e;

	while (!qm.stopping && qm.in_flight < QMGR_ACTIVE_MAX &&
	    (e = ready_pop()) != NULL) {
		unsigned flags = (e->bounce_now ? ATTEMPT_BOUNCE_NOW : 0) |
		    (e->first ? ATTEMPT_FIRST : 0);
		qm.in_flight++;
		e->running = 1;
		e->bounce_now = e->first = 0;
		e->after = AFTER_NOTHING;
		attempt_start(e->id, flags, attempt_done, e);
	}
}

static void
submit_on_loop(void *arg)
{
	char *id = arg;

	if (!qm.stopping) {
		struct qentry *e = entry_new(id);
		e->first = 1;
		ready_push(e);
	}
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
	char err[512];
	struct event_base *base = loop_base(server.qmgr);

	memset(&qm, 0, sizeof(qm));
	pthread_mutex_init(&qm.mu, NULL);
	pthread_cond_init(&qm.cv, NULL);
	if ((qm.dns = dns_resolver_new(base, &server.conf->dns, err,
	    sizeof(err))) == NULL)
		fatalx("event=init error=%s", log_q(err));
	if (smtpc_global_init(err, sizeof(err)) == -1)
		fatalx("event=init error=%s", log_q(err));
	dest_init(base, qm.dns);
	server.qmgr_worker.idx = server.nworkers;
	server.qmgr_worker.loop = server.qmgr;
	server.qmgr_worker.dns = qm.dns;
	if (server.conf->kv.backend == KV_BACKEND_REDIS)
		server.qmgr_worker.kv = kv_redis_new(base,
		    &server.conf->kv.redis, "qmgr");
	if (server.pipeline != NULL && pipeline_attach(server.pipeline,
	    &server.qmgr_worker, server.nworkers, err, sizeof(err)) == -1)
		fatalx("event=init error=%s", log_q(err));
	if (control_open(base, server.conf->control_socket, err,
	    sizeof(err)) == -1)
		fatalx("event=init error=%s", log_q(err));
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

/* maybe_stopped - stopping and no attempt left: qmgr_stop() may go on */
static void
maybe_stopped(void)
{
	if (!qm.stopping || qm.in_flight > 0)
		return;
	pthread_mutex_lock(&qm.mu);
	qm.stopped = 1;
	pthread_cond_signal(&qm.cv);
	pthread_mutex_unlock(&qm.mu);
}

static void
stop_on_loop(void *arg)
{
	(void)arg;
	qm.stopping = 1;
	attempt_stopping();
	control_close();
	dest_shutdown();		/* remote deliveries end at once */
	maybe_stopped();
}

/*
 * qmgr_stop - no new attempts; the ones in flight (local deliveries, a
 * result filter still running) end and record what they delivered, for
 * at most QMGR_STOP_WAIT seconds: after that their results are lost and
 * the messages are tried again at the next start.
 */
void
qmgr_stop(void)
{
	struct timespec until;
	int timed_out = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += QMGR_STOP_WAIT;
	loop_call(server.qmgr, stop_on_loop, NULL);
	pthread_mutex_lock(&qm.mu);
	while (!qm.stopped && !timed_out)
		timed_out = pthread_cond_timedwait(&qm.cv, &qm.mu,
		    &until) == ETIMEDOUT;
	pthread_mutex_unlock(&qm.mu);
	if (timed_out)
		log_warnx("event=shutdown-deliveries-unfinished wait=%us "
		    "note=\"their messages are tried again at the next "
		    "start\"", QMGR_STOP_WAIT);
}

void
qmgr_free(void)
{
	while (qm.all != NULL)
		entry_free(qm.all);
	qm.ready_head = qm.ready_tail = NULL;
	kv_redis_free(server.qmgr_worker.kv);
	server.qmgr_worker.kv = NULL;
	dns_resolver_free(qm.dns);
	qm.dns = NULL;
	smtpc_global_free();
	pthread_mutex_destroy(&qm.mu);
	pthread_cond_destroy(&qm.cv);
}

/* --- operator requests (control socket) --- */

int
qmgr_flush(const char *id)
{
	struct qentry *e;

	if (id == NULL) {
		for (e = qm.all; e != NULL; e = e->next_all)
			ready_push(e);
	} else if ((e = entry_find(id)) == NULL)
		return -1;
	else
		ready_push(e);
	dispatch();
	return 0;
}

int
qmgr_hold(const char *id)
{
	struct qentry *e = entry_find(id);

	if (e == NULL)
		return -1;
	if (e->running)
		e->after = AFTER_HOLD;
	else
		hold_now(e);
	return 0;
}

int
qmgr_release(const char *id)
{
	if (!qid_valid(id) || entry_find(id) != NULL ||
	    queue_unhold(id) == -1)
		return -1;
	log_info("qid=%s event=released", id);
	ready_push(entry_new(id));
	dispatch();
	return 0;
}

int
qmgr_delete(const char *id)
{
	struct qentry *e = entry_find(id);

	if (e == NULL) {		/* maybe held */
		if (!qid_valid(id) || queue_remove_held(id) == -1)
			return -1;
		log_info("qid=%s event=deleted by=operator", id);
		return 0;
	}
	if (e->running)
		e->after = AFTER_DELETE;
	else
		delete_now(e);
	return 0;
}

int
qmgr_bounce(const char *id)
{
	struct qentry *e = entry_find(id);

	if (e == NULL) {		/* maybe held: back to the queue first */
		if (!qid_valid(id) || queue_unhold(id) == -1)
			return -1;
		log_info("qid=%s event=released by=bounce", id);
		e = entry_new(id);
	}
	if (e->running)
		e->after = AFTER_BOUNCE;
	else {
		e->bounce_now = 1;
		ready_push(e);
		dispatch();
	}
	return 0;
}

const char *
qmgr_state(const char *id)
{
	struct qentry *e = entry_find(id);

	return e == NULL ? NULL : e->running ? "active" : "waiting";
}

size_t
qmgr_active_ids(char ***ids)
{
	size_t n = 0;

	*ids = NULL;
	for (struct qentry *e = qm.all; e != NULL; e = e->next_all)
		if (e->running) {
			*ids = xreallocarray(*ids, n + 1, sizeof(**ids));
			(*ids)[n++] = xstrdup(e->id);
		}
	return n;
}

void
qmgr_census(struct qmgr_census *c)
{
	memset(c, 0, sizeof(*c));
	for (struct qentry *e = qm.all; e != NULL; e = e->next_all) {
		uint64_t t = qid_usec(e->id);
		int active = e->running || e->ready;
		unsigned long *n = active ? &c->active : &c->deferred;
		uint64_t *old = active ? &c->active_oldest :
		    &c->deferred_oldest;

		(*n)++;
		if (t != 0 && (*old == 0 || t < *old))
			*old = t;
	}
}
