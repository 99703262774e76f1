/*
 * attempt_int.h - what attempt.c (loading, routing, jobs) and
 * attempt_finish.c (deciding, DSNs, recording) share.
 */
#ifndef SLUICE_ATTEMPT_INT_H
#define SLUICE_ATTEMPT_INT_H

#include "attempt.h"
#include "conf.h"
#include "filter.h"
#include "message.h"
#include "queue.h"
#include "queue_status.h"
#include "transport.h"

struct bounce_rcpt;

struct attempt {
	char id[QID_LEN + 1];
	int bounce_now;
	int first;			/* ATTEMPT_FIRST: no status file yet */
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
	/* filters (attempt_filter.c) */
	struct pipeline *pipe;		/* referenced for the attempt */
	struct filter_subject subj;
	struct tags stags;		/* "session" tags: this attempt only */
	struct message msg;		/* read when a filter asks */
	int have_msg;
	size_t cur;			/* result stages: recipient */
	void (*next)(struct attempt *);
	int decided;			/* deliver stage decided everything */
	int quarantine;			/* deliver stage said quarantine */
	unsigned retry_in;		/* deferred stage: seconds, 0 = none */
	unsigned char *no_dsn;		/* [n]: a filter discarded: no DSN */
	/* the decision, carried out on the delivery iopool */
	struct bounce_rcpt *dsn[3];	/* failed, delayed, delivered */
	size_t ndsn[3];
	struct attempt_report rep;
};

extern int attempt_is_stopping;

/* attempt_filter.c: the stages, then next(a) */
void	attempt_filter_deliver(struct attempt *, void (*next)(struct attempt *));
void	attempt_filter_results(struct attempt *, void (*next)(struct attempt *));

/* attempt_finish.c */
void	attempt_results(struct attempt *);	/* expiry, filters, decide */
void	attempt_decide(struct attempt *);	/* every job reported */
void	attempt_free(struct attempt *);

#endif
