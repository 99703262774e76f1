/*
 * proxy_proto.c - PROXY protocol v1 and v2 parsing (proxy_proto.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proxy_proto.h"

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* port - 1..5 digits, no leading zero (but "0"), at most 65535 */
static int
port(const char *s, uint16_t *out)
{
	unsigned long v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int
set_addr(struct sockaddr_storage *ss, int family, const char *text,
    uint16_t p)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		char back[INET_ADDRSTRLEN];

		sin->sin_family = AF_INET;
		sin->sin_port = htons(p);
		if (inet_pton(AF_INET, text, &sin->sin_addr) != 1)
			return -1;
		/* canonical form only: no "010.1.1.1" lookalikes */
		inet_ntop(AF_INET, &sin->sin_addr, back, sizeof(back));
		return strcmp(back, text) == 0 ? 0 : -1;
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(p);
	return inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1 ? 0 : -1;
}

static enum proxy_result
parse_v1(const unsigned char *p, size_t n, struct proxy_hdr *h,
    const char **why)
{
	char line[PROXY_V1_MAX + 1], *f[6], *save = NULL;
	const unsigned char *lf = memchr(p, '\n', n < PROXY_V1_MAX ? n :
	    PROXY_V1_MAX);
	size_t len, nf = 0;
	uint16_t sp, dp;
	int fam;

	if (lf == NULL) {
		if (n >= PROXY_V1_MAX) {
			*why = "PROXY v1 line longer than 107 bytes";
			return PROXY_BAD;
		}
		return PROXY_MORE;
	}
	len = (size_t)(lf - p) + 1;
	if (len < 2 || lf[-1] != '\r') {
		*why = "PROXY v1 line not ended by CRLF";
		return PROXY_BAD;
	}
	memcpy(line, p, len - 2);
	line[len - 2] = '\0';
	if (memchr(line, '\0', len - 2) != NULL || strstr(line, "  ") ||
	    line[len - 3] == ' ') {
		*why = "malformed PROXY v1 line";
		return PROXY_BAD;
	}
	for (char *t = strtok_r(line, " ", &save); t != NULL;
	    t = strtok_r(NULL, " ", &save))
		if (nf++ < 6)
			f[nf - 1] = t;
	h->len = len;
	h->version = 1;
	if (nf >= 2 && strcmp(f[1], "UNKNOWN") == 0) {
		h->local = 1;		/* the rest of the line is ignored */
		return PROXY_OK;
	}
	if (nf != 6 || strcmp(f[0], "PROXY") != 0) {
		*why = "malformed PROXY v1 line";
		return PROXY_BAD;
	}
	if (strcmp(f[1], "TCP4") == 0)
		fam = AF_INET;
	else if (strcmp(f[1], "TCP6") == 0)
		fam = AF_INET6;
	else {
		*why = "PROXY v1: unknown protocol";
		return PROXY_BAD;
	}
	if (port(f[4], &sp) == -1 || port(f[5], &dp) == -1 ||
	    set_addr(&h->src, fam, f[2], sp) == -1 ||
	    set_addr(&h->dst, fam, f[3], dp) == -1) {
		*why = "PROXY v1: bad address or port";
		return PROXY_BAD;
	}
	return PROXY_OK;
}

static void
set_bin(struct sockaddr_storage *ss, int family, const unsigned char *a,
    const unsigned char *p)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a, 4);
		memcpy(&sin->sin_port, p, 2);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a, 16);
		memcpy(&sin6->sin6_port, p, 2);
	}
}

static enum proxy_result
parse_v2(const unsigned char *p, size_t n, struct proxy_hdr *h,
    const char **why)
{
	size_t len;
	unsigned cmd, fam;

	if (n < 16)
		return PROXY_MORE;
	if ((p[12] >> 4) != 2) {
		*why = "PROXY v2: unsupported version";
		return PROXY_BAD;
	}
	cmd = p[12] & 15;
	fam = p[13];
	len = (size_t)p[14] << 8 | p[15];
	if (cmd > 1) {
		*why = "PROXY v2: unknown command";
		return PROXY_BAD;
	}
	if (16 + len > PROXY_V2_MAX) {
		*why = "PROXY v2: header too long";
		return PROXY_BAD;
	}
	if (n < 16 + len)
		return PROXY_MORE;
	h->len = 16 + len;
	h->version = 2;
	if (cmd == 0) {			/* LOCAL: the proxy itself */
		h->local = 1;
		return PROXY_OK;
	}
	if (fam == 0x11 && len >= 12) {		/* TCP over IPv4 */
		set_bin(&h->src, AF_INET, p + 16, p + 24);
		set_bin(&h->dst, AF_INET, p + 20, p + 26);
		return PROXY_OK;
	}
	if (fam == 0x21 && len >= 36) {		/* TCP over IPv6 */
		set_bin(&h->src, AF_INET6, p + 16, p + 48);
		set_bin(&h->dst, AF_INET6, p + 32, p + 50);
		return PROXY_OK;
	}
	*why = fam == 0x11 || fam == 0x21 ? "PROXY v2: address block too "
	    "short" : "PROXY v2: not TCP over IPv4 or IPv6";
	return PROXY_BAD;
}

enum proxy_result
proxy_parse(const unsigned char *p, size_t n, struct proxy_hdr *h,
    const char **why)
{
	static const char v1[] = "PROXY ";

	memset(h, 0, sizeof(*h));
	*why = NULL;
	if (n == 0)
		return PROXY_MORE;
	if (p[0] == v2_sig[0]) {
		size_t k = n < sizeof(v2_sig) ? n : sizeof(v2_sig);
		if (memcmp(p, v2_sig, k) != 0) {
			*why = "not a PROXY v2 signature";
			return PROXY_BAD;
		}
		return k < sizeof(v2_sig) ? PROXY_MORE : parse_v2(p, n, h, why);
	}
	size_t k = n < sizeof(v1) - 1 ? n : sizeof(v1) - 1;
	if (memcmp(p, v1, k) != 0) {
		*why = "no PROXY header";
		return PROXY_BAD;
	}
	return k < sizeof(v1) - 1 ? PROXY_MORE : parse_v1(p, n, h, why);
}
