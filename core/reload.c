/*
 * reload.c - SIGHUP: read the configuration again, build the pipeline
 * again (Lua scripts re-read and compiled, plugins reloaded), and switch
 * to them without dropping a session: sessions keep the pipeline they
 * started with, new ones get the new one. TLS certificates and keys are
 * loaded again too (tls_server.h): new handshakes use the new ones; so is
 * auth.users_file.
 *
 * Anything wrong (a YAML error, a Lua syntax error, a plugin that does not
 * load) refuses the whole reload with one log line; the old configuration
 * keeps running. Settings bound at start (listeners, spool, workers, user,
 * log target, command_line_length, kv) are reported and keep their old values
 * until a restart. Replaced configurations and mailbox tables are kept
 * until exit: other threads may still hold pointers into them, and they
 * cost a few kilobytes per reload.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth_users.h"
#include "conf.h"
#include "conn_limits.h"
#include "filter.h"
#include "log.h"
#include "mailbox.h"
#include "privs.h"
#include "server.h"
#include "tls_server.h"
#include "util.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

struct retired {
	struct config *conf;
	struct mailbox_table *mailboxes;
	struct auth_users *auth_users;
	struct retired *next;
};
static struct retired *retired;

struct pipeline *
pipeline_current(void)
{
	struct pipeline *p;

	pthread_mutex_lock(&mu);
	p = pipeline_ref(server.pipeline);
	pthread_mutex_unlock(&mu);
	return p;
}

static int
listeners_same(const struct config *a, const struct config *b)
{
	if (a->nlisteners != b->nlisteners)
		return 0;
	for (size_t i = 0; i < a->nlisteners; i++)
		if (strcmp(a->listeners[i].address, b->listeners[i].address) ||
		    a->listeners[i].port != b->listeners[i].port ||
		    strcmp(a->listeners[i].name, b->listeners[i].name))
			return 0;
	return 1;
}

static int
str_same(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* kv_same - the kv: settings the loops' Redis connections were made with */
static int
kv_same(const struct conf_kv *a, const struct conf_kv *b)
{
	const struct conf_kv_redis *x = &a->redis, *y = &b->redis;

	if (a->backend != b->backend)
		return 0;
	return a->backend == KV_BACKEND_MEMORY || (str_same(x->address,
	    y->address) && x->port == y->port && str_same(x->unix_path,
	    y->unix_path) && str_same(x->password, y->password) &&
	    x->db == y->db && str_same(x->prefix, y->prefix) &&
	    x->timeout_ms == y->timeout_ms && x->on_error == y->on_error);
}

/* keep_bound - settings that only a restart can change keep their values */
static void
keep_bound(struct config *nc, const struct config *oc)
{
	if (!listeners_same(nc, oc))
		log_warnx("event=reload warning=\"listeners changed: restart to "
		    "apply; the old listeners stay\"");
	if (strcmp(nc->spool, oc->spool) != 0)
		log_warnx("event=reload warning=\"spool changed: restart to "
		    "apply\"");
	if (nc->workers != oc->workers || nc->limits.command_line_length !=
	    oc->limits.command_line_length)
		log_warnx("event=reload warning=\"workers or "
		    "command_line_length changed: restart to apply\"");
	nc->limits.command_line_length = oc->limits.command_line_length;
	if (!kv_same(&nc->kv, &oc->kv))
		log_warnx("event=reload warning=\"kv changed: restart to "
		    "apply\"");
	if (nc->log.target != oc->log.target || (nc->log.file != NULL &&
	    oc->log.file != NULL && strcmp(nc->log.file, oc->log.file) != 0))
		log_warnx("event=reload warning=\"log target or file changed: "
		    "restart to apply\"");
	nc->log.target = oc->log.target;
	free(nc->log.file);
	nc->log.file = oc->log.file ? xstrdup(oc->log.file) : NULL;
}

int
server_reload(void)
{
	struct config *nc;
	struct pipeline *np, *op;
	struct mailbox_table *mb;
	struct tls_server_set *tls;
	struct auth_users *au = NULL;
	char err[1024];

	if ((nc = conf_load(server.conf->path, err, sizeof(err))) == NULL) {
		log_warnx("event=reload status=refused error=%s", log_q(err));
		return -1;
	}
	if (privs_filters_check(nc, err, sizeof(err)) == -1)
		goto refuse;
	if ((np = pipeline_build(nc, server.nworkers + 1, err,
	    sizeof(err))) == NULL)
		goto refuse;
	for (unsigned i = 0; i <= server.nworkers; i++)
		if (pipeline_attach(np, i < server.nworkers ?
		    &server.workers[i] : &server.qmgr_worker, i, err,
		    sizeof(err)) == -1) {
			pipeline_unref(np);
			goto refuse;
		}
	if (nc->auth.users_file != NULL && (au = auth_users_load(
	    nc->auth.users_file, err, sizeof(err))) == NULL) {
		pipeline_unref(np);
		goto refuse;
	}
	if ((tls = tls_server_prepare(nc, err, sizeof(err))) == NULL) {
		auth_users_free(au);
		pipeline_unref(np);
		goto refuse;
	}
	keep_bound(nc, server.conf);
	tls_server_commit(tls);		/* new handshakes: new certificates */
	mb = mailbox_table_new(nc);
	struct retired *r = xcalloc(1, sizeof(*r));

	pthread_mutex_lock(&mu);
	op = server.pipeline;
	r->conf = server.conf;
	r->mailboxes = server.mailboxes;
	r->auth_users = server.auth_users;
	r->next = retired;
	retired = r;
	server.pipeline = np;
	__atomic_store_n(&server.mailboxes, mb, __ATOMIC_RELEASE);
	__atomic_store_n(&server.auth_users, au, __ATOMIC_RELEASE);
	__atomic_store_n(&server.conf, nc, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&mu);
	conn_limits_init(nc->limits.sessions, nc->limits.per_ip_sessions);
	pipeline_unref(op);
	log_info("event=reload status=ok filters=%zu", np->n);
	return 0;
refuse:
	log_warnx("event=reload status=refused error=%s", log_q(err));
	conf_free(nc);
	return -1;
}

/* reload_free - at exit: the configurations that were replaced */
void
reload_free(void)
{
	while (retired != NULL) {
		struct retired *r = retired;
		retired = r->next;
		mailbox_table_free(r->mailboxes);
		auth_users_free(r->auth_users);
		conf_free(r->conf);
		free(r);
	}
}
