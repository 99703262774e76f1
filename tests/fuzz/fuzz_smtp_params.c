/*
 * fuzz_smtp_params.c - ESMTP parameters of MAIL and RCPT and RFC 3461
 * xtext (smtp_params.c). First byte: bit 0 MAIL or RCPT, bit 1 SMTPUTF8
 * given; the rest is the parameter string. Accepted ENVID/ORCPT values
 * must be valid xtext (printable text for ORCPT=utf-8;...) without
 * blanks; every input also goes through
 * xtext_valid()/xtext_decode(), whose decoding is checked against a
 * re-encoding.
 */
#include <stdio.h>
#include <strings.h>

#include "fuzz.h"
#include "smtp_params.h"

static void
xtext(const char *s, size_t n)
{
	char buf[600], *enc, *o;
	int v = xtext_valid(s, n);

	if (xtext_decode(s, buf, sizeof(buf)) == 0) {
		fuzz_check(v || memchr(s, '\0', n) != NULL);
		/* re-encode what cannot be literal; must decode the same */
		enc = malloc(strlen(buf) * 3 + 1);
		o = enc;
		for (const unsigned char *p = (unsigned char *)buf; *p; p++)
			if (*p < 33 || *p > 126 || *p == '+' || *p == '=')
				o += sprintf(o, "+%02X", *p);
			else
				*o++ = (char)*p;
		*o = '\0';
		char back[sizeof(buf)];
		if (xtext_decode(enc, back, sizeof(back)) == 0)
			fuzz_check(strcmp(back, buf) == 0);
		free(enc);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mail_params mp;
	struct rcpt_params rp;
	const char *reply;
	char *s;

	if (size < 1)
		return 0;
	s = fuzz_str(data + 1, size - 1);
	if (data[0] & 1) {
		reply = smtp_params_rcpt(s, data[0] & 2, &rp);
		if (reply == NULL && rp.orcpt[0] != '\0') {
			const char *semi = strchr(rp.orcpt, ';');
			fuzz_check(semi != NULL);
			/* utf-8 (RFC 6533) is printable text, not xtext */
			if (strncasecmp(rp.orcpt, "utf-8;", 6) == 0) {
				for (const char *q = semi + 1; *q; q++)
					fuzz_check((unsigned char)*q > 0x20 &&
					    *q != 0x7f);
			} else
				fuzz_check(xtext_valid(semi + 1,
				    strlen(semi + 1)));
		}
	} else {
		reply = smtp_params_mail(s, &mp);
		if (reply == NULL)
			fuzz_check(xtext_valid(mp.envid, strlen(mp.envid)));
	}
	if (reply != NULL)
		fuzz_check(reply[0] == '4' || reply[0] == '5');
	free(s);
	s = fuzz_dup(data + 1, size - 1);
	(void)xtext_valid(s, size - 1);
	free(s);
	s = fuzz_str(data + 1, size - 1);
	xtext(s, size - 1);
	free(s);
	return 0;
}
