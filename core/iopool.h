/*
 * iopool.h - threads for blocking work (fsync, rename, Maildir writes)
 *
 * The event loops never block on the disk: they submit a job, whose work()
 * runs on one of the pool's threads and whose done() then runs on the
 * submitting loop's thread (through loop_call). Jobs start in FIFO order.
 * Ownership: arg belongs to the job until done() runs.
 */
#ifndef SLUICE_IOPOOL_H
#define SLUICE_IOPOOL_H

struct loop;
struct iopool;

typedef void (*iopool_fn)(void *arg);

struct iopool *iopool_new(const char *name, unsigned nthreads);
void	iopool_submit(struct iopool *, iopool_fn work, struct loop *reply,
	    iopool_fn done, void *arg);
unsigned iopool_pending(struct iopool *);	/* queued, not yet started */
/* iopool_free - finish every queued job, then stop the threads */
void	iopool_free(struct iopool *);

#endif
