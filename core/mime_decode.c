/*
 * mime_decode.c - undo a part's Content-Transfer-Encoding into its content,
 * keeping at most max_part_decoded bytes per part and max_total_decoded
 * over the message.
 *
 * GMime's incremental decoders (g_mime_encoding_*) work in 4 KiB steps into
 * a stack buffer, so the full decoded size is known even when little is
 * kept. They silently skip what they cannot decode; separate checks set
 * decode_error for base64 with foreign characters, misplaced padding or an
 * incomplete last quantum, and for quoted-printable "=" that is followed by
 * neither two hex digits nor a line break. Unknown encodings are kept as
 * they are and flagged the same way.
 */
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "mime_int.h"
#include "util.h"

#define STEP	4096

struct sink {
	unsigned char *buf;
	size_t room;		/* bytes that may be kept */
	size_t len;		/* bytes kept */
	size_t total;		/* bytes decoded */
};

static void
sink_put(struct sink *k, const char *p, size_t n)
{
	size_t m = n < k->room - k->len ? n : k->room - k->len;

	memcpy(k->buf + k->len, p, m);
	k->len += m;
	k->total += n;
}

/* uu_begin - skip to the line after "begin mode name" (GMime's filter
 * does this, its step function does not) */
static size_t
uu_begin(const char *raw, size_t len)
{
	const char *p = raw, *e = raw + len, *nl;

	for (; p < e; p = nl + 1) {
		if ((size_t)(e - p) >= 6 && memcmp(p, "begin ", 6) == 0)
			return (nl = memchr(p, '\n', (size_t)(e - p))) ?
			    (size_t)(nl + 1 - raw) : len;
		if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL)
			break;
	}
	return 0;
}

static void
decode_steps(struct sink *k, GMimeContentEncoding enc, const char *raw,
    size_t len)
{
	GMimeEncoding st;
	char out[STEP + 16];
	size_t n, skip;

	g_mime_encoding_init_decode(&st, enc);
	if (enc == GMIME_CONTENT_ENCODING_UUENCODE) {
		skip = uu_begin(raw, len);
		raw += skip;
		len -= skip;
		st.state |= GMIME_UUDECODE_STATE_BEGIN;
	}
	for (size_t off = 0; off < len; off += n) {
		n = len - off < STEP ? len - off : STEP;
		sink_put(k, out, g_mime_encoding_step(&st, raw + off, n, out));
	}
	sink_put(k, out, g_mime_encoding_flush(&st, "", 0, out));
}

static int
b64_char(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
}

/* b64_valid - only the alphabet, padding where allowed, whole quanta */
static int
b64_valid(const unsigned char *s, size_t n)
{
	unsigned pos = 0;		/* symbols in the current quantum */
	int pad = 0;			/* padding seen */

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = s[i];

		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n')
			continue;
		if (ch == '=') {
			if (pos < 2)
				return 0;
			pad = 1;
		} else if (!b64_char(ch) || pad)
			return 0;
		pos = (pos + 1) & 3;
	}
	return pos == 0;
}

static int
hex(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F') ||
	    (ch >= 'a' && ch <= 'f');
}

/* qp_valid - every "=" starts a hex pair or a soft line break */
static int
qp_valid(const unsigned char *s, size_t n)
{
	const unsigned char *p = s, *e = s + n;

	while ((p = memchr(p, '=', (size_t)(e - p))) != NULL) {
		p++;
		if (e - p >= 2 && hex(p[0]) && hex(p[1])) {
			p += 2;
			continue;
		}
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		if (p < e && *p == '\r')
			p++;
		if (p < e && *p != '\n')
			return 0;
	}
	return 1;
}

static size_t
decoded_max(enum mime_cte cte, size_t len)
{
	return cte == MIME_CTE_BASE64 ? len / 4 * 3 + 3 : len;
}

static void
decode_any(struct sink *k, enum mime_cte cte, const char *raw, size_t len)
{
	switch (cte) {
	case MIME_CTE_BASE64:
		decode_steps(k, GMIME_CONTENT_ENCODING_BASE64, raw, len);
		break;
	case MIME_CTE_QP:
		decode_steps(k, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE, raw,
		    len);
		break;
	case MIME_CTE_UUENCODE:
		decode_steps(k, GMIME_CONTENT_ENCODING_UUENCODE, raw, len);
		break;
	default:
		sink_put(k, raw, len);
		break;
	}
}

static int
decode_ok(enum mime_cte cte, const char *raw, size_t len, size_t total)
{
	const unsigned char *s = (const unsigned char *)raw;

	switch (cte) {
	case MIME_CTE_BASE64:
		return b64_valid(s, len);
	case MIME_CTE_QP:
		return qp_valid(s, len);
	case MIME_CTE_UUENCODE:
		return len == 0 || total > 0;
	case MIME_CTE_UNKNOWN:
		return 0;
	default:
		return 1;
	}
}

/*
 * mime_decode - set content, content_len, size, truncated, decode_error.
 * content is NUL-terminated and never NULL afterwards.
 */
void
mime_decode(struct mime_ctx *c, struct mime_part *p, enum mime_cte cte,
    const char *raw, size_t len)
{
	size_t left = c->lim.max_total_decoded > c->kept ?
	    c->lim.max_total_decoded - c->kept : 0;
	struct sink k = { NULL, c->lim.max_part_decoded, 0, 0 };

	if (k.room > left)
		k.room = left;
	if (k.room > decoded_max(cte, len))
		k.room = decoded_max(cte, len);
	k.buf = xmalloc(k.room + 1);
	decode_any(&k, cte, raw, len);
	k.buf[k.len] = '\0';
	p->content = k.buf;
	p->content_len = k.len;
	p->size = k.total;
	c->kept += k.len;
	if (k.total > k.len) {
		p->truncated = 1;
		mime_limit_hit(c, (int)p->index, "decoded content cut at a"
		    " size limit");
	}
	if (!decode_ok(cte, raw, len, k.total)) {
		p->decode_error = 1;
		mime_problem(c, (int)p->index, "%s content is malformed",
		    p->transfer_encoding ? p->transfer_encoding : "encoded");
	}
}
