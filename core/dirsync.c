/*
 * dirsync.c - shared directory fsyncs (see dirsync.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "dirsync.h"

int
dirsync_init(struct dirsync *d, const char *path)
{
	d->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->fd == -1)
		return -1;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	d->requested = d->done = d->fail_lo = d->fail_hi = 0;
	d->running = 0;
	return 0;
}

void
dirsync_clear(struct dirsync *d)
{
	if (d->fd == -1)
		return;
	close(d->fd);
	d->fd = -1;
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
}

int
dirsync_wait(struct dirsync *d)
{
	uint64_t mine, target, before;
	int rv, err = 0;

	pthread_mutex_lock(&d->mu);
	mine = ++d->requested;
	while (d->done < mine) {
		if (d->running) {
			pthread_cond_wait(&d->cv, &d->mu);
			continue;
		}
		d->running = 1;
		target = d->requested;	/* all renames so far are covered */
		before = d->done;
		pthread_mutex_unlock(&d->mu);
		rv = fsync(d->fd);
		err = errno;
		pthread_mutex_lock(&d->mu);
		if (rv == -1) {
			d->fail_lo = before + 1;
			d->fail_hi = target;
			d->fail_errno = err;
		}
		d->done = target;
		d->running = 0;
		pthread_cond_broadcast(&d->cv);
	}
	rv = (mine >= d->fail_lo && mine <= d->fail_hi) ? -1 : 0;
	err = d->fail_errno;
	pthread_mutex_unlock(&d->mu);
	if (rv == -1)
		errno = err;
	return rv;
}
