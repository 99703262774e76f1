/*
 * dsn_int.h - what the parts of the DSN builder share (dsn.c, dsn_fmt.c,
 * dsn_status.c): limits, text cleaning and
 * folding, and the per-recipient action and status.
 */
#ifndef SLUICE_DSN_INT_H
#define SLUICE_DSN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "dsn.h"
#include "sbuf.h"

#define LINE_SOFT	78	/* fold fields and wrap text before this */
#define LINE_HARD	998	/* octets a line never exceeds */
#define DIAG_MAX	1000	/* bytes of a diagnostic reported */
#define ADDR_MAX	512	/* bytes of an address reported */
#define VALUE_MAX	300	/* host names, IDs */
#define ORCPT_LEN	600	/* ORCPT as stored (RFC 3461: 500 + type) */
#define BOUNDARY_MAX	60	/* bytes of the boundary we start from */
#define DATE_MAX	253402300799ULL	/* 9999-12-31 23:59:59 UTC */
#define TEXT_INDENT	"    "	/* text part: continuation lines */

/* dsn_fmt.c */
char	*clean_text(const char *, size_t, int);
size_t	 cut_point(const char *, size_t);
int	 fmt_date(char *, size_t, uint64_t);
void	 put_words(struct sbuf *, size_t, const char *, const char *);
void	 put_field(struct sbuf *, const char *, const char *);
void	 put_field_pfx(struct sbuf *, const char *, const char *,
	    const char *);
void	 put_para(struct sbuf *, const char *, const char *);
void	 put_date_field(struct sbuf *, const char *, uint64_t);
enum dsn_action	 action_of(const struct dsn_rcpt *);
const char	*action_name(enum dsn_action);
const char	*status_of(const struct dsn_rcpt *);

/* dsn_status.c: part 2, message/(global-)delivery-status */
void	 build_status(struct sbuf *, const struct dsn_params *,
	    const struct dsn_rcpt *, size_t);

#endif
