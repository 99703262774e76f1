/*
 * test_message.c - unit tests for message.c: header field parsing,
 * lookups, milter-style changes and rendering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "message.h"
#include "util.h"

static void
init(struct message *m, const char *text)
{
	message_init(m, xstrdup(text), strlen(text));
}

static char *
render(const struct message *m)
{
	size_t len;
	char *out = message_render(m, &len);

	out = xrealloc(out, len + 1);
	out[len] = '\0';
	assert_int_equal(strlen(out), len);
	return out;
}

static const char *MSG =
    "Received: from a\r\n\tby b; Sat, 28 Nov 2026 12:00:00 +0000\r\n"
    "From: Alice <a@example.test>\r\n"
    "Subject: =?utf-8?q?caf=C3=A9?=\r\n"
    "X-Two: 1\r\n"
    "x-two: 2\r\n"
    "\r\n"
    "body line\r\n"
    ".\r\n";

static void
test_parse(void **state)
{
	struct message m;
	size_t blen;

	(void)state;
	init(&m, MSG);
	assert_int_equal(m.nhdrs, 5);
	assert_string_equal(m.hdrs[0].name, "Received");
	assert_string_equal(m.hdrs[0].value,
	    "from a\tby b; Sat, 28 Nov 2026 12:00:00 +0000");
	assert_string_equal(message_get(&m, "subject", 0),
	    "=?utf-8?q?caf=C3=A9?=");
	assert_string_equal(message_get(&m, "X-TWO", 1), "2");
	assert_null(message_get(&m, "X-Two", 2));
	assert_int_equal(message_find(&m, "from", 0), 1);
	assert_true(m.has_separator);
	const char *b = message_body(&m, &blen);
	assert_int_equal(blen, 14);
	assert_memory_equal(b, "body line\r\n.\r\n", blen);
	char *out = render(&m);		/* untouched: byte for byte */
	assert_string_equal(out, MSG);
	free(out);
	message_clear(&m);
}

static void
test_changes(void **state)
{
	struct message m;

	(void)state;
	init(&m, MSG);
	assert_int_equal(message_add(&m, "X-Spam-Score", "4.2"), 0);
	assert_int_equal(message_insert(&m, 0, "X-First", "yes"), 0);
	assert_int_equal(message_change(&m, "x-two", 0, "one"), 0);
	assert_int_equal(message_change(&m, "X-Two", 1, NULL), 0);
	assert_int_equal(message_change(&m, "X-New", 3, "added"), 0);
	assert_int_equal(message_change(&m, "X-Absent", 0, NULL), 0);
	char *out = render(&m);
	assert_string_equal(out,
	    "X-First: yes\r\n"
	    "Received: from a\r\n\tby b; Sat, 28 Nov 2026 12:00:00 +0000\r\n"
	    "From: Alice <a@example.test>\r\n"
	    "Subject: =?utf-8?q?caf=C3=A9?=\r\n"
	    "X-Two: one\r\n"
	    "X-Spam-Score: 4.2\r\n"
	    "X-New: added\r\n"
	    "\r\n"
	    "body line\r\n.\r\n");
	/* the head alone, then the untouched body, is the same text */
	size_t hlen, blen;
	char *head = message_render_head(&m, &hlen);
	const char *body = message_body(&m, &blen);
	assert_int_equal(hlen + blen, strlen(out));
	assert_memory_equal(head, out, hlen);
	assert_memory_equal(body, out + hlen, blen);
	free(head);
	free(out);
	assert_true(m.changed);
	message_clear(&m);
}

static void
test_bad_changes(void **state)
{
	struct message m;

	(void)state;
	init(&m, MSG);
	assert_int_equal(message_add(&m, "Bad Name", "x"), -1);
	assert_int_equal(message_add(&m, "Bad:Name", "x"), -1);
	assert_int_equal(message_add(&m, "", "x"), -1);
	assert_int_equal(message_add(&m, "X-Inject", "a\r\nBcc: evil"), -1);
	assert_int_equal(message_add(&m, "X-Inject", "a\nb"), -1);
	assert_int_equal(message_change(&m, "Subject", 0, "x\ry"), -1);
	assert_false(m.changed);
	message_clear(&m);
}

static void
test_body_replace(void **state)
{
	struct message m;

	(void)state;
	init(&m, "Subject: x\r\n\r\nold\r\n");
	assert_int_equal(message_replace_body(&m, "new\nlines\rend", 13), 0);
	char *out = render(&m);
	assert_string_equal(out, "Subject: x\r\n\r\nnew\r\nlines\r\nend\r\n");
	free(out);
	message_clear(&m);
}

static void
test_odd_shapes(void **state)
{
	struct message m;
	size_t blen;

	(void)state;
	init(&m, "");			/* empty */
	assert_int_equal(m.nhdrs, 0);
	char *out = render(&m);
	assert_string_equal(out, "");
	free(out);
	message_clear(&m);

	init(&m, "Subject: only headers\r\n");	/* no blank line */
	assert_int_equal(m.nhdrs, 1);
	assert_false(m.has_separator);
	out = render(&m);
	assert_string_equal(out, "Subject: only headers\r\n");
	free(out);
	message_clear(&m);

	/* a line that is no field ends the headers: it is body text */
	init(&m, "Subject: x\r\nthis is not a header\r\nmore\r\n");
	assert_int_equal(m.nhdrs, 1);
	const char *b = message_body(&m, &blen);
	assert_int_equal(blen, 28);
	assert_memory_equal(b, "this is not a header\r\nmore\r\n", blen);
	out = render(&m);
	assert_string_equal(out, "Subject: x\r\nthis is not a header\r\nmore\r\n");
	free(out);
	message_clear(&m);

	init(&m, " leading continuation\r\n\r\nbody");
	assert_int_equal(m.nhdrs, 0);
	message_clear(&m);
}

static void
test_header_limit(void **state)
{
	struct message m;
	size_t n = MESSAGE_MAX_HEADERS + 10, len = 0;
	char *text = xmalloc(n * 16 + 16);

	(void)state;
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "X-H: %zu\r\n", i);
	len += (size_t)sprintf(text + len, "\r\nbody\r\n");
	message_init(&m, text, len);
	assert_int_equal(m.nhdrs, MESSAGE_MAX_HEADERS);
	assert_int_equal(message_add(&m, "X-More", "x"), 0);	/* room to add */
	assert_int_equal(message_change(&m, "X-More", 0, NULL), 0);
	size_t olen;
	char *out = message_render(&m, &olen);
	assert_int_equal(olen, len);	/* the rest is kept, as body text */
	assert_memory_equal(out, m.data, len);
	free(out);
	message_clear(&m);
}

static void
test_raw_fields(void **state)
{
	struct message m;
	size_t len;
	const char *t;
	char *out;

	(void)state;
	init(&m, "Received: x\r\nSubject:  two spaces\r\n\tfolded\r\n\r\nb\r\n");
	t = message_field_text(&m, 1, &len);
	assert_int_equal(len, strlen("  two spaces\r\n\tfolded"));
	assert_memory_equal(t, "  two spaces\r\n\tfolded", len);
	/* exact text, LF folds made CRLF, leading blank kept */
	assert_int_equal(message_insert_raw(&m, 0, "DKIM-Signature",
	    " v=1;\n\tb=abc"), 0);
	assert_string_equal(m.hdrs[0].value, "v=1;\tb=abc");
	t = message_field_text(&m, 0, &len);
	assert_memory_equal(t, " v=1;\r\n\tb=abc", len);
	assert_int_equal(message_change_raw(&m, "subject", 0, "new"), 0);
	assert_int_equal(message_change_raw(&m, "X-New", 3, " added"), 0);
	out = render(&m);
	assert_string_equal(out, "DKIM-Signature: v=1;\r\n\tb=abc\r\n"
	    "Received: x\r\nsubject:new\r\nX-New: added\r\n\r\nb\r\n");
	free(out);
	/* refused: a break without a blank after it, a blank-only line,
	   a CR alone, a bad name */
	assert_int_equal(message_insert_raw(&m, 0, "X", " a\nb"), -1);
	assert_int_equal(message_insert_raw(&m, 0, "X", " a\n \n b"), -1);
	assert_int_equal(message_insert_raw(&m, 0, "X", " a\n  "), -1);
	assert_int_equal(message_insert_raw(&m, 0, "X", " a\rb"), -1);
	assert_int_equal(message_insert_raw(&m, 0, "X Y", " a"), -1);
	assert_int_equal(message_change_raw(&m, "Subject", 0, "\r\n"), -1);
	assert_int_equal(m.nhdrs, 4);
	/* as a milter sees them: folds as LF, one space less unless exact */
	char *v = message_field_milter(&m, 0, 1);
	assert_string_equal(v, " v=1;\n\tb=abc");
	free(v);
	v = message_field_milter(&m, 0, 0);
	assert_string_equal(v, "v=1;\n\tb=abc");
	free(v);
	v = message_field_milter(&m, 2, 1);	/* subject:new */
	assert_string_equal(v, "new");
	free(v);
	message_clear(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_changes),
		cmocka_unit_test(test_bad_changes),
		cmocka_unit_test(test_body_replace),
		cmocka_unit_test(test_odd_shapes),
		cmocka_unit_test(test_header_limit),
		cmocka_unit_test(test_raw_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
