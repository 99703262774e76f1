/*
 * test_conf.c - unit tests for conf/: value parsers and conf_load()
 *
 * Each configuration is written to a temporary file (mkstemp) and loaded;
 * error tests compare the whole "FILE:LINE:COL: message" text. Run from the
 * repository root: one test loads conf/sluice.yaml by its relative path.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"

#define TMPL	"/tmp/sluice-test-conf-XXXXXX"
#define PATHLEN	64

/* Minimal valid configuration: two lines, so added keys start at line 3. */
#define BASE	"listeners: [{name: mx, address: 127.0.0.1, port: 2525}]\n" \
		"domains: {local: [example.test]}\n"

struct err_case {
	const char	*yaml;
	const char	*want;		/* error text after "FILE:" */
};

static void
write_file(char *path, const char *text, size_t len)
{
	int	 fd;

	snprintf(path, PATHLEN, "%s", TMPL);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static struct config *
load_text(const char *text, char *path, char *err)
{
	struct config	*cf;

	write_file(path, text, strlen(text));
	cf = conf_load(path, err, CONF_ERR_LEN);
	unlink(path);
	return cf;
}

static struct config *
load_ok(const char *text)
{
	struct config	*cf;
	char		 path[PATHLEN], err[CONF_ERR_LEN];

	cf = load_text(text, path, err);
	if (cf == NULL)
		fail_msg("unexpected error: %s", err);
	return cf;
}

static void
expect_error_len(const char *text, size_t len, const char *want)
{
	struct config	*cf;
	char		 path[PATHLEN], err[CONF_ERR_LEN], full[CONF_ERR_LEN];

	write_file(path, text, len);
	memset(err, 'x', sizeof(err));
	cf = conf_load(path, err, sizeof(err));
	unlink(path);
	if (cf != NULL) {
		conf_free(cf);
		fail_msg("loaded, expected error \"%s\" for:\n%s", want, text);
	}
	snprintf(full, sizeof(full), "%s:%s", path, want);
	assert_string_equal(err, full);
}

static void
expect_error(const char *text, const char *want)
{
	expect_error_len(text, strlen(text), want);
}

static void
run_error_cases(const struct err_case *c, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		expect_error(c[i].yaml, c[i].want);
}

#define RUN_CASES(c)	run_error_cases((c), sizeof(c) / sizeof((c)[0]))

static char *
cwd_path(const char *rel)
{
	char	 cwd[PATH_MAX], *p;
	size_t	 len;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	len = strlen(cwd) + strlen(rel) + 2;
	p = malloc(len);
	assert_non_null(p);
	snprintf(p, len, "%s/%s", cwd, rel);
	return p;
}

static void
assert_cwd_path(const char *got, const char *rel)
{
	char	*want = cwd_path(rel);

	assert_string_equal(got, want);
	free(want);
}

/* ---- value parsers ---------------------------------------------------- */

static void
test_duration_good(void **state)
{
	static const struct {
		const char	*s;
		unsigned	 v;
	} ok[] = {
		{ "0", 0 }, { "30", 30 }, { "0s", 0 }, { "30s", 30 },
		{ "5m", 300 }, { "2h", 7200 }, { "5d", 432000 },
		{ "1w", 604800 }, { "1h30m", 5400 }, { "1d12h", 129600 },
		{ "1w2d3h4m5s", 788645 }, { "4294967295", 4294967295U },
		{ "4294967295s", 4294967295U }, { "49710d", 4294944000U },
		{ "49710d6h28m15s", 4294967295U }, { "007s", 7 },
	};
	unsigned	 v;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 12345;
		if (conf_parse_duration(ok[i].s, &v) != 0)
			fail_msg("duration '%s' rejected", ok[i].s);
		if (v != ok[i].v)
			fail_msg("duration '%s': %u, want %u", ok[i].s, v,
			    ok[i].v);
	}
}

static void
test_duration_bad(void **state)
{
	static const char *const	 bad[] = {
		"", "-1", "+1", " 1", "1 ", "1 s", "5x", "5M", "5S", "m",
		"s5", "1h30", "30m1h", "1h1h", "1.5h", "0x10", "5ms",
		"4294967296", "4294967296s", "71582789m", "49711d",
		"49710d6h28m16s", "99999999999999999999", "99999999999w",
	};
	unsigned			 v = 7;
	size_t				 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (conf_parse_duration(bad[i], &v) != -1)
			fail_msg("duration '%s' accepted as %u", bad[i], v);
	assert_int_equal(conf_parse_duration(NULL, &v), -1);
	assert_int_equal(v, 7);
}

static void
test_size_good(void **state)
{
	static const struct {
		const char	*s;
		uint64_t	 v;
	} ok[] = {
		{ "0", 0 }, { "100", 100 }, { "100B", 100 }, { "100b", 100 },
		{ "512K", 512 * 1024 }, { "512k", 512 * 1024 },
		{ "512KB", 512 * 1024 }, { "512KiB", 512 * 1024 },
		{ "35M", 35 * 1024 * 1024 }, { "35MB", 35 * 1024 * 1024 },
		{ "35MiB", 35 * 1024 * 1024 }, { "35m", 35 * 1024 * 1024 },
		{ "1G", 1ULL << 30 }, { "1GiB", 1ULL << 30 },
		{ "2T", 2ULL << 40 },
		{ "18446744073709551615", UINT64_MAX },
		{ "16777215T", 16777215ULL << 40 },
	};
	uint64_t	 v;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 12345;
		if (conf_parse_size(ok[i].s, &v) != 0)
			fail_msg("size '%s' rejected", ok[i].s);
		if (v != ok[i].v)
			fail_msg("size '%s': %llu", ok[i].s,
			    (unsigned long long)v);
	}
}

static void
test_size_bad(void **state)
{
	static const char *const	 bad[] = {
		"", "M", "B", "-1", "+1", " 1", "1 ", "1.5M", "35 M", "35MX",
		"35Mi", "35MBB", "35iB", "35Bi", "1P", "0x10", "abc", "12abc",
		"18446744073709551616", "99999999999999999999999",
		"16777216T", "17179869184G", "18014398509481984K",
	};
	uint64_t			 v = 7;
	size_t				 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (conf_parse_size(bad[i], &v) != -1)
			fail_msg("size '%s' accepted", bad[i]);
	assert_int_equal(conf_parse_size(NULL, &v), -1);
	assert_int_equal(v, 7);
}

static void
test_bool(void **state)
{
	static const struct {
		const char	*s;
		int		 v;
	} ok[] = {
		{ "true", 1 }, { "yes", 1 }, { "on", 1 }, { "True", 1 },
		{ "TRUE", 1 }, { "false", 0 }, { "no", 0 }, { "off", 0 },
		{ "False", 0 }, { "NO", 0 },
	};
	static const char *const	 bad[] = {
		"", "1", "0", "y", "n", "t", "truee", " true", "true ", "nope",
		"enable",
	};
	int				 v;
	size_t				 i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 7;
		if (conf_parse_bool(ok[i].s, &v) != 0 || v != ok[i].v)
			fail_msg("bool '%s': %d", ok[i].s, v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		if (conf_parse_bool(bad[i], &v) != -1 || v != 7)
			fail_msg("bool '%s' accepted", bad[i]);
	}
	assert_int_equal(conf_parse_bool(NULL, &v), -1);
}

/* the keys of the protocol hardening: given values land in place */
static void
test_hardening_keys(void **state)
{
	struct config	*cf;
	char		 path[PATHLEN], err[CONF_ERR_LEN];

	(void)state;
	cf = load_text(BASE "limits: {data_timeout: 2m, min_data_rate: 2K, "
	    "data_rate_grace: 10s}\nsmtp: {greeting_delay: 3s, "
	    "pipelining_checks: false}\nallow_root_filters: yes\n", path,
	    err);
	if (cf == NULL)
		fail_msg("%s", err);
	assert_int_equal(cf->limits.data_timeout, 120);
	assert_int_equal(cf->limits.min_data_rate, 2048);
	assert_int_equal(cf->limits.data_rate_grace, 10);
	assert_int_equal(cf->greeting_delay, 3);
	assert_int_equal(cf->pipelining_checks, 0);
	assert_int_equal(cf->allow_root_filters, 1);
	conf_free(cf);
	cf = load_text(BASE "limits: {data_timeout: 0, min_data_rate: 0}\n",
	    path, err);
	if (cf == NULL)
		fail_msg("%s", err);
	assert_int_equal(cf->limits.data_timeout, 0);
	assert_int_equal(cf->limits.min_data_rate, 0);
	conf_free(cf);
}

static void
check_network(const char *s, int family, const char *addr, unsigned prefix)
{
	struct conf_network	 net;
	unsigned char		 want[16];

	memset(want, 0, sizeof(want));
	assert_int_equal(inet_pton(family, addr, want), 1);
	if (conf_parse_network(s, &net) != 0)
		fail_msg("network '%s' rejected", s);
	assert_int_equal(net.family, family);
	assert_int_equal(net.prefix, prefix);
	assert_memory_equal(net.addr, want, sizeof(want));
}

static void
test_network_good(void **state)
{
	(void)state;
	check_network("127.0.0.0/8", AF_INET, "127.0.0.0", 8);
	check_network("10.1.2.3/8", AF_INET, "10.0.0.0", 8);
	check_network("172.31.255.255/12", AF_INET, "172.16.0.0", 12);
	check_network("192.0.2.1", AF_INET, "192.0.2.1", 32);
	check_network("192.0.2.1/32", AF_INET, "192.0.2.1", 32);
	check_network("0.0.0.0/0", AF_INET, "0.0.0.0", 0);
	check_network("255.255.255.255/0", AF_INET, "0.0.0.0", 0);
	check_network("::1/128", AF_INET6, "::1", 128);
	check_network("::1", AF_INET6, "::1", 128);
	check_network("2001:db8::1/32", AF_INET6, "2001:db8::", 32);
	check_network("2001:db8:ffff::/33", AF_INET6, "2001:db8:8000::", 33);
	check_network("::/0", AF_INET6, "::", 0);
	check_network("::ffff:10.1.2.3/104", AF_INET6, "::ffff:10.0.0.0",
	    104);
}

static void
test_network_bad(void **state)
{
	static const char *const	 bad[] = {
		"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1",
		"10.0.0.0/+8", "10.0.0.0/8x", "10.0.0.0/8/8", "10.0.0.0/ 8",
		"10.0.0.0 /8", " 10.0.0.0", "10.0.0", "300.1.1.1", "1.2.3.4.5",
		"fe80::1%eth0", "example.com", "::1/1280", "10.0.0.0/0x8",
		"1111:2222:3333:4444:5555:6666:7777:8888:9999/64",
	};
	struct conf_network		 net;
	size_t				 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (conf_parse_network(bad[i], &net) != -1)
			fail_msg("network '%s' accepted", bad[i]);
	assert_int_equal(conf_parse_network(NULL, &net), -1);
}

static int
match(const char *net, const char *addr)
{
	struct conf_network	 n;
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;

	assert_int_equal(conf_parse_network(net, &n), 0);
	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		return conf_network_match(&n, (struct sockaddr *)&sin);
	}
	assert_int_equal(inet_pton(AF_INET6, addr, &sin6.sin6_addr), 1);
	sin6.sin6_family = AF_INET6;
	return conf_network_match(&n, (struct sockaddr *)&sin6);
}

static void
test_network_match(void **state)
{
	struct conf_network	 n;
	struct sockaddr_un	 sun;

	(void)state;
	assert_true(match("127.0.0.0/8", "127.0.0.1"));
	assert_true(match("127.0.0.0/8", "127.255.255.255"));
	assert_false(match("127.0.0.0/8", "128.0.0.1"));
	assert_true(match("172.16.0.0/12", "172.31.1.1"));
	assert_false(match("172.16.0.0/12", "172.32.0.1"));
	assert_true(match("192.0.2.7", "192.0.2.7"));
	assert_false(match("192.0.2.7", "192.0.2.8"));
	assert_true(match("0.0.0.0/0", "203.0.113.9"));
	assert_true(match("::1/128", "::1"));
	assert_false(match("::1/128", "::2"));
	assert_true(match("2001:db8::/32", "2001:db8:1::5"));
	assert_false(match("2001:db8::/32", "2001:db9::5"));
	assert_true(match("2001:db8:8000::/33", "2001:db8:ffff::1"));
	assert_false(match("2001:db8:8000::/33", "2001:db8:7fff::1"));
	/* IPv4-mapped IPv6 addresses match IPv4 networks */
	assert_true(match("127.0.0.0/8", "::ffff:127.0.0.1"));
	assert_true(match("0.0.0.0/0", "::ffff:1.2.3.4"));
	assert_false(match("127.0.0.0/8", "::ffff:10.0.0.1"));
	assert_true(match("::ffff:0:0/96", "::ffff:10.0.0.1"));
	/* but nothing else crosses families */
	assert_false(match("127.0.0.0/8", "::7f00:1"));
	assert_false(match("0.0.0.0/0", "::1"));
	assert_false(match("::/0", "127.0.0.1"));
	assert_false(match("::1/128", "::ffff:127.0.0.1"));
	assert_int_equal(conf_parse_network("0.0.0.0/0", &n), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_false(conf_network_match(&n, (struct sockaddr *)&sun));
	assert_false(conf_network_match(&n, NULL));
}

/* ---- whole files ------------------------------------------------------ */

static void
test_full_config(void **state)
{
	struct config	*cf;
	char		 upath[PATHLEN], text[4096];
	static const char users[] = "carol@example.test\n";

	(void)state;
	write_file(upath, users, strlen(users));
	snprintf(text, sizeof(text),
	    "hostname: MX1.Example-Host.test\n"
	    "spool: /var/spool/sluice\n"
	    "user: sluice\n"
	    "workers: 4\n"
	    "listeners:\n"
	    "  - {name: mx, address: 127.0.0.1, port: 25, role: mx}\n"
	    "  - {name: sub, address: \"::1\", port: 587, role: submission,\n"
	    "     auth: none}\n"
	    "  - name: subs\n"
	    "    address: 0.0.0.0\n"
	    "    port: 465\n"
	    "    role: submissions\n"
	    /* the loader only checks that the files are readable */
	    "    tls: {mode: implicit, cert: %s, key: %s}\n"
	    "    auth: optional\n"
	    "trusted_networks: [10.1.0.0/16, \"2001:db8::/32\", 192.0.2.7]\n"
	    "domains:\n"
	    "  local: [Example.TEST, example.org, example.test]\n"
	    "mailboxes:\n"
	    "  maildir: /srv/mail/%%d/%%u\n"
	    "  users: [Alice@Example.Test, bob@example.org]\n"
	    "  users_file: %s\n"
	    "retry: {first: 1m, max_interval: 2h, lifetime: 3d, "
	    "warn_after: 1h30m}\n"
	    "limits:\n"
	    "  message_size: 10MiB\n"
	    "  recipients: 50\n"
	    "  line_length: 998\n"
	    "  command_line_length: 512\n"
	    "  sessions: 100\n"
	    "  per_ip_sessions: 5\n"
	    "  errors: 3\n"
	    "  idle_timeout: 1m\n"
	    "  command_timeout: 30\n"
	    "smtp: {bare_newline: normalize}\n"
	    "log: {target: syslog, level: debug, facility: local3}\n"
	    "auth: {users_file: %s, max_failures: 7, failure_window: 1h, "
	    "failure_delay: 2s}\n", upath, upath, upath, upath);
	cf = load_ok(text);
	unlink(upath);
	assert_non_null(cf);
	assert_string_equal(cf->hostname, "MX1.Example-Host.test");
	assert_string_equal(cf->spool, "/var/spool/sluice");
	assert_string_equal(cf->user, "sluice");
	assert_int_equal(cf->workers, 4);

	assert_int_equal(cf->nlisteners, 3);
	assert_string_equal(cf->listeners[0].name, "mx");
	assert_string_equal(cf->listeners[0].address, "127.0.0.1");
	assert_int_equal(cf->listeners[0].port, 25);
	assert_int_equal(cf->listeners[0].role, ROLE_MX);
	assert_string_equal(cf->listeners[1].name, "sub");
	assert_string_equal(cf->listeners[1].address, "::1");
	assert_int_equal(cf->listeners[1].port, 587);
	assert_int_equal(cf->listeners[1].role, ROLE_SUBMISSION);
	assert_string_equal(cf->listeners[2].name, "subs");
	assert_string_equal(cf->listeners[2].address, "0.0.0.0");
	assert_int_equal(cf->listeners[2].port, 465);
	assert_int_equal(cf->listeners[2].role, ROLE_SUBMISSIONS);
	assert_int_equal(cf->listeners[0].tls.mode, TLS_MODE_NONE);
	assert_int_equal(cf->listeners[0].auth, AUTH_MODE_NONE);
	assert_int_equal(cf->listeners[1].auth, AUTH_MODE_NONE);
	assert_int_equal(cf->listeners[2].tls.mode, TLS_MODE_IMPLICIT);
	assert_string_equal(cf->listeners[2].tls.cert, upath);
	assert_string_equal(cf->listeners[2].tls.key, upath);
	assert_int_equal(cf->listeners[2].auth, AUTH_MODE_OPTIONAL);
	assert_string_equal(cf->auth.users_file, upath);
	assert_int_equal(cf->auth.max_failures, 7);
	assert_int_equal(cf->auth.failure_window, 3600);
	assert_int_equal(cf->auth.failure_delay, 2);

	assert_int_equal(cf->ntrusted_networks, 3);
	assert_int_equal(cf->trusted_networks[0].family, AF_INET);
	assert_int_equal(cf->trusted_networks[0].prefix, 16);
	assert_int_equal(cf->trusted_networks[1].family, AF_INET6);
	assert_int_equal(cf->trusted_networks[1].prefix, 32);
	assert_int_equal(cf->trusted_networks[2].prefix, 32);

	assert_int_equal(cf->nlocal_domains, 2);
	assert_string_equal(cf->local_domains[0], "example.test");
	assert_string_equal(cf->local_domains[1], "example.org");

	assert_string_equal(cf->maildir, "/srv/mail/%d/%u");
	assert_string_equal(cf->mailbox_users_file, upath);
	assert_int_equal(cf->nmailbox_users, 3);
	assert_string_equal(cf->mailbox_users[0], "alice@example.test");
	assert_string_equal(cf->mailbox_users[1], "bob@example.org");
	assert_string_equal(cf->mailbox_users[2], "carol@example.test");

	assert_int_equal(cf->retry.first, 60);
	assert_int_equal(cf->retry.max_interval, 7200);
	assert_int_equal(cf->retry.lifetime, 3 * 86400);
	assert_int_equal(cf->retry.warn_after, 5400);

	assert_int_equal(cf->limits.message_size, 10 * 1024 * 1024);
	assert_int_equal(cf->limits.recipients, 50);
	assert_int_equal(cf->limits.line_length, 998);
	assert_int_equal(cf->limits.command_line_length, 512);
	assert_int_equal(cf->limits.sessions, 100);
	assert_int_equal(cf->limits.per_ip_sessions, 5);
	assert_int_equal(cf->limits.errors, 3);
	assert_int_equal(cf->limits.idle_timeout, 60);
	assert_int_equal(cf->limits.command_timeout, 30);

	assert_int_equal(cf->bare_newline, BARE_NL_NORMALIZE);
	assert_int_equal(cf->log.target, LOG_TARGET_SYSLOG);
	assert_int_equal(cf->log.debug, 1);
	assert_string_equal(cf->log.facility, "local3");
	conf_free(cf);
}

static void
assert_delivery_defaults(const struct config *cf)
{
	assert_int_equal(cf->delivery.concurrency, 100);
	assert_int_equal(cf->delivery.local_concurrency, 8);
	assert_int_equal(cf->delivery.per_destination, 20);
	assert_int_equal(cf->delivery.recipients_per_transaction, 100);
	assert_int_equal(cf->delivery.messages_per_connection, 1000);
	assert_int_equal(cf->delivery.connection_cache, 2);
	assert_int_equal(cf->delivery.connect_timeout, 30);
	assert_int_equal(cf->delivery.greeting_timeout, 300);
	assert_int_equal(cf->delivery.command_timeout, 300);
	assert_int_equal(cf->delivery.data_timeout, 600);
	assert_null(cf->delivery.helo_name);
	assert_int_equal(cf->delivery.tls, TLS_CLIENT_MAY);
	assert_int_equal(cf->bounce.return_limit, 10 * 1024 * 1024);
	assert_int_equal(cf->local_route.kind, ROUTE_MAILDIR);
	assert_int_equal(cf->nrelay_domains, 0);
	assert_null(cf->relay_domains);
	assert_int_equal(cf->nroutes, 0);
	assert_int_equal(cf->ntransports, 0);
	assert_int_equal(cf->nretry_domains, 0);
	assert_cwd_path(cf->control_socket, "var/spool/control");
	assert_null(conf_route_find(cf, "example.org", 0));
	assert_null(conf_transport_find(cf, "relay"));
	assert_ptr_equal(conf_retry_for(cf, "example.org"), &cf->retry);
}

static void
assert_defaults(const struct config *cf)
{
	assert_cwd_path(cf->spool, "var/spool");
	assert_null(cf->user);
	assert_int_equal(cf->workers, 0);
	assert_delivery_defaults(cf);
	assert_int_equal(cf->ntrusted_networks, 2);
	assert_int_equal(cf->trusted_networks[0].family, AF_INET);
	assert_int_equal(cf->trusted_networks[0].prefix, 8);
	assert_int_equal(cf->trusted_networks[0].addr[0], 127);
	assert_int_equal(cf->trusted_networks[1].family, AF_INET6);
	assert_int_equal(cf->trusted_networks[1].prefix, 128);
	assert_int_equal(cf->trusted_networks[1].addr[15], 1);
	assert_cwd_path(cf->maildir, "var/mail/%d/%u/Maildir");
	assert_null(cf->mailbox_users_file);
	assert_int_equal(cf->retry.first, 300);
	assert_int_equal(cf->retry.max_interval, 3600);
	assert_int_equal(cf->retry.lifetime, 5 * 86400);
	assert_int_equal(cf->retry.warn_after, 4 * 3600);
	assert_int_equal(cf->limits.message_size, 35 * 1024 * 1024);
	assert_int_equal(cf->limits.recipients, 1000);
	assert_int_equal(cf->limits.line_length, 1000);
	assert_int_equal(cf->limits.command_line_length, 2048);
	assert_int_equal(cf->limits.sessions, 10000);
	assert_int_equal(cf->limits.per_ip_sessions, 50);
	assert_int_equal(cf->limits.errors, 10);
	assert_int_equal(cf->limits.idle_timeout, 300);
	assert_int_equal(cf->limits.command_timeout, 300);
	assert_int_equal(cf->limits.data_timeout, 600);
	assert_int_equal(cf->limits.min_data_rate, 1024);
	assert_int_equal(cf->limits.data_rate_grace, 30);
	assert_int_equal(cf->greeting_delay, 0);
	assert_int_equal(cf->pipelining_checks, 1);
	assert_int_equal(cf->allow_root_filters, 0);
	assert_int_equal(cf->bare_newline, BARE_NL_REJECT);
	assert_int_equal(cf->log.target, LOG_TARGET_STDERR);
	assert_int_equal(cf->log.debug, 0);
	assert_string_equal(cf->log.facility, "mail");
}

static void
test_defaults(void **state)
{
	struct config	*cf;
	char		 host[256];

	(void)state;
	cf = load_ok(BASE);
	assert_non_null(cf);
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	assert_string_equal(cf->hostname, host);
	assert_int_equal(cf->nlisteners, 1);
	assert_int_equal(cf->listeners[0].role, ROLE_MX);
	assert_int_equal(cf->nmailbox_users, 0);
	assert_defaults(cf);
	assert_true(cf->path[0] == '/');
	conf_free(cf);

	/* empty sections keep every default */
	cf = load_ok(BASE "retry: {}\nlimits: {}\nlog: {}\nsmtp: {}\n"
	    "mailboxes: {}\ndelivery: {}\nbounce: {}\ncontrol: {}\n"
	    "routes: {}\ntransports: {}\n");
	assert_non_null(cf);
	assert_defaults(cf);
	conf_free(cf);
}

static void
test_default_file(void **state)
{
	struct config	*cf;
	char		 err[CONF_ERR_LEN];

	(void)state;
	cf = conf_load("conf/sluice.yaml", err, sizeof(err));
	if (cf == NULL)
		fail_msg("conf/sluice.yaml: %s", err);
	assert_string_equal(cf->path, "conf/sluice.yaml");
	assert_string_equal(cf->hostname, "mx.example.test");
	assert_int_equal(cf->nlisteners, 1);
	assert_string_equal(cf->listeners[0].name, "mx");
	assert_string_equal(cf->listeners[0].address, "127.0.0.1");
	assert_int_equal(cf->listeners[0].port, 2525);
	assert_int_equal(cf->listeners[0].role, ROLE_MX);
	assert_int_equal(cf->nlocal_domains, 1);
	assert_string_equal(cf->local_domains[0], "example.test");
	assert_int_equal(cf->nmailbox_users, 2);
	assert_string_equal(cf->mailbox_users[0], "alice@example.test");
	assert_string_equal(cf->mailbox_users[1], "bob@example.test");
	assert_defaults(cf);
	conf_free(cf);
}

static void
test_unknown_keys(void **state)
{
	static const struct err_case	 c[] = {
		{ BASE "foo: 1\n", "3:1: unknown key 'foo'" },
		{ BASE "limits:\n  errors: 5\n  foo: 1\n",
		    "5:3: unknown key 'foo' in 'limits'" },
		{ BASE "log: {target: stderr, colour: red}\n",
		    "3:23: unknown key 'colour' in 'log'" },
		{ BASE "retry: {first: 1m, last: 2m}\n",
		    "3:20: unknown key 'last' in 'retry'" },
		{ BASE "domains2: {}\n", "3:1: unknown key 'domains2'" },
		{ BASE "Hostname: a.test\n", "3:1: unknown key 'Hostname'" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 2525, "
		    "bind: x}]\n", "1:56: unknown key 'bind' in 'listeners'" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 2525}]\n"
		    "domains: {local: [example.test], remote: [a.test]}\n",
		    "2:34: unknown key 'remote' in 'domains'" },
		{ BASE "\"a\\tb\": 1\n", "3:1: unknown key 'a?b'" },
	};

	(void)state;
	RUN_CASES(c);
}

static void
test_wrong_types(void **state)
{
	static const struct err_case	 c[] = {
		{ BASE "limits: 5\n",
		    "3:9: expected a mapping for 'limits', found a scalar" },
		{ BASE "limits:\n", "3:8: expected a mapping for 'limits', "
		    "found an empty value" },
		{ BASE "retry: [1m]\n",
		    "3:8: expected a mapping for 'retry', found a list" },
		{ BASE "trusted_networks: 10.0.0.0/8\n", "3:19: expected a "
		    "list for 'trusted_networks', found a scalar" },
		{ BASE "trusted_networks: [[10.0.0.0/8]]\n", "3:20: expected "
		    "a scalar for 'trusted_networks', found a list" },
		{ BASE "hostname: {a: b}\n", "3:11: expected a scalar for "
		    "'hostname', found a mapping" },
		{ BASE "workers: [1]\n",
		    "3:10: expected a scalar for 'workers', found a list" },
		{ BASE "retry: {first: {a: 1}}\n", "3:16: expected a scalar "
		    "for 'retry.first', found a mapping" },
		{ BASE "mailboxes: {users: alice@example.test}\n", "3:20: "
		    "expected a list for 'mailboxes.users', found a scalar" },
		{ BASE "mailboxes: {users: [{a: b}]}\n", "3:21: expected an "
		    "address for each item of 'mailboxes.users', found a "
		    "mapping" },
		{ BASE "mailboxes: {users: [~]}\n", "3:21: expected an "
		    "address for each item of 'mailboxes.users', found an "
		    "empty value" },
		{ BASE "mailboxes: [a]\n",
		    "3:12: expected a mapping for 'mailboxes', found a list" },
		{ BASE "user: ~\n", "3:7: missing value for 'user'" },
		{ BASE "user: \"\"\n", "3:7: empty value for 'user'" },
		{ BASE "spool: ''\n", "3:8: empty value for 'spool'" },
		{ "listeners: {name: mx}\n", "1:12: expected a list for "
		    "'listeners', found a mapping" },
		{ "listeners: [mx]\n", "1:13: expected a mapping for each "
		    "item of 'listeners', found a scalar" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 25}]\n"
		    "domains: {local: example.test}\n", "2:18: expected a "
		    "list for 'domains.local', found a scalar" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 25}]\n"
		    "domains: [example.test]\n", "2:10: expected a mapping "
		    "for 'domains', found a list" },
		{ "- a\n", "1:1: expected a mapping at the top level, found "
		    "a list" },
		{ "hello\n", "1:1: expected a mapping at the top level, found "
		    "a scalar" },
		{ "# just a comment\n", "1:1: empty configuration: expected "
		    "a mapping at the top level" },
		{ "", "1:1: empty configuration: expected a mapping at the "
		    "top level" },
	};

	(void)state;
	RUN_CASES(c);
}

static void
test_bad_values(void **state)
{
	static const struct err_case	 c[] = {
		{ BASE "workers: 65\n", "3:10: invalid value '65' for "
		    "'workers': expected an integer from 0 to 64" },
		{ BASE "workers: 12abc\n", "3:10: invalid value '12abc' for "
		    "'workers': expected an integer from 0 to 64" },
		{ BASE "workers: -1\n", "3:10: invalid value '-1' for "
		    "'workers': expected an integer from 0 to 64" },
		{ BASE "workers: +1\n", "3:10: invalid value '+1' for "
		    "'workers': expected an integer from 0 to 64" },
		{ BASE "workers: 0x10\n", "3:10: invalid value '0x10' for "
		    "'workers': expected an integer from 0 to 64" },
		{ BASE "workers: 99999999999999999999999\n", "3:10: invalid "
		    "value '99999999999999999999999' for 'workers': expected "
		    "an integer from 0 to 64" },
		{ BASE "limits: {line_length: 79}\n", "3:23: invalid value "
		    "'79' for 'limits.line_length': expected an integer from "
		    "80 to 1000000" },
		{ BASE "limits: {command_line_length: 65537}\n", "3:31: "
		    "invalid value '65537' for 'limits.command_line_length': "
		    "expected an integer from 512 to 65536" },
		{ BASE "limits: {recipients: 0}\n", "3:22: invalid value '0' "
		    "for 'limits.recipients': expected an integer from 1 to "
		    "100000" },
		{ BASE "limits: {errors: 1001}\n", "3:18: invalid value "
		    "'1001' for 'limits.errors': expected an integer from 1 "
		    "to 1000" },
		{ BASE "limits: {message_size: 1.5M}\n", "3:24: invalid size "
		    "'1.5M' for 'limits.message_size': expected bytes or "
		    "units like 512K, 35M, 1G" },
		{ BASE "limits: {idle_timeout: 0s}\n", "3:24: duration '0s' "
		    "for 'limits.idle_timeout' is out of range: from 1s to "
		    "4294967295s" },
		{ BASE "retry: {first: 5x}\n", "3:16: invalid duration '5x' "
		    "for 'retry.first': expected a number of seconds or units "
		    "like 30s, 5m, 2h, 5d, 1w" },
		{ BASE "retry: {lifetime: 4294967296}\n", "3:19: invalid "
		    "duration '4294967296' for 'retry.lifetime': expected a "
		    "number of seconds or units like 30s, 5m, 2h, 5d, 1w" },
		{ BASE "hostname: bad host\n", "3:11: invalid value 'bad host' "
		    "for 'hostname': expected a domain name like "
		    "mx.example.org" },
		{ BASE "hostname: -x.test\n", "3:11: invalid value '-x.test' "
		    "for 'hostname': expected a domain name like "
		    "mx.example.org" },
		{ BASE "hostname: a..test\n", "3:11: invalid value 'a..test' "
		    "for 'hostname': expected a domain name like "
		    "mx.example.org" },
		{ BASE "hostname: \"a\\tb\"\n", "3:11: invalid value 'a?b' "
		    "for 'hostname': expected a domain name like "
		    "mx.example.org" },
		{ BASE "log: {target: journal}\n", "3:15: invalid value "
		    "'journal' for 'log.target': expected one of stderr, "
		    "syslog, file" },
		{ BASE "log: {target: file}\n", "3:6: log: target file needs "
		    "'file: PATH'" },
		{ BASE "log: {level: warn}\n", "3:14: invalid value 'warn' "
		    "for 'log.level': expected one of info, debug" },
		{ BASE "log: {facility: local8}\n", "3:17: invalid value "
		    "'local8' for 'log.facility': expected one of mail, "
		    "daemon, user, local0, local1, local2, local3, local4, "
		    "local5, local6, local7" },
		{ BASE "smtp: {bare_newline: accept}\n", "3:22: invalid value "
		    "'accept' for 'smtp.bare_newline': expected one of "
		    "reject, normalize" },
		{ BASE "smtp: {pipelining_checks: maybe}\n", "3:27: invalid "
		    "value 'maybe' for 'smtp.pipelining_checks': expected "
		    "true or false" },
		{ BASE "smtp: {greeting_delay: 301s}\n", "3:24: duration "
		    "'301s' for 'smtp.greeting_delay' is out of range: from "
		    "0s to 300s" },
		{ BASE "allow_root_filters: 1\n", "3:21: invalid value '1' "
		    "for 'allow_root_filters': expected true or false" },
		{ BASE "limits: {data_rate_grace: 0}\n", "3:27: duration '0' "
		    "for 'limits.data_rate_grace' is out of range: from 1s to "
		    "86400s" },
		{ BASE "limits: {min_data_rate: fast}\n", "3:25: invalid size "
		    "'fast' for 'limits.min_data_rate': expected bytes or "
		    "units like 512K, 35M, 1G" },
		{ BASE "limits: {data_timeout: 10x}\n", "3:24: invalid "
		    "duration '10x' for 'limits.data_timeout': expected a "
		    "number of seconds or units like 30s, 5m, 2h, 5d, 1w" },
		{ BASE "trusted_networks: [10.0.0.0/8, 10.0.0.0/33]\n", "3:32: "
		    "invalid network '10.0.0.0/33' in 'trusted_networks': "
		    "expected an address or a CIDR block like 192.0.2.0/24" },
		{ BASE "mailboxes: {maildir: /m/%d}\n", "3:22: "
		    "'mailboxes.maildir' must contain %u (the local part)" },
		{ BASE "mailboxes: {maildir: /m/%x/%u}\n", "3:22: "
		    "'mailboxes.maildir' may only contain %d (domain) and %u "
		    "(local part) after '%'" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 2525, "
		    "role: relay}]\n", "1:62: invalid value 'relay' for "
		    "'listeners.role': expected one of mx, submission, "
		    "submissions" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 0}]\n",
		    "1:50: invalid value '0' for 'listeners.port': expected "
		    "an integer from 1 to 65535" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 65536}]\n",
		    "1:50: invalid value '65536' for 'listeners.port': "
		    "expected an integer from 1 to 65535" },
		{ "listeners: [{name: mx, address: localhost, port: 25}]\n",
		    "1:33: invalid value 'localhost' for 'listeners.address': "
		    "expected an IPv4 or IPv6 address" },
		{ "listeners: [{name: \"m x\", address: 127.0.0.1, port: 25}]\n",
		    "1:20: invalid value 'm x' for 'listeners.name': expected "
		    "letters, digits, '-', '_' or '.' (at most 64)" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 25}]\n"
		    "domains: {local: [ex_ample.test]}\n", "2:19: invalid "
		    "domain 'ex_ample.test' in 'domains.local'" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 25}]\n"
		    "domains: {local: []}\n",
		    "2:18: 'domains.local' needs at least one domain" },
		{ "listeners: []\n",
		    "1:12: 'listeners' needs at least one listener" },
	};

	(void)state;
	RUN_CASES(c);
}

static void
test_long_values(void **state)
{
	struct config	*cf;
	char		 text[1024], label[64], want[512], long_value[201];

	(void)state;
	/* 255 characters is the longest valid host name */
	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(text, sizeof(text), BASE "hostname: %s.%s.%s.%s\n", label,
	    label, label, label);
	cf = load_ok(text);
	assert_non_null(cf);
	assert_int_equal(strlen(cf->hostname), 255);
	conf_free(cf);
	snprintf(want, sizeof(want), "3:11: invalid value '%.60s...' for "
	    "'hostname': expected a domain name like mx.example.org", label);
	snprintf(text, sizeof(text), BASE "hostname: %s.%s.%s.%s.a\n", label,
	    label, label, label);
	expect_error(text, want);
	/* and 63 the longest label */
	snprintf(text, sizeof(text), BASE "hostname: a%s.test\n", label);
	expect_error(text, want);

	/* a long bad value is cut in the message */
	memset(long_value, 'x', 200);
	long_value[200] = '\0';
	snprintf(text, sizeof(text), BASE "workers: %s\n", long_value);
	snprintf(want, sizeof(want), "3:10: invalid value '%.60s...' for "
	    "'workers': expected an integer from 0 to 64", long_value);
	expect_error(text, want);
}

static void
test_yaml_errors(void **state)
{
	static const struct err_case	 c[] = {
		{ BASE "hostname: [a\n", "4:1: did not find expected ',' or "
		    "']' while parsing a flow sequence started at 3:11" },
		{ BASE "a: b: c\n", "3:5: mapping values are not allowed in "
		    "this context" },
		{ BASE "limits:\n\terrors: 1\n", "4:1: found character that "
		    "cannot start any token while scanning for the next "
		    "token" },
		{ BASE "hostname: \"abc\n", "4:1: found unexpected end of "
		    "stream while scanning a quoted scalar started at 3:11" },
		{ BASE "x: &a 1\n", "3:4: anchors are not supported" },
		{ BASE "x: *a\n", "3:4: aliases are not supported" },
		{ BASE "---\nb: 2\n", "3:1: only one YAML document is "
		    "allowed" },
		{ BASE "? [a]\n: 1\n",
		    "3:3: a mapping key must be a scalar, not a list" },
		{ BASE "hostname: \"a\\0b\"\n",
		    "3:11: NUL character in a value" },
	};
	static const char	 utf8[] = BASE "hostname: a\xff" "b\n";
	char			 deep[256];
	size_t			 i, n = 0;

	(void)state;
	RUN_CASES(c);
	expect_error_len(utf8, sizeof(utf8) - 1,
	    "3:12: invalid leading UTF-8 octet");

	n = snprintf(deep, sizeof(deep), "a: ");
	for (i = 0; i < 70; i++)
		deep[n++] = '[';
	for (i = 0; i < 70; i++)
		deep[n++] = ']';
	deep[n] = '\0';
	expect_error(deep, "1:67: nested deeper than 64 levels");
}

static void
test_missing_file(void **state)
{
	char	 err[CONF_ERR_LEN], small[12];

	(void)state;
	assert_null(conf_load("/nonexistent/sluice.yaml", err, sizeof(err)));
	assert_string_equal(err, "/nonexistent/sluice.yaml: cannot open: "
	    "No such file or directory");
	/* a NULL or short buffer is fine */
	assert_null(conf_load("/nonexistent/sluice.yaml", NULL, 0));
	assert_null(conf_load("/nonexistent/sluice.yaml", small,
	    sizeof(small)));
	assert_string_equal(small, "/nonexisten");
}

static void
test_duplicates(void **state)
{
	static const struct err_case	 c[] = {
		{ BASE "hostname: a.test\nhostname: b.test\n",
		    "4:1: duplicate key 'hostname' (first at line 3)" },
		{ BASE "limits:\n  errors: 1\n  errors: 2\n",
		    "5:3: duplicate key 'errors' (first at line 4)" },
		{ BASE "log: {target: stderr, target: syslog}\n",
		    "3:23: duplicate key 'target' (first at line 3)" },
		{ BASE "listeners: []\n",
		    "3:1: duplicate key 'listeners' (first at line 1)" },
		{ "listeners:\n"
		    "  - {name: mx, address: 127.0.0.1, port: 25}\n"
		    "  - {name: mx, address: 127.0.0.1, port: 26}\n"
		    "domains: {local: [example.test]}\n",
		    "3:12: duplicate listener name 'mx' (first at line 2)" },
		{ "listeners:\n"
		    "  - {name: a, address: \"::1\", port: 25}\n"
		    "  - {name: b, address: \"0:0::1\", port: 25}\n"
		    "domains: {local: [example.test]}\n", "3:24: listener "
		    "'b' has the same address and port as listener 'a'" },
		{ "listeners:\n"
		    "  - {name: a, address: 10.0.0.1, port: 25}\n"
		    "  - {name: b, address: 10.0.0.2, port: 25}\n"
		    "  - {name: c, address: 10.0.0.1, port: 25}\n"
		    "domains: {local: [example.test]}\n", "4:24: listener "
		    "'c' has the same address and port as listener 'a'" },
	};
	struct config			*cf;

	(void)state;
	RUN_CASES(c);

	/* same address on another port, or another address: fine */
	cf = load_ok("listeners:\n"
	    "  - {name: a, address: 127.0.0.1, port: 25}\n"
	    "  - {name: b, address: 127.0.0.1, port: 26}\n"
	    "  - {name: c, address: 0.0.0.0, port: 25}\n"
	    "  - {name: d, address: \"::\", port: 25}\n"
	    "domains: {local: [example.test, EXAMPLE.test]}\n"
	    "mailboxes: {users: [a@example.test, A@Example.Test]}\n");
	assert_non_null(cf);
	assert_int_equal(cf->nlisteners, 4);
	assert_int_equal(cf->nlocal_domains, 1);
	assert_int_equal(cf->nmailbox_users, 1);
	conf_free(cf);
}

static void
test_missing_keys(void **state)
{
	static const struct err_case	 c[] = {
		{ "listeners: [{address: 127.0.0.1, port: 25}]\n",
		    "1:13: listener without 'name'" },
		{ "listeners: [{name: mx, port: 25}]\n",
		    "1:13: listener 'mx' has no 'address'" },
		{ "listeners: [{name: mx, address: 127.0.0.1}]\n",
		    "1:13: listener 'mx' has no 'port'" },
		{ "domains: {local: [example.test]}\n", "1:1: no listener: "
		    "'listeners' needs at least one entry" },
		{ "# sluice\n\ndomains: {local: [example.test]}\n",
		    "3:1: no listener: 'listeners' needs at least one entry" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 25}]\n",
		    "1:1: no local domain: 'domains.local' needs at least one "
		    "domain" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 25}]\n"
		    "domains: {}\n", "1:1: no local domain: 'domains.local' "
		    "needs at least one domain" },
	};

	(void)state;
	RUN_CASES(c);
}

/* ---- kv: the filters' store (memory or Redis) -------------------------- */

static void
test_msec(void **state)
{
	static const struct {
		const char	*s;
		unsigned	 v;
	} good[] = {
		{ "250ms", 250 }, { "0ms", 0 }, { "1s", 1000 }, { "2", 2000 },
		{ "1m", 60000 }, { "1m30s", 90000 },
	};
	static const char *const bad[] = {
		"", "ms", "-5ms", "1.5s", "10 ms", "5msx", "1sms", "4294967296ms",
		"5000000s", "abc",
	};
	unsigned	 v;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		assert_int_equal(conf_parse_msec(good[i].s, &v), 0);
		assert_int_equal(v, good[i].v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (conf_parse_msec(bad[i], &v) != -1)
			fail_msg("accepted '%s'", bad[i]);
	assert_int_equal(conf_parse_msec(NULL, &v), -1);
}

static void
test_kv_good(void **state)
{
	struct config	*cf;

	(void)state;
	cf = load_ok(BASE);
	assert_int_equal(cf->kv.backend, KV_BACKEND_MEMORY);
	assert_int_equal(cf->kv.redis.port, 6379);
	assert_int_equal(cf->kv.redis.timeout_ms, 1000);
	assert_int_equal(cf->kv.redis.on_error, SLUICE_TEMPFAIL);
	conf_free(cf);

	cf = load_ok(BASE "kv: {backend: redis}\n");
	assert_int_equal(cf->kv.backend, KV_BACKEND_REDIS);
	assert_null(cf->kv.redis.address);	/* 127.0.0.1 */
	assert_string_equal(cf->kv.redis.prefix, "sluice:");
	conf_free(cf);

	cf = load_ok(BASE "kv:\n"
	    "  backend: redis\n"
	    "  redis: {address: \"::1\", port: 6380, password: s3cret, db: 2,\n"
	    "          prefix: \"\", timeout: 250ms, on_error: continue}\n");
	assert_string_equal(cf->kv.redis.address, "::1");
	assert_int_equal(cf->kv.redis.port, 6380);
	assert_string_equal(cf->kv.redis.password, "s3cret");
	assert_int_equal(cf->kv.redis.db, 2);
	assert_string_equal(cf->kv.redis.prefix, "");
	assert_int_equal(cf->kv.redis.timeout_ms, 250);
	assert_int_equal(cf->kv.redis.on_error, SLUICE_CONTINUE);
	assert_null(cf->kv.redis.unix_path);
	conf_free(cf);

	cf = load_ok(BASE "kv: {backend: redis, redis: {unix: var/redis.sock, "
	    "timeout: 2s, on_error: reject}}\n");
	assert_cwd_path(cf->kv.redis.unix_path, "var/redis.sock");
	assert_int_equal(cf->kv.redis.timeout_ms, 2000);
	assert_int_equal(cf->kv.redis.on_error, SLUICE_REJECT);
	conf_free(cf);
}

static void
test_kv_errors(void **state)
{
	static const struct err_case cases[] = {
		{ BASE "kv: {backend: sql}\n",
		    "3:15: invalid value 'sql' for 'kv.backend': expected one "
		    "of memory, redis" },
		{ BASE "kv: {cache: 1}\n", "3:6: unknown key 'cache' in 'kv'" },
		{ BASE "kv: [redis]\n",
		    "3:5: expected a mapping for 'kv', found a list" },
		{ BASE "kv: {redis: {address: redis.example}}\n",
		    "3:23: invalid value 'redis.example' for 'kv.redis.address': "
		    "expected an IP address (a host name would need a blocking "
		    "lookup)" },
		{ BASE "kv: {redis: {port: 0}}\n",
		    "3:20: invalid value '0' for 'kv.redis.port': expected an "
		    "integer from 1 to 65535" },
		{ BASE "kv: {redis: {timeout: 5ms}}\n",
		    "3:23: duration '5ms' for 'kv.redis.timeout' is out of range: "
		    "from 10ms to 60000ms" },
		{ BASE "kv: {redis: {timeout: soon}}\n",
		    "3:23: invalid duration 'soon' for 'kv.redis.timeout': "
		    "expected milliseconds like 250ms or units like 1s, 2m" },
		{ BASE "kv: {redis: {on_error: drop}}\n",
		    "3:24: invalid value 'drop' for 'kv.redis.on_error': expected "
		    "one of continue, accept, reject, tempfail, discard, "
		    "quarantine" },
		{ BASE "kv: {redis: {unix: /run/r.sock, address: 127.0.0.1}}\n",
		    "3:13: 'kv.redis': give either 'address' and 'port' or "
		    "'unix', not both" },
		{ BASE "kv: {redis: {prefix: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}\n",
		    "3:22: 'kv.redis.prefix' is longer than 64 characters" },
		{ BASE "kv: {redis: {password: \"\"}}\n",
		    "3:24: empty value for 'kv.redis.password'" },
		{ BASE "kv: {redis: {db: 70000}}\n",
		    "3:18: invalid value '70000' for 'kv.redis.db': expected an "
		    "integer from 0 to 65535" },
	};

	(void)state;
	RUN_CASES(cases);
}

static void
test_tls_auth_metrics(void **state)
{
	static const struct err_case	 c[] = {
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 2525, "
		    "tls: {mode: optional}}]\n",
		    "1:61: listener 'mx': tls.mode optional needs tls.cert "
		    "and tls.key" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 2525, "
		    "tls: {mode: maybe}}]\n",
		    "1:68: invalid value 'maybe' for 'tls.mode': expected one "
		    "of none, optional, required, implicit" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 2525, "
		    "tls: {mode: required, cert: /nonexistent/c.pem, "
		    "key: /nonexistent/k.pem}}]\n",
		    "1:84: listener 'mx': cannot read tls.cert "
		    "/nonexistent/c.pem: No such file or directory" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 2525, "
		    "tls: {mode: none, cert: /etc/hostname}}]\n",
		    "1:61: listener 'mx': tls.cert and tls.key need a "
		    "tls.mode other than none" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 2525, "
		    "tls: {ciphers: ALL}}]\n", "1:62: unknown key 'ciphers' in 'tls'" },
		{ "listeners: [{name: s, address: 127.0.0.1, port: 587, "
		    "role: submission}]\n",
		    "1:13: listener 's': auth: required (the default of role "
		    "submission) needs TLS (AUTH is only offered under TLS): "
		    "give it tls: {mode: required, cert: ..., key: ...}, or "
		    "auth: none" },
		{ "listeners: [{name: s, address: 127.0.0.1, port: 465, "
		    "role: submissions}]\n",
		    "1:13: listener 's' has role submissions: it needs tls: "
		    "{mode: implicit, cert: ..., key: ...}" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 2525, "
		    "auth: always}]\n",
		    "1:62: invalid value 'always' for 'listeners.auth': "
		    "expected one of none, optional, required" },
		{ BASE "auth: {max_failures: 0}\n",
		    "3:22: invalid value '0' for 'auth.max_failures': expected "
		    "an integer from 1 to 1000" },
		{ BASE "auth: {failure_delay: 2m}\n",
		    "3:23: duration '2m' for 'auth.failure_delay' is out of "
		    "range: from 0s to 60s" },
		{ BASE "metrics: {port: 0}\n", "3:17: invalid value '0' for "
		    "'metrics.port': expected an integer from 1 to 65535" },
		{ BASE "metrics: {address: 127.0.0.1}\n", "3:10: metrics: has an "
		    "address but no port" },
		{ BASE "metrics: {address: localhost, port: 9}\n", "3:20: "
		    "invalid value 'localhost' for 'metrics.address': expected "
		    "an IPv4 or IPv6 address" },
		{ BASE "auth: {users: x}\n", "3:8: unknown key 'users' in 'auth'" },
	};
	(void)state;
	RUN_CASES(c);
}

/* ---- routes, transports, delivery ----------------------------------- */

static void
assert_route(const struct route_spec *r, const char *canonical)
{
	char	 buf[ROUTE_SPEC_LEN];

	assert_non_null(r);
	route_spec_format(r, buf, sizeof(buf));
	assert_string_equal(buf, canonical);
}

static void
test_relay_domains(void **state)
{
	struct config	*cf;

	(void)state;
	cf = load_ok("listeners: [{name: mx, address: 127.0.0.1, port: 25}]\n"
	    "domains:\n"
	    "  relay: [Relay.Example, b.example, relay.example]\n"
	    "  local: [example.test]\n");
	assert_int_equal(cf->nrelay_domains, 2);
	assert_string_equal(cf->relay_domains[0], "relay.example");
	assert_string_equal(cf->relay_domains[1], "b.example");
	conf_free(cf);

	cf = load_ok("listeners: [{name: mx, address: 127.0.0.1, port: 25}]\n"
	    "domains: {local: [example.test], relay: []}\n");
	assert_int_equal(cf->nrelay_domains, 0);
	conf_free(cf);
}

static void
test_routes(void **state)
{
	struct config	*cf;

	(void)state;
	/* names resolve whichever of routes: and transports: comes first */
	cf = load_ok(BASE
	    "routes:\n"
	    "  Example.ORG: \"smtp:[MX.example.net]:2525\"\n"
	    "  .example.org: dovecot\n"
	    "  .sub.example.org: discard\n"
	    "  relay.example: smtp\n"
	    "  lan.example: \"smtp:[192.0.2.25]\"\n"
	    "  \"*\": smarthost\n"
	    "transports:\n"
	    "  smarthost: \"smtp:[smtp.isp.example]:587\"\n"
	    "  dovecot: lmtp:unix:/run/dovecot/lmtp\n"
	    "  x_y-9: \"lmtp:[127.0.0.1]:24\"\n");
	assert_int_equal(cf->nroutes, 6);
	assert_string_equal(cf->routes[0].domain, "example.org");
	assert_route(&cf->routes[0].spec, "smtp:[mx.example.net]:2525");
	assert_string_equal(cf->routes[1].domain, ".example.org");
	assert_route(&cf->routes[1].spec, "lmtp:unix:/run/dovecot/lmtp");
	assert_string_equal(cf->routes[2].domain, ".sub.example.org");
	assert_route(&cf->routes[2].spec, "discard");
	assert_string_equal(cf->routes[3].domain, "relay.example");
	assert_route(&cf->routes[3].spec, "smtp");
	assert_string_equal(cf->routes[4].domain, "lan.example");
	assert_route(&cf->routes[4].spec, "smtp:[192.0.2.25]:25");
	assert_int_equal(cf->routes[4].spec.literal, 1);
	assert_string_equal(cf->routes[5].domain, "*");
	assert_route(&cf->routes[5].spec, "smtp:[smtp.isp.example]:587");

	assert_int_equal(cf->ntransports, 3);
	assert_string_equal(cf->transports[0].name, "smarthost");
	assert_string_equal(cf->transports[1].name, "dovecot");
	assert_string_equal(cf->transports[2].name, "x_y-9");
	assert_route(conf_transport_find(cf, "x_y-9"), "lmtp:[127.0.0.1]:24");
	assert_route(conf_transport_find(cf, "dovecot"),
	    "lmtp:unix:/run/dovecot/lmtp");
	assert_null(conf_transport_find(cf, "Dovecot"));
	assert_null(conf_transport_find(cf, "smtp"));
	assert_null(conf_transport_find(cf, NULL));
	conf_free(cf);

	/* transports: first */
	cf = load_ok(BASE
	    "transports: {relay: \"smtp:relay.example:2525\"}\n"
	    "routes: {example.org: relay}\n");
	assert_route(conf_route_find(cf, "example.org", 0),
	    "smtp:relay.example:2525");
	assert_int_equal(cf->routes[0].spec.mx, 1);
	conf_free(cf);
}

static void
test_route_find(void **state)
{
	struct config	*cf;

	(void)state;
	cf = load_ok(BASE
	    "routes:\n"
	    "  example.org: \"smtp:[exact.example]\"\n"
	    "  .example.org: \"smtp:[parent.example]\"\n"
	    "  .deep.example.org: \"smtp:[deep.example]\"\n"
	    "  example.test: \"lmtp:[127.0.0.1]:24\"\n"
	    "  .example.test: discard\n"
	    "  \"*\": \"smtp:[any.example]\"\n");
	/* exact */
	assert_route(conf_route_find(cf, "example.org", 0),
	    "smtp:[exact.example]:25");
	assert_route(conf_route_find(cf, "EXAMPLE.org", 1),
	    "smtp:[exact.example]:25");
	/* longest parent, at a label boundary */
	assert_route(conf_route_find(cf, "a.example.org", 0),
	    "smtp:[parent.example]:25");
	assert_route(conf_route_find(cf, "x.y.Example.Org", 1),
	    "smtp:[parent.example]:25");
	assert_route(conf_route_find(cf, "deep.example.org", 0),
	    "smtp:[parent.example]:25");
	assert_route(conf_route_find(cf, "a.deep.example.org", 0),
	    "smtp:[deep.example]:25");
	assert_route(conf_route_find(cf, "b.a.deep.example.org", 1),
	    "smtp:[deep.example]:25");
	/* not a label boundary: falls to "*" (remote) or nothing (local) */
	assert_route(conf_route_find(cf, "badexample.org", 0),
	    "smtp:[any.example]:25");
	assert_null(conf_route_find(cf, "badexample.org", 1));
	assert_route(conf_route_find(cf, "org", 0), "smtp:[any.example]:25");
	/* a local domain's own entries apply; "*" does not */
	assert_route(conf_route_find(cf, "example.test", 1),
	    "lmtp:[127.0.0.1]:24");
	assert_route(conf_route_find(cf, "a.example.test", 1), "discard");
	assert_null(conf_route_find(cf, "other.test", 1));
	assert_route(conf_route_find(cf, "other.test", 0),
	    "smtp:[any.example]:25");
	assert_null(conf_route_find(cf, NULL, 0));
	conf_free(cf);

	/* without "*", a remote domain has no entry (MX lookup) */
	cf = load_ok(BASE "routes: {.example.org: discard}\n");
	assert_null(conf_route_find(cf, "example.net", 0));
	assert_null(conf_route_find(cf, "example.org", 0));
	assert_route(conf_route_find(cf, "a.example.org", 0), "discard");
	conf_free(cf);
}

static void
test_local_route(void **state)
{
	struct config	*cf;

	(void)state;
	cf = load_ok(BASE "mailboxes: {delivery: maildir}\n");
	assert_int_equal(cf->local_route.kind, ROUTE_MAILDIR);
	conf_free(cf);

	cf = load_ok(BASE "mailboxes: {delivery: \"LMTP:[::1]:2424\"}\n");
	assert_route(&cf->local_route, "lmtp:[::1]:2424");
	conf_free(cf);

	/* a transport, defined before or after */
	cf = load_ok(BASE "mailboxes: {delivery: dovecot}\n"
	    "transports: {dovecot: \"lmtp:unix:/run/dovecot/lmtp\"}\n");
	assert_route(&cf->local_route, "lmtp:unix:/run/dovecot/lmtp");
	assert_int_equal(cf->local_route.unix_socket, 1);
	conf_free(cf);
}

static void
test_retry_domains(void **state)
{
	struct config			*cf;
	const struct conf_retry		*r;

	(void)state;
	/* unset keys take the global value, even one written after */
	cf = load_ok(BASE "retry:\n"
	    "  domains:\n"
	    "    Slow.Example: {lifetime: 1d, first: 30s}\n"
	    "    fast.example: {max_interval: 10m, warn_after: 1h}\n"
	    "    same.example: {}\n"
	    "  first: 2m\n"
	    "  warn_after: 2h\n");
	assert_int_equal(cf->nretry_domains, 3);
	assert_string_equal(cf->retry_domains[0].domain, "slow.example");
	r = conf_retry_for(cf, "slow.example");
	assert_ptr_equal(r, &cf->retry_domains[0].retry);
	assert_int_equal(r->first, 30);
	assert_int_equal(r->max_interval, 3600);
	assert_int_equal(r->lifetime, 86400);
	assert_int_equal(r->warn_after, 7200);
	r = conf_retry_for(cf, "FAST.example");
	assert_int_equal(r->first, 120);
	assert_int_equal(r->max_interval, 600);
	assert_int_equal(r->lifetime, 5 * 86400);
	assert_int_equal(r->warn_after, 3600);
	r = conf_retry_for(cf, "same.example");
	assert_ptr_equal(r, &cf->retry_domains[2].retry);
	assert_memory_equal(r, &cf->retry, sizeof(*r));
	/* exact match only */
	assert_ptr_equal(conf_retry_for(cf, "a.slow.example"), &cf->retry);
	assert_ptr_equal(conf_retry_for(cf, "example"), &cf->retry);
	assert_ptr_equal(conf_retry_for(cf, NULL), &cf->retry);
	assert_int_equal(cf->retry.first, 120);
	conf_free(cf);
}

static void
test_delivery(void **state)
{
	struct config	*cf;

	(void)state;
	cf = load_ok(BASE "delivery:\n"
	    "  concurrency: 10000\n"
	    "  local_concurrency: 256\n"
	    "  per_destination: 1000\n"
	    "  recipients_per_transaction: 10000\n"
	    "  messages_per_connection: 100000\n"
	    "  connection_cache: 1h\n"
	    "  connect_timeout: 1s\n"
	    "  greeting_timeout: 2m\n"
	    "  command_timeout: 3m\n"
	    "  data_timeout: 1h30m\n"
	    "  helo_name: Out.Example.Test\n"
	    "  tls: none\n"
	    "bounce: {return_limit: 0}\n"
	    "control: {socket: /run/sluice/ctl}\n");
	assert_int_equal(cf->delivery.concurrency, 10000);
	assert_int_equal(cf->delivery.local_concurrency, 256);
	assert_int_equal(cf->delivery.per_destination, 1000);
	assert_int_equal(cf->delivery.recipients_per_transaction, 10000);
	assert_int_equal(cf->delivery.messages_per_connection, 100000);
	assert_int_equal(cf->delivery.connection_cache, 3600);
	assert_int_equal(cf->delivery.connect_timeout, 1);
	assert_int_equal(cf->delivery.greeting_timeout, 120);
	assert_int_equal(cf->delivery.command_timeout, 180);
	assert_int_equal(cf->delivery.data_timeout, 5400);
	assert_string_equal(cf->delivery.helo_name, "Out.Example.Test");
	assert_int_equal(cf->delivery.tls, TLS_CLIENT_NONE);
	assert_int_equal(cf->bounce.return_limit, 0);
	assert_string_equal(cf->control_socket, "/run/sluice/ctl");
	conf_free(cf);

	/* lower limits; connection_cache 0 = no reuse */
	cf = load_ok(BASE "delivery: {concurrency: 1, local_concurrency: 1, "
	    "per_destination: 1, recipients_per_transaction: 1,\n"
	    "  messages_per_connection: 1, connection_cache: 0, tls: may}\n"
	    "bounce: {return_limit: 512K}\n");
	assert_int_equal(cf->delivery.concurrency, 1);
	assert_int_equal(cf->delivery.local_concurrency, 1);
	assert_int_equal(cf->delivery.per_destination, 1);
	assert_int_equal(cf->delivery.recipients_per_transaction, 1);
	assert_int_equal(cf->delivery.messages_per_connection, 1);
	assert_int_equal(cf->delivery.connection_cache, 0);
	assert_int_equal(cf->delivery.tls, TLS_CLIENT_MAY);
	assert_int_equal(cf->bounce.return_limit, 512 * 1024);
	conf_free(cf);

	/* a small concurrency alone shrinks the default per_destination */
	cf = load_ok(BASE "delivery: {concurrency: 5}\n");
	assert_int_equal(cf->delivery.concurrency, 5);
	assert_int_equal(cf->delivery.per_destination, 5);
	conf_free(cf);
	cf = load_ok(BASE "delivery: {concurrency: 7, per_destination: 7}\n");
	assert_int_equal(cf->delivery.per_destination, 7);
	conf_free(cf);
}

static void
test_tls_policy(void **state)
{
	static const struct {
		const char		*host;
		int			 literal;
		enum tls_client_policy	 policy;
	} want[] = {
		/* exact, then the longest parent at a label boundary */
		{ "bank.example", 0, TLS_CLIENT_VERIFY },
		{ "BANK.example", 0, TLS_CLIENT_VERIFY },
		{ "mx.bank.example", 0, TLS_CLIENT_ENCRYPT },
		{ "deep.bank.example", 0, TLS_CLIENT_ENCRYPT },
		{ "a.deep.bank.example", 0, TLS_CLIENT_NONE },
		{ "partner.example", 0, TLS_CLIENT_MAY },
		/* else delivery.tls */
		{ "mx.partner.example", 0, TLS_CLIENT_NONE },
		{ "notbank.example", 0, TLS_CLIENT_NONE },
		/* address literals: only their own entries, exactly */
		{ "192.0.2.1", 1, TLS_CLIENT_VERIFY },
		{ "2001:db8::1", 1, TLS_CLIENT_ENCRYPT },
		{ "192.0.2.2", 1, TLS_CLIENT_NONE },
	};
	struct config	*cf;
	char		 path[PATHLEN], text[512];
	size_t		 i;

	(void)state;
	/* defaults: may, the system store, no per-destination entries */
	cf = load_ok(BASE);
	assert_int_equal(cf->delivery.tls, TLS_CLIENT_MAY);
	assert_null(cf->delivery.tls_ca_file);
	assert_int_equal(cf->delivery.ntls_policies, 0);
	assert_int_equal(conf_tls_policy_find(cf, "example.org", 0),
	    TLS_CLIENT_MAY);
	conf_free(cf);

	/* every word for the default */
	cf = load_ok(BASE "delivery: {tls: encrypt}\n");
	assert_int_equal(cf->delivery.tls, TLS_CLIENT_ENCRYPT);
	conf_free(cf);
	cf = load_ok(BASE "delivery: {tls: verify}\n");
	assert_int_equal(cf->delivery.tls, TLS_CLIENT_VERIFY);
	conf_free(cf);

	write_file(path, "not checked here\n", 17);
	snprintf(text, sizeof(text), BASE "delivery:\n"
	    "  tls: none\n"
	    "  tls_ca_file: %s\n"
	    "  tls_policy:\n"
	    "    Bank.Example: verify\n"
	    "    .bank.example: encrypt\n"
	    "    .deep.bank.example: none\n"
	    "    partner.example: may\n"
	    "    \"[192.0.2.1]\": verify\n"
	    "    \"[2001:DB8:0::1]\": encrypt\n", path);
	cf = load_ok(text);
	unlink(path);
	assert_string_equal(cf->delivery.tls_ca_file, path);
	assert_int_equal(cf->delivery.ntls_policies, 6);
	assert_string_equal(cf->delivery.tls_policies[0].dest, "bank.example");
	assert_string_equal(cf->delivery.tls_policies[5].dest,
	    "[2001:db8::1]");
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (conf_tls_policy_find(cf, want[i].host, want[i].literal) !=
		    want[i].policy)
			fail_msg("policy of %s", want[i].host);
	conf_free(cf);

	/* an empty mapping is fine */
	cf = load_ok(BASE "delivery: {tls_policy: {}}\n");
	assert_int_equal(cf->delivery.ntls_policies, 0);
	conf_free(cf);
}

static void
test_tls_policy_errors(void **state)
{
	static const struct err_case	 c[] = {
		{ BASE "delivery: {tls: Verify}\n", "3:17: invalid value "
		    "'Verify' for 'delivery.tls': expected one of none, may, "
		    "encrypt, verify" },
		{ BASE "delivery: {tls: ~}\n",
		    "3:17: missing value for 'delivery.tls'" },
		{ BASE "delivery: {tls_policy: {example.org: secure}}\n",
		    "3:38: invalid value 'secure' for "
		    "'delivery.tls_policy.example.org': expected one of none, "
		    "may, encrypt, verify" },
		{ BASE "delivery: {tls_policy: {example.org: [verify]}}\n",
		    "3:38: expected a scalar for "
		    "'delivery.tls_policy.example.org', found a list" },
		{ BASE "delivery:\n  tls_policy:\n    a.example: verify\n"
		    "    A.Example: none\n", "6:5: duplicate destination "
		    "'a.example' in 'delivery.tls_policy' (first at line 5)" },
		{ BASE "delivery: {tls_policy: {\"*\": verify}}\n",
		    "3:25: invalid destination '*' in 'delivery.tls_policy': "
		    "expected a domain, .domain (its subdomains) or [address]" },
		{ BASE "delivery: {tls_policy: {\"[mx.example]\": verify}}\n",
		    "3:25: invalid destination '[mx.example]' in "
		    "'delivery.tls_policy': expected a domain, .domain (its "
		    "subdomains) or [address]" },
		{ BASE "delivery: {tls_policy: {\"[192.0.2.300]\": verify}}\n",
		    "3:25: invalid destination '[192.0.2.300]' in "
		    "'delivery.tls_policy': expected a domain, .domain (its "
		    "subdomains) or [address]" },
		{ BASE "delivery: {tls_policy: {ex_ample.org: verify}}\n",
		    "3:25: invalid destination 'ex_ample.org' in "
		    "'delivery.tls_policy': expected a domain, .domain (its "
		    "subdomains) or [address]" },
		{ BASE "delivery: {tls_policy: [example.org]}\n",
		    "3:24: expected a mapping for 'delivery.tls_policy', "
		    "found a list" },
		{ BASE "delivery: {tls_ca_file: /nonexistent/ca.pem}\n",
		    "3:25: cannot read '/nonexistent/ca.pem' for "
		    "'delivery.tls_ca_file': No such file or directory" },
		{ BASE "delivery: {tls_ca_file: /}\n",
		    "3:25: cannot read '/' for 'delivery.tls_ca_file': not a "
		    "regular file" },
		{ BASE "delivery: {tls_ca_file: \"\"}\n",
		    "3:25: empty value for 'delivery.tls_ca_file'" },
		{ BASE "delivery: {tls_cafile: /etc/ssl/ca.pem}\n",
		    "3:12: unknown key 'tls_cafile' in 'delivery'" },
	};

	(void)state;
	RUN_CASES(c);
}

static void
test_control_socket(void **state)
{
	struct config	*cf;
	char		 text[512], path[110];

	(void)state;
	/* relative: from the working directory; default: SPOOL/control */
	cf = load_ok(BASE "control: {socket: run/ctl}\n");
	assert_cwd_path(cf->control_socket, "run/ctl");
	conf_free(cf);
	cf = load_ok(BASE "spool: /var/spool/sluice/\n");
	assert_string_equal(cf->control_socket, "/var/spool/sluice/control");
	conf_free(cf);
	cf = load_ok("spool: /q\n" BASE);
	assert_string_equal(cf->control_socket, "/q/control");
	conf_free(cf);

	/* 107 bytes fit in sun_path */
	memset(path, 'c', 107);
	path[0] = '/';
	path[107] = '\0';
	snprintf(text, sizeof(text), BASE "control: {socket: %s}\n", path);
	cf = load_ok(text);
	assert_string_equal(cf->control_socket, path);
	conf_free(cf);
	/* and so does a spool of 99 */
	path[99] = '\0';
	snprintf(text, sizeof(text), BASE "spool: %s\n", path);
	cf = load_ok(text);
	assert_int_equal(strlen(cf->control_socket), 107);
	conf_free(cf);
}

static void
test_routing_errors(void **state)
{
	static const struct err_case	 c[] = {
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 25}]\n"
		    "domains: {local: [example.test], relay: [ex_ample.org]}\n",
		    "2:42: invalid domain 'ex_ample.org' in 'domains.relay'" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 25}]\n"
		    "domains: {local: [example.test], relay: [a.example, "
		    "Example.TEST]}\n", "2:53: domain 'example.test' is in "
		    "both 'domains.local' and 'domains.relay'" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 25}]\n"
		    "domains:\n  relay: [example.test]\n"
		    "  local: [example.test]\n", "3:11: domain 'example.test' "
		    "is in both 'domains.local' and 'domains.relay'" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 25}]\n"
		    "domains: {local: [example.test], relay: a.example}\n",
		    "2:41: expected a list for 'domains.relay', found a "
		    "scalar" },
		{ "listeners: [{name: mx, address: 127.0.0.1, port: 25}]\n"
		    "domains: {local: [example.test], relay: [~]}\n",
		    "2:42: missing value for 'domains.relay'" },
		{ BASE "routes: [a.example]\n",
		    "3:9: expected a mapping for 'routes', found a list" },
		{ BASE "routes:\n", "3:8: expected a mapping for 'routes', "
		    "found an empty value" },
		{ BASE "routes: {example.org: \"smtp:[a.example\"}\n",
		    "3:23: invalid value 'smtp:[a.example' for "
		    "'routes.example.org': missing ']'" },
		{ BASE "routes: {example.org: \"smtp:[192.0.2.1]:0\"}\n",
		    "3:23: invalid value 'smtp:[192.0.2.1]:0' for "
		    "'routes.example.org': port out of range" },
		{ BASE "routes: {example.org: lmtp}\n",
		    "3:23: invalid value 'lmtp' for 'routes.example.org': "
		    "lmtp needs [host]:port, host:port or unix:/path" },
		{ BASE "routes: {example.org: Relay}\n",
		    "3:23: invalid value 'Relay' for 'routes.example.org': "
		    "unknown route type: expected smtp, lmtp, maildir or "
		    "discard" },
		{ BASE "routes: {example.org: \"smtp:192.0.2.1\"}\n",
		    "3:23: invalid value 'smtp:192.0.2.1' for "
		    "'routes.example.org': address literal needs brackets" },
		{ BASE "routes:\n  a.example: smtp\n  example.org: nosuch\n",
		    "5:16: unknown transport 'nosuch' for "
		    "'routes.example.org': expected a route or the name of an "
		    "entry of 'transports'" },
		{ BASE "transports: {relay: \"smtp:[a.example]\"}\n"
		    "routes: {\".Example.org\": relay2}\n",
		    "4:26: unknown transport 'relay2' for "
		    "'routes..Example.org': expected a route or the name of an "
		    "entry of 'transports'" },
		{ BASE "routes: {example.org: {a: b}}\n", "3:23: expected a "
		    "scalar for 'routes.example.org', found a mapping" },
		{ BASE "routes: {example.org: ~}\n",
		    "3:23: missing value for 'routes.example.org'" },
		{ BASE "routes: {\"ex ample.org\": smtp}\n", "3:10: invalid "
		    "domain 'ex ample.org' in 'routes': expected a domain, "
		    ".domain (its subdomains) or *" },
		{ BASE "routes: {\"*.example.org\": smtp}\n", "3:10: invalid "
		    "domain '*.example.org' in 'routes': expected a domain, "
		    ".domain (its subdomains) or *" },
		{ BASE "routes: {..example.org: smtp}\n", "3:10: invalid "
		    "domain '..example.org' in 'routes': expected a domain, "
		    ".domain (its subdomains) or *" },
		{ BASE "routes: {\".\": smtp}\n", "3:10: invalid domain '.' in "
		    "'routes': expected a domain, .domain (its subdomains) "
		    "or *" },
		{ BASE "routes: {\"\": smtp}\n", "3:10: invalid domain '' in "
		    "'routes': expected a domain, .domain (its subdomains) "
		    "or *" },
		{ BASE "routes:\n  Example.org: smtp\n  a.example: smtp\n"
		    "  example.ORG: discard\n", "6:3: duplicate route for "
		    "'example.org' (first at line 4)" },
		{ BASE "transports: [a]\n", "3:13: expected a mapping for "
		    "'transports', found a list" },
		{ BASE "transports: {Relay: smtp}\n", "3:14: invalid transport "
		    "name 'Relay' in 'transports': expected 1 to 32 of a-z, "
		    "0-9, '_' and '-'" },
		{ BASE "transports: {a.b: smtp}\n", "3:14: invalid transport "
		    "name 'a.b' in 'transports': expected 1 to 32 of a-z, "
		    "0-9, '_' and '-'" },
		{ BASE "transports: {\"\": smtp}\n", "3:14: invalid transport "
		    "name '' in 'transports': expected 1 to 32 of a-z, "
		    "0-9, '_' and '-'" },
		{ BASE "transports: {abcdefghijabcdefghijabcdefghijabc: smtp}\n",
		    "3:14: invalid transport name "
		    "'abcdefghijabcdefghijabcdefghijabc' in 'transports': "
		    "expected 1 to 32 of a-z, 0-9, '_' and '-'" },
		{ BASE "transports: {smtp: \"smtp:[a.example]\"}\n", "3:14: "
		    "invalid transport name 'smtp' in 'transports': smtp, "
		    "lmtp, maildir and discard are reserved" },
		{ BASE "transports: {discard: maildir}\n", "3:14: "
		    "invalid transport name 'discard' in 'transports': smtp, "
		    "lmtp, maildir and discard are reserved" },
		{ BASE "transports: {a: b, b: smtp}\n", "3:17: invalid value "
		    "'b' for 'transports.a': unknown route type: expected "
		    "smtp, lmtp, maildir or discard" },
		{ BASE "transports: {a: \"smtp:a.example:99999\"}\n", "3:17: "
		    "invalid value 'smtp:a.example:99999' for 'transports.a': "
		    "port out of range" },
		{ BASE "transports: {a: [smtp]}\n", "3:17: expected a scalar "
		    "for 'transports.a', found a list" },
		{ BASE "mailboxes: {delivery: \"smtp:[a.example]\"}\n", "3:23: "
		    "invalid value 'smtp:[a.example]' for "
		    "'mailboxes.delivery': expected maildir or an lmtp: "
		    "route" },
		{ BASE "mailboxes: {delivery: discard}\n", "3:23: invalid "
		    "value 'discard' for 'mailboxes.delivery': expected "
		    "maildir or an lmtp: route" },
		{ BASE "mailboxes: {delivery: relay}\n"
		    "transports: {relay: smtp}\n", "3:23: invalid value "
		    "'relay' for 'mailboxes.delivery': expected maildir or an "
		    "lmtp: route" },
		{ BASE "mailboxes: {delivery: dovecot}\n", "3:23: unknown "
		    "transport 'dovecot' for 'mailboxes.delivery': expected a "
		    "route or the name of an entry of 'transports'" },
		{ BASE "mailboxes: {delivery: \"lmtp:unix:run/lmtp\"}\n",
		    "3:23: invalid value 'lmtp:unix:run/lmtp' for "
		    "'mailboxes.delivery': unix socket path must be "
		    "absolute" },
		{ BASE "mailboxes: {delivery: ~}\n",
		    "3:23: missing value for 'mailboxes.delivery'" },
	};

	(void)state;
	RUN_CASES(c);
}

static void
test_delivery_errors(void **state)
{
	static const struct err_case	 c[] = {
		{ BASE "delivery: {concurrency: 0}\n", "3:25: invalid value "
		    "'0' for 'delivery.concurrency': expected an integer from "
		    "1 to 10000" },
		{ BASE "delivery: {concurrency: 10001}\n", "3:25: invalid "
		    "value '10001' for 'delivery.concurrency': expected an "
		    "integer from 1 to 10000" },
		{ BASE "delivery: {local_concurrency: 0}\n", "3:31: invalid "
		    "value '0' for 'delivery.local_concurrency': expected an "
		    "integer from 1 to 256" },
		{ BASE "delivery: {local_concurrency: 257}\n", "3:31: invalid "
		    "value '257' for 'delivery.local_concurrency': expected "
		    "an integer from 1 to 256" },
		{ BASE "delivery: {per_destination: 0}\n", "3:29: invalid "
		    "value '0' for 'delivery.per_destination': expected an "
		    "integer from 1 to 1000" },
		{ BASE "delivery: {per_destination: 1001}\n", "3:29: invalid "
		    "value '1001' for 'delivery.per_destination': expected an "
		    "integer from 1 to 1000" },
		{ BASE "delivery: {recipients_per_transaction: 0}\n", "3:40: "
		    "invalid value '0' for "
		    "'delivery.recipients_per_transaction': expected an "
		    "integer from 1 to 10000" },
		{ BASE "delivery: {recipients_per_transaction: 10001}\n",
		    "3:40: invalid value '10001' for "
		    "'delivery.recipients_per_transaction': expected an "
		    "integer from 1 to 10000" },
		{ BASE "delivery: {messages_per_connection: 0}\n", "3:37: "
		    "invalid value '0' for 'delivery.messages_per_connection': "
		    "expected an integer from 1 to 100000" },
		{ BASE "delivery: {messages_per_connection: 100001}\n", "3:37: "
		    "invalid value '100001' for "
		    "'delivery.messages_per_connection': expected an integer "
		    "from 1 to 100000" },
		{ BASE "delivery: {connection_cache: 1h1s}\n", "3:30: "
		    "duration '1h1s' for 'delivery.connection_cache' is out of "
		    "range: from 0s to 3600s" },
		{ BASE "delivery: {connection_cache: -1}\n", "3:30: invalid "
		    "duration '-1' for 'delivery.connection_cache': expected "
		    "a number of seconds or units like 30s, 5m, 2h, 5d, 1w" },
		{ BASE "delivery: {connect_timeout: 0}\n", "3:29: duration "
		    "'0' for 'delivery.connect_timeout' is out of range: from "
		    "1s to 4294967295s" },
		{ BASE "delivery: {greeting_timeout: 0s}\n", "3:30: duration "
		    "'0s' for 'delivery.greeting_timeout' is out of range: "
		    "from 1s to 4294967295s" },
		{ BASE "delivery: {command_timeout: 0m}\n", "3:29: duration "
		    "'0m' for 'delivery.command_timeout' is out of range: "
		    "from 1s to 4294967295s" },
		{ BASE "delivery: {data_timeout: 5x}\n", "3:26: invalid "
		    "duration '5x' for 'delivery.data_timeout': expected a "
		    "number of seconds or units like 30s, 5m, 2h, 5d, 1w" },
		{ BASE "delivery: {helo_name: \"bad name\"}\n", "3:23: invalid "
		    "value 'bad name' for 'delivery.helo_name': expected a "
		    "domain name like mx.example.org" },
		{ BASE "delivery: {helo_name: \"[192.0.2.1]\"}\n", "3:23: "
		    "invalid value '[192.0.2.1]' for 'delivery.helo_name': "
		    "expected a domain name like mx.example.org" },
		{ BASE "delivery: {helo_name: ~}\n",
		    "3:23: missing value for 'delivery.helo_name'" },
		{ BASE "delivery: {tls: require}\n", "3:17: invalid value "
		    "'require' for 'delivery.tls': expected one of none, may, "
		    "encrypt, verify" },
		{ BASE "delivery: {concurrency: 10, per_destination: 11}\n",
		    "3:46: 'delivery.per_destination' (11) may not exceed "
		    "'delivery.concurrency' (10)" },
		{ BASE "delivery:\n  per_destination: 101\n", "4:20: "
		    "'delivery.per_destination' (101) may not exceed "
		    "'delivery.concurrency' (100)" },
		{ BASE "delivery: {colour: red}\n",
		    "3:12: unknown key 'colour' in 'delivery'" },
		{ BASE "delivery: [1]\n",
		    "3:11: expected a mapping for 'delivery', found a list" },
		{ BASE "delivery_concurrency: 5\n",
		    "3:1: unknown key 'delivery_concurrency'" },
		{ BASE "bounce: {return_limit: 1.5M}\n", "3:24: invalid size "
		    "'1.5M' for 'bounce.return_limit': expected bytes or "
		    "units like 512K, 35M, 1G" },
		{ BASE "bounce: {return_limit: -1}\n", "3:24: invalid size "
		    "'-1' for 'bounce.return_limit': expected bytes or "
		    "units like 512K, 35M, 1G" },
		{ BASE "bounce: {limit: 1}\n",
		    "3:10: unknown key 'limit' in 'bounce'" },
		{ BASE "control: {socket: \"\"}\n",
		    "3:19: empty value for 'control.socket'" },
		{ BASE "control: {path: /run/x}\n",
		    "3:11: unknown key 'path' in 'control'" },
		{ BASE "control: /run/x\n",
		    "3:10: expected a mapping for 'control', found a scalar" },
		{ BASE "retry: {domains: {\"bad domain\": {}}}\n", "3:19: "
		    "invalid domain 'bad domain' in 'retry.domains'" },
		{ BASE "retry: {domains: {.example.org: {}}}\n", "3:19: "
		    "invalid domain '.example.org' in 'retry.domains'" },
		{ BASE "retry: {domains: [a.example]}\n", "3:18: expected a "
		    "mapping for 'retry.domains', found a list" },
		{ BASE "retry: {domains: {a.example: 5m}}\n", "3:30: expected "
		    "a mapping for 'retry.domains.a.example', found a "
		    "scalar" },
		{ BASE "retry: {domains: {a.example: {first: 0}}}\n", "3:38: "
		    "duration '0' for 'retry.domains.a.example.first' is out "
		    "of range: from 1s to 4294967295s" },
		{ BASE "retry: {domains: {a.example: {lifetime: 5x}}}\n",
		    "3:41: invalid duration '5x' for "
		    "'retry.domains.a.example.lifetime': expected a number of "
		    "seconds or units like 30s, 5m, 2h, 5d, 1w" },
		{ BASE "retry: {domains: {a.example: {domains: {}}}}\n",
		    "3:31: unknown key 'domains' in 'retry.domains.a.example'" },
		{ BASE "retry:\n  domains:\n    A.example: {}\n"
		    "    a.EXAMPLE: {}\n", "6:5: duplicate domain 'a.example' "
		    "in 'retry.domains' (first at line 5)" },
	};
	char	 text[512], want[512], path[110];

	(void)state;
	RUN_CASES(c);

	/* sun_path holds 107 bytes and the NUL */
	memset(path, 'c', 108);
	path[0] = '/';
	path[108] = '\0';
	snprintf(text, sizeof(text), BASE "control: {socket: %s}\n", path);
	snprintf(want, sizeof(want), "3:19: invalid value '%.60s...' for "
	    "'control.socket': a unix socket path has at most 107 bytes",
	    path);
	expect_error(text, want);
	/* the default SPOOL/control must fit too */
	path[100] = '\0';
	snprintf(text, sizeof(text), BASE "spool: %s\n", path);
	snprintf(want, sizeof(want), "3:8: the default 'control.socket' "
	    "%.60s... is longer than 107 bytes: set 'control.socket' or a "
	    "shorter 'spool'", path);
	expect_error(text, want);
	/* but not when control.socket is set */
	snprintf(text, sizeof(text), BASE "spool: %s\n"
	    "control: {socket: /run/ctl}\n", path);
	conf_free(load_ok(text));
}

/* ---- dns ------------------------------------------------------------- */

static void
assert_server(const struct conf_dns_server *s, const char *addr,
    unsigned port)
{
	unsigned char	 want[16];

	memset(want, 0, sizeof(want));
	if (inet_pton(AF_INET, addr, want) == 1)
		assert_int_equal(s->family, AF_INET);
	else {
		assert_int_equal(inet_pton(AF_INET6, addr, want), 1);
		assert_int_equal(s->family, AF_INET6);
	}
	assert_memory_equal(s->addr, want, s->family == AF_INET ? 4 : 16);
	assert_int_equal(s->port, port);
}

static void
test_dns(void **state)
{
	struct config	*cf;

	(void)state;
	cf = load_ok(BASE);
	assert_null(cf->dns.servers);
	assert_int_equal(cf->dns.nservers, 0);
	assert_int_equal(cf->dns.timeout, 5);
	assert_int_equal(cf->dns.attempts, 2);
	assert_int_equal(cf->dns.hosts_file, 1);
	conf_free(cf);

	cf = load_ok(BASE "dns:\n"
	    "  servers: [\"127.0.0.1:5353\", \"[::1]:53\", 192.0.2.53,\n"
	    "            \"2001:db8::53\", \"[2001:db8::1]\", 10.0.0.1:65535]\n"
	    "  timeout: 1m\n"
	    "  attempts: 10\n");
	assert_int_equal(cf->dns.nservers, 6);
	assert_server(&cf->dns.servers[0], "127.0.0.1", 5353);
	assert_server(&cf->dns.servers[1], "::1", 53);
	assert_server(&cf->dns.servers[2], "192.0.2.53", 53);
	assert_server(&cf->dns.servers[3], "2001:db8::53", 53);
	assert_server(&cf->dns.servers[4], "2001:db8::1", 53);
	assert_server(&cf->dns.servers[5], "10.0.0.1", 65535);
	assert_int_equal(cf->dns.timeout, 60);
	assert_int_equal(cf->dns.attempts, 10);
	conf_free(cf);

	cf = load_ok(BASE "dns: {servers: [], timeout: 1s, attempts: 1,"
	    " hosts_file: false}\n");
	assert_int_equal(cf->dns.nservers, 0);
	assert_int_equal(cf->dns.timeout, 1);
	assert_int_equal(cf->dns.attempts, 1);
	assert_int_equal(cf->dns.hosts_file, 0);
	conf_free(cf);
}

static void
test_dns_errors(void **state)
{
	static const struct err_case	 c[] = {
		{ BASE "dns: {servers: [ns.example.test]}\n",
		    "3:17: invalid server 'ns.example.test' in 'dns.servers': "
		    "expected an IP address with an optional port, like "
		    "192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53" },
		{ BASE "dns: {servers: [\"[192.0.2.1]:53\"]}\n",
		    "3:17: invalid server '[192.0.2.1]:53' in 'dns.servers': "
		    "expected an IP address with an optional port, like "
		    "192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53" },
		{ BASE "dns: {servers: [\"[::1\"]}\n",
		    "3:17: invalid server '[::1' in 'dns.servers': "
		    "expected an IP address with an optional port, like "
		    "192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53" },
		{ BASE "dns: {servers: [\":53\"]}\n",
		    "3:17: invalid server ':53' in 'dns.servers': "
		    "expected an IP address with an optional port, like "
		    "192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53" },
		{ BASE "dns:\n  servers:\n    - 127.0.0.1\n"
		    "    - \"127.0.0.1:99999\"\n",
		    "6:7: invalid port '99999' in 'dns.servers' entry "
		    "'127.0.0.1:99999': expected 1 to 65535" },
		{ BASE "dns: {servers: [\"127.0.0.1:0\"]}\n",
		    "3:17: invalid port '0' in 'dns.servers' entry "
		    "'127.0.0.1:0': expected 1 to 65535" },
		{ BASE "dns: {servers: [\"127.0.0.1:\"]}\n",
		    "3:17: invalid port '' in 'dns.servers' entry "
		    "'127.0.0.1:': expected 1 to 65535" },
		{ BASE "dns: {servers: [\"[::1]:x53\"]}\n",
		    "3:17: invalid port 'x53' in 'dns.servers' entry "
		    "'[::1]:x53': expected 1 to 65535" },
		{ BASE "dns: {servers: 127.0.0.1}\n",
		    "3:16: expected a list for 'dns.servers', found a scalar" },
		{ BASE "dns: {servers: [{a: b}]}\n",
		    "3:17: expected a scalar for 'dns.servers', found a "
		    "mapping" },
		{ BASE "dns: {timeout: 0}\n",
		    "3:16: duration '0' for 'dns.timeout' is out of range: "
		    "from 1s to 300s" },
		{ BASE "dns: {timeout: 500ms}\n",
		    "3:16: invalid duration '500ms' for 'dns.timeout': "
		    "expected a number of seconds or units like 30s, 5m, 2h, "
		    "5d, 1w" },
		{ BASE "dns: {attempts: 0}\n",
		    "3:17: invalid value '0' for 'dns.attempts': expected an "
		    "integer from 1 to 10" },
		{ BASE "dns: {attempts: 11}\n",
		    "3:17: invalid value '11' for 'dns.attempts': expected an "
		    "integer from 1 to 10" },
		{ BASE "dns: {retries: 1}\n",
		    "3:7: unknown key 'retries' in 'dns'" },
		{ BASE "dns: {hosts_file: sometimes}\n",
		    "3:19: invalid value 'sometimes' for 'dns.hosts_file': "
		    "expected true or false" },
		{ BASE "dns: [127.0.0.1]\n",
		    "3:6: expected a mapping for 'dns', found a list" },
	};

	(void)state;
	RUN_CASES(c);
}

static void
test_users(void **state)
{
	struct config	*cf;
	static const struct err_case	 c[] = {
		{ BASE "mailboxes: {users: [alice@example.test, "
		    "bob@other.test]}\n", "3:41: domain 'other.test' of "
		    "mailbox 'bob@other.test' is not in 'domains.local'" },
		{ BASE "mailboxes: {users: [alice]}\n", "3:21: invalid "
		    "mailbox address 'alice': expected local@domain" },
		{ BASE "mailboxes: {users: [a..b@example.test]}\n", "3:21: "
		    "invalid mailbox address 'a..b@example.test': expected "
		    "local@domain" },
		{ BASE "mailboxes: {users: [\"@example.test\"]}\n", "3:21: "
		    "invalid mailbox address '@example.test': expected "
		    "local@domain" },
		{ BASE "mailboxes: {users: [\"a b@example.test\"]}\n", "3:21: "
		    "invalid mailbox address 'a b@example.test': expected "
		    "local@domain" },
		{ BASE "mailboxes: {users: [\"a@\"]}\n", "3:21: invalid "
		    "mailbox address 'a@': expected local@domain" },
	};

	(void)state;
	RUN_CASES(c);

	/* domains may come after mailboxes; addresses are lower-cased */
	cf = load_ok("mailboxes:\n"
	    "  users: [Bob@Example.Test, alice@example.test, "
	    "\"o'hara+x@example.test\"]\n"
	    "listeners: [{name: mx, address: 127.0.0.1, port: 25}]\n"
	    "domains: {local: [EXAMPLE.TEST]}\n");
	assert_non_null(cf);
	assert_int_equal(cf->nmailbox_users, 3);
	assert_string_equal(cf->mailbox_users[0], "alice@example.test");
	assert_string_equal(cf->mailbox_users[1], "bob@example.test");
	assert_string_equal(cf->mailbox_users[2], "o'hara+x@example.test");
	conf_free(cf);
}

static void
test_users_file(void **state)
{
	static const char	 users[] =
	    "# mailboxes of example.test\n"
	    "\n"
	    "  Carol@Example.Test  \n"
	    "dave@example.test # the boss\n"
	    "alice@example.test\r\n"
	    "\t\n"
	    "   # indented comment\n"
	    "eve+tag@example.test\n"
	    "x#y@example.test\n"
	    "carol@example.test";
	struct config		*cf;
	char			 upath[PATHLEN], text[512];

	(void)state;
	write_file(upath, users, strlen(users));
	snprintf(text, sizeof(text), BASE "mailboxes:\n"
	    "  users: [alice@example.test, Bob@example.test]\n"
	    "  users_file: %s\n", upath);
	cf = load_ok(text);
	unlink(upath);
	assert_non_null(cf);
	assert_string_equal(cf->mailbox_users_file, upath);
	assert_int_equal(cf->nmailbox_users, 6);
	assert_string_equal(cf->mailbox_users[0], "alice@example.test");
	assert_string_equal(cf->mailbox_users[1], "bob@example.test");
	assert_string_equal(cf->mailbox_users[2], "carol@example.test");
	assert_string_equal(cf->mailbox_users[3], "dave@example.test");
	assert_string_equal(cf->mailbox_users[4], "eve+tag@example.test");
	assert_string_equal(cf->mailbox_users[5], "x#y@example.test");
	conf_free(cf);
}

static void
expect_users_file_error(const char *users, const char *want_suffix)
{
	struct config	*cf;
	char		 upath[PATHLEN], path[PATHLEN], err[CONF_ERR_LEN];
	char		 text[512], want[512];

	write_file(upath, users, strlen(users));
	snprintf(text, sizeof(text), BASE "mailboxes: {users_file: %s}\n",
	    upath);
	snprintf(want, sizeof(want), "%s:%s", upath, want_suffix);
	cf = load_text(text, path, err);
	unlink(upath);
	assert_null(cf);
	assert_string_equal(err, want);
}

static void
test_users_file_errors(void **state)
{
	char	 text[256], want[256];

	(void)state;
	expect_users_file_error("a@example.test\n# ok\n\nnot-an-address\n",
	    "4:1: invalid mailbox address 'not-an-address': expected "
	    "local@domain");
	expect_users_file_error("a@example.test\nx@other.test\n",
	    "2:1: domain 'other.test' of mailbox 'x@other.test' is not in "
	    "'domains.local'");
	expect_users_file_error("  a@example.test#x  \n", "1:1: invalid "
	    "mailbox address 'a@example.test#x': expected local@domain");
	expect_users_file_error("a@example.test\n\n\na b@example.test\n",
	    "4:1: invalid mailbox address 'a b@example.test': expected "
	    "local@domain");

	/* a file that cannot be read: error at the key's value */
	snprintf(text, sizeof(text), BASE "mailboxes: {users_file: "
	    "/nonexistent/users}\n");
	snprintf(want, sizeof(want), "3:25: cannot read "
	    "'mailboxes.users_file' /nonexistent/users: No such file or "
	    "directory");
	expect_error(text, want);
}

static void
test_users_file_nul(void **state)
{
	static const char	 users[] = "a@example.test\nb@x\0y.test\n";
	char			 upath[PATHLEN], text[512], want[512];
	char			 path[PATHLEN], err[CONF_ERR_LEN];
	struct config		*cf;

	(void)state;
	write_file(upath, users, sizeof(users) - 1);
	snprintf(text, sizeof(text), BASE "mailboxes: {users_file: %s}\n",
	    upath);
	cf = load_text(text, path, err);
	unlink(upath);
	assert_null(cf);
	snprintf(want, sizeof(want), "%s:2:1: NUL character in line", upath);
	assert_string_equal(err, want);
}

static void
test_relative_paths(void **state)
{
	char		 dir[] = "/tmp/sluice-test-dir-XXXXXX";
	char		 old[PATH_MAX], err[CONF_ERR_LEN];
	struct config	*cf;
	FILE		*fp;

	(void)state;
	assert_non_null(getcwd(old, sizeof(old)));
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chdir(dir), 0);
	fp = fopen("users.txt", "w");
	assert_non_null(fp);
	fputs("alice@example.test\n", fp);
	assert_int_equal(fclose(fp), 0);
	fp = fopen("sluice.yaml", "w");
	assert_non_null(fp);
	fputs(BASE "spool: ./spool//q\n"
	    "mailboxes: {maildir: \"mail/%d/%u\", users_file: users.txt}\n"
	    "log: {target: file, file: logs/sluice.log}\n", fp);
	assert_int_equal(fclose(fp), 0);

	cf = conf_load("sluice.yaml", err, sizeof(err));
	if (cf == NULL)
		fail_msg("%s", err);
	assert_string_equal(cf->path, "sluice.yaml");
	assert_cwd_path(cf->spool, "spool//q");
	assert_cwd_path(cf->maildir, "mail/%d/%u");
	assert_cwd_path(cf->mailbox_users_file, "users.txt");
	assert_int_equal(cf->nmailbox_users, 1);
	assert_int_equal(cf->log.target, LOG_TARGET_FILE);
	assert_cwd_path(cf->log.file, "logs/sluice.log");
	conf_free(cf);

	/* the error names the file as it was given */
	fp = fopen("sluice.yaml", "w");
	assert_non_null(fp);
	fputs(BASE "spool: {}\n", fp);
	assert_int_equal(fclose(fp), 0);
	assert_null(conf_load("sluice.yaml", err, sizeof(err)));
	assert_string_equal(err, "sluice.yaml:3:8: expected a scalar for "
	    "'spool', found a mapping");

	assert_int_equal(unlink("sluice.yaml"), 0);
	assert_int_equal(unlink("users.txt"), 0);
	assert_int_equal(chdir(old), 0);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest	 tests[] = {
		cmocka_unit_test(test_duration_good),
		cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_size_good),
		cmocka_unit_test(test_size_bad),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_hardening_keys),
		cmocka_unit_test(test_network_good),
		cmocka_unit_test(test_network_bad),
		cmocka_unit_test(test_network_match),
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_default_file),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_long_values),
		cmocka_unit_test(test_yaml_errors),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_missing_keys),
		cmocka_unit_test(test_tls_auth_metrics),
		cmocka_unit_test(test_msec),
		cmocka_unit_test(test_kv_good),
		cmocka_unit_test(test_kv_errors),
		cmocka_unit_test(test_relay_domains),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_route_find),
		cmocka_unit_test(test_local_route),
		cmocka_unit_test(test_retry_domains),
		cmocka_unit_test(test_delivery),
		cmocka_unit_test(test_tls_policy),
		cmocka_unit_test(test_tls_policy_errors),
		cmocka_unit_test(test_control_socket),
		cmocka_unit_test(test_routing_errors),
		cmocka_unit_test(test_delivery_errors),
		cmocka_unit_test(test_dns),
		cmocka_unit_test(test_dns_errors),
		cmocka_unit_test(test_users),
		cmocka_unit_test(test_users_file),
		cmocka_unit_test(test_users_file_errors),
		cmocka_unit_test(test_users_file_nul),
		cmocka_unit_test(test_relative_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
