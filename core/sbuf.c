/*
 * sbuf.c - a growing byte buffer for building text (sbuf.h). Allocation
 * failures end the process (xrealloc), as everywhere else.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sbuf.h"
#include "util.h"

void
sb_reserve(struct sbuf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 1024;

	if (n <= b->cap - b->len)
		return;
	while (n > cap - b->len) {
		if (cap > SIZE_MAX / 2)
			cap = b->len + n;
		else
			cap *= 2;
	}
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (n == 0)
		return;
	sb_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

void
sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	sb_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* sb_finish - NUL-terminate and hand over the text */
char *
sb_finish(struct sbuf *b, size_t *len)
{
	sb_reserve(b, 1);
	b->p[b->len] = '\0';
	if (len != NULL)
		*len = b->len;
	return b->p;
}
