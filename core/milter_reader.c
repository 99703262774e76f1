/*
 * milter_reader.c - the incremental milter packet reader
 * (milter_proto.h): bytes in any split, complete packets out. The length
 * word is checked before anything is allocated, and the buffer never
 * grows past MILTER_LEN_MAX.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter_int.h"
#include "milter_proto.h"
#include "util.h"

void
milter_reader_init(struct milter_reader *r)
{
	memset(r, 0, sizeof(*r));
}

void
milter_reader_clear(struct milter_reader *r)
{
	free(r->buf);
	milter_reader_init(r);
}

static enum milter_read
reader_fail(struct milter_reader *r, const char **why)
{
	r->failed = 1;
	*why = r->why;
	return MILTER_READ_ERROR;
}

/* reader_head - the length word and command byte are in: check, make room */
static enum milter_read
reader_head(struct milter_reader *r, const char **why)
{
	uint32_t len = get32(r->head);
	unsigned char *p;

	if (len == 0 || len > MILTER_LEN_MAX) {
		if (len == 0)
			snprintf(r->why, sizeof(r->why), "length 0");
		else
			snprintf(r->why, sizeof(r->why),
			    "length %lu over the limit %d",
			    (unsigned long)len, MILTER_LEN_MAX);
		return reader_fail(r, why);
	}
	r->need = len - 1;
	if (r->need > r->cap) {
		if ((p = realloc(r->buf, r->need)) == NULL) {
			snprintf(r->why, sizeof(r->why), "out of memory");
			return reader_fail(r, why);
		}
		r->buf = p;
		r->cap = r->need;
	}
	return MILTER_READ_MORE;
}

enum milter_read
milter_reader_feed(struct milter_reader *r, const void *in, size_t len,
    size_t *used, struct milter_packet *pkt, const char **why)
{
	const unsigned char *p = in;
	size_t n, off = 0;

	*used = 0;
	if (r->failed) {
		*why = r->why;
		return MILTER_READ_ERROR;
	}
	if (r->ready) {
		r->ready = 0;
		r->nhead = 0;
		r->have = 0;
	}
	/* five header bytes; the length is checked after the first four */
	while (r->nhead < 5 && off < len) {
		r->head[r->nhead++] = p[off++];
		if (r->nhead == 4 && reader_head(r, why) != MILTER_READ_MORE) {
			*used = off;
			return MILTER_READ_ERROR;
		}
	}
	if (r->nhead == 5) {
		n = r->need - r->have;
		if (n > len - off)
			n = len - off;
		if (n > 0)
			memcpy(r->buf + r->have, p + off, n);
		r->have += n;
		off += n;
	}
	*used = off;
	if (r->nhead < 5 || r->have < r->need)
		return MILTER_READ_MORE;
	r->ready = 1;
	pkt->cmd = r->head[4];
	pkt->data = r->need > 0 ? r->buf : (const unsigned char *)"";
	pkt->len = r->need;
	return MILTER_READ_PACKET;
}
