/*
 * dsn_fmt.c - text building blocks of the DSN builder (dsn_int.h): a
 * growing buffer, clean_text() for everything that came from outside
 * (control characters become spaces, the length is bounded, only
 * well-formed UTF-8 stays and only where UTF-8 is allowed), folding of
 * header fields and text so that no line passes 998 octets (RFC 5322
 * 2.1.1), dates, and each recipient's action and status code.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn_int.h"
#include "util.h"

/*
 * clean_text - a copy of s that is safe in one header field or text line:
 * control characters and white space collapse to single spaces, the ends
 * are trimmed. With utf8 well-formed UTF-8 stays and any other byte >= 0x80
 * becomes '?'; without, every non-ASCII character becomes one '?'. Longer
 * than max: cut at a character boundary and marked "...". NULL gives "".
 */
char *
clean_text(const char *s, size_t max, int utf8)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	struct sbuf b = { 0 };
	int space = 0;

	while (*p != '\0') {
		size_t k = 1, out;
		int keep;

		if (*p <= ' ' || *p == 0x7f) {
			space = b.len > 0;
			p++;
			continue;
		}
		if (*p >= 0x80)
			k = utf8_seq(p, strnlen((const char *)p, 4));
		keep = *p < 0x80 || (utf8 && k > 0);
		out = keep ? k : 1;
		if (b.len + (size_t)space + out > max) {
			sb_str(&b, "...");
			break;
		}
		if (space)
			sb_add(&b, " ", 1);
		space = 0;
		sb_add(&b, keep ? (const char *)p : "?", out);
		p += k > 0 ? k : 1;
	}
	return sb_finish(&b, NULL);
}

static int
is_utf8_tail(char c)
{
	return ((unsigned char)c & 0xc0) == 0x80;
}

/* cut_point - at most max bytes of p (longer than max), not splitting a
   UTF-8 sequence when that can be helped */
size_t
cut_point(const char *p, size_t max)
{
	size_t k = max;

	while (k > 1 && max - k < 3 && is_utf8_tail(p[k]))
		k--;
	return is_utf8_tail(p[k]) ? max : k;
}

/*
 * put_words - append space-separated words, the first at column col. A
 * word that would reach past LINE_SOFT starts a new line beginning with
 * indent; a word longer than any line is cut to keep within LINE_HARD.
 * Does not end the last line.
 */
void
put_words(struct sbuf *b, size_t col, const char *text, const char *indent)
{
	size_t ilen = strlen(indent);
	int line_empty = 1;

	while (*text != '\0') {
		size_t w;

		while (*text == ' ')
			text++;
		w = strcspn(text, " ");
		if (w == 0)
			break;
		if (!line_empty && col + 1 + w > LINE_SOFT) {
			sb_str(b, "\r\n");
			sb_str(b, indent);
			col = ilen;
		} else if (!line_empty) {
			sb_add(b, " ", 1);
			col++;
		}
		while (col + w > LINE_HARD) {
			size_t k = cut_point(text, LINE_HARD - col);

			sb_add(b, text, k);
			sb_str(b, "\r\n");
			sb_str(b, indent);
			col = ilen;
			text += k;
			w -= k;
		}
		sb_add(b, text, w);
		col += w;
		text += w;
		line_empty = 0;
	}
}

/* put_field - "Name: value" folded, with its CRLF */
void
put_field(struct sbuf *b, const char *name, const char *value)
{
	sb_str(b, name);
	sb_str(b, ": ");
	put_words(b, strlen(name) + 2, value, " ");
	sb_str(b, "\r\n");
}

/* put_field_pfx - "Name: prefix value", nothing when value is empty */
void
put_field_pfx(struct sbuf *b, const char *name, const char *prefix,
    const char *value)
{
	char *v;

	if (value[0] == '\0')
		return;
	xasprintf(&v, "%s%s", prefix, value);
	put_field(b, name, v);
	free(v);
}

/* put_para - a paragraph of the text part, wrapped, with its CRLF */
void
put_para(struct sbuf *b, const char *text, const char *indent)
{
	sb_str(b, indent);
	put_words(b, strlen(indent), text, indent);
	sb_str(b, "\r\n");
}

/* fmt_date - RFC 5322 date-time in UTC; -1 when t cannot be one */
int
fmt_date(char *buf, size_t len, uint64_t t)
{
	if (t > DATE_MAX)
		return -1;
	return rfc5322_date_utc(buf, len, (time_t)t);
}

/* put_date_field - the field for a nonzero, representable time */
void
put_date_field(struct sbuf *b, const char *name, uint64_t t)
{
	char date[64];

	if (t != 0 && fmt_date(date, sizeof(date), t) == 0)
		put_field(b, name, date);
}

enum dsn_action
action_of(const struct dsn_rcpt *r)
{
	switch (r->action) {
	case DSN_FAILED:
	case DSN_DELAYED:
	case DSN_DELIVERED:
	case DSN_RELAYED:
		return r->action;
	}
	return DSN_FAILED;
}

const char *
action_name(enum dsn_action a)
{
	static const char *names[] = {
	    "failed", "delayed", "delivered", "relayed" };

	return names[a];
}

/* digits - length of a run of 1 to 3 digits at s, else 0 */
static size_t
digits(const char *s)
{
	size_t n = 0;

	while (n < 4 && s[n] >= '0' && s[n] <= '9')
		n++;
	return n >= 1 && n <= 3 ? n : 0;
}

/*
 * status_of - the recipient's enhanced status code (RFC 3463) when it has
 * the form class.subject.detail with a class that fits the action (failed:
 * 5, or 4 for a delivery that timed out; delayed: 4; delivered, relayed:
 * 2), else the generic code for the action.
 */
const char *
status_of(const struct dsn_rcpt *r)
{
	static const char *fallback[] = { "5.0.0", "4.0.0", "2.0.0", "2.0.0" };
	enum dsn_action a = action_of(r);
	const char *s = r->status;
	size_t n;
	char c;

	if (s == NULL)
		return fallback[a];
	c = s[0];
	if (!((a == DSN_FAILED && (c == '5' || c == '4')) ||
	    (a == DSN_DELAYED && c == '4') ||
	    ((a == DSN_DELIVERED || a == DSN_RELAYED) && c == '2')))
		return fallback[a];
	if (s[1] != '.' || (n = digits(s + 2)) == 0 || s[2 + n] != '.')
		return fallback[a];
	s += 3 + n;
	if ((n = digits(s)) == 0 || s[n] != '\0')
		return fallback[a];
	return r->status;
}
