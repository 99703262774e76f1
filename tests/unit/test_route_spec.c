/*
 * test_route_spec.c - unit tests for core/route_spec.c
 *
 * Every accepted form is checked field by field and against its canonical
 * text; every canonical text must parse back to the same struct (byte for
 * byte). Every rejected input has its own row with the exact reason, and
 * the limits (label and name length, port range, sun_path) are tested on
 * both sides of the line.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "route_spec.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

struct good_case {
	const char	*in;
	enum route_kind	 kind;
	int		 mx;
	int		 literal;
	int		 unix_socket;
	const char	*host;
	unsigned	 port;
	const char	*path;
	const char	*canonical;
};

struct bad_case {
	const char	*in;
	const char	*why;
};

static const struct good_case good[] = {
	{ "smtp", ROUTE_SMTP, 1, 0, 0, "", 25, "", "smtp" },
	{ "SMTP", ROUTE_SMTP, 1, 0, 0, "", 25, "", "smtp" },
	{ "smtp:example.net", ROUTE_SMTP, 1, 0, 0, "example.net", 25, "",
	    "smtp:example.net:25" },
	{ "smtp:example.net:2525", ROUTE_SMTP, 1, 0, 0, "example.net", 2525,
	    "", "smtp:example.net:2525" },
	{ "Smtp:Example.NET.", ROUTE_SMTP, 1, 0, 0, "example.net", 25, "",
	    "smtp:example.net:25" },
	{ "smtp:localhost", ROUTE_SMTP, 1, 0, 0, "localhost", 25, "",
	    "smtp:localhost:25" },
	{ "smtp:[mx.example.net]", ROUTE_SMTP, 0, 0, 0, "mx.example.net", 25,
	    "", "smtp:[mx.example.net]:25" },
	{ "smtp:[MX.example.net.]:587", ROUTE_SMTP, 0, 0, 0,
	    "mx.example.net", 587, "", "smtp:[mx.example.net]:587" },
	{ "smtp:[192.0.2.1]", ROUTE_SMTP, 0, 1, 0, "192.0.2.1", 25, "",
	    "smtp:[192.0.2.1]:25" },
	{ "smtp:[192.0.2.1]:2525", ROUTE_SMTP, 0, 1, 0, "192.0.2.1", 2525, "",
	    "smtp:[192.0.2.1]:2525" },
	{ "smtp:[::1]:2525", ROUTE_SMTP, 0, 1, 0, "::1", 2525, "",
	    "smtp:[::1]:2525" },
	{ "smtp:[IPv6:2001:DB8:0:0::1]", ROUTE_SMTP, 0, 1, 0, "2001:db8::1",
	    25, "", "smtp:[2001:db8::1]:25" },
	{ "smtp:[ipv6:::ffff:192.0.2.1]:1", ROUTE_SMTP, 0, 1, 0,
	    "::ffff:192.0.2.1", 1, "", "smtp:[::ffff:192.0.2.1]:1" },
	{ "smtp:[0:0:0:0:0:0:0:1]:65535", ROUTE_SMTP, 0, 1, 0, "::1", 65535,
	    "", "smtp:[::1]:65535" },
	{ "smtp:a-b.x1.example", ROUTE_SMTP, 1, 0, 0, "a-b.x1.example", 25,
	    "", "smtp:a-b.x1.example:25" },
	{ "smtp:1.2.3.example", ROUTE_SMTP, 1, 0, 0, "1.2.3.example", 25, "",
	    "smtp:1.2.3.example:25" },
	{ "lmtp:[127.0.0.1]:24", ROUTE_LMTP, 0, 1, 0, "127.0.0.1", 24, "",
	    "lmtp:[127.0.0.1]:24" },
	{ "lmtp:[127.0.0.1]", ROUTE_LMTP, 0, 1, 0, "127.0.0.1", 24, "",
	    "lmtp:[127.0.0.1]:24" },
	{ "lmtp:[dovecot.internal]:2424", ROUTE_LMTP, 0, 0, 0,
	    "dovecot.internal", 2424, "", "lmtp:[dovecot.internal]:2424" },
	{ "LMTP:Dovecot:2424", ROUTE_LMTP, 0, 0, 0, "dovecot", 2424, "",
	    "lmtp:[dovecot]:2424" },
	{ "lmtp:dovecot", ROUTE_LMTP, 0, 0, 0, "dovecot", 24, "",
	    "lmtp:[dovecot]:24" },
	{ "lmtp:[::1]:24", ROUTE_LMTP, 0, 1, 0, "::1", 24, "",
	    "lmtp:[::1]:24" },
	{ "lmtp:unix:/run/dovecot/lmtp", ROUTE_LMTP, 0, 0, 1, "", 0,
	    "/run/dovecot/lmtp", "lmtp:unix:/run/dovecot/lmtp" },
	{ "lmtp:UNIX:/a b:c", ROUTE_LMTP, 0, 0, 1, "", 0, "/a b:c",
	    "lmtp:unix:/a b:c" },
	{ "lmtp:[unix]:24", ROUTE_LMTP, 0, 0, 0, "unix", 24, "",
	    "lmtp:[unix]:24" },
	{ "maildir", ROUTE_MAILDIR, 0, 0, 0, "", 0, "", "maildir" },
	{ "MailDir", ROUTE_MAILDIR, 0, 0, 0, "", 0, "", "maildir" },
	{ "discard", ROUTE_DISCARD, 0, 0, 0, "", 0, "", "discard" },
	{ "DISCARD", ROUTE_DISCARD, 0, 0, 0, "", 0, "", "discard" },
};

static const struct bad_case bad[] = {
	{ "", "empty route" },
	{ "smtpx", "unknown route type: expected smtp, lmtp, maildir or "
	    "discard" },
	{ "esmtp:example.net", "unknown route type: expected smtp, lmtp, "
	    "maildir or discard" },
	{ " smtp", "unknown route type: expected smtp, lmtp, maildir or "
	    "discard" },
	{ "smtp ", "unknown route type: expected smtp, lmtp, maildir or "
	    "discard" },
	{ ":example.net", "unknown route type: expected smtp, lmtp, maildir "
	    "or discard" },
	{ "relay", "unknown route type: expected smtp, lmtp, maildir or "
	    "discard" },
	{ "maildir:", "nothing may follow maildir or discard" },
	{ "maildir:/var/mail", "nothing may follow maildir or discard" },
	{ "discard:x", "nothing may follow maildir or discard" },
	{ "smtp:", "missing host after ':'" },
	{ "smtp::25", "missing host" },
	{ "smtp:.", "missing host" },
	{ "smtp:[]", "missing host" },
	{ "smtp:[]:25", "missing host" },
	{ "smtp:[.]", "invalid address literal" },
	{ "smtp:..", "empty label in host name" },
	{ "smtp:a..b", "empty label in host name" },
	{ "smtp:.example.net", "empty label in host name" },
	{ "smtp:example.net..", "empty label in host name" },
	{ "smtp:-a.example", "host name label starts or ends with '-'" },
	{ "smtp:a-.example", "host name label starts or ends with '-'" },
	{ "smtp:ex_ample.net", "invalid character in host name" },
	{ "smtp:ex ample.net", "invalid character in host name" },
	{ "smtp:exämple.net", "invalid character in host name" },
	{ "smtp:example.net\t", "invalid character in host name" },
	{ "smtp:*.example.net", "invalid character in host name" },
	{ "smtp:example.123", "numeric top-level label in host name" },
	{ "smtp:[example.123]", "numeric top-level label in host name" },
	{ "smtp:192.0.2.1", "address literal needs brackets" },
	{ "smtp:192.0.2.1:25", "address literal needs brackets" },
	{ "smtp:192.0.2.256", "invalid IPv4 address" },
	{ "smtp:1234", "invalid IPv4 address" },
	{ "smtp:[192.0.2.256]", "invalid address literal" },
	{ "smtp:[192.0.2]", "invalid address literal" },
	{ "smtp:[192.0.2.01]", "invalid address literal" },
	{ "smtp:[1.2.3.4.5]", "invalid address literal" },
	{ "smtp:[::g]", "invalid address literal" },
	{ "smtp:[:::1]", "invalid address literal" },
	{ "smtp:[fe80::1%eth0]", "invalid address literal" },
	{ "smtp:[IPv6:192.0.2.1]", "invalid IPv6 address" },
	{ "smtp:[IPv6:]", "invalid IPv6 address" },
	{ "smtp:[IPv4:192.0.2.1]", "invalid address literal" },
	{ "smtp:[::1", "missing ']'" },
	{ "smtp:[example.net", "missing ']'" },
	{ "smtp:[example.net]25", "unexpected text after ']'" },
	{ "smtp:[example.net]]", "unexpected text after ']'" },
	{ "smtp:[example.net] :25", "unexpected text after ']'" },
	{ "smtp:[[example.net]]", "invalid character in host name" },
	{ "smtp:::1", "too many ':' (IPv6 addresses go in brackets)" },
	{ "smtp:2001:db8::1", "too many ':' (IPv6 addresses go in "
	    "brackets)" },
	{ "smtp:example.net:25:26", "too many ':' (IPv6 addresses go in "
	    "brackets)" },
	{ "smtp:example.net:", "missing port after ':'" },
	{ "smtp:[::1]:", "missing port after ':'" },
	{ "smtp:example.net:0", "port out of range" },
	{ "smtp:example.net:65536", "port out of range" },
	{ "smtp:example.net:99999", "port out of range" },
	{ "smtp:example.net:100000", "port out of range" },
	{ "smtp:[::1]:4294967321", "port out of range" },
	{ "smtp:example.net:025", "invalid port" },
	{ "smtp:example.net:00", "invalid port" },
	{ "smtp:example.net:+25", "invalid port" },
	{ "smtp:example.net:-25", "invalid port" },
	{ "smtp:example.net: 25", "invalid port" },
	{ "smtp:example.net:25 ", "invalid port" },
	{ "smtp:example.net:0x19", "invalid port" },
	{ "smtp:example.net:smtp", "invalid port" },
	{ "smtp:[::1]:2.5", "invalid port" },
	{ "smtp:unix:/run/x", "invalid port" },
	{ "lmtp", "lmtp needs [host]:port, host:port or unix:/path" },
	{ "LMTP", "lmtp needs [host]:port, host:port or unix:/path" },
	{ "lmtp:", "missing host after ':'" },
	{ "lmtp:unix:", "missing unix socket path" },
	{ "lmtp:unix:run/lmtp", "unix socket path must be absolute" },
	{ "lmtp:unix:./lmtp", "unix socket path must be absolute" },
	{ "lmtp:unix: /run/lmtp", "unix socket path must be absolute" },
	{ "lmtp:unix:/run/\tlmtp", "control character in unix socket path" },
	{ "lmtp:unix:/run/lmtp\n", "control character in unix socket path" },
	{ "lmtp:unix:/run/\x7flmtp", "control character in unix socket "
	    "path" },
	{ "lmtp:unix", "missing unix socket path" },
	{ "lmtp:Unix", "missing unix socket path" },
	{ "lmtp:unix:24", "unix socket path must be absolute" },
	{ "lmtp:[127.0.0.1]:0", "port out of range" },
	{ "lmtp:127.0.0.1:24", "address literal needs brackets" },
	{ "lmtp:[127.0.0.1]:x", "invalid port" },
	{ "lmtp:[dovecot", "missing ']'" },
};

static void
assert_fields(const struct good_case *c, const struct route_spec *r)
{
	if (r->kind != c->kind || r->mx != c->mx ||
	    r->literal != c->literal || r->unix_socket != c->unix_socket ||
	    strcmp(r->host, c->host) != 0 || r->port != c->port ||
	    strcmp(r->path, c->path) != 0)
		fail_msg("'%s': kind %d mx %d literal %d unix %d host '%s' "
		    "port %u path '%s'", c->in, r->kind, r->mx, r->literal,
		    r->unix_socket, r->host, (unsigned)r->port, r->path);
}

static void
test_parse_good(void **state)
{
	struct route_spec	 r;
	const char		*why;
	size_t			 i;

	(void)state;
	for (i = 0; i < NITEMS(good); i++) {
		why = NULL;
		memset(&r, 0x5a, sizeof(r));
		if (route_spec_parse(good[i].in, &r, &why) != 0)
			fail_msg("'%s' rejected: %s", good[i].in, why);
		assert_fields(&good[i], &r);
	}
}

static void
test_format_canonical(void **state)
{
	struct route_spec	 r;
	char			 buf[ROUTE_SPEC_LEN];
	size_t			 i;

	(void)state;
	for (i = 0; i < NITEMS(good); i++) {
		assert_int_equal(route_spec_parse(good[i].in, &r, NULL), 0);
		route_spec_format(&r, buf, sizeof(buf));
		if (strcmp(buf, good[i].canonical) != 0)
			fail_msg("'%s' formats as '%s', want '%s'", good[i].in,
			    buf, good[i].canonical);
	}
}

/* parse(format(parse(x))) == parse(x), and the canonical text is stable */
static void
test_round_trip(void **state)
{
	struct route_spec	 a, b;
	char			 t1[ROUTE_SPEC_LEN], t2[ROUTE_SPEC_LEN];
	const char		*why = NULL;
	size_t			 i;

	(void)state;
	for (i = 0; i < NITEMS(good); i++) {
		memset(&a, 0x11, sizeof(a));
		memset(&b, 0x22, sizeof(b));
		assert_int_equal(route_spec_parse(good[i].in, &a, NULL), 0);
		route_spec_format(&a, t1, sizeof(t1));
		if (route_spec_parse(t1, &b, &why) != 0)
			fail_msg("canonical '%s' of '%s' rejected: %s", t1,
			    good[i].in, why);
		if (memcmp(&a, &b, sizeof(a)) != 0)
			fail_msg("'%s' and its canonical '%s' differ",
			    good[i].in, t1);
		route_spec_format(&b, t2, sizeof(t2));
		assert_string_equal(t1, t2);
	}
}

static void
test_parse_bad(void **state)
{
	struct route_spec	 r, saved;
	const char		*why;
	size_t			 i;

	(void)state;
	memset(&saved, 0x5a, sizeof(saved));
	for (i = 0; i < NITEMS(bad); i++) {
		why = NULL;
		r = saved;
		if (route_spec_parse(bad[i].in, &r, &why) != -1)
			fail_msg("'%s' accepted", bad[i].in);
		if (why == NULL || strcmp(why, bad[i].why) != 0)
			fail_msg("'%s': reason '%s', want '%s'", bad[i].in,
			    why ? why : "(null)", bad[i].why);
		/* a failed parse leaves the output alone */
		assert_memory_equal(&r, &saved, sizeof(r));
	}
	why = NULL;
	assert_int_equal(route_spec_parse(NULL, &r, &why), -1);
	assert_string_equal(why, "empty route");
	/* why may be NULL */
	assert_int_equal(route_spec_parse("bogus", &r, NULL), -1);
}

static void
make_name(char *buf, size_t len, size_t labels, size_t label_len,
    size_t last_len)
{
	size_t	 i, n = 0;

	for (i = 0; i < labels; i++) {
		memset(buf + n, 'a' + (char)(i % 26), i + 1 < labels ?
		    label_len : last_len);
		n += i + 1 < labels ? label_len : last_len;
		if (i + 1 < labels)
			buf[n++] = '.';
	}
	assert_true(n < len);
	buf[n] = '\0';
}

static void
expect_parse(const char *in, const char *want_why)
{
	struct route_spec	 r;
	const char		*why = NULL;
	int			 rc;

	rc = route_spec_parse(in, &r, &why);
	if (want_why == NULL && rc != 0)
		fail_msg("'%.40s...' rejected: %s", in, why);
	if (want_why != NULL && (rc != -1 || strcmp(why, want_why) != 0))
		fail_msg("'%.40s...': rc %d reason '%s', want '%s'", in, rc,
		    rc ? why : "", want_why);
}

static void
test_name_limits(void **state)
{
	char			 name[400], in[420];
	struct route_spec	 r;

	(void)state;
	/* 63-character label fine, 64 not */
	make_name(name, sizeof(name), 2, 63, 7);
	snprintf(in, sizeof(in), "smtp:%s", name);
	expect_parse(in, NULL);
	make_name(name, sizeof(name), 2, 64, 7);
	snprintf(in, sizeof(in), "smtp:%s", name);
	expect_parse(in, "host name label longer than 63");
	snprintf(in, sizeof(in), "smtp:[%s]", name);
	expect_parse(in, "host name label longer than 63");

	/* 253 characters fine (also with the final dot), 254 not */
	make_name(name, sizeof(name), 4, 63, 61);
	assert_int_equal(strlen(name), 253);
	snprintf(in, sizeof(in), "smtp:%s", name);
	expect_parse(in, NULL);
	snprintf(in, sizeof(in), "smtp:[%s.]:25", name);
	expect_parse(in, NULL);
	assert_int_equal(route_spec_parse(in, &r, NULL), 0);
	assert_int_equal(strlen(r.host), 253);
	make_name(name, sizeof(name), 4, 63, 62);
	snprintf(in, sizeof(in), "smtp:%s", name);
	expect_parse(in, "host name longer than 253");
	snprintf(in, sizeof(in), "lmtp:[%s.]", name);
	expect_parse(in, "host name longer than 253");
	make_name(name, sizeof(name), 6, 63, 63);
	snprintf(in, sizeof(in), "smtp:%s", name);
	expect_parse(in, "host name longer than 253");
}

static void
test_port_limits(void **state)
{
	struct route_spec	 r;

	(void)state;
	assert_int_equal(route_spec_parse("smtp:a.example:1", &r, NULL), 0);
	assert_int_equal(r.port, 1);
	assert_int_equal(route_spec_parse("smtp:[a.example]:65535", &r, NULL),
	    0);
	assert_int_equal(r.port, 65535);
	expect_parse("smtp:a.example:65536", "port out of range");
	expect_parse("lmtp:[::1]:0", "port out of range");
}

static void
test_path_limits(void **state)
{
	char			 path[ROUTE_PATH_LEN + 1], in[ROUTE_SPEC_LEN];
	char			 out[ROUTE_SPEC_LEN];
	struct route_spec	 r;

	(void)state;
	/* 107 bytes and the NUL fill sun_path exactly */
	memset(path, 'p', ROUTE_PATH_LEN - 1);
	path[0] = '/';
	path[ROUTE_PATH_LEN - 1] = '\0';
	snprintf(in, sizeof(in), "lmtp:unix:%s", path);
	assert_int_equal(route_spec_parse(in, &r, NULL), 0);
	assert_string_equal(r.path, path);
	route_spec_format(&r, out, sizeof(out));
	assert_string_equal(out, in);
	path[ROUTE_PATH_LEN - 1] = 'p';
	path[ROUTE_PATH_LEN] = '\0';
	snprintf(in, sizeof(in), "lmtp:unix:%s", path);
	expect_parse(in, "unix socket path too long");
	expect_parse("lmtp:unix:/", NULL);
}

/* Short buffers get a cut, terminated text; a zero length writes nothing. */
static void
test_format_buffers(void **state)
{
	struct route_spec	 r;
	char			 buf[16];

	(void)state;
	assert_int_equal(route_spec_parse("smtp:[192.0.2.1]:2525", &r, NULL),
	    0);
	memset(buf, 'x', sizeof(buf));
	route_spec_format(&r, buf, 8);
	assert_string_equal(buf, "smtp:[1");
	assert_int_equal(buf[8], 'x');
	memset(buf, 'x', sizeof(buf));
	route_spec_format(&r, buf, 1);
	assert_string_equal(buf, "");
	memset(buf, 'x', sizeof(buf));
	route_spec_format(&r, buf, 0);
	assert_int_equal(buf[0], 'x');

	/* an unknown kind formats as nothing */
	memset(&r, 0, sizeof(r));
	r.kind = (enum route_kind)99;
	route_spec_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

int
main(void)
{
	const struct CMUnitTest	 tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_format_canonical),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_name_limits),
		cmocka_unit_test(test_port_limits),
		cmocka_unit_test(test_path_limits),
		cmocka_unit_test(test_format_buffers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
