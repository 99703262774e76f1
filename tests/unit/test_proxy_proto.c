/*
 * test_proxy_proto.c - unit tests for proxy_proto.c: PROXY protocol v1
 * lines and v2 headers, partial input, and every refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <cmocka.h>

#include "proxy_proto.h"

static const unsigned char sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static enum proxy_result
parse_str(const char *s, struct proxy_hdr *h)
{
	const char *why;

	return proxy_parse((const unsigned char *)s, strlen(s), h, &why);
}

static const char *
src_text(const struct proxy_hdr *h, char *buf, size_t len, unsigned *port)
{
	const struct sockaddr_in *a = (const struct sockaddr_in *)&h->src;
	const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)&h->src;

	if (h->src.ss_family == AF_INET) {
		*port = ntohs(a->sin_port);
		return inet_ntop(AF_INET, &a->sin_addr, buf, (socklen_t)len);
	}
	*port = ntohs(b->sin6_port);
	return inet_ntop(AF_INET6, &b->sin6_addr, buf, (socklen_t)len);
}

static void
test_v1(void **state)
{
	struct proxy_hdr h;
	char buf[64];
	unsigned port;
	const char *l4 = "PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\nEHLO x";

	(void)state;
	assert_int_equal(parse_str(l4, &h), PROXY_OK);
	assert_int_equal(h.len, strlen(l4) - strlen("EHLO x"));
	assert_int_equal(h.version, 1);
	assert_false(h.local);
	assert_string_equal(src_text(&h, buf, sizeof(buf), &port),
	    "203.0.113.7");
	assert_int_equal(port, 40000);
	assert_int_equal(parse_str("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n",
	    &h), PROXY_OK);
	assert_string_equal(src_text(&h, buf, sizeof(buf), &port),
	    "2001:db8::1");
	assert_int_equal(port, 1);
	assert_int_equal(parse_str("PROXY UNKNOWN\r\n", &h), PROXY_OK);
	assert_true(h.local);
	assert_int_equal(parse_str("PROXY UNKNOWN a b c d\r\n", &h),
	    PROXY_OK);
	assert_true(h.local);
	/* partial */
	assert_int_equal(parse_str("", &h), PROXY_MORE);
	assert_int_equal(parse_str("PRO", &h), PROXY_MORE);
	assert_int_equal(parse_str("PROXY TCP4 203.0.113.7 19", &h),
	    PROXY_MORE);
}

static void
test_v1_bad(void **state)
{
	static const char *const bad[] = {
		"GET / HTTP/1.0\r\n",
		"proxy TCP4 203.0.113.7 192.0.2.1 1 2\r\n",
		"PROXY TCP4 203.0.113.7 192.0.2.1 1 2\n",
		"PROXY TCP4 203.0.113.7  192.0.2.1 1 2\r\n",
		"PROXY TCP4 203.0.113.7 192.0.2.1 1 2 \r\n",
		"PROXY TCP4 203.0.113.7 192.0.2.1 1 65536\r\n",
		"PROXY TCP4 203.0.113.7 192.0.2.1 01 2\r\n",
		"PROXY TCP4 203.0.113.7 192.0.2.1 -1 2\r\n",
		"PROXY TCP4 203.0.113.07 192.0.2.1 1 2\r\n",
		"PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n",
		"PROXY TCP6 203.0.113.7 ::1 1 2\r\n",
		"PROXY UDP4 203.0.113.7 192.0.2.1 1 2\r\n",
		"PROXY TCP4 203.0.113.7 192.0.2.1 1 2 3\r\n",
		"PROXY TCP4 203.0.113.7 192.0.2.1 1\r\n",
		"PROXY TCP4\r\n",
		"PROXY \r\n",
	};
	struct proxy_hdr h;
	char longline[200];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_str(bad[i], &h) != PROXY_BAD)
			fail_msg("accepted: %s", bad[i]);
	memset(longline, '1', sizeof(longline) - 1);
	memcpy(longline, "PROXY TCP4 ", 11);
	longline[sizeof(longline) - 1] = '\0';
	assert_int_equal(parse_str(longline, &h), PROXY_BAD);
	/* a NUL inside the line */
	assert_int_equal(proxy_parse((const unsigned char *)
	    "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33, &h,
	    &(const char *){ NULL }), PROXY_BAD);
}

static size_t
v2(unsigned char *b, unsigned vc, unsigned fam, const unsigned char *body,
    size_t n)
{
	memcpy(b, sig, 12);
	b[12] = (unsigned char)vc;
	b[13] = (unsigned char)fam;
	b[14] = (unsigned char)(n >> 8);
	b[15] = (unsigned char)n;
	memcpy(b + 16, body, n);
	return 16 + n;
}

static void
test_v2(void **state)
{
	unsigned char b[700], body[600];
	struct proxy_hdr h;
	const char *why;
	char buf[64];
	unsigned port;
	size_t n;

	(void)state;
	memset(body, 0, sizeof(body));
	memcpy(body, "\xcb\x00\x71\x07\xc0\x00\x02\x01\x9c\x40\x00\x19", 12);
	n = v2(b, 0x21, 0x11, body, 12);
	assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_OK);
	assert_int_equal(h.len, 28);
	assert_int_equal(h.version, 2);
	assert_string_equal(src_text(&h, buf, sizeof(buf), &port),
	    "203.0.113.7");
	assert_int_equal(port, 40000);
	/* every shorter prefix wants more */
	for (size_t k = 0; k < n; k++)
		assert_int_equal(proxy_parse(b, k, &h, &why), PROXY_MORE);
	/* TLVs after the addresses are skipped, and counted in len */
	n = v2(b, 0x21, 0x11, body, 20);
	assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_OK);
	assert_int_equal(h.len, 36);
	/* IPv6 */
	memset(body, 0, 36);
	body[0] = 0x20;
	body[1] = 0x01;
	body[15] = 9;
	n = v2(b, 0x21, 0x21, body, 36);
	assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_OK);
	assert_string_equal(src_text(&h, buf, sizeof(buf), &port),
	    "2001::9");
	/* LOCAL, with or without an address block */
	n = v2(b, 0x20, 0x00, body, 0);
	assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_OK);
	assert_true(h.local);
	n = v2(b, 0x20, 0x11, body, 12);
	assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_OK);
	assert_true(h.local);
	assert_int_equal(h.len, 28);
}

static void
test_v2_bad(void **state)
{
	unsigned char b[700], body[600] = { 0 };
	struct proxy_hdr h;
	const char *why;
	size_t n;

	(void)state;
	n = v2(b, 0x31, 0x11, body, 12);		/* version 3 */
	assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_BAD);
	n = v2(b, 0x22, 0x11, body, 12);		/* command 2 */
	assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_BAD);
	n = v2(b, 0x21, 0x12, body, 12);		/* UDP */
	assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_BAD);
	n = v2(b, 0x21, 0x31, body, 12);		/* unix */
	assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_BAD);
	n = v2(b, 0x21, 0x11, body, 8);			/* short block */
	assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_BAD);
	n = v2(b, 0x21, 0x21, body, 20);		/* short for v6 */
	assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_BAD);
	v2(b, 0x21, 0x11, body, 0);
	b[14] = 0x02;					/* 512 + 16 > max */
	b[15] = 0x01;
	assert_int_equal(proxy_parse(b, 16, &h, &why), PROXY_BAD);
	memcpy(b, sig, 12);
	b[7] = 'X';					/* signature */
	assert_int_equal(proxy_parse(b, 12, &h, &why), PROXY_BAD);
	assert_int_equal(proxy_parse(b, 7, &h, &why), PROXY_MORE);
	assert_non_null(why == NULL ? "" : why);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1),
		cmocka_unit_test(test_v1_bad),
		cmocka_unit_test(test_v2),
		cmocka_unit_test(test_v2_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
