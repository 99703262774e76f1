/*
 * pickup.c - the maildrop pickup: submits the files sluice-sendmail left
 * in SPOOL/maildrop/ (maildrop.h) to the queue, through an SMTP session
 * of sluiced itself (pickup_client.c), so local mail meets the same
 * filters and the same commit as mail from the network.
 *
 * The thread scans the directory at start (mail dropped while sluiced was
 * down), whenever inotify reports a new name, and every PICKUP_SCAN_S
 * seconds (retries, and directories where inotify is missing); .tmp.*
 * files a dead sendmail left are removed after a day. One
 * session carries every file found by a scan, oldest name first.
 * Per file:
 *   250 after the data     the file is removed (event=pickup with the qid)
 *   4xx, or no session     the file stays; the next scan tries again
 *   5xx (sender, every     the file moves to maildrop/failed/, logged as
 *   recipient, the data)   event=pickup-failed with the reply
 * A recipient refused with 5xx while others are taken is logged and
 * dropped. Either way the sender gets a notice of the 5xx refusals
 * (pickup_notice.c), as a bounce would tell it. A crash between the 250 and the unlink submits the file again
 * at the next start: delivery stays at least once, as for the queue.
 * Threads: its own thread; pickup_* API from the main thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "maildrop.h"
#include "pickup.h"
#include "pickup_int.h"
#include "sbuf.h"
#include "server.h"
#include "util.h"

#define PICKUP_SCAN_S	30
#define PICKUP_BATCH	100
#define PICKUP_STALE_S	(24 * 3600)

enum file_result { FILE_DONE, FILE_KEEP, FILE_LOST };

static struct {
	pthread_t thread;
	int started;
	int wake[2];			/* written by pickup_stop() */
	int inotify;			/* -1 without inotify */
	char *dir, *faildir;
	atomic_int stop;
} pk = { .wake = { -1, -1 }, .inotify = -1 };

int
pickup_prepare(const char *spool, char *err, size_t errlen)
{
	struct stat st;

	pk.dir = maildrop_dir(spool);
	xasprintf(&pk.faildir, "%s/failed", pk.dir);
	if ((mkdir(pk.dir, 01733) == -1 && errno != EEXIST) ||
	    chmod(pk.dir, 01733) == -1 ||
	    (mkdir(pk.faildir, 0700) == -1 && errno != EEXIST)) {
		snprintf(err, errlen, "cannot create %s: %s", pk.dir,
		    strerror(errno));
		return -1;
	}
	/* local users must reach maildrop/; queue/ and the rest stay 0700 */
	if (stat(spool, &st) == 0 && (st.st_mode & 0111) != 0111 &&
	    chmod(spool, (st.st_mode & 07777) | 0111) == -1) {
		snprintf(err, errlen, "cannot chmod %s: %s", spool,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* drop_stale - a .tmp.* file a sendmail left when it died while writing:
   removed once a day old (a sendmail still writing it is long gone) */
static void
drop_stale(int dfd, const char *name)
{
	struct stat st;

	if (strncmp(name, ".tmp.", 5) != 0 ||
	    fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    st.st_mtime > time(NULL) - PICKUP_STALE_S)
		return;
	if (unlinkat(dfd, name, 0) == 0)
		log_info("event=pickup-stale file=%s uid=%u", name,
		    (unsigned)st.st_uid);
}

/* list_files - complete maildrop names, sorted; *n of them */
static char **
list_files(size_t *n)
{
	DIR *d = opendir(pk.dir);
	struct dirent *de;
	char **v = NULL;
	size_t cap = 0;

	*n = 0;
	if (d == NULL) {
		log_warn("event=pickup error=\"cannot read %s\"", pk.dir);
		return NULL;
	}
	while ((de = readdir(d)) != NULL && *n < PICKUP_BATCH) {
		if (!maildrop_is_name(de->d_name)) {
			drop_stale(dirfd(d), de->d_name);
			continue;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[(*n)++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (*n > 1)
		qsort(v, *n, sizeof(*v), name_cmp);
	return v;
}

/* read_file - the whole file, NUL-terminated; NULL when it went away */
static char *
read_file(const char *path, size_t *len, unsigned *uid)
{
	uint64_t max = server.conf->limits.message_size;
	struct stat st;
	char *buf;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (max != 0 && (uint64_t)st.st_size > 2 * max + (1 << 20))) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	*uid = (unsigned)st.st_uid;
	buf = xmalloc((size_t)st.st_size + 1);
	*len = 0;
	while (*len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + *len, (size_t)st.st_size - *len);
		if (r <= 0)
			break;
		*len += (size_t)r;
	}
	buf[*len] = '\0';
	close(fd);
	return buf;
}

static void
move_failed(const char *name, unsigned uid, const char *why)
{
	char *from, *to;

	xasprintf(&from, "%s/%s", pk.dir, name);
	xasprintf(&to, "%s/%s", pk.faildir, name);
	if (rename(from, to) == -1) {
		log_warn("event=pickup-failed file=%s error=\"cannot move to "
		    "%s\"", name, pk.faildir);
		unlink(from);		/* never submit it again and again */
	}
	log_warnx("event=pickup-failed file=%s uid=%u moved_to=%s reply=%s",
	    name, uid, log_q(pk.faildir), log_q(why));
	free(from);
	free(to);
}

/* send_rcpts - RCPT each; -1 lost, else how many were taken (*temp: any
   4xx; 5xx refusals appended to refused as "rcpt: reply" lines) */
static int
send_rcpts(struct pk_conn *c, const struct maildrop_msg *m, const char *name,
    int *temp, struct sbuf *refused)
{
	int ok = 0, code;

	*temp = 0;
	for (size_t i = 0; i < m->nrcpts; i++) {
		if ((code = pk_cmd(c, "RCPT TO:<%s>%s%s", m->rcpts[i],
		    m->notify ? " NOTIFY=" : "", m->notify ? m->notify : "")) ==
		    -1)
			return -1;
		if (code / 100 == 2)
			ok++;
		else if (code / 100 == 4)
			*temp = 1;
		else {
			log_warnx("event=pickup-refused file=%s to=<%s> "
			    "reply=%s", name, m->rcpts[i], log_q(c->reply));
			sb_printf(refused, "<%s>: %s\n", m->rcpts[i],
			    c->reply);
		}
	}
	return ok;
}

/* refused - 5xx: aside to failed/, a notice to the sender; 4xx: kept */
static enum file_result
refused(struct pk_conn *c, const struct maildrop_msg *m, const char *name,
    unsigned uid, int code, struct sbuf *why)
{
	char *text;

	if (code == -1)
		return FILE_LOST;
	if (code / 100 != 5) {
		log_info("event=pickup status=deferred file=%s reply=%s", name,
		    log_q(c->reply));
		return pk_cmd(c, "RSET") == -1 ? FILE_LOST : FILE_KEEP;
	}
	move_failed(name, uid, c->reply);
	if (why->len == 0)
		sb_printf(why, "%s\n", c->reply);
	if (pk_cmd(c, "RSET") == -1)
		return FILE_LOST;
	text = sb_finish(why, NULL);
	why->p = NULL;
	pk_notice(c, m, name, text);
	free(text);
	return FILE_KEEP;
}

/* submit - one parsed file through the session */
static enum file_result
submit(struct pk_conn *c, const struct maildrop_msg *m, const char *name,
    unsigned uid)
{
	int utf8 = !str_is_ascii(m->sender), code, ok, temp;
	struct sbuf why = { 0 };
	enum file_result r;
	char *text;

	for (size_t i = 0; i < m->nrcpts; i++)
		utf8 |= !str_is_ascii(m->rcpts[i]);
	code = pk_cmd(c, "MAIL FROM:<%s>%s%s%s%s%s%s", m->sender,
	    mem_has_8bit(m->data, m->len) ? " BODY=8BITMIME" : "",
	    utf8 ? " SMTPUTF8" : "", m->ret ? " RET=" : "",
	    m->ret ? m->ret : "", m->envid ? " ENVID=" : "",
	    m->envid ? m->envid : "");
	if (code / 100 != 2)
		goto refused;
	if ((ok = send_rcpts(c, m, name, &temp, &why)) == -1) {
		free(why.p);
		return FILE_LOST;
	}
	if (temp || ok == 0) {
		code = temp ? 450 : 550;
		if (temp)
			why.len = 0;
		goto refused;
	}
	if ((code = pk_cmd(c, "DATA")) != 354 ||
	    (code = pk_data(c, m->data, m->len)) / 100 != 2) {
		why.len = 0;		/* the whole message, not recipients */
		goto refused;
	}
	log_info("qid=%s event=pickup file=%s uid=%u from=<%s> nrcpt=%d",
	    pk_queued_as(c->reply), name, uid, m->sender, ok);
	if (why.len > 0) {		/* some recipients were refused */
		text = sb_finish(&why, NULL);
		pk_notice(c, m, name, text);
		free(text);
	}
	return FILE_DONE;
refused:
	r = refused(c, m, name, uid, code, &why);
	free(why.p);
	return r;
}

/* one_file - read, parse and submit one file; remove it once queued */
static enum file_result
one_file(struct pk_conn *c, const char *name)
{
	struct maildrop_msg m;
	enum file_result r;
	char *path, *buf, err[256];
	size_t len;
	unsigned uid = 0;

	xasprintf(&path, "%s/%s", pk.dir, name);
	if ((buf = read_file(path, &len, &uid)) == NULL) {
		if (errno == EFBIG)
			move_failed(name, uid, "file too large");
		free(path);
		return FILE_KEEP;
	}
	if (maildrop_parse(buf, len, &m, err, sizeof(err)) == -1) {
		maildrop_msg_clear(&m);
		move_failed(name, uid, err);
		free(path);
		return FILE_KEEP;
	}
	if ((r = submit(c, &m, name, uid)) == FILE_DONE && unlink(path) == -1)
		log_warn("event=pickup file=%s error=\"cannot remove\"", name);
	maildrop_msg_clear(&m);
	free(path);
	return r;
}

static void
scan(void)
{
	struct pk_conn c;
	size_t n, done = 0;
	char **names = list_files(&n);

	if (n > 0 && pk_open(&c) == 0) {
		for (size_t i = 0; i < n && !atomic_load(&pk.stop); i++) {
			enum file_result r = one_file(&c, names[i]);
			if (r == FILE_LOST)
				break;
			done += r == FILE_DONE;
		}
		pk_close(&c);
		if (done > 0 && fsync_dir(pk.dir) == -1)
			log_warn("event=pickup error=\"cannot sync %s\"", pk.dir);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void *
pickup_main(void *arg)
{
	char buf[4096];

	(void)arg;
	while (!atomic_load(&pk.stop)) {
		struct pollfd p[2] = {
			{ .fd = pk.wake[0], .events = POLLIN },
			{ .fd = pk.inotify, .events = POLLIN },
		};
		scan();
		if (atomic_load(&pk.stop))
			break;
		if (poll(p, 2, PICKUP_SCAN_S * 1000) > 0 &&
		    (p[1].revents & POLLIN))
			while (read(pk.inotify, buf, sizeof(buf)) > 0)
				;	/* any event: scan again */
	}
	return NULL;
}

void
pickup_start(void)
{
	if (pipe2(pk.wake, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("event=init error=\"pipe\"");
	pk.inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (pk.inotify != -1 && inotify_add_watch(pk.inotify, pk.dir,
	    IN_MOVED_TO) == -1) {
		close(pk.inotify);
		pk.inotify = -1;
	}
	if (pk.inotify == -1)
		log_warn("event=init warning=\"no inotify on %s: scanning "
		    "every %ds\"", pk.dir, PICKUP_SCAN_S);
	if (pthread_create(&pk.thread, NULL, pickup_main, NULL) != 0)
		fatalx("event=init error=\"cannot start the pickup thread\"");
	pk.started = 1;
}

void
pickup_stop(void)
{
	atomic_store(&pk.stop, 1);
	if (pk.wake[1] != -1)
		(void)!write(pk.wake[1], "x", 1);
}

void
pickup_join(void)
{
	if (pk.started)
		pthread_join(pk.thread, NULL);
	pk.started = 0;
	for (int i = 0; i < 2; i++)
		if (pk.wake[i] != -1)
			close(pk.wake[i]);
	if (pk.inotify != -1)
		close(pk.inotify);
	pk.wake[0] = pk.wake[1] = pk.inotify = -1;
	free(pk.dir);
	free(pk.faildir);
	pk.dir = pk.faildir = NULL;
}
