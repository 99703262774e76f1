/*
 * test_milter_addr.c - unit tests for milter_addr.c: the socket address
 * forms of a `milter:` entry, Postfix's and libmilter's, and what is
 * refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>
#include <cmocka.h>

#include "milter_client.h"

static int
parse(const char *spec, struct sockaddr_storage *ss)
{
	socklen_t len;
	char err[256];

	return milter_addr_parse(spec, ss, &len, err, sizeof(err));
}

static void
test_unix(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_un *sun = (struct sockaddr_un *)&ss;

	(void)state;
	assert_int_equal(parse("unix:/run/x.sock", &ss), 0);
	assert_int_equal(sun->sun_family, AF_UNIX);
	assert_string_equal(sun->sun_path, "/run/x.sock");
	assert_int_equal(parse("local:/a/b", &ss), 0);
	assert_string_equal(sun->sun_path, "/a/b");
	assert_int_equal(parse("/plain/path", &ss), 0);
	assert_int_equal(parse("unix:relative", &ss), -1);
	char longp[200] = "unix:/";
	memset(longp + 6, 'a', 150);
	longp[156] = '\0';
	assert_int_equal(parse(longp, &ss), -1);	/* over sun_path */
}

static void
test_inet(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	char buf[64];

	(void)state;
	assert_int_equal(parse("inet:127.0.0.1:8891", &ss), 0);	/* Postfix */
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 8891);
	assert_int_equal(parse("inet:8892@127.0.0.2", &ss), 0);	/* libmilter */
	assert_int_equal(ntohs(sin->sin_port), 8892);
	inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.2");
	assert_int_equal(parse("inet:[::1]:25", &ss), 0);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 25);
	assert_int_equal(parse("inet6:8891@::1", &ss), 0);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(parse("inet6:8891@127.0.0.1", &ss), -1);
}

static void
test_refused(void **state)
{
	static const char *const bad[] = {
	    "", "inet:", "inet:127.0.0.1", "inet:127.0.0.1:0",
	    "inet:127.0.0.1:65536", "inet:127.0.0.1:80x", "inet:::1:25",
	    "inet:localhost:25", "inet:25@localhost", "inet:@127.0.0.1",
	    "tcp:127.0.0.1:25", "inet:127.0.0.1:123456", "inet:[127.0.0.1:25",
	};
	struct sockaddr_storage ss;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &ss) != -1)
			fail_msg("accepted '%s'", bad[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unix),
		cmocka_unit_test(test_inet),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
