/*
 * mime.h - MIME analysis of a whole message for filters: the part tree with
 * decoded headers, decoded content, content sniffed with libmagic and the
 * member names of archives (libarchive).
 *
 * API: mime_global_init() once, then mime_parse() / mime_tree_free() from
 * any thread; mime_decode_header() for RFC 2047 header values.
 * Input is never trusted: every malformation yields a best-effort tree plus a
 * note in tree->problems, and every cost is bounded by struct mime_limits:
 * time and memory are linear in the message size (about 1.5 ms for 100 KB
 * with a 70 KB attachment, at worst about 0.4 s for 35 MB of crafted parts).
 * Ownership: the caller owns the tree; every string in it is malloc'ed,
 * valid UTF-8 and freed by mime_tree_free().
 * Threads: mime_parse() and mime_decode_header() are thread-safe; each thread
 * lazily opens its own libmagic handle (the 8 MB database is mapped once per
 * thread), closed when the thread exits. Stack: under 1 KB per nesting level.
 */
#ifndef SLUICE_MIME_H
#define SLUICE_MIME_H

#include <stddef.h>

struct mime_limits {
	unsigned max_depth;		/* nesting of multipart/message parts; default 20 (at most 256) */
	unsigned max_parts;		/* parts in the tree; default 500 */
	size_t max_part_decoded;	/* decoded bytes kept per part; default 10 MiB */
	size_t max_total_decoded;	/* decoded bytes kept over all parts; default 50 MiB */
	unsigned max_archive_members;	/* names listed per archive part (nested ones included); default 1000 */
	unsigned max_archive_depth;	/* archives inside archives to open; default 2 (at most 16) */
	size_t max_archive_bytes;	/* bytes decompressed while listing archives, whole message; default 64 MiB */
};
void	mime_limits_default(struct mime_limits *);

struct mime_part {
	unsigned index;			/* 0 = the message itself, depth-first order */
	int parent;			/* index of the parent, -1 for the root */
	unsigned depth;			/* 0 for the root */
	char *content_type;		/* "type/subtype", lower case; text/plain when absent or invalid (message/rfc822 in a multipart/digest) */
	char *charset;			/* parameter, or NULL */
	char *disposition;		/* "attachment", "inline", or NULL (unknown types count as attachment, RFC 2183) */
	char *filename;			/* UTF-8: Content-Disposition filename (RFC 2231 decoded) or Content-Type name (RFC 2047 decoded), or NULL */
	char *transfer_encoding;	/* "base64", "quoted-printable", "7bit", ... lower case or NULL */
	int is_multipart;		/* a container (multipart/x, message/rfc822): no content of its own */
	int is_attachment;		/* disposition attachment, or has a filename */
	unsigned char *content;		/* decoded bytes (leaf parts), up to the limits; NUL-terminated, or NULL */
	size_t content_len;
	size_t size;			/* full decoded size, even if content was cut */
	int truncated;			/* content cut at a limit */
	int decode_error;		/* e.g. broken base64: content is best effort */
	char *sniffed_type;		/* libmagic MIME type of the content ("application/x-dosexec"), or NULL for containers/empty
					   and for inline text parts without a name (not sniffed: the message's own text);
					   from its first 64 KiB, or first 1 KiB if that is text */
	char **archive_members;		/* names inside zip/tar/7z/rar/gz... (libarchive), NULL if not an archive */
	size_t narchive_members;
	int archive_truncated;		/* member list cut at a limit */
	int archive_encrypted;		/* encrypted entries seen */
};

/*
 * Archive members form one flat list per part. A member of a nested archive
 * is named after the member holding it: "inner.zip/evil.exe" follows
 * "inner.zip" in the list of the part whose filename is outer.zip.
 */
struct mime_tree {
	struct mime_part *parts;
	size_t nparts;
	int limited;			/* some limit was hit: tree is partial */
	char *problems;			/* "; "-separated summary of what was malformed or limited, or NULL */
};

/*
 * mime_parse - analyse a whole RFC 5322 message (CRLF or LF line ends).
 * Never fails on malformed input: returns what could be understood (at
 * least the root part); NULL only when out of memory. A NULL limits pointer
 * means the defaults.
 */
struct mime_tree *mime_parse(const char *msg, size_t len,
	    const struct mime_limits *);
void	mime_tree_free(struct mime_tree *);

/*
 * mime_decode_header - RFC 2047 encoded-words of an (unfolded) header value
 * decoded to UTF-8; malloc'ed. Invalid input comes back as it is, except
 * that bytes which are not UTF-8 become U+FFFD.
 */
char	*mime_decode_header(const char *raw);

/* mime_global_init - once per process before any other call (g_mime_init etc.) */
void	mime_global_init(void);
/* mime_global_shutdown - after every other thread using mime is gone */
void	mime_global_shutdown(void);

#endif
