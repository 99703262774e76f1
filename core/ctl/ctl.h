/*
 * ctl.h - the subcommands of sluicectl
 */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

/* each returns the process exit status */
int	ctl_replay(const char *conf, int argc, char **argv);
/* list, show, flush, hold, release, delete, bounce (argv[0]) */
int	ctl_queue(const char *conf, int argc, char **argv);

#endif
