/*
 * main.c - sluiced: load the configuration, bind, recover the queue, start
 * the queue manager and the SMTP workers, then wait for signals.
 *
 *   sluiced [-d] [-c FILE]     run in the foreground
 *   sluiced -t [-c FILE]       check the configuration and exit
 *   sluiced --milter SOCKET [-d] [-c FILE]
 *                              offer the pipeline as a milter instead of
 *                              serving SMTP (milter_mode.c)
 *
 * Signals are blocked in every thread and taken here with sigwait():
 * SIGTERM/SIGINT stop gracefully (shutdown.c: no new sessions, idle
 * sessions get 421, transactions get shutdown_timeout to finish, commits
 * in flight are answered, running deliveries finish); SIGHUP reloads the
 * configuration and the filters (reload.c). Under systemd (Type=notify)
 * READY=1 is sent once the listeners are bound, the queue recovered and
 * the workers run; RELOADING=1 and READY=1 frame a reload, STOPPING=1
 * starts the shutdown (sd_notify.c). SIGUSR1 opens the log file again
 * (log.target: file) after logrotate moved it away.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth_users.h"
#include "conf.h"
#include "conn_limits.h"
#include "dirsync.h"
#include "dns.h"
#include "filter.h"
#include "kvstore.h"
#include "mime.h"
#include "iopool.h"
#include "listen.h"
#include "log.h"
#include "loop.h"
#include "mailbox.h"
#include "metrics.h"
#include "metrics_http.h"
#include "privs.h"
#include "milter_mode.h"
#include "paths.h"
#include "pickup.h"
#include "qmgr.h"
#include "queue.h"
#include "sd_notify.h"
#include "server.h"
#include "tls_server.h"
#include "util.h"

#define COMMIT_THREADS	16
#define AUTH_THREADS	2	/* password hashes: slow on purpose */


static void
usage(void)
{
	fprintf(stderr, "usage: sluiced [-dt] [-c config]\n"
	    "       sluiced --milter socket [-d] [-c config]\n");
	exit(2);
}

/*
 * raise_fd_limit - every session holds a socket: use the hard limit on
 * open files, not the usual soft limit of 1024
 */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("event=init warning=\"cannot raise open file limit\"");
	if (rl.rlim_cur < server.conf->limits.sessions + 64ull)
		log_warnx("event=init warning=\"open file limit %llu is below "
		    "limits.sessions\"", (unsigned long long)rl.rlim_cur);
}

static void
start(void)
{
	struct config *c = server.conf;
	char err[1024];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	raise_fd_limit();
	if (listen_all(c, &server.listeners, &server.nlisteners, err,
	    sizeof(err)) == -1)
		fatalx("event=init error=%s", log_q(err));
	if (metrics_http_bind(c, err, sizeof(err)) == -1)
		fatalx("event=init error=%s", log_q(err));
	/* keys are read before privileges go (they may be root's only) */
	if (tls_server_init(c, err, sizeof(err)) == -1)
		fatalx("event=init error=%s", log_q(err));
	if (queue_open(c->spool, err, sizeof(err)) == -1 ||
	    pickup_prepare(c->spool, err, sizeof(err)) == -1)
		fatalx("event=init error=%s", log_q(err));
	privs_drop(c, 1);
	server.mailboxes = mailbox_table_new(c);
	if (c->auth.users_file != NULL && (server.auth_users =
	    auth_users_load(c->auth.users_file, err, sizeof(err))) == NULL)
		fatalx("event=init error=%s", log_q(err));
	server.auth_pool = iopool_new("auth", AUTH_THREADS);
	conn_limits_init(c->limits.sessions, c->limits.per_ip_sessions);
	server.nworkers = c->workers ? c->workers : (ncpu > 0 ? (unsigned)ncpu : 1);
	/* one filter instance per worker, and one for the queue manager */
	if ((server.pipeline = pipeline_build(c, server.nworkers + 1, err,
	    sizeof(err))) == NULL)
		fatalx("event=init error=%s", log_q(err));
	server.commit_pool = iopool_new("commit", COMMIT_THREADS);
	server.delivery_pool = iopool_new("delivery", c->delivery.local_concurrency);
	server.qmgr = loop_new("qmgr");
	qmgr_init();
	qmgr_recover();
	if (loop_start(server.qmgr) == -1)
		fatal("event=init error=\"cannot start queue manager\"");
	workers_start();
	metrics_http_start();
	pickup_start();
	for (unsigned i = 0; i < server.nlisteners; i++)
		log_info("event=listening listener=%s address=%s port=%u",
		    server.listeners[i].conf->name,
		    server.listeners[i].conf->address,
		    server.listeners[i].conf->port);
	log_info("event=ready workers=%u hostname=%s spool=%s",
	    server.nworkers, c->hostname, c->spool);
	sd_notify("READY=1\nSTATUS=accepting mail");
}

/* reload_notify - SIGHUP, framed for systemd: RELOADING=1 ... READY=1 */
static void
reload_notify(void)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)mono_msec() * 1000ull);
	sd_notify(msg);
	sd_notify(server_reload() == 0 ? "READY=1\nSTATUS=accepting mail" :
	    "READY=1\nSTATUS=accepting mail; last reload refused (see log)");
}

/* reopen_log - SIGUSR1: the log file by its path again (a rotation) */
static void
reopen_log(void)
{
	if (server.conf->log.target != LOG_TARGET_FILE) {
		log_info("event=signal signal=USR1 action=none "
		    "reason=\"no log file\"");
		return;
	}
	if (log_reopen() == -1)
		log_warn("event=log-reopen file=%s status=failed "
		    "reason=\"the old file stays\"", log_q(server.conf->log.file));
	else
		log_info("event=log-reopen file=%s status=ok",
		    log_q(server.conf->log.file));
}

static void
wait_for_signals(void)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload_notify();
			continue;
		}
		if (sig == SIGUSR1) {
			reopen_log();
			continue;
		}
		log_info("event=signal signal=%s", sig == SIGTERM ? "TERM" : "INT");
		return;
	}
}

static void
init_log(int debug)
{
	const struct conf_log *l = &server.conf->log;

	switch (l->target) {
	case LOG_TARGET_FILE:
		if (log_init(LOG_SINK_FILE, l->file, debug) == -1)
			fatal("event=init error=\"cannot open the log file\" "
			    "file=%s", log_q(l->file));
		break;
	case LOG_TARGET_SYSLOG:
		if (log_init(LOG_SINK_SYSLOG, l->facility, debug) == -1)
			fatalx("event=init error=\"bad syslog facility\"");
		break;
	default:
		log_init(LOG_SINK_STDERR, NULL, debug);
	}
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "milter", required_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = SLUICE_CONF_PATH, *milter = NULL;
	char err[CONF_ERR_LEN];
	int ch, check = 0, debug = 0, rv = 0;
	sigset_t set;

	while ((ch = getopt_long(argc, argv, "c:dth", longopts, NULL)) != -1) {
		switch (ch) {
		case 'M':
			milter = optarg;
			break;
		case 'c':
			path = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 't':
			check = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (milter != NULL && (check || *milter == '\0')))
		usage();
	if ((server.conf = conf_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "sluiced: %s\n", err);
		return 1;
	}
	if (privs_filters_check(server.conf, err, sizeof(err)) == -1) {
		/* -t checks the file, whoever runs it: a warning there */
		fprintf(stderr, "sluiced: %s%s: %s\n", check ? "warning: " :
		    "", path, err);
		if (!check) {
			conf_free(server.conf);
			return 1;
		}
	}
	if (check) {
		struct pipeline *p;
		if (server.conf->nfilters > 0)	/* plugins run code at load */
			privs_drop(server.conf, 0);
		mime_global_init();
		if (tls_server_check(server.conf, err, sizeof(err)) == -1 ||
		    auth_users_check(server.conf, err, sizeof(err)) == -1 ||
		    (p = pipeline_build(server.conf, 1, err, sizeof(err))) == NULL) {
			fprintf(stderr, "sluiced: %s\n", err);
			return 1;
		}
		pipeline_unref(p);
		mime_global_shutdown();
		printf("sluiced: %s: configuration ok\n", path);
		conf_free(server.conf);
		return 0;
	}
	init_log(debug || server.conf->log.debug);
	sd_notify_init();
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);	/* inherited by threads */
	loop_global_init();
	if (dns_global_init() == -1)
		fatalx("event=init error=\"c-ares does not start\"");
	mime_global_init();
	kv_init();
	metrics_init();
	if (milter != NULL) {
		privs_drop(server.conf, 0);
		rv = milter_mode_run(milter);
	} else {
		start();
		wait_for_signals();
		server_stop();
	}
	kv_shutdown();
	mime_global_shutdown();
	dns_global_cleanup();
	conf_free(server.conf);
	return rv;
}
