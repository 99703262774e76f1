/*
 * accept_reserve.c - one spare file descriptor (open on /dev/null), kept
 * for the moment accept() fails with EMFILE or ENFILE. Then the client
 * waits in the listen backlog, the listen socket stays readable and a
 * loop would spin on it; instead the spare is closed, the client accepted,
 * told "421 4.3.2 ... try again later" and closed, and the spare taken
 * again. Once descriptors are free, accepting works as before.
 *
 * API: accept_reserve.h. The spare is shared by every worker: it is taken
 * with an atomic exchange, so one worker uses it at a time; another one
 * finding it gone pauses accepting (worker.c). The refusals are logged at
 * most once every LOG_EVERY_MS, with how many there were.
 * Threads: any worker loop; init and free from the main thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accept_reserve.h"
#include "conf.h"
#include "log.h"
#include "server.h"
#include "util.h"

#define LOG_EVERY_MS	10000

static int spare = -1;
static unsigned long refused;		/* since the last log line */
static uint64_t logged_at;		/* mono_msec() of that line */

static int
spare_open(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int
accept_reserve_init(void)
{
	__atomic_store_n(&spare, spare_open(), __ATOMIC_RELEASE);
	return spare == -1 ? -1 : 0;
}

void
accept_reserve_free(void)
{
	int fd = __atomic_exchange_n(&spare, -1, __ATOMIC_ACQ_REL);

	if (fd != -1)
		close(fd);
}

/* note_refusal - count it; log now and then, not once per client */
static void
note_refusal(const char *listener)
{
	uint64_t now = mono_msec(), last;
	unsigned long n = __atomic_add_fetch(&refused, 1, __ATOMIC_RELAXED);

	last = __atomic_load_n(&logged_at, __ATOMIC_RELAXED);
	if (last != 0 && now - last < LOG_EVERY_MS)
		return;
	if (!__atomic_compare_exchange_n(&logged_at, &last, now, 0,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;			/* another worker logs it */
	n = __atomic_exchange_n(&refused, 0, __ATOMIC_RELAXED);
	log_warnx("event=refused listener=%s reason=\"out of file "
	    "descriptors\" refused=%lu", listener, n);
}

int
accept_reserve_refuse(int lfd, const char *listener)
{
	char buf[256];
	int fd, c, n, rv;

	fd = __atomic_exchange_n(&spare, -1, __ATOMIC_ACQ_REL);
	if (fd == -1) {			/* used, or lost to a race: again? */
		if ((fd = spare_open()) != -1)
			__atomic_store_n(&spare, fd, __ATOMIC_RELEASE);
		return -1;
	}
	close(fd);
	c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c != -1) {
		n = snprintf(buf, sizeof(buf), "421 4.3.2 %s Service not "
		    "available: out of resources, try again later\r\n",
		    server.conf->hostname);
		(void)!send(c, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
		close(c);
		note_refusal(listener);
		rv = 1;
	} else
		rv = (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
	if ((fd = spare_open()) != -1)
		__atomic_store_n(&spare, fd, __ATOMIC_RELEASE);
	return rv;
}
