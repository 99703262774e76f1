/*
 * smtp_params.h - ESMTP parameters of MAIL and RCPT (pure)
 *
 * MAIL: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531),
 * RET and ENVID (RFC 3461). RCPT: NOTIFY and ORCPT (RFC 3461).
 * Functions return NULL when the parameters are acceptable, or the complete
 * SMTP reply to send (Postfix's check convention). Values are validated
 * strictly, so what is stored can never carry a space, CR or LF.
 */
#ifndef SLUICE_SMTP_PARAMS_H
#define SLUICE_SMTP_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#define ENVID_MAX	100	/* RFC 3461 4.4 */
#define AUTH_PARAM_MAX	500	/* MAIL AUTH=, xtext */
#define ORCPT_MAX	500	/* RFC 3461 4.2 */

enum body_type { BODY_UNSPEC, BODY_7BIT, BODY_8BITMIME };
enum dsn_ret { RET_UNSPEC, RET_FULL, RET_HDRS };

enum dsn_notify {
	NOTIFY_NEVER = 1,
	NOTIFY_SUCCESS = 2,
	NOTIFY_FAILURE = 4,
	NOTIFY_DELAY = 8,
};

struct mail_params {
	int has_size;
	uint64_t size;		/* UINT64_MAX when the value overflowed */
	enum body_type body;
	int smtputf8;
	enum dsn_ret ret;
	char envid[ENVID_MAX + 1];	/* xtext as sent, "" if absent */
	int has_auth;			/* AUTH= given (RFC 4954 5) */
};

struct rcpt_params {
	unsigned notify;		/* enum dsn_notify bits, 0 if absent */
	char orcpt[ORCPT_MAX + 32];	/* "addr-type;xtext" as sent */
};

const char *smtp_params_mail(char *args, struct mail_params *);
const char *smtp_params_rcpt(char *args, int utf8, struct rcpt_params *);

/* the values as written in MAIL and RCPT: "8BITMIME", "HDRS", NULL for
   unspecified; smtp_notify_text gives "SUCCESS,DELAY", "NEVER" or "" */
const char *smtp_body_name(enum body_type);
const char *smtp_ret_name(enum dsn_ret);
const char *smtp_notify_text(unsigned notify, char *buf, size_t len);

/* xtext_valid - RFC 3461 xtext: printable ASCII, "+HH" for the rest */
int	xtext_valid(const char *, size_t len);
/* xtext_decode - decode into buf; -1 when malformed or too long */
int	xtext_decode(const char *, char *buf, size_t len);

#endif
