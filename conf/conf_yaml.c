/*
 * conf_yaml.c - libyaml events turned into a tree of positioned nodes
 *
 * API: conf_yaml_load(), conf_yaml_free(), conf_yaml_get(); see conf_yaml.h.
 * The file is read into memory first (at most CONF_YAML_MAX_SIZE bytes) so
 * that a reader error, which libyaml reports as a byte offset, can still be
 * given as a line and column.
 * Errors: every failure, including libyaml's own, fills err with
 * "FILE:LINE:COL: what" (only an unreadable file has no position).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "conf_yaml.h"

struct ybuild {
	const char	*path;
	char		*err;
	size_t		 errlen;
	struct ynode	*root;
	struct ynode	*stack[CONF_YAML_MAX_DEPTH];
	size_t		 depth;
	int		 ndocs;
};

static int	 yerr(struct ybuild *, unsigned long, unsigned long,
		    const char *, ...)
		    __attribute__((format(printf, 4, 5)));
static int	 read_file(struct ybuild *, unsigned char **, size_t *);
static int	 parser_error(struct ybuild *, const yaml_parser_t *,
		    const unsigned char *, size_t);
static struct ynode *node_new(struct ybuild *, enum ynode_type,
		    const yaml_mark_t *);
static int	 node_append(struct ybuild *, struct ynode *, struct ynode *);
static int	 check_key(struct ybuild *, const struct ynode *,
		    const struct ynode *);
static int	 add_node(struct ybuild *, struct ynode *);
static int	 on_scalar(struct ybuild *, const yaml_event_t *);
static int	 on_start(struct ybuild *, const yaml_event_t *,
		    enum ynode_type);
static int	 on_event(struct ybuild *, const yaml_event_t *);
static int	 is_null(const char *);

static int
yerr(struct ybuild *b, unsigned long line, unsigned long col,
    const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	if (b->err == NULL || b->errlen == 0)
		return -1;
	n = snprintf(b->err, b->errlen, "%s:%lu:%lu: ", b->path, line, col);
	if (n < 0 || (size_t)n >= b->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->err + n, b->errlen - n, fmt, ap);
	va_end(ap);
	return -1;
}

static int
read_file(struct ybuild *b, unsigned char **bufp, size_t *lenp)
{
	FILE		*fp;
	unsigned char	*buf, *nbuf;
	size_t		 len = 0, cap = 0, n;

	if ((fp = fopen(b->path, "r")) == NULL) {
		snprintf(b->err, b->errlen, "%s: cannot open: %s", b->path,
		    strerror(errno));
		return -1;
	}
	buf = NULL;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			if (cap > CONF_YAML_MAX_SIZE + 1)
				cap = CONF_YAML_MAX_SIZE + 1;
			if ((nbuf = realloc(buf, cap)) == NULL) {
				snprintf(b->err, b->errlen, "%s: out of memory",
				    b->path);
				goto fail;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (len > CONF_YAML_MAX_SIZE) {
			snprintf(b->err, b->errlen, "%s: file larger than %lu "
			    "bytes", b->path, CONF_YAML_MAX_SIZE);
			goto fail;
		}
		if (n == 0)
			break;
	}
	if (ferror(fp)) {
		snprintf(b->err, b->errlen, "%s: read error", b->path);
		goto fail;
	}
	fclose(fp);
	*bufp = buf;
	*lenp = len;
	return 0;
fail:
	free(buf);
	fclose(fp);
	return -1;
}

/* libyaml gives a reader error as a byte offset: count lines up to it. */
static int
parser_error(struct ybuild *b, const yaml_parser_t *p,
    const unsigned char *buf, size_t len)
{
	unsigned long	 line = 1, col = 1;
	size_t		 i;
	const char	*problem;
	char		 ctx[128];

	problem = p->problem ? p->problem : "unknown YAML error";
	switch (p->error) {
	case YAML_MEMORY_ERROR:
		snprintf(b->err, b->errlen, "%s: out of memory", b->path);
		return -1;
	case YAML_READER_ERROR:
		for (i = 0; i < p->problem_offset && i < len; i++) {
			if (buf[i] == '\n') {
				line++;
				col = 1;
			} else
				col++;
		}
		return yerr(b, line, col, "%s", problem);
	default:
		ctx[0] = '\0';
		if (p->context != NULL && (p->context_mark.line !=
		    p->problem_mark.line || p->context_mark.column !=
		    p->problem_mark.column))
			snprintf(ctx, sizeof(ctx), " %s started at %lu:%lu",
			    p->context,
			    (unsigned long)p->context_mark.line + 1,
			    (unsigned long)p->context_mark.column + 1);
		else if (p->context != NULL)
			snprintf(ctx, sizeof(ctx), " %s", p->context);
		return yerr(b, p->problem_mark.line + 1,
		    p->problem_mark.column + 1, "%s%s", problem, ctx);
	}
}

static struct ynode *
node_new(struct ybuild *b, enum ynode_type type, const yaml_mark_t *m)
{
	struct ynode	*n;

	if ((n = calloc(1, sizeof(*n))) == NULL) {
		yerr(b, m->line + 1, m->column + 1, "out of memory");
		return NULL;
	}
	n->type = type;
	n->line = m->line + 1;
	n->col = m->column + 1;
	return n;
}

static int
node_append(struct ybuild *b, struct ynode *parent, struct ynode *kid)
{
	struct ynode	**nk;
	size_t		  ncap;

	if (parent->nkids == parent->cap) {
		ncap = parent->cap ? parent->cap * 2 : 8;
		if (ncap > SIZE_MAX / sizeof(*nk) ||
		    (nk = realloc(parent->kids, ncap * sizeof(*nk))) == NULL)
			return yerr(b, kid->line, kid->col, "out of memory");
		parent->kids = nk;
		parent->cap = ncap;
	}
	parent->kids[parent->nkids++] = kid;
	return 0;
}

static int
check_key(struct ybuild *b, const struct ynode *map, const struct ynode *key)
{
	size_t	 i;

	if (key->type != YNODE_SCALAR)
		return yerr(b, key->line, key->col,
		    "a mapping key must be a scalar, not a %s",
		    conf_yaml_kind(key));
	for (i = 0; i < map->nkids; i += 2) {
		if (strcmp(map->kids[i]->value, key->value) == 0)
			return yerr(b, key->line, key->col,
			    "duplicate key '%.64s' (first at line %lu)",
			    key->value, map->kids[i]->line);
	}
	return 0;
}

/* Attach a new node to the open container or make it the root; owns n. */
static int
add_node(struct ybuild *b, struct ynode *n)
{
	struct ynode	*parent;

	if (b->depth == 0) {
		b->root = n;
		return 0;
	}
	parent = b->stack[b->depth - 1];
	if (parent->type == YNODE_MAPPING && parent->nkids % 2 == 0 &&
	    check_key(b, parent, n) == -1)
		goto fail;
	if (node_append(b, parent, n) == -1)
		goto fail;
	return 0;
fail:
	conf_yaml_free(n);
	return -1;
}

static int
is_null(const char *s)
{
	return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static int
on_scalar(struct ybuild *b, const yaml_event_t *ev)
{
	struct ynode	*n;
	size_t		 len = ev->data.scalar.length;

	if (memchr(ev->data.scalar.value, '\0', len) != NULL)
		return yerr(b, ev->start_mark.line + 1,
		    ev->start_mark.column + 1, "NUL character in a value");
	if ((n = node_new(b, YNODE_SCALAR, &ev->start_mark)) == NULL)
		return -1;
	if ((n->value = malloc(len + 1)) == NULL) {
		free(n);
		return yerr(b, ev->start_mark.line + 1,
		    ev->start_mark.column + 1, "out of memory");
	}
	memcpy(n->value, ev->data.scalar.value, len);
	n->value[len] = '\0';
	n->null = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    is_null(n->value);
	return add_node(b, n);
}

static int
on_start(struct ybuild *b, const yaml_event_t *ev, enum ynode_type type)
{
	struct ynode	*n;

	if (b->depth == CONF_YAML_MAX_DEPTH)
		return yerr(b, ev->start_mark.line + 1,
		    ev->start_mark.column + 1, "nested deeper than %d levels",
		    CONF_YAML_MAX_DEPTH);
	if ((n = node_new(b, type, &ev->start_mark)) == NULL)
		return -1;
	if (add_node(b, n) == -1)
		return -1;
	b->stack[b->depth++] = n;
	return 0;
}

static int
on_event(struct ybuild *b, const yaml_event_t *ev)
{
	const yaml_char_t	*anchor = NULL;
	unsigned long		 line, col;

	line = ev->start_mark.line + 1;
	col = ev->start_mark.column + 1;
	if (ev->type == YAML_SCALAR_EVENT)
		anchor = ev->data.scalar.anchor;
	else if (ev->type == YAML_SEQUENCE_START_EVENT)
		anchor = ev->data.sequence_start.anchor;
	else if (ev->type == YAML_MAPPING_START_EVENT)
		anchor = ev->data.mapping_start.anchor;
	if (anchor != NULL)
		return yerr(b, line, col, "anchors are not supported");

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (b->ndocs++ > 0)
			return yerr(b, line, col,
			    "only one YAML document is allowed");
		return 0;
	case YAML_ALIAS_EVENT:
		return yerr(b, line, col, "aliases are not supported");
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(b, ev, YNODE_SEQUENCE);
	case YAML_MAPPING_START_EVENT:
		return on_start(b, ev, YNODE_MAPPING);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth > 0)
			b->depth--;
		return 0;
	default:
		return 0;
	}
}

int
conf_yaml_load(const char *path, struct ynode **root, char *err,
    size_t errlen)
{
	struct ybuild	 b;
	yaml_parser_t	 parser;
	yaml_event_t	 ev;
	unsigned char	*buf;
	size_t		 len;
	int		 done = 0, rc = 0;
	char		 dummy[1];

	memset(&b, 0, sizeof(b));
	b.path = path;
	b.err = err != NULL && errlen > 0 ? err : dummy;
	b.errlen = err != NULL && errlen > 0 ? errlen : sizeof(dummy);
	*root = NULL;
	if (read_file(&b, &buf, &len) == -1)
		return -1;
	if (!yaml_parser_initialize(&parser)) {
		free(buf);
		snprintf(b.err, b.errlen, "%s: out of memory", path);
		return -1;
	}
	yaml_parser_set_input_string(&parser, buf, len);
	while (!done && rc == 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = parser_error(&b, &parser, buf, len);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		rc = on_event(&b, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	free(buf);
	if (rc == -1) {
		conf_yaml_free(b.root);
		return -1;
	}
	*root = b.root;
	return 0;
}

void
conf_yaml_free(struct ynode *n)
{
	size_t	 i;

	if (n == NULL)
		return;
	for (i = 0; i < n->nkids; i++)
		conf_yaml_free(n->kids[i]);
	free(n->kids);
	free(n->value);
	free(n);
}

const struct ynode *
conf_yaml_get(const struct ynode *map, const char *key)
{
	size_t	 i;

	if (map == NULL || map->type != YNODE_MAPPING)
		return NULL;
	for (i = 0; i + 1 < map->nkids; i += 2)
		if (strcmp(map->kids[i]->value, key) == 0)
			return map->kids[i + 1];
	return NULL;
}

const char *
conf_yaml_kind(const struct ynode *n)
{
	switch (n->type) {
	case YNODE_SCALAR:
		return "scalar";
	case YNODE_SEQUENCE:
		return "list";
	case YNODE_MAPPING:
		return "mapping";
	}
	return "node";
}
