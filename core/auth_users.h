/*
 * auth_users.h - the SMTP AUTH password table: auth.users_file, lines of
 * "user:hash" with crypt(3) hashes (yescrypt "$y$", gost-yescrypt "$gy$",
 * scrypt "$7$", SHA-512-crypt "$6$", SHA-256-crypt "$5$", bcrypt "$2b$",
 * "$2y$", "$2a$"). Blank lines and lines starting with '#' are skipped;
 * DES and MD5-crypt hashes, malformed lines and duplicate users are errors
 * that name the file and line.
 *
 * API: auth_users_load() at start and at reload, auth_users_verify() on a
 * thread that may block (a yescrypt check takes tens of milliseconds: the
 * session hands it to a pool, never to its event loop).
 * Threads: a loaded table is read-only and may be shared.
 */
#ifndef SLUICE_AUTH_USERS_H
#define SLUICE_AUTH_USERS_H

#include <stddef.h>

#define AUTH_USERS_LINE_MAX	1024

struct auth_users;
struct config;

enum auth_check {
	AUTH_CHECK_OK,			/* user known, password right */
	AUTH_CHECK_BAD,			/* user known, password wrong */
	AUTH_CHECK_UNKNOWN,		/* no such user in the file */
};

/* NULL with err ("FILE:LINE: what") on failure */
struct auth_users *auth_users_load(const char *path, char *err,
	    size_t errlen);
void	auth_users_free(struct auth_users *);
/* auth_users_check - load c's users file and drop it (sluiced -t) */
int	auth_users_check(const struct config *c, char *err, size_t errlen);
size_t	auth_users_count(const struct auth_users *);
/* blocking; an unknown user costs a hash too (no timing oracle) */
enum auth_check auth_users_verify(const struct auth_users *,
	    const char *user, const char *password);

#endif
