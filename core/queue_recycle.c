/*
 * queue_recycle.c - the pool of reusable queue files (queue_recycle.h).
 *
 * Free files are queue/free.<n>, in the same directory as the messages so
 * that taking and giving back are same-directory renames; the numbers of
 * those present are kept on a stack. A crash can leave a number on disk that is not on the stack or the
 * reverse: the first is found again by the scan at start, the second makes
 * recycle_take() fail over to creating a new file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
recycle_init(const char *dir)
{
	DIR *d;
	struct dirent *de;

	pool.dir = xstrdup(dir);
	if ((d = opendir(pool.dir)) == NULL)
		return -1;
	pool.stack = xcalloc(POOL_MAX, sizeof(*pool.stack));
	pool.n = 0;
	pool.next = 1;
	while ((de = readdir(d)) != NULL) {
		char *end, *num = de->d_name + 5;
		if (strncmp(de->d_name, "free.", 5) != 0 ||
		    *num < '0' || *num > '9')
			continue;
		unsigned long long v = strtoull(num, &end, 10);
		if (*end != '\0')
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

/* pop - the name of a free file taken off the stack; -1 when empty */
static int
pop(char *path, size_t len)
{
	uint64_t v;

	pthread_mutex_lock(&pool.mu);
	if (pool.n == 0) {
		pthread_mutex_unlock(&pool.mu);
		return -1;
	}
	v = pool.stack[--pool.n];
	pthread_mutex_unlock(&pool.mu);
	snprintf(path, len, "%s/free.%llu", pool.dir, (unsigned long long)v);
	return 0;
}

int
recycle_take(const char *path)
{
	char from[4096];

	while (pop(from, sizeof(from)) == 0) {
		if (rename(from, path) == 0)
			return 0;
		if (errno != ENOENT)	/* e.g. path exists: do not retry */
			return -1;
	}
	return -1;
}

int
recycle_open(char *path, size_t len)
{
	int fd;

	while (pop(path, len) == 0) {
		if ((fd = open(path, O_RDWR | O_CLOEXEC)) != -1)
			return fd;
		if (errno != ENOENT)	/* gone: a crash left it on the stack */
			return -1;
	}
	return -1;
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
	snprintf(to, sizeof(to), "%s/free.%llu", pool.dir,
	    (unsigned long long)v);
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
