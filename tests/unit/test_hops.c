/*
 * test_hops.c - unit tests for the Received: counter (hops.c): counting,
 * case, folded fields, look-alike names, the end of the header section,
 * and every way the bytes can be split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hops.h"

static unsigned
count_whole(const char *msg)
{
	struct hop_counter h;

	hops_init(&h);
	hops_feed(&h, msg, strlen(msg));
	return h.count;
}

static void
test_counts(void **state)
{
	(void)state;
	assert_int_equal(count_whole("Subject: x\r\n\r\nbody\r\n"), 0);
	assert_int_equal(count_whole("Received: a\r\nReceived: b\r\n"
	    "Subject: x\r\n\r\nbody\r\n"), 2);
	assert_int_equal(count_whole("RECEIVED: a\r\nreceived:b\r\n"
	    "ReCeIvEd: c\r\n\r\n"), 3);
	/* folded continuation lines are not fields */
	assert_int_equal(count_whole("Received: from a\r\n\tby b\r\n"
	    " Received: no\r\n\r\n"), 1);
	/* look-alikes */
	assert_int_equal(count_whole("Received-SPF: pass\r\nReceivedx: 1\r\n"
	    "X-Received: 2\r\nReceived : 3\r\nReceive: 4\r\n\r\n"), 0);
	/* LF-only line ends (normalize policy) count the same */
	assert_int_equal(count_whole("Received: a\nReceived: b\n\n"
	    "Received: body\n"), 2);
}

static void
test_body_not_counted(void **state)
{
	char msg[4096] = "Subject: x\r\n\r\n";

	(void)state;
	for (int i = 0; i < 100; i++)
		strcat(msg, "Received: in the body\r\n");
	assert_int_equal(count_whole(msg), 0);
	assert_int_equal(count_whole("\r\nReceived: a\r\n"), 0);
	assert_int_equal(count_whole(""), 0);
}

static void
test_any_split(void **state)
{
	const char *msg = "Received: a\r\nX: y\r\nreceived: b\r\n"
	    "\treceived: folded\r\nReceived-SPF: z\r\nRECEIVED:c\r\n\r\n"
	    "Received: body\r\n";
	size_t n = strlen(msg);

	(void)state;
	assert_int_equal(count_whole(msg), 3);
	for (size_t a = 0; a <= n; a++)
		for (size_t b = a; b <= n; b += 7) {
			struct hop_counter h;
			hops_init(&h);
			hops_feed(&h, msg, a);
			hops_feed(&h, msg + a, b - a);
			hops_feed(&h, msg + b, n - b);
			assert_int_equal(h.count, 3);
		}
	/* byte by byte */
	struct hop_counter h;
	hops_init(&h);
	for (size_t i = 0; i < n; i++)
		hops_feed(&h, msg + i, 1);
	assert_int_equal(h.count, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_body_not_counted),
		cmocka_unit_test(test_any_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
