/*
 * test_mx.c - unit tests for the pure parts of mx.c that pick where a
 * connection goes: dropping this server and worse MX hosts (loops), and
 * the per-connection order of hosts with equal preference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "mx.h"
#include "util.h"

static void
add(struct mx_addrs *a, const char *host, unsigned pref, const char *ip)
{
	struct mx_addr *m = &a->a[a->n++];
	struct sockaddr_in *s4 = (struct sockaddr_in *)&m->sa;

	memset(m, 0, sizeof(*m));
	strlcpy_s(m->host, host, sizeof(m->host));
	m->pref = pref;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(25);
	inet_pton(AF_INET, ip, &s4->sin_addr);
	m->salen = sizeof(*s4);
}

static int
self_is_dot9(const struct sockaddr *sa)
{
	const struct sockaddr_in *s4 = (const void *)sa;

	return (ntohl(s4->sin_addr.s_addr) & 0xff) == 9;
}

static void
test_drop_self(void **state)
{
	struct mx_addrs a;

	(void)state;
	memset(&a, 0, sizeof(a));
	add(&a, "mx1.test", 10, "192.0.2.1");
	add(&a, "mx1.test", 10, "192.0.2.2");
	add(&a, "backup.test", 20, "192.0.2.9");	/* us */
	add(&a, "worse.test", 30, "192.0.2.3");
	assert_int_equal(mx_drop_self(&a, self_is_dot9), 2);
	assert_string_equal(a.a[1].host, "mx1.test");

	/* we are the best MX: nothing left, a loop */
	memset(&a, 0, sizeof(a));
	add(&a, "us.test", 10, "192.0.2.9");
	add(&a, "other.test", 20, "192.0.2.1");
	assert_int_equal(mx_drop_self(&a, self_is_dot9), 0);

	/* an equal-preference peer of ours is dropped with us */
	memset(&a, 0, sizeof(a));
	add(&a, "peer.test", 10, "192.0.2.1");
	add(&a, "us.test", 10, "192.0.2.9");
	assert_int_equal(mx_drop_self(&a, self_is_dot9), 0);

	/* not us at all: everything stays */
	memset(&a, 0, sizeof(a));
	add(&a, "a.test", 10, "192.0.2.1");
	add(&a, "b.test", 20, "192.0.2.2");
	assert_int_equal(mx_drop_self(&a, self_is_dot9), 2);
}

static unsigned rnd_value;
static unsigned
fixed_rnd(unsigned n)
{
	return rnd_value % n;
}

static void
test_shuffled(void **state)
{
	struct mx_addrs a;
	struct mx_addrs *b;
	int first_b = 0, first_a = 0;

	(void)state;
	memset(&a, 0, sizeof(a));
	add(&a, "a.test", 10, "192.0.2.1");
	add(&a, "a.test", 10, "192.0.2.2");
	add(&a, "b.test", 10, "192.0.2.3");
	add(&a, "c.test", 20, "192.0.2.4");
	for (rnd_value = 0; rnd_value < 4; rnd_value++) {
		b = mx_shuffled(&a, fixed_rnd);
		assert_int_equal(b->n, 4);
		/* the worse host stays last; a host's addresses together */
		assert_string_equal(b->a[3].host, "c.test");
		if (strcmp(b->a[0].host, "a.test") == 0) {
			assert_string_equal(b->a[1].host, "a.test");
			first_a++;
		} else {
			assert_string_equal(b->a[0].host, "b.test");
			assert_string_equal(b->a[1].host, "a.test");
			assert_string_equal(b->a[2].host, "a.test");
			first_b++;
		}
		mx_addrs_unref(b);
	}
	assert_true(first_a > 0 && first_b > 0);
	/* with the real random source, both come first over many tries */
	first_a = first_b = 0;
	for (int i = 0; i < 200; i++) {
		b = mx_shuffled(&a, mx_random_below);
		if (strcmp(b->a[0].host, "a.test") == 0)
			first_a++;
		else
			first_b++;
		mx_addrs_unref(b);
	}
	assert_true(first_a > 20 && first_b > 20);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_drop_self),
		cmocka_unit_test(test_shuffled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
