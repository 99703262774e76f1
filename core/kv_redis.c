/*
 * kv_redis.c - the Redis backend of the filters' key/value store
 * (kv_redis.h): one hiredis asynchronous context per event loop, driven
 * by hiredis's libevent adapter.
 *
 * States: down (r->ac NULL: requests fail at once, a retry timer is
 * armed), connecting (r->ac set, connected 0: requests queue in hiredis,
 * a connect timer bounds the wait), up. AUTH and SELECT are the first
 * commands on a new connection; an error reply to either drops it.
 * Each request holds a timer: the timeout while hiredis holds it, or a
 * zero delay to fail it from the loop when it could not be sent. A
 * timeout answers the request and drops the connection; hiredis then
 * calls every pending callback with a NULL reply, which is where a
 * request is freed. Outages are logged once per loop, recoveries too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "conf.h"
#include "kv_redis.h"
#include "kvstore.h"
#include "log.h"
#include "util.h"

#define BACKOFF_FIRST_MS	200
#define BACKOFF_MAX_MS		5000

/* incr with the TTL set only when the key is created, atomically */
static const char incr_script[] =
    "local new = redis.call('EXISTS', KEYS[1]) == 0\n"
    "local n = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
    "if new and tonumber(ARGV[2]) > 0 then\n"
    "  redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
    "end\n"
    "return n\n";

struct kv_redis {
	struct event_base *base;
	redisAsyncContext *ac;		/* NULL while down */
	int connected;
	int closing;			/* kv_redis_free(): no reconnect */
	int down_logged;		/* an outage was logged */
	struct event *retry_ev;		/* (re)connect */
	struct event *connect_ev;	/* connect timeout */
	unsigned backoff_ms;
	struct kv_req *reqs;		/* every live request */
	char *address, *unix_path, *password, *prefix;
	unsigned port, db, timeout_ms;
	enum sluice_verdict on_error;
	char name[32];
};

struct kv_req {
	struct kv_redis *r;
	struct kv_req *prev, *next;
	enum kv_op op;
	kv_redis_cb cb;			/* NULL once answered or cancelled */
	void *arg;
	struct event *timer;
	int in_hiredis;			/* freed by hiredis's callback */
	const char *why;		/* a failure to report from the loop */
	char *value;			/* set: given back in the result */
};

static void	connect_now(struct kv_redis *);

static void
tv_ms(struct timeval *tv, unsigned ms)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

/* -- the connection -------------------------------------------------------- */

static void
note_down(struct kv_redis *r, const char *why)
{
	if (r->down_logged || r->closing)
		return;
	r->down_logged = 1;
	log_warnx("event=kv-redis loop=%s state=down reason=%s", r->name,
	    log_q(why));
}

static void
schedule_retry(struct kv_redis *r)
{
	struct timeval tv;

	if (r->closing)
		return;
	tv_ms(&tv, r->backoff_ms);
	evtimer_add(r->retry_ev, &tv);
	r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
	    r->backoff_ms * 2;
}

/*
 * drop - close the connection: hiredis answers every pending request
 * with a NULL reply (inside this call, or right after the hiredis
 * callback we are in returns), then a reconnect is scheduled
 */
static void
drop(struct kv_redis *r, const char *why)
{
	redisAsyncContext *ac = r->ac;

	if (ac == NULL)
		return;
	r->ac = NULL;
	r->connected = 0;
	evtimer_del(r->connect_ev);
	note_down(r, why);
	schedule_retry(r);
	redisAsyncFree(ac);
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct kv_redis *r = ac->data;

	if (r->ac != ac)
		return;
	evtimer_del(r->connect_ev);
	if (status != REDIS_OK) {
		/* hiredis frees the context when this returns */
		r->ac = NULL;
		note_down(r, ac->errstr);
		schedule_retry(r);
		return;
	}
	r->connected = 1;
	r->backoff_ms = BACKOFF_FIRST_MS;
	if (r->down_logged)
		log_info("event=kv-redis loop=%s state=up", r->name);
	r->down_logged = 0;
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct kv_redis *r = ac->data;

	(void)status;
	if (r->ac != ac)
		return;			/* we dropped it ourselves */
	r->ac = NULL;
	r->connected = 0;
	note_down(r, ac->err ? ac->errstr : "connection closed");
	schedule_retry(r);
}

static void
on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct kv_redis *r = ac->data;
	redisReply *rep = reply;
	char why[256];

	if (rep == NULL || rep->type != REDIS_REPLY_ERROR || r->ac != ac)
		return;
	snprintf(why, sizeof(why), "%s refused: %s", (const char *)privdata,
	    rep->str);
	drop(r, why);
}

static void
on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	drop(arg, "connect timeout");
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	connect_now(arg);
}

static void
setup_commands(struct kv_redis *r)
{
	char db[16];

	if (r->password != NULL) {
		const char *argv[] = { "AUTH", r->password };
		redisAsyncCommandArgv(r->ac, on_setup_reply, "AUTH", 2, argv,
		    NULL);
	}
	if (r->db != 0) {
		const char *argv[] = { "SELECT", db };
		snprintf(db, sizeof(db), "%u", r->db);
		redisAsyncCommandArgv(r->ac, on_setup_reply, "SELECT", 2, argv,
		    NULL);
	}
}

static void
connect_now(struct kv_redis *r)
{
	redisAsyncContext *ac;
	struct timeval tv;

	if (r->ac != NULL || r->closing)
		return;
	ac = r->unix_path ? redisAsyncConnectUnix(r->unix_path) :
	    redisAsyncConnect(r->address, (int)r->port);
	if (ac == NULL || ac->err) {
		note_down(r, ac ? ac->errstr : "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		schedule_retry(r);
		return;
	}
	ac->data = r;
	if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
		redisAsyncFree(ac);
		note_down(r, "cannot attach to the event loop");
		schedule_retry(r);
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	r->ac = ac;
	r->connected = 0;
	setup_commands(r);
	tv_ms(&tv, r->timeout_ms);
	evtimer_add(r->connect_ev, &tv);
}

/* -- requests -------------------------------------------------------------- */

static void
req_free(struct kv_req *q)
{
	struct kv_redis *r = q->r;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		r->reqs = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	event_free(q->timer);
	free(q->value);
	free(q);
}

/* answer - the caller's callback, at most once */
static void
answer(struct kv_req *q, const struct kv_result *res)
{
	kv_redis_cb cb = q->cb;

	q->cb = NULL;
	if (cb != NULL)
		cb(res, q->arg);
}

static void
answer_fail(struct kv_req *q, const char *why)
{
	struct kv_result res = { .ok = 0, .error = why };

	answer(q, &res);
}

/* result - a reply as the operation's result; 0 if it does not fit */
static int
result(const struct kv_req *q, const redisReply *rep, struct kv_result *res,
    char *num, size_t numlen)
{
	memset(res, 0, sizeof(*res));
	res->ok = 1;
	switch (q->op) {
	case KV_OP_GET:
		if (rep->type == REDIS_REPLY_NIL)
			return 1;
		if (rep->type != REDIS_REPLY_STRING)
			return 0;
		res->value = rep->str;
		res->number = strtoll(rep->str, NULL, 10);
		return 1;
	case KV_OP_SET:
		res->value = q->value;
		res->number = strtoll(q->value, NULL, 10);
		return rep->type == REDIS_REPLY_STATUS;
	case KV_OP_INCR:
	case KV_OP_DEL:
		if (rep->type != REDIS_REPLY_INTEGER)
			return 0;
		res->number = rep->integer;
		snprintf(num, numlen, "%lld", rep->integer);
		res->value = q->op == KV_OP_INCR ? num : NULL;
		return 1;
	}
	return 0;
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct kv_req *q = privdata;
	redisReply *rep = reply;
	struct kv_result res;
	char num[32];

	if (rep == NULL)
		answer_fail(q, ac->err ? ac->errstr : "connection closed");
	else if (rep->type == REDIS_REPLY_ERROR)
		answer_fail(q, rep->str);
	else if (!result(q, rep, &res, num, sizeof(num)))
		answer_fail(q, "unexpected reply type");
	else
		answer(q, &res);
	req_free(q);
}

static void
on_req_timer(evutil_socket_t fd, short what, void *arg)
{
	struct kv_req *q = arg;
	struct kv_redis *r = q->r;

	(void)fd;
	(void)what;
	if (!q->in_hiredis) {
		answer_fail(q, q->why);
		req_free(q);
		return;
	}
	answer_fail(q, "timeout");
	drop(r, "timeout");	/* frees q through on_reply */
}

/* prefixed - prefix + key, malloc'ed */
static char *
prefixed(const struct kv_redis *r, const char *key, size_t *len)
{
	size_t pl = strlen(r->prefix), kl = strlen(key);
	char *k = xmalloc(pl + kl + 1);

	memcpy(k, r->prefix, pl);
	memcpy(k + pl, key, kl + 1);
	*len = pl + kl;
	return k;
}

/* send_cmd - the operation's command to hiredis; -1 if it refused */
static int
send_cmd(struct kv_redis *r, struct kv_req *q, const char *key,
    long long delta, unsigned ttl)
{
	const char *argv[6];
	size_t lens[6], klen;
	char n1[32], n2[32];
	char *k = prefixed(r, key, &klen);
	int argc = 0, rc;

	snprintf(n1, sizeof(n1), "%lld", delta);
	snprintf(n2, sizeof(n2), "%u", ttl);
#define ARG(s, l) do { argv[argc] = (s); lens[argc++] = (l); } while (0)
	switch (q->op) {
	case KV_OP_GET:
	case KV_OP_DEL:
		ARG(q->op == KV_OP_GET ? "GET" : "DEL", 3);
		ARG(k, klen);
		break;
	case KV_OP_SET:
		ARG("SET", 3);
		ARG(k, klen);
		ARG(q->value, strlen(q->value));
		if (ttl > 0) {
			ARG("EX", 2);
			ARG(n2, strlen(n2));
		}
		break;
	case KV_OP_INCR:
		ARG("EVAL", 4);
		ARG(incr_script, sizeof(incr_script) - 1);
		ARG("1", 1);
		ARG(k, klen);
		ARG(n1, strlen(n1));
		ARG(n2, strlen(n2));
		break;
	}
#undef ARG
	rc = redisAsyncCommandArgv(r->ac, on_reply, q, argc, argv, lens);
	free(k);
	return rc == REDIS_OK ? 0 : -1;
}

struct kv_req *
kv_redis_cmd(struct kv_redis *r, enum kv_op op, const char *key,
    const char *value, long long delta, unsigned ttl, kv_redis_cb cb,
    void *arg)
{
	struct kv_req *q;
	struct timeval tv = { 0, 0 };

	if (key == NULL || key[0] == '\0' || strlen(key) > KV_KEY_MAX ||
	    (op == KV_OP_SET && (value == NULL ||
	    strlen(value) > KV_VALUE_MAX)))
		return NULL;
	q = xcalloc(1, sizeof(*q));
	q->r = r;
	q->op = op;
	q->cb = cb;
	q->arg = arg;
	q->value = op == KV_OP_SET ? xstrdup(value) : NULL;
	q->timer = evtimer_new(r->base, on_req_timer, q);
	q->next = r->reqs;
	if (r->reqs != NULL)
		r->reqs->prev = q;
	r->reqs = q;
	if (r->ac == NULL)
		q->why = "not connected";
	else if (send_cmd(r, q, key, delta, ttl) == -1)
		q->why = "the connection is closing";
	else {
		q->in_hiredis = 1;
		tv_ms(&tv, r->timeout_ms);
	}
	evtimer_add(q->timer, &tv);
	return q;
}

void
kv_redis_cancel(struct kv_req *q)
{
	if (q == NULL)
		return;
	q->cb = NULL;
	if (!q->in_hiredis)
		req_free(q);
	/* else its timer still bounds how long Redis may keep it */
}

enum sluice_verdict
kv_redis_on_error(const struct kv_redis *r)
{
	return r->on_error;
}

struct kv_redis *
kv_redis_new(struct event_base *base, const struct conf_kv_redis *c,
    const char *name)
{
	struct kv_redis *r = xcalloc(1, sizeof(*r));
	struct timeval now = { 0, 0 };

	r->base = base;
	r->address = xstrdup(c->address ? c->address : "127.0.0.1");
	r->unix_path = c->unix_path ? xstrdup(c->unix_path) : NULL;
	r->password = c->password ? xstrdup(c->password) : NULL;
	r->prefix = xstrdup(c->prefix ? c->prefix : "");
	r->port = c->port;
	r->db = c->db;
	r->timeout_ms = c->timeout_ms;
	r->on_error = c->on_error;
	r->backoff_ms = BACKOFF_FIRST_MS;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->retry_ev = evtimer_new(base, on_retry, r);
	r->connect_ev = evtimer_new(base, on_connect_timeout, r);
	evtimer_add(r->retry_ev, &now);		/* the first connect */
	return r;
}

void
kv_redis_free(struct kv_redis *r)
{
	if (r == NULL)
		return;
	r->closing = 1;
	drop(r, "shutdown");
	while (r->reqs != NULL) {	/* those never sent */
		answer_fail(r->reqs, "shutdown");
		req_free(r->reqs);
	}
	event_free(r->retry_ev);
	event_free(r->connect_ev);
	free(r->address);
	free(r->unix_path);
	free(r->password);
	free(r->prefix);
	free(r);
}
