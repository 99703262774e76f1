/*
 * smtp_addr.h - RFC 5321 / RFC 6531 path and mailbox parsing (pure)
 *
 * API: smtp_addr_parse_path() parses "<local@domain>" (or "<>" where the
 * null path is allowed) at the start of a string; smtp_addr_lookup_key()
 * gives the case-folded form used to look up local mailboxes.
 * No I/O, no logging, no allocation: results land in caller buffers, and a
 * rejected address comes with the complete SMTP reply to send.
 */
#ifndef SLUICE_SMTP_ADDR_H
#define SLUICE_SMTP_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX	64	/* octets, RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX	255	/* octets, RFC 5321 4.5.3.1.2 */
#define ADDR_PATH_MAX	256	/* octets incl. <>, RFC 5321 4.5.3.1.3 */

struct mailaddr {
	char local[ADDR_LOCAL_MAX + 1];		/* as sent, quotes kept */
	char domain[ADDR_DOMAIN_MAX + 1];	/* lower case (ASCII part) */
	int literal;				/* domain is [address literal] */
	int utf8;				/* contains non-ASCII */
};

enum addr_flags {
	ADDR_ALLOW_NULL = 1,	/* "<>" is acceptable (reverse path) */
	ADDR_UTF8 = 2,		/* SMTPUTF8 was given: UTF-8 allowed */
	ADDR_SENDER = 4,	/* pick sender wording/codes for replies */
	ADDR_POSTMASTER = 8,	/* "<postmaster>" without a domain is fine */
};

/*
 * smtp_addr_parse_path - parse a path at the start of s. Returns the number
 * of bytes consumed (> 0) and fills *out (empty local and domain for "<>"),
 * or 0 with *reply set to the SMTP reply explaining the refusal.
 */
size_t	smtp_addr_parse_path(const char *s, int flags, struct mailaddr *out,
	    const char **reply);

/* smtp_addr_format - "local@domain", "" for the null path, or just the
 * local part for <postmaster> */
void	smtp_addr_format(const struct mailaddr *, char *buf, size_t len);

/*
 * smtp_addr_lookup_key - the key used for local mailbox lookups: quotes
 * removed where they only wrap atext, ASCII folded to lower case.
 */
void	smtp_addr_lookup_key(const struct mailaddr *, char *buf, size_t len);

#endif
