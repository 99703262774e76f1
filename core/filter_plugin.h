/*
 * filter_plugin.h - the filter kinds known to pipeline_build(): C plugins
 * (filter_plugin.c) and Lua scripts (lua/lua_filter.c).
 */
#ifndef SLUICE_FILTER_PLUGIN_H
#define SLUICE_FILTER_PLUGIN_H

#include "filter.h"

#ifndef SLUICE_PLUGIN_DIR
#define SLUICE_PLUGIN_DIR	"/usr/local/lib/sluice/plugins"
#endif

extern const struct filter_ops filter_plugin_ops;
extern const struct filter_ops filter_lua_ops;
extern const struct filter_ops filter_milter_ops;	/* milter_filter.c */
/* where plugins named without a '/' are found (configuration: plugin_dir) */
extern const char *filter_plugin_dir;

#endif
