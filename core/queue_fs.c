/*
 * queue_fs.c - spool directories, message commit and reading (queue.h).
 *
 * Commit order, each step for a reason:
 *   1. the message is written to a file no message name points at: a
 *      free file (queue/free.<n>, written over from offset 0) when it was
 *      held in memory until the end of data, else queue/<qid>.in, made
 *      when it outgrew memory (O_EXCL, or a free file renamed to that
 *      name: an id collision fails instead of mixing two messages),
 *   2. the envelope and footer are appended: the file is self-describing,
 *   3. fdatasync: data and size are on disk before the name points at them,
 *   4. renameat2(that name, <qid>, RENAME_NOREPLACE): the atomic commit
 *      point, which can never overwrite another message,
 *   5. fsync of queue/ (shared with concurrent commits, dirsync.c): the
 *      new name itself survives a power loss.
 * Every rename stays inside queue/: renames across directories take a
 * filesystem-wide lock, which a busy spool should not queue on.
 * A failure at any step recycles the file; at start, .in files left by a
 * crash are recycled too, and a free file is never read as a message:
 * nothing half-stored is ever delivered.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "dirsync.h"
#include "log.h"
#include "queue.h"
#include "queue_recycle.h"
#include "util.h"

#define FOOTER_FMT	"SLUICE-ENV %016" PRIx64 " %08" PRIx32 "\n"
#define FOOTER_LEN	37
#define ENVELOPE_MAX	(64u * 1024 * 1024)

static struct {
	char *spool, *queue;
	int lockfd;
	struct dirsync qsync;
} q = { .lockfd = -1, .qsync = { .fd = -1 } };

struct qwriter {
	char id[QID_LEN + 1];
	struct evbuffer *mem;
	int fd;			/* the file being written, else -1 */
	char *src;		/* its name, malloc'ed: queue/<qid>.in
				   (spilled while received) or
				   queue/free.<n> (written whole at commit) */
	uint64_t size;
	int err;		/* sticky errno of a failed write */
};

static int
set_err(char *err, size_t errlen, const char *what, const char *path)
{
	snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
	return -1;
}

/* has_suffix - name ends with suf */
static int
has_suffix(const char *name, const char *suf)
{
	size_t n = strlen(name), k = strlen(suf);

	return n > k && strcmp(name + n - k, suf) == 0;
}

/*
 * clean_partial - recycle what a previous run was receiving (<qid>.in)
 * and drop status files it was writing (<qid>.st.tmp).
 */
static void
clean_partial(void)
{
	DIR *d = opendir(q.queue);
	struct dirent *de;
	char path[4096];
	int n = 0;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", q.queue, de->d_name);
		if (has_suffix(de->d_name, ".in")) {
			if (recycle_give(path) == 0)
				n++;
		} else if (has_suffix(de->d_name, ".st.tmp"))
			unlink(path);
	}
	closedir(d);
	if (n > 0)
		log_info("event=recovery removed_partial=%d", n);
}

int
queue_open(const char *spool, char *err, size_t errlen)
{
	static const char *subdirs[] = {
	    "queue", "hold", "corrupt", "quarantine" };
	char *path;

	q.spool = xstrdup(spool);
	if (mkdir_p(spool, 0700) == -1)
		return set_err(err, errlen, "cannot create spool", spool);
	for (size_t i = 0; i < nitems(subdirs); i++) {
		xasprintf(&path, "%s/%s", spool, subdirs[i]);
		if (mkdir(path, 0700) == -1 && errno != EEXIST) {
			set_err(err, errlen, "cannot create", path);
			free(path);
			return -1;
		}
		free(path);
	}
	xasprintf(&path, "%s/lock", spool);
	q.lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (q.lockfd == -1 || flock(q.lockfd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "spool %s is in use by another "
			    "sluiced", spool);
		else
			set_err(err, errlen, "cannot lock", path);
		free(path);
		return -1;
	}
	free(path);
	xasprintf(&q.queue, "%s/queue", spool);
	if (dirsync_init(&q.qsync, q.queue) == -1)
		return set_err(err, errlen, "cannot open", q.queue);
	if (recycle_init(q.queue) == -1)
		return set_err(err, errlen, "cannot scan", q.queue);
	clean_partial();
	return 0;
}

void
queue_close(void)
{
	dirsync_clear(&q.qsync);
	recycle_clear();
	if (q.lockfd != -1)
		close(q.lockfd);
	q.lockfd = -1;
	free(q.spool);
	free(q.queue);
	q.spool = q.queue = NULL;
}

const char *
queue_dir(void)
{
	return q.queue;
}

int
queue_sync(void)
{
	return dirsync_wait(&q.qsync);
}

struct qwriter *
qwriter_new(const char *id)
{
	struct qwriter *w = xcalloc(1, sizeof(*w));

	strlcpy_s(w->id, id, sizeof(w->id));
	w->mem = evbuffer_new();
	w->fd = -1;
	return w;
}

/* partial_create - queue/<qid>.in, where a message that outgrows memory
   is written while it is received */
static int
partial_create(struct qwriter *w)
{
	char *path;

	free(w->src);
	xasprintf(&w->src, "%s/%s.in", q.queue, w->id);
	path = w->src;
	if (recycle_take(path) == 0) {	/* written over from offset 0 */
		w->fd = open(path, O_RDWR | O_CLOEXEC);	/* filters read back */
		if (w->fd != -1)
			return 0;
		unlink(path);
	}
	w->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	return w->fd == -1 ? -1 : 0;
}

/* flush_mem - move what is buffered in memory to the .in file */
static int
flush_mem(struct qwriter *w)
{
	if (w->fd == -1 && partial_create(w) == -1)
		return -1;
	while (evbuffer_get_length(w->mem) > 0)
		if (evbuffer_write(w->mem, w->fd) == -1 && errno != EINTR)
			return -1;
	return 0;
}

int
qwriter_append(struct qwriter *w, const char *p, size_t n)
{
	if (w->err != 0)
		return -1;
	evbuffer_add(w->mem, p, n);
	w->size += n;
	if (evbuffer_get_length(w->mem) >= QUEUE_SPILL_BYTES &&
	    flush_mem(w) == -1) {
		w->err = errno ? errno : EIO;
		evbuffer_drain(w->mem, evbuffer_get_length(w->mem));
		return -1;
	}
	return 0;
}

int
qwriter_error(const struct qwriter *w)
{
	return w->err;
}

uint64_t
qwriter_size(const struct qwriter *w)
{
	return w->size;
}

/*
 * commit_rename - <qid>.in -> <qid>, never replacing a file; quarantined
 * messages go to quarantine/<qid> instead (rare: a cross-directory rename)
 */
static int
commit_rename(const struct qwriter *w, int quarantine)
{
	const char *from = w->src;
	char to[4096];

	if (quarantine)
		snprintf(to, sizeof(to), "%s/quarantine/%s", q.spool, w->id);
	else
		snprintf(to, sizeof(to), "%s/%s", q.queue, w->id);
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (link(from, to) == -1)		/* filesystems without flags */
		return -1;
	unlink(from);
	return 0;
}

int
qwriter_commit(struct qwriter *w, const struct envelope *env)
{
	char footer[FOOTER_LEN + 1], *text = NULL;
	size_t tlen;
	int saved;

	if (w->err != 0) {
		errno = w->err;
		goto fail;
	}
	/* a message still in memory is written whole over a free file under
	   its free name: one rename (to <qid>) instead of two */
	if (w->fd == -1) {
		char path[4096];
		if ((w->fd = recycle_open(path, sizeof(path))) != -1)
			w->src = xstrdup(path);
	}
	text = envelope_serialize(env, &tlen);
	snprintf(footer, sizeof(footer), FOOTER_FMT, w->size, (uint32_t)tlen);
	evbuffer_add(w->mem, text, tlen);	/* one write with the tail */
	evbuffer_add(w->mem, footer, FOOTER_LEN);
	if (flush_mem(w) == -1 ||
	    ftruncate(w->fd, (off_t)(w->size + tlen + FOOTER_LEN)) == -1 ||
	    fdatasync(w->fd) == -1)
		goto fail;
	if (close(w->fd) == -1) {
		w->fd = -1;
		goto fail;
	}
	w->fd = -1;
	if (commit_rename(w, env->quarantine) == -1)
		goto fail;
	if (env->quarantine) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/quarantine", q.spool);
		if (fsync_dir(dir) == -1)
			goto fail;
	} else if (dirsync_wait(&q.qsync) == -1)
		goto fail;
	free(text);
	return 0;
fail:
	saved = errno;
	free(text);
	if (w->fd != -1)
		close(w->fd);
	w->fd = -1;
	if (w->src != NULL)
		recycle_give(w->src);
	w->err = saved;
	errno = saved;
	return -1;
}

int
qwriter_read_all(struct qwriter *w, char **data, size_t *len)
{
	size_t mem = evbuffer_get_length(w->mem), disk = (size_t)w->size - mem;
	char *buf;

	if (w->err != 0) {
		errno = w->err;
		return -1;
	}
	buf = xmalloc((size_t)w->size + 1);
	if (disk > 0 && pread(w->fd, buf, disk, 0) != (ssize_t)disk) {
		free(buf);
		errno = EIO;
		return -1;
	}
	evbuffer_copyout(w->mem, buf + disk, mem);
	buf[w->size] = '\0';
	*data = buf;
	*len = (size_t)w->size;
	return 0;
}

static int
restart(struct qwriter *w)
{
	evbuffer_drain(w->mem, evbuffer_get_length(w->mem));
	w->size = 0;
	if (w->fd != -1 && (ftruncate(w->fd, 0) == -1 ||
	    lseek(w->fd, 0, SEEK_SET) == -1)) {
		w->err = errno;
		return -1;
	}
	return 0;
}

int
qwriter_replace(struct qwriter *w, const char *data, size_t len)
{
	if (restart(w) == -1)
		return -1;
	return qwriter_append(w, data, len);
}

/*
 * qwriter_replace_ref - new content = head (copied) + tail (referenced,
 * not copied: the caller keeps it alive until the writer is committed or
 * freed). Saves copying a large body when only headers changed.
 */
int
qwriter_replace_ref(struct qwriter *w, const char *head, size_t hlen,
    const char *tail, size_t tlen)
{
	if (restart(w) == -1 || qwriter_append(w, head, hlen) == -1)
		return -1;
	if (w->fd != -1 || evbuffer_get_length(w->mem) + tlen >=
	    QUEUE_SPILL_BYTES)
		return qwriter_append(w, tail, tlen);	/* goes to disk */
	evbuffer_add_reference(w->mem, tail, tlen, NULL, NULL);
	w->size += tlen;
	return 0;
}

void
qwriter_free(struct qwriter *w)
{
	if (w == NULL)
		return;
	if (w->fd != -1) {
		close(w->fd);
		recycle_give(w->src);
	}
	free(w->src);
	evbuffer_free(w->mem);
	free(w);
}

/* read_footer - locate the envelope; -1 when the file is not ours */
static int
read_footer(int fd, uint64_t *off, uint32_t *len)
{
	char buf[FOOTER_LEN + 1];
	struct stat st;

	if (fstat(fd, &st) == -1 || st.st_size < FOOTER_LEN)
		return -1;
	if (pread(fd, buf, FOOTER_LEN, st.st_size - FOOTER_LEN) != FOOTER_LEN)
		return -1;
	buf[FOOTER_LEN] = '\0';
	if (sscanf(buf, "SLUICE-ENV %16" SCNx64 " %8" SCNx32 "\n", off, len) != 2)
		return -1;
	if (*len > ENVELOPE_MAX ||
	    *off + *len + FOOTER_LEN != (uint64_t)st.st_size)
		return -1;
	return 0;
}

int
qmsg_open(const char *id, struct qmsg *m, char *err, size_t errlen)
{
	return qmsg_open_in("queue", id, m, err, errlen);
}

int
qmsg_open_in(const char *subdir, const char *id, struct qmsg *m, char *err,
    size_t errlen)
{
	char path[4096], *text;
	uint64_t off;
	uint32_t len;

	memset(m, 0, sizeof(*m));
	snprintf(path, sizeof(path), "%s/%s/%s", q.spool, subdir, id);
	if ((m->fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return set_err(err, errlen, "cannot open", path);
	if (read_footer(m->fd, &off, &len) == -1) {
		snprintf(err, errlen, "queue file %s: bad footer", id);
		goto fail;
	}
	text = xmalloc(len + 1);
	if (pread(m->fd, text, len, (off_t)off) != (ssize_t)len) {
		snprintf(err, errlen, "queue file %s: short read", id);
		free(text);
		goto fail;
	}
	if (envelope_parse(text, len, &m->env, err, errlen) == -1) {
		free(text);
		goto fail;
	}
	free(text);
	if (strcmp(m->env.id, id) != 0) {
		snprintf(err, errlen, "queue file %s: envelope of %s", id,
		    m->env.id);
		envelope_clear(&m->env);
		goto fail;
	}
	m->msg_len = off;
	return 0;
fail:
	close(m->fd);
	m->fd = -1;
	errno = EINVAL;
	return -1;
}

void
qmsg_close(struct qmsg *m)
{
	if (m->fd != -1)
		close(m->fd);
	m->fd = -1;
	envelope_clear(&m->env);
}

int
queue_remove_message(const char *id)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", q.queue, id);
	if (recycle_give(path) == -1 && errno != ENOENT)
		return -1;
	return 0;
}

int
queue_remove(const char *id)
{
	char path[4096];

	if (queue_remove_message(id) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/%s.st", q.queue, id);
	if (unlink(path) == -1 && errno != ENOENT)
		return -1;
	return 0;
}

/* move - a message (and its status) from one spool subdir to another */
static int
move(const char *id, const char *from_sub, const char *to_sub)
{
	char from[4096], to[4096];

	snprintf(from, sizeof(from), "%s/%s/%s.st", q.spool, from_sub, id);
	snprintf(to, sizeof(to), "%s/%s/%s.st", q.spool, to_sub, id);
	if (rename(from, to) == -1 && errno != ENOENT)
		return -1;
	snprintf(from, sizeof(from), "%s/%s/%s", q.spool, from_sub, id);
	snprintf(to, sizeof(to), "%s/%s/%s", q.spool, to_sub, id);
	if (rename(from, to) == -1)
		return -1;
	snprintf(to, sizeof(to), "%s/%s", q.spool, to_sub);
	if (fsync_dir(to) == -1)
		return -1;
	snprintf(from, sizeof(from), "%s/%s", q.spool, from_sub);
	return strcmp(from_sub, "queue") == 0 ? queue_sync() :
	    fsync_dir(from);
}

int
queue_move(const char *id, const char *subdir)
{
	return move(id, "queue", subdir);
}

int
queue_unhold(const char *id)
{
	return move(id, "hold", "queue");
}

int
queue_remove_held(const char *id)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/hold/%s", q.spool, id);
	if (unlink(path) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/hold/%s.st", q.spool, id);
	if (unlink(path) == -1 && errno != ENOENT)
		return -1;
	return 0;
}

const char *
queue_spool(void)
{
	return q.spool;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* is_status - "<qid>.st"; orphans are removed by the scan */
static int
status_of(const char *name, char *id)
{
	size_t n = strlen(name);

	if (n != QID_LEN + 3 || strcmp(name + QID_LEN, ".st") != 0)
		return 0;
	memcpy(id, name, QID_LEN);
	id[QID_LEN] = '\0';
	return qid_valid(id);
}

/*
 * collect_ids - the message ids in directory d (path dir), sorted; with
 * clean, status files whose message is gone are removed on the way
 */
static char **
collect_ids(DIR *d, const char *dir, int clean, size_t *np)
{
	struct dirent *de;
	char **ids = NULL, id[QID_LEN + 1], path[4096];
	size_t n = 0, cap = 0;
	struct stat st;

	while ((de = readdir(d)) != NULL) {
		if (clean && status_of(de->d_name, id)) {
			snprintf(path, sizeof(path), "%s/%s", dir, id);
			if (stat(path, &st) == -1 && errno == ENOENT)
				unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (!qid_valid(de->d_name))
			continue;
		if (n == cap)
			ids = xreallocarray(ids, cap = cap ? cap * 2 : 256,
			    sizeof(*ids));
		ids[n++] = xstrdup(de->d_name);
	}
	if (n > 0)
		qsort(ids, n, sizeof(*ids), cmp_str);
	*np = n;
	return ids;
}

char **
queue_ids(const char *sub, size_t *np)
{
	char dir[4096];
	char **ids;
	DIR *d;

	*np = 0;
	snprintf(dir, sizeof(dir), "%s/%s", q.spool, sub);
	if ((d = opendir(dir)) == NULL)
		return NULL;
	ids = collect_ids(d, dir, 0, np);
	closedir(d);
	return ids;
}

int
queue_scan(void (*fn)(const char *, void *), void *arg)
{
	DIR *d = opendir(q.queue);
	char **ids;
	size_t n;

	if (d == NULL)
		return -1;
	ids = collect_ids(d, q.queue, 1, &n);
	closedir(d);
	for (size_t i = 0; i < n; i++) {
		fn(ids[i], arg);
		free(ids[i]);
	}
	free(ids);
	return 0;
}
