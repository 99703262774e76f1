/*
 * fuzz_smtp_addr.c - RFC 5321 / 6531 path parsing (smtp_addr.c): the
 * first byte picks the ADDR_* flags, the rest is the text after
 * "MAIL FROM:" / "RCPT TO:". Accepted paths are formatted and turned into
 * lookup keys; lengths and the printable form are checked.
 */
#include "fuzz.h"
#include "smtp_addr.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mailaddr a;
	const char *reply = NULL;
	char buf[ADDR_PATH_MAX + 1], key[ADDR_PATH_MAX + 1], *s;
	size_t n;
	int flags;

	if (size < 1)
		return 0;
	flags = data[0] & 15;
	s = fuzz_str(data + 1, size - 1);
	n = smtp_addr_parse_path(s, flags, &a, &reply);
	if (n == 0)
		fuzz_check(reply != NULL);
	else {
		fuzz_check(n <= strlen(s));
		fuzz_check(strlen(a.local) <= ADDR_LOCAL_MAX);
		fuzz_check(strlen(a.domain) <= ADDR_DOMAIN_MAX);
		smtp_addr_format(&a, buf, sizeof(buf));
		smtp_addr_lookup_key(&a, key, sizeof(key));
		/* nothing accepted may carry a space, CR, LF or NUL */
		fuzz_check(strpbrk(buf, "\r\n") == NULL);
		if (!(flags & ADDR_UTF8))
			for (const char *p = buf; *p; p++)
				fuzz_check((unsigned char)*p < 0x80);
	}
	free(s);
	return 0;
}
