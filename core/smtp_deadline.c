/*
 * smtp_deadline.c - slow clients: deadlines on message content, and
 * freeing a session's guard timers.
 *
 * The idle timeout restarts with every byte, and command_timeout covers
 * one command line only, so a client trickling a message a few bytes at a
 * time could hold a session (and a queue file) for ever. From the 354 (or
 * the first BDAT) until the whole content is in, a timer checks once a
 * second: past limits.data_timeout, or past limits.data_rate_grace with
 * fewer than limits.min_data_rate bytes per second on average, the client
 * gets 421 4.4.2 and the session closes; the partial message is dropped
 * (nothing is queued). While the session itself waits (SS_WAITING) the
 * client is not to blame: the check is skipped.
 * Threads: the session's worker loop.
 */
#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "loop.h"
#include "server.h"
#include "smtp_guard.h"
#include "smtp_session.h"
#include "util.h"

#define TICK_MS	1000

void
smtp_guard_clear(struct smtp_guard *g)
{
	if (g->greet_timer != NULL)
		event_free(g->greet_timer);
	if (g->data_timer != NULL)
		event_free(g->data_timer);
	g->greet_timer = g->data_timer = NULL;
}

/* receiving - the client is sending content (of any transaction) */
static int
receiving(const struct smtp_session *s)
{
	return s->tx != NULL && s->tx->msg != NULL && !s->tx->content_done &&
	    (s->state == SMTP_DATA || s->state == SMTP_BDAT);
}

static void
tick_in(struct smtp_session *s, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000 };

	evtimer_add(s->guard.data_timer, &tv);
}

static void
too_slow(struct smtp_session *s, const char *why, uint64_t elapsed)
{
	log_info("qid=%s session=%016llx event=abort client=%s reason=%s "
	    "size=%llu seconds=%llu", s->tx->env.id, (unsigned long long)s->id,
	    s->addr, log_q(why), (unsigned long long)s->tx->dec.size,
	    (unsigned long long)(elapsed / 1000));
	session_reply(s, "421 4.4.2 %s Error: %s, closing",
	    server.conf->hostname, why);
	session_close(s, why);
}

static void
on_data_tick(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	const struct conf_limits *l = &server.conf->limits;
	uint64_t elapsed, left = TICK_MS;

	(void)fd;
	(void)what;
	if ((s->flags & (SS_CLOSE | SS_DEAD)) || !receiving(s))
		return;			/* done: the timer stops */
	elapsed = mono_msec() - s->guard.data_start;
	if (!(s->flags & SS_WAITING)) {
		if (l->data_timeout > 0 && elapsed >= l->data_timeout * 1000ull) {
			too_slow(s, "message content timeout exceeded", elapsed);
			return;
		}
		if (l->min_data_rate > 0 &&
		    elapsed >= l->data_rate_grace * 1000ull &&
		    s->tx->dec.size * 1000 / elapsed < l->min_data_rate) {
			too_slow(s, "message data rate too low", elapsed);
			return;
		}
	}
	if (l->data_timeout > 0 && l->data_timeout * 1000ull - elapsed < left &&
	    elapsed < l->data_timeout * 1000ull)
		left = l->data_timeout * 1000ull - elapsed;
	tick_in(s, left);
}

void
smtp_deadline_start(struct smtp_session *s)
{
	const struct conf_limits *l = &server.conf->limits;

	if (l->data_timeout == 0 && l->min_data_rate == 0)
		return;
	if (s->guard.data_timer == NULL)
		s->guard.data_timer = evtimer_new(loop_base(s->worker->loop),
		    on_data_tick, s);
	s->guard.data_start = mono_msec();
	tick_in(s, TICK_MS);
}
