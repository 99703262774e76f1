/*
 * filter_plugin.c - C plugins as filters: dlopen, ABI check, init/fini,
 * hook calls (plugins/sluice_plugin.h).
 *
 * A plugin named without a '/' is found as <plugin_dir>/<name>.so. Any
 * problem loading it stops the start (or refuses a reload) with a message
 * naming the file; nothing is half-loaded.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_filter.h"
#include "filter.h"
#include "filter_plugin.h"
#include "log.h"
#include "util.h"

struct plugin {
	void *handle;
	const struct sluice_plugin *desc;
	void *ctx;
	char *path;
};

static char *
plugin_path(const struct conf_filter *cf, const char *dir)
{
	char *p;

	if (strchr(cf->target, '/') != NULL)
		return xstrdup(cf->target);
	xasprintf(&p, "%s/%s.so", dir, cf->target);
	return p;
}

static int
plugin_load(struct filter *f, char *err, size_t errlen)
{
	const struct conf_filter *cf = f->conf;
	struct plugin *pl = xcalloc(1, sizeof(*pl));
	char ierr[256] = "";

	pl->path = plugin_path(cf, filter_plugin_dir);
	if ((pl->handle = dlopen(pl->path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, errlen, "plugin %s: cannot load: %s", pl->path,
		    dlerror());
		goto fail;
	}
	pl->desc = dlsym(pl->handle, SLUICE_PLUGIN_SYMBOL);
	if (pl->desc == NULL) {
		snprintf(err, errlen, "plugin %s: no '%s' descriptor: not a "
		    "sluice plugin", pl->path, SLUICE_PLUGIN_SYMBOL);
		goto fail;
	}
	if (pl->desc->abi != SLUICE_PLUGIN_ABI) {
		snprintf(err, errlen, "plugin %s: built for plugin ABI %u, this "
		    "sluiced has ABI %u: rebuild it against plugins/"
		    "sluice_plugin.h", pl->path, pl->desc->abi,
		    SLUICE_PLUGIN_ABI);
		goto fail;
	}
	if (pl->desc->hook == NULL || pl->desc->name == NULL) {
		snprintf(err, errlen, "plugin %s: descriptor without name or "
		    "hook", pl->path);
		goto fail;
	}
	if (cf->stages & ~pl->desc->stages) {
		snprintf(err, errlen, "plugin %s: 'stages' asks for stages "
		    "the plugin does not serve", pl->path);
		goto fail;
	}
	if (pl->desc->init != NULL && pl->desc->init(&filter_host, cf->args,
	    &pl->ctx, ierr, sizeof(ierr)) == -1) {
		snprintf(err, errlen, "plugin %s: init failed: %s", pl->path,
		    ierr[0] ? ierr : "no reason given");
		pl->desc = NULL;	/* no fini for a failed init */
		goto fail;
	}
	f->stages = cf->stages ? cf->stages : pl->desc->stages;
	f->data = pl;
	log_info("event=plugin-loaded filter=%s path=%s", f->name, pl->path);
	return 0;
fail:
	if (pl->handle != NULL)
		dlclose(pl->handle);
	free(pl->path);
	free(pl);
	return -1;
}

static void
plugin_unload(struct filter *f)
{
	struct plugin *pl = f->data;

	if (pl == NULL)
		return;
	if (pl->desc->fini != NULL)
		pl->desc->fini(pl->ctx);
	dlclose(pl->handle);
	free(pl->path);
	free(pl);
	f->data = NULL;
}

static void
plugin_call(struct sluice_call *c)
{
	struct plugin *pl = c->filter->data;

	if (pl->desc->hook(pl->ctx, c->stage, c) == SLUICE_DONE)
		call_finish(c);
}

static void
plugin_abort(struct sluice_call *c)
{
	struct plugin *pl = c->filter->data;

	if (pl->desc->cancel != NULL)
		pl->desc->cancel(pl->ctx, c);
}

const char *filter_plugin_dir = SLUICE_PLUGIN_DIR;

const struct filter_ops filter_plugin_ops = {
	.kind = "plugin",
	.load = plugin_load,
	.unload = plugin_unload,
	.call = plugin_call,
	.abort = plugin_abort,
};
