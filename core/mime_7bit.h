/*
 * mime_7bit.h - downgrade an 8-bit message to 7 bit for a next hop that
 * does not offer 8BITMIME (RFC 6152 3): every leaf part whose body has
 * 8-bit octets and is not already base64 or quoted-printable is
 * re-encoded as quoted-printable (its Content-Transfer-Encoding field
 * replaced), walking multipart bodies and message/rfc822 parts; the
 * containers' own 8bit/binary labels become 7bit. Everything else is
 * copied byte for byte. Header fields are not touched (8-bit header
 * fields need SMTPUTF8, which is checked elsewhere).
 * Pure: no I/O; the result is malloc'ed.
 */
#ifndef SLUICE_MIME_7BIT_H
#define SLUICE_MIME_7BIT_H

#include <stddef.h>

/*
 * mime_to_7bit - the converted message (CRLF line ends as in the queue),
 * *outlen its length; NULL when the message has no 8-bit octets at all
 * (send it as it is). Never fails otherwise: parts it cannot understand
 * are encoded as a whole.
 */
char	*mime_to_7bit(const char *msg, size_t len, size_t *outlen);

#endif
