/*
 * fuzz_proxy.c - the PROXY protocol parser (proxy_proto.c) on arbitrary
 * connection prefixes. Invariants: an accepted header's length is within
 * the input and the limits, and parsing exactly that prefix gives the
 * same answer; a prefix that asks for more is a prefix of something the
 * parser could still accept (so every shorter prefix of an accepted header
 * asks for more too); a refusal says why.
 */
#include <string.h>

#include "fuzz.h"
#include "proxy_proto.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr h, h2;
	enum proxy_result r;
	const char *why;

	if (size > PROXY_MAX + 64)
		return 0;
	r = proxy_parse(data, size, &h, &why);
	if (r == PROXY_BAD)
		fuzz_check(why != NULL);
	if (r != PROXY_OK)
		return 0;
	fuzz_check(h.len > 0 && h.len <= size && h.len <= PROXY_MAX);
	fuzz_check(h.version == 1 || h.version == 2);
	fuzz_check(proxy_parse(data, h.len, &h2, &why) == PROXY_OK);
	fuzz_check(h2.len == h.len && h2.local == h.local);
	fuzz_check(memcmp(&h2.src, &h.src, sizeof(h.src)) == 0);
	for (size_t k = 0; k < h.len; k++)
		fuzz_check(proxy_parse(data, k, &h2, &why) == PROXY_MORE);
	return 0;
}
