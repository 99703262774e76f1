/*
 * top.h - what sluicectl top shows, from two expositions of the server's
 * metrics (expo.h) taken dt seconds apart: rates from counter deltas,
 * gauges as they are now, the busiest next hops and the slowest filters.
 * top_view.c draws one frame as plain text lines (top.c clears the screen
 * around it on a terminal). Pure apart from writing to the FILE.
 */
#ifndef SLUICE_TOP_H
#define SLUICE_TOP_H

#include <stdio.h>
#include <time.h>

#include "expo.h"

struct top_frame {
	const struct expo *prev, *cur;	/* prev NULL: totals only */
	double dt;			/* seconds between them */
	time_t now;			/* for the title */
	unsigned rows;			/* screen height; 0: no limit */
};

void	top_render(FILE *, const struct top_frame *);
/* top_duration - "45s", "12m05s", "3h20m", "2d04h" */
void	top_duration(double seconds, char *buf, size_t len);

#endif
