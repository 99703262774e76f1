/*
 * qmgr.h - the queue manager: schedules delivery of committed messages
 *
 * Runs on its own loop (server.qmgr). It knows every queued message by id
 * and when to try it next; attempts run on the delivery iopool, at most
 * delivery_concurrency at once, and report back here. A deferred message
 * gets a timer for its next attempt (exponential backoff, retry: config).
 * qmgr_submit() is thread-safe; the rest runs on the qmgr loop.
 */
#ifndef SLUICE_QMGR_H
#define SLUICE_QMGR_H

void	qmgr_init(void);
void	qmgr_recover(void);		/* scan queue/ (call before serving) */
void	qmgr_submit(const char *id);	/* a message was just committed */
void	qmgr_stop(void);		/* no new attempts from now on */
void	qmgr_free(void);		/* after the loop has stopped */

#endif
