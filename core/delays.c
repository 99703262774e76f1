/*
 * delays.c - the delays=a/b/c/d breakdown of a delivery (delays.h).
 * Every mark is clamped into [arrival, done] so that a clock step or a
 * missing mark gives zeros, never negative times.
 */
#include <stdio.h>

#include "delays.h"

static uint64_t
clamp(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void
delays_split(const struct delay_marks *m, double out[4])
{
	uint64_t t0 = m->arrival, t4 = m->done < t0 ? t0 : m->done;
	uint64_t t1 = clamp(m->picked ? m->picked : t4, t0, t4);
	uint64_t t3 = clamp(m->xmit ? m->xmit : t4, t1, t4);
	uint64_t setup = 0;

	/* the part of the connection setup that fell while the job waited */
	if (m->setup_start != 0 && m->setup_end != 0) {
		uint64_t s = clamp(m->setup_start, t1, t3);
		uint64_t e = clamp(m->setup_end, t1, t3);
		setup = e > s ? e - s : 0;
	}
	out[0] = (double)(t1 - t0) / 1e6;
	out[1] = (double)(t3 - t1 - setup) / 1e6;
	out[2] = (double)setup / 1e6;
	out[3] = (double)(t4 - t3) / 1e6;
}

void
delays_format(const struct delay_marks *m, char *buf, size_t len)
{
	double d[4];

	delays_split(m, d);
	snprintf(buf, len, "%.2f/%.2f/%.2f/%.2f", d[0], d[1], d[2], d[3]);
}
