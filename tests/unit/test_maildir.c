/*
 * test_maildir.c - unit tests for the CRLF to LF conversion of Maildir
 * delivery (maildir_crlf_to_lf in deliver_maildir.c): plain cases, bare
 * CRs, a CR in the last byte, and every split of inputs into two chunks
 * against a byte-by-byte reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "transport.h"

/* convert - whole string in one chunk; the flag of a trailing CR too */
static char *
convert(const char *in, int *cr_at_end)
{
	size_t n = strlen(in);
	char *buf = malloc(n + 1);

	memcpy(buf, in, n);
	buf[maildir_crlf_to_lf(buf, n, cr_at_end)] = '\0';
	return buf;
}

static void
expect(const char *in, const char *want, int want_cr)
{
	int cr = -1;
	char *got = convert(in, &cr);

	assert_string_equal(got, want);
	assert_int_equal(cr, want_cr);
	free(got);
}

static void
test_cases(void **state)
{
	(void)state;
	expect("", "", 0);
	expect("no line end", "no line end", 0);
	expect("a\r\nb\r\n", "a\nb\n", 0);
	expect("\r\n\r\n\r\n", "\n\n\n", 0);
	expect("bare\rcr\r\n", "bare\rcr\n", 0);
	expect("\r\r\n", "\r\n", 0);
	expect("lf only\n", "lf only\n", 0);
	expect("ends in cr\r", "ends in cr", 1);
	expect("\r", "", 1);
	expect("x\r\r", "x\r", 1);
}

/* reference - the conversion of a whole message, a byte at a time */
static size_t
reference(const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++)
		if (!(in[i] == '\r' && i + 1 < n && in[i + 1] == '\n'))
			out[o++] = in[i];
	return o;
}

/* chunked - as copy_lf drives it: two chunks, a held CR between them */
static size_t
chunked(const char *in, size_t n, size_t split, char *out)
{
	char a[256], b[256];
	size_t o = 0, k;
	int cr;

	memcpy(a, in, split);
	k = maildir_crlf_to_lf(a, split, &cr);
	memcpy(out, a, k);
	o = k;
	memcpy(b, in + split, n - split);
	if (cr && (n == split || b[0] != '\n'))
		out[o++] = '\r';
	if (n > split) {
		k = maildir_crlf_to_lf(b, n - split, &cr);
		memcpy(out + o, b, k);
		o += k;
		if (cr)
			out[o++] = '\r';
	}
	return o;
}

static void
test_every_split(void **state)
{
	static const char alphabet[] = { '\r', '\n', 'x' };
	char in[64], want[64], got[128];

	(void)state;
	srand(7);
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(rand() % 40);
		for (size_t i = 0; i < n; i++)
			in[i] = alphabet[rand() % 3];
		size_t wl = reference(in, n, want);
		for (size_t split = 0; split <= n; split++) {
			size_t gl = chunked(in, n, split, got);
			assert_int_equal(gl, wl);
			assert_memory_equal(got, want, wl);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_every_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
