/*
 * metrics_queue.c - the gauges the queue manager's loop owns: messages by
 * state (active, deferred: counted by the queue manager; hold, quarantine:
 * the files of those spool directories) with the age of the oldest in
 * each (from its queue ID), and the busiest next hops (dest.h: open
 * connections and queued jobs). A snapshot is taken on that loop
 * (metrics_snapshot_take) and rendered on any other thread: the metrics
 * thread waits for the loop's answer (the loop outlives the metrics
 * server); the control socket, on the loop already, takes it directly and
 * renders on the delivery iopool.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "conf.h"
#include "loop.h"
#include "metrics.h"
#include "qid.h"
#include "qmgr.h"
#include "server.h"
#include "util.h"

struct snapshot_call {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	struct metrics_snapshot *snap;
};

void
metrics_snapshot_take(struct metrics_snapshot *snap)
{
	qmgr_census(&snap->q);
	snap->ndests = dest_busiest(snap->dests, METRICS_DESTINATIONS);
}

void
metrics_snapshot_clear(struct metrics_snapshot *snap)
{
	dest_stats_free(snap->dests, snap->ndests);
	snap->ndests = 0;
}

static void
snapshot_on_qmgr(void *arg)
{
	struct snapshot_call *sc = arg;

	metrics_snapshot_take(sc->snap);
	pthread_mutex_lock(&sc->mu);
	sc->done = 1;
	pthread_cond_signal(&sc->cv);
	pthread_mutex_unlock(&sc->mu);
}

/* a spool directory's messages: files named by a queue ID */
static void
count_dir(const char *sub, unsigned long *n, uint64_t *oldest)
{
	char path[4096];
	struct dirent *de;
	DIR *d;

	*n = 0;
	*oldest = 0;
	snprintf(path, sizeof(path), "%s/%s", server.conf->spool, sub);
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		uint64_t t;

		if (!qid_valid(de->d_name))
			continue;
		(*n)++;
		t = qid_usec(de->d_name);
		if (t != 0 && (*oldest == 0 || t < *oldest))
			*oldest = t;
	}
	closedir(d);
}

static void
put_state(struct evbuffer *out, const char *metric, const char *state,
    double v)
{
	evbuffer_add_printf(out, "%s{state=\"%s\"} %.17g\n", metric, state, v);
}

/* put_dest - one next hop's gauge, its name escaped as a label value */
static void
put_dest(struct evbuffer *out, const char *metric, const char *name,
    unsigned v)
{
	evbuffer_add_printf(out, "%s{destination=\"", metric);
	metrics_escape(out, name);
	evbuffer_add_printf(out, "\"} %u\n", v);
}

static void
render_dests(struct evbuffer *out, const struct metrics_snapshot *snap)
{
	static const struct {
		const char *name, *help;
		int jobs;			/* else connections */
	} fams[] = {
		{ "sluice_destination_connections",
		    "open connections of the busiest next hops", 0 },
		{ "sluice_destination_queued",
		    "jobs waiting for a connection, busiest next hops", 1 },
	};

	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s gauge\n",
		    fams[f].name, fams[f].help, fams[f].name);
		for (size_t i = 0; i < snap->ndests; i++)
			put_dest(out, fams[f].name, snap->dests[i].name,
			    fams[f].jobs ? snap->dests[i].jobs :
			    snap->dests[i].conns);
	}
}

void
metrics_render_snapshot(struct evbuffer *out,
    const struct metrics_snapshot *snap)
{
	static const char *const names[] = {
		"active", "deferred", "hold", "quarantine"
	};
	unsigned long n[4];
	uint64_t oldest[4], now = now_usec();

	n[0] = snap->q.active;
	oldest[0] = snap->q.active_oldest;
	n[1] = snap->q.deferred;
	oldest[1] = snap->q.deferred_oldest;
	count_dir("hold", &n[2], &oldest[2]);
	count_dir("quarantine", &n[3], &oldest[3]);
	evbuffer_add_printf(out, "# HELP sluice_queue_messages messages in "
	    "the queue by state\n# TYPE sluice_queue_messages gauge\n");
	for (size_t i = 0; i < 4; i++)
		put_state(out, "sluice_queue_messages", names[i], (double)n[i]);
	evbuffer_add_printf(out, "# HELP sluice_queue_oldest_seconds age of "
	    "the oldest message in each state (0: none)\n"
	    "# TYPE sluice_queue_oldest_seconds gauge\n");
	for (size_t i = 0; i < 4; i++)
		put_state(out, "sluice_queue_oldest_seconds", names[i],
		    oldest[i] != 0 && oldest[i] < now ?
		    (double)(now - oldest[i]) / 1e6 : 0.0);
	render_dests(out, snap);
}

void
metrics_render_queue(struct evbuffer *out)
{
	struct metrics_snapshot snap;
	struct snapshot_call sc = { .done = 0, .snap = &snap };

	memset(&snap, 0, sizeof(snap));
	pthread_mutex_init(&sc.mu, NULL);
	pthread_cond_init(&sc.cv, NULL);
	loop_call(server.qmgr, snapshot_on_qmgr, &sc);
	pthread_mutex_lock(&sc.mu);
	while (!sc.done)
		pthread_cond_wait(&sc.cv, &sc.mu);
	pthread_mutex_unlock(&sc.mu);
	pthread_mutex_destroy(&sc.mu);
	pthread_cond_destroy(&sc.cv);
	metrics_render_snapshot(out, &snap);
	metrics_snapshot_clear(&snap);
}
