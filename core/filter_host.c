/*
 * filter_host.c - the functions C plugins call (struct sluice_host in
 * plugins/sluice_plugin.h), on top of the call's filter_subject.
 *
 * Functions check that the call is still active (not timed out or
 * cancelled) and refuse otherwise; a call's memory lives until the hook
 * returned or resume() was called, and using it after that is a plugin
 * bug the host cannot catch. Changes to the message or envelope are
 * accepted only at the message stage.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "filter.h"
#include "filter_support.h"
#include "log.h"
#include "loop.h"
#include "message.h"
#include "server.h"
#include "smtp_addr.h"
#include "util.h"

static const char *
h_get(struct sluice_call *c, const char *key)
{
	char buf[256];
	const char *v;

	if (!call_active(c) || key == NULL)
		return NULL;
	if (strcmp(key, "kv.on_error") == 0)
		return filter_kv_on_error(c);
	v = subject_get(c->subj, c->stage, key, buf, sizeof(buf));
	return v == buf ? call_keep(c, xstrdup(buf)) : v;
}

static size_t
h_rcpt_count(struct sluice_call *c)
{
	return call_active(c) && c->subj->env ? c->subj->env->nrcpts : 0;
}

static const char *
h_rcpt_addr(struct sluice_call *c, size_t i)
{
	if (!call_active(c) || c->subj->env == NULL ||
	    i >= c->subj->env->nrcpts)
		return NULL;
	return c->subj->env->rcpts[i].addr;
}

static struct message *
msg_of(struct sluice_call *c)
{
	return call_active(c) ? subject_msg(c->subj) : NULL;
}

static size_t
h_header_count(struct sluice_call *c)
{
	struct message *m = msg_of(c);

	return m ? m->nhdrs : 0;
}

static int
h_header_at(struct sluice_call *c, size_t i, const char **name,
    const char **value)
{
	struct message *m = msg_of(c);

	if (m == NULL || i >= m->nhdrs)
		return -1;
	*name = m->hdrs[i].name;
	*value = m->hdrs[i].value;
	return 0;
}

static const char *
h_header(struct sluice_call *c, const char *name, size_t nth)
{
	struct message *m = msg_of(c);
	const char *raw;

	if (m == NULL || name == NULL ||
	    (raw = message_get(m, name, nth)) == NULL)
		return NULL;
	return call_keep(c, filter_decode_header(raw));
}

static int
h_message(struct sluice_call *c, const char **data, size_t *len)
{
	struct message *m = msg_of(c);

	if (m == NULL)
		return -1;
	*data = m->data;
	*len = m->len;
	return 0;
}

static int
h_tag_set(struct sluice_call *c, enum sluice_scope scope, const char *key,
    const char *value)
{
	struct tags *t;

	if (!call_active(c) || key == NULL || value == NULL)
		return -1;
	t = scope == SLUICE_SESSION ? c->subj->session_tags : c->subj->tx_tags;
	if (t == NULL)
		return -1;
	tags_set(t, key, value);
	return 0;
}

static const char *
h_tag_get(struct sluice_call *c, const char *key)
{
	const char *v;

	if (!call_active(c) || key == NULL)
		return NULL;
	v = tags_get(c->subj->tx_tags, key);
	return v ? v : tags_get(c->subj->session_tags, key);
}

static void
h_verdict(struct sluice_call *c, enum sluice_verdict v, int code,
    const char *enhanced, const char *text)
{
	if (call_active(c) && (unsigned)v <= SLUICE_DISCONNECT)
		call_set_verdict(c, v, code, enhanced, text);
}

/* changeable - the message stage allows changes */
static struct message *
changeable(struct sluice_call *c)
{
	if (!call_active(c) || !c->subj->modifiable)
		return NULL;
	return subject_msg(c->subj);
}

static int
h_header_add(struct sluice_call *c, const char *name, const char *value)
{
	struct message *m = changeable(c);

	return m ? message_add(m, name, value) : -1;
}

static int
h_header_insert(struct sluice_call *c, size_t index, const char *name,
    const char *value)
{
	struct message *m = changeable(c);

	return m ? message_insert(m, index, name, value) : -1;
}

static int
h_header_change(struct sluice_call *c, const char *name, size_t nth,
    const char *value)
{
	struct message *m = changeable(c);

	return m ? message_change(m, name, nth, value) : -1;
}

static int
h_body_replace(struct sluice_call *c, const char *body, size_t len)
{
	struct message *m = changeable(c);

	return m && body ? message_replace_body(m, body, len) : -1;
}

static int
h_sender_change(struct sluice_call *c, const char *addr)
{
	return changeable(c) ? filter_env_sender(c->subj->env, addr) : -1;
}

static int
h_rcpt_add(struct sluice_call *c, const char *addr)
{
	return changeable(c) ? filter_env_rcpt_add(c->subj->env, addr) : -1;
}

static int
h_rcpt_delete(struct sluice_call *c, const char *addr)
{
	return changeable(c) ? filter_env_rcpt_delete(c->subj->env, addr) : -1;
}

static struct event_base *
h_event_base(struct sluice_call *c)
{
	return call_active(c) ? loop_base(c->subj->worker->loop) : NULL;
}

static void
h_resume(struct sluice_call *c)
{
	call_finish(c);
}

static void
h_log(struct sluice_call *c, enum sluice_log_level level, const char *fmt,
    ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	const char *qid = call_active(c) && c->subj->env ? c->subj->env->id :
	    "-";
	if (level == SLUICE_LOG_WARN)
		log_warnx("qid=%s event=filter-log filter=%s text=%s", qid,
		    c->filter->name, log_q(text));
	else if (level == SLUICE_LOG_INFO)
		log_info("qid=%s event=filter-log filter=%s text=%s", qid,
		    c->filter->name, log_q(text));
	else
		log_debug("qid=%s event=filter-log filter=%s text=%s", qid,
		    c->filter->name, log_q(text));
}

const struct sluice_host filter_host = {
	.abi = SLUICE_PLUGIN_ABI,
	.version = "sluice 0.1",
	.get = h_get,
	.rcpt_count = h_rcpt_count,
	.rcpt_addr = h_rcpt_addr,
	.header_count = h_header_count,
	.header_at = h_header_at,
	.header = h_header,
	.message = h_message,
	.tag_set = h_tag_set,
	.tag_get = h_tag_get,
	.verdict = h_verdict,
	.header_add = h_header_add,
	.header_insert = h_header_insert,
	.header_change = h_header_change,
	.body_replace = h_body_replace,
	.sender_change = h_sender_change,
	.rcpt_add = h_rcpt_add,
	.rcpt_delete = h_rcpt_delete,
	.event_base = h_event_base,
	.resume = h_resume,
	.dns_query = filter_dns_query,
	.kv_get = filter_kv_get,
	.kv_set = filter_kv_set,
	.kv_incr = filter_kv_incr,
	.log = h_log,
};
