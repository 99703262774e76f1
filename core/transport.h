/*
 * transport.h - what a delivery attempt reports, per recipient
 *
 * A transport takes one queued message and some of its recipients and
 * reports, for each, delivered / temporary failure / permanent failure with
 * an enhanced status code and text (what ends up in logs, status records
 * and, later, DSNs). Local transports block and run on the delivery iopool.
 */
#ifndef SLUICE_TRANSPORT_H
#define SLUICE_TRANSPORT_H

#include <stddef.h>

#include "queue.h"

enum deliver_result { DELIVER_OK, DELIVER_TEMP, DELIVER_PERM };

#define RESULT_TEXT_LEN	256

struct rcpt_result {
	enum deliver_result result;
	char text[RESULT_TEXT_LEN];	/* "2.0.0 delivered to maildir" */
};

struct delivery {
	const struct qmsg *msg;
	const char *hostname;		/* ours, for Maildir file names */
	size_t rcpt;			/* index into msg->env.rcpts */
	const char *mailbox;		/* transport's destination */
	struct rcpt_result *res;
};

/* maildir_deliver - store into Maildir mailbox (path of the Maildir) */
void	maildir_deliver(struct delivery *);

/* maildir_path - expand the %d/%u template; -1 on an unsafe name */
int	maildir_path(const char *tmpl, const char *local, const char *domain,
	    char *buf, size_t len);

#endif
