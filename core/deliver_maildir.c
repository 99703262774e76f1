/*
 * deliver_maildir.c - local delivery into Maildir mailboxes.
 *
 * The message is written to an unnamed file in new/ (O_TMPFILE; or under
 * tmp/ where that is not available), fsynced, given its unique name
 * <sec>.M<usec>P<pid>Q<n>.<host>,S=<size> in new/, and new/ is fsynced:
 * once this returns DELIVER_OK the mail survives a crash, and no reader
 * ever sees a partial file. Return-Path: and Delivered-To: are prepended; line ends are
 * stored as LF, as Maildir readers expect.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "dirsync.h"
#include "transport.h"
#include "util.h"

#define COPY_CHUNK	(64 * 1024)

static atomic_uint delivery_seq;
static atomic_int use_tmpfile = 1;	/* O_TMPFILE works until shown not to */

int
maildir_path(const char *tmpl, const char *local, const char *domain,
    char *buf, size_t len)
{
	size_t o = 0;

	if (local[0] == '\0' || local[0] == '.' || strchr(local, '/') ||
	    domain[0] == '\0' || domain[0] == '.' || strchr(domain, '/'))
		return -1;
	for (const char *p = tmpl; *p; p++) {
		const char *add = NULL;
		char one[2] = { *p, '\0' };

		if (*p == '%' && p[1] == 'u')
			add = local, p++;
		else if (*p == '%' && p[1] == 'd')
			add = domain, p++;
		else if (*p == '%' && p[1] == '%')
			add = "%", p++;
		else
			add = one;
		size_t n = strlen(add);
		if (o + n >= len)
			return -1;
		memcpy(buf + o, add, n);
		o += n;
	}
	buf[o] = '\0';
	return 0;
}

/* host_part - our hostname with '/' and ':' encoded, per the convention */
static void
host_part(const char *host, char *buf, size_t len)
{
	size_t o = 0;

	for (; *host && o + 5 < len; host++) {
		if (*host == '/')
			o += (size_t)snprintf(buf + o, len - o, "\\057");
		else if (*host == ':')
			o += (size_t)snprintf(buf + o, len - o, "\\072");
		else
			buf[o++] = *host;
	}
	buf[o] = '\0';
}

/*
 * maildir_crlf_to_lf - in place, drop every CR that is followed by LF;
 * returns the new length. A CR in the last byte is left out and flagged
 * in *cr_at_end: whether it is kept depends on the next chunk's first
 * byte. Runs between CRs move with memchr/memmove, not byte by byte.
 */
size_t
maildir_crlf_to_lf(char *buf, size_t n, int *cr_at_end)
{
	size_t o = 0, i = 0;

	*cr_at_end = 0;
	while (i < n) {
		char *cr = memchr(buf + i, '\r', n - i);
		size_t end = cr != NULL ? (size_t)(cr - buf) : n;

		if (o != i)
			memmove(buf + o, buf + i, end - i);
		o += end - i;
		if (cr == NULL)
			break;
		if (end + 1 == n) {
			*cr_at_end = 1;
			break;
		}
		if (buf[end + 1] != '\n')
			buf[o++] = '\r';	/* a bare CR stays */
		i = end + 1;
	}
	return o;
}

/* copy_lf - copy the queued message, CRLF becoming LF */
static int
copy_lf(int out, int in, uint64_t len)
{
	char *buf = xmalloc(COPY_CHUNK);
	uint64_t off = 0;
	int pending_cr = 0, rv = -1;

	while (off < len) {
		size_t want = len - off < COPY_CHUNK ? (size_t)(len - off) :
		    COPY_CHUNK;
		ssize_t k = pread(in, buf, want, (off_t)off);
		if (k <= 0) {
			if (k == 0)
				errno = EIO;
			goto out;
		}
		if (pending_cr && buf[0] != '\n' &&
		    write_all(out, "\r", 1) == -1)
			goto out;
		size_t o = maildir_crlf_to_lf(buf, (size_t)k, &pending_cr);
		if (write_all(out, buf, o) == -1)
			goto out;
		off += (uint64_t)k;
	}
	if (pending_cr && write_all(out, "\r", 1) == -1)
		goto out;
	rv = 0;
out:
	free(buf);
	return rv;
}

static void
result(struct delivery *d, enum deliver_result r, const char *fmt,
    const char *arg)
{
	d->res->result = r;
	snprintf(d->res->text, sizeof(d->res->text), fmt, arg);
}

/* temp_or_perm - disk trouble is temporary; a path we cannot make is not */
static enum deliver_result
classify(int err)
{
	return (err == ENOTDIR || err == ENAMETOOLONG || err == ELOOP) ?
	    DELIVER_PERM : DELIVER_TEMP;
}

/* maildir_create - make tmp/, new/ and cur/ (and the parents) */
static int
maildir_create(struct delivery *d)
{
	char sub[4096];
	int saved;

	for (const char *s = "tmp\0new\0cur\0"; *s; s += 4) {
		snprintf(sub, sizeof(sub), "%s/%s", d->mailbox, s);
		if (mkdir_p(sub, 0700) == -1) {
			saved = errno;
			if (classify(saved) == DELIVER_PERM)
				result(d, DELIVER_PERM, "5.2.0 cannot create "
				    "Maildir: %s", strerror(saved));
			else
				result(d, DELIVER_TEMP, "4.2.0 cannot create "
				    "Maildir: %s", strerror(saved));
			return -1;
		}
	}
	return 0;
}

/*
 * open_staging - where the message is written before it appears in new/:
 * an unnamed O_TMPFILE inode in new/ (linked in when complete: no tmp/
 * entry, no rename between directories), or tmp/<name> where the kernel
 * or filesystem cannot do that. Creates the Maildir on first use.
 */
static int
open_staging(struct delivery *d, const char *newdir, const char *tmp,
    int *unnamed)
{
	int fd, created = 0;

	for (;;) {
		*unnamed = atomic_load(&use_tmpfile);
		if (*unnamed) {
			fd = open(newdir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
			if (fd == -1 && (errno == EOPNOTSUPP || errno == EISDIR ||
			    errno == EINVAL)) {
				atomic_store(&use_tmpfile, 0);
				continue;
			}
		} else
			fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			    0600);
		if (fd != -1 || errno != ENOENT || created)
			return fd;
		if (maildir_create(d) == -1)	/* first delivery here */
			return -2;
		created = 1;
	}
}

/* publish - give the complete file its name in new/ */
static int
publish(int fd, int unnamed, const char *tmp, const char *new)
{
	char proc[64];

	if (!unnamed)
		return rename(tmp, new);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, new, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno == ENOENT && access("/proc/self/fd", F_OK) == -1)
		atomic_store(&use_tmpfile, 0);	/* no /proc: use tmp/ */
	return -1;
}

/* my_pid - getpid() once: a Maildir name per message need not cost a
   system call (sluiced never forks after start) */
static int
my_pid(void)
{
	static _Atomic int pid;
	int p = atomic_load_explicit(&pid, memory_order_relaxed);

	if (p == 0) {
		p = (int)getpid();
		atomic_store_explicit(&pid, p, memory_order_relaxed);
	}
	return p;
}

void
maildir_deliver(struct delivery *d)
{
	const struct envelope *e = &d->msg->env;
	char tmp[4096], new[4096], newdir[4096], name[512], host[256], *hdr;
	struct timeval tv;
	struct stat st;
	int fd = -1, saved, unnamed;

	gettimeofday(&tv, NULL);
	host_part(d->hostname, host, sizeof(host));
	int hlen = xasprintf(&hdr, "Return-Path: <%s>\nDelivered-To: %s\n",
	    e->sender, e->rcpts[d->rcpt].addr);
	snprintf(name, sizeof(name), "%lld.M%06ldP%dQ%u.%s",
	    (long long)tv.tv_sec, (long)tv.tv_usec, my_pid(),
	    atomic_fetch_add(&delivery_seq, 1), host);
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", d->mailbox, name);
	snprintf(newdir, sizeof(newdir), "%s/new", d->mailbox);

	if ((fd = open_staging(d, newdir, tmp, &unnamed)) == -2) {
		free(hdr);			/* result already set */
		return;
	}
	if (fd == -1 || write_all(fd, hdr, (size_t)hlen) == -1 ||
	    copy_lf(fd, d->msg->fd, d->msg->msg_len) == -1 ||
	    fsync(fd) == -1 || fstat(fd, &st) == -1)
		goto fail;
	/* the final name carries the size, as Dovecot and Courier expect */
	size_t nl = strlen(name);
	snprintf(name + nl, sizeof(name) - nl, ",S=%llu",
	    (unsigned long long)st.st_size);
	snprintf(new, sizeof(new), "%s/%s", newdir, name);
	if (publish(fd, unnamed, tmp, new) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (dirsync_path(newdir) == -1)
		goto fail;
	free(hdr);
	result(d, DELIVER_OK, "2.0.0 delivered to maildir as %s", name);
	return;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	if (!unnamed)
		unlink(tmp);
	free(hdr);
	if (saved == ENOSPC || saved == EDQUOT)
		result(d, DELIVER_TEMP, "4.2.2 mailbox full: %s",
		    strerror(saved));
	else
		result(d, DELIVER_TEMP, "4.3.0 maildir write failed: %s",
		    strerror(saved));
}
