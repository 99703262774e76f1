/*
 * conf_users.c - the local mailboxes: mailboxes.users and mailboxes.users_file
 *
 * API: conf_users_finish(), called once the whole file has been walked so
 * that domains.local is known wherever it appears; see conf_priv.h.
 * Every address must be local@domain with a dot-string local part and a
 * domain from domains.local. Both sources are lower-cased and merged into
 * cf->mailbox_users, which ends up sorted and without duplicates.
 * The users file holds one address per line; blank lines and comments
 * ('#' at the start of a line or after a blank) are ignored.
 * Errors: -1 with "FILE:LINE:COL: what" in ld->err; FILE is the users file,
 * column 1, for an error inside it.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "conf.h"
#include "conf_priv.h"

#define QUOTE_LEN	64

static int	 is_blank(char);
static int	 add_user(struct conf_loader *, const char *, const char *,
		    unsigned long, unsigned long);
static int	 add_yaml_users(struct conf_loader *);
static char	*clean_line(char *, size_t);
static int	 read_users_file(struct conf_loader *);
static int	 cmp_str(const void *, const void *);
static void	 sort_unique(struct config *);
static int	 check_postmaster(struct conf_loader *);

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
	    c == '\f' || c == '\v';
}

static int
add_user(struct conf_loader *ld, const char *addr, const char *file,
    unsigned long line, unsigned long col)
{
	struct config	*cf = ld->cf;
	char		*d, *at, **p, q[QUOTE_LEN];

	if ((d = strdup(addr)) == NULL)
		return conf_error_at(ld, file, line, col, "out of memory");
	at = strrchr(d, '@');
	if (at == NULL || !conf_valid_local_part(d, at - d) ||
	    !conf_valid_domain(at + 1)) {
		free(d);
		return conf_error_at(ld, file, line, col, "invalid mailbox "
		    "address '%s': expected local@domain",
		    conf_quote(addr, q, sizeof(q)));
	}
	conf_lower(d);
	if (!conf_is_local_domain(cf, at + 1)) {
		conf_error_at(ld, file, line, col, "domain '%s' of mailbox "
		    "'%s' is not in 'domains.local'", at + 1,
		    conf_quote(addr, q, sizeof(q)));
		free(d);
		return -1;
	}
	if ((p = conf_push(ld, NULL, cf->mailbox_users, &cf->nmailbox_users,
	    sizeof(*p))) == NULL) {
		free(d);
		return -1;
	}
	cf->mailbox_users = p;
	p[cf->nmailbox_users - 1] = d;
	return 0;
}

static int
add_yaml_users(struct conf_loader *ld)
{
	const struct ynode	*item;
	size_t			 i;

	for (i = 0; i < ld->users->nkids; i++) {
		item = ld->users->kids[i];
		if (item->type != YNODE_SCALAR || item->null)
			return conf_error(ld, item, "expected an address for "
			    "each item of 'mailboxes.users', found %s",
			    item->null ? "an empty value" :
			    item->type == YNODE_SEQUENCE ? "a list" :
			    "a mapping");
		if (add_user(ld, item->value, ld->path, item->line,
		    item->col) == -1)
			return -1;
	}
	return 0;
}

/* The address on a line: comment cut, blanks trimmed; "" if none. */
static char *
clean_line(char *s, size_t len)
{
	char	*end;
	size_t	 i;

	for (i = 0; i < len; i++) {
		if (s[i] == '#' && (i == 0 || is_blank(s[i - 1]))) {
			len = i;
			break;
		}
	}
	s[len] = '\0';
	while (is_blank(*s))
		s++;
	end = s + strlen(s);
	while (end > s && is_blank(end[-1]))
		*--end = '\0';
	return s;
}

static int
read_users_file(struct conf_loader *ld)
{
	const char	*path = ld->cf->mailbox_users_file;
	FILE		*fp;
	char		*buf = NULL, *addr;
	size_t		 cap = 0;
	ssize_t		 n;
	unsigned long	 lineno = 0;
	int		 rc = 0;

	if ((fp = fopen(path, "r")) == NULL)
		return conf_error(ld, ld->users_file, "cannot read "
		    "'mailboxes.users_file' %s: %s", path, strerror(errno));
	while (rc == 0 && (n = getline(&buf, &cap, fp)) != -1) {
		lineno++;
		if (memchr(buf, '\0', n) != NULL) {
			rc = conf_error_at(ld, path, lineno, 1,
			    "NUL character in line");
			break;
		}
		addr = clean_line(buf, n);
		if (*addr != '\0')
			rc = add_user(ld, addr, path, lineno, 1);
	}
	if (rc == 0 && ferror(fp))
		rc = conf_error(ld, ld->users_file, "cannot read "
		    "'mailboxes.users_file' %s: read error", path);
	free(buf);
	fclose(fp);
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
sort_unique(struct config *cf)
{
	size_t	 i, n = 0;

	if (cf->nmailbox_users == 0)
		return;
	qsort(cf->mailbox_users, cf->nmailbox_users, sizeof(char *), cmp_str);
	for (i = 1; i < cf->nmailbox_users; i++) {
		if (strcmp(cf->mailbox_users[i], cf->mailbox_users[n]) == 0)
			free(cf->mailbox_users[i]);
		else
			cf->mailbox_users[++n] = cf->mailbox_users[i];
	}
	cf->nmailbox_users = n + 1;
}

/* check_postmaster - mailboxes.postmaster must be one of the mailboxes */
static int
check_postmaster(struct conf_loader *ld)
{
	const struct config *cf = ld->cf;
	char q[QUOTE_LEN];

	if (cf->postmaster == NULL)
		return 0;
	for (size_t i = 0; i < cf->nmailbox_users; i++)
		if (strcmp(cf->mailbox_users[i], cf->postmaster) == 0)
			return 0;
	return conf_error(ld, ld->postmaster, "'mailboxes.postmaster' %s is "
	    "not one of the mailboxes", conf_quote(cf->postmaster, q,
	    sizeof(q)));
}

int
conf_users_finish(struct conf_loader *ld)
{
	if (ld->users != NULL && add_yaml_users(ld) == -1)
		return -1;
	if (ld->cf->mailbox_users_file != NULL && read_users_file(ld) == -1)
		return -1;
	sort_unique(ld->cf);
	return check_postmaster(ld);
}
