/*
 * fuzz_sasl.c - SMTP AUTH response decoding (sasl.c): strict base64, the
 * PLAIN message and LOGIN fields. First byte: bit 0 PLAIN or LOGIN; the
 * rest is the base64 response. Invariants: whatever decodes re-encodes
 * to the same text (strict base64 has one spelling); accepted PLAIN
 * credentials have a non-empty user within the limits and no NUL; a
 * LOGIN field never overflows its buffer.
 */
#include <string.h>

#include "fuzz.h"
#include "sasl.h"

static void
b64_roundtrip(const char *s, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
	    "tuvwxyz0123456789+/";
	unsigned char out[4096];
	char back[8192];
	long len = sasl_b64_decode(s, n, out, sizeof(out));
	size_t o = 0;

	if (len < 0)
		return;
	for (long i = 0; i < len; i += 3) {
		unsigned v = out[i] << 16, k = (unsigned)(len - i);

		if (k > 1)
			v |= out[i + 1] << 8;
		if (k > 2)
			v |= out[i + 2];
		back[o++] = a[v >> 18];
		back[o++] = a[(v >> 12) & 63];
		back[o++] = k > 1 ? a[(v >> 6) & 63] : '=';
		back[o++] = k > 2 ? a[v & 63] : '=';
	}
	fuzz_check(o == n && memcmp(back, s, n) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sasl_creds c;
	char field[64];
	const char *s;
	size_t n;

	if (size < 1 || size > 6000)
		return 0;
	s = (const char *)data + 1;
	n = size - 1;
	b64_roundtrip(s, n);
	if (data[0] & 1) {
		memset(&c, 0x55, sizeof(c));
		if (sasl_plain(s, n, &c) == NULL) {
			fuzz_check(c.user[0] != '\0');
			fuzz_check(strlen(c.user) <= SASL_USER_MAX);
			fuzz_check(strlen(c.pass) <= SASL_PASS_MAX);
		}
	} else if (sasl_login_field(s, n, field, sizeof(field)) == NULL)
		fuzz_check(strlen(field) < sizeof(field));
	return 0;
}
