/*
 * milter_mode.c - `sluiced --milter SOCKET` (milter_mode.h): set up the
 * worker loops and the pipeline the way the server does (workers_start()
 * with no listener: each worker gets its loop, its DNS resolver and its
 * filter instances), hand the socket to libmilter, and run stages for the
 * callbacks (milter_mode_cb.c, milter_mode_eom.c) on those loops.
 *
 * Threads: libmilter's listener and its signal thread (SIGTERM, SIGINT
 * and SIGHUP all stop it: libmilter gives no reload), one libmilter
 * thread per MTA connection, and the sluice workers. A callback's thread
 * queues the stage on its connection's worker with loop_call() and sleeps
 * on a condition variable until done() has the verdict; the filters'
 * own timeouts bound that wait. When smfi_main() returns, the connections
 * still open get SESSION_DRAIN_S seconds to end before the loops stop;
 * if some do not, the process exits without tearing down under them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "filter.h"
#include "log.h"
#include "loop.h"
#include "milter_mode.h"
#include "milter_mode_int.h"
#include "mime.h"
#include "qid.h"
#include "server.h"
#include "util.h"

#define SESSION_DRAIN_S	10
#define SID(c)	((unsigned long long)(c)->id)

static pthread_mutex_t conns_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conns_cv = PTHREAD_COND_INITIALIZER;
static unsigned nconns;
static atomic_uint next_worker;

struct worker *
mm_next_worker(void)
{
	return &server.workers[atomic_fetch_add(&next_worker, 1) %
	    server.nworkers];
}

static void
conn_opened(void)
{
	pthread_mutex_lock(&conns_mu);
	nconns++;
	pthread_mutex_unlock(&conns_mu);
}

static void
conn_closed(void)
{
	pthread_mutex_lock(&conns_mu);
	if (--nconns == 0)
		pthread_cond_broadcast(&conns_cv);
	pthread_mutex_unlock(&conns_mu);
}

/* drain - 1 when every connection ended within `seconds` */
static int
drain(unsigned seconds)
{
	struct timespec until;
	int left;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += seconds;
	pthread_mutex_lock(&conns_mu);
	while (nconns > 0 && pthread_cond_timedwait(&conns_cv, &conns_mu,
	    &until) == 0)
		;
	left = (int)nconns;
	pthread_mutex_unlock(&conns_mu);
	return left == 0;
}

struct mconn *
mm_conn_new(SMFICTX *ctx)
{
	struct mconn *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->id = atomic_fetch_add(&server.next_session_id, 1);
	c->worker = mm_next_worker();
	c->pipeline = pipeline_current();
	smfi_setpriv(ctx, c);
	conn_opened();
	return c;
}

void
mm_conn_free(SMFICTX *ctx, struct mconn *c)
{
	mm_tx_drop(c);
	tags_clear(&c->session_tags);
	free(c->addr);
	free(c->rdns);
	free(c->helo);
	free(c->listener);
	free(c->tls_version);
	free(c->tls_cipher);
	free(c->auth_user);
	free(c->auth_mech);
	pipeline_unref(c->pipeline);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
	smfi_setpriv(ctx, NULL);
	conn_closed();
}

void
mm_tx_drop(struct mconn *c)
{
	if (!c->in_tx)
		return;
	mm_filters_end(c, 0);
	envelope_clear(&c->env);
	for (size_t i = 0; i < c->nrcpts; i++) {
		free(c->rcpts[i].addr);
		free(c->rcpts[i].raw);
	}
	free(c->rcpts);
	c->rcpts = NULL;
	c->nrcpts = 0;
	free(c->rcpt);
	c->rcpt = NULL;
	free(c->pending_why);
	c->pending_why = NULL;
	c->pending = SLUICE_CONTINUE;
	free(c->head.p);
	free(c->body.p);
	memset(&c->head, 0, sizeof(c->head));
	memset(&c->body, 0, sizeof(c->body));
	c->too_big = 0;
	if (c->have_msg)
		message_clear(&c->msg);
	c->have_msg = 0;
	mime_tree_free(c->subj.mime);
	c->subj.mime = NULL;
	c->qid_known = 0;
	c->in_tx = 0;
}

/*
 * mm_refresh_qid - the MTA's queue ID (macro i) becomes the qid of the
 * transaction's log lines and of ctx.qid once it is known (Postfix gives
 * it from the first accepted RCPT on); one that does not fit is logged
 * next to ours.
 */
void
mm_refresh_qid(SMFICTX *ctx, struct mconn *c)
{
	const char *i;
	size_t n;

	if (!c->in_tx || c->qid_known || (i = smfi_getsymval(ctx, "i")) ==
	    NULL || *i == '\0')
		return;
	c->qid_known = 1;
	n = strspn(i, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz");
	if (i[n] == '\0' && n <= QID_LEN) {
		log_info("qid=%s session=%016llx event=milter-qid "
		    "sluice_qid=%s", i, SID(c), c->env.id);
		snprintf(c->env.id, sizeof(c->env.id), "%s", i);
	} else
		log_info("qid=%s session=%016llx event=milter-qid mta_qid=%s",
		    c->env.id, SID(c), log_q(i));
}

const char *
mm_qid(const struct mconn *c)
{
	return c->in_tx ? c->env.id : "-";
}

/* subject_refresh - what the filters see follows the connection */
static void
subject_refresh(struct mconn *c)
{
	struct filter_subject *f = &c->subj;

	f->worker = c->worker;
	f->session_id = c->id;
	f->listener = c->listener;
	f->client_addr = c->addr;
	f->client_port = c->port;
	f->client_rdns = c->rdns;
	f->helo = c->helo;
	f->tls_version = c->tls_version;
	f->tls_cipher = c->tls_cipher;
	f->tls_bits = c->tls_bits;
	f->auth_user = c->auth_user;
	f->auth_mech = c->auth_user ? c->auth_mech : NULL;
	f->env = c->in_tx ? &c->env : NULL;
	f->mp = c->in_tx ? &c->mp : NULL;
	f->rcpt = c->in_tx ? c->rcpt : NULL;
	f->rp = c->in_tx && c->rcpt ? &c->rp : NULL;
	f->msg = c->have_msg ? &c->msg : NULL;
	f->msg_load = NULL;
	f->msg_owner = c;
	f->msg_size = c->have_msg ? c->msg.len : 0;
	f->session_tags = &c->session_tags;
	f->tx_tags = c->in_tx ? &c->env.tags : NULL;
}

static void
stage_done(void *arg, const struct verdict *v)
{
	struct mconn *c = arg;

	pthread_mutex_lock(&c->mu);
	c->v = *v;
	c->done = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	/* c belongs to the libmilter thread again: do not touch it */
}

/* stage_on_loop - on the connection's worker */
static void
stage_on_loop(void *arg)
{
	struct mconn *c = arg;

	stage_run(c->pipeline, c->stage, &c->subj, stage_done, c, NULL);
}

const struct verdict *
mm_run_stage(struct mconn *c, enum sluice_stage st, int modifiable)
{
	memset(&c->v, 0, sizeof(c->v));
	if (!pipeline_has(c->pipeline, st))
		return &c->v;
	subject_refresh(c);
	c->subj.modifiable = modifiable;
	c->stage = st;
	c->done = 0;
	loop_call(c->worker->loop, stage_on_loop, c);
	pthread_mutex_lock(&c->mu);
	while (!c->done)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	c->subj.modifiable = 0;
	return &c->v;
}

static void
end_on_loop(void *arg)
{
	struct mconn *c = arg;

	if (c->ending_session)
		pipeline_session_end(c->pipeline, &c->subj);
	else
		pipeline_tx_end(c->pipeline, &c->subj);
	pthread_mutex_lock(&c->mu);
	c->done = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/*
 * mm_filters_end - tell filters that keep per-session state (milters in
 * the pipeline) that the transaction or the connection ended, on the
 * loop that owns that state; nothing to do when none keeps any
 */
void
mm_filters_end(struct mconn *c, int session)
{
	if (c->subj.fstate == NULL)
		return;
	c->ending_session = session;
	c->done = 0;
	loop_call(c->worker->loop, end_on_loop, c);
	pthread_mutex_lock(&c->mu);
	while (!c->done)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

/* socket_ok - libmilter's forms: unix:/path, local:/path, /path,
   inet:port@host, inet6:port@host */
static int
socket_ok(const char *s)
{
	static const char *const pfx[] = { "unix:/", "local:/", "/", "inet:",
	    "inet6:" };

	for (size_t i = 0; i < nitems(pfx); i++)
		if (strncmp(s, pfx[i], strlen(pfx[i])) == 0)
			return s[strlen(pfx[i])] != '\0';
	return 0;
}

int
milter_mode_run(const char *socket)
{
	struct config *c = server.conf;
	char err[1024], *conn;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (!socket_ok(socket))
		fatalx("event=init error=\"bad milter socket %s: use unix:/path "
		    "or inet:port@host\"", socket);
	server.nlisteners = 0;		/* workers accept nothing */
	server.nworkers = c->workers ? c->workers :
	    (ncpu > 0 ? (unsigned)ncpu : 1);
	if ((server.pipeline = pipeline_build(c, server.nworkers, err,
	    sizeof(err))) == NULL)
		fatalx("event=init error=%s", log_q(err));
	if (server.pipeline->n == 0)
		log_warnx("event=init warning=\"milter mode with an empty "
		    "pipeline: every message passes\"");
	workers_start();		/* loops, resolvers, filter instances */

	conn = xstrdup(socket);
	if (smfi_setconn(conn) == MI_FAILURE)
		fatalx("event=init error=\"bad milter socket %s\"", socket);
	if (smfi_register(mm_desc) == MI_FAILURE)
		fatalx("event=init error=\"smfi_register failed\"");
	if (smfi_opensocket(1) == MI_FAILURE)
		fatalx("event=init error=\"cannot listen on milter socket %s\"",
		    socket);
	log_info("event=ready mode=milter socket=%s workers=%u filters=%zu",
	    log_q(socket), server.nworkers, server.pipeline->n);
	if (smfi_main() == MI_FAILURE)
		log_warnx("event=milter-stopped error=\"smfi_main failed\"");
	log_info("event=stopping mode=milter");
	if (!drain(SESSION_DRAIN_S)) {
		/* a libmilter thread still uses the loops: leave them be */
		log_warnx("event=stopped warning=\"milter connections still "
		    "open after %us\"", SESSION_DRAIN_S);
		_exit(0);
	}
	workers_stop();
	workers_exit();
	pipeline_unref(server.pipeline);
	server.pipeline = NULL;
	free(conn);
	log_info("event=stopped");
	return 0;
}
