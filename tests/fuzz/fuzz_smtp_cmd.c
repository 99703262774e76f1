/*
 * fuzz_smtp_cmd.c - the SMTP command line path of the server as far as it
 * is pure: each input line (split at LF) goes through smtp_cmd_parse(),
 * and MAIL/RCPT arguments on through smtp_cmd_path_arg(),
 * smtp_addr_parse_path() and smtp_params_mail()/smtp_params_rcpt() the way
 * smtp_cmds.c chains them. The session state machine itself (order of
 * commands, smtp_cmds.c) needs a live session with libevent and is not
 * covered here.
 */
#include <stdio.h>

#include "fuzz.h"
#include "smtp_addr.h"
#include "smtp_cmd.h"
#include "smtp_params.h"

static void
path_cmd(char *args, int sender, int utf8)
{
	struct mailaddr addr;
	struct mail_params mp;
	struct rcpt_params rp;
	const char *reply;
	char *path, *after, buf[ADDR_PATH_MAX + 1];
	size_t n;
	int flags = sender ? ADDR_ALLOW_NULL | ADDR_UTF8 | ADDR_SENDER :
	    (utf8 ? ADDR_UTF8 : 0) | ADDR_POSTMASTER;

	if ((path = smtp_cmd_path_arg(args, sender ? "FROM:" : "TO:")) == NULL)
		return;
	if ((n = smtp_addr_parse_path(path, flags, &addr, &reply)) == 0) {
		fuzz_check(reply != NULL && reply[0] >= '4' && reply[0] <= '5');
		return;
	}
	fuzz_check(n <= strlen(path));
	smtp_addr_format(&addr, buf, sizeof(buf));
	smtp_addr_lookup_key(&addr, buf, sizeof(buf));
	after = path + n;
	if (*after != '\0' && *after != ' ')
		return;
	while (*after == ' ')
		after++;
	if (sender)
		reply = smtp_params_mail(after, &mp);
	else
		reply = smtp_params_rcpt(after, utf8, &rp);
	if (reply != NULL)
		fuzz_check(reply[0] >= '4' && reply[0] <= '5');
	else if (sender)
		fuzz_check(strpbrk(mp.envid, " \r\n") == NULL);
	else
		fuzz_check(strpbrk(rp.orcpt, " \r\n") == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size, *nl;
	int utf8 = 0;

	while (p < end) {
		struct smtp_cmd cmd;
		const char *reply;
		size_t len;
		char *line;

		nl = memchr(p, '\n', (size_t)(end - p));
		len = (size_t)((nl ? nl : end) - p);
		/* the session hands over the line and one spare byte */
		line = malloc(len + 1);
		if (line == NULL)
			abort();
		memcpy(line, p, len);
		reply = smtp_cmd_parse(line, len, &cmd);
		if (reply == NULL) {
			fuzz_check(cmd.name != NULL && cmd.args != NULL);
			fuzz_check(cmd.args >= line && cmd.args <= line + len);
			if (cmd.verb == CMD_MAIL) {
				path_cmd(cmd.args, 1, 0);
				utf8 = strstr(cmd.args, "SMTPUTF8") != NULL;
			} else if (cmd.verb == CMD_RCPT)
				path_cmd(cmd.args, 0, utf8);
		}
		free(line);
		p += len + (nl != NULL);
	}
	return 0;
}
