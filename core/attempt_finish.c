/*
 * attempt_finish.c - a delivery attempt, second half: every job has
 * reported. Decide each recipient's new state and the DSNs owed (on the
 * qmgr loop), then make it durable on the delivery iopool: DSNs first,
 * then the status record (or the removal of a finished message), then
 * report to the queue manager.
 *
 * DSNs (RFC 3461/3464): a failure notice for failed recipients unless
 * NOTIFY excludes FAILURE; a delay warning, once, when the message is
 * older than warn_after and still pending, for recipients whose NOTIFY
 * allows DELAY (no NOTIFY counts as FAILURE,DELAY); a success notice only
 * when NOTIFY asked for SUCCESS and the next hop did not take over that
 * duty. Nothing is ever sent to the null sender: a failed bounce is
 * dropped with a log line, which is what stops bounce loops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attempt_int.h"
#include "bounce.h"
#include "iopool.h"
#include "log.h"
#include "mime.h"
#include "server.h"
#include "smtp_addr.h"
#include "smtp_params.h"
#include "util.h"

enum { DSN_KIND_FAIL, DSN_KIND_DELAY, DSN_KIND_SUCCESS };

void
attempt_free(struct attempt *a)
{
	for (size_t i = 0; a->res != NULL && i < a->n; i++)
		rcpt_result_clear(&a->res[i]);
	free(a->res);
	free(a->tried);
	free(a->kind);
	free(a->retry);
	free(a->no_dsn);
	pipeline_unref(a->pipe);
	tags_clear(&a->stags);
	if (a->have_msg)
		message_clear(&a->msg);
	mime_tree_free(a->subj.mime);	/* parsed for the delivery filters */
	for (int k = 0; k < 3; k++)
		free(a->dsn[k]);
	qstatus_clear(&a->st);
	qmsg_close(&a->m);
	free(a);
}

static void
want_dsn(struct attempt *a, int kind, size_t i, enum dsn_action action,
    uint64_t until)
{
	if (a->dsn[kind] == NULL)
		a->dsn[kind] = xcalloc(a->n, sizeof(struct bounce_rcpt));
	struct bounce_rcpt *b = &a->dsn[kind][a->ndsn[kind]++];
	b->idx = i;
	b->action = action;
	b->retry_until = until;
}

/* expire - still failing after the lifetime: give up on it */
static void
expire(struct attempt *a, size_t i, uint64_t age)
{
	struct rcpt_result *r = &a->res[i];
	char text[RESULT_TEXT_LEN], to[ADDR_PATH_MAX + 3];
	size_t n = strcspn(r->text, " ");

	snprintf(to, sizeof(to), "<%s>", a->m.env.rcpts[i].addr);
	snprintf(text, sizeof(text), "4.4.7 gave up after %llus in the "
	    "queue; last error: %s", (unsigned long long)age,
	    r->text[n] ? r->text + n + 1 : r->text);
	rcpt_result_set(r, DELIVER_PERM, "%s", text);
	/* the shape of a delivery line too, for who counts bounces */
	log_info("qid=%s event=expired to=%s age=%llus dsn=4.4.7 "
	    "status=bounced text=%s", a->id, log_q(to),
	    (unsigned long long)age, log_q(text + 6));
}

/* record - recipient i's result into the status, and the DSN it owes */
static void
record(struct attempt *a, size_t i)
{
	struct rcpt_result *r = &a->res[i];
	unsigned notify = a->m.env.rcpts[i].notify;
	int has_sender = a->m.env.sender[0] != '\0';

	qstatus_set(&a->st, i, r->result == DELIVER_OK ? RCPT_DELIVERED :
	    r->result == DELIVER_PERM ? RCPT_FAILED : RCPT_PENDING, r->text);
	qstatus_set_remote(&a->st, i, r->remote, r->diag);
	if (r->result == DELIVER_OK && has_sender &&
	    (notify & NOTIFY_SUCCESS) && !r->dsn_passed && !a->no_dsn[i])
		want_dsn(a, DSN_KIND_SUCCESS, i, a->kind[i] == ROUTE_SMTP ?
		    DSN_RELAYED : DSN_DELIVERED, 0);
	if (r->result != DELIVER_PERM)
		return;
	if (!has_sender)
		log_info("qid=%s event=bounce-dropped to=%s reason=\"the "
		    "sender is null: no DSN for a DSN\"", a->id,
		    log_q(a->m.env.rcpts[i].addr));
	else if (a->no_dsn[i])
		log_info("qid=%s event=bounce-suppressed to=%s by=filter",
		    a->id, log_q(a->m.env.rcpts[i].addr));
	else if (notify == 0 || (notify & NOTIFY_FAILURE))
		want_dsn(a, DSN_KIND_FAIL, i, DSN_FAILED, 0);
}

/* plan_retry - next attempt and the delay warning, if still pending */
static void
plan_retry(struct attempt *a, uint64_t now, uint64_t age)
{
	uint64_t arrival = a->m.env.arrival / 1000000, next = UINT64_MAX;
	uint64_t expiry = UINT64_MAX;
	int warn = 0;

	for (size_t i = 0; i < a->n; i++) {
		const struct conf_retry *r = a->retry[i];
		if (a->st.rcpts[i].state != RCPT_PENDING)
			continue;
		uint64_t t = now + retry_delay(r->first, r->max_interval,
		    a->st.attempts);
		if (t < next)
			next = t;
		if (arrival + r->lifetime < expiry)
			expiry = arrival + r->lifetime;
		warn |= !a->st.warned && age >= r->warn_after;
	}
	if (a->retry_in > 0)		/* a deferred-stage filter said */
		next = now + a->retry_in;
	if (next > expiry && now < expiry)
		next = expiry;		/* the last try comes on time */
	a->st.next_attempt = next;
	a->rep.next = next;
	if (!warn)
		return;
	a->st.warned = 1;
	if (a->m.env.sender[0] == '\0')
		return;
	for (size_t i = 0; i < a->n; i++) {
		unsigned notify = a->m.env.rcpts[i].notify;
		if (a->st.rcpts[i].state == RCPT_PENDING &&
		    (notify == 0 || (notify & NOTIFY_DELAY)))
			want_dsn(a, DSN_KIND_DELAY, i, DSN_DELAYED,
			    arrival + a->retry[i]->lifetime);
	}
}

/* dsn_failed - a failure notice could not be queued: those recipients
   stay pending, so the next attempt tries again */
static void
dsn_failed(struct attempt *a, int kind)
{
	log_warn("qid=%s event=dsn-not-queued kind=%s", a->id,
	    kind == DSN_KIND_FAIL ? "failure" : kind == DSN_KIND_DELAY ?
	    "delay" : "success");
	if (kind == DSN_KIND_DELAY)
		a->st.warned = 0;
	if (kind != DSN_KIND_FAIL)
		return;
	for (size_t k = 0; k < a->ndsn[kind]; k++) {
		size_t i = a->dsn[kind][k].idx;
		qstatus_set(&a->st, i, RCPT_PENDING, a->st.rcpts[i].reason);
	}
	if (a->st.next_attempt == 0 || a->st.next_attempt == UINT64_MAX)
		a->st.next_attempt = (uint64_t)time(NULL) +
		    server.conf->retry.first;
	a->rep.next = a->st.next_attempt;
}

static void
finish_work(void *arg)
{
	struct attempt *a = arg;
	static const char *const names[] = { "failure", "delay", "success" };

	if (a->quarantine) {
		a->rep.outcome = ATTEMPT_DONE;
		if (queue_move(a->id, "quarantine") == 0)
			log_info("qid=%s event=quarantined dir=quarantine",
			    a->id);
		else {
			log_warn("qid=%s event=quarantine-failed", a->id);
			a->rep.outcome = ATTEMPT_DEFERRED;
			a->rep.next = (uint64_t)time(NULL) +
			    server.conf->retry.first;
		}
		return;
	}
	for (int k = 0; k < 3; k++) {
		char id[QID_LEN + 1];
		if (a->ndsn[k] == 0)
			continue;
		if (bounce_queue(&a->m, &a->st, a->dsn[k], a->ndsn[k],
		    id) == -1) {
			dsn_failed(a, k);
			continue;
		}
		log_info("qid=%s event=dsn kind=%s dsn_qid=%s recipients=%zu",
		    a->id, names[k], id, a->ndsn[k]);
		strlcpy_s(a->rep.new_ids[a->rep.nnew++], id, QID_LEN + 1);
	}
	if (qstatus_count(&a->st, RCPT_PENDING) > 0) {
		a->rep.outcome = ATTEMPT_DEFERRED;
		if (qstatus_save(a->id, &a->st) == -1)
			log_warn("qid=%s event=status-write-failed", a->id);
		log_info("qid=%s event=deferred attempts=%u next_in=%llds",
		    a->id, a->st.attempts, (long long)a->rep.next -
		    (long long)time(NULL));
		return;
	}
	a->rep.outcome = ATTEMPT_DONE;
	if ((a->first ? queue_remove_message(a->id) : queue_remove(a->id)) ==
	    -1) {
		log_warn("qid=%s event=remove-failed", a->id);
		a->rep.outcome = ATTEMPT_DEFERRED;
		a->rep.next = (uint64_t)time(NULL) + server.conf->retry.first;
	} else
		log_info("qid=%s event=removed", a->id);
}

static void
finish_done(void *arg)
{
	struct attempt *a = arg;

	a->done(a->arg, &a->rep);
	attempt_free(a);
}

/* delivered_any - some recipient was delivered in this attempt */
static int
delivered_any(const struct attempt *a)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->tried[i] && a->res[i].result == DELIVER_OK)
			return 1;
	return 0;
}

/*
 * attempt_decide - record the results, plan what follows, finish. While
 * the server stops: an attempt that delivered nothing is dropped (tried
 * again at once at the next start, as if it had not begun); one that
 * delivered to someone is recorded here and now, on the queue manager's
 * thread (the delivery pool is going away), so that no recipient gets a
 * second copy after the restart; its other recipients are due at once.
 */
void
attempt_decide(struct attempt *a)
{
	uint64_t now = (uint64_t)time(NULL);
	uint64_t arrival = a->m.env.arrival / 1000000;
	uint64_t age = now > arrival ? now - arrival : 0;
	int pending;

	if (attempt_is_stopping && !delivered_any(a)) {
		a->rep.outcome = ATTEMPT_DEFERRED;
		a->rep.next = now;
		finish_done(a);
		return;
	}
	for (size_t i = 0; i < a->n; i++)
		if (a->tried[i])
			record(a, i);
	a->st.last_attempt = now;
	pending = qstatus_count(&a->st, RCPT_PENDING) > 0;
	if (pending)
		plan_retry(a, now, age);
	if (attempt_is_stopping) {
		if (pending)
			a->st.next_attempt = a->rep.next = now;
		finish_work(a);
		finish_done(a);
		return;
	}
	if (!pending && !a->quarantine && a->ndsn[DSN_KIND_FAIL] == 0 &&
	    a->ndsn[DSN_KIND_DELAY] == 0 && a->ndsn[DSN_KIND_SUCCESS] == 0) {
		/* the usual end: all delivered, no notice to queue, nothing
		   to sync; the removal is one rename, not worth two trips
		   through the pool */
		finish_work(a);
		finish_done(a);
		return;
	}
	iopool_submit(server.delivery_pool, finish_work, server.qmgr,
	    finish_done, a);
}

/* attempt_results - every result is in: expiry, the filters, decide */
void
attempt_results(struct attempt *a)
{
	uint64_t now = (uint64_t)time(NULL);
	uint64_t arrival = a->m.env.arrival / 1000000;
	uint64_t age = now > arrival ? now - arrival : 0;

	for (size_t i = 0; i < a->n; i++)
		if (a->tried[i] && a->res[i].result == DELIVER_TEMP &&
		    age >= a->retry[i]->lifetime)
			expire(a, i, age);
	if (attempt_is_stopping)
		attempt_decide(a);
	else
		attempt_filter_results(a, attempt_decide);
}
