/*
 * expo.c - reading the Prometheus text exposition (expo.h). The text is
 * copied once and cut in place: names, label names and unescaped label
 * values all point into that copy.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expo.h"
#include "util.h"

static int
name_start(int c)
{
	return isalpha(c) || c == '_' || c == ':';
}

static int
name_char(int c)
{
	return isalnum(c) || c == '_' || c == ':';
}

/* label_value - p at the opening quote's successor; unescapes in place,
   returns the character after the closing quote, NULL when broken */
static char *
label_value(char *p, const char **why)
{
	char *w = p;

	while (*p != '"') {
		if (*p == '\0') {
			*why = "unterminated label value";
			return NULL;
		}
		if (*p != '\\') {
			*w++ = *p++;
			continue;
		}
		p++;
		if (*p == 'n')
			*w++ = '\n';
		else if (*p == '\\' || *p == '"')
			*w++ = *p;
		else {
			*why = "bad escape in a label value";
			return NULL;
		}
		p++;
	}
	*w = '\0';
	return p + 1;
}

/* labels - "{k="v",...}" with p after the brace; returns what follows */
static char *
labels(char *p, struct expo_sample *s, const char **why)
{
	while (*p != '}') {
		char *key = p;

		if (s->nlabels == EXPO_LABELS) {
			*why = "too many labels";
			return NULL;
		}
		if (!name_start((unsigned char)*p)) {
			*why = "expected a label name";
			return NULL;
		}
		while (name_char((unsigned char)*p))
			p++;
		if (p[0] != '=' || p[1] != '"') {
			*why = "expected =\" after a label name";
			return NULL;
		}
		*p = '\0';
		s->key[s->nlabels] = key;
		s->val[s->nlabels++] = p + 2;
		if ((p = label_value(p + 2, why)) == NULL)
			return NULL;
		if (*p == ',')
			p++;
		else if (*p != '}') {
			*why = "expected , or } after a label";
			return NULL;
		}
	}
	return p + 1;
}

/* parse_line - one sample line, cut in place */
static int
parse_line(char *p, struct expo_sample *s, const char **why)
{
	char *end, *q;

	memset(s, 0, sizeof(*s));
	if (!name_start((unsigned char)*p)) {
		*why = "expected a metric name";
		return -1;
	}
	s->name = p;
	while (name_char((unsigned char)*p))
		p++;
	end = p;
	if (*p == '{' && (p = labels(p + 1, s, why)) == NULL)
		return -1;
	if (*p != ' ' && *p != '\t') {
		*why = "expected a space before the value";
		return -1;
	}
	*end = '\0';			/* maybe p itself: value after it */
	s->value = strtod(++p, &q);
	if (q == p) {
		*why = "expected a value";
		return -1;
	}
	while (*q == ' ' || *q == '\t')	/* an optional timestamp */
		q++;
	if (*q == '-')
		q++;
	while (isdigit((unsigned char)*q))
		q++;
	if (*q != '\0') {
		*why = "junk after the value";
		return -1;
	}
	return 0;
}

int
expo_parse(struct expo *e, const char *text, char *err, size_t errlen)
{
	char *line, *next;
	size_t cap = 0, lineno = 0;
	const char *why = NULL;

	memset(e, 0, sizeof(*e));
	e->text = xstrdup(text);
	for (line = e->text; line != NULL; line = next) {
		size_t len;

		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (e->n == cap)
			e->s = xreallocarray(e->s, cap = cap ? cap * 2 : 64,
			    sizeof(*e->s));
		if (parse_line(line, &e->s[e->n], &why) == -1) {
			snprintf(err, errlen, "line %zu: %s", lineno, why);
			expo_free(e);
			return -1;
		}
		e->n++;
	}
	return 0;
}

void
expo_free(struct expo *e)
{
	free(e->text);
	free(e->s);
	memset(e, 0, sizeof(*e));
}

const char *
expo_label(const struct expo_sample *s, const char *key)
{
	for (size_t k = 0; k < s->nlabels; k++)
		if (strcmp(s->key[k], key) == 0)
			return s->val[k];
	return NULL;
}

static int
matches(const struct expo_sample *s, const char *name, const char *key,
    const char *value)
{
	const char *v;

	if (strcmp(s->name, name) != 0)
		return 0;
	if (key == NULL)
		return 1;
	return (v = expo_label(s, key)) != NULL && strcmp(v, value) == 0;
}

double
expo_sum(const struct expo *e, const char *name, const char *key,
    const char *value)
{
	double sum = 0;

	for (size_t i = 0; i < e->n; i++)
		if (matches(&e->s[i], name, key, value))
			sum += e->s[i].value;
	return sum;
}

size_t
expo_values(const struct expo *e, const char *name, const char *key,
    const char **out, size_t max)
{
	size_t n = 0, k;

	for (size_t i = 0; i < e->n && n < max; i++) {
		const char *v;
		if (strcmp(e->s[i].name, name) != 0 ||
		    (v = expo_label(&e->s[i], key)) == NULL)
			continue;
		for (k = 0; k < n && strcmp(out[k], v) != 0; k++)
			;
		if (k == n)
			out[n++] = v;
	}
	return n;
}

/* buckets - one series' buckets, sorted by bound */
static void
buckets(const struct expo *e, const char *base, const char *key,
    const char *value, struct expo_hist *h)
{
	char name[256];

	h->n = 0;
	snprintf(name, sizeof(name), "%s_bucket", base);
	for (size_t i = 0; i < e->n && h->n < EXPO_BUCKETS; i++) {
		const char *le;
		size_t k;
		double b;
		if (!matches(&e->s[i], name, key, value) ||
		    (le = expo_label(&e->s[i], "le")) == NULL)
			continue;
		b = strtod(le, NULL);
		for (k = h->n; k > 0 && h->le[k - 1] > b; k--) {
			h->le[k] = h->le[k - 1];
			h->cum[k] = h->cum[k - 1];
		}
		h->le[k] = b;
		h->cum[k] = e->s[i].value;
		h->n++;
	}
}

void
expo_hist(const struct expo *e, const struct expo *prev, const char *base,
    const char *key, const char *value, struct expo_hist *h)
{
	struct expo_hist p;
	size_t k;

	buckets(e, base, key, value, h);
	if (prev == NULL)
		return;
	buckets(prev, base, key, value, &p);
	if (p.n != h->n)		/* new series: everything is new */
		return;
	for (k = 0; k < h->n; k++)
		if (p.le[k] != h->le[k] || p.cum[k] > h->cum[k])
			return;		/* not the same series (a restart) */
	for (k = 0; k < h->n; k++)
		h->cum[k] -= p.cum[k];
}

double
expo_quantile(const struct expo_hist *h, double q)
{
	double rank, lo, below, in;
	size_t i;

	if (h->n == 0 || h->cum[h->n - 1] <= 0)
		return -1;
	rank = q * h->cum[h->n - 1];
	for (i = 0; i < h->n - 1 && h->cum[i] < rank; i++)
		;
	if (isinf(h->le[i]))
		return i > 0 ? h->le[i - 1] : 0;
	lo = i > 0 ? h->le[i - 1] : 0;
	below = i > 0 ? h->cum[i - 1] : 0;
	in = h->cum[i] - below;
	if (in <= 0)
		return h->le[i];
	return lo + (h->le[i] - lo) * (rank - below) / in;
}
