/*
 * message.c - header fields and body of a message, changes, rendering
 * (message.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "message.h"
#include "util.h"

/* line_end - offset just past the LF of the line starting at off */
static size_t
line_end(const char *d, size_t len, size_t off)
{
	const char *lf = memchr(d + off, '\n', len - off);

	return lf ? (size_t)(lf - d) + 1 : len;
}

/* field_name_len - length of "Name" in "Name:", 0 if not a field line */
static size_t
field_name_len(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == ':')
			return i;
		if (c <= 32 || c >= 127)
			return 0;
	}
	return 0;
}

/* unfold - the value of a field: CRLF removed, leading blanks cut */
static char *
unfold(const char *p, size_t n)
{
	char *v = xmalloc(n + 1), *o = v;

	while (n > 0 && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	for (size_t i = 0; i < n; i++)
		if (p[i] != '\r' && p[i] != '\n')
			*o++ = p[i];
	*o = '\0';
	return v;
}

static void
push(struct message *m, char *name, char *value, size_t off, size_t len)
{
	if ((m->nhdrs & (m->nhdrs - 1)) == 0)	/* grow at powers of two */
		m->hdrs = xreallocarray(m->hdrs, m->nhdrs ? m->nhdrs * 2 : 1,
		    sizeof(*m->hdrs));
	m->hdrs[m->nhdrs].name = name;
	m->hdrs[m->nhdrs].value = value;
	m->hdrs[m->nhdrs].raw_off = off;
	m->hdrs[m->nhdrs].raw_len = len;
	m->hdrs[m->nhdrs].raw = NULL;
	m->nhdrs++;
}

void
message_init(struct message *m, char *data, size_t len)
{
	size_t off = 0;

	memset(m, 0, sizeof(*m));
	m->data = data;
	m->len = len;
	while (off < len && m->nhdrs < MESSAGE_MAX_HEADERS) {
		size_t end = line_end(data, len, off);
		if (data[off] == '\r' || data[off] == '\n') {	/* blank line */
			m->has_separator = 1;
			off = end;
			break;
		}
		size_t nlen = field_name_len(data + off, end - off);
		if (nlen == 0)
			break;			/* not a field: the body starts */
		while (end < len && (data[end] == ' ' || data[end] == '\t'))
			end = line_end(data, len, end);	/* continuation */
		push(m, xstrndup(data + off, nlen),
		    unfold(data + off + nlen + 1, end - off - nlen - 1),
		    off, end - off);
		off = end;
	}
	m->body_off = off;
}

void
message_clear(struct message *m)
{
	for (size_t i = 0; i < m->nhdrs; i++) {
		free(m->hdrs[i].name);
		free(m->hdrs[i].value);
		free(m->hdrs[i].raw);
	}
	free(m->hdrs);
	free(m->body);
	free(m->data);
	memset(m, 0, sizeof(*m));
}

long
message_find(const struct message *m, const char *name, size_t nth)
{
	for (size_t i = 0; i < m->nhdrs; i++)
		if (strcasecmp(m->hdrs[i].name, name) == 0 && nth-- == 0)
			return (long)i;
	return -1;
}

const char *
message_get(const struct message *m, const char *name, size_t nth)
{
	long i = message_find(m, name, nth);

	return i < 0 ? NULL : m->hdrs[i].value;
}

int
message_header_name_ok(const char *n)
{
	if (n == NULL || *n == '\0' || strlen(n) > 200)
		return 0;
	for (; *n; n++)
		if ((unsigned char)*n <= 32 || (unsigned char)*n >= 127 ||
		    *n == ':')
			return 0;
	return 1;
}

int
message_header_value_ok(const char *v)
{
	if (v == NULL || strlen(v) > 64 * 1024)
		return 0;
	return strpbrk(v, "\r\n") == NULL;
}

int
message_insert(struct message *m, size_t index, const char *name,
    const char *value)
{
	if (!message_header_name_ok(name) || !message_header_value_ok(value) ||
	    m->nhdrs >= MESSAGE_MAX_HEADERS + MESSAGE_MAX_ADDED)
		return -1;
	if (index > m->nhdrs)
		index = m->nhdrs;
	push(m, xstrdup(name), xstrdup(value), 0, 0);
	struct msg_header h = m->hdrs[m->nhdrs - 1];
	memmove(&m->hdrs[index + 1], &m->hdrs[index],
	    (m->nhdrs - 1 - index) * sizeof(*m->hdrs));
	m->hdrs[index] = h;
	m->changed = 1;
	return 0;
}

int
message_add(struct message *m, const char *name, const char *value)
{
	return message_insert(m, m->nhdrs, name, value);
}

int
message_change(struct message *m, const char *name, size_t nth,
    const char *value)
{
	long i;

	if (!message_header_name_ok(name) ||
	    (value != NULL && !message_header_value_ok(value)))
		return -1;
	if ((i = message_find(m, name, nth)) < 0)
		return value == NULL ? 0 : message_add(m, name, value);
	if (value == NULL) {
		free(m->hdrs[i].name);
		free(m->hdrs[i].value);
		free(m->hdrs[i].raw);
		memmove(&m->hdrs[i], &m->hdrs[i + 1],
		    (m->nhdrs - (size_t)i - 1) * sizeof(*m->hdrs));
		m->nhdrs--;
	} else {
		free(m->hdrs[i].value);
		free(m->hdrs[i].raw);
		m->hdrs[i].raw = NULL;
		m->hdrs[i].value = xstrdup(value);
		m->hdrs[i].raw_len = 0;
	}
	m->changed = 1;
	return 0;
}

/*
 * raw_field - "Name:" raw_value "\r\n" with every line break made CRLF,
 * or NULL when raw_value has a NUL-free but bad shape: a CR not before
 * LF, a break not followed by a blank, or a folded line of blanks only.
 */
static char *
raw_field(const char *name, const char *v)
{
	size_t n = strlen(name), k = strlen(v), o;
	char *out;

	if (k > 64 * 1024)
		return NULL;
	out = xmalloc(n + 1 + 2 * k + 3);
	memcpy(out, name, n);
	out[n] = ':';
	o = n + 1;
	for (size_t i = 0; i < k; i++) {
		if (v[i] == '\r' && v[i + 1] != '\n')
			goto bad;
		if (v[i] == '\r')
			continue;
		if (v[i] == '\n') {
			size_t j = i + 1;
			if (v[j] != ' ' && v[j] != '\t')
				goto bad;
			while (v[j] == ' ' || v[j] == '\t')
				j++;
			if (v[j] == '\0' || v[j] == '\r' || v[j] == '\n')
				goto bad;
			out[o++] = '\r';
		}
		out[o++] = v[i];
	}
	memcpy(out + o, "\r\n", 3);
	return out;
bad:
	free(out);
	return NULL;
}

int
message_insert_raw(struct message *m, size_t index, const char *name,
    const char *raw_value)
{
	char *raw;
	size_t n;

	if (!message_header_name_ok(name) ||
	    (raw = raw_field(name, raw_value)) == NULL)
		return -1;
	n = strlen(name);
	if (message_insert(m, index, name, "") == -1) {
		free(raw);
		return -1;
	}
	index = index > m->nhdrs - 1 ? m->nhdrs - 1 : index;
	free(m->hdrs[index].value);
	m->hdrs[index].value = unfold(raw + n + 1, strlen(raw) - n - 1);
	m->hdrs[index].raw = raw;
	return 0;
}

int
message_change_raw(struct message *m, const char *name, size_t nth,
    const char *raw_value)
{
	long i;
	char *raw;
	size_t n;

	if ((i = message_find(m, name, nth)) < 0)
		return message_insert_raw(m, m->nhdrs, name, raw_value);
	if (!message_header_name_ok(name) ||
	    (raw = raw_field(name, raw_value)) == NULL)
		return -1;
	n = strlen(name);
	free(m->hdrs[i].value);
	free(m->hdrs[i].raw);
	m->hdrs[i].value = unfold(raw + n + 1, strlen(raw) - n - 1);
	m->hdrs[i].raw = raw;
	m->hdrs[i].raw_len = 0;
	m->changed = 1;
	return 0;
}

const char *
message_field_text(const struct message *m, size_t i, size_t *len)
{
	const struct msg_header *h = &m->hdrs[i];
	size_t n = strlen(h->name);

	if (h->raw_len) {
		*len = h->raw_len - n - 1;
		if (*len >= 2 && m->data[h->raw_off + h->raw_len - 1] == '\n')
			*len -= m->data[h->raw_off + h->raw_len - 2] == '\r' ?
			    2 : 1;
		return m->data + h->raw_off + n + 1;
	}
	if (h->raw) {
		*len = strlen(h->raw) - n - 1 - 2;
		return h->raw + n + 1;
	}
	*len = strlen(h->value);
	return h->value;		/* rendered after ": " */
}

char *
message_field_milter(const struct message *m, size_t i, int exact)
{
	size_t len, o = 0;
	const char *t = message_field_text(m, i, &len);
	char *v = xmalloc(len + 2);

	if (m->hdrs[i].raw_len == 0 && m->hdrs[i].raw == NULL)
		v[o++] = ' ';		/* rendered as "Name: value" */
	for (size_t k = 0; k < len; k++)
		if (t[k] != '\r' || k + 1 >= len || t[k + 1] != '\n')
			v[o++] = t[k];	/* CRLF folds become LF */
	v[o] = '\0';
	if (!exact && v[0] == ' ')
		memmove(v, v + 1, o);
	return v;
}

int
message_replace_body(struct message *m, const char *body, size_t len)
{
	free(m->body);
	m->body = xmalloc(len + 1);
	memcpy(m->body, body, len);
	m->body_len = len;
	m->changed = 1;
	return 0;
}

const char *
message_body(const struct message *m, size_t *len)
{
	if (m->body != NULL) {
		*len = m->body_len;
		return m->body;
	}
	*len = m->len - m->body_off;
	return m->data + m->body_off;
}

/* render_fields - the header fields into out (sized by the caller) */
static size_t
render_fields(const struct message *m, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < m->nhdrs; i++) {
		const struct msg_header *h = &m->hdrs[i];
		if (h->raw_len) {
			memcpy(out + o, m->data + h->raw_off, h->raw_len);
			o += h->raw_len;
			continue;
		}
		if (h->raw) {
			size_t k = strlen(h->raw);
			memcpy(out + o, h->raw, k);
			o += k;
			continue;
		}
		size_t n = strlen(h->name), k = strlen(h->value);
		memcpy(out + o, h->name, n);
		o += n;
		memcpy(out + o, ": ", 2);
		o += 2;
		memcpy(out + o, h->value, k);
		o += k;
		memcpy(out + o, "\r\n", 2);
		o += 2;
	}
	return o;
}

static size_t
fields_size(const struct message *m)
{
	size_t cap = 0;

	for (size_t i = 0; i < m->nhdrs; i++)
		cap += m->hdrs[i].raw_len ? m->hdrs[i].raw_len :
		    m->hdrs[i].raw ? strlen(m->hdrs[i].raw) :
		    strlen(m->hdrs[i].name) + strlen(m->hdrs[i].value) + 4;
	return cap;
}

char *
message_render_head(const struct message *m, size_t *len)
{
	char *out = xmalloc(fields_size(m) + 3);
	size_t o = render_fields(m, out);

	if (m->has_separator || m->body != NULL) {
		memcpy(out + o, "\r\n", 2);
		o += 2;
	}
	*len = o;
	return out;
}

/*
 * message_render - fields (original bytes where unchanged), the blank
 * line, the body. A replaced body gets its bare LFs made CRLF and a final
 * CRLF, so the queue holds SMTP-clean text whatever the filter gave.
 */
char *
message_render(const struct message *m, size_t *len)
{
	size_t blen, o;
	const char *body = message_body(m, &blen);
	char *out = xmalloc(fields_size(m) + 2 + blen * 2 + 2 + 1);

	o = render_fields(m, out);
	if (m->has_separator || m->body != NULL) {
		memcpy(out + o, "\r\n", 2);
		o += 2;
	}
	if (m->body == NULL) {
		memcpy(out + o, body, blen);
		o += blen;
	} else {
		for (size_t i = 0; i < blen; i++) {
			if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r'))
				out[o++] = '\r';
			out[o++] = body[i];
			if (body[i] == '\r' && (i + 1 == blen || body[i + 1] != '\n'))
				out[o++] = '\n';
		}
		if (blen > 0 && body[blen - 1] != '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
		}
	}
	*len = o;
	return out;
}
