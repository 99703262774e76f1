/*
 * fuzz_queue.c - the queue file reader: envelope text (envelope_parse),
 * the per-recipient status text (qstatus_parse), and whole files read back
 * from a scratch spool by qmsg_open() (footer, envelope location) and
 * qstatus_load(). First byte: bits 0-1 pick one of those four, bits 2-4
 * the number of recipients the status is loaded for. Whatever parses must
 * serialize, parse again and serialize to the same text.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "envelope.h"
#include "fuzz.h"
#include "queue.h"
#include "queue_status.h"

#define ID	"1j1anqke82q000"

static char spool[] = "/tmp/sluice-fuzz-queue.XXXXXX";

static void
cleanup(void)
{
	char cmd[sizeof(spool) + 16];

	queue_close();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", spool);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_queue: cannot remove %s\n", spool);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256] = "";

	if (mkdtemp(spool) == NULL || queue_open(spool, err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_queue: %s: %s\n", spool, err);
		abort();
	}
	atexit(cleanup);
	return 0;
}

static void
envelope(const uint8_t *data, size_t size)
{
	struct envelope e, e2;
	char err[256], *text, *c, *text2;
	size_t len, len2;

	c = fuzz_dup(data, size);
	if (envelope_parse(c, size, &e, err, sizeof(err)) == 0) {
		text = envelope_serialize(&e, &len);
		fuzz_check(envelope_parse(text, len, &e2, err, sizeof(err)) == 0);
		text2 = envelope_serialize(&e2, &len2);
		fuzz_check(len == len2 && memcmp(text, text2, len) == 0);
		free(text);
		free(text2);
		envelope_clear(&e2);
		envelope_clear(&e);
	}
	free(c);
}

static void
status(const uint8_t *data, size_t size, size_t nrcpts)
{
	struct qstatus st, st2;
	char *text, *c, *text2;
	size_t len, len2;

	c = fuzz_dup(data, size);
	qstatus_init(&st, nrcpts);
	if (qstatus_parse(c, size, &st) == 0) {
		text = qstatus_serialize(&st, &len);
		qstatus_init(&st2, nrcpts);
		fuzz_check(qstatus_parse(text, len, &st2) == 0);
		text2 = qstatus_serialize(&st2, &len2);
		fuzz_check(len == len2 && memcmp(text, text2, len) == 0);
		free(text);
		free(text2);
		qstatus_clear(&st2);
	}
	qstatus_clear(&st);
	free(c);
}

static void
put(const char *name, const uint8_t *data, size_t size)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/queue/%s", spool, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    (size > 0 && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
}

static void
file(const uint8_t *data, size_t size)
{
	struct qmsg m;
	char err[256];

	put(ID, data, size);
	if (qmsg_open(ID, &m, err, sizeof(err)) == 0) {
		fuzz_check(m.msg_len <= size);
		fuzz_check(strcmp(m.env.id, ID) == 0);
		qmsg_close(&m);
	}
}

static void
status_file(const uint8_t *data, size_t size, size_t nrcpts)
{
	struct qstatus st;

	put(ID ".st", data, size);
	if (qstatus_load(ID, nrcpts, &st) == 0)
		fuzz_check(st.nrcpts == nrcpts);
	qstatus_clear(&st);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t nrcpts;

	if (size < 1)
		return 0;
	nrcpts = (data[0] >> 2) & 7;
	switch (data[0] & 3) {
	case 0: envelope(data + 1, size - 1); break;
	case 1: status(data + 1, size - 1, nrcpts); break;
	case 2: file(data + 1, size - 1); break;
	case 3: status_file(data + 1, size - 1, nrcpts); break;
	}
	return 0;
}
