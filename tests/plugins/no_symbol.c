/*
 * no_symbol.c - a shared object without the `sluice_plugin` descriptor:
 * sluiced must refuse it as "not a sluice plugin".
 */
#include "sluice_plugin.h"

int no_symbol_marker(void);

int
no_symbol_marker(void)
{
	return SLUICE_PLUGIN_ABI;
}
