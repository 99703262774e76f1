/*
 * sluicectl.c - the operator's and filter author's command line tool
 *
 *   sluicectl [-c config] replay [options] FILE.eml
 *
 * Subcommands dispatch from one table; queue control (list, flush, hold,
 * ...) will join `replay` when it talks to a running sluiced.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

#define DEFAULT_CONF	"conf/sluice.yaml"

static const struct {
	const char *name;
	int (*run)(const char *conf, int argc, char **argv);
	const char *usage;
} commands[] = {
	{ "replay", ctl_replay, "replay [--ip A] [--port P] [--helo H] "
	    "[--from S] [--to R ...] [--listener L] FILE.eml" },
};

static void
usage(void)
{
	fprintf(stderr, "usage: sluicectl [-c config] command ...\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(stderr, "  %s\n", commands[i].usage);
	exit(2);
}

int
main(int argc, char *argv[])
{
	const char *conf = DEFAULT_CONF;
	int i = 1;

	if (argc > 2 && strcmp(argv[1], "-c") == 0) {
		conf = argv[2];
		i = 3;
	}
	if (i >= argc)
		usage();
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (strcmp(argv[i], commands[k].name) == 0)
			return commands[k].run(conf, argc - i, argv + i);
	fprintf(stderr, "sluicectl: unknown command '%s'\n", argv[i]);
	usage();
	return 2;
}
