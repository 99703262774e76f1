/*
 * conf_filter.h - one entry of `pipeline:` in the configuration
 *
 *   pipeline:
 *     - {plugin: ratelimit, args: {...}, on_error: tempfail, timeout: 30s}
 *     - {lua: lua/filters/spam.lua, args: {...}, budget: 1000000,
 *        memory: 16M, stages: [message]}
 *     - {milter: "unix:/run/opendkim/opendkim.sock", default_action: tempfail,
 *        timeouts: {connect: 30s, command: 30s, content: 300s},
 *        macros: {connect: "j {daemon_name} _"}, protocol: 6}
 *
 * args is kept as a read-only struct sluice_value tree (the plugin API's
 * type), so plugins and Lua scripts get it as written.
 */
#ifndef SLUICE_CONF_FILTER_H
#define SLUICE_CONF_FILTER_H

#include <stdint.h>

#include "sluice_plugin.h"

enum filter_kind {
	FILTER_PLUGIN,
	FILTER_LUA,
	FILTER_MILTER,
};

/* macro stages of `macros:`, in the milter protocol's SMFIM_* order */
#define CONF_MILTER_STAGES	7
extern const char *const conf_milter_stage_names[CONF_MILTER_STAGES];

struct conf_milter {
	unsigned connect_timeout;	/* connect and negotiation, 30s */
	unsigned command_timeout;	/* connect .. data events, 30s */
	unsigned content_timeout;	/* headers, body, end of message, 300s */
	char *macros[CONF_MILTER_STAGES];	/* NULL: the defaults */
	unsigned protocol;		/* version offered: 2..6, default 6 */
};

struct conf_filter {
	enum filter_kind kind;
	char *target;		/* plugin name or path; script path (absolute) */
	char *name;		/* for logs: `name:` or derived from target */
	struct sluice_value *args;	/* never NULL: SLUICE_NULL if absent */
	enum sluice_verdict on_error;	/* default tempfail */
	unsigned timeout;	/* seconds a call may take, default 30 */
	unsigned stages;	/* SLUICE_STAGE() bits; 0 = all it offers */
	uint64_t budget;	/* Lua: instructions per call */
	uint64_t memory;	/* Lua: bytes per call */
	struct conf_milter milter;	/* milter entries */
	int has_default_action;	/* milter: default_action given */
	unsigned long line, col;	/* where the entry starts */
};

#endif
