/*
 * route.c - the route of one recipient (route.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "envelope.h"
#include "mailbox.h"
#include "route.h"
#include "smtp_addr.h"
#include "util.h"

/* tag_route - a filter's route for this recipient: 1 found, 0 none,
   -1 unusable (res says why) */
static int
tag_route(const struct config *cf, const struct envelope *e, size_t i,
    struct route_spec *spec, struct rcpt_result *res)
{
	char key[ADDR_PATH_MAX + 16];
	const char *v, *why;
	const struct route_spec *t;

	snprintf(key, sizeof(key), "route:%s", e->rcpts[i].addr);
	if ((v = tags_get(&e->tags, key)) == NULL &&
	    (v = tags_get(&e->tags, "route")) == NULL)
		return 0;
	if ((t = conf_transport_find(cf, v)) != NULL) {
		*spec = *t;
		return 1;
	}
	if (route_spec_parse(v, spec, &why) == 0)
		return 1;
	rcpt_result_set(res, DELIVER_TEMP, "4.3.5 a filter set the route "
	    "\"%.64s\", which is neither a transport nor a route (%s)", v,
	    why);
	return -1;
}

int
route_for(const struct config *cf, const struct mailbox_table *mt,
    const struct envelope *e, size_t i, struct route_spec *spec,
    char *domain, size_t dlen, struct rcpt_result *res)
{
	char path[ADDR_PATH_MAX + 3];
	struct mailaddr a;
	const struct route_spec *r;
	const char *reply;
	int local, t;

	snprintf(path, sizeof(path), "<%s>", e->rcpts[i].addr);
	if (smtp_addr_parse_path(path, ADDR_UTF8, &a, &reply) == 0) {
		rcpt_result_set(res, DELIVER_PERM, "5.1.3 bad recipient "
		    "address syntax");
		return -1;
	}
	strlcpy_s(domain, a.domain, dlen);
	if ((t = tag_route(cf, e, i, spec, res)) != 0)
		return t == 1 ? 0 : -1;
	memset(spec, 0, sizeof(*spec));
	local = !a.literal && mailbox_domain_is_local(mt, a.domain);
	/* a "*" route (a smarthost) takes address literals too */
	if ((r = conf_route_find(cf, a.domain, local)) != NULL)
		*spec = *r;
	else if (a.literal) {
		char lit[ROUTE_HOST_LEN + 16];
		const char *why, *ip = a.domain + 1;
		if (strncasecmp(ip, "IPv6:", 5) == 0)
			ip += 5;
		snprintf(lit, sizeof(lit), "smtp:[%.*s]",
		    (int)strcspn(ip, "]"), ip);
		if (route_spec_parse(lit, spec, &why) == -1) {
			rcpt_result_set(res, DELIVER_PERM, "5.1.2 unusable "
			    "address literal %s (%s)", a.domain, why);
			return -1;
		}
	} else if (local)
		*spec = cf->local_route;
	else {
		spec->kind = ROUTE_SMTP;
		spec->mx = 1;
		spec->port = cf->delivery.port;
	}
	return 0;
}
