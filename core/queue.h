/*
 * queue.h - the durable message queue on disk
 *
 * Layout under the spool directory:
 *   lock       flock()ed by the running sluiced: one server per spool
 *   queue/     committed messages "<qid>", their status "<qid>.st",
 *              messages being received "<qid>.in" (recycled at start: never
 *              promised) and spent files "free.<n>" kept for reuse
 *   hold/      messages the operator put on hold (sluicectl hold): kept,
 *              with their status, until released or deleted
 *   quarantine/ messages a filter quarantined: committed, never delivered
 *   corrupt/   queue files that could not be read, kept for inspection
 *
 * A queue file holds the message (CRLF lines, as received, with our
 * Received: header), then the envelope text (envelope.h), then a fixed-size
 * footer "SLUICE-ENV <offset:16 hex> <length:8 hex>\n" locating it.
 * The contract (design.md section 4): qwriter_commit() returns 0 only when
 * the file is fsynced, renamed to its final name and queue/ is fsynced.
 * Only then may "250 queued" be sent.
 *
 * Threads: qwriter_new/append/free run on a worker loop (append may write()
 * to the page cache once a message outgrows memory, never fsync);
 * qwriter_commit and every other function here block and run on an iopool.
 * Errors: -1 with errno set (ENOSPC/EDQUOT mean "452 4.3.1").
 */
#ifndef SLUICE_QUEUE_H
#define SLUICE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "qid.h"

#define QUEUE_SPILL_BYTES	(256 * 1024)	/* in memory below this */

int	queue_open(const char *spool, char *err, size_t errlen);
void	queue_close(void);
const char *queue_dir(void);			/* ".../queue" */

struct qwriter;
struct qwriter *qwriter_new(const char *id);
int	qwriter_append(struct qwriter *, const char *, size_t);
int	qwriter_error(const struct qwriter *);	/* errno of a failed spill */
uint64_t qwriter_size(const struct qwriter *);
/* qwriter_commit - into queue/, or quarantine/ when env->quarantine */
int	qwriter_commit(struct qwriter *, const struct envelope *);
void	qwriter_free(struct qwriter *);
/* qwriter_read_all - the content so far, malloc'ed (filters read it) */
int	qwriter_read_all(struct qwriter *, char **data, size_t *len);
/* qwriter_replace - the content becomes data (filters changed it) */
int	qwriter_replace(struct qwriter *, const char *data, size_t len);
/* qwriter_replace_ref - head copied, tail only referenced (kept alive by
 * the caller until commit or free) */
int	qwriter_replace_ref(struct qwriter *, const char *head, size_t hlen,
	    const char *tail, size_t tlen);

/* A committed message opened for delivery */
struct qmsg {
	int fd;
	uint64_t msg_len;	/* the message is bytes [0, msg_len) of fd */
	struct envelope env;
};

int	qmsg_open(const char *id, struct qmsg *, char *err, size_t errlen);
/* qmsg_open_in - from another spool subdir ("hold") */
int	qmsg_open_in(const char *subdir, const char *id, struct qmsg *,
	    char *err, size_t errlen);
void	qmsg_close(struct qmsg *);

int	queue_remove(const char *id);	/* message and status */
int	queue_remove_message(const char *id);	/* one that has no status */
int	queue_move(const char *id, const char *subdir);	/* from queue/ */
int	queue_unhold(const char *id);		/* hold/ back to queue/ */
int	queue_remove_held(const char *id);
const char *queue_spool(void);
/* queue_ids - the message ids in SPOOL/sub ("queue", "hold"), sorted;
 * the caller frees each and the array */
char	**queue_ids(const char *sub, size_t *n);
/* queue_scan - call fn for every committed message id, in id order */
int	queue_scan(void (*fn)(const char *id, void *), void *arg);
int	queue_sync(void);		/* dirsync of queue/ */

#endif
