/*
 * sluice_plugin.h - the C plugin API of sluice, ABI version 1
 *
 * A plugin is a shared object exporting one descriptor,
 *
 *	const struct sluice_plugin sluice_plugin = {
 *		.abi = SLUICE_PLUGIN_ABI, .name = "example",
 *		.stages = SLUICE_STAGE(SLUICE_ON_RCPT), .init = ..., .hook = ...,
 *	};
 *
 * sluiced dlopen()s it at start, refuses it when .abi differs from its own
 * SLUICE_PLUGIN_ABI, calls init() once with the entry's `args:` and the
 * table of host functions, then hook() for every stage in .stages, from
 * any worker thread (a plugin's context must be thread-safe), and fini()
 * at exit or after a reload replaced it.
 *
 * A hook either decides at once (set a verdict with host->verdict(), or
 * none for "continue", and return SLUICE_DONE) or starts asynchronous work
 * on the call's event loop (host->dns_query(), host->kv_*(), its own
 * events on host->event_base()) and returns SLUICE_SUSPENDED; it then calls
 * host->resume() exactly once, from that loop, when it has decided. DNS
 * callbacks always run later, from the loop; KV callbacks may run before
 * kv_*() returns (the in-memory store answers at once; the Redis store,
 * kv.backend: redis, answers later, with ok = 0 on an outage or a
 * timeout). resume() may come
 * before the hook has returned SLUICE_SUSPENDED: that is fine. A call that
 * takes longer than the entry's `timeout:` is abandoned: cancel() is
 * called (no callback for it runs afterwards), and the entry's on_error
 * action applies.
 *
 * Strings passed in are valid only during the call that passed them;
 * strings returned by host functions are valid until the call ends (hook
 * returned SLUICE_DONE, or resume()).
 *
 * See plugins/README.md for a walk-through and the plugins in this
 * directory for complete examples.
 */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stddef.h>

#define SLUICE_PLUGIN_ABI	1
#define SLUICE_PLUGIN_SYMBOL	"sluice_plugin"

enum sluice_stage {
	SLUICE_ON_CONNECT,	/* after accept, before the banner */
	SLUICE_ON_HELO,		/* HELO / EHLO */
	SLUICE_ON_AUTH,		/* AUTH exchange */
	SLUICE_ON_MAIL,		/* MAIL FROM */
	SLUICE_ON_RCPT,		/* each RCPT TO */
	SLUICE_ON_DATA,		/* DATA / first BDAT */
	SLUICE_ON_MESSAGE,	/* whole message received */
	SLUICE_ON_QUEUE,	/* accepted, before the queue commit */
	SLUICE_ON_DELIVER,	/* before each delivery attempt */
	SLUICE_ON_DELIVERED,	/* after an attempt: delivered */
	SLUICE_ON_DEFERRED,	/* after an attempt: will retry */
	SLUICE_ON_BOUNCED,	/* after an attempt: failed for good */
	SLUICE_ON_DISCONNECT,	/* session end; verdicts are ignored */
	SLUICE_NSTAGES
};

#define SLUICE_STAGE(s)		(1u << (s))

enum sluice_verdict {
	SLUICE_CONTINUE,	/* no decision: next filter */
	SLUICE_ACCEPT,		/* this stage is decided: skip the rest */
	SLUICE_REJECT,		/* 5xx */
	SLUICE_TEMPFAIL,	/* 4xx */
	SLUICE_DISCARD,		/* say 250, deliver nothing */
	SLUICE_QUARANTINE,	/* say 250, hold in quarantine */
	SLUICE_DISCONNECT	/* 421 and close */
};

enum sluice_status {
	SLUICE_DONE,		/* decided (verdict set, or continue) */
	SLUICE_SUSPENDED	/* host->resume() will follow */
};

enum sluice_scope {
	SLUICE_SESSION,		/* kept for the whole connection */
	SLUICE_TRANSACTION	/* cleared at RSET and after each message */
};

enum sluice_log_level { SLUICE_LOG_DEBUG, SLUICE_LOG_INFO, SLUICE_LOG_WARN };

/* The entry's `args:` as a read-only tree (numbers and booleans as text). */
enum sluice_value_type { SLUICE_NULL, SLUICE_STRING, SLUICE_LIST, SLUICE_MAP };

struct sluice_value {
	enum sluice_value_type type;
	const char *string;			/* SLUICE_STRING */
	size_t n;				/* LIST, MAP: items */
	const struct sluice_value *items;	/* LIST, MAP: values */
	const char *const *keys;		/* MAP: keys, same order */
};

enum sluice_dns_status {
	SLUICE_DNS_OK,
	SLUICE_DNS_NXDOMAIN,
	SLUICE_DNS_NODATA,
	SLUICE_DNS_TEMPFAIL	/* timeout, SERVFAIL, network trouble */
};

struct sluice_dns_answer {
	enum sluice_dns_status status;
	size_t n;
	const char *const *values;	/* address, name, or TXT text */
	const unsigned *prefs;		/* MX preference, else 0 */
};

struct sluice_call;		/* one hook call, opaque */
struct event_base;		/* libevent */

typedef void (*sluice_dns_cb)(struct sluice_call *,
    const struct sluice_dns_answer *, void *arg);
typedef void (*sluice_kv_cb)(struct sluice_call *, int ok,
    const char *value, long long number, void *arg);

/*
 * Facts, by key, through host->get(); NULL when not known (yet):
 *   stage             "connect", "rcpt", ...
 *   session.id        hex id of the SMTP session
 *   listener          the listener's name
 *   client.addr       client IP address          client.port
 *   client.rdns       the client's name (hosts file, else PTR), or "unknown"
 *   helo              HELO/EHLO argument
 *   tls.version       tls.cipher      tls.bits (the cipher's strength)
 *   auth.user         the authenticated user (auth stage: the one trying)
 *   auth.mechanism    "PLAIN" or "LOGIN"
 *   auth.password     auth.result   auth stage only: the password tried;
 *                     "ok", "bad" or "unknown" from auth.users_file. At
 *                     that stage SLUICE_ACCEPT lets the user in, REJECT
 *                     and TEMPFAIL refuse, CONTINUE leaves it to the file
 *   qid               queue ID (from MAIL on)
 *   sender            envelope sender, "" for <>
 *   mail.size mail.body mail.smtputf8 mail.ret mail.envid   MAIL parameters
 *   rcpt              the recipient being added (rcpt stage)
 *   rcpt.notify rcpt.orcpt                        its DSN parameters
 *   message.size      octets (message stage on)
 *   delivery.attempts attempts so far, this one included (deliver on)
 *   delivery.result   "delivered", "deferred" or "bounced"   (delivered,
 *   delivery.status   "5.1.1"                                 deferred,
 *   delivery.reason   "5.1.1 host ... said: ..." (our text)  bounced;
 *   delivery.remote   the server that answered               rcpt is the
 *   delivery.reply    its reply, "550 5.1.1 ..."             recipient)
 *   kv.on_error       the verdict name configured for a failing KV
 *                     store (kv.redis.on_error); NULL with the memory store
 *
 * The delivery stages run on the queue manager's loop, not a worker's:
 *   deliver    once per attempt, before routing. Verdicts: reject = every
 *              pending recipient fails now (DSN to the sender), tempfail =
 *              all wait for the next retry, discard = all count as
 *              delivered and are dropped, quarantine = the message moves
 *              to quarantine/. Transaction tags "route:<rcpt>" or "route"
 *              (a route or a transports: name) choose where it goes.
 *   delivered  per delivered recipient; verdicts are ignored.
 *   deferred   per deferred recipient: reject = it fails now (bounce);
 *              tag "retry_in" (seconds) sets when the next attempt comes.
 *   bounced    per failed recipient, before the DSN: discard = no DSN for
 *              it; tag "dsn_text" replaces the explanation the DSN gives.
 */
struct sluice_host {
	unsigned abi;
	const char *version;

	const char *(*get)(struct sluice_call *, const char *key);
	size_t (*rcpt_count)(struct sluice_call *);
	const char *(*rcpt_addr)(struct sluice_call *, size_t i);

	/* message and queue stages: headers (unfolded raw values) */
	size_t (*header_count)(struct sluice_call *);
	int (*header_at)(struct sluice_call *, size_t i, const char **name,
	    const char **value);
	/* header - nth (0-based) header of that name, RFC 2047 decoded */
	const char *(*header)(struct sluice_call *, const char *name,
	    size_t nth);
	/* message - the whole message as received (CRLF line ends) */
	int (*message)(struct sluice_call *, const char **data, size_t *len);

	/* tags: visible to later filters and stages */
	int (*tag_set)(struct sluice_call *, enum sluice_scope,
	    const char *key, const char *value);
	const char *(*tag_get)(struct sluice_call *, const char *key);

	/*
	 * the call's verdict; code 0 and NULLs pick the stage's defaults.
	 * discard and quarantine concern a message: before MAIL (connect,
	 * helo) they act as continue.
	 */
	void (*verdict)(struct sluice_call *, enum sluice_verdict, int code,
	    const char *enhanced, const char *text);

	/* modifications: message stage only, -1 elsewhere */
	int (*header_add)(struct sluice_call *, const char *name,
	    const char *value);
	int (*header_insert)(struct sluice_call *, size_t index,
	    const char *name, const char *value);
	/* header_change - nth header of that name; value NULL deletes it */
	int (*header_change)(struct sluice_call *, const char *name,
	    size_t nth, const char *value);
	int (*body_replace)(struct sluice_call *, const char *body,
	    size_t len);
	int (*sender_change)(struct sluice_call *, const char *addr);
	int (*rcpt_add)(struct sluice_call *, const char *addr);
	int (*rcpt_delete)(struct sluice_call *, const char *addr);

	/* asynchronous work, on the call's own event loop */
	struct event_base *(*event_base)(struct sluice_call *);
	void (*resume)(struct sluice_call *);
	int (*dns_query)(struct sluice_call *, const char *name,
	    const char *type, sluice_dns_cb, void *arg);
	/*
	 * shared key/value store with TTL (seconds; 0 = no expiry). With a
	 * callback the result is 0 and the callback reports success in ok;
	 * -1 means bad arguments (no callback will come).
	 */
	int (*kv_get)(struct sluice_call *, const char *key, sluice_kv_cb,
	    void *arg);
	int (*kv_set)(struct sluice_call *, const char *key, const char *value,
	    unsigned ttl, sluice_kv_cb, void *arg);
	int (*kv_incr)(struct sluice_call *, const char *key, long long delta,
	    unsigned ttl, sluice_kv_cb, void *arg);

	void (*log)(struct sluice_call *, enum sluice_log_level,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
};

struct sluice_plugin {
	unsigned abi;			/* SLUICE_PLUGIN_ABI */
	const char *name;
	unsigned stages;		/* SLUICE_STAGE() bits */
	/* init - 0, or -1 with a message in err; *ctx is passed to the rest */
	int (*init)(const struct sluice_host *, const struct sluice_value *args,
	    void **ctx, char *err, size_t errlen);
	void (*fini)(void *ctx);
	enum sluice_status (*hook)(void *ctx, enum sluice_stage,
	    struct sluice_call *);
	/* cancel - optional: a suspended call is abandoned; drop its work */
	void (*cancel)(void *ctx, struct sluice_call *);
};

#endif
