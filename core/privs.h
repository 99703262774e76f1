/*
 * privs.h - who sluiced runs as (privs.c).
 */
#ifndef SLUICE_PRIVS_H
#define SLUICE_PRIVS_H

#include <stddef.h>

struct config;

/*
 * privs_filters_check - -1 with err filled when the pipeline's filters
 * would run as root: root now, and no `user:` (or a user with uid 0) to
 * become, with a non-empty pipeline: and allow_root_filters unset.
 */
int	privs_filters_check(const struct config *, char *err, size_t len);
/*
 * privs_drop - root with `user:` set: give the spool (when spool is 1) to
 * that user, then become it for good (groups, gid, uid); dies when that
 * fails or root could be had back. Not root: nothing to do.
 */
void	privs_drop(const struct config *, int spool);

#endif
