/*
 * pickup_int.h - the pickup thread's SMTP client side (pickup_client.c)
 *
 * One struct pk_conn is the client end of a socketpair whose other end is
 * an ordinary SMTP session on a worker (listener "pickup", role
 * ROLE_LOCAL: trusted like trusted_networks). Plain blocking I/O: this
 * runs on the pickup thread only.
 */
#ifndef SLUICE_PICKUP_INT_H
#define SLUICE_PICKUP_INT_H

#include <stddef.h>

#define PK_REPLY_MAX	512

struct pk_conn {
	int fd;
	char in[4096];			/* unread reply bytes */
	size_t inlen;
	char reply[PK_REPLY_MAX];	/* the last reply's last line */
};

/* pk_open - start a session and read its greeting; 0, or -1 (logged) */
int	pk_open(struct pk_conn *);
/* pk_cmd - send a command line (no CRLF), return the reply code, or -1
   when the session is gone */
int	pk_cmd(struct pk_conn *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* pk_data - send the message dot-stuffed and the final dot; reply code */
int	pk_data(struct pk_conn *, const char *msg, size_t len);
void	pk_close(struct pk_conn *);		/* QUIT, close */
/* pk_queued_as - the queue ID in "250 2.0.0 Ok: queued as ID", or "?" */
const char *pk_queued_as(const char *reply);

struct maildrop_msg;
/* pk_notice - a refusal notice from <> to the sender (pickup_notice.c);
   what: "rcpt: reply" lines, or the one reply */
void	pk_notice(struct pk_conn *, const struct maildrop_msg *,
	    const char *name, const char *what);

#endif
