/*
 * fuzz_mime_header.c - header decoding as filters see it: the input is a
 * message for message_init() (header fields split, unfolded; an untouched
 * message with CRLF line ends, as the DATA decoder delivers them, must
 * render byte for byte as it came), every field value goes
 * through mime_decode_header() (RFC 2047), whose result must be valid
 * UTF-8; and the input cut at its first LF is also used as both a
 * Content-Type and a Content-Disposition value of an empty part through
 * mime_parse(), which is where RFC 2231 filename parameters are joined and
 * decoded.
 */
#include <stdio.h>

#include "fuzz.h"
#include "message.h"
#include "mime.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	mime_global_init();
	return 0;
}

/* utf8_ok - well-formed UTF-8 (no overlongs or surrogates checked) */
static int
utf8_ok(const unsigned char *s)
{
	while (*s) {
		int n = *s < 0x80 ? 0 : (*s & 0xe0) == 0xc0 ? 1 :
		    (*s & 0xf0) == 0xe0 ? 2 : (*s & 0xf8) == 0xf0 ? 3 : -1;
		if (n < 0)
			return 0;
		s++;
		while (n-- > 0)
			if ((*s++ & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

static void
decode(const char *raw)
{
	char *d = mime_decode_header(raw);

	fuzz_check(d != NULL);
	fuzz_check(utf8_ok((unsigned char *)d));
	free(d);
}

static void
fields(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t n = nl ? (size_t)(nl - data) : size;
	struct mime_limits lim;
	struct mime_tree *t;
	char *msg;
	int len;

	if (n > 4000 || memchr(data, '\0', n) != NULL)
		return;
	if ((msg = malloc(2 * n + 128)) == NULL)
		abort();
	len = sprintf(msg, "Content-Type: %.*s\r\nContent-Disposition: %.*s\r\n"
	    "\r\n", (int)n, (const char *)data, (int)n, (const char *)data);
	mime_limits_default(&lim);
	t = mime_parse(msg, (size_t)len, &lim);
	fuzz_check(t != NULL && t->nparts >= 1);
	for (size_t i = 0; i < t->nparts; i++) {
		const struct mime_part *p = &t->parts[i];
		if (p->filename != NULL)
			fuzz_check(utf8_ok((unsigned char *)p->filename));
		fuzz_check(p->content_type != NULL);
		fuzz_check(utf8_ok((unsigned char *)p->content_type));
	}
	mime_tree_free(t);
	free(msg);
}

/* crlf_clean - every CR and LF is part of a CRLF pair */
static int
crlf_clean(const uint8_t *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '\r' && (i + 1 == n || d[i + 1] != '\n'))
			return 0;
		if (d[i] == '\n' && (i == 0 || d[i - 1] != '\r'))
			return 0;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct message m;
	char *text, *s;
	size_t len;

	s = fuzz_str(data, size);
	decode(s);
	free(s);

	message_init(&m, fuzz_dup(data, size), size);
	for (size_t i = 0; i < m.nhdrs; i++) {
		fuzz_check(m.hdrs[i].name != NULL && m.hdrs[i].value != NULL);
		decode(m.hdrs[i].value);
		(void)message_get(&m, m.hdrs[i].name, 0);
	}
	text = message_render(&m, &len);
	if (crlf_clean(data, size))
		fuzz_check(len == size &&
		    (size == 0 || memcmp(text, data, size) == 0));
	free(text);
	message_clear(&m);

	fields(data, size);
	return 0;
}
