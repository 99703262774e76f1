/*
 * envelope.h - a message's envelope and its on-disk text form (pure)
 *
 * The envelope is what SMTP said about a message: sender, recipients, their
 * DSN parameters, and where it came from. envelope_serialize() writes it as
 * "key value" lines in which every value is %-encoded (any byte outside
 * 0x21..0x7e, and '%' itself, becomes %HH): a stored field can never carry a
 * space, CR or LF, whatever the client sent. envelope_parse() is strict and
 * rejects anything it did not write.
 * Ownership: struct envelope owns its strings; envelope_clear() frees them.
 */
#ifndef SLUICE_ENVELOPE_H
#define SLUICE_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "qid.h"
#include "smtp_params.h"
#include "tags.h"

struct envelope_rcpt {
	char *addr;		/* "local@domain" as received */
	char *orcpt;		/* "addr-type;xtext" or NULL */
	unsigned notify;	/* enum dsn_notify bits */
};

struct envelope {
	char id[QID_LEN + 1];
	uint64_t arrival;	/* microseconds since the epoch */
	char *sender;		/* "" for the null sender */
	char *helo;
	char *client_addr;
	unsigned client_port;
	char *listener;
	char *protocol;		/* SMTP, ESMTP, UTF8SMTP, ... (RFC 3848) */
	enum body_type body;
	int smtputf8;
	enum dsn_ret ret;
	char *envid;		/* xtext or NULL */
	uint64_t size;		/* message octets as stored */
	struct envelope_rcpt *rcpts;
	size_t nrcpts;
	struct tags tags;	/* the transaction's filter tags */
	int quarantine;		/* kept in quarantine/, not delivered */
};

void	envelope_init(struct envelope *);
void	envelope_clear(struct envelope *);
void	envelope_add_rcpt(struct envelope *, const char *addr,
	    const char *orcpt, unsigned notify);

/* envelope_serialize - returns a malloc'ed text, its length in *len */
char	*envelope_serialize(const struct envelope *, size_t *len);
/* envelope_parse - 0, or -1 with a reason in err */
int	envelope_parse(const char *, size_t, struct envelope *,
	    char *err, size_t errlen);

/* %-encoding of stored values, shared with the status records */
char	*value_encode(const char *);
/* value_decode - in place; -1 when malformed */
int	value_decode(char *);

#endif
