/*
 * test_mime_7bit.c - unit tests for the 8BITMIME downgrade (mime_7bit.c).
 * Every result must be 7-bit with CRLF lines of at most 78 octets, and
 * must mean the same: parsed with sluice's MIME parser (mime.h), each part
 * has the same type and the same decoded content as in the original.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mime.h"
#include "mime_7bit.h"
#include "util.h"

static void
check_7bit_lines(const char *s, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		assert_true((unsigned char)s[i] < 0x80);
		if (s[i] == '\n') {
			assert_true(i > 0 && s[i - 1] == '\r');
			col = 0;
		} else if (++col > 998)
			fail_msg("line too long at %zu", i);
	}
}

/* same_meaning - the two messages parse to the same parts and contents */
static void
same_meaning(const char *a, size_t alen, const char *b, size_t blen)
{
	struct mime_tree *ta = mime_parse(a, alen, NULL);
	struct mime_tree *tb = mime_parse(b, blen, NULL);

	assert_non_null(ta);
	assert_non_null(tb);
	assert_int_equal(ta->nparts, tb->nparts);
	for (size_t i = 0; i < ta->nparts; i++) {
		const struct mime_part *pa = &ta->parts[i], *pb = &tb->parts[i];
		assert_string_equal(pa->content_type, pb->content_type);
		assert_int_equal(pa->is_multipart, pb->is_multipart);
		assert_int_equal(pa->content_len, pb->content_len);
		if (pa->content_len > 0)
			assert_memory_equal(pa->content, pb->content,
			    pa->content_len);
	}
	mime_tree_free(ta);
	mime_tree_free(tb);
}

static char *
convert(const char *msg, size_t *len)
{
	char *out = mime_to_7bit(msg, strlen(msg), len);

	assert_non_null(out);
	assert_int_equal(strlen(out), *len);
	check_7bit_lines(out, *len);
	same_meaning(msg, strlen(msg), out, *len);
	return out;
}

static void
test_seven_bit_untouched(void **state)
{
	size_t len = 99;

	(void)state;
	assert_null(mime_to_7bit("Subject: x\r\n\r\nplain\r\n", 21, &len));
	assert_int_equal(len, 99);
	assert_false(mem_has_8bit("abc", 3));
	assert_true(mem_has_8bit("a\xc3\xa9", 3));
}

static void
test_single_part(void **state)
{
	const char *msg = "Subject: caf\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "caf\xc3\xa9 = 1\r\ntrailing space \r\n.dot line\r\n";
	size_t len;
	char *out = convert(msg, &len);

	assert_non_null(strstr(out, "Content-Transfer-Encoding: "
	    "quoted-printable\r\n\r\ncaf=C3=A9 =3D 1\r\ntrailing space=20\r\n"
	    ".dot line\r\n"));
	assert_null(strstr(out, "8bit"));
	assert_non_null(strstr(out, "Subject: caf\r\n"));
	free(out);
}

static void
test_no_mime_headers(void **state)
{
	const char *msg = "Subject: x\r\n\r\n\xe9t\xe9\r\n";
	(void)state;
	size_t len;
	char *out = convert(msg, &len);

	/* CTE is added, and MIME-Version so that it means something */
	assert_non_null(strstr(out, "MIME-Version: 1.0\r\n"));
	assert_non_null(strstr(out, "Content-Transfer-Encoding: "
	    "quoted-printable\r\n\r\n=E9t=E9\r\n"));
	free(out);
}

static void
test_long_lines_soft_breaks(void **state)
{
	char msg[4096] = "Content-Type: text/plain\r\n\r\n";
	size_t len;
	char *out;

	(void)state;
	for (int i = 0; i < 300; i++)
		strcat(msg, i % 3 ? "a" : "\xc3\xa9");
	strcat(msg, "\r\nend\r\n");
	out = convert(msg, &len);
	/* every encoded line within 76 octets */
	for (char *p = strstr(out, "\r\n\r\n") + 4, *e; (e = strstr(p,
	    "\r\n")) != NULL; p = e + 2)
		assert_true(e - p <= 76);
	free(out);
}

static void
test_multipart_nested(void **state)
{
	const char *msg =
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "preamble\r\n"
	    "--outer\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "gr\xc3\xbc\xc3\x9f dich\r\n"
	    "--outer\r\n"
	    "Content-Type: multipart/alternative; boundary=inner\r\n\r\n"
	    "--inner\r\n"
	    "Content-Type: text/html; charset=utf-8\r\n\r\n"
	    "<p>\xe2\x82\xac</p>\r\n"
	    "--inner\r\n"
	    "Content-Type: text/plain\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n"
	    "aGVsbG8=\r\n"
	    "--inner--\r\n"
	    "--outer\r\n"
	    "Content-Type: message/rfc822\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "Subject: inner\r\nContent-Type: text/plain\r\n\r\n"
	    "\xc3\xa0 bient\xc3\xb4t\r\n"
	    "--outer\r\n"
	    "Content-Type: text/plain\r\n\r\n"
	    "--outer\r\n\r\n"
	    "--outer--\r\n"
	    "epilogue\r\n";
	size_t len;
	char *out = convert(msg, &len);

	/* containers relabelled 7bit; the base64 part unchanged */
	assert_null(strstr(out, "8bit"));
	assert_non_null(strstr(out, "boundary=\"outer\"\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n"));
	assert_non_null(strstr(out, "Content-Transfer-Encoding: base64\r\n"
	    "\r\naGVsbG8=\r\n--inner--\r\n"));
	assert_non_null(strstr(out, "=E2=82=AC"));
	assert_non_null(strstr(out, "\r\nepilogue\r\n"));
	assert_non_null(strstr(out, "preamble\r\n--outer\r\n"));
	free(out);
}

static void
test_hostile_structure(void **state)
{
	/* a boundary that never comes, a missing close, a prefix-sharing
	   boundary, no header/body separator, deep nesting */
	const char *msgs[] = {
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n\xff\r\n",
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n"
	    "\xff\r\n",
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n"
	    "x\r\n--bb\r\n\xfe\r\n--b--\r\n",
	    "Content-Type: text/plain\r\nX: \xc3\xa9",
	    "\r\n\xc3\xa9",
	};
	char deep[8192] = "";

	(void)state;
	for (size_t i = 0; i < sizeof(msgs) / sizeof(*msgs); i++) {
		size_t len;
		char *out = mime_to_7bit(msgs[i], strlen(msgs[i]), &len);
		assert_non_null(out);
		assert_int_equal(strlen(out), len);
		free(out);
	}
	for (int i = 0; i < 60; i++)
		strcat(deep, "Content-Type: multipart/mixed; boundary=q\r\n\r\n"
		    "--q\r\n");
	strcat(deep, "\r\n\xc3\xa9\r\n");
	size_t len;
	char *out = mime_to_7bit(deep, strlen(deep), &len);
	assert_non_null(out);
	check_7bit_lines(out, len);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seven_bit_untouched),
		cmocka_unit_test(test_single_part),
		cmocka_unit_test(test_no_mime_headers),
		cmocka_unit_test(test_long_lines_soft_breaks),
		cmocka_unit_test(test_multipart_nested),
		cmocka_unit_test(test_hostile_structure),
	};
	int rc;

	mime_global_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	mime_global_shutdown();
	return rc;
}
