/*
 * mime_archive.c - member names of archive parts (libarchive), read from
 * memory; nothing is ever extracted to disk.
 *
 * A part is tried when its bytes start with an archive or compressor
 * signature, or libmagic or its filename says archive. Readers: every
 * format libarchive has except raw and mtree (a text that names files,
 * which libarchive builds without the "checkfs" switch open on the local
 * disk); all compression filters. A compressed file that is no archive
 * (evil.exe.gz) lists one member, named from the gzip header or from the
 * compressed file's own name.
 *
 * Work is bounded three ways: max_archive_members names per part (nested
 * ones included), max_archive_bytes of decompressed data read over the
 * whole message, max_archive_depth levels of archives inside archives.
 * Entry data is read only to look for nested archives, and where skipping
 * would cost as much as reading (a compressed stream, solid 7z/rar/cab
 * blocks, a zip entry of unknown size). Every byte read is charged to the
 * budget, so a bomb ends as archive_truncated, not as a stall.
 * Nested members are listed as "inner.zip/evil.exe" after "inner.zip".
 */
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <archive.h>
#include <archive_entry.h>

#include "mime_int.h"
#include "util.h"

struct lister {
	struct mime_ctx *c;
	struct mime_part *p;
	char **names;
	size_t n, cap;
	int stop;			/* a limit was reached */
};

static int list(struct lister *, const void *, size_t, const char *,
	    const char *, unsigned);

static const char *const archive_exts[] = {
	"zip", "jar", "apk", "tar", "tgz", "tbz", "tbz2", "txz", "tzst", "taz",
	"gz", "bz2", "xz", "lzma", "lz", "zst", "z", "7z", "rar", "cab", "iso",
	"lzh", "lha", "cpio", "xar",
};
static const char *const compress_exts[] = {
	"gz", "bz2", "xz", "lzma", "lz", "zst", "z",
};
static const char *const archive_types[] = {
	"application/zip", "application/x-tar", "application/gzip",
	"application/x-gzip", "application/x-bzip2", "application/x-xz",
	"application/x-7z-compressed", "application/x-rar",
	"application/vnd.rar", "application/java-archive",
	"application/vnd.ms-cab-compressed", "application/zstd",
	"application/x-lzip", "application/x-lzma", "application/x-compress",
	"application/x-iso9660-image", "application/x-cpio",
	"application/x-lzh-compressed", "application/x-xar",
};

static const char *
ext_of(const char *name)
{
	const char *dot = name ? strrchr(name, '.') : NULL;

	return dot != NULL && strchr(dot, '/') == NULL ? dot + 1 : NULL;
}

static int
in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		if (strcasecmp(s, list[i]) == 0)
			return 1;
	return 0;
}

static int
name_says_archive(const char *name)
{
	return in_list(ext_of(name), archive_exts, nitems(archive_exts));
}

/* archive_magic - an archive or compressor signature at its offset */
static int
archive_magic(const unsigned char *b, size_t n)
{
	static const struct {
		size_t off, len;
		const char *sig;
	} m[] = {
		{ 0, 4, "PK\003\004" }, { 0, 4, "PK\005\006" },
		{ 0, 2, "\037\213" }, { 0, 3, "BZh" }, { 0, 6, "\3757zXZ" },
		{ 0, 6, "7z\274\257\047\034" }, { 0, 6, "Rar!\032\007" },
		{ 0, 4, "MSCF" }, { 0, 4, "\050\265\057\375" }, { 0, 4, "LZIP" },
		{ 0, 2, "\037\235" }, { 0, 4, "xar!" }, { 0, 6, "070707" },
		{ 0, 6, "070701" }, { 257, 5, "ustar" }, { 32769, 5, "CD001" },
	};

	for (size_t i = 0; i < nitems(m); i++)
		if (n >= m[i].off + m[i].len &&
		    memcmp(b + m[i].off, m[i].sig, m[i].len) == 0)
			return 1;
	return 0;
}

int
mime_archive_wanted(const struct mime_part *p)
{
	return archive_magic(p->content, p->content_len) ||
	    name_says_archive(p->filename) ||
	    in_list(p->sniffed_type, archive_types, nitems(archive_types));
}

static struct archive *
reader_new(int raw)
{
	struct archive *a = archive_read_new();

	if (a == NULL)
		return NULL;
	archive_read_support_filter_all(a);
	if (raw) {
		archive_read_support_format_raw(a);
		return a;
	}
	archive_read_support_format_7zip(a);
	archive_read_support_format_ar(a);
	archive_read_support_format_cab(a);
	archive_read_support_format_cpio(a);
	archive_read_support_format_empty(a);
	archive_read_support_format_iso9660(a);
	archive_read_support_format_lha(a);
	archive_read_support_format_rar(a);
	archive_read_support_format_rar5(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_xar(a);
	archive_read_support_format_zip(a);
	return a;
}

static void
limit(struct lister *L, const char *what)
{
	L->stop = 1;
	L->p->archive_truncated = 1;
	mime_limit_hit(L->c, (int)L->p->index, what);
}

/* charge - count n decompressed bytes; 0 once the budget is spent */
static int
charge(struct lister *L, size_t n)
{
	if (n >= L->c->archive_left) {
		L->c->archive_left = 0;
		limit(L, "max_archive_bytes spent, archive listing cut");
		return 0;
	}
	L->c->archive_left -= n;
	return 1;
}

/*
 * next_block - the next block of entry data as libarchive decoded it (up
 * to 256 KiB for a deflated zip entry), charged whole to the budget; 0 at
 * the end of the entry, on error, or once a limit is reached.
 */
static size_t
next_block(struct lister *L, struct archive *a, const void **p)
{
	size_t size = 0;
	la_int64_t off;
	int r;

	if (L->stop)
		return 0;
	r = archive_read_data_block(a, p, &size, &off);
	if ((r != ARCHIVE_OK && r != ARCHIVE_WARN) || size == 0)
		return 0;
	return charge(L, size) ? size : 0;
}

/* cheap_skip - can libarchive skip this entry without decompressing? */
static int
cheap_skip(struct archive *a, struct archive_entry *e)
{
	if (archive_filter_code(a, 0) != ARCHIVE_FILTER_NONE)
		return 0;
	switch (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) {
	case ARCHIVE_FORMAT_ZIP:
		return archive_entry_size_is_set(e);
	case ARCHIVE_FORMAT_TAR:
	case ARCHIVE_FORMAT_CPIO:
	case ARCHIVE_FORMAT_AR:
	case ARCHIVE_FORMAT_ISO9660:
	case ARCHIVE_FORMAT_LHA:
		return 1;
	default:
		return 0;
	}
}

/* nested - the whole entry (its first block given) listed as an archive */
static void
nested(struct lister *L, struct archive *a, const void *blk, size_t n,
    const char *name, unsigned depth)
{
	size_t cap = L->c->lim.max_part_decoded, len = 0, alloc = 0, take;
	unsigned char *buf = NULL;
	char *prefix;

	do {
		take = n < cap - len ? n : cap - len;
		if (len + take > alloc) {
			alloc = alloc * 2 > len + take ? alloc * 2 : len + take;
			alloc = alloc < cap ? alloc : cap;
			buf = xrealloc(buf, alloc);
		}
		memcpy(buf + len, blk, take);
		len += take;
		if (take < n) {
			L->p->archive_truncated = 1;
			mime_limit_hit(L->c, (int)L->p->index, "nested archive"
			    " cut at max_part_decoded");
			break;
		}
	} while ((n = next_block(L, a, &blk)) > 0);
	xasprintf(&prefix, "%s/", name);
	if (len > 0)
		list(L, buf, len, prefix, name, depth + 1);
	free(prefix);
	free(buf);
}

/* entry_data - read what the limits allow and the entry needs */
static void
entry_data(struct lister *L, struct archive *a, struct archive_entry *e,
    const char *name, unsigned depth)
{
	int nest = depth < L->c->lim.max_archive_depth;
	const void *blk;
	size_t n;

	if (!nest && cheap_skip(a, e))
		return;
	if ((n = next_block(L, a, &blk)) == 0)
		return;
	if (nest && (archive_magic(blk, n) || name_says_archive(name))) {
		nested(L, a, blk, n, name, depth);
		return;
	}
	if (!cheap_skip(a, e))
		while (next_block(L, a, &blk) > 0)
			;
}

static void
add_name(struct lister *L, char *name)
{
	if (L->n == L->cap) {
		L->cap = L->cap ? L->cap * 2 : 16;
		L->names = xreallocarray(L->names, L->cap, sizeof(char *));
	}
	L->names[L->n++] = name;
}

static char *
entry_name(struct archive_entry *e, const char *prefix, const char *alt)
{
	const char *s = alt;
	char *clean, *full;
	size_t pn = strlen(prefix), cn;

	if (s == NULL && (s = archive_entry_pathname_utf8(e)) == NULL)
		s = archive_entry_pathname(e);
	clean = mime_utf8_clean(s ? s : "", s ? strlen(s) : 0);
	cn = strlen(clean);
	full = xmalloc(pn + cn + 1);
	memcpy(full, prefix, pn);
	memcpy(full + pn, clean, cn + 1);
	free(clean);
	return full;
}

/* member - list one entry; alt names it when the archive cannot */
static void
member(struct lister *L, struct archive *a, struct archive_entry *e,
    const char *prefix, const char *alt, unsigned depth)
{
	unsigned type = (unsigned)archive_entry_filetype(e);
	char *name;

	if (L->n >= L->c->lim.max_archive_members) {
		limit(L, "max_archive_members reached, archive listing cut");
		return;
	}
	name = entry_name(e, prefix, alt);
	add_name(L, name);
	if (archive_entry_is_encrypted(e)) {
		L->p->archive_encrypted = 1;
		return;
	}
	if (type == 0 || type == (unsigned)AE_IFREG)
		entry_data(L, a, e, name, depth);
}

/* raw_name - the name of the file inside a compressed non-archive */
static char *
raw_name(const unsigned char *b, size_t n, const char *outer)
{
	const char *base = outer && strrchr(outer, '/') ?
	    strrchr(outer, '/') + 1 : outer;
	const char *ext = ext_of(base);
	size_t i = 10;
	const unsigned char *z;

	if (n > 10 && b[0] == 0x1f && b[1] == 0x8b && (b[3] & 0x08)) {
		if (b[3] & 0x04)		/* FEXTRA before FNAME */
			i = 12 + (n > 12 ? (size_t)(b[10] | b[11] << 8) : n);
		if (i < n && (z = memchr(b + i, 0, n - i)) != NULL &&
		    z > b + i)
			return mime_utf8_clean((const char *)b + i,
			    (size_t)(z - b - i));
	}
	if (base != NULL && in_list(ext, compress_exts, nitems(compress_exts))
	    && ext - 1 > base)
		return mime_utf8_clean(base, (size_t)(ext - 1 - base));
	return xstrdup("data");
}

/* list_raw - a compressed file that holds no archive: one member */
static int
list_raw(struct lister *L, const void *buf, size_t len, const char *prefix,
    const char *outer, unsigned depth)
{
	struct archive *a = reader_new(1);
	struct archive_entry *e;
	char *name;
	int ok = 0;

	if (a == NULL)
		return 0;
	if (archive_read_open_memory(a, buf, len) == ARCHIVE_OK &&
	    archive_read_next_header(a, &e) >= ARCHIVE_WARN &&
	    archive_filter_code(a, 0) != ARCHIVE_FILTER_NONE) {
		name = raw_name(buf, len, outer);
		member(L, a, e, prefix, name, depth);
		free(name);
		ok = 1;
	}
	archive_read_free(a);
	return ok;
}

/*
 * list - add the members of buf to L; 0 if libarchive does not read it as
 * an archive. outer is the name of buf itself (for a raw member's name).
 */
static int
list(struct lister *L, const void *buf, size_t len, const char *prefix,
    const char *outer, unsigned depth)
{
	struct archive *a = reader_new(0);
	struct archive_entry *e;
	int r = ARCHIVE_FATAL, n = 0, compressed;

	if (a == NULL)
		return 0;
	if (archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
		archive_read_free(a);		/* no format: compressed? */
		return list_raw(L, buf, len, prefix, outer, depth);
	}
	while (!L->stop && ((r = archive_read_next_header(a, &e)) ==
	    ARCHIVE_OK || r == ARCHIVE_WARN)) {
		n++;
		member(L, a, e, prefix, NULL, depth);
	}
	if (archive_read_has_encrypted_entries(a) > 0)
		L->p->archive_encrypted = 1;
	compressed = archive_filter_code(a, 0) != ARCHIVE_FILTER_NONE;
	archive_read_free(a);
	if (n > 0 && r < ARCHIVE_WARN)
		mime_problem(L->c, (int)L->p->index, "archive damaged after"
		    " %d entries", n);
	if (n > 0 || r == ARCHIVE_EOF)
		return 1;
	if (L->p->archive_encrypted) {
		mime_problem(L->c, (int)L->p->index, "archive unreadable,"
		    " encrypted headers?");
		return 1;
	}
	return compressed && list_raw(L, buf, len, prefix, outer, depth);
}

void
mime_archive_list(struct mime_ctx *c, struct mime_part *p)
{
	struct lister L = { c, p, NULL, 0, 0, 0 };

	if (c->archive_left == 0) {
		limit(&L, "max_archive_bytes spent, archive not listed");
		return;
	}
	if (!list(&L, p->content, p->content_len, "", p->filename, 0)) {
		free(L.names);
		mime_problem(c, (int)p->index, "archive cannot be read");
		return;
	}
	p->archive_members = L.names ? L.names : xcalloc(1, sizeof(char *));
	p->narchive_members = L.n;
	if (p->truncated)
		p->archive_truncated = 1;
}
