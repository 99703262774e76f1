/*
 * probe.c - a test plugin driven by its args, for the system tests: it
 * exercises every host function of plugins/sluice_plugin.h.
 *
 *   - plugin: /path/to/probe.so
 *     args:
 *       name: p1                    # in its log lines (default "probe")
 *       rules:                      # the first rule matching a call applies
 *         - stage: rcpt             # or a list of stages
 *           when: {helo: x.test}    # facts (host->get) that must be equal,
 *                                   # case-insensitively; "(null)": unknown
 *           verdict: reject         # and code, enhanced, text
 *           delay: 200              # ms: decide from a timer on the loop
 *           early: true             # resume() before returning SUSPENDED
 *           hang: true              # never resume (the entry's timeout)
 *           scope: session          # of `tags` (default: session before
 *           tags: {k: v}            #   MAIL, transaction after)
 *           record: [facts]         # session tag probe.<stage>.<fact>
 *           kv_set: {k: v}          # KV store; kv_incr and kv_get set
 *           kv_incr: [k]            #   the session tag kv.<k> to the
 *           kv_get: [k]             #   answer ("(null)": none)
 *           try_modify: true        # session tag probe.<stage>.modify:
 *                                   #   what header_add() returned
 *           # message stage:
 *           header_add: {Name: value}
 *           header_insert: {Name: value}   # at index 0
 *           header_change: {Name: value}   # the first one of that name
 *           header_delete: [Name]
 *           body: "new body"
 *           sender: a@b
 *           rcpt_add: [a@b]
 *           rcpt_delete: [a@b]
 *           tag_headers: [tag]      # X-Tag-<tag>: value, or "(none)"
 *           inspect: true           # X-Probe-Inspect: what it can read
 *           cancel_header: true     # X-Probe-Cancels: cancel() calls so far
 *
 * Every hook logs "probe=<name> stage=<stage>" through host->log().
 * Threads: rules are read-only after init; the cancel counter is atomic;
 * the list of delayed calls is under a mutex.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>

#include <event2/event.h>

#include "sluice_plugin.h"

struct strs {
	size_t n;
	char **v;
};

struct pairs {
	size_t n;
	char **k, **v;
};

enum mode { MODE_NOW, MODE_DELAY, MODE_EARLY, MODE_HANG };

struct rule {
	unsigned stages;
	struct pairs when;
	int has_verdict;
	enum sluice_verdict verdict;
	int code;
	char *enhanced, *text;
	enum mode mode;
	unsigned delay_ms;
	int scope;			/* -1: by stage */
	struct pairs tags, kv_set, hadd, hinsert, hchange;
	struct strs record, kv_incr, kv_get, hdelete, rcpt_add, rcpt_del;
	struct strs tag_headers;
	char *body, *sender;
	int try_modify, inspect, cancel_header;
};

struct pcall;

struct probe {
	const struct sluice_host *host;
	char *name;
	struct rule *rules;
	size_t nrules;
	atomic_uint cancels;
	pthread_mutex_t mu;
	struct pcall *pending;		/* delayed calls */
};

struct pcall {
	struct pcall *prev, *next;
	struct probe *p;
	struct sluice_call *call;
	const struct rule *r;
	enum sluice_stage stage;
	struct event *ev;
};

static const char *const stage_names[SLUICE_NSTAGES] = {
	"connect", "helo", "auth", "mail", "rcpt", "data", "message",
	"queue", "deliver", "delivered", "deferred", "bounced", "disconnect",
};

static const char *const verdict_names[] = {
	"continue", "accept", "reject", "tempfail", "discard", "quarantine",
	"disconnect", NULL,
};

#define PROBE_STAGES (SLUICE_STAGE(SLUICE_ON_CONNECT) | \
	SLUICE_STAGE(SLUICE_ON_HELO) | SLUICE_STAGE(SLUICE_ON_AUTH) | \
	SLUICE_STAGE(SLUICE_ON_MAIL) | SLUICE_STAGE(SLUICE_ON_RCPT) | \
	SLUICE_STAGE(SLUICE_ON_DATA) | SLUICE_STAGE(SLUICE_ON_MESSAGE) | \
	SLUICE_STAGE(SLUICE_ON_QUEUE) | SLUICE_STAGE(SLUICE_ON_DISCONNECT))

/* -- args ----------------------------------------------------------------- */

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int o = snprintf(err, errlen, "probe: ");

	va_start(ap, fmt);
	if (o > 0 && (size_t)o < errlen)
		vsnprintf(err + o, errlen - (size_t)o, fmt, ap);
	va_end(ap);
	return -1;
}

static int
dup_string(const struct sluice_value *v, char **out)
{
	if (v->type != SLUICE_STRING)
		return -1;
	return (*out = strdup(v->string)) == NULL ? -1 : 0;
}

/* parse_strs - a string or a list of strings */
static int
parse_strs(const struct sluice_value *v, struct strs *s)
{
	const struct sluice_value *items = v;
	size_t n = 1;

	if (v->type == SLUICE_LIST) {
		items = v->items;
		n = v->n;
	}
	if ((s->v = calloc(n ? n : 1, sizeof(*s->v))) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (dup_string(&items[i], &s->v[i]) == -1)
			return -1;
		s->n = i + 1;
	}
	return 0;
}

/* parse_pairs - a mapping of strings, in order */
static int
parse_pairs(const struct sluice_value *v, struct pairs *p)
{
	if (v->type != SLUICE_MAP)
		return -1;
	if ((p->k = calloc(v->n ? v->n : 1, sizeof(*p->k))) == NULL ||
	    (p->v = calloc(v->n ? v->n : 1, sizeof(*p->v))) == NULL)
		return -1;
	for (size_t i = 0; i < v->n; i++) {
		p->n = i;
		if ((p->k[i] = strdup(v->keys[i])) == NULL)
			return -1;
		p->n = i + 1;
		if (dup_string(&v->items[i], &p->v[i]) == -1)
			return -1;
	}
	return 0;
}

static void
strs_free(struct strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static void
pairs_free(struct pairs *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->k[i]);
		free(p->v[i]);
	}
	free(p->k);
	free(p->v);
}

static int
parse_stages(const struct sluice_value *v, unsigned *out)
{
	struct strs s = { 0, NULL };
	int rv = 0;

	if (parse_strs(v, &s) == -1)
		rv = -1;
	for (size_t i = 0; rv == 0 && i < s.n; i++) {
		int found = -1;
		for (int j = 0; j < SLUICE_NSTAGES; j++)
			if (strcasecmp(s.v[i], stage_names[j]) == 0)
				found = j;
		if (found < 0)
			rv = -1;
		else
			*out |= SLUICE_STAGE(found);
	}
	strs_free(&s);
	return rv;
}

static int
is_true(const struct sluice_value *v)
{
	return v->type == SLUICE_STRING && (strcmp(v->string, "true") == 0 ||
	    strcmp(v->string, "1") == 0 || strcmp(v->string, "yes") == 0);
}

static int
parse_verdict(struct rule *r, const struct sluice_value *v)
{
	if (v->type != SLUICE_STRING)
		return -1;
	for (int i = 0; verdict_names[i] != NULL; i++)
		if (strcasecmp(v->string, verdict_names[i]) == 0) {
			r->verdict = (enum sluice_verdict)i;
			r->has_verdict = 1;
			return 0;
		}
	return -1;
}

static int
parse_uint(const struct sluice_value *v, unsigned *out)
{
	char *end;
	unsigned long n;

	if (v->type != SLUICE_STRING || v->string[0] < '0' ||
	    v->string[0] > '9')
		return -1;
	n = strtoul(v->string, &end, 10);
	if (*end != '\0' || n > 1000000)
		return -1;
	*out = (unsigned)n;
	return 0;
}

/* rule_key_flag - the boolean keys; 1 handled, 0 not such a key */
static int
rule_key_flag(struct rule *r, const char *k, const struct sluice_value *v)
{
	if (strcmp(k, "early") == 0 && is_true(v))
		r->mode = MODE_EARLY;
	else if (strcmp(k, "hang") == 0 && is_true(v))
		r->mode = MODE_HANG;
	else if (strcmp(k, "try_modify") == 0)
		r->try_modify = is_true(v);
	else if (strcmp(k, "inspect") == 0)
		r->inspect = is_true(v);
	else if (strcmp(k, "cancel_header") == 0)
		r->cancel_header = is_true(v);
	else if (strcmp(k, "early") != 0 && strcmp(k, "hang") != 0)
		return 0;
	return 1;
}

/* rule_key - one key of a rule: 0, or -1 if bad */
static int
rule_key(struct rule *r, const char *k, const struct sluice_value *v)
{
	unsigned code;

	if (rule_key_flag(r, k, v))
		return 0;
	if (strcmp(k, "stage") == 0)
		return parse_stages(v, &r->stages);
	if (strcmp(k, "verdict") == 0)
		return parse_verdict(r, v);
	if (strcmp(k, "code") == 0) {
		if (parse_uint(v, &code) == -1)
			return -1;
		r->code = (int)code;
		return 0;
	}
	if (strcmp(k, "delay") == 0) {
		r->mode = MODE_DELAY;
		return parse_uint(v, &r->delay_ms);
	}
	if (strcmp(k, "scope") == 0) {
		if (v->type != SLUICE_STRING)
			return -1;
		r->scope = strcmp(v->string, "transaction") == 0 ?
		    SLUICE_TRANSACTION : SLUICE_SESSION;
		return 0;
	}
	struct { const char *name; char **s; } strings[] = {
		{ "enhanced", &r->enhanced }, { "text", &r->text },
		{ "body", &r->body }, { "sender", &r->sender },
	};
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		if (strcmp(k, strings[i].name) == 0)
			return dup_string(v, strings[i].s);
	struct { const char *name; struct pairs *p; } maps[] = {
		{ "when", &r->when }, { "tags", &r->tags },
		{ "kv_set", &r->kv_set }, { "header_add", &r->hadd },
		{ "header_insert", &r->hinsert },
		{ "header_change", &r->hchange },
	};
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		if (strcmp(k, maps[i].name) == 0)
			return parse_pairs(v, maps[i].p);
	struct { const char *name; struct strs *s; } lists[] = {
		{ "record", &r->record }, { "kv_incr", &r->kv_incr },
		{ "kv_get", &r->kv_get }, { "header_delete", &r->hdelete },
		{ "rcpt_add", &r->rcpt_add }, { "rcpt_delete", &r->rcpt_del },
		{ "tag_headers", &r->tag_headers },
	};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (strcmp(k, lists[i].name) == 0)
			return parse_strs(v, lists[i].s);
	return -1;
}

static void
rule_free(struct rule *r)
{
	struct pairs *pairs[] = { &r->when, &r->tags, &r->kv_set, &r->hadd,
	    &r->hinsert, &r->hchange };
	struct strs *lists[] = { &r->record, &r->kv_incr, &r->kv_get,
	    &r->hdelete, &r->rcpt_add, &r->rcpt_del, &r->tag_headers };

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		pairs_free(pairs[i]);
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		strs_free(lists[i]);
	free(r->enhanced);
	free(r->text);
	free(r->body);
	free(r->sender);
}

static int
parse_rules(struct probe *p, const struct sluice_value *v, char *err,
    size_t errlen)
{
	if (v->type != SLUICE_LIST)
		return fail(err, errlen, "'rules' must be a list");
	if ((p->rules = calloc(v->n ? v->n : 1, sizeof(*p->rules))) == NULL)
		return fail(err, errlen, "out of memory");
	for (size_t i = 0; i < v->n; i++) {
		const struct sluice_value *r = &v->items[i];
		p->nrules = i + 1;
		p->rules[i].scope = -1;
		if (r->type != SLUICE_MAP)
			return fail(err, errlen, "rule %zu is not a mapping", i + 1);
		for (size_t j = 0; j < r->n; j++)
			if (rule_key(&p->rules[i], r->keys[j], &r->items[j]) == -1)
				return fail(err, errlen, "rule %zu: bad '%s'", i + 1,
				    r->keys[j]);
		if (p->rules[i].stages == 0)
			return fail(err, errlen, "rule %zu has no 'stage'", i + 1);
	}
	return 0;
}

static void
probe_free(struct probe *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nrules; i++)
		rule_free(&p->rules[i]);
	free(p->rules);
	free(p->name);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static int
probe_init(const struct sluice_host *host, const struct sluice_value *args,
    void **ctx, char *err, size_t errlen)
{
	struct probe *p;

	if (host->abi != SLUICE_PLUGIN_ABI)
		return fail(err, errlen, "host ABI %u", host->abi);
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return fail(err, errlen, "out of memory");
	p->host = host;
	atomic_init(&p->cancels, 0);
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p);
		return fail(err, errlen, "no mutex");
	}
	for (size_t i = 0; args->type == SLUICE_MAP && i < args->n; i++) {
		const struct sluice_value *v = &args->items[i];
		int rv;
		if (strcmp(args->keys[i], "name") == 0)
			rv = dup_string(v, &p->name) == -1 ?
			    fail(err, errlen, "bad 'name'") : 0;
		else if (strcmp(args->keys[i], "rules") == 0)
			rv = parse_rules(p, v, err, errlen);
		else
			rv = fail(err, errlen, "unknown argument '%s'",
			    args->keys[i]);
		if (rv == -1) {
			probe_free(p);
			return -1;
		}
	}
	if (p->name == NULL && (p->name = strdup("probe")) == NULL) {
		probe_free(p);
		return fail(err, errlen, "out of memory");
	}
	*ctx = p;
	return 0;
}

static void
probe_fini(void *ctx)
{
	probe_free(ctx);
}

/* -- actions -------------------------------------------------------------- */

static const char *
or_null(const char *s)
{
	return s ? s : "(null)";
}

static void
stage_tag(struct probe *p, struct sluice_call *c, enum sluice_stage st,
    const char *what, const char *value)
{
	char key[256];

	snprintf(key, sizeof(key), "probe.%s.%s", stage_names[st], what);
	p->host->tag_set(c, SLUICE_SESSION, key, value);
}

static void
kv_answer(struct sluice_call *c, int ok, const char *value, long long number,
    void *arg)
{
	const struct sluice_host *h = ((struct probe *)((void **)arg)[0])->host;
	const char *key = ((void **)arg)[1];
	char tag[300];

	(void)number;
	snprintf(tag, sizeof(tag), "kv.%s", key);
	h->tag_set(c, SLUICE_SESSION, tag, ok && value ? value : "(null)");
}

/*
 * do_kv - the rule's KV work. The callbacks' args live on this stack: the
 * probe relies on the in-memory store answering before kv_*() returns.
 */
static void
do_kv(struct probe *p, const struct rule *r, struct sluice_call *c)
{
	const struct sluice_host *h = p->host;

	for (size_t i = 0; i < r->kv_set.n; i++)
		h->kv_set(c, r->kv_set.k[i], r->kv_set.v[i], 0, NULL, NULL);
	for (size_t i = 0; i < r->kv_incr.n; i++) {
		void *arg[2] = { p, r->kv_incr.v[i] };
		h->kv_incr(c, r->kv_incr.v[i], 1, 0, kv_answer, arg);
	}
	for (size_t i = 0; i < r->kv_get.n; i++) {
		void *arg[2] = { p, r->kv_get.v[i] };
		h->kv_get(c, r->kv_get.v[i], kv_answer, arg);
	}
}

static void
do_tags(struct probe *p, const struct rule *r, struct sluice_call *c,
    enum sluice_stage st)
{
	const struct sluice_host *h = p->host;
	enum sluice_scope scope = r->scope >= 0 ? (enum sluice_scope)r->scope :
	    st < SLUICE_ON_MAIL ? SLUICE_SESSION : SLUICE_TRANSACTION;

	for (size_t i = 0; i < r->record.n; i++)
		stage_tag(p, c, st, r->record.v[i], or_null(h->get(c,
		    r->record.v[i])));
	for (size_t i = 0; i < r->tags.n; i++)
		h->tag_set(c, scope, r->tags.k[i], r->tags.v[i]);
	if (r->try_modify) {
		char rc[16];
		snprintf(rc, sizeof(rc), "%d", h->header_add(c, "X-Probe-Try",
		    "1"));
		stage_tag(p, c, st, "modify", rc);
	}
}

/* inspect - what the read functions see, as one header */
static void
do_inspect(struct probe *p, struct sluice_call *c)
{
	const struct sluice_host *h = p->host;
	const char *name = "-", *value = "-", *data = NULL;
	char buf[1024], rcpts[512] = "";
	size_t len = 0, o = 0;

	h->header_at(c, 0, &name, &value);
	h->message(c, &data, &len);
	for (size_t i = 0; i < h->rcpt_count(c) && o < sizeof(rcpts); i++)
		o += (size_t)snprintf(rcpts + o, sizeof(rcpts) - o, "%s%s",
		    i ? "," : "", or_null(h->rcpt_addr(c, i)));
	snprintf(buf, sizeof(buf), "headers=%zu first=%s subject=%s len=%zu "
	    "crlf=%d rcpts=%s sender=%s size=%s", h->header_count(c), name,
	    or_null(h->header(c, "Subject", 0)), len,
	    data != NULL && len >= 2 && memcmp(data + len - 2, "\r\n", 2) == 0,
	    rcpts, or_null(h->get(c, "sender")),
	    or_null(h->get(c, "message.size")));
	h->header_add(c, "X-Probe-Inspect", buf);
}

static void
do_message(struct probe *p, const struct rule *r, struct sluice_call *c)
{
	const struct sluice_host *h = p->host;

	if (r->inspect)
		do_inspect(p, c);
	for (size_t i = 0; i < r->hchange.n; i++)
		h->header_change(c, r->hchange.k[i], 0, r->hchange.v[i]);
	for (size_t i = 0; i < r->hdelete.n; i++)
		h->header_change(c, r->hdelete.v[i], 0, NULL);
	for (size_t i = 0; i < r->hadd.n; i++)
		h->header_add(c, r->hadd.k[i], r->hadd.v[i]);
	for (size_t i = 0; i < r->hinsert.n; i++)
		h->header_insert(c, 0, r->hinsert.k[i], r->hinsert.v[i]);
	if (r->body != NULL)
		h->body_replace(c, r->body, strlen(r->body));
	if (r->sender != NULL)
		h->sender_change(c, r->sender);
	for (size_t i = 0; i < r->rcpt_add.n; i++)
		h->rcpt_add(c, r->rcpt_add.v[i]);
	for (size_t i = 0; i < r->rcpt_del.n; i++)
		h->rcpt_delete(c, r->rcpt_del.v[i]);
	for (size_t i = 0; i < r->tag_headers.n; i++) {
		char name[300];
		snprintf(name, sizeof(name), "X-Tag-%s", r->tag_headers.v[i]);
		const char *v = h->tag_get(c, r->tag_headers.v[i]);
		h->header_add(c, name, v ? v : "(none)");
	}
	if (r->cancel_header) {
		char n[16];
		snprintf(n, sizeof(n), "%u", atomic_load(&p->cancels));
		h->header_add(c, "X-Probe-Cancels", n);
	}
}

/* apply - the rule's actions, then its verdict */
static void
apply(struct probe *p, const struct rule *r, struct sluice_call *c,
    enum sluice_stage st)
{
	do_kv(p, r, c);
	do_tags(p, r, c, st);
	if (st == SLUICE_ON_MESSAGE)
		do_message(p, r, c);
	if (r->has_verdict)
		p->host->verdict(c, r->verdict, r->code, r->enhanced, r->text);
}

/* -- hook ----------------------------------------------------------------- */

static int
matches(struct probe *p, const struct rule *r, struct sluice_call *c,
    enum sluice_stage st)
{
	if (!(r->stages & SLUICE_STAGE(st)))
		return 0;
	for (size_t i = 0; i < r->when.n; i++) {
		const char *v = p->host->get(c, r->when.k[i]);
		if (v == NULL ? strcmp(r->when.v[i], "(null)") != 0 :
		    strcasecmp(v, r->when.v[i]) != 0)
			return 0;
	}
	return 1;
}

static void
unlink_call(struct pcall *pc)
{
	struct probe *p = pc->p;

	pthread_mutex_lock(&p->mu);
	if (pc->prev != NULL)
		pc->prev->next = pc->next;
	else
		p->pending = pc->next;
	if (pc->next != NULL)
		pc->next->prev = pc->prev;
	pthread_mutex_unlock(&p->mu);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pcall *pc = arg;

	(void)fd;
	(void)what;
	unlink_call(pc);
	apply(pc->p, pc->r, pc->call, pc->stage);
	pc->p->host->resume(pc->call);
	event_free(pc->ev);
	free(pc);
}

static enum sluice_status
delay(struct probe *p, const struct rule *r, struct sluice_call *c,
    enum sluice_stage st)
{
	struct timeval tv = { r->delay_ms / 1000, (r->delay_ms % 1000) * 1000 };
	struct pcall *pc = calloc(1, sizeof(*pc));

	if (pc == NULL || (pc->ev = evtimer_new(p->host->event_base(c),
	    on_timer, pc)) == NULL) {
		free(pc);
		p->host->log(c, SLUICE_LOG_WARN, "probe: cannot delay");
		apply(p, r, c, st);
		return SLUICE_DONE;
	}
	pc->p = p;
	pc->call = c;
	pc->r = r;
	pc->stage = st;
	pthread_mutex_lock(&p->mu);
	pc->next = p->pending;
	if (p->pending != NULL)
		p->pending->prev = pc;
	p->pending = pc;
	pthread_mutex_unlock(&p->mu);
	evtimer_add(pc->ev, &tv);
	return SLUICE_SUSPENDED;
}

static enum sluice_status
probe_hook(void *ctx, enum sluice_stage st, struct sluice_call *c)
{
	struct probe *p = ctx;
	const struct rule *r = NULL;

	p->host->log(c, SLUICE_LOG_INFO, "probe=%s stage=%s", p->name,
	    or_null(p->host->get(c, "stage")));
	for (size_t i = 0; r == NULL && i < p->nrules; i++)
		if (matches(p, &p->rules[i], c, st))
			r = &p->rules[i];
	if (r == NULL)
		return SLUICE_DONE;
	switch (r->mode) {
	case MODE_HANG:
		return SLUICE_SUSPENDED;
	case MODE_EARLY:
		apply(p, r, c, st);
		p->host->resume(c);
		return SLUICE_SUSPENDED;
	case MODE_DELAY:
		return delay(p, r, c, st);
	default:
		apply(p, r, c, st);
		return SLUICE_DONE;
	}
}

/* probe_cancel - count it; a delayed call's timer goes */
static void
probe_cancel(void *ctx, struct sluice_call *c)
{
	struct probe *p = ctx;
	struct pcall *pc;

	atomic_fetch_add(&p->cancels, 1);
	pthread_mutex_lock(&p->mu);
	for (pc = p->pending; pc != NULL && pc->call != c; pc = pc->next)
		;
	pthread_mutex_unlock(&p->mu);
	if (pc == NULL)
		return;
	unlink_call(pc);
	event_free(pc->ev);
	free(pc);
}

const struct sluice_plugin sluice_plugin = {
	.abi = SLUICE_PLUGIN_ABI,
	.name = "probe",
	.stages = PROBE_STAGES,
	.init = probe_init,
	.fini = probe_fini,
	.hook = probe_hook,
	.cancel = probe_cancel,
};
