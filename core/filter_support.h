/*
 * filter_support.h - what the C plugin host and the Lua host share beyond
 * filter.h: envelope changes, header decoding, DNS and the key/value
 * store for a call.
 */
#ifndef SLUICE_FILTER_SUPPORT_H
#define SLUICE_FILTER_SUPPORT_H

#include "sluice_plugin.h"

struct envelope;

/* envelope changes (message stage): 0, or -1 for a bad address */
int	filter_env_sender(struct envelope *, const char *addr);
int	filter_env_rcpt_add(struct envelope *, const char *addr);
/* with DSN parameters: orcpt "type;xtext" or NULL, notify bits */
int	filter_env_rcpt_add_params(struct envelope *, const char *addr,
	    const char *orcpt, unsigned notify);
int	filter_env_rcpt_delete(struct envelope *, const char *addr);

/* filter_decode_header - RFC 2047 decoded UTF-8, malloc'ed */
char	*filter_decode_header(const char *raw);

/* filter_dns_query - the plugin API's dns_query (filter_dns.c) */
int	filter_dns_query(struct sluice_call *, const char *name,
	    const char *type, sluice_dns_cb, void *arg);

/* filter_kv.c: the plugin API's kv_* on the configured store, and the
   fact kv.on_error (NULL with the memory store) */
int	filter_kv_get(struct sluice_call *, const char *key, sluice_kv_cb,
	    void *arg);
int	filter_kv_set(struct sluice_call *, const char *key, const char *value,
	    unsigned ttl, sluice_kv_cb, void *arg);
int	filter_kv_incr(struct sluice_call *, const char *key, long long delta,
	    unsigned ttl, sluice_kv_cb, void *arg);
const char *filter_kv_on_error(struct sluice_call *);

#endif
