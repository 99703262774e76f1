/*
 * attempt.h - one delivery attempt of one queued message
 *
 * attempt_start() reads the message and its status, routes every pending
 * recipient (route.h), groups them into jobs per next hop (Maildir on the
 * delivery iopool, SMTP and LMTP through dest.h), and when every job has
 * reported decides: delivered, failed (a DSN to the sender, RFC 3464),
 * still pending (next retry, maybe a delay DSN). What it decided is made
 * durable (DSNs queued and fsynced first, then the status record or the
 * removal) before done() runs. A crash in between can only repeat a
 * delivery or a DSN, never skip one.
 * Threads: start and done run on the queue manager's loop.
 */
#ifndef SLUICE_ATTEMPT_H
#define SLUICE_ATTEMPT_H

#include <stdint.h>

#include "qid.h"

enum attempt_outcome {
	ATTEMPT_DONE,		/* nothing left to do: message removed */
	ATTEMPT_DEFERRED,	/* try again at next */
	ATTEMPT_GONE,		/* message vanished or unreadable */
};

#define ATTEMPT_MAX_NEW	3	/* DSNs one attempt can queue */

struct attempt_report {
	enum attempt_outcome outcome;
	uint64_t next;			/* unix seconds */
	char new_ids[ATTEMPT_MAX_NEW][QID_LEN + 1];	/* queued DSNs */
	unsigned nnew;
};

typedef void (*attempt_done_fn)(void *arg, const struct attempt_report *);

#define ATTEMPT_BOUNCE_NOW	0x1	/* every pending recipient fails */
#define ATTEMPT_FIRST		0x2	/* just queued, never tried: it has
					   no status file to read or remove */
/* attempt_start - flags: ATTEMPT_* */
void	attempt_start(const char *id, unsigned flags, attempt_done_fn,
	    void *arg);
/* attempt_stopping - from now on, finished attempts record nothing */
void	attempt_stopping(void);

/* retry_delay - seconds before attempt n+1 after n failed attempts */
unsigned retry_delay(unsigned first, unsigned max_interval, unsigned n);

#endif
