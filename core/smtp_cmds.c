/*
 * smtp_cmds.c - the SMTP commands: greeting, HELO/EHLO, MAIL, RCPT, RSET,
 * NOOP, VRFY, EXPN, HELP, QUIT, and refusals for what is not offered.
 *
 * Each command checks its preconditions in order and returns early with its
 * own reply, then proceeds. Replies carry enhanced status codes (RFC 2034)
 * except the greeting and the HELO/EHLO answers, which RFC 2034 exempts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "conf.h"
#include "log.h"
#include "mailbox.h"
#include "metrics.h"
#include "server.h"
#include "smtp_addr.h"
#include "smtp_cmd.h"
#include "smtp_session.h"
#include "util.h"

#define SID(s)	((unsigned long long)(s)->id)

typedef void (*cmd_fn)(struct smtp_session *, char *args);

/* refuse - a client mistake: reply, and count it */
static void
refuse(struct smtp_session *s, const char *reply)
{
	session_reply(s, "%s", reply);
	session_client_error(s);
}

void
smtp_greet(struct smtp_session *s)
{
	if (smtp_sync_greeting(s))	/* delayed, or an early talker */
		return;
	session_reply(s, "220 %s ESMTP sluice", server.conf->hostname);
	session_enter(s, SMTP_GREETED);
}

/* helo_ok - one word of printable ASCII (or UTF-8), as RFC 5321 expects */
static int
helo_ok(const char *h)
{
	if (*h == '\0' || strlen(h) > 255)
		return 0;
	for (; *h; h++)
		if (*h == ' ' || (unsigned char)*h < 0x21 || *h == 0x7f)
			return 0;
	return 1;
}

static void
helo_reply(struct smtp_session *s)
{
	const struct config *c = server.conf;

	if (!s->esmtp) {
		session_reply(s, "250 %s", c->hostname);
		return;
	}
	session_reply(s, "250-%s Hello %s [%s]", c->hostname, s->helo,
	    s->addr);
	session_reply(s, "250-PIPELINING");
	session_reply(s, "250-SIZE %llu",
	    (unsigned long long)c->limits.message_size);
	session_reply(s, "250-8BITMIME");
	session_reply(s, "250-ENHANCEDSTATUSCODES");
	session_reply(s, "250-SMTPUTF8");
	session_reply(s, "250-CHUNKING");
	if (smtp_tls_offered(s))
		session_reply(s, "250-STARTTLS");
	if (smtp_auth_offered(s))
		session_reply(s, "250-AUTH PLAIN LOGIN");
	session_reply(s, "250 DSN");
}

/* helo_done - a refused HELO leaves the session without one */
static void
helo_done(struct smtp_session *s, const struct verdict *v)
{
	if (session_refuse(s, SLUICE_ON_HELO, v)) {
		free(s->helo);
		s->helo = NULL;
		session_enter(s, SMTP_GREETED);
		return;
	}
	helo_reply(s);
}

static void
do_helo(struct smtp_session *s, char *args, int esmtp)
{
	if (!helo_ok(args)) {
		session_reply(s, "501 5.5.4 Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		session_client_error(s);
		return;
	}
	session_tx_free(s);		/* RFC 5321 4.1.4: EHLO resets */
	free(s->helo);
	s->helo = xstrdup(args);
	s->esmtp = esmtp;
	session_enter(s, SMTP_READY);
	session_stage(s, SLUICE_ON_HELO, helo_done);
}

static void
cmd_helo(struct smtp_session *s, char *args)
{
	do_helo(s, args, 0);
}

static void
cmd_ehlo(struct smtp_session *s, char *args)
{
	do_helo(s, args, 1);
}

/* tx_new - a transaction starts: queue ID and envelope basics */
static struct smtp_tx *
tx_new(struct smtp_session *s, const char *sender,
    const struct mail_params *mp)
{
	struct smtp_tx *tx = xcalloc(1, sizeof(*tx));

	envelope_init(&tx->env);
	qid_new(tx->env.id);
	tx->env.sender = xstrdup(sender);
	tx->mp = *mp;
	tx->env.body = mp->body;
	tx->env.smtputf8 = mp->smtputf8;
	tx->env.ret = mp->ret;
	tx->env.envid = mp->envid[0] ? xstrdup(mp->envid) : NULL;
	tx->started = mono_msec();
	tx->discard = s->hold == SLUICE_DISCARD;
	tx->env.quarantine = s->hold == SLUICE_QUARANTINE;
	s->tx = tx;
	return tx;
}

/*
 * parse_path_cmd - "FROM:<path> [params]" or "TO:<path> [params]": NULL
 * with *addr and *params set, or the reply refusing the command.
 */
static const char *
parse_path_cmd(struct smtp_session *s, char *args, int sender, int flags,
    struct mailaddr *addr, char **params)
{
	const char *reply;
	char *path, *after;
	size_t n;

	path = smtp_cmd_path_arg(args, sender ? "FROM:" : "TO:");
	if (path == NULL)
		return sender ? "501 5.5.4 Syntax: MAIL FROM:<address>" :
		    "501 5.5.4 Syntax: RCPT TO:<address>";
	if ((n = smtp_addr_parse_path(path, flags, addr, &reply)) == 0)
		return reply;
	after = path + n;
	if (*after != '\0' && *after != ' ')	/* garbage glued to the path */
		return sender ?
		    "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]" :
		    "501 5.5.4 Syntax: RCPT TO:<address> [parameters]";
	while (*after == ' ')
		after++;
	if (*after != '\0' && !s->esmtp)
		return "555 5.5.4 Parameters need EHLO";
	*params = after;
	return NULL;
}

static void
mail_done(struct smtp_session *s, const struct verdict *v)
{
	struct smtp_tx *tx = s->tx;
	char shown[ADDR_PATH_MAX + 3];

	if (session_refuse(s, SLUICE_ON_MAIL, v)) {
		session_tx_free(s);
		if (s->state == SMTP_MAIL)
			session_enter(s, SMTP_READY);
		return;
	}
	snprintf(shown, sizeof(shown), "<%s>", tx->env.sender);
	log_info("qid=%s session=%016llx event=mail from=%s size=%llu",
	    tx->env.id, SID(s), log_q(shown), (unsigned long long)tx->mp.size);
	session_reply(s, "250 2.1.0 Ok");
}

static void
cmd_mail(struct smtp_session *s, char *args)
{
	const struct config *c = server.conf;
	struct mailaddr addr;
	struct mail_params mp;
	const char *reply;
	char *params, sender[ADDR_PATH_MAX + 1];

	if (s->state < SMTP_READY) {
		refuse(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->tx != NULL) {
		refuse(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if ((reply = parse_path_cmd(s, args, 1, ADDR_ALLOW_NULL | ADDR_UTF8 |
	    ADDR_SENDER, &addr, &params)) != NULL ||
	    (reply = smtp_params_mail(params, &mp)) != NULL) {
		refuse(s, reply);
		return;
	}
	if (addr.utf8 && !mp.smtputf8) {
		refuse(s, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		return;
	}
	if (mp.has_size && c->limits.message_size != 0 &&
	    mp.size > c->limits.message_size) {
		metrics_inc(M_MESSAGES_REJECTED, "mail", "message_size");
		session_reply(s, "552 5.3.4 Message size exceeds fixed maximum "
		    "message size");
		return;
	}
	smtp_addr_format(&addr, sender, sizeof(sender));
	tx_new(s, sender, &mp);
	session_enter(s, SMTP_MAIL);
	session_stage(s, SLUICE_ON_MAIL, mail_done);
}

static int
relay_domain(const char *domain)
{
	for (size_t i = 0; i < server.conf->nrelay_domains; i++)
		if (strcmp(server.conf->relay_domains[i], domain) == 0)
			return 1;
	return 0;
}

/* the refusals of rcpt_route(), with the reason the metrics give them */
static const char relay_denied[] = "554 5.7.1 <%s>: Relay access denied";
static const char unknown_user[] = "550 5.1.1 <%s>: Recipient address "
    "rejected: User unknown in local recipient table";

/*
 * rcpt_route - NULL when we take the recipient, else the refusal. Local
 * domains need an existing mailbox; relay domains are taken from anyone;
 * any other domain only from trusted or authenticated clients (never an
 * open relay). Mail for <postmaster>, or postmaster@ a local domain
 * without such a mailbox, goes to mailboxes.postmaster: rcpt is rewritten
 * to it.
 */
static const char *
rcpt_route(const struct smtp_session *s, const struct mailaddr *addr,
    char *rcpt, size_t len)
{
	char key[ADDR_PATH_MAX + 1];
	int postmaster = (addr->domain[0] == '\0');

	if (!postmaster) {
		if (addr->literal ||
		    !mailbox_domain_is_local(server.mailboxes, addr->domain)) {
			if ((!addr->literal && relay_domain(addr->domain)) ||
			    s->trusted || s->auth_user != NULL)
				return NULL;
			return relay_denied;
		}
		smtp_addr_lookup_key(addr, key, sizeof(key));
		if (mailbox_exists(server.mailboxes, key))
			return NULL;
		postmaster = strncmp(key, "postmaster@", 11) == 0;
	}
	if (postmaster && server.conf->postmaster != NULL) {
		snprintf(rcpt, len, "%s", server.conf->postmaster);
		return NULL;
	}
	return unknown_user;
}

static int
rcpt_known(const struct envelope *e, const char *addr)
{
	for (size_t i = 0; i < e->nrcpts; i++)
		if (strcmp(e->rcpts[i].addr, addr) == 0)
			return 1;
	return 0;
}

static void
rcpt_done(struct smtp_session *s, const struct verdict *v)
{
	struct smtp_tx *tx = s->tx;
	char *rcpt = tx->rcpt;

	tx->rcpt = NULL;
	if (!session_refuse(s, SLUICE_ON_RCPT, v)) {
		if (!rcpt_known(&tx->env, rcpt))
			envelope_add_rcpt(&tx->env, rcpt, tx->rp.orcpt,
			    tx->rp.notify);
		session_enter(s, SMTP_RCPT);
		session_reply(s, "250 2.1.5 Ok");
	}
	free(rcpt);
}

/* rcpt_refused - the server's own refusal, once milters that asked for
   refused recipients (SMFIP_RCPT_REJ) have been told */
static void
rcpt_refused(struct smtp_session *s, const struct verdict *v)
{
	struct smtp_tx *tx = s->tx;

	(void)v;			/* the recipient stays refused */
	session_reply(s, "%s", tx->refusal);
	free(tx->rcpt);
	free(tx->refusal);
	tx->rcpt = tx->refusal = NULL;
	session_client_error(s);
}

static void
cmd_rcpt(struct smtp_session *s, char *args)
{
	struct smtp_tx *tx = s->tx;
	struct mailaddr addr;
	struct rcpt_params rp;
	const char *reply;
	char *params, rcpt[ADDR_PATH_MAX + 1];

	if (tx == NULL || s->state == SMTP_BDAT) {
		refuse(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if ((reply = parse_path_cmd(s, args, 0, ADDR_POSTMASTER |
	    (tx->mp.smtputf8 ? ADDR_UTF8 : 0), &addr, &params)) != NULL ||
	    (reply = smtp_params_rcpt(params, tx->mp.smtputf8, &rp)) != NULL) {
		refuse(s, reply);
		return;
	}
	if (tx->env.nrcpts >= server.conf->limits.recipients) {
		metrics_inc(M_MESSAGES_TEMPFAILED, "rcpt", "recipient_limit");
		session_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	smtp_addr_format(&addr, rcpt, sizeof(rcpt));
	if ((reply = rcpt_route(s, &addr, rcpt, sizeof(rcpt))) != NULL) {
		char text[ADDR_PATH_MAX + 128];
		snprintf(text, sizeof(text), reply, rcpt);
		metrics_inc(M_MESSAGES_REJECTED, "rcpt", reply == relay_denied ?
		    "relay_denied" : "unknown_user");
		log_info("qid=%s session=%016llx event=reject stage=rcpt "
		    "to=%s reply=%s", tx->env.id, SID(s), log_q(rcpt),
		    log_q(text));
		tx->rcpt = xstrdup(rcpt);
		tx->rp = rp;
		tx->refusal = xstrdup(text);
		session_stage_refused_rcpt(s, text, rcpt_refused);
		return;
	}
	tx->rcpt = xstrdup(rcpt);
	tx->rp = rp;
	session_stage(s, SLUICE_ON_RCPT, rcpt_done);
}

static void
cmd_rset(struct smtp_session *s, char *args)
{
	if (*args != '\0') {
		refuse(s, "501 5.5.4 Syntax: RSET");
		return;
	}
	session_tx_free(s);
	if (s->state > SMTP_GREETED)
		session_enter(s, SMTP_READY);
	session_reply(s, "250 2.0.0 Ok");
	session_junk_command(s);
}

static void
cmd_noop(struct smtp_session *s, char *args)
{
	(void)args;
	session_reply(s, "250 2.0.0 Ok");
	session_junk_command(s);
}

static void
cmd_quit(struct smtp_session *s, char *args)
{
	(void)args;
	session_reply(s, "221 2.0.0 Bye");
	session_close(s, "quit");
}

static void
cmd_vrfy(struct smtp_session *s, char *args)
{
	if (*args == '\0') {
		refuse(s, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	session_reply(s, "252 2.5.2 Cannot VRFY user, but will accept message "
	    "and attempt delivery");
	session_junk_command(s);
}

static void
cmd_expn(struct smtp_session *s, char *args)
{
	(void)args;
	refuse(s, "502 5.5.1 EXPN not available");
}

static void
cmd_help(struct smtp_session *s, char *args)
{
	(void)args;
	session_reply(s, "214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT "
	    "RSET NOOP QUIT VRFY HELP");
	session_reply(s, "214 2.0.0 See RFC 5321");
	session_junk_command(s);
}

static void
cmd_not_offered(struct smtp_session *s, char *args)
{
	(void)args;
	refuse(s, "502 5.5.1 Error: command not implemented");
}

static void
cmd_http(struct smtp_session *s, char *args)
{
	(void)args;
	log_info("session=%016llx event=reject reason=\"HTTP command\"",
	    SID(s));
	session_reply(s, "421 4.7.0 %s Error: this is an SMTP server",
	    server.conf->hostname);
	session_close(s, "http command");
}

static void
unknown_done(struct smtp_session *s, const struct verdict *v)
{
	free(s->unknown_cmd);
	s->unknown_cmd = NULL;
	if (!session_refuse(s, STAGE_UNKNOWN_CMD, v))
		refuse(s, "500 5.5.2 Error: command not recognized");
	else if (!(s->flags & SS_CLOSE))
		session_client_error(s);
}

/* cmd_unknown - line: the whole command; milters may answer it first */
static void
cmd_unknown(struct smtp_session *s, char *line)
{
	s->unknown_cmd = xstrdup(line);
	session_stage(s, STAGE_UNKNOWN_CMD, unknown_done);
}

static const cmd_fn commands[] = {
	[CMD_UNKNOWN] = cmd_unknown,
	[CMD_HELO] = cmd_helo,
	[CMD_EHLO] = cmd_ehlo,
	[CMD_MAIL] = cmd_mail,
	[CMD_RCPT] = cmd_rcpt,
	[CMD_DATA] = smtp_cmd_data,
	[CMD_BDAT] = smtp_cmd_bdat,
	[CMD_RSET] = cmd_rset,
	[CMD_NOOP] = cmd_noop,
	[CMD_QUIT] = cmd_quit,
	[CMD_VRFY] = cmd_vrfy,
	[CMD_EXPN] = cmd_expn,
	[CMD_HELP] = cmd_help,
	[CMD_STARTTLS] = smtp_cmd_starttls,
	[CMD_AUTH] = smtp_cmd_auth,
	[CMD_ETRN] = cmd_not_offered,
	[CMD_HTTP] = cmd_http,
};

/* tls_needed - tls.mode required: only these commands before STARTTLS */
static int
tls_needed(const struct smtp_session *s, enum smtp_verb verb)
{
	if (s->tls || s->listener->tls.mode != TLS_MODE_REQUIRED)
		return 0;
	switch (verb) {
	case CMD_HELO: case CMD_EHLO: case CMD_STARTTLS: case CMD_NOOP:
	case CMD_RSET: case CMD_QUIT: case CMD_HELP: case CMD_HTTP:
	case CMD_UNKNOWN:
		return 0;
	default:
		return 1;
	}
}

void
smtp_dispatch(struct smtp_session *s, char *line, size_t len)
{
	struct smtp_cmd cmd;
	const char *reply;

	if (s->sasl_step != 0) {	/* a line of an AUTH exchange */
		smtp_auth_response(s, line, len);
		return;
	}
	if ((reply = smtp_cmd_parse(line, len, &cmd)) != NULL) {
		refuse(s, reply);
		return;
	}
	if (log_debug_enabled())
		log_debug("session=%016llx event=command verb=%s args=%s",
		    SID(s), cmd.name[0] ? cmd.name : "?", log_q(cmd.args));
	if (smtp_sync_command(s, cmd.verb, cmd.name))
		return;			/* pipelined past its reply */
	/* RFC 3030: between BDAT chunks only BDAT, RSET, NOOP and QUIT */
	if (s->state == SMTP_BDAT && cmd.verb != CMD_BDAT &&
	    cmd.verb != CMD_RSET && cmd.verb != CMD_NOOP &&
	    cmd.verb != CMD_QUIT && cmd.verb != CMD_DATA) {
		refuse(s, "503 5.5.1 Error: BDAT transaction in progress");
		return;
	}
	if (tls_needed(s, cmd.verb)) {
		refuse(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if ((cmd.verb == CMD_MAIL || cmd.verb == CMD_RCPT ||
	    cmd.verb == CMD_DATA || cmd.verb == CMD_BDAT) &&
	    smtp_auth_needed(s)) {
		refuse(s, "530 5.7.0 Authentication required");
		return;
	}
	commands[cmd.verb](s, cmd.verb == CMD_UNKNOWN ?
	    line + strspn(line, " ") : cmd.args);
}
