/*
 * milter_mode_eom.c - milter mode's end of message: the message stage on
 * the whole message (changes allowed), then the queue stage (read only,
 * as in SMTP mode, where it runs just before the commit), then the
 * changes turned into milter modifications and the final answer.
 *
 * Changes are found by comparing, not recorded as they happen: the
 * message's header list after the stage is compared with a snapshot
 * taken before it. A field the filters left alone keeps its original
 * bytes (raw_len, raw_off); one changed in place keeps its position, name
 * and raw_off but loses raw_len; an added one has neither. Walking the
 * final list in order with a cursor over the originals tells each field
 * apart: kept, changed (CHGHEADER), new (INSHEADER at its final index, or
 * ADDHEADER when nothing original follows it); originals not met are
 * deleted (CHGHEADER with no value, highest index first so the indexes
 * of the others hold whichever way the MTA counts). Changes are sent
 * first, then deletions, then insertions in final order, so every index
 * refers to the list the MTA has at that moment. The only ambiguity (an
 * inserted field at the top named like a changed or deleted first field)
 * gives the same resulting header list either way.
 * The envelope is compared too: sender (CHGFROM), recipients (DELRCPT
 * with the address as the MTA gave it, ADDRCPT). A replaced body is sent
 * with CRLF line ends (REPLBODY). A change the MTA did not allow in the
 * negotiation is logged and skipped.
 * Insert indexes: Sendmail shows a filter the Received: field it added
 * and counts it; Postfix (macro v) hides it but still counts it, so
 * there an index above 0 is sent one higher, and 0 ("before everything")
 * stays above the MTA's Received:, as in SMTP mode.
 * Thread: the connection's libmilter thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter.h"
#include "log.h"
#include "milter_mode_int.h"
#include "util.h"

#define SID(c)	((unsigned long long)(c)->id)

struct orig {
	size_t off;		/* raw_off: the field's identity */
	char *name, *value;
	size_t nth;		/* among the originals of that name, from 1 */
	int used;		/* met again, kept or changed */
};

struct counts {
	unsigned added, changed, deleted, skipped;
	int body, from;
	unsigned rcpt_added, rcpt_deleted;
};

static struct orig *
snapshot(const struct message *m)
{
	struct orig *o = xcalloc(m->nhdrs + 1, sizeof(*o));

	for (size_t i = 0; i < m->nhdrs; i++) {
		o[i].off = m->hdrs[i].raw_off;
		o[i].name = xstrdup(m->hdrs[i].name);
		o[i].value = xstrdup(m->hdrs[i].value);
		o[i].nth = 1;
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(o[j].name, o[i].name) == 0)
				o[i].nth++;
	}
	return o;
}

static void
snapshot_free(struct orig *o, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(o[i].name);
		free(o[i].value);
	}
	free(o);
}

/* find - the original at raw offset off, or -1 (offsets increase) */
static long
find(const struct orig *o, size_t n, size_t off)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (o[mid].off == off)
			return (long)mid;
		if (o[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int
allowed(const struct mconn *c, unsigned long action, const char *what,
    struct counts *n)
{
	if (c->actions & action)
		return 1;
	log_warnx("qid=%s session=%016llx event=milter-skip change=%s "
	    "reason=\"not allowed by the MTA\"", c->env.id, SID(c), what);
	n->skipped++;
	return 0;
}

static void
check(const struct mconn *c, int rv, const char *what)
{
	if (rv == MI_FAILURE)
		log_warnx("qid=%s session=%016llx event=milter-skip change=%s "
		    "reason=\"libmilter refused it\"", c->env.id, SID(c), what);
}

static void
apply_headers(SMFICTX *ctx, struct mconn *c, struct orig *o, size_t no,
    struct counts *n)
{
	const struct message *m = &c->msg;
	long *from = xcalloc(m->nhdrs + 1, sizeof(*from));
	size_t p = 0, last = 0, i;
	int any_orig = 0;
	char *v;

	for (i = 0; i < m->nhdrs; i++) {	/* kept: original bytes */
		long k = m->hdrs[i].raw_len ? find(o, no, m->hdrs[i].raw_off) :
		    -1;
		if (k >= 0)
			o[k].used = 1;
	}
	for (i = 0; i < m->nhdrs; i++) {
		const struct msg_header *h = &m->hdrs[i];
		long k = find(o, no, h->raw_off);
		from[i] = -1;
		if (k >= 0 && h->raw_len) {
			from[i] = k;
		} else if (k >= 0 && (size_t)k >= p && !o[k].used &&
		    strcasecmp(h->name, o[k].name) == 0) {
			from[i] = k;			/* changed in place */
			o[k].used = 1;
			if (strcmp(h->value, o[k].value) != 0 &&
			    allowed(c, SMFIF_CHGHDRS, "chgheader", n)) {
				v = message_field_milter(m, i, c->leadspc);
				check(c, smfi_chgheader(ctx, o[k].name,
				    (int)o[k].nth, v), "chgheader");
				free(v);
				n->changed++;
			}
		}
		if (from[i] >= 0) {
			p = (size_t)from[i] + 1;
			last = i;
			any_orig = 1;
		}
	}
	for (size_t k = no; k-- > 0;) {			/* deleted */
		if (o[k].used || !allowed(c, SMFIF_CHGHDRS, "delheader", n))
			continue;
		check(c, smfi_chgheader(ctx, o[k].name, (int)o[k].nth, NULL),
		    "delheader");
		n->deleted++;
	}
	for (i = 0; i < m->nhdrs; i++) {		/* new, in order */
		const struct msg_header *h = &m->hdrs[i];
		if (from[i] >= 0 || !allowed(c, SMFIF_ADDHDRS, "addheader", n))
			continue;
		v = message_field_milter(m, i, c->leadspc);
		if (any_orig && i < last)
			check(c, smfi_insheader(ctx, (int)i +
			    (c->hidden_received && i > 0), h->name, v),
			    "insheader");
		else
			check(c, smfi_addheader(ctx, h->name, v), "addheader");
		free(v);
		n->added++;
	}
	free(from);
}

/* apply_body - the new body, bare CR and LF made CRLF, a final CRLF */
static void
apply_body(SMFICTX *ctx, struct mconn *c, struct counts *n)
{
	const struct message *m = &c->msg;
	const char *b = m->body;
	size_t len = m->body_len, o = 0;
	unsigned char *out;

	if (b == NULL || !allowed(c, SMFIF_CHGBODY, "replacebody", n))
		return;
	out = xmalloc(len * 2 + 3);
	for (size_t i = 0; i < len; i++) {
		if (b[i] == '\n' && (i == 0 || b[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = (unsigned char)b[i];
		if (b[i] == '\r' && (i + 1 == len || b[i + 1] != '\n'))
			out[o++] = '\n';
	}
	if (len > 0 && b[len - 1] != '\n') {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	if (o > 0x7fffffff)
		log_warnx("qid=%s session=%016llx event=milter-skip "
		    "change=replacebody reason=\"body too large\"", c->env.id,
		    SID(c));
	else
		check(c, smfi_replacebody(ctx, out, (int)o), "replacebody");
	free(out);
	n->body = 1;
}

static int
has_rcpt(const struct envelope *e, const char *addr)
{
	for (size_t i = 0; i < e->nrcpts; i++)
		if (strcmp(e->rcpts[i].addr, addr) == 0)
			return 1;
	return 0;
}

static void
apply_envelope(SMFICTX *ctx, struct mconn *c, const char *sender0,
    struct counts *n)
{
	char *a;

	if (strcmp(sender0, c->env.sender) != 0 &&
	    allowed(c, SMFIF_CHGFROM, "chgfrom", n)) {
		xasprintf(&a, "<%s>", c->env.sender);
		check(c, smfi_chgfrom(ctx, a, NULL), "chgfrom");
		free(a);
		n->from = 1;
	}
	for (size_t i = 0; i < c->nrcpts; i++) {
		if (has_rcpt(&c->env, c->rcpts[i].addr) ||
		    !allowed(c, SMFIF_DELRCPT, "delrcpt", n))
			continue;
		check(c, smfi_delrcpt(ctx, c->rcpts[i].raw), "delrcpt");
		n->rcpt_deleted++;
	}
	for (size_t i = 0; i < c->env.nrcpts; i++) {
		const char *r = c->env.rcpts[i].addr;
		size_t k;
		for (k = 0; k < c->nrcpts; k++)
			if (strcmp(c->rcpts[k].addr, r) == 0)
				break;
		if (k < c->nrcpts || !allowed(c, SMFIF_ADDRCPT, "addrcpt", n))
			continue;
		xasprintf(&a, "<%s>", r);
		check(c, smfi_addrcpt(ctx, a), "addrcpt");
		free(a);
		n->rcpt_added++;
	}
}

/* load - headers, blank line, body: what the filters read */
static void
load(struct mconn *c)
{
	struct sbuf sb = { 0 };
	size_t len;
	char *data;

	sb_reserve(&sb, c->head.len + 2 + c->body.len);
	sb_add(&sb, c->head.p, c->head.len);
	sb_add(&sb, "\r\n", 2);
	sb_add(&sb, c->body.p, c->body.len);
	data = sb_finish(&sb, &len);
	message_init(&c->msg, data, len);
	c->have_msg = 1;
}

static sfsistat
discarded(struct mconn *c, const char *why)
{
	log_info("qid=%s session=%016llx event=discarded reason=%s",
	    c->env.id, SID(c), log_q(why));
	return SMFIS_DISCARD;
}

/* finish - the stages' verdicts and, when the message passes, changes */
static sfsistat
finish(SMFICTX *ctx, struct mconn *c, struct orig *o, size_t no,
    const char *sender0)
{
	const struct verdict *v;
	struct counts n = { 0 };
	sfsistat rv;

	v = mm_run_stage(c, SLUICE_ON_MESSAGE, 1);
	if ((rv = mm_verdict(ctx, c, SLUICE_ON_MESSAGE, v)) != SMFIS_CONTINUE)
		return rv;
	if (c->pending == SLUICE_DISCARD)
		return discarded(c, "filter verdict");
	if (c->env.nrcpts == 0)
		return discarded(c, "filters removed every recipient");
	v = mm_run_stage(c, SLUICE_ON_QUEUE, 0);
	if ((rv = mm_verdict(ctx, c, SLUICE_ON_QUEUE, v)) != SMFIS_CONTINUE)
		return rv;
	if (c->pending == SLUICE_DISCARD)
		return discarded(c, "filter verdict");
	apply_headers(ctx, c, o, no, &n);
	apply_body(ctx, c, &n);
	apply_envelope(ctx, c, sender0, &n);
	if (c->pending == SLUICE_QUARANTINE &&
	    allowed(c, SMFIF_QUARANTINE, "quarantine", &n))
		check(c, smfi_quarantine(ctx, c->pending_why), "quarantine");
	log_info("qid=%s session=%016llx event=milter-passed%s "
	    "headers_added=%u headers_changed=%u headers_deleted=%u body=%s "
	    "sender=%s rcpts_added=%u rcpts_deleted=%u skipped=%u",
	    c->env.id, SID(c), c->pending == SLUICE_QUARANTINE ?
	    " quarantine=yes" : "", n.added, n.changed, n.deleted,
	    n.body ? "replaced" : "kept", n.from ? "changed" : "kept",
	    n.rcpt_added, n.rcpt_deleted, n.skipped);
	return SMFIS_CONTINUE;
}

sfsistat
mm_eom(SMFICTX *ctx)
{
	struct mconn *c = smfi_getpriv(ctx);
	struct orig *o;
	size_t no;
	char *sender0;
	sfsistat rv;

	if (c == NULL || !c->in_tx)
		return SMFIS_CONTINUE;
	mm_refresh_qid(ctx, c);
	load(c);
	o = snapshot(&c->msg);
	no = c->msg.nhdrs;
	sender0 = xstrdup(c->env.sender);
	rv = finish(ctx, c, o, no, sender0);
	free(sender0);
	snapshot_free(o, no);
	mm_tx_drop(c);
	return rv;
}
