/*
 * sm_drop.c - hand one message to the maildrop (sendmail.h, maildrop.h)
 *
 * Once this returns 0 the file is on disk (fsynced, renamed, directory
 * fsynced) and sluiced will pick it up, now or at its next start.
 * A full disk is EX_TEMPFAIL (try again later), anything else
 * (permissions, a missing spool) EX_CANTCREAT.
 */
#include <errno.h>
#include <stdio.h>
#include <sysexits.h>

#include "maildrop.h"
#include "sendmail.h"

int
sm_drop(const struct sm_env *env, const char *sender,
    const struct sm_rcpts *rcpts, const struct sm_dsn *dsn, const char *msg,
    size_t len, char *name, size_t namelen, char *err, size_t errlen)
{
	struct maildrop_dsn md = { 0 };

	if (rcpts->n == 0) {
		snprintf(err, errlen, "no recipients");
		return EX_USAGE;
	}
	if (dsn != NULL) {
		md.notify = dsn->notify[0] ? dsn->notify : NULL;
		md.ret = dsn->ret[0] ? dsn->ret : NULL;
		md.envid = dsn->envid[0] ? dsn->envid : NULL;
	}
	if (maildrop_write(env->maildrop, sender, rcpts->v, rcpts->n, &md, msg,
	    len, name, namelen, err, errlen) == 0)
		return 0;
	return errno == ENOSPC || errno == EDQUOT || errno == EIO ?
	    EX_TEMPFAIL : EX_CANTCREAT;
}
