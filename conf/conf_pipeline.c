/*
 * conf_pipeline.c - the `pipeline:` list and `plugin_dir`
 *
 *   pipeline:
 *     - {plugin: ratelimit, args: {...}, on_error: tempfail, timeout: 30s}
 *     - {lua: lua/filters/spam.lua, name: spam, budget: 1000000,
 *        memory: 16M, stages: [message], args: {...}}
 *
 * Each entry names exactly one of plugin / lua / milter; the keys only
 * milters have are in conf_milter.c. `args` is copied into a struct sluice_value
 * tree that the filter gets as written. Loading the filters themselves
 * happens at start (core/filter_build.c), where a plugin that cannot be
 * loaded is reported with this entry's FILE:LINE:COL.
 * Errors: -1 with "FILE:LINE:COL: what" in ld->err.
 */
#define _POSIX_C_SOURCE 200809L

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "conf_filter.h"
#include "conf_priv.h"

#define ARGS_MAX_DEPTH	16

static const char *const stage_names[SLUICE_NSTAGES] = {
	"connect", "helo", "auth", "mail", "rcpt", "data", "message",
	"queue", "deliver", "delivered", "deferred", "bounced", "disconnect",
};

static int
set_kind(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct conf_filter *f = obj;

	if (f->target != NULL)
		return conf_error(ld, key, "a pipeline entry names one of "
		    "'plugin', 'lua' or 'milter', not several");
	if (conf_set_string(ld, k, key, val, obj) == -1)
		return -1;
	f->kind = strcmp(k->name, "lua") == 0 ? FILTER_LUA :
	    strcmp(k->name, "milter") == 0 ? FILTER_MILTER : FILTER_PLUGIN;
	if (f->kind == FILTER_LUA ||
	    (f->kind == FILTER_PLUGIN && strchr(f->target, '/') != NULL)) {
		char *abs = conf_abspath(ld, val, f->target);
		if (abs == NULL)
			return -1;
		free(f->target);
		f->target = abs;
	}
	return 0;
}

/* conf_set_verdict - a verdict name (on_error, kv.redis.on_error) */
int
conf_set_verdict(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	static const char *const words[] = {
	    "continue", "accept", "reject", "tempfail", "discard",
	    "quarantine", NULL };
	size_t i;

	(void)key;
	if (conf_word(ld, k, val, words, &i) == -1)
		return -1;
	/* same order as the enum */
	*(enum sluice_verdict *)((char *)obj + k->off) = (enum sluice_verdict)i;
	return 0;
}

static int
set_stages(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct conf_filter *f = obj;

	(void)k;
	(void)key;
	if (conf_expect(ld, val, YNODE_SEQUENCE, "stages") == -1)
		return -1;
	for (size_t i = 0; i < val->nkids; i++) {
		const struct ynode *s = val->kids[i];
		int found = -1;
		if (s->type == YNODE_SCALAR)
			for (int j = 0; j < SLUICE_NSTAGES; j++)
				if (strcasecmp(s->value, stage_names[j]) == 0)
					found = j;
		if (found < 0)
			return conf_error(ld, s, "unknown stage in 'stages': "
			    "expected connect, helo, auth, mail, rcpt, data, "
			    "message, queue, deliver, delivered, deferred, "
			    "bounced or disconnect");
		f->stages |= SLUICE_STAGE(found);
	}
	return 0;
}

static int
set_budget(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct conf_filter *f = obj;
	unsigned long long n;
	const char *v;

	(void)key;
	if ((v = conf_scalar(ld, k, val)) == NULL)
		return -1;
	if (conf_parse_uint(v, k->max, &n) == -1 || n < k->min)
		return conf_error(ld, val, "invalid value for 'budget': "
		    "expected a number of instructions from %llu to %llu",
		    k->min, k->max);
	f->budget = n;
	return 0;
}

static void
value_free(struct sluice_value *v)
{
	if (v == NULL)
		return;
	free((char *)v->string);
	for (size_t i = 0; i < v->n; i++) {
		value_free((struct sluice_value *)&v->items[i]);
		if (v->keys != NULL)
			free((char *)v->keys[i]);
	}
	free((struct sluice_value *)v->items);
	free((char **)v->keys);
}

/* copy_value - a YAML node as a struct sluice_value (into *v) */
static int
copy_value(struct conf_loader *ld, const struct ynode *n,
    struct sluice_value *v, int depth)
{
	memset(v, 0, sizeof(*v));
	if (depth > ARGS_MAX_DEPTH)
		return conf_error(ld, n, "'args' nested too deeply");
	if (n->type == YNODE_SCALAR) {
		if (n->null)
			return 0;
		v->type = SLUICE_STRING;
		v->string = conf_strdup(ld, n, n->value);
		return v->string ? 0 : -1;
	}
	int map = n->type == YNODE_MAPPING;
	size_t count = map ? n->nkids / 2 : n->nkids;
	struct sluice_value *items = calloc(count ? count : 1, sizeof(*items));
	const char **keys = map ? calloc(count ? count : 1, sizeof(*keys)) :
	    NULL;
	if (items == NULL || (map && keys == NULL)) {
		free(items);
		free(keys);
		return conf_error(ld, n, "out of memory");
	}
	v->type = map ? SLUICE_MAP : SLUICE_LIST;
	v->items = items;
	v->keys = keys;
	for (size_t i = 0; i < count; i++) {
		const struct ynode *item = map ? n->kids[2 * i + 1] : n->kids[i];
		v->n = i + 1;
		if (map && (keys[i] = conf_strdup(ld, n->kids[2 * i],
		    n->kids[2 * i]->value)) == NULL)
			return -1;
		if (copy_value(ld, item, &items[i], depth + 1) == -1)
			return -1;
	}
	return 0;
}

static int
set_args(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct conf_filter *f = obj;

	(void)k;
	(void)key;
	value_free(f->args);
	return copy_value(ld, val, f->args, 0);
}

#define FL(x)	offsetof(struct conf_filter, x)
static const struct conf_key filter_keys[] = {
	{ "plugin",	set_kind,	   FL(target),	 0, 0,	NULL },
	{ "lua",	set_kind,	   FL(target),	 0, 0,	NULL },
	{ "milter",	set_kind,	   FL(target),	 0, 0,	NULL },
	{ "name",	conf_set_string,   FL(name),	 0, 0,	NULL },
	{ "args",	set_args,	   0,		 0, 0,	NULL },
	{ "on_error",	conf_set_verdict, FL(on_error),	 0, 0,	NULL },
	{ "timeout",	conf_set_duration, FL(timeout),	 1, 3600, NULL },
	{ "stages",	set_stages,	   0,		 0, 0,	NULL },
	{ "budget",	set_budget,	   FL(budget),	 1000,
	    1000000000000ULL, NULL },
	{ "memory",	conf_set_size,	   FL(memory),	 0, 0,	NULL },
	{ "default_action", conf_milter_set_default_action, 0, 0, 0, NULL },
	{ "timeouts",	conf_set_section,  FL(milter),	 0, 0,
	    conf_milter_timeout_keys },
	{ "macros",	conf_milter_set_macros, 0,	 0, 0,	NULL },
	{ "protocol",	conf_milter_set_protocol, 0,	 0, 0,	NULL },
	{ NULL,		NULL,		   0,		 0, 0,	NULL },
};

/*
 * default_name - "lua:spam" from lua/filters/spam.lua, "plugin:dnsbl",
 * "milter:opendkim" from unix:/run/opendkim/opendkim.sock; a TCP milter
 * keeps its whole address ("milter:inet:127.0.0.1:8891")
 */
static char *
default_name(const struct conf_filter *f)
{
	static const char *const kinds[] = { "plugin", "lua", "milter" };
	const char *base = strrchr(f->target, '/');
	char *n;
	size_t len;

	base = base ? base + 1 : f->target;
	len = base == f->target && f->kind == FILTER_MILTER ? strlen(base) :
	    strcspn(base, ".");
	if ((n = malloc(len + 8)) == NULL)
		return NULL;
	snprintf(n, len + 8, "%s:%.*s", kinds[f->kind], (int)len, base);
	return n;
}

/* key_allowed - keys that only some kinds of entry have */
static int
key_allowed(enum filter_kind kind, const char *key)
{
	static const char *const milter_only[] = {
	    "default_action", "timeouts", "macros", "protocol", NULL };
	static const char *const not_milter[] = {
	    "args", "on_error", "timeout", "stages", NULL };

	for (size_t i = 0; milter_only[i] != NULL; i++)
		if (strcmp(key, milter_only[i]) == 0)
			return kind == FILTER_MILTER;
	for (size_t i = 0; not_milter[i] != NULL; i++)
		if (strcmp(key, not_milter[i]) == 0)
			return kind != FILTER_MILTER;
	return 1;
}

static int
check_keys(struct conf_loader *ld, const struct ynode *item,
    const struct conf_filter *f)
{
	for (size_t i = 0; i + 1 < item->nkids; i += 2) {
		const struct ynode *key = item->kids[i];
		if (!key_allowed(f->kind, key->value))
			return conf_error(ld, key, "'%s' does not apply to a "
			    "%s entry%s", key->value, f->kind == FILTER_MILTER ?
			    "milter" : f->kind == FILTER_LUA ? "lua" : "plugin",
			    f->kind == FILTER_MILTER ? " (milters have "
			    "default_action and timeouts)" : "");
	}
	return 0;
}

int
conf_set_pipeline(struct conf_loader *ld, const struct conf_key *k,
    const struct ynode *key, const struct ynode *val, void *obj)
{
	struct config *cf = obj;

	(void)k;
	(void)key;
	if (conf_expect(ld, val, YNODE_SEQUENCE, "pipeline") == -1)
		return -1;
	for (size_t i = 0; i < val->nkids; i++) {
		const struct ynode *item = val->kids[i];
		struct conf_filter *f;
		if (item->type != YNODE_MAPPING)
			return conf_error(ld, item, "expected a mapping for each "
			    "pipeline entry, found a %s", conf_yaml_kind(item));
		if ((f = conf_push(ld, item, cf->filters, &cf->nfilters,
		    sizeof(*f))) == NULL)
			return -1;
		cf->filters = f;
		f = &f[cf->nfilters - 1];
		f->on_error = SLUICE_TEMPFAIL;
		f->timeout = 30;
		conf_milter_defaults(f);
		f->line = item->line;
		f->col = item->col;
		if ((f->args = calloc(1, sizeof(*f->args))) == NULL)
			return conf_error(ld, item, "out of memory");
		if (conf_walk(ld, item, "pipeline", filter_keys, f) == -1)
			return -1;
		if (f->target == NULL)
			return conf_error(ld, item, "a pipeline entry needs one "
			    "of 'plugin', 'lua' or 'milter'");
		if ((f->budget || f->memory) && f->kind != FILTER_LUA)
			return conf_error(ld, item, "'budget' and 'memory' apply "
			    "to lua entries only");
		if (check_keys(ld, item, f) == -1)
			return -1;
		if (f->name == NULL && (f->name = default_name(f)) == NULL)
			return conf_error(ld, item, "out of memory");
	}
	return 0;
}

void
conf_pipeline_free(struct config *cf)
{
	for (size_t i = 0; i < cf->nfilters; i++) {
		conf_milter_free(&cf->filters[i]);
		value_free(cf->filters[i].args);
		free(cf->filters[i].args);
		free(cf->filters[i].target);
		free(cf->filters[i].name);
	}
	free(cf->filters);
	free(cf->plugin_dir);
}
