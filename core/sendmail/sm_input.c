/*
 * sm_input.c - the message on stdin (sendmail.h)
 *
 * Lines end in LF, CRLF or a lone CR; all become CRLF, as sluiced stores
 * them (smtp.bare_newline: normalize would do the same). Without -i a
 * line holding only "." ends the input, as with sendmail; the rest is not
 * read. Refused with EX_DATAERR and the line number: a NUL byte, a line
 * longer than limits.line_length, a message larger than
 * limits.message_size (sluiced would refuse them all with 5xx after
 * sendmail had exited, where nobody sees the reply).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "sbuf.h"
#include "sendmail.h"

static int
too_long(unsigned lineno, unsigned max, char *err, size_t errlen)
{
	snprintf(err, errlen, "line %u is longer than %u bytes "
	    "(limits.line_length)", lineno, max - 2);
	return EX_DATAERR;
}

static int
too_big(const struct sm_limits *lim, char *err, size_t errlen)
{
	snprintf(err, errlen, "message larger than %llu bytes "
	    "(limits.message_size)", (unsigned long long)lim->message_size);
	return EX_DATAERR;
}

static int
nul_byte(unsigned lineno, char *err, size_t errlen)
{
	snprintf(err, errlen, "NUL byte in line %u", lineno);
	return EX_DATAERR;
}

int
sm_read_message(FILE *fp, int ignore_dots, const struct sm_limits *lim,
    char **out, size_t *outlen, char *err, size_t errlen)
{
	struct sbuf b = { 0 };
	size_t linestart = 0;
	unsigned lineno = 1;
	int c, rv = 0;

	*out = NULL;
	sb_reserve(&b, 4096);
	while ((c = getc(fp)) != EOF) {
		if (c == '\r' || c == '\n') {
			if (c == '\r' && (c = getc(fp)) != '\n' && c != EOF)
				ungetc(c, fp);
			if (!ignore_dots && b.len - linestart == 1 &&
			    b.p[linestart] == '.') {
				b.len = linestart;	/* the end */
				break;
			}
			sb_add(&b, "\r\n", 2);
		} else if (c == '\0') {
			rv = nul_byte(lineno, err, errlen);
			break;
		} else {
			char ch = (char)c;
			sb_add(&b, &ch, 1);
		}
		if (b.p[b.len - 1] == '\n') {
			if (lim->line_length && b.len - linestart >
			    lim->line_length) {
				rv = too_long(lineno, lim->line_length, err,
				    errlen);
				break;
			}
			linestart = b.len;
			lineno++;
		}
		if (lim->message_size && b.len > lim->message_size) {
			rv = too_big(lim, err, errlen);
			break;
		}
	}
	if (rv == 0 && ferror(fp)) {
		snprintf(err, errlen, "cannot read the message");
		rv = EX_IOERR;
	}
	if (rv == 0 && b.len > linestart) {	/* no newline at the end */
		if (!ignore_dots && b.len - linestart == 1 &&
		    b.p[linestart] == '.')
			b.len = linestart;
		else {
			if (lim->line_length && b.len - linestart + 2 >
			    lim->line_length)
				rv = too_long(lineno, lim->line_length, err,
				    errlen);
			sb_add(&b, "\r\n", 2);
		}
	}
	if (rv == 0 && lim->message_size && b.len > lim->message_size)
		rv = too_big(lim, err, errlen);
	if (rv != 0) {
		free(b.p);
		return rv;
	}
	*out = sb_finish(&b, outlen);
	return 0;
}

int
sm_check_message(const char *m, size_t len, const struct sm_limits *lim,
    char *err, size_t errlen)
{
	size_t start = 0;
	unsigned lineno = 1;

	if (lim->message_size && len > lim->message_size)
		return too_big(lim, err, errlen);
	for (size_t i = 0; i < len; i++) {
		if (m[i] == '\0')
			return nul_byte(lineno, err, errlen);
		if (m[i] == '\n') {
			if (lim->line_length && i + 1 - start > lim->line_length)
				return too_long(lineno, lim->line_length, err,
				    errlen);
			start = i + 1;
			lineno++;
		}
	}
	return 0;
}
