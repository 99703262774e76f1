/*
 * metrics.h - the server's counters, gauges and histograms, and their
 * rendering in the Prometheus text format (metrics_http.c serves them).
 *
 * Every metric is a family of the table in metrics.c (name, help, type,
 * label names); a series is one combination of label values, created on
 * first use. Updates take the family's mutex for a hash lookup: a few
 * per message, far below the cost of the message itself, and safe from
 * any thread. Label values are what the caller passes, in the order of
 * the family's label names (listener names, stages, filter names ... a
 * bounded set; never addresses or user names).
 * Gauges that are a count of something elsewhere (the queue) are not
 * kept here: metrics_render() asks their owners (metrics_queue.c).
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdint.h>

#include "dest.h"
#include "qmgr.h"

struct evbuffer;

enum metric {
	M_SESSIONS_TOTAL,	/* listener */
	M_SESSIONS_CURRENT,	/* listener (gauge) */
	M_MESSAGES_ACCEPTED,	/* listener */
	M_MESSAGES_REJECTED,	/* stage, reason */
	M_MESSAGES_TEMPFAILED,	/* stage, reason */
	M_DELIVERIES,		/* transport, result */
	M_DELIVERY_SECONDS,	/* transport (histogram) */
	M_FILTER_SECONDS,	/* filter (histogram) */
	M_FILTER_ERRORS,	/* filter */
	M_TLS_HANDSHAKES,	/* direction, result */
	M_AUTH,			/* result */
	M_LUA_ERRORS,		/* filter */
	M_LUA_BUDGET,		/* filter */
	M_NMETRICS
};

void	metrics_init(void);
void	metrics_free(void);
/* add v to a counter or gauge; label values follow, as many as it has */
void	metrics_add(enum metric, double v, ...);
#define metrics_inc(m, ...)	metrics_add((m), 1.0, __VA_ARGS__)
/* one observation (seconds) of a histogram */
void	metrics_observe(enum metric, double v, ...);
/* metrics_refusal - a refused command: rejected (5xx reply) or
   tempfailed (4xx) at stage, for reason */
void	metrics_refusal(const char *stage, const char *reason,
	    const char *reply);
/* the whole exposition, families in table order, then the queue's
   (metrics_render_queue); not on the queue manager's loop */
void	metrics_render(struct evbuffer *);
/* metrics_escape - append a label value, escaped (\\, \", \n) */
void	metrics_escape(struct evbuffer *, const char *);
/* the families of the table only (counters, gauges, histograms) */
void	metrics_render_families(struct evbuffer *);

/*
 * metrics_queue.c: gauges owned by the queue manager's loop (messages by
 * state, the busiest next hops), taken there as a snapshot, rendered
 * anywhere (hold/ and quarantine/ are counted while rendering: blocking)
 */
#define METRICS_DESTINATIONS	20	/* next hops rendered, busiest first */
struct metrics_snapshot {
	struct qmgr_census q;
	struct dest_stat dests[METRICS_DESTINATIONS];
	size_t ndests;
};
/* metrics_snapshot_take - on the queue manager's loop */
void	metrics_snapshot_take(struct metrics_snapshot *);
void	metrics_snapshot_clear(struct metrics_snapshot *);
void	metrics_render_snapshot(struct evbuffer *,
	    const struct metrics_snapshot *);
/* metrics_render_queue - snapshot (waits for the loop), then render it */
void	metrics_render_queue(struct evbuffer *);

#endif
