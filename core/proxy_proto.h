/*
 * proxy_proto.h - the PROXY protocol header (HAProxy's, versions 1 and 2)
 * that a TCP load balancer puts in front of a connection to say who the
 * real client is.
 *
 * proxy_parse() looks at the first bytes of a connection: it needs at most
 * PROXY_MAX bytes and never reads past the header, so what follows (the
 * SMTP dialogue, or a TLS handshake) is left for the caller. Version 1: a
 * text line "PROXY TCP4|TCP6|UNKNOWN ... CRLF" of at most 107 bytes, with
 * single spaces, canonical addresses and decimal ports. Version 2: the
 * 12-byte signature, version 2, command LOCAL or PROXY, TCP over IPv4 or
 * IPv6 (UNSPEC with LOCAL), addresses and ports, TLVs skipped. LOCAL and
 * UNKNOWN mean "no client behind this one" (a health check): the
 * connection keeps its own address (h->local).
 * Pure function over a buffer; no allocation.
 */
#ifndef SLUICE_PROXY_PROTO_H
#define SLUICE_PROXY_PROTO_H

#include <stddef.h>
#include <sys/socket.h>

#define PROXY_V1_MAX	107
#define PROXY_V2_MAX	(16 + 512)	/* header + what we accept of TLVs */
#define PROXY_MAX	PROXY_V2_MAX

enum proxy_result {
	PROXY_MORE,		/* a valid beginning: read more */
	PROXY_BAD,		/* not a PROXY header (why says what) */
	PROXY_OK,		/* h filled; h->len bytes are the header */
};

struct proxy_hdr {
	size_t len;			/* of the header, to drain */
	int version;			/* 1 or 2 */
	int local;			/* LOCAL / UNKNOWN: no address given */
	struct sockaddr_storage src;	/* the real client */
	struct sockaddr_storage dst;	/* the address it connected to */
};

enum proxy_result proxy_parse(const unsigned char *, size_t,
	    struct proxy_hdr *, const char **why);

#endif
