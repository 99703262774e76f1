/*
 * shutdown.c - the graceful stop of sluiced (SIGTERM, SIGINT)
 *
 *   1. STOPPING=1 to systemd; the pickup thread is asked to stop after the
 *      message in hand; the listen sockets are closed: new connections
 *      are refused from now on.
 *   2. Workers stop accepting and end idle sessions with 421 4.3.2.
 *      Sessions inside a transaction (MAIL given, data coming, a commit
 *      or a filter pending) are left alone: every second a sweep ends
 *      those whose transaction has finished (after their 250, or RSET).
 *   3. At shutdown_timeout the rest get 421 4.3.2 and are closed; a
 *      commit already running is still answered (the commit pool is
 *      drained before the workers go), a message half received is
 *      dropped unacknowledged, so the queue holds only whole messages.
 *   4. The queue manager stops: remote deliveries in flight are cut off
 *      (tried again at once at the next start); local ones, and result
 *      filters still running, get up to QMGR_STOP_WAIT seconds to end,
 *      and whatever was delivered is recorded before the exit, so no
 *      recipient gets a second copy after the restart. The rest stays
 *      queued for the next start.
 * Threads: main thread.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "auth_users.h"
#include "conf.h"
#include "dirsync.h"
#include "filter.h"
#include "iopool.h"
#include "log.h"
#include "loop.h"
#include "mailbox.h"
#include "metrics.h"
#include "metrics_http.h"
#include "pickup.h"
#include "qmgr.h"
#include "queue.h"
#include "sd_notify.h"
#include "server.h"
#include "tls_server.h"
#include "util.h"

#define FLUSH_S		5	/* after the deadline: replies, commits */

static unsigned
sessions_left(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < server.nworkers; i++)
		n += __atomic_load_n(&server.workers[i].nsessions,
		    __ATOMIC_RELAXED);
	return n;
}

/* drain_sessions - steps 2 and 3 */
static void
drain_sessions(unsigned timeout)
{
	uint64_t deadline = mono_msec() + timeout * 1000ull;

	workers_stop();
	while (sessions_left() > 0 && mono_msec() < deadline) {
		workers_drain(1);
		workers_stop();		/* the sweep */
	}
	if (sessions_left() > 0) {
		log_info("event=shutdown-deadline sessions=%u timeout=%u",
		    sessions_left(), timeout);
		atomic_store(&server.stopping, 2);
		workers_stop();
		workers_drain(FLUSH_S);
	}
}

static void
exit_on_loop(void *arg)
{
	loop_exit(arg);
}

void
server_stop(void)
{
	unsigned timeout = server.conf->shutdown_timeout;

	log_info("event=stopping shutdown_timeout=%u", timeout);
	sd_notify("STOPPING=1\nSTATUS=stopping");
	atomic_store(&server.stopping, 1);
	pickup_stop();
	for (unsigned i = 0; i < server.nlisteners; i++)
		close(server.listeners[i].fd);
	drain_sessions(timeout);
	iopool_free(server.commit_pool);	/* answers reach the workers */
	iopool_free(server.auth_pool);
	workers_exit();
	pickup_join();				/* its session is gone */
	pipeline_unref(server.pipeline);	/* sessions are gone: last ref */
	metrics_http_stop();			/* it asks the queue manager */
	qmgr_stop();
	iopool_free(server.delivery_pool);	/* results reach the manager */
	loop_call(server.qmgr, exit_on_loop, server.qmgr);	/* after them */
	loop_join(server.qmgr);
	qmgr_free();
	loop_free(server.qmgr);
	mailbox_table_free(server.mailboxes);
	reload_free();
	auth_users_free(server.auth_users);
	tls_server_free();
	queue_close();
	dirsync_path_clear();
	free(server.listeners);
	sd_notify_close();
	metrics_free();
	log_info("event=stopped");
}
