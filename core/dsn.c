/*
 * dsn.c - delivery status notifications (RFC 3464), see dsn.h: the
 * message header, the report's three parts (text/plain explanation,
 * message/delivery-status, the returned original) and the MIME frame
 * around them (multipart/report, RFC 6522; RFC 6533 types for SMTPUTF8).
 * Part 2 is built in dsn_status.c, the text helpers are in dsn_fmt.c.
 *
 * Everything that came from outside (addresses, remote replies, host
 * names, IDs) goes through clean_text() before it is written, and
 * put_words() folds it, so no input can add a line or a header field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn_int.h"
#include "util.h"

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

/* line_at - the line starting at i: where the next one starts, and in
   *end where its text ends (before LF or CRLF) */
static size_t
line_at(const char *m, size_t n, size_t i, size_t *end)
{
	const char *nl = memchr(m + i, '\n', n - i);

	*end = nl ? (size_t)(nl - m) : n;
	if (*end > i && m[*end - 1] == '\r')
		(*end)--;
	return nl ? (size_t)(nl - m) + 1 : n;
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
		size_t end, next = line_at(m, n, i, &end);

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
		size_t end, next = line_at(m, n, i, &end);

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
	int text8 = mem_has_8bit(text->p, text->len);

	put_part_header(b, boundary, "Notification", text8 ?
	    "text/plain; charset=utf-8" : "text/plain; charset=us-ascii",
	    text8);
	sb_add(b, text->p, text->len);
	sb_str(b, "\r\n");
	put_part_header(b, boundary, "Delivery report", pa->smtputf8 ?
	    "message/global-delivery-status" : "message/delivery-status",
	    mem_has_8bit(status->p, status->len));
	sb_add(b, status->p, status->len);
	sb_str(b, "\r\n");
	if (ret->type != NULL) {
		put_part_header(b, boundary, ret->full ? "Original message" :
		    "Original message headers", ret->type,
		    mem_has_8bit(pa->msg, ret->len));
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
	eightbit = mem_has_8bit(text.p, text.len) ||
	    mem_has_8bit(status.p, status.len) || mem_has_8bit(pa->msg, ret.len);
	put_message_header(&out, pa, &t, boundary, eightbit);
	put_parts(&out, pa, boundary, &text, &status, &ret);
	free(boundary);
	free(text.p);
	free(status.p);
	return sb_finish(&out, len);
}
