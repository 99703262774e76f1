/*
 * mime.c - MIME analysis entry points (mime.h): setup, the part tree and
 * its problems summary, and the per-leaf pipeline decode -> sniff -> list.
 *
 * The work is split by concern: mime_parse.c finds the structure,
 * mime_field.c reads the Content-* headers, mime_decode.c undoes the
 * transfer encodings, mime_sniff.c asks libmagic, mime_archive.c lists
 * archives. Shared internals are in mime_int.h.
 * Memory comes from the x-allocators (util.h): out of memory aborts, so
 * mime_parse() never returns NULL in practice.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "mime.h"
#include "mime_int.h"
#include "util.h"

static int initialized;

void
mime_global_init(void)
{
	if (initialized++)
		return;
	g_mime_init();
	mime_sniff_init();
}

void
mime_global_shutdown(void)
{
	if (initialized == 0 || --initialized > 0)
		return;
	mime_sniff_shutdown();
	g_mime_shutdown();
}

void
mime_limits_default(struct mime_limits *l)
{
	l->max_depth = 20;
	l->max_parts = 500;
	l->max_part_decoded = 10 * 1024 * 1024;
	l->max_total_decoded = 50 * 1024 * 1024;
	l->max_archive_members = 1000;
	l->max_archive_depth = 2;
	l->max_archive_bytes = 64 * 1024 * 1024;
}

/* mime_part_add - append a part; NULL (and the tree marked) at max_parts */
struct mime_part *
mime_part_add(struct mime_ctx *c, int parent, unsigned depth)
{
	struct mime_tree *t = c->tree;
	struct mime_part *p;

	if (c->stop)
		return NULL;
	if (t->nparts >= c->lim.max_parts) {
		mime_limit_hit(c, parent, "max_parts reached, rest of message"
		    " not analysed");
		c->stop = 1;
		return NULL;
	}
	if (t->nparts == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 8;
		t->parts = xreallocarray(t->parts, c->cap, sizeof(*t->parts));
	}
	p = &t->parts[t->nparts];
	memset(p, 0, sizeof(*p));
	p->index = (unsigned)t->nparts++;
	p->parent = parent;
	p->depth = depth;
	return p;
}

/* mime_problem - add "part N: text" to tree->problems, up to a cap */
void
mime_problem(struct mime_ctx *c, int part, const char *fmt, ...)
{
	struct mime_tree *t = c->tree;
	char msg[256];
	va_list ap;
	int n;

	if (c->plen >= MIME_PROBLEMS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *s = msg; *s; s++)	/* ASCII only: cuts stay UTF-8 */
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
	if (c->pcap == 0) {
		c->pcap = MIME_PROBLEMS_MAX + 8;
		t->problems = xmalloc(c->pcap);
	}
	n = snprintf(t->problems + c->plen, c->pcap - c->plen, "%spart %d: %s",
	    c->plen ? "; " : "", part < 0 ? 0 : part, msg);
	if (n < 0 || c->plen + (size_t)n >= MIME_PROBLEMS_MAX) {
		c->plen = MIME_PROBLEMS_MAX - 4;
		memcpy(t->problems + c->plen, "...", 4);
		c->plen = MIME_PROBLEMS_MAX;
		return;
	}
	c->plen += (size_t)n;
}

void
mime_limit_hit(struct mime_ctx *c, int part, const char *what)
{
	c->tree->limited = 1;
	mime_problem(c, part, "%s", what);
}

/*
 * worth_sniffing - attachments and non-text parts. An inline text part
 * without a name is the message's own text: a client shows it, nobody
 * runs it, and libmagic's text tests are its slowest (about 1 ms a part).
 */
static int
worth_sniffing(const struct mime_part *p)
{
	return p->is_attachment || p->content_type == NULL ||
	    strncmp(p->content_type, "text/", 5) != 0;
}

/* mime_leaf - content of a leaf part: decode, sniff, list if an archive */
void
mime_leaf(struct mime_ctx *c, struct mime_part *p, enum mime_cte cte,
    const char *raw, size_t len)
{
	mime_decode(c, p, cte, raw, len);
	if (p->content_len > 0 && worth_sniffing(p))
		p->sniffed_type = mime_sniff(p->content, p->content_len);
	if (p->content_len > 0 && mime_archive_wanted(p))
		mime_archive_list(c, p);
}

static void
clamp_limits(struct mime_limits *l, const struct mime_limits *in)
{
	if (in != NULL)
		*l = *in;
	else
		mime_limits_default(l);
	if (l->max_depth > MIME_DEPTH_CAP)
		l->max_depth = MIME_DEPTH_CAP;
	if (l->max_archive_depth > MIME_ARCHIVE_DEPTH_CAP)
		l->max_archive_depth = MIME_ARCHIVE_DEPTH_CAP;
	if (l->max_parts == 0)
		l->max_parts = 1;
}

struct mime_tree *
mime_parse(const char *msg, size_t len, const struct mime_limits *lim)
{
	struct mime_ctx c;

	memset(&c, 0, sizeof(c));
	clamp_limits(&c.lim, lim);
	c.archive_left = c.lim.max_archive_bytes;
	c.tree = xcalloc(1, sizeof(*c.tree));
	c.bounds = xcalloc(c.lim.max_depth + 2, sizeof(*c.bounds));
	if (msg == NULL)
		len = 0;
	mime_parse_message(&c, msg ? msg : "", len);
	free(c.bounds);
	return c.tree;
}

static void
part_clear(struct mime_part *p)
{
	free(p->content_type);
	free(p->charset);
	free(p->disposition);
	free(p->filename);
	free(p->transfer_encoding);
	free(p->content);
	free(p->sniffed_type);
	for (size_t i = 0; i < p->narchive_members; i++)
		free(p->archive_members[i]);
	free(p->archive_members);
}

void
mime_tree_free(struct mime_tree *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nparts; i++)
		part_clear(&t->parts[i]);
	free(t->parts);
	free(t->problems);
	free(t);
}
