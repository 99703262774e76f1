/*
 * expo.h - the Prometheus text exposition (version 0.0.4) as sluicectl
 * top reads it from the control socket's "metrics" answer: samples with
 * their labels, sums over label values, and histogram quantiles.
 * Pure: no I/O; the parsed text is owned by the struct expo.
 */
#ifndef SLUICE_EXPO_H
#define SLUICE_EXPO_H

#include <stddef.h>

#define EXPO_LABELS	4	/* per sample; more is a parse error */
#define EXPO_BUCKETS	64	/* per histogram series */

struct expo_sample {
	const char *name;
	const char *key[EXPO_LABELS], *val[EXPO_LABELS];	/* unescaped */
	size_t nlabels;
	double value;
};

struct expo {
	char *text;			/* the copy the samples point into */
	struct expo_sample *s;
	size_t n;
};

/* expo_parse - 0, or -1 with "line N: why" in err (e is then empty) */
int	expo_parse(struct expo *, const char *text, char *err, size_t errlen);
void	expo_free(struct expo *);

/* expo_label - a sample's value of label key, NULL without it */
const char *expo_label(const struct expo_sample *, const char *key);
/* expo_sum - the sum of name's samples whose label key is value (key
   NULL: all of them); 0 when there are none */
double	expo_sum(const struct expo *, const char *name, const char *key,
	    const char *value);
/* expo_values - the distinct values of label key among name's samples,
   in order of appearance, at most max (pointers into e) */
size_t	expo_values(const struct expo *, const char *name, const char *key,
	    const char **out, size_t max);

/* a histogram series: upper bounds (ascending, the last may be +Inf) and
   cumulative counts */
struct expo_hist {
	double le[EXPO_BUCKETS], cum[EXPO_BUCKETS];
	size_t n;
};
/* expo_hist - the buckets of histogram base ("x" for x_bucket) whose
   label key is value; minus those of prev when prev is not NULL (a delta:
   what happened between the two expositions) */
void	expo_hist(const struct expo *, const struct expo *prev,
	    const char *base, const char *key, const char *value,
	    struct expo_hist *);
/* expo_quantile - estimate of quantile q (0..1): linear inside the bucket
   it falls in, as Prometheus' histogram_quantile() does; the highest
   finite bound when it falls in +Inf; -1 without observations */
double	expo_quantile(const struct expo_hist *, double q);

#endif
