/*
 * sm_smtp.c - sluice-sendmail -bs: a small SMTP server on stdin/stdout
 * (sendmail.h), for programs that submit by speaking SMTP to a pipe.
 *
 * It does not talk to sluiced: each message accepted here is written to
 * the maildrop like any other, so -bs works with sluiced down too, and
 * the "250 ... queued" comes only once the file is durable. Commands:
 * HELO, EHLO (8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, SIZE), MAIL, RCPT,
 * DATA, RSET, NOOP, VRFY (252), HELP, QUIT; ESMTP parameters of MAIL and
 * RCPT are accepted and ignored. Sender and recipients are checked as
 * sluiced checks them; the message gets the same checks as on stdin
 * (sm_input.c) and the same header fixes (sm_header.c) except -t.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "maildrop.h"
#include "sbuf.h"
#include "sendmail.h"
#include "smtp_addr.h"
#include "util.h"

#define LINE_MAX_SMTP	2048

struct sm_tx {
	char *sender;			/* NULL: no MAIL yet */
	struct sm_rcpts rcpts;
};

static void
reply(FILE *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply(FILE *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputs("\r\n", out);
	fflush(out);
}

static void
tx_reset(struct sm_tx *tx)
{
	free(tx->sender);
	tx->sender = NULL;
	sm_rcpts_clear(&tx->rcpts);
}

/* get_line - one line without its CRLF; -1 at EOF */
static ssize_t
get_line(FILE *in, char **line, size_t *cap)
{
	ssize_t n = getline(line, cap, in);

	if (n <= 0)
		return -1;
	if (n > 0 && (*line)[n - 1] == '\n')
		(*line)[--n] = '\0';
	if (n > 0 && (*line)[n - 1] == '\r')
		(*line)[--n] = '\0';
	return n;
}

/* arg_path - the path after "FROM:" / "TO:", or NULL */
static const char *
arg_path(const char *args, const char *kw)
{
	size_t k = strlen(kw);

	if (strncasecmp(args, kw, k) != 0)
		return NULL;
	args += k;
	while (*args == ' ')
		args++;
	return args;
}

static void
cmd_mail(FILE *out, struct sm_tx *tx, const char *args)
{
	struct mailaddr ma;
	const char *p = arg_path(args, "FROM:"), *why;
	char addr[ADDR_PATH_MAX + 1];

	if (tx->sender != NULL) {
		reply(out, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (p == NULL || smtp_addr_parse_path(p, ADDR_ALLOW_NULL | ADDR_UTF8 |
	    ADDR_SENDER, &ma, &why) == 0) {
		reply(out, "501 5.1.7 Bad sender address syntax");
		return;
	}
	smtp_addr_format(&ma, addr, sizeof(addr));
	tx->sender = xstrdup(addr);
	reply(out, "250 2.1.0 Ok");
}

static void
cmd_rcpt(FILE *out, struct sm_tx *tx, const char *args,
    const struct sm_env *env)
{
	struct mailaddr ma;
	const char *p = arg_path(args, "TO:"), *why;
	char addr[ADDR_PATH_MAX + 1], full[ADDR_PATH_MAX * 2];

	if (tx->sender == NULL) {
		reply(out, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (p == NULL || smtp_addr_parse_path(p, ADDR_UTF8 | ADDR_POSTMASTER,
	    &ma, &why) == 0) {
		reply(out, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	smtp_addr_format(&ma, addr, sizeof(addr));
	if (ma.domain[0] == '\0')		/* <postmaster> */
		snprintf(full, sizeof(full), "%s@%s", addr, env->origin);
	else
		snprintf(full, sizeof(full), "%s", addr);
	sm_rcpts_add(&tx->rcpts, full);
	reply(out, "250 2.1.5 Ok");
}

/* read_data - the content up to the lone dot, dot-unstuffed, CRLF */
static char *
read_data(FILE *in, size_t *len, int *eof)
{
	struct sbuf b = { 0 };
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	*eof = 1;
	sb_reserve(&b, 4096);
	while ((n = get_line(in, &line, &cap)) >= 0) {
		if (n == 1 && line[0] == '.') {
			*eof = 0;
			break;
		}
		sb_add(&b, line[0] == '.' ? line + 1 : line,
		    line[0] == '.' ? (size_t)n - 1 : (size_t)n);
		sb_add(&b, "\r\n", 2);
	}
	free(line);
	return sb_finish(&b, len);
}

static int
cmd_data(FILE *in, FILE *out, struct sm_tx *tx, const struct sm_env *env)
{
	struct sm_header_ctx hx = { .sender = tx->sender,
	    .hostname = env->hostname, .origin = env->origin };
	char err[SM_ERR_LEN], name[MAILDROP_NAME_MAX], *msg;
	size_t len;
	int eof, rv;

	if (tx->rcpts.n == 0) {
		reply(out, "503 5.5.1 Error: need RCPT command");
		return 0;
	}
	reply(out, "354 End data with <CR><LF>.<CR><LF>");
	msg = read_data(in, &len, &eof);
	if (eof) {
		free(msg);
		return -1;
	}
	if (sm_check_message(msg, len, &env->limits, err, sizeof(err)) != 0)
		reply(out, "%s Error: %s", strstr(err, "larger") != NULL ?
		    "552 5.3.4" : "550 5.6.0", err);
	else if (sm_header_fix(&msg, &len, &hx, NULL, err, sizeof(err)) != 0)
		reply(out, "550 5.6.0 Error: %s", err);
	else if ((rv = sm_drop(env, tx->sender, &tx->rcpts, NULL, msg, len,
	    name, sizeof(name), err, sizeof(err))) != 0)
		reply(out, "451 4.3.0 Error: %s", err);
	else
		reply(out, "250 2.0.0 Ok: queued in the maildrop as %s", name);
	free(msg);
	tx_reset(tx);
	return 0;
}

/* dispatch - one command line; 1 after QUIT, -1 at EOF inside DATA */
static int
dispatch(FILE *in, FILE *out, struct sm_tx *tx, char *line,
    const struct sm_env *env)
{
	char *args = line + strcspn(line, " ");

	if (*args == ' ')
		*args++ = '\0';
	if (strcasecmp(line, "HELO") == 0)
		reply(out, "250 %s", env->hostname);
	else if (strcasecmp(line, "EHLO") == 0)
		reply(out, "250-%s\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
		    "250-ENHANCEDSTATUSCODES\r\n250 SIZE %llu", env->hostname,
		    (unsigned long long)env->limits.message_size);
	else if (strcasecmp(line, "MAIL") == 0)
		cmd_mail(out, tx, args);
	else if (strcasecmp(line, "RCPT") == 0)
		cmd_rcpt(out, tx, args, env);
	else if (strcasecmp(line, "DATA") == 0)
		return cmd_data(in, out, tx, env);
	else if (strcasecmp(line, "RSET") == 0) {
		tx_reset(tx);
		reply(out, "250 2.0.0 Ok");
	} else if (strcasecmp(line, "NOOP") == 0)
		reply(out, "250 2.0.0 Ok");
	else if (strcasecmp(line, "VRFY") == 0)
		reply(out, "252 2.0.0 Send some mail, I'll try my best");
	else if (strcasecmp(line, "HELP") == 0)
		reply(out, "214 2.0.0 HELO EHLO MAIL RCPT DATA RSET NOOP VRFY "
		    "QUIT");
	else if (strcasecmp(line, "QUIT") == 0) {
		reply(out, "221 2.0.0 Bye");
		return 1;
	} else
		reply(out, "500 5.5.2 Error: command not recognized");
	return 0;
}

int
sm_smtp(FILE *in, FILE *out, const struct sm_env *env)
{
	struct sm_tx tx = { 0 };
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rv = 0;

	reply(out, "220 %s ESMTP sluice-sendmail", env->hostname);
	while ((n = get_line(in, &line, &cap)) >= 0) {
		if ((size_t)n > LINE_MAX_SMTP || strlen(line) != (size_t)n) {
			reply(out, "500 5.5.2 Error: bad command line");
			continue;
		}
		if ((rv = dispatch(in, out, &tx, line, env)) != 0)
			break;
	}
	free(line);
	tx_reset(&tx);
	return 0;
}
