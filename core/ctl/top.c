/*
 * top.c - sluicectl top [-n COUNT] [-i SECONDS] [-s SOCKET]: ask the
 * running sluiced for its metrics over the control socket ("metrics",
 * control.h) every interval and draw a frame of rates and gauges
 * (top_view.c). On a terminal the frame is redrawn in place with plain
 * ANSI escapes until COUNT frames or Ctrl-C; with -n 1, or when stdout is
 * not a terminal, frames are printed one after the other as plain text.
 * Each frame's rates cover the interval before it, so the first frame
 * comes one interval after the start.
 * Exit status: 0 done, 1 an answer that is not an exposition, 2 usage
 * error or no server to talk to (at start or later).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "top.h"

#define CLEAR		"\033[H\033[2J"
#define HIDE_CURSOR	"\033[?25l"
#define SHOW_CURSOR	"\033[?25h"

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* pause_until - sleep to the monotonic time t; 0 if a signal stopped us */
static int
pause_until(double t)
{
	double left;

	while (!stop && (left = t - mono()) > 0) {
		struct timespec ts = { (time_t)left,
		    (long)((left - (double)(time_t)left) * 1e9) };
		if (nanosleep(&ts, NULL) == -1 && errno != EINTR)
			break;
	}
	return !stop;
}

/* fetch - one exposition; 2 no server, 1 a bad answer, 0 ok */
static int
fetch(const char *path, struct expo *e)
{
	char *answer = ctl_request(path, "metrics"), err[256];

	if (answer == NULL)
		return 2;
	if (strncmp(answer, "ok\n", 3) != 0) {
		answer[strcspn(answer, "\n")] = '\0';
		fprintf(stderr, "sluicectl top: %s\n", strncmp(answer,
		    "error ", 6) == 0 ? answer + 6 :
		    "unexpected answer from sluiced");
		free(answer);
		return 1;
	}
	if (expo_parse(e, answer + 3, err, sizeof(err)) == -1) {
		fprintf(stderr, "sluicectl top: bad metrics from sluiced: %s\n",
		    err);
		free(answer);
		return 1;
	}
	free(answer);
	return 0;
}

static unsigned
screen_rows(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == -1 || ws.ws_row == 0)
		return 24;
	return ws.ws_row;
}

static int
options(int argc, char **argv, long *count, double *interval,
    const char **sock)
{
	for (int i = 1; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			*count = strtol(argv[++i], &end, 10);
			if (*end != '\0' || *count < 0)
				goto bad;
		} else if (strcmp(argv[i], "-i") == 0 && i + 1 < argc) {
			*interval = strtod(argv[++i], &end);
			if (*end != '\0' || !(*interval >= 0.1 &&
			    *interval <= 3600))
				goto bad;
		} else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			*sock = argv[++i];
		else
			goto bad;
	}
	return 0;
bad:
	fprintf(stderr, "usage: sluicectl top [-n COUNT] [-i SECONDS (0.1 to "
	    "3600)] [-s SOCKET]\n");
	return -1;
}

/* run - frames until count (0: no end) or a signal; the exit status */
static int
run(const char *path, long count, double interval, int live)
{
	struct expo prev, cur;
	double t0, t1, next;
	int rv;

	if ((rv = fetch(path, &prev)) != 0)
		return rv;
	t0 = mono();
	next = t0 + interval;
	if (live)
		printf(HIDE_CURSOR);
	for (long frame = 0; count == 0 || frame < count; frame++) {
		if (!pause_until(next))
			break;
		if ((rv = fetch(path, &cur)) != 0)
			break;
		t1 = mono();
		next += interval;
		if (next < t1)		/* a slow answer: do not catch up */
			next = t1 + interval;
		struct top_frame f = { &prev, &cur, t1 - t0, time(NULL),
		    live ? screen_rows() : 0 };
		if (live)
			printf(CLEAR);
		else if (frame > 0)
			printf("\n");
		top_render(stdout, &f);
		fflush(stdout);
		expo_free(&prev);
		prev = cur;
		t0 = t1;
	}
	expo_free(&prev);
	if (live) {
		printf(SHOW_CURSOR);
		fflush(stdout);
	}
	return rv;
}

int
ctl_top(const char *conf, int argc, char **argv)
{
	const char *sock = NULL;
	long count = 0;
	double interval = 1.0;
	char path[512];
	struct sigaction sa;

	if (options(argc, argv, &count, &interval, &sock) == -1)
		return 2;
	if (ctl_socket_path(conf, sock, path, sizeof(path)) == -1)
		return 2;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: the sleep ends */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return run(path, count, interval, count != 1 && isatty(STDOUT_FILENO));
}
