/*
 * mime_field.c - the Content-Type, Content-Disposition and
 * Content-Transfer-Encoding fields of a part; RFC 2047 header decoding;
 * UTF-8 hygiene.
 *
 * Media type and disposition tokens are read here: GMime turns an invalid
 * type into application/octet-stream where RFC 2045 says text/plain.
 * Parameters go to g_mime_param_list_parse(), which joins RFC 2231
 * continuations, converts their charset to UTF-8 and decodes the RFC 2047
 * words some mailers put in quoted names. GMime stops at the first
 * malformed parameter, so pieces it rejects are dropped and the rest
 * parsed again: "attachment; junk; filename=evil.exe" still names
 * evil.exe. At most MIME_PARAMS_MAX parameters per field are read (GMime
 * needs ~17 ms for 7,000 of them).
 * Every string leaving this file is valid UTF-8 (bad bytes become U+FFFD);
 * NUL bytes in header values are dropped.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "mime_int.h"
#include "util.h"

/* mime_utf8_clean - a malloc'ed copy, invalid bytes as U+FFFD, no NULs */
char *
mime_utf8_clean(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	char *out = xmalloc(n * 3 + 1), *o = out;
	size_t i = 0, k;

	while (i < n) {
		if (s[i] == '\0') {
			i++;
		} else if ((k = utf8_seq(s + i, n - i)) == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(o, s + i, k);
			o += k;
			i += k;
		}
	}
	*o = '\0';
	return xrealloc(out, (size_t)(o - out) + 1);
}

static char *
clean_str(const char *s)
{
	return s ? mime_utf8_clean(s, strlen(s)) : NULL;
}

/* unfold - the field value as a C string: no CR, LF or NUL; capped */
static char *
unfold(const char *p, size_t n, int *cut)
{
	char *s, *o;

	if (n > MIME_HEADER_MAX) {
		n = MIME_HEADER_MAX;
		*cut = 1;
	}
	o = s = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		if (p[i] != '\r' && p[i] != '\n' && p[i] != '\0')
			*o++ = p[i];
	*o = '\0';
	return s;
}

/* skip_cfws - blanks and (nested) comments */
static const char *
skip_cfws(const char *s)
{
	int depth = 0;

	for (; *s; s++) {
		if (depth > 0 && *s == '\\' && s[1] != '\0')
			s++;
		else if (*s == '(')
			depth++;
		else if (*s == ')' && depth > 0)
			depth--;
		else if (depth == 0 && *s != ' ' && *s != '\t')
			break;
	}
	return s;
}

/* token_len - RFC 2045 token: no space, CTL or tspecial */
static size_t
token_len(const char *s)
{
	size_t n = 0;

	while ((unsigned char)s[n] > 32 && (unsigned char)s[n] < 127 &&
	    strchr("()<>@,;:\\\"/[]?=", s[n]) == NULL)
		n++;
	return n;
}

static char *
lower_dup(const char *s, size_t n)
{
	char *d = xstrndup(s, n);

	str_lower(d);
	return d;
}

/* media_type - "type/subtype" lower case, or NULL if not well-formed */
static char *
media_type(const char *v)
{
	const char *t, *st;
	size_t tn, stn;
	char *r;

	t = skip_cfws(v);
	tn = token_len(t);
	st = skip_cfws(t + tn);
	if (tn == 0 || *st != '/')
		return NULL;
	st = skip_cfws(st + 1);
	if ((stn = token_len(st)) == 0)
		return NULL;
	r = xmalloc(tn + stn + 2);
	memcpy(r, t, tn);
	r[tn] = '/';
	memcpy(r + tn + 1, st, stn);
	r[tn + stn + 1] = '\0';
	str_lower(r);
	return r;
}

/* next_semicolon - the next ';' outside a quoted string, or NULL */
static const char *
next_semicolon(const char *s)
{
	int quoted = 0;

	for (; *s; s++) {
		if (quoted && *s == '\\' && s[1] != '\0')
			s++;
		else if (*s == '"')
			quoted = !quoted;
		else if (*s == ';' && !quoted)
			return s;
	}
	return NULL;
}

static int
param_count(const char *s, size_t n)
{
	char *one = xstrndup(s, n);
	GMimeParamList *l = g_mime_param_list_parse(NULL, one);
	int k = l != NULL ? g_mime_param_list_length(l) : 0;

	if (l != NULL)
		g_object_unref(l);
	free(one);
	return k;
}

/* split_params - the non-empty ';'-separated pieces after the first ';' */
static size_t
split_params(const char *v, const char **seg, size_t *len, int *cut)
{
	const char *p = next_semicolon(v), *q;
	size_t n = 0;

	for (; p != NULL; p = q) {
		p++;
		q = next_semicolon(p);
		if (*skip_cfws(p) == '\0' || *skip_cfws(p) == ';')
			continue;
		if (n == MIME_PARAMS_MAX) {
			*cut = 1;
			break;
		}
		seg[n] = p;
		len[n++] = q ? (size_t)(q - p) : strlen(p);
	}
	return n;
}

/*
 * param_list - the parameters after the first ';' of v (at most
 * MIME_PARAMS_MAX). If GMime finds fewer parameters than pieces, the
 * pieces it rejects alone are left out and the rest parsed again; *bad
 * tells that happened, *cut that pieces were over the cap.
 */
static GMimeParamList *
param_list(const char *v, int *bad, int *cut)
{
	const char *seg[MIME_PARAMS_MAX];
	size_t len[MIME_PARAMS_MAX], n;
	GString *s = g_string_new(NULL);
	GMimeParamList *l;

	n = split_params(v, seg, len, cut);
	for (size_t i = 0; i < n; i++) {
		g_string_append_len(s, seg[i], (gssize)len[i]);
		g_string_append_c(s, ';');
	}
	l = g_mime_param_list_parse(NULL, s->str);
	if (l != NULL && (size_t)g_mime_param_list_length(l) < n) {
		g_object_unref(l);
		g_string_truncate(s, 0);
		for (size_t i = 0; i < n; i++) {
			if (param_count(seg[i], len[i]) == 0) {
				*bad = 1;
				continue;
			}
			g_string_append_len(s, seg[i], (gssize)len[i]);
			g_string_append_c(s, ';');
		}
		l = g_mime_param_list_parse(NULL, s->str);
	}
	g_string_free(s, TRUE);
	return l;
}

static const char *
param(GMimeParamList *l, const char *name)
{
	GMimeParam *p = l ? g_mime_param_list_get_parameter(l, name) : NULL;
	const char *v = p ? g_mime_param_get_value(p) : NULL;

	return v != NULL && *v != '\0' ? v : NULL;
}

static int
is_message_subtype(const char *t)
{
	static const char *const sub[] = { "rfc822", "rfc2822", "global",
	    "news" };

	if (strncmp(t, "message/", 8) != 0)
		return 0;
	for (size_t i = 0; i < nitems(sub); i++)
		if (strcmp(t + 8, sub[i]) == 0)
			return 1;
	return 0;
}

static GMimeParamList *
content_type(struct mime_ctx *c, struct mime_part *p, const char *raw,
    size_t n, int digest, struct mime_fields *f)
{
	char *v = raw ? unfold(raw, n, &f->cut) : NULL;
	GMimeParamList *l = NULL;
	int bad = 0;

	p->content_type = v ? media_type(v) : NULL;
	if (v != NULL && p->content_type == NULL)
		mime_problem(c, (int)p->index, "invalid Content-Type");
	if (p->content_type == NULL)
		p->content_type = xstrdup(digest ? "message/rfc822" :
		    "text/plain");
	if (v != NULL)
		l = param_list(v, &bad, &f->cut);
	if (bad)
		mime_problem(c, (int)p->index, "malformed Content-Type"
		    " parameters skipped");
	p->charset = clean_str(param(l, "charset"));
	if (strncmp(p->content_type, "multipart/", 10) == 0) {
		if (param(l, "boundary") != NULL)
			f->boundary = xstrdup(param(l, "boundary"));
		else
			mime_problem(c, (int)p->index, "multipart without"
			    " boundary, analysed as a leaf");
	}
	f->is_message = is_message_subtype(p->content_type);
	free(v);
	return l;
}

static GMimeParamList *
disposition(struct mime_ctx *c, struct mime_part *p, const char *raw,
    size_t n, struct mime_fields *f)
{
	char *v;
	const char *t;
	size_t tn;
	GMimeParamList *l;
	int bad = 0;

	if (raw == NULL)
		return NULL;
	v = unfold(raw, n, &f->cut);
	t = skip_cfws(v);
	if ((tn = token_len(t)) > 0) {
		int in = tn == 6 && strncasecmp(t, "inline", tn) == 0;
		int at = tn == 10 && strncasecmp(t, "attachment", tn) == 0;

		p->disposition = xstrdup(in ? "inline" : "attachment");
		if (!in && !at)
			mime_problem(c, (int)p->index, "unknown disposition"
			    " taken as attachment");
	}
	l = param_list(v, &bad, &f->cut);
	if (bad)
		mime_problem(c, (int)p->index, "malformed Content-Disposition"
		    " parameters skipped");
	free(v);
	return l;
}

static enum mime_cte
transfer_encoding(struct mime_ctx *c, struct mime_part *p, const char *raw,
    size_t n, struct mime_fields *f)
{
	static const struct {
		const char *name;
		enum mime_cte cte;
	} map[] = {
		{ "7bit", MIME_CTE_IDENTITY }, { "8bit", MIME_CTE_IDENTITY },
		{ "binary", MIME_CTE_IDENTITY }, { "base64", MIME_CTE_BASE64 },
		{ "quoted-printable", MIME_CTE_QP },
		{ "x-uuencode", MIME_CTE_UUENCODE },
		{ "uuencode", MIME_CTE_UUENCODE },
		{ "x-uue", MIME_CTE_UUENCODE },
	};
	char *v;
	const char *t;
	size_t tn;

	if (raw == NULL)
		return MIME_CTE_IDENTITY;
	v = unfold(raw, n, &f->cut);
	t = skip_cfws(v);
	if ((tn = token_len(t)) > 0)
		p->transfer_encoding = lower_dup(t, tn);
	free(v);
	if (p->transfer_encoding == NULL)
		return MIME_CTE_IDENTITY;
	for (size_t i = 0; i < nitems(map); i++)
		if (strcmp(p->transfer_encoding, map[i].name) == 0)
			return map[i].cte;
	mime_problem(c, (int)p->index, "unknown transfer encoding %.40s",
	    p->transfer_encoding);
	return MIME_CTE_UNKNOWN;
}

/*
 * mime_fields_parse - fill the header-derived fields of p; f gets what the
 * structure scanner needs (boundary, message/rfc822, transfer encoding).
 */
void
mime_fields_parse(struct mime_ctx *c, struct mime_part *p, const char *ctype,
    size_t ctype_len, const char *cdisp, size_t cdisp_len, const char *cte,
    size_t cte_len, int digest, struct mime_fields *f)
{
	GMimeParamList *ct, *cd;
	const char *name;

	memset(f, 0, sizeof(*f));
	ct = content_type(c, p, ctype, ctype_len, digest, f);
	cd = disposition(c, p, cdisp, cdisp_len, f);
	f->cte = transfer_encoding(c, p, cte, cte_len, f);
	if ((name = param(cd, "filename")) == NULL)
		name = param(ct, "name");
	p->filename = clean_str(name);
	p->is_attachment = p->filename != NULL || (p->disposition != NULL &&
	    strcmp(p->disposition, "attachment") == 0);
	if (ct != NULL)
		g_object_unref(ct);
	if (cd != NULL)
		g_object_unref(cd);
}

static int
has_text(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t')
			return 1;
	return 0;
}

char *
mime_decode_header(const char *raw)
{
	char *in, *dec, *out;

	if (raw == NULL)
		return xstrdup("");
	in = mime_utf8_clean(raw, strlen(raw));
	dec = g_mime_utils_header_decode_text(NULL, in);
	if (dec == NULL || (*dec == '\0' && has_text(in))) {
		g_free(dec);		/* nothing decodable: as it was */
		return in;
	}
	out = mime_utf8_clean(dec, strlen(dec));
	g_free(dec);
	free(in);
	return out;
}
