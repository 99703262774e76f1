/*
 * mailbox.c - local domains and mailboxes as sorted arrays (mailbox.h).
 */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "mailbox.h"
#include "util.h"

struct mailbox_table {
	char **domains;
	size_t ndomains;
	char **users;
	size_t nusers;
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **
sorted_copy(char **src, size_t n)
{
	char **dst = xcalloc(n ? n : 1, sizeof(*dst));

	for (size_t i = 0; i < n; i++) {
		dst[i] = xstrdup(src[i]);
		str_lower(dst[i]);
	}
	qsort(dst, n, sizeof(*dst), cmp_str);
	return dst;
}

struct mailbox_table *
mailbox_table_new(const struct config *c)
{
	struct mailbox_table *t = xcalloc(1, sizeof(*t));

	t->domains = sorted_copy(c->local_domains, c->nlocal_domains);
	t->ndomains = c->nlocal_domains;
	t->users = sorted_copy(c->mailbox_users, c->nmailbox_users);
	t->nusers = c->nmailbox_users;
	return t;
}

void
mailbox_table_free(struct mailbox_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->ndomains; i++)
		free(t->domains[i]);
	for (size_t i = 0; i < t->nusers; i++)
		free(t->users[i]);
	free(t->domains);
	free(t->users);
	free(t);
}

static int
contains(char **arr, size_t n, const char *key)
{
	return bsearch(&key, arr, n, sizeof(*arr), cmp_str) != NULL;
}

int
mailbox_domain_is_local(const struct mailbox_table *t, const char *domain)
{
	return contains(t->domains, t->ndomains, domain);
}

int
mailbox_exists(const struct mailbox_table *t, const char *key)
{
	return contains(t->users, t->nusers, key);
}
