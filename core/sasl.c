/*
 * sasl.c - SASL PLAIN and LOGIN decoding (sasl.h).
 */
#include <string.h>
#include <strings.h>

#include "sasl.h"

enum sasl_mech
sasl_mech_parse(const char *name)
{
	if (strcasecmp(name, "PLAIN") == 0)
		return SASL_PLAIN;
	if (strcasecmp(name, "LOGIN") == 0)
		return SASL_LOGIN;
	return SASL_NONE;
}

const char *
sasl_mech_name(enum sasl_mech m)
{
	return m == SASL_PLAIN ? "PLAIN" : m == SASL_LOGIN ? "LOGIN" : "";
}

static int
b64_digit(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long
sasl_b64_decode(const char *in, size_t inlen, unsigned char *out,
    size_t outlen)
{
	size_t o = 0;

	if (inlen % 4 != 0)
		return -1;
	for (size_t i = 0; i < inlen; i += 4) {
		int d[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];

			if (c == '=' && i + 4 == inlen && k >= 2 &&
			    (k == 3 || in[i + 3] == '=')) {
				d[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0 || (d[k] = b64_digit(c)) < 0)
				return -1;
		}
		if (o + 3 - (size_t)pad > outlen)
			return -1;
		out[o++] = (unsigned char)(d[0] << 2 | d[1] >> 4);
		if (pad < 2)
			out[o++] = (unsigned char)((d[1] & 15) << 4 | d[2] >> 2);
		if (pad < 1)
			out[o++] = (unsigned char)((d[2] & 3) << 6 | d[3]);
		/* bits that padding drops must be zero (canonical form) */
		if ((pad == 2 && (d[1] & 15)) || (pad == 1 && (d[2] & 3)))
			return -1;
	}
	return (long)o;
}

const char *
sasl_plain(const char *b64, size_t len, struct sasl_creds *c)
{
	unsigned char buf[SASL_USER_MAX * 2 + SASL_PASS_MAX + 3];
	const unsigned char *authz, *user, *pass, *nul1, *nul2, *end;
	long n;

	if (len > 0 && len / 4 * 3 > sizeof(buf) + 3)
		return SASL_ERR_LONG;
	if ((n = sasl_b64_decode(b64, len, buf, sizeof(buf))) < 0)
		return SASL_ERR_BASE64;
	end = buf + n;
	authz = buf;
	if ((nul1 = memchr(authz, '\0', (size_t)n)) == NULL)
		return SASL_ERR_FORMAT;
	user = nul1 + 1;
	if ((nul2 = memchr(user, '\0', (size_t)(end - user))) == NULL)
		return SASL_ERR_FORMAT;
	pass = nul2 + 1;
	if (memchr(pass, '\0', (size_t)(end - pass)) != NULL)
		return SASL_ERR_FORMAT;
	if (nul2 == user)
		return SASL_ERR_EMPTY;
	if ((size_t)(nul2 - user) > SASL_USER_MAX ||
	    (size_t)(end - pass) > SASL_PASS_MAX)
		return SASL_ERR_LONG;
	if (nul1 != authz && ((nul1 - authz) != (nul2 - user) ||
	    memcmp(authz, user, (size_t)(nul1 - authz)) != 0))
		return SASL_ERR_AUTHZ;
	memcpy(c->user, user, (size_t)(nul2 - user));
	c->user[nul2 - user] = '\0';
	memcpy(c->pass, pass, (size_t)(end - pass));
	c->pass[end - pass] = '\0';
	return NULL;
}

const char *
sasl_login_field(const char *b64, size_t len, char *out, size_t outsize)
{
	long n;

	if (outsize == 0)
		return SASL_ERR_LONG;
	if (len / 4 * 3 > outsize + 2)
		return SASL_ERR_LONG;
	if ((n = sasl_b64_decode(b64, len, (unsigned char *)out,
	    outsize - 1)) < 0)
		return len / 4 * 3 >= outsize ? SASL_ERR_LONG :
		    SASL_ERR_BASE64;
	if (memchr(out, '\0', (size_t)n) != NULL)
		return SASL_ERR_FORMAT;
	out[n] = '\0';
	return NULL;
}
