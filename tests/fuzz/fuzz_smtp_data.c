/*
 * fuzz_smtp_data.c - the DATA/BDAT content decoder and the dot-stuffing
 * encoder (smtp_data.c). Header bytes: [0] bit 0 BDAT (raw) mode, bit 1
 * normalize bare CR/LF, bit 2 round trip instead; [1] line_max;
 * [2] size_max; [3] chunk size. The rest is fed in chunks, as the session
 * would. Checked: consumption bounds, that accepted content is clean CRLF
 * text within the limits, and that dotstuff() + decode gives back any
 * clean text (the relay path and the receiving path agree).
 */
#include "fuzz.h"
#include "smtp_data.h"

struct out {
	char *p;
	size_t len, cap;
};

static void
collect(void *ctx, const char *p, size_t n)
{
	struct out *o = ctx;

	if (n == 0)		/* dotstuff() may emit empty runs */
		return;
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2 + 64;
		if ((o->p = realloc(o->p, o->cap)) == NULL)
			abort();
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

/* clean - CRLF lines only, no NUL, lines within line_max */
static void
check_clean(const struct out *o, size_t line_max)
{
	size_t line = 0;

	for (size_t i = 0; i < o->len; i++) {
		char c = o->p[i];
		fuzz_check(c != '\0');
		if (c == '\r')
			fuzz_check(i + 1 < o->len && o->p[i + 1] == '\n');
		if (c == '\n')
			fuzz_check(i > 0 && o->p[i - 1] == '\r');
		line++;
		if (c == '\n') {
			fuzz_check(line <= line_max);
			line = 0;
		}
	}
}

static void
decode(const uint8_t *hdr, const uint8_t *data, size_t size)
{
	struct data_decoder d;
	struct out o = { 0 };
	static const size_t line_maxes[] = { 1000, 998, 3, 10, 80, 1 << 20 };
	static const uint64_t size_maxes[] = { 0, 1, 10, 100, 1000 };
	int raw = hdr[0] & 1, normalize = (hdr[0] >> 1) & 1;
	size_t line_max = line_maxes[hdr[1] % 6];
	uint64_t size_max = size_maxes[hdr[2] % 5];
	size_t chunk = hdr[3] ? hdr[3] : size + 1, off = 0;

	data_decoder_init(&d, raw ? DATA_MODE_RAW : DATA_MODE_DOT, normalize,
	    line_max, size_max);
	while (off < size && !d.done) {
		size_t n = size - off < chunk ? size - off : chunk;
		char *c = fuzz_dup(data + off, n);
		size_t used = data_decode(&d, c, n, collect, &o);

		free(c);
		fuzz_check(used <= n);
		if (!raw)
			fuzz_check(used == n || d.done);
		else
			fuzz_check(used == n);
		off += used;
	}
	if (raw)
		data_decoder_finish(&d, collect, &o);
	fuzz_check(o.len <= d.size);
	if (d.done && !data_refused(&d)) {
		fuzz_check(data_reply(&d) == NULL);
		fuzz_check(size_max == 0 || o.len <= size_max);
		check_clean(&o, line_max);
	}
	if (data_refused(&d))
		fuzz_check(data_reply(&d) != NULL);
	free(o.p);
}

/* roundtrip - clean CRLF text survives dotstuff() then the decoder */
static void
roundtrip(const uint8_t *data, size_t size)
{
	struct data_decoder d;
	struct out st = { 0 }, back = { 0 };
	int bol = 1;
	size_t used;
	char *c;

	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\0' ||
		    (data[i] == '\r' && (i + 1 == size || data[i + 1] != '\n')) ||
		    (data[i] == '\n' && (i == 0 || data[i - 1] != '\r')))
			return;
	}
	dotstuff((const char *)data, size, &bol, collect, &st);
	dotstuff_end(bol, collect, &st);
	data_decoder_init(&d, DATA_MODE_DOT, 0, (size_t)-1, 0);
	c = fuzz_dup(st.p, st.len);
	used = data_decode(&d, c, st.len, collect, &back);
	free(c);
	fuzz_check(d.done && used == st.len && d.flags == 0);
	if (size > 0 && !(size >= 2 && data[size - 2] == '\r' &&
	    data[size - 1] == '\n')) {
		fuzz_check(back.len == size + 2);
		fuzz_check(memcmp(back.p + size, "\r\n", 2) == 0);
	} else
		fuzz_check(back.len == size);
	fuzz_check(size == 0 || memcmp(back.p, data, size) == 0);
	free(st.p);
	free(back.p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	if (data[0] & 4)
		roundtrip(data + 4, size - 4);
	else
		decode(data, data + 4, size - 4);
	return 0;
}
