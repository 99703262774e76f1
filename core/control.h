/*
 * control.h - the control socket: how sluicectl talks to a running sluiced
 *
 * A unix stream socket (control.socket, mode 0600) on the queue manager's
 * loop. A client sends one request line and reads the answer until the
 * server closes the connection. The first answer line is "ok" or
 * "error TEXT"; data lines follow. Requests:
 *
 *   list                 per queued or held message a "msg ..." line and
 *                        a "rcpt ..." line per recipient
 *   show ID              its "msg" line, "env ..." lines, one "rcpt ..."
 *                        line per recipient, "header ..." lines
 *   flush [ID]           try now (every message, or one)
 *   hold ID | release ID | delete ID | bounce ID
 *   metrics              the metrics exposition (metrics.h), as served
 *                        over HTTP: the data lines are its text lines
 *
 * Data lines are "kind key=value ..." with values %-encoded as in queue
 * files (envelope.h): no value ever holds a space or a control byte.
 * Listing reads the spool on the delivery iopool, not on the loop.
 */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H

#include <stddef.h>

struct event_base;
struct evbuffer;

int	control_open(struct event_base *, const char *path, char *err,
	    size_t errlen);
void	control_close(void);

/* control_list.c (blocking): the data lines of list and show */
void	control_list(struct evbuffer *, char **active, size_t nactive);
int	control_show(struct evbuffer *, const char *id, const char *state);

#endif
