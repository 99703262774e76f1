/*
 * queue_recycle.h - reuse spent queue files instead of deleting them
 *
 * Creating and deleting an inode per message is a large part of a small
 * message's cost (on ext4 without a journal every create scans past the
 * recently deleted inodes, and every delete may issue a discard). So a
 * delivered message's file is renamed to queue/free.<n> and the next
 * message is written over it (from offset 0, then truncated to its length).
 * A free file is never read; its old bytes are beyond the new end or
 * overwritten. The pool is bounded; beyond it, files are deleted.
 * Thread-safe.
 */
#ifndef SLUICE_QUEUE_RECYCLE_H
#define SLUICE_QUEUE_RECYCLE_H

#include <stddef.h>

int	recycle_init(const char *dir);	/* the queue directory */
/* recycle_take - move a free file to path; -1 when the pool is empty */
int	recycle_take(const char *path);
/* recycle_open - a free file opened for writing over, under its own
   name (copied to path); -1 when the pool is empty */
int	recycle_open(char *path, size_t len);
/* recycle_give - move path into the pool (or delete it when full) */
int	recycle_give(const char *path);
void	recycle_clear(void);

#endif
