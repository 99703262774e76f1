/*
 * milter_mode_reply.c - milter mode: how a stage's verdict becomes the
 * milter answer (milter_mode_int.h).
 *
 *   continue, accept  CONTINUE (sluice's accept decides one stage; a
 *                     milter ACCEPT would skip every later stage)
 *   reject            REJECT + smfi_setreply() from verdict_reply()
 *   tempfail          TEMPFAIL + smfi_setreply()
 *   disconnect        TEMPFAIL + a "421 4.7.0" reply: the MTA closes
 *   discard, quarantine  remembered (before MAIL: for every transaction
 *                     of the connection) and carried out at eom
 *
 * No reply text at connect: there the MTA uses its own.
 * Thread: the connection's libmilter thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "log.h"
#include "milter_mode_int.h"
#include "util.h"

#define SID(c)	((unsigned long long)(c)->id)

/* mm_set_reply - smfi_setreply() from "550 5.7.1 text" ('%' doubled) */
void
mm_set_reply(SMFICTX *ctx, const char *reply)
{
	char code[4], enh[16], text[VERDICT_TEXT_LEN * 2];
	const char *t;
	size_t o = 0;

	snprintf(code, sizeof(code), "%.3s", reply);
	t = reply + strlen(code);
	t += strspn(t, " ");
	snprintf(enh, sizeof(enh), "%.*s", (int)strcspn(t, " "), t);
	t += strlen(enh);
	t += strspn(t, " ");
	for (; *t != '\0' && o < sizeof(text) - 2; t++) {
		if (*t == '%')
			text[o++] = '%';
		text[o++] = *t;
	}
	text[o] = '\0';
	if (smfi_setreply(ctx, code, enh, text) == MI_FAILURE)
		log_warnx("event=milter-reply warning=\"MTA refused reply\" "
		    "reply=%s", log_q(reply));
}

static void
remember(struct mconn *c, enum sluice_stage st, const struct verdict *v)
{
	const char *why = v->text[0] ? v->text : v->filter ? v->filter :
	    "filter verdict";

	if (st < SLUICE_ON_MAIL || !c->in_tx)
		c->hold = v->kind;	/* every transaction of the connection */
	else if (c->pending != SLUICE_DISCARD) {
		c->pending = v->kind;	/* discard wins over quarantine */
		free(c->pending_why);
		c->pending_why = xstrdup(why);
	}
	log_info("qid=%s session=%016llx event=%s stage=%s filter=%s",
	    mm_qid(c), SID(c), verdict_name(v->kind), stage_name(st),
	    v->filter ? v->filter : "-");
}

sfsistat
mm_verdict(SMFICTX *ctx, struct mconn *c, enum sluice_stage st,
    const struct verdict *v)
{
	char reply[VERDICT_TEXT_LEN + 32];

	switch (v->kind) {
	case SLUICE_CONTINUE:
	case SLUICE_ACCEPT:
		return SMFIS_CONTINUE;
	case SLUICE_DISCARD:
	case SLUICE_QUARANTINE:
		remember(c, st, v);
		return SMFIS_CONTINUE;
	default:
		break;
	}
	verdict_reply(v, st, reply, sizeof(reply));
	log_info("qid=%s session=%016llx event=reject stage=%s filter=%s "
	    "reply=%s", mm_qid(c), SID(c), stage_name(st),
	    v->filter ? v->filter : "-", log_q(reply));
	if (st != SLUICE_ON_CONNECT)
		mm_set_reply(ctx, reply);
	if (v->kind == SLUICE_REJECT)
		return SMFIS_REJECT;
	return SMFIS_TEMPFAIL;		/* tempfail, disconnect (421) */
}
