/*
 * message.h - a received message as filters see and change it (pure)
 *
 * The message (CRLF line ends) is split into its header fields and body.
 * Filters read headers by name (raw unfolded values; RFC 2047 decoding is
 * mime_decode_header()'s job) and change them with the same operations the
 * milter protocol has: add at the end, insert at an index, change or
 * delete the nth field of a name. message_render() then builds the new
 * text: unchanged fields are copied byte for byte, so a message nobody
 * touched renders identical to what was received.
 * A line that is neither a field nor a continuation ends the header
 * section, as in Postfix; the body starts after the blank line.
 * Ownership: struct message owns data and everything it points to.
 */
#ifndef SLUICE_MESSAGE_H
#define SLUICE_MESSAGE_H

#include <stddef.h>

#define MESSAGE_MAX_HEADERS	10000	/* fields beyond are body text */
#define MESSAGE_MAX_ADDED	1000	/* fields filters may add on top */

struct msg_header {
	char *name;		/* as written */
	char *value;		/* unfolded (CRLF removed), leading blanks cut */
	size_t raw_off;		/* original "Name: value\r\n" in data ... */
	size_t raw_len;		/* ... or raw_len 0 for an added/changed one */
	char *raw;		/* added with exact text: "Name:value\r\n" */
};

struct message {
	char *data;
	size_t len;
	size_t body_off;	/* first octet of the body */
	int has_separator;	/* a blank line ended the headers */
	struct msg_header *hdrs;
	size_t nhdrs;
	int changed;		/* headers or body modified */
	char *body;		/* replacement body, or NULL */
	size_t body_len;
};

/* message_init - takes data (malloc'ed) and parses the header fields */
void	message_init(struct message *, char *data, size_t len);
void	message_clear(struct message *);

/* message_find - index of the nth field called name, or -1 */
long	message_find(const struct message *, const char *name, size_t nth);
const char *message_get(const struct message *, const char *name,
	    size_t nth);

/* modifications: 0, or -1 for a bad name or value (CR, LF, NUL, ...) */
int	message_add(struct message *, const char *name, const char *value);
int	message_insert(struct message *, size_t index, const char *name,
	    const char *value);
/* message_change - value NULL deletes; a missing nth field is added */
int	message_change(struct message *, const char *name, size_t nth,
	    const char *value);
int	message_replace_body(struct message *, const char *body, size_t len);

/*
 * message_insert_raw, message_change_raw - the same with the exact text
 * after the colon (leading blanks kept, folded lines allowed: each line
 * break, LF or CRLF, must be followed by a blank and more text), as a
 * milter gives it. Stored with CRLF line ends.
 */
int	message_insert_raw(struct message *, size_t index, const char *name,
	    const char *raw_value);
int	message_change_raw(struct message *, const char *name, size_t nth,
	    const char *raw_value);
/* message_field_text - the text after the colon of field i, without its
   final CRLF, folds as in the message; *len its length */
const char *message_field_text(const struct message *, size_t i, size_t *len);
/*
 * message_field_milter - field i's value as the milter protocol carries
 * it, malloc'ed: folds as LF; with exact (SMFIP_HDR_LEADSPC) the text
 * after the colon as written, else without one leading space
 */
char	*message_field_milter(const struct message *, size_t i, int exact);

/* message_render - the message with all changes, malloc'ed */
char	*message_render(const struct message *, size_t *len);
/* message_render_head - the header section and its blank line only */
char	*message_render_head(const struct message *, size_t *len);
const char *message_body(const struct message *, size_t *len);

int	message_header_name_ok(const char *);
int	message_header_value_ok(const char *);

#endif
