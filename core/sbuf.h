/*
 * sbuf.h - a growing byte buffer for building text: start from
 * { 0 }, append, then sb_finish() hands over the NUL-terminated result
 * (the caller frees it). p is not NUL-terminated before that.
 */
#ifndef SLUICE_SBUF_H
#define SLUICE_SBUF_H

#include <stddef.h>

struct sbuf {
	char *p;
	size_t len, cap;
};

void	 sb_reserve(struct sbuf *, size_t);
void	 sb_add(struct sbuf *, const char *, size_t);
void	 sb_str(struct sbuf *, const char *);
void	 sb_printf(struct sbuf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
char	*sb_finish(struct sbuf *, size_t *);

#endif
