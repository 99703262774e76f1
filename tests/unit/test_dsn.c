/*
 * test_dsn.c - unit tests for the DSN builder (dsn.c): the header and the
 * three parts of failed, delayed, success and mixed reports, ORCPT/ENVID,
 * RET=FULL/HDRS and the size limit, the SMTPUTF8 (RFC 6533) variant,
 * sanitizing of hostile input, boundary collisions, odd originals, long
 * values, many recipients.
 *
 * test_python_parses feeds sample DSNs through tests/unit/dsn_check.py
 * (Python's email package, policy.default) and checks that it rejects
 * broken ones. It needs /usr/bin/python3 (skipped without it) and runs
 * from the top of the tree, as `make unit` does; by hand:
 *   build/tests/test_dsn                  (from the source tree top)
 *   DSN_KEEP=dir build/tests/test_dsn      also leaves the samples in dir
 *   /usr/bin/python3 tests/unit/dsn_check.py dir/failed.eml ...
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "dsn.h"
#include "util.h"

#define PYTHON		"/usr/bin/python3"
#define CHECKER		"tests/unit/dsn_check.py"
#define NOW		1795870700ULL	/* Sat, 28 Nov 2026 12:58:20 UTC */
#define ARRIVAL		1795870600ULL	/* 12:56:40 */
#define ATTEMPT		1795870643ULL	/* 12:57:23 */
#define UNTIL		1796302700ULL	/* Thu, 3 Dec 2026 12:58:20 */

static const char original[] =
    "Received: from client.example ([192.0.2.1])\r\n"
    "\tby mx.example.com with ESMTP id 0kq3x5v1b2c0a7\r\n"
    "From: Alice <alice@example.com>\r\n"
    "To: Bob <bob@example.org>\r\n"
    "Subject: lunch\r\n"
    "Message-ID: <orig.1@example.com>\r\n"
    "\r\n"
    "See you at noon.\r\n"
    "-- \r\n"
    "Alice\r\n";

static void
params(struct dsn_params *p)
{
	memset(p, 0, sizeof(*p));
	p->reporting_mta = "mx.example.com";
	p->from = "MAILER-DAEMON@mx.example.com";
	p->to = "alice@example.com";
	p->orig_qid = "0kq3x5v1b2c0a7";
	p->received_from = "client.example [192.0.2.1]";
	p->arrival = ARRIVAL;
	p->now = NOW;
	p->message_id = "<dsn.1@mx.example.com>";
	p->boundary = "sluice=_b1";
	p->msg = original;
	p->msg_len = sizeof(original) - 1;
	p->full_limit = 100000;
}

static struct dsn_rcpt
rcpt_failed(void)
{
	struct dsn_rcpt r = {
		.addr = "bob@example.org",
		.action = DSN_FAILED,
		.status = "5.1.1",
		.remote_mta = "mx.example.org",
		.diagnostic = "550 5.1.1 <bob@example.org>: No such user",
		.diagnostic_is_smtp = 1,
		.last_attempt = ATTEMPT,
	};
	return r;
}

static struct dsn_rcpt
rcpt_delayed(void)
{
	struct dsn_rcpt r = {
		.addr = "carol@example.net",
		.action = DSN_DELAYED,
		.status = "4.4.1",
		.diagnostic = "connect to mx.example.net[192.0.2.9]:25: "
		    "Connection timed out",
		.last_attempt = ATTEMPT,
		.retry_until = UNTIL,
	};
	return r;
}

static struct dsn_rcpt
rcpt_delivered(void)
{
	struct dsn_rcpt r = {
		.addr = "dave@example.org",
		.action = DSN_DELIVERED,
		.status = "2.0.0",
		.remote_mta = "mx.example.org",
		.diagnostic = "250 2.0.0 Ok: queued as 4F2A1",
		.diagnostic_is_smtp = 1,
		.last_attempt = ATTEMPT,
	};
	return r;
}

/* check_lines - every line ends in CRLF, none is longer than 998 */
static void
check_lines(const char *s, size_t len)
{
	size_t col = 0;

	assert_true(len >= 2);
	assert_memory_equal(s + len - 2, "\r\n", 2);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r') {
			assert_true(i + 1 < len && s[i + 1] == '\n');
			i++;
			col = 0;
			continue;
		}
		assert_true(s[i] != '\n');
		col++;
		assert_true(col <= 998);
	}
}

/* build - dsn_build plus the checks every DSN must pass */
static char *
build(const struct dsn_params *p, const struct dsn_rcpt *r, size_t n,
    size_t *lenp)
{
	size_t len;
	char *s = dsn_build(p, r, n, &len);

	assert_non_null(s);
	assert_int_equal(strlen(s), len);
	check_lines(s, len);
	if (lenp != NULL)
		*lenp = len;
	return s;
}

/* part - a copy of the header (head) or content of part n (from 1) */
static char *
part(const char *dsn, const char *boundary, int n, int head)
{
	char *delim, *start, *end, *body;

	xasprintf(&delim, "\r\n--%s\r\n", boundary);
	start = strstr(dsn, delim);
	for (int i = 1; start != NULL && i < n; i++)
		start = strstr(start + 1, delim);
	assert_non_null(start);
	start += strlen(delim);
	body = strstr(start, "\r\n\r\n");
	assert_non_null(body);
	body += 4;
	delim[strlen(delim) - 2] = '\0';
	end = strstr(body, delim);
	assert_non_null(end);
	free(delim);
	if (head)
		return xstrndup(start, (size_t)(body - start));
	return xstrndup(body, (size_t)(end - body));
}

/* has_text - s contains text, white space (line breaks too) aside */
static int
has_text(const char *s, const char *text)
{
	char *flat = xmalloc(strlen(s) + 1), *d = flat;
	int found;

	for (; *s != '\0'; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
			if (d > flat && d[-1] != ' ')
				*d++ = ' ';
		} else
			*d++ = *s;
	}
	*d = '\0';
	found = strstr(flat, text) != NULL;
	free(flat);
	return found;
}

static size_t
count(const char *s, const char *needle)
{
	size_t n = 0, k = strlen(needle), len = strlen(s);

	/* no strstr loop: ASan's strstr measures the whole rest of the
	   string on every call, quadratic on the 100,000-recipient report */
	for (size_t i = 0; i + k <= len; i++)
		if (s[i] == needle[0] && memcmp(s + i, needle, k) == 0)
			n++;
	return n;
}

static void
test_failed_exact(void **state)
{
	struct dsn_params p;
	struct dsn_rcpt r = rcpt_failed();
	char *s, *head, *status;

	(void)state;
	params(&p);
	s = build(&p, &r, 1, NULL);
	head = xstrndup(s, (size_t)(strstr(s, "\r\n\r\n") - s) + 2);
	assert_string_equal(head,
	    "Date: Sat, 28 Nov 2026 12:58:20 +0000\r\n"
	    "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
	    "To: <alice@example.com>\r\n"
	    "Subject: Undelivered Mail Returned to Sender\r\n"
	    "Message-ID: <dsn.1@mx.example.com>\r\n"
	    "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    " boundary=\"sluice=_b1\"\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n");
	status = part(s, "sluice=_b1", 2, 0);
	assert_string_equal(status,
	    "Reporting-MTA: dns; mx.example.com\r\n"
	    "Received-From-MTA: dns; client.example [192.0.2.1]\r\n"
	    "Arrival-Date: Sat, 28 Nov 2026 12:56:40 +0000\r\n"
	    "\r\n"
	    "Final-Recipient: rfc822; bob@example.org\r\n"
	    "Action: failed\r\n"
	    "Status: 5.1.1\r\n"
	    "Remote-MTA: dns; mx.example.org\r\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.org>: No such "
	    "user\r\n"
	    "Last-Attempt-Date: Sat, 28 Nov 2026 12:57:23 +0000\r\n");
	free(status);
	free(head);
	head = part(s, "sluice=_b1", 1, 1);
	assert_string_equal(head, "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n\r\n");
	free(head);
	head = part(s, "sluice=_b1", 2, 1);
	assert_non_null(strstr(head, "Content-Type: message/delivery-status\r\n"));
	free(head);
	head = part(s, "sluice=_b1", 3, 1);
	assert_non_null(strstr(head, "Content-Type: text/rfc822-headers\r\n"));
	free(head);
	/* the text names the recipient, the reply and the queue ID */
	assert_true(has_text(s, "<bob@example.org>: delivery failed"));
	assert_true(has_text(s, "The server mx.example.org said: 550 5.1.1"));
	assert_true(has_text(s, "queue ID 0kq3x5v1b2c0a7"));
	assert_null(strstr(s, "X-Sluice-Queue-ID"));
	assert_non_null(strstr(s, "\r\n--sluice=_b1--\r\n"));
	assert_int_equal(count(s, "\r\n--sluice=_b1\r\n"), 3);
	free(s);
}

static void
test_delayed(void **state)
{
	struct dsn_params p;
	struct dsn_rcpt r = rcpt_delayed();
	char *s, *status;

	(void)state;
	params(&p);
	s = build(&p, &r, 1, NULL);
	assert_non_null(strstr(s, "\r\nSubject: Delayed Mail (still being "
	    "retried)\r\n"));
	status = part(s, "sluice=_b1", 2, 0);
	assert_non_null(strstr(status, "\r\nAction: delayed\r\nStatus: 4.4.1\r\n"));
	assert_non_null(strstr(status, "\r\nDiagnostic-Code: X-Sluice; connect "
	    "to mx.example.net[192.0.2.9]:25:"));
	assert_non_null(strstr(status,
	    "\r\nWill-Retry-Until: Thu, 3 Dec 2026 12:58:20 +0000\r\n"));
	assert_null(strstr(status, "Remote-MTA"));
	free(status);
	assert_true(has_text(s, "we will keep trying until Thu, 3 Dec 2026 "
	    "12:58:20 +0000."));
	free(s);

	/* no retry_until: no Will-Retry-Until, no date promised */
	r.retry_until = 0;
	s = build(&p, &r, 1, NULL);
	assert_null(strstr(s, "Will-Retry-Until"));
	assert_true(has_text(s, "we will keep trying."));
	free(s);
}

static void
test_success(void **state)
{
	struct dsn_params p;
	struct dsn_rcpt r[2] = { rcpt_delivered(), rcpt_delivered() };
	char *s, *status;

	(void)state;
	params(&p);
	r[1].addr = "erin@example.org";
	r[1].action = DSN_RELAYED;
	r[1].retry_until = UNTIL;	/* ignored: not delayed */
	s = build(&p, r, 2, NULL);
	assert_non_null(strstr(s, "\r\nSubject: Successful Mail Delivery "
	    "Report\r\n"));
	status = part(s, "sluice=_b1", 2, 0);
	assert_non_null(strstr(status, "Final-Recipient: rfc822; "
	    "dave@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n"));
	assert_non_null(strstr(status, "Final-Recipient: rfc822; "
	    "erin@example.org\r\nAction: relayed\r\nStatus: 2.0.0\r\n"));
	assert_null(strstr(status, "Will-Retry-Until"));
	free(status);
	assert_true(has_text(s, "<dave@example.org>: delivered to "
	    "mx.example.org"));
	assert_true(has_text(s, "<erin@example.org>: relayed to "));
	free(s);
}

static void
test_mixed_subject(void **state)
{
	struct dsn_params p;
	struct dsn_rcpt r[3] = { rcpt_delivered(), rcpt_delayed(),
	    rcpt_failed() };
	char *s;

	(void)state;
	params(&p);
	s = build(&p, r, 3, NULL);
	assert_non_null(strstr(s, "Subject: Undelivered Mail Returned to "
	    "Sender\r\n"));
	assert_true(has_text(s, "could not be delivered"));
	assert_true(has_text(s, "not yet reached"));
	assert_true(has_text(s, "successful delivery"));
	assert_int_equal(count(s, "Final-Recipient: "), 3);
	free(s);
	s = build(&p, r, 2, NULL);
	assert_non_null(strstr(s, "Subject: Delayed Mail (still being "
	    "retried)\r\n"));
	assert_false(has_text(s, "could not be delivered"));
	free(s);
}

static void
test_orcpt_envid(void **state)
{
	struct dsn_params p;
	struct dsn_rcpt r = rcpt_failed();
	char *s, *status;

	(void)state;
	params(&p);
	p.envid = "QQ+2B1";
	r.orcpt = "rfc822;bob+2Bx@example.org";
	s = build(&p, &r, 1, NULL);
	status = part(s, "sluice=_b1", 2, 0);
	assert_true(strncmp(status, "Original-Envelope-Id: QQ+2B1\r\n"
	    "Reporting-MTA: dns; mx.example.com\r\n", 66) == 0);
	assert_non_null(strstr(status, "\r\n\r\nOriginal-Recipient: "
	    "rfc822;bob+2Bx@example.org\r\nFinal-Recipient: rfc822; "
	    "bob@example.org\r\n"));
	free(status);
	free(s);

	/* absent, or ORCPT without an addr-type: no fields */
	p.envid = NULL;
	r.orcpt = "bob@example.org";
	p.received_from = NULL;
	s = build(&p, &r, 1, NULL);
	assert_null(strstr(s, "Original-Envelope-Id"));
	assert_null(strstr(s, "Original-Recipient"));
	assert_null(strstr(s, "Received-From-MTA"));
	free(s);
}

static void
test_ret_full_hdrs_limit(void **state)
{
	struct dsn_params p;
	struct dsn_rcpt r = rcpt_failed();
	char *s, *orig, *head;

	(void)state;
	params(&p);
	p.full = 1;
	p.full_limit = p.msg_len;	/* exactly at the limit: whole */
	s = build(&p, &r, 1, NULL);
	head = part(s, "sluice=_b1", 3, 1);
	assert_non_null(strstr(head, "Content-Type: message/rfc822\r\n"));
	orig = part(s, "sluice=_b1", 3, 0);
	assert_string_equal(orig, original);
	assert_true(has_text(s, "The original message is attached."));
	free(orig);
	free(head);
	free(s);

	p.full_limit = p.msg_len - 1;	/* over: headers and a sentence */
	s = build(&p, &r, 1, NULL);
	head = part(s, "sluice=_b1", 3, 1);
	assert_non_null(strstr(head, "Content-Type: text/rfc822-headers\r\n"));
	orig = part(s, "sluice=_b1", 3, 0);
	assert_string_equal(orig, "Received: from client.example "
	    "([192.0.2.1])\r\n\tby mx.example.com with ESMTP id "
	    "0kq3x5v1b2c0a7\r\nFrom: Alice <alice@example.com>\r\n"
	    "To: Bob <bob@example.org>\r\nSubject: lunch\r\n"
	    "Message-ID: <orig.1@example.com>\r\n\r\n");
	assert_true(has_text(s, "only its headers are attached"));
	free(orig);
	free(head);
	free(s);

	p.full = 0;			/* RET=HDRS */
	s = build(&p, &r, 1, NULL);
	assert_non_null(strstr(s, "Content-Type: text/rfc822-headers\r\n"));
	assert_null(strstr(s, "See you at noon"));
	assert_false(has_text(s, "only its headers"));
	assert_true(has_text(s, "The headers of the original message"));
	free(s);
}

static void
test_smtputf8(void **state)
{
	struct dsn_params p;
	struct dsn_rcpt r = rcpt_failed();
	char *s, *head;

	(void)state;
	params(&p);
	p.smtputf8 = 1;
	p.to = "j\xc3\xb6rg@example.com";
	r.addr = "\xe7\x94\xa8\xe6\x88\xb7@example.org";
	r.orcpt = "utf-8;\xe7\x94\xa8\xe6\x88\xb7@example.org";
	r.diagnostic = "550 5.1.1 Benutzer unbekannt: \xc3\xbc";
	s = build(&p, &r, 1, NULL);
	assert_true(mem_has_8bit(s, strlen(s)));
	assert_non_null(strstr(s, "\r\nTo: <j\xc3\xb6rg@example.com>\r\n"));
	assert_non_null(strstr(s, "report-type=delivery-status;"));
	assert_non_null(strstr(s, "\r\nContent-Transfer-Encoding: 8bit\r\n"));
	assert_non_null(strstr(s, "Content-Type: text/plain; charset=utf-8"));
	head = part(s, "sluice=_b1", 2, 1);
	assert_non_null(strstr(head,
	    "Content-Type: message/global-delivery-status\r\n"));
	free(head);
	head = part(s, "sluice=_b1", 3, 1);
	assert_non_null(strstr(head, "Content-Type: message/global-headers\r\n"));
	free(head);
	assert_non_null(strstr(s, "\r\nFinal-Recipient: utf-8; "
	    "\xe7\x94\xa8\xe6\x88\xb7@example.org\r\n"));
	assert_non_null(strstr(s, "\r\nOriginal-Recipient: utf-8;"
	    "\xe7\x94\xa8\xe6\x88\xb7@example.org\r\n"));
	assert_non_null(strstr(s, "\r\nDiagnostic-Code: smtp; 550 5.1.1 "
	    "Benutzer unbekannt: \xc3\xbc\r\n"));
	free(s);

	p.full = 1;
	s = build(&p, &r, 1, NULL);
	assert_non_null(strstr(s, "Content-Type: message/global\r\n"));
	free(s);

	/* not SMTPUTF8: the report stays ASCII (RFC 6533 utf-8-addr-xtext) */
	p.smtputf8 = 0;
	p.full = 0;
	p.to = "alice@example.com";
	r.addr = "j\xc3\xb6rg+x@example.org";
	r.orcpt = NULL;
	s = build(&p, &r, 1, NULL);
	assert_non_null(strstr(s, "\r\nFinal-Recipient: utf-8; "
	    "j\\x{F6}rg\\x{2B}x@example.org\r\n"));
	assert_non_null(strstr(s, "\r\nDiagnostic-Code: smtp; 550 5.1.1 "
	    "Benutzer unbekannt: ?\r\n"));
	head = part(s, "sluice=_b1", 2, 1);
	assert_non_null(strstr(head, "Content-Type: message/delivery-status\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n"));
	free(head);
	head = part(s, "sluice=_b1", 2, 0);
	assert_false(mem_has_8bit(head, strlen(head)));
	free(head);
	/* the text part has the address as it is, so it is UTF-8 */
	assert_true(has_text(s, "<j\xc3\xb6rg+x@example.org>: delivery"));
	assert_non_null(strstr(s, "Content-Type: text/plain; charset=utf-8"));
	free(s);
}

/* no_line_starts - nothing in s begins a line with what */
static void
no_line_starts(const char *s, const char *what)
{
	char *pat;

	xasprintf(&pat, "\n%s", what);
	assert_null(strstr(s, pat));
	assert_true(strncmp(s, what, strlen(what)) != 0);
	free(pat);
}

static void
test_injection(void **state)
{
	struct dsn_params p;
	struct dsn_rcpt r = rcpt_failed();
	char *s;

	(void)state;
	params(&p);
	p.from = "md@x\r\nX-Injected: from";
	p.to = "a@x>\r\nX-Injected: to";
	p.message_id = "<id@x>\r\nX-Injected: id";
	p.envid = "E\r\nX-Injected: envid";
	p.received_from = "c\nX-Injected: rfm";
	p.reporting_mta = "m\rX-Injected: mta";
	p.orig_qid = "Q\r\n\r\nX-Injected: qid";
	r.addr = "b@x\r\nX-Injected: addr";
	r.orcpt = "rfc822;b@x\r\nX-Injected: orcpt";
	r.remote_mta = "mx\r\nX-Injected: remote\r\n";
	r.diagnostic = "550 no\r\nX-Injected: diag\r\n\r\n--sluice=_b1--\r\n"
	    "\x01\x1b[31m\x7f";
	r.status = "5.1.1\r\nX-Injected: status";
	s = build(&p, &r, 1, NULL);
	no_line_starts(s, "X-Injected");
	no_line_starts(s, "--sluice=_b1--");
	for (const char *c = s; *c != '\0'; c++)
		assert_true((unsigned char)*c >= 0x20 || *c == '\r' ||
		    *c == '\n' || *c == '\t');
	assert_non_null(strstr(s, "\r\nStatus: 5.0.0\r\n"));
	assert_non_null(strstr(s, "\r\nDiagnostic-Code: smtp; 550 no "
	    "X-Injected: diag --sluice=_b1-- [31m\r\n"));
	/* the diagnostic held "--sluice=_b1": another boundary was taken */
	assert_non_null(strstr(s, "boundary=\"sluice=_b1.1\""));
	assert_int_equal(count(s, "\r\n--sluice=_b1.1\r\n"), 3);
	free(s);
}

static void
test_boundary_collision(void **state)
{
	static const char msg[] =
	    "Subject: tricky\r\n"
	    "Content-Type: multipart/mixed; boundary=\"xyz\"\r\n"
	    "\r\n"
	    "--xyz\r\n\r\nhi\r\n--xyz.1\r\n\r\nho\r\n--xyz.3--\r\n";
	struct dsn_params p;
	struct dsn_rcpt r = rcpt_failed();
	char *s, *again, *orig;
	size_t len, len2;

	(void)state;
	params(&p);
	p.msg = msg;
	p.msg_len = sizeof(msg) - 1;
	p.boundary = "xyz";
	p.full = 1;
	s = build(&p, &r, 1, &len);
	assert_non_null(strstr(s, "boundary=\"xyz.2\"\r\n"));
	orig = part(s, "xyz.2", 3, 0);
	assert_string_equal(orig, msg);
	free(orig);
	again = build(&p, &r, 1, &len2);	/* deterministic */
	assert_int_equal(len, len2);
	assert_memory_equal(s, again, len);
	free(again);
	free(s);

	/* headers only: the body's lines do not count */
	p.full = 0;
	s = build(&p, &r, 1, NULL);
	assert_non_null(strstr(s, "delivery-status; boundary=\"xyz\"\r\n"));
	free(s);

	/* characters a boundary cannot have are dropped; none left: ours */
	p.boundary = "a b\"c\r\n";
	s = build(&p, &r, 1, NULL);
	assert_non_null(strstr(s, "delivery-status; boundary=\"abc\"\r\n"));
	free(s);
	p.boundary = NULL;
	s = build(&p, &r, 1, NULL);
	assert_non_null(strstr(s, "boundary=\"sluice-dsn\"\r\n"));
	free(s);
}

static void
test_original_shapes(void **state)
{
	struct dsn_params p;
	struct dsn_rcpt r = rcpt_failed();
	char *s, *orig;

	(void)state;
	params(&p);

	/* only header fields, no empty line, no final line end */
	p.msg = "Subject: x\r\nFrom: y@example.com";
	p.msg_len = strlen(p.msg);
	s = build(&p, &r, 1, NULL);
	orig = part(s, "sluice=_b1", 3, 0);
	assert_string_equal(orig, "Subject: x\r\nFrom: y@example.com\r\n");
	free(orig);
	free(s);

	/* a body with no empty line before it: the header stops there */
	p.msg = "Subject: x\r\nthis is the body\r\nmore: body\r\n";
	p.msg_len = strlen(p.msg);
	s = build(&p, &r, 1, NULL);
	orig = part(s, "sluice=_b1", 3, 0);
	assert_string_equal(orig, "Subject: x\r\n");
	free(orig);
	free(s);

	/* bare LF and a stray CR; RET=FULL */
	p.msg = "Subject: lf\nX-A: 1\rstray\n\nbody\nend";
	p.msg_len = strlen(p.msg);
	p.full = 1;
	s = build(&p, &r, 1, NULL);
	orig = part(s, "sluice=_b1", 3, 0);
	assert_string_equal(orig,
	    "Subject: lf\r\nX-A: 1 stray\r\n\r\nbody\r\nend\r\n");
	free(orig);
	free(s);
	p.full = 0;
	s = build(&p, &r, 1, NULL);
	orig = part(s, "sluice=_b1", 3, 0);
	assert_string_equal(orig, "Subject: lf\r\nX-A: 1 stray\r\n\r\n");
	free(orig);
	free(s);

	/* no header at all: nothing to return */
	p.msg = "just text\r\n";
	p.msg_len = strlen(p.msg);
	s = build(&p, &r, 1, NULL);
	assert_int_equal(count(s, "\r\n--sluice=_b1\r\n"), 2);
	assert_null(strstr(s, "headers of the original"));
	free(s);
}

static void
test_empty_message(void **state)
{
	struct dsn_params p;
	struct dsn_rcpt r = rcpt_failed();
	char *s;

	(void)state;
	params(&p);
	p.msg = NULL;
	p.msg_len = 0;
	p.full = 1;
	s = build(&p, &r, 1, NULL);
	assert_int_equal(count(s, "\r\n--sluice=_b1\r\n"), 2);
	assert_null(strstr(s, "text/rfc822-headers"));
	assert_null(strstr(s, "message/rfc822"));
	assert_null(strstr(s, "attached"));
	free(s);
	p.msg = "";
	s = build(&p, &r, 1, NULL);
	assert_int_equal(count(s, "\r\n--sluice=_b1\r\n"), 2);
	free(s);
}

static void
test_long_values(void **state)
{
	struct dsn_params p;
	struct dsn_rcpt r = rcpt_failed();
	char *diag = xmalloc(20001), *addr = xmalloc(3001), *msg, *s, *st;
	size_t len;

	(void)state;
	params(&p);
	/* words: folded near 78, cut to DIAG_MAX bytes */
	for (size_t i = 0; i < 20000; i++)
		diag[i] = i % 7 == 6 ? ' ' : 'a' + (char)(i % 26);
	diag[20000] = '\0';
	r.diagnostic = diag;
	s = build(&p, &r, 1, &len);
	st = part(s, "sluice=_b1", 2, 0);
	for (char *l = st; (l = strstr(l, "\r\n")) != NULL; l += 2) {
		char *e = strstr(l + 2, "\r\n");
		assert_true(e == NULL || e - (l + 2) <= 78);
	}
	assert_non_null(strstr(st, "...\r\n"));
	assert_true(strlen(st) < 2000);
	free(st);
	free(s);

	/* one word, no spaces at all: cut below 998 */
	memset(diag, 'x', 20000);
	memset(addr, 'y', 3000);
	addr[3000] = '\0';
	memcpy(addr + 2990, "@example.o", 10);
	r.addr = addr;
	p.to = addr;
	r.remote_mta = addr;
	xasprintf(&msg, "Subject: %s\r\nX-Long: %s%s\r\n\r\n%s%s\r\n",
	    addr, addr, addr, addr, addr);
	p.msg = msg;
	p.msg_len = strlen(msg);
	p.full = 1;
	s = build(&p, &r, 1, &len);	/* build checks the line lengths */
	assert_non_null(strstr(s, "\r\nFinal-Recipient: rfc822;\r\n yyyy"));
	assert_non_null(strstr(s, "\r\nDiagnostic-Code: smtp;\r\n xxxx"));
	/* the long header line of the original continues as a folded field */
	assert_non_null(strstr(s, "yyy\r\n yyy"));
	free(s);

	/* the same with UTF-8: no sequence is cut */
	for (size_t i = 0; i + 1 < 20000; i += 2)
		memcpy(diag + i, "\xc3\xa9", 2);
	p.smtputf8 = 1;
	s = build(&p, &r, 1, &len);
	assert_true(utf8_valid(s, len));
	free(s);
	free(msg);
	free(addr);
	free(diag);
}

static void
test_bad_status(void **state)
{
	static const struct {
		enum dsn_action action;
		const char *in, *out;
	} cases[] = {
		{ DSN_FAILED, "5.1.1", "5.1.1" },
		{ DSN_FAILED, "4.4.7", "4.4.7" },	/* expired */
		{ DSN_FAILED, "2.0.0", "5.0.0" },
		{ DSN_FAILED, "5.1", "5.0.0" },
		{ DSN_FAILED, "5.1.1.1", "5.0.0" },
		{ DSN_FAILED, "5.1000.1", "5.0.0" },
		{ DSN_FAILED, "550", "5.0.0" },
		{ DSN_FAILED, "", "5.0.0" },
		{ DSN_FAILED, NULL, "5.0.0" },
		{ DSN_DELAYED, "5.1.1", "4.0.0" },
		{ DSN_DELAYED, "4.7.0 x", "4.0.0" },
		{ DSN_DELAYED, "4.4.1", "4.4.1" },
		{ DSN_DELIVERED, "2.1.5", "2.1.5" },
		{ DSN_DELIVERED, "x", "2.0.0" },
		{ DSN_RELAYED, "4.0.0", "2.0.0" },
		{ (enum dsn_action)42, "5.1.1", "5.1.1" },	/* as failed */
	};
	struct dsn_params p;
	struct dsn_rcpt r = rcpt_failed();
	char *s, *want;

	(void)state;
	params(&p);
	for (size_t i = 0; i < nitems(cases); i++) {
		r.action = cases[i].action;
		r.status = cases[i].in;
		s = build(&p, &r, 1, NULL);
		xasprintf(&want, "\r\nStatus: %s\r\n", cases[i].out);
		assert_non_null(strstr(s, want));
		free(want);
		free(s);
	}
}

static void
test_many_rcpts(void **state)
{
	enum { N = 100000 };
	struct dsn_params p;
	struct dsn_rcpt *r = xcalloc(N, sizeof(*r));
	char (*addrs)[32] = xcalloc(N, sizeof(*addrs));
	char *s;
	size_t len;

	(void)state;
	params(&p);
	for (size_t i = 0; i < N; i++) {
		r[i] = i % 2 ? rcpt_failed() : rcpt_delayed();
		snprintf(addrs[i], sizeof(addrs[i]), "u%zu@example.org", i);
		r[i].addr = addrs[i];
	}
	s = build(&p, r, N, &len);
	assert_int_equal(count(s, "\r\nFinal-Recipient: rfc822; u"), N);
	assert_non_null(strstr(s, "Final-Recipient: rfc822; "
	    "u99999@example.org\r\n"));
	free(s);
	free(addrs);
	free(r);
}

static void
test_edges(void **state)
{
	struct dsn_params p;
	struct dsn_rcpt r = rcpt_failed();
	size_t len = 7;
	char *s;

	(void)state;
	params(&p);
	assert_null(dsn_build(&p, &r, 0, &len));
	assert_int_equal(len, 0);
	assert_null(dsn_build(NULL, &r, 1, &len));
	assert_null(dsn_build(&p, NULL, 1, &len));

	/* nothing but NULLs and zeros still makes a sound report */
	memset(&p, 0, sizeof(p));
	memset(&r, 0, sizeof(r));
	s = build(&p, &r, 1, NULL);
	assert_non_null(strstr(s, "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"));
	assert_non_null(strstr(s, "From: Mail Delivery System "
	    "<MAILER-DAEMON@localhost>\r\n"));
	assert_non_null(strstr(s, "To: undisclosed-recipients:;\r\n"));
	assert_non_null(strstr(s, "Reporting-MTA: dns; localhost\r\n"));
	assert_null(strstr(s, "Message-ID"));
	assert_null(strstr(s, "Arrival-Date"));
	assert_null(strstr(s, "Last-Attempt-Date"));
	free(s);

	/* a time no date can show is left out, a bare Message-ID wrapped */
	params(&p);
	p.message_id = "dsn.2@mx.example.com";
	p.arrival = UINT64_MAX;
	p.now = UINT64_MAX;
	s = build(&p, &r, 1, NULL);
	assert_non_null(strstr(s, "Message-ID: <dsn.2@mx.example.com>\r\n"));
	assert_non_null(strstr(s, "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"));
	assert_null(strstr(s, "Arrival-Date"));
	free(s);

	assert_false(mem_has_8bit("plain\r\n", 7));
	assert_true(mem_has_8bit("x\x80", 2));
	assert_false(mem_has_8bit("x\x80", 1));
	assert_false(mem_has_8bit(NULL, 0));
}

/* ---- the Python check ---- */

static void
write_file(const char *path, const char *s, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(s, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* run_checker - dsn_check.py's exit status for file with expectations;
   quiet: without its complaints on stderr */
static int
run_checker(const char *file, const char *const *expect, int quiet)
{
	const char *argv[32];
	size_t n = 0;
	int status;
	pid_t pid;

	argv[n++] = PYTHON;
	argv[n++] = CHECKER;
	argv[n++] = file;
	while (expect != NULL && *expect != NULL && n < nitems(argv) - 1)
		argv[n++] = *expect++;
	argv[n] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (quiet && freopen("/dev/null", "w", stderr) == NULL)
			_exit(126);
		execv(PYTHON, (char *const *)argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* sample - build one DSN into dir/name and check it; returns the path */
static char *
sample(const char *dir, const char *name, const struct dsn_params *p,
    const struct dsn_rcpt *r, size_t n, const char *const *expect)
{
	char *path, *s;
	size_t len;

	xasprintf(&path, "%s/%s", dir, name);
	s = build(p, r, n, &len);
	write_file(path, s, len);
	free(s);
	if (run_checker(path, expect, 0) != 0)
		fail_msg("dsn_check.py rejected %s", path);
	return path;
}

static void
rm_samples(const char *dir)
{
	static const char *names[] = { "failed.eml", "delayed.eml",
	    "success.eml", "mixed-full.eml", "utf8.eml", "hostile.eml",
	    "over-limit.eml", "broken.eml" };
	char *path;

	for (size_t i = 0; i < nitems(names); i++) {
		xasprintf(&path, "%s/%s", dir, names[i]);
		unlink(path);
		free(path);
	}
	rmdir(dir);
}

/* corrupt - write a changed copy of file to dir/broken.eml; the checker
   must reject it */
static void
corrupt(const char *dir, const char *file, const char *from, const char *to)
{
	char *text, *at, *bad, *path;
	FILE *f = fopen(file, "rb");
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	text = xmalloc((size_t)n + 1);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	text[n] = '\0';
	fclose(f);
	at = strstr(text, from);
	assert_non_null(at);
	*at = '\0';
	xasprintf(&bad, "%s%s%s", text, to, at + strlen(from));
	xasprintf(&path, "%s/broken.eml", dir);
	write_file(path, bad, strlen(bad));
	if (run_checker(path, NULL, 1) == 0)
		fail_msg("dsn_check.py accepted %s with %s", file, to);
	free(path);
	free(bad);
	free(text);
}

static void
test_python_parses(void **state)
{
	static const char *const failed[] = {
	    "subject=Undelivered Mail Returned to Sender",
	    "parts=text/plain,message/delivery-status,text/rfc822-headers",
	    "charset=us-ascii", "rcpts=1",
	    "msg.Reporting-MTA=dns; mx.example.com",
	    "msg.Original-Envelope-Id!",
	    "msg.Arrival-Date=Sat, 28 Nov 2026 12:56:40 +0000",
	    "rcpt0.Final-Recipient=rfc822; bob@example.org",
	    "rcpt0.Action=failed", "rcpt0.Status=5.1.1",
	    "rcpt0.Original-Recipient!",
	    "rcpt0.Diagnostic-Code=smtp; 550 5.1.1 <bob@example.org>: No "
	    "such user",
	    "orig.Subject=lunch", "text~<bob@example.org>: delivery failed",
	    "text~queue ID 0kq3x5v1b2c0a7", NULL };
	static const char *const delayed[] = {
	    "subject=Delayed Mail (still being retried)", "rcpts=1",
	    "rcpt0.Action=delayed",
	    "rcpt0.Will-Retry-Until=Thu, 3 Dec 2026 12:58:20 +0000",
	    "rcpt0.Diagnostic-Code=X-Sluice; connect to "
	    "mx.example.net[192.0.2.9]:25: Connection timed out",
	    "text~keep trying until Thu, 3 Dec 2026 12:58:20 +0000", NULL };
	static const char *const success[] = {
	    "subject=Successful Mail Delivery Report", "rcpts=1",
	    "rcpt0.Action=delivered", "rcpt0.Will-Retry-Until!", NULL };
	static const char *const mixed[] = {
	    "subject=Undelivered Mail Returned to Sender", "rcpts=3",
	    "parts=text/plain,message/delivery-status,message/rfc822",
	    "msg.Original-Envelope-Id=QQ+2B1",
	    "rcpt0.Action=delivered", "rcpt1.Action=delayed",
	    "rcpt2.Action=failed",
	    "rcpt2.Original-Recipient=rfc822;bob@example.org",
	    "orig.Message-ID=<orig.1@example.com>",
	    "origbody~See you at noon.", NULL };
	static const char *const utf8[] = {
	    "parts=text/plain,message/global-delivery-status,message/global",
	    "charset=utf-8",
	    "rcpt0.Final-Recipient=utf-8; \xe7\x94\xa8\xe6\x88\xb7@example.org",
	    "rcpt0.Status=5.1.1", "orig.Subject=lunch", NULL };
	static const char *const hostile[] = {
	    "header.X-Injected!", "rcpts=1", "rcpt0.Status=5.0.0",
	    "rcpt0.Remote-MTA=dns; mx X-Injected: remote",
	    "msg.X-Injected!", "rcpt0.X-Injected!", NULL };
	static const char *const over[] = {
	    "parts=text/plain,message/delivery-status,text/rfc822-headers",
	    "text~only its headers are attached", "orig.Subject=lunch", NULL };
	struct dsn_params p;
	struct dsn_rcpt r[3] = { rcpt_delivered(), rcpt_delayed(),
	    rcpt_failed() };
	struct dsn_rcpt bad = rcpt_failed();
	char dir[] = "/tmp/test_dsn.XXXXXX", *path;
	const char *keep = getenv("DSN_KEEP"), *base = dir;

	(void)state;
	if (access(PYTHON, X_OK) != 0)
		skip();
	if (access(CHECKER, R_OK) != 0)
		fail_msg("%s not found: run from the top of the tree", CHECKER);
	if (keep != NULL && *keep != '\0')
		assert_int_equal(mkdir_p(base = keep, 0755), 0);
	else
		assert_non_null(mkdtemp(dir));
	params(&p);
	free(sample(base, "failed.eml", &p, &r[2], 1, failed));
	free(sample(base, "delayed.eml", &p, &r[1], 1, delayed));
	free(sample(base, "success.eml", &p, &r[0], 1, success));
	p.envid = "QQ+2B1";
	p.full = 1;
	r[2].orcpt = "rfc822;bob@example.org";
	path = sample(base, "mixed-full.eml", &p, r, 3, mixed);
	/* the checker catches what a broken builder could produce */
	corrupt(base, path, "\r\n--sluice=_b1--", "\r\n--sluice=_b2--");
	corrupt(base, path, "Status: 4.4.1", "Status: 5.4.1");
	corrupt(base, path, "Action: failed", "Action: exploded");
	corrupt(base, path, "Final-Recipient: rfc822; bob", "X-Final: bob");
	corrupt(base, path, "Reporting-MTA:", "X-Reporting-MTA:");
	corrupt(base, path, "Subject: lunch\r\n", "Subject: lunch\n");
	corrupt(base, path, "Auto-Submitted: auto-replied",
	    "Auto-Submitted: no");
	corrupt(base, path, "report-type=delivery-status", "report-type=x");
	corrupt(base, path, "Date: Sat, 28", "Date: Sat, 28\r\nDate: Sat, 28");
	free(path);
	p.envid = NULL;
	p.full = 1;
	p.smtputf8 = 1;
	bad.addr = "\xe7\x94\xa8\xe6\x88\xb7@example.org";
	free(sample(base, "utf8.eml", &p, &bad, 1, utf8));
	params(&p);
	bad = rcpt_failed();
	bad.status = "5.1.1\r\nX-Injected: status";
	bad.remote_mta = "mx\r\nX-Injected: remote";
	bad.diagnostic = "550 no\r\n\r\nX-Injected: diag";
	p.to = "a@x\r\nX-Injected: to";
	free(sample(base, "hostile.eml", &p, &bad, 1, hostile));
	params(&p);
	p.full = 1;
	p.full_limit = 10;
	free(sample(base, "over-limit.eml", &p, &r[2], 1, over));
	if (base == dir)
		rm_samples(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_exact),
		cmocka_unit_test(test_delayed),
		cmocka_unit_test(test_success),
		cmocka_unit_test(test_mixed_subject),
		cmocka_unit_test(test_orcpt_envid),
		cmocka_unit_test(test_ret_full_hdrs_limit),
		cmocka_unit_test(test_smtputf8),
		cmocka_unit_test(test_injection),
		cmocka_unit_test(test_boundary_collision),
		cmocka_unit_test(test_original_shapes),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_long_values),
		cmocka_unit_test(test_bad_status),
		cmocka_unit_test(test_many_rcpts),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_python_parses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
