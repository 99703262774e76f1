/*
 * mime_sniff.c - content type from the bytes themselves (libmagic).
 *
 * A magic_t is not thread-safe, so each thread opens its own on first use
 * (magic_load costs a few milliseconds) and a pthread key closes it when
 * the thread exits. If the magic database cannot be loaded, sniffing is off
 * for that thread and sniffed_type stays NULL.
 * Flags: MAGIC_MIME_TYPE only (no charset); compressed data is not looked
 * into (mime_archive.c lists archives); the CSV test is off because it
 * calls prose and HTML with commas "text/csv".
 * Cost: libmagic runs its regex tests over the whole window, ~3.5 ms for
 * 64 KiB of plain prose but ~0.9 ms for 1 KiB, with the same answer. So
 * content whose first 1 KiB is text (no NUL, no control bytes but
 * TAB/LF/VT/FF/CR/ESC) is sniffed on that much, cut at a line end; other
 * content on its first 16 KiB (about 50 us instead of 90 us for 64 KiB),
 * or 64 KiB when it begins with a NUL byte: formats found far from the
 * start (ISO 9660 at 32 KiB) begin with a zeroed area.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <magic.h>

#include "mime_int.h"
#include "util.h"

#define SNIFF_FLAGS	(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_CSV)

static pthread_key_t magic_key;
static int magic_key_ok;
static char magic_unusable;		/* marks a thread whose load failed */

static void
magic_destroy(void *m)
{
	if (m != NULL && m != &magic_unusable)
		magic_close(m);
}

void
mime_sniff_init(void)
{
	magic_key_ok = pthread_key_create(&magic_key, magic_destroy) == 0;
}

/* mime_sniff_shutdown - close this thread's handle; others close at exit */
void
mime_sniff_shutdown(void)
{
	if (!magic_key_ok)
		return;
	magic_destroy(pthread_getspecific(magic_key));
	pthread_setspecific(magic_key, NULL);
	pthread_key_delete(magic_key);
	magic_key_ok = 0;
}

static magic_t
thread_magic(void)
{
	void *m;
	magic_t nm;

	if (!magic_key_ok)
		return NULL;
	if ((m = pthread_getspecific(magic_key)) == NULL) {
		nm = magic_open(SNIFF_FLAGS);
		if (nm != NULL && magic_load(nm, NULL) != 0) {
			magic_close(nm);
			nm = NULL;
		}
		m = nm != NULL ? (void *)nm : (void *)&magic_unusable;
		pthread_setspecific(magic_key, m);
	}
	return m == &magic_unusable ? NULL : m;
}

/* window - how many leading bytes to show libmagic */
static size_t
window(const unsigned char *p, size_t n)
{
	size_t k = n < MIME_SNIFF_TEXT ? n : MIME_SNIFF_TEXT;

	size_t bin = p[0] == 0 ? MIME_SNIFF_MAX : MIME_SNIFF_BINARY;

	for (size_t i = 0; i < k; i++)
		if ((p[i] < 0x20 && (p[i] < 0x09 || p[i] > 0x0d) &&
		    p[i] != 0x1b) || p[i] == 0x7f)
			return n < bin ? n : bin;
	if (k == n)
		return n;
	for (size_t cut = k; cut > k / 2; cut--)
		if (p[cut - 1] == '\n')
			return cut;
	while (k > 1 && (p[k - 1] & 0xc0) == 0x80)
		k--;			/* no line end: no partial UTF-8 */
	return p[k - 1] >= 0xc0 ? k - 1 : k;
}

/* mime_sniff - MIME type of the leading bytes (see window), or NULL */
char *
mime_sniff(const unsigned char *p, size_t n)
{
	magic_t m;
	const char *t;

	if (n == 0 || (m = thread_magic()) == NULL)
		return NULL;
	t = magic_buffer(m, p, window(p, n));
	return t != NULL ? mime_utf8_clean(t, strlen(t)) : NULL;
}
