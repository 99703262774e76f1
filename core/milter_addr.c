/*
 * milter_addr.c - the socket address of a `milter:` entry (pure)
 *
 * Both spellings in use are accepted, so an address can be copied from a
 * Postfix main.cf or from a milter's own configuration:
 *   unix:/path  local:/path  /path            a UNIX-domain socket
 *   inet:HOST:PORT  inet:[v6addr]:PORT        Postfix
 *   inet:PORT@HOST  inet6:PORT@HOST           libmilter / Sendmail
 * HOST must be a numeric address: resolving names would block the start
 * and make the filter's location depend on DNS.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "milter_client.h"
#include "util.h"

static int
parse_port(const char *s, size_t n, uint16_t *port)
{
	unsigned long v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

static int
parse_host(const char *h, size_t n, uint16_t port,
    struct sockaddr_storage *ss, socklen_t *len)
{
	char buf[INET6_ADDRSTRLEN + 1];
	unsigned sl;

	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, h, n);
	buf[n] = '\0';
	if (sockaddr_numeric(buf, port, ss, &sl) == -1)
		return -1;
	*len = sl;
	return 0;
}

static int
parse_inet(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	const char *at = strchr(s, '@'), *colon;
	uint16_t port;

	if (at != NULL)			/* PORT@HOST */
		return parse_port(s, (size_t)(at - s), &port) == -1 ? -1 :
		    parse_host(at + 1, strlen(at + 1), port, ss, len);
	if ((colon = strrchr(s, ':')) == NULL)	/* HOST:PORT */
		return -1;
	if (parse_port(colon + 1, strlen(colon + 1), &port) == -1)
		return -1;
	if (memchr(s, ':', (size_t)(colon - s)) != NULL && s[0] != '[')
		return -1;		/* a bare IPv6 address needs [] */
	return parse_host(s, (size_t)(colon - s), port, ss, len);
}

int
milter_addr_parse(const char *spec, struct sockaddr_storage *ss,
    socklen_t *len, char *err, size_t errlen)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	const char *path = NULL;

	if (strncmp(spec, "unix:", 5) == 0)
		path = spec + 5;
	else if (strncmp(spec, "local:", 6) == 0)
		path = spec + 6;
	else if (spec[0] == '/')
		path = spec;
	if (path != NULL) {
		if (path[0] != '/' || strlen(path) >= sizeof(sun->sun_path)) {
			snprintf(err, errlen, "milter socket '%s': expected an "
			    "absolute path shorter than %zu bytes", spec,
			    sizeof(sun->sun_path));
			return -1;
		}
		memset(ss, 0, sizeof(*ss));
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, path, strlen(path) + 1);
		*len = sizeof(*sun);
		return 0;
	}
	if ((strncmp(spec, "inet:", 5) == 0 && parse_inet(spec + 5, ss,
	    len) == 0) || (strncmp(spec, "inet6:", 6) == 0 &&
	    parse_inet(spec + 6, ss, len) == 0 && ss->ss_family == AF_INET6))
		return 0;
	snprintf(err, errlen, "milter socket '%s': expected unix:/path, "
	    "inet:HOST:PORT or inet:PORT@HOST with a numeric address", spec);
	return -1;
}
