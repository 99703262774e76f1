/*
 * transport.h - what a delivery attempt reports, per recipient, and the
 * unit of work handed to a transport (a job)
 *
 * A transport takes one queued message and some of its recipients (a
 * struct djob) and reports, for each, delivered / temporary failure /
 * permanent failure with an enhanced status code and text, plus the remote
 * server's name and reply when there was one: what ends up in logs, status
 * records and DSNs. Local transports (Maildir) block and run on the
 * delivery iopool; SMTP and LMTP run on the queue manager's loop.
 */
#ifndef SLUICE_TRANSPORT_H
#define SLUICE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "queue.h"
#include "route_spec.h"

enum deliver_result { DELIVER_OK, DELIVER_TEMP, DELIVER_PERM };

#define RESULT_TEXT_LEN	256

struct rcpt_result {
	enum deliver_result result;
	char text[RESULT_TEXT_LEN];	/* "2.0.0 delivered to maildir" */
	char *remote;			/* the remote server's name, or NULL */
	char *diag;			/* its reply "550 5.1.1 ...", or NULL */
	int dsn_passed;			/* NOTIFY handed on to a next hop that
					   speaks DSN: it reports success */
};

/* rcpt_result_set - result and text ("5.1.1 what happened"); remote and
   diag are kept */
void	rcpt_result_set(struct rcpt_result *, enum deliver_result,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void	rcpt_result_remote(struct rcpt_result *, const char *remote,
	    const char *diag);
void	rcpt_result_clear(struct rcpt_result *);

/* A job: some recipients of one message, for one next hop */
struct djob {
	const struct qmsg *msg;
	size_t nrcpts;
	size_t *rcpts;			/* indexes into msg->env.rcpts */
	struct rcpt_result *res;	/* [nrcpts], filled by the transport */
	char relay[ROUTE_SPEC_LEN + 64];	/* for logs: where it went */
	char tls[16];			/* for logs: SMTP/LMTP "TLSv1.3" or
					   "none"; "" for local delivery */
	char cipher[64];		/* with TLS, its cipher */
	const char *transport;		/* "smtp", "lmtp", "maildir" */
	/* for the delays= breakdown of the log (now_usec(); 0: not reached):
	   the connection setup that served the job (DNS, connect, greeting,
	   EHLO, TLS; a reused connection's lies before the job), and when
	   transmission began (MAIL sent; the Maildir write started) */
	uint64_t setup_start, setup_end, xmit_start;
	void (*done)(struct djob *);	/* on the qmgr loop, once */
	void *arg;			/* the caller's */
	TAILQ_ENTRY(djob) link;		/* a destination's queue */
};

struct delivery {
	const struct qmsg *msg;
	const char *hostname;		/* ours, for Maildir file names */
	size_t rcpt;			/* index into msg->env.rcpts */
	const char *mailbox;		/* transport's destination */
	struct rcpt_result *res;
};

/* maildir_deliver - store into Maildir mailbox (path of the Maildir) */
void	maildir_deliver(struct delivery *);

/* maildir_crlf_to_lf - CRLF to LF in place (deliver_maildir.c) */
size_t	maildir_crlf_to_lf(char *buf, size_t n, int *cr_at_end);

/* maildir_path - expand the %d/%u template; -1 on an unsafe name */
int	maildir_path(const char *tmpl, const char *local, const char *domain,
	    char *buf, size_t len);

#endif
