/*
 * milter_mode_cb.c - milter mode's libmilter callbacks up to the end of
 * the headers and body (the end of message is milter_mode_eom.c).
 *
 *   negotiate  ask for the actions we use (MM_ACTIONS) that the MTA
 *              offers, and for SMFIP_HDR_LEADSPC (header bytes exact)
 *   connect    connect stage: client address/port from the MTA, its
 *              name ("unknown" for "[addr]"), {daemon_name} as listener
 *   helo       helo stage
 *   envfrom    mail stage; SIZE/BODY/SMTPUTF8/RET/ENVID parsed
 *   envrcpt    rcpt stage; a recipient it passes joins the envelope
 *   data       data stage
 *   header/eoh/body  the message collected ("Name:value\r\n", CRLF body)
 *   abort      the transaction dropped
 *   close      disconnect stage, free
 *
 * The verdict of each stage becomes the answer in milter_mode_reply.c.
 * Thread: the connection's libmilter thread.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "conf.h"
#include "filter.h"
#include "log.h"
#include "milter_mode_int.h"
#include "qid.h"
#include "server.h"
#include "smtp_addr.h"
#include "util.h"

#define SID(c)	((unsigned long long)(c)->id)

static struct mconn *
conn_of(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

static sfsistat
on_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	struct mconn *c = conn_of(ctx);

	(void)f2;
	(void)f3;
	if (c == NULL)
		c = mm_conn_new(ctx);
	c->actions = f0 & MM_ACTIONS;
	c->leadspc = (f1 & SMFIP_HDR_LEADSPC) != 0;
	*pf0 = c->actions;
	*pf1 = (f1 & SMFIP_HDR_LEADSPC) | (f1 & SMFIP_NOUNKNOWN);
	*pf2 = *pf3 = 0;
	if ((c->actions & MM_ACTIONS) != MM_ACTIONS)
		log_info("session=%016llx event=milter-negotiate warning=\"MTA "
		    "offers actions 0x%lx of 0x%lx: changes it lacks are "
		    "skipped\"", SID(c), f0 & MM_ACTIONS,
		    (unsigned long)MM_ACTIONS);
	return SMFIS_CONTINUE;
}

static void
client_of(struct mconn *c, const struct sockaddr *sa)
{
	char buf[INET6_ADDRSTRLEN];

	c->port = 0;
	c->addr = xstrdup(sa != NULL && sockaddr_text(sa, buf, sizeof(buf),
	    &c->port) == 0 ? buf : "unknown");
}

static sfsistat
on_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	struct mconn *c = conn_of(ctx);
	const char *d;

	if (c == NULL)
		c = mm_conn_new(ctx);
	client_of(c, sa);
	c->rdns = xstrdup(host == NULL || *host == '\0' || *host == '[' ?
	    "unknown" : host);
	d = smfi_getsymval(ctx, "v");
	c->hidden_received = d != NULL && strncmp(d, "Postfix", 7) == 0;
	d = smfi_getsymval(ctx, "{daemon_name}");
	c->listener = xstrdup(d != NULL && *d != '\0' ? d : "milter");
	log_info("session=%016llx event=connect mode=milter client=%s "
	    "port=%u rdns=%s listener=%s mta=%s", SID(c), c->addr, c->port,
	    log_q(c->rdns), log_q(c->listener),
	    log_q((d = smfi_getsymval(ctx, "j")) != NULL ? d : "-"));
	return mm_verdict(ctx, c, SLUICE_ON_CONNECT,
	    mm_run_stage(c, SLUICE_ON_CONNECT, 0));
}

/* symval - a macro's value, malloc'ed; NULL when the MTA sent none */
static char *
symval(SMFICTX *ctx, const char *name)
{
	const char *v = smfi_getsymval(ctx, (char *)name);

	return v != NULL && *v != '\0' ? xstrdup(v) : NULL;
}

/*
 * tls_of - the session's TLS as the MTA tells it (Postfix and Sendmail
 * send {tls_version}, {cipher}, {cipher_bits} with HELO by default)
 */
static void
tls_of(SMFICTX *ctx, struct mconn *c)
{
	char *bits = symval(ctx, "{cipher_bits}");

	free(c->tls_version);
	free(c->tls_cipher);
	c->tls_version = symval(ctx, "{tls_version}");
	c->tls_cipher = symval(ctx, "{cipher}");
	c->tls_bits = c->tls_version != NULL && bits != NULL ?
	    (unsigned)strtoul(bits, NULL, 10) : 0;
	free(bits);
}

static sfsistat
on_helo(SMFICTX *ctx, char *helo)
{
	struct mconn *c = conn_of(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	free(c->helo);
	c->helo = xstrdup(helo != NULL ? helo : "");
	tls_of(ctx, c);
	return mm_verdict(ctx, c, SLUICE_ON_HELO,
	    mm_run_stage(c, SLUICE_ON_HELO, 0));
}

/*
 * parse_path - "<addr>" as the MTA sent it into our canonical form; what
 * does not parse is kept as sent, brackets removed
 */
static void
parse_path(const char *raw, int flags, char *out, size_t len)
{
	struct mailaddr a;
	const char *reply;
	size_t n;

	n = smtp_addr_parse_path(raw, flags, &a, &reply);
	if (n > 0 && raw[n] == '\0') {
		smtp_addr_format(&a, out, len);
		return;
	}
	if (*raw == '<')
		raw++;
	snprintf(out, len, "%.*s", (int)strcspn(raw, ">"), raw);
}

/* params - the ESMTP arguments we understand, joined by spaces */
static char *
params(char **argv, const char *const *known)
{
	struct sbuf sb = { 0 };

	for (size_t i = 1; argv[i] != NULL; i++)
		for (size_t k = 0; known[k] != NULL; k++) {
			size_t n = strlen(known[k]);
			if (strncasecmp(argv[i], known[k], n) == 0 &&
			    (argv[i][n] == '\0' || argv[i][n] == '=')) {
				if (sb.len)
					sb_add(&sb, " ", 1);
				sb_str(&sb, argv[i]);
			}
		}
	return sb_finish(&sb, NULL);
}

static sfsistat
on_envfrom(SMFICTX *ctx, char **argv)
{
	static const char *const known[] = { "SIZE", "BODY", "SMTPUTF8",
	    "RET", "ENVID", NULL };
	struct mconn *c = conn_of(ctx);
	char sender[ADDR_PATH_MAX + 1], *args;

	if (c == NULL)
		return SMFIS_CONTINUE;
	mm_tx_drop(c);
	free(c->auth_user);		/* Postfix: with MAIL, once AUTH is done */
	free(c->auth_mech);
	c->auth_user = symval(ctx, "{auth_authen}");
	c->auth_mech = symval(ctx, "{auth_type}");
	args = params(argv, known);
	if (smtp_params_mail(args, &c->mp) != NULL)
		memset(&c->mp, 0, sizeof(c->mp));	/* the MTA's business */
	free(args);
	parse_path(argv[0], ADDR_ALLOW_NULL | ADDR_UTF8 | ADDR_SENDER,
	    sender, sizeof(sender));
	envelope_init(&c->env);
	qid_new(c->env.id);
	c->env.sender = xstrdup(sender);
	c->env.body = c->mp.body;
	c->env.smtputf8 = c->mp.smtputf8;
	c->env.ret = c->mp.ret;
	c->env.envid = c->mp.envid[0] ? xstrdup(c->mp.envid) : NULL;
	c->in_tx = 1;
	c->pending = c->hold;
	if (c->hold != SLUICE_CONTINUE)
		c->pending_why = xstrdup("verdict before MAIL");
	mm_refresh_qid(ctx, c);
	log_info("qid=%s session=%016llx event=mail from=%s", mm_qid(c),
	    SID(c), log_q(argv[0]));
	return mm_verdict(ctx, c, SLUICE_ON_MAIL,
	    mm_run_stage(c, SLUICE_ON_MAIL, 0));
}

static sfsistat
on_envrcpt(SMFICTX *ctx, char **argv)
{
	static const char *const known[] = { "NOTIFY", "ORCPT", NULL };
	struct mconn *c = conn_of(ctx);
	char rcpt[ADDR_PATH_MAX + 1], *args;
	sfsistat rv;

	if (c == NULL || !c->in_tx)
		return SMFIS_CONTINUE;
	mm_refresh_qid(ctx, c);
	args = params(argv, known);
	if (smtp_params_rcpt(args, c->env.smtputf8, &c->rp) != NULL)
		memset(&c->rp, 0, sizeof(c->rp));
	free(args);
	parse_path(argv[0], ADDR_UTF8 | ADDR_POSTMASTER, rcpt, sizeof(rcpt));
	c->rcpt = xstrdup(rcpt);
	rv = mm_verdict(ctx, c, SLUICE_ON_RCPT,
	    mm_run_stage(c, SLUICE_ON_RCPT, 0));
	if (rv == SMFIS_CONTINUE) {
		envelope_add_rcpt(&c->env, rcpt, c->rp.orcpt[0] ?
		    c->rp.orcpt : NULL, c->rp.notify);
		c->rcpts = xreallocarray(c->rcpts, c->nrcpts + 1,
		    sizeof(*c->rcpts));
		c->rcpts[c->nrcpts].addr = xstrdup(rcpt);
		c->rcpts[c->nrcpts++].raw = xstrdup(argv[0]);
	}
	free(c->rcpt);
	c->rcpt = NULL;
	return rv;
}

static sfsistat
on_data(SMFICTX *ctx)
{
	struct mconn *c = conn_of(ctx);

	if (c == NULL || !c->in_tx)
		return SMFIS_CONTINUE;
	mm_refresh_qid(ctx, c);
	return mm_verdict(ctx, c, SLUICE_ON_DATA,
	    mm_run_stage(c, SLUICE_ON_DATA, 0));
}

/* too_big - the message passed limits.message_size: refuse it once */
static sfsistat
too_big(SMFICTX *ctx, struct mconn *c)
{
	const struct config *cf = server.conf;
	uint64_t max = cf->limits.message_size;

	if (c->too_big || max == 0 || c->head.len + c->body.len <= max)
		return SMFIS_CONTINUE;
	c->too_big = 1;
	log_info("qid=%s session=%016llx event=reject stage=data reply=%s",
	    mm_qid(c), SID(c), log_q("552 5.3.4 message too big"));
	mm_set_reply(ctx, "552 5.3.4 Message size exceeds fixed maximum message "
	    "size");
	return SMFIS_REJECT;
}

/* on_header - "Name:" value "\r\n", a lone LF of a fold made CRLF */
static sfsistat
on_header(SMFICTX *ctx, char *name, char *value)
{
	struct mconn *c = conn_of(ctx);

	if (c == NULL || !c->in_tx)
		return SMFIS_CONTINUE;
	sb_str(&c->head, name);
	sb_add(&c->head, c->leadspc ? ":" : ": ", c->leadspc ? 1 : 2);
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '\n' && (p == value || p[-1] != '\r'))
			sb_add(&c->head, "\r", 1);
		sb_add(&c->head, p, 1);
	}
	sb_add(&c->head, "\r\n", 2);
	return too_big(ctx, c);
}

static sfsistat
on_eoh(SMFICTX *ctx)
{
	struct mconn *c = conn_of(ctx);

	if (c != NULL && c->in_tx)
		mm_refresh_qid(ctx, c);
	return SMFIS_CONTINUE;
}

static sfsistat
on_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct mconn *c = conn_of(ctx);

	if (c == NULL || !c->in_tx)
		return SMFIS_CONTINUE;
	sb_add(&c->body, (const char *)chunk, len);
	return too_big(ctx, c);
}

static sfsistat
on_abort(SMFICTX *ctx)
{
	struct mconn *c = conn_of(ctx);

	if (c != NULL && c->in_tx) {
		log_info("qid=%s session=%016llx event=milter-abort",
		    mm_qid(c), SID(c));
		mm_tx_drop(c);
	}
	return SMFIS_CONTINUE;
}

static sfsistat
on_close(SMFICTX *ctx)
{
	struct mconn *c = conn_of(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	mm_tx_drop(c);
	if (c->addr != NULL)		/* connected: the disconnect stage */
		(void)mm_run_stage(c, SLUICE_ON_DISCONNECT, 0);
	mm_filters_end(c, 1);
	log_info("session=%016llx event=disconnect mode=milter", SID(c));
	mm_conn_free(ctx, c);
	return SMFIS_CONTINUE;
}

struct smfiDesc mm_desc = {
	.xxfi_name = "sluice",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = MM_ACTIONS,
	.xxfi_connect = on_connect,
	.xxfi_helo = on_helo,
	.xxfi_envfrom = on_envfrom,
	.xxfi_envrcpt = on_envrcpt,
	.xxfi_header = on_header,
	.xxfi_eoh = on_eoh,
	.xxfi_body = on_body,
	.xxfi_eom = mm_eom,
	.xxfi_abort = on_abort,
	.xxfi_close = on_close,
	.xxfi_data = on_data,
	.xxfi_negotiate = on_negotiate,
};
