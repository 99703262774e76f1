/*
 * smtp_data.h - message content codecs (pure): the DATA decoder (dot
 * removal, end-of-data detection), the BDAT decoder (same line checks, no
 * dots) and the dot-stuffing encoder for the sending side.
 *
 * End of data is recognised only as <CR><LF>.<CR><LF>: a bare LF or CR
 * never ends a line for that purpose, so ".\n" or "\n.\r\n" cannot end a
 * message or smuggle a second one. Bare CR/LF are either flagged (policy
 * reject) or stored as CRLF (policy normalize); either way the decoder keeps
 * reading to the real end of data so the session stays in sync.
 * The decoder never allocates; content goes to an emit callback in runs.
 * Once the content is known to be refused (too big, NUL, long line, bare
 * newline under reject) nothing more is emitted.
 */
#ifndef SLUICE_SMTP_DATA_H
#define SLUICE_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef void (*data_emit_fn)(void *ctx, const char *, size_t);

enum data_mode {
	DATA_MODE_DOT,		/* DATA: dot-stuffed, ends with CRLF.CRLF */
	DATA_MODE_RAW,		/* BDAT: exact octets, ends with LAST */
};

enum data_flag {
	DATA_BARE_LF = 1,
	DATA_BARE_CR = 2,
	DATA_NUL = 4,
	DATA_LONG_LINE = 8,
	DATA_TOO_BIG = 16,
};

struct data_decoder {
	enum data_mode mode;
	int normalize;		/* bare CR/LF -> CRLF instead of flagging */
	size_t line_max;	/* octets per line incl. CRLF */
	uint64_t size_max;	/* 0 = unlimited */

	int state;
	size_t line_len;
	uint64_t size;		/* octets emitted (or that would have been) */
	unsigned flags;
	int done;		/* DOT mode: end of data seen */
};

void	data_decoder_init(struct data_decoder *, enum data_mode,
	    int normalize, size_t line_max, uint64_t size_max);
/* data_decode - returns octets consumed; stops right after end of data */
size_t	data_decode(struct data_decoder *, const char *, size_t,
	    data_emit_fn, void *ctx);
/* data_decoder_finish - RAW mode: end of the last chunk */
void	data_decoder_finish(struct data_decoder *, data_emit_fn, void *ctx);
/* data_refused - content must be refused (flags other than normalized) */
int	data_refused(const struct data_decoder *);
/* data_reply - the SMTP reply for a refused content, or NULL */
const char *data_reply(const struct data_decoder *);

/*
 * Dot-stuffing for sending: *bol is 1 at the start of the message and is
 * carried between calls. dotstuff_end() emits the final ".\r\n" (preceded
 * by CRLF if the content did not end with one).
 */
void	dotstuff(const char *, size_t, int *bol, data_emit_fn, void *ctx);
void	dotstuff_end(int bol, data_emit_fn, void *ctx);

#endif
