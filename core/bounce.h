/*
 * bounce.h - queueing a delivery status notification about a message
 *
 * bounce_queue() builds the DSN (dsn.h) for some recipients of a queued
 * message from their status records, and commits it into the queue as a
 * new message from the null sender to the original sender (fsynced, like
 * any accepted message) before returning 0 with its queue ID.
 * Blocking: runs on the delivery iopool.
 */
#ifndef SLUICE_BOUNCE_H
#define SLUICE_BOUNCE_H

#include <stddef.h>

#include "dsn.h"
#include "qid.h"

struct qmsg;
struct qstatus;

struct bounce_rcpt {
	size_t idx;			/* recipient index in the envelope */
	enum dsn_action action;
	uint64_t retry_until;		/* delayed: unix seconds */
};

int	bounce_queue(const struct qmsg *, const struct qstatus *,
	    const struct bounce_rcpt *, size_t n, char newid[QID_LEN + 1]);

#endif
