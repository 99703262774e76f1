/*
 * milter_mode_int.h - what the files of milter mode share: one MTA
 * connection (struct mconn) and handing a stage to its worker loop.
 *
 * libmilter runs one thread per MTA connection and calls the callbacks
 * (milter_mode_cb.c, milter_mode_eom.c) on it, one at a time. A
 * connection is bound to one sluice worker loop at connect (round
 * robin); a stage is run there
 * with stage_run() while the libmilter thread waits on the connection's
 * condition variable for the verdict (mm_run_stage()). Between stages
 * only the libmilter thread touches the connection; during a stage only
 * the loop does (the mutex orders the two).
 * Never include milter_proto.h next to this: the libmilter headers define
 * the same SMFI* names.
 */
#ifndef SLUICE_MILTER_MODE_INT_H
#define SLUICE_MILTER_MODE_INT_H

#include <pthread.h>
#include <stdint.h>

#include <libmilter/mfapi.h>

#include "envelope.h"
#include "filter.h"
#include "message.h"
#include "sbuf.h"
#include "smtp_params.h"
#include "tags.h"

/* the actions we may ask for (all of them are used at eom) */
#define MM_ACTIONS	(SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | \
			 SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_QUARANTINE | \
			 SMFIF_CHGFROM)

/* an accepted recipient: canonical, and as the MTA named it */
struct mm_rcpt {
	char *addr;
	char *raw;
};

struct mconn {
	struct worker *worker;
	struct pipeline *pipeline;
	struct filter_subject subj;
	struct tags session_tags;
	uint64_t id;
	unsigned long actions;		/* SMFIF_* the MTA granted */
	int leadspc;			/* header values with their blanks */
	int hidden_received;		/* Postfix: INSHEADER counts its own
					   Received:, which we never see */
	char *addr, *rdns, *helo, *listener;
	unsigned port;
	char *tls_version, *tls_cipher;	/* the MTA's {tls_version}, {cipher} */
	unsigned tls_bits;		/* and {cipher_bits} */
	char *auth_user, *auth_mech;	/* {auth_authen}, {auth_type} */
	enum sluice_verdict hold;	/* discard/quarantine before MAIL */

	/* the transaction, from envfrom to eom or abort */
	int in_tx;
	struct envelope env;
	struct mail_params mp;
	struct rcpt_params rp;
	char *rcpt;			/* the rcpt stage's candidate */
	struct mm_rcpt *rcpts;		/* accepted so far */
	size_t nrcpts;
	enum sluice_verdict pending;	/* discard/quarantine, for eom */
	char *pending_why;
	struct sbuf head, body;
	int too_big;
	struct message msg;
	int have_msg;
	int qid_known;			/* env.id is the MTA's `i` */

	/* a stage handed to the worker loop */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int ending_session;		/* mm_filters_end(): which end */
	enum sluice_stage stage;
	struct verdict v;
};

/* milter_mode.c */
struct worker *mm_next_worker(void);
/* a connection's state: made at negotiate (or connect), freed at close */
struct mconn *mm_conn_new(SMFICTX *);
void	mm_conn_free(SMFICTX *, struct mconn *);
void	mm_tx_drop(struct mconn *);
void	mm_refresh_qid(SMFICTX *, struct mconn *);
/* mm_run_stage - run a stage on the connection's loop and wait */
const struct verdict *mm_run_stage(struct mconn *, enum sluice_stage,
	    int modifiable);
void	mm_filters_end(struct mconn *, int session);
const char *mm_qid(const struct mconn *);

/* milter_mode_cb.c */
extern struct smfiDesc mm_desc;

/* milter_mode_reply.c */
/* mm_verdict - the milter answer to a stage's verdict (and its log) */
sfsistat mm_verdict(SMFICTX *, struct mconn *, enum sluice_stage,
	    const struct verdict *);
/* mm_set_reply - smfi_setreply() from "550 5.7.1 text" */
void	mm_set_reply(SMFICTX *, const char *reply);

/* milter_mode_eom.c */
sfsistat mm_eom(SMFICTX *);

#endif
