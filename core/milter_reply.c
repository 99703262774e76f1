/*
 * milter_reply.c - strict decoders for the replies a milter sends
 * (milter_proto.h): every field length-checked and NUL-terminated inside
 * the payload, reply codes and texts as SMTP allows them, header names and
 * values that cannot break the message. No I/O, no allocation: results
 * point into the payload.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter_int.h"
#include "milter_proto.h"
#include "util.h"

/*
 * A cursor over a payload: each take_*() consumes one field or fails with
 * a reason; done() insists that nothing is left over.
 */
struct cur {
	const unsigned char *p;
	size_t		 len;
	size_t		 off;
	const char	*why;
};

static int
take_u32(struct cur *c, uint32_t *v)
{
	if (c->len - c->off < 4) {
		c->why = "payload too short for a 32-bit word";
		return -1;
	}
	*v = get32(c->p + c->off);
	c->off += 4;
	return 0;
}

/* take_str - a NUL-terminated string that ends inside the payload */
static int
take_str(struct cur *c, const char **s)
{
	const unsigned char *nul;

	if (c->off >= c->len) {
		c->why = "string missing";
		return -1;
	}
	nul = memchr(c->p + c->off, '\0', c->len - c->off);
	if (nul == NULL) {
		c->why = "string not NUL-terminated";
		return -1;
	}
	*s = (const char *)c->p + c->off;
	c->off = (size_t)(nul - c->p) + 1;
	return 0;
}

static int
done(struct cur *c)
{
	if (c->off != c->len) {
		c->why = "trailing bytes after the last field";
		return -1;
	}
	return 0;
}

/* has_ctl - a control byte or DEL; TAB only counts unless tab_ok */
static int
has_ctl(const char *s, int tab_ok)
{
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && !(tab_ok && *s == '\t')) ||
		    *s == 0x7f)
			return 1;
	return 0;
}

/* header_name_ok - a field name: printable ASCII, no colon, not empty */
static int
header_name_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f ||
		    *s == ':')
			return 0;
	return 1;
}

/*
 * header_value_ok - line breaks only as folds (LF or CRLF followed by a
 * space or tab); no other control byte but TAB
 */
static int
header_value_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '\r' && s[1] == '\n')
			ch = (unsigned char)*++s;
		if (ch == '\n') {
			if (s[1] != ' ' && s[1] != '\t')
				return 0;
			continue;
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return 0;
	}
	return 1;
}

static int
digit(int c)
{
	return c >= '0' && c <= '9';
}

/*
 * enhanced_class - if text starts with something shaped like an RFC 3463
 * code "d.ddd.ddd" followed by a space or the end, its class digit; else 0
 */
static int
enhanced_class(const char *t, size_t len)
{
	size_t i, n;

	if (len < 5 || !digit(t[0]) || t[1] != '.')
		return 0;
	for (i = 2, n = 0; i < len && digit(t[i]); i++)
		n++;
	if (n == 0 || n > 3 || i >= len || t[i] != '.')
		return 0;
	for (i++, n = 0; i < len && digit(t[i]); i++)
		n++;
	if (n == 0 || n > 3 || (i < len && t[i] != ' '))
		return 0;
	return t[0];
}

/* reply_line - one line of a REPLYCODE text, CRLF removed */
static const char *
reply_line(const char *s, size_t len, int last, int *rcode)
{
	int code;

	if (len > MILTER_REPLY_LINE_MAX)
		return "reply line too long";
	if (len < 3 || (s[0] != '4' && s[0] != '5') || s[1] < '0' ||
	    s[1] > '5' || !digit(s[2]))
		return "reply code not 4xx or 5xx, or malformed";
	if (len == 3 && !last)
		return "continued reply line without '-'";
	if (len > 3 && s[3] != (last ? ' ' : '-'))
		return last ? "last reply line without ' '" :
		    "continued reply line without '-'";
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (*rcode != 0 && code != *rcode)
		return "reply code changes between lines";
	*rcode = code;
	for (size_t i = 4; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return "control byte in reply text";
		if (ch >= 0x80)
			return "8-bit byte in reply text";
	}
	if (len > 4) {
		int cls = enhanced_class(s + 4, len - 4);
		if (cls != 0 && cls != s[0])
			return "enhanced code class differs from reply code";
	}
	return NULL;
}

/*
 * replycode_check - "DDD text", or lines "DDD-text" CRLF ... "DDD text":
 * the same 4xx/5xx code on every line, a bare CR or LF anywhere is an error
 */
static const char *
replycode_check(const char *s, int *rcode)
{
	size_t len = strlen(s), pos = 0, e;
	unsigned nlines = 0;
	const char *why;

	*rcode = 0;
	for (;;) {
		for (e = pos; e < len && s[e] != '\r' && s[e] != '\n'; e++)
			;
		if (e < len && (s[e] == '\n' || s[e + 1] != '\n'))
			return s[e] == '\n' ? "bare LF in reply text" :
			    "bare CR in reply text";
		if (++nlines > MILTER_REPLY_LINES_MAX)
			return "too many reply lines";
		if ((why = reply_line(s + pos, e - pos, e == len, rcode)) !=
		    NULL)
			return why;
		if (e == len)
			return NULL;
		pos = e + 2;
	}
}

typedef int (*reply_fn)(struct cur *, struct milter_reply *);

static int
parse_none(struct cur *c, struct milter_reply *r)
{
	(void)r;
	if (c->len != 0) {
		c->why = "payload where none belongs";
		return -1;
	}
	return 0;
}

/* macro_list_ok - space separated printable names; "" means none */
static int
macro_list_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

static int
parse_optneg(struct cur *c, struct milter_reply *r)
{
	struct milter_optneg *o = &r->optneg;
	uint32_t stage;
	const char *list;

	if (take_u32(c, &o->version) == -1 || take_u32(c, &o->actions) == -1 ||
	    take_u32(c, &o->protocol) == -1)
		return -1;
	if (o->version < MILTER_VERSION_MIN || o->version > MILTER_VERSION) {
		c->why = "unsupported protocol version";
		return -1;
	}
	while (c->off < c->len) {
		if (take_u32(c, &stage) == -1 || take_str(c, &list) == -1)
			return -1;
		if (!macro_list_ok(list)) {
			c->why = "bad byte in macro list";
			return -1;
		}
		if (stage < MILTER_STAGES)
			o->macros[stage] = list;	/* a repeat replaces */
		else
			o->unknown_stages++;
	}
	return 0;
}

static int
parse_replycode(struct cur *c, struct milter_reply *r)
{
	if (take_str(c, &r->text) == -1 || done(c) == -1)
		return -1;
	if ((c->why = replycode_check(r->text, &r->rcode)) != NULL)
		return -1;
	return 0;
}

static int
parse_quarantine(struct cur *c, struct milter_reply *r)
{
	if (take_str(c, &r->text) == -1 || done(c) == -1)
		return -1;
	if (*r->text == '\0' || has_ctl(r->text, 1)) {
		c->why = "empty quarantine reason or control byte in it";
		return -1;
	}
	return 0;
}

static int
check_header(struct cur *c, struct milter_reply *r)
{
	if (take_str(c, &r->name) == -1 || take_str(c, &r->value) == -1 ||
	    done(c) == -1)
		return -1;
	if (!header_name_ok(r->name)) {
		c->why = "invalid header name";
		return -1;
	}
	if (!header_value_ok(r->value)) {
		c->why = "invalid header value";
		return -1;
	}
	return 0;
}

static int
parse_addheader(struct cur *c, struct milter_reply *r)
{
	return check_header(c, r);
}

/* INSHEADER, CHGHEADER: index, name, value */
static int
parse_indexed_header(struct cur *c, struct milter_reply *r)
{
	if (take_u32(c, &r->index) == -1)
		return -1;
	return check_header(c, r);
}

/* take_addr - a non-empty address without control bytes */
static int
take_addr(struct cur *c, const char **s, const char *what)
{
	if (take_str(c, s) == -1)
		return -1;
	if (**s == '\0' || has_ctl(*s, 0)) {
		c->why = what;
		return -1;
	}
	return 0;
}

static int
parse_rcpt(struct cur *c, struct milter_reply *r)
{
	if (take_addr(c, &r->addr, "empty recipient or control byte in it") ==
	    -1 || done(c) == -1)
		return -1;
	return 0;
}

/* ADDRCPT_PAR, CHGFROM: address, then optionally one string of args */
static int
parse_addr_args(struct cur *c, struct milter_reply *r)
{
	if (take_addr(c, &r->addr, "empty address or control byte in it") ==
	    -1)
		return -1;
	if (c->off < c->len) {
		if (take_str(c, &r->args) == -1)
			return -1;
		if (has_ctl(r->args, 0)) {
			c->why = "control byte in ESMTP arguments";
			return -1;
		}
	}
	return done(c);
}

static int
parse_replbody(struct cur *c, struct milter_reply *r)
{
	r->body = c->p;
	r->bodylen = c->len;
	c->off = c->len;
	return 0;
}

enum { R_MOD = 1, R_FINAL = 2 };

static const struct reply_kind {
	int		 code;
	reply_fn	 parse;
	unsigned	 flags;
	uint32_t	 action;	/* SMFIF_* a modification needs */
} reply_kinds[] = {
	{ SMFIC_OPTNEG, parse_optneg, 0, 0 },
	{ SMFIR_ACCEPT, parse_none, R_FINAL, 0 },
	{ SMFIR_CONTINUE, parse_none, R_FINAL, 0 },
	{ SMFIR_DISCARD, parse_none, R_FINAL, 0 },
	{ SMFIR_REJECT, parse_none, R_FINAL, 0 },
	{ SMFIR_TEMPFAIL, parse_none, R_FINAL, 0 },
	{ SMFIR_SKIP, parse_none, R_FINAL, 0 },
	{ SMFIR_SHUTDOWN, parse_none, R_FINAL, 0 },
	{ SMFIR_CONN_FAIL, parse_none, R_FINAL, 0 },
	{ SMFIR_REPLYCODE, parse_replycode, R_FINAL, 0 },
	{ SMFIR_PROGRESS, parse_none, 0, 0 },
	{ SMFIR_QUARANTINE, parse_quarantine, R_MOD, SMFIF_QUARANTINE },
	{ SMFIR_ADDHEADER, parse_addheader, R_MOD, SMFIF_ADDHDRS },
	{ SMFIR_INSHEADER, parse_indexed_header, R_MOD, SMFIF_ADDHDRS },
	{ SMFIR_CHGHEADER, parse_indexed_header, R_MOD, SMFIF_CHGHDRS },
	{ SMFIR_ADDRCPT, parse_rcpt, R_MOD, SMFIF_ADDRCPT },
	{ SMFIR_ADDRCPT_PAR, parse_addr_args, R_MOD, SMFIF_ADDRCPT_PAR },
	{ SMFIR_DELRCPT, parse_rcpt, R_MOD, SMFIF_DELRCPT },
	{ SMFIR_CHGFROM, parse_addr_args, R_MOD, SMFIF_CHGFROM },
	{ SMFIR_REPLBODY, parse_replbody, R_MOD, SMFIF_CHGBODY },
};

static const struct reply_kind *
reply_kind(int code)
{
	for (size_t i = 0; i < nitems(reply_kinds); i++)
		if (reply_kinds[i].code == code)
			return &reply_kinds[i];
	return NULL;
}

int
milter_reply_parse(int cmd, const unsigned char *p, size_t len,
    struct milter_reply *r, const char **why)
{
	const struct reply_kind *k;
	struct cur c = { p, len, 0, NULL };

	memset(r, 0, sizeof(*r));
	r->code = cmd;
	if (cmd == SMFIR_SETSYMLIST) {
		*why = "macro list outside the negotiation reply";
		return -1;
	}
	if ((k = reply_kind(cmd)) == NULL) {
		*why = "unknown reply";
		return -1;
	}
	if (len > MILTER_LEN_MAX - 1) {
		*why = "payload over the limit";
		return -1;
	}
	if (k->parse(&c, r) == -1) {
		*why = c.why;
		return -1;
	}
	return 0;
}

int
milter_reply_final(int code)
{
	const struct reply_kind *k = reply_kind(code);

	return k != NULL && (k->flags & R_FINAL) != 0;
}

uint32_t
milter_reply_action(int code)
{
	const struct reply_kind *k = reply_kind(code);

	return k != NULL ? k->action : 0;
}
