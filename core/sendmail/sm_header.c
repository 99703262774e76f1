/*
 * sm_header.c - the header of a message from a local program (sendmail.h)
 *
 * The header is the run of field lines ("Name: value", continued by lines
 * starting with a blank) at the start; it ends at the empty line, or at
 * the first line that is not a field, before which an empty line is put.
 * A leading mbox "From " line is dropped. Bcc: fields never leave here.
 * With -t the addresses of To:, Cc: and Bcc: become recipients. Missing
 * From: (the envelope sender, with -F as display name), Date: and
 * Message-ID: are added at the end of the header.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "sbuf.h"
#include "sendmail.h"
#include "util.h"

struct hdr_seen {
	int from, date, msgid;
};

/* line_end - offset just past the CRLF of the line at off */
static size_t
line_end(const char *m, size_t len, size_t off)
{
	const char *nl = memchr(m + off, '\n', len - off);

	return nl != NULL ? (size_t)(nl - m) + 1 : len;
}

/* field_name_len - length of the name if the line starts a field, else 0 */
static size_t
field_name_len(const char *l, size_t n)
{
	size_t i = 0, k;

	while (i < n && l[i] > ' ' && l[i] < 127 && l[i] != ':')
		i++;
	k = i;
	while (k < n && (l[k] == ' ' || l[k] == '\t'))
		k++;
	return i > 0 && k < n && l[k] == ':' ? i : 0;
}

static int
is_name(const char *l, size_t n, const char *name)
{
	return n == strlen(name) && strncasecmp(l, name, n) == 0;
}

/* unfold - the value of a field (from after the colon), one line */
static char *
unfold(const char *f, size_t n)
{
	const char *colon = memchr(f, ':', n);
	struct sbuf b = { 0 };

	for (const char *p = colon + 1; p < f + n; p++)
		if (*p != '\r' && *p != '\n')
			sb_add(&b, p, 1);
	return sb_finish(&b, NULL);
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* display_name - -F as a quoted string, or RFC 2047 when not ASCII */
static void
display_name(struct sbuf *b, const char *name)
{
	size_t n = strlen(name);

	if (str_is_ascii(name)) {
		sb_add(b, "\"", 1);
		for (const char *p = name; *p; p++) {
			if (*p == '"' || *p == '\\')
				sb_add(b, "\\", 1);
			if (*p != '\r' && *p != '\n')
				sb_add(b, p, 1);
		}
		sb_add(b, "\"", 1);
		return;
	}
	sb_str(b, "=?UTF-8?B?");
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)name[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)name[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)name[i + 2];
		char q[4] = { b64[v >> 18 & 63], b64[v >> 12 & 63],
		    i + 1 < n ? b64[v >> 6 & 63] : '=',
		    i + 2 < n ? b64[v & 63] : '=' };
		sb_add(b, q, 4);
	}
	sb_str(b, "?=");
}

static void
add_missing(struct sbuf *b, const struct hdr_seen *seen,
    const struct sm_header_ctx *x)
{
	char date[64];
	uint64_t r = 0;

	if (!seen->from) {
		sb_str(b, "From: ");
		if (x->sender[0] == '\0')
			sb_printf(b, "MAILER-DAEMON@%s", x->origin);
		else if (x->fullname != NULL && x->fullname[0] != '\0') {
			display_name(b, x->fullname);
			sb_printf(b, " <%s>", x->sender);
		} else
			sb_str(b, x->sender);
		sb_str(b, "\r\n");
	}
	if (!seen->date) {
		rfc5322_date(date, sizeof(date), time(NULL));
		sb_printf(b, "Date: %s\r\n", date);
	}
	if (!seen->msgid) {
		(void)!getrandom(&r, sizeof(r), 0);
		sb_printf(b, "Message-ID: <%llx.%x.%llx@%s>\r\n",
		    (unsigned long long)now_usec(), (unsigned)getpid(),
		    (unsigned long long)r, x->hostname);
	}
}

/* one_field - a whole field (with its continuation lines) */
static int
one_field(struct sbuf *b, const char *f, size_t n, size_t namelen,
    struct hdr_seen *seen, const struct sm_header_ctx *x,
    struct sm_rcpts *rcpts, char *err, size_t errlen)
{
	int bcc = is_name(f, namelen, "bcc"), rv = 0;

	seen->from |= is_name(f, namelen, "from");
	seen->date |= is_name(f, namelen, "date");
	seen->msgid |= is_name(f, namelen, "message-id");
	if (x->extract && (bcc || is_name(f, namelen, "to") ||
	    is_name(f, namelen, "cc"))) {
		char *v = unfold(f, n);
		rv = sm_addr_list(v, x->origin, rcpts, err, errlen);
		free(v);
	}
	if (!bcc)
		sb_add(b, f, n);
	return rv;
}

int
sm_header_fix(char **msg, size_t *len, const struct sm_header_ctx *x,
    struct sm_rcpts *rcpts, char *err, size_t errlen)
{
	const char *m = *msg;
	struct hdr_seen seen = { 0 };
	struct sbuf b = { 0 };
	size_t off = 0, n = *len, e;
	int rv = 0;

	if (n >= 5 && strncmp(m, "From ", 5) == 0)
		off = line_end(m, n, 0);
	while (off < n) {
		size_t namelen = field_name_len(m + off, n - off);
		if (namelen == 0)
			break;
		for (e = line_end(m, n, off); e < n && (m[e] == ' ' ||
		    m[e] == '\t'); e = line_end(m, n, e))
			;
		if ((rv = one_field(&b, m + off, e - off, namelen, &seen, x,
		    rcpts, err, errlen)) != 0)
			break;
		off = e;
	}
	if (rv != 0) {
		free(b.p);
		return rv;
	}
	add_missing(&b, &seen, x);
	sb_str(&b, "\r\n");
	if (off < n && m[off] == '\r' && off + 1 < n && m[off + 1] == '\n')
		off += 2;			/* the empty line: put back above */
	sb_add(&b, m + off, n - off);
	free(*msg);
	*msg = sb_finish(&b, len);
	return 0;
}
