/*
 * queue_recycle.c - the pool of reusable queue files (queue_recycle.h).
 *
 * Free files are spool/free/<n>; the numbers of those present are kept on a
 * stack. A crash can leave a number on disk that is not on the stack or the
 * reverse: the first is found again by the scan at start, the second makes
 * recycle_take() fail over to creating a new file.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue_recycle.h"
#include "util.h"

#define POOL_MAX	4096

static struct {
	pthread_mutex_t mu;
	char *dir;
	uint64_t *stack;
	size_t n;
	uint64_t next;		/* number for the next file given */
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER };

int
recycle_init(const char *spool)
{
	DIR *d;
	struct dirent *de;

	xasprintf(&pool.dir, "%s/free", spool);
	if (mkdir_p(pool.dir, 0700) == -1 || (d = opendir(pool.dir)) == NULL)
		return -1;
	pool.stack = xcalloc(POOL_MAX, sizeof(*pool.stack));
	pool.n = 0;
	pool.next = 1;
	while ((de = readdir(d)) != NULL) {
		char *end;
		unsigned long long v = strtoull(de->d_name, &end, 10);
		if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end != '\0')
			continue;
		if (pool.n < POOL_MAX)
			pool.stack[pool.n++] = v;
		else
			unlinkat(dirfd(d), de->d_name, 0);
		if (v >= pool.next)
			pool.next = v + 1;
	}
	closedir(d);
	return 0;
}

int
recycle_take(const char *path)
{
	char from[4096];

	for (;;) {
		pthread_mutex_lock(&pool.mu);
		if (pool.n == 0) {
			pthread_mutex_unlock(&pool.mu);
			return -1;
		}
		uint64_t v = pool.stack[--pool.n];
		pthread_mutex_unlock(&pool.mu);
		snprintf(from, sizeof(from), "%s/%llu", pool.dir,
		    (unsigned long long)v);
		if (rename(from, path) == 0)
			return 0;
		if (errno != ENOENT)	/* e.g. path exists: do not retry */
			return -1;
	}
}

int
recycle_give(const char *path)
{
	char to[4096];
	uint64_t v;

	pthread_mutex_lock(&pool.mu);
	if (pool.stack == NULL || pool.n >= POOL_MAX) {
		pthread_mutex_unlock(&pool.mu);
		return unlink(path);
	}
	v = pool.next++;
	pthread_mutex_unlock(&pool.mu);
	snprintf(to, sizeof(to), "%s/%llu", pool.dir, (unsigned long long)v);
	if (rename(path, to) == -1)
		return -1;
	pthread_mutex_lock(&pool.mu);
	if (pool.n < POOL_MAX)
		pool.stack[pool.n++] = v;
	pthread_mutex_unlock(&pool.mu);
	return 0;
}

void
recycle_clear(void)
{
	pthread_mutex_lock(&pool.mu);
	free(pool.stack);
	free(pool.dir);
	pool.stack = NULL;
	pool.dir = NULL;
	pool.n = 0;
	pthread_mutex_unlock(&pool.mu);
}
