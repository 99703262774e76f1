/*
 * filter_build.c - a pipeline from the configuration's `pipeline:` list:
 * each entry's kind loads it (plugin: dlopen + init; lua: compile and
 * check), in order. The first failure ends the build with the entry's
 * FILE:LINE:COL and the kind's reason; what was loaded is unloaded again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "filter.h"
#include "filter_plugin.h"
#include "util.h"

static const struct filter_ops *
kind_ops(enum filter_kind k)
{
	switch (k) {
	case FILTER_PLUGIN:
		return &filter_plugin_ops;
	case FILTER_LUA:
		return &filter_lua_ops;
	case FILTER_MILTER:
		return &filter_milter_ops;
	default:
		return NULL;
	}
}

struct pipeline *
pipeline_build(const struct config *cf, unsigned nworkers, char *err,
    size_t errlen)
{
	struct pipeline *p = xcalloc(1, sizeof(*p));
	char ferr[512];

	p->refs = 1;
	p->nworkers = nworkers;
	p->filters = xcalloc(cf->nfilters ? cf->nfilters : 1,
	    sizeof(*p->filters));
	p->inst = xcalloc((size_t)nworkers * (cf->nfilters ? cf->nfilters : 1),
	    sizeof(*p->inst));
	filter_plugin_dir = cf->plugin_dir ? cf->plugin_dir : SLUICE_PLUGIN_DIR;
	for (size_t i = 0; i < cf->nfilters; i++) {
		const struct conf_filter *c = &cf->filters[i];
		struct filter *f = &p->filters[i];

		f->name = xstrdup(c->name);
		f->conf = c;
		f->ops = kind_ops(c->kind);
		f->on_error = c->on_error;
		f->timeout_s = c->timeout;
		ferr[0] = '\0';
		if (f->ops == NULL || f->ops->load(f, ferr, sizeof(ferr)) == -1) {
			snprintf(err, errlen, "%s:%lu:%lu: %s", cf->path, c->line,
			    c->col, ferr[0] ? ferr : "cannot load filter");
			free(f->name);
			p->n = i;	/* unload what loaded */
			pipeline_unref(p);
			return NULL;
		}
		p->stages |= f->stages;
		p->n = i + 1;
	}
	return p;
}
