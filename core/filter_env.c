/*
 * filter_env.c - envelope changes made by filters at the message stage:
 * the new sender or recipient is checked like an address from the wire
 * (RFC 5321 syntax, UTF-8 only when the transaction is SMTPUTF8).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "filter_support.h"
#include "smtp_addr.h"
#include "util.h"

/* parse_addr - "<addr>" or "addr" into its canonical text; -1 if bad */
static int
parse_addr(const struct envelope *e, const char *addr, int null_ok,
    char *out, size_t len)
{
	char path[ADDR_PATH_MAX + 3];
	struct mailaddr a;
	const char *reply;
	size_t n;

	if (addr == NULL || strlen(addr) > ADDR_PATH_MAX)
		return -1;
	snprintf(path, sizeof(path), addr[0] == '<' ? "%s" : "<%s>", addr);
	n = smtp_addr_parse_path(path, (null_ok ? ADDR_ALLOW_NULL : 0) |
	    (e->smtputf8 ? ADDR_UTF8 : 0), &a, &reply);
	if (n == 0 || path[n] != '\0')
		return -1;
	smtp_addr_format(&a, out, len);
	return 0;
}

int
filter_env_sender(struct envelope *e, const char *addr)
{
	char a[ADDR_PATH_MAX + 1];

	if (e == NULL || parse_addr(e, addr, 1, a, sizeof(a)) == -1)
		return -1;
	free(e->sender);
	e->sender = xstrdup(a);
	return 0;
}

int
filter_env_rcpt_add(struct envelope *e, const char *addr)
{
	return filter_env_rcpt_add_params(e, addr, NULL, 0);
}

int
filter_env_rcpt_add_params(struct envelope *e, const char *addr,
    const char *orcpt, unsigned notify)
{
	char a[ADDR_PATH_MAX + 1];

	if (e == NULL || parse_addr(e, addr, 0, a, sizeof(a)) == -1)
		return -1;
	for (size_t i = 0; i < e->nrcpts; i++)
		if (strcmp(e->rcpts[i].addr, a) == 0)
			return 0;
	envelope_add_rcpt(e, a, orcpt, notify);
	return 0;
}

int
filter_env_rcpt_delete(struct envelope *e, const char *addr)
{
	char a[ADDR_PATH_MAX + 1];

	if (e == NULL || parse_addr(e, addr, 0, a, sizeof(a)) == -1)
		return -1;
	for (size_t i = 0; i < e->nrcpts; i++) {
		if (strcmp(e->rcpts[i].addr, a) != 0)
			continue;
		free(e->rcpts[i].addr);
		free(e->rcpts[i].orcpt);
		memmove(&e->rcpts[i], &e->rcpts[i + 1],
		    (e->nrcpts - i - 1) * sizeof(*e->rcpts));
		e->nrcpts--;
		return 0;
	}
	return -1;
}
