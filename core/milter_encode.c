/*
 * milter_encode.c - the milter commands the MTA sends (milter_proto.h):
 * each encoder appends one whole packet to a caller-owned buffer or
 * leaves it untouched and says why. No I/O, no allocation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter_int.h"
#include "milter_proto.h"
#include "util.h"

void
milter_buf_init(struct milter_buf *b, void *mem, size_t cap)
{
	b->data = mem;
	b->len = 0;
	b->cap = cap;
	b->why = NULL;
}

static int
fail(struct milter_buf *b, const char *why)
{
	b->why = why;
	return -1;
}

/*
 * A packet is built in place after the end of the buffer: begin() reserves
 * the length word and command byte, the add_*() calls append payload and
 * remember the first problem in pk->why, end() checks and commits. Until
 * end() succeeds, b->len is untouched, so a failed encoder leaves nothing.
 */
struct pkt {
	struct milter_buf *b;
	size_t		 start;		/* offset of the length word */
	size_t		 pos;		/* next payload byte */
	const char	*why;
};

static void
begin(struct pkt *pk, struct milter_buf *b, int cmd)
{
	pk->b = b;
	pk->start = b->len;
	pk->pos = b->len + 5;
	pk->why = NULL;
	if (b->cap < b->len || b->cap - b->len < 5)
		pk->why = "no room in output buffer";
	else
		b->data[b->len + 4] = (unsigned char)cmd;
}

static void
add_bytes(struct pkt *pk, const void *p, size_t n)
{
	struct milter_buf *b = pk->b;

	if (pk->why != NULL)
		return;
	if (n > MILTER_DATA_MAX || pk->pos - pk->start - 5 >
	    MILTER_DATA_MAX - n) {
		pk->why = "payload over 65535 bytes";
		return;
	}
	if (b->cap - pk->pos < n) {
		pk->why = "no room in output buffer";
		return;
	}
	if (n > 0)
		memcpy(b->data + pk->pos, p, n);
	pk->pos += n;
}

/* add_str - s and its terminating NUL; s must not hold a NUL itself */
static void
add_str(struct pkt *pk, struct milter_str s)
{
	if (pk->why == NULL && s.len > 0 && memchr(s.p, '\0', s.len) != NULL)
		pk->why = "NUL byte in a string";
	add_bytes(pk, s.p, s.len);
	add_bytes(pk, "", 1);
}

static void
add_u32(struct pkt *pk, uint32_t v)
{
	unsigned char w[4];

	put32(w, v);
	add_bytes(pk, w, 4);
}

static int
end(struct pkt *pk)
{
	struct milter_buf *b = pk->b;

	if (pk->why != NULL)
		return fail(b, pk->why);
	put32(b->data + pk->start, (uint32_t)(pk->pos - pk->start - 4));
	b->len = pk->pos;
	b->why = NULL;
	return 0;
}

static int
put_empty(struct milter_buf *b, int cmd)
{
	struct pkt pk;

	begin(&pk, b, cmd);
	return end(&pk);
}

int
milter_put_optneg(struct milter_buf *b, uint32_t version, uint32_t actions,
    uint32_t protocol)
{
	struct pkt pk;

	begin(&pk, b, SMFIC_OPTNEG);
	add_u32(&pk, version);
	add_u32(&pk, actions);
	add_u32(&pk, protocol);
	return end(&pk);
}

int
milter_put_connect(struct milter_buf *b, struct milter_str host, int family,
    uint16_t port, struct milter_str addr)
{
	struct pkt pk;
	unsigned char f = (unsigned char)family, w[2];

	if (family != MILTER_FAMILY_INET && family != MILTER_FAMILY_INET6 &&
	    family != MILTER_FAMILY_LOCAL && family != MILTER_FAMILY_UNKNOWN)
		return fail(b, "unknown address family");
	begin(&pk, b, SMFIC_CONNECT);
	add_str(&pk, host);
	add_bytes(&pk, &f, 1);
	if (family != MILTER_FAMILY_UNKNOWN) {
		w[0] = (unsigned char)(port >> 8);
		w[1] = (unsigned char)port;
		add_bytes(&pk, w, 2);
		add_str(&pk, addr);
	}
	return end(&pk);
}

static int
put_one_str(struct milter_buf *b, int cmd, struct milter_str s)
{
	struct pkt pk;

	begin(&pk, b, cmd);
	add_str(&pk, s);
	return end(&pk);
}

int
milter_put_helo(struct milter_buf *b, struct milter_str arg)
{
	return put_one_str(b, SMFIC_HELO, arg);
}

int
milter_put_unknown(struct milter_buf *b, struct milter_str line)
{
	return put_one_str(b, SMFIC_UNKNOWN, line);
}

static int
put_argv(struct milter_buf *b, int cmd, const struct milter_str *argv,
    size_t argc)
{
	struct pkt pk;

	if (argc == 0)
		return fail(b, "no address");
	begin(&pk, b, cmd);
	for (size_t i = 0; i < argc; i++)
		add_str(&pk, argv[i]);
	return end(&pk);
}

int
milter_put_mail(struct milter_buf *b, const struct milter_str *argv,
    size_t argc)
{
	return put_argv(b, SMFIC_MAIL, argv, argc);
}

int
milter_put_rcpt(struct milter_buf *b, const struct milter_str *argv,
    size_t argc)
{
	return put_argv(b, SMFIC_RCPT, argv, argc);
}

int
milter_put_header(struct milter_buf *b, struct milter_str name,
    struct milter_str value)
{
	struct pkt pk;

	begin(&pk, b, SMFIC_HEADER);
	add_str(&pk, name);
	add_str(&pk, value);
	return end(&pk);
}

int
milter_put_body(struct milter_buf *b, const void *p, size_t n)
{
	struct pkt pk;

	if (n == 0)
		return fail(b, "empty body chunk");
	if (n > MILTER_CHUNK_SIZE)
		return fail(b, "body chunk over 65535 bytes");
	begin(&pk, b, SMFIC_BODY);
	add_bytes(&pk, p, n);
	return end(&pk);
}

int
milter_put_data(struct milter_buf *b)
{
	return put_empty(b, SMFIC_DATA);
}

int
milter_put_eoh(struct milter_buf *b)
{
	return put_empty(b, SMFIC_EOH);
}

int
milter_put_eob(struct milter_buf *b)
{
	return put_empty(b, SMFIC_BODYEOB);
}

int
milter_put_abort(struct milter_buf *b)
{
	return put_empty(b, SMFIC_ABORT);
}

int
milter_put_quit(struct milter_buf *b)
{
	return put_empty(b, SMFIC_QUIT);
}

int
milter_put_quit_nc(struct milter_buf *b)
{
	return put_empty(b, SMFIC_QUIT_NC);
}

int
milter_put_macro(struct milter_buf *b, int cmd, const struct milter_macro *m,
    size_t n)
{
	struct pkt pk;
	unsigned char c = (unsigned char)cmd;

	if (cmd <= 0 || cmd > 0x7f || strchr("CHMRTLNBEU", cmd) == NULL)
		return fail(b, "macros for an unknown command");
	begin(&pk, b, SMFIC_MACRO);
	add_bytes(&pk, &c, 1);
	for (size_t i = 0; i < n; i++) {
		if (m[i].name.len == 0 && pk.why == NULL)
			pk.why = "empty macro name";
		add_str(&pk, m[i].name);
		add_str(&pk, m[i].value);
	}
	return end(&pk);
}
