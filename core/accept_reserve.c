/*
 * accept_reserve.c - a spare file descriptor, kept for the moment
 * accept() fails with EMFILE or ENFILE. Then the client waits in the
 * listen backlog, the listen socket stays readable and a loop would spin
 * on it (or pause, leaving the client hanging); instead the spare is
 * closed, the client accepted into its slot, told "421 4.3.2 ... try
 * again later", and its descriptor turned back into the spare with
 * dup3() (which closes the socket and fills the slot in one step). Once
 * descriptors are free, accepting works as before.
 *
 * API: accept_reserve.h. `keep` (/dev/null) is open for the whole run;
 * the spare is a duplicate of it. Every worker accepts on the same
 * sockets, so the slot the spare frees could be taken by another
 * worker's accept(): accepts hold a read lock, a refusal the write lock.
 * A spare lost anyway (another thread opened a file in that instant) is
 * taken back before the next accept once a descriptor is free.
 * The refusals are logged at most once every LOG_EVERY_MS, with a count.
 * Threads: any worker loop; init and free from the main thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accept_reserve.h"
#include "conf.h"
#include "log.h"
#include "server.h"
#include "util.h"

#define LOG_EVERY_MS	10000

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static int keep = -1;			/* /dev/null, never closed until exit */
static int spare = -1;			/* a dup of keep; written locked */
static unsigned long refused;		/* since the last log line */
static uint64_t logged_at;		/* mono_msec() of that line */

/* spare_take - (write lock held) fill the spare slot if it is empty */
static void
spare_take(void)
{
	if (spare == -1 && keep != -1)
		__atomic_store_n(&spare, fcntl(keep, F_DUPFD_CLOEXEC, 0),
		    __ATOMIC_RELAXED);
}

int
accept_reserve_init(void)
{
	keep = open("/dev/null", O_RDONLY | O_CLOEXEC);
	spare_take();
	return spare == -1 ? -1 : 0;
}

void
accept_reserve_free(void)
{
	if (spare != -1)
		close(spare);
	if (keep != -1)
		close(keep);
	spare = keep = -1;
}

int
accept_reserve_accept(int lfd, struct sockaddr *sa, socklen_t *sl)
{
	int fd, err;

	if (keep != -1 && __atomic_load_n(&spare, __ATOMIC_RELAXED) == -1) {
		pthread_rwlock_wrlock(&lock);	/* lost: take it back first */
		spare_take();
		pthread_rwlock_unlock(&lock);
	}
	pthread_rwlock_rdlock(&lock);
	fd = accept4(lfd, sa, sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	err = errno;
	pthread_rwlock_unlock(&lock);
	errno = err;
	return fd;
}

/* note_refusal - count it; log now and then, not once per client */
static void
note_refusal(const char *listener)
{
	uint64_t now = mono_msec(), last;
	unsigned long n;

	__atomic_add_fetch(&refused, 1, __ATOMIC_RELAXED);
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

/* refuse_one - (write lock held, spare closed) accept into its slot */
static int
refuse_one(int lfd)
{
	char buf[256];
	int c, n;

	if ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
	n = snprintf(buf, sizeof(buf), "421 4.3.2 %s Service not available: "
	    "out of resources, try again later\r\n", server.conf->hostname);
	(void)!send(c, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (dup3(keep, c, O_CLOEXEC) == c)	/* the socket goes, the slot */
		__atomic_store_n(&spare, c, __ATOMIC_RELAXED);	/* stays */
	else
		close(c);
	return 1;
}

int
accept_reserve_refuse(int lfd, const char *listener)
{
	int rv;

	pthread_rwlock_wrlock(&lock);
	spare_take();
	if (spare == -1) {
		pthread_rwlock_unlock(&lock);
		return -1;
	}
	close(spare);
	__atomic_store_n(&spare, -1, __ATOMIC_RELAXED);
	rv = refuse_one(lfd);
	spare_take();			/* when no client took the slot */
	pthread_rwlock_unlock(&lock);
	if (rv == 1)
		note_refusal(listener);
	return rv;
}
