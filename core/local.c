/*
 * local.c - the local transport: recipients of local domains into their
 * Maildir (mailbox table check, path template, then deliver_maildir.c).
 * Runs on the delivery iopool: it blocks on the disk.
 */
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "local.h"
#include "mailbox.h"
#include "server.h"
#include "smtp_addr.h"
#include "transport.h"

static void
deliver_one(const struct qmsg *m, size_t rcpt, struct rcpt_result *res)
{
	const char *addr = m->env.rcpts[rcpt].addr;
	char path[ADDR_PATH_MAX + 3], key[ADDR_PATH_MAX + 1], box[4096];
	struct delivery d = { m, server.conf->hostname, rcpt, NULL, res };
	struct mailaddr a;
	const char *reply;

	snprintf(path, sizeof(path), "<%s>", addr);
	if (smtp_addr_parse_path(path, ADDR_UTF8, &a, &reply) == 0) {
		rcpt_result_set(res, DELIVER_PERM, "5.1.3 bad recipient "
		    "address syntax");
		return;
	}
	smtp_addr_lookup_key(&a, key, sizeof(key));
	if (!mailbox_exists(server.mailboxes, key)) {
		rcpt_result_set(res, DELIVER_PERM, "5.1.1 mailbox unknown");
		return;
	}
	*strrchr(key, '@') = '\0';
	if (maildir_path(server.conf->maildir, key, a.domain, box,
	    sizeof(box)) == -1) {
		rcpt_result_set(res, DELIVER_PERM, "5.3.5 unsafe mailbox name");
		return;
	}
	d.mailbox = box;
	maildir_deliver(&d);
}

void
local_deliver(struct djob *job)
{
	snprintf(job->relay, sizeof(job->relay), "maildir");
	for (size_t i = 0; i < job->nrcpts; i++)
		deliver_one(job->msg, job->rcpts[i], &job->res[i]);
}
