/*
 * smtp_cmd.c - command line splitting and verb lookup.
 */
#include <string.h>
#include <strings.h>

#include "smtp_cmd.h"

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", CMD_HELO }, { "EHLO", CMD_EHLO }, { "MAIL", CMD_MAIL },
	{ "RCPT", CMD_RCPT }, { "DATA", CMD_DATA }, { "BDAT", CMD_BDAT },
	{ "RSET", CMD_RSET }, { "NOOP", CMD_NOOP }, { "QUIT", CMD_QUIT },
	{ "VRFY", CMD_VRFY }, { "EXPN", CMD_EXPN }, { "HELP", CMD_HELP },
	{ "STARTTLS", CMD_STARTTLS }, { "AUTH", CMD_AUTH },
	{ "ETRN", CMD_ETRN },
	{ "GET", CMD_HTTP }, { "POST", CMD_HTTP }, { "HEAD", CMD_HTTP },
	{ "PUT", CMD_HTTP }, { "CONNECT", CMD_HTTP },
};

const char *
smtp_cmd_parse(char *line, size_t len, struct smtp_cmd *cmd)
{
	char *p, *end;
	size_t vlen;

	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (memchr(line, '\0', len) != NULL)
		return "500 5.5.2 NUL byte in command";
	if (memchr(line, '\r', len) != NULL)
		return "500 5.5.2 Bare CR in command";
	line[len] = '\0';
	for (p = line; *p == ' '; p++)
		;
	for (end = line + len; end > p && (end[-1] == ' ' || end[-1] == '\t'); end--)
		;
	*end = '\0';
	if (*p == '\0')
		return "500 5.5.2 Error: empty command";
	for (vlen = 0; p[vlen] != '\0' && p[vlen] != ' '; vlen++)
		;
	cmd->verb = CMD_UNKNOWN;
	cmd->name = "";
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strlen(verbs[i].name) == vlen &&
		    strncasecmp(verbs[i].name, p, vlen) == 0) {
			cmd->verb = verbs[i].verb;
			cmd->name = verbs[i].name;
			break;
		}
	for (p += vlen; *p == ' '; p++)
		;
	cmd->args = p;
	return NULL;
}

char *
smtp_cmd_path_arg(char *args, const char *keyword)
{
	size_t n = strlen(keyword);

	if (strncasecmp(args, keyword, n) != 0)
		return NULL;
	args += n;
	while (*args == ' ')
		args++;
	return args;
}
