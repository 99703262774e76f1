/*
 * smtp_sync.c - RFC 2920 command order for clients outside
 * trusted_networks, when smtp.pipelining_checks is on (the default).
 *
 * Nothing may come before the greeting, and nothing may follow, in the
 * same burst, a command whose reply the client has to see first: EHLO,
 * HELO, DATA, VRFY, EXPN, NOOP and QUIT (RFC 2920 section 3.1; STARTTLS
 * and AUTH belong with them too). A client that breaks this is not a
 * mailer that waits for replies: what it sent next would be read in a
 * state it did not expect (the classic case is message text after a
 * refused DATA, read as commands). It gets 554 5.5.0 and the session
 * closes. MAIL, RCPT, RSET and BDAT chunks may be pipelined freely, and
 * message text follows the 354, not the DATA command.
 *
 * smtp.greeting_delay holds the greeting back for that long, so that a
 * client that talks first shows itself; with no delay, only input that
 * is already there when the greeting goes out (after reverse DNS and the
 * connect filters) is caught.
 *
 * "Input there" is what the session has buffered plus, on a plain
 * socket, what the kernel holds unread (FIONREAD).
 * Threads: the session's worker loop.
 */
#include <stdio.h>
#include <sys/ioctl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "loop.h"
#include "server.h"
#include "smtp_cmd.h"
#include "smtp_guard.h"
#include "smtp_session.h"

static int
sync_applies(const struct smtp_session *s)
{
	return server.conf->pipelining_checks && !s->trusted;
}

static int
input_pending(struct smtp_session *s)
{
	int queued = 0;

	if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0)
		return 1;
	/* with TLS the kernel's bytes are records, not commands */
	return s->direct_write && ioctl(bufferevent_getfd(s->bev), FIONREAD,
	    &queued) == 0 && queued > 0;
}

static void
sync_refuse(struct smtp_session *s, const char *why)
{
	log_info("session=%016llx event=reject client=%s reason=%s",
	    (unsigned long long)s->id, s->addr, log_q(why));
	session_reply(s, "554 5.5.0 %s Error: SMTP synchronization error: %s",
	    server.conf->hostname, why);
	session_close(s, "pipelining violation");
}

static void
on_greet_delay(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	s->guard.greet_waited = 1;
	if (!(s->flags & (SS_CLOSE | SS_DEAD)))
		smtp_greet(s);
	session_resume(s);		/* may free s */
}

int
smtp_sync_greeting(struct smtp_session *s)
{
	struct timeval tv = { server.conf->greeting_delay, 0 };

	if (!sync_applies(s))
		return 0;
	if (tv.tv_sec > 0 && !s->guard.greet_waited) {
		if (s->guard.greet_timer == NULL)
			s->guard.greet_timer = evtimer_new(
			    loop_base(s->worker->loop), on_greet_delay, s);
		session_wait(s);	/* input stays buffered meanwhile */
		evtimer_add(s->guard.greet_timer, &tv);
		return 1;
	}
	if (!input_pending(s))
		return 0;
	sync_refuse(s, "input before the greeting");
	return 1;
}

int
smtp_sync_command(struct smtp_session *s, int verb, const char *name)
{
	char why[64];

	switch (verb) {
	case CMD_HELO:
	case CMD_EHLO:
	case CMD_DATA:
	case CMD_VRFY:
	case CMD_EXPN:
	case CMD_NOOP:
	case CMD_QUIT:
		break;
	default:
		return 0;
	}
	if (!sync_applies(s) || !input_pending(s))
		return 0;
	snprintf(why, sizeof(why), "input after %s before its reply", name);
	sync_refuse(s, why);
	return 1;
}
