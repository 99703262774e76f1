/*
 * bad_abi.c - a test plugin built for another plugin ABI (999): sluiced
 * must refuse to load it, naming the file and both ABI versions.
 */
#include <stddef.h>

#include "sluice_plugin.h"

static enum sluice_status
bad_abi_hook(void *ctx, enum sluice_stage stage, struct sluice_call *c)
{
	(void)ctx;
	(void)stage;
	(void)c;
	return SLUICE_DONE;
}

const struct sluice_plugin sluice_plugin = {
	.abi = 999,
	.name = "bad_abi",
	.stages = SLUICE_STAGE(SLUICE_ON_CONNECT),
	.hook = bad_abi_hook,
};
