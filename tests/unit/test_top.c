/*
 * test_top.c - unit tests for what sluicectl top reads and shows: the
 * exposition parser (expo.c: labels, escapes, timestamps, refusals),
 * sums and histogram quantiles over an interval, one rendered frame
 * (top_view.c), and the delays=a/b/c/d split of the delivery log
 * (delays.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "delays.h"
#include "expo.h"
#include "top.h"

static const char *const PREV =
    "# HELP sluice_messages_accepted_total messages queued\n"
    "# TYPE sluice_messages_accepted_total counter\n"
    "sluice_messages_accepted_total{listener=\"mx\"} 10\n"
    "sluice_messages_accepted_total{listener=\"sub\"} 5\n"
    "sluice_messages_rejected_total{stage=\"rcpt\",reason=\"unknown_user\"} 1\n"
    "sluice_smtp_sessions_total{listener=\"mx\"} 20\n"
    "sluice_deliveries_total{transport=\"smtp\",result=\"sent\"} 7\n"
    "sluice_filter_duration_seconds_bucket{filter=\"slow\",le=\"0.01\"} 0\n"
    "sluice_filter_duration_seconds_bucket{filter=\"slow\",le=\"0.1\"} 2\n"
    "sluice_filter_duration_seconds_bucket{filter=\"slow\",le=\"1\"} 2\n"
    "sluice_filter_duration_seconds_bucket{filter=\"slow\",le=\"+Inf\"} 2\n"
    "sluice_filter_duration_seconds_sum{filter=\"slow\"} 0.1\n"
    "sluice_filter_duration_seconds_count{filter=\"slow\"} 2\n"
    "sluice_filter_duration_seconds_bucket{filter=\"fast\",le=\"0.01\"} 4\n"
    "sluice_filter_duration_seconds_bucket{filter=\"fast\",le=\"0.1\"} 4\n"
    "sluice_filter_duration_seconds_bucket{filter=\"fast\",le=\"1\"} 4\n"
    "sluice_filter_duration_seconds_bucket{filter=\"fast\",le=\"+Inf\"} 4\n"
    "sluice_filter_duration_seconds_sum{filter=\"fast\"} 0.004\n"
    "sluice_filter_duration_seconds_count{filter=\"fast\"} 4\n";

static const char *const CUR =
    "sluice_messages_accepted_total{listener=\"mx\"} 14\n"
    "sluice_messages_accepted_total{listener=\"sub\"} 5\n"
    "sluice_messages_rejected_total{stage=\"rcpt\",reason=\"unknown_user\"} 1\n"
    "sluice_smtp_sessions{listener=\"mx\"} 3\n"
    "sluice_smtp_sessions_total{listener=\"mx\"} 22\n"
    "sluice_deliveries_total{transport=\"smtp\",result=\"sent\"} 9\n"
    "sluice_deliveries_total{transport=\"smtp\",result=\"deferred\"} 1\n"
    "sluice_filter_duration_seconds_bucket{filter=\"slow\",le=\"0.01\"} 0\n"
    "sluice_filter_duration_seconds_bucket{filter=\"slow\",le=\"0.1\"} 2\n"
    "sluice_filter_duration_seconds_bucket{filter=\"slow\",le=\"1\"} 6\n"
    "sluice_filter_duration_seconds_bucket{filter=\"slow\",le=\"+Inf\"} 6\n"
    "sluice_filter_duration_seconds_sum{filter=\"slow\"} 2.1\n"
    "sluice_filter_duration_seconds_count{filter=\"slow\"} 6\n"
    "sluice_filter_duration_seconds_bucket{filter=\"fast\",le=\"0.01\"} 4\n"
    "sluice_filter_duration_seconds_bucket{filter=\"fast\",le=\"0.1\"} 4\n"
    "sluice_filter_duration_seconds_bucket{filter=\"fast\",le=\"1\"} 4\n"
    "sluice_filter_duration_seconds_bucket{filter=\"fast\",le=\"+Inf\"} 4\n"
    "sluice_filter_duration_seconds_sum{filter=\"fast\"} 0.004\n"
    "sluice_filter_duration_seconds_count{filter=\"fast\"} 4\n"
    "sluice_filter_errors_total{filter=\"slow\"} 2\n"
    "sluice_queue_messages{state=\"active\"} 2\n"
    "sluice_queue_messages{state=\"deferred\"} 5\n"
    "sluice_queue_oldest_seconds{state=\"active\"} 3\n"
    "sluice_queue_oldest_seconds{state=\"deferred\"} 130.2\n"
    "sluice_destination_connections{destination=\"smtp:[192.0.2.1]:25\"} 4\n"
    "sluice_destination_queued{destination=\"smtp:[192.0.2.1]:25\"} 17\n"
    "sluice_destination_connections{destination=\"mx.example.org\"} 1\n"
    "sluice_destination_queued{destination=\"mx.example.org\"} 0\n";

static void
test_parse_samples(void **state)
{
	struct expo e;
	char err[128];

	(void)state;
	assert_int_equal(expo_parse(&e, "# HELP x y\n\nup 1\r\n"
	    "a_b:c{k=\"v\\\"q\\\\\\n\",le=\"+Inf\"} 2.5e1 1700000000000\n"
	    "z{} -3\n", err, sizeof(err)), 0);
	assert_int_equal(e.n, 3);
	assert_string_equal(e.s[0].name, "up");
	assert_true(e.s[0].value == 1);
	assert_string_equal(e.s[1].name, "a_b:c");
	assert_int_equal(e.s[1].nlabels, 2);
	assert_string_equal(expo_label(&e.s[1], "k"), "v\"q\\\n");
	assert_string_equal(expo_label(&e.s[1], "le"), "+Inf");
	assert_null(expo_label(&e.s[1], "nope"));
	assert_true(e.s[1].value == 25);
	assert_string_equal(e.s[2].name, "z");
	assert_true(e.s[2].value == -3);
	expo_free(&e);
}

static void
test_parse_refusals(void **state)
{
	static const char *const bad[] = {
		"1abc 2\n", "x\n", "x 1 junk\n", "x{k=v} 1\n",
		"x{k=\"v} 1\n", "x{k=\"\\t\"} 1\n", "x{k=\"v\"\n",
		"x{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\"} 1\n",
		"x{=\"v\"} 1\n", "x{k=\"v\";} 1\n", "x{k=\"v\"}1\n",
	};
	struct expo e;
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(expo_parse(&e, bad[i], err, sizeof(err)), -1);
		assert_non_null(strstr(err, "line 1: "));
		assert_int_equal(e.n, 0);
	}
	assert_int_equal(expo_parse(&e, "ok 1\nbad\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 2: "));
}

static void
test_sums_and_values(void **state)
{
	struct expo e;
	const char *v[8];
	char err[128];

	(void)state;
	assert_int_equal(expo_parse(&e, CUR, err, sizeof(err)), 0);
	assert_true(expo_sum(&e, "sluice_messages_accepted_total", NULL,
	    NULL) == 19);
	assert_true(expo_sum(&e, "sluice_messages_accepted_total",
	    "listener", "sub") == 5);
	assert_true(expo_sum(&e, "sluice_deliveries_total", "result",
	    "bounced") == 0);
	assert_true(expo_sum(&e, "nothing", NULL, NULL) == 0);
	assert_int_equal(expo_values(&e, "sluice_filter_duration_seconds_"
	    "count", "filter", v, 8), 2);
	assert_string_equal(v[0], "slow");
	assert_string_equal(v[1], "fast");
	assert_int_equal(expo_values(&e, "sluice_filter_duration_seconds_"
	    "count", "filter", v, 1), 1);
	expo_free(&e);
}

static void
test_quantiles(void **state)
{
	struct expo p, c;
	struct expo_hist h;
	char err[128];

	(void)state;
	assert_int_equal(expo_parse(&p, PREV, err, sizeof(err)), 0);
	assert_int_equal(expo_parse(&c, CUR, err, sizeof(err)), 0);
	/* since start: 2 calls in (0.01, 0.1], 4 in (0.1, 1] */
	expo_hist(&c, NULL, "sluice_filter_duration_seconds", "filter",
	    "slow", &h);
	assert_int_equal(h.n, 4);
	assert_true(h.cum[3] == 6);
	/* rank 5.7: in the third bucket, (5.7 - 2) / 4 of the way */
	assert_true(expo_quantile(&h, 0.95) > 0.93 &&
	    expo_quantile(&h, 0.95) < 0.94);
	/* rank 1: in the second bucket, halfway */
	assert_true(expo_quantile(&h, 1.0 / 6) > 0.054 &&
	    expo_quantile(&h, 1.0 / 6) < 0.056);
	/* over the interval: the 4 new calls are all in (0.1, 1] */
	expo_hist(&c, &p, "sluice_filter_duration_seconds", "filter", "slow",
	    &h);
	assert_true(h.cum[3] == 4);
	assert_true(h.cum[1] == 0);
	assert_true(expo_quantile(&h, 0.5) > 0.549 &&
	    expo_quantile(&h, 0.5) < 0.551);
	/* nothing in the interval */
	expo_hist(&c, &p, "sluice_filter_duration_seconds", "filter", "fast",
	    &h);
	assert_true(expo_quantile(&h, 0.95) == -1);
	/* everything beyond the last finite bound */
	expo_free(&p);
	assert_int_equal(expo_parse(&p, "h_bucket{le=\"1\"} 0\n"
	    "h_bucket{le=\"+Inf\"} 3\n", err, sizeof(err)), 0);
	expo_hist(&p, NULL, "h", NULL, NULL, &h);
	assert_true(expo_quantile(&h, 0.95) == 1);
	/* a restart: counts went down, the current ones are taken */
	expo_hist(&p, &c, "h", NULL, NULL, &h);
	assert_true(h.cum[1] == 3);
	expo_free(&p);
	expo_free(&c);
}

static char *
render(const char *prev, const char *cur, double dt, unsigned rows)
{
	struct expo p, c;
	char err[128], *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_int_equal(expo_parse(&p, prev, err, sizeof(err)), 0);
	assert_int_equal(expo_parse(&c, cur, err, sizeof(err)), 0);
	struct top_frame fr = { &p, &c, dt, 0, rows };
	top_render(f, &fr);
	fclose(f);
	expo_free(&p);
	expo_free(&c);
	return text;
}

static void
test_frame(void **state)
{
	char *t = render(PREV, CUR, 2.0, 0), *slow, *fast;

	(void)state;
	assert_non_null(strstr(t, "over 2.0s"));
	assert_non_null(strstr(t, "open 3  new 1.00/s (22)"));
	assert_non_null(strstr(t, "accepted 2.00/s (19)"));
	assert_non_null(strstr(t, "rejected 0.00/s (1)"));
	assert_non_null(strstr(t, "tempfailed 0.00/s (0)"));
	assert_non_null(strstr(t, "sent 1.00/s (9)"));
	assert_non_null(strstr(t, "deferred 0.50/s (1)"));
	assert_non_null(strstr(t, "active 2 (oldest 3s)"));
	assert_non_null(strstr(t, "deferred 5 (oldest 2m10s)"));
	assert_non_null(strstr(t, "hold 0  quarantine 0"));
	assert_non_null(strstr(t, "smtp:[192.0.2.1]:25"));
	assert_non_null(strstr(t, "mx.example.org"));
	/* slowest first: slow (interval: 4 calls, mean 0.5 s), then fast
	   (no calls in the interval: since start, 1 ms) */
	slow = strstr(t, "\nslow ");
	fast = strstr(t, "\nfast ");
	assert_non_null(slow);
	assert_non_null(fast);
	assert_true(slow < fast);
	assert_non_null(strstr(slow, "2.00   500.00"));
	assert_non_null(strstr(slow, "interval"));
	assert_non_null(strstr(fast, "0.00     1.00"));
	assert_non_null(strstr(fast, "all"));
	free(t);
	/* a short screen keeps the summary and cuts the lists */
	t = render(PREV, CUR, 1.0, 10);
	assert_non_null(strstr(t, "accepted 4.00/s"));
	assert_null(strstr(t, "\nfast "));
	free(t);
	/* an idle server */
	t = render("", "", 1.0, 0);
	assert_non_null(strstr(t, "(no connections, nothing waiting)"));
	assert_non_null(strstr(t, "(no filter called yet)"));
	free(t);
}

static void
test_durations(void **state)
{
	char b[32];

	(void)state;
	top_duration(0, b, sizeof(b));
	assert_string_equal(b, "0s");
	top_duration(59.4, b, sizeof(b));
	assert_string_equal(b, "59s");
	top_duration(130.2, b, sizeof(b));
	assert_string_equal(b, "2m10s");
	top_duration(3 * 3600 + 5 * 60, b, sizeof(b));
	assert_string_equal(b, "3h05m");
	top_duration(2 * 86400 + 4 * 3600, b, sizeof(b));
	assert_string_equal(b, "2d04h");
	top_duration(-5, b, sizeof(b));
	assert_string_equal(b, "0s");
}

static void
test_delays(void **state)
{
	/* arrival 0; qmgr at 1 s; setup 1.5 .. 2.0 s; MAIL at 2.5 s; 3 s */
	struct delay_marks m = { 1000000, 2000000, 2500000, 3000000,
	    3500000, 4000000 };
	double d[4];
	char b[64];

	(void)state;
	delays_split(&m, d);
	assert_true(d[0] == 1.0 && d[1] == 1.0 && d[2] == 0.5 && d[3] == 0.5);
	delays_format(&m, b, sizeof(b));
	assert_string_equal(b, "1.00/1.00/0.50/0.50");
	/* a reused connection: its setup was before the job, c is 0 */
	m.setup_start = 100000;
	m.setup_end = 200000;
	delays_split(&m, d);
	assert_true(d[1] == 1.5 && d[2] == 0);
	/* setup began before the attempt: only the part after counts */
	m.setup_start = 1500000;
	m.setup_end = 3000000;
	delays_split(&m, d);
	assert_true(d[0] == 1.0 && d[1] == 0.5 && d[2] == 1.0 && d[3] == 0.5);
	/* failed before transmission: no xmit, the rest is b and c */
	m.xmit = 0;
	delays_split(&m, d);
	assert_true(d[2] == 1.0 && d[3] == 0 && d[1] == 1.0);
	/* local delivery: no setup */
	struct delay_marks l = { 1000000, 1000000, 0, 0, 1200000, 1300000 };
	delays_split(&l, d);
	assert_true(d[0] == 0 && d[2] == 0);
	assert_true(d[1] > 0.199 && d[1] < 0.201);
	assert_true(d[3] > 0.099 && d[3] < 0.101);
	/* marks out of order (a clock step) never give negative times */
	struct delay_marks w = { 5000000, 4000000, 1, 9000000, 3000000,
	    4500000 };
	delays_split(&w, d);
	for (int i = 0; i < 4; i++)
		assert_true(d[i] >= 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_samples),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_sums_and_values),
		cmocka_unit_test(test_quantiles),
		cmocka_unit_test(test_frame),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_delays),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
