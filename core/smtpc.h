/*
 * smtpc.h - one outbound SMTP or LMTP connection (the client side)
 *
 * smtpc_new() connects to the first address of the list that answers and
 * greets (EHLO, or HELO when EHLO is refused; LHLO for LMTP), switches to
 * TLS as the next hop's TLS policy says (delivery.tls, delivery.tls_policy;
 * smtpc_tls.c), and then tells its next hop it is ready (dest_conn_ready). smtpc_start() runs one
 * transaction for a job: MAIL, RCPT per recipient and DATA, pipelined when
 * the server offers PIPELINING, with SIZE, BODY, SMTPUTF8 and the DSN
 * parameters as the server supports them; the body is dot-stuffed on the
 * way out. Every recipient gets its own result; the job's done() runs when
 * all are known, then the connection is ready again. Every reply is parsed
 * strictly (smtp_reply.h): a broken reply, a timeout or a lost connection
 * is a temporary failure of what was in progress, never more.
 * Threads: the queue manager's loop.
 */
#ifndef SLUICE_SMTPC_H
#define SLUICE_SMTPC_H

#include <stddef.h>

struct dest;
struct djob;
struct mx_addrs;
struct event_base;

/* smtpc_global_init - the TLS client contexts (smtpc_tls.c); -1 when
   delivery.tls_ca_file (or the system store) cannot be loaded */
int	smtpc_global_init(char *err, size_t errlen);
void	smtpc_global_free(void);

struct smtpc *smtpc_new(struct event_base *, struct dest *,
	    struct mx_addrs *, int lmtp);
void	smtpc_start(struct smtpc *, struct djob *);	/* must be ready */
/* smtpc_idle - keep an idle connection for reuse this long, then QUIT */
void	smtpc_idle(struct smtpc *, unsigned seconds);
/* smtpc_close - QUIT if idle, else abort what runs (temporary failure);
   dest_conn_gone() follows, maybe before this returns */
void	smtpc_close(struct smtpc *);
/* smtpc_abort - close now; a running job fails temporarily */
void	smtpc_abort(struct smtpc *);
unsigned smtpc_transactions(const struct smtpc *);	/* done so far */
/* smtpc_usable - ready for a transaction (idle, not saying QUIT) */
int	smtpc_usable(const struct smtpc *);

#endif
