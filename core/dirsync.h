/*
 * dirsync.h - group commit for directory fsync
 *
 * Many threads rename files into one directory and each needs the new entry
 * to be durable before it may answer. dirsync_wait() returns once an fsync
 * of the directory that STARTED AFTER the caller's rename has completed;
 * concurrent callers share one fsync instead of queueing one each.
 */
#ifndef SLUICE_DIRSYNC_H
#define SLUICE_DIRSYNC_H

#include <pthread.h>
#include <stdint.h>

struct dirsync {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fd;
	uint64_t requested;	/* generation of the latest request */
	uint64_t done;		/* every request <= done is synced */
	uint64_t fail_lo, fail_hi;	/* requests covered by a failed fsync */
	int running;
	int fail_errno;
};

int	dirsync_init(struct dirsync *, const char *path);
void	dirsync_clear(struct dirsync *);
int	dirsync_wait(struct dirsync *);	/* 0, or -1 with errno */

/*
 * dirsync_path - the same for a directory known by path (Maildir new/):
 * a small table of recently used directories keeps one struct dirsync
 * each; when the table is busy it falls back to a plain fsync.
 */
int	dirsync_path(const char *path);
void	dirsync_path_clear(void);		/* at exit */

#endif
