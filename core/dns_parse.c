/*
 * dns_parse.c - a raw DNS answer into struct dns_result
 *
 * API: dns_parse_answer(), dns_result_clear(); see dns.h.
 * Record data is read by c-ares' own parsers (ares_parse_*_reply). CNAME,
 * and the TTLs those parsers drop, come from a bounds-checked walk over the
 * answer section; the TTL of an RRset is the smallest of its records.
 * Whatever the answer holds, the result keeps at most DNS_MAX_RRS records
 * and DNS_MAX_TXT bytes per TXT record. TXT bytes are kept as they came
 * (they may hold NULs or control bytes: use rr->len); names are as c-ares
 * expands them (unusual bytes escaped as \DDD).
 * Ownership: the result owns its records and texts: dns_result_clear().
 * Errors: in res->status: DNS_BADRESP for a malformed answer, DNS_NODATA
 * when it holds no record of the type asked for.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netdb.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "dns.h"
#include "util.h"

#define HDR_LEN		12	/* id, flags, 4 counts */
#define RR_FIXED	10	/* type, class, ttl, rdlength */
#define CLASS_IN	1

typedef int (*parse_fn)(const unsigned char *, int, struct dns_result *);
typedef int (*rr_visit)(const unsigned char *abuf, int alen,
    const unsigned char *rdata, unsigned ttl, void *ctx);

static unsigned	 get16(const unsigned char *);
static unsigned	 get_ttl(const unsigned char *);
static int	 skip_name(const unsigned char *, int, int *);
static int	 answer_walk(const unsigned char *, int, int, rr_visit,
		    void *);
static int	 min_ttl(const unsigned char *, int, const unsigned char *,
		    unsigned, void *);
static unsigned	 rrset_ttl(const unsigned char *, int, enum dns_type);
static struct dns_rr *add_text(struct dns_result *, enum dns_type, unsigned,
		    const char *, size_t);
static void	 txt_append(struct dns_rr *, const unsigned char *, size_t);
static int	 add_names(struct dns_result *, enum dns_type, unsigned,
		    struct hostent *);
static int	 parse_a(const unsigned char *, int, struct dns_result *);
static int	 parse_aaaa(const unsigned char *, int, struct dns_result *);
static int	 parse_mx(const unsigned char *, int, struct dns_result *);
static int	 parse_txt(const unsigned char *, int, struct dns_result *);
static int	 parse_ptr(const unsigned char *, int, struct dns_result *);
static int	 visit_cname(const unsigned char *, int, const unsigned char *,
		    unsigned, void *);
static int	 parse_cname(const unsigned char *, int, struct dns_result *);
static int	 parse_ns(const unsigned char *, int, struct dns_result *);
static int	 parse_srv(const unsigned char *, int, struct dns_result *);

static const parse_fn parsers[] = {
	[DNS_A] = parse_a,
	[DNS_AAAA] = parse_aaaa,
	[DNS_MX] = parse_mx,
	[DNS_TXT] = parse_txt,
	[DNS_PTR] = parse_ptr,
	[DNS_CNAME] = parse_cname,
	[DNS_NS] = parse_ns,
	[DNS_SRV] = parse_srv,
};

static unsigned
get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* RFC 2181 8: a TTL with the top bit set counts as zero. */
static unsigned
get_ttl(const unsigned char *p)
{
	unsigned long	 t;

	t = (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
	    (unsigned long)p[2] << 8 | p[3];
	return t > 0x7fffffffUL ? 0 : (unsigned)t;
}

/* Step *off over an encoded name (labels, then 0 or a pointer). */
static int
skip_name(const unsigned char *abuf, int alen, int *off)
{
	int	 o = *off;

	while (o < alen) {
		if (abuf[o] == 0) {
			*off = o + 1;
			return 0;
		}
		if ((abuf[o] & 0xc0) == 0xc0) {
			if (o + 2 > alen)
				return -1;
			*off = o + 2;
			return 0;
		}
		if ((abuf[o] & 0xc0) != 0)
			return -1;
		o += 1 + abuf[o];
	}
	return -1;
}

/* Visit each answer RR of class IN and the given type; -1: malformed. */
static int
answer_walk(const unsigned char *abuf, int alen, int code, rr_visit visit,
    void *ctx)
{
	unsigned	 qd, an, i, rdlen;
	int		 off = HDR_LEN;

	if (abuf == NULL || alen < HDR_LEN)
		return -1;
	qd = get16(abuf + 4);
	an = get16(abuf + 6);
	for (i = 0; i < qd; i++) {
		if (skip_name(abuf, alen, &off) == -1 || alen - off < 4)
			return -1;
		off += 4;
	}
	for (i = 0; i < an; i++) {
		if (skip_name(abuf, alen, &off) == -1 || alen - off < RR_FIXED)
			return -1;
		rdlen = get16(abuf + off + 8);
		if (rdlen > (unsigned)(alen - off - RR_FIXED))
			return -1;
		if ((int)get16(abuf + off) == code &&
		    get16(abuf + off + 2) == CLASS_IN &&
		    visit(abuf, alen, abuf + off + RR_FIXED,
		    get_ttl(abuf + off + 4), ctx) == -1)
			return 0;	/* the visitor has had enough */
		off += RR_FIXED + (int)rdlen;
	}
	return 0;
}

static int
min_ttl(const unsigned char *abuf, int alen, const unsigned char *rdata,
    unsigned ttl, void *ctx)
{
	unsigned	*min = ctx;

	(void)abuf;
	(void)alen;
	(void)rdata;
	if (ttl < *min)
		*min = ttl;
	return 0;
}

/* The TTL of the answer's RRset of this type; 0 if it cannot be told. */
static unsigned
rrset_ttl(const unsigned char *abuf, int alen, enum dns_type type)
{
	unsigned	 min = UINT_MAX;

	if (answer_walk(abuf, alen, dns_type_code(type), min_ttl, &min) == -1
	    || min == UINT_MAX)
		return 0;
	return min;
}

/* A new record holding a copy of text; NULL once DNS_MAX_RRS are kept. */
static struct dns_rr *
add_text(struct dns_result *res, enum dns_type type, unsigned ttl,
    const char *text, size_t len)
{
	struct dns_rr	*rr;
	size_t		 n = res->nrrs;

	if (n >= DNS_MAX_RRS)
		return NULL;
	if ((n & (n - 1)) == 0)		/* 0, 1, 2, 4...: grow to double */
		res->rrs = xreallocarray(res->rrs, n ? n * 2 : 1,
		    sizeof(*res->rrs));
	rr = &res->rrs[res->nrrs++];
	memset(rr, 0, sizeof(*rr));
	rr->type = type;
	rr->ttl = ttl;
	rr->text = xmalloc(len + 1);
	memcpy(rr->text, text, len);
	rr->text[len] = '\0';
	rr->len = len;
	return rr;
}

/* Append one character-string to a TXT record, up to DNS_MAX_TXT bytes. */
static void
txt_append(struct dns_rr *rr, const unsigned char *s, size_t len)
{
	if (len > DNS_MAX_TXT - rr->len)
		len = DNS_MAX_TXT - rr->len;
	if (len == 0)
		return;
	rr->text = xrealloc(rr->text, rr->len + len + 1);
	memcpy(rr->text + rr->len, s, len);
	rr->len += len;
	rr->text[rr->len] = '\0';
}

/* The names of a parsed c-ares hostent (PTR, NS: each is in h_aliases). */
static int
add_names(struct dns_result *res, enum dns_type type, unsigned ttl,
    struct hostent *he)
{
	char	**p;

	if (he->h_aliases == NULL || he->h_aliases[0] == NULL) {
		if (he->h_name != NULL)
			add_text(res, type, ttl, he->h_name,
			    strlen(he->h_name));
	} else {
		for (p = he->h_aliases; *p != NULL; p++)
			if (add_text(res, type, ttl, *p, strlen(*p)) == NULL)
				break;
	}
	ares_free_hostent(he);
	return ARES_SUCCESS;
}

void
dns_result_host_names(struct dns_result *res, const struct hostent *he)
{
	char	**p;

	dns_result_clear(res);
	res->status = DNS_NXDOMAIN;
	if (he == NULL || he->h_name == NULL || !dns_name_valid(he->h_name))
		return;
	add_text(res, DNS_PTR, 0, he->h_name, strlen(he->h_name));
	for (p = he->h_aliases; p != NULL && *p != NULL; p++)
		if (strcmp(*p, he->h_name) != 0 && dns_name_valid(*p) &&
		    add_text(res, DNS_PTR, 0, *p, strlen(*p)) == NULL)
			break;
	res->status = DNS_OK;
}

static int
parse_a(const unsigned char *abuf, int alen, struct dns_result *res)
{
	struct ares_addrttl	 a[DNS_MAX_RRS];
	char			 buf[INET_ADDRSTRLEN];
	int			 n = DNS_MAX_RRS, i, st;

	if ((st = ares_parse_a_reply(abuf, alen, NULL, a, &n)) !=
	    ARES_SUCCESS)
		return st;
	for (i = 0; i < n; i++) {
		if (inet_ntop(AF_INET, &a[i].ipaddr, buf, sizeof(buf)) == NULL)
			return ARES_EBADRESP;
		add_text(res, DNS_A, a[i].ttl < 0 ? 0 : (unsigned)a[i].ttl,
		    buf, strlen(buf));
	}
	return ARES_SUCCESS;
}

static int
parse_aaaa(const unsigned char *abuf, int alen, struct dns_result *res)
{
	struct ares_addr6ttl	 a[DNS_MAX_RRS];
	char			 buf[INET6_ADDRSTRLEN];
	int			 n = DNS_MAX_RRS, i, st;

	if ((st = ares_parse_aaaa_reply(abuf, alen, NULL, a, &n)) !=
	    ARES_SUCCESS)
		return st;
	for (i = 0; i < n; i++) {
		if (inet_ntop(AF_INET6, &a[i].ip6addr, buf, sizeof(buf)) ==
		    NULL)
			return ARES_EBADRESP;
		add_text(res, DNS_AAAA, a[i].ttl < 0 ? 0 : (unsigned)a[i].ttl,
		    buf, strlen(buf));
	}
	return ARES_SUCCESS;
}

static int
parse_mx(const unsigned char *abuf, int alen, struct dns_result *res)
{
	struct ares_mx_reply	*mx, *p;
	struct dns_rr		*rr;
	unsigned		 ttl;
	int			 st;

	if ((st = ares_parse_mx_reply(abuf, alen, &mx)) != ARES_SUCCESS)
		return st;
	ttl = rrset_ttl(abuf, alen, DNS_MX);
	for (p = mx; p != NULL; p = p->next) {
		if ((rr = add_text(res, DNS_MX, ttl, p->host,
		    strlen(p->host))) == NULL)
			break;
		rr->pref = p->priority;
	}
	ares_free_data(mx);
	return ARES_SUCCESS;
}

static int
parse_txt(const unsigned char *abuf, int alen, struct dns_result *res)
{
	struct ares_txt_ext	*txt, *p;
	struct dns_rr		*rr = NULL;
	unsigned		 ttl;
	int			 st;

	if ((st = ares_parse_txt_reply_ext(abuf, alen, &txt)) != ARES_SUCCESS)
		return st;
	ttl = rrset_ttl(abuf, alen, DNS_TXT);
	for (p = txt; p != NULL; p = p->next) {
		if ((p->record_start || rr == NULL) &&
		    (rr = add_text(res, DNS_TXT, ttl, "", 0)) == NULL)
			break;
		txt_append(rr, p->txt, p->length);
	}
	ares_free_data(txt);
	return ARES_SUCCESS;
}

static int
parse_ptr(const unsigned char *abuf, int alen, struct dns_result *res)
{
	static const unsigned char	 any[4];
	struct hostent			*he;
	int				 st;

	if ((st = ares_parse_ptr_reply(abuf, alen, any, sizeof(any), AF_INET,
	    &he)) != ARES_SUCCESS)
		return st;
	return add_names(res, DNS_PTR, rrset_ttl(abuf, alen, DNS_PTR), he);
}

static int
visit_cname(const unsigned char *abuf, int alen, const unsigned char *rdata,
    unsigned ttl, void *ctx)
{
	struct dns_result	*res = ctx;
	char			*name;
	long			 enclen;

	if (ares_expand_name(rdata, abuf, alen, &name, &enclen) !=
	    ARES_SUCCESS) {
		res->status = DNS_BADRESP;
		return -1;
	}
	if (add_text(res, DNS_CNAME, ttl, name, strlen(name)) == NULL) {
		ares_free_string(name);
		return -1;
	}
	ares_free_string(name);
	return 0;
}

static int
parse_cname(const unsigned char *abuf, int alen, struct dns_result *res)
{
	if (answer_walk(abuf, alen, dns_type_code(DNS_CNAME), visit_cname,
	    res) == -1 || res->status == DNS_BADRESP)
		return ARES_EBADRESP;
	return ARES_SUCCESS;
}

static int
parse_ns(const unsigned char *abuf, int alen, struct dns_result *res)
{
	struct hostent	*he;
	int		 st;

	if ((st = ares_parse_ns_reply(abuf, alen, &he)) != ARES_SUCCESS)
		return st;
	return add_names(res, DNS_NS, rrset_ttl(abuf, alen, DNS_NS), he);
}

static int
parse_srv(const unsigned char *abuf, int alen, struct dns_result *res)
{
	struct ares_srv_reply	*srv, *p;
	struct dns_rr		*rr;
	unsigned		 ttl;
	int			 st;

	if ((st = ares_parse_srv_reply(abuf, alen, &srv)) != ARES_SUCCESS)
		return st;
	ttl = rrset_ttl(abuf, alen, DNS_SRV);
	for (p = srv; p != NULL; p = p->next) {
		if ((rr = add_text(res, DNS_SRV, ttl, p->host,
		    strlen(p->host))) == NULL)
			break;
		rr->pref = p->priority;
		rr->weight = p->weight;
		rr->port = p->port;
	}
	ares_free_data(srv);
	return ARES_SUCCESS;
}

void
dns_parse_answer(enum dns_type type, const unsigned char *abuf, int alen,
    struct dns_result *res)
{
	int	 st;

	memset(res, 0, sizeof(*res));
	if ((unsigned)type >= nitems(parsers)) {
		res->status = DNS_ERROR;
		return;
	}
	if (abuf == NULL || alen < HDR_LEN)
		st = ARES_EBADRESP;
	else
		st = parsers[type](abuf, alen, res);
	if (st == ARES_SUCCESS && res->nrrs > 0) {
		res->status = DNS_OK;
		return;
	}
	dns_result_clear(res);
	res->status = st == ARES_SUCCESS || st == ARES_ENODATA ? DNS_NODATA :
	    st == ARES_ENOMEM ? DNS_ERROR : DNS_BADRESP;
}

void
dns_result_clear(struct dns_result *res)
{
	size_t	 i;

	if (res == NULL)
		return;
	for (i = 0; i < res->nrrs; i++)
		free(res->rrs[i].text);
	free(res->rrs);
	res->rrs = NULL;
	res->nrrs = 0;
}
