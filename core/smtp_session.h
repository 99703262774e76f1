/*
 * smtp_session.h - one SMTP server session: state machine and transaction
 *
 * The session is an explicit state machine (enum smtp_state, changed only
 * by session_enter()). Per-message data lives in struct smtp_tx, created
 * at MAIL and freed at commit, RSET or rejection, so a reset is "free the
 * tx". Each command is checked (syntax, order: reply at once), then
 * proceeds. A step that needs an answer from elsewhere (the queue commit
 * today; filters later) sets SS_WAITING: input stays buffered, unread,
 * until session_resume() is called from the loop with the answer.
 *
 * Files: smtp_session.c (I/O, lifecycle, input loop, replies),
 * smtp_cmds.c (the commands), smtp_session_data.c (DATA, BDAT, commit),
 * smtp_tls.c (STARTTLS, implicit TLS), smtp_auth.c (AUTH),
 * smtp_proxy.c (the PROXY header of load balancers),
 * smtp_filter.c (filter stages).
 * Ownership: the worker owns its sessions; a session owns its tx; a job in
 * flight holds a reference (jobs) so the session outlives its socket.
 * Threads: everything here runs on the session's worker loop.
 */
#ifndef SLUICE_SMTP_SESSION_H
#define SLUICE_SMTP_SESSION_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "envelope.h"
#include "filter.h"
#include "message.h"
#include "qid.h"
#include "hops.h"
#include "smtp_data.h"
#include "smtp_guard.h"
#include "smtp_params.h"
#include "tags.h"

struct bufferevent;
struct dns_query;
struct conf_listener;
struct event;
struct qwriter;
struct sasl_creds;
struct proxy_wait;
struct worker;

enum smtp_state {
	SMTP_CONNECTED,		/* greeting not sent yet */
	SMTP_GREETED,		/* waiting for HELO/EHLO */
	SMTP_READY,		/* HELO done, no transaction */
	SMTP_MAIL,		/* sender given, no recipient yet */
	SMTP_RCPT,		/* at least one recipient accepted */
	SMTP_DATA,		/* reading DATA content */
	SMTP_BDAT,		/* inside a BDAT transaction */
	SMTP_QUIT,		/* closing */
};

enum session_flags {
	SS_WAITING = 1,		/* an answer is pending: do not read */
	SS_CLOSE = 2,		/* close once the output is flushed */
	SS_SKIPLINE = 4,	/* discarding an over-long command line */
	SS_INPROC = 8,		/* inside session_process() */
	SS_DEAD = 16,		/* socket gone, waiting for jobs to finish */
	SS_OUTFULL = 32,	/* paused until the client reads replies */
	SS_HANDSHAKE = 64,	/* TLS handshake under way: do not read */
};

struct smtp_tx {
	struct envelope env;		/* env.tags: the transaction's tags */
	struct mail_params mp;
	struct rcpt_params rp;		/* of the RCPT being filtered */
	char *rcpt;			/* the RCPT being filtered */
	char *refusal;			/* the server's reply refusing it */
	struct message message;		/* message stage: what filters see */
	int have_message;
	int content_done;		/* the whole message is in */
	int discard;			/* a filter said discard */
	struct data_decoder dec;
	struct hop_counter hops;	/* Received: fields, loop guard */
	struct qwriter *msg;
	int bdat;		/* content is coming in BDAT chunks */
	uint64_t bdat_chunk;	/* size of the current chunk */
	int bdat_last;
	uint64_t started;	/* mono_msec() at MAIL, for the log */
};

struct smtp_session {
	uint64_t id;
	struct worker *worker;
	const struct conf_listener *listener;
	struct bufferevent *bev;
	struct sockaddr_storage peer;
	char addr[INET6_ADDRSTRLEN];
	unsigned port;
	int trusted;			/* in trusted_networks: may relay */
	int tls;			/* the TLS handshake is done */
	char tls_version[16];		/* "TLSv1.3" */
	char tls_cipher[64];
	int tls_bits;
	char *auth_user;		/* AUTH succeeded as this user */
	struct sasl_creds *sasl;	/* an AUTH exchange under way */
	int sasl_step;			/* its step (smtp_auth.c) */
	int sasl_mech;			/* enum sasl_mech */
	int sasl_result;		/* enum auth_check of users_file */
	struct proxy_wait *proxy;	/* waiting for a PROXY header */

	enum smtp_state state;
	unsigned flags;
	int esmtp;
	char *helo;
	unsigned errors;
	unsigned junk;			/* NOOP/RSET/VRFY/HELP since the
					   last accepted message */
	unsigned messages;
	unsigned jobs;			/* async jobs holding this session */
	struct smtp_tx *tx;

	uint64_t discard_left;		/* BDAT bytes to skip, then reply: */
	const char *discard_reply;

	struct event *cmd_timer;
	int cmd_timer_armed;
	struct smtp_guard guard;	/* pipelining and slow-client rules */
	struct event *flush_ev;		/* replies go out when it runs */
	int direct_write;		/* bev is a plain socket: replies may
					   be written to its fd (not with TLS) */
	struct smtp_session *prev, *next;	/* worker's list */

	struct pipeline *pipeline;	/* the one current at connect */
	struct filter_subject subj;	/* what filters see of us */
	struct tags tags;		/* session tags */
	char *rdns;			/* reverse DNS name, when looked up */
	char *unknown_cmd;		/* the unknown command being filtered */
	struct dns_query *rdns_query;
	int disconnect_done;		/* the disconnect stage has run */
	struct stage_run *run;		/* a suspended stage, or NULL */
	enum sluice_verdict hold;	/* discard/quarantine said before MAIL */
	void *run_ctx;			/* its continuation */
};

/* smtp_filter.c: the stages of a session */
typedef void (*session_stage_fn)(struct smtp_session *,
	    const struct verdict *);
void	smtp_filter_subject_init(struct smtp_session *);
void	session_stage(struct smtp_session *, enum sluice_stage,
	    session_stage_fn next);
/* session_stage_refused_rcpt - tx->rcpt was refused with reply by the
   server itself: the filters that want to know are told, then next() */
void	session_stage_refused_rcpt(struct smtp_session *, const char *reply,
	    session_stage_fn next);
void	smtp_filter_connect(struct smtp_session *);
int	smtp_filter_disconnect(struct smtp_session *);
/* smtp_filter_cancel - drop a suspended stage or lookup (shutdown) */
void	smtp_filter_cancel(struct smtp_session *);
/* session_refuse - answer a decisive verdict; 1 if it ended the command */
int	session_refuse(struct smtp_session *, enum sluice_stage,
	    const struct verdict *);

/* smtp_session.c */
void	session_accept(struct worker *, const struct conf_listener *, int fd,
	    const struct sockaddr *, socklen_t);
void	session_enter(struct smtp_session *, enum smtp_state);
void	session_reply(struct smtp_session *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	session_reply_raw(struct smtp_session *, const char *, size_t);
void	session_client_error(struct smtp_session *);
/* session_junk_command - after its reply: past limits.junk_commands since
 * the last accepted message, each one counts as a client error */
void	session_junk_command(struct smtp_session *);
void	session_close(struct smtp_session *, const char *reason);
void	session_wait(struct smtp_session *);
void	session_resume(struct smtp_session *);
void	session_continue(struct smtp_session *);
/* session_set_client - the client is sa (PROXY header): address, port,
   trusted */
void	session_set_client(struct smtp_session *, const struct sockaddr *);
/* session_start - TLS handshake (implicit TLS) or the connect stage */
void	session_start(struct smtp_session *);
/* session_use_bev - talk through bev from now on (direct: a plain socket) */
void	session_use_bev(struct smtp_session *, struct bufferevent *,
	    int direct);
void	session_shutdown(struct smtp_session *);
void	session_abort(struct smtp_session *);
void	session_tx_free(struct smtp_session *);
void	tx_free(struct smtp_tx *);

/* smtp_cmds.c */
void	smtp_dispatch(struct smtp_session *, char *line, size_t len);
void	smtp_greet(struct smtp_session *);

/* smtp_proxy.c */
int	smtp_proxy_expected(const struct conf_listener *,
	    const struct sockaddr *);
void	smtp_proxy_wait(struct smtp_session *, int fd);
void	smtp_proxy_done(struct smtp_session *);

/* smtp_tls.c */
int	smtp_tls_offered(const struct smtp_session *);	/* STARTTLS now */
int	smtp_tls_implicit(struct smtp_session *);
void	smtp_cmd_starttls(struct smtp_session *, char *args);
void	smtp_tls_established(struct smtp_session *);
void	smtp_tls_failed(struct smtp_session *, short what);
void	smtp_tls_received(const struct smtp_session *, char *, size_t);

/* smtp_auth.c */
int	smtp_auth_offered(const struct smtp_session *);	/* in EHLO */
int	smtp_auth_needed(const struct smtp_session *);	/* before MAIL */
void	smtp_cmd_auth(struct smtp_session *, char *args);
void	smtp_auth_response(struct smtp_session *, char *line, size_t len);
void	smtp_auth_clear(struct smtp_session *);

/* smtp_session_data.c */
void	smtp_cmd_data(struct smtp_session *, char *args);
void	smtp_cmd_bdat(struct smtp_session *, char *args);
int	smtp_data_feed(struct smtp_session *);	/* 1 progress, 0 need more */
int	smtp_bdat_feed(struct smtp_session *);

#endif
