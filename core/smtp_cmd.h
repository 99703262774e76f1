/*
 * smtp_cmd.h - split an SMTP command line into verb and arguments (pure)
 *
 * smtp_cmd_parse() takes one line without its LF (a trailing CR is
 * removed here) and returns NULL with *cmd filled, or the reply to send.
 */
#ifndef SLUICE_SMTP_CMD_H
#define SLUICE_SMTP_CMD_H

#include <stddef.h>

enum smtp_verb {
	CMD_UNKNOWN,
	CMD_HELO,
	CMD_EHLO,
	CMD_MAIL,
	CMD_RCPT,
	CMD_DATA,
	CMD_BDAT,
	CMD_RSET,
	CMD_NOOP,
	CMD_QUIT,
	CMD_VRFY,
	CMD_EXPN,
	CMD_HELP,
	CMD_STARTTLS,
	CMD_AUTH,
	CMD_ETRN,
	CMD_HTTP,	/* "GET", "POST", ...: a web client, not a mailer */
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char *name;	/* canonical upper-case verb, "" if unknown */
	char *args;		/* after the verb, leading/trailing spaces cut */
};

const char *smtp_cmd_parse(char *line, size_t len, struct smtp_cmd *);

/*
 * smtp_cmd_path_arg - for "FROM:<...> params" / "TO:<...> params": check
 * the keyword, skip it and optional spaces; returns the start of the path
 * or NULL when the keyword is missing.
 */
char	*smtp_cmd_path_arg(char *args, const char *keyword);

#endif
