/*
 * hops.h - counts the Received: header fields of a message as its bytes
 * stream in (any split), to refuse mail that is looping between servers
 * (RFC 5321 6.3: a limit of at least 100 hops). Pure; no allocation.
 */
#ifndef SLUICE_HOPS_H
#define SLUICE_HOPS_H

#include <stddef.h>

struct hop_counter {
	unsigned count;		/* Received: fields seen so far */
	unsigned matched;	/* bytes of "received:" matched on this line */
	int state;		/* where in the header section we are */
};

void	hops_init(struct hop_counter *);
void	hops_feed(struct hop_counter *, const char *, size_t);

#endif
