/*
 * local.h - the local Maildir transport
 *
 * local_deliver() stores the job's message into the Maildir of each of
 * its recipients and sets each result. Blocking: call it on an iopool.
 */
#ifndef SLUICE_LOCAL_H
#define SLUICE_LOCAL_H

struct djob;

void	local_deliver(struct djob *);

#endif
