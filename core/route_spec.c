/*
 * route_spec.c - the route notation of route_spec.h: parse and format
 *
 * API: route_spec_parse(), route_spec_format(); see route_spec.h.
 * Pure: no allocation, no I/O, no locale; safe from any thread.
 * Keywords (smtp, lmtp, maildir, discard, unix:, IPv6:) are matched without
 * regard to case; host names are stored lower case without a trailing dot,
 * address literals in the form inet_ntop() writes, so that equal routes
 * have equal structs and equal canonical text.
 * Errors: route_spec_parse() returns -1 with a short static reason and
 * leaves the output struct untouched.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "route_spec.h"

#define NAME_MAX_LEN	253		/* DNS name, without the final dot */
#define LABEL_MAX_LEN	63
#define PORT_MAX_DIGITS	5
#define SMTP_PORT	25
#define LMTP_PORT	24

static const struct {
	const char	*word;
	enum route_kind	 kind;
} keywords[] = {
	{ "smtp",	ROUTE_SMTP },
	{ "lmtp",	ROUTE_LMTP },
	{ "maildir",	ROUTE_MAILDIR },
	{ "discard",	ROUTE_DISCARD },
};

static int		 is_digit(char);
static int		 is_ldh(char);
static char		 lower(char);
static int		 find_keyword(const char *, size_t, enum route_kind *);
static int		 all_digits_dots(const char *, size_t);
static const char	*check_label(const char *, size_t);
static const char	*numeric_name(const char *, size_t, int);
static const char	*parse_host_name(const char *, size_t, int, char *);
static const char	*parse_literal(const char *, size_t, char *);
static const char	*parse_bracketed(const char *, size_t,
			    struct route_spec *);
static const char	*parse_port(const char *, uint16_t *);
static const char	*parse_nexthop(const char *, int, struct route_spec *);
static const char	*parse_unix_path(const char *, struct route_spec *);
static const char	*parse_smtp(const char *, struct route_spec *);
static const char	*parse_lmtp(const char *, struct route_spec *);

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* letter, digit or hyphen */
static int
is_ldh(char c)
{
	return is_digit(c) || c == '-' || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z');
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int
all_digits_dots(const char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (!is_digit(s[i]) && s[i] != '.')
			return 0;
	return 1;
}

static int
find_keyword(const char *s, size_t len, enum route_kind *kind)
{
	size_t	 i;

	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		if (strlen(keywords[i].word) == len &&
		    strncasecmp(s, keywords[i].word, len) == 0) {
			*kind = keywords[i].kind;
			return 0;
		}
	}
	return -1;
}

/* One label: 1..63 letters, digits or inner hyphens. */
static const char *
check_label(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0)
		return "empty label in host name";
	if (len > LABEL_MAX_LEN)
		return "host name label longer than 63";
	if (s[0] == '-' || s[len - 1] == '-')
		return "host name label starts or ends with '-'";
	for (i = 0; i < len; i++)
		if (!is_ldh(s[i]))
			return "invalid character in host name";
	return NULL;
}

/*
 * A name whose last label is all digits is no host name (RFC 3696 2.):
 * either an address literal without its brackets, or a broken one.
 */
static const char *
numeric_name(const char *s, size_t len, int bracketed)
{
	char			 buf[INET_ADDRSTRLEN];
	struct in_addr		 a;
	size_t			 i;

	for (i = len; i > 0 && s[i - 1] != '.'; i--)
		if (!is_digit(s[i - 1]))
			return NULL;
	if (!all_digits_dots(s, len))
		return "numeric top-level label in host name";
	if (!bracketed && len < sizeof(buf)) {
		memcpy(buf, s, len);
		buf[len] = '\0';
		if (inet_pton(AF_INET, buf, &a) == 1)
			return "address literal needs brackets";
	}
	return "invalid IPv4 address";
}

/* A DNS name into out (ROUTE_HOST_LEN): lower case, final dot dropped. */
static const char *
parse_host_name(const char *s, size_t len, int bracketed, char *out)
{
	const char	*why;
	size_t		 i, start;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0)
		return "missing host";
	if (len > NAME_MAX_LEN)
		return "host name longer than 253";
	for (start = 0, i = 0; i <= len; i++) {
		if (i < len && s[i] != '.')
			continue;
		if ((why = check_label(s + start, i - start)) != NULL)
			return why;
		start = i + 1;
	}
	if ((why = numeric_name(s, len, bracketed)) != NULL)
		return why;
	for (i = 0; i < len; i++)
		out[i] = lower(s[i]);
	out[len] = '\0';
	return NULL;
}

/* An IPv4 or IPv6 address ("IPv6:" tag optional), canonical into out. */
static const char *
parse_literal(const char *s, size_t len, char *out)
{
	char		 buf[INET6_ADDRSTRLEN + 5];
	unsigned char	 addr[16];
	int		 tagged = 0;

	if (len >= 5 && strncasecmp(s, "IPv6:", 5) == 0) {
		s += 5;
		len -= 5;
		tagged = 1;
	}
	if (len >= sizeof(buf))
		return "invalid address literal";
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!tagged && inet_pton(AF_INET, buf, addr) == 1) {
		inet_ntop(AF_INET, addr, out, ROUTE_HOST_LEN);
		return NULL;
	}
	if (inet_pton(AF_INET6, buf, addr) == 1) {
		inet_ntop(AF_INET6, addr, out, ROUTE_HOST_LEN);
		return NULL;
	}
	return tagged ? "invalid IPv6 address" : "invalid address literal";
}

/* Inside [...]: an address literal, or a host name (no MX lookup). */
static const char *
parse_bracketed(const char *s, size_t len, struct route_spec *r)
{
	if (len == 0)
		return "missing host";
	if (memchr(s, ':', len) != NULL || all_digits_dots(s, len)) {
		r->literal = 1;
		return parse_literal(s, len, r->host);
	}
	return parse_host_name(s, len, 1, r->host);
}

/* Decimal 1..65535: no sign, no blanks, no leading zero. */
static const char *
parse_port(const char *s, uint16_t *port)
{
	unsigned long	 n = 0;
	size_t		 len, i;

	len = strlen(s);
	if (len == 0)
		return "missing port after ':'";
	for (i = 0; i < len; i++)
		if (!is_digit(s[i]))
			return "invalid port";
	if (s[0] == '0' && len > 1)
		return "invalid port";
	if (len > PORT_MAX_DIGITS)
		return "port out of range";
	for (i = 0; i < len; i++)
		n = n * 10 + (unsigned long)(s[i] - '0');
	if (n == 0 || n > 65535)
		return "port out of range";
	*port = (uint16_t)n;
	return NULL;
}

/*
 * "[host]", "[host]:port", "host", "host:port". A bare host gets an MX
 * lookup when mx is set; a bracketed one never does.
 */
static const char *
parse_nexthop(const char *s, int mx, struct route_spec *r)
{
	const char	*end, *why;

	if (*s == '[') {
		if ((end = strchr(s + 1, ']')) == NULL)
			return "missing ']'";
		if ((why = parse_bracketed(s + 1, (size_t)(end - s - 1),
		    r)) != NULL)
			return why;
		r->mx = 0;
		if (end[1] == '\0')
			return NULL;
		if (end[1] != ':')
			return "unexpected text after ']'";
		return parse_port(end + 2, &r->port);
	}
	if ((end = strchr(s, ':')) == NULL)
		end = s + strlen(s);
	else if (strchr(end + 1, ':') != NULL)
		return "too many ':' (IPv6 addresses go in brackets)";
	if ((why = parse_host_name(s, (size_t)(end - s), 0, r->host)) != NULL)
		return why;
	r->mx = mx;
	return *end == ':' ? parse_port(end + 1, &r->port) : NULL;
}

static const char *
parse_unix_path(const char *p, struct route_spec *r)
{
	size_t	 len = strlen(p), i;

	if (len == 0)
		return "missing unix socket path";
	if (p[0] != '/')
		return "unix socket path must be absolute";
	if (len >= ROUTE_PATH_LEN)
		return "unix socket path too long";
	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return "control character in unix socket path";
	memcpy(r->path, p, len + 1);
	r->unix_socket = 1;
	r->port = 0;
	return NULL;
}

/* rest: what follows "smtp:", or NULL for a bare "smtp" */
static const char *
parse_smtp(const char *rest, struct route_spec *r)
{
	r->port = SMTP_PORT;
	if (rest == NULL) {
		r->mx = 1;
		return NULL;
	}
	if (*rest == '\0')
		return "missing host after ':'";
	return parse_nexthop(rest, 1, r);
}

/* rest: what follows "lmtp:", or NULL for a bare "lmtp" */
static const char *
parse_lmtp(const char *rest, struct route_spec *r)
{
	if (rest == NULL)
		return "lmtp needs [host]:port, host:port or unix:/path";
	r->port = LMTP_PORT;
	if (strncasecmp(rest, "unix:", 5) == 0)
		return parse_unix_path(rest + 5, r);
	if (strcasecmp(rest, "unix") == 0)
		return "missing unix socket path";
	if (*rest == '\0')
		return "missing host after ':'";
	return parse_nexthop(rest, 0, r);
}

int
route_spec_parse(const char *s, struct route_spec *out, const char **why)
{
	struct route_spec	 r;
	const char		*colon, *rest, *reason;
	size_t			 len;

	if (s == NULL || *s == '\0') {
		reason = "empty route";
		goto fail;
	}
	memset(&r, 0, sizeof(r));
	colon = strchr(s, ':');
	len = colon != NULL ? (size_t)(colon - s) : strlen(s);
	rest = colon != NULL ? colon + 1 : NULL;
	if (find_keyword(s, len, &r.kind) == -1) {
		reason = "unknown route type: expected smtp, lmtp, maildir "
		    "or discard";
		goto fail;
	}
	if (r.kind == ROUTE_SMTP)
		reason = parse_smtp(rest, &r);
	else if (r.kind == ROUTE_LMTP)
		reason = parse_lmtp(rest, &r);
	else
		reason = rest != NULL ? "nothing may follow maildir or discard" :
		    NULL;
	if (reason != NULL)
		goto fail;
	*out = r;
	return 0;
fail:
	if (why != NULL)
		*why = reason;
	return -1;
}

void
route_spec_format(const struct route_spec *r, char *buf, size_t len)
{
	int	 hlen = (int)strnlen(r->host, sizeof(r->host));
	int	 plen = (int)strnlen(r->path, sizeof(r->path));

	if (len == 0)
		return;
	switch (r->kind) {
	case ROUTE_SMTP:
		if (r->mx && hlen == 0)
			snprintf(buf, len, "smtp");
		else
			snprintf(buf, len, r->mx ? "smtp:%.*s:%u" :
			    "smtp:[%.*s]:%u", hlen, r->host,
			    (unsigned)r->port);
		break;
	case ROUTE_LMTP:
		if (r->unix_socket)
			snprintf(buf, len, "lmtp:unix:%.*s", plen, r->path);
		else
			snprintf(buf, len, "lmtp:[%.*s]:%u", hlen, r->host,
			    (unsigned)r->port);
		break;
	case ROUTE_MAILDIR:
		snprintf(buf, len, "maildir");
		break;
	case ROUTE_DISCARD:
		snprintf(buf, len, "discard");
		break;
	default:
		buf[0] = '\0';
		break;
	}
}
