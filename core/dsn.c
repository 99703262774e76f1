/*
 * dsn.c - delivery status notifications (RFC 3464), see dsn.h: the
 * message header, the report's three parts (text/plain explanation,
 * message/delivery-status, the returned original) and the MIME frame
 * around them (multipart/report, RFC 6522; RFC 6533 types for SMTPUTF8).
 *
 * Everything that came from outside (addresses, remote replies, host
 * names, IDs) goes through clean_text() before it is written: control
 * characters become spaces, the length is bounded, and only well-formed
 * UTF-8 stays (and only where UTF-8 is allowed). put_words() then folds
 * it, so no input can add a line or a header field, and no line is longer
 * than 998 octets (RFC 5322 2.1.1).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn.h"
#include "util.h"

#define LINE_SOFT	78	/* fold fields and wrap text before this */
#define LINE_HARD	998	/* octets a line never exceeds */
#define DIAG_MAX	1000	/* bytes of a diagnostic reported */
#define ADDR_MAX	512	/* bytes of an address reported */
#define VALUE_MAX	300	/* host names, IDs */
#define ORCPT_LEN	600	/* ORCPT as stored (RFC 3461: 500 + type) */
#define BOUNDARY_MAX	60	/* bytes of the boundary we start from */
#define DATE_MAX	253402300799ULL	/* 9999-12-31 23:59:59 UTC */
#define TEXT_INDENT	"    "	/* text part: continuation lines */

/* a growing output buffer; p is not NUL-terminated until sb_finish() */
struct sbuf {
	char *p;
	size_t len, cap;
};

/* what part 3 returns of the original message */
struct returned {
	const char *type;	/* media type; NULL: no part 3 */
	size_t len;		/* bytes of the original it holds */
	int full;		/* the whole message */
	int too_big;		/* RET=FULL asked, over full_limit */
};

struct tally {			/* recipients by action */
	size_t n[DSN_RELAYED + 1];
};

static void
sb_reserve(struct sbuf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 1024;

	if (n <= b->cap - b->len)
		return;
	while (n > cap - b->len) {
		if (cap > SIZE_MAX / 2)
			cap = b->len + n;
		else
			cap *= 2;
	}
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (n == 0)
		return;
	sb_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_printf(struct sbuf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	sb_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* sb_finish - NUL-terminate and hand over the text */
static char *
sb_finish(struct sbuf *b, size_t *len)
{
	sb_reserve(b, 1);
	b->p[b->len] = '\0';
	if (len != NULL)
		*len = b->len;
	return b->p;
}

int
dsn_is_8bit(const char *p, size_t n)
{
	for (size_t i = 0; p != NULL && i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 1;
	return 0;
}

static int
is_ascii(const char *s)
{
	return !dsn_is_8bit(s, strlen(s));
}

/*
 * clean_text - a copy of s that is safe in one header field or text line:
 * control characters and white space collapse to single spaces, the ends
 * are trimmed. With utf8 well-formed UTF-8 stays and any other byte >= 0x80
 * becomes '?'; without, every non-ASCII character becomes one '?'. Longer
 * than max: cut at a character boundary and marked "...". NULL gives "".
 */
static char *
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
static size_t
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
static void
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
static void
put_field(struct sbuf *b, const char *name, const char *value)
{
	sb_str(b, name);
	sb_str(b, ": ");
	put_words(b, strlen(name) + 2, value, " ");
	sb_str(b, "\r\n");
}

/* put_field_pfx - "Name: prefix value", nothing when value is empty */
static void
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
static void
put_para(struct sbuf *b, const char *text, const char *indent)
{
	sb_str(b, indent);
	put_words(b, strlen(indent), text, indent);
	sb_str(b, "\r\n");
}

/* fmt_date - RFC 5322 date-time in UTC; -1 when t cannot be one */
static int
fmt_date(char *buf, size_t len, uint64_t t)
{
	static const char *days[] = {
	    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *months[] = {
	    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	if (t > DATE_MAX || gmtime_r(&tt, &tm) == NULL)
		return -1;
	snprintf(buf, len, "%s, %d %s %d %02d:%02d:%02d +0000",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return 0;
}

/* put_date_field - the field for a nonzero, representable time */
static void
put_date_field(struct sbuf *b, const char *name, uint64_t t)
{
	char date[64];

	if (t != 0 && fmt_date(date, sizeof(date), t) == 0)
		put_field(b, name, date);
}

static enum dsn_action
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

static const char *
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
static const char *
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

static void
tally_rcpts(struct tally *t, const struct dsn_rcpt *r, size_t n)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < n; i++)
		t->n[action_of(&r[i])]++;
}

static const char *
subject_of(const struct tally *t)
{
	if (t->n[DSN_FAILED] > 0)
		return "Undelivered Mail Returned to Sender";
	if (t->n[DSN_DELAYED] > 0)
		return "Delayed Mail (still being retried)";
	return "Successful Mail Delivery Report";
}

/* ---- the returned original (part 3) ---- */

/* is_field_line - a header field's first line, or (not first) a
   continuation line */
static int
is_field_line(const char *p, size_t n, int first)
{
	size_t i = 0;

	if (n > 0 && (p[0] == ' ' || p[0] == '\t'))
		return !first;
	while (i < n && p[i] > ' ' && p[i] < 0x7f && p[i] != ':')
		i++;
	if (i == 0)
		return 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;			/* obsolete: WSP before the colon */
	return i < n && p[i] == ':';
}

/*
 * header_section_len - bytes of the original's header section: up to and
 * including the first empty line; without one, up to the first line that
 * is no header field (the body of a message that lacks the separator), or
 * all of it. Lines end in LF, with or without CR.
 */
static size_t
header_section_len(const char *m, size_t n)
{
	size_t i = 0;

	while (i < n) {
		const char *nl = memchr(m + i, '\n', n - i);
		size_t next = nl ? (size_t)(nl - m) + 1 : n;
		size_t end = nl ? (size_t)(nl - m) : n;

		if (end > i && m[end - 1] == '\r')
			end--;
		if (end == i)
			return next;
		if (!is_field_line(m + i, end - i, i == 0))
			return i;
		i = next;
	}
	return n;
}

static void
plan_return(const struct dsn_params *pa, struct returned *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (pa->msg == NULL || pa->msg_len == 0)
		return;
	if (pa->full && pa->msg_len <= pa->full_limit) {
		ret->full = 1;
		ret->len = pa->msg_len;
		ret->type = pa->smtputf8 ? "message/global" : "message/rfc822";
		return;
	}
	ret->too_big = pa->full;
	ret->len = header_section_len(pa->msg, pa->msg_len);
	if (ret->len > 0)
		ret->type = pa->smtputf8 ? "message/global-headers" :
		    "text/rfc822-headers";
}

/* put_bytes_nocr - append, a stray CR becoming a space */
static void
put_bytes_nocr(struct sbuf *b, const char *p, size_t n)
{
	size_t start = b->len;
	char *cr;

	sb_add(b, p, n);
	while ((cr = memchr(b->p + start, '\r', b->len - start)) != NULL) {
		*cr = ' ';
		start = (size_t)(cr - b->p) + 1;
	}
}

/* put_orig_line - one line of the original with CRLF; a line over
   LINE_HARD is broken, in the header section as a folded field */
static void
put_orig_line(struct sbuf *b, const char *p, size_t n, int in_header)
{
	size_t max = LINE_HARD;

	for (;;) {
		size_t k = n <= max ? n : cut_point(p, max);

		put_bytes_nocr(b, p, k);
		sb_str(b, "\r\n");
		p += k;
		n -= k;
		if (n == 0)
			break;
		if (in_header) {
			sb_add(b, " ", 1);
			max = LINE_HARD - 1;
		}
	}
}

/* put_original - n bytes of the original, every line ending in CRLF */
static void
put_original(struct sbuf *b, const char *m, size_t n)
{
	int in_header = 1;
	size_t i = 0;

	while (i < n) {
		const char *nl = memchr(m + i, '\n', n - i);
		size_t next = nl ? (size_t)(nl - m) + 1 : n;
		size_t end = nl ? (size_t)(nl - m) : n;

		if (end > i && m[end - 1] == '\r')
			end--;
		put_orig_line(b, m + i, end - i, in_header);
		if (end == i)
			in_header = 0;
		i = next;
	}
}

/* ---- part 1: text/plain ---- */

/* put_block - a paragraph of the text part and an empty line after it */
static void
put_block(struct sbuf *b, const char *text)
{
	put_para(b, text, "");
	sb_str(b, "\r\n");
}

static void
text_intro(struct sbuf *b, const struct dsn_params *pa,
    const struct tally *t)
{
	char *host = clean_text(pa->reporting_mta, VALUE_MAX, 1), *s;

	xasprintf(&s, "This is the mail system at host %s.",
	    host[0] ? host : "localhost");
	put_block(b, s);
	free(s);
	free(host);
	if (t->n[DSN_FAILED] > 0)
		put_block(b, "Your message could not be delivered to one or "
		    "more of its recipients. The reasons are listed below.");
	if (t->n[DSN_DELAYED] > 0)
		put_block(b, "Your message has not yet reached one or more of "
		    "its recipients. This is only a warning: delivery will "
		    "be retried, so there is no need to send it again.");
	if (t->n[DSN_DELIVERED] + t->n[DSN_RELAYED] > 0)
		put_block(b, "As you asked, this reports the successful "
		    "delivery of your message to the recipients marked as "
		    "delivered or relayed below.");
}

static void
text_origin(struct sbuf *b, const struct dsn_params *pa,
    const struct returned *ret)
{
	char *qid = clean_text(pa->orig_qid, VALUE_MAX, 1), *s;
	char date[64];

	if (qid[0] != '\0') {
		if (pa->arrival != 0 &&
		    fmt_date(date, sizeof(date), pa->arrival) == 0)
			xasprintf(&s, "The message had queue ID %s here; it "
			    "arrived on %s.", qid, date);
		else
			xasprintf(&s, "The message had queue ID %s here.", qid);
		put_block(b, s);
		free(s);
	}
	free(qid);
	if (ret->too_big) {
		xasprintf(&s, "You asked for the whole message to be "
		    "returned, but it is %zu bytes, more than the %zu bytes "
		    "returned in full; only its headers are attached.",
		    pa->msg_len, pa->full_limit);
		put_block(b, s);
		free(s);
	} else if (ret->full)
		put_block(b, "The original message is attached.");
	else if (ret->type != NULL)
		put_block(b, "The headers of the original message are "
		    "attached.");
}

/* rcpt_outcome - what happened to the recipient, one sentence */
static char *
rcpt_outcome(const struct dsn_rcpt *r, const char *host)
{
	const char *st = status_of(r);
	char date[64], *s;

	switch (action_of(r)) {
	case DSN_DELAYED:
		if (r->retry_until != 0 &&
		    fmt_date(date, sizeof(date), r->retry_until) == 0)
			xasprintf(&s, "not delivered yet (status %s); we will "
			    "keep trying until %s.", st, date);
		else
			xasprintf(&s, "not delivered yet (status %s); we will "
			    "keep trying.", st);
		break;
	case DSN_DELIVERED:
		xasprintf(&s, "delivered%s%s (status %s).", host[0] ? " to " :
		    "", host, st);
		break;
	case DSN_RELAYED:
		xasprintf(&s, "relayed%s%s (status %s); the next mail system "
		    "does not report on delivery, so this is the last "
		    "notice.", host[0] ? " to " : "", host, st);
		break;
	default:
		xasprintf(&s, "delivery failed (status %s); we will not try "
		    "again.", st);
		break;
	}
	return s;
}

/* rcpt_reason - the diagnostic line, NULL without one */
static char *
rcpt_reason(const struct dsn_rcpt *r, const char *host)
{
	char *diag = clean_text(r->diagnostic, DIAG_MAX, 1), *s = NULL;

	if (diag[0] != '\0' && r->diagnostic_is_smtp)
		xasprintf(&s, "%s%s said: %s", host[0] ? "The server " :
		    "The remote server", host, diag);
	else if (diag[0] != '\0')
		xasprintf(&s, "Reason: %s", diag);
	else if (host[0] != '\0' && action_of(r) != DSN_DELIVERED &&
	    action_of(r) != DSN_RELAYED)
		xasprintf(&s, "Last server tried: %s", host);
	free(diag);
	return s;
}

static void
text_rcpt(struct sbuf *b, const struct dsn_rcpt *r)
{
	char *addr = clean_text(r->addr, ADDR_MAX, 1);
	char *host = clean_text(r->remote_mta, VALUE_MAX, 1);
	char *what = rcpt_outcome(r, host), *why = rcpt_reason(r, host), *s;

	xasprintf(&s, "<%s>: %s", addr, what);
	put_para(b, s, "");
	if (why != NULL)
		put_para(b, why, TEXT_INDENT);
	free(s);
	free(why);
	free(what);
	free(host);
	free(addr);
}

static void
build_text(struct sbuf *b, const struct dsn_params *pa,
    const struct dsn_rcpt *r, size_t n, const struct tally *t,
    const struct returned *ret)
{
	text_intro(b, pa, t);
	text_origin(b, pa, ret);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			sb_str(b, "\r\n");
		text_rcpt(b, &r[i]);
	}
}

/* ---- part 2: message/delivery-status ---- */

static int
is_qchar(unsigned c)
{
	return c > ' ' && c < 0x7f && c != '+' && c != '=' && c != '\\';
}

static unsigned
utf8_code_point(const unsigned char *p, size_t k)
{
	static const unsigned char lead_mask[] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
	unsigned cp = p[0] & lead_mask[k];

	for (size_t i = 1; i < k; i++)
		cp = (cp << 6) | (p[i] & 0x3f);
	return cp;
}

/* utf8_addr_xtext - RFC 6533 utf-8-addr-xtext of a clean address:
   ASCII as is, but specials and non-ASCII as \x{HEX} */
static char *
utf8_addr_xtext(const char *a)
{
	const unsigned char *p = (const unsigned char *)a;
	struct sbuf b = { 0 };

	while (*p != '\0') {
		size_t k = utf8_seq(p, strnlen((const char *)p, 4));
		unsigned cp = k > 0 ? utf8_code_point(p, k) : '?';

		if (cp < 0x80 && is_qchar(cp))
			sb_add(&b, (const char *)p, 1);
		else
			sb_printf(&b, "\\x{%X}", cp);
		p += k > 0 ? k : 1;
	}
	return sb_finish(&b, NULL);
}

/*
 * final_recipient - "rfc822; addr" for ASCII addresses; RFC 6533
 * "utf-8; addr" otherwise, as UTF-8 in a global report, else in its
 * utf-8-addr-xtext form so the report stays ASCII.
 */
static char *
final_recipient(const char *addr, int smtputf8)
{
	char *a = clean_text(addr, ADDR_MAX, 1), *x, *s;

	if (is_ascii(a))
		xasprintf(&s, "rfc822; %s", a);
	else if (smtputf8)
		xasprintf(&s, "utf-8; %s", a);
	else {
		x = utf8_addr_xtext(a);
		xasprintf(&s, "utf-8; %s", x);
		free(x);
	}
	free(a);
	return s;
}

/* original_recipient - the stored ORCPT ("addr-type;xtext") when it has
   that form, else NULL */
static char *
original_recipient(const char *orcpt, int smtputf8)
{
	char *o;
	size_t type;

	if (orcpt == NULL)
		return NULL;
	o = clean_text(orcpt, ORCPT_LEN, smtputf8);
	type = strspn(o, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
	if (type == 0 || o[type] != ';' || o[type + 1] == '\0') {
		free(o);
		return NULL;
	}
	return o;
}

static void
status_message_fields(struct sbuf *b, const struct dsn_params *pa)
{
	int u = pa->smtputf8;
	char *envid = clean_text(pa->envid, VALUE_MAX, u);
	char *mta = clean_text(pa->reporting_mta, VALUE_MAX, u);
	char *from = clean_text(pa->received_from, VALUE_MAX, u);

	put_field_pfx(b, "Original-Envelope-Id", "", envid);
	put_field_pfx(b, "Reporting-MTA", "dns; ", mta[0] ? mta : "localhost");
	put_field_pfx(b, "Received-From-MTA", "dns; ", from);
	put_date_field(b, "Arrival-Date", pa->arrival);
	free(from);
	free(mta);
	free(envid);
}

static void
status_rcpt_fields(struct sbuf *b, const struct dsn_rcpt *r, int u)
{
	char *orcpt = original_recipient(r->orcpt, u);
	char *final = final_recipient(r->addr, u);
	char *host = clean_text(r->remote_mta, VALUE_MAX, u);
	char *diag = clean_text(r->diagnostic, DIAG_MAX, u);

	sb_str(b, "\r\n");
	if (orcpt != NULL)
		put_field(b, "Original-Recipient", orcpt);
	put_field(b, "Final-Recipient", final);
	put_field(b, "Action", action_name(action_of(r)));
	put_field(b, "Status", status_of(r));
	put_field_pfx(b, "Remote-MTA", "dns; ", host);
	put_field_pfx(b, "Diagnostic-Code",
	    r->diagnostic_is_smtp ? "smtp; " : "X-Sluice; ", diag);
	put_date_field(b, "Last-Attempt-Date", r->last_attempt);
	if (action_of(r) == DSN_DELAYED)
		put_date_field(b, "Will-Retry-Until", r->retry_until);
	free(diag);
	free(host);
	free(final);
	free(orcpt);
}

static void
build_status(struct sbuf *b, const struct dsn_params *pa,
    const struct dsn_rcpt *r, size_t n)
{
	status_message_fields(b, pa);
	for (size_t i = 0; i < n; i++)
		status_rcpt_fields(b, &r[i], pa->smtputf8);
}

/* ---- the MIME frame ---- */

static int
contains(const char *hay, size_t n, const char *needle)
{
	return hay != NULL && memmem(hay, n, needle, strlen(needle)) != NULL;
}

/*
 * pick_boundary - the caller's boundary (only bcharsnospace kept, at most
 * BOUNDARY_MAX of them), or when "--" and it occur anywhere in the parts,
 * the first of boundary.1, boundary.2, ... that does not
 */
static char *
pick_boundary(const char *want, const struct sbuf *text,
    const struct sbuf *status, const char *orig, size_t orig_len)
{
	static const char bchars[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+_,-./:=?";
	char base[BOUNDARY_MAX + 1], *delim;
	size_t n = 0;

	for (; want != NULL && *want != '\0' && n < BOUNDARY_MAX; want++)
		if (strchr(bchars, *want) != NULL)
			base[n++] = *want;
	base[n] = '\0';
	if (n == 0)
		strlcpy_s(base, "sluice-dsn", sizeof(base));
	xasprintf(&delim, "--%s", base);
	for (unsigned long i = 1; contains(text->p, text->len, delim) ||
	    contains(status->p, status->len, delim) ||
	    contains(orig, orig_len, delim); i++) {
		free(delim);
		xasprintf(&delim, "--%s.%lu", base, i);
	}
	memmove(delim, delim + 2, strlen(delim + 2) + 1);
	return delim;
}

static void
put_message_header(struct sbuf *b, const struct dsn_params *pa,
    const struct tally *t, const char *boundary, int eightbit)
{
	int u = pa->smtputf8;
	char *from = clean_text(pa->from, ADDR_MAX, u);
	char *to = clean_text(pa->to, ADDR_MAX, u);
	char *mta = clean_text(pa->reporting_mta, VALUE_MAX, u);
	char *msgid = clean_text(pa->message_id, VALUE_MAX, 0);
	char date[64], *v;

	if (fmt_date(date, sizeof(date), pa->now) != 0)
		fmt_date(date, sizeof(date), 0);
	put_field(b, "Date", date);
	if (from[0] != '\0')
		xasprintf(&v, "Mail Delivery System <%s>", from);
	else
		xasprintf(&v, "Mail Delivery System <MAILER-DAEMON@%s>",
		    mta[0] ? mta : "localhost");
	put_field(b, "From", v);
	free(v);
	if (to[0] != '\0') {
		xasprintf(&v, "<%s>", to);
		put_field(b, "To", v);
		free(v);
	} else
		put_field(b, "To", "undisclosed-recipients:;");
	put_field(b, "Subject", subject_of(t));
	if (msgid[0] == '<')
		put_field(b, "Message-ID", msgid);
	else if (msgid[0] != '\0') {
		xasprintf(&v, "<%s>", msgid);
		put_field(b, "Message-ID", v);
		free(v);
	}
	put_field(b, "Auto-Submitted", "auto-replied");
	put_field(b, "MIME-Version", "1.0");
	xasprintf(&v, "multipart/report; report-type=delivery-status; "
	    "boundary=\"%s\"", boundary);
	put_field(b, "Content-Type", v);
	free(v);
	put_field(b, "Content-Transfer-Encoding", eightbit ? "8bit" : "7bit");
	sb_str(b, "\r\nThis is a MIME-encapsulated delivery status "
	    "notification.\r\n\r\n");
	free(msgid);
	free(mta);
	free(to);
	free(from);
}

/* put_part_header - the delimiter and a part's header fields */
static void
put_part_header(struct sbuf *b, const char *boundary, const char *desc,
    const char *type, int eightbit)
{
	sb_printf(b, "--%s\r\n", boundary);
	put_field(b, "Content-Description", desc);
	put_field(b, "Content-Type", type);
	put_field(b, "Content-Transfer-Encoding", eightbit ? "8bit" : "7bit");
	sb_str(b, "\r\n");
}

static void
put_parts(struct sbuf *b, const struct dsn_params *pa, const char *boundary,
    const struct sbuf *text, const struct sbuf *status,
    const struct returned *ret)
{
	int text8 = dsn_is_8bit(text->p, text->len);

	put_part_header(b, boundary, "Notification", text8 ?
	    "text/plain; charset=utf-8" : "text/plain; charset=us-ascii",
	    text8);
	sb_add(b, text->p, text->len);
	sb_str(b, "\r\n");
	put_part_header(b, boundary, "Delivery report", pa->smtputf8 ?
	    "message/global-delivery-status" : "message/delivery-status",
	    dsn_is_8bit(status->p, status->len));
	sb_add(b, status->p, status->len);
	sb_str(b, "\r\n");
	if (ret->type != NULL) {
		put_part_header(b, boundary, ret->full ? "Original message" :
		    "Original message headers", ret->type,
		    dsn_is_8bit(pa->msg, ret->len));
		put_original(b, pa->msg, ret->len);
		sb_str(b, "\r\n");
	}
	sb_printf(b, "--%s--\r\n", boundary);
}

char *
dsn_build(const struct dsn_params *pa, const struct dsn_rcpt *r,
    size_t nrcpts, size_t *len)
{
	struct sbuf text = { 0 }, status = { 0 }, out = { 0 };
	struct returned ret;
	struct tally t;
	char *boundary;
	int eightbit;

	if (len != NULL)
		*len = 0;
	if (pa == NULL || r == NULL || nrcpts == 0)
		return NULL;
	tally_rcpts(&t, r, nrcpts);
	plan_return(pa, &ret);
	build_text(&text, pa, r, nrcpts, &t, &ret);
	build_status(&status, pa, r, nrcpts);
	boundary = pick_boundary(pa->boundary, &text, &status, pa->msg,
	    ret.len);
	eightbit = dsn_is_8bit(text.p, text.len) ||
	    dsn_is_8bit(status.p, status.len) || dsn_is_8bit(pa->msg, ret.len);
	put_message_header(&out, pa, &t, boundary, eightbit);
	put_parts(&out, pa, boundary, &text, &status, &ret);
	free(boundary);
	free(text.p);
	free(status.p);
	return sb_finish(&out, len);
}
