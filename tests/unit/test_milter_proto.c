/*
 * test_milter_proto.c - unit tests for the milter wire codec
 * (milter_encode.c, milter_reader.c, milter_reply.c): exact bytes of
 * packets from the protocol notes, every encoder through the reader,
 * every split of a packet stream, the reader's length limits, and each
 * reply decoder on good and broken input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "milter_proto.h"

#define S(lit)	((struct milter_str){ (lit), sizeof(lit) - 1 })
/* a payload in a table: command byte and literal */
#define B(cmd, lit)	{ (cmd), sizeof(lit) - 1, (lit) }

static unsigned char outmem[2 * MILTER_PACKET_MAX];

/* a packet kept after the reader has moved on */
struct got {
	int		 cmd;
	size_t		 len;
	unsigned char	*data;
};

static void
got_free(struct got *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(g[i].data);
}

/*
 * feed_split - the stream in pieces that end at cuts[0..ncuts) and at len;
 * the packets into g (at most max); -1 and *why on a reader error
 */
static int
feed_split(struct milter_reader *r, const unsigned char *p, size_t len,
    const size_t *cuts, size_t ncuts, struct got *g, size_t max,
    size_t *ng, const char **why)
{
	struct milter_packet pkt;
	size_t from = 0, to, used;
	enum milter_read st;

	*ng = 0;
	for (size_t c = 0; c <= ncuts; c++) {
		to = c < ncuts ? cuts[c] : len;
		while (from < to) {
			st = milter_reader_feed(r, p + from, to - from, &used,
			    &pkt, why);
			assert_true(used <= to - from);
			from += used;
			if (st == MILTER_READ_ERROR)
				return -1;
			if (st == MILTER_READ_MORE) {
				assert_int_equal(from, to);
				continue;
			}
			assert_true(*ng < max);
			g[*ng].cmd = pkt.cmd;
			g[*ng].len = pkt.len;
			g[*ng].data = malloc(pkt.len + 1);
			memcpy(g[*ng].data, pkt.data, pkt.len);
			(*ng)++;
		}
	}
	return 0;
}

/* feed_all - the whole stream in one piece */
static int
feed_all(const unsigned char *p, size_t len, struct got *g, size_t max,
    size_t *ng, const char **why)
{
	struct milter_reader r;
	int rc;

	milter_reader_init(&r);
	rc = feed_split(&r, p, len, NULL, 0, g, max, ng, why);
	assert_true(r.cap <= MILTER_LEN_MAX);
	milter_reader_clear(&r);
	return rc;
}

/* one packet, framed by hand: cmd and payload */
static size_t
frame(unsigned char *out, int cmd, const void *payload, size_t n)
{
	uint32_t len = (uint32_t)n + 1;

	out[0] = (unsigned char)(len >> 24);
	out[1] = (unsigned char)(len >> 16);
	out[2] = (unsigned char)(len >> 8);
	out[3] = (unsigned char)len;
	out[4] = (unsigned char)cmd;
	memcpy(out + 5, payload, n);
	return n + 5;
}

static void
test_optneg_bytes(void **state)
{
	static const unsigned char want[] = {
		0x00, 0x00, 0x00, 0x0d, 'O',
		0x00, 0x00, 0x00, 0x06,
		0x00, 0x00, 0x01, 0xff,
		0x00, 0x1f, 0xff, 0xff,
	};
	struct milter_buf b;

	(void)state;
	milter_buf_init(&b, outmem, sizeof(outmem));
	assert_int_equal(milter_put_optneg(&b, MILTER_VERSION, SMFIF_ALL,
	    SMFIP_ALL), 0);
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
}

static void
test_command_bytes(void **state)
{
	static const unsigned char conn[] =
	    "\x00\x00\x00\x1e" "C" "mx.example.test\0" "4" "\x11\xd7"
	    "192.0.2.7\0";
	static const unsigned char conn_u[] =
	    "\x00\x00\x00\x0c" "C" "[unknown]\0" "U";
	static const unsigned char macro[] =
	    "\x00\x00\x00\x1b" "D" "C" "j\0mx.test\0{daemon_name}\0\0";
	static const unsigned char mail[] =
	    "\x00\x00\x00\x1a" "M" "<a@example.test>\0SIZE=12\0";
	static const unsigned char hdr[] =
	    "\x00\x00\x00\x0f" "L" "Subject\0hello\0";
	static const unsigned char eob[] = "\x00\x00\x00\x01" "E";
	struct milter_macro m[] = {
		{ S("j"), S("mx.test") },
		{ S("{daemon_name}"), S("") },
	};
	struct milter_str argv[] = { S("<a@example.test>"), S("SIZE=12") };
	struct milter_buf b;

	(void)state;
	milter_buf_init(&b, outmem, sizeof(outmem));
	assert_int_equal(milter_put_connect(&b, S("mx.example.test"),
	    MILTER_FAMILY_INET, 4567, S("192.0.2.7")), 0);
	assert_int_equal(b.len, sizeof(conn) - 1);
	assert_memory_equal(b.data, conn, sizeof(conn) - 1);

	milter_buf_init(&b, outmem, sizeof(outmem));
	assert_int_equal(milter_put_connect(&b, S("[unknown]"),
	    MILTER_FAMILY_UNKNOWN, 25, S("ignored")), 0);
	assert_int_equal(b.len, sizeof(conn_u) - 1);
	assert_memory_equal(b.data, conn_u, sizeof(conn_u) - 1);

	milter_buf_init(&b, outmem, sizeof(outmem));
	assert_int_equal(milter_put_macro(&b, SMFIC_CONNECT, m, 2), 0);
	assert_int_equal(b.len, sizeof(macro) - 1);
	assert_memory_equal(b.data, macro, sizeof(macro) - 1);

	milter_buf_init(&b, outmem, sizeof(outmem));
	assert_int_equal(milter_put_mail(&b, argv, 2), 0);
	assert_int_equal(b.len, sizeof(mail) - 1);
	assert_memory_equal(b.data, mail, sizeof(mail) - 1);

	/* header slices need not be NUL-terminated */
	milter_buf_init(&b, outmem, sizeof(outmem));
	struct milter_str name = { "Subject: hello", 7 };
	struct milter_str value = { "Subject: hello" + 9, 5 };
	assert_int_equal(milter_put_header(&b, name, value), 0);
	assert_int_equal(b.len, sizeof(hdr) - 1);
	assert_memory_equal(b.data, hdr, sizeof(hdr) - 1);

	milter_buf_init(&b, outmem, sizeof(outmem));
	assert_int_equal(milter_put_eob(&b), 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, eob, 5);
}

/* every encoder into one stream, read back in one piece */
static void
test_round_trip(void **state)
{
	static const struct {
		int		 cmd;
		size_t		 len;
		const char	*payload;
	} want[] = {
		B('O', "\0\0\0\2\0\0\0\x0f\0\0\0\x7f"),
		B('D', "C{client_addr}\0\0"),
		B('C', "[192.0.2.7]\0" "6\0\0" "::1\0"),
		B('H', "client.tl\0"),
		B('M', "<>\0"),
		B('R', "<b@example.test>\0NOTIFY=NEVER\0"),
		B('T', ""),
		B('L', "X-A\0 folded\n\tv\0"),
		B('N', ""),
		B('B', "a\0b\r\n"),
		B('E', ""),
		B('A', ""),
		B('U', "NOOP\0"),
		B('K', ""),
		B('C', "localhost\0L\0\0/run/s\0"),
		B('Q', ""),
	};
	struct milter_macro m = { S("{client_addr}"), S("") };
	struct milter_str rcpt[] = { S("<b@example.test>"),
	    S("NOTIFY=NEVER") };
	struct milter_str nul = S("<>");
	struct milter_buf b;
	struct got g[32];
	size_t ng;
	const char *why;

	(void)state;
	milter_buf_init(&b, outmem, sizeof(outmem));
	assert_int_equal(milter_put_optneg(&b, 2, 0x0f, SMFIP_V2_ALL), 0);
	assert_int_equal(milter_put_macro(&b, SMFIC_CONNECT, &m, 1), 0);
	assert_int_equal(milter_put_connect(&b, S("[192.0.2.7]"),
	    MILTER_FAMILY_INET6, 0, S("::1")), 0);
	assert_int_equal(milter_put_helo(&b, milter_cstr("client.tl")), 0);
	assert_int_equal(milter_put_mail(&b, &nul, 1), 0);
	assert_int_equal(milter_put_rcpt(&b, rcpt, 2), 0);
	assert_int_equal(milter_put_data(&b), 0);
	assert_int_equal(milter_put_header(&b, S("X-A"), S(" folded\n\tv")),
	    0);
	assert_int_equal(milter_put_eoh(&b), 0);
	assert_int_equal(milter_put_body(&b, "a\0b\r\n", 5), 0);
	assert_int_equal(milter_put_eob(&b), 0);
	assert_int_equal(milter_put_abort(&b), 0);
	assert_int_equal(milter_put_unknown(&b, S("NOOP")), 0);
	assert_int_equal(milter_put_quit_nc(&b), 0);
	assert_int_equal(milter_put_connect(&b, S("localhost"),
	    MILTER_FAMILY_LOCAL, 0, S("/run/s")), 0);
	assert_int_equal(milter_put_quit(&b), 0);

	assert_int_equal(feed_all(b.data, b.len, g, 32, &ng, &why), 0);
	assert_int_equal(ng, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < ng; i++) {
		assert_int_equal(g[i].cmd, want[i].cmd);
		assert_int_equal(g[i].len, want[i].len);
		assert_memory_equal(g[i].data, want[i].payload, want[i].len);
	}
	got_free(g, ng);
}

/*
 * The filter's answers the protocol notes quote (python3-milter under
 * miltertest): y of 28 bytes, h of 19, m of 28, then a.
 */
static size_t
doc_stream(unsigned char *p)
{
	size_t n = 0;

	n += frame(p + n, 'p', "", 0);
	n += frame(p + n, 'y', "550 5.7.1 no such user here", 28);
	n += frame(p + n, 'h', "X-Test-Milter\0seen", 19);
	n += frame(p + n, 'm', "\0\0\0\1Subject\0changed subject", 28);
	n += frame(p + n, 'a', "", 0);
	return n;
}

static void
check_doc_packets(struct got *g, size_t ng)
{
	struct milter_reply r;
	const char *why = NULL;

	assert_int_equal(ng, 5);
	assert_int_equal(g[0].cmd, SMFIR_PROGRESS);
	assert_int_equal(milter_reply_parse(g[0].cmd, g[0].data, g[0].len,
	    &r, &why), 0);
	assert_int_equal(g[1].cmd, SMFIR_REPLYCODE);
	assert_int_equal(g[1].len, 28);
	assert_int_equal(milter_reply_parse(g[1].cmd, g[1].data, g[1].len,
	    &r, &why), 0);
	assert_int_equal(r.rcode, 550);
	assert_string_equal(r.text, "550 5.7.1 no such user here");
	assert_int_equal(g[2].len, 19);
	assert_int_equal(milter_reply_parse(g[2].cmd, g[2].data, g[2].len,
	    &r, &why), 0);
	assert_string_equal(r.name, "X-Test-Milter");
	assert_string_equal(r.value, "seen");
	assert_int_equal(g[3].len, 28);
	assert_int_equal(milter_reply_parse(g[3].cmd, g[3].data, g[3].len,
	    &r, &why), 0);
	assert_int_equal(r.index, 1);
	assert_string_equal(r.name, "Subject");
	assert_string_equal(r.value, "changed subject");
	assert_int_equal(g[4].cmd, SMFIR_ACCEPT);
	assert_int_equal(g[4].len, 0);
}

static void
test_splits(void **state)
{
	unsigned char s[256];
	size_t len = doc_stream(s), cuts[256], ng;
	struct milter_reader r;
	struct got g[8];
	const char *why;

	(void)state;
	/* one piece */
	assert_int_equal(feed_all(s, len, g, 8, &ng, &why), 0);
	check_doc_packets(g, ng);
	got_free(g, ng);
	/* byte by byte */
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	milter_reader_init(&r);
	assert_int_equal(feed_split(&r, s, len, cuts, len, g, 8, &ng, &why),
	    0);
	check_doc_packets(g, ng);
	got_free(g, ng);
	milter_reader_clear(&r);
	/* every two-way split, one reader reused across streams */
	milter_reader_init(&r);
	for (size_t c = 0; c <= len; c++) {
		cuts[0] = c;
		assert_int_equal(feed_split(&r, s, len, cuts, 1, g, 8, &ng,
		    &why), 0);
		check_doc_packets(g, ng);
		got_free(g, ng);
	}
	assert_true(r.cap <= MILTER_LEN_MAX);
	milter_reader_clear(&r);
}

/* a packet of exactly the largest length, split, then one byte more */
static void
test_reader_bound(void **state)
{
	size_t n = MILTER_LEN_MAX - 1, used, ng;
	unsigned char *s = malloc(n + 5 + 10);
	struct milter_reader r;
	struct got g[2];
	const char *why = NULL;
	size_t cut = 3;

	(void)state;
	memset(s, 'x', n + 15);
	/* length 65600: a 'b' with 65599 bytes */
	s[0] = 0, s[1] = 1, s[2] = 0x00, s[3] = 0x40, s[4] = 'b';
	frame(s + n + 5, 'c', "", 0);
	milter_reader_init(&r);
	assert_int_equal(feed_split(&r, s, n + 10, &cut, 1, g, 2, &ng, &why),
	    0);
	assert_int_equal(ng, 2);
	assert_int_equal(g[0].cmd, 'b');
	assert_int_equal(g[0].len, n);
	assert_int_equal(g[1].cmd, 'c');
	assert_true(r.cap <= MILTER_LEN_MAX);
	got_free(g, ng);
	milter_reader_clear(&r);

	/* one over */
	struct milter_packet pkt;
	s[0] = 0, s[1] = 1, s[2] = 0x00, s[3] = 0x41;	/* 65601 */
	milter_reader_init(&r);
	assert_int_equal(milter_reader_feed(&r, s, 4, &used, &pkt, &why),
	    MILTER_READ_ERROR);
	assert_string_equal(why, "length 65601 over the limit 65600");
	assert_int_equal(r.cap, 0);
	milter_reader_clear(&r);
	free(s);
}

static void
test_reader_bad_lengths(void **state)
{
	static const unsigned char huge[] = { 0xff, 0xff, 0xff, 0xff, 'c' };
	static const unsigned char zero[] = { 0, 0, 0, 0, 'c' };
	struct milter_reader r;
	struct milter_packet pkt;
	const char *why = NULL;
	size_t used;

	(void)state;
	milter_reader_init(&r);
	/* the length arrives a byte at a time: nothing happens until it is
	   whole, then it is refused before any allocation */
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(milter_reader_feed(&r, huge + i, 1, &used,
		    &pkt, &why), MILTER_READ_MORE);
		assert_int_equal(used, 1);
	}
	assert_int_equal(milter_reader_feed(&r, huge + 3, 2, &used, &pkt,
	    &why), MILTER_READ_ERROR);
	assert_string_equal(why, "length 4294967295 over the limit 65600");
	assert_int_equal(r.cap, 0);
	assert_null(r.buf);
	/* the error sticks */
	why = NULL;
	assert_int_equal(milter_reader_feed(&r, zero, 5, &used, &pkt, &why),
	    MILTER_READ_ERROR);
	assert_int_equal(used, 0);
	assert_non_null(why);
	milter_reader_clear(&r);

	milter_reader_init(&r);
	assert_int_equal(milter_reader_feed(&r, zero, 5, &used, &pkt, &why),
	    MILTER_READ_ERROR);
	assert_string_equal(why, "length 0");
	assert_int_equal(r.cap, 0);
	milter_reader_clear(&r);

	/* a valid packet after a good one: the buffer keeps its size */
	unsigned char s[64];
	size_t n = frame(s, 'q', "why\0", 4);
	milter_reader_init(&r);
	assert_int_equal(milter_reader_feed(&r, s, n, &used, &pkt, &why),
	    MILTER_READ_PACKET);
	assert_int_equal(used, n);
	assert_int_equal(pkt.len, 4);
	assert_int_equal(r.cap, 4);
	milter_reader_clear(&r);
}

static void
test_encoder_refusals(void **state)
{
	static unsigned char big[MILTER_CHUNK_SIZE + 1];
	struct milter_str nulstr = { "a\0b", 3 };
	struct milter_str bigstr = { (const char *)big, MILTER_DATA_MAX };
	struct milter_macro m = { S("j"), { "x\0", 2 } };
	struct milter_macro noname = { S(""), S("x") };
	struct milter_str argv[2] = { S("<a@b>"), { "SIZE=1\0", 7 } };
	unsigned char small[8];
	struct milter_buf b;

	(void)state;
	memset(big, 'x', sizeof(big));
	milter_buf_init(&b, outmem, sizeof(outmem));
	assert_int_equal(milter_put_helo(&b, S("ok")), 0);
	size_t len = b.len;

	assert_int_equal(milter_put_helo(&b, nulstr), -1);
	assert_string_equal(b.why, "NUL byte in a string");
	assert_int_equal(milter_put_header(&b, S("X"), nulstr), -1);
	assert_int_equal(milter_put_header(&b, nulstr, S("v")), -1);
	assert_int_equal(milter_put_connect(&b, nulstr, '4', 1, S("a")), -1);
	assert_int_equal(milter_put_connect(&b, S("h"), '4', 1, nulstr), -1);
	assert_int_equal(milter_put_connect(&b, S("h"), 'X', 1, S("a")), -1);
	assert_int_equal(milter_put_mail(&b, argv, 2), -1);
	assert_int_equal(milter_put_rcpt(&b, argv, 0), -1);
	assert_int_equal(milter_put_macro(&b, SMFIC_MAIL, &m, 1), -1);
	assert_int_equal(milter_put_macro(&b, SMFIC_MAIL, &noname, 1), -1);
	assert_int_equal(milter_put_macro(&b, 'Z', NULL, 0), -1);
	assert_int_equal(milter_put_macro(&b, 0, NULL, 0), -1);
	assert_int_equal(milter_put_unknown(&b, nulstr), -1);
	/* payload limit: a string of 65535 bytes plus its NUL is too long */
	assert_int_equal(milter_put_helo(&b, bigstr), -1);
	assert_string_equal(b.why, "payload over 65535 bytes");
	bigstr.len--;
	assert_int_equal(milter_put_helo(&b, bigstr), 0);
	assert_int_equal(b.len, len + 4 + 1 + MILTER_DATA_MAX);
	b.len = len;
	assert_int_equal(milter_put_body(&b, big, 0), -1);
	assert_int_equal(milter_put_body(&b, big, MILTER_CHUNK_SIZE + 1), -1);
	assert_int_equal(b.len, len);
	assert_int_equal(milter_put_body(&b, big, MILTER_CHUNK_SIZE), 0);
	assert_int_equal(b.len, len + MILTER_PACKET_MAX);
	b.len = len;

	/* no room: the buffer is left as it was */
	milter_buf_init(&b, small, sizeof(small));
	assert_int_equal(milter_put_abort(&b), 0);
	assert_int_equal(milter_put_helo(&b, S("ab")), -1);
	assert_string_equal(b.why, "no room in output buffer");
	assert_int_equal(b.len, 5);
	assert_int_equal(milter_put_eoh(&b), -1);
	assert_int_equal(b.len, 5);
	milter_buf_init(&b, small, sizeof(small));
	assert_int_equal(milter_put_helo(&b, S("ab")), 0);
	assert_int_equal(b.len, 8);
	milter_buf_init(&b, NULL, 0);
	assert_int_equal(milter_put_quit(&b), -1);
}

/* parse - one reply from a literal payload (sizeof - 1 bytes) */
#define PARSE(cmd, lit, r, why) \
	milter_reply_parse((cmd), (const unsigned char *)(lit), \
	    sizeof(lit) - 1, (r), (why))

static void
test_simple_replies(void **state)
{
	static const int codes[] = {
		SMFIR_ACCEPT, SMFIR_CONTINUE, SMFIR_DISCARD, SMFIR_REJECT,
		SMFIR_TEMPFAIL, SMFIR_SKIP, SMFIR_PROGRESS, SMFIR_SHUTDOWN,
		SMFIR_CONN_FAIL,
	};
	struct milter_reply r;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_int_equal(PARSE(codes[i], "", &r, &why), 0);
		assert_int_equal(r.code, codes[i]);
		why = NULL;
		assert_int_equal(PARSE(codes[i], "x", &r, &why), -1);
		assert_string_equal(why, "payload where none belongs");
	}
	/* unknown bytes, and the reserved macro-list letter */
	static const int bad[] = { 'Z', 'x', 0, '\n', 'C', 'l', 0xff };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(PARSE(bad[i], "", &r, &why), -1);
		assert_non_null(why);
	}
	assert_int_equal(PARSE('Z', "", &r, &why), -1);
	assert_string_equal(why, "unknown reply");
}

static void
test_optneg_reply(void **state)
{
	struct milter_reply r;
	const char *why = NULL;

	(void)state;
	assert_int_equal(PARSE(SMFIC_OPTNEG, "\0\0\0\6\0\0\1\x11\0\x10\x04\0",
	    &r, &why), 0);
	assert_int_equal(r.optneg.version, 6);
	assert_int_equal(r.optneg.actions, SMFIF_SETSYMLIST | SMFIF_ADDHDRS |
	    SMFIF_CHGHDRS);
	assert_int_equal(r.optneg.protocol, SMFIP_HDR_LEADSPC | SMFIP_SKIP);
	for (int i = 0; i < MILTER_STAGES; i++)
		assert_null(r.optneg.macros[i]);
	/* with macro lists, an empty one and one for an unknown stage */
	assert_int_equal(PARSE(SMFIC_OPTNEG, "\0\0\0\6\0\0\1\0\0\0\0\0"
	    "\0\0\0\0j {daemon_name}\0" "\0\0\0\5\0" "\0\0\0\x09x\0",
	    &r, &why), 0);
	assert_string_equal(r.optneg.macros[SMFIM_CONNECT],
	    "j {daemon_name}");
	assert_string_equal(r.optneg.macros[SMFIM_EOM], "");
	assert_null(r.optneg.macros[SMFIM_HELO]);
	assert_int_equal(r.optneg.unknown_stages, 1);
	/* version 2 is fine, 1 and 7 are not */
	assert_int_equal(PARSE(SMFIC_OPTNEG, "\0\0\0\2\0\0\0\0\0\0\0\0", &r,
	    &why), 0);
	assert_int_equal(PARSE(SMFIC_OPTNEG, "\0\0\0\1\0\0\0\0\0\0\0\0", &r,
	    &why), -1);
	assert_string_equal(why, "unsupported protocol version");
	assert_int_equal(PARSE(SMFIC_OPTNEG, "\0\0\0\7\0\0\0\0\0\0\0\0", &r,
	    &why), -1);
	/* byte order: 6 in the wrong end is version 0x06000000 */
	assert_int_equal(PARSE(SMFIC_OPTNEG, "\6\0\0\0\0\0\0\0\0\0\0\0", &r,
	    &why), -1);
	/* short */
	assert_int_equal(PARSE(SMFIC_OPTNEG, "\0\0\0\6\0\0\0\0\0\0\0", &r,
	    &why), -1);
	assert_int_equal(PARSE(SMFIC_OPTNEG, "", &r, &why), -1);
	/* a list entry cut short: stage without string, string without NUL,
	   a partial stage word */
	assert_int_equal(PARSE(SMFIC_OPTNEG, "\0\0\0\6\0\0\0\0\0\0\0\0"
	    "\0\0\0\1", &r, &why), -1);
	assert_string_equal(why, "string missing");
	assert_int_equal(PARSE(SMFIC_OPTNEG, "\0\0\0\6\0\0\0\0\0\0\0\0"
	    "\0\0\0\1i", &r, &why), -1);
	assert_string_equal(why, "string not NUL-terminated");
	assert_int_equal(PARSE(SMFIC_OPTNEG, "\0\0\0\6\0\0\0\0\0\0\0\0"
	    "\0\0", &r, &why), -1);
	assert_int_equal(PARSE(SMFIC_OPTNEG, "\0\0\0\6\0\0\0\0\0\0\0\0"
	    "\0\0\0\1a\tb\0", &r, &why), -1);
}

static void
test_replycode(void **state)
{
	static const struct {
		const char	*text;
		int		 rcode;
	} good[] = {
		{ "550 5.7.1 no such user here", 550 },
		{ "451 4.7.1 try later", 451 },
		{ "421 4.7.0 closing", 421 },
		{ "554", 554 },
		{ "550 ", 550 },
		{ "550 text\twith tab, 100%% sure", 550 },
		{ "550 5.7 is not an enhanced code", 550 },
		{ "550-5.7.0 a\r\n550-5.7.0 b\r\n550 5.7.0 c", 550 },
		{ "450-first\r\n450", 450 },
	};
	static const char *bad[] = {
		"",					/* nothing */
		"250 ok",				/* not 4xx/5xx */
		"650 no", "55", "5x0 no", "560 second digit",
		"5500 no", "550_no", "550-only continued",
		"550 4.7.1 class differs",		/* enhanced class */
		"450 5.1.1 class differs",
		"550 2.0.0 class differs",
		"550-5.7.0 a\r\n550 4.7.0 b",		/* on a later line */
		"550-a\r\n551 b",			/* code changes */
		"550 a\r\n550 b",			/* ' ' not last */
		"550-a\r\n550-b",			/* '-' last */
		"550 a\r\n",				/* trailing CRLF */
		"550 a\nb", "550-a\n550 b",		/* bare LF */
		"550-a\n\n550 b", "550-a\n\r\n550 b",
		"550 a\rb", "550-a\r550 b", "550 a\r",	/* bare CR */
		"550-a\r\r550 b", "550-a\r\r\n550 b",
		"550 a\x01", "550 a\x7f", "550 a\x1b[0m",	/* control */
		"550 caf\xc3\xa9",			/* 8-bit */
	};
	struct milter_reply r;
	const char *why;
	char buf[40 * 16];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		why = NULL;
		assert_int_equal(milter_reply_parse(SMFIR_REPLYCODE,
		    (const unsigned char *)good[i].text,
		    strlen(good[i].text) + 1, &r, &why), 0);
		assert_int_equal(r.rcode, good[i].rcode);
		assert_string_equal(r.text, good[i].text);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (milter_reply_parse(SMFIR_REPLYCODE,
		    (const unsigned char *)bad[i], strlen(bad[i]) + 1, &r,
		    &why) != -1)
			fail_msg("accepted bad reply %zu \"%s\"", i, bad[i]);
		assert_non_null(why);
	}
	/* the reasons name the bare line break */
	assert_int_equal(PARSE(SMFIR_REPLYCODE, "550-a\n550 b\0", &r, &why),
	    -1);
	assert_string_equal(why, "bare LF in reply text");
	assert_int_equal(PARSE(SMFIR_REPLYCODE, "550-a\r550 b\0", &r, &why),
	    -1);
	assert_string_equal(why, "bare CR in reply text");
	/* framing: missing NUL, NUL inside, empty payload */
	assert_int_equal(PARSE(SMFIR_REPLYCODE, "550 no", &r, &why), -1);
	assert_string_equal(why, "string not NUL-terminated");
	assert_int_equal(PARSE(SMFIR_REPLYCODE, "550 a\0b\0", &r, &why), -1);
	assert_string_equal(why, "trailing bytes after the last field");
	assert_int_equal(PARSE(SMFIR_REPLYCODE, "", &r, &why), -1);
	assert_string_equal(why, "string missing");
	/* 32 lines are allowed, 33 are not */
	buf[0] = '\0';
	for (int i = 0; i < 32; i++)
		strcat(buf, i < 31 ? "550-x\r\n" : "550 x");
	assert_int_equal(milter_reply_parse(SMFIR_REPLYCODE,
	    (unsigned char *)buf, strlen(buf) + 1, &r, &why), 0);
	memmove(buf + 7, buf, strlen(buf) + 1);
	memcpy(buf, "550-x\r\n", 7);
	assert_int_equal(milter_reply_parse(SMFIR_REPLYCODE,
	    (unsigned char *)buf, strlen(buf) + 1, &r, &why), -1);
	assert_string_equal(why, "too many reply lines");
	/* a line of MILTER_REPLY_LINE_MAX is fine, one more is not */
	char *line = malloc(MILTER_REPLY_LINE_MAX + 2);
	memset(line, 'x', MILTER_REPLY_LINE_MAX + 1);
	memcpy(line, "550 ", 4);
	line[MILTER_REPLY_LINE_MAX] = '\0';
	assert_int_equal(milter_reply_parse(SMFIR_REPLYCODE,
	    (unsigned char *)line, MILTER_REPLY_LINE_MAX + 1, &r, &why), 0);
	line[MILTER_REPLY_LINE_MAX] = 'x';
	line[MILTER_REPLY_LINE_MAX + 1] = '\0';
	assert_int_equal(milter_reply_parse(SMFIR_REPLYCODE,
	    (unsigned char *)line, MILTER_REPLY_LINE_MAX + 2, &r, &why), -1);
	assert_string_equal(why, "reply line too long");
	free(line);
}

static void
test_header_replies(void **state)
{
	struct milter_reply r;
	const char *why = NULL;

	(void)state;
	assert_int_equal(PARSE(SMFIR_ADDHEADER, "X-Spam\0 yes\n\tfolded\0",
	    &r, &why), 0);
	assert_string_equal(r.name, "X-Spam");
	assert_string_equal(r.value, " yes\n\tfolded");
	assert_int_equal(PARSE(SMFIR_ADDHEADER, "X-E\0\0", &r, &why), 0);
	assert_int_equal(PARSE(SMFIR_INSHEADER,
	    "\0\0\0\0DKIM-Signature\0 v=1;\r\n\tb=x\0", &r, &why), 0);
	assert_int_equal(r.index, 0);
	assert_string_equal(r.name, "DKIM-Signature");
	/* index in network order; empty value deletes */
	assert_int_equal(PARSE(SMFIR_CHGHEADER, "\x01\x02\x03\x04Subject\0\0",
	    &r, &why), 0);
	assert_int_equal(r.index, 0x01020304);
	assert_string_equal(r.value, "");

	static const struct {
		int		 cmd;
		size_t		 len;
		const char	*p;
	} bad[] = {
		B('h', ""),				/* nothing */
		B('h', "X-Spam\0"),			/* no value */
		B('h', "X-Spam\0yes"),		/* value no NUL */
		B('h', "X-Spam"),			/* name no NUL */
		B('h', "X-Spam\0yes\0x"),		/* trailing */
		B('h', "X-Spam\0yes\0\0"),		/* trailing NUL */
		B('h', "\0yes\0"),			/* empty name */
		B('h', "X Spam\0ye\0"),		/* space in name */
		B('h', "X:Spam\0ye\0"),		/* colon in name */
		B('h', "X\tSpam\0ye\0"),		/* control in name */
		B('h', "X\xc3\xa9pam\0ye\0"),	/* 8-bit name */
		B('h', "X\0a\nb\0"),		/* LF not a fold */
		B('h', "X\0a\n\0"),			/* LF at the end */
		B('h', "X\0a\rb\0"),		/* bare CR */
		B('h', "X\0a\r\0"),		/* bare CR at end */
		B('h', "X\0a\x01\0"),		/* control */
		B('i', "\0\0\0"),			/* short index */
		B('i', "\0\0\0\0X\0"),		/* no value */
		B('i', "\0\0\0\0"),			/* no name */
		B('m', "\0\0\0\1X\0v\0z"),		/* trailing */
		B('m', "\0\0\0\1:\0v\0"),		/* bad name */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (milter_reply_parse(bad[i].cmd,
		    (const unsigned char *)bad[i].p, bad[i].len, &r, &why) !=
		    -1)
			fail_msg("accepted bad header reply %zu", i);
		assert_non_null(why);
	}
}

static void
test_envelope_replies(void **state)
{
	struct milter_reply r;
	const char *why = NULL;

	(void)state;
	assert_int_equal(PARSE(SMFIR_ADDRCPT, "<c@example.test>\0", &r, &why),
	    0);
	assert_string_equal(r.addr, "<c@example.test>");
	assert_null(r.args);
	assert_int_equal(PARSE(SMFIR_DELRCPT, "<c@example.test>\0", &r, &why),
	    0);
	assert_int_equal(PARSE(SMFIR_ADDRCPT_PAR, "<c@x>\0NOTIFY=NEVER\0", &r,
	    &why), 0);
	assert_string_equal(r.args, "NOTIFY=NEVER");
	assert_int_equal(PARSE(SMFIR_ADDRCPT_PAR, "<c@x>\0", &r, &why), 0);
	assert_null(r.args);
	assert_int_equal(PARSE(SMFIR_CHGFROM, "<>\0", &r, &why), 0);
	assert_string_equal(r.addr, "<>");
	assert_int_equal(PARSE(SMFIR_CHGFROM, "<a@x>\0SIZE=1 BODY=8BITMIME\0",
	    &r, &why), 0);
	assert_string_equal(r.args, "SIZE=1 BODY=8BITMIME");
	assert_int_equal(PARSE(SMFIR_QUARANTINE, "virus found\0", &r, &why),
	    0);
	assert_string_equal(r.text, "virus found");
	/* body: raw bytes, NULs included, empty allowed */
	assert_int_equal(PARSE(SMFIR_REPLBODY, "a\0\r\nb", &r, &why), 0);
	assert_int_equal(r.bodylen, 5);
	assert_memory_equal(r.body, "a\0\r\nb", 5);
	assert_int_equal(PARSE(SMFIR_REPLBODY, "", &r, &why), 0);
	assert_int_equal(r.bodylen, 0);

	static const struct {
		int		 cmd;
		size_t		 len;
		const char	*p;
	} bad[] = {
		B('+', ""), B('+', "\0"), B('+', "<a>"),
		B('+', "<a>\0x\0"), B('+', "<\na>\0"),
		B('-', ""), B('-', "<a>\0x"), B('-', "<\ta>\0"),
		B('2', "\0"), B('2', "<a>\0X=1"),
		B('2', "<a>\0X=1\0y\0"), B('2', "<a>\0X\r1\0"),
		B('e', ""), B('e', "<>"), B('e', "<>\0a\0b\0"),
		B('e', "<\x7f>\0"),
		B('q', ""), B('q', "\0"), B('q', "bad"),
		B('q', "a\0bad\0"), B('q', "a\nb\0"),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (milter_reply_parse(bad[i].cmd,
		    (const unsigned char *)bad[i].p, bad[i].len, &r, &why) !=
		    -1)
			fail_msg("accepted bad envelope reply %zu", i);
		assert_non_null(why);
	}
}

/* garbage framed and decoded the way the client will do it */
static void
test_reader_then_decode(void **state)
{
	unsigned char s[64];
	struct got g[4];
	size_t ng, n = 0;
	struct milter_reply r;
	const char *why = NULL;

	(void)state;
	n += frame(s + n, 'y', "550 5.7.1 x", 11);	/* no NUL */
	n += frame(s + n, 'c', "x", 1);			/* payload */
	n += frame(s + n, '?', "", 0);			/* unknown */
	assert_int_equal(feed_all(s, n, g, 4, &ng, &why), 0);
	assert_int_equal(ng, 3);
	for (size_t i = 0; i < ng; i++) {
		why = NULL;
		assert_int_equal(milter_reply_parse(g[i].cmd, g[i].data,
		    g[i].len, &r, &why), -1);
		assert_non_null(why);
	}
	got_free(g, ng);
}

static void
test_classes(void **state)
{
	static const char final[] = "acdrtys4f";
	static const char notfinal[] = "pqhim+2-ebO?";

	(void)state;
	for (const char *p = final; *p; p++)
		assert_true(milter_reply_final(*p));
	for (const char *p = notfinal; *p; p++)
		assert_false(milter_reply_final(*p));
	assert_int_equal(milter_reply_action('h'), SMFIF_ADDHDRS);
	assert_int_equal(milter_reply_action('i'), SMFIF_ADDHDRS);
	assert_int_equal(milter_reply_action('m'), SMFIF_CHGHDRS);
	assert_int_equal(milter_reply_action('b'), SMFIF_CHGBODY);
	assert_int_equal(milter_reply_action('+'), SMFIF_ADDRCPT);
	assert_int_equal(milter_reply_action('-'), SMFIF_DELRCPT);
	assert_int_equal(milter_reply_action('2'), SMFIF_ADDRCPT_PAR);
	assert_int_equal(milter_reply_action('e'), SMFIF_CHGFROM);
	assert_int_equal(milter_reply_action('q'), SMFIF_QUARANTINE);
	assert_int_equal(milter_reply_action('a'), 0);
	assert_int_equal(milter_reply_action('y'), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_optneg_bytes),
		cmocka_unit_test(test_command_bytes),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_splits),
		cmocka_unit_test(test_reader_bound),
		cmocka_unit_test(test_reader_bad_lengths),
		cmocka_unit_test(test_encoder_refusals),
		cmocka_unit_test(test_simple_replies),
		cmocka_unit_test(test_optneg_reply),
		cmocka_unit_test(test_replycode),
		cmocka_unit_test(test_header_replies),
		cmocka_unit_test(test_envelope_replies),
		cmocka_unit_test(test_reader_then_decode),
		cmocka_unit_test(test_classes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
