/*
 * conf_tls_auth.c - the TLS and AUTH keys: listeners' tls: {mode, cert, key}
 * and auth: none | optional | required, and the top-level auth: section.
 *
 * API: conf_listener_tls_keys[] and conf_set_listener_auth() for the
 * listener table of conf_schema.c, conf_auth_keys[] for the top level,
 * conf_check_listener_tls() once a listener is complete.
 * What a listener needs: a mode other than none needs cert and key (both
 * readable now, so `sluiced -t` catches a typo; whether they hold a
 * matching key pair is checked when the server loads them); role
 * submissions needs mode implicit. auth: defaults to none on mx listeners
 * and required on submission(s); AUTH is only ever offered under TLS.
 * Errors: 0 or -1 with "FILE:LINE:COL: what" in ld->err.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "conf_priv.h"

static int	 set_tls_mode(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const struct ynode *, void *);

#define TLS(f)	offsetof(struct conf_tls_server, f)
const struct conf_key conf_listener_tls_keys[] = {
	{ "mode",	set_tls_mode,	TLS(mode),	0, 0,	  NULL },
	{ "cert",	conf_set_path,	TLS(cert),	0, 0,	  NULL },
	{ "key",	conf_set_path,	TLS(key),	0, 0,	  NULL },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

#define AUTH(f)	offsetof(struct conf_auth, f)
const struct conf_key conf_auth_keys[] = {
	{ "users_file",	conf_set_path,	AUTH(users_file), 0, 0,	  NULL },
	{ "max_failures", conf_set_uint, AUTH(max_failures), 1, 1000, NULL },
	{ "failure_window", conf_set_duration, AUTH(failure_window), 1,
	    7 * 24 * 3600, NULL },
	{ "failure_delay", conf_set_duration, AUTH(failure_delay), 0, 60,
	    NULL },
	{ NULL,		NULL,		0,		0, 0,	  NULL },
};

static int
set_tls_mode(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	static const char *const	 words[] = {
		"none", "optional", "required", "implicit", NULL
	};
	static const enum tls_mode	 modes[] = {
		TLS_MODE_NONE, TLS_MODE_OPTIONAL, TLS_MODE_REQUIRED,
		TLS_MODE_IMPLICIT
	};
	struct conf_tls_server		*t = obj;
	size_t				 i;

	(void)key;
	if (conf_word(ld, k, val, words, &i) == -1)
		return -1;
	t->mode = modes[i];
	return 0;
}

int
conf_set_listener_auth(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	static const char *const	 words[] = {
		"none", "optional", "required", NULL
	};
	static const enum auth_mode	 modes[] = {
		AUTH_MODE_NONE, AUTH_MODE_OPTIONAL, AUTH_MODE_REQUIRED
	};
	struct conf_listener		*l = obj;
	size_t				 i;

	(void)key;
	if (conf_word(ld, k, val, words, &i) == -1)
		return -1;
	l->auth = modes[i];
	l->auth_set = 1;
	return 0;
}

static int
readable(struct conf_loader *ld, const struct ynode *at, const char *lname,
    const char *what, const char *path)
{
	if (access(path, R_OK) == 0)
		return 0;
	return conf_error(ld, at, "listener '%s': cannot read tls.%s %s: %s",
	    lname, what, path, strerror(errno));
}

/* item: the listener's mapping, for the position of errors */
int
conf_check_listener_tls(struct conf_loader *ld, const struct ynode *item,
    struct conf_listener *l)
{
	const struct ynode	*tls = conf_yaml_get(item, "tls");
	const struct ynode	*at = tls != NULL ? tls : item;

	if (!l->auth_set)
		l->auth = l->role == ROLE_MX ? AUTH_MODE_NONE :
		    AUTH_MODE_REQUIRED;
	if (l->role == ROLE_SUBMISSIONS && l->tls.mode != TLS_MODE_IMPLICIT)
		return conf_error(ld, at, "listener '%s' has role submissions: "
		    "it needs tls: {mode: implicit, cert: ..., key: ...}",
		    l->name);
	if (l->tls.mode == TLS_MODE_NONE && l->auth == AUTH_MODE_REQUIRED)
		return conf_error(ld, item, "listener '%s': auth: required%s "
		    "needs TLS (AUTH is only offered under TLS): give it tls: "
		    "{mode: required, cert: ..., key: ...}, or auth: none",
		    l->name, l->auth_set ? "" : " (the default of role "
		    "submission)");
	if (l->tls.mode == TLS_MODE_NONE) {
		if (l->tls.cert != NULL || l->tls.key != NULL)
			return conf_error(ld, at, "listener '%s': tls.cert and "
			    "tls.key need a tls.mode other than none",
			    l->name);
		return 0;
	}
	if (l->tls.cert == NULL || l->tls.key == NULL)
		return conf_error(ld, at, "listener '%s': tls.mode %s needs "
		    "tls.cert and tls.key", l->name,
		    l->tls.mode == TLS_MODE_IMPLICIT ? "implicit" :
		    l->tls.mode == TLS_MODE_REQUIRED ? "required" : "optional");
	if (readable(ld, conf_yaml_get(tls, "cert"), l->name, "cert",
	    l->tls.cert) == -1 ||
	    readable(ld, conf_yaml_get(tls, "key"), l->name, "key",
	    l->tls.key) == -1)
		return -1;
	return 0;
}

void
conf_auth_defaults(struct config *cf)
{
	cf->auth.max_failures = 5;
	cf->auth.failure_window = 15 * 60;
	cf->auth.failure_delay = 1;
}

void
conf_tls_auth_free(struct config *cf)
{
	for (size_t i = 0; i < cf->nlisteners; i++) {
		free(cf->listeners[i].tls.cert);
		free(cf->listeners[i].tls.key);
	}
	free(cf->auth.users_file);
}
