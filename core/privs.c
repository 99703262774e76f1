/*
 * privs.c - who sluiced runs as. Started as root with `user:` set, it
 * binds its ports and opens the spool as root, hands the spool to that
 * user, then becomes it for good: supplementary groups cut to the user's
 * own group, then gid, then uid (real, effective and saved), and checks
 * that root cannot be had back. Filter code (Lua scripts, C plugins, the
 * milter client) parses what strangers send: it never runs as root
 * unless allow_root_filters says so (documented as dangerous).
 *
 * API: privs.h. Called from the main thread at start (and the filter
 * check again at SIGHUP, reload.c), before any other thread exists.
 */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "privs.h"
#include "util.h"

int
privs_filters_check(const struct config *c, char *err, size_t len)
{
	struct passwd *pw;

	if (c->nfilters == 0 || c->allow_root_filters || geteuid() != 0)
		return 0;
	if (c->user != NULL && ((pw = getpwnam(c->user)) == NULL ||
	    pw->pw_uid != 0))
		return 0;		/* an unknown user fails at the drop */
	snprintf(err, len, "refusing to run the filters of 'pipeline:' as "
	    "root (%s): set 'user:' to an unprivileged user, or "
	    "'allow_root_filters: true' (dangerous)", c->user == NULL ?
	    "no 'user:' is set" : "'user:' has uid 0");
	return -1;
}

/* chown_dir - the directory and what it holds (one level, no links) */
static void
chown_dir(const char *path, uid_t uid, gid_t gid)
{
	struct dirent *de;
	DIR *d;

	if (chown(path, uid, gid) == -1)
		fatal("event=init error=\"cannot chown %s\"", path);
	if ((d = opendir(path)) == NULL)
		fatal("event=init error=\"cannot read %s\"", path);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fchownat(dirfd(d), de->d_name, uid, gid,
		    AT_SYMLINK_NOFOLLOW) == -1)
			fatal("event=init error=\"cannot chown %s/%s\"", path,
			    de->d_name);
	}
	closedir(d);
}

/* give_spool - the spool and its directories (queue_open made them) */
static void
give_spool(const char *spool, uid_t uid, gid_t gid)
{
	static const char *const subs[] = {
		"queue", "hold", "corrupt", "quarantine"
	};
	char *p;

	chown_dir(spool, uid, gid);	/* with lock, control */
	for (size_t i = 0; i < nitems(subs); i++) {
		xasprintf(&p, "%s/%s", spool, subs[i]);
		chown_dir(p, uid, gid);
		free(p);
	}
}

void
privs_drop(const struct config *c, int spool)
{
	struct passwd *pw;
	gid_t groups[2];

	if (geteuid() != 0)
		return;
	if (c->user == NULL) {
		log_warnx("event=init warning=\"running as root: set user:\"");
		return;
	}
	if ((pw = getpwnam(c->user)) == NULL)
		fatalx("event=init error=\"unknown user %s\"", c->user);
	if (pw->pw_uid == 0) {
		log_warnx("event=init warning=\"user: %s is root\"", c->user);
		return;
	}
	if (spool)
		give_spool(c->spool, pw->pw_uid, pw->pw_gid);
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1)
		fatal("event=init error=\"cannot become %s\"", c->user);
	if (setuid(0) != -1 || seteuid(0) != -1 || setgid(0) != -1 ||
	    getgroups(2, groups) != 1 || groups[0] != pw->pw_gid ||
	    getegid() != pw->pw_gid || getgid() != pw->pw_gid)
		fatalx("event=init error=\"privileges not fully dropped to "
		    "%s\"", c->user);
	log_info("event=init user=%s uid=%u gid=%u", c->user,
	    (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
}
