/*
 * test_queue.c - unit tests for what the queue stores: envelope and status
 * text forms (envelope.c, queue_status.c), queue IDs (qid.c), and a commit
 * and read-back through a real spool directory (queue_fs.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "envelope.h"
#include "qid.h"
#include "queue.h"
#include "queue_status.h"
#include "util.h"

static void
fill(struct envelope *e)
{
	envelope_init(e);
	qid_new(e->id);
	e->arrival = 1795870643123456ULL;
	e->sender = xstrdup("a b\r\nX-Injected: 1@example.test");
	e->helo = xstrdup("client.example");
	e->client_addr = xstrdup("192.0.2.1");
	e->client_port = 50123;
	e->listener = xstrdup("mx");
	e->protocol = xstrdup("UTF8SMTP");
	e->body = BODY_8BITMIME;
	e->smtputf8 = 1;
	e->ret = RET_HDRS;
	e->envid = xstrdup("QQ+2B1");
	e->size = 1234;
	envelope_add_rcpt(e, "bob@example.test", "rfc822;bob@example.test",
	    NOTIFY_SUCCESS | NOTIFY_FAILURE);
	envelope_add_rcpt(e, "-", NULL, 0);
	envelope_add_rcpt(e, "j\xc3\xb6rg%@example.test", NULL, NOTIFY_NEVER);
}

static void
test_envelope_roundtrip(void **state)
{
	struct envelope e, back;
	char err[128];
	size_t len;

	(void)state;
	fill(&e);
	char *text = envelope_serialize(&e, &len);
	/* nothing the client sent can break a record */
	for (size_t i = 0; i < len; i++)
		assert_true(text[i] == '\n' || (text[i] >= 0x20 && text[i] < 0x7f));
	assert_non_null(strstr(text, "\nsender a%20b%0D%0AX-Injected:%201@"));
	assert_int_equal(envelope_parse(text, len, &back, err, sizeof(err)), 0);
	assert_string_equal(back.id, e.id);
	assert_string_equal(back.sender, e.sender);
	assert_string_equal(back.helo, "client.example");
	assert_string_equal(back.client_addr, "192.0.2.1");
	assert_int_equal(back.client_port, 50123);
	assert_int_equal(back.arrival, e.arrival);
	assert_int_equal(back.body, BODY_8BITMIME);
	assert_int_equal(back.ret, RET_HDRS);
	assert_true(back.smtputf8);
	assert_string_equal(back.envid, "QQ+2B1");
	assert_int_equal(back.size, 1234);
	assert_int_equal(back.nrcpts, 3);
	assert_string_equal(back.rcpts[0].orcpt, "rfc822;bob@example.test");
	assert_int_equal(back.rcpts[0].notify, NOTIFY_SUCCESS | NOTIFY_FAILURE);
	assert_string_equal(back.rcpts[1].addr, "-");
	assert_null(back.rcpts[1].orcpt);
	assert_string_equal(back.rcpts[2].addr, "j\xc3\xb6rg%@example.test");
	free(text);
	envelope_clear(&e);
	envelope_clear(&back);
}

static void
test_envelope_null_sender(void **state)
{
	struct envelope e, back;
	char err[128];
	size_t len;

	(void)state;
	fill(&e);
	free(e.sender);
	e.sender = xstrdup("");
	char *text = envelope_serialize(&e, &len);
	assert_int_equal(envelope_parse(text, len, &back, err, sizeof(err)), 0);
	assert_string_equal(back.sender, "");
	free(text);
	envelope_clear(&e);
	envelope_clear(&back);
}

static int
parse_str(const char *s)
{
	struct envelope e;
	char err[128];
	int rv = envelope_parse(s, strlen(s), &e, err, sizeof(err));

	if (rv == 0)
		envelope_clear(&e);
	return rv;
}

static void
test_envelope_rejects(void **state)
{
	(void)state;
	const char *ok = "v 1\nid 0123456789abcd\nsender a@b\n"
	    "rcpt c@d 0 -\nend -\n";
	assert_int_equal(parse_str(ok), 0);
	assert_int_equal(parse_str("v 2\nid 0123456789abcd\nsender a@b\n"
	    "rcpt c@d 0 -\nend -\n"), -1);			/* version */
	assert_int_equal(parse_str("v 1\nid 0123456789abcd\nsender a@b\n"
	    "rcpt c@d 0 -\n"), -1);				/* no end */
	assert_int_equal(parse_str("v 1\nid 0123456789abcd\nsender a@b\n"
	    "end -\n"), -1);					/* no rcpt */
	assert_int_equal(parse_str("v 1\nid 0123456789abcd\nsender a b\n"
	    "rcpt c@d 0 -\nend -\n"), -1);			/* raw space */
	assert_int_equal(parse_str("v 1\nid 0123456789abcd\nsender a%00b\n"
	    "rcpt c@d 0 -\nend -\n"), -1);			/* NUL */
	assert_int_equal(parse_str("v 1\nid 0123456789abcd\nsender a%4\n"
	    "rcpt c@d 0 -\nend -\n"), -1);			/* short escape */
	assert_int_equal(parse_str("v 1\nid 0123456789abcd\nsender a@b\n"
	    "rcpt c@d 99 -\nend -\n"), -1);			/* notify bits */
	assert_int_equal(parse_str("v 1\nid 0123456789ABCD\nsender a@b\n"
	    "rcpt c@d 0 -\nend -\n"), -1);			/* bad qid */
	assert_int_equal(parse_str("v 1\nid 0123456789abcd\nsender a@b\n"
	    "color blue\nrcpt c@d 0 -\nend -\n"), -1);		/* unknown */
	assert_int_equal(parse_str("v 1\nid 0123456789abcd\nsender a@b\n"
	    "rcpt c@d 0 -\nend -\nrcpt e@f 0 -\n"), -1);	/* after end */
	assert_int_equal(parse_str("v 1\nid 0123456789abcd\nsender a@b\n"
	    "rcpt c@d 0 -\nend -"), -1);			/* truncated */
}

static void
test_qid(void **state)
{
	char a[QID_LEN + 1], b[QID_LEN + 1];

	(void)state;
	qid_new(a);
	assert_int_equal(strlen(a), QID_LEN);
	assert_true(qid_valid(a));
	for (int i = 0; i < 1000; i++) {
		usleep(i % 100 == 0 ? 1 : 0);
		qid_new(b);
		assert_true(strcmp(a, b) < 0);		/* sortable, unique */
		strcpy(a, b);
	}
	assert_false(qid_valid("0123456789abc"));
	assert_false(qid_valid("0123456789abcw"));
	assert_false(qid_valid("../../etc/pass"));
}

static void
test_status_roundtrip(void **state)
{
	struct qstatus st, back;
	size_t len;

	(void)state;
	qstatus_init(&st, 3);
	st.attempts = 4;
	st.next_attempt = 1795870643;
	qstatus_set(&st, 0, RCPT_DELIVERED, "2.0.0 delivered");
	qstatus_set(&st, 2, RCPT_PENDING, "4.2.2 mailbox full\r\n");
	char *text = qstatus_serialize(&st, &len);
	qstatus_init(&back, 3);
	assert_int_equal(qstatus_parse(text, len, &back), 0);
	assert_int_equal(back.attempts, 4);
	assert_int_equal(back.next_attempt, 1795870643);
	assert_int_equal(back.rcpts[0].state, RCPT_DELIVERED);
	assert_int_equal(back.rcpts[1].state, RCPT_PENDING);
	assert_null(back.rcpts[1].reason);
	assert_string_equal(back.rcpts[2].reason, "4.2.2 mailbox full\r\n");
	assert_int_equal(qstatus_count(&back, RCPT_PENDING), 2);
	free(text);
	qstatus_clear(&back);
	/* a recipient index beyond the envelope is refused */
	qstatus_init(&back, 2);
	text = qstatus_serialize(&st, &len);
	assert_int_equal(qstatus_parse(text, len, &back), -1);
	free(text);
	qstatus_clear(&back);
	qstatus_clear(&st);
}

static void
test_retry_text_rejects(void **state)
{
	struct qstatus st;

	(void)state;
	qstatus_init(&st, 1);
	assert_int_equal(qstatus_parse("v 1\nattempts x\n", 15, &st), -1);
	assert_int_equal(qstatus_parse("v 1\nrcpt 0 Z -\n", 15, &st), -1);
	assert_int_equal(qstatus_parse("", 0, &st), -1);
	qstatus_clear(&st);
}

/* test_commit_and_read - through a real spool in a temporary directory */
static void
test_commit_and_read(void **state)
{
	char dir[] = "/tmp/sluice-test-queue.XXXXXX", err[256], path[512];
	struct envelope e;
	struct qmsg m;
	struct stat sb;
	const char *body = "Subject: t\r\n\r\nhello\r\n";

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(queue_open(dir, err, sizeof(err)), 0);
	fill(&e);
	struct qwriter *w = qwriter_new(e.id);
	for (int i = 0; i < 20000; i++)		/* spills past memory */
		assert_int_equal(qwriter_append(w, body, strlen(body)), 0);
	e.size = qwriter_size(w);
	snprintf(path, sizeof(path), "%s/queue/%s.in", dir, e.id);
	assert_int_equal(stat(path, &sb), 0);	/* spilled to <qid>.in */
	assert_int_equal(qwriter_commit(w, &e), 0);
	assert_int_equal(stat(path, &sb), -1);	/* renamed to <qid> */
	qwriter_free(w);

	assert_int_equal(qmsg_open(e.id, &m, err, sizeof(err)), 0);
	assert_int_equal(m.msg_len, 20000 * strlen(body));
	assert_string_equal(m.env.sender, e.sender);
	char buf[64];
	assert_int_equal(pread(m.fd, buf, strlen(body), 0), strlen(body));
	assert_memory_equal(buf, body, strlen(body));
	qmsg_close(&m);

	/* reopened (as after a restart) */
	queue_close();
	assert_int_equal(queue_open(dir, err, sizeof(err)), 0);
	/* a truncated queue file is detected, not misread */
	snprintf(path, sizeof(path), "%s/queue/%s", dir, e.id);
	assert_int_equal(truncate(path, 1000), 0);
	assert_int_equal(qmsg_open(e.id, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad footer"));
	assert_int_equal(queue_remove(e.id), 0);
	/* the spent file is kept for reuse, and reused by the next message */
	snprintf(path, sizeof(path), "%s/queue/free.1", dir);
	assert_int_equal(stat(path, &sb), 0);
	struct envelope e2;
	fill(&e2);
	w = qwriter_new(e2.id);
	assert_int_equal(qwriter_append(w, body, strlen(body)), 0);
	e2.size = qwriter_size(w);
	assert_int_equal(qwriter_commit(w, &e2), 0);
	qwriter_free(w);
	assert_int_equal(stat(path, &sb), -1);		/* taken */
	assert_int_equal(qmsg_open(e2.id, &m, err, sizeof(err)), 0);
	assert_int_equal(m.msg_len, strlen(body));	/* old bytes cut off */
	qmsg_close(&m);
	envelope_clear(&e2);
	queue_close();
	envelope_clear(&e);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope_roundtrip),
		cmocka_unit_test(test_envelope_null_sender),
		cmocka_unit_test(test_envelope_rejects),
		cmocka_unit_test(test_qid),
		cmocka_unit_test(test_status_roundtrip),
		cmocka_unit_test(test_retry_text_rejects),
		cmocka_unit_test(test_commit_and_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
