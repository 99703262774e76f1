/*
 * qid.h - queue IDs: unique, sortable by time, safe as file names
 *
 * 14 characters of base32hex (0-9a-v, in ASCII order): 52 bits of
 * microseconds since the epoch, then a 15-bit counter shared by all
 * threads. IDs made later sort later, as strings and as file names.
 */
#ifndef SLUICE_QID_H
#define SLUICE_QID_H

#include <stdint.h>

#define QID_LEN	14

void	qid_new(char buf[QID_LEN + 1]);
int	qid_valid(const char *);
/* qid_usec - when the ID was made (microseconds since the epoch, as
   now_usec()); 0 for a malformed ID */
uint64_t qid_usec(const char *);

#endif
