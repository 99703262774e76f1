/*
 * paths.h - compiled-in default paths
 *
 * A build in the checkout uses the checkout's files (conf/sluice.yaml,
 * build/plugins, set by the Makefile). `make install` compiles the few
 * files that include this header again with the installed paths
 * (-DSLUICE_CONF_PATH=/etc/sluice/sluice.yaml ...), see the Makefile.
 */
#ifndef SLUICE_PATHS_H
#define SLUICE_PATHS_H

#ifndef SLUICE_CONF_PATH
#define SLUICE_CONF_PATH	"conf/sluice.yaml"
#endif

#endif
