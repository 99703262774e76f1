/*
 * qmgr.h - the queue manager: schedules delivery of committed messages
 *
 * Runs on its own loop (server.qmgr), which also runs outbound SMTP/LMTP
 * connections (dest.h) and the control socket (control.h). It knows every
 * queued message by id and when to try it next; at most QMGR_ACTIVE_MAX
 * attempts (attempt.h) run at once. A deferred message waits on its own
 * timer for the next retry (exponential backoff, retry: config).
 * qmgr_submit(), qmgr_stop() are thread-safe; the control operations run
 * on the qmgr loop.
 */
#ifndef SLUICE_QMGR_H
#define SLUICE_QMGR_H

#include <stddef.h>
#include <stdint.h>

#define QMGR_ACTIVE_MAX	1000

void	qmgr_init(void);		/* after server.qmgr exists */
void	qmgr_recover(void);		/* scan queue/ (call before serving) */
void	qmgr_submit(const char *id);	/* a message was just committed */
/* qmgr_stop - no new attempts, outbound connections closed; returns once
   the qmgr loop has done it */
void	qmgr_stop(void);
void	qmgr_free(void);		/* after the loop has stopped */

/* control operations (qmgr loop): 0, or -1 when there is no such message
   in the state the operation needs. id NULL: every message (flush). */
int	qmgr_flush(const char *id);
int	qmgr_hold(const char *id);
int	qmgr_release(const char *id);
int	qmgr_delete(const char *id);
int	qmgr_bounce(const char *id);
/* qmgr_state - "active" (an attempt runs), "waiting", or NULL */
const char *qmgr_state(const char *id);
/* qmgr_census - messages with an attempt running or ready to start
   (active) and waiting for a retry (deferred), and the oldest of each
   (qid_usec(), 0 when none); qmgr loop */
struct qmgr_census {
	unsigned long active, deferred;
	uint64_t active_oldest, deferred_oldest;
};
void	qmgr_census(struct qmgr_census *);
/* qmgr_active_ids - malloc'ed copies of the ids with an attempt running */
size_t	qmgr_active_ids(char ***ids);

#endif
