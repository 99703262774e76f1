/*
 * tags.c - key/value tags that filters put on sessions and transactions
 * (tags.h).
 */
#include <stdlib.h>
#include <string.h>

#include "tags.h"
#include "util.h"

void
tags_set(struct tags *t, const char *key, const char *value)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i].key, key) == 0) {
			free(t->v[i].value);
			t->v[i].value = xstrdup(value);
			return;
		}
	t->v = xreallocarray(t->v, t->n + 1, sizeof(*t->v));
	t->v[t->n].key = xstrdup(key);
	t->v[t->n].value = xstrdup(value);
	t->n++;
}

void
tags_del(struct tags *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i].key, key) == 0) {
			free(t->v[i].key);
			free(t->v[i].value);
			t->v[i] = t->v[--t->n];
			return;
		}
}

const char *
tags_get(const struct tags *t, const char *key)
{
	for (size_t i = 0; t != NULL && i < t->n; i++)
		if (strcmp(t->v[i].key, key) == 0)
			return t->v[i].value;
	return NULL;
}

void
tags_clear(struct tags *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].key);
		free(t->v[i].value);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}
