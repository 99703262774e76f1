/*
 * maildrop.c - write and parse maildrop files (maildrop.h)
 *
 * maildrop_write() makes the file durable before it returns 0: written to
 * .tmp.<name> (O_EXCL, mode 0644 so that sluiced's user can read a file
 * owned by whoever ran sendmail), fsynced, renamed, directory fsynced.
 * Only then may sendmail exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildrop.h"
#include "util.h"

char *
maildrop_dir(const char *spool)
{
	char *p;

	xasprintf(&p, "%s/maildrop", spool);
	return p;
}

int
maildrop_is_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= MAILDROP_NAME_MAX || name[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(name[i] == '.' || (name[i] >= '0' && name[i] <= '9') ||
		    (name[i] >= 'a' && name[i] <= 'f')))
			return 0;
	return 1;
}

static int
fail(char *err, size_t errlen, const char *what, const char *path)
{
	snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
	return -1;
}

static void
make_name(char *name, size_t len)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r ^= now_usec() * 6364136223846793005ull;
	snprintf(name, len, "%016llx.%08x.%016llx",
	    (unsigned long long)now_usec(), (unsigned)getpid(),
	    (unsigned long long)r);
}

/* write_item - "K value\n"; nothing for a NULL value */
static int
write_item(int fd, char key, const char *value)
{
	char *line;
	int rv;

	if (value == NULL)
		return 0;
	xasprintf(&line, "%c %s\n", key, value);
	rv = write_all(fd, line, strlen(line));
	free(line);
	return rv;
}

/* write_head - the magic, the envelope and the empty line */
static int
write_head(int fd, const char *sender, char *const *rcpts, size_t nrcpts,
    const struct maildrop_dsn *dsn)
{
	int rv;

	if (write_all(fd, MAILDROP_MAGIC, strlen(MAILDROP_MAGIC)) == -1)
		return -1;
	rv = write_item(fd, 'S', sender);
	for (size_t i = 0; rv == 0 && i < nrcpts; i++)
		rv = write_item(fd, 'R', rcpts[i]);
	if (rv == 0 && dsn != NULL &&
	    (write_item(fd, 'N', dsn->notify) == -1 ||
	    write_item(fd, 'T', dsn->ret) == -1 ||
	    write_item(fd, 'V', dsn->envid) == -1))
		rv = -1;
	return rv == 0 ? write_all(fd, "\n", 1) : -1;
}

int
maildrop_write(const char *dir, const char *sender, char *const *rcpts,
    size_t nrcpts, const struct maildrop_dsn *dsn, const char *msg, size_t len,
    char *name, size_t namelen, char *err, size_t errlen)
{
	char *tmp = NULL, *path = NULL;
	int fd = -1, saved;

	make_name(name, namelen);
	xasprintf(&tmp, "%s/.tmp.%s", dir, name);
	xasprintf(&path, "%s/%s", dir, name);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0644)) == -1) {
		fail(err, errlen, "cannot create", tmp);
		goto fail;
	}
	(void)fchmod(fd, 0644);		/* whatever the umask */
	if (write_head(fd, sender, rcpts, nrcpts, dsn) == -1 ||
	    write_all(fd, msg, len) == -1 || fsync(fd) == -1) {
		fail(err, errlen, "cannot write", tmp);
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		fail(err, errlen, "cannot write", tmp);
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		fail(err, errlen, "cannot rename", tmp);
		goto fail;
	}
	if (fsync_dir(dir) == -1) {
		/* the file is whole: it may be picked up, but is not
		   certain to survive a power loss yet */
		fail(err, errlen, "cannot sync", dir);
		free(tmp);
		free(path);
		return -1;
	}
	free(tmp);
	free(path);
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	free(tmp);
	free(path);
	errno = saved;
	return -1;
}

/*
 * dsn_item - an N, T or V line: a word of printable ASCII (sluiced's
 * session checks the value itself); -1 for anything else
 */
static int
dsn_item(struct maildrop_msg *m, char *p)
{
	char **slot = p[0] == 'N' ? &m->notify : p[0] == 'T' ? &m->ret :
	    p[0] == 'V' ? &m->envid : NULL;

	if (slot == NULL || *slot != NULL || p[1] != ' ' || p[2] == '\0' ||
	    strlen(p + 2) > 200)
		return -1;
	for (const char *q = p + 2; *q; q++)
		if (*q < 0x21 || *q > 0x7e)
			return -1;
	*slot = p + 2;
	return 0;
}

int
maildrop_parse(char *buf, size_t len, struct maildrop_msg *m,
    char *err, size_t errlen)
{
	size_t mlen = strlen(MAILDROP_MAGIC), cap = 0;
	char *p, *nl;

	memset(m, 0, sizeof(*m));
	m->buf = buf;
	if (len < mlen || memcmp(buf, MAILDROP_MAGIC, mlen) != 0) {
		snprintf(err, errlen, "not a maildrop file");
		return -1;
	}
	for (p = buf + mlen; ; p = nl + 1) {
		if ((nl = memchr(p, '\n', len - (size_t)(p - buf))) == NULL) {
			snprintf(err, errlen, "truncated envelope");
			return -1;
		}
		*nl = '\0';
		if (*p == '\0')
			break;
		if (p[0] == 'S' && p[1] == ' ' && m->sender == NULL)
			m->sender = p + 2;
		else if (p[0] == 'R' && p[1] == ' ' && p[2] != '\0') {
			if (m->nrcpts == cap) {
				cap = cap ? cap * 2 : 8;
				m->rcpts = xreallocarray(m->rcpts, cap,
				    sizeof(*m->rcpts));
			}
			m->rcpts[m->nrcpts++] = p + 2;
		} else if (dsn_item(m, p) == -1) {
			snprintf(err, errlen, "bad envelope line");
			return -1;
		}
	}
	if (m->sender == NULL || m->nrcpts == 0) {
		snprintf(err, errlen, "no %s in the envelope",
		    m->sender == NULL ? "sender" : "recipient");
		return -1;
	}
	m->data = nl + 1;
	m->len = len - (size_t)(m->data - buf);
	return 0;
}

void
maildrop_msg_clear(struct maildrop_msg *m)
{
	free(m->rcpts);
	free(m->buf);
	memset(m, 0, sizeof(*m));
}
