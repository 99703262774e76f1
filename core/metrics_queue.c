/*
 * metrics_queue.c - the queue gauges of the metrics exposition: messages
 * by state (active, deferred: counted by the queue manager on its own
 * loop; hold, quarantine: the files of those spool directories) and the
 * age of the oldest in each, from its queue ID.
 * Runs on the metrics thread, which waits for the queue manager's answer
 * (the manager's loop outlives the metrics server).
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

struct census_call {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	struct qmgr_census c;
};

static void
census_on_qmgr(void *arg)
{
	struct census_call *cc = arg;

	qmgr_census(&cc->c);
	pthread_mutex_lock(&cc->mu);
	cc->done = 1;
	pthread_cond_signal(&cc->cv);
	pthread_mutex_unlock(&cc->mu);
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

void
metrics_render_queue(struct evbuffer *out)
{
	static const char *const names[] = {
		"active", "deferred", "hold", "quarantine"
	};
	struct census_call cc = { .done = 0 };
	unsigned long n[4];
	uint64_t oldest[4], now = now_usec();

	pthread_mutex_init(&cc.mu, NULL);
	pthread_cond_init(&cc.cv, NULL);
	loop_call(server.qmgr, census_on_qmgr, &cc);
	pthread_mutex_lock(&cc.mu);
	while (!cc.done)
		pthread_cond_wait(&cc.cv, &cc.mu);
	pthread_mutex_unlock(&cc.mu);
	pthread_mutex_destroy(&cc.mu);
	pthread_cond_destroy(&cc.cv);
	n[0] = cc.c.active;
	oldest[0] = cc.c.active_oldest;
	n[1] = cc.c.deferred;
	oldest[1] = cc.c.deferred_oldest;
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
}
