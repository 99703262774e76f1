/*
 * ctl.h - the subcommands of sluicectl
 */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include <stddef.h>

/* each returns the process exit status */
int	ctl_replay(const char *conf, int argc, char **argv);
/* list, show, flush, hold, release, delete, bounce (argv[0]) */
int	ctl_queue(const char *conf, int argc, char **argv);

/* top: a live view of the server's metrics (top.c) */
int	ctl_top(const char *conf, int argc, char **argv);

/* client.c: the control socket. ctl_socket_path - given (-s), or the
   configuration's control.socket; -1 after a message on stderr */
int	ctl_socket_path(const char *conf, const char *given, char *buf,
	    size_t len);
/* ctl_request - send one line, read the whole answer (NUL-terminated,
   malloc'ed); NULL after a message on stderr (no server, ...) */
char	*ctl_request(const char *path, const char *line);

#endif
