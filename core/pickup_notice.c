/*
 * pickup_notice.c - tell the sender of a local submission what sluiced
 * refused (pickup_int.h)
 *
 * sluice-sendmail has exited 0 by the time the pickup meets a 5xx (an
 * unknown local mailbox, a filter's reject), so the refusal would only be
 * in the log. Like a bounce, a short plain-text notice from <> goes to the
 * envelope sender through the same session: the refused recipients (or
 * the reply that refused the whole message) and the header of the
 * message. Never to the null sender; a notice that is itself refused is
 * only logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "log.h"
#include "maildrop.h"
#include "pickup_int.h"
#include "sbuf.h"
#include "server.h"
#include "util.h"

#define NOTICE_HEADER_MAX	(64 * 1024)

/* original_header - the message's header, at most NOTICE_HEADER_MAX */
static size_t
original_header(const struct maildrop_msg *m)
{
	const char *end = memmem(m->data, m->len, "\r\n\r\n", 4);
	size_t n = end != NULL ? (size_t)(end - m->data) + 2 : m->len;

	return n > NOTICE_HEADER_MAX ? NOTICE_HEADER_MAX : n;
}

static char *
notice_text(const struct maildrop_msg *m, const char *what, size_t *len)
{
	const char *host = server.conf->hostname;
	struct sbuf b = { 0 };
	char date[64];

	rfc5322_date(date, sizeof(date), time(NULL));
	sb_printf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\nSubject: Undelivered Mail Returned to Sender\r\n"
	    "Date: %s\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n", host, m->sender, date);
	sb_printf(&b, "This is the mail system at %s.\r\n\r\nA message you "
	    "submitted with sendmail was refused:\r\n\r\n", host);
	for (const char *p = what; *p != '\0'; p++) {
		if (*p == '\n')
			sb_add(&b, "\r", 1);
		sb_add(&b, p, 1);
	}
	sb_str(&b, "\r\n--- The header of your message ---\r\n\r\n");
	sb_add(&b, m->data, original_header(m));
	return sb_finish(&b, len);
}

void
pk_notice(struct pk_conn *c, const struct maildrop_msg *m, const char *name,
    const char *what)
{
	size_t len;
	char *text;
	int code;

	if (m->sender[0] == '\0')
		return;				/* never a notice to <> */
	text = notice_text(m, what, &len);
	if ((code = pk_cmd(c, "MAIL FROM:<>%s%s",
	    mem_has_8bit(text, len) ? " BODY=8BITMIME" : "",
	    str_is_ascii(m->sender) ? "" : " SMTPUTF8")) == 250 &&
	    (code = pk_cmd(c, "RCPT TO:<%s>", m->sender)) / 100 == 2 &&
	    (code = pk_cmd(c, "DATA")) == 354 &&
	    (code = pk_data(c, text, len)) / 100 == 2)
		log_info("qid=%s event=pickup-notice file=%s to=<%s>",
		    pk_queued_as(c->reply), name, m->sender);
	else {
		log_warnx("event=pickup-notice file=%s to=<%s> status=failed "
		    "reply=%s", name, m->sender, log_q(c->reply));
		if (code != -1)
			(void)pk_cmd(c, "RSET");
	}
	free(text);
}
