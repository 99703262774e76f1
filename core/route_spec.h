/*
 * route_spec.h - where a recipient's mail goes: the route notation (pure)
 *
 * A route is written the way Postfix transport maps are:
 *
 *   smtp                   MX lookup of the recipient's domain, port 25
 *   smtp:example.net       MX lookup of example.net (A/AAAA if no MX)
 *   smtp:example.net:2525  the same, another port
 *   smtp:[mx.example.net]  that host's A/AAAA records, no MX lookup
 *   smtp:[192.0.2.1]:2525  an address literal (IPv6: smtp:[::1]:2525)
 *   lmtp:[127.0.0.1]:24    LMTP over TCP (host or literal in brackets)
 *   lmtp:unix:/run/dovecot/lmtp   LMTP over a unix socket (absolute path)
 *   maildir                the local Maildir of the mailbox
 *   discard                accept and drop (logged as delivered)
 *
 * route_spec_parse() is strict: host names must be valid DNS names (or
 * address literals in brackets), ports 1..65535, unix paths absolute and
 * shorter than sun_path. route_spec_format() writes the canonical form,
 * which route_spec_parse() reads back to the same struct; the canonical
 * form is also the key the scheduler groups deliveries by.
 */
#ifndef SLUICE_ROUTE_SPEC_H
#define SLUICE_ROUTE_SPEC_H

#include <stddef.h>
#include <stdint.h>

#define ROUTE_HOST_LEN	256		/* DNS name or literal + NUL */
#define ROUTE_PATH_LEN	108		/* sun_path */
#define ROUTE_SPEC_LEN	(ROUTE_HOST_LEN + ROUTE_PATH_LEN + 32)

enum route_kind {
	ROUTE_SMTP,		/* SMTP to MX hosts or a fixed host */
	ROUTE_LMTP,		/* LMTP to a fixed host or unix socket */
	ROUTE_MAILDIR,		/* local Maildir */
	ROUTE_DISCARD,		/* drop */
};

struct route_spec {
	enum route_kind kind;
	int mx;			/* SMTP: look up MX records of host (or of
				   the recipient's domain when host is "") */
	int literal;		/* host is an IP address literal */
	int unix_socket;	/* LMTP: path holds the socket */
	char host[ROUTE_HOST_LEN];	/* "" with mx: the recipient's domain */
	uint16_t port;		/* 25 for smtp, 24 for lmtp unless given */
	char path[ROUTE_PATH_LEN];
};

/* route_spec_parse - 0, or -1 with a short reason in *why (static text) */
int	route_spec_parse(const char *, struct route_spec *, const char **why);
/* route_spec_format - canonical text ("smtp:[192.0.2.1]:25"); never fails
   when len >= ROUTE_SPEC_LEN */
void	route_spec_format(const struct route_spec *, char *buf, size_t len);

#endif
