/*
 * sendmail.h - sluice-sendmail, the sendmail-compatible injector
 *
 * Files: sendmail.c (main: configuration, the two modes, exit codes),
 * sm_opts.c (the command line), sm_dsn.c (its DSN options), sm_input.c (the message from stdin: dot
 * handling, CRLF, limits), sm_header.c (the header: -t recipients, Bcc
 * removal, From/Date/Message-ID when missing), sm_addr.c (address lists
 * in header fields, recipient lists), sm_smtp.c (-bs: SMTP on stdin and
 * stdout). Every message ends up as a maildrop file (maildrop.h).
 * The parsers are pure (no I/O beyond the FILE they are given, no exit)
 * so that tests/unit/test_sendmail.c can drive them; errors come back as
 * a sysexits.h code with a message in err.
 */
#ifndef SLUICE_SENDMAIL_H
#define SLUICE_SENDMAIL_H

#include <stdint.h>
#include <stdio.h>

#define SM_ERR_LEN	512

enum sm_mode {
	SM_MODE_MAIL,		/* -bm (default): a message on stdin */
	SM_MODE_SMTP,		/* -bs: SMTP on stdin/stdout */
	SM_MODE_NOOP,		/* -bi (newaliases): nothing to do */
};

/* DSN requests (-N, -R, -V) as ESMTP parameter values; "" = not given */
struct sm_dsn {
	char notify[32];	/* NOTIFY=: "NEVER" or "SUCCESS,DELAY,FAILURE" */
	char ret[5];		/* RET=: "FULL" or "HDRS" */
	char envid[101];	/* ENVID=: xtext, RFC 3461's 100 at most */
};
/* sm_dsn_option - -N, -R or -V with value v into d; 0 or EX_USAGE */
int	sm_dsn_option(struct sm_dsn *d, char opt, const char *v, char *err,
	    size_t errlen);

struct sm_opts {
	enum sm_mode mode;
	int extract;		/* -t: recipients from the header */
	int ignore_dots;	/* -i, -oi: a lone "." is content */
	const char *sender;	/* -f / -r, NULL: user@hostname */
	const char *fullname;	/* -F, for a From: we add */
	const char *config;	/* -C / -c, NULL: compiled-in default */
	struct sm_dsn dsn;	/* -N, -R, -V */
	char **rcpts;		/* the operands (argv entries) */
	int nrcpts;
};

/* sm_opts_parse - 0, or EX_USAGE with err filled */
int	sm_opts_parse(int argc, char **argv, struct sm_opts *,
	    char *err, size_t errlen);

/* limits the input must respect (from the configuration) */
struct sm_limits {
	uint64_t message_size;	/* bytes, 0: none */
	unsigned line_length;	/* with CRLF, 0: none */
};

/*
 * sm_read_message - read a message from fp into *out (malloc'ed, every
 * line ending in CRLF, *outlen bytes). Without ignore_dots a line holding
 * only "." ends the input. 0, or EX_DATAERR / EX_NOINPUT / EX_IOERR.
 */
int	sm_read_message(FILE *fp, int ignore_dots, const struct sm_limits *,
	    char **out, size_t *outlen, char *err, size_t errlen);
/* sm_check_message - the same checks on a message already in memory
   (-bs): NUL bytes, line length, size. 0 or EX_DATAERR. */
int	sm_check_message(const char *, size_t, const struct sm_limits *,
	    char *err, size_t errlen);

/* a list of distinct addresses */
struct sm_rcpts {
	char **v;
	size_t n, cap;
};
void	sm_rcpts_add(struct sm_rcpts *, const char *addr);
void	sm_rcpts_clear(struct sm_rcpts *);

/*
 * sm_addr_list - the addresses of an RFC 5322 address list (header field
 * value, or a comma-separated command line operand): display names,
 * comments, groups and quoted strings understood; an address without a
 * domain gets "@" origin. Each is checked as an RFC 5321 mailbox. 0, or
 * EX_DATAERR naming the bad address.
 */
int	sm_addr_list(const char *value, const char *origin, struct sm_rcpts *,
	    char *err, size_t errlen);
/* sm_addr_check - one bare address ("" allowed when allow_null) */
int	sm_addr_check(const char *addr, int allow_null, char *err,
	    size_t errlen);

struct sm_header_ctx {
	int extract;			/* -t */
	const char *sender;		/* envelope sender (From: if missing) */
	const char *fullname;		/* -F */
	const char *hostname;		/* Message-ID */
	const char *origin;		/* domain for unqualified addresses */
};

/*
 * sm_header_fix - process the header of msg (CRLF lines): drop a leading
 * mbox "From " line, remove Bcc: fields, add From:, Date: and Message-ID:
 * when missing, and with extract collect To/Cc/Bcc into rcpts. The new
 * message replaces *msg. 0 or EX_DATAERR.
 */
int	sm_header_fix(char **msg, size_t *len, const struct sm_header_ctx *,
	    struct sm_rcpts *rcpts, char *err, size_t errlen);

/* sm_smtp - -bs: serve SMTP on in/out, each message to the maildrop */
struct sm_env {
	const char *hostname, *origin, *maildrop;
	struct sm_limits limits;
};
int	sm_smtp(FILE *in, FILE *out, const struct sm_env *);

/* sm_drop.c: one message into the maildrop; 0 or a sysexits code;
   dsn may be NULL */
int	sm_drop(const struct sm_env *, const char *sender,
	    const struct sm_rcpts *, const struct sm_dsn *dsn,
	    const char *msg, size_t len, char *name, size_t namelen,
	    char *err, size_t errlen);

#endif
