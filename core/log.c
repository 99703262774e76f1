/*
 * log.c - key=value event log to stderr, a file or syslog (see log.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LINE_MAX_LEN	4096
#define QUOTE_SLOTS	8
#define QUOTE_LEN	1024

static enum log_sink sink = LOG_SINK_STDERR;
static int debug_on;
static int pid;
static int log_fd = STDERR_FILENO;	/* stderr, or the log file */
static char *log_path;			/* the log file's */

static const struct {
	const char *name;
	int facility;
} facilities[] = {
	{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

static int
open_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOCTTY, 0640);
}

int
log_init(enum log_sink s, const char *arg, int debug)
{
	const char *facility = arg;
	int fd;

	debug_on = debug;
	pid = (int)getpid();
	if (s == LOG_SINK_FILE) {
		if (arg == NULL || (fd = open_file(arg)) == -1)
			return -1;
		if ((log_path = strdup(arg)) == NULL) {
			close(fd);
			return -1;
		}
		log_fd = fd;
	}
	sink = s;
	if (s != LOG_SINK_SYSLOG)
		return 0;
	for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
		if (strcmp(facilities[i].name, facility ? facility : "mail") == 0) {
			openlog("sluiced", LOG_PID | LOG_NDELAY,
			    facilities[i].facility);
			return 0;
		}
	return -1;
}

int
log_reopen(void)
{
	int fd, rv = 0;

	if (sink != LOG_SINK_FILE)
		return 0;
	if ((fd = open_file(log_path)) == -1)
		return -1;
	/* atomic for concurrent writers; keeps close-on-exec */
	if (dup3(fd, log_fd, O_CLOEXEC) == -1)
		rv = -1;
	close(fd);
	return rv;
}

int
log_debug_enabled(void)
{
	return debug_on;
}

/*
 * log_q - quote a value for key=value output when it needs it: empty values,
 * spaces, quotes, backslashes and '=' get double quotes; control bytes and
 * non-UTF-8-safe bytes are shown as \xHH so a log line never splits.
 */
const char *
log_q(const char *v)
{
	static __thread char ring[QUOTE_SLOTS][QUOTE_LEN];
	static __thread unsigned slot;
	char *out = ring[slot++ % QUOTE_SLOTS];
	const unsigned char *p;
	size_t o = 0;
	int quote = (v == NULL || *v == '\0');

	if (v == NULL)
		v = "";
	for (p = (const unsigned char *)v; *p && !quote; p++)
		if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '=' ||
		    *p == 0x7f)
			quote = 1;
	if (!quote)
		return v;
	out[o++] = '"';
	for (p = (const unsigned char *)v; *p && o < QUOTE_LEN - 8; p++) {
		if (*p == '"' || *p == '\\') {
			out[o++] = '\\';
			out[o++] = *p;
		} else if (*p < ' ' || *p == 0x7f)
			o += snprintf(out + o, QUOTE_LEN - o, "\\x%02x", *p);
		else
			out[o++] = *p;
	}
	if (*p)
		o += snprintf(out + o, QUOTE_LEN - o, "...");
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

static void
vlog(int prio, const char *level, const char *err, const char *fmt,
    va_list ap)
{
	char line[LINE_MAX_LEN];
	size_t n = 0;
	struct timespec ts;
	struct tm tm;

	if (sink == LOG_SINK_NONE && prio != LOG_CRIT)
		return;			/* fatal lines still reach stderr */
	if (sink != LOG_SINK_SYSLOG) {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += snprintf(line + n, sizeof(line) - n, ".%06ldZ sluiced[%d]: %s: ",
		    ts.tv_nsec / 1000, pid ? pid : (int)getpid(), level);
	}
	int k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	n = k < 0 ? n : (n + (size_t)k >= sizeof(line) ? sizeof(line) - 1 : n + k);
	if (err != NULL && n < sizeof(line) - 1) {
		k = snprintf(line + n, sizeof(line) - n, " error=%s", log_q(err));
		n = k < 0 ? n : (n + (size_t)k >= sizeof(line) ? sizeof(line) - 1 : n + k);
	}
	if (sink == LOG_SINK_SYSLOG) {
		syslog(prio, "%s: %s", level, line);
		return;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(log_fd, line, n);
}

#define LOGFN(name, prio, level, witherr)			\
void								\
name(const char *fmt, ...)					\
{								\
	va_list ap;						\
	const char *e = (witherr) ? strerror(errno) : NULL;	\
								\
	if ((prio) == LOG_DEBUG && !debug_on)			\
		return;						\
	va_start(ap, fmt);					\
	vlog(prio, level, e, fmt, ap);				\
	va_end(ap);						\
}

LOGFN(log_debug, LOG_DEBUG, "debug", 0)
LOGFN(log_info, LOG_INFO, "info", 0)
LOGFN(log_warn, LOG_WARNING, "warning", 1)
LOGFN(log_warnx, LOG_WARNING, "warning", 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;
	const char *e = strerror(errno);

	va_start(ap, fmt);
	vlog(LOG_CRIT, "fatal", e, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, "fatal", NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
