/*
 * test_dns.c - unit tests for core/dns*.c
 *
 * Pure parts first: type and status names, the query name check, reverse
 * and DNSBL names, and the answer parser fed with hand-built packets (bounds,
 * TTLs, every truncation and random corruption). Then live lookups against
 * a real dnsmasq that the group setup starts on a free 127.0.0.1 port and
 * kills by its PID at the end (the live tests are skipped without
 * /usr/sbin/dnsmasq), plus a UDP socket that never answers (timeouts).
 * dnsmasq runs with --keep-in-foreground, not --no-daemon: in debug mode it
 * serves a TCP connection inline and answers no UDP until it closes, and
 * c-ares keeps its TCP connection open.
 * Every loop run is bounded by a timer, so nothing can hang.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "dns.h"
#include "util.h"

#define DNSMASQ		"/usr/sbin/dnsmasq"
#define LOOP_MS		5000		/* bound on any wait for answers */
#define COPY_RRS	8
#define COPY_TEXT	4096

/* 10 strings of 200 bytes: too big for 512-byte UDP, so c-ares uses TCP */
#define S20	"bbbbbbbbbbbbbbbbbbbb"
#define S200	S20 S20 S20 S20 S20 S20 S20 S20 S20 S20
#define BIG_TXT	S200 "," S200 "," S200 "," S200 "," S200 "," \
		S200 "," S200 "," S200 "," S200 "," S200

/* ---- pure functions ---------------------------------------------------- */

static void
test_type_names(void **state)
{
	static const char *const	 names[] = {
		"A", "AAAA", "MX", "TXT", "PTR", "CNAME", "NS", "SRV"
	};
	enum dns_type			 t;
	size_t				 i;

	(void)state;
	for (i = 0; i < nitems(names); i++) {
		assert_int_equal(dns_type_parse(names[i], &t), 0);
		assert_int_equal(t, (enum dns_type)i);
		assert_string_equal(dns_type_name(t), names[i]);
	}
	assert_int_equal(dns_type_parse("txt", &t), 0);
	assert_int_equal(t, DNS_TXT);
	assert_int_equal(dns_type_parse("Mx", &t), 0);
	assert_int_equal(t, DNS_MX);
	assert_int_equal(dns_type_parse("aaaa", &t), 0);
	assert_int_equal(t, DNS_AAAA);
	assert_int_equal(dns_type_parse("", &t), -1);
	assert_int_equal(dns_type_parse("MXX", &t), -1);
	assert_int_equal(dns_type_parse("ANY", &t), -1);
	assert_int_equal(dns_type_parse(" A", &t), -1);
	assert_int_equal(dns_type_parse(NULL, &t), -1);
	assert_string_equal(dns_type_name((enum dns_type)99), "UNKNOWN");
	assert_int_equal(dns_type_code(DNS_MX), 15);
	assert_int_equal(dns_type_code(DNS_AAAA), 28);
	assert_int_equal(dns_type_code((enum dns_type)-1), -1);
}

static void
test_status_names(void **state)
{
	(void)state;
	assert_string_equal(dns_status_name(DNS_OK), "OK");
	assert_string_equal(dns_status_name(DNS_NXDOMAIN), "NXDOMAIN");
	assert_string_equal(dns_status_name(DNS_NODATA), "NODATA");
	assert_string_equal(dns_status_name(DNS_SERVFAIL), "SERVFAIL");
	assert_string_equal(dns_status_name(DNS_TIMEOUT), "TIMEOUT");
	assert_string_equal(dns_status_name(DNS_REFUSED), "REFUSED");
	assert_string_equal(dns_status_name(DNS_BADRESP), "BADRESP");
	assert_string_equal(dns_status_name(DNS_ERROR), "ERROR");
	assert_string_equal(dns_status_name((enum dns_status)42), "UNKNOWN");
}

/* A name of n bytes: labels of 63 'a' separated by dots. */
static char *
long_name(char *buf, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		buf[i] = i % 64 == 63 ? '.' : 'a';
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[n - 1] = 'b';
	return buf;
}

static void
test_name_valid(void **state)
{
	static const char *const	 good[] = {
		"example.com", "example.com.", "a", "_dmarc.example.com",
		"_smtp._tcp.example.com", "xn--bcher-kva.example", "1.2.0.192."
		"zen.example", "*.example.com", "a-b.c_d.e",
	};
	static const char *const	 bad[] = {
		"", ".", "..", "a..b", ".a", "a b", "a\tb", "a\nb", "a\\.b",
		"a\x7f", "b\xc3\xbc" "cher.example", "a.b..", "\x01",
	};
	char				 buf[300];
	size_t				 i;

	(void)state;
	for (i = 0; i < nitems(good); i++)
		if (!dns_name_valid(good[i]))
			fail_msg("rejected '%s'", good[i]);
	for (i = 0; i < nitems(bad); i++)
		if (dns_name_valid(bad[i]))
			fail_msg("accepted '%s'", bad[i]);
	assert_false(dns_name_valid(NULL));
	memset(buf, 'a', 63);
	strcpy(buf + 63, ".example");
	assert_true(dns_name_valid(buf));
	memset(buf, 'a', 64);
	strcpy(buf + 64, ".example");
	assert_false(dns_name_valid(buf));
	assert_true(dns_name_valid(long_name(buf, 253)));
	strcat(buf, ".");
	assert_true(dns_name_valid(buf));
	assert_false(dns_name_valid(long_name(buf, 254)));
	assert_false(dns_name_valid(long_name(buf, 299)));
}

static void
test_reverse_v4(void **state)
{
	struct sockaddr_in	 sin;
	char			 buf[DNS_NAME_LEN];

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr), 1);
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "1.2.0.192.in-addr.arpa");
	assert_int_equal(inet_pton(AF_INET, "255.0.10.200", &sin.sin_addr),
	    1);
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "200.10.0.255.in-addr.arpa");
	/* exactly enough room, then one byte short */
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin, buf,
	    strlen("200.10.0.255.in-addr.arpa") + 1), 0);
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin, buf,
	    strlen("200.10.0.255.in-addr.arpa")), -1);
	assert_int_equal(dns_reverse_name(NULL, buf, sizeof(buf)), -1);
	sin.sin_family = AF_UNIX;
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin, buf,
	    sizeof(buf)), -1);
}

static void
test_reverse_v6(void **state)
{
	struct sockaddr_in6	 sin6;
	char			 buf[DNS_NAME_LEN];

	(void)state;
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::567:89ab",
	    &sin6.sin6_addr), 1);
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin6, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin6, buf, 73),
	    0);
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin6, buf, 72),
	    -1);
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin6, buf, 10),
	    -1);
	assert_string_equal(buf, "");
	/* an IPv4-mapped client address is looked up as IPv4 */
	assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.7",
	    &sin6.sin6_addr), 1);
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin6, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "7.2.0.192.in-addr.arpa");
}

static void
test_dnsbl_label(void **state)
{
	char	 buf[DNS_NAME_LEN], zone[300];

	(void)state;
	assert_int_equal(dns_reverse_ipv4_label("192.0.2.1", "zen.example",
	    buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1.2.0.192.zen.example");
	assert_int_equal(dns_reverse_ipv4_label("127.0.0.2", "bl.example.",
	    buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2.0.0.127.bl.example.");
	assert_int_equal(dns_reverse_ipv4_label("192.0.2", "zen.example",
	    buf, sizeof(buf)), -1);
	assert_int_equal(dns_reverse_ipv4_label("::1", "zen.example", buf,
	    sizeof(buf)), -1);
	assert_int_equal(dns_reverse_ipv4_label("192.0.2.1 ", "zen.example",
	    buf, sizeof(buf)), -1);
	assert_int_equal(dns_reverse_ipv4_label("192.0.2.256", "zen.example",
	    buf, sizeof(buf)), -1);
	assert_int_equal(dns_reverse_ipv4_label("192.0.2.1", "", buf,
	    sizeof(buf)), -1);
	assert_int_equal(dns_reverse_ipv4_label("192.0.2.1", ".zen", buf,
	    sizeof(buf)), -1);
	assert_int_equal(dns_reverse_ipv4_label("192.0.2.1", "a b", buf,
	    sizeof(buf)), -1);
	assert_int_equal(dns_reverse_ipv4_label("192.0.2.1", "zen.example",
	    buf, 10), -1);
	assert_int_equal(dns_reverse_ipv4_label(NULL, "zen", buf,
	    sizeof(buf)), -1);
	/* the whole name must stay within 253 bytes */
	long_name(zone, 253 - 8);
	assert_int_equal(dns_reverse_ipv4_label("1.2.3.4", zone, buf,
	    sizeof(buf)), 0);
	assert_int_equal(strlen(buf), 253);
	long_name(zone, 253 - 7);
	assert_int_equal(dns_reverse_ipv4_label("1.2.3.4", zone, buf,
	    sizeof(buf)), -1);
}

/* ---- hand-built answers ------------------------------------------------ */

struct pkt {
	unsigned char	*buf;
	size_t		 len, cap;
	size_t		 ancount_off;
};

static void
pkt_put(struct pkt *p, const void *data, size_t len)
{
	if (len == 0)
		return;
	if (p->len + len > p->cap) {
		p->cap = (p->len + len) * 2;
		p->buf = xrealloc(p->buf, p->cap);
	}
	memcpy(p->buf + p->len, data, len);
	p->len += len;
}

static void
pkt_u16(struct pkt *p, unsigned v)
{
	unsigned char	 b[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	pkt_put(p, b, 2);
}

static void
pkt_u32(struct pkt *p, unsigned long v)
{
	pkt_u16(p, (unsigned)(v >> 16) & 0xffff);
	pkt_u16(p, (unsigned)v & 0xffff);
}

static void
pkt_name(struct pkt *p, const char *name)
{
	const char	*dot;
	unsigned char	 n;

	while (*name != '\0') {
		dot = strchr(name, '.');
		n = (unsigned char)(dot ? (size_t)(dot - name) : strlen(name));
		pkt_put(p, &n, 1);
		pkt_put(p, name, n);
		name += n + (dot != NULL);
	}
	pkt_put(p, "", 1);
}

/* A response header and the question; answers follow with pkt_rr(). */
static void
pkt_start(struct pkt *p, const char *qname, int qtype)
{
	memset(p, 0, sizeof(*p));
	pkt_u16(p, 0x1234);
	pkt_u16(p, 0x8180);		/* response, RD, RA, NOERROR */
	pkt_u16(p, 1);
	p->ancount_off = p->len;
	pkt_u16(p, 0);
	pkt_u16(p, 0);
	pkt_u16(p, 0);
	pkt_name(p, qname);
	pkt_u16(p, (unsigned)qtype);
	pkt_u16(p, 1);
}

/* An answer owned by the question name (pointer to offset 12). */
static void
pkt_rr(struct pkt *p, int type, unsigned long ttl, const void *rdata,
    size_t rdlen)
{
	unsigned	 an;

	pkt_u16(p, 0xc00c);
	pkt_u16(p, (unsigned)type);
	pkt_u16(p, 1);
	pkt_u32(p, ttl);
	pkt_u16(p, (unsigned)rdlen);
	pkt_put(p, rdata, rdlen);
	an = (unsigned)p->buf[p->ancount_off] << 8 |
	    p->buf[p->ancount_off + 1];
	an++;
	p->buf[p->ancount_off] = (unsigned char)(an >> 8);
	p->buf[p->ancount_off + 1] = (unsigned char)an;
}

/* rdata with a preference/priority prefix and an uncompressed name. */
static size_t
rdata_name(unsigned char *out, const unsigned char *prefix, size_t plen,
    const char *name)
{
	struct pkt	 p;
	size_t		 len;

	memset(&p, 0, sizeof(p));
	pkt_put(&p, prefix, plen);
	pkt_name(&p, name);
	memcpy(out, p.buf, p.len);
	len = p.len;
	free(p.buf);
	return len;
}

static void
test_parse_many_a(void **state)
{
	struct pkt		 p;
	struct dns_result	 res;
	unsigned char		 a[4] = { 192, 0, 2, 0 };
	int			 i;

	(void)state;
	pkt_start(&p, "many.test", 1);
	for (i = 0; i < 300; i++) {
		a[3] = (unsigned char)i;
		a[2] = (unsigned char)(i >> 8);
		pkt_rr(&p, 1, 60, a, 4);
	}
	dns_parse_answer(DNS_A, p.buf, (int)p.len, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrrs, DNS_MAX_RRS);
	assert_string_equal(res.rrs[0].text, "192.0.0.0");
	assert_string_equal(res.rrs[99].text, "192.0.0.99");
	assert_int_equal(res.rrs[0].ttl, 60);
	assert_int_equal(res.rrs[0].type, DNS_A);
	dns_result_clear(&res);
	free(p.buf);
}

static void
test_parse_txt_bounds(void **state)
{
	struct pkt		 p;
	struct dns_result	 res;
	unsigned char		 rd[65535];
	size_t			 i, n, len = 0;

	(void)state;
	/* 150 records of two strings: 100 kept, strings joined */
	pkt_start(&p, "txt.test", 16);
	for (i = 0; i < 150; i++)
		pkt_rr(&p, 16, 30, "\003abc\002de", 7);
	dns_parse_answer(DNS_TXT, p.buf, (int)p.len, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrrs, DNS_MAX_RRS);
	assert_string_equal(res.rrs[42].text, "abcde");
	assert_int_equal(res.rrs[42].len, 5);
	dns_result_clear(&res);
	free(p.buf);

	/* one record as large as rdlength allows, with a NUL inside */
	while (len + 256 <= sizeof(rd)) {
		rd[len] = 255;
		memset(rd + len + 1, 'x', 255);
		len += 256;
	}
	n = len / 256 * 255;
	rd[1] = '\0';
	pkt_start(&p, "big.test", 16);
	pkt_rr(&p, 16, 30, rd, len);
	dns_parse_answer(DNS_TXT, p.buf, (int)p.len, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrrs, 1);
	assert_int_equal(res.rrs[0].len, n);
	assert_true(res.rrs[0].len <= DNS_MAX_TXT);
	assert_int_equal(res.rrs[0].text[0], '\0');
	assert_int_equal(res.rrs[0].text[n - 1], 'x');
	assert_int_equal(res.rrs[0].text[n], '\0');
	dns_result_clear(&res);
	free(p.buf);
}

static void
test_parse_ttl(void **state)
{
	static const unsigned char	 p10[2] = { 0, 10 }, p20[2] = { 0, 20 };
	struct pkt			 p;
	struct dns_result		 res;
	unsigned char			 rd[300];
	size_t				 n;

	(void)state;
	pkt_start(&p, "mx.test", 15);
	n = rdata_name(rd, p10, 2, "mx1.test");
	pkt_rr(&p, 15, 300, rd, n);
	n = rdata_name(rd, p20, 2, "mx2.test");
	pkt_rr(&p, 15, 100, rd, n);
	dns_parse_answer(DNS_MX, p.buf, (int)p.len, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrrs, 2);
	assert_string_equal(res.rrs[0].text, "mx1.test");
	assert_int_equal(res.rrs[0].pref, 10);
	assert_int_equal(res.rrs[0].ttl, 100);		/* the RRset's */
	assert_string_equal(res.rrs[1].text, "mx2.test");
	assert_int_equal(res.rrs[1].pref, 20);
	assert_int_equal(res.rrs[1].ttl, 100);
	dns_result_clear(&res);
	free(p.buf);

	/* a TTL with the top bit set counts as 0 (RFC 2181) */
	pkt_start(&p, "a.test", 16);
	pkt_rr(&p, 16, 0x80000000UL, "\001x", 2);
	dns_parse_answer(DNS_TXT, p.buf, (int)p.len, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.rrs[0].ttl, 0);
	dns_result_clear(&res);
	free(p.buf);
}

static void
test_parse_names(void **state)
{
	static const unsigned char	 srv[6] = { 0, 1, 0, 2, 0, 25 };
	struct pkt			 p;
	struct dns_result		 res;
	unsigned char			 rd[300];
	size_t				 n;

	(void)state;
	pkt_start(&p, "alias.test", 5);
	n = rdata_name(rd, NULL, 0, "target.test");
	pkt_rr(&p, 5, 77, rd, n);
	dns_parse_answer(DNS_CNAME, p.buf, (int)p.len, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrrs, 1);
	assert_string_equal(res.rrs[0].text, "target.test");
	assert_int_equal(res.rrs[0].ttl, 77);
	dns_result_clear(&res);
	/* a CNAME parser sees no CNAME in an A answer */
	dns_parse_answer(DNS_A, p.buf, (int)p.len, &res);
	assert_int_equal(res.status, DNS_NODATA);
	dns_result_clear(&res);
	free(p.buf);

	pkt_start(&p, "zone.test", 2);
	n = rdata_name(rd, NULL, 0, "ns1.zone.test");
	pkt_rr(&p, 2, 3600, rd, n);
	n = rdata_name(rd, NULL, 0, "ns2.zone.test");
	pkt_rr(&p, 2, 3600, rd, n);
	dns_parse_answer(DNS_NS, p.buf, (int)p.len, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrrs, 2);
	assert_string_equal(res.rrs[0].text, "ns1.zone.test");
	assert_string_equal(res.rrs[1].text, "ns2.zone.test");
	assert_int_equal(res.rrs[1].ttl, 3600);
	dns_result_clear(&res);
	free(p.buf);

	pkt_start(&p, "_smtp._tcp.test", 33);
	n = rdata_name(rd, srv, 6, "mail.test");
	pkt_rr(&p, 33, 5, rd, n);
	dns_parse_answer(DNS_SRV, p.buf, (int)p.len, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_string_equal(res.rrs[0].text, "mail.test");
	assert_int_equal(res.rrs[0].pref, 1);
	assert_int_equal(res.rrs[0].weight, 2);
	assert_int_equal(res.rrs[0].port, 25);
	dns_result_clear(&res);
	free(p.buf);

	/* a CNAME pointing at itself: a compression loop */
	pkt_start(&p, "loop.test", 5);
	rd[0] = 0xc0;
	rd[1] = (unsigned char)(p.len + 12);	/* its own rdata */
	pkt_rr(&p, 5, 1, rd, 2);
	dns_parse_answer(DNS_CNAME, p.buf, (int)p.len, &res);
	assert_int_equal(res.status, DNS_BADRESP);
	assert_int_equal(res.nrrs, 0);
	assert_null(res.rrs);
	free(p.buf);

	dns_parse_answer(DNS_A, NULL, 0, &res);
	assert_int_equal(res.status, DNS_BADRESP);
	dns_parse_answer((enum dns_type)77, (const unsigned char *)"x", 1,
	    &res);
	assert_int_equal(res.status, DNS_ERROR);
}

/* Any status is fine; what matters is no crash and a coherent result. */
static void
parse_checked(enum dns_type t, const unsigned char *buf, size_t len)
{
	struct dns_result	 res;
	size_t			 i;

	dns_parse_answer(t, buf, (int)len, &res);
	if (res.status == DNS_OK) {
		assert_true(res.nrrs >= 1 && res.nrrs <= DNS_MAX_RRS);
		for (i = 0; i < res.nrrs; i++) {
			assert_non_null(res.rrs[i].text);
			assert_true(res.rrs[i].len <= DNS_MAX_TXT);
			assert_int_equal(res.rrs[i].text[res.rrs[i].len], '\0');
		}
	} else {
		assert_int_equal(res.nrrs, 0);
		assert_null(res.rrs);
	}
	dns_result_clear(&res);
}

static void
test_parse_corrupt(void **state)
{
	static const unsigned char	 p10[2] = { 0, 10 };
	static const unsigned char	 srv[6] = { 0, 1, 0, 2, 0, 25 };
	struct pkt			 p[6];
	unsigned char			 rd[300], *copy;
	size_t				 i, k, len, n;
	enum dns_type			 t;
	unsigned			 seed = 12345;

	(void)state;
	pkt_start(&p[0], "a.test", 1);
	pkt_rr(&p[0], 1, 9, "\300\000\002\001", 4);
	pkt_start(&p[1], "mx.test", 15);
	n = rdata_name(rd, p10, 2, "mx1.test");
	pkt_rr(&p[1], 15, 9, rd, n);
	pkt_rr(&p[1], 15, 9, rd, n);
	pkt_start(&p[2], "t.test", 16);
	pkt_rr(&p[2], 16, 9, "\003abc\002de", 7);
	pkt_start(&p[3], "c.test", 5);
	n = rdata_name(rd, NULL, 0, "target.test");
	pkt_rr(&p[3], 5, 9, rd, n);
	pkt_start(&p[4], "s.test", 33);
	n = rdata_name(rd, srv, 6, "mail.test");
	pkt_rr(&p[4], 33, 9, rd, n);
	pkt_start(&p[5], "1.2.0.192.in-addr.arpa", 12);
	n = rdata_name(rd, NULL, 0, "host.test");
	pkt_rr(&p[5], 12, 9, rd, n);

	for (i = 0; i < nitems(p); i++) {
		len = p[i].len;
		copy = xmalloc(len);
		for (t = DNS_A; t <= DNS_SRV; t++) {
			/* every truncation, in a buffer of exactly that size */
			for (k = 0; k < len; k++) {
				memcpy(copy, p[i].buf, k);
				parse_checked(t, copy, k);
			}
			/* random corruption of one to four bytes */
			for (k = 0; k < 500; k++) {
				memcpy(copy, p[i].buf, len);
				for (n = 0; n <= k % 4; n++)
					copy[rand_r(&seed) % len] =
					    (unsigned char)rand_r(&seed);
				parse_checked(t, copy, len);
			}
		}
		free(copy);
		free(p[i].buf);
	}
}

/* ---- live: dnsmasq ----------------------------------------------------- */

static struct {
	pid_t	 pid;
	int	 port;
	char	 dir[64];
	int	 missing;
} dnsmasq;

/* A port free on 127.0.0.1 for UDP and TCP at the time asked; 0 if none. */
static int
free_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len;
	int			 u, t, port = 0, tries;

	for (tries = 0; tries < 50 && port == 0; tries++) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		u = socket(AF_INET, SOCK_DGRAM, 0);
		t = socket(AF_INET, SOCK_STREAM, 0);
		len = sizeof(sin);
		if (u >= 0 && t >= 0 &&
		    bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		    getsockname(u, (struct sockaddr *)&sin, &len) == 0 &&
		    bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			port = ntohs(sin.sin_port);
		close(u);
		close(t);
	}
	return port;
}

static pid_t
spawn_dnsmasq(int port, const char *dir)
{
	char	 portarg[32], pidarg[128];
	char	*argv[] = {
		DNSMASQ, "--no-resolv", "--no-hosts", "--keep-in-foreground",
		"--log-facility=-",
		portarg, "--listen-address=127.0.0.1", "--bind-interfaces",
		"--conf-file=/dev/null", pidarg, "--local-ttl=60",
		"--local=/test/",
		"--host-record=host.test,192.0.2.10,2001:db8::10,300",
		"--host-record=two.test,192.0.2.21",
		"--host-record=two.test,192.0.2.22",
		"--host-record=v4only.test,192.0.2.30",
		"--mx-host=mx.test,mx1.test,10",
		"--mx-host=mx.test,mx2.test,20",
		"--txt-record=txt.test,v=spf1 ,-all",	/* no quotes here */
		"--txt-record=txt.test,second",
		"--txt-record=big.test," BIG_TXT,
		"--ptr-record=5.2.0.192.in-addr.arpa,ptr.test",
		"--cname=alias.test,host.test",
		"--srv-host=_smtp._tcp.srv.test,mail.test,25,5,60",
		"--address=/nx.test/",
		"--no-poll", "--no-poll",	/* for --user, --group */
		NULL,
	};
	pid_t	 pid, parent = getpid();
	int	 fd;

	snprintf(portarg, sizeof(portarg), "--port=%d", port);
	snprintf(pidarg, sizeof(pidarg), "--pid-file=%s/pid", dir);
	if ((pid = fork()) != 0)
		return pid;
	/* dies with us even if we crash; kept as long as it stays root */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != parent)
		_exit(127);
	if (geteuid() == 0) {		/* no change of credentials */
		argv[nitems(argv) - 3] = "--user=root";
		argv[nitems(argv) - 2] = "--group=root";
	}
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execv(DNSMASQ, argv);
	_exit(127);
}

/* 1 once dnsmasq answers a UDP query on port (any answer will do). */
static int
dnsmasq_answers(int port)
{
	struct sockaddr_in	 sin;
	struct pkt		 q;
	struct pollfd		 pfd;
	unsigned char		 buf[512];
	int			 fd, ok = 0;

	pkt_start(&q, "ready.test", 1);
	q.buf[2] = 0x01;	/* a query: QR clear, RD set */
	q.buf[3] = 0x00;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) >= 0 &&
	    sendto(fd, q.buf, q.len, 0, (struct sockaddr *)&sin,
	    sizeof(sin)) == (ssize_t)q.len) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		ok = poll(&pfd, 1, 100) == 1 && recv(fd, buf, sizeof(buf), 0) >=
		    12 && buf[0] == 0x12 && buf[1] == 0x34;
	}
	if (fd >= 0)
		close(fd);
	free(q.buf);
	return ok;
}

/* Start on a free port: 0 once it answers, -1 if it exited (port taken). */
static int
start_dnsmasq(void)
{
	int	 i, status;

	if ((dnsmasq.port = free_port()) == 0)
		return -1;
	if ((dnsmasq.pid = spawn_dnsmasq(dnsmasq.port, dnsmasq.dir)) == -1)
		return -1;
	for (i = 0; i < 50; i++) {	/* 50 x (100 ms poll or 20 ms) */
		if (waitpid(dnsmasq.pid, &status, WNOHANG) == dnsmasq.pid) {
			dnsmasq.pid = 0;
			return -1;
		}
		if (dnsmasq_answers(dnsmasq.port))
			return 0;
		usleep(20000);
	}
	kill(dnsmasq.pid, SIGKILL);
	waitpid(dnsmasq.pid, &status, 0);
	dnsmasq.pid = 0;
	return -1;
}

static void
stop_dnsmasq(void)
{
	char	 path[128];
	int	 status;

	if (dnsmasq.pid > 0) {
		kill(dnsmasq.pid, SIGTERM);
		waitpid(dnsmasq.pid, &status, 0);
		dnsmasq.pid = 0;
	}
	if (dnsmasq.dir[0] != '\0') {
		snprintf(path, sizeof(path), "%s/pid", dnsmasq.dir);
		unlink(path);
		rmdir(dnsmasq.dir);
		dnsmasq.dir[0] = '\0';
	}
}

static int
group_setup(void **state)
{
	int	 i;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (dns_global_init() == -1)
		return -1;
	if (access(DNSMASQ, X_OK) == -1) {
		dnsmasq.missing = 1;
		return 0;
	}
	snprintf(dnsmasq.dir, sizeof(dnsmasq.dir), "%s",
	    "/tmp/sluice-test-dns-XXXXXX");
	if (mkdtemp(dnsmasq.dir) == NULL)
		return -1;
	for (i = 0; i < 5; i++)
		if (start_dnsmasq() == 0)
			return 0;
	fprintf(stderr, "test_dns: dnsmasq did not start\n");
	stop_dnsmasq();
	return -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	stop_dnsmasq();
	dns_global_cleanup();
	return 0;
}

/* ---- live: loop, resolver and callback helpers ------------------------- */

struct ctx {
	struct event_base	*base;
	struct dns_resolver	*r;
};

struct reply {
	int			 calls;
	enum dns_status		 status;
	size_t			 nrrs;
	struct dns_rr		 rr[COPY_RRS];
	char			 text[COPY_RRS][COPY_TEXT];
	int			*done;		/* shared counter, or NULL */
};

static void
server_conf(struct conf_dns *cd, struct conf_dns_server *srv, int port,
    unsigned timeout, unsigned attempts)
{
	memset(cd, 0, sizeof(*cd));
	memset(srv, 0, sizeof(*srv));
	srv->family = AF_INET;
	srv->addr[0] = 127;
	srv->addr[3] = 1;
	srv->port = (uint16_t)port;
	cd->servers = srv;
	cd->nservers = 1;
	cd->timeout = timeout;
	cd->attempts = attempts;
}

static struct dns_resolver *
resolver_on(struct event_base *base, int port, unsigned timeout,
    unsigned attempts)
{
	struct conf_dns		 cd;
	struct conf_dns_server	 srv;
	struct dns_resolver	*r;
	char			 err[256];

	server_conf(&cd, &srv, port, timeout, attempts);
	if ((r = dns_resolver_new(base, &cd, err, sizeof(err))) == NULL)
		fail_msg("dns_resolver_new: %s", err);
	return r;
}

static int
setup_live(void **state)
{
	struct ctx	*c;

	*state = NULL;
	if (dnsmasq.missing)
		return 0;
	c = xcalloc(1, sizeof(*c));
	if ((c->base = event_base_new()) == NULL)
		return -1;
	c->r = resolver_on(c->base, dnsmasq.port, 2, 2);
	*state = c;
	return 0;
}

static int
teardown_live(void **state)
{
	struct ctx	*c = *state;

	if (c == NULL)
		return 0;
	dns_resolver_free(c->r);
	event_base_free(c->base);
	free(c);
	return 0;
}

static struct ctx *
live(void **state)
{
	if (*state == NULL)
		skip();
	return *state;
}

static void
expire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

/* Run the loop until *count >= want or ms pass; 1 if the count was met. */
static int
run_until(struct event_base *base, const int *count, int want, int ms)
{
	struct event	*t;
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };
	int		 expired = 0;

	t = evtimer_new(base, expire, &expired);
	assert_non_null(t);
	evtimer_add(t, &tv);
	while (*count < want && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return *count >= want;
}

static void
run_for(struct event_base *base, int ms)
{
	static const int	 never = 0;

	run_until(base, &never, 1, ms);
}

static void
on_reply(const struct dns_result *res, void *arg)
{
	struct reply	*rep = arg;
	size_t		 i, len;

	rep->calls++;
	rep->status = res->status;
	rep->nrrs = res->nrrs;
	if (res->status == DNS_OK)
		assert_true(res->nrrs > 0 && res->rrs != NULL);
	for (i = 0; i < res->nrrs && i < COPY_RRS; i++) {
		rep->rr[i] = res->rrs[i];
		len = res->rrs[i].len < COPY_TEXT - 1 ? res->rrs[i].len :
		    COPY_TEXT - 1;
		memcpy(rep->text[i], res->rrs[i].text, len);
		rep->text[i][len] = '\0';
		rep->rr[i].text = rep->text[i];
	}
	if (rep->done != NULL)
		(*rep->done)++;
}

static void
lookup(struct ctx *c, const char *name, enum dns_type type,
    struct reply *rep)
{
	memset(rep, 0, sizeof(*rep));
	assert_non_null(dns_query(c->r, name, type, on_reply, rep));
	assert_int_equal(rep->calls, 0);	/* never from dns_query() */
	if (!run_until(c->base, &rep->calls, 1, LOOP_MS))
		fail_msg("no answer for %s %s", name, dns_type_name(type));
	run_for(c->base, 10);			/* and only once */
	assert_int_equal(rep->calls, 1);
}

/* Index of the record with this text, failing if absent. */
static size_t
find_rr(const struct reply *rep, const char *text)
{
	size_t	 i;

	for (i = 0; i < rep->nrrs && i < COPY_RRS; i++)
		if (strcmp(rep->rr[i].text, text) == 0)
			return i;
	fail_msg("no record '%s' among %zu", text, rep->nrrs);
	return 0;
}

static void
expect_status(struct ctx *c, const char *name, enum dns_type type,
    enum dns_status want)
{
	struct reply	 rep;

	lookup(c, name, type, &rep);
	if (rep.status != want)
		fail_msg("%s %s: %s, expected %s", name, dns_type_name(type),
		    dns_status_name(rep.status), dns_status_name(want));
	assert_int_equal(rep.nrrs, 0);
}

/* ---- live: record types ------------------------------------------------ */

static void
test_live_a(void **state)
{
	struct ctx	*c = live(state);
	struct reply	 rep;

	lookup(c, "host.test", DNS_A, &rep);
	assert_int_equal(rep.status, DNS_OK);
	assert_int_equal(rep.nrrs, 1);
	assert_string_equal(rep.rr[0].text, "192.0.2.10");
	assert_int_equal(rep.rr[0].type, DNS_A);
	assert_int_equal(rep.rr[0].ttl, 300);
	lookup(c, "two.test.", DNS_A, &rep);
	assert_int_equal(rep.status, DNS_OK);
	assert_int_equal(rep.nrrs, 2);
	find_rr(&rep, "192.0.2.21");
	find_rr(&rep, "192.0.2.22");
}

static void
test_live_aaaa(void **state)
{
	struct ctx	*c = live(state);
	struct reply	 rep;

	lookup(c, "HOST.test", DNS_AAAA, &rep);
	assert_int_equal(rep.status, DNS_OK);
	assert_int_equal(rep.nrrs, 1);
	assert_string_equal(rep.rr[0].text, "2001:db8::10");
	assert_int_equal(rep.rr[0].type, DNS_AAAA);
}

static void
test_live_mx(void **state)
{
	struct ctx	*c = live(state);
	struct reply	 rep;
	size_t		 i;

	lookup(c, "mx.test", DNS_MX, &rep);
	assert_int_equal(rep.status, DNS_OK);
	assert_int_equal(rep.nrrs, 2);
	i = find_rr(&rep, "mx1.test");
	assert_int_equal(rep.rr[i].pref, 10);
	assert_int_equal(rep.rr[i].type, DNS_MX);
	assert_int_equal(rep.rr[i].ttl, 60);
	i = find_rr(&rep, "mx2.test");
	assert_int_equal(rep.rr[i].pref, 20);
}

static void
test_live_txt(void **state)
{
	struct ctx	*c = live(state);
	struct reply	 rep;
	size_t		 i;

	lookup(c, "txt.test", DNS_TXT, &rep);
	assert_int_equal(rep.status, DNS_OK);
	assert_int_equal(rep.nrrs, 2);
	i = find_rr(&rep, "v=spf1 -all");	/* two strings, one record */
	assert_int_equal(rep.rr[i].len, 11);
	assert_int_equal(rep.rr[i].type, DNS_TXT);
	find_rr(&rep, "second");
}

/* 2000 bytes of TXT: truncated over UDP, c-ares asks again over TCP. */
static void
test_live_txt_tcp(void **state)
{
	struct ctx	*c = live(state);
	struct reply	 rep;
	size_t		 i;

	lookup(c, "big.test", DNS_TXT, &rep);
	assert_int_equal(rep.status, DNS_OK);
	assert_int_equal(rep.nrrs, 1);
	assert_int_equal(rep.rr[0].len, 2000);
	for (i = 0; i < 2000; i++)
		assert_int_equal(rep.text[0][i], 'b');
}

static void
test_live_ptr(void **state)
{
	struct ctx		*c = live(state);
	struct reply		 rep;
	struct sockaddr_in	 sin;
	char			 name[DNS_NAME_LEN];

	lookup(c, "5.2.0.192.in-addr.arpa", DNS_PTR, &rep);
	assert_int_equal(rep.status, DNS_OK);
	assert_int_equal(rep.nrrs, 1);
	assert_string_equal(rep.rr[0].text, "ptr.test");
	assert_int_equal(rep.rr[0].type, DNS_PTR);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.10", &sin.sin_addr);
	assert_int_equal(dns_reverse_name((struct sockaddr *)&sin, name,
	    sizeof(name)), 0);
	lookup(c, name, DNS_PTR, &rep);
	assert_int_equal(rep.status, DNS_OK);
	assert_string_equal(rep.rr[0].text, "host.test");
}

static void
test_live_cname(void **state)
{
	struct ctx	*c = live(state);
	struct reply	 rep;

	lookup(c, "alias.test", DNS_CNAME, &rep);
	assert_int_equal(rep.status, DNS_OK);
	assert_int_equal(rep.nrrs, 1);
	assert_string_equal(rep.rr[0].text, "host.test");
	assert_int_equal(rep.rr[0].type, DNS_CNAME);
	/* an A query follows the alias */
	lookup(c, "alias.test", DNS_A, &rep);
	assert_int_equal(rep.status, DNS_OK);
	assert_int_equal(rep.nrrs, 1);
	assert_string_equal(rep.rr[0].text, "192.0.2.10");
}

static void
test_live_srv(void **state)
{
	struct ctx	*c = live(state);
	struct reply	 rep;

	lookup(c, "_smtp._tcp.srv.test", DNS_SRV, &rep);
	assert_int_equal(rep.status, DNS_OK);
	assert_int_equal(rep.nrrs, 1);
	assert_string_equal(rep.rr[0].text, "mail.test");
	assert_int_equal(rep.rr[0].type, DNS_SRV);
	assert_int_equal(rep.rr[0].port, 25);
	assert_int_equal(rep.rr[0].pref, 5);
	assert_int_equal(rep.rr[0].weight, 60);
}

static void
test_live_errors(void **state)
{
	struct ctx	*c = live(state);

	expect_status(c, "foo.nx.test", DNS_A, DNS_NXDOMAIN);
	expect_status(c, "unknown.test", DNS_MX, DNS_NXDOMAIN);
	expect_status(c, "v4only.test", DNS_AAAA, DNS_NODATA);
	expect_status(c, "host.test", DNS_MX, DNS_NODATA);
	expect_status(c, "host.test", DNS_TXT, DNS_NODATA);
	expect_status(c, "elsewhere.invalid", DNS_A, DNS_SERVFAIL);
}

/* Invalid names and types: DNS_ERROR, later, from the loop. */
static void
test_invalid_query(void **state)
{
	struct ctx	*c = live(state);
	char		 name[300];

	expect_status(c, "", DNS_A, DNS_ERROR);
	expect_status(c, "a..b", DNS_A, DNS_ERROR);
	expect_status(c, "bad name.test", DNS_TXT, DNS_ERROR);
	expect_status(c, "ctl\r\n.test", DNS_MX, DNS_ERROR);
	expect_status(c, long_name(name, 254), DNS_A, DNS_ERROR);
	expect_status(c, "host.test", (enum dns_type)99, DNS_ERROR);
}

/* ---- live: timeouts and unreachable servers ---------------------------- */

static int
udp_socket(int *port)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void
test_timeout(void **state)
{
	struct event_base	*base;
	struct dns_resolver	*r;
	struct reply		 rep;
	uint64_t		 t0, ms;
	int			 fd, port;

	(void)state;
	fd = udp_socket(&port);		/* bound, never read */
	base = event_base_new();
	r = resolver_on(base, port, 1, 1);
	memset(&rep, 0, sizeof(rep));
	t0 = mono_msec();
	dns_query(r, "slow.test", DNS_A, on_reply, &rep);
	assert_true(run_until(base, &rep.calls, 1, LOOP_MS));
	ms = mono_msec() - t0;
	assert_int_equal(rep.status, DNS_TIMEOUT);
	if (ms < 900 || ms > 2000)
		fail_msg("timeout after %llu ms, expected about 1000",
		    (unsigned long long)ms);
	run_for(base, 10);
	assert_int_equal(rep.calls, 1);
	dns_resolver_free(r);
	event_base_free(base);
	close(fd);
}

/* The first name /etc/hosts gives 127.0.0.1, or 0 if none. */
static int
hosts_name_of_loopback(char *buf, size_t len)
{
	FILE	*f = fopen("/etc/hosts", "r");
	char	 line[512], addr[64], name[256];
	int	 found = 0;

	if (f == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%63s %255s", addr, name) == 2 &&
		    strcmp(addr, "127.0.0.1") == 0) {
			snprintf(buf, len, "%s", name);
			found = 1;
		}
	fclose(f);
	return found;
}

/* An address's name, with a server that never answers: from the hosts
   file at once when it is on, a timeout when it is off. */
static void
test_addr_hosts_file(void **state)
{
	struct event_base	*base;
	struct dns_resolver	*r;
	struct conf_dns		 cd;
	struct conf_dns_server	 srv;
	struct sockaddr_in	 sin;
	struct reply		 rep;
	char			 want[256], err[256];
	uint64_t		 t0, ms;
	int			 fd, port;

	(void)state;
	if (!hosts_name_of_loopback(want, sizeof(want)))
		skip();
	fd = udp_socket(&port);		/* bound, never read */
	base = event_base_new();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int hosts = 1; hosts >= 0; hosts--) {
		server_conf(&cd, &srv, port, 1, 1);
		cd.hosts_file = hosts;
		if ((r = dns_resolver_new(base, &cd, err, sizeof(err))) == NULL)
			fail_msg("dns_resolver_new: %s", err);
		memset(&rep, 0, sizeof(rep));
		t0 = mono_msec();
		assert_non_null(dns_query_addr(r, (struct sockaddr *)&sin,
		    on_reply, &rep));
		assert_int_equal(rep.calls, 0);	/* never from the call */
		assert_true(run_until(base, &rep.calls, 1, LOOP_MS));
		ms = mono_msec() - t0;
		if (hosts) {
			assert_int_equal(rep.status, DNS_OK);
			assert_string_equal(rep.rr[0].text, want);
			assert_int_equal(rep.rr[0].type, DNS_PTR);
			if (ms > 500)
				fail_msg("hosts file answer after %llu ms",
				    (unsigned long long)ms);
		} else {
			/* c-ares reports a failed last step as not found */
			assert_int_equal(rep.status, DNS_NXDOMAIN);
			if (ms < 900)
				fail_msg("timeout after %llu ms, expected "
				    "about 1000", (unsigned long long)ms);
		}
		run_for(base, 10);
		assert_int_equal(rep.calls, 1);
		dns_resolver_free(r);
	}
	event_base_free(base);
	close(fd);
}

/* An IPv4-mapped IPv6 client is looked up as IPv4 (in-addr.arpa). */
static void
test_live_addr(void **state)
{
	struct ctx		*c = live(state);
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	struct sockaddr		*sa[2];
	struct reply		 rep;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.10", &sin.sin_addr);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:192.0.2.10", &sin6.sin6_addr);
	sa[0] = (struct sockaddr *)&sin;
	sa[1] = (struct sockaddr *)&sin6;
	for (int i = 0; i < 2; i++) {
		memset(&rep, 0, sizeof(rep));
		assert_non_null(dns_query_addr(c->r, sa[i], on_reply, &rep));
		assert_true(run_until(c->base, &rep.calls, 1, LOOP_MS));
		assert_int_equal(rep.status, DNS_OK);
		assert_string_equal(rep.rr[0].text, "host.test");
	}
	inet_pton(AF_INET, "192.0.2.99", &sin.sin_addr);	/* no PTR */
	memset(&rep, 0, sizeof(rep));
	dns_query_addr(c->r, sa[0], on_reply, &rep);
	assert_true(run_until(c->base, &rep.calls, 1, LOOP_MS));
	assert_int_equal(rep.status, DNS_NXDOMAIN);
	assert_int_equal(rep.nrrs, 0);
}

/* The names of a hostent: h_name first, then the other valid aliases. */
static void
test_host_names(void **state)
{
	char			*aliases[] = { "mx.example", "a.example",
				    "bad name", "b.example", NULL };
	struct hostent		 he = { .h_name = "mx.example",
				    .h_aliases = aliases };
	struct dns_result	 res = { 0 };

	(void)state;
	dns_result_host_names(&res, &he);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrrs, 3);
	assert_string_equal(res.rrs[0].text, "mx.example");
	assert_string_equal(res.rrs[1].text, "a.example");
	assert_string_equal(res.rrs[2].text, "b.example");
	he.h_name = "ctl\r\nname";		/* never handed on */
	dns_result_host_names(&res, &he);
	assert_int_equal(res.status, DNS_NXDOMAIN);
	assert_int_equal(res.nrrs, 0);
	dns_result_host_names(&res, NULL);
	assert_int_equal(res.status, DNS_NXDOMAIN);
	dns_result_clear(&res);
}

/* Nobody on the port: ICMP port unreachable, reported quickly. */
static void
test_unreachable(void **state)
{
	struct event_base	*base;
	struct dns_resolver	*r;
	struct reply		 rep;
	uint64_t		 t0;
	int			 fd, port;

	(void)state;
	fd = udp_socket(&port);
	close(fd);
	base = event_base_new();
	r = resolver_on(base, port, 3, 1);
	memset(&rep, 0, sizeof(rep));
	t0 = mono_msec();
	dns_query(r, "nobody.test", DNS_A, on_reply, &rep);
	assert_true(run_until(base, &rep.calls, 1, LOOP_MS));
	assert_true(rep.status == DNS_SERVFAIL || rep.status == DNS_TIMEOUT);
	if (rep.status == DNS_SERVFAIL)
		assert_true(mono_msec() - t0 < 2500);
	dns_resolver_free(r);
	event_base_free(base);
}

/* ---- live: cancel, re-entry, many queries, freeing --------------------- */

static void
test_cancel_before_answer(void **state)
{
	struct ctx		*c = live(state);
	struct reply		 rep, other, bad;
	struct dns_query	*q;

	memset(&rep, 0, sizeof(rep));
	memset(&other, 0, sizeof(other));
	memset(&bad, 0, sizeof(bad));
	q = dns_query(c->r, "host.test", DNS_A, on_reply, &rep);
	dns_cancel(q);
	q = dns_query(c->r, "bad..name", DNS_A, on_reply, &bad);
	dns_cancel(q);		/* never sent, result already waiting */
	dns_cancel(NULL);
	dns_query(c->r, "mx.test", DNS_MX, on_reply, &other);
	assert_true(run_until(c->base, &other.calls, 1, LOOP_MS));
	run_for(c->base, 200);
	assert_int_equal(other.status, DNS_OK);
	assert_int_equal(rep.calls, 0);
	assert_int_equal(bad.calls, 0);
}

struct pair {
	struct dns_query	*q[2];
	int			 calls[2];
	int			 total;
};

struct pair_arg {
	struct pair	*p;
	int		 me;
};

/* Whichever answer comes first cancels the other. */
static void
on_pair(const struct dns_result *res, void *arg)
{
	struct pair_arg	*a = arg;
	struct pair	*p = a->p;

	assert_int_equal(res->status, DNS_OK);
	p->calls[a->me]++;
	p->total++;
	p->q[a->me] = NULL;
	dns_cancel(p->q[!a->me]);
	p->q[!a->me] = NULL;
}

static void
test_cancel_in_callback(void **state)
{
	struct ctx	*c = live(state);
	struct pair	 p;
	struct pair_arg	 a[2] = { { &p, 0 }, { &p, 1 } };
	int		 round;

	for (round = 0; round < 20; round++) {
		memset(&p, 0, sizeof(p));
		p.q[0] = dns_query(c->r, "host.test", DNS_A, on_pair, &a[0]);
		p.q[1] = dns_query(c->r, "host.test", DNS_A, on_pair, &a[1]);
		assert_true(run_until(c->base, &p.total, 1, LOOP_MS));
		run_for(c->base, 20);
		assert_int_equal(p.total, 1);
		assert_int_equal(p.calls[0] + p.calls[1], 1);
	}
}

struct cross {
	struct dns_query	*victim;
	int			 calls;
};

static void
on_cross(const struct dns_result *res, void *arg)
{
	struct cross	*x = arg;

	x->calls++;
	dns_cancel(x->victim);		/* a query of another resolver */
	x->victim = NULL;
}

static void
test_cancel_other_resolver(void **state)
{
	struct ctx		*c = live(state);
	struct dns_resolver	*silent;
	struct cross		 x;
	struct reply		 never;
	int			 fd, port;

	fd = udp_socket(&port);
	silent = resolver_on(c->base, port, 5, 1);
	memset(&never, 0, sizeof(never));
	memset(&x, 0, sizeof(x));
	x.victim = dns_query(silent, "slow.test", DNS_A, on_reply, &never);
	dns_query(c->r, "host.test", DNS_A, on_cross, &x);
	assert_true(run_until(c->base, &x.calls, 1, LOOP_MS));
	run_for(c->base, 50);
	assert_int_equal(never.calls, 0);
	dns_resolver_free(silent);	/* frees the cancelled query */
	run_for(c->base, 20);
	assert_int_equal(never.calls, 0);
	close(fd);
}

struct chain {
	struct dns_resolver	*r;
	int			 step;
	char			 last[DNS_NAME_LEN];
	enum dns_status		 status;
};

/* CNAME of alias.test, then A of its target, then PTR of the address. */
static void
on_chain(const struct dns_result *res, void *arg)
{
	static const enum dns_type	 next[] = { DNS_A, DNS_PTR };
	struct chain			*ch = arg;
	struct sockaddr_in		 sin;
	char				 name[DNS_NAME_LEN];

	ch->status = res->status;
	if (res->status != DNS_OK)
		return;
	snprintf(ch->last, sizeof(ch->last), "%s", res->rrs[0].text);
	if (ch->step >= 2) {
		ch->step++;
		return;
	}
	snprintf(name, sizeof(name), "%s", res->rrs[0].text);
	if (next[ch->step] == DNS_PTR) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		inet_pton(AF_INET, res->rrs[0].text, &sin.sin_addr);
		dns_reverse_name((struct sockaddr *)&sin, name, sizeof(name));
	}
	dns_query(ch->r, name, next[ch->step++], on_chain, ch);
}

static void
test_query_in_callback(void **state)
{
	struct ctx	*c = live(state);
	struct chain	 ch;

	memset(&ch, 0, sizeof(ch));
	ch.r = c->r;
	dns_query(c->r, "alias.test", DNS_CNAME, on_chain, &ch);
	assert_true(run_until(c->base, &ch.step, 3, LOOP_MS));
	assert_int_equal(ch.status, DNS_OK);
	assert_string_equal(ch.last, "host.test");
}

static void
on_count(const struct dns_result *res, void *arg)
{
	int	*counts = arg;

	counts[res->status]++;
}

static void
test_many(void **state)
{
	static const struct {
		const char	*name;
		enum dns_type	 type;
		enum dns_status	 want;
	} q[] = {
		{ "host.test", DNS_A, DNS_OK },
		{ "host.test", DNS_AAAA, DNS_OK },
		{ "mx.test", DNS_MX, DNS_OK },
		{ "txt.test", DNS_TXT, DNS_OK },
		{ "x.nx.test", DNS_A, DNS_NXDOMAIN },
		{ "v4only.test", DNS_AAAA, DNS_NODATA },
		{ "_smtp._tcp.srv.test", DNS_SRV, DNS_OK },
		{ "big.test", DNS_TXT, DNS_OK },	/* over TCP */
	};
	struct ctx	*c = live(state);
	int		 counts[DNS_ERROR + 1], want[DNS_ERROR + 1], total = 0;
	int		 i, n = 200;

	memset(counts, 0, sizeof(counts));
	memset(want, 0, sizeof(want));
	for (i = 0; i < n; i++) {
		dns_query(c->r, q[i % nitems(q)].name, q[i % nitems(q)].type,
		    on_count, counts);
		want[q[i % nitems(q)].want]++;
	}
	for (i = 0; i < LOOP_MS / 10 && total < n; i++) {
		run_for(c->base, 10);
		total = counts[DNS_OK] + counts[DNS_NXDOMAIN] +
		    counts[DNS_NODATA] + counts[DNS_SERVFAIL] +
		    counts[DNS_TIMEOUT] + counts[DNS_REFUSED] +
		    counts[DNS_BADRESP] + counts[DNS_ERROR];
	}
	run_for(c->base, 20);
	assert_int_equal(total, n);
	assert_memory_equal(counts, want, sizeof(counts));
}

static void
test_free_pending(void **state)
{
	struct ctx	*c = live(state);
	struct reply	 rep[10];
	int		 i;

	memset(rep, 0, sizeof(rep));
	for (i = 0; i < 10; i++)
		dns_query(c->r, i % 2 ? "host.test" : "bad..name", DNS_A,
		    on_reply, &rep[i]);
	dns_resolver_free(c->r);
	c->r = NULL;
	run_for(c->base, 200);
	for (i = 0; i < 10; i++)
		assert_int_equal(rep[i].calls, 0);
}

struct freer {
	struct ctx	*c;
	int		 calls;
};

static void
on_free_resolver(const struct dns_result *res, void *arg)
{
	struct freer	*f = arg;

	f->calls++;
	dns_resolver_free(f->c->r);
	f->c->r = NULL;
}

/* The first answer frees the resolver: nobody else hears back. */
static void
test_free_in_callback(void **state)
{
	struct ctx	*c = live(state);
	struct freer	 f;
	int		 i;

	memset(&f, 0, sizeof(f));
	f.c = c;
	for (i = 0; i < 30; i++)
		dns_query(c->r, i % 3 ? "mx.test" : "host.test",
		    i % 3 ? DNS_MX : DNS_A, on_free_resolver, &f);
	assert_true(run_until(c->base, &f.calls, 1, LOOP_MS));
	run_for(c->base, 200);
	assert_int_equal(f.calls, 1);
	assert_null(c->r);
}

static void
test_default_resolver(void **state)
{
	struct event_base	*base;
	struct dns_resolver	*r;
	struct conf_dns		 cd;
	char			 err[256];

	(void)state;
	base = event_base_new();
	r = dns_resolver_new(base, NULL, err, sizeof(err));
	if (r == NULL)
		fail_msg("%s", err);
	dns_resolver_free(r);
	memset(&cd, 0, sizeof(cd));	/* zero fields mean defaults */
	r = dns_resolver_new(base, &cd, err, sizeof(err));
	assert_non_null(r);
	dns_resolver_free(r);
	dns_resolver_free(NULL);
	event_base_free(base);
}

#define LIVE(f)	cmocka_unit_test_setup_teardown(f, setup_live, teardown_live)

int
main(void)
{
	const char		*only = getenv("TEST_DNS_ONLY");
	const struct CMUnitTest	 tests[] = {
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_reverse_v4),
		cmocka_unit_test(test_reverse_v6),
		cmocka_unit_test(test_dnsbl_label),
		cmocka_unit_test(test_parse_many_a),
		cmocka_unit_test(test_parse_txt_bounds),
		cmocka_unit_test(test_parse_ttl),
		cmocka_unit_test(test_parse_names),
		cmocka_unit_test(test_parse_corrupt),
		cmocka_unit_test(test_default_resolver),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_addr_hosts_file),
		cmocka_unit_test(test_host_names),
		cmocka_unit_test(test_unreachable),
		LIVE(test_live_a),
		LIVE(test_live_aaaa),
		LIVE(test_live_mx),
		LIVE(test_live_txt),
		LIVE(test_live_txt_tcp),
		LIVE(test_live_ptr),
		LIVE(test_live_addr),
		LIVE(test_live_cname),
		LIVE(test_live_srv),
		LIVE(test_live_errors),
		LIVE(test_invalid_query),
		LIVE(test_cancel_before_answer),
		LIVE(test_cancel_in_callback),
		LIVE(test_cancel_other_resolver),
		LIVE(test_query_in_callback),
		LIVE(test_many),
		LIVE(test_free_pending),
		LIVE(test_free_in_callback),
	};

	if (only != NULL)	/* TEST_DNS_ONLY='test_live_*' */
		cmocka_set_test_filter(only);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
