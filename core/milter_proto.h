/*
 * milter_proto.h - the Sendmail milter wire protocol, MTA side: encoding of
 * the commands we send, framing of what a filter sends back, strict
 * decoding of every reply (pure: no I/O, no globals, no libevent)
 *
 * Reference: shared/docs/milter-protocol.md sections 1, 3, 4, 5 and 8.
 * Code: milter_encode.c, milter_reader.c, milter_reply.c.
 * A packet is a 32-bit big-endian length, one command byte, length - 1
 * bytes of payload; the length counts the command byte, never itself.
 *
 * Encoders (milter_put_*) append exactly one packet to a struct milter_buf
 * whose memory the caller owns; they never allocate. They return 0, or -1
 * with the buffer unchanged and buf->why set: an input string holding a
 * NUL byte (it would be cut short on the wire), a payload over
 * MILTER_DATA_MAX (a stock libmilter filter drops the connection), an
 * argument out of range, or no room left (a buffer with at least
 * MILTER_PACKET_MAX free bytes always holds one packet).
 *
 * The reader (milter_reader_feed) takes bytes as they arrive, in any split,
 * and yields one packet at a time. Its buffer grows to the payload of the
 * packet being read and never past MILTER_LEN_MAX; the length is checked
 * before anything is allocated, so a filter announcing 0xFFFFFFFF bytes
 * costs nothing. Any error is final: the stream cannot be resynchronised.
 *
 * The decoder (milter_reply_parse) checks one reply packet completely:
 * exact payload length, every string NUL-terminated inside the payload,
 * header names, reply code text. Its results point into the payload.
 * Whether a reply is legal at this point of the session and whether the
 * filter negotiated the action is the caller's business (milter_reply_final
 * and milter_reply_action help).
 *
 * Errors are reported as a fixed string ("why"); nothing here logs.
 * The SMFI* names are those of libmilter's mfdef.h: do not include both
 * headers in one file.
 */
#ifndef SLUICE_MILTER_PROTO_H
#define SLUICE_MILTER_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MILTER_VERSION		6	/* what we speak */
#define MILTER_VERSION_MIN	2	/* oldest filter version we accept */

/*
 * MILTER_DATA_MAX - the largest payload we send. libmilter drops the
 * connection on anything longer, so body data goes in MILTER_CHUNK_SIZE
 * pieces and a longer header or macro packet cannot be sent at all.
 */
#define MILTER_DATA_MAX		65535
#define MILTER_CHUNK_SIZE	65535
/* one encoded packet at most: length word, command byte, payload */
#define MILTER_PACKET_MAX	(4 + 1 + MILTER_DATA_MAX)

/*
 * MILTER_LEN_MAX - the largest length word we accept from a filter. The
 * longest packet libmilter can produce is a body replacement chunk: one
 * command byte and 65535 bytes, 65536. Everything else is far smaller
 * (a reply is at most 32 lines of under 1000 bytes, a header under 2048).
 * 64 bytes of slack tolerate a filter not built on libmilter that counts
 * slightly differently; a bigger packet is a broken or hostile filter, and
 * refusing it bounds what one milter connection can make us allocate.
 */
#define MILTER_LEN_MAX		(1 + MILTER_DATA_MAX + 64)

/* limits on a REPLYCODE text (libmilter: 32 lines of at most 980 bytes) */
#define MILTER_REPLY_LINES_MAX	32
#define MILTER_REPLY_LINE_MAX	1000	/* one line, without its CRLF */

/* Commands, MTA to filter. */
#define SMFIC_ABORT		'A'	/* forget the message; no reply */
#define SMFIC_BODY		'B'	/* one body chunk */
#define SMFIC_CONNECT		'C'	/* host, family, port, address */
#define SMFIC_MACRO		'D'	/* command letter, name/value pairs */
#define SMFIC_BODYEOB		'E'	/* end of message */
#define SMFIC_HELO		'H'	/* HELO/EHLO argument */
#define SMFIC_QUIT_NC		'K'	/* end session, keep the socket (v6) */
#define SMFIC_HEADER		'L'	/* name, value */
#define SMFIC_MAIL		'M'	/* sender, ESMTP parameters */
#define SMFIC_EOH		'N'	/* end of headers */
#define SMFIC_OPTNEG		'O'	/* option negotiation, both ways */
#define SMFIC_QUIT		'Q'	/* end session; no reply */
#define SMFIC_RCPT		'R'	/* recipient, ESMTP parameters */
#define SMFIC_DATA		'T'	/* DATA (v4+) */
#define SMFIC_UNKNOWN		'U'	/* unrecognised SMTP command (v3+) */

/* Replies, filter to MTA (the negotiation reply is SMFIC_OPTNEG). */
#define SMFIR_ADDRCPT		'+'	/* add recipient */
#define SMFIR_DELRCPT		'-'	/* delete recipient */
#define SMFIR_ADDRCPT_PAR	'2'	/* add recipient with ESMTP args */
#define SMFIR_SHUTDOWN		'4'	/* 421: close the SMTP session */
#define SMFIR_ACCEPT		'a'
#define SMFIR_REPLBODY		'b'	/* replace body (one piece of it) */
#define SMFIR_CONTINUE		'c'
#define SMFIR_DISCARD		'd'
#define SMFIR_CHGFROM		'e'	/* change sender */
#define SMFIR_CONN_FAIL		'f'	/* never sent by libmilter */
#define SMFIR_ADDHEADER		'h'
#define SMFIR_INSHEADER		'i'
#define SMFIR_SETSYMLIST	'l'	/* reserved: lists come in 'O' */
#define SMFIR_CHGHEADER		'm'
#define SMFIR_PROGRESS		'p'	/* keep-alive */
#define SMFIR_QUARANTINE	'q'
#define SMFIR_REJECT		'r'
#define SMFIR_SKIP		's'	/* no more body chunks (v6) */
#define SMFIR_TEMPFAIL		't'
#define SMFIR_REPLYCODE		'y'	/* reject with this SMTP reply */

/* Actions a filter may take (second word of negotiation). */
#define SMFIF_ADDHDRS		0x00000001U
#define SMFIF_CHGBODY		0x00000002U
#define SMFIF_ADDRCPT		0x00000004U
#define SMFIF_DELRCPT		0x00000008U
#define SMFIF_CHGHDRS		0x00000010U
#define SMFIF_QUARANTINE	0x00000020U
#define SMFIF_CHGFROM		0x00000040U
#define SMFIF_ADDRCPT_PAR	0x00000080U
#define SMFIF_SETSYMLIST	0x00000100U
#define SMFIF_ALL		0x000001ffU

/* Protocol steps and options (third word of negotiation). */
#define SMFIP_NOCONNECT		0x00000001U
#define SMFIP_NOHELO		0x00000002U
#define SMFIP_NOMAIL		0x00000004U
#define SMFIP_NORCPT		0x00000008U
#define SMFIP_NOBODY		0x00000010U
#define SMFIP_NOHDRS		0x00000020U
#define SMFIP_NOEOH		0x00000040U
#define SMFIP_NR_HDR		0x00000080U
#define SMFIP_NOUNKNOWN		0x00000100U
#define SMFIP_NODATA		0x00000200U
#define SMFIP_SKIP		0x00000400U
#define SMFIP_RCPT_REJ		0x00000800U
#define SMFIP_NR_CONN		0x00001000U
#define SMFIP_NR_HELO		0x00002000U
#define SMFIP_NR_MAIL		0x00004000U
#define SMFIP_NR_RCPT		0x00008000U
#define SMFIP_NR_DATA		0x00010000U
#define SMFIP_NR_UNKN		0x00020000U
#define SMFIP_NR_EOH		0x00040000U
#define SMFIP_NR_BODY		0x00080000U
#define SMFIP_HDR_LEADSPC	0x00100000U
#define SMFIP_V2_ALL		0x0000007fU	/* what a v2 MTA offers */
#define SMFIP_ALL		0x001fffffU	/* every bit of v6 */

/* Macro stages of the negotiation reply's lists. Note EOM < EOH. */
#define SMFIM_CONNECT		0
#define SMFIM_HELO		1
#define SMFIM_ENVFROM		2
#define SMFIM_ENVRCPT		3
#define SMFIM_DATA		4
#define SMFIM_EOM		5
#define SMFIM_EOH		6
#define MILTER_STAGES		7
#define SMFIM_NONE		(-1)	/* our own: an event without macros
					   (UNKNOWN, as Postfix sends it) */

/* Family byte of SMFIC_CONNECT. */
#define MILTER_FAMILY_INET	'4'
#define MILTER_FAMILY_INET6	'6'
#define MILTER_FAMILY_LOCAL	'L'
#define MILTER_FAMILY_UNKNOWN	'U'	/* no port, no address follow */

/* A counted string: header slices from a message are not NUL-terminated. */
struct milter_str {
	const char	*p;
	size_t		 len;
};

static inline struct milter_str
milter_cstr(const char *s)
{
	struct milter_str m = { s, strlen(s) };

	return m;
}

/* One macro for SMFIC_MACRO: name as configured ("j", "{daemon_name}"). */
struct milter_macro {
	struct milter_str name;
	struct milter_str value;
};

/* Where encoders write; the caller owns data[0..cap). */
struct milter_buf {
	unsigned char	*data;
	size_t		 len;
	size_t		 cap;
	const char	*why;		/* set when an encoder returns -1 */
};

void	milter_buf_init(struct milter_buf *, void *mem, size_t cap);

int	milter_put_optneg(struct milter_buf *, uint32_t version,
	    uint32_t actions, uint32_t protocol);
/* family MILTER_FAMILY_*; port and addr are not sent for UNKNOWN */
int	milter_put_connect(struct milter_buf *, struct milter_str host,
	    int family, uint16_t port, struct milter_str addr);
int	milter_put_helo(struct milter_buf *, struct milter_str arg);
/* argv[0] is the address as given ("<a@b>", "<>"), then the parameters */
int	milter_put_mail(struct milter_buf *, const struct milter_str *argv,
	    size_t argc);
int	milter_put_rcpt(struct milter_buf *, const struct milter_str *argv,
	    size_t argc);
int	milter_put_data(struct milter_buf *);
int	milter_put_header(struct milter_buf *, struct milter_str name,
	    struct milter_str value);
int	milter_put_eoh(struct milter_buf *);
/* 1..MILTER_CHUNK_SIZE bytes; the caller splits longer bodies */
int	milter_put_body(struct milter_buf *, const void *, size_t);
int	milter_put_eob(struct milter_buf *);
int	milter_put_abort(struct milter_buf *);
int	milter_put_quit(struct milter_buf *);
int	milter_put_quit_nc(struct milter_buf *);
int	milter_put_unknown(struct milter_buf *, struct milter_str line);
/* cmd: the SMFIC_* letter the macros precede (C H M R T L N B E U) */
int	milter_put_macro(struct milter_buf *, int cmd,
	    const struct milter_macro *, size_t n);

/* One framed packet; data is valid until the next feed or clear. */
struct milter_packet {
	int			 cmd;
	const unsigned char	*data;		/* payload */
	size_t			 len;		/* payload length */
};

struct milter_reader {
	unsigned char	 head[5];	/* length word and command byte */
	size_t		 nhead;
	uint32_t	 need;		/* payload length of this packet */
	unsigned char	*buf;		/* payload, cap <= MILTER_LEN_MAX */
	size_t		 have;
	size_t		 cap;
	int		 ready;		/* the last feed returned a packet */
	int		 failed;
	char		 why[64];
};

enum milter_read {
	MILTER_READ_MORE,		/* all input used, no packet yet */
	MILTER_READ_PACKET,		/* *pkt is set; feed the rest later */
	MILTER_READ_ERROR,		/* *why says how; the stream is dead */
};

void	milter_reader_init(struct milter_reader *);
void	milter_reader_clear(struct milter_reader *);	/* frees the buffer */
/*
 * milter_reader_feed - use bytes from in[0..len) until one packet is
 * complete; *used is how many were used (call again with the rest)
 */
enum milter_read milter_reader_feed(struct milter_reader *, const void *in,
	    size_t len, size_t *used, struct milter_packet *pkt,
	    const char **why);

/* The negotiation reply. macros[stage] is NULL when the filter sent no
   list for that stage, "" when it wants none there. */
struct milter_optneg {
	uint32_t	 version;
	uint32_t	 actions;
	uint32_t	 protocol;
	const char	*macros[MILTER_STAGES];
	unsigned	 unknown_stages;	/* lists for stages we ignore */
};

/* A decoded reply; strings point into the packet's payload. */
struct milter_reply {
	int		 code;		/* SMFIR_* or SMFIC_OPTNEG */
	struct milter_optneg optneg;	/* SMFIC_OPTNEG */
	int		 rcode;		/* REPLYCODE: 421, 550 ... */
	const char	*text;		/* REPLYCODE: whole reply, lines joined
					   by CRLF; QUARANTINE: the reason */
	uint32_t	 index;		/* INSHEADER, CHGHEADER as sent */
	const char	*name;		/* ADD/INS/CHGHEADER */
	const char	*value;		/* ditto; CHGHEADER "" = delete */
	const char	*addr;		/* ADDRCPT[_PAR], DELRCPT, CHGFROM */
	const char	*args;		/* ADDRCPT_PAR, CHGFROM: ESMTP args
					   or NULL */
	const unsigned char *body;	/* REPLBODY */
	size_t		 bodylen;
};

/* milter_reply_parse - 0, or -1 with *why; *r is cleared first */
int	milter_reply_parse(int cmd, const unsigned char *, size_t,
	    struct milter_reply *r, const char **why);
/* milter_reply_final - 1 if the reply ends the wait for this event */
int	milter_reply_final(int code);
/* milter_reply_action - the SMFIF_* flag a modification needs, or 0 */
uint32_t milter_reply_action(int code);

#endif
