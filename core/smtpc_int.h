/*
 * smtpc_int.h - what smtpc.c (the connection: connect, greet, STARTTLS,
 * idle), smtpc_tls.c (TLS policies, contexts, certificate checks) and
 * smtpc_tx.c (one transaction: MAIL, RCPT, DATA, the body) share.
 */
#ifndef SLUICE_SMTPC_INT_H
#define SLUICE_SMTPC_INT_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "conf.h"
#include "mx.h"
#include "smtp_reply.h"
#include "transport.h"

struct bufferevent;
struct event;

enum cstate {
	C_CONNECTING,
	C_GREETING,
	C_EHLO,			/* EHLO or LHLO sent */
	C_HELO,			/* EHLO refused: HELO sent */
	C_STARTTLS,
	C_HANDSHAKE,
	C_READY,		/* waiting for a job (or idle) */
	C_TX,			/* a transaction runs (smtpc_tx.c) */
	C_RSET,
	C_QUIT,
};

enum tx_cmd { T_MAIL, T_RCPT, T_DATA, T_DOT, T_ABORT_DOT };

struct tx {
	struct djob *job;
	unsigned char *final;		/* [nrcpts]: result known */
	unsigned char *accepted;	/* [nrcpts]: RCPT said 2xx */
	size_t naccepted;
	enum tx_cmd *cmds;		/* what each expected reply answers */
	size_t *cmd_rcpt;		/* T_RCPT: which job recipient */
	size_t ncmds, nsent, nreplied;
	int mail_failed;
	int need_rset;
	int body;			/* the body is being sent */
	uint64_t off;			/* body octets read so far */
	int bol;			/* dot-stuffing state */
	size_t dot_replies;		/* replies expected after the dot */
	size_t lmtp_next;		/* LMTP: accepted recipient index */
	const char *phase;		/* for error texts: "RCPT TO" */
	int smtputf8;			/* MAIL FROM gets SMTPUTF8 */
	char *conv;			/* the message downgraded to 7 bit */
	size_t conv_len;
};

struct smtpc {
	struct event_base *base;
	struct dest *dest;
	struct mx_addrs *addrs;
	size_t ai;			/* address being tried */
	int lmtp;
	int plain_retry;		/* TLS failed here: again without */
	enum tls_client_policy policy;	/* of this next hop */
	struct bufferevent *bev;
	struct event *timer;
	struct event *kick;		/* deferred "ready" to the dest */
	enum cstate state;
	int was_ready;
	int tls;
	char tls_version[16];		/* "TLSv1.3" once tls */
	char tls_cipher[64];
	int verified;			/* chain and name checked */
	struct smtp_caps caps;
	struct smtp_reply reply;
	char host[ROUTE_HOST_LEN];	/* name of the server talked to */
	char peer[ROUTE_HOST_LEN + 80];	/* "host[addr]:port" for texts */
	char why[512];			/* last connection-level failure */
	enum deliver_result why_kind;
	unsigned ntx;
	uint64_t created_us, ready_us;	/* now_usec(): setup began, ended */
	int in_read, dead;		/* freed inside on_read: later */
	struct tx tx;
};

/* smtpc.c, for smtpc_tx.c */
void	smtpc_send(struct smtpc *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	smtpc_timeout(struct smtpc *, unsigned seconds);
void	smtpc_ready_later(struct smtpc *);	/* tell the dest, deferred */
void	smtpc_fail(struct smtpc *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));	/* connection lost */
void	smtpc_reply_result(struct smtpc *, const struct smtp_reply *,
	    const char *phase, struct rcpt_result *);

/* smtpc_tls.c */
const char *smtpc_tls_policy_name(enum tls_client_policy);
/* smtpc_tls_policy - for a next hop: delivery.tls_policy or delivery.tls
   (SMTP); may or none (LMTP) */
enum tls_client_policy smtpc_tls_policy(const struct route_spec *);
/* smtpc_tls_new - an SSL for STARTTLS to the current address (SNI, and
   the checks the policy asks for); NULL with an "x.y.z text" reason */
SSL	*smtpc_tls_new(struct smtpc *, char *why, size_t);
/* smtpc_tls_failed - why the handshake on bev failed ("x.y.z text") */
void	 smtpc_tls_failed(struct smtpc *, struct bufferevent *, char *why,
	    size_t);
/* smtpc_tls_established - the handshake on bev is done: record version
   and cipher; -1 with a reason when the policy is not met */
int	 smtpc_tls_established(struct smtpc *, struct bufferevent *,
	    char *why, size_t);

/* smtpc_tx.c */
void	txn_begin(struct smtpc *, struct djob *);
void	txn_reply(struct smtpc *, const struct smtp_reply *);
void	txn_fill_body(struct smtpc *);		/* output drained */
/* tx_abort - every open recipient fails with this (temporary) text; the
   job is done */
void	txn_abort(struct smtpc *, const char *why);
void	txn_free(struct tx *);

#endif
