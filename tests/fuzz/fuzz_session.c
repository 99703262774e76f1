/*
 * fuzz_session.c - the SMTP session state machine (smtp_session.c,
 * smtp_cmds.c, smtp_session_data.c, smtp_sync.c, smtp_tls.c and
 * smtp_auth.c refusals, smtp_deadline.c, smtp_filter.c with an empty
 * pipeline), driven in process as a client would drive sluiced.
 *
 * Setup, once: a scratch directory (/dev/shm when there is one: fsync is
 * free there) with a small configuration loaded into server.conf, a spool
 * opened with queue_open(), the mailbox table, an empty pipeline, the
 * commit pool, and a queue manager loop that runs on its own thread but
 * was stopped at once (qmgr_stop()), so that qmgr_submit() after a commit
 * only frees the id. One struct worker whose loop the fuzzing thread runs
 * itself. Logging is off (LOG_SINK_NONE).
 *
 * Per input: a socketpair; one end goes to session_accept() as a TCP
 * client would; the harness writes the input to the other end in bursts,
 * runs the worker's event base (EVLOOP_NONBLOCK, or EVLOOP_ONCE while the
 * session waits for a commit: its answer comes back through loop_call)
 * until the session has nothing left to do, reads the replies, and after
 * the last burst shuts its side down (EOF) and runs the loop until the
 * session is gone. The timeouts of the configuration are never waited for.
 *
 * Input: byte 0, bits 0-1 the client (untrusted 192.0.2.1, trusted
 * 127.0.0.1, untrusted 2001:db8::1, untrusted with pipelining checks off);
 * bits 2-3 the listener (mx twice, STARTTLS and AUTH optional, both
 * required; there is no TLS context, so STARTTLS gets 454 and AUTH 538);
 * bits 4-5 the bursts: all at once; one line each; chunks of 1, 3, 16 or
 * 100 bytes (bits 6-7); or lines grouped as an RFC 2920 client would
 * (a group ends after EHLO, HELO, DATA, VRFY, EXPN, NOOP, QUIT, STARTTLS,
 * AUTH or a "." line). Byte 1: bit 0 smtp.bare_newline normalize, bit 1
 * the first line is sent before the greeting. The rest is what the
 * client sends.
 *
 * Checked: every reply line is "DDD[ -]text" CRLF with a 2xx-5xx code, at
 * most 512 bytes, no control bytes, a multi-line reply keeps its code and
 * ends, nothing follows a 221 or 421; the session ends within the bounds;
 * once it has, every queue ID answered "250 ... queued as" is a file in
 * queue/ and no queue/<qid>.in is left. Committed messages are removed after each input. Inputs are
 * at most 4096 bytes (run.sh): the limits of the configuration are small
 * so that they are reached.
 * FUZZ_SESSION_TRACE=1 in the environment shows both sides on stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "conn_limits.h"
#include "filter.h"
#include "fuzz.h"
#include "iopool.h"
#include "kvstore.h"
#include "log.h"
#include "loop.h"
#include "mailbox.h"
#include "metrics.h"
#include "qmgr.h"
#include "queue.h"
#include "server.h"
#include "smtp_session.h"
#include "util.h"

#define REPLY_MAX	512	/* RFC 5321 4.5.3.1.5, CRLF included */
#define IDLE_TURNS	1000	/* loop turns without a job, at the end */
#define WATCHDOG_S	10	/* a session still there then is stuck */
#define MAX_QUEUED	64	/* queue IDs checked per input */
#define QUEUED_AS	"250 2.0.0 Ok: queued as "


static const char config_fmt[] =
    "hostname: mx.fuzz.test\n"
    "spool: %s/spool\n"
    "workers: 1\n"
    "listeners:\n"
    "  - {name: mx, address: 127.0.0.1, port: 2525, role: mx}\n"
    "trusted_networks: [127.0.0.0/8, \"::1/128\"]\n"
    "domains:\n"
    "  local: [fuzz.test]\n"
    "  relay: [relay.test]\n"
    "mailboxes:\n"
    "  maildir: \"%s/mail/%%d/%%u/Maildir\"\n"
    "  users: [alice@fuzz.test, bob@fuzz.test]\n"
    "  postmaster: alice@fuzz.test\n"
    "limits:\n"
    "  message_size: 2K\n"
    "  recipients: 4\n"
    "  line_length: 100\n"
    "  command_line_length: 512\n"
    "  errors: 8\n"
    "  hops: 3\n"
    "  idle_timeout: 5s\n"
    "  command_timeout: 5s\n"
    "  data_timeout: 5s\n"
    "smtp:\n"
    "  pipelining_checks: true\n"
    "  greeting_delay: 0s\n";

/* listeners the configuration cannot have without certificates */
static const struct conf_listener tls_optional = {
	.name = "tlsopt", .address = "127.0.0.1", .port = 2526,
	.role = ROLE_MX, .tls = { .mode = TLS_MODE_OPTIONAL },
	.auth = AUTH_MODE_OPTIONAL, .auth_set = 1,
};
static const struct conf_listener tls_required = {
	.name = "submission", .address = "127.0.0.1", .port = 587,
	.role = ROLE_SUBMISSION, .tls = { .mode = TLS_MODE_REQUIRED },
	.auth = AUTH_MODE_REQUIRED, .auth_set = 1,
};

static struct {
	char dir[64];
	const char *queue;		/* dir/spool/queue */
	struct worker w;
	struct event_base *base;
	struct event *watchdog;
	int stuck;
	int trace;			/* FUZZ_SESSION_TRACE set: show both sides */
	/* the replies read so far */
	char line[REPLY_MAX];
	size_t len;
	int multi;			/* code of an unfinished multi-line reply */
	int closed;			/* a 221 or 421 was said */
	size_t nlines;
	char queued[MAX_QUEUED][QID_LEN + 1];	/* "250 ... queued as" ids */
	size_t nqueued;
} fz;

static void
cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fz.dir);
	if (fz.dir[0] != '\0' && system(cmd) != 0)
		fprintf(stderr, "fuzz_session: cannot remove %s\n", fz.dir);
}

static void
die(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_session: %s: %s\n", what, err);
	abort();
}

static void
write_config(const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		die(path, strerror(errno));
	fprintf(f, config_fmt, fz.dir, fz.dir);
	if (fclose(f) != 0)
		die(path, strerror(errno));
}

static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	fz.stuck = 1;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char path[128], err[CONF_ERR_LEN];

	(void)argc;
	(void)argv;
	snprintf(fz.dir, sizeof(fz.dir), "%s/sluice-fuzz-session.XXXXXX", tmp);
	if (mkdtemp(fz.dir) == NULL)
		die(fz.dir, strerror(errno));
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/sluice.yaml", fz.dir);
	write_config(path);
	if ((server.conf = conf_load(path, err, sizeof(err))) == NULL)
		die(path, err);
	log_init(LOG_SINK_NONE, NULL, 0);
	signal(SIGPIPE, SIG_IGN);
	/* the order of main.c start(), without listeners, TLS or privileges */
	loop_global_init();
	kv_init();
	metrics_init();
	if (queue_open(server.conf->spool, err, sizeof(err)) == -1)
		die(server.conf->spool, err);
	fz.queue = queue_dir();
	server.mailboxes = mailbox_table_new(server.conf);
	conn_limits_init(server.conf->limits.sessions,
	    server.conf->limits.per_ip_sessions);
	server.nworkers = 1;
	if ((server.pipeline = pipeline_build(server.conf, 2, err,
	    sizeof(err))) == NULL)
		die("pipeline", err);
	server.commit_pool = iopool_new("commit", 2);
	/*
	 * a queue manager that takes submissions and starts nothing: its
	 * loop runs, qmgr_init() was never called (the zeroed mutex and
	 * condition variable are their static initializers in glibc), and
	 * qmgr_stop() sets what makes submit_on_loop() only free the id
	 */
	server.qmgr = loop_new("qmgr");
	if (loop_start(server.qmgr) == -1)
		die("qmgr", "cannot start the loop");
	qmgr_stop();
	/* the worker, as worker_setup() makes it; its loop runs here */
	fz.trace = getenv("FUZZ_SESSION_TRACE") != NULL;
	fz.w.loop = loop_new("smtp-0");
	fz.w.linecap = server.conf->limits.command_line_length + 1;
	fz.w.linebuf = malloc(fz.w.linecap);
	if (fz.w.linebuf == NULL)
		abort();
	if (pipeline_attach(server.pipeline, &fz.w, 0, err, sizeof(err)) == -1)
		die("pipeline", err);
	server.workers = &fz.w;
	fz.base = loop_base(fz.w.loop);
	fz.watchdog = evtimer_new(fz.base, on_watchdog, NULL);
	return 0;
}

static void
bad_reply(const char *why, const char *p, size_t n)
{
	fprintf(stderr, "fuzz_session: reply line %zu: %s: \"", fz.nlines, why);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, p[i] >= 0x20 && p[i] < 0x7f ? "%c" : "\\x%02x",
		    (unsigned char)p[i]);
	fprintf(stderr, "\"\n");
	abort();
}

/* check_line - one reply line, CRLF included */
static void
check_line(const char *p, size_t n)
{
	int code;

	fz.nlines++;
	if (fz.trace)
		fprintf(stderr, "S: %.*s", (int)n, p);
	if (n < 5 || p[n - 2] != '\r')
		bad_reply("not DDD[ -text] CRLF", p, n);
	if (p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '5' ||
	    p[2] < '0' || p[2] > '9' || (n > 5 && p[3] != ' ' && p[3] != '-'))
		bad_reply("bad reply code", p, n);
	for (size_t i = 3; i < n - 2; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			bad_reply("control byte in the text", p, n);
	code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	if (fz.multi != 0 && code != fz.multi)
		bad_reply("code changes inside a multi-line reply", p, n);
	if (fz.nlines == 1 && code != 220 && code != 421 && code != 554)
		bad_reply("not a greeting", p, n);
	if (fz.closed)
		bad_reply("a reply after 221 or 421", p, n);
	fz.multi = (n > 5 && p[3] == '-') ? code : 0;
	fz.closed = (code == 221 || code == 421) && fz.multi == 0;
	if (n == strlen(QUEUED_AS) + QID_LEN + 2 && fz.nqueued < MAX_QUEUED &&
	    memcmp(p, QUEUED_AS, strlen(QUEUED_AS)) == 0) {
		memcpy(fz.queued[fz.nqueued], p + strlen(QUEUED_AS), QID_LEN);
		fz.queued[fz.nqueued++][QID_LEN] = '\0';
	}
}

/* drain - read what the server said, check it line by line */
static void
drain(int fd)
{
	char buf[16384];
	ssize_t r;

	while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		for (ssize_t i = 0; i < r; i++) {
			if (fz.len == sizeof(fz.line))
				bad_reply("longer than 512 bytes", fz.line,
				    fz.len);
			fz.line[fz.len++] = buf[i];
			if (buf[i] == '\n') {
				check_line(fz.line, fz.len);
				fz.len = 0;
			}
		}
	}
}

/* session_idle - the session waits for more input and nothing else */
static int
session_idle(void)
{
	struct smtp_session *s = fz.w.sessions;
	int unread = 0;

	if (s == NULL)
		return 1;
	if (s->jobs > 0 || s->bev == NULL ||
	    evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
		return 0;
	return ioctl(bufferevent_getfd(s->bev), FIONREAD, &unread) == 0 &&
	    unread == 0;
}

/*
 * pump - run the worker's loop until the session is idle (last: gone),
 * reading the replies as they come
 */
static void
pump(int fd, int last)
{
	unsigned idle = 0;

	for (;;) {
		event_base_loop(fz.base, EVLOOP_NONBLOCK);
		drain(fd);
		if (fz.w.nsessions == 0 || (!last && session_idle()))
			return;
		if (fz.stuck) {
			fprintf(stderr, "fuzz_session: the session is still "
			    "there after %d s (state %d, flags %#x, jobs %u)\n",
			    WATCHDOG_S, fz.w.sessions->state,
			    fz.w.sessions->flags, fz.w.sessions->jobs);
			abort();
		}
		if (fz.w.sessions->jobs > 0) {	/* a commit: wait for it */
			event_base_loop(fz.base, EVLOOP_ONCE);
			continue;
		}
		if (++idle == IDLE_TURNS) {
			if (!last)
				return;		/* e.g. closing: the end tells */
			fprintf(stderr, "fuzz_session: the session does not end "
			    "after EOF (state %d, flags %#x)\n",
			    fz.w.sessions->state, fz.w.sessions->flags);
			abort();
		}
	}
}

static void
send_all(int fd, const uint8_t *p, size_t n)
{
	if (fz.trace)
		fprintf(stderr, "C: [%zu bytes] %.*s%s", n, (int)n, p,
		    n > 0 && p[n - 1] == '\n' ? "" : "\n");
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w == -1 && errno == EAGAIN)
			pump(fd, 0);		/* let the server read */
		else
			return;			/* the server closed */
	}
}

/* line_end - the length up to and including the first LF (or all) */
static size_t
line_end(const uint8_t *p, size_t n)
{
	const uint8_t *nl = memchr(p, '\n', n);

	return nl != NULL ? (size_t)(nl - p) + 1 : n;
}

/* group_end - the length of an RFC 2920 group of lines (or all) */
static size_t
group_end(const uint8_t *p, size_t n)
{
	static const char *const wait[] = { "EHLO", "HELO", "DATA", "VRFY",
	    "EXPN", "NOOP", "QUIT", "STARTTLS", "AUTH" };
	size_t off = 0, k;

	while (off < n) {
		k = line_end(p + off, n - off);
		for (size_t i = 0; i < nitems(wait); i++)
			if (k >= strlen(wait[i]) && strncasecmp((const char *)p +
			    off, wait[i], strlen(wait[i])) == 0)
				return off + k;
		if ((k == 3 && memcmp(p + off, ".\r\n", 3) == 0) ||
		    (k == 2 && memcmp(p + off, ".\n", 2) == 0))
			return off + k;
		off += k;
	}
	return n;
}

/* peer - the client's address by bits 0-1 of the first byte */
static socklen_t
peer(unsigned sel, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (sel == 2) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(50000);
		inet_pton(AF_INET6, "2001:db8::1", &sin6->sin6_addr);
		return sizeof(*sin6);
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons(50000);
	inet_pton(AF_INET, sel == 1 ? "127.0.0.1" : "192.0.2.1",
	    &sin->sin_addr);
	return sizeof(*sin);
}

/*
 * spool_check - every message answered "queued" is in queue/, no partial
 * one is left; then the committed ones are removed
 */
static void
spool_check(void)
{
	DIR *d = opendir(fz.queue);
	struct dirent *de;
	struct stat st;
	size_t n;

	if (d == NULL)
		die(fz.queue, strerror(errno));
	for (size_t i = 0; i < fz.nqueued; i++)
		if (fstatat(dirfd(d), fz.queued[i], &st, 0) == -1 ||
		    !S_ISREG(st.st_mode) || st.st_size == 0)
			die("answered queued, not in queue/", fz.queued[i]);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strncmp(de->d_name, "free.", 5) == 0)
			continue;
		n = strlen(de->d_name);
		if (n > 3 && strcmp(de->d_name + n - 3, ".in") == 0)
			die("message file left half-written", de->d_name);
		if (unlinkat(dirfd(d), de->d_name, 0) == -1)
			die(de->d_name, strerror(errno));
	}
	closedir(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t chunks[] = { 1, 3, 16, 100 };
	static const struct timeval watchdog = { WATCHDOG_S, 0 };
	const struct conf_listener *l;
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned mode, early;
	size_t off = 0, n, chunk;
	int sv[2];

	if (size < 2)
		return 0;
	sl = peer(data[0] & 3, &ss);
	server.conf->pipelining_checks = (data[0] & 3) != 3;
	switch ((data[0] >> 2) & 3) {
	case 2:
		l = &tls_optional;
		break;
	case 3:
		l = &tls_required;
		break;
	default:
		l = &server.conf->listeners[0];
	}
	mode = (data[0] >> 4) & 3;
	chunk = chunks[data[0] >> 6];
	server.conf->bare_newline = (data[1] & 1) ? BARE_NL_NORMALIZE :
	    BARE_NL_REJECT;
	early = data[1] & 2;
	data += 2;
	size -= 2;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1 ||
	    evutil_make_socket_nonblocking(sv[0]) == -1)
		die("socketpair", strerror(errno));
	memset(fz.line, 0, sizeof(fz.line));
	fz.len = 0;
	fz.multi = 0;
	fz.nlines = 0;
	fz.nqueued = 0;
	fz.closed = 0;
	fz.stuck = 0;
	evtimer_add(fz.watchdog, &watchdog);
	if (early) {			/* a client that talks first */
		n = line_end(data, size);
		send_all(sv[1], data, n);
		off = n;
	}
	fuzz_check(conn_limits_acquire((struct sockaddr *)&ss) == CONN_OK);
	session_accept(&fz.w, l, sv[0], (struct sockaddr *)&ss, sl);
	pump(sv[1], 0);
	while (off < size && fz.w.nsessions > 0) {
		if (mode == 0)
			n = size - off;
		else if (mode == 2)
			n = chunk;
		else if (mode == 3)
			n = group_end(data + off, size - off);
		else
			n = line_end(data + off, size - off);
		if (n > size - off)
			n = size - off;
		send_all(sv[1], data + off, n);
		off += n;
		pump(sv[1], 0);
	}
	shutdown(sv[1], SHUT_WR);
	pump(sv[1], 1);
	evtimer_del(fz.watchdog);
	drain(sv[1]);
	if (fz.len != 0)
		bad_reply("unfinished line", fz.line, fz.len);
	if (fz.multi != 0)
		bad_reply("unfinished multi-line reply", "", 0);
	close(sv[1]);
	spool_check();
	return 0;
}
