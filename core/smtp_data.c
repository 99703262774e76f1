/*
 * smtp_data.c - DATA/BDAT content decoding and dot-stuffing (see smtp_data.h).
 *
 * The decoder is a byte-level state machine whose state survives across
 * calls, so any TCP or BDAT chunk split works. Unchanged bytes are passed
 * to the emit callback in runs; only removed dots and normalized newlines
 * break a run.
 */
#include <string.h>

#include "smtp_data.h"

enum {
	ST_BOL,		/* start of a line */
	ST_DOT,		/* DOT mode: "." at start of line, not emitted */
	ST_DOT_CR,	/* DOT mode: ".\r" at start of line */
	ST_TEXT,	/* inside a line */
	ST_CR,		/* "\r" seen inside a line, emitted in the run */
};

void
data_decoder_init(struct data_decoder *d, enum data_mode mode, int normalize,
    size_t line_max, uint64_t size_max)
{
	memset(d, 0, sizeof(*d));
	d->mode = mode;
	d->normalize = normalize;
	d->line_max = line_max;
	d->size_max = size_max;
	d->state = ST_BOL;
}

int
data_refused(const struct data_decoder *d)
{
	unsigned hard = DATA_NUL | DATA_LONG_LINE | DATA_TOO_BIG;

	if (!d->normalize)
		hard |= DATA_BARE_LF | DATA_BARE_CR;
	return (d->flags & hard) != 0;
}

const char *
data_reply(const struct data_decoder *d)
{
	if (d->flags & DATA_TOO_BIG)
		return "552 5.3.4 Message size exceeds fixed maximum message size";
	if (!d->normalize && (d->flags & DATA_BARE_LF))
		return "550 5.6.11 Message contains bare LF (RFC 5321 2.3.8)";
	if (!d->normalize && (d->flags & DATA_BARE_CR))
		return "550 5.6.11 Message contains bare CR (RFC 5321 2.3.8)";
	if (d->flags & DATA_NUL)
		return "550 5.6.0 Message contains NUL bytes";
	if (d->flags & DATA_LONG_LINE)
		return "550 5.6.0 Message contains a line longer than allowed";
	return NULL;
}

static void
emit(struct data_decoder *d, const char *p, size_t n, data_emit_fn fn,
    void *ctx)
{
	if (n == 0)
		return;
	d->size += n;
	if (d->size_max != 0 && d->size > d->size_max)
		d->flags |= DATA_TOO_BIG;
	if (!data_refused(d))
		fn(ctx, p, n);
}

#define FLUSH_TO(q) do {					\
	emit(d, run, (size_t)((q) - run), fn, ctx);		\
	run = (q);						\
} while (0)

size_t
data_decode(struct data_decoder *d, const char *in, size_t n,
    data_emit_fn fn, void *ctx)
{
	const char *p = in, *end = in + n, *run = in;

	while (p < end && !d->done) {
		unsigned char c = (unsigned char)*p;

		switch (d->state) {
		case ST_BOL:
			d->line_len = 0;
			if (c == '.' && d->mode == DATA_MODE_DOT) {
				FLUSH_TO(p);
				run = ++p;		/* drop the dot */
				d->state = ST_DOT;
				continue;
			}
			d->state = ST_TEXT;
			continue;		/* same byte, as text */
		case ST_DOT:
			if (c == '\r') {	/* held back: maybe the end */
				d->state = ST_DOT_CR;
				run = ++p;
				continue;
			}
			d->state = ST_TEXT;	/* "..x" or ".x": dot removed */
			continue;
		case ST_DOT_CR:
			if (c == '\n') {	/* CRLF . CRLF */
				run = ++p;
				d->done = 1;
				continue;
			}
			emit(d, "\r", 1, fn, ctx);	/* ".\r" + x: bare CR */
			d->flags |= DATA_BARE_CR;
			if (d->normalize)
				emit(d, "\n", 1, fn, ctx);
			d->line_len = 0;
			d->state = ST_TEXT;
			continue;
		case ST_TEXT: {
			/* the rest of the line: memchr is far faster than a loop */
			const char *stop = memchr(p, '\n', (size_t)(end - p));
			const char *cr = memchr(p, '\r', (size_t)((stop ? stop :
			    end) - p));
			if (cr != NULL || stop == NULL)
				stop = cr ? cr : end;
			if (memchr(p, '\0', (size_t)(stop - p)) != NULL)
				d->flags |= DATA_NUL;
			d->line_len += (size_t)(stop - p);
			if (d->line_len > d->line_max - 2)
				d->flags |= DATA_LONG_LINE;
			p = stop;
			if (p == end)
				break;
		}
			if (*p == '\r') {
				d->state = ST_CR;
				p++;
				continue;
			}
			d->flags |= DATA_BARE_LF;	/* '\n' without '\r' */
			if (d->normalize) {
				FLUSH_TO(p);
				emit(d, "\r\n", 2, fn, ctx);
				run = p + 1;
			}
			p++;
			d->line_len = 0;		/* but no dot handling */
			continue;
		case ST_CR:
			if (c == '\n') {
				p++;
				d->state = ST_BOL;
				continue;
			}
			d->flags |= DATA_BARE_CR;
			if (d->normalize) {
				FLUSH_TO(p);
				emit(d, "\n", 1, fn, ctx);
			}
			d->line_len = 0;
			d->state = ST_TEXT;
			continue;
		}
	}
	FLUSH_TO(p);
	return (size_t)(p - in);
}

void
data_decoder_finish(struct data_decoder *d, data_emit_fn fn, void *ctx)
{
	if (d->state == ST_CR) {		/* chunk ended in a bare CR */
		d->flags |= DATA_BARE_CR;
		emit(d, "\n", 1, fn, ctx);
	} else if (d->state == ST_TEXT && d->line_len > 0)
		emit(d, "\r\n", 2, fn, ctx);	/* content must end in CRLF */
	d->state = ST_BOL;
	d->done = 1;
}

void
dotstuff(const char *in, size_t n, int *bol, data_emit_fn fn, void *ctx)
{
	const char *p = in, *end = in + n, *run = in, *nl;

	while (p < end) {
		if (*bol && *p == '.') {
			fn(ctx, run, (size_t)(p - run));
			fn(ctx, ".", 1);
			run = p;
		}
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			*bol = 0;
			break;
		}
		p = nl + 1;
		*bol = 1;
	}
	if (end > run)
		fn(ctx, run, (size_t)(end - run));
}

void
dotstuff_end(int bol, data_emit_fn fn, void *ctx)
{
	if (bol)
		fn(ctx, ".\r\n", 3);
	else
		fn(ctx, "\r\n.\r\n", 5);
}
