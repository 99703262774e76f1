/*
 * fuzz.h - shared bits of the libFuzzer harnesses in tests/fuzz/: the
 * entry point prototypes (the build warns about functions without one) and
 * exact-size copies of the input, so that ASan sees any read past the end.
 */
#ifndef SLUICE_FUZZ_H
#define SLUICE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

/* fuzz_dup - the bytes in a buffer of exactly n bytes (1 if n is 0) */
static inline char *
fuzz_dup(const void *p, size_t n)
{
	char *d = malloc(n ? n : 1);

	if (d == NULL)
		abort();
	if (n)
		memcpy(d, p, n);
	return d;
}

/* fuzz_str - the bytes as a C string (cut at the first NUL, if any) */
static inline char *
fuzz_str(const void *p, size_t n)
{
	char *d = malloc(n + 1);

	if (d == NULL)
		abort();
	if (n)
		memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

/* fuzz_check - a broken invariant is a crash libFuzzer keeps */
#define fuzz_check(cond)	do { if (!(cond)) abort(); } while (0)

#endif
