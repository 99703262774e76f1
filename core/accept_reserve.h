/*
 * accept_reserve.h - answering clients when file descriptors run out
 * (accept_reserve.c).
 */
#ifndef SLUICE_ACCEPT_RESERVE_H
#define SLUICE_ACCEPT_RESERVE_H

#include <sys/socket.h>

/* accept_reserve_init - take the spare descriptor; -1 if none is free */
int	accept_reserve_init(void);
/* accept_reserve_accept - accept4() (non-blocking, close-on-exec) in step
   with the refusals, taking the spare back first if it was lost */
int	accept_reserve_accept(int lfd, struct sockaddr *, socklen_t *);
/*
 * accept_reserve_refuse - accept() failed with EMFILE or ENFILE on lfd:
 * spend the spare descriptor on one waiting client, answer it 421 and
 * close it. 1 when a client was refused (more may wait), 0 when none was
 * waiting, -1 when it cannot help (no spare: pause accepting instead).
 */
int	accept_reserve_refuse(int lfd, const char *listener);
void	accept_reserve_free(void);

#endif
