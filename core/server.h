/*
 * server.h - the process-wide context of a running sluiced
 *
 * One instance, `server`, set up by main() before any thread starts and
 * read-only afterwards except for the fields marked atomic. Every module
 * reaches the configuration, the pools and the queue manager through it.
 */
#ifndef SLUICE_SERVER_H
#define SLUICE_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct auth_users;
struct config;
struct conf_listener;
struct iopool;
struct loop;
struct mailbox_table;
struct smtp_session;
struct dns_resolver;
struct kv_redis;
struct pipeline;

struct listen_socket {
	int fd;
	const struct conf_listener *conf;
};

struct worker {
	unsigned idx;
	struct loop *loop;
	struct event **accept_ev;	/* one per listen socket */
	struct event *accept_pause;	/* re-enables accept after EMFILE */
	char *linebuf;			/* one command line, max length + 1 */
	size_t linecap;
	struct smtp_session *sessions;	/* all sessions of this worker */
	unsigned nsessions;
	int stopping;
	struct dns_resolver *dns;	/* this loop's resolver */
	struct kv_redis *kv;		/* kv.backend redis, else NULL */
};

struct server {
	struct config *conf;
	struct mailbox_table *mailboxes;
	struct iopool *commit_pool;	/* queue commits: fsync + rename */
	struct iopool *delivery_pool;	/* local deliveries */
	struct iopool *auth_pool;	/* AUTH password hash checks */
	struct auth_users *auth_users;	/* auth.users_file, or NULL; reload
					   swaps it (old ones kept) */
	struct loop *qmgr;		/* the queue manager's loop */
	struct worker qmgr_worker;	/* its filter instances (index
					   nworkers in the pipeline) */
	struct pipeline *pipeline;	/* current filters (reload swaps) */
	struct worker *workers;
	unsigned nworkers;
	struct listen_socket *listeners;
	unsigned nlisteners;
	atomic_uint_fast64_t next_session_id;
	atomic_int stopping;
};

extern struct server server;

/* reload.c */
int	server_reload(void);		/* SIGHUP; main thread */
void	reload_free(void);
struct pipeline *pipeline_current(void);	/* referenced; any thread */

/* shutdown.c */
void	server_stop(void);		/* SIGTERM; main thread */

/* worker.c */
void	workers_start(void);
void	workers_stop(void);		/* stop accepting, close sessions */
void	workers_drain(unsigned seconds);
void	workers_exit(void);

#endif
