/*
 * smtp_addr.c - parse RFC 5321 paths: Dot-string and Quoted-string local
 * parts, domains and address literals, with UTF-8 only under SMTPUTF8.
 *
 * Source routes ("<@a,@b:user@c>") are refused: RFC 5321 lets servers
 * ignore them, but they have only ever served open-relay tricks.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtp_addr.h"
#include "util.h"

#define R_SYNTAX_S	"501 5.1.7 Bad sender address syntax"
#define R_SYNTAX_R	"501 5.1.3 Bad recipient address syntax"
#define R_LONG_S	"501 5.1.7 Sender address too long"
#define R_LONG_R	"501 5.1.3 Recipient address too long"
#define R_NULL		"501 5.1.3 Null recipient not allowed"
#define R_UTF8		"553 5.6.7 Non-ASCII address requires SMTPUTF8"
#define R_ROUTE		"553 5.1.3 Source routes are not accepted"
#define R_NOBRACKET_S	"501 5.5.4 Syntax: MAIL FROM:<address>"
#define R_NOBRACKET_R	"501 5.5.4 Syntax: RCPT TO:<address>"

static int
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int
is_letdig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/*
 * scan_utf8 - at a non-ASCII byte: length of the UTF-8 character when
 * allowed, 0 for malformed input, and sets *needs_utf8 when disallowed.
 */
static size_t
scan_utf8(const unsigned char *p, int flags, int *needs_utf8)
{
	size_t n = utf8_seq(p, strnlen((const char *)p, 4));

	if (n == 0)
		return 0;
	if (!(flags & ADDR_UTF8)) {
		*needs_utf8 = 1;
		return 0;
	}
	return n;
}

static int
is_ldh(unsigned char c)
{
	return is_letdig(c) || c == '-';
}

/*
 * scan_word - the run of characters accepted by ok(), or UTF-8 sequences
 * where allowed, from p; the end of the run, or NULL on a bad byte.
 */
static const unsigned char *
scan_word(const unsigned char *p, int (*ok)(unsigned char), int flags,
    int *needs_utf8, int *utf8)
{
	while (ok(*p) || *p >= 0x80) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		size_t n = scan_utf8(p, flags, needs_utf8);
		if (n == 0)
			return NULL;
		*utf8 = 1;
		p += n;
	}
	return p;
}

/* parse_local - Dot-string or Quoted-string; returns length or 0 */
static size_t
parse_local(const unsigned char *s, int flags, int *needs_utf8, int *utf8)
{
	const unsigned char *p = s;

	if (*p == '"') {
		for (p++; *p != '"'; ) {
			if (*p == '\\') {
				if (p[1] < 32 || p[1] > 126)
					return 0;
				p += 2;
			} else if (*p >= 0x80) {
				size_t n = scan_utf8(p, flags, needs_utf8);
				if (n == 0)
					return 0;
				*utf8 = 1;
				p += n;
			} else if (*p >= 32 && *p <= 126)
				p++;
			else
				return 0;
		}
		return (size_t)(p + 1 - s);
	}
	for (;;) {			/* Atom *("." Atom) */
		const unsigned char *atom = p;
		if ((p = scan_word(p, is_atext, flags, needs_utf8, utf8)) == NULL)
			return 0;
		if (p == atom)
			return 0;
		if (*p != '.')
			break;
		p++;
	}
	return (size_t)(p - s);
}

/* parse_literal - "[1.2.3.4]", "[IPv6:...]" or "[tag:text]" */
static size_t
parse_literal(const unsigned char *s)
{
	const unsigned char *end = (const unsigned char *)strchr((const char *)s, ']');
	char buf[64];
	unsigned char bin[16];
	size_t n;

	if (end == NULL || (n = (size_t)(end - s - 1)) == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, s + 1, n);
	buf[n] = '\0';
	if (strncasecmp(buf, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, buf + 5, bin) != 1)
			return 0;
	} else if (inet_pton(AF_INET, buf, bin) != 1)
		return 0;
	return n + 2;
}

/* parse_domain - sub-domain *("." sub-domain), U-labels under SMTPUTF8 */
static size_t
parse_domain(const unsigned char *s, int flags, int *needs_utf8, int *utf8)
{
	const unsigned char *p = s;

	for (;;) {
		const unsigned char *label = p;
		if ((p = scan_word(p, is_ldh, flags, needs_utf8, utf8)) == NULL)
			return 0;
		if (p == label || *label == '-' || p[-1] == '-' ||
		    p - label > 63)
			return 0;
		if (*p != '.')
			break;
		p++;
	}
	return (size_t)(p - s);
}

static void
lower_ascii(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s += 'a' - 'A';
}

size_t
smtp_addr_parse_path(const char *str, int flags, struct mailaddr *out,
    const char **reply)
{
	const unsigned char *s = (const unsigned char *)str, *p;
	int sender = (flags & ADDR_SENDER) != 0, needs_utf8 = 0, utf8 = 0;
	size_t n, d;

	memset(out, 0, sizeof(*out));
	if (*s != '<') {
		*reply = sender ? R_NOBRACKET_S : R_NOBRACKET_R;
		return 0;
	}
	if (s[1] == '>') {
		if (!(flags & ADDR_ALLOW_NULL)) {
			*reply = R_NULL;
			return 0;
		}
		return 2;
	}
	if (s[1] == '@') {
		*reply = R_ROUTE;
		return 0;
	}
	if ((flags & ADDR_POSTMASTER) &&
	    strncasecmp(str, "<postmaster>", 12) == 0) {	/* RFC 5321 4.1.1.3 */
		memcpy(out->local, s + 1, 10);
		return 12;
	}
	p = s + 1;
	n = parse_local(p, flags, &needs_utf8, &utf8);
	if (n == 0 || p[n] != '@')
		goto bad;
	if (n > ADDR_LOCAL_MAX)
		goto toolong;
	memcpy(out->local, p, n);
	p += n + 1;
	if (*p == '[') {
		d = parse_literal(p);
		out->literal = 1;
	} else
		d = parse_domain(p, flags, &needs_utf8, &utf8);
	if (d == 0 || p[d] != '>')
		goto bad;
	if (d > ADDR_DOMAIN_MAX || (size_t)(p + d + 1 - s) > ADDR_PATH_MAX)
		goto toolong;
	memcpy(out->domain, p, d);
	lower_ascii(out->domain);
	out->utf8 = utf8;
	return (size_t)(p + d + 1 - s);
bad:
	*reply = needs_utf8 ? R_UTF8 : (sender ? R_SYNTAX_S : R_SYNTAX_R);
	return 0;
toolong:
	*reply = sender ? R_LONG_S : R_LONG_R;
	return 0;
}

void
smtp_addr_format(const struct mailaddr *a, char *buf, size_t len)
{
	if (a->local[0] == '\0' || a->domain[0] == '\0') {
		snprintf(buf, len, "%s", a->local);
		return;
	}
	snprintf(buf, len, "%s@%s", a->local, a->domain);
}

void
smtp_addr_lookup_key(const struct mailaddr *a, char *buf, size_t len)
{
	char local[ADDR_LOCAL_MAX + 1];
	size_t n = strlen(a->local);

	strcpy(local, a->local);
	if (n >= 2 && local[0] == '"') {	/* "alice" == alice */
		int plain = 1;
		for (size_t i = 1; i < n - 1; i++)
			if (!is_atext((unsigned char)local[i]) && local[i] != '.')
				plain = 0;
		if (plain && local[1] != '.' && local[n - 2] != '.' &&
		    strstr(local, "..") == NULL) {
			memmove(local, local + 1, n - 2);
			local[n - 2] = '\0';
		}
	}
	lower_ascii(local);
	snprintf(buf, len, "%s@%s", local, a->domain);
}
