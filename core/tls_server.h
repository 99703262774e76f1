/*
 * tls_server.h - the server side of TLS: one OpenSSL context per listener
 * that has tls.mode other than none, built at start and again at reload.
 *
 * API: tls_server_init() at start (an unreadable certificate or a key that
 * does not match it is fatal there), tls_server_prepare()/commit() at
 * SIGHUP (prepare builds new contexts from the new configuration without
 * touching the old ones; commit switches to them), tls_server_ssl() for a
 * session's handshake, tls_server_free() at exit.
 * Settings: TLS 1.2 and 1.3 only, OpenSSL's default cipher lists (Debian's
 * security level 2), the server's cipher order, no renegotiation, no
 * compression, a session cache per listener.
 * Threads: tls_server_ssl() may be called from any worker; the swap at
 * reload is under a mutex, and an SSL keeps a reference to its context,
 * so sessions that began with the old certificate finish with it.
 */
#ifndef SLUICE_TLS_SERVER_H
#define SLUICE_TLS_SERVER_H

#include <stddef.h>

struct config;
struct tls_server_set;
typedef struct ssl_st SSL;

/* 0, or -1 with err filled (names the listener and the file) */
int	tls_server_init(const struct config *, char *err, size_t errlen);
/* tls_server_check - load every listener's certificate and key (-t) */
int	tls_server_check(const struct config *, char *err, size_t errlen);
/*
 * tls_server_prepare - contexts from nc for the listeners bound at start
 * (matched by name: listeners themselves change only with a restart);
 * NULL with err on failure.
 */
struct tls_server_set *tls_server_prepare(const struct config *nc,
	    char *err, size_t errlen);
void	tls_server_commit(struct tls_server_set *);
void	tls_server_discard(struct tls_server_set *);
/* a new SSL for a session on start-time listener `index`, or NULL */
SSL	*tls_server_ssl(size_t index);
void	tls_server_free(void);

#endif
