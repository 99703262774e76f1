/*
 * sasl.h - the server side of SASL PLAIN (RFC 4616) and LOGIN as SMTP AUTH
 * (RFC 4954) carries them: strict base64, the PLAIN message split into
 * authorization identity, user and password, and LOGIN's two prompts.
 *
 * Pure functions over caller buffers: no I/O, no allocation, so the unit
 * tests and the fuzzer can drive them. Limits: a user name of at most
 * SASL_USER_MAX bytes and a password of at most SASL_PASS_MAX; no NUL
 * inside either (PLAIN uses NUL as its separator, LOGIN forbids it here).
 */
#ifndef SLUICE_SASL_H
#define SLUICE_SASL_H

#include <stddef.h>

#define SASL_USER_MAX	255
#define SASL_PASS_MAX	1024

enum sasl_mech {
	SASL_NONE,
	SASL_PLAIN,
	SASL_LOGIN,
};

struct sasl_creds {
	char user[SASL_USER_MAX + 1];
	char pass[SASL_PASS_MAX + 1];
};

/* "PLAIN", "LOGIN" (any case) or SASL_NONE */
enum sasl_mech sasl_mech_parse(const char *);
const char *sasl_mech_name(enum sasl_mech);

/*
 * sasl_b64_decode - strict base64 (RFC 4648 4: padding required, no
 * white space); the decoded length, or -1 if malformed or over outlen
 */
long	sasl_b64_decode(const char *in, size_t inlen, unsigned char *out,
	    size_t outlen);

/*
 * sasl_plain - decode a PLAIN response (base64 of authzid NUL user NUL
 * password). NULL on success; otherwise the reason, one of the SASL_ERR_*
 * texts below. An authorization identity other than the user itself (or
 * empty) is refused: sluice does not let one user act as another.
 */
const char *sasl_plain(const char *b64, size_t len, struct sasl_creds *);

/* sasl_login_field - decode one LOGIN answer (user or password) */
const char *sasl_login_field(const char *b64, size_t len, char *out,
	    size_t outsize);

#define SASL_ERR_BASE64	"cannot decode the response"
#define SASL_ERR_FORMAT	"malformed PLAIN response"
#define SASL_ERR_LONG	"user name or password too long"
#define SASL_ERR_AUTHZ	"authorization identity differs from the user"
#define SASL_ERR_EMPTY	"empty user name"

/* the LOGIN prompts, base64 of "Username:" and "Password:" */
#define SASL_LOGIN_USER	"VXNlcm5hbWU6"
#define SASL_LOGIN_PASS	"UGFzc3dvcmQ6"

#endif
