/*
 * transport.c - per-recipient delivery results (transport.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "transport.h"
#include "util.h"

void
rcpt_result_set(struct rcpt_result *r, enum deliver_result kind,
    const char *fmt, ...)
{
	va_list ap;

	r->result = kind;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

void
rcpt_result_remote(struct rcpt_result *r, const char *remote,
    const char *diag)
{
	/* copies first: remote or diag may be r's own strings */
	char *rm = remote && *remote ? xstrdup(remote) : NULL;
	char *dg = diag && *diag ? xstrdup(diag) : NULL;

	free(r->remote);
	free(r->diag);
	r->remote = rm;
	r->diag = dg;
}

void
rcpt_result_clear(struct rcpt_result *r)
{
	free(r->remote);
	free(r->diag);
	r->remote = r->diag = NULL;
}
