/*
 * smtp_auth.c - SMTP AUTH (RFC 4954) with PLAIN and LOGIN, offered only
 * under TLS, checked against auth.users_file and the auth filter stage,
 * and the per-client-IP brake on password guessing.
 *
 * Order of one attempt: the SASL exchange (334 prompts; a response line
 * is read in place of a command while s->sasl_step is set), the password
 * hash check on the auth pool (never on the event loop: yescrypt is
 * slow on purpose), then the auth stage. A filter's accept vouches for
 * the credentials, reject/tempfail refuse them; with no decision the
 * users file decides. Filters see auth.user, auth.password,
 * auth.mechanism and auth.result (ok, bad, unknown) at that stage.
 * Failures: counted per client IP in the shared key/value store for
 * auth.failure_window (from the first failure); the n-th failure's 535
 * is delayed by n × auth.failure_delay; the one that reaches
 * auth.max_failures ends the session with 421, and AUTH commands from
 * that IP get 454 until the window ends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "auth_users.h"
#include "conf.h"
#include "iopool.h"
#include "kvstore.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "sasl.h"
#include "server.h"
#include "smtp_session.h"
#include "util.h"

#define SID(s)	((unsigned long long)(s)->id)
#define FAIL_KEY_FMT	"sluice.auth-failures:%s"

enum sasl_step {
	STEP_NONE,
	STEP_PLAIN,		/* waiting for the PLAIN response */
	STEP_LOGIN_USER,
	STEP_LOGIN_PASS,
};

struct auth_job {
	struct smtp_session *s;
	struct auth_users *users;
	struct sasl_creds creds;
	enum auth_check result;
};

static const char *const result_names[] = { "ok", "bad", "unknown" };

static unsigned
failures(const struct smtp_session *s)
{
	char key[128], *v;
	unsigned n = 0;

	snprintf(key, sizeof(key), FAIL_KEY_FMT, s->addr);
	if ((v = kv_get(key)) != NULL) {
		n = (unsigned)strtoul(v, NULL, 10);
		free(v);
	}
	return n;
}

static unsigned
count_failure(const struct smtp_session *s)
{
	char key[128];
	int ok;
	long long n;

	snprintf(key, sizeof(key), FAIL_KEY_FMT, s->addr);
	n = kv_incr(key, 1, server.conf->auth.failure_window, &ok);
	return ok && n > 0 ? (unsigned)n : 1;
}

int
smtp_auth_offered(const struct smtp_session *s)
{
	return s->tls && s->listener->auth != AUTH_MODE_NONE &&
	    s->auth_user == NULL;
}

/* auth_needed - auth: required and not yet done: MAIL and on refused */
int
smtp_auth_needed(const struct smtp_session *s)
{
	return s->listener->auth == AUTH_MODE_REQUIRED && s->auth_user == NULL;
}

static void
wipe(struct smtp_session *s)
{
	if (s->sasl != NULL) {
		explicit_bzero(s->sasl, sizeof(*s->sasl));
		free(s->sasl);
		s->sasl = NULL;
	}
	s->sasl_step = STEP_NONE;
	s->subj.auth_password = NULL;
	s->subj.auth_login = NULL;
	s->subj.auth_result = NULL;
}

void
smtp_auth_clear(struct smtp_session *s)
{
	wipe(s);
	free(s->auth_user);
	s->auth_user = NULL;
	s->subj.auth_user = NULL;
	s->subj.auth_mech = NULL;
}

static void
failed_reply(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	if (!(s->flags & SS_DEAD)) {
		session_reply(s, "535 5.7.8 Error: authentication failed");
		session_client_error(s);
	}
	session_resume(s);
}

/*
 * auth_failed - count it; the one that reaches max_failures ends the
 * session at once, the others are answered after the delay they earned
 */
static void
auth_failed(struct smtp_session *s, const char *user, const char *why)
{
	const struct conf_auth *a = &server.conf->auth;
	unsigned n = count_failure(s);
	struct timeval tv = { (time_t)n * a->failure_delay, 0 };

	metrics_inc(M_AUTH, "failed");
	log_info("session=%016llx event=auth status=failed client=%s user=%s "
	    "mechanism=%s reason=%s failures=%u", SID(s), s->addr,
	    log_q(user), sasl_mech_name(s->sasl_mech), log_q(why), n);
	if (n >= a->max_failures) {
		session_reply(s, "421 4.7.0 %s Error: too many failed "
		    "authentication attempts", server.conf->hostname);
		session_close(s, "too many failed authentications");
		return;
	}
	session_wait(s);
	if (event_base_once(loop_base(s->worker->loop), -1, EV_TIMEOUT,
	    failed_reply, s, &tv) == -1)
		failed_reply(-1, 0, s);
}

static void
auth_succeeded(struct smtp_session *s, const char *user, const char *by)
{
	s->auth_user = xstrdup(user);
	s->subj.auth_user = s->auth_user;
	s->subj.auth_mech = sasl_mech_name(s->sasl_mech);
	metrics_inc(M_AUTH, "ok");
	log_info("session=%016llx event=auth status=ok client=%s user=%s "
	    "mechanism=%s by=%s", SID(s), s->addr, log_q(user),
	    sasl_mech_name(s->sasl_mech), by);
	session_reply(s, "235 2.7.0 Authentication successful");
}

static void
stage_done(struct smtp_session *s, const struct verdict *v)
{
	struct sasl_creds *c = s->sasl;
	enum auth_check r = s->sasl_result;
	char user[SASL_USER_MAX + 1];
	char reply[VERDICT_TEXT_LEN + 32];

	snprintf(user, sizeof(user), "%s", c->user);
	wipe(s);
	switch (v->kind) {
	case SLUICE_ACCEPT:
		auth_succeeded(s, user, v->filter ? v->filter : "filter");
		return;
	case SLUICE_TEMPFAIL:
		if (v->code == 0 && v->text[0] == '\0')
			session_reply(s, "454 4.7.0 Temporary authentication "
			    "failure");
		else {
			verdict_reply(v, SLUICE_ON_AUTH, reply, sizeof(reply));
			session_reply(s, "%s", reply);
		}
		metrics_inc(M_AUTH, "tempfail");
		log_info("session=%016llx event=auth status=tempfail "
		    "client=%s user=%s filter=%s", SID(s), s->addr,
		    log_q(user), v->filter ? v->filter : "-");
		return;
	case SLUICE_CONTINUE:
		if (r == AUTH_CHECK_OK) {
			auth_succeeded(s, user, "users_file");
			return;
		}
		auth_failed(s, user, r == AUTH_CHECK_BAD ? "bad password" :
		    "unknown user");
		return;
	default:			/* reject, discard, ...: refused */
		auth_failed(s, user, "refused by filter");
		return;
	}
}

static void
auth_work(void *arg)
{
	struct auth_job *j = arg;

	j->result = auth_users_verify(j->users, j->creds.user,
	    j->creds.pass);
}

static void
auth_work_done(void *arg)
{
	struct auth_job *j = arg;
	struct smtp_session *s = j->s;
	enum auth_check result = j->result;

	explicit_bzero(&j->creds, sizeof(j->creds));
	free(j);
	if (!(s->flags & (SS_DEAD | SS_CLOSE)) && s->sasl != NULL) {
		s->sasl_result = result;
		s->subj.auth_login = s->sasl->user;
		s->subj.auth_password = s->sasl->pass;
		s->subj.auth_mech = sasl_mech_name(s->sasl_mech);
		s->subj.auth_result = result_names[s->sasl_result];
		session_stage(s, SLUICE_ON_AUTH, stage_done);
	}
	session_resume(s);
}

/* check - the credentials are in s->sasl: hash check off the loop */
static void
check(struct smtp_session *s)
{
	struct auth_job *j = xcalloc(1, sizeof(*j));

	j->s = s;
	j->users = server.auth_users;
	j->creds = *s->sasl;
	s->sasl_step = STEP_NONE;
	session_wait(s);
	iopool_submit(server.auth_pool, auth_work, s->worker->loop,
	    auth_work_done, j);
}

static void
sasl_error(struct smtp_session *s, const char *why)
{
	wipe(s);
	if (strcmp(why, SASL_ERR_BASE64) == 0)
		session_reply(s, "501 5.5.2 Error: cannot decode the response");
	else {
		auth_failed(s, "", why);
		return;
	}
	session_client_error(s);
}

static void
step(struct smtp_session *s, const char *resp, size_t len)
{
	const char *why = NULL;

	switch (s->sasl_step) {
	case STEP_PLAIN:
		why = sasl_plain(resp, len, s->sasl);
		break;
	case STEP_LOGIN_USER:
		if ((why = sasl_login_field(resp, len, s->sasl->user,
		    sizeof(s->sasl->user))) == NULL &&
		    s->sasl->user[0] == '\0')
			why = SASL_ERR_EMPTY;
		if (why == NULL) {
			s->sasl_step = STEP_LOGIN_PASS;
			session_reply(s, "334 " SASL_LOGIN_PASS);
			return;
		}
		break;
	case STEP_LOGIN_PASS:
		why = sasl_login_field(resp, len, s->sasl->pass,
		    sizeof(s->sasl->pass));
		break;
	default:
		return;
	}
	if (why != NULL)
		sasl_error(s, why);
	else
		check(s);
}

/* smtp_auth_response - a line of the SASL exchange (CR removed) */
void
smtp_auth_response(struct smtp_session *s, char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (len == 1 && line[0] == '*') {
		wipe(s);
		session_reply(s, "501 5.7.0 Authentication aborted");
		return;
	}
	step(s, line, len);
}

static const char *
auth_refusal(const struct smtp_session *s)
{
	if (s->listener->auth == AUTH_MODE_NONE)
		return "502 5.5.1 Error: authentication not enabled";
	if (!s->tls)
		return "538 5.7.11 Encryption required for requested "
		    "authentication mechanism";
	if (s->auth_user != NULL)
		return "503 5.5.1 Error: already authenticated";
	if (s->state < SMTP_READY)
		return "503 5.5.1 Error: send EHLO first";
	if (s->tx != NULL)
		return "503 5.5.1 Error: MAIL transaction in progress";
	return NULL;
}

void
smtp_cmd_auth(struct smtp_session *s, char *args)
{
	const char *reply;
	char *mech = args, *ir;

	if ((reply = auth_refusal(s)) != NULL) {
		session_reply(s, "%s", reply);
		session_client_error(s);
		return;
	}
	if (failures(s) >= server.conf->auth.max_failures) {
		metrics_inc(M_AUTH, "blocked");
		log_info("session=%016llx event=auth status=blocked client=%s",
		    SID(s), s->addr);
		session_reply(s, "454 4.7.0 Error: too many failed "
		    "authentication attempts, try again later");
		session_client_error(s);
		return;
	}
	if ((ir = strchr(args, ' ')) != NULL) {
		*ir++ = '\0';
		while (*ir == ' ')
			ir++;
	}
	if ((s->sasl_mech = sasl_mech_parse(mech)) == SASL_NONE) {
		session_reply(s, "504 5.5.4 Error: unrecognized authentication "
		    "type");
		session_client_error(s);
		return;
	}
	s->sasl = xcalloc(1, sizeof(*s->sasl));
	if (ir != NULL && *ir != '\0') {
		s->sasl_step = s->sasl_mech == SASL_PLAIN ? STEP_PLAIN :
		    STEP_LOGIN_USER;
		step(s, strcmp(ir, "=") == 0 ? "" : ir,
		    strcmp(ir, "=") == 0 ? 0 : strlen(ir));
		return;
	}
	if (s->sasl_mech == SASL_PLAIN) {
		s->sasl_step = STEP_PLAIN;
		session_reply(s, "334 ");
	} else {
		s->sasl_step = STEP_LOGIN_USER;
		session_reply(s, "334 " SASL_LOGIN_USER);
	}
}
