/*
 * conf_types.c - parsers for the value notations used in the configuration
 *
 * API: conf_parse_duration(), conf_parse_msec(), conf_parse_size(),
 * conf_parse_bool(), conf_parse_network(),
 * conf_network_match() (see conf.h); conf_parse_uint(), conf_valid_domain(),
 * conf_domain_match(), conf_valid_local_part() and conf_lower() (see
 * conf_priv.h).
 * All of them are pure: no allocation, no I/O, locale-independent, and they
 * accept only the exact notation (no spaces, signs, or trailing garbage).
 * Errors: -1 (or 0 for the predicates) on a malformed or out-of-range value.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "conf_priv.h"

static int	 is_digit(char);
static int	 is_alnum(char);
static unsigned	 duration_unit(char);
static int	 size_shift(const char *, unsigned *);
static int	 prefix_match(const unsigned char *, const unsigned char *,
		    unsigned);

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int
conf_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long	 n = 0;
	unsigned		 d;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (!is_digit(*s))
			return -1;
		d = *s - '0';
		if (n > (max - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*out = n;
	return 0;
}

static unsigned
duration_unit(char c)
{
	switch (c) {
	case 's':
		return 1;
	case 'm':
		return 60;
	case 'h':
		return 60 * 60;
	case 'd':
		return 24 * 60 * 60;
	case 'w':
		return 7 * 24 * 60 * 60;
	default:
		return 0;
	}
}

/*
 * "90" (seconds), "30s", "5m", "2h", "5d", "1w", or several of those from
 * the largest unit to the smallest: "1h30m", "1d12h".
 */
int
conf_parse_duration(const char *s, unsigned *seconds)
{
	unsigned long long	 total = 0, n;
	unsigned		 unit, last = UINT_MAX;

	if (s == NULL || *s == '\0')
		return -1;
	if (conf_parse_uint(s, UINT_MAX, &n) == 0) {
		*seconds = (unsigned)n;
		return 0;
	}
	while (*s != '\0') {
		if (!is_digit(*s))
			return -1;
		for (n = 0; is_digit(*s); s++) {
			n = n * 10 + (*s - '0');
			if (n > UINT_MAX)
				return -1;
		}
		unit = duration_unit(*s++);
		if (unit == 0 || unit >= last)
			return -1;
		last = unit;
		if (n > UINT_MAX / unit)
			return -1;
		total += n * unit;
		if (total > UINT_MAX)
			return -1;
	}
	*seconds = (unsigned)total;
	return 0;
}

/*
 * conf_parse_msec - a duration in milliseconds: "250ms", or what
 * conf_parse_duration() takes ("2s", "1m", "3" = 3 seconds)
 */
int
conf_parse_msec(const char *s, unsigned *msec)
{
	unsigned long long	 n;
	unsigned		 sec;
	size_t			 len;
	char			 digits[24];

	if (s == NULL)
		return -1;
	len = strlen(s);
	if (len > 2 && strcmp(s + len - 2, "ms") == 0) {
		if (len - 2 >= sizeof(digits))
			return -1;
		memcpy(digits, s, len - 2);
		digits[len - 2] = '\0';
		if (conf_parse_uint(digits, UINT_MAX, &n) == -1)
			return -1;
		*msec = (unsigned)n;
		return 0;
	}
	if (conf_parse_duration(s, &sec) == -1 || sec > UINT_MAX / 1000)
		return -1;
	*msec = sec * 1000;
	return 0;
}

/* The unit after the digits: "", "B", "K", "KB", "KiB", ... (1K = 1024). */
static int
size_shift(const char *u, unsigned *shift)
{
	switch (*u) {
	case '\0':
		*shift = 0;
		return 0;
	case 'b':
	case 'B':
		*shift = 0;
		return u[1] == '\0' ? 0 : -1;
	case 'k':
	case 'K':
		*shift = 10;
		break;
	case 'm':
	case 'M':
		*shift = 20;
		break;
	case 'g':
	case 'G':
		*shift = 30;
		break;
	case 't':
	case 'T':
		*shift = 40;
		break;
	default:
		return -1;
	}
	u++;
	if (*u == 'i' || *u == 'I')
		u++;
	else if (*u == '\0')
		return 0;
	if ((*u == 'b' || *u == 'B') && u[1] == '\0')
		return 0;
	return -1;
}

int
conf_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t	 n = 0;
	unsigned	 d, shift;

	if (s == NULL || !is_digit(*s))
		return -1;
	for (; is_digit(*s); s++) {
		d = *s - '0';
		if (n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	if (size_shift(s, &shift) == -1)
		return -1;
	if (n > (UINT64_MAX >> shift))
		return -1;
	*bytes = n << shift;
	return 0;
}

/* "true", "yes", "on" or "false", "no", "off" (YAML 1.1 booleans). */
int
conf_parse_bool(const char *s, int *on)
{
	static const char *const	 yes[] = { "true", "yes", "on" };
	static const char *const	 no[] = { "false", "no", "off" };
	size_t				 i;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*on = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*on = 0;
			return 0;
		}
	}
	return -1;
}

/* "192.0.2.0/24", "2001:db8::/32"; a bare address is a host route. */
int
conf_parse_network(const char *s, struct conf_network *net)
{
	char			 buf[INET6_ADDRSTRLEN];
	const char		*slash;
	size_t			 len, i;
	unsigned		 maxp, bits;
	unsigned long long	 prefix;

	if (s == NULL)
		return -1;
	slash = strchr(s, '/');
	len = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, buf, net->addr) == 1) {
		net->family = AF_INET;
		maxp = 32;
	} else if (inet_pton(AF_INET6, buf, net->addr) == 1) {
		net->family = AF_INET6;
		maxp = 128;
	} else
		return -1;
	prefix = maxp;
	if (slash != NULL && conf_parse_uint(slash + 1, maxp, &prefix) == -1)
		return -1;
	net->prefix = (unsigned)prefix;
	for (i = 0; i < sizeof(net->addr); i++) {
		bits = prefix >= 8 ? 8 : (unsigned)prefix;
		net->addr[i] &= (unsigned char)(0xff00 >> bits);
		prefix -= bits;
	}
	return 0;
}

static int
prefix_match(const unsigned char *net, const unsigned char *a,
    unsigned prefix)
{
	unsigned	 whole = prefix / 8, rest = prefix % 8;
	unsigned char	 mask;

	if (memcmp(net, a, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff00 >> rest);
	return (net[whole] & mask) == (a[whole] & mask);
}

/* 1 if the address is inside the network; ::ffff:a.b.c.d counts as IPv4. */
int
conf_network_match(const struct conf_network *net, const struct sockaddr *sa)
{
	static const unsigned char	 mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	struct sockaddr_in		 sin;
	struct sockaddr_in6		 sin6;

	if (net == NULL || sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		if (net->family != AF_INET)
			return 0;
		memcpy(&sin, sa, sizeof(sin));
		return prefix_match(net->addr,
		    (const unsigned char *)&sin.sin_addr, net->prefix);
	}
	if (sa->sa_family != AF_INET6)
		return 0;
	memcpy(&sin6, sa, sizeof(sin6));
	if (net->family == AF_INET6)
		return prefix_match(net->addr, sin6.sin6_addr.s6_addr,
		    net->prefix);
	if (net->family != AF_INET ||
	    memcmp(sin6.sin6_addr.s6_addr, mapped, sizeof(mapped)) != 0)
		return 0;
	return prefix_match(net->addr, sin6.sin6_addr.s6_addr + 12,
	    net->prefix);
}

/*
 * How well a domain pattern ("example.org": exactly that domain;
 * ".example.org": its subdomains, at a label boundary) matches domain, in
 * any case: 0 not at all, else a rank that grows with precision (an exact
 * match beats any subdomain pattern, a longer pattern a shorter one).
 */
size_t
conf_domain_match(const char *pat, const char *domain)
{
	size_t	 plen = strlen(pat), dlen = strlen(domain);

	if (pat[0] != '.')
		return strcasecmp(pat, domain) == 0 ? SIZE_MAX : 0;
	if (plen < dlen && strcasecmp(domain + dlen - plen, pat) == 0)
		return plen;
	return 0;
}

/* Letters, digits and '-' in dot-separated labels of 1..63; 255 at most. */
int
conf_valid_domain(const char *s)
{
	size_t	 len, label = 0;

	len = strlen(s);
	if (len == 0 || len > 255)
		return 0;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (label == 0 || s[-1] == '-')
				return 0;
			label = 0;
		} else if (is_alnum(*s) || (*s == '-' && label > 0)) {
			if (++label > 63)
				return 0;
		} else
			return 0;
	}
	return label > 0 && s[-1] != '-';
}

/* An RFC 5321 dot-string: atext characters and single inner dots. */
int
conf_valid_local_part(const char *s, size_t len)
{
	static const char	 special[] = "!#$%&'*+-/=?^_`{|}~";
	size_t			 i;

	if (len == 0 || len > 64 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!is_alnum(s[i]) &&
		    (s[i] == '\0' || strchr(special, s[i]) == NULL))
			return 0;
	}
	return 1;
}

char *
conf_lower(char *s)
{
	char	*p;

	for (p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p += 'a' - 'A';
	return s;
}

int
conf_is_local_domain(const struct config *cf, const char *d)
{
	size_t	 i;

	for (i = 0; d != NULL && i < cf->nlocal_domains; i++)
		if (strcasecmp(cf->local_domains[i], d) == 0)
			return 1;
	return 0;
}
