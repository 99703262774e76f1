/*
 * fuzz_smtp_reply.c - the delivery client's strict reply parser
 * (smtp_reply.c) and EHLO capability parsing. First byte: keep_lines
 * (EHLO mode); the rest is split at LF (a trailing CR removed, as
 * smtpc.c does) and fed one line at a time; a finished or broken reply
 * starts the next one. Checked: code range, printable kept text, that a
 * reply reports done only with REPLY_DONE.
 */
#include "fuzz.h"
#include "smtp_reply.h"

static void
finish(struct smtp_reply *r, int keep)
{
	char buf[REPLY_TEXT_MAX + 64];
	struct smtp_caps caps;

	fuzz_check(r->code >= 200 && r->code <= 599);
	fuzz_check(memchr(r->text, '\0', sizeof(r->text)) != NULL);
	for (const char *p = r->text; *p; p++)
		fuzz_check((unsigned char)*p >= 0x20 && *p != 0x7f);
	smtp_reply_format(r, buf, sizeof(buf));
	if (keep) {
		memset(&caps, 0, sizeof(caps));
		smtp_caps_parse(r, &caps);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply r;
	const uint8_t *p, *end = data + size, *nl;
	int keep;

	if (size < 1)
		return 0;
	keep = data[0] & 1;
	smtp_reply_init(&r, keep);
	for (p = data + 1; p < end; ) {
		const char *why = NULL;
		size_t len, n;
		char *line;
		enum reply_feed f;

		nl = memchr(p, '\n', (size_t)(end - p));
		len = n = (size_t)((nl ? nl : end) - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		line = fuzz_dup(p, n);
		f = smtp_reply_feed(&r, line, n, &why);
		free(line);
		p += len + (nl != NULL);
		if (f == REPLY_MORE)
			continue;
		if (f == REPLY_DONE)
			finish(&r, keep);
		else
			fuzz_check(why != NULL);
		smtp_reply_clear(&r);
		smtp_reply_init(&r, keep);
	}
	smtp_reply_clear(&r);
	return 0;
}
