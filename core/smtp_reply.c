/*
 * smtp_reply.c - strict parsing of remote SMTP/LMTP replies and of the
 * extensions an EHLO reply announces (smtp_reply.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_reply.h"
#include "util.h"

void
smtp_reply_init(struct smtp_reply *r, int keep_lines)
{
	memset(r, 0, sizeof(*r));
	r->keep_lines = keep_lines;
}

void
smtp_reply_clear(struct smtp_reply *r)
{
	for (unsigned i = 0; r->lines != NULL && i < r->nlines; i++)
		free(r->lines[i]);
	free(r->lines);
	smtp_reply_init(r, r->keep_lines);
}

static int
digit(char c)
{
	return c >= '0' && c <= '9';
}

size_t
smtp_enhanced_len(const char *s, size_t len, char cls)
{
	size_t i = 0, n;

	if (len < 5 || s[0] != cls || s[1] != '.')
		return 0;
	for (i = 2, n = 0; i < len && digit(s[i]); i++, n++)
		;
	if (n == 0 || n > 3 || i >= len || s[i] != '.')
		return 0;
	for (i++, n = 0; i < len && digit(s[i]); i++, n++)
		;
	if (n == 0 || n > 3 || (i < len && s[i] != ' '))
		return 0;
	return i;
}

/* append - printable copy of s into the reply text, truncated */
static void
append(struct smtp_reply *r, const char *s, size_t len)
{
	size_t have = strlen(r->text), room = sizeof(r->text) - 1 - have;

	if (have > 0 && len > 0 && room > 3) {
		memcpy(r->text + have, " / ", 3);
		have += 3;
		room -= 3;
	}
	if (len > room)
		len = room;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		r->text[have++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	r->text[have] = '\0';
}

static void
keep_line(struct smtp_reply *r, const char *s, size_t len)
{
	if (!r->keep_lines)
		return;
	r->lines = xreallocarray(r->lines, r->nlines + 1, sizeof(*r->lines));
	r->lines[r->nlines] = xstrndup(s, len);
}

enum reply_feed
smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len,
    const char **why)
{
	int code;

	if (r->done) {
		*why = "reply already complete";
		return REPLY_BAD;
	}
	if (len > REPLY_LINE_MAX) {
		*why = "reply line too long";
		return REPLY_BAD;
	}
	if (r->nlines >= REPLY_LINES_MAX) {
		*why = "too many reply lines";
		return REPLY_BAD;
	}
	if (len < 3 || !digit(line[0]) || !digit(line[1]) ||
	    !digit(line[2]) || line[0] < '2' || line[0] > '5' ||
	    line[1] > '5' || (len > 3 && line[3] != ' ' && line[3] != '-')) {
		*why = "malformed reply line";
		return REPLY_BAD;
	}
	if (memchr(line, '\0', len) != NULL) {
		*why = "NUL byte in reply";
		return REPLY_BAD;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->nlines > 0 && code != r->code) {
		*why = "reply code changes between lines";
		return REPLY_BAD;
	}
	r->code = code;
	const char *t = len > 4 ? line + 4 : line + len;
	size_t tlen = len > 4 ? len - 4 : 0;
	keep_line(r, t, tlen);
	size_t e = smtp_enhanced_len(t, tlen, line[0]);
	if (e > 0) {
		if (r->nlines == 0 && e < sizeof(r->enhanced))
			snprintf(r->enhanced, sizeof(r->enhanced), "%.*s",
			    (int)e, t);
		t += e;
		tlen -= e;
		while (tlen > 0 && *t == ' ')
			t++, tlen--;
	}
	append(r, t, tlen);
	r->nlines++;
	if (len == 3 || line[3] == ' ') {
		r->done = 1;
		return REPLY_DONE;
	}
	return REPLY_MORE;
}

void
smtp_reply_format(const struct smtp_reply *r, char *buf, size_t len)
{
	snprintf(buf, len, "%d%s%s%s%s", r->code, r->enhanced[0] ? " " : "",
	    r->enhanced, r->text[0] ? " " : "", r->text);
}

/* keyword - line is KEY alone or KEY followed by a space and parameters */
static const char *
keyword(const char *line, const char *key)
{
	size_t n = strlen(key);

	if (strncasecmp(line, key, n) != 0)
		return NULL;
	if (line[n] == '\0')
		return line + n;
	return line[n] == ' ' ? line + n + 1 : NULL;
}

void
smtp_caps_parse(const struct smtp_reply *r, struct smtp_caps *caps)
{
	static const struct { const char *key; unsigned flag; } known[] = {
		{ "PIPELINING", CAP_PIPELINING },
		{ "8BITMIME", CAP_8BITMIME },
		{ "SMTPUTF8", CAP_SMTPUTF8 },
		{ "DSN", CAP_DSN },
		{ "STARTTLS", CAP_STARTTLS },
		{ "CHUNKING", CAP_CHUNKING },
		{ "ENHANCEDSTATUSCODES", CAP_ENHANCEDSTATUSCODES },
	};
	const char *p;

	memset(caps, 0, sizeof(*caps));
	/* line 0 is the greeting name; extensions follow */
	for (unsigned i = 1; r->lines != NULL && i < r->nlines; i++) {
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (keyword(r->lines[i], known[k].key) != NULL)
				caps->flags |= known[k].flag;
		if ((p = keyword(r->lines[i], "SIZE")) != NULL) {
			char *end;
			unsigned long long v = strtoull(p, &end, 10);
			caps->flags |= CAP_SIZE;
			caps->size = (digit(*p) && (*end == '\0' ||
			    *end == ' ')) ? v : 0;
		}
	}
}
