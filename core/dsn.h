/*
 * dsn.h - delivery status notifications (RFC 3464): building the message
 *
 * dsn_build() writes a complete RFC 5322 message (CRLF line ends) that
 * reports on some recipients of one original message: a multipart/report
 * (report-type=delivery-status, RFC 6522) holding a human-readable
 * text/plain part, the machine-readable message/delivery-status part, and
 * the original message's headers (text/rfc822-headers) or, for RET=FULL,
 * the whole original message (message/rfc822). For SMTPUTF8 originals it
 * uses the RFC 6533 types (message/global-delivery-status,
 * message/global-headers, message/global). Pure: no I/O, no clock, no
 * randomness; every variable input is a parameter, so tests can compare
 * whole outputs.
 * Ownership: the returned text is malloc'ed, the caller frees it.
 */
#ifndef SLUICE_DSN_H
#define SLUICE_DSN_H

#include <stddef.h>
#include <stdint.h>

enum dsn_action {
	DSN_FAILED,
	DSN_DELAYED,
	DSN_DELIVERED,
	DSN_RELAYED,
};

struct dsn_rcpt {
	const char *addr;		/* final recipient, "bob@example.org" */
	const char *orcpt;		/* RCPT ORCPT as stored: "rfc822;x" with
					   the address in xtext; NULL if none */
	enum dsn_action action;
	const char *status;		/* enhanced status "5.1.1" */
	const char *remote_mta;		/* "mx.example.org" or NULL */
	const char *diagnostic;		/* the remote reply "550 5.1.1 No such
					   user", or NULL; or our own text
					   when there was no remote reply */
	int diagnostic_is_smtp;		/* diagnostic is a remote SMTP reply */
	uint64_t last_attempt;		/* unix seconds, 0 = none */
	uint64_t retry_until;		/* delayed: unix seconds, else 0 */
};

struct dsn_params {
	const char *reporting_mta;	/* our host name */
	const char *from;		/* From: address, "MAILER-DAEMON@host" */
	const char *to;			/* the original envelope sender */
	const char *orig_qid;		/* original queue ID (X-Sluice-Queue-ID
					   and text) */
	const char *envid;		/* original ENVID (xtext) or NULL */
	const char *received_from;	/* "client.example [192.0.2.1]" or NULL */
	uint64_t arrival;		/* original arrival, unix seconds */
	uint64_t now;			/* unix seconds: Date: header */
	const char *message_id;		/* "<...>" for the DSN's Message-ID */
	const char *boundary;		/* MIME boundary to use (unique) */
	int full;			/* return the whole message (RET=FULL) */
	int smtputf8;			/* original needed SMTPUTF8: RFC 6533 */
	const char *msg;		/* the original message, CRLF lines */
	size_t msg_len;
	size_t full_limit;		/* full: bytes at most; a bigger message
					   is returned as headers only, with a
					   sentence saying so */
};

/* dsn_build - the DSN as a malloc'ed message; *len its length */
char	*dsn_build(const struct dsn_params *, const struct dsn_rcpt *,
	    size_t nrcpts, size_t *len);

#endif
