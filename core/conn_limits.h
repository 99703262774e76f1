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
unsigned conn_limits_total(void);

#endif
