/*
 * smtp_params.c - parse and validate ESMTP parameters of MAIL and RCPT.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtp_params.h"

#define R_UNKNOWN	"555 5.5.4 Unsupported parameter"
#define R_DUP		"501 5.5.4 Duplicate parameter"
#define R_SYNTAX	"501 5.5.4 Bad parameter syntax"
#define R_SIZE		"501 5.5.4 Bad SIZE value"
#define R_BODY		"501 5.5.4 Unsupported BODY type (7BIT or 8BITMIME)"
#define R_RET		"501 5.5.4 Bad RET value (FULL or HDRS)"
#define R_ENVID		"501 5.5.4 Bad ENVID value"
#define R_AUTH		"501 5.5.4 Bad AUTH value"
#define R_NOTIFY	"501 5.5.4 Bad NOTIFY value"
#define R_ORCPT		"501 5.5.4 Bad ORCPT value"

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;	/* RFC 3461: hexchar is upper case only */
}

int
xtext_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			if (i + 2 >= len)
				return 0;
			if (hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
				return 0;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=')
			return 0;
	}
	return 1;
}

int
xtext_decode(const char *s, char *buf, size_t len)
{
	size_t o = 0, n = strlen(s);

	if (!xtext_valid(s, n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (o + 1 >= len)
			return -1;
		if (s[i] == '+') {
			buf[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else
			buf[o++] = s[i];
	}
	buf[o] = '\0';
	return 0;
}

/* next_param - split "KEY[=VALUE]" off *args; NULL at the end */
static char *
next_param(char **args, char **value)
{
	char *p = *args, *kw;

	while (*p == ' ')
		p++;
	if (*p == '\0')
		return NULL;
	kw = p;
	while (*p != ' ' && *p != '\0')
		p++;
	if (*p == ' ')
		*p++ = '\0';
	*args = p;
	*value = strchr(kw, '=');
	if (*value != NULL)
		*(*value)++ = '\0';
	return kw;
}

/* keyword_ok - esmtp-keyword: (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static int
keyword_ok(const char *k)
{
	if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
	    (*k >= '0' && *k <= '9')))
		return 0;
	for (k++; *k; k++)
		if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
		    (*k >= '0' && *k <= '9') || *k == '-'))
			return 0;
	return 1;
}

/* value_ok - esmtp-value: 1*(%d33-60 / %d62-126), UTF-8 allowed if utf8 */
static int
value_ok(const char *v, int utf8)
{
	if (*v == '\0')
		return 0;
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (c >= 0x80 && utf8)
			continue;
		if (c < 33 || c > 126 || c == '=')
			return 0;
	}
	return 1;
}

static const char *
parse_size(const char *v, struct mail_params *mp)
{
	uint64_t n = 0;

	if (v == NULL || *v == '\0')
		return R_SIZE;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return R_SIZE;
		if (n > (UINT64_MAX - 9) / 10)
			n = UINT64_MAX;	/* absurdly large: refused as too big */
		else
			n = n * 10 + (uint64_t)(*v - '0');
	}
	mp->has_size = 1;
	mp->size = n;
	return NULL;
}

const char *
smtp_params_mail(char *args, struct mail_params *mp)
{
	char *kw, *v;

	memset(mp, 0, sizeof(*mp));
	while ((kw = next_param(&args, &v)) != NULL) {
		if (!keyword_ok(kw) || (v != NULL && !value_ok(v, 0)))
			return R_SYNTAX;
		if (strcasecmp(kw, "SIZE") == 0) {
			if (mp->has_size)
				return R_DUP;
			const char *r = parse_size(v, mp);
			if (r != NULL)
				return r;
		} else if (strcasecmp(kw, "BODY") == 0) {
			if (mp->body != BODY_UNSPEC)
				return R_DUP;
			if (v != NULL && strcasecmp(v, "7BIT") == 0)
				mp->body = BODY_7BIT;
			else if (v != NULL && strcasecmp(v, "8BITMIME") == 0)
				mp->body = BODY_8BITMIME;
			else
				return R_BODY;
		} else if (strcasecmp(kw, "SMTPUTF8") == 0) {
			if (mp->smtputf8)
				return R_DUP;
			if (v != NULL)
				return R_SYNTAX;
			mp->smtputf8 = 1;
		} else if (strcasecmp(kw, "RET") == 0) {
			if (mp->ret != RET_UNSPEC)
				return R_DUP;
			if (v != NULL && strcasecmp(v, "FULL") == 0)
				mp->ret = RET_FULL;
			else if (v != NULL && strcasecmp(v, "HDRS") == 0)
				mp->ret = RET_HDRS;
			else
				return R_RET;
		} else if (strcasecmp(kw, "ENVID") == 0) {
			if (mp->envid[0] != '\0')
				return R_DUP;
			if (v == NULL || strlen(v) > ENVID_MAX ||
			    !xtext_valid(v, strlen(v)))
				return R_ENVID;
			strcpy(mp->envid, v);
		} else if (strcasecmp(kw, "AUTH") == 0) {
			/* RFC 4954 5: noted, never trusted or passed on */
			if (mp->has_auth)
				return R_DUP;
			if (v == NULL || strlen(v) > AUTH_PARAM_MAX ||
			    !xtext_valid(v, strlen(v)))
				return R_AUTH;
			mp->has_auth = 1;
		} else
			return R_UNKNOWN;
	}
	return NULL;
}

static const char *
parse_notify(const char *v, unsigned *notify)
{
	char buf[64], *tok, *save = NULL;

	if (v == NULL || strlen(v) >= sizeof(buf))
		return R_NOTIFY;
	strcpy(buf, v);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		unsigned bit;
		if (strcasecmp(tok, "NEVER") == 0)
			bit = NOTIFY_NEVER;
		else if (strcasecmp(tok, "SUCCESS") == 0)
			bit = NOTIFY_SUCCESS;
		else if (strcasecmp(tok, "FAILURE") == 0)
			bit = NOTIFY_FAILURE;
		else if (strcasecmp(tok, "DELAY") == 0)
			bit = NOTIFY_DELAY;
		else
			return R_NOTIFY;
		if (*notify & bit)
			return R_NOTIFY;
		*notify |= bit;
	}
	if (*notify == 0 || ((*notify & NOTIFY_NEVER) && *notify != NOTIFY_NEVER))
		return R_NOTIFY;
	/* strtok_r folds empty items: "SUCCESS,,DELAY" must still fail */
	if (strstr(v, ",,") != NULL || v[0] == ',' || v[strlen(v) - 1] == ',')
		return R_NOTIFY;
	return NULL;
}

/*
 * parse_orcpt - "addr-type;xtext". rfc822 takes xtext; utf-8 (RFC 6533)
 * takes printable text with UTF-8 when the transaction is SMTPUTF8.
 */
static const char *
parse_orcpt(const char *v, int utf8, struct rcpt_params *rp)
{
	const char *semi;
	size_t tlen;

	if (v == NULL || (semi = strchr(v, ';')) == NULL)
		return R_ORCPT;
	tlen = (size_t)(semi - v);
	if (tlen == 0 || tlen > 20 || strlen(semi + 1) == 0 ||
	    strlen(semi + 1) > ORCPT_MAX)
		return R_ORCPT;
	for (size_t i = 0; i < tlen; i++)
		if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' && v[i] <= 'z') ||
		    (v[i] >= '0' && v[i] <= '9') || v[i] == '-'))
			return R_ORCPT;
	if (strncasecmp(v, "utf-8;", 6) == 0) {
		if (!value_ok(semi + 1, utf8))
			return R_ORCPT;
	} else if (!xtext_valid(semi + 1, strlen(semi + 1)))
		return R_ORCPT;
	strcpy(rp->orcpt, v);
	return NULL;
}

const char *
smtp_params_rcpt(char *args, int utf8, struct rcpt_params *rp)
{
	char *kw, *v;

	memset(rp, 0, sizeof(*rp));
	while ((kw = next_param(&args, &v)) != NULL) {
		if (!keyword_ok(kw) || (v != NULL && !value_ok(v, utf8)))
			return R_SYNTAX;
		if (strcasecmp(kw, "NOTIFY") == 0) {
			if (rp->notify != 0)
				return R_DUP;
			const char *r = parse_notify(v, &rp->notify);
			if (r != NULL)
				return r;
		} else if (strcasecmp(kw, "ORCPT") == 0) {
			if (rp->orcpt[0] != '\0')
				return R_DUP;
			const char *r = parse_orcpt(v, utf8, rp);
			if (r != NULL)
				return r;
		} else
			return R_UNKNOWN;
	}
	return NULL;
}

const char *
smtp_body_name(enum body_type b)
{
	return b == BODY_7BIT ? "7BIT" : b == BODY_8BITMIME ? "8BITMIME" :
	    NULL;
}

const char *
smtp_ret_name(enum dsn_ret r)
{
	return r == RET_FULL ? "FULL" : r == RET_HDRS ? "HDRS" : NULL;
}

const char *
smtp_notify_text(unsigned n, char *buf, size_t len)
{
	if (n & NOTIFY_NEVER)
		return "NEVER";
	snprintf(buf, len, "%s%s%s", n & NOTIFY_SUCCESS ? "SUCCESS," : "",
	    n & NOTIFY_FAILURE ? "FAILURE," : "",
	    n & NOTIFY_DELAY ? "DELAY," : "");
	if (buf[0])
		buf[strlen(buf) - 1] = '\0';
	return buf;
}
