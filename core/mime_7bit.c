/*
 * mime_7bit.c - the 8BITMIME downgrade of mime_7bit.h: a walk over the
 * MIME structure (header fields of each entity, multipart delimiters,
 * message/rfc822 bodies) that copies what is 7-bit already and writes
 * quoted-printable (RFC 2045 6.7) for 8-bit leaf bodies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime_7bit.h"
#include "sbuf.h"
#include "util.h"

#define DEPTH_MAX	32	/* nesting beyond this is encoded as a leaf */
#define QP_LINE		76	/* encoded line length, "=" included */
#define BOUNDARY_MAX	70	/* RFC 2046 5.1.1 */

/* ---- header fields ---- */

struct entity {
	size_t hdr_len;		/* header fields, without the empty line */
	size_t body;		/* where the body starts */
	char type[128];		/* "multipart/mixed", lower case; "" absent */
	char cte[32];		/* "8bit", lower case; "" absent */
	char boundary[BOUNDARY_MAX + 1];
	int mime_version;	/* has a MIME-Version field */
};

/* field_end - the end of the field starting at i (continuations too) */
static size_t
field_end(const char *m, size_t n, size_t i)
{
	for (;;) {
		const char *lf = memchr(m + i, '\n', n - i);
		if (lf == NULL)
			return n;
		i = (size_t)(lf - m) + 1;
		if (i >= n || (m[i] != ' ' && m[i] != '\t'))
			return i;
	}
}

static int
field_is(const char *f, size_t n, const char *name)
{
	size_t k = strlen(name);

	return n > k && strncasecmp(f, name, k) == 0 && f[k] == ':';
}

/* value_token - the first token of a field's value, lower case */
static void
value_token(const char *f, size_t n, char *buf, size_t len, const char *stop)
{
	size_t i = (size_t)((const char *)memchr(f, ':', n) - f) + 1, o = 0;

	while (i < n && strchr(" \t\r\n", f[i]) != NULL)
		i++;
	while (i < n && o + 1 < len && strchr(stop, f[i]) == NULL) {
		char c = f[i++];
		buf[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	buf[o] = '\0';
}

/* boundary_param - Content-Type's boundary=, quoted or not */
static void
boundary_param(const char *f, size_t n, char *buf, size_t len)
{
	buf[0] = '\0';
	for (size_t i = 0; i + 9 < n; i++) {
		if (strncasecmp(f + i, "boundary=", 9) != 0 ||
		    (i > 0 && strchr("; \t\n", f[i - 1]) == NULL))
			continue;
		size_t j = i + 9, o = 0;
		int quoted = j < n && f[j] == '"';
		j += quoted;
		while (j < n && o + 1 < len) {
			char c = f[j];
			if (quoted ? c == '"' : strchr("; \t\r\n", c) != NULL)
				break;
			buf[o++] = c;
			j++;
		}
		buf[o] = '\0';
		return;
	}
}

static void
parse_entity(const char *m, size_t n, struct entity *e)
{
	const char *end;
	size_t i = 0;

	memset(e, 0, sizeof(*e));
	if (n >= 2 && m[0] == '\r' && m[1] == '\n') {	/* no fields */
		e->body = 2;
		return;
	}
	end = memmem(m, n, "\r\n\r\n", 4);
	e->hdr_len = end ? (size_t)(end - m) + 2 : n;
	e->body = end ? e->hdr_len + 2 : n;
	while (i < e->hdr_len) {
		size_t j = field_end(m, e->hdr_len, i);
		if (field_is(m + i, j - i, "Content-Type")) {
			value_token(m + i, j - i, e->type, sizeof(e->type),
			    "; \t\r\n(");
			boundary_param(m + i, j - i, e->boundary,
			    sizeof(e->boundary));
		} else if (field_is(m + i, j - i, "Content-Transfer-Encoding"))
			value_token(m + i, j - i, e->cte, sizeof(e->cte),
			    "; \t\r\n(");
		else if (field_is(m + i, j - i, "MIME-Version"))
			e->mime_version = 1;
		i = j;
	}
}

/* put_fields - the header fields, the CTE one replaced by cte (NULL:
   kept), or added when there is none, then the empty line */
static void
put_fields(struct sbuf *o, const char *m, const struct entity *e,
    const char *cte)
{
	int done = 0;

	for (size_t i = 0; i < e->hdr_len; ) {
		size_t j = field_end(m, e->hdr_len, i);
		if (cte != NULL &&
		    field_is(m + i, j - i, "Content-Transfer-Encoding")) {
			if (!done) {
				sb_printf(o, "Content-Transfer-Encoding: "
				    "%s\r\n", cte);
			}
			done = 1;
		} else
			sb_add(o, m + i, j - i);
		i = j;
	}
	if (cte != NULL && !done) {
		sb_printf(o, "Content-Transfer-Encoding: %s\r\n", cte);
	}
	if (e->body > e->hdr_len || e->hdr_len == 0)
		sb_str(o, "\r\n");
}

/* ---- bodies ---- */

/* put_qp - body as quoted-printable; CRLF stay line breaks */
static void
put_qp(struct sbuf *o, const char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		char enc[3];
		size_t k = 1;
		if (c == '\r' && i + 1 < n && p[i + 1] == '\n') {
			sb_str(o, "\r\n");
			i++;
			col = 0;
			continue;
		}
		int at_eol = i + 1 == n || (p[i + 1] == '\r' && i + 2 < n &&
		    p[i + 2] == '\n');
		if ((c >= 33 && c <= 126 && c != '=') ||
		    ((c == ' ' || c == '\t') && !at_eol))
			enc[0] = (char)c;
		else {
			enc[0] = '=';
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			k = 3;
		}
		/* room for the text and, unless the line ends here, a "=" */
		if (col + k > QP_LINE - (at_eol ? 0 : 1)) {
			sb_str(o, "=\r\n");
			col = 0;
		}
		sb_add(o, enc, k);
		col += k;
	}
}

static void	put_entity(struct sbuf *, const char *, size_t, unsigned);

/* delimiter - a "--boundary" line starting at i (i at a line start)?
   1: delimiter, 2: close delimiter, 0: not one */
static int
delimiter(const char *b, size_t n, size_t i, const char *d, size_t dl)
{
	if (n - i < dl || memcmp(b + i, d, dl) != 0)
		return 0;
	i += dl;
	if (n - i >= 2 && b[i] == '-' && b[i + 1] == '-')
		return 2;
	while (i < n && (b[i] == ' ' || b[i] == '\t'))
		i++;
	return i == n || b[i] == '\r' ? 1 : 0;
}

/* next_delim - the next delimiter line at or after from, or n */
static size_t
next_delim(const char *b, size_t n, size_t from, const char *d, size_t dl,
    int *kind)
{
	if (from == 0 && (*kind = delimiter(b, n, 0, d, dl)) != 0)
		return 0;
	for (size_t i = from; i + 2 <= n; ) {
		const char *p = memmem(b + i, n - i, "\r\n", 2);
		if (p == NULL)
			break;
		i = (size_t)(p - b) + 2;
		if ((*kind = delimiter(b, n, i, d, dl)) != 0)
			return i;
	}
	*kind = 0;
	return n;
}

static size_t
line_end(const char *b, size_t n, size_t i)
{
	const char *lf = memchr(b + i, '\n', n - i);

	return lf ? (size_t)(lf - b) + 1 : n;
}

/* put_multipart - body of a multipart entity: each part converted,
   preamble, delimiters and epilogue copied */
static void
put_multipart(struct sbuf *o, const char *b, size_t n, const char *boundary,
    unsigned depth)
{
	char d[BOUNDARY_MAX + 3];
	size_t dl, at;
	int kind;

	dl = (size_t)snprintf(d, sizeof(d), "--%s", boundary);
	at = next_delim(b, n, 0, d, dl, &kind);
	sb_add(o, b, at);			/* preamble + its CRLF */
	while (kind == 1) {
		size_t start = line_end(b, n, at), next;
		int nkind;
		sb_add(o, b + at, start - at);	/* the delimiter line */
		next = next_delim(b, n, start >= 2 ? start - 2 : start, d,
		    dl, &nkind);
		if (next == n) {		/* no close delimiter */
			put_entity(o, b + start, n - start, depth + 1);
			return;
		}
		if (next - 2 >= start) {	/* the CRLF before belongs */
			put_entity(o, b + start, next - 2 - start, depth + 1);
			sb_str(o, "\r\n");
		}
		at = next;
		kind = nkind;
	}
	sb_add(o, b + at, n - at);		/* close delimiter, epilogue */
}

static void
put_entity(struct sbuf *o, const char *m, size_t n, unsigned depth)
{
	struct entity e;
	const char *body;
	size_t blen;
	int container;

	if (!mem_has_8bit(m, n)) {
		sb_add(o, m, n);
		return;
	}
	parse_entity(m, n, &e);
	body = m + e.body;
	blen = n - e.body;
	container = depth < DEPTH_MAX && ((strncmp(e.type, "multipart/", 10)
	    == 0 && e.boundary[0] != '\0') || strcmp(e.type, "message/rfc822")
	    == 0);
	if (container) {
		int relabel = strcmp(e.cte, "8bit") == 0 ||
		    strcmp(e.cte, "binary") == 0;
		put_fields(o, m, &e, relabel ? "7bit" : NULL);
		if (e.type[0] == 'm' && e.type[1] == 'u')
			put_multipart(o, body, blen, e.boundary, depth);
		else
			put_entity(o, body, blen, depth + 1);
		return;
	}
	if (strcmp(e.cte, "base64") == 0 ||
	    strcmp(e.cte, "quoted-printable") == 0 ||
	    !mem_has_8bit(body, blen)) {	/* 8-bit fields only */
		sb_add(o, m, n);
		return;
	}
	if (depth == 0 && !e.mime_version)	/* CTE means nothing without */
		sb_str(o, "MIME-Version: 1.0\r\n");
	put_fields(o, m, &e, "quoted-printable");
	put_qp(o, body, blen);
}

char *
mime_to_7bit(const char *msg, size_t len, size_t *outlen)
{
	struct sbuf o = { 0 };

	if (!mem_has_8bit(msg, len))
		return NULL;
	put_entity(&o, msg, len, 0);
	return sb_finish(&o, outlen);
}
