/*
 * delays.h - the delays=a/b/c/d breakdown of a delivery log line, in
 * Postfix's meaning: a, before the queue manager took the message (from
 * its arrival to the start of this attempt: receipt, and the wait in the
 * queue before a retry); b, in the queue manager (delivery filters,
 * routing, waiting for a connection slot or a delivery thread); c,
 * connection setup (DNS, connect, greeting, EHLO, TLS) that this job
 * waited for; d, transmission (MAIL to the final reply; the Maildir
 * write). a + b + c + d is the line's delay.
 * Pure: no I/O, any thread.
 */
#ifndef SLUICE_DELAYS_H
#define SLUICE_DELAYS_H

#include <stddef.h>
#include <stdint.h>

/* microsecond timestamps (now_usec()); 0 where a step was not reached */
struct delay_marks {
	uint64_t arrival;		/* the message was received */
	uint64_t picked;		/* this attempt started */
	uint64_t setup_start, setup_end;	/* connection setup */
	uint64_t xmit;			/* transmission began */
	uint64_t done;			/* the result is known */
};

/* delays_split - seconds of a, b, c, d; never negative, summing to
   done - arrival (when the marks are in order) */
void	delays_split(const struct delay_marks *, double out[4]);
/* delays_format - "a/b/c/d" with two decimals, into buf */
void	delays_format(const struct delay_marks *, char *buf, size_t len);

#endif
