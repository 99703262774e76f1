/*
 * fuzz_mime.c - MIME analysis of a whole message for filters
 * (mime_parse.c, mime_field.c, mime_decode.c, mime_sniff.c,
 * mime_archive.c): the input is the message. Limits are kept small so one
 * input stays cheap; every part must come back with UTF-8 strings, a
 * content type, and decoded content within the limits.
 */
#include "fuzz.h"
#include "mime.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	mime_global_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_limits lim;
	struct mime_tree *t;
	char *msg = fuzz_dup(data, size);

	mime_limits_default(&lim);
	lim.max_parts = 50;
	lim.max_depth = 10;
	lim.max_part_decoded = 64 * 1024;
	lim.max_total_decoded = 256 * 1024;
	lim.max_archive_members = 50;
	lim.max_archive_bytes = 1024 * 1024;
	t = mime_parse(msg, size, &lim);
	fuzz_check(t != NULL && t->nparts >= 1 && t->nparts <= lim.max_parts);
	for (size_t i = 0; i < t->nparts; i++) {
		const struct mime_part *p = &t->parts[i];

		fuzz_check(p->index == i && p->content_type != NULL);
		fuzz_check(p->content_len <= lim.max_part_decoded);
		fuzz_check(p->depth <= lim.max_depth);
		if (p->content != NULL)
			fuzz_check(p->content[p->content_len] == '\0');
		for (size_t j = 0; j < p->narchive_members; j++)
			fuzz_check(p->archive_members[j] != NULL);
	}
	mime_tree_free(t);
	free(msg);
	return 0;
}
