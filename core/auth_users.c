/*
 * auth_users.c - the auth.users_file table (auth_users.h): sorted by user,
 * looked up by binary search, checked with crypt_r().
 */

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_users.h"
#include "conf.h"
#include "util.h"

struct auth_user {
	char *name;
	char *hash;
};

struct auth_users {
	struct auth_user *v;
	size_t n;
	char dummy[CRYPT_GENSALT_OUTPUT_SIZE];	/* setting for unknown users */
};

static const char *const good_prefixes[] = {
	"$y$", "$gy$", "$7$", "$6$", "$5$", "$2b$", "$2y$", "$2a$", NULL
};

static int
hash_ok(const char *h)
{
	for (size_t i = 0; good_prefixes[i] != NULL; i++)
		if (strncmp(h, good_prefixes[i], strlen(good_prefixes[i])) == 0)
			return strlen(h) > strlen(good_prefixes[i]) + 8;
	return 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const struct auth_user *)a)->name,
	    ((const struct auth_user *)b)->name);
}

/* parse_line - 1 for an entry, 0 for a comment or blank, -1 for an error */
static int
parse_line(char *line, struct auth_user *u, const char **why)
{
	char *colon, *end = line + strlen(line);

	while (end > line && (end[-1] == '\n' || end[-1] == '\r' ||
	    end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (*line == '\0' || *line == '#')
		return 0;
	if ((colon = strchr(line, ':')) == NULL || colon == line) {
		*why = "expected user:hash";
		return -1;
	}
	*colon = '\0';
	if (colon - line > 255 || strpbrk(line, " \t") != NULL) {
		*why = "bad user name";
		return -1;
	}
	if (!hash_ok(colon + 1)) {
		*why = "not a yescrypt, scrypt, SHA-crypt or bcrypt hash";
		return -1;
	}
	u->name = xstrdup(line);
	u->hash = xstrdup(colon + 1);
	return 1;
}

struct auth_users *
auth_users_load(const char *path, char *err, size_t errlen)
{
	struct auth_users *t = xcalloc(1, sizeof(*t));
	char line[AUTH_USERS_LINE_MAX + 2];
	size_t cap = 0, lineno = 0;
	const char *why;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(t);
		return NULL;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		struct auth_user u;
		int r;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%zu: line too long", path,
			    lineno);
			goto fail;
		}
		if ((r = parse_line(line, &u, &why)) == 0)
			continue;
		if (r == -1) {
			snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
			goto fail;
		}
		if (t->n == cap) {
			cap = cap ? cap * 2 : 16;
			t->v = xreallocarray(t->v, cap, sizeof(*t->v));
		}
		t->v[t->n++] = u;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto fail;
	}
	fclose(f);
	qsort(t->v, t->n, sizeof(*t->v), by_name);
	for (size_t i = 1; i < t->n; i++)
		if (strcmp(t->v[i - 1].name, t->v[i].name) == 0) {
			snprintf(err, errlen, "%s: user %s is listed twice",
			    path, t->v[i].name);
			auth_users_free(t);
			return NULL;
		}
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, t->dummy,
	    sizeof(t->dummy)) == NULL)
		snprintf(t->dummy, sizeof(t->dummy), "$6$sluicedummysalt");
	return t;
fail:
	fclose(f);
	auth_users_free(t);
	return NULL;
}

void
auth_users_free(struct auth_users *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].name);
		free(t->v[i].hash);
	}
	free(t->v);
	free(t);
}

int
auth_users_check(const struct config *c, char *err, size_t errlen)
{
	struct auth_users *t;

	if (c->auth.users_file == NULL)
		return 0;
	if ((t = auth_users_load(c->auth.users_file, err, errlen)) == NULL)
		return -1;
	auth_users_free(t);
	return 0;
}

size_t
auth_users_count(const struct auth_users *t)
{
	return t != NULL ? t->n : 0;
}

/* equal - compare without an early exit */
static int
equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

enum auth_check
auth_users_verify(const struct auth_users *t, const char *user,
    const char *password)
{
	struct auth_user key = { (char *)user, NULL }, *u = NULL;
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	const char *h;
	int ok;

	if (t != NULL && t->n > 0)
		u = bsearch(&key, t->v, t->n, sizeof(*t->v), by_name);
	h = crypt_r(password, u != NULL ? u->hash : t != NULL ? t->dummy :
	    "$6$sluicedummysalt", cd);
	ok = u != NULL && h != NULL && h[0] != '*' && equal(h, u->hash);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	if (u == NULL)
		return AUTH_CHECK_UNKNOWN;
	return ok ? AUTH_CHECK_OK : AUTH_CHECK_BAD;
}
