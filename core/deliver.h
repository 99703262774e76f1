/*
 * deliver.h - one delivery attempt of one queued message
 *
 * deliver_attempt() opens the queue file and its status, tries every
 * recipient still pending, records the outcome durably and tells the queue
 * manager what happens next. Blocking: runs on the delivery iopool.
 */
#ifndef SLUICE_DELIVER_H
#define SLUICE_DELIVER_H

#include <stdint.h>

enum attempt_outcome {
	ATTEMPT_DONE,		/* nothing left to do: message removed */
	ATTEMPT_DEFERRED,	/* try again at *next */
	ATTEMPT_GONE,		/* message vanished or unreadable */
};

enum attempt_outcome deliver_attempt(const char *id, uint64_t *next);

/* retry_delay - seconds before attempt n+1 after n failed attempts */
unsigned retry_delay(unsigned first, unsigned max_interval, unsigned n);

#endif
