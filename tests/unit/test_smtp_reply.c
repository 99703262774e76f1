/*
 * test_smtp_reply.c - unit tests for the outbound reply parser and EHLO
 * extension parsing (smtp_reply.c), and for MX ordering (mx.c): well-formed
 * replies, every kind of broken reply, the limits, text sanitising.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dns.h"
#include "mx.h"
#include "smtp_reply.h"

/* feed - lines separated by '\n' (no CR); the last feed result */
static enum reply_feed
feed(struct smtp_reply *r, const char *text, const char **why)
{
	enum reply_feed f = REPLY_BAD;
	const char *p = text, *nl;

	while (*p) {
		nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		f = smtp_reply_feed(r, p, n, why);
		if (f != REPLY_MORE)
			return f;
		p += n + (nl != NULL);
	}
	return f;
}

static void
test_single_line(void **state)
{
	struct smtp_reply r;
	const char *why;
	char buf[1100];

	(void)state;
	smtp_reply_init(&r, 0);
	assert_int_equal(feed(&r, "250 2.1.0 Ok", &why), REPLY_DONE);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.enhanced, "2.1.0");
	assert_string_equal(r.text, "Ok");
	smtp_reply_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "250 2.1.0 Ok");
	smtp_reply_clear(&r);

	smtp_reply_init(&r, 0);
	assert_int_equal(feed(&r, "354", &why), REPLY_DONE);
	assert_int_equal(r.code, 354);
	assert_string_equal(r.text, "");
	smtp_reply_clear(&r);
}

static void
test_multi_line(void **state)
{
	struct smtp_reply r;
	const char *why;

	(void)state;
	smtp_reply_init(&r, 0);
	assert_int_equal(feed(&r, "550-5.1.1 The account does not exist\n"
	    "550-5.1.1 Please check\n550 5.1.1 https://help", &why),
	    REPLY_DONE);
	assert_int_equal(r.code, 550);
	assert_string_equal(r.enhanced, "5.1.1");
	assert_string_equal(r.text, "The account does not exist / Please "
	    "check / https://help");
	assert_int_equal(r.nlines, 3);
	smtp_reply_clear(&r);
}

static void
test_enhanced_class_must_match(void **state)
{
	struct smtp_reply r;
	const char *why;

	(void)state;
	smtp_reply_init(&r, 0);
	assert_int_equal(feed(&r, "550 4.1.1 mixed", &why), REPLY_DONE);
	assert_string_equal(r.enhanced, "");
	assert_string_equal(r.text, "4.1.1 mixed");
	smtp_reply_clear(&r);
	smtp_reply_init(&r, 0);
	assert_int_equal(feed(&r, "250 2.1234.0 no", &why), REPLY_DONE);
	assert_string_equal(r.enhanced, "");
	smtp_reply_clear(&r);
}

static void
test_broken_replies(void **state)
{
	static const char *bad[] = {
		"2x0 ok", "25", "250x", "650 nope", "150 info", "abc",
		"2500 ok", "250_ok", "190 low", "",
	};
	struct smtp_reply r;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		smtp_reply_init(&r, 0);
		why = NULL;
		assert_int_equal(smtp_reply_feed(&r, bad[i], strlen(bad[i]),
		    &why), REPLY_BAD);
		assert_non_null(why);
		smtp_reply_clear(&r);
	}
	/* the code changes between lines */
	smtp_reply_init(&r, 0);
	assert_int_equal(feed(&r, "250-one\n251 two", &why), REPLY_BAD);
	smtp_reply_clear(&r);
	/* a NUL byte */
	smtp_reply_init(&r, 0);
	assert_int_equal(smtp_reply_feed(&r, "250 a\0b", 7, &why), REPLY_BAD);
	smtp_reply_clear(&r);
	/* fed after the end */
	smtp_reply_init(&r, 0);
	assert_int_equal(feed(&r, "250 ok", &why), REPLY_DONE);
	assert_int_equal(smtp_reply_feed(&r, "250 again", 9, &why),
	    REPLY_BAD);
	smtp_reply_clear(&r);
}

static void
test_limits(void **state)
{
	struct smtp_reply r;
	const char *why;
	char *line = malloc(REPLY_LINE_MAX + 2);

	(void)state;
	memset(line, 'x', REPLY_LINE_MAX + 1);
	memcpy(line, "250 ", 4);
	smtp_reply_init(&r, 0);
	assert_int_equal(smtp_reply_feed(&r, line, REPLY_LINE_MAX + 1, &why),
	    REPLY_BAD);
	smtp_reply_clear(&r);
	/* exactly the limit is fine; text is cut to REPLY_TEXT_MAX - 1 */
	smtp_reply_init(&r, 0);
	assert_int_equal(smtp_reply_feed(&r, line, REPLY_LINE_MAX, &why),
	    REPLY_DONE);
	assert_int_equal(strlen(r.text), REPLY_TEXT_MAX - 1);
	smtp_reply_clear(&r);
	free(line);
	/* the line count limit: an endless multi-line reply */
	smtp_reply_init(&r, 0);
	for (unsigned i = 0; i < REPLY_LINES_MAX; i++)
		assert_int_equal(smtp_reply_feed(&r, "250-more", 8, &why),
		    REPLY_MORE);
	assert_int_equal(smtp_reply_feed(&r, "250-more", 8, &why), REPLY_BAD);
	smtp_reply_clear(&r);
}

static void
test_control_bytes_sanitised(void **state)
{
	struct smtp_reply r;
	const char *why;

	(void)state;
	smtp_reply_init(&r, 0);
	assert_int_equal(smtp_reply_feed(&r, "550 bad\r\x1b[31m\x7fz", 15,
	    &why), REPLY_DONE);
	assert_string_equal(r.text, "bad??[31m?z");
	smtp_reply_clear(&r);
}

static void
test_ehlo_caps(void **state)
{
	struct smtp_reply r;
	struct smtp_caps caps;
	const char *why;

	(void)state;
	smtp_reply_init(&r, 1);
	assert_int_equal(feed(&r, "250-mx.example.org hello\n"
	    "250-PIPELINING\n250-SIZE 10240000\n250-8BITMIME\n"
	    "250-dsn\n250-STARTTLS\n250-CHUNKING\n250-SMTPUTF8\n"
	    "250-ENHANCEDSTATUSCODES\n250-PIPELININGX\n250 AUTH PLAIN",
	    &why), REPLY_DONE);
	smtp_caps_parse(&r, &caps);
	assert_int_equal(caps.flags, CAP_PIPELINING | CAP_SIZE |
	    CAP_8BITMIME | CAP_DSN | CAP_STARTTLS | CAP_CHUNKING |
	    CAP_SMTPUTF8 | CAP_ENHANCEDSTATUSCODES);
	assert_int_equal(caps.size, 10240000);
	smtp_reply_clear(&r);

	/* the greeting line never counts; SIZE without a number */
	smtp_reply_init(&r, 1);
	assert_int_equal(feed(&r, "250-PIPELINING\n250-SIZE\n250 SIZE x",
	    &why), REPLY_DONE);
	smtp_caps_parse(&r, &caps);
	assert_int_equal(caps.flags, CAP_SIZE);
	assert_int_equal(caps.size, 0);
	smtp_reply_clear(&r);
}

static unsigned
no_shuffle(unsigned n)
{
	(void)n;
	return 0;
}

static void
test_mx_order(void **state)
{
	struct dns_rr rr[4] = {
		{ .type = DNS_MX, .text = "c.test", .pref = 30 },
		{ .type = DNS_MX, .text = "a.test", .pref = 10 },
		{ .type = DNS_MX, .text = "b.test", .pref = 20 },
		{ .type = DNS_MX, .text = "", .pref = 5 },
	};
	struct dns_rr null_mx[1] = {
		{ .type = DNS_MX, .text = "", .pref = 0 },
	};

	(void)state;
	assert_int_equal(mx_order(rr, 4, no_shuffle), 3);
	assert_string_equal(rr[0].text, "a.test");
	assert_string_equal(rr[1].text, "b.test");
	assert_string_equal(rr[2].text, "c.test");
	assert_int_equal(mx_order(null_mx, 1, no_shuffle), -1);
}

static unsigned
pick_last(unsigned n)
{
	return n - 1;
}

static void
test_mx_equal_preferences_shuffled(void **state)
{
	struct dns_rr rr[3] = {
		{ .type = DNS_MX, .text = "x.test", .pref = 10 },
		{ .type = DNS_MX, .text = "y.test", .pref = 10 },
		{ .type = DNS_MX, .text = "z.test", .pref = 20 },
	};

	(void)state;
	/* with "always the last" the two at 10 stay in order (i swaps with
	   itself), the 20 stays last */
	assert_int_equal(mx_order(rr, 3, pick_last), 3);
	assert_string_equal(rr[2].text, "z.test");
	/* with "always the first" they swap */
	assert_int_equal(mx_order(rr, 3, no_shuffle), 3);
	assert_string_equal(rr[0].text, "y.test");
	assert_string_equal(rr[1].text, "x.test");
	assert_string_equal(rr[2].text, "z.test");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_line),
		cmocka_unit_test(test_multi_line),
		cmocka_unit_test(test_enhanced_class_must_match),
		cmocka_unit_test(test_broken_replies),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_control_bytes_sanitised),
		cmocka_unit_test(test_ehlo_caps),
		cmocka_unit_test(test_mx_order),
		cmocka_unit_test(test_mx_equal_preferences_shuffled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
