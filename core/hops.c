/*
 * hops.c - the Received: counter of hops.h: a small state machine over
 * the header section (it stops looking at the first empty line).
 */
#include "hops.h"

enum {
	H_BOL,		/* start of a header line */
	H_NAME,		/* matching "received:" */
	H_REST,		/* the rest of a line */
	H_CR,		/* a CR at the start of a line: maybe the end */
	H_BODY,		/* past the header section: nothing more to count */
};

static const char want[] = "received:";

void
hops_init(struct hop_counter *h)
{
	h->count = 0;
	h->matched = 0;
	h->state = H_BOL;
}

void
hops_feed(struct hop_counter *h, const char *p, size_t n)
{
	for (size_t i = 0; i < n && h->state != H_BODY; i++) {
		char c = p[i];
		switch (h->state) {
		case H_BOL:
			if (c == '\r') {
				h->state = H_CR;
				break;
			}
			if (c == '\n') {
				h->state = H_BODY;
				break;
			}
			h->matched = 0;
			h->state = H_NAME;
			/* FALLTHROUGH */
		case H_NAME:
			if (c == '\n') {
				h->state = H_BOL;
			} else if ((c | 0x20) == want[h->matched]) {
				if (++h->matched == sizeof(want) - 1) {
					h->count++;
					h->state = H_REST;
				}
			} else
				h->state = H_REST;
			break;
		case H_REST:
			if (c == '\n')
				h->state = H_BOL;
			break;
		case H_CR:
			h->state = c == '\n' ? H_BODY : H_REST;
			break;
		}
	}
}
