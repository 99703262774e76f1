/*
 * envelope.c - envelope records and their text form (see envelope.h).
 *
 * Format, one record per line, values %-encoded:
 *   v 1
 *   id 0kq3x5v1b2c0a7
 *   arrival 1795870643123456
 *   sender alice@example.test          ("-" for the null sender)
 *   helo client.example
 *   client 192.0.2.1 50123
 *   listener mx
 *   protocol ESMTP
 *   body 8BITMIME                      (7BIT, 8BITMIME or -)
 *   smtputf8 0
 *   ret -                              (FULL, HDRS or -)
 *   envid -
 *   size 1234
 *   rcpt bob@example.test 6 rfc822;bob@example.test   (notify bits, orcpt or -)
 *   tag route special                  (filter tags, zero or more)
 *   quarantine 1                       (only when quarantined)
 *   end
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "util.h"

#define MAX_RCPTS	100000

void
envelope_init(struct envelope *e)
{
	memset(e, 0, sizeof(*e));
}

void
envelope_clear(struct envelope *e)
{
	free(e->sender);
	free(e->helo);
	free(e->client_addr);
	free(e->listener);
	free(e->protocol);
	free(e->envid);
	for (size_t i = 0; i < e->nrcpts; i++) {
		free(e->rcpts[i].addr);
		free(e->rcpts[i].orcpt);
	}
	free(e->rcpts);
	tags_clear(&e->tags);
	memset(e, 0, sizeof(*e));
}

void
envelope_add_rcpt(struct envelope *e, const char *addr, const char *orcpt,
    unsigned notify)
{
	struct envelope_rcpt *r;

	if ((e->nrcpts & (e->nrcpts - 1)) == 0)	/* grow at powers of two */
		e->rcpts = xreallocarray(e->rcpts,
		    e->nrcpts ? e->nrcpts * 2 : 1, sizeof(*e->rcpts));
	r = &e->rcpts[e->nrcpts++];
	r->addr = xstrdup(addr);
	r->orcpt = (orcpt != NULL && *orcpt != '\0') ? xstrdup(orcpt) : NULL;
	r->notify = notify;
}

char *
value_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out, *o;

	if (s == NULL || *s == '\0')
		return xstrdup("-");
	o = out = xmalloc(strlen(s) * 3 + 1);
	if (*s == '-')			/* a literal "-" must not read as none */
		o += sprintf(o, "%%2D"), s++;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c >= 0x7f || c == '%') {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		} else
			*o++ = (char)c;
	}
	*o = '\0';
	return out;
}

static int
hexdig(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
value_decode(char *s)
{
	char *o = s;

	if (strcmp(s, "-") == 0) {
		*s = '\0';
		return 0;
	}
	for (; *s; s++) {
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return -1;
		if (*s == '%') {
			int h = hexdig(s[1]), l = h < 0 ? -1 : hexdig(s[2]);
			if (l < 0 || (h == 0 && l == 0))
				return -1;	/* no NUL smuggled in */
			*o++ = (char)(h * 16 + l);
			s += 2;
		} else
			*o++ = *s;
	}
	*o = '\0';
	return 0;
}

struct out {
	char *buf;
	size_t len, cap;
};

static void
out_add(struct out *o, const char *key, const char *raw, int encode)
{
	char *v = encode ? value_encode(raw) : (char *)raw;
	size_t need = strlen(key) + strlen(v) + 3;

	if (o->len + need > o->cap) {
		o->cap = (o->cap + need) * 2;
		o->buf = xrealloc(o->buf, o->cap);
	}
	o->len += (size_t)sprintf(o->buf + o->len, "%s %s\n", key, v);
	if (encode)
		free(v);
}

static const char *const body_names[] = { "-", "7BIT", "8BITMIME" };
static const char *const ret_names[] = { "-", "FULL", "HDRS" };

char *
envelope_serialize(const struct envelope *e, size_t *len)
{
	struct out o = { NULL, 0, 0 };
	char num[64];

	out_add(&o, "v", "1", 0);
	out_add(&o, "id", e->id, 0);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)e->arrival);
	out_add(&o, "arrival", num, 0);
	out_add(&o, "sender", e->sender, 1);
	out_add(&o, "helo", e->helo, 1);
	char *ca = value_encode(e->client_addr);
	snprintf(num, sizeof(num), "%u", e->client_port);
	char *cl;
	xasprintf(&cl, "%s %s", ca, num);
	out_add(&o, "client", cl, 0);
	free(cl);
	free(ca);
	out_add(&o, "listener", e->listener, 1);
	out_add(&o, "protocol", e->protocol, 1);
	out_add(&o, "body", body_names[e->body], 0);
	out_add(&o, "smtputf8", e->smtputf8 ? "1" : "0", 0);
	out_add(&o, "ret", ret_names[e->ret], 0);
	out_add(&o, "envid", e->envid, 1);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)e->size);
	out_add(&o, "size", num, 0);
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct envelope_rcpt *r = &e->rcpts[i];
		char *a = value_encode(r->addr), *oc = value_encode(r->orcpt);
		char *line;
		xasprintf(&line, "%s %u %s", a, r->notify, oc);
		out_add(&o, "rcpt", line, 0);
		free(line);
		free(a);
		free(oc);
	}
	for (size_t i = 0; i < e->tags.n; i++) {
		char *k = value_encode(e->tags.v[i].key);
		char *v = value_encode(e->tags.v[i].value), *line;
		xasprintf(&line, "%s %s", k, v);
		out_add(&o, "tag", line, 0);
		free(line);
		free(k);
		free(v);
	}
	if (e->quarantine)
		out_add(&o, "quarantine", "1", 0);
	out_add(&o, "end", "-", 0);
	*len = o.len;
	return o.buf;
}

/* parse_u64 - strict decimal */
static int
parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*v = n;
	return 0;
}

static int
pick(const char *const *names, size_t n, const char *v, int *out)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], v) == 0) {
			*out = (int)i;
			return 0;
		}
	return -1;
}

/* take_str - decode a single-word value into a new string */
static int
take_str(char *v, char **dst)
{
	if (strchr(v, ' ') != NULL || value_decode(v) == -1)
		return -1;
	free(*dst);
	*dst = xstrdup(v);
	return 0;
}

static int
parse_rcpt(struct envelope *e, char *v)
{
	char *f[3], *save = NULL;
	uint64_t notify;
	int i = 0;

	for (char *t = strtok_r(v, " ", &save); t != NULL;
	    t = strtok_r(NULL, " ", &save)) {
		if (i == 3)
			return -1;
		f[i++] = t;
	}
	if (i != 3 || value_decode(f[0]) == -1 || f[0][0] == '\0' ||
	    parse_u64(f[1], &notify) == -1 || notify > 15 ||
	    value_decode(f[2]) == -1 || e->nrcpts >= MAX_RCPTS)
		return -1;
	envelope_add_rcpt(e, f[0], f[2], (unsigned)notify);
	return 0;
}

static int
parse_client(struct envelope *e, char *v)
{
	char *sp = strchr(v, ' ');
	uint64_t port;

	if (sp == NULL)
		return -1;
	*sp++ = '\0';
	if (parse_u64(sp, &port) == -1 || port > 65535)
		return -1;
	e->client_port = (unsigned)port;
	return take_str(v, &e->client_addr);
}

static int
parse_tag(struct envelope *e, char *v)
{
	char *sp = strchr(v, ' ');

	if (sp == NULL)
		return -1;
	*sp++ = '\0';
	if (strchr(sp, ' ') != NULL || value_decode(v) == -1 ||
	    value_decode(sp) == -1 || v[0] == '\0' || e->tags.n >= 10000)
		return -1;
	tags_set(&e->tags, v, sp);
	return 0;
}

/* parse_record - one "key value" line; -1 on anything unexpected */
static int
parse_record(struct envelope *e, char *key, char *v, int *seen_end)
{
	int n;

	if (strcmp(key, "id") == 0)
		return qid_valid(v) ? (strcpy(e->id, v), 0) : -1;
	if (strcmp(key, "arrival") == 0)
		return parse_u64(v, &e->arrival);
	if (strcmp(key, "size") == 0)
		return parse_u64(v, &e->size);
	if (strcmp(key, "sender") == 0)
		return take_str(v, &e->sender);
	if (strcmp(key, "helo") == 0)
		return take_str(v, &e->helo);
	if (strcmp(key, "listener") == 0)
		return take_str(v, &e->listener);
	if (strcmp(key, "protocol") == 0)
		return take_str(v, &e->protocol);
	if (strcmp(key, "envid") == 0)
		return take_str(v, &e->envid);
	if (strcmp(key, "client") == 0)
		return parse_client(e, v);
	if (strcmp(key, "rcpt") == 0)
		return parse_rcpt(e, v);
	if (strcmp(key, "body") == 0) {
		if (pick(body_names, 3, v, &n) == -1)
			return -1;
		e->body = (enum body_type)n;
		return 0;
	}
	if (strcmp(key, "ret") == 0) {
		if (pick(ret_names, 3, v, &n) == -1)
			return -1;
		e->ret = (enum dsn_ret)n;
		return 0;
	}
	if (strcmp(key, "smtputf8") == 0) {
		if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
			return -1;
		e->smtputf8 = v[0] == '1';
		return 0;
	}
	if (strcmp(key, "tag") == 0)
		return parse_tag(e, v);
	if (strcmp(key, "quarantine") == 0) {
		e->quarantine = strcmp(v, "1") == 0;
		return e->quarantine ? 0 : -1;
	}
	if (strcmp(key, "end") == 0) {
		*seen_end = 1;
		return 0;
	}
	return -1;
}

int
envelope_parse(const char *buf, size_t len, struct envelope *e, char *err,
    size_t errlen)
{
	char *text, *line, *next;
	int lineno = 0, seen_end = 0;

	envelope_init(e);
	if (len == 0 || buf[len - 1] != '\n' || memchr(buf, '\0', len) != NULL) {
		snprintf(err, errlen, "envelope truncated or binary");
		return -1;
	}
	text = xstrndup(buf, len);
	for (line = text; *line != '\0'; line = next) {
		next = strchr(line, '\n');
		*next++ = '\0';
		lineno++;
		char *sp = strchr(line, ' ');
		if (sp == NULL || seen_end)
			goto bad;
		*sp++ = '\0';
		if (lineno == 1) {
			if (strcmp(line, "v") != 0 || strcmp(sp, "1") != 0)
				goto bad;
			continue;
		}
		if (parse_record(e, line, sp, &seen_end) == -1)
			goto bad;
	}
	if (!seen_end || e->id[0] == '\0' || e->sender == NULL ||
	    e->nrcpts == 0) {
		snprintf(err, errlen, "envelope incomplete");
		goto fail;
	}
	if (e->helo == NULL)
		e->helo = xstrdup("");
	if (e->client_addr == NULL)
		e->client_addr = xstrdup("");
	if (e->listener == NULL)
		e->listener = xstrdup("");
	if (e->protocol == NULL)
		e->protocol = xstrdup("SMTP");
	free(text);
	return 0;
bad:
	snprintf(err, errlen, "envelope line %d malformed", lineno);
fail:
	free(text);
	envelope_clear(e);
	return -1;
}
