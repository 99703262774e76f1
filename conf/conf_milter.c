/*
 * conf_milter.c - the keys of a `milter:` pipeline entry
 *
 *   - milter: unix:/run/opendkim/opendkim.sock    (inet:HOST:PORT,
 *                                                  inet:PORT@HOST ...)
 *     default_action: tempfail      accept | reject | tempfail | quarantine
 *     timeouts: {connect: 30s, command: 30s, content: 300s}
 *     macros: {connect: "j {daemon_name} _", mail: [i, "{mail_addr}"]}
 *     protocol: 6                   the version offered: 2, 3, 4 or 6
 *
 * default_action is the entry's on_error (accept = continue without the
 * milter). The socket address is checked when the filter loads
 * (core/milter_filter.c), which reports this entry's FILE:LINE:COL.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_filter.h"
#include "conf_priv.h"

const char *const conf_milter_stage_names[CONF_MILTER_STAGES] = {
	"connect", "helo", "mail", "rcpt", "data", "eom", "eoh",
};

int
conf_milter_set_default_action(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	static const char *const words[] = {
	    "accept", "reject", "tempfail", "quarantine", NULL };
	static const enum sluice_verdict verdicts[] = {
	    SLUICE_CONTINUE, SLUICE_REJECT, SLUICE_TEMPFAIL,
	    SLUICE_QUARANTINE };
	struct conf_filter *f = obj;
	size_t i;

	(void)key;
	if (conf_word(ld, k, val, words, &i) == -1)
		return -1;
	f->on_error = verdicts[i];
	f->has_default_action = 1;
	return 0;
}

/* macro_list - "a b c" or [a, b, c] as one space-separated string */
static int
set_macro_list(struct conf_loader *ld, const struct ynode *val, char **out)
{
	size_t len = 1;

	if (val->type == YNODE_SCALAR) {
		if ((*out = conf_strdup(ld, val, val->null ? "" :
		    val->value)) == NULL)
			return -1;
		return 0;
	}
	if (conf_expect(ld, val, YNODE_SEQUENCE, "macros") == -1)
		return -1;
	for (size_t i = 0; i < val->nkids; i++) {
		if (val->kids[i]->type != YNODE_SCALAR)
			return conf_error(ld, val->kids[i], "a macro name is "
			    "a string");
		len += strlen(val->kids[i]->value) + 1;
	}
	if ((*out = calloc(1, len)) == NULL)
		return conf_error(ld, val, "out of memory");
	for (size_t i = 0; i < val->nkids; i++) {
		if (i > 0)
			strcat(*out, " ");
		strcat(*out, val->kids[i]->value);
	}
	return 0;
}

static int
macro_pair(struct conf_loader *ld, struct conf_milter *m,
    const struct ynode *key, const struct ynode *val)
{
	for (int i = 0; i < CONF_MILTER_STAGES; i++) {
		if (strcmp(key->value, conf_milter_stage_names[i]) != 0)
			continue;
		free(m->macros[i]);
		m->macros[i] = NULL;
		if (set_macro_list(ld, val, &m->macros[i]) == -1)
			return -1;
		for (const char *p = m->macros[i]; *p; p++)
			if ((unsigned char)*p < ' ' || (unsigned char)*p > '~')
				return conf_error(ld, val, "macro names are "
				    "printable ASCII");
		return 0;
	}
	return conf_error(ld, key, "unknown macro stage '%s': expected "
	    "connect, helo, mail, rcpt, data, eoh or eom", key->value);
}

int
conf_milter_set_macros(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct conf_filter *f = obj;

	(void)k;
	(void)key;
	if (conf_expect(ld, val, YNODE_MAPPING, "macros") == -1)
		return -1;
	for (size_t i = 0; i + 1 < val->nkids; i += 2)
		if (macro_pair(ld, &f->milter, val->kids[i],
		    val->kids[i + 1]) == -1)
			return -1;
	return 0;
}

int
conf_milter_set_protocol(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct conf_filter *f = obj;
	unsigned long long n;
	const char *v;

	(void)key;
	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	if (conf_parse_uint(v, 6, &n) == -1 || n < 2 || n == 5)
		return conf_error(ld, val, "invalid milter protocol version: "
		    "expected 2, 3, 4 or 6");
	f->milter.protocol = (unsigned)n;
	return 0;
}

#define ML(x)	offsetof(struct conf_milter, x)
const struct conf_key conf_milter_timeout_keys[] = {
	{ "connect",	conf_set_duration, ML(connect_timeout), 1, 3600, NULL },
	{ "command",	conf_set_duration, ML(command_timeout), 1, 3600, NULL },
	{ "content",	conf_set_duration, ML(content_timeout), 1, 3600, NULL },
	{ NULL,		NULL,		   0,		       0, 0,	NULL },
};

void
conf_milter_defaults(struct conf_filter *f)
{
	f->milter.connect_timeout = 30;
	f->milter.command_timeout = 30;
	f->milter.content_timeout = 300;
	f->milter.protocol = 6;
}

void
conf_milter_free(struct conf_filter *f)
{
	for (int i = 0; i < CONF_MILTER_STAGES; i++)
		free(f->milter.macros[i]);
}
