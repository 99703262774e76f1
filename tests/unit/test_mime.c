/*
 * test_mime.c - unit tests for the MIME analysis (mime.c and mime_*.c):
 * structure, header fields and their encodings, transfer decoding, content
 * sniffing, archive listing, every malformation we know of, the limits,
 * and concurrent use from several threads.
 *
 * Messages are built in memory; archives with libarchive's write API.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>

#include "mime.h"
#include "util.h"

/* --- helpers ----------------------------------------------------------- */

struct sb {
	char *s;
	size_t len, cap;
};

static void
sb_add(struct sb *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
sb_printf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	sb_add(b, s, (size_t)n);
	free(s);
}

static char *
b64(const unsigned char *p, size_t n)
{
	static const char al[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	struct sb b = { NULL, 0, 0 };
	size_t col = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		char q[4];

		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		q[0] = al[v >> 18 & 63];
		q[1] = al[v >> 12 & 63];
		q[2] = i + 1 < n ? al[v >> 6 & 63] : '=';
		q[3] = i + 2 < n ? al[v & 63] : '=';
		sb_add(&b, q, 4);
		if ((col += 4) == 76) {
			sb_add(&b, "\r\n", 2);
			col = 0;
		}
	}
	sb_add(&b, "", 0);
	return b.s;
}

static struct mime_tree *
parse(const char *msg)
{
	struct mime_tree *t = mime_parse(msg, strlen(msg), NULL);

	assert_non_null(t);
	assert_true(t->nparts >= 1);
	return t;
}

/* find - the first part with this filename, or NULL */
static const struct mime_part *
find(const struct mime_tree *t, const char *filename)
{
	for (size_t i = 0; i < t->nparts; i++)
		if (t->parts[i].filename &&
		    strcmp(t->parts[i].filename, filename) == 0)
			return &t->parts[i];
	return NULL;
}

static int
has_member(const struct mime_part *p, const char *name)
{
	for (size_t i = 0; i < p->narchive_members; i++)
		if (strcmp(p->archive_members[i], name) == 0)
			return 1;
	return 0;
}

/* check_tree - invariants every tree must keep, whatever the input */
static void
check_tree(const struct mime_tree *t, const struct mime_limits *l)
{
	for (size_t i = 0; i < t->nparts; i++) {
		const struct mime_part *p = &t->parts[i];

		assert_int_equal(p->index, i);
		assert_true(p->parent < (int)i);
		assert_true(i == 0 ? p->parent == -1 : p->parent >= 0);
		if (p->parent >= 0)
			assert_int_equal(p->depth,
			    t->parts[p->parent].depth + 1);
		assert_true(p->depth <= l->max_depth);
		assert_non_null(p->content_type);
		assert_true(utf8_valid(p->content_type,
		    strlen(p->content_type)));
		if (p->filename)
			assert_true(utf8_valid(p->filename,
			    strlen(p->filename)));
		if (p->charset)
			assert_true(utf8_valid(p->charset, strlen(p->charset)));
		assert_true(p->content_len <= p->size);
		assert_true(p->content_len <= l->max_part_decoded);
		if (p->is_multipart)
			assert_null(p->content);
		for (size_t k = 0; k < p->narchive_members; k++)
			assert_true(utf8_valid(p->archive_members[k],
			    strlen(p->archive_members[k])));
		assert_true(p->narchive_members <= l->max_archive_members);
	}
	assert_true(t->nparts <= l->max_parts);
	if (t->problems)
		assert_true(utf8_valid(t->problems, strlen(t->problems)));
}

static struct mime_tree *
parse_checked(const char *msg, size_t len, const struct mime_limits *l)
{
	struct mime_limits def;
	struct mime_tree *t;

	if (l == NULL) {
		mime_limits_default(&def);
		l = &def;
	}
	t = mime_parse(msg, len, l);
	assert_non_null(t);
	assert_true(t->nparts >= 1);
	check_tree(t, l);
	return t;
}

struct member {
	const char *name;
	const void *data;
	size_t len;
};

/* make_archive - format "zip", "ustar", "7zip"...; filter NULL or "gzip" */
static unsigned char *
make_archive(const char *format, const char *filter, const char *passphrase,
    const struct member *m, size_t n, size_t *len)
{
	size_t cap = 8 * 1024 * 1024;
	unsigned char *buf = xmalloc(cap);
	struct archive *a = archive_write_new();

	assert_int_equal(archive_write_set_format_by_name(a, format),
	    ARCHIVE_OK);
	if (filter)
		assert_int_equal(archive_write_add_filter_by_name(a, filter),
		    ARCHIVE_OK);
	if (passphrase) {
		assert_int_equal(archive_write_set_options(a,
		    "zip:encryption=zipcrypt"), ARCHIVE_OK);
		assert_int_equal(archive_write_set_passphrase(a, passphrase),
		    ARCHIVE_OK);
	}
	assert_int_equal(archive_write_open_memory(a, buf, cap, len),
	    ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();

		archive_entry_set_pathname(e, m[i].name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)m[i].len);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (m[i].len)
			assert_int_equal(archive_write_data(a, m[i].data,
			    m[i].len), (la_ssize_t)m[i].len);
		archive_entry_free(e);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	return buf;
}

/* attach - a multipart/mixed message with one text part and one file */
static char *
attach(const char *filename, const char *ctype, const void *data,
    size_t len)
{
	struct sb b = { NULL, 0, 0 };
	char *enc = b64(data, len);

	sb_printf(&b, "From: a@example.test\r\nSubject: file\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"=_b1\"\r\n\r\n"
	    "preamble\r\n--=_b1\r\nContent-Type: text/plain\r\n\r\n"
	    "see attached\r\n--=_b1\r\nContent-Type: %s\r\n"
	    "Content-Disposition: attachment; filename=\"%s\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--=_b1--\r\n",
	    ctype, filename, enc);
	free(enc);
	return b.s;
}

/* pe_image - the first bytes of a Windows PE executable */
static void
pe_image(unsigned char *b, size_t n)
{
	assert_true(n >= 512);
	memset(b, 0, n);
	memcpy(b, "MZ", 2);
	b[0x3c] = 0x80;
	memcpy(b + 0x80, "PE\0\0", 4);
	b[0x84] = 0x4c;			/* i386 */
	b[0x85] = 0x01;
	b[0x94] = 0xe0;			/* optional header size */
	b[0x96] = 0x02;			/* characteristics: executable */
	b[0x97] = 0x01;
	b[0x98] = 0x0b;			/* PE32 magic */
	b[0x99] = 0x01;
}

static int
is_exe_type(const char *t)
{
	return t != NULL && (strstr(t, "dosexec") != NULL ||
	    strstr(t, "portable-executable") != NULL);
}

/* --- structure ----------------------------------------------------------- */

static void
test_simple_multipart(void **state)
{
	const char *msg =
	    "From: a@example.test\r\n"
	    "Content-Type: multipart/alternative; boundary=XYZ\r\n\r\n"
	    "--XYZ\r\nContent-Type: text/plain; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "caf=C3=A9 =\r\nau lait\r\n"
	    "--XYZ\r\nContent-Type: TEXT/HTML\r\n\r\n<html><p>hi</p></html>\r\n"
	    "--XYZ--\r\nepilogue\r\n";
	struct mime_tree *t = parse(msg);

	assert_int_equal(t->nparts, 3);
	assert_false(t->limited);
	assert_null(t->problems);
	assert_string_equal(t->parts[0].content_type,
	    "multipart/alternative");
	assert_true(t->parts[0].is_multipart);
	assert_null(t->parts[0].content);
	assert_null(t->parts[0].sniffed_type);
	assert_int_equal(t->parts[1].parent, 0);
	assert_int_equal(t->parts[1].depth, 1);
	assert_string_equal(t->parts[1].charset, "UTF-8");
	assert_string_equal(t->parts[1].transfer_encoding,
	    "quoted-printable");
	assert_string_equal((char *)t->parts[1].content, "caf\xc3\xa9 au lait");
	assert_false(t->parts[1].decode_error);
	assert_false(t->parts[1].is_attachment);
	assert_string_equal(t->parts[2].content_type, "text/html");
	assert_string_equal((char *)t->parts[2].content,
	    "<html><p>hi</p></html>");
	/* inline text without a name is the message's text: not sniffed */
	assert_null(t->parts[1].sniffed_type);
	assert_null(t->parts[2].sniffed_type);
	mime_tree_free(t);
}

static void
test_lf_line_ends(void **state)
{
	const char *msg =
	    "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
	    "--b\nContent-Type: text/plain\n\none\n"
	    "--b\n\ntwo\n--b--\n";
	struct mime_tree *t = parse(msg);

	assert_int_equal(t->nparts, 3);
	assert_string_equal((char *)t->parts[1].content, "one");
	assert_string_equal((char *)t->parts[2].content, "two");
	assert_string_equal(t->parts[2].content_type, "text/plain");
	mime_tree_free(t);
}

static void
test_missing_close_boundary(void **state)
{
	const char *msg =
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n";
	struct mime_tree *t = parse(msg);

	assert_int_equal(t->nparts, 3);
	assert_string_equal((char *)t->parts[2].content, "two\r\n");
	assert_non_null(strstr(t->problems, "closing boundary missing"));
	mime_tree_free(t);
}

static void
test_missing_boundary_parameter(void **state)
{
	const char *msg =
	    "Content-Type: multipart/mixed\r\n\r\n"
	    "--b\r\nContent-Type: application/octet-stream\r\n\r\nMZ\r\n"
	    "--b--\r\n";
	struct mime_tree *t = parse(msg);

	assert_int_equal(t->nparts, 1);
	assert_false(t->parts[0].is_multipart);
	assert_string_equal(t->parts[0].content_type, "multipart/mixed");
	assert_non_null(t->parts[0].content);
	assert_non_null(strstr((char *)t->parts[0].content, "MZ"));
	assert_non_null(strstr(t->problems, "without boundary"));
	mime_tree_free(t);
}

static void
test_boundary_never_appears(void **state)
{
	const char *msg =
	    "Content-Type: multipart/mixed; boundary=nowhere\r\n\r\n"
	    "--elsewhere\r\nContent-Type: text/plain\r\n\r\nhidden\r\n";
	struct mime_tree *t = parse(msg);

	assert_int_equal(t->nparts, 1);
	assert_false(t->parts[0].is_multipart);
	assert_non_null(strstr((char *)t->parts[0].content, "hidden"));
	assert_non_null(strstr(t->problems, "never found"));
	mime_tree_free(t);
}

/* nested_message - levels of multipart, each with a fresh boundary */
static char *
nested_message(unsigned levels, size_t *len)
{
	struct sb b = { NULL, 0, 0 };

	for (unsigned i = 0; i < levels; i++)
		sb_printf(&b, "Content-Type: multipart/mixed; boundary=\"l%u\""
		    "\r\n\r\n--l%u\r\n", i, i);
	sb_printf(&b, "Content-Type: text/plain\r\n\r\ndeep\r\n");
	for (unsigned i = levels; i-- > 1; )
		sb_printf(&b, "--l%u--\r\n", i);
	sb_printf(&b, "--l0\r\nContent-Disposition: attachment;"
	    " filename=late.exe\r\n\r\nMZ\r\n--l0--\r\n");
	*len = b.len;
	return b.s;
}

static void
test_deep_nesting_100(void **state)
{
	struct mime_limits l;
	struct mime_tree *t;
	unsigned maxd = 0;
	size_t len;
	char *msg = nested_message(100, &len);

	mime_limits_default(&l);
	t = parse_checked(msg, len, &l);
	assert_true(t->limited);
	for (size_t i = 0; i < t->nparts; i++)
		if (t->parts[i].depth > maxd)
			maxd = t->parts[i].depth;
	assert_int_equal(maxd, l.max_depth);
	assert_non_null(strstr(t->problems, "max_depth"));
	mime_tree_free(t);
	free(msg);
}

static void
test_deep_nesting_10000(void **state)
{
	struct mime_limits l;
	struct mime_tree *t;
	size_t len;
	char *msg = nested_message(10000, &len);
	uint64_t t0 = mono_msec();

	mime_limits_default(&l);
	l.max_depth = 100000;			/* clamped to 256 */
	t = mime_parse(msg, len, &l);
	assert_non_null(t);
	assert_true(t->limited);
	for (size_t i = 0; i < t->nparts; i++)
		assert_true(t->parts[i].depth <= 256);
	assert_true(mono_msec() - t0 < 5000);
	mime_tree_free(t);
	free(msg);
}

static void
test_late_sibling_after_deep_nest(void **state)
{
	struct mime_tree *t;
	size_t len;
	char *msg = nested_message(30, &len);

	t = parse_checked(msg, len, NULL);
	/* the part after the too-deep subtree is still found */
	assert_non_null(find(t, "late.exe"));
	assert_int_equal(find(t, "late.exe")->depth, 1);
	mime_tree_free(t);
	free(msg);
}

static void
test_many_parts(void **state)
{
	struct sb b = { NULL, 0, 0 };
	struct mime_tree *t;
	uint64_t t0;

	sb_printf(&b, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (int i = 0; i < 10000; i++)
		sb_printf(&b, "--p\r\n\r\npart %d\r\n", i);
	sb_printf(&b, "--p--\r\n");
	t0 = mono_msec();
	t = parse_checked(b.s, b.len, NULL);
	assert_int_equal(t->nparts, 500);
	assert_true(t->limited);
	assert_non_null(strstr(t->problems, "max_parts"));
	assert_true(mono_msec() - t0 < 5000);
	mime_tree_free(t);
	free(b.s);
}

static void
test_million_empty_parts(void **state)
{
	struct sb b = { NULL, 0, 0 };
	struct mime_tree *t;

	sb_printf(&b, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (int i = 0; i < 1000000; i++)
		sb_add(&b, "--p\r\n\r\n", 7);
	t = parse_checked(b.s, b.len, NULL);
	assert_int_equal(t->nparts, 500);
	mime_tree_free(t);
	free(b.s);
}

static void
test_huge_header_line(void **state)
{
	struct sb b = { NULL, 0, 0 };
	struct mime_tree *t;
	char *x = xmalloc(1024 * 1024 + 1);

	memset(x, 'x', 1024 * 1024);
	x[1024 * 1024] = '\0';
	sb_printf(&b, "Subject: %s\r\nContent-Type: text/plain; name=\"%s\""
	    "\r\n\r\nbody\r\n", x, x);
	t = parse_checked(b.s, b.len, NULL);
	assert_int_equal(t->nparts, 1);
	assert_string_equal((char *)t->parts[0].content, "body\r\n");
	assert_true(t->limited);		/* the name was cut */
	mime_tree_free(t);
	free(b.s);
	free(x);
}

static void
test_headers_without_body(void **state)
{
	const char *msg =
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\nContent-Type: application/pdf\r\n"
	    "Content-Disposition: attachment; filename=a.pdf\r\n"
	    "--b\r\nContent-Type: text/plain\r\n\r\nafter\r\n--b--\r\n";
	struct mime_tree *t = parse(msg);

	assert_int_equal(t->nparts, 3);
	assert_string_equal(t->parts[1].filename, "a.pdf");
	assert_int_equal(t->parts[1].content_len, 0);
	assert_string_equal((char *)t->parts[2].content, "after");
	assert_non_null(strstr(t->problems, "ended by a boundary"));
	mime_tree_free(t);
}

static void
test_empty_message(void **state)
{
	struct mime_tree *t = parse_checked("", 0, NULL);

	assert_int_equal(t->nparts, 1);
	assert_string_equal(t->parts[0].content_type, "text/plain");
	assert_int_equal(t->parts[0].content_len, 0);
	assert_int_equal(t->parts[0].size, 0);
	assert_null(t->parts[0].sniffed_type);
	mime_tree_free(t);
	t = mime_parse(NULL, 0, NULL);
	assert_int_equal(t->nparts, 1);
	mime_tree_free(t);
}

static void
test_only_headers(void **state)
{
	const char *msg = "From: a@example.test\r\nSubject: nothing\r\n"
	    "Content-Type: application/zip; name=x.zip";
	struct mime_tree *t = parse(msg);

	assert_int_equal(t->nparts, 1);
	assert_string_equal(t->parts[0].content_type, "application/zip");
	assert_string_equal(t->parts[0].filename, "x.zip");
	assert_int_equal(t->parts[0].content_len, 0);
	assert_null(t->parts[0].archive_members);
	mime_tree_free(t);
}

static void
test_no_headers_at_all(void **state)
{
	struct mime_tree *t = parse("just a line of text\r\nand more\r\n");

	assert_int_equal(t->nparts, 1);
	assert_string_equal((char *)t->parts[0].content,
	    "just a line of text\r\nand more\r\n");
	mime_tree_free(t);
}

static void
test_message_rfc822_nested(void **state)
{
	const char *msg =
	    "Content-Type: multipart/mixed; boundary=o\r\n\r\n"
	    "--o\r\nContent-Type: text/plain\r\n\r\nouter\r\n"
	    "--o\r\nContent-Type: message/rfc822\r\n\r\n"
	    "From: b@example.test\r\nSubject: fwd\r\n"
	    "Content-Type: multipart/mixed; boundary=i\r\n\r\n"
	    "--i\r\nContent-Type: message/rfc822\r\n\r\n"
	    "Subject: innermost\r\nContent-Type: application/octet-stream;"
	    " name=deep.bin\r\n\r\nDATA\r\n"
	    "--i--\r\n"
	    "--o--\r\n";
	struct mime_tree *t = parse(msg);
	const struct mime_part *d;

	assert_int_equal(t->nparts, 6);
	assert_string_equal(t->parts[2].content_type, "message/rfc822");
	assert_true(t->parts[2].is_multipart);
	assert_string_equal(t->parts[3].content_type, "multipart/mixed");
	assert_int_equal(t->parts[3].parent, 2);
	assert_string_equal(t->parts[4].content_type, "message/rfc822");
	d = find(t, "deep.bin");
	assert_non_null(d);
	assert_int_equal(d->parent, 4);
	assert_int_equal(d->depth, 4);
	assert_string_equal((char *)d->content, "DATA");
	assert_null(t->problems);
	mime_tree_free(t);
}

static void
test_encoded_message_rfc822(void **state)
{
	const char *inner = "Content-Type: application/octet-stream;"
	    " name=hidden.exe\r\n\r\nMZ\r\n";
	char *enc = b64((const unsigned char *)inner, strlen(inner));
	struct sb b = { NULL, 0, 0 };
	struct mime_tree *t;

	sb_printf(&b, "Content-Type: message/rfc822\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n", enc);
	t = parse(b.s);
	assert_int_equal(t->nparts, 2);
	assert_true(t->parts[0].is_multipart);
	assert_null(t->parts[0].content);
	assert_non_null(find(t, "hidden.exe"));
	mime_tree_free(t);
	free(b.s);
	free(enc);
}

static void
test_digest_default_type(void **state)
{
	const char *msg =
	    "Content-Type: multipart/digest; boundary=d\r\n\r\n"
	    "--d\r\n\r\nSubject: one\r\n\r\nbody\r\n--d--\r\n";
	struct mime_tree *t = parse(msg);

	assert_string_equal(t->parts[1].content_type, "message/rfc822");
	assert_int_equal(t->nparts, 3);
	assert_string_equal((char *)t->parts[2].content, "body");
	mime_tree_free(t);
}

static void
test_nul_bytes(void **state)
{
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=n\r\n\r\n"
	    "--n\r\nContent-Type: application/octet-stream\r\n"
	    "Content-Disposition: attachment; filename=\"evil.exe\0.pdf\"\r\n"
	    "\r\nA\0B\0C\r\n--n--\r\n";
	struct mime_tree *t = parse_checked(msg, sizeof(msg) - 1, NULL);

	assert_int_equal(t->nparts, 2);
	assert_string_equal(t->parts[1].filename, "evil.exe.pdf");
	assert_int_equal(t->parts[1].content_len, 5);
	assert_memory_equal(t->parts[1].content, "A\0B\0C", 5);
	mime_tree_free(t);
}

static void
test_non_utf8_headers(void **state)
{
	const char *msg =
	    "Subject: caf\xe9\r\n"
	    "Content-Type: text/plain; charset=\"\xff\"; name=\"r\xe9sum\xe9.doc\""
	    "\r\n\r\nx";
	struct mime_tree *t = parse_checked(msg, strlen(msg), NULL);
	char *s = mime_decode_header("caf\xe9 \xff");

	assert_string_equal(t->parts[0].filename,
	    "r\xef\xbf\xbdsum\xef\xbf\xbd.doc");
	assert_string_equal(t->parts[0].charset, "\xef\xbf\xbd");
	assert_string_equal(s, "caf\xef\xbf\xbd \xef\xbf\xbd");
	free(s);
	mime_tree_free(t);
}

/* --- header fields --------------------------------------------------------- */

static void
test_rfc2231_filename(void **state)
{
	const char *msg =
	    "Content-Type: application/pdf\r\n"
	    "Content-Disposition: attachment;\r\n"
	    " filename*0*=utf-8''%E2%82%AC%20rate;\r\n"
	    " filename*1*=%20%C3%A9t%C3%A9.pdf\r\n\r\n%PDF-1.4\r\n";
	struct mime_tree *t = parse(msg);

	assert_string_equal(t->parts[0].filename,
	    "\xe2\x82\xac rate \xc3\xa9t\xc3\xa9.pdf");
	assert_true(t->parts[0].is_attachment);
	assert_string_equal(t->parts[0].disposition, "attachment");
	mime_tree_free(t);
}

static void
test_rfc2047_filename_and_subject(void **state)
{
	const char *msg =
	    "Subject: =?utf-8?B?w6lsw6k=?= =?iso-8859-1?Q?caf=E9?=\r\n"
	    "Content-Type: multipart/mixed; boundary=e\r\n\r\n"
	    "--e\r\nContent-Type: application/octet-stream;"
	    " name=\"=?utf-8?B?w6lsw6kucGRm?=\"\r\n\r\nx\r\n"
	    "--e\r\nContent-Type: application/octet-stream;"
	    " name==?iso-8859-1?Q?caf=E9.exe?=\r\n\r\nx\r\n--e--\r\n";
	struct mime_tree *t = parse(msg);
	char *s = mime_decode_header(
	    "=?utf-8?B?w6lsw6k=?= =?iso-8859-1?Q?caf=E9?=");

	assert_string_equal(s, "\xc3\xa9l\xc3\xa9" "caf\xc3\xa9");
	free(s);
	assert_string_equal(t->parts[1].filename, "\xc3\xa9l\xc3\xa9.pdf");
	assert_string_equal(t->parts[2].filename, "caf\xc3\xa9.exe");
	assert_true(t->parts[2].is_attachment);
	assert_null(t->parts[2].disposition);
	mime_tree_free(t);
}

static void
test_decode_header_invalid(void **state)
{
	char *s;

	s = mime_decode_header("plain text");
	assert_string_equal(s, "plain text");
	free(s);
	s = mime_decode_header("=?utf-8?X?abc?=");
	assert_string_equal(s, "=?utf-8?X?abc?=");
	free(s);
	s = mime_decode_header("=?utf-8?B?!!!?=");	/* undecodable */
	assert_string_equal(s, "=?utf-8?B?!!!?=");
	free(s);
	s = mime_decode_header("=?utf-8?Q?=FF=FE?=");
	assert_true(utf8_valid(s, strlen(s)));
	free(s);
	s = mime_decode_header("");
	assert_string_equal(s, "");
	free(s);
	s = mime_decode_header(NULL);
	assert_string_equal(s, "");
	free(s);
}

static void
test_invalid_content_type(void **state)
{
	const char *msg =
	    "Content-Type: multipart/mixed; boundary=v\r\n\r\n"
	    "--v\r\nContent-Type: garbage; name=evil.exe\r\n\r\nx\r\n"
	    "--v\r\nContent-Type: /plain\r\n\r\ny\r\n"
	    "--v\r\nContent-Type: text/plain (comment); charset=us-ascii\r\n"
	    "\r\nz\r\n--v--\r\n";
	struct mime_tree *t = parse(msg);

	assert_int_equal(t->nparts, 4);
	assert_string_equal(t->parts[1].content_type, "text/plain");
	assert_string_equal(t->parts[1].filename, "evil.exe");
	assert_string_equal(t->parts[2].content_type, "text/plain");
	assert_string_equal(t->parts[3].charset, "us-ascii");
	assert_non_null(strstr(t->problems, "invalid Content-Type"));
	mime_tree_free(t);
}

static void
test_junk_parameter_hides_nothing(void **state)
{
	const char *msg =
	    "Content-Type: application/octet-stream\r\n"
	    "Content-Disposition: attachment; junk; filename=\"a;b.exe\"\r\n"
	    "\r\nx";
	struct mime_tree *t = parse(msg);

	assert_string_equal(t->parts[0].filename, "a;b.exe");
	assert_non_null(strstr(t->problems, "parameters skipped"));
	mime_tree_free(t);
}

static void
test_duplicate_content_type(void **state)
{
	const char *msg = "Content-Type: text/plain\r\n"
	    "Content-Type: application/x-msdownload\r\n\r\nx";
	struct mime_tree *t = parse(msg);

	assert_string_equal(t->parts[0].content_type, "text/plain");
	assert_non_null(strstr(t->problems, "repeated"));
	mime_tree_free(t);
}

static void
test_double_extension(void **state)
{
	unsigned char pdf[] = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n";
	char *msg = attach("invoice.pdf.exe", "application/pdf", pdf,
	    sizeof(pdf) - 1);
	struct mime_tree *t = parse(msg);
	const struct mime_part *p = find(t, "invoice.pdf.exe");

	assert_non_null(p);
	assert_true(p->is_attachment);
	assert_string_equal(p->content_type, "application/pdf");
	assert_string_equal(p->sniffed_type, "application/pdf");
	mime_tree_free(t);
	free(msg);
}

/* --- transfer encodings ---------------------------------------------------- */

static void
test_exe_renamed_pdf(void **state)
{
	unsigned char exe[1024];
	char *msg;
	struct mime_tree *t;
	const struct mime_part *p;

	pe_image(exe, sizeof(exe));
	msg = attach("report.pdf", "application/pdf", exe, sizeof(exe));
	t = parse(msg);
	p = find(t, "report.pdf");
	assert_non_null(p);
	assert_int_equal(p->content_len, sizeof(exe));
	assert_memory_equal(p->content, exe, sizeof(exe));
	assert_false(p->decode_error);
	assert_true(is_exe_type(p->sniffed_type));
	mime_tree_free(t);
	free(msg);
}

static void
test_bad_base64(void **state)
{
	const char *msg =
	    "Content-Type: multipart/mixed; boundary=x\r\n\r\n"
	    "--x\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVs*bG8h\r\n"
	    "--x\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8\r\n"
	    "--x\r\nContent-Transfer-Encoding: base64\r\n\r\nS===\r\n"
	    "--x\r\nContent-Transfer-Encoding: BASE64\r\n\r\nSGVs\r\nbG8h\r\n"
	    "--x--\r\n";
	struct mime_tree *t = parse(msg);

	assert_int_equal(t->nparts, 5);
	assert_true(t->parts[1].decode_error);
	assert_string_equal((char *)t->parts[1].content, "Hello!");
	assert_true(t->parts[2].decode_error);	/* truncated quantum */
	assert_true(t->parts[3].decode_error);
	assert_false(t->parts[4].decode_error);
	assert_string_equal(t->parts[4].transfer_encoding, "base64");
	assert_string_equal((char *)t->parts[4].content, "Hello!");
	mime_tree_free(t);
}

static void
test_bad_quoted_printable(void **state)
{
	const char *msg =
	    "Content-Type: multipart/mixed; boundary=q\r\n\r\n"
	    "--q\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "a=ZZb=4\r\n"
	    "--q\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "soft=\r\nbreak=3D=3d\r\n"
	    "--q--\r\n";
	struct mime_tree *t = parse(msg);

	assert_true(t->parts[1].decode_error);
	assert_false(t->parts[2].decode_error);
	assert_string_equal((char *)t->parts[2].content, "softbreak==");
	mime_tree_free(t);
}

static void
test_unknown_transfer_encoding(void **state)
{
	const char *msg = "Content-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: X-Rot13 (private)\r\n\r\nuryyb";
	struct mime_tree *t = parse(msg);

	assert_string_equal(t->parts[0].transfer_encoding, "x-rot13");
	assert_true(t->parts[0].decode_error);
	assert_string_equal((char *)t->parts[0].content, "uryyb");
	assert_non_null(strstr(t->problems, "unknown transfer encoding"));
	mime_tree_free(t);
}

static void
test_uuencode(void **state)
{
	const char *msg = "Content-Transfer-Encoding: x-uuencode\r\n\r\n"
	    "begin 644 a.txt\r\n&:&5L;&\\*\r\n`\r\nend\r\n";
	struct mime_tree *t = parse(msg);

	assert_string_equal((char *)t->parts[0].content, "hello\n");
	assert_false(t->parts[0].decode_error);
	mime_tree_free(t);
}

static void
test_part_and_total_limits(void **state)
{
	struct mime_limits l;
	struct sb b = { NULL, 0, 0 };
	struct mime_tree *t;

	mime_limits_default(&l);
	l.max_part_decoded = 10;
	l.max_total_decoded = 15;
	sb_printf(&b, "Content-Type: multipart/mixed; boundary=z\r\n\r\n"
	    "--z\r\n\r\n0123456789abcdef\r\n--z\r\n\r\n0123456789abcdef\r\n"
	    "--z\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	    "MDEyMzQ1Njc4OWFiY2RlZg==\r\n--z--\r\n");
	t = parse_checked(b.s, b.len, &l);
	assert_int_equal(t->nparts, 4);
	assert_int_equal(t->parts[1].content_len, 10);
	assert_int_equal(t->parts[1].size, 16);
	assert_true(t->parts[1].truncated);
	assert_int_equal(t->parts[2].content_len, 5);
	assert_int_equal(t->parts[3].content_len, 0);
	assert_int_equal(t->parts[3].size, 16);
	assert_true(t->limited);
	mime_tree_free(t);
	free(b.s);
}

/* --- archives ------------------------------------------------------------ */

static void
test_zip_with_exe(void **state)
{
	unsigned char exe[600];
	struct member m[2];
	size_t zlen;
	unsigned char *zip;
	char *msg;
	struct mime_tree *t;
	const struct mime_part *p;

	pe_image(exe, sizeof(exe));
	m[0] = (struct member){ "readme.txt", "hello\n", 6 };
	m[1] = (struct member){ "dir/evil.exe", exe, sizeof(exe) };
	zip = make_archive("zip", NULL, NULL, m, 2, &zlen);
	msg = attach("docs.zip", "application/zip", zip, zlen);
	t = parse(msg);
	p = find(t, "docs.zip");
	assert_non_null(p);
	assert_string_equal(p->sniffed_type, "application/zip");
	assert_int_equal(p->narchive_members, 2);
	assert_true(has_member(p, "readme.txt"));
	assert_true(has_member(p, "dir/evil.exe"));
	assert_false(p->archive_truncated);
	assert_false(p->archive_encrypted);
	mime_tree_free(t);
	free(msg);
	free(zip);
}

static void
test_zip_in_zip(void **state)
{
	unsigned char exe[600], *inner, *outer, *inner2;
	struct member m[2];
	size_t ilen, olen, i2len;
	char *msg;
	struct mime_tree *t;
	const struct mime_part *p;

	pe_image(exe, sizeof(exe));
	m[0] = (struct member){ "evil.exe", exe, sizeof(exe) };
	inner2 = make_archive("zip", NULL, NULL, m, 1, &i2len);
	m[0] = (struct member){ "level2.zip", inner2, i2len };
	inner = make_archive("zip", NULL, NULL, m, 1, &ilen);
	m[0] = (struct member){ "inner.zip", inner, ilen };
	m[1] = (struct member){ "note.txt", "x", 1 };
	outer = make_archive("zip", NULL, NULL, m, 2, &olen);
	msg = attach("outer.zip", "application/zip", outer, olen);
	t = parse(msg);
	p = find(t, "outer.zip");
	assert_non_null(p);
	assert_true(has_member(p, "inner.zip"));
	assert_true(has_member(p, "inner.zip/level2.zip"));
	assert_true(has_member(p, "inner.zip/level2.zip/evil.exe"));
	assert_true(has_member(p, "note.txt"));
	assert_int_equal(p->narchive_members, 4);
	mime_tree_free(t);

	/* max_archive_depth 1: level2.zip is named, not opened */
	struct mime_limits l;
	mime_limits_default(&l);
	l.max_archive_depth = 1;
	t = parse_checked(msg, strlen(msg), &l);
	p = find(t, "outer.zip");
	assert_true(has_member(p, "inner.zip/level2.zip"));
	assert_false(has_member(p, "inner.zip/level2.zip/evil.exe"));
	mime_tree_free(t);
	free(msg);
	free(outer);
	free(inner);
	free(inner2);
}

static void
test_encrypted_zip(void **state)
{
	struct member m[1] = { { "secret.exe", "MZ secret", 9 } };
	size_t zlen;
	unsigned char *zip = make_archive("zip", NULL, "pw", m, 1, &zlen);
	char *msg = attach("locked.zip", "application/zip", zip, zlen);
	struct mime_tree *t = parse(msg);
	const struct mime_part *p = find(t, "locked.zip");

	assert_non_null(p);
	assert_true(p->archive_encrypted);
	assert_true(has_member(p, "secret.exe"));
	mime_tree_free(t);
	free(msg);
	free(zip);
}

static void
test_tar_gz(void **state)
{
	unsigned char exe[600];
	struct member m[2];
	size_t len;
	unsigned char *tgz;
	char *msg;
	struct mime_tree *t;
	const struct mime_part *p;

	pe_image(exe, sizeof(exe));
	m[0] = (struct member){ "a/readme.txt", "hi\n", 3 };
	m[1] = (struct member){ "a/setup.exe", exe, sizeof(exe) };
	tgz = make_archive("ustar", "gzip", NULL, m, 2, &len);
	/* the declared type and name say nothing: the bytes do */
	msg = attach("photo.jpg", "image/jpeg", tgz, len);
	t = parse(msg);
	p = find(t, "photo.jpg");
	assert_non_null(p);
	assert_string_equal(p->sniffed_type, "application/gzip");
	assert_int_equal(p->narchive_members, 2);
	assert_true(has_member(p, "a/setup.exe"));
	mime_tree_free(t);
	free(msg);
	free(tgz);
}

static void
test_gz_single_file(void **state)
{
	unsigned char exe[600];
	struct member m[1];
	size_t len;
	unsigned char *gz;
	char *msg;
	struct mime_tree *t;
	const struct mime_part *p;

	pe_image(exe, sizeof(exe));
	m[0] = (struct member){ "ignored", exe, sizeof(exe) };
	gz = make_archive("raw", "gzip", NULL, m, 1, &len);
	msg = attach("evil.exe.gz", "application/gzip", gz, len);
	t = parse(msg);
	p = find(t, "evil.exe.gz");
	assert_non_null(p);
	assert_int_equal(p->narchive_members, 1);
	assert_string_equal(p->archive_members[0], "evil.exe");
	mime_tree_free(t);
	free(msg);
	free(gz);
}

static void
test_zip_many_entries(void **state)
{
	enum { N = 5000 };
	struct member *m = xcalloc(N, sizeof(*m));
	char (*names)[16] = xcalloc(N, sizeof(*names));
	size_t len;
	unsigned char *zip;
	char *msg;
	struct mime_tree *t;
	const struct mime_part *p;
	uint64_t t0;

	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "f%05d.exe", i);
		m[i] = (struct member){ names[i], "", 0 };
	}
	zip = make_archive("zip", NULL, NULL, m, N, &len);
	msg = attach("many.zip", "application/zip", zip, len);
	t0 = mono_msec();
	t = parse(msg);
	p = find(t, "many.zip");
	assert_non_null(p);
	assert_int_equal(p->narchive_members, 1000);
	assert_true(p->archive_truncated);
	assert_true(t->limited);
	assert_true(mono_msec() - t0 < 5000);
	mime_tree_free(t);
	free(msg);
	free(zip);
	free(m);
	free(names);
}

static void
test_decompression_bomb(void **state)
{
	size_t big = 64 * 1024 * 1024, len;
	unsigned char *zeros = xcalloc(1, big), *tgz, *zip;
	struct member m[2] = { { "zeros.bin", zeros, big },
	    { "after.exe", "MZ", 2 } };
	struct mime_limits l;
	char *msg;
	struct mime_tree *t;
	const struct mime_part *p;
	uint64_t t0;

	mime_limits_default(&l);
	l.max_archive_bytes = 4 * 1024 * 1024;
	tgz = make_archive("ustar", "gzip", NULL, m, 2, &len);
	msg = attach("bomb.tar.gz", "application/gzip", tgz, len);
	t0 = mono_msec();
	t = parse_checked(msg, strlen(msg), &l);
	p = find(t, "bomb.tar.gz");
	assert_non_null(p);
	assert_true(has_member(p, "zeros.bin"));
	assert_true(p->archive_truncated);	/* budget spent on zeros */
	assert_true(t->limited);
	assert_true(mono_msec() - t0 < 2000);
	mime_tree_free(t);
	free(msg);
	free(tgz);

	/* zip entries of known size are skipped after their first block */
	zip = make_archive("zip", NULL, NULL, m, 2, &len);
	msg = attach("bomb.zip", "application/zip", zip, len);
	t0 = mono_msec();
	t = parse_checked(msg, strlen(msg), &l);
	p = find(t, "bomb.zip");
	assert_true(has_member(p, "after.exe"));
	assert_false(p->archive_truncated);
	assert_true(mono_msec() - t0 < 2000);
	mime_tree_free(t);
	free(msg);
	free(zip);
	free(zeros);
}

static void
test_not_really_archive(void **state)
{
	const char *mtree = "#mtree\n./etc/passwd type=file\n"
	    "./dev/zero type=file\n";
	char *msg = attach("list.tar", "application/x-tar",
	    (const unsigned char *)mtree, strlen(mtree));
	struct mime_tree *t = parse(msg);
	const struct mime_part *p = find(t, "list.tar");

	assert_non_null(p);
	assert_null(p->archive_members);
	assert_non_null(strstr(t->problems, "cannot be read"));
	mime_tree_free(t);
	free(msg);
}

static void
test_garbage_inputs(void **state)
{
	static const char *const msgs[] = {
		"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n",
		"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a--",
		"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a",
		"Content-Type: message/rfc822\r\n\r\n",
		"Content-Type: message/rfc822\r\n",
		"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
		    "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
		    "--a--\r\n--a--\r\n",
		"\r\n\r\n\r\n",
		"From sender Mon Jan 1 00:00:00 2024\r\nSubject: x\r\n\r\nb",
		" folded first\r\nContent-Type: text/html\r\n\r\n",
		"Content-Type: text/plain; charset*=''; name*0*=x'';"
		    " name*1*=%\r\n\r\n",
		"Content-Disposition: \r\nContent-Type: ;;;\r\n\r\n",
		"Content-Transfer-Encoding: base64\r\n\r\n=",
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n=",
		"Content-Type: application/zip\r\n"
		    "Content-Transfer-Encoding: base64\r\n\r\nUEsDBAoAAAAAAA==",
	};

	for (size_t i = 0; i < nitems(msgs); i++) {
		struct mime_tree *t = parse_checked(msgs[i], strlen(msgs[i]),
		    NULL);

		mime_tree_free(t);
	}
}

static void
test_random_mutations(void **state)
{
	unsigned char exe[600];
	struct member m[1];
	size_t zlen;
	unsigned char *zip;
	char *base, *msg;
	size_t len;
	unsigned seed = 12345;

	pe_image(exe, sizeof(exe));
	m[0] = (struct member){ "evil.exe", exe, sizeof(exe) };
	zip = make_archive("zip", NULL, NULL, m, 1, &zlen);
	base = attach("a.zip", "application/zip", zip, zlen);
	len = strlen(base);
	msg = xmalloc(len);
	for (int round = 0; round < 300; round++) {
		memcpy(msg, base, len);
		for (int k = 0; k < 8; k++) {
			seed = seed * 1103515245 + 12345;
			msg[(seed >> 8) % len] = (char)(seed >> 20);
		}
		mime_tree_free(parse_checked(msg, len - (seed % 7), NULL));
	}
	free(msg);
	free(base);
	free(zip);
}

/* --- threads ------------------------------------------------------------- */

struct job {
	const char *msg;
	const char *filename;		/* part to look at */
	const char *member;		/* its archive member, or NULL: an exe */
	int ok;
};

static void *
worker(void *arg)
{
	struct job *j = arg;

	j->ok = 1;
	for (int i = 0; i < 40; i++) {
		struct mime_tree *t = mime_parse(j->msg, strlen(j->msg), NULL);
		const struct mime_part *p = find(t, j->filename);

		if (p == NULL)
			j->ok = 0;
		else if (j->member ? !has_member(p, j->member) :
		    !is_exe_type(p->sniffed_type))
			j->ok = 0;
		mime_tree_free(t);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	unsigned char exe[1024], *tgz;
	struct member m[1];
	pthread_t th[4];
	struct job jobs[4];
	char *msgs[2];
	size_t len;

	pe_image(exe, sizeof(exe));
	m[0] = (struct member){ "a/setup.exe", exe, sizeof(exe) };
	tgz = make_archive("ustar", "gzip", NULL, m, 1, &len);
	msgs[0] = attach("=?iso-8859-1?Q?caf=E9.pdf?=", "application/pdf",
	    exe, sizeof(exe));
	msgs[1] = attach("x.tgz", "application/x-gtar", tgz, len);
	for (int i = 0; i < 4; i++) {
		jobs[i].msg = msgs[i % 2];
		jobs[i].filename = i % 2 ? "x.tgz" : "caf\xc3\xa9.pdf";
		jobs[i].member = i % 2 ? "a/setup.exe" : NULL;
		assert_int_equal(pthread_create(&th[i], NULL, worker,
		    &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_true(jobs[i].ok);
	}
	free(msgs[0]);
	free(msgs[1]);
	free(tgz);
}

/* b64_msg - a one-part message whose base64 body is text */
static struct mime_tree *
b64_msg(const char *body)
{
	char *msg;
	struct mime_tree *t;

	xasprintf(&msg, "Content-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n%s", body);
	t = parse(msg);
	free(msg);
	return t;
}

/* test_base64_decoder - the fast decoder against known answers */
static void
test_base64_decoder(void **state)
{
	static const struct {
		const char *in, *out;
		int error;
	} cases[] = {
		{ "QUJD\r\n", "ABC", 0 },
		{ "QUI=\r\n", "AB", 0 },
		{ "QQ==\r\n", "A", 0 },
		{ "QUJDREVG\r\nR0g=\r\n", "ABCDEFGH", 0 },
		{ "QU JD\r\n", "ABC", 0 },			/* blanks inside */
		{ "QUJ\r\n", "AB", 1 },			/* cut quantum */
		{ "QQ\r\n", "A", 1 },
		{ "QU!JD\r\n", "ABC", 1 },			/* foreign char */
		{ "Q===\r\n", "", 1 },			/* early padding */
		{ "QQ==QUJD\r\n", "AABC", 1 },		/* data after pad */
		{ "", "", 0 },
	};
	char big[40000], enc[60000];
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mime_tree *t = b64_msg(cases[i].in);
		assert_int_equal(t->nparts, 1);
		assert_int_equal(t->parts[0].content_len, strlen(cases[i].out));
		assert_memory_equal(t->parts[0].content, cases[i].out,
		    t->parts[0].content_len);
		assert_int_equal(t->parts[0].decode_error, cases[i].error);
		mime_tree_free(t);
	}
	/* 40000 pseudo-random bytes, encoded in 76-column lines */
	size_t o = 0, col = 0;
	srand(3);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)rand();
	for (size_t i = 0; i < sizeof(big); i += 3) {
		unsigned char b0 = (unsigned char)big[i];
		unsigned char b1 = i + 1 < sizeof(big) ? (unsigned char)big[i + 1] : 0;
		unsigned char b2 = i + 2 < sizeof(big) ? (unsigned char)big[i + 2] : 0;
		enc[o++] = a[b0 >> 2];
		enc[o++] = a[((b0 & 3) << 4) | (b1 >> 4)];
		enc[o++] = i + 1 < sizeof(big) ? a[((b1 & 15) << 2) | (b2 >> 6)] : '=';
		enc[o++] = i + 2 < sizeof(big) ? a[b2 & 63] : '=';
		if ((col += 4) == 76) {
			enc[o++] = '\r';
			enc[o++] = '\n';
			col = 0;
		}
	}
	enc[o++] = '\r';
	enc[o++] = '\n';
	enc[o] = '\0';
	struct mime_tree *t = b64_msg(enc);
	assert_int_equal(t->parts[0].content_len, sizeof(big));
	assert_memory_equal(t->parts[0].content, big, sizeof(big));
	assert_false(t->parts[0].decode_error);
	mime_tree_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_multipart),
		cmocka_unit_test(test_base64_decoder),
		cmocka_unit_test(test_lf_line_ends),
		cmocka_unit_test(test_missing_close_boundary),
		cmocka_unit_test(test_missing_boundary_parameter),
		cmocka_unit_test(test_boundary_never_appears),
		cmocka_unit_test(test_deep_nesting_100),
		cmocka_unit_test(test_deep_nesting_10000),
		cmocka_unit_test(test_late_sibling_after_deep_nest),
		cmocka_unit_test(test_many_parts),
		cmocka_unit_test(test_million_empty_parts),
		cmocka_unit_test(test_huge_header_line),
		cmocka_unit_test(test_headers_without_body),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_only_headers),
		cmocka_unit_test(test_no_headers_at_all),
		cmocka_unit_test(test_message_rfc822_nested),
		cmocka_unit_test(test_encoded_message_rfc822),
		cmocka_unit_test(test_digest_default_type),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_non_utf8_headers),
		cmocka_unit_test(test_rfc2231_filename),
		cmocka_unit_test(test_rfc2047_filename_and_subject),
		cmocka_unit_test(test_decode_header_invalid),
		cmocka_unit_test(test_invalid_content_type),
		cmocka_unit_test(test_junk_parameter_hides_nothing),
		cmocka_unit_test(test_duplicate_content_type),
		cmocka_unit_test(test_double_extension),
		cmocka_unit_test(test_exe_renamed_pdf),
		cmocka_unit_test(test_bad_base64),
		cmocka_unit_test(test_bad_quoted_printable),
		cmocka_unit_test(test_unknown_transfer_encoding),
		cmocka_unit_test(test_uuencode),
		cmocka_unit_test(test_part_and_total_limits),
		cmocka_unit_test(test_zip_with_exe),
		cmocka_unit_test(test_zip_in_zip),
		cmocka_unit_test(test_encrypted_zip),
		cmocka_unit_test(test_tar_gz),
		cmocka_unit_test(test_gz_single_file),
		cmocka_unit_test(test_zip_many_entries),
		cmocka_unit_test(test_decompression_bomb),
		cmocka_unit_test(test_not_really_archive),
		cmocka_unit_test(test_garbage_inputs),
		cmocka_unit_test(test_random_mutations),
		cmocka_unit_test(test_threads),
	};
	int rc;

	mime_global_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	mime_global_shutdown();
	return rc;
}
