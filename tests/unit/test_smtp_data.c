/*
 * test_smtp_data.c - unit tests for the DATA/BDAT content decoder and the
 * dot-stuffing encoder (smtp_data.c): end-of-data recognition, smuggling
 * attempts, bare CR/LF policies, limits, and every possible input split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp_data.h"

struct sink {
	char buf[8192];
	size_t len;
};

static void
collect(void *ctx, const char *p, size_t n)
{
	struct sink *s = ctx;

	assert_true(s->len + n <= sizeof(s->buf));
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

/*
 * decode_split - feed `in` in pieces of `step` octets; return the octets
 * consumed in total (stops at end of data, like the session does).
 */
static size_t
decode_split(struct data_decoder *d, const char *in, size_t n, size_t step,
    struct sink *out)
{
	size_t used = 0;

	while (used < n && !d->done) {
		size_t k = n - used < step ? n - used : step;
		used += data_decode(d, in + used, k, collect, out);
	}
	return used;
}

/* run_dot - decode a DATA stream whole and at every split size */
static void
run_dot(const char *in, size_t n, int normalize, int want_done,
    size_t want_used, const char *want_out, size_t want_len,
    unsigned want_flags)
{
	for (size_t step = 1; step <= n + 1; step++) {
		struct data_decoder d;
		struct sink out = { .len = 0 };

		data_decoder_init(&d, DATA_MODE_DOT, normalize, 1000, 0);
		size_t used = decode_split(&d, in, n, step, &out);
		assert_int_equal(d.done, want_done);
		if (want_done)
			assert_int_equal(used, want_used);
		assert_int_equal(d.flags, want_flags);
		if (want_out != NULL) {
			assert_int_equal(out.len, want_len);
			assert_memory_equal(out.buf, want_out, want_len);
		}
	}
}

#define S(x)	x, sizeof(x) - 1

static void
test_dot_basic(void **state)
{
	(void)state;
	run_dot(S("Subject: x\r\n\r\nhello\r\n.\r\n"), 0, 1, 24,
	    S("Subject: x\r\n\r\nhello\r\n"), 0);
	run_dot(S(".\r\n"), 0, 1, 3, S(""), 0);		/* empty message */
	run_dot(S("a\r\n..b\r\n...\r\n.\r\n"), 0, 1, 16,
	    S("a\r\n.b\r\n..\r\n"), 0);			/* unstuffing */
	run_dot(S(".x\r\n.\r\n"), 0, 1, 7, S("x\r\n"), 0);
	/* bytes after the end are not consumed: they are the next command */
	run_dot(S("a\r\n.\r\nQUIT\r\n"), 0, 1, 6, S("a\r\n"), 0);
	/* not the end yet */
	run_dot(S("a\r\n.\r"), 0, 0, 0, NULL, 0, 0);
}

static void
test_dot_smuggling(void **state)
{
	(void)state;
	/* "\n.\n", "\r\n.\n", "\n.\r\n": none of these ends the data */
	run_dot(S("a\n.\nMAIL FROM:<x@y>\r\n.\r\n"), 0, 1, 24, NULL, 0,
	    DATA_BARE_LF);
	run_dot(S("a\r\n.\nMAIL FROM:<x@y>\r\n.\r\n"), 0, 1, 25, NULL, 0,
	    DATA_BARE_LF);
	run_dot(S("a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n"), 0, 1, 25, NULL, 0,
	    DATA_BARE_LF);
	run_dot(S("a\r.\rMAIL\r\n.\r\n"), 0, 1, 13, NULL, 0, DATA_BARE_CR);
	run_dot(S("a\r\n.\rMAIL\r\n.\r\n"), 0, 1, 14, NULL, 0, DATA_BARE_CR);
	/* under normalize the smuggled text stays inside the one message */
	run_dot(S("a\n.\nB\r\n.\r\n"), 1, 1, 10, S("a\r\n.\r\nB\r\n"),
	    DATA_BARE_LF);
	run_dot(S("a\r\n.\rB\r\n.\r\n"), 1, 1, 11, S("a\r\n\r\nB\r\n"),
	    DATA_BARE_CR);
}

static void
test_dot_flags(void **state)
{
	struct data_decoder d;
	struct sink out = { .len = 0 };
	char line[1100];

	(void)state;
	run_dot(S("a\0b\r\n.\r\n"), 0, 1, 8, NULL, 0, DATA_NUL);
	/* line_length 1000 allows 998 octets + CRLF */
	memset(line, 'x', sizeof(line));
	memcpy(line + 998, "\r\n.\r\n", 5);
	data_decoder_init(&d, DATA_MODE_DOT, 0, 1000, 0);
	data_decode(&d, line, 1003, collect, &out);
	assert_true(d.done);
	assert_int_equal(d.flags, 0);
	memset(line, 'x', sizeof(line));
	memcpy(line + 999, "\r\n.\r\n", 5);
	data_decoder_init(&d, DATA_MODE_DOT, 0, 1000, 0);
	out.len = 0;
	data_decode(&d, line, 1004, collect, &out);
	assert_true(d.done);
	assert_int_equal(d.flags, DATA_LONG_LINE);
	assert_true(data_refused(&d));
	assert_string_equal(data_reply(&d),
	    "550 5.6.0 Message contains a line longer than allowed");
}

static void
test_dot_size_limit(void **state)
{
	struct data_decoder d;
	struct sink out = { .len = 0 };
	const char *msg = "0123456789\r\n0123456789\r\n.\r\n";

	(void)state;
	data_decoder_init(&d, DATA_MODE_DOT, 0, 1000, 24);
	data_decode(&d, msg, strlen(msg), collect, &out);
	assert_true(d.done);
	assert_false(data_refused(&d));		/* exactly at the limit */
	data_decoder_init(&d, DATA_MODE_DOT, 0, 1000, 23);
	out.len = 0;
	data_decode(&d, msg, strlen(msg), collect, &out);
	assert_true(d.done);
	assert_true(d.flags & DATA_TOO_BIG);
	assert_true(out.len <= 23);		/* stopped storing */
	assert_string_equal(data_reply(&d),
	    "552 5.3.4 Message size exceeds fixed maximum message size");
}

static void
test_raw_bdat(void **state)
{
	const char *chunks[] = { "Subject: x\r", "\n\r\n.\r\n", "..\r\nend" };
	struct data_decoder d;
	struct sink out = { .len = 0 };

	(void)state;
	data_decoder_init(&d, DATA_MODE_RAW, 0, 1000, 0);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(data_decode(&d, chunks[i], strlen(chunks[i]),
		    collect, &out), strlen(chunks[i]));
	assert_false(d.done);
	data_decoder_finish(&d, collect, &out);
	assert_true(d.done);
	assert_int_equal(d.flags, 0);
	/* dots are content; a missing final CRLF is added */
	assert_int_equal(out.len, strlen("Subject: x\r\n\r\n.\r\n..\r\nend\r\n"));
	assert_memory_equal(out.buf, "Subject: x\r\n\r\n.\r\n..\r\nend\r\n",
	    out.len);
}

static void
test_raw_bare_cr_at_end(void **state)
{
	struct data_decoder d;
	struct sink out = { .len = 0 };

	(void)state;
	data_decoder_init(&d, DATA_MODE_RAW, 0, 1000, 0);
	data_decode(&d, "abc\r", 4, collect, &out);
	data_decoder_finish(&d, collect, &out);
	assert_true(d.flags & DATA_BARE_CR);
	assert_true(data_refused(&d));
	assert_string_equal(data_reply(&d),
	    "550 5.6.11 Message contains bare CR (RFC 5321 2.3.8)");
}

static void
test_dotstuff(void **state)
{
	const char *msg = ".a\r\nb\r\n.\r\n..c\r\nd";
	struct sink out = { .len = 0 }, back = { .len = 0 };
	struct data_decoder d;
	int bol = 1;

	(void)state;
	/* encode in two pieces split right before a dot */
	dotstuff(msg, 8, &bol, collect, &out);
	dotstuff(msg + 8, strlen(msg) - 8, &bol, collect, &out);
	dotstuff_end(bol, collect, &out);
	assert_int_equal(out.len, strlen("..a\r\nb\r\n..\r\n...c\r\nd\r\n.\r\n"));
	assert_memory_equal(out.buf, "..a\r\nb\r\n..\r\n...c\r\nd\r\n.\r\n",
	    out.len);
	/* and decoding gives the original back (plus the final CRLF) */
	data_decoder_init(&d, DATA_MODE_DOT, 0, 1000, 0);
	assert_int_equal(data_decode(&d, out.buf, out.len, collect, &back),
	    out.len);
	assert_true(d.done);
	assert_int_equal(back.len, strlen(msg) + 2);
	assert_memory_equal(back.buf, ".a\r\nb\r\n.\r\n..c\r\nd\r\n", back.len);
}

/* test_random_roundtrip - stuffing then decoding is the identity */
static void
test_random_roundtrip(void **state)
{
	static const char alphabet[] = ".\r\nab";
	char msg[512];

	(void)state;
	srand(12345);
	for (int iter = 0; iter < 2000; iter++) {
		size_t n = 0, len = (size_t)(rand() % 200);
		/* well-formed lines only: every CR followed by LF */
		while (n < len) {
			char c = alphabet[rand() % 5];
			if (c == '\r' || c == '\n') {
				msg[n++] = '\r';
				msg[n++] = '\n';
			} else
				msg[n++] = c;
		}
		if (n == 0 || msg[n - 1] != '\n') {
			msg[n++] = '\r';
			msg[n++] = '\n';
		}
		struct sink wire = { .len = 0 }, back = { .len = 0 };
		int bol = 1;
		dotstuff(msg, n, &bol, collect, &wire);
		dotstuff_end(bol, collect, &wire);
		struct data_decoder d;
		data_decoder_init(&d, DATA_MODE_DOT, 0, 1000, 0);
		size_t step = 1 + (size_t)(rand() % 7);
		assert_int_equal(decode_split(&d, wire.buf, wire.len, step,
		    &back), wire.len);
		assert_true(d.done);
		assert_int_equal(d.flags, 0);
		assert_int_equal(back.len, n);
		assert_memory_equal(back.buf, msg, n);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dot_basic),
		cmocka_unit_test(test_dot_smuggling),
		cmocka_unit_test(test_dot_flags),
		cmocka_unit_test(test_dot_size_limit),
		cmocka_unit_test(test_raw_bdat),
		cmocka_unit_test(test_raw_bare_cr_at_end),
		cmocka_unit_test(test_dotstuff),
		cmocka_unit_test(test_random_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
