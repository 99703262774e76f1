/*
 * init_fail.c - a test plugin whose init always fails, with a message
 * that quotes its `reason` argument: sluiced must not start, and report
 * the message.
 */
#include <stdio.h>
#include <string.h>

#include "sluice_plugin.h"

static int
init_fail_init(const struct sluice_host *host, const struct sluice_value *args,
    void **ctx, char *err, size_t errlen)
{
	const char *reason = "no reason";

	(void)host;
	(void)ctx;
	for (size_t i = 0; args->type == SLUICE_MAP && i < args->n; i++)
		if (strcmp(args->keys[i], "reason") == 0 &&
		    args->items[i].type == SLUICE_STRING)
			reason = args->items[i].string;
	snprintf(err, errlen, "init_fail: refusing to start (%s)", reason);
	return -1;
}

static void
init_fail_fini(void *ctx)
{
	(void)ctx;
	fprintf(stderr, "init_fail: fini called after a failed init\n");
}

static enum sluice_status
init_fail_hook(void *ctx, enum sluice_stage stage, struct sluice_call *c)
{
	(void)ctx;
	(void)stage;
	(void)c;
	return SLUICE_DONE;
}

const struct sluice_plugin sluice_plugin = {
	.abi = SLUICE_PLUGIN_ABI,
	.name = "init_fail",
	.stages = SLUICE_STAGE(SLUICE_ON_CONNECT),
	.init = init_fail_init,
	.fini = init_fail_fini,
	.hook = init_fail_hook,
};
