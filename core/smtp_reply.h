/*
 * smtp_reply.h - what a remote SMTP/LMTP server answers, parsed strictly
 * (pure; the outbound client feeds it one line at a time)
 *
 * A reply is one or more lines "DDD-text" ending with "DDD text" (or just
 * "DDD"), all with the same code, first digit 2..5 (RFC 5321 4.2). Anything
 * else is a broken reply: the client treats it as a temporary failure of
 * the connection. Limits: REPLY_LINE_MAX bytes per line (without CRLF),
 * REPLY_LINES_MAX lines, REPLY_TEXT_MAX bytes of text kept (the rest is
 * dropped, the reply stays valid). Kept text is made printable: control
 * bytes become '?', so nothing from a reply can break a log line or a queue
 * file. The enhanced status code (RFC 3463) of the first line is extracted
 * when the text starts with one whose class matches the reply code.
 *
 * EHLO replies also yield the server's extensions (smtp_caps_parse).
 */
#ifndef SLUICE_SMTP_REPLY_H
#define SLUICE_SMTP_REPLY_H

#include <stddef.h>
#include <stdint.h>

#define REPLY_LINE_MAX	4096
#define REPLY_LINES_MAX	200
#define REPLY_TEXT_MAX	1024

struct smtp_reply {
	int code;			/* 250 */
	char enhanced[16];		/* "2.1.5" or "" */
	char text[REPLY_TEXT_MAX];	/* lines joined with " / ", printable,
					   without code and enhanced code of
					   the first line */
	unsigned nlines;
	int done;			/* the last line was seen */
	char **lines;			/* EHLO only: each line's text (for
					   smtp_caps_parse); see keep_lines */
	int keep_lines;
};

enum reply_feed {
	REPLY_MORE,			/* more lines follow */
	REPLY_DONE,			/* complete: code and text are set */
	REPLY_BAD,			/* broken: *why says how */
};

void	smtp_reply_init(struct smtp_reply *, int keep_lines);
void	smtp_reply_clear(struct smtp_reply *);	/* frees kept lines */
/* smtp_reply_feed - one line, CRLF removed */
enum reply_feed smtp_reply_feed(struct smtp_reply *, const char *line,
	    size_t len, const char **why);
/* smtp_enhanced_len - length of an RFC 3463 code "c.sss.ddd" at s whose
   class is cls ('2', '4', '5'), followed by a space or the end; 0 if none */
size_t	smtp_enhanced_len(const char *s, size_t len, char cls);
/* smtp_reply_format - "550 5.1.1 text" (what DSNs and logs show) */
void	smtp_reply_format(const struct smtp_reply *, char *buf, size_t len);

enum smtp_cap {
	CAP_PIPELINING = 1 << 0,
	CAP_SIZE = 1 << 1,
	CAP_8BITMIME = 1 << 2,
	CAP_SMTPUTF8 = 1 << 3,
	CAP_DSN = 1 << 4,
	CAP_STARTTLS = 1 << 5,
	CAP_CHUNKING = 1 << 6,
	CAP_ENHANCEDSTATUSCODES = 1 << 7,
};

struct smtp_caps {
	unsigned flags;			/* enum smtp_cap bits */
	uint64_t size;			/* SIZE limit, 0 = none announced */
};

/* smtp_caps_parse - from an EHLO/LHLO reply parsed with keep_lines */
void	smtp_caps_parse(const struct smtp_reply *, struct smtp_caps *);

#endif
