/*
 * attempt_int.h - what attempt.c (loading, routing, jobs) and
 * attempt_finish.c (deciding, DSNs, recording) share.
 */
#ifndef SLUICE_ATTEMPT_INT_H
#define SLUICE_ATTEMPT_INT_H

#include "attempt.h"
#include "conf.h"
#include "queue.h"
#include "queue_status.h"
#include "transport.h"

struct bounce_rcpt;

struct attempt {
	char id[QID_LEN + 1];
	int bounce_now;
	attempt_done_fn done;
	void *arg;
	struct qmsg m;
	struct qstatus st;
	size_t n;			/* recipients */
	struct rcpt_result *res;	/* [n]: this attempt's results */
	unsigned char *tried;		/* [n]: has a result this attempt */
	unsigned char *kind;		/* [n]: enum route_kind used */
	const struct conf_retry **retry;	/* [n]: per-domain settings */
	unsigned jobs;			/* still out */
	uint64_t started_us;
	/* the decision, carried out on the delivery iopool */
	struct bounce_rcpt *dsn[3];	/* failed, delayed, delivered */
	size_t ndsn[3];
	struct attempt_report rep;
};

extern int attempt_is_stopping;

/* attempt_finish.c */
void	attempt_decide(struct attempt *);	/* every job reported */
void	attempt_free(struct attempt *);

#endif
