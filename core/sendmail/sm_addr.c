/*
 * sm_addr.c - addresses for sluice-sendmail (sendmail.h): RFC 5322 address
 * lists as found in To:, Cc: and Bcc: (and in operands like "a@x, b@y"),
 * reduced to bare addresses, qualified and checked.
 *
 * The list is split at commas outside quotes, comments and angle
 * brackets; a group's "name:" is dropped and its ";" ends a member.
 * From each member the part in <...> is the address, or else the member
 * itself without comments. The result must parse as an RFC 5321 path
 * (smtp_addr.c, UTF-8 allowed), so what sendmail accepts sluiced accepts.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "sbuf.h"
#include "sendmail.h"
#include "smtp_addr.h"
#include "util.h"

void
sm_rcpts_add(struct sm_rcpts *r, const char *addr)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcasecmp(r->v[i], addr) == 0)
			return;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->v = xreallocarray(r->v, r->cap, sizeof(*r->v));
	}
	r->v[r->n++] = xstrdup(addr);
}

void
sm_rcpts_clear(struct sm_rcpts *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

int
sm_addr_check(const char *addr, int allow_null, char *err, size_t errlen)
{
	char path[ADDR_PATH_MAX + 8];
	struct mailaddr ma;
	const char *reply = NULL;
	size_t n;

	if (*addr == '\0' && allow_null)
		return 0;
	if (strlen(addr) > ADDR_PATH_MAX - 2)
		goto bad;
	snprintf(path, sizeof(path), "<%s>", addr);
	n = smtp_addr_parse_path(path, ADDR_UTF8 |
	    (allow_null ? ADDR_ALLOW_NULL : 0), &ma, &reply);
	if (n == strlen(path) && ma.domain[0] != '\0')
		return 0;
bad:
	snprintf(err, errlen, "malformed address: %s", addr);
	return EX_DATAERR;
}

/* trim - strip blanks at both ends, in place */
static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	    e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* has_at - an '@' outside quotes */
static int
has_at(const char *s)
{
	int q = 0;

	for (; *s; s++) {
		if (*s == '\\' && s[1] != '\0')
			s++;
		else if (*s == '"')
			q = !q;
		else if (*s == '@' && !q)
			return 1;
	}
	return 0;
}

/* member - one list member (comments already removed) */
static int
member(char *m, const char *origin, struct sm_rcpts *r, char *err,
    size_t errlen)
{
	char *a = m, *lt = NULL, *gt, *full;
	int q = 0, rv;

	for (char *p = m; *p; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			q = !q;
		else if (*p == '<' && !q) {
			lt = p;
			break;
		}
	}
	if (lt != NULL) {
		if ((gt = strrchr(lt, '>')) == NULL) {
			snprintf(err, errlen, "malformed address: %s", trim(m));
			return EX_DATAERR;
		}
		*gt = '\0';
		a = lt + 1;
	}
	a = trim(a);
	if (*a == '\0')
		return lt != NULL ? (snprintf(err, errlen, "empty address "
		    "<>: not a recipient"), EX_DATAERR) : 0;
	if (!has_at(a))
		xasprintf(&full, "%s@%s", a, origin);
	else
		full = xstrdup(a);
	if ((rv = sm_addr_check(full, 0, err, errlen)) == 0)
		sm_rcpts_add(r, full);
	free(full);
	return rv;
}

int
sm_addr_list(const char *v, const char *origin, struct sm_rcpts *r,
    char *err, size_t errlen)
{
	struct sbuf seg = { 0 };
	int q = 0, angle = 0, rv = 0;
	unsigned cdepth = 0;
	char *s;

	for (const char *p = v; ; p++) {
		char c = *p;
		if (c != '\0' && cdepth > 0) {		/* in a comment */
			if (c == '\\' && p[1] != '\0')
				p++;
			else if (c == '(')
				cdepth++;
			else if (c == ')' && --cdepth == 0)
				sb_add(&seg, " ", 1);
			continue;
		}
		if (c != '\0' && q) {
			sb_add(&seg, p, 1);
			if (c == '\\' && p[1] != '\0')
				sb_add(&seg, ++p, 1);
			else if (c == '"')
				q = 0;
			continue;
		}
		if (c == '"')
			q = 1;
		else if (c == '(') {
			cdepth = 1;
			continue;
		} else if (c == '<')
			angle = 1;
		else if (c == '>')
			angle = 0;
		else if (c == ':' && !angle) {
			seg.len = 0;		/* a group's display name */
			continue;
		}
		if (c == '\0' || ((c == ',' || c == ';') && !angle)) {
			sb_add(&seg, "", 1);
			s = seg.p;
			seg.len = 0;
			if ((rv = member(s, origin, r, err, errlen)) != 0 ||
			    c == '\0')
				break;
			continue;
		}
		sb_add(&seg, p, 1);
	}
	free(seg.p);
	if (rv == 0 && (q || cdepth > 0)) {
		snprintf(err, errlen, "malformed address list: %s", v);
		rv = EX_DATAERR;
	}
	return rv;
}
