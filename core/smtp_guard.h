/*
 * smtp_guard.h - protocol hardening for untrusted SMTP clients: the
 * RFC 2920 pipelining rules (smtp_sync.c) and the deadlines on message
 * content (smtp_deadline.c).
 *
 * Each session embeds one struct smtp_guard; its timers are made when
 * first needed (most sessions never need them) and freed by
 * smtp_guard_clear() when the session is freed.
 * Threads: the session's worker loop only.
 */
#ifndef SLUICE_SMTP_GUARD_H
#define SLUICE_SMTP_GUARD_H

#include <stdint.h>

struct event;
struct smtp_session;

struct smtp_guard {
	struct event *greet_timer;	/* greeting_delay running */
	struct event *data_timer;	/* content deadline and rate checks */
	uint64_t data_start;		/* mono_msec() when content began */
	int greet_waited;		/* the greeting delay is over */
};

void	smtp_guard_clear(struct smtp_guard *);

/* smtp_sync.c */
/* smtp_sync_greeting - 1 when the greeting must not go out now: it is
   delayed (smtp_greet() is called again later) or the client talked
   first (refused and closing) */
int	smtp_sync_greeting(struct smtp_session *);
/* smtp_sync_command - 1 when a command that must end a pipelined group
   has input after it (refused and closing); verb is an enum smtp_verb,
   name its upper-case name */
int	smtp_sync_command(struct smtp_session *, int verb, const char *name);

/* smtp_deadline.c */
/* smtp_deadline_start - message content begins (354, first BDAT) */
void	smtp_deadline_start(struct smtp_session *);

#endif
