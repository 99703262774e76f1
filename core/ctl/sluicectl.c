/*
 * sluicectl.c - the operator's and filter author's command line tool
 *
 *   sluicectl [-c config] replay [options] FILE.eml
 *   sluicectl [-c config] list|show|flush|hold|release|delete|bounce ...
 *   sluicectl [-c config] top [-n COUNT] [-i SECONDS]
 *
 * Subcommands dispatch from one table. The queue commands and top talk to the
 * running sluiced over its control socket (control.socket in the
 * configuration, or -s PATH).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "paths.h"


static const struct {
	const char *name;
	int (*run)(const char *conf, int argc, char **argv);
	const char *usage;
} commands[] = {
	{ "replay", ctl_replay, "replay [--ip A] [--port P] [--helo H] "
	    "[--from S] [--to R ...] [--listener L] FILE.eml" },
	{ "list", ctl_queue, "list [--json] [-s SOCKET]      the queue, like "
	    "mailq" },
	{ "show", ctl_queue, "show ID [--json] [-s SOCKET]   one message: "
	    "envelope, recipients, headers" },
	{ "flush", ctl_queue, "flush [ID] [-s SOCKET]        try now (all, "
	    "or one)" },
	{ "hold", ctl_queue, "hold ID [-s SOCKET]            keep it, do not "
	    "deliver" },
	{ "release", ctl_queue, "release ID [-s SOCKET]         undo hold" },
	{ "delete", ctl_queue, "delete ID [-s SOCKET]          remove without "
	    "a bounce" },
	{ "bounce", ctl_queue, "bounce ID [-s SOCKET]          fail it now, "
	    "with a bounce to the sender" },
	{ "top", ctl_top, "top [-n COUNT] [-i SECONDS] [-s SOCKET]  live "
	    "rates, queue, busiest next hops, slowest filters" },
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
	const char *conf = SLUICE_CONF_PATH;
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
