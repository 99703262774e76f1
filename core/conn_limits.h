/*
 * conn_limits.h - concurrent session counts, in total and per client IP
 *
 * conn_limits_acquire() is called for every accepted connection, from any
 * worker thread; every successful acquire is paired with one release when
 * the session ends. Thread-safe (one mutex; accepts are rare next to I/O).
 */
#ifndef SLUICE_CONN_LIMITS_H
#define SLUICE_CONN_LIMITS_H

#include <sys/socket.h>

enum conn_verdict { CONN_OK, CONN_TOO_MANY, CONN_TOO_MANY_FROM_IP };

void	conn_limits_init(unsigned max_total, unsigned max_per_ip);
enum conn_verdict conn_limits_acquire(const struct sockaddr *);
void	conn_limits_release(const struct sockaddr *);
/* conn_limits_acquire_proxy - a load balancer's connection: the total
   only; conn_limits_move() then counts it for the real client (per-IP
   limit checked) once the PROXY header has named it */
enum conn_verdict conn_limits_acquire_proxy(const struct sockaddr *);
enum conn_verdict conn_limits_move(const struct sockaddr *from,
	    const struct sockaddr *to);
unsigned conn_limits_total(void);

#endif
