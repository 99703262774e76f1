/*
 * test_sendmail.c - unit tests for sluice-sendmail's parsers: the command
 * line (sm_opts.c), address lists (sm_addr.c), the message on stdin
 * (sm_input.c: dots, line ends, limits) and the header (sm_header.c: -t,
 * Bcc removal, added fields), and the maildrop file format (maildrop.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <cmocka.h>

#include "maildrop.h"
#include "sendmail.h"

static char err[SM_ERR_LEN];

/* parse - sm_opts_parse() of "sendmail" and the arguments; o->rcpts
   points into a static argv, valid until the next call */
static int
parse(struct sm_opts *o, const char *first, ...)
{
	static char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = "sendmail";
	va_start(ap, first);
	for (const char *a = first; a != NULL; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	return sm_opts_parse(argc, argv, o, err, sizeof(err));
}

static void
test_opts_basic(void **state)
{
	struct sm_opts o;

	(void)state;
	assert_int_equal(parse(&o, "-t", "-i", "-f", "a@x.test", "-F",
	    "Jo Bloggs", "b@y.test", "c@z.test", NULL), 0);
	assert_true(o.extract && o.ignore_dots);
	assert_string_equal(o.sender, "a@x.test");
	assert_string_equal(o.fullname, "Jo Bloggs");
	assert_int_equal(o.nrcpts, 2);
	assert_string_equal(o.rcpts[0], "b@y.test");
	assert_int_equal(o.mode, SM_MODE_MAIL);
	/* attached values, grouped flags, -oi, -r, -C */
	assert_int_equal(parse(&o, "-ti", "-fme@x.test", "-FMe", "-Cfile",
	    NULL), 0);
	assert_true(o.extract && o.ignore_dots);
	assert_string_equal(o.sender, "me@x.test");
	assert_string_equal(o.fullname, "Me");
	assert_string_equal(o.config, "file");
	assert_int_equal(o.nrcpts, 0);
	assert_int_equal(parse(&o, "-oi", "-r", "r@x.test", "-c", "f2", NULL),
	    0);
	assert_true(o.ignore_dots && !o.extract);
	assert_string_equal(o.sender, "r@x.test");
	assert_string_equal(o.config, "f2");
	assert_int_equal(parse(&o, "-bs", NULL), 0);
	assert_int_equal(o.mode, SM_MODE_SMTP);
	assert_int_equal(parse(&o, "-bi", NULL), 0);
	assert_int_equal(o.mode, SM_MODE_NOOP);
	assert_int_equal(parse(&o, "-bm", "x@y.test", NULL), 0);
	assert_int_equal(o.mode, SM_MODE_MAIL);
}

static void
test_opts_ignored_and_end(void **state)
{
	struct sm_opts o;

	(void)state;
	/* what PHP and cron pass: accepted, values consumed */
	assert_int_equal(parse(&o, "-odi", "-oem", "-v", "-N", "never", "-R",
	    "hdrs", "-V", "envid", "-Bbody", "-h", "3", "-U", "--", "-x@y.test",
	    NULL), 0);
	assert_false(o.ignore_dots);
	assert_string_equal(o.dsn.notify, "NEVER");	/* kept for the DSN */
	assert_string_equal(o.dsn.ret, "HDRS");
	assert_string_equal(o.dsn.envid, "envid");
	assert_int_equal(o.nrcpts, 1);
	assert_string_equal(o.rcpts[0], "-x@y.test");
	/* the first operand ends the options */
	assert_int_equal(parse(&o, "a@x.test", "-t", NULL), 0);
	assert_false(o.extract);
	assert_int_equal(o.nrcpts, 2);
}

static void
test_opts_errors(void **state)
{
	struct sm_opts o;

	(void)state;
	assert_int_equal(parse(&o, "-Z", NULL), EX_USAGE);
	assert_string_equal(err, "unknown option -Z");
	assert_int_equal(parse(&o, "-f", NULL), EX_USAGE);
	assert_string_equal(err, "option -f needs a value");
	assert_int_equal(parse(&o, "-bp", NULL), EX_USAGE);
	assert_non_null(strstr(err, "sluicectl list"));
	assert_int_equal(parse(&o, "-bd", NULL), EX_USAGE);
	assert_int_equal(parse(&o, "-b", NULL), EX_USAGE);
	assert_int_equal(parse(&o, "-q30m", NULL), EX_USAGE);
}

static void
test_opts_dsn(void **state)
{
	struct sm_opts o;
	char big[120];

	(void)state;
	assert_int_equal(parse(&o, "a@x.test", NULL), 0);
	assert_string_equal(o.dsn.notify, "");		/* none given */
	assert_string_equal(o.dsn.ret, "");
	assert_string_equal(o.dsn.envid, "");
	/* any order and case, put in RFC 3461's order, uppercase */
	assert_int_equal(parse(&o, "-Nfailure,Success", "-R", "FULL",
	    "-Vq+1=x", NULL), 0);
	assert_string_equal(o.dsn.notify, "SUCCESS,FAILURE");
	assert_string_equal(o.dsn.ret, "FULL");
	assert_string_equal(o.dsn.envid, "q+2B1+3Dx");	/* xtext */
	assert_int_equal(parse(&o, "-N", "delay", NULL), 0);
	assert_string_equal(o.dsn.notify, "DELAY");

	assert_int_equal(parse(&o, "-N", "never,success", NULL), EX_USAGE);
	assert_non_null(strstr(err, "never stands alone"));
	assert_int_equal(parse(&o, "-N", "sometimes", NULL), EX_USAGE);
	assert_non_null(strstr(err, "bad -N value 'sometimes'"));
	assert_int_equal(parse(&o, "-N", "success,", NULL), EX_USAGE);
	assert_int_equal(parse(&o, "-R", "body", NULL), EX_USAGE);
	assert_non_null(strstr(err, "hdrs or full"));
	assert_int_equal(parse(&o, "-V", "has space", NULL), EX_USAGE);
	assert_int_equal(parse(&o, "-V", "", NULL), EX_USAGE);
	memset(big, 'e', 100);
	big[100] = '\0';
	assert_int_equal(parse(&o, "-V", big, NULL), 0);	/* 100: fits */
	big[100] = 'e';
	big[101] = '\0';
	assert_int_equal(parse(&o, "-V", big, NULL), EX_USAGE);
	assert_non_null(strstr(err, "at most 100"));
	memset(big, '+', 34);				/* 102 as xtext */
	big[34] = '\0';
	assert_int_equal(parse(&o, "-V", big, NULL), EX_USAGE);
}

static void
expect_list(const char *value, int rv, size_t n, ...)
{
	struct sm_rcpts r = { 0 };
	va_list ap;

	assert_int_equal(sm_addr_list(value, "host.test", &r, err,
	    sizeof(err)), rv);
	if (rv == 0) {
		assert_int_equal(r.n, n);
		va_start(ap, n);
		for (size_t i = 0; i < n; i++)
			assert_string_equal(r.v[i], va_arg(ap, const char *));
		va_end(ap);
	}
	sm_rcpts_clear(&r);
}

static void
test_addr_lists(void **state)
{
	(void)state;
	expect_list("a@x.test", 0, 1, "a@x.test");
	expect_list(" a@x.test , b@y.test ", 0, 2, "a@x.test", "b@y.test");
	expect_list("Alice <a@x.test>, \"Bob, Jr.\" <b@y.test>", 0, 2,
	    "a@x.test", "b@y.test");
	expect_list("a@x.test (Alice, the one), (c) b@y.test", 0, 2,
	    "a@x.test", "b@y.test");
	expect_list("friends: a@x.test, B <b@y.test>;, c@z.test", 0, 3,
	    "a@x.test", "b@y.test", "c@z.test");
	expect_list("undisclosed-recipients:;", 0, 0);
	expect_list("", 0, 0);
	expect_list("root", 0, 1, "root@host.test");
	expect_list("\"quoted local\"@x.test", 0, 1, "\"quoted local\"@x.test");
	/* duplicates, any case, once */
	expect_list("a@x.test, A@X.TEST, <a@x.test>", 0, 1, "a@x.test");
	expect_list("<a@x.test", EX_DATAERR, 0);
	expect_list("a@@x.test", EX_DATAERR, 0);
	expect_list("a b@x.test", EX_DATAERR, 0);
	expect_list("<>", EX_DATAERR, 0);
	expect_list("\"open quote@x.test", EX_DATAERR, 0);
	expect_list("a@x.test (open comment", EX_DATAERR, 0);
	assert_int_equal(sm_addr_check("", 1, err, sizeof(err)), 0);
	assert_int_equal(sm_addr_check("", 0, err, sizeof(err)), EX_DATAERR);
	assert_int_equal(sm_addr_check("nodomain", 0, err, sizeof(err)),
	    EX_DATAERR);
}

static int
read_str(const char *in, size_t inlen, int dots, uint64_t max,
    unsigned linelen, char **out, size_t *outlen)
{
	struct sm_limits lim = { max, linelen };
	FILE *fp = fmemopen((void *)in, inlen, "r");
	int rv;

	rv = sm_read_message(fp, dots, &lim, out, outlen, err, sizeof(err));
	fclose(fp);
	return rv;
}

static void
expect_read(const char *in, int dots, const char *want)
{
	char *out;
	size_t len;

	assert_int_equal(read_str(in, strlen(in), dots, 0, 0, &out, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	free(out);
}

static void
test_read_message(void **state)
{
	char *out;
	size_t len;

	(void)state;
	expect_read("a\nb\n", 0, "a\r\nb\r\n");
	expect_read("a\r\nb\rc", 0, "a\r\nb\r\nc\r\n");
	expect_read("", 0, "");
	/* a lone dot ends input unless -i */
	expect_read("a\n.\nb\n", 0, "a\r\n");
	expect_read("a\r\n.\r\nb\n", 0, "a\r\n");
	expect_read("a\n.", 0, "a\r\n");
	expect_read("a\n.\nb\n", 1, "a\r\n.\r\nb\r\n");
	expect_read("a\n..\n.b\n", 0, "a\r\n..\r\n.b\r\n");
	/* refusals */
	assert_int_equal(read_str("a\0b\n", 4, 0, 0, 0, &out, &len),
	    EX_DATAERR);
	assert_string_equal(err, "NUL byte in line 1");
	assert_int_equal(read_str("ok\nabcdefgh\n", 12, 0, 0, 8, &out, &len),
	    EX_DATAERR);
	assert_string_equal(err, "line 2 is longer than 6 bytes "
	    "(limits.line_length)");
	assert_int_equal(read_str("abcdef\n", 7, 0, 0, 8, &out, &len), 0);
	free(out);
	assert_int_equal(read_str("abcdefgh", 8, 0, 0, 8, &out, &len),
	    EX_DATAERR);
	assert_int_equal(read_str("0123456789\n", 11, 0, 10, 0, &out, &len),
	    EX_DATAERR);
	assert_non_null(strstr(err, "larger than 10 bytes"));
}

static char *
fix(const char *in, int extract, const char *fullname, struct sm_rcpts *r,
    int want_rv)
{
	struct sm_header_ctx x = { .extract = extract, .sender = "me@h.test",
	    .fullname = fullname, .hostname = "h.test", .origin = "h.test" };
	char *m = strdup(in);
	size_t len = strlen(in);

	assert_int_equal(sm_header_fix(&m, &len, &x, r, err, sizeof(err)),
	    want_rv);
	assert_int_equal(strlen(m), len);
	return m;
}

static void
test_header(void **state)
{
	struct sm_rcpts r = { 0 };
	char *m;

	(void)state;
	m = fix("To: A <a@x.test>,\r\n b@y.test\r\nBcc: c@z.test,\r\n"
	    "\td@z.test\r\nSubject: s\r\nCC: e@x.test\r\n\r\nbody\r\n", 1, NULL,
	    &r, 0);
	assert_int_equal(r.n, 5);
	assert_string_equal(r.v[2], "c@z.test");
	assert_string_equal(r.v[3], "d@z.test");
	assert_string_equal(r.v[4], "e@x.test");
	assert_null(strstr(m, "Bcc"));
	assert_null(strstr(m, "d@z.test"));
	assert_non_null(strstr(m, "To: A <a@x.test>,\r\n b@y.test\r\n"
	    "Subject: s\r\nCC: e@x.test\r\nFrom: me@h.test\r\nDate: "));
	assert_non_null(strstr(m, "\r\nMessage-ID: <"));
	assert_non_null(strstr(m, "@h.test>\r\n\r\nbody\r\n"));
	free(m);
	sm_rcpts_clear(&r);

	/* no -t: To/Cc are not recipients, Bcc still goes */
	m = fix("To: a@x.test\r\nBcc: c@z.test\r\n\r\nb\r\n", 0, NULL, &r, 0);
	assert_int_equal(r.n, 0);
	assert_null(strstr(m, "Bcc"));
	free(m);

	/* present fields are kept; -F only for a From we add */
	m = fix("From: x@y.test\r\ndate: today\r\nMessage-Id: <1@y>\r\n\r\n",
	    0, "Name", &r, 0);
	assert_string_equal(m, "From: x@y.test\r\ndate: today\r\n"
	    "Message-Id: <1@y>\r\n\r\n");
	free(m);
	m = fix("Subject: s\r\n\r\n", 0, "Jo \"Q\" Public", &r, 0);
	assert_non_null(strstr(m, "From: \"Jo \\\"Q\\\" Public\" "
	    "<me@h.test>\r\n"));
	free(m);
	m = fix("Subject: s\r\n\r\n", 0, "J\xc3\xb6rg", &r, 0);
	assert_non_null(strstr(m, "From: =?UTF-8?B?SsO2cmc=?= <me@h.test>"));
	free(m);

	/* mbox From_ line dropped; a body without a blank line gets one */
	m = fix("From me Sat Nov 28 12:00:00 2026\r\nSubject: s\r\n"
	    "not a header\r\n", 0, NULL, &r, 0);
	assert_int_equal(strncmp(m, "Subject: s\r\nFrom: me@h.test\r\n", 29),
	    0);
	assert_non_null(strstr(m, "\r\n\r\nnot a header\r\n"));
	free(m);

	/* a bad address with -t */
	m = fix("To: <broken\r\n\r\n", 1, NULL, &r, EX_DATAERR);
	free(m);
	sm_rcpts_clear(&r);
}

static void
test_maildrop_format(void **state)
{
	char buf[] = MAILDROP_MAGIC "S \nR a@x.test\nR b@y.test\n\nmsg\r\n";
	char *copy = strdup(buf);
	struct maildrop_msg m;

	(void)state;
	assert_int_equal(maildrop_parse(copy, strlen(buf), &m, err,
	    sizeof(err)), 0);
	assert_string_equal(m.sender, "");
	assert_int_equal(m.nrcpts, 2);
	assert_string_equal(m.rcpts[1], "b@y.test");
	assert_int_equal(m.len, 5);
	assert_memory_equal(m.data, "msg\r\n", 5);
	assert_null(m.notify);
	assert_null(m.ret);
	assert_null(m.envid);
	maildrop_msg_clear(&m);

	copy = strdup(MAILDROP_MAGIC "S a@x\nR b@y\nN SUCCESS,DELAY\nT HDRS\n"
	    "V id+2B1\n\nmsg");
	assert_int_equal(maildrop_parse(copy, strlen(copy), &m, err,
	    sizeof(err)), 0);
	assert_string_equal(m.notify, "SUCCESS,DELAY");
	assert_string_equal(m.ret, "HDRS");
	assert_string_equal(m.envid, "id+2B1");
	maildrop_msg_clear(&m);
	copy = strdup(MAILDROP_MAGIC "S a@x\nR b@y\nN NEVER\nN NEVER\n\nm");
	assert_int_equal(maildrop_parse(copy, strlen(copy), &m, err,
	    sizeof(err)), -1);			/* twice */
	maildrop_msg_clear(&m);
	copy = strdup(MAILDROP_MAGIC "S a@x\nR b@y\nV a b\n\nm");
	assert_int_equal(maildrop_parse(copy, strlen(copy), &m, err,
	    sizeof(err)), -1);			/* a space */
	maildrop_msg_clear(&m);

	copy = strdup(MAILDROP_MAGIC "S a@x\n\nmsg");
	assert_int_equal(maildrop_parse(copy, strlen(copy), &m, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "no recipient in the envelope");
	maildrop_msg_clear(&m);
	copy = strdup("garbage");
	assert_int_equal(maildrop_parse(copy, 7, &m, err, sizeof(err)), -1);
	maildrop_msg_clear(&m);

	assert_true(maildrop_is_name("0006615cbdc3aeed.00000dcc.a49e0ec1c04"));
	assert_false(maildrop_is_name(".tmp.0006615cbdc3aeed"));
	assert_false(maildrop_is_name("failed"));
	assert_false(maildrop_is_name(""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts_basic),
		cmocka_unit_test(test_opts_ignored_and_end),
		cmocka_unit_test(test_opts_errors),
		cmocka_unit_test(test_opts_dsn),
		cmocka_unit_test(test_addr_lists),
		cmocka_unit_test(test_read_message),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_maildrop_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
