/*
 * util.c - allocation wrappers, string and time helpers (see util.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "util.h"

static void
oom(void)
{
	static const char msg[] = "sluiced: out of memory\n";

	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		oom();
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		oom();
	return xrealloc(p, n * size);
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		oom();
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		oom();
	return p;
}

int
xasprintf(char **ret, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	return n;
}

/* strlcpy_s - copy with truncation, always terminated; returns strlen(src) */
size_t
strlcpy_s(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

void
str_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s += 'a' - 'A';
}

int
str_has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/*
 * utf8_seq - length of the well-formed UTF-8 sequence at s (n bytes
 * available): 1 for ASCII, 0 for overlongs, surrogates, code points above
 * U+10FFFF, stray continuation bytes and truncated sequences.
 */
size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c, need, min, cp;

	if (n == 0)
		return 0;
	c = s[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1, min = 0x80, cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2, min = 0x800, cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3, min = 0x10000, cp = c & 0x07;
	} else
		return 0;
	if (n <= need)
		return 0;
	for (unsigned k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need + 1;
}

/* utf8_valid - the whole buffer is well-formed UTF-8 */
int
utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, k;

	while (i < len) {
		if ((k = utf8_seq(s + i, len - i)) == 0)
			return 0;
		i += k;
	}
	return 1;
}

uint64_t
now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t
mono_msec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* date_format - RFC 5322 date-time of tm, which is off minutes east of UTC */
static void
date_format(char *buf, size_t len, const struct tm *tm, long off)
{
	static const char *days[] = {
	    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *months[] = {
	    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

	snprintf(buf, len, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm->tm_wday], tm->tm_mday, months[tm->tm_mon],
	    tm->tm_year + 1900, tm->tm_hour, tm->tm_min, tm->tm_sec,
	    off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
}

/* rfc5322_date - "Sat, 28 Nov 2026 12:57:23 +0100" in local time */
void
rfc5322_date(char *buf, size_t len, time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	date_format(buf, len, &tm, tm.tm_gmtoff / 60);
}

/* rfc5322_date_utc - the same in UTC ("+0000"); -1 when t has no
   struct tm */
int
rfc5322_date_utc(char *buf, size_t len, time_t t)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		return -1;
	date_format(buf, len, &tm, 0);
	return 0;
}

/* write_all - write everything, retrying short writes and EINTR */
int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* mkdir_p - create path and its parents; existing directories are fine */
int
mkdir_p(const char *path, unsigned mode)
{
	char *p, *s = xstrdup(path);
	int rv = 0;

	for (p = s + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(s, mode) == -1 && errno != EEXIST) {
			rv = -1;
			break;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(s);
	return rv;
}

/* fsync_dir - make the directory entries of path durable */
int
fsync_dir(const char *path)
{
	int fd, rv, saved;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rv = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rv;
}

/* mem_has_8bit - a byte >= 0x80 in p[0..n) (p may be NULL when n is 0) */
int
mem_has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; p != NULL && i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 1;
	return 0;
}

/* str_is_ascii - no byte of s is 0x80 or above */
int
str_is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

/* sock_nodelay - send small writes at once (TCP; nothing for others) */
void
sock_nodelay(int fd)
{
	int on = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

int
sockaddr_numeric(const char *addr, uint16_t port, struct sockaddr_storage *ss,
    unsigned *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

int
sockaddr_text(const struct sockaddr *sa, char *buf, size_t len,
    unsigned *port)
{
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf,
			    (socklen_t)len);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
		*port = ntohs(s6->sin6_port);
		return 0;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)len);
		*port = ntohs(s4->sin_port);
		return 0;
	}
	return -1;
}

/* fnv1a - the FNV-1a hash of n bytes, for the hash tables */
uint32_t
fnv1a(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}
