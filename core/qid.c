/*
 * qid.c - queue ID generation (see qid.h).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "qid.h"
#include "util.h"

static const char alphabet[] = "0123456789abcdefghijklmnopqrstuv";
static atomic_uint counter;

void
qid_new(char buf[QID_LEN + 1])
{
	uint64_t t = now_usec() & ((UINT64_C(1) << 52) - 1);
	uint64_t c = atomic_fetch_add(&counter, 1) & ((1u << 15) - 1);
	int i;

	/* 52 bits of time in 11 chars (55 bits, top 3 zero) */
	for (i = 10; i >= 0; i--) {
		buf[i] = alphabet[t & 31];
		t >>= 5;
	}
	/* the 15-bit counter in 3 chars */
	buf[11] = alphabet[(c >> 10) & 31];
	buf[12] = alphabet[(c >> 5) & 31];
	buf[13] = alphabet[c & 31];
	buf[QID_LEN] = '\0';
}

int
qid_valid(const char *s)
{
	if (strlen(s) != QID_LEN)
		return 0;
	for (; *s; s++)
		if (strchr(alphabet, *s) == NULL)
			return 0;
	return 1;
}

uint64_t
qid_usec(const char *id)
{
	uint64_t t = 0;

	for (int i = 0; i < 11 && id[i] != '\0'; i++) {
		const char *p = strchr(alphabet, id[i]);
		if (p == NULL || id[i] == '\0')
			return 0;
		t = t << 5 | (uint64_t)(p - alphabet);
	}
	return t;
}
