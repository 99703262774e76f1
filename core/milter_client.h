/*
 * milter_client.h - sluice as a milter client: `milter:` entries of the
 * pipeline talk the Sendmail milter protocol to an external filter
 * (shared/docs/milter-protocol.md). Private to the milter_*.c files.
 *
 * One filter connection per SMTP session, as Postfix and Sendmail do: it
 * is opened at the connect stage and lives in the session's per-filter
 * state slot (call_state()) until the session ends. Each stage call sends
 * that stage's events (macros first) and waits for the replies on the
 * worker's loop; nothing blocks.
 *
 *   milter_filter.c   the filter kind: load, stage calls, verdicts, the
 *                     end of a transaction (ABORT) and of a session (QUIT)
 *   milter_conn.c     the socket: connect, negotiation, packets out and
 *                     in, timeouts, failure
 *   milter_message.c  the message stage: headers, body, end of message
 *                     and the modifications the filter asks for
 *   milter_macros.c   macro lists per stage and their values
 *   milter_addr.c     "unix:/path", "inet:host:port", "inet:port@host"
 * The wire format itself is milter_proto.h (encode, read, decode).
 */
#ifndef SLUICE_MILTER_CLIENT_H
#define SLUICE_MILTER_CLIENT_H

#include <stdint.h>
#include <sys/socket.h>

#include "filter.h"
#include "milter_proto.h"

struct bufferevent;
struct conf_milter;
struct event;
struct event_base;
struct filter_subject;

/* milter_addr.c: 0, or -1 with a reason in err */
int	milter_addr_parse(const char *spec, struct sockaddr_storage *,
	    socklen_t *, char *err, size_t errlen);

/* What load() made of a `milter:` entry. */
struct milter_def {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	const struct conf_milter *conf;
	const char *macros[MILTER_STAGES];	/* configured or defaults */
};

enum milter_state {
	MS_CONNECTING,		/* socket connect in progress */
	MS_NEGOTIATING,		/* OPTNEG sent */
	MS_OPEN,		/* events may be sent */
	MS_CLOSED,		/* closed: failed, or done with the session */
};

/* Where the message stage is (milter_message.c). */
enum milter_msg_step {
	MM_HEADERS, MM_EOH, MM_BODY, MM_EOB, MM_DONE,
};

struct milter_mod {		/* one end-of-message request, kept until
				   the final reply says to apply them */
	int cmd;
	unsigned char *data;
	size_t len;
};

/* a macro packet kept for the rest of the message */
struct milter_cached {
	unsigned char *p;
	size_t len;
	int built;
};

struct milter_sess;
/* reply handler for the event being waited on */
typedef void (*milter_reply_fn)(struct milter_sess *,
	    const struct milter_reply *);

struct milter_sess {
	struct filter *filter;
	const struct milter_def *def;
	uint64_t session_id;		/* for logs between calls */
	struct event_base *base;
	struct bufferevent *bev;
	struct evbuffer *held;		/* packets that wait for the next send */
	struct event *timer;
	struct milter_reader rd;
	enum milter_state state;
	int failed;		/* broke: the default action from now on */
	int done;		/* accepted/refused the session: no events */
	int in_tx;		/* MAIL was sent: ABORT due at the end */
	int tx_done;		/* decided this message: no more events */
	int helo_sent;
	struct verdict refused;	/* said no at connect/helo: this verdict
				   for every later command (kind continue:
				   none) */
	int busy;		/* inside one of our libevent callbacks */
	int dead;		/* freed while busy: free on the way out */
	uint32_t version, actions, protocol;	/* negotiated */
	char *lists[MILTER_STAGES];	/* the filter's own macro lists */
	struct sluice_call *call;	/* the stage call in progress */
	milter_reply_fn on_reply;	/* NULL: no reply is expected */
	const struct milter_packet *pkt;	/* the one being handled */
	unsigned wait_s;		/* timeout of the current wait */
	void (*after_open)(struct milter_sess *);	/* connect stage */
	/* message stage */
	enum milter_msg_step mstep;
	size_t hdr_i;			/* next header to send */
	size_t body_off;		/* next body byte to send */
	struct milter_mod *mods;
	size_t nmods;
	size_t mods_bytes;
	struct milter_cached mcache[2];	/* before HEADER, before BODY */
	int quarantine;			/* 'q' seen in this message */
	char *quarantine_why;
};

/* milter_conn.c */
void	milter_open(struct milter_sess *, void (*opened)(struct milter_sess *));
/*
 * milter_send - write one encoded packet now (after any held ones), or
 * queue what the socket does not take at once; -1 (failed) on trouble.
 * milter_hold - keep a packet that needs no reply (ABORT) for the next
 * write: one wake-up of the filter fewer per message.
 */
int	milter_send(struct milter_sess *, const struct milter_buf *);
void	milter_hold(struct milter_sess *, const struct milter_buf *);
/* milter_expect - wait up to timeout_s for replies, each to fn */
void	milter_expect(struct milter_sess *, unsigned timeout_s,
	    milter_reply_fn fn);
/* milter_fail - the filter broke: log, close, default action to the call */
void	milter_fail(struct milter_sess *, const char *why);
void	milter_close(struct milter_sess *);	/* QUIT and close */
void	milter_sess_free(struct milter_sess *);

/* milter_filter.c: shared by the event code */
void	milter_call_done(struct milter_sess *);	/* verdict set: finish */
/* milter_decide - a decision reply (accept, reject ...) for this event:
   the call's verdict and the scope it closes; 1 if it was one */
int	milter_decide(struct milter_sess *, const struct milter_reply *);

/* milter_message.c */
void	milter_message_start(struct milter_sess *);
void	milter_message_reset(struct milter_sess *);

/* milter_macros.c */
/* milter_send_macros - the 'D' packet for event cmd from list stage,
   queued to go out with the next packet (stage SMFIM_NONE: none) */
int	milter_send_macros(struct milter_sess *, int cmd, int stage);
const char *milter_default_macros(int stage);

/* helpers for the event code */
int	milter_skips(const struct milter_sess *, uint32_t no_flag);
int	milter_no_reply(const struct milter_sess *, uint32_t nr_flag);

#endif
