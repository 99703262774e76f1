/*
 * fuzz_milter.c - what a milter sends back, MTA side (milter_reader.c,
 * milter_reply.c): the byte stream is framed by milter_reader_feed() in
 * pieces whose size the first byte sets, and each packet is decoded by
 * milter_reply_parse() from an exact-size copy of its payload. Checked:
 * the reader uses no more than it was given, errors are final, decoded
 * strings lie inside the payload.
 */
#include "fuzz.h"
#include "milter_proto.h"

static int
inside(const void *s, const unsigned char *p, size_t n)
{
	const unsigned char *c = s;

	if (s == NULL)
		return 1;
	return c >= p && c < p + n && memchr(c, '\0', (size_t)(p + n - c));
}

static void
decode(const struct milter_packet *pkt)
{
	struct milter_reply r;
	const char *why = NULL;
	unsigned char *c = (unsigned char *)fuzz_dup(pkt->data, pkt->len);

	if (milter_reply_parse(pkt->cmd, c, pkt->len, &r, &why) == 0) {
		(void)milter_reply_final(r.code);
		(void)milter_reply_action(r.code);
		fuzz_check(inside(r.name, c, pkt->len));
		fuzz_check(inside(r.value, c, pkt->len));
		fuzz_check(inside(r.addr, c, pkt->len));
		fuzz_check(inside(r.args, c, pkt->len));
		fuzz_check(inside(r.text, c, pkt->len));
		if (r.body != NULL)
			fuzz_check(r.body >= c && r.body + r.bodylen <= c + pkt->len);
		for (int i = 0; i < MILTER_STAGES; i++)
			fuzz_check(inside(r.optneg.macros[i], c, pkt->len));
	} else
		fuzz_check(why != NULL);
	free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct milter_reader rd;
	struct milter_packet pkt;
	const char *why;
	size_t off, step, used;

	if (size < 1)
		return 0;
	step = data[0] ? data[0] : size;
	milter_reader_init(&rd);
	for (off = 1; off < size; ) {
		size_t n = size - off < step ? size - off : step;
		char *c = fuzz_dup(data + off, n);
		enum milter_read st;

		st = milter_reader_feed(&rd, c, n, &used, &pkt, &why);
		fuzz_check(used <= n);
		if (st == MILTER_READ_PACKET) {
			fuzz_check(pkt.len <= MILTER_LEN_MAX);
			decode(&pkt);
		}
		free(c);
		if (st == MILTER_READ_ERROR) {
			fuzz_check(why != NULL);
			break;
		}
		if (st == MILTER_READ_MORE)
			fuzz_check(used == n);
		off += used;
	}
	milter_reader_clear(&rd);
	return 0;
}
