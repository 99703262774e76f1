/*
 * deliver.c - a delivery attempt: route each pending recipient, deliver,
 * record, log (deliver.h).
 *
 * Per recipient the outcome is delivered, deferred or failed. Status is
 * written before the message file is removed, so a crash in between can
 * only repeat a delivery, never skip one. A message whose recipients are
 * all final but some failed moves to failed/: bounces (RFC 3464 DSNs) come
 * with outbound delivery, and until then nothing is thrown away.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "deliver.h"
#include "log.h"
#include "mailbox.h"
#include "queue.h"
#include "queue_status.h"
#include "server.h"
#include "smtp_addr.h"
#include "transport.h"
#include "util.h"

unsigned
retry_delay(unsigned first, unsigned max_interval, unsigned n)
{
	uint64_t d = first ? first : 1;

	for (unsigned i = 1; i < n && d < max_interval; i++)
		d *= 2;
	return d > max_interval ? max_interval : (unsigned)d;
}

/* route_local - the Maildir of a recipient, or the reason there is none */
static void
route_and_deliver(struct delivery *d)
{
	const char *addr = d->msg->env.rcpts[d->rcpt].addr;
	char path[ADDR_PATH_MAX + 3], key[ADDR_PATH_MAX + 1], box[4096];
	struct mailaddr a;
	const char *reply;

	snprintf(path, sizeof(path), "<%s>", addr);
	if (smtp_addr_parse_path(path, ADDR_UTF8, &a, &reply) == 0) {
		d->res->result = DELIVER_PERM;
		snprintf(d->res->text, sizeof(d->res->text),
		    "5.1.3 bad recipient address syntax");
		return;
	}
	if (!mailbox_domain_is_local(server.mailboxes, a.domain)) {
		d->res->result = DELIVER_TEMP;
		snprintf(d->res->text, sizeof(d->res->text),
		    "4.4.0 no route: %s is not a local domain", a.domain);
		return;
	}
	smtp_addr_lookup_key(&a, key, sizeof(key));
	if (!mailbox_exists(server.mailboxes, key)) {
		d->res->result = DELIVER_PERM;
		snprintf(d->res->text, sizeof(d->res->text),
		    "5.1.1 mailbox unknown");
		return;
	}
	*strrchr(key, '@') = '\0';
	if (maildir_path(server.conf->maildir, key, a.domain, box,
	    sizeof(box)) == -1) {
		d->res->result = DELIVER_PERM;
		snprintf(d->res->text, sizeof(d->res->text),
		    "5.3.5 unsafe mailbox name");
		return;
	}
	d->mailbox = box;
	maildir_deliver(d);
}

static const char *
status_word(enum deliver_result r)
{
	return r == DELIVER_OK ? "sent" : r == DELIVER_TEMP ? "deferred" :
	    "bounced";
}

static void
log_result(const struct qmsg *m, size_t i, const struct rcpt_result *r,
    uint64_t started_us)
{
	char to[ADDR_PATH_MAX + 3], dsn[16];
	uint64_t now = now_usec();
	const char *text = r->text;
	size_t n = strcspn(text, " ");

	snprintf(to, sizeof(to), "<%s>", m->env.rcpts[i].addr);
	snprintf(dsn, sizeof(dsn), "%.*s", (int)(n < 15 ? n : 15), text);
	log_info("qid=%s event=delivery to=%s relay=maildir delay=%.2f "
	    "attempt_ms=%llu dsn=%s status=%s text=%s", m->env.id, log_q(to),
	    (double)(now - m->env.arrival) / 1e6,
	    (unsigned long long)((now - started_us) / 1000), dsn,
	    status_word(r->result), log_q(text[n] ? text + n + 1 : text));
}

/* expire - past the lifetime: every pending recipient fails */
static int
expired(const struct qmsg *m)
{
	uint64_t age = now_usec() - m->env.arrival;

	return age / 1000000 >= server.conf->retry.lifetime;
}

static enum attempt_outcome
finish(struct qmsg *m, struct qstatus *st, uint64_t *next)
{
	const char *id = m->env.id;

	if (qstatus_count(st, RCPT_PENDING) > 0) {
		unsigned delay = retry_delay(server.conf->retry.first,
		    server.conf->retry.max_interval, st->attempts);
		st->next_attempt = (uint64_t)time(NULL) + delay;
		*next = st->next_attempt;
		if (qstatus_save(id, st) == -1)
			log_warn("qid=%s event=status-write-failed", id);
		log_info("qid=%s event=deferred attempts=%u next_in=%us", id,
		    st->attempts, delay);
		return ATTEMPT_DEFERRED;
	}
	if (qstatus_count(st, RCPT_FAILED) > 0) {
		if (qstatus_save(id, st) == -1 || queue_move(id, "failed") == -1) {
			log_warn("qid=%s event=move-failed", id);
			*next = (uint64_t)time(NULL) + server.conf->retry.first;
			return ATTEMPT_DEFERRED;
		}
		log_info("qid=%s event=failed kept=failed/%s note=\"bounce not "
		    "sent: DSN generation is not implemented yet\"", id, id);
		return ATTEMPT_DONE;
	}
	if (queue_remove(id) == -1)
		log_warn("qid=%s event=remove-failed", id);
	else
		log_info("qid=%s event=removed", id);
	return ATTEMPT_DONE;
}

enum attempt_outcome
deliver_attempt(const char *id, uint64_t *next)
{
	struct qmsg m;
	struct qstatus st;
	char err[512];
	uint64_t started = now_usec();
	enum attempt_outcome out;

	if (qmsg_open(id, &m, err, sizeof(err)) == -1) {
		log_warnx("qid=%s event=unreadable error=%s", id, log_q(err));
		if (queue_move(id, "corrupt") == 0)
			log_warnx("qid=%s event=quarantined dir=corrupt", id);
		return ATTEMPT_GONE;
	}
	if (qstatus_load(id, m.env.nrcpts, &st) == -1) {
		log_warn("qid=%s event=status-unreadable", id);
		qstatus_clear(&st);
		qstatus_init(&st, m.env.nrcpts);
	}
	st.attempts++;
	int too_old = expired(&m);
	for (size_t i = 0; i < m.env.nrcpts; i++) {
		struct rcpt_result r = { DELIVER_TEMP, "" };
		struct delivery d = { &m, server.conf->hostname, i, NULL, &r };

		if (st.rcpts[i].state != RCPT_PENDING)
			continue;
		if (too_old) {
			r.result = DELIVER_PERM;
			snprintf(r.text, sizeof(r.text), "4.4.7 message expired "
			    "in queue: %s", st.rcpts[i].reason ?
			    st.rcpts[i].reason : "no attempt succeeded");
		} else
			route_and_deliver(&d);
		log_result(&m, i, &r, started);
		qstatus_set(&st, i, r.result == DELIVER_OK ? RCPT_DELIVERED :
		    r.result == DELIVER_PERM ? RCPT_FAILED : RCPT_PENDING,
		    r.text);
	}
	out = finish(&m, &st, next);
	qstatus_clear(&st);
	qmsg_close(&m);
	return out;
}
