/*
 * sendmail.c - sluice-sendmail: the sendmail command line for sluice
 *
 *   sluice-sendmail [-t] [-i] [-f sender] [-F name] [-C config] [rcpt ...]
 *   sluice-sendmail -bs [-C config]
 *
 * Reads the configuration (hostname, spool, limits), the message from
 * stdin, and writes it to SPOOL/maildrop/ (maildrop.h), from where the
 * running sluiced picks it up at once, or at its next start when it is
 * down. Exit 0 means the message is on disk. Otherwise a sysexits.h code
 * and one line on stderr: EX_USAGE (options, no recipients), EX_DATAERR
 * (malformed address, NUL byte, long line, message too large), EX_CONFIG
 * (configuration), EX_CANTCREAT (maildrop not writable), EX_TEMPFAIL
 * (disk full), EX_IOERR (stdin).
 * The sender is -f, else the invoking user's login name @ the configured
 * hostname, which also qualifies recipients given without a domain.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf.h"
#include "maildrop.h"
#include "paths.h"
#include "sendmail.h"
#include "util.h"

static int
die(int code, const char *fmt, const char *arg)
{
	fprintf(stderr, "sluice-sendmail: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return code;
}

/* default_sender - login name of the real user @ origin */
static char *
default_sender(const char *origin)
{
	struct passwd *pw = getpwuid(getuid());
	char *s;

	xasprintf(&s, "%s@%s", pw != NULL ? pw->pw_name : "nobody", origin);
	return s;
}

/* ensure_maildrop - create it when we may (sluiced's user, root) */
static void
ensure_maildrop(const char *spool, const char *dir)
{
	struct stat st;

	if (stat(dir, &st) == 0 || errno != ENOENT)
		return;
	if (mkdir_p(spool, 0700) == 0 && mkdir(dir, 01733) == 0)
		(void)chmod(dir, 01733);
}

/* mail_mode - recipients from the operands (and with -t the header),
   the message from stdin, into the maildrop */
static int
mail_mode(const struct sm_opts *o, const struct sm_env *env)
{
	struct sm_rcpts rcpts = { 0 };
	char err[SM_ERR_LEN], name[MAILDROP_NAME_MAX], *msg = NULL, *sender;
	size_t len;
	int rv = 0;

	if (o->sender != NULL) {
		sender = xstrdup(strcmp(o->sender, "<>") == 0 ? "" : o->sender);
		if ((rv = sm_addr_check(sender, 1, err, sizeof(err))) != 0)
			goto out;
	} else
		sender = default_sender(env->origin);
	for (int i = 0; i < o->nrcpts && rv == 0; i++)
		rv = sm_addr_list(o->rcpts[i], env->origin, &rcpts, err,
		    sizeof(err));
	if (rv != 0)
		goto out;
	if (!o->extract && rcpts.n == 0) {
		rv = EX_USAGE;
		snprintf(err, sizeof(err), "no recipients given (use -t to "
		    "take them from the message)");
		goto out;
	}
	struct sm_header_ctx hx = { .extract = o->extract, .sender = sender,
	    .fullname = o->fullname, .hostname = env->hostname,
	    .origin = env->origin };
	if ((rv = sm_read_message(stdin, o->ignore_dots, &env->limits, &msg,
	    &len, err, sizeof(err))) != 0 ||
	    (rv = sm_header_fix(&msg, &len, &hx, &rcpts, err,
	    sizeof(err))) != 0)
		goto out;
	if (rcpts.n == 0) {
		rv = EX_DATAERR;
		snprintf(err, sizeof(err), "no recipients: none given and "
		    "none in To:, Cc: or Bcc:");
		goto out;
	}
	rv = sm_drop(env, sender, &rcpts, &o->dsn, msg, len, name,
	    sizeof(name), err, sizeof(err));
out:
	if (rv != 0)
		die(rv, "%s", err);
	free(msg);
	free(sender);
	sm_rcpts_clear(&rcpts);
	return rv;
}

int
main(int argc, char *argv[])
{
	struct sm_opts o;
	struct sm_env env;
	struct config *cf;
	char err[CONF_ERR_LEN];
	int rv;

	if ((rv = sm_opts_parse(argc, argv, &o, err, sizeof(err))) != 0)
		return die(rv, "%s", err);
	if (o.mode == SM_MODE_NOOP)
		return 0;			/* newaliases: no aliases here */
	if ((cf = conf_load(o.config ? o.config : SLUICE_CONF_PATH, err,
	    sizeof(err))) == NULL)
		return die(EX_CONFIG, "%s", err);
	memset(&env, 0, sizeof(env));
	env.hostname = cf->hostname;
	env.origin = cf->hostname;
	env.maildrop = maildrop_dir(cf->spool);
	env.limits.message_size = cf->limits.message_size;
	env.limits.line_length = cf->limits.line_length;
	ensure_maildrop(cf->spool, env.maildrop);
	if (o.mode == SM_MODE_SMTP)
		rv = sm_smtp(stdin, stdout, &env);
	else
		rv = mail_mode(&o, &env);
	free((char *)env.maildrop);
	conf_free(cf);
	return rv;
}
