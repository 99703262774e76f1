/*
 * sm_dsn.c - the DSN options of the sendmail command line (sendmail.h):
 * -N never | success,delay,failure (any of them), -R hdrs | full, -V
 * envid. Each becomes the ESMTP parameter value that sluiced's own
 * session will check again when the pickup submits the message (NOTIFY=,
 * RET=, ENVID= of RFC 3461).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "sendmail.h"

static int
bad(char *err, size_t errlen, const char *opt, const char *v,
    const char *hint)
{
	snprintf(err, errlen, "bad %s value '%s' (%s)", opt, v, hint);
	return EX_USAGE;
}

/* notify - "never", or a comma list of success, delay, failure */
static int
notify(struct sm_dsn *d, const char *v, char *err, size_t errlen)
{
	static const char *const words[] = { "success", "delay", "failure" };
	static const char *const upper[] = { "SUCCESS", "DELAY", "FAILURE" };
	static const char *const hint = "never, or any of success, delay, "
	    "failure separated by commas";
	unsigned seen = 0, never = 0;
	const char *p = v;
	size_t k;

	for (;;) {
		size_t n = strcspn(p, ",");
		if (n == 5 && strncasecmp(p, "never", 5) == 0)
			never = 1;
		else {
			for (k = 0; k < 3; k++)
				if (n == strlen(words[k]) &&
				    strncasecmp(p, words[k], n) == 0)
					break;
			if (k == 3)
				return bad(err, errlen, "-N", v, hint);
			seen |= 1u << k;
		}
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	if (never && seen != 0)
		return bad(err, errlen, "-N", v, "never stands alone");
	strcpy(d->notify, never ? "NEVER" : "");
	for (k = 0; k < 3; k++)
		if (seen & (1u << k)) {
			if (d->notify[0] != '\0')
				strcat(d->notify, ",");
			strcat(d->notify, upper[k]);
		}
	return 0;
}

/* envid - printable ASCII, xtext-encoded ('+' and '=' as +HH) */
static int
envid(struct sm_dsn *d, const char *v, char *err, size_t errlen)
{
	size_t o = 0;

	if (*v == '\0')
		return bad(err, errlen, "-V", v, "empty");
	for (const char *p = v; *p; p++) {
		unsigned char c = (unsigned char)*p;
		size_t need;

		if (c < 0x21 || c > 0x7e)
			return bad(err, errlen, "-V", v, "printable ASCII "
			    "without spaces only");
		need = c == '+' || c == '=' ? 3 : 1;
		if (o + need + 1 > sizeof(d->envid))
			return bad(err, errlen, "-V", v, "at most 100 "
			    "characters as xtext");
		if (c == '+' || c == '=')
			o += (size_t)snprintf(d->envid + o, 4, "+%02X", c);
		else
			d->envid[o++] = (char)c;
	}
	d->envid[o] = '\0';
	return 0;
}

int
sm_dsn_option(struct sm_dsn *d, char opt, const char *v, char *err,
    size_t errlen)
{
	switch (opt) {
	case 'N':
		return notify(d, v, err, errlen);
	case 'R':
		if (strcasecmp(v, "hdrs") == 0)
			strcpy(d->ret, "HDRS");
		else if (strcasecmp(v, "full") == 0)
			strcpy(d->ret, "FULL");
		else
			return bad(err, errlen, "-R", v, "hdrs or full");
		return 0;
	case 'V':
		return envid(d, v, err, errlen);
	default:
		return 0;
	}
}
