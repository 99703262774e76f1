/*
 * tags.h - small ordered key/value lists: the tags filters set on a
 * session or a transaction. Transaction tags travel with the message into
 * its queue envelope, for the delivery stages.
 * Ownership: struct tags owns its strings; tags_clear() frees them.
 */
#ifndef SLUICE_TAGS_H
#define SLUICE_TAGS_H

#include <stddef.h>

struct tag {
	char *key, *value;
};

struct tags {
	struct tag *v;
	size_t n;
};

void	tags_set(struct tags *, const char *key, const char *value);
void	tags_del(struct tags *, const char *key);
const char *tags_get(const struct tags *, const char *key);
void	tags_clear(struct tags *);

#endif
