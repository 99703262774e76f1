/*
 * dns_name.c - the pure part of dns.h: names of types and statuses, the
 * query name check, reverse names
 *
 * API: dns_type_parse(), dns_type_name(), dns_type_code(),
 * dns_status_name(), dns_name_valid(), dns_reverse_name(),
 * dns_reverse_ipv4_label(); see dns.h.
 * No allocation, no I/O, no c-ares; safe from any thread.
 * Errors: -1 (or 0 for dns_name_valid) on bad input or a buffer too small.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "util.h"

static const struct {
	const char	*name;
	int		 code;
} types[] = {
	[DNS_A] =	{ "A",		1 },
	[DNS_AAAA] =	{ "AAAA",	28 },
	[DNS_MX] =	{ "MX",		15 },
	[DNS_TXT] =	{ "TXT",	16 },
	[DNS_PTR] =	{ "PTR",	12 },
	[DNS_CNAME] =	{ "CNAME",	5 },
	[DNS_NS] =	{ "NS",		2 },
	[DNS_SRV] =	{ "SRV",	33 },
};

static const char *const statuses[] = {
	[DNS_OK] = "OK",
	[DNS_NXDOMAIN] = "NXDOMAIN",
	[DNS_NODATA] = "NODATA",
	[DNS_SERVFAIL] = "SERVFAIL",
	[DNS_TIMEOUT] = "TIMEOUT",
	[DNS_REFUSED] = "REFUSED",
	[DNS_BADRESP] = "BADRESP",
	[DNS_ERROR] = "ERROR",
};

static int	 reverse_v4(const unsigned char *, const char *, char *,
		    size_t);
static int	 reverse_v6(const unsigned char *, const char *, char *,
		    size_t);

int
dns_type_parse(const char *s, enum dns_type *type)
{
	size_t	 i;

	if (s == NULL)
		return -1;
	for (i = 0; i < nitems(types); i++) {
		if (strcasecmp(s, types[i].name) == 0) {
			*type = (enum dns_type)i;
			return 0;
		}
	}
	return -1;
}

const char *
dns_type_name(enum dns_type t)
{
	return (unsigned)t < nitems(types) ? types[t].name : "UNKNOWN";
}

int
dns_type_code(enum dns_type t)
{
	return (unsigned)t < nitems(types) ? types[t].code : -1;
}

const char *
dns_status_name(enum dns_status s)
{
	return (unsigned)s < nitems(statuses) ? statuses[s] : "UNKNOWN";
}

/*
 * dns_name_valid - 1..253 bytes in labels of 1..63 (one final dot allowed),
 * printable ASCII without space or backslash (c-ares reads '\' as an
 * escape); internationalized names must come as A-labels (xn--).
 */
int
dns_name_valid(const char *name)
{
	size_t		 len, i, label = 0;
	unsigned char	 c;

	if (name == NULL)
		return 0;
	len = strlen(name);
	if (len > 1 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++) {
		c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (c <= ' ' || c >= 0x7f || c == '\\')
			return 0;
		else if (++label > 63)
			return 0;
	}
	return label > 0;
}

/* d.c.b.a.zone */
static int
reverse_v4(const unsigned char *a, const char *zone, char *buf, size_t len)
{
	int	 n;

	n = snprintf(buf, len, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0],
	    zone);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* 32 nibbles, lowest first, then zone */
static int
reverse_v6(const unsigned char *a, const char *zone, char *buf, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i, o = 0;
	int			 n;

	if (len < 64) {
		if (len > 0)
			buf[0] = '\0';
		return -1;
	}
	for (i = 16; i-- > 0;) {
		buf[o++] = hex[a[i] & 0xf];
		buf[o++] = '.';
		buf[o++] = hex[a[i] >> 4];
		buf[o++] = '.';
	}
	n = snprintf(buf + o, len - o, "%s", zone);
	if (n < 0 || (size_t)n >= len - o) {
		buf[0] = '\0';
		return -1;
	}
	return 0;
}

int
dns_addr_bytes(const struct sockaddr *sa, unsigned char out[16], int *family)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;

	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		memcpy(out, &sin.sin_addr, 4);
		*family = AF_INET;
		return 4;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	memcpy(&sin6, sa, sizeof(sin6));
	if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
		memcpy(out, sin6.sin6_addr.s6_addr + 12, 4);
		*family = AF_INET;
		return 4;
	}
	memcpy(out, sin6.sin6_addr.s6_addr, 16);
	*family = AF_INET6;
	return 16;
}

int
dns_reverse_name(const struct sockaddr *sa, char *buf, size_t len)
{
	unsigned char	 a[16];
	int		 family;

	if (buf == NULL || dns_addr_bytes(sa, a, &family) == -1)
		return -1;
	if (family == AF_INET)
		return reverse_v4(a, "in-addr.arpa", buf, len);
	return reverse_v6(a, "ip6.arpa", buf, len);
}

int
dns_reverse_ipv4_label(const char *ipv4, const char *zone, char *buf,
    size_t len)
{
	unsigned char	 a[4];

	if (ipv4 == NULL || zone == NULL || buf == NULL || *zone == '\0' ||
	    *zone == '.' || inet_pton(AF_INET, ipv4, a) != 1)
		return -1;
	if (reverse_v4(a, zone, buf, len) == -1 || !dns_name_valid(buf)) {
		if (len > 0)
			buf[0] = '\0';
		return -1;
	}
	return 0;
}
