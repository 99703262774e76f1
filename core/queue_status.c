/*
 * queue_status.c - status records of queued messages (queue_status.h).
 *
 * Format ("v 1" first; rcpt lines only for recipients with news):
 *   v 1
 *   attempts 3
 *   next 1795870643
 *   last 1795870343                  (last attempt)
 *   warned 1                         (only once the delay DSN went out)
 *   rcpt 0 D - - -                   (D delivered, F failed, P pending)
 *   rcpt 1 P 4.2.2%20mailbox%20full mx.example.org 452%204.2.2%20full
 *            (index, state, result text, remote server, its reply)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envelope.h"
#include "queue.h"
#include "queue_status.h"
#include "util.h"

#define STATUS_MAX	(16u * 1024 * 1024)

void
qstatus_init(struct qstatus *st, size_t nrcpts)
{
	memset(st, 0, sizeof(*st));
	st->nrcpts = nrcpts;
	st->rcpts = xcalloc(nrcpts, sizeof(*st->rcpts));
}

void
qstatus_clear(struct qstatus *st)
{
	for (size_t i = 0; i < st->nrcpts; i++) {
		free(st->rcpts[i].reason);
		free(st->rcpts[i].remote);
		free(st->rcpts[i].diag);
	}
	free(st->rcpts);
	memset(st, 0, sizeof(*st));
}

void
qstatus_set(struct qstatus *st, size_t i, enum rcpt_state s,
    const char *reason)
{
	free(st->rcpts[i].reason);
	st->rcpts[i].state = s;
	st->rcpts[i].reason = reason ? xstrdup(reason) : NULL;
}

void
qstatus_set_remote(struct qstatus *st, size_t i, const char *remote,
    const char *diag)
{
	free(st->rcpts[i].remote);
	free(st->rcpts[i].diag);
	st->rcpts[i].remote = remote && *remote ? xstrdup(remote) : NULL;
	st->rcpts[i].diag = diag && *diag ? xstrdup(diag) : NULL;
}

size_t
qstatus_count(const struct qstatus *st, enum rcpt_state s)
{
	size_t n = 0;

	for (size_t i = 0; i < st->nrcpts; i++)
		n += st->rcpts[i].state == s;
	return n;
}

char *
qstatus_serialize(const struct qstatus *st, size_t *len)
{
	static const char states[] = "PDF";
	size_t cap = 160, n;
	char *buf = xmalloc(cap);

	n = (size_t)snprintf(buf, cap, "v 1\nattempts %u\nnext %llu\n"
	    "last %llu\n%s", st->attempts,
	    (unsigned long long)st->next_attempt,
	    (unsigned long long)st->last_attempt,
	    st->warned ? "warned 1\n" : "");
	for (size_t i = 0; i < st->nrcpts; i++) {
		const struct rcpt_status *r = &st->rcpts[i];
		if (r->state == RCPT_PENDING && r->reason == NULL)
			continue;
		char *v = value_encode(r->reason);
		char *rm = value_encode(r->remote), *dg = value_encode(r->diag);
		size_t need = strlen(v) + strlen(rm) + strlen(dg) + 48;
		if (n + need > cap)
			buf = xrealloc(buf, cap = (n + need) * 2);
		n += (size_t)snprintf(buf + n, cap - n, "rcpt %zu %c %s %s %s\n",
		    i, states[r->state], v, rm, dg);
		free(v);
		free(rm);
		free(dg);
	}
	*len = n;
	return buf;
}

static int
parse_uint(const char *s, uint64_t max, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || n > max)
		return -1;
	*v = n;
	return 0;
}

/* parse_rcpt_line - "IDX STATE REASON [REMOTE DIAG]" */
static int
parse_rcpt_line(char *v, struct qstatus *st)
{
	char *f[5];
	size_t n = 0;
	uint64_t i;

	for (char *p = v; n < 5; n++) {
		f[n] = p;
		if ((p = strchr(p, ' ')) == NULL) {
			n++;
			break;
		}
		*p++ = '\0';
		if (n == 4)
			return -1;		/* a sixth field */
	}
	if ((n != 3 && n != 5) || st->nrcpts == 0 ||
	    parse_uint(f[0], st->nrcpts - 1, &i) == -1)
		return -1;
	for (size_t k = 2; k < n; k++)
		if (value_decode(f[k]) == -1)
			return -1;
	const char *states = "PDF", *p = strchr(states, f[1][0]);
	if (p == NULL || f[1][0] == '\0' || f[1][1] != '\0')
		return -1;
	qstatus_set(st, (size_t)i, (enum rcpt_state)(p - states),
	    f[2][0] ? f[2] : NULL);
	if (n == 5)
		qstatus_set_remote(st, (size_t)i, f[3], f[4]);
	return 0;
}

/* qstatus_parse - st must be initialised with the recipient count */
int
qstatus_parse(const char *buf, size_t len, struct qstatus *st)
{
	char *text, *line, *next;
	uint64_t v;
	int rv = -1, first = 1;

	if (len == 0 || buf[len - 1] != '\n' || memchr(buf, '\0', len))
		return -1;
	text = xstrndup(buf, len);
	for (line = text; *line; line = next, first = 0) {
		next = strchr(line, '\n');
		*next++ = '\0';
		char *sp = strchr(line, ' ');
		if (sp == NULL)
			goto out;
		*sp++ = '\0';
		if (first) {
			if (strcmp(line, "v") != 0 || strcmp(sp, "1") != 0)
				goto out;
		} else if (strcmp(line, "attempts") == 0) {
			if (parse_uint(sp, 1000000, &v) == -1)
				goto out;
			st->attempts = (unsigned)v;
		} else if (strcmp(line, "next") == 0) {
			if (parse_uint(sp, UINT64_MAX, &v) == -1)
				goto out;
			st->next_attempt = v;
		} else if (strcmp(line, "last") == 0) {
			if (parse_uint(sp, UINT64_MAX, &v) == -1)
				goto out;
			st->last_attempt = v;
		} else if (strcmp(line, "warned") == 0) {
			if (parse_uint(sp, 1, &v) == -1)
				goto out;
			st->warned = (int)v;
		} else if (strcmp(line, "rcpt") == 0) {
			if (parse_rcpt_line(sp, st) == -1)
				goto out;
		} else
			goto out;
	}
	rv = first ? -1 : 0;
out:
	free(text);
	return rv;
}

int
qstatus_load(const char *id, size_t nrcpts, struct qstatus *st)
{
	return qstatus_load_in(queue_dir(), id, nrcpts, st);
}

int
qstatus_load_in(const char *dir, const char *id, size_t nrcpts,
    struct qstatus *st)
{
	char path[4096], *buf;
	struct stat sb;
	int fd, rv = -1;

	qstatus_init(st, nrcpts);
	snprintf(path, sizeof(path), "%s/%s.st", dir, id);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &sb) == -1 || sb.st_size > STATUS_MAX) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	buf = xmalloc((size_t)sb.st_size + 1);
	if (read(fd, buf, (size_t)sb.st_size) == sb.st_size &&
	    qstatus_parse(buf, (size_t)sb.st_size, st) == 0)
		rv = 0;
	else
		errno = EINVAL;
	free(buf);
	close(fd);
	return rv;
}

int
qstatus_save(const char *id, const struct qstatus *st)
{
	char tmp[4096], path[4096], *text;
	size_t len;
	int fd, saved;

	snprintf(tmp, sizeof(tmp), "%s/%s.st.tmp", queue_dir(), id);
	snprintf(path, sizeof(path), "%s/%s.st", queue_dir(), id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	text = qstatus_serialize(st, &len);
	ssize_t k = write(fd, text, len);
	free(text);
	if (k != (ssize_t)len || fdatasync(fd) == -1) {
		saved = k == -1 || k == (ssize_t)len ? errno : ENOSPC;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return queue_sync();
}

int
qstatus_next_attempt(const char *id, uint64_t *next)
{
	char path[4096], line[256];
	FILE *f;
	int rv = -1;

	snprintf(path, sizeof(path), "%s/%s.st", queue_dir(), id);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "next ", 5) == 0 &&
		    parse_uint(line + 5, UINT64_MAX, next) == 0) {
			rv = 0;
			break;
		}
	}
	fclose(f);
	return rv;
}
