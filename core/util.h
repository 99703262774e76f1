/*
 * util.h - small helpers every module uses: allocation that never fails,
 * string helpers, time.
 *
 * The x-functions abort the process when memory is exhausted: a server that
 * cannot allocate a few bytes cannot keep any promise, and callers stay short.
 */
#ifndef SLUICE_UTIL_H
#define SLUICE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

size_t	 strlcpy_s(char *dst, const char *src, size_t size);
void	 str_lower(char *);
int	 str_has_ctl(const char *);	/* any byte < 0x20 or 0x7f */
int	 utf8_valid(const char *, size_t);
int	 str_is_ascii(const char *);
int	 mem_has_8bit(const char *, size_t);
uint32_t fnv1a(const void *, size_t);
void	 sock_nodelay(int);
struct sockaddr_storage;
/* sockaddr_numeric - a numeric IPv4/IPv6 address and a port as a socket
   address; 0, or -1 when addr is not one */
int	 sockaddr_numeric(const char *addr, uint16_t port,
	    struct sockaddr_storage *, unsigned *len);
struct sockaddr;
/* sockaddr_text - an IPv4/IPv6 socket address as text (an IPv4-mapped
   IPv6 one as IPv4) and its port; -1 for other families */
int	 sockaddr_text(const struct sockaddr *, char *buf, size_t len,
	    unsigned *port);
size_t	 utf8_seq(const unsigned char *, size_t n);

uint64_t now_usec(void);		/* wall clock, microseconds */
uint64_t mono_msec(void);		/* monotonic, milliseconds */
void	 rfc5322_date(char *buf, size_t len, time_t);
int	 rfc5322_date_utc(char *buf, size_t len, time_t);

int	 write_all(int fd, const char *, size_t);	/* 0, or -1 errno */
int	 mkdir_p(const char *path, unsigned mode);
int	 fsync_dir(const char *path);

#endif
