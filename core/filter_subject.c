/*
 * filter_subject.c - the facts filters read by key (the list is in
 * plugins/sluice_plugin.h), shared by the C plugin host and Lua.
 */
#include <stdio.h>
#include <string.h>

#include "envelope.h"
#include "filter.h"
#include "message.h"
#include "smtp_params.h"

static const char *
mail_fact(const struct filter_subject *s, const char *k, char *buf,
    size_t len)
{
	const struct mail_params *mp = s->mp;

	if (mp == NULL)
		return NULL;
	if (strcmp(k, "size") == 0) {
		if (!mp->has_size)
			return NULL;
		snprintf(buf, len, "%llu", (unsigned long long)mp->size);
		return buf;
	}
	if (strcmp(k, "body") == 0)
		return smtp_body_name(mp->body);
	if (strcmp(k, "smtputf8") == 0)
		return mp->smtputf8 ? "1" : "0";
	if (strcmp(k, "ret") == 0)
		return smtp_ret_name(mp->ret);
	if (strcmp(k, "envid") == 0)
		return mp->envid[0] ? mp->envid : NULL;
	return NULL;
}

static const char *
rcpt_fact(const struct filter_subject *s, const char *k, char *buf,
    size_t len)
{
	const struct rcpt_params *rp = s->rp;

	if (rp == NULL)
		return NULL;
	if (strcmp(k, "orcpt") == 0)
		return rp->orcpt[0] ? rp->orcpt : NULL;
	if (strcmp(k, "notify") != 0 || rp->notify == 0)
		return NULL;
	return smtp_notify_text(rp->notify, buf, len);
}

/* delivery_fact - "delivery.*" keys, at the delivery stages */
static const char *
delivery_fact(struct filter_subject *s, const char *k, char *buf, size_t len)
{
	if (s->dl_attempts == 0)
		return NULL;			/* not a delivery stage */
	if (strcmp(k, "attempts") == 0) {
		snprintf(buf, len, "%u", s->dl_attempts);
		return buf;
	}
	if (strcmp(k, "result") == 0)
		return s->dl_result;
	if (strcmp(k, "reason") == 0)
		return s->dl_reason;
	if (strcmp(k, "status") == 0 && s->dl_reason != NULL) {
		snprintf(buf, len, "%.*s", (int)strcspn(s->dl_reason, " "),
		    s->dl_reason);
		return buf;
	}
	if (strcmp(k, "remote") == 0)
		return s->dl_remote;
	if (strcmp(k, "reply") == 0)
		return s->dl_reply;
	return NULL;
}

const char *
subject_get(struct filter_subject *s, enum sluice_stage stage,
    const char *key, char *buf, size_t len)
{
	if (strcmp(key, "stage") == 0)
		return stage_name(stage);
	if (strcmp(key, "session.id") == 0) {
		snprintf(buf, len, "%016llx", (unsigned long long)s->session_id);
		return buf;
	}
	if (strcmp(key, "listener") == 0)
		return s->listener;
	if (strcmp(key, "client.addr") == 0)
		return s->client_addr;
	if (strcmp(key, "client.port") == 0) {
		snprintf(buf, len, "%u", s->client_port);
		return buf;
	}
	if (strcmp(key, "client.rdns") == 0)
		return s->client_rdns;
	if (strcmp(key, "helo") == 0)
		return s->helo;
	if (strcmp(key, "tls.version") == 0)
		return s->tls_version;
	if (strcmp(key, "tls.cipher") == 0)
		return s->tls_cipher;
	if (strcmp(key, "tls.bits") == 0 && s->tls_version != NULL) {
		snprintf(buf, len, "%u", s->tls_bits);
		return buf;
	}
	if (strcmp(key, "auth.user") == 0)	/* the stage: the one tried */
		return stage == SLUICE_ON_AUTH ? s->auth_login : s->auth_user;
	if (strcmp(key, "auth.mechanism") == 0)
		return s->auth_mech;
	if (strcmp(key, "auth.password") == 0)
		return stage == SLUICE_ON_AUTH ? s->auth_password : NULL;
	if (strcmp(key, "auth.result") == 0)
		return stage == SLUICE_ON_AUTH ? s->auth_result : NULL;
	if (strcmp(key, "qid") == 0)
		return s->env ? s->env->id : NULL;
	if (strcmp(key, "sender") == 0)
		return s->env ? s->env->sender : NULL;
	if (strncmp(key, "mail.", 5) == 0)
		return mail_fact(s, key + 5, buf, len);
	if (strcmp(key, "rcpt") == 0)
		return s->rcpt;
	if (strncmp(key, "rcpt.", 5) == 0)
		return rcpt_fact(s, key + 5, buf, len);
	if (strncmp(key, "delivery.", 9) == 0)
		return delivery_fact(s, key + 9, buf, len);
	if (strcmp(key, "message.size") == 0 &&
	    (s->msg != NULL || s->msg_load != NULL)) {
		snprintf(buf, len, "%zu", s->msg ? s->msg->len : s->msg_size);
		return buf;
	}
	return NULL;
}

struct message *
subject_msg(struct filter_subject *s)
{
	if (s->msg == NULL && s->msg_load != NULL && s->msg_load(s) == -1)
		s->msg_load = NULL;		/* failed: do not retry */
	return s->msg;
}
