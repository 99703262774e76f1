/*
 * mime_decode.c - undo a part's Content-Transfer-Encoding into its content,
 * keeping at most max_part_decoded bytes per part and max_total_decoded
 * over the message.
 *
 * Base64, the bulk of what attachments weigh, has its own decoder here: one
 * table-driven pass, four symbols at a time on the common path, that also
 * tells whether the text was well-formed (foreign characters, misplaced
 * padding, an incomplete last quantum). Quoted-printable and uuencode use
 * GMime's incremental decoders in 4 KiB steps into a stack buffer. All of
 * them skip what they cannot decode and count the full decoded size even
 * when little is kept; quoted-printable "=" followed by neither two hex
 * digits nor a line break sets decode_error. Unknown encodings are kept as
 * they are and flagged the same way.
 */
#include <stdlib.h>
#include <pthread.h>
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
	int b64_ok;		/* base64 text was well-formed */
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

/* b64_value - 0..63 for the alphabet, B64_BLANK, B64_PAD or B64_BAD */
enum { B64_BAD = -1, B64_BLANK = -2, B64_PAD = -3 };
static signed char b64_value[256];

static void
b64_init(void)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	memset(b64_value, B64_BAD, sizeof(b64_value));
	for (int i = 0; alpha[i]; i++)
		b64_value[(unsigned char)alpha[i]] = (signed char)i;
	b64_value[' '] = b64_value['\t'] = b64_value['\r'] =
	    b64_value['\n'] = B64_BLANK;
	b64_value['='] = B64_PAD;
}

/* tail - the bytes of a partial quantum of pos symbols (2 or 3) */
static void
tail(struct sink *k, unsigned acc, unsigned pos)
{
	char b[2];

	if (pos == 2) {
		b[0] = (char)(acc >> 4);
		sink_put(k, b, 1);
	} else if (pos == 3) {
		b[0] = (char)(acc >> 10);
		b[1] = (char)(acc >> 2);
		sink_put(k, b, 2);
	}
}

/*
 * b64_decode - decode into k; returns 1 when the text was well-formed.
 * Like GMime, foreign characters are skipped and decoding goes on.
 */
static int
b64_decode(struct sink *k, const unsigned char *s, size_t n)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const unsigned char *e = s + n;
	unsigned acc = 0, pos = 0, pads_due = 0;
	int ok = 1, ended = 0;

	pthread_once(&once, b64_init);
	while (s < e) {
		if (pos == 0 && e - s >= 4) {	/* four symbols in a row */
			int a = b64_value[s[0]], b = b64_value[s[1]],
			    c = b64_value[s[2]], d = b64_value[s[3]];
			if ((a | b | c | d) >= 0) {
				unsigned v = (unsigned)a << 18 |
				    (unsigned)b << 12 | (unsigned)c << 6 |
				    (unsigned)d;
				if (k->len + 3 <= k->room) {
					/* byte stores: no stack temporary to
					   reload (store forwarding stalls) */
					unsigned char *o = k->buf + k->len;
					o[0] = (unsigned char)(v >> 16);
					o[1] = (unsigned char)(v >> 8);
					o[2] = (unsigned char)v;
					k->len += 3;
					k->total += 3;
				} else {
					char out[3] = { (char)(v >> 16),
					    (char)(v >> 8), (char)v };
					sink_put(k, out, 3);
				}
				ok &= !ended;
				s += 4;
				continue;
			}
		}
		int v = b64_value[*s++];
		if (v == B64_BLANK)
			continue;
		if (v == B64_BAD) {
			ok = 0;
			continue;
		}
		if (v == B64_PAD) {
			if (pads_due > 0) {	/* the second "=" of "xx==" */
				pads_due--;
				continue;
			}
			if (pos < 2 || ended)
				ok = 0;
			else {
				tail(k, acc, pos);
				pads_due = pos == 2 ? 1 : 0;
			}
			ended = 1;
			acc = pos = 0;
			continue;
		}
		if (ended || pads_due)
			ok = 0;			/* data after the padding */
		pads_due = 0;
		acc = acc << 6 | (unsigned)v;
		if (++pos == 4) {
			char out[3] = { (char)(acc >> 16), (char)(acc >> 8),
			    (char)acc };
			sink_put(k, out, 3);
			acc = pos = 0;
		}
	}
	if (pos != 0) {				/* no padding: keep what is there */
		tail(k, acc, pos);
		ok = 0;
	}
	return ok && pads_due == 0;
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
		k->b64_ok = b64_decode(k, (const unsigned char *)raw, len);
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
decode_ok(const struct sink *k, enum mime_cte cte, const char *raw,
    size_t len, size_t total)
{
	const unsigned char *s = (const unsigned char *)raw;

	switch (cte) {
	case MIME_CTE_BASE64:
		return k->b64_ok;
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
	struct sink k = { NULL, c->lim.max_part_decoded, 0, 0, 0 };

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
	if (!decode_ok(&k, cte, raw, len, k.total)) {
		p->decode_error = 1;
		mime_problem(c, (int)p->index, "%s content is malformed",
		    p->transfer_encoding ? p->transfer_encoding : "encoded");
	}
}
