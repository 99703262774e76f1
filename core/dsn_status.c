/*
 * dsn_status.c - part 2 of a DSN: the message/delivery-status fields of
 * RFC 3464 (per message, then per recipient), with RFC 6533's
 * utf-8-addr-xtext forms when the report is a global one (SMTPUTF8).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn_int.h"
#include "util.h"

static int
is_qchar(unsigned c)
{
	return c > ' ' && c < 0x7f && c != '+' && c != '=' && c != '\\';
}

static unsigned
utf8_code_point(const unsigned char *p, size_t k)
{
	static const unsigned char lead_mask[] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
	unsigned cp = p[0] & lead_mask[k];

	for (size_t i = 1; i < k; i++)
		cp = (cp << 6) | (p[i] & 0x3f);
	return cp;
}

/* utf8_addr_xtext - RFC 6533 utf-8-addr-xtext of a clean address:
   ASCII as is, but specials and non-ASCII as \x{HEX} */
static char *
utf8_addr_xtext(const char *a)
{
	const unsigned char *p = (const unsigned char *)a;
	struct sbuf b = { 0 };

	while (*p != '\0') {
		size_t k = utf8_seq(p, strnlen((const char *)p, 4));
		unsigned cp = k > 0 ? utf8_code_point(p, k) : '?';

		if (cp < 0x80 && is_qchar(cp))
			sb_add(&b, (const char *)p, 1);
		else
			sb_printf(&b, "\\x{%X}", cp);
		p += k > 0 ? k : 1;
	}
	return sb_finish(&b, NULL);
}

/*
 * final_recipient - "rfc822; addr" for ASCII addresses; RFC 6533
 * "utf-8; addr" otherwise, as UTF-8 in a global report, else in its
 * utf-8-addr-xtext form so the report stays ASCII.
 */
static char *
final_recipient(const char *addr, int smtputf8)
{
	char *a = clean_text(addr, ADDR_MAX, 1), *x, *s;

	if (str_is_ascii(a))
		xasprintf(&s, "rfc822; %s", a);
	else if (smtputf8)
		xasprintf(&s, "utf-8; %s", a);
	else {
		x = utf8_addr_xtext(a);
		xasprintf(&s, "utf-8; %s", x);
		free(x);
	}
	free(a);
	return s;
}

/* original_recipient - the stored ORCPT ("addr-type;xtext") when it has
   that form, else NULL */
static char *
original_recipient(const char *orcpt, int smtputf8)
{
	char *o;
	size_t type;

	if (orcpt == NULL)
		return NULL;
	o = clean_text(orcpt, ORCPT_LEN, smtputf8);
	type = strspn(o, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
	if (type == 0 || o[type] != ';' || o[type + 1] == '\0') {
		free(o);
		return NULL;
	}
	return o;
}

static void
status_message_fields(struct sbuf *b, const struct dsn_params *pa)
{
	int u = pa->smtputf8;
	char *envid = clean_text(pa->envid, VALUE_MAX, u);
	char *mta = clean_text(pa->reporting_mta, VALUE_MAX, u);
	char *from = clean_text(pa->received_from, VALUE_MAX, u);

	put_field_pfx(b, "Original-Envelope-Id", "", envid);
	put_field_pfx(b, "Reporting-MTA", "dns; ", mta[0] ? mta : "localhost");
	put_field_pfx(b, "Received-From-MTA", "dns; ", from);
	put_date_field(b, "Arrival-Date", pa->arrival);
	free(from);
	free(mta);
	free(envid);
}

static void
status_rcpt_fields(struct sbuf *b, const struct dsn_rcpt *r, int u)
{
	char *orcpt = original_recipient(r->orcpt, u);
	char *final = final_recipient(r->addr, u);
	char *host = clean_text(r->remote_mta, VALUE_MAX, u);
	char *diag = clean_text(r->diagnostic, DIAG_MAX, u);

	sb_str(b, "\r\n");
	if (orcpt != NULL)
		put_field(b, "Original-Recipient", orcpt);
	put_field(b, "Final-Recipient", final);
	put_field(b, "Action", action_name(action_of(r)));
	put_field(b, "Status", status_of(r));
	put_field_pfx(b, "Remote-MTA", "dns; ", host);
	put_field_pfx(b, "Diagnostic-Code",
	    r->diagnostic_is_smtp ? "smtp; " : "X-Sluice; ", diag);
	put_date_field(b, "Last-Attempt-Date", r->last_attempt);
	if (action_of(r) == DSN_DELAYED)
		put_date_field(b, "Will-Retry-Until", r->retry_until);
	free(diag);
	free(host);
	free(final);
	free(orcpt);
}

void
build_status(struct sbuf *b, const struct dsn_params *pa,
    const struct dsn_rcpt *r, size_t n)
{
	status_message_fields(b, pa);
	for (size_t i = 0; i < n; i++)
		status_rcpt_fields(b, &r[i], pa->smtputf8);
}
