/*
 * listen.h - create the listen sockets of the configured listeners
 *
 * Called once at start, before privileges are dropped. Sockets are
 * non-blocking, SO_REUSEADDR, IPV6_V6ONLY for IPv6 literals, and shared
 * by every worker thread.
 */
#ifndef SLUICE_LISTEN_H
#define SLUICE_LISTEN_H

struct config;
struct listen_socket;

/* listen_all - 0, or -1 with a message naming the listener in err */
int	listen_all(const struct config *, struct listen_socket **,
	    unsigned *n, char *err, unsigned errlen);

#endif
