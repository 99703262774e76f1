/*
 * maildrop.h - the maildrop: messages from local programs, waiting for
 * sluiced to pick them up (SPOOL/maildrop/)
 *
 * sluice-sendmail writes one file per message with maildrop_write(); the
 * pickup thread of sluiced (pickup.c) reads them with maildrop_read() and
 * submits them through an SMTP session of its own.
 *
 * File format, version 1 (text, one item a line):
 *   SLUICE-MAILDROP 1
 *   S sender            (empty for the null sender <>)
 *   R recipient         (one line each, at least one)
 *   N notify            optional, DSN requests (sendmail -N -R -V) as
 *   T ret               the values of NOTIFY= (every recipient), RET=
 *   V envid             and ENVID= (xtext); sluiced checks them again
 *   (empty line)
 *   the message, every line ending in CRLF, not dot-stuffed
 * Names: "<16 hex: microseconds>.<8 hex: pid>.<16 hex: random>"; a file
 * being written is ".tmp.<name>" in the same directory, renamed when
 * complete and fsynced, so a name without a leading dot is always whole.
 * Errors: -1 with a message in err (errno kept); nothing is logged here.
 * Threads: any.
 */
#ifndef SLUICE_MAILDROP_H
#define SLUICE_MAILDROP_H

#include <stddef.h>
#include <stdint.h>

#define MAILDROP_MAGIC	"SLUICE-MAILDROP 1\n"
#define MAILDROP_NAME_MAX	64

/* DSN requests of a submission: ESMTP parameter values, NULL if none */
struct maildrop_dsn {
	const char *notify, *ret, *envid;
};

struct maildrop_msg {
	char *sender;		/* "" for <> */
	char *notify, *ret, *envid;	/* NULL when not given */
	char **rcpts;
	size_t nrcpts;
	char *data;		/* the message (CRLF lines) */
	size_t len;
	char *buf;		/* owns everything above */
};

/* maildrop_dir - SPOOL/maildrop, malloc'ed */
char	*maildrop_dir(const char *spool);
/* maildrop_is_name - d_name is a complete maildrop file (not .tmp.*) */
int	 maildrop_is_name(const char *);
int	 maildrop_write(const char *dir, const char *sender,
	    char *const *rcpts, size_t nrcpts, const struct maildrop_dsn *,
	    const char *msg, size_t len,
	    char *name, size_t namelen, char *err, size_t errlen);
/* maildrop_parse - buf (len bytes, NUL-terminated, taken over) */
int	 maildrop_parse(char *buf, size_t len, struct maildrop_msg *,
	    char *err, size_t errlen);
void	 maildrop_msg_clear(struct maildrop_msg *);

#endif
