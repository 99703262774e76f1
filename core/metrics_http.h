/*
 * metrics_http.h - the metrics endpoint: GET /metrics over HTTP/1.1 on
 * metrics: {address, port}, served by libevent's HTTP server on a thread
 * of its own, so a slow scraper never delays mail.
 *
 * API: metrics_http_start() after the queue manager is up (the listening
 * socket is bound there, before privileges are dropped if called early
 * enough: main binds it with the listeners), metrics_http_stop() before
 * the queue manager stops. Anything but GET or HEAD /metrics is 404/405.
 */
#ifndef SLUICE_METRICS_HTTP_H
#define SLUICE_METRICS_HTTP_H

#include <stddef.h>

struct config;

/* bind the socket (nothing when metrics are off); -1 with err */
int	metrics_http_bind(const struct config *, char *err, size_t errlen);
/* serve on the bound socket, on the metrics thread */
void	metrics_http_start(void);
void	metrics_http_stop(void);

#endif
