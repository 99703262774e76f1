/*
 * milter_macros.c - the macros sent before each milter event: which (the
 * filter's own list from negotiation, else the entry's `macros:`, else
 * Postfix's defaults) and their values from what the session knows.
 * A macro without a value (no TLS, no AUTH, unknown name) is not sent.
 */
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "conf_filter.h"
#include "envelope.h"
#include "filter.h"
#include "milter_client.h"
#include "server.h"
#include "smtp_params.h"
#include "smtp_reply.h"
#include "util.h"

/* Postfix's defaults, by SMFIM_* stage (milter-protocol.md section 6.1) */
static const char *const defaults[MILTER_STAGES] = {
	[SMFIM_CONNECT] = "j {daemon_name} {daemon_addr} v _ {client_addr} "
	    "{client_name}",
	[SMFIM_HELO] = "{tls_version} {cipher} {cipher_bits} {cert_subject} "
	    "{cert_issuer}",
	[SMFIM_ENVFROM] = "i {auth_type} {auth_authen} {auth_author} "
	    "{mail_addr} {mail_host} {mail_mailer}",
	[SMFIM_ENVRCPT] = "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
	[SMFIM_DATA] = "i",
	[SMFIM_EOM] = "i",
	[SMFIM_EOH] = "i",
};

const char *
milter_default_macros(int stage)
{
	return defaults[stage];
}

static const char *
domain_of(const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;

	return at ? at + 1 : NULL;
}

/*
 * refusal_split - of "550 5.1.1 <a@b>: text", the reply that refused a
 * recipient: the enhanced code into code (the class's "5.0.0" when it has
 * none), and the text after it
 */
static const char *
refusal_split(const char *reply, char *code, size_t len)
{
	const char *p = reply;
	size_t k;

	while (*p >= '0' && *p <= '9' && p - reply < 3)
		p++;
	if (*p == ' ' || *p == '-')
		p++;
	k = smtp_enhanced_len(p, strlen(p), reply[0]);
	if (k > 0 && k < len) {
		memcpy(code, p, k);
		code[k] = '\0';
		return p[k] == ' ' ? p + k + 1 : p + k;
	}
	snprintf(code, len, "%c.0.0", reply[0] == '4' ? '4' : '5');
	return p;
}

/*
 * refusal_value - the recipient macros of a refused recipient, as Postfix
 * sends them to milters with SMFIP_RCPT_REJ: {rcpt_mailer} "error",
 * {rcpt_host} the enhanced status code, {rcpt_addr} the reply's text
 */
static const char *
refusal_value(const char *name, const char *reply, char *buf, size_t len)
{
	const char *text;

	if (strcmp(name, "{rcpt_mailer}") == 0)
		return "error";
	text = refusal_split(reply, buf, len);
	if (strcmp(name, "{rcpt_host}") == 0)
		return buf;
	return text;			/* {rcpt_addr} */
}

/* value - of macro name (as configured: "j", "{daemon_name}") or NULL */
static const char *
value(const char *name, struct filter_subject *s, char *buf, size_t len)
{
	const struct config *cf = server.conf;

	if (strcmp(name, "j") == 0 || strcmp(name, "{j}") == 0)
		return cf->hostname;
	if (strcmp(name, "v") == 0 || strcmp(name, "{v}") == 0)
		return filter_host.version;
	if (strcmp(name, "_") == 0 || strcmp(name, "{_}") == 0) {
		snprintf(buf, len, "%s [%s]", s->client_rdns ? s->client_rdns :
		    "unknown", s->client_addr);
		return buf;
	}
	if (strcmp(name, "i") == 0 || strcmp(name, "{i}") == 0)
		return s->env ? s->env->id : NULL;
	if (strcmp(name, "{daemon_name}") == 0)
		return s->listener;
	if (strcmp(name, "{daemon_addr}") == 0)
		return s->daemon_addr;
	if (strcmp(name, "{daemon_port}") == 0 && s->daemon_port) {
		snprintf(buf, len, "%u", s->daemon_port);
		return buf;
	}
	if (strcmp(name, "{client_addr}") == 0)
		return s->client_addr;
	if (strcmp(name, "{client_port}") == 0) {
		snprintf(buf, len, "%u", s->client_port);
		return buf;
	}
	if (strcmp(name, "{client_name}") == 0 ||
	    strcmp(name, "{client_ptr}") == 0)
		return s->client_rdns ? s->client_rdns : "unknown";
	if (strcmp(name, "{tls_version}") == 0)
		return s->tls_version;
	if (strcmp(name, "{cipher}") == 0)
		return s->tls_cipher;
	if (strcmp(name, "{cipher_bits}") == 0 && s->tls_version != NULL) {
		snprintf(buf, len, "%u", s->tls_bits);
		return buf;
	}
	if (strcmp(name, "{auth_authen}") == 0)
		return s->auth_user;
	if (strcmp(name, "{auth_type}") == 0)
		return s->auth_user ? s->auth_mech : NULL;
	if (strcmp(name, "{mail_addr}") == 0)
		return s->env ? s->env->sender : NULL;
	if (s->rcpt_refusal != NULL && (strcmp(name, "{rcpt_addr}") == 0 ||
	    strcmp(name, "{rcpt_host}") == 0 ||
	    strcmp(name, "{rcpt_mailer}") == 0))
		return refusal_value(name, s->rcpt_refusal, buf, len);
	if (strcmp(name, "{rcpt_addr}") == 0)
		return s->rcpt;
	if (strcmp(name, "{rcpt_host}") == 0)
		return domain_of(s->rcpt);
	if (strcmp(name, "{rcpt_mailer}") == 0 && s->rcpt != NULL)
		return conf_is_local_domain(cf, domain_of(s->rcpt)) ?
		    "local" : "smtp";
	return NULL;
}

#define MACROS_MAX	64

/* list_for - the names to send at stage, filter's list first */
static const char *
list_for(const struct milter_sess *ms, int stage)
{
	if (ms->lists[stage] != NULL)
		return ms->lists[stage];
	return ms->def->macros[stage];
}

/* build - the 'D' packet for event cmd into b; 0 when none is due */
static int
build(struct milter_sess *ms, int cmd, int stage, struct milter_buf *b)
{
	const char *list = list_for(ms, stage), *p;
	struct filter_subject *s = ms->call->subj;
	struct milter_macro m[MACROS_MAX];
	char names[MACROS_MAX][64], vals[MACROS_MAX][256];
	size_t n = 0;

	for (p = list ? list : ""; *p && n < MACROS_MAX; ) {
		size_t k;
		p += strspn(p, " \t,");
		if ((k = strcspn(p, " \t,")) == 0)
			break;
		if (k < sizeof(names[n])) {
			memcpy(names[n], p, k);
			names[n][k] = '\0';
			const char *v = value(names[n], s, vals[n],
			    sizeof(vals[n]));
			if (v != NULL) {
				m[n].name = milter_cstr(names[n]);
				m[n].value = milter_cstr(v);
				n++;
			}
		}
		p += k;
	}
	/* too long for one packet: not sent */
	return n > 0 && milter_put_macro(b, cmd, m, n) == 0;
}

/* queue_macros - the packet goes out with the next one: one write, and
   the filter reads both in one go instead of waking twice */
static int
queue_macros(struct milter_sess *ms, const struct milter_buf *b)
{
	if (ms->bev == NULL)
		return -1;
	milter_hold(ms, b);
	return 0;
}

/*
 * milter_send_macros - the packet before every HEADER and every BODY
 * chunk of a message is the same each time: built once per message
 * (ms->mcache, cleared by milter_message_reset) and sent again.
 */
int
milter_send_macros(struct milter_sess *ms, int cmd, int stage)
{
	unsigned char mem[MILTER_PACKET_MAX];
	struct milter_buf b;
	struct milter_cached *mc = cmd == SMFIC_HEADER ? &ms->mcache[0] :
	    cmd == SMFIC_BODY ? &ms->mcache[1] : NULL;

	if (stage == SMFIM_NONE)
		return 0;
	if (mc != NULL && mc->built) {
		if (mc->len == 0)
			return 0;
		milter_buf_init(&b, mc->p, mc->len);
		b.len = mc->len;
		return queue_macros(ms, &b);
	}
	milter_buf_init(&b, mem, sizeof(mem));
	if (!build(ms, cmd, stage, &b))
		b.len = 0;
	if (mc != NULL) {
		mc->built = 1;
		mc->len = b.len;
		mc->p = b.len ? xmalloc(b.len) : NULL;
		if (b.len)
			memcpy(mc->p, b.data, b.len);
	}
	return b.len ? queue_macros(ms, &b) : 0;
}
