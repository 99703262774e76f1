/*
 * route.h - choosing the route of each recipient of a queued message
 *
 * In this order: a filter's tag "route:<recipient>" or "route" (a route
 * spec or a transports: name), then routes: (exact domain, ".parent",
 * "*" for non-local domains), then the local delivery (mailboxes.delivery)
 * for local domains, and finally SMTP to the domain's MX hosts. Address
 * literals go to that address. Pure apart from reading the configuration.
 */
#ifndef SLUICE_ROUTE_H
#define SLUICE_ROUTE_H

#include <stddef.h>

#include "route_spec.h"
#include "transport.h"

struct config;
struct envelope;
struct mailbox_table;

/*
 * route_for - spec and the recipient's domain (lower case) for recipient
 * i; -1 when there is no usable route, with the result to record in *res
 */
int	route_for(const struct config *, const struct mailbox_table *,
	    const struct envelope *, size_t i, struct route_spec *,
	    char *domain, size_t dlen, struct rcpt_result *res);

#endif
