/*
 * dirsync.c - shared directory fsyncs (see dirsync.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dirsync.h"
#include "util.h"

#define PATH_SLOTS	64

static struct path_slot {
	char *path;
	struct dirsync ds;
	unsigned users;
	uint64_t last_used;
} slots[PATH_SLOTS];
static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t slots_clock;

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

/* slot_get - the slot for path, (re)opened in the least recently used slot */
static struct path_slot *
slot_get(const char *path)
{
	struct path_slot *victim = NULL, *sl;

	for (int i = 0; i < PATH_SLOTS; i++) {
		sl = &slots[i];
		if (sl->path != NULL && strcmp(sl->path, path) == 0)
			goto found;
		if (sl->users == 0 && (victim == NULL || sl->path == NULL ||
		    (victim->path != NULL && sl->last_used < victim->last_used)))
			victim = sl;
	}
	if ((sl = victim) == NULL)
		return NULL;
	if (sl->path != NULL) {
		dirsync_clear(&sl->ds);
		free(sl->path);
		sl->path = NULL;
	}
	if (dirsync_init(&sl->ds, path) == -1)
		return NULL;
	sl->path = xstrdup(path);
found:
	sl->users++;
	sl->last_used = ++slots_clock;
	return sl;
}

int
dirsync_path(const char *path)
{
	struct path_slot *sl;
	int rv;

	pthread_mutex_lock(&slots_mu);
	sl = slot_get(path);
	pthread_mutex_unlock(&slots_mu);
	if (sl == NULL)
		return fsync_dir(path);
	rv = dirsync_wait(&sl->ds);
	pthread_mutex_lock(&slots_mu);
	sl->users--;
	pthread_mutex_unlock(&slots_mu);
	return rv;
}

void
dirsync_path_clear(void)
{
	pthread_mutex_lock(&slots_mu);
	for (int i = 0; i < PATH_SLOTS; i++)
		if (slots[i].path != NULL) {
			dirsync_clear(&slots[i].ds);
			free(slots[i].path);
			slots[i].path = NULL;
		}
	pthread_mutex_unlock(&slots_mu);
}
