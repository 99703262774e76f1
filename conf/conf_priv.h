/*
 * conf_priv.h - what the files of the configuration loader share
 *
 * API: struct conf_loader (the state of one conf_load() call), struct
 * conf_key (one row of a schema table: key name, setter, where to store the
 * value, its range or sub-table), the generic setters and error helpers of
 * conf.c, the top-level table of conf_schema.c, the mailbox users check of
 * conf_users.c, the routing keys of conf_routes.c, the delivery, bounce,
 * control and retry tables of conf_delivery.c, the outbound TLS keys of
 * conf_tls_client.c and the small validators of conf_types.c.
 * Errors: functions returning int give 0 or -1; on -1 the error text is
 * already in ld->err as "FILE:LINE:COL: what".
 * Ownership: everything allocated goes straight into ld->cf, so that
 * conf_free() releases a half-built config.
 * Private to conf/.
 */
#ifndef SLUICE_CONF_PRIV_H
#define SLUICE_CONF_PRIV_H

#include <stddef.h>

#include "conf.h"
#include "conf_yaml.h"

struct conf_key;

struct conf_loader {
	const char		*path;		/* as given to conf_load() */
	char			*err;
	size_t			 errlen;
	struct config		*cf;
	const struct ynode	*root;
	const char		*section;	/* mapping being walked, or NULL */
	char			*cwd;		/* for relative paths */
	const struct ynode	*users;		/* mailboxes.users, or NULL */
	const struct ynode	*users_file;	/* mailboxes.users_file value */
	const struct ynode	*postmaster;	/* mailboxes.postmaster value */
	const struct ynode	*relay;		/* domains.relay list, or NULL */
	const struct ynode	*routes;	/* routes: mapping, or NULL */
	const struct ynode	*local_route;	/* mailboxes.delivery value */
	char			 qname[320];	/* "section.key" for messages */
};

typedef int (*conf_setter)(struct conf_loader *, const struct conf_key *,
    const struct ynode *key, const struct ynode *val, void *obj);

struct conf_key {
	const char		*name;
	conf_setter		 set;
	size_t			 off;	/* of the field in obj */
	unsigned long long	 min;	/* integers, durations */
	unsigned long long	 max;
	const struct conf_key	*sub;	/* conf_set_section: the sub-table */
};

/* conf.c: errors and helpers */
int		 conf_error(struct conf_loader *, const struct ynode *,
		    const char *, ...)
		    __attribute__((format(printf, 3, 4)));
int		 conf_error_at(struct conf_loader *, const char *,
		    unsigned long, unsigned long, const char *, ...)
		    __attribute__((format(printf, 5, 6)));
const char	*conf_quote(const char *, char *, size_t);
const char	*conf_qname(struct conf_loader *, const struct conf_key *);
int		 conf_expect(struct conf_loader *, const struct ynode *,
		    enum ynode_type, const char *);
/* conf_each_pair - map must be a mapping (named what in errors); fn for
   each key/value pair in order, stopping at the first -1 */
typedef int	(*conf_pair_fn)(struct conf_loader *, const struct ynode *map,
		    const struct ynode *key, const struct ynode *val);
int		 conf_each_pair(struct conf_loader *, const struct ynode *map,
		    const char *what, conf_pair_fn);
const char	*conf_scalar(struct conf_loader *, const struct conf_key *,
		    const struct ynode *);
char		*conf_strdup(struct conf_loader *, const struct ynode *,
		    const char *);
char		*conf_abspath(struct conf_loader *, const struct ynode *,
		    const char *);
void		*conf_push(struct conf_loader *, const struct ynode *,
		    void *, size_t *, size_t);
int		 conf_word(struct conf_loader *, const struct conf_key *,
		    const struct ynode *, const char *const *, size_t *);
int		 conf_walk(struct conf_loader *, const struct ynode *,
		    const char *, const struct conf_key *, void *);

/* conf.c: generic setters for conf_key tables */
int	conf_set_string(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_set_path(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_set_uint(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_set_uint16(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_set_duration(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_set_msec(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_set_size(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_set_bool(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_set_section(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_set_unsupported(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);

/* conf_schema.c */
extern const struct conf_key conf_top_keys[];
int	conf_schema_finish(struct conf_loader *);

/* conf_pipeline.c */
int	conf_set_pipeline(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
void	conf_pipeline_free(struct config *);

/* conf_milter.c: the keys only `milter:` entries have */
extern const struct conf_key conf_milter_timeout_keys[];
int	conf_milter_set_default_action(struct conf_loader *,
	    const struct conf_key *, const struct ynode *, const struct ynode *,
	    void *);
int	conf_milter_set_macros(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_milter_set_protocol(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
struct conf_filter;
void	conf_milter_defaults(struct conf_filter *);
void	conf_milter_free(struct conf_filter *);

/* conf_pipeline.c: a verdict name (on_error) */
int	conf_set_verdict(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);

/* conf_kv.c: kv: {backend, redis: {...}} */
int	conf_set_kv(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
void	conf_kv_defaults(struct config *);
void	conf_kv_free(struct config *);

/* conf_tls_auth.c: listeners' tls: and auth:, the top-level auth: */
extern const struct conf_key conf_listener_tls_keys[];
extern const struct conf_key conf_auth_keys[];
int	conf_set_listener_auth(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_check_listener_tls(struct conf_loader *, const struct ynode *,
	    struct conf_listener *);
void	conf_auth_defaults(struct config *);
void	conf_tls_auth_free(struct config *);

/* conf_users.c */
int	conf_users_finish(struct conf_loader *);

/* conf_routes.c: routes:, transports:, mailboxes.delivery */
int	conf_set_routes(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_set_transports(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_set_local_route(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_routes_finish(struct conf_loader *);
void	conf_routes_free(struct config *);

/* conf_delivery.c: delivery:, bounce:, control:, retry: (with domains:) */
extern const struct conf_key conf_retry_keys[];
extern const struct conf_key conf_bounce_keys[];
extern const struct conf_key conf_control_keys[];
int	conf_set_delivery(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_delivery_finish(struct conf_loader *);
void	conf_delivery_free(struct config *);

/* conf_tls_client.c: delivery.tls, delivery.tls_ca_file, delivery.tls_policy */
int	conf_set_tls(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_set_tls_ca_file(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
int	conf_set_tls_policy(struct conf_loader *, const struct conf_key *,
	    const struct ynode *, const struct ynode *, void *);
void	conf_tls_free(struct conf_delivery *);

/* conf_types.c */
int	 conf_parse_uint(const char *, unsigned long long,
	    unsigned long long *);
int	 conf_valid_domain(const char *);
/* conf_domain_match - 0: pat does not match domain; else the higher, the
   closer ("example.org" exact, ".example.org" its subdomains) */
size_t	 conf_domain_match(const char *pat, const char *domain);
int	 conf_valid_local_part(const char *, size_t);
char	*conf_lower(char *);

#endif
