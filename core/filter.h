/*
 * filter.h - the filter pipeline: one ordered list of filters (C plugins,
 * Lua scripts, later milters) called at every stage (design.md sections 2
 * and 3; stages and verdicts are those of plugins/sluice_plugin.h).
 *
 * The caller of a stage describes what the filters may see in a struct
 * filter_subject (a session, a transaction, a message) and calls
 * stage_run(). The filters registered for that stage run in pipeline
 * order; each call finishes at once or later from the loop; the first
 * decisive verdict (anything but continue) ends the chain. The caller's
 * done() gets the verdict, possibly before stage_run() returns.
 * A filter that fails (error, timeout, broken reply) gets its entry's
 * on_error verdict and a log line with the filter's name and the queue ID.
 *
 * A pipeline is built once from the configuration (and again on reload),
 * with one instance of every filter per worker loop; sessions hold a
 * reference to the pipeline they started with.
 * Threads: stage_run() and everything it calls run on the subject's worker
 * loop; building and releasing pipelines happens on the main thread.
 */
#ifndef SLUICE_FILTER_H
#define SLUICE_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "sluice_plugin.h"
#include "tags.h"

struct conf_filter;

/*
 * STAGE_UNKNOWN_CMD - an SMTP command sluiced does not know, offered to
 * the filters that take it (milters, as their UNKNOWN event) before the
 * 500 reply; a refusal replaces that reply. Not a plugin stage: no
 * configuration can name it (stage_parse), only milters serve it.
 */
#define STAGE_UNKNOWN_CMD	((enum sluice_stage)SLUICE_NSTAGES)
struct config;
struct envelope;
struct event;
struct event_base;
struct message;
struct mail_params;
struct rcpt_params;
struct mime_tree;
struct worker;
struct pipeline;
struct filter;

#define VERDICT_TEXT_LEN	512

struct verdict {
	enum sluice_verdict kind;
	int code;			/* 0: the stage's default */
	char enhanced[16];		/* "" : the stage's default */
	char text[VERDICT_TEXT_LEN];	/* "" : the stage's default */
	const char *filter;		/* name of the deciding filter */
	/*
	 * reply - a whole SMTP reply of several lines ("550-5.7.1 a\r\n550
	 * 5.7.1 b", no final CRLF) that replaces code/enhanced/text when its
	 * class fits the verdict (milters); valid until done() returns
	 */
	const char *reply;
};


/* What a stage's filters see; filled and owned by the caller. */
struct filter_subject {
	struct worker *worker;
	uint64_t session_id;
	const char *listener;
	const char *daemon_addr;	/* the listener's address and port */
	unsigned daemon_port;
	const char *client_addr;
	unsigned client_port;
	const char *client_rdns;	/* NULL until known */
	const char *helo;
	const char *tls_version, *tls_cipher, *auth_user;
	unsigned tls_bits;		/* the cipher's strength, 0 = no TLS */
	const char *auth_mech;		/* "PLAIN", "LOGIN" */
	/* auth stage only: the attempt being decided */
	const char *auth_login, *auth_password;
	const char *auth_result;	/* users_file: ok, bad, unknown */
	struct envelope *env;		/* from MAIL on */
	const struct mail_params *mp;
	const char *rcpt;		/* rcpt stage: the candidate */
	const struct rcpt_params *rp;
	/* rcpt stage, only for filters that see refused recipients: the
	   reply that refused rcpt ("550 5.1.1 <a@b>: ..."), else NULL */
	const char *rcpt_refusal;
	/* STAGE_UNKNOWN_CMD: the unrecognised command line */
	const char *unknown_cmd;
	/*
	 * message and queue stages: the message, read on first use through
	 * subject_msg() (msg_load fills msg); msg_size is known at once
	 */
	struct message *msg;
	int (*msg_load)(struct filter_subject *);
	void *msg_owner;
	size_t msg_size;
	struct mime_tree *mime;		/* parsed on demand, owned here */
	struct tags *session_tags;
	struct tags *tx_tags;
	int modifiable;			/* message stage: changes allowed */
	/* delivery stages: the outcome for rcpt (delivered, deferred,
	   bounced), NULLs at deliver */
	const char *dl_result;		/* "delivered", "deferred", "bounced" */
	const char *dl_reason;		/* "5.1.1 host ... said: ..." */
	const char *dl_remote;		/* the server that answered */
	const char *dl_reply;		/* its reply */
	unsigned dl_attempts;		/* attempts so far, this one included */
	/* per-session state of filters that keep one (milter connections),
	   one slot per pipeline filter, allocated on first use */
	void **fstate;
};

/* One hook call (the plugin API's struct sluice_call). */
struct sluice_call {
	struct stage_run *run;
	struct filter *filter;
	void *inst;			/* the filter's per-worker instance */
	enum sluice_stage stage;
	struct filter_subject *subj;
	struct verdict verdict;
	int state;			/* CALL_RUNNING, CALL_SUSPENDED, ... */
	int resumed_early;		/* resume() came before SUSPENDED */
	struct event *timer;
	uint64_t started_us;
	void *data;			/* the filter kind's per-call state */
	char *strings[8];		/* host-returned strings, freed at end */
	unsigned nstrings;
	int refs;			/* the run, plus async work in flight */
};

/* A kind of filter (plugin, lua, milter). */
struct filter_ops {
	const char *kind;
	/* load - once per pipeline build (main thread) */
	int (*load)(struct filter *, char *err, size_t errlen);
	void *(*attach)(struct filter *, struct worker *, char *err,
	    size_t errlen);
	void (*detach)(struct filter *, void *inst);
	void (*unload)(struct filter *);
	/* call - start; finish with call_finish() now or later */
	void (*call)(struct sluice_call *);
	/* abort - the call is abandoned (timeout); release its work */
	void (*abort)(struct sluice_call *);
	/* per-session state (call_state()): the transaction ended (RSET,
	   message committed or refused), and the session ended */
	void (*tx_end)(struct filter *, void *state);
	void (*session_end)(struct filter *, void *state);
	/* also called at rcpt for a recipient refused before it (by the
	   server's checks or an earlier filter; subj->rcpt_refusal is set),
	   its verdict ignored: milters that negotiated SMFIP_RCPT_REJ */
	int sees_refused_rcpts;
};

struct filter {
	char *name;
	const struct filter_ops *ops;
	const struct conf_filter *conf;
	unsigned stages;		/* SLUICE_STAGE() bits it serves */
	enum sluice_verdict on_error;
	unsigned timeout_s;
	void *data;			/* kind-specific (plugin, script) */
};

struct pipeline {
	struct filter *filters;
	size_t n;
	unsigned stages;		/* union of the filters' stages */
	unsigned nworkers;
	void **inst;			/* [worker][filter] */
	int refs;			/* atomic */
};

typedef void (*stage_done_fn)(void *arg, const struct verdict *);

/* pipeline_build - NULL with a message naming the filter on failure */
struct pipeline *pipeline_build(const struct config *, unsigned nworkers,
	    char *err, size_t errlen);
struct pipeline *pipeline_ref(struct pipeline *);
void	pipeline_unref(struct pipeline *);
int	pipeline_has(const struct pipeline *, enum sluice_stage);
/* pipeline_attach - per-worker instances; main thread, before serving */
int	pipeline_attach(struct pipeline *, struct worker *, unsigned idx,
	    char *err, size_t errlen);

/*
 * stage_run - run a stage's chain; done() gets the verdict, maybe before
 * stage_run() returns. *handle (if given) points at the run while it is
 * suspended and is set to NULL when it ends: what stage_cancel() needs.
 */
void	stage_run(struct pipeline *, enum sluice_stage,
	    struct filter_subject *, stage_done_fn, void *arg,
	    struct stage_run **handle);
void	stage_cancel(struct stage_run *);
/*
 * stage_run_refused_rcpt - the server itself refused subj->rcpt with
 * reply: the filters that see refused recipients are told (in order, each
 * verdict ignored), then done() gets continue. A refusal by a filter at
 * the rcpt stage is told to the later ones of them by stage_run itself.
 */
void	stage_run_refused_rcpt(struct pipeline *, struct filter_subject *,
	    const char *reply, stage_done_fn, void *arg,
	    struct stage_run **handle);
int	pipeline_sees_refused_rcpts(const struct pipeline *);

/* for filter kinds: the call is over (verdict already set) */
void	call_finish(struct sluice_call *);
int	call_active(const struct sluice_call *);	/* not finished/aborted */
/* call_hold/call_release - keep the call's memory for a late callback */
void	call_hold(struct sluice_call *);
void	call_release(struct sluice_call *);
/* call_fail - the call broke: log why, apply on_error, finish */
void	call_fail(struct sluice_call *, const char *why);
/* call_fail_with - the same with another action (kv.redis.on_error) */
void	call_fail_with(struct sluice_call *, enum sluice_verdict action,
	    const char *why);
void	call_set_verdict(struct sluice_call *, enum sluice_verdict, int code,
	    const char *enhanced, const char *text);
const char *call_keep(struct sluice_call *, char *);	/* freed at end */
/* call_state - the filter's slot of per-session state in the subject */
void	**call_state(struct sluice_call *);
/* the subject's transaction or session ended: tell the filters keeping
   state (the caller's pipeline; no-op without state) */
void	pipeline_tx_end(struct pipeline *, struct filter_subject *);
void	pipeline_session_end(struct pipeline *, struct filter_subject *);
/* verdict_multiline - 1 when v->reply is to be sent instead */
int	verdict_multiline(const struct verdict *);

const char *stage_name(enum sluice_stage);
int	stage_parse(const char *, enum sluice_stage *);
const char *verdict_name(enum sluice_verdict);
int	verdict_parse(const char *, enum sluice_verdict *);

/*
 * verdict_reply - the SMTP reply for a decisive verdict at a stage:
 * "550 5.7.1 text"; the filter's code/enhanced/text when they fit the
 * verdict's class, the stage's defaults otherwise.
 */
void	verdict_reply(const struct verdict *, enum sluice_stage, char *buf,
	    size_t len);

/* filter_trace - when set, told of every finished call (the replay tool) */
typedef void (*filter_trace_fn)(const struct sluice_call *, uint64_t us);
extern filter_trace_fn filter_trace;

/* the host function table given to C plugins (filter_host.c) */
extern const struct sluice_host filter_host;
const char *subject_get(struct filter_subject *, enum sluice_stage,
	    const char *key, char *buf, size_t len);
/* subject_msg - the message, loaded now if need be; NULL if none/failed */
struct message *subject_msg(struct filter_subject *);

#endif
