/*
 * mime_parse.c - the structure of a message: header sections, boundaries
 * and nesting (RFC 2045, RFC 2046), turned into the part tree.
 *
 * A scanner of our own rather than GMimeParser: GMime builds a GObject per
 * part and follows nesting down to 1024 levels, so a 7 MB message of one
 * million empty parts costs it 1.3 GB and 5 s. This scanner never copies the
 * message, keeps one boundary per open multipart (at most max_depth) and
 * stops at max_parts: time and memory stay linear in the input.
 *
 * Delimiters follow GMime: "--" boundary, optionally "--" (close), then
 * only blanks; the innermost open multipart is tried first; an ancestor's
 * delimiter also ends every multipart nested in it (missing close). Where
 * we differ, it is to show filters more, never less:
 *  - a header section also ends at a delimiter line;
 *  - a multipart without boundary, or whose boundary never appears, is a
 *    leaf, so its body is still decoded and sniffed;
 *  - a base64 or quoted-printable message/rfc822 part is decoded and the
 *    result parsed as the embedded message (GMime leaves it opaque).
 * Recursion depth is bounded by max_depth (capped at MIME_DEPTH_CAP).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime_int.h"
#include "util.h"

#define ENT_TOP		1	/* the message itself: may start with From_ */
#define ENT_DIGEST	2	/* parent is multipart/digest */

struct stop {			/* where the content of an entity ended */
	const char *at;		/* start of the delimiter line, or the end */
	int level;		/* its index in c->bounds; -1 at the end */
	int close;		/* a close delimiter "--boundary--" */
};

struct hval {
	const char *p, *e;	/* after the colon to the end of the last fold */
	int seen;
};

struct hdrs {
	struct hval ctype, cdisp, cte;
	const char *body;	/* first byte after the header section */
	struct stop stop;	/* level >= 0: a delimiter ended the headers */
	int dup;		/* one of the fields appeared twice */
	int bad;		/* lines that were no header field */
};

static struct stop parse_entity(struct mime_ctx *, const char *, int,
	    unsigned, int);

static int
is_blank(int ch)
{
	return ch == ' ' || ch == '\t';
}

/* line_end - end of the line at p without CR LF; *next: the line after */
static const char *
line_end(const struct mime_ctx *c, const char *p, const char **next)
{
	const char *nl = memchr(p, '\n', (size_t)(c->end - p));
	const char *e = nl ? nl : c->end;

	*next = nl ? nl + 1 : c->end;
	if (e > p && e[-1] == '\r')
		e--;
	return e;
}

/* match_delim - level of the open multipart whose delimiter [p, e) is */
static int
match_delim(const struct mime_ctx *c, const char *p, const char *e,
    int *close)
{
	if (e - p < 2 || p[0] != '-' || p[1] != '-')
		return -1;
	p += 2;
	for (unsigned i = c->nbounds; i-- > c->bbase; ) {
		const struct mime_bound *b = &c->bounds[i];
		const char *q = p + b->len;

		if ((size_t)(e - p) < b->len || memcmp(p, b->s, b->len) != 0)
			continue;
		*close = e - q >= 2 && q[0] == '-' && q[1] == '-';
		if (*close)
			q += 2;
		while (q < e && (is_blank(*q) || *q == '\r'))
			q++;
		if (q == e)
			return (int)i;
	}
	return -1;
}

static struct stop
at_end(const struct mime_ctx *c)
{
	struct stop s = { c->end, -1, 0 };

	return s;
}

/* scan - find the next delimiter line of any open multipart */
static struct stop
scan(const struct mime_ctx *c, const char *p)
{
	struct stop s = at_end(c);
	const char *next, *e;

	if (c->nbounds == c->bbase)
		return s;
	for (; p < c->end; p = next) {
		e = line_end(c, p, &next);
		if (*p != '-')
			continue;
		if ((s.level = match_delim(c, p, e, &s.close)) >= 0) {
			s.at = p;
			return s;
		}
	}
	return at_end(c);
}

/* content_len - up to the delimiter, whose line break belongs to it */
static size_t
content_len(const char *body, struct stop s)
{
	const char *e = s.at;

	if (s.level >= 0 && e > body && e[-1] == '\n')
		e--;
	if (s.level >= 0 && e > body && e[-1] == '\r')
		e--;
	return (size_t)(e - body);
}

static struct hval *
field(struct hdrs *h, const char *name, size_t n)
{
	while (n > 0 && is_blank(name[n - 1]))
		n--;
	if (n == 12 && strncasecmp(name, "Content-Type", n) == 0)
		return &h->ctype;
	if (n == 19 && strncasecmp(name, "Content-Disposition", n) == 0)
		return &h->cdisp;
	if (n == 25 && strncasecmp(name, "Content-Transfer-Encoding", n) == 0)
		return &h->cte;
	return NULL;
}

/* header_colon - the colon of a header field line, NULL if it is none */
static const char *
header_colon(const char *p, const char *e)
{
	const char *q;
	int blank = 0;

	for (q = p; q < e && *q != ':'; q++) {
		unsigned char ch = (unsigned char)*q;

		if (is_blank(ch))
			blank = 1;
		else if (blank || ch < 33 || ch > 126)
			return NULL;
	}
	return q < e && q > p ? q : NULL;
}

/* header_line - take one field line; 0 when it cannot be a header */
static int
header_line(struct hdrs *h, const char *p, const char *e,
    struct hval **cur, unsigned *nfields)
{
	const char *colon;

	if (is_blank(*p) && *nfields > 0) {
		if (*cur != NULL)
			(*cur)->e = e;
		return 1;
	}
	if ((colon = header_colon(p, e)) == NULL) {
		if (*nfields == 0)
			return 0;
		h->bad++;
		*cur = NULL;
		return 1;
	}
	(*nfields)++;
	*cur = field(h, p, (size_t)(colon - p));
	if (*cur != NULL && (*cur)->seen) {
		h->dup = 1;
		*cur = NULL;
	} else if (*cur != NULL) {
		(*cur)->seen = 1;
		(*cur)->p = colon + 1;
		(*cur)->e = e;
	}
	return 1;
}

/*
 * parse_headers - the header section at p. It ends at an empty line, at a
 * delimiter line, or at the first line if that is no header field at all
 * (a part without headers). Other junk lines are skipped, as GMime does.
 */
static void
parse_headers(struct mime_ctx *c, const char *p, int top, struct hdrs *h)
{
	struct hval *cur = NULL;
	const char *next, *e;
	unsigned nfields = 0;

	memset(h, 0, sizeof(*h));
	h->stop = at_end(c);
	if (top && c->end - p >= 5 && memcmp(p, "From ", 5) == 0)
		line_end(c, p, &p);		/* mbox From_ line */
	for (; p < c->end; p = next) {
		e = line_end(c, p, &next);
		if (e == p) {
			h->body = next;
			return;
		}
		if (*p == '-' &&
		    (h->stop.level = match_delim(c, p, e, &h->stop.close)) >= 0) {
			h->stop.at = h->body = p;
			return;
		}
		if (!header_line(h, p, e, &cur, &nfields)) {
			h->body = p;
			return;
		}
	}
	h->body = c->end;
}

static size_t
hlen(const struct hval *v)
{
	return v->p ? (size_t)(v->e - v->p) : 0;
}

static void
header_problems(struct mime_ctx *c, int idx, const struct hdrs *h,
    const struct mime_fields *f)
{
	if (h->dup)
		mime_problem(c, idx, "Content-* header repeated, first used");
	if (h->bad)
		mime_problem(c, idx, "%d malformed header lines skipped",
		    h->bad);
	if (f->cut)
		mime_limit_hit(c, idx, "Content-* header too long or with too"
		    " many parameters, cut");
	if (h->stop.level >= 0)
		mime_problem(c, idx, "header section ended by a boundary");
}

static struct stop
parse_leaf(struct mime_ctx *c, int idx, const char *body, enum mime_cte cte)
{
	struct stop s = scan(c, body);

	mime_leaf(c, &c->tree->parts[idx], cte, body, content_len(body, s));
	return s;
}

/* parse_parts - the body parts of a multipart whose boundary is pushed */
static struct stop
parse_parts(struct mime_ctx *c, int idx, const char *body, unsigned depth,
    int digest, unsigned *nchild)
{
	unsigned level = c->nbounds - 1;
	const char *next;
	struct stop s;

	s = scan(c, body);			/* the preamble */
	while (s.level == (int)level && !s.close && !c->stop) {
		line_end(c, s.at, &next);
		s = parse_entity(c, next, idx, depth + 1,
		    digest ? ENT_DIGEST : 0);
		(*nchild)++;
	}
	return s;
}

static struct stop
parse_multipart(struct mime_ctx *c, int idx, const char *body,
    const struct mime_fields *f, unsigned depth)
{
	unsigned level = c->nbounds, nchild = 0;
	int digest;
	const char *next;
	struct stop s;

	c->tree->parts[idx].is_multipart = 1;
	if (depth >= c->lim.max_depth) {
		mime_limit_hit(c, idx, "nested deeper than max_depth,"
		    " not analysed");
		return scan(c, body);
	}
	digest = strcmp(c->tree->parts[idx].content_type,
	    "multipart/digest") == 0;
	c->bounds[c->nbounds].s = f->boundary;
	c->bounds[c->nbounds++].len = strlen(f->boundary);
	s = parse_parts(c, idx, body, depth, digest, &nchild);
	c->nbounds = level;
	if (c->stop)
		return s;
	if (s.level == (int)level) {		/* close: skip the epilogue */
		line_end(c, s.at, &next);
		return scan(c, next);
	}
	if (nchild > 0) {
		mime_problem(c, idx, "closing boundary missing");
		return s;
	}
	mime_problem(c, idx, "boundary never found, analysed as a leaf");
	c->tree->parts[idx].is_multipart = 0;
	mime_leaf(c, &c->tree->parts[idx], f->cte, body, content_len(body, s));
	return s;
}

/* parse_encoded_message - decode, then parse the result as a message */
static struct stop
parse_encoded_message(struct mime_ctx *c, int idx, const char *body,
    enum mime_cte cte, unsigned depth)
{
	struct stop s = scan(c, body);
	struct mime_part *mp = &c->tree->parts[idx];
	const char *end = c->end;
	unsigned bbase = c->bbase;
	unsigned char *buf;
	size_t n;

	mime_problem(c, idx, "message/rfc822 with a transfer encoding");
	mime_decode(c, mp, cte, body, content_len(body, s));
	buf = mp->content;
	n = mp->content_len;
	mp->content = NULL;
	mp->content_len = 0;
	mp->is_multipart = 1;
	c->kept -= n;
	c->end = (const char *)buf + n;
	c->bbase = c->nbounds;
	parse_entity(c, (const char *)buf, idx, depth + 1, 0);
	c->end = end;
	c->bbase = bbase;
	free(buf);
	return s;
}

static struct stop
parse_message(struct mime_ctx *c, int idx, const char *body,
    enum mime_cte cte, unsigned depth)
{
	if (depth >= c->lim.max_depth) {
		mime_limit_hit(c, idx, "nested deeper than max_depth,"
		    " not analysed");
		return parse_leaf(c, idx, body, cte);
	}
	if (cte != MIME_CTE_IDENTITY && cte != MIME_CTE_UNKNOWN)
		return parse_encoded_message(c, idx, body, cte, depth);
	c->tree->parts[idx].is_multipart = 1;
	return parse_entity(c, body, idx, depth + 1, 0);
}

/* parse_entity - one part: headers, then its content or its children */
static struct stop
parse_entity(struct mime_ctx *c, const char *p, int parent, unsigned depth,
    int flags)
{
	struct mime_fields f;
	struct mime_part *mp;
	struct stop s;
	struct hdrs h;
	int idx;

	parse_headers(c, p, flags & ENT_TOP, &h);
	if ((mp = mime_part_add(c, parent, depth)) == NULL)
		return at_end(c);
	idx = (int)mp->index;
	mime_fields_parse(c, mp, h.ctype.p, hlen(&h.ctype), h.cdisp.p,
	    hlen(&h.cdisp), h.cte.p, hlen(&h.cte), flags & ENT_DIGEST, &f);
	header_problems(c, idx, &h, &f);
	if (h.stop.level >= 0) {
		mime_leaf(c, mp, f.cte, h.body, 0);
		s = h.stop;
	} else if (f.boundary != NULL)
		s = parse_multipart(c, idx, h.body, &f, depth);
	else if (f.is_message)
		s = parse_message(c, idx, h.body, f.cte, depth);
	else
		s = parse_leaf(c, idx, h.body, f.cte);
	free(f.boundary);
	return s;
}

void
mime_parse_message(struct mime_ctx *c, const char *msg, size_t len)
{
	c->end = msg + len;
	c->nbounds = c->bbase = 0;
	parse_entity(c, msg, -1, 0, ENT_TOP);
}
