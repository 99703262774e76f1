/*
 * sm_opts.c - the sendmail command line (sendmail.h)
 *
 * Options come first, in the forms sendmail and Postfix accept: flags may
 * be grouped (-ti), a value may be attached or separate (-fuser@x or
 * -f user@x); "--" or the first operand ends them. The operands are
 * recipients. Options of sendmail that have no meaning here but that
 * PHP, cron and friends pass are accepted quietly: -oi is -i; -od*, -oe*,
 * -om, -o* in general; -v, -m, -n, -U, -G; -B, -h, -L, -O, -X with their
 * values. The DSN options -N, -R and -V are checked and kept (sm_dsn.c). Modes that sluice-sendmail cannot serve (-bp,
 * -bd, -bt, -bv, -q...) are usage errors naming what to use instead.
 */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "sendmail.h"

/* letters taking a value; the value is ignored unless handled below */
#define WITH_VALUE	"fFrCcNRVBhLOX"
#define QUIET_FLAGS	"vmnUGA"

static int
usage_err(char *err, size_t errlen, const char *fmt, const char *what)
{
	snprintf(err, errlen, fmt, what);
	return EX_USAGE;
}

/* set_mode - -bX */
static int
set_mode(struct sm_opts *o, const char *m, char *err, size_t errlen)
{
	if (strcmp(m, "m") == 0)
		o->mode = SM_MODE_MAIL;
	else if (strcmp(m, "s") == 0)
		o->mode = SM_MODE_SMTP;
	else if (strcmp(m, "i") == 0)
		o->mode = SM_MODE_NOOP;
	else if (strcmp(m, "p") == 0)
		return usage_err(err, errlen, "-b%s is not supported: the queue "
		    "is listed by 'sluicectl list'", m);
	else
		return usage_err(err, errlen, "-b%s is not supported", m);
	return 0;
}

/* with_value - option letter c got its value v; 0 or EX_USAGE */
static int
with_value(struct sm_opts *o, char c, const char *v, char *err, size_t errlen)
{
	switch (c) {
	case 'f':
	case 'r':
		o->sender = v;
		break;
	case 'F':
		o->fullname = v;
		break;
	case 'C':
	case 'c':
		o->config = v;
		break;
	case 'N':
	case 'R':
	case 'V':
		return sm_dsn_option(&o->dsn, c, v, err, errlen);
	default:
		break;			/* -B -h -L -O -X: ignored */
	}
	return 0;
}

/* one_arg - the option word argv[*i]; may take argv[*i + 1] */
static int
one_arg(struct sm_opts *o, int argc, char **argv, int *i, char *err,
    size_t errlen)
{
	const char *a = argv[*i];

	for (size_t k = 1; a[k] != '\0'; k++) {
		char c = a[k];
		if (c == 'o') {			/* -oX...: only -oi matters */
			if (strcmp(a + k + 1, "i") == 0)
				o->ignore_dots = 1;
			return 0;
		}
		if (c == 'b')
			return a[k + 1] == '\0' ? usage_err(err, errlen,
			    "option %s needs a mode", a) :
			    set_mode(o, a + k + 1, err, errlen);
		if (c == 'q')
			return usage_err(err, errlen, "%s is not supported: "
			    "sluiced runs its queue itself (sluicectl flush)",
			    a);
		if (strchr(WITH_VALUE, c) != NULL) {
			if (a[k + 1] != '\0')
				return with_value(o, c, a + k + 1, err,
				    errlen);
			if (*i + 1 < argc)
				return with_value(o, c, argv[++*i], err,
				    errlen);
			return usage_err(err, errlen,
			    "option %s needs a value", a);
		}
		if (c == 't')
			o->extract = 1;
		else if (c == 'i')
			o->ignore_dots = 1;
		else if (strchr(QUIET_FLAGS, c) == NULL) {
			char bad[3] = { '-', c, '\0' };
			return usage_err(err, errlen, "unknown option %s", bad);
		}
	}
	return 0;
}

int
sm_opts_parse(int argc, char **argv, struct sm_opts *o, char *err,
    size_t errlen)
{
	int i, rv;

	memset(o, 0, sizeof(*o));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (argv[i][0] != '-' || argv[i][1] == '\0')
			break;
		if ((rv = one_arg(o, argc, argv, &i, err, errlen)) != 0)
			return rv;
	}
	o->rcpts = argv + i;
	o->nrcpts = argc - i;
	return 0;
}
