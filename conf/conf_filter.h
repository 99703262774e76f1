/*
 * conf_filter.h - one entry of `pipeline:` in the configuration
 *
 *   pipeline:
 *     - {plugin: ratelimit, args: {...}, on_error: tempfail, timeout: 30s}
 *     - {lua: lua/filters/spam.lua, args: {...}, budget: 1000000,
 *        memory: 16M, stages: [message]}
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
	unsigned long line, col;	/* where the entry starts */
};

#endif
