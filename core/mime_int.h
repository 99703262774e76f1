/*
 * mime_int.h - internals shared by mime.c, mime_parse.c, mime_field.c,
 * mime_sniff.c and mime_archive.c; nothing else includes it.
 *
 * One struct mime_ctx lives on the stack of each mime_parse() call and owns
 * the tree under construction. Parts live in a growing array, so code that
 * may add parts keeps indices, never struct mime_part pointers.
 */
#ifndef SLUICE_MIME_INT_H
#define SLUICE_MIME_INT_H

#include <stddef.h>

#include "mime.h"

#define MIME_DEPTH_CAP		256		/* max_depth is clamped to this */
#define MIME_ARCHIVE_DEPTH_CAP	16		/* and max_archive_depth to this */
#define MIME_SNIFF_MAX		(64 * 1024)	/* bytes given to libmagic */
#define MIME_SNIFF_BINARY	(16 * 1024)	/* ... if not starting with NUL */
#define MIME_SNIFF_TEXT		1024		/* ... if they look like text */
#define MIME_HEADER_MAX		(64 * 1024)	/* Content-* header bytes parsed */
#define MIME_PARAMS_MAX		64		/* parameters read per field */
#define MIME_PROBLEMS_MAX	2048		/* length of tree->problems */

enum mime_cte {
	MIME_CTE_IDENTITY,	/* absent, 7bit, 8bit, binary */
	MIME_CTE_BASE64,
	MIME_CTE_QP,
	MIME_CTE_UUENCODE,
	MIME_CTE_UNKNOWN,	/* kept as is, flagged decode_error */
};

struct mime_bound {
	const char *s;		/* boundary parameter, without the "--" */
	size_t len;
};

struct mime_ctx {
	struct mime_limits lim;		/* clamped copy */
	struct mime_tree *tree;
	size_t cap;			/* parts allocated */
	size_t kept;			/* decoded bytes kept over all parts */
	size_t archive_left;		/* archive decompression budget */
	int stop;			/* max_parts reached: add nothing more */

	/* structure scanner (mime_parse.c) */
	const char *end;		/* end of the text being scanned */
	struct mime_bound *bounds;	/* open multiparts, innermost last */
	unsigned nbounds;
	unsigned bbase;			/* bounds below this belong to an outer text */

	size_t plen;			/* tree->problems: used, allocated */
	size_t pcap;
};

/* What the Content-* headers of one part say (mime_field.c). */
struct mime_fields {
	enum mime_cte cte;
	char *boundary;			/* multipart boundary, malloc'ed, or NULL */
	int is_message;			/* message/rfc822, message/global ... */
	int cut;			/* a header over MIME_HEADER_MAX or
					   MIME_PARAMS_MAX: cut */
};

/* mime.c */
struct mime_part *mime_part_add(struct mime_ctx *, int parent, unsigned depth);
void	mime_problem(struct mime_ctx *, int part, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	mime_limit_hit(struct mime_ctx *, int part, const char *what);
void	mime_leaf(struct mime_ctx *, struct mime_part *, enum mime_cte,
	    const char *raw, size_t len);

/* mime_parse.c */
void	mime_parse_message(struct mime_ctx *, const char *msg, size_t len);

/* mime_field.c */
void	mime_fields_parse(struct mime_ctx *, struct mime_part *,
	    const char *ctype, size_t ctype_len, const char *cdisp,
	    size_t cdisp_len, const char *cte, size_t cte_len, int digest,
	    struct mime_fields *);
char	*mime_utf8_clean(const char *, size_t);

/* mime_decode.c */
void	mime_decode(struct mime_ctx *, struct mime_part *, enum mime_cte,
	    const char *raw, size_t len);

/* mime_sniff.c */
void	mime_sniff_init(void);
void	mime_sniff_shutdown(void);
char	*mime_sniff(const unsigned char *, size_t);

/* mime_archive.c */
int	mime_archive_wanted(const struct mime_part *);
void	mime_archive_list(struct mime_ctx *, struct mime_part *);

#endif
