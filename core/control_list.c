/*
 * control_list.c - the data lines of "list" and "show" (control.h), read
 * from the spool: every message in queue/ and hold/, its envelope and its
 * status record. Blocking: runs on the delivery iopool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "control.h"
#include "envelope.h"
#include "queue.h"
#include "queue_status.h"
#include "util.h"

#define HEADERS_SHOWN	(64 * 1024)

static void	rcpt_lines(struct evbuffer *, const struct envelope *,
		    const struct qstatus *);

/* kv - " key=value" with the value %-encoded */
static void
kv(struct evbuffer *out, const char *key, const char *value)
{
	char *v = value_encode(value);

	evbuffer_add_printf(out, " %s=%s", key, v);
	free(v);
}

static const char *
last_error(const struct qstatus *st)
{
	for (size_t i = 0; i < st->nrcpts; i++)
		if (st->rcpts[i].state == RCPT_PENDING && st->rcpts[i].reason)
			return st->rcpts[i].reason;
	return NULL;
}

static void
msg_line(struct evbuffer *out, const struct qmsg *m,
    const struct qstatus *st, const char *queue, const char *state)
{
	char num[32];

	evbuffer_add_printf(out, "msg id=%s queue=%s state=%s", m->env.id,
	    queue, state);
	evbuffer_add_printf(out, " arrival=%llu size=%llu",
	    (unsigned long long)(m->env.arrival / 1000000),
	    (unsigned long long)m->msg_len);
	kv(out, "sender", m->env.sender[0] ? m->env.sender : "<>");
	evbuffer_add_printf(out, " recipients=%zu pending=%zu attempts=%u",
	    m->env.nrcpts, qstatus_count(st, RCPT_PENDING), st->attempts);
	snprintf(num, sizeof(num), "%llu",
	    (unsigned long long)st->next_attempt);
	evbuffer_add_printf(out, " next=%s", num);
	kv(out, "error", last_error(st));
	evbuffer_add(out, "\n", 1);
}

/* load - a message and its status from queue/ or hold/ */
static int
load(const char *queue, const char *id, struct qmsg *m, struct qstatus *st)
{
	char dir[4096], err[256];

	if (qmsg_open_in(queue, id, m, err, sizeof(err)) == -1)
		return -1;
	snprintf(dir, sizeof(dir), "%s/%s", queue_spool(), queue);
	if (qstatus_load_in(dir, id, m->env.nrcpts, st) == -1) {
		qstatus_clear(st);
		qstatus_init(st, m->env.nrcpts);
	}
	return 0;
}

static int
is_active(const char *id, char **active, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(active[i], id) == 0)
			return 1;
	return 0;
}

static void
list_dir(struct evbuffer *out, const char *queue, char **active,
    size_t nactive)
{
	size_t n;
	char **ids = queue_ids(queue, &n);

	for (size_t i = 0; i < n; i++) {
		struct qmsg m;
		struct qstatus st;
		if (load(queue, ids[i], &m, &st) == 0) {
			msg_line(out, &m, &st, queue,
			    strcmp(queue, "hold") == 0 ? "held" :
			    is_active(ids[i], active, nactive) ? "active" :
			    st.attempts ? "deferred" : "queued");
			rcpt_lines(out, &m.env, &st);
			qstatus_clear(&st);
			qmsg_close(&m);
		}
		free(ids[i]);
	}
	free(ids);
}

void
control_list(struct evbuffer *out, char **active, size_t nactive)
{
	list_dir(out, "queue", active, nactive);
	list_dir(out, "hold", active, nactive);
}

static void
env_lines(struct evbuffer *out, const struct envelope *e)
{
	char port[16];

	snprintf(port, sizeof(port), "%u", e->client_port);
	evbuffer_add_printf(out, "env");
	kv(out, "helo", e->helo);
	kv(out, "client", e->client_addr);
	kv(out, "port", port);
	kv(out, "listener", e->listener);
	kv(out, "protocol", e->protocol);
	kv(out, "envid", e->envid);
	kv(out, "ret", e->ret == RET_FULL ? "FULL" : e->ret == RET_HDRS ?
	    "HDRS" : NULL);
	evbuffer_add(out, "\n", 1);
	for (size_t i = 0; i < e->tags.n; i++) {
		evbuffer_add_printf(out, "tag");
		kv(out, "key", e->tags.v[i].key);
		kv(out, "value", e->tags.v[i].value);
		evbuffer_add(out, "\n", 1);
	}
}

static void
rcpt_lines(struct evbuffer *out, const struct envelope *e,
    const struct qstatus *st)
{
	static const char *const names[] = { "pending", "delivered",
	    "failed" };

	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct rcpt_status *r = &st->rcpts[i];
		evbuffer_add_printf(out, "rcpt");
		kv(out, "addr", e->rcpts[i].addr);
		evbuffer_add_printf(out, " state=%s", names[r->state]);
		kv(out, "reason", r->reason);
		kv(out, "remote", r->remote);
		kv(out, "reply", r->diag);
		evbuffer_add(out, "\n", 1);
	}
}

static void
header_lines(struct evbuffer *out, const struct qmsg *m)
{
	size_t want = m->msg_len < HEADERS_SHOWN ? (size_t)m->msg_len :
	    HEADERS_SHOWN;
	char *buf = xmalloc(want + 1), *p, *nl;
	ssize_t k = pread(m->fd, buf, want, 0);

	if (k <= 0) {
		free(buf);
		return;
	}
	buf[k] = '\0';
	for (p = buf; *p && (nl = strstr(p, "\r\n")) != NULL; p = nl + 2) {
		if (nl == p)
			break;			/* end of the header section */
		*nl = '\0';
		evbuffer_add_printf(out, "header");
		kv(out, "line", p);
		evbuffer_add(out, "\n", 1);
	}
	free(buf);
}

int
control_show(struct evbuffer *out, const char *id, const char *state)
{
	const char *queue = "queue";
	struct qmsg m;
	struct qstatus st;

	if (load(queue, id, &m, &st) == -1) {
		queue = "hold";
		state = "held";
		if (load(queue, id, &m, &st) == -1)
			return -1;
	}
	msg_line(out, &m, &st, queue, state ? state : st.attempts ?
	    "deferred" : "queued");
	env_lines(out, &m.env);
	rcpt_lines(out, &m.env, &st);
	header_lines(out, &m);
	qstatus_clear(&st);
	qmsg_close(&m);
	return 0;
}
