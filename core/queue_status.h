/*
 * queue_status.h - per-recipient delivery state of a queued message
 *
 * queue/<qid>.st records what earlier attempts achieved, so that a restart
 * neither skips nor (beyond the at-least-once rule) repeats a recipient.
 * It is rewritten atomically (temp file, fdatasync, rename, directory
 * fsync) after each attempt that changed anything; a missing file means
 * "no attempt finished yet". Blocking: call from an iopool thread.
 */
#ifndef SLUICE_QUEUE_STATUS_H
#define SLUICE_QUEUE_STATUS_H

#include <stddef.h>
#include <stdint.h>

enum rcpt_state { RCPT_PENDING, RCPT_DELIVERED, RCPT_FAILED };

struct rcpt_status {
	enum rcpt_state state;
	char *reason;		/* last result text, or NULL */
	char *remote;		/* the server that gave it, or NULL */
	char *diag;		/* that server's reply, or NULL */
};

struct qstatus {
	unsigned attempts;
	uint64_t next_attempt;	/* unix seconds, 0 = now */
	uint64_t last_attempt;	/* unix seconds, 0 = never */
	int warned;		/* the delay warning was sent */
	size_t nrcpts;
	struct rcpt_status *rcpts;
};

void	qstatus_init(struct qstatus *, size_t nrcpts);
void	qstatus_clear(struct qstatus *);
void	qstatus_set(struct qstatus *, size_t i, enum rcpt_state,
	    const char *reason);
void	qstatus_set_remote(struct qstatus *, size_t i, const char *remote,
	    const char *diag);
size_t	qstatus_count(const struct qstatus *, enum rcpt_state);

/* text form, pure (tested in isolation) */
char	*qstatus_serialize(const struct qstatus *, size_t *len);
int	qstatus_parse(const char *, size_t, struct qstatus *);

int	qstatus_load(const char *id, size_t nrcpts, struct qstatus *);
/* qstatus_load_in - from another directory (hold/) */
int	qstatus_load_in(const char *dir, const char *id, size_t nrcpts,
	    struct qstatus *);
int	qstatus_save(const char *id, const struct qstatus *);
/* qstatus_next_attempt - when to try next; -1 if there is no status */
int	qstatus_next_attempt(const char *id, uint64_t *next);

#endif
