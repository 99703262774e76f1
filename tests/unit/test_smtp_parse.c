/*
 * test_smtp_parse.c - unit tests for the pure SMTP parsers: command lines
 * (smtp_cmd.c), paths and addresses (smtp_addr.c) and ESMTP parameters
 * (smtp_params.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "smtp_addr.h"
#include "smtp_cmd.h"
#include "smtp_params.h"

/* parse - run smtp_cmd_parse on a copy of s */
static const char *
parse(const char *s, size_t len, struct smtp_cmd *cmd, char *buf)
{
	memcpy(buf, s, len);
	buf[len] = '\0';
	return smtp_cmd_parse(buf, len, cmd);
}

static void
test_cmd_verbs(void **state)
{
	struct smtp_cmd c;
	char buf[256];

	(void)state;
	assert_null(parse("EHLO client.example\r", 20, &c, buf));
	assert_int_equal(c.verb, CMD_EHLO);
	assert_string_equal(c.args, "client.example");
	assert_null(parse("mail FROM:<a@b>", 15, &c, buf));
	assert_int_equal(c.verb, CMD_MAIL);
	assert_string_equal(c.name, "MAIL");
	assert_null(parse("  QUIT  ", 8, &c, buf));
	assert_int_equal(c.verb, CMD_QUIT);
	assert_string_equal(c.args, "");
	assert_null(parse("DATAX", 5, &c, buf));
	assert_int_equal(c.verb, CMD_UNKNOWN);
	assert_null(parse("GET / HTTP/1.0", 14, &c, buf));
	assert_int_equal(c.verb, CMD_HTTP);
	assert_null(parse("bdat 10 LAST", 12, &c, buf));
	assert_int_equal(c.verb, CMD_BDAT);
	assert_string_equal(c.args, "10 LAST");
}

static void
test_cmd_bad_lines(void **state)
{
	struct smtp_cmd c;
	char buf[256];

	(void)state;
	assert_string_equal(parse("", 0, &c, buf),
	    "500 5.5.2 Error: empty command");
	assert_string_equal(parse("   \r", 4, &c, buf),
	    "500 5.5.2 Error: empty command");
	assert_string_equal(parse("NOOP\0x", 6, &c, buf),
	    "500 5.5.2 NUL byte in command");
	assert_string_equal(parse("NO\rOP", 5, &c, buf),
	    "500 5.5.2 Bare CR in command");
}

static void
test_cmd_path_arg(void **state)
{
	char a[] = "FROM:<x@y>", b[] = "from:   <x@y> SIZE=1", c[] = "FROM<x@y>";

	(void)state;
	assert_string_equal(smtp_cmd_path_arg(a, "FROM:"), "<x@y>");
	assert_string_equal(smtp_cmd_path_arg(b, "FROM:"), "<x@y> SIZE=1");
	assert_null(smtp_cmd_path_arg(c, "FROM:"));
}

/* path_ok - parse and return the formatted address */
static const char *
path_ok(const char *s, int flags)
{
	static char out[ADDR_PATH_MAX + 1];
	struct mailaddr a;
	const char *reply = NULL;
	size_t n = smtp_addr_parse_path(s, flags, &a, &reply);

	if (n == 0)
		fail_msg("refused %s: %s", s, reply);
	smtp_addr_format(&a, out, sizeof(out));
	return out;
}

static const char *
path_bad(const char *s, int flags)
{
	struct mailaddr a;
	const char *reply = NULL;

	if (smtp_addr_parse_path(s, flags, &a, &reply) != 0)
		fail_msg("accepted %s", s);
	return reply;
}

static void
test_addr_valid(void **state)
{
	(void)state;
	assert_string_equal(path_ok("<alice@example.test>", 0),
	    "alice@example.test");
	assert_string_equal(path_ok("<Alice.B+tag@Example.TEST>", 0),
	    "Alice.B+tag@example.test");
	assert_string_equal(path_ok("<\"john doe\"@example.test>", 0),
	    "\"john doe\"@example.test");
	assert_string_equal(path_ok("<\"a\\\"b\"@example.test>", 0),
	    "\"a\\\"b\"@example.test");
	assert_string_equal(path_ok("<a@[192.0.2.1]>", 0), "a@[192.0.2.1]");
	assert_string_equal(path_ok("<a@[IPv6:2001:db8::1]>", 0),
	    "a@[ipv6:2001:db8::1]");
	assert_string_equal(path_ok("<>", ADDR_ALLOW_NULL), "");
	assert_string_equal(path_ok("<PostMaster>", ADDR_POSTMASTER),
	    "PostMaster");
	assert_string_equal(path_ok("<j\xc3\xb6rg@b\xc3\xbc" "cher.example>",
	    ADDR_UTF8), "j\xc3\xb6rg@b\xc3\xbc" "cher.example");
}

static void
test_addr_consumed(void **state)
{
	struct mailaddr a;
	const char *reply;

	(void)state;
	assert_int_equal(smtp_addr_parse_path("<a@b.example> SIZE=10", 0, &a,
	    &reply), 13);
	assert_int_equal(smtp_addr_parse_path("<> BODY=8BITMIME",
	    ADDR_ALLOW_NULL, &a, &reply), 2);
}

static void
test_addr_invalid(void **state)
{
	char big[400];

	(void)state;
	assert_string_equal(path_bad("alice@example.test", 0),
	    "501 5.5.4 Syntax: RCPT TO:<address>");
	assert_string_equal(path_bad("alice@example.test", ADDR_SENDER),
	    "501 5.5.4 Syntax: MAIL FROM:<address>");
	assert_string_equal(path_bad("<a@example.test.>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<a@example.test.>", ADDR_SENDER),
	    "501 5.1.7 Bad sender address syntax");
	assert_string_equal(path_bad("<a..b@example.test>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<.a@example.test>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<a@-x.test>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<a@x..test>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<a@b@c.test>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<a@example.test", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<@relay.test:a@example.test>", 0),
	    "553 5.1.3 Source routes are not accepted");
	assert_string_equal(path_bad("<>", 0),
	    "501 5.1.3 Null recipient not allowed");
	assert_string_equal(path_bad("<postmaster>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<a@[300.1.1.1]>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<j\xc3\xb6rg@example.test>", 0),
	    "553 5.6.7 Non-ASCII address requires SMTPUTF8");
	assert_string_equal(path_bad("<j\xc3rg@example.test>", ADDR_UTF8),
	    "501 5.1.3 Bad recipient address syntax");	/* broken UTF-8 */
	assert_string_equal(path_bad("<\"a\tb\"@example.test>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	/* local part of 65 octets */
	snprintf(big, sizeof(big), "<%065d@example.test>", 0);
	assert_string_equal(path_bad(big, 0),
	    "501 5.1.3 Recipient address too long");
	/* a 64-octet local part is fine */
	snprintf(big, sizeof(big), "<%064d@example.test>", 0);
	path_ok(big, 0);
	/* a path over 256 octets */
	snprintf(big, sizeof(big), "<a@%s.%s.%s.%s.test>",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_string_equal(path_bad(big, 0),
	    "501 5.1.3 Recipient address too long");
	/* a DNS label over 63 octets */
	snprintf(big, sizeof(big), "<a@%064d.test>", 0);
	assert_string_equal(path_bad(big, 0),
	    "501 5.1.3 Bad recipient address syntax");
}

/*
 * test_addr_relay_tricks - the open-relay address tricks: "%", "!" and a
 * quoted "@" stay in the local part (the domain is the one after the last
 * unquoted "@"), literals are flagged, source routes, trailing dots and a
 * second "@" are refused, and text glued after the ">" is not consumed.
 */
static void
test_addr_relay_tricks(void **state)
{
	struct mailaddr a;
	const char *reply;

	(void)state;
	assert_true(smtp_addr_parse_path("<user%remote.test@example.test>", 0,
	    &a, &reply));
	assert_string_equal(a.local, "user%remote.test");
	assert_string_equal(a.domain, "example.test");
	assert_false(a.literal);
	assert_true(smtp_addr_parse_path("<remote.test!user@example.test>", 0,
	    &a, &reply));
	assert_string_equal(a.local, "remote.test!user");
	assert_string_equal(a.domain, "example.test");
	assert_true(smtp_addr_parse_path("<\"user@remote.test\"@Example.TEST>",
	    0, &a, &reply));
	assert_string_equal(a.local, "\"user@remote.test\"");
	assert_string_equal(a.domain, "example.test");
	assert_true(smtp_addr_parse_path("<user@[192.0.2.99]>", 0, &a, &reply));
	assert_true(a.literal);
	assert_string_equal(a.domain, "[192.0.2.99]");
	assert_true(smtp_addr_parse_path("<user@[IPv6:2001:db8::1]>", 0, &a,
	    &reply));
	assert_true(a.literal);
	/* the "<a@b.test>" of "<a@b.test>@c.test" is all that is taken */
	assert_int_equal(smtp_addr_parse_path("<user@remote.test>@example.test",
	    0, &a, &reply), 18);
	assert_string_equal(path_bad("<@example.test:user@remote.test>", 0),
	    "553 5.1.3 Source routes are not accepted");
	assert_string_equal(path_bad("<@a.test,@b.test:user@remote.test>", 0),
	    "553 5.1.3 Source routes are not accepted");
	assert_string_equal(path_bad("<@example.test:user@remote.test>",
	    ADDR_SENDER), "553 5.1.3 Source routes are not accepted");
	assert_string_equal(path_bad("<user@remote.test.>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<user@example.test@remote.test>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<user%remote.test>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<remote.test!user>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<\"user@remote.test\">", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<\"user@remote.test\\\"@example.test>",
	    0), "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<user@remote.test%example.test>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<user@[remote.test]>", 0),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(path_bad("<user@[192.0.2.99].>", 0),
	    "501 5.1.3 Bad recipient address syntax");
}

static void
test_addr_lookup_key(void **state)
{
	struct mailaddr a;
	const char *reply;
	char key[ADDR_PATH_MAX + 1];

	(void)state;
	assert_true(smtp_addr_parse_path("<ALICE@Example.TEST>", 0, &a, &reply));
	smtp_addr_lookup_key(&a, key, sizeof(key));
	assert_string_equal(key, "alice@example.test");
	assert_true(smtp_addr_parse_path("<\"Alice\"@example.test>", 0, &a,
	    &reply));
	smtp_addr_lookup_key(&a, key, sizeof(key));
	assert_string_equal(key, "alice@example.test");
	assert_true(smtp_addr_parse_path("<\"a b\"@example.test>", 0, &a,
	    &reply));
	smtp_addr_lookup_key(&a, key, sizeof(key));
	assert_string_equal(key, "\"a b\"@example.test");
}

static const char *
mail_params(const char *s, struct mail_params *mp)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "%s", s);
	return smtp_params_mail(buf, mp);
}

static const char *
rcpt_params(const char *s, int utf8, struct rcpt_params *rp)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "%s", s);
	return smtp_params_rcpt(buf, utf8, rp);
}

static void
test_params_mail(void **state)
{
	struct mail_params mp;

	(void)state;
	assert_null(mail_params("", &mp));
	assert_false(mp.has_size);
	assert_null(mail_params("SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS "
	    "ENVID=QQ+2B1", &mp));
	assert_true(mp.has_size);
	assert_int_equal(mp.size, 1000);
	assert_int_equal(mp.body, BODY_8BITMIME);
	assert_true(mp.smtputf8);
	assert_int_equal(mp.ret, RET_HDRS);
	assert_string_equal(mp.envid, "QQ+2B1");
	assert_null(mail_params("size=5 body=7bit ret=full", &mp));
	assert_int_equal(mp.body, BODY_7BIT);
	assert_int_equal(mp.ret, RET_FULL);
	assert_null(mail_params("SIZE=99999999999999999999999", &mp));
	assert_int_equal(mp.size, UINT64_MAX);
	assert_null(mail_params("AUTH=<>", &mp));
	assert_true(mp.has_auth);
	assert_null(mail_params("AUTH=user+40example.test SIZE=1", &mp));
	assert_true(mp.has_auth);
}

static void
test_params_mail_bad(void **state)
{
	struct mail_params mp;
	char envid[200];

	(void)state;
	assert_string_equal(mail_params("FOO=1", &mp),
	    "555 5.5.4 Unsupported parameter");
	assert_string_equal(mail_params("AUTH", &mp),
	    "501 5.5.4 Bad AUTH value");
	assert_string_equal(mail_params("AUTH=<> AUTH=<>", &mp),
	    "501 5.5.4 Duplicate parameter");
	assert_string_equal(mail_params("AUTH=a+2", &mp),
	    "501 5.5.4 Bad AUTH value");
	assert_string_equal(mail_params("SIZE=1 SIZE=2", &mp),
	    "501 5.5.4 Duplicate parameter");
	assert_string_equal(mail_params("SIZE=", &mp),
	    "501 5.5.4 Bad parameter syntax");
	assert_string_equal(mail_params("SIZE=12a", &mp),
	    "501 5.5.4 Bad SIZE value");
	assert_string_equal(mail_params("SIZE", &mp),
	    "501 5.5.4 Bad SIZE value");
	assert_string_equal(mail_params("BODY=BINARYMIME", &mp),
	    "501 5.5.4 Unsupported BODY type (7BIT or 8BITMIME)");
	assert_string_equal(mail_params("RET=ALL", &mp),
	    "501 5.5.4 Bad RET value (FULL or HDRS)");
	assert_string_equal(mail_params("SMTPUTF8=yes", &mp),
	    "501 5.5.4 Bad parameter syntax");
	assert_string_equal(mail_params("ENVID=a+ZZ", &mp),
	    "501 5.5.4 Bad ENVID value");
	assert_string_equal(mail_params("ENVID=a+2", &mp),
	    "501 5.5.4 Bad ENVID value");
	assert_string_equal(mail_params("ENVID=a+2b", &mp),
	    "501 5.5.4 Bad ENVID value");	/* hex must be upper case */
	memset(envid, 'x', sizeof(envid));
	memcpy(envid, "ENVID=", 6);
	envid[6 + 101] = '\0';
	assert_string_equal(mail_params(envid, &mp),
	    "501 5.5.4 Bad ENVID value");
	envid[6 + 100] = '\0';
	assert_null(mail_params(envid, &mp));
	assert_string_equal(mail_params("-X=1", &mp),
	    "501 5.5.4 Bad parameter syntax");
	assert_string_equal(mail_params("SIZE=1\x01", &mp),
	    "501 5.5.4 Bad parameter syntax");
}

static void
test_params_rcpt(void **state)
{
	struct rcpt_params rp;

	(void)state;
	assert_null(rcpt_params("NOTIFY=SUCCESS,FAILURE,DELAY "
	    "ORCPT=rfc822;bob+40example.test", 0, &rp));
	assert_int_equal(rp.notify, NOTIFY_SUCCESS | NOTIFY_FAILURE |
	    NOTIFY_DELAY);
	assert_string_equal(rp.orcpt, "rfc822;bob+40example.test");
	assert_null(rcpt_params("notify=never", 0, &rp));
	assert_int_equal(rp.notify, NOTIFY_NEVER);
	assert_null(rcpt_params("ORCPT=utf-8;j\xc3\xb6rg@example.test", 1,
	    &rp));
	assert_string_equal(rcpt_params("NOTIFY=NEVER,SUCCESS", 0, &rp),
	    "501 5.5.4 Bad NOTIFY value");
	assert_string_equal(rcpt_params("NOTIFY=SUCCESS,SUCCESS", 0, &rp),
	    "501 5.5.4 Bad NOTIFY value");
	assert_string_equal(rcpt_params("NOTIFY=SUCCESS,,DELAY", 0, &rp),
	    "501 5.5.4 Bad NOTIFY value");
	assert_string_equal(rcpt_params("NOTIFY=SOMETIMES", 0, &rp),
	    "501 5.5.4 Bad NOTIFY value");
	assert_string_equal(rcpt_params("ORCPT=bob@example.test", 0, &rp),
	    "501 5.5.4 Bad ORCPT value");
	assert_string_equal(rcpt_params("ORCPT=rfc822;", 0, &rp),
	    "501 5.5.4 Bad ORCPT value");
	assert_string_equal(rcpt_params("ORCPT=rfc822;a+4", 0, &rp),
	    "501 5.5.4 Bad ORCPT value");
	assert_string_equal(rcpt_params("ORCPT=utf-8;j\xc3\xb6rg", 0, &rp),
	    "501 5.5.4 Bad parameter syntax");
	assert_string_equal(rcpt_params("NOTIFY=DELAY NOTIFY=DELAY", 0, &rp),
	    "501 5.5.4 Duplicate parameter");
	assert_string_equal(rcpt_params("SIZE=10", 0, &rp),
	    "555 5.5.4 Unsupported parameter");
}

static void
test_xtext(void **state)
{
	char buf[64];

	(void)state;
	assert_true(xtext_valid("abc+2Bdef", 9));
	assert_false(xtext_valid("a=b", 3));
	assert_false(xtext_valid("a b", 3));
	assert_false(xtext_valid("a+", 2));
	assert_int_equal(xtext_decode("a+2Bb+3D", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "a+b=");
	assert_int_equal(xtext_decode("abcdef", buf, 4), -1);
	assert_int_equal(xtext_decode("+G0", buf, sizeof(buf)), -1);
}

static void
test_param_names(void **state)
{
	char buf[64];

	(void)state;
	assert_null(smtp_body_name(BODY_UNSPEC));
	assert_string_equal(smtp_body_name(BODY_8BITMIME), "8BITMIME");
	assert_null(smtp_ret_name(RET_UNSPEC));
	assert_string_equal(smtp_ret_name(RET_HDRS), "HDRS");
	assert_string_equal(smtp_notify_text(NOTIFY_NEVER, buf, sizeof(buf)),
	    "NEVER");
	assert_string_equal(smtp_notify_text(NOTIFY_SUCCESS | NOTIFY_DELAY,
	    buf, sizeof(buf)), "SUCCESS,DELAY");
	assert_string_equal(smtp_notify_text(0, buf, sizeof(buf)), "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd_verbs),
		cmocka_unit_test(test_cmd_bad_lines),
		cmocka_unit_test(test_cmd_path_arg),
		cmocka_unit_test(test_addr_valid),
		cmocka_unit_test(test_addr_consumed),
		cmocka_unit_test(test_addr_invalid),
		cmocka_unit_test(test_addr_relay_tricks),
		cmocka_unit_test(test_addr_lookup_key),
		cmocka_unit_test(test_params_mail),
		cmocka_unit_test(test_params_mail_bad),
		cmocka_unit_test(test_params_rcpt),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_param_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
